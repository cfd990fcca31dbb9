// The page's one WebSocket to the bridge (/ws, same origin: the session cookie goes with the
// handshake). It reconnects by itself with jittered, capped backoff, replays every subscription
// after a reconnect, and reports its state ("connecting", "live", "reconnecting") and the state of
// every upstream stream it has heard of, so the connection indicator can say what is going on.

const DEFAULT_BACKOFF = { initial: 0.5, factor: 2, cap: 10 };
const SILENCE_LIMIT_S = 30; // the server sends a heartbeat every 10 s: three missed, the link is dead
const RATE_LIMIT_RETRY_S = 1.2;

export function bridgeUrl(location = globalThis.location) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/ws`;
}

export class BridgeSocket extends EventTarget {
  constructor(url, backoff = DEFAULT_BACKOFF) {
    super();
    this.url = url;
    this.backoff = backoff;
    this.state = "connecting";
    this.attempt = 0; // failed connection attempts since the last good one
    this.retryAt = null; // epoch ms of the next attempt while reconnecting
    this.ws = null;
    this.subs = new Map(); // id → {request, onEvent, onError}
    this.streams = new Map(); // upstream stream name → latest status state
    this.nextId = 1;
    this.lastMessageAt = 0;
    this.retryTimer = null;
    this.watchdog = null;
  }

  start() {
    this.connect();
    this.watchdog = setInterval(() => this.checkSilence(), 5000);
  }

  /**
   * Subscribe with a /ws `subscribe` request (without `op`/`id`); `symbols` makes it a batch.
   * `onEvent(event, message)` gets every normalized event, `onError(error)` refusals for this id.
   * Returns a handle whose `close()` unsubscribes.
   */
  subscribe(request, onEvent, onError = () => {}) {
    const id = `s${this.nextId++}`;
    this.subs.set(id, { request, onEvent, onError });
    this.sendSubscribe(id);
    return {
      close: () => {
        if (!this.subs.delete(id)) return;
        this.send({ op: "unsubscribe", id });
      },
    };
  }

  /** Reconnect at once (the session changed: the new socket carries the new cookie's scopes). */
  reconnectNow() {
    this.attempt = 0;
    clearTimeout(this.retryTimer);
    if (this.ws) {
      const old = this.ws;
      this.ws = null;
      old.onclose = null;
      old.close(1000, "session changed");
    }
    this.connect();
  }

  // -- internals --------------------------------------------------------------------------------
  connect() {
    this.retryTimer = null;
    this.setState(this.attempt === 0 && this.state === "connecting" ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      console.warn("cannot open the bridge socket", error);
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.lastMessageAt = Date.now();
      this.streams.clear(); // the server sends each subscription's current status again
      this.setState("live");
      for (const id of this.subs.keys()) this.sendSubscribe(id);
    };
    ws.onmessage = (message) => this.receive(message.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.scheduleRetry();
    };
    // onerror is always followed by onclose; the browser already logs why.
    ws.onerror = () => {};
  }

  scheduleRetry() {
    this.attempt += 1;
    const { initial, factor, cap } = this.backoff;
    const ceiling = Math.min(cap, initial * factor ** (this.attempt - 1));
    const delay = ceiling * (0.5 + Math.random() * 0.5); // jitter: many pages never retry in step
    this.retryAt = Date.now() + delay * 1000;
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), delay * 1000);
  }

  checkSilence() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      if (Date.now() - this.lastMessageAt > SILENCE_LIMIT_S * 1000) {
        console.warn("the bridge went silent; reconnecting");
        this.ws.close(4000, "silent");
      }
    }
    this.dispatchEvent(new Event("tick"));
  }

  setState(state) {
    if (state !== "reconnecting") this.retryAt = null;
    this.state = state;
    this.dispatchEvent(new Event("state"));
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  sendSubscribe(id) {
    const sub = this.subs.get(id);
    if (sub) this.send({ op: "subscribe", id, ...sub.request });
  }

  receive(text) {
    this.lastMessageAt = Date.now();
    if (this.attempt !== 0) this.attempt = 0; // the link works again: the next failure starts over
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      console.error("the bridge sent something that is not JSON");
      return;
    }
    switch (message.type) {
      case "event": {
        const event = message.event;
        if (event.kind === "status") this.noteStatus(event);
        const sub = this.subs.get(message.id);
        if (sub) sub.onEvent(event, message);
        break;
      }
      case "error":
        this.receiveError(message);
        break;
      default: // ack, heartbeat, pong: proof of life is all we need from them
        break;
    }
  }

  receiveError(message) {
    const sub = message.id === null || message.id === undefined ? undefined : this.subs.get(message.id);
    if (message.code === "rate_limited" && sub) {
      setTimeout(() => this.sendSubscribe(message.id), RATE_LIMIT_RETRY_S * 1000);
      return;
    }
    if (sub) sub.onError(message);
    else console.warn(`bridge error ${message.code}: ${message.message}`);
  }

  noteStatus(event) {
    this.streams.set(event.stream, event.state);
    this.dispatchEvent(new Event("streams"));
  }

  /** Streams this page uses that are not live right now. */
  degradedStreams() {
    return [...this.streams].filter(([, state]) => state !== "live").map(([name]) => name);
  }
}
