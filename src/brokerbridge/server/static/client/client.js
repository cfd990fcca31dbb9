// `BridgeClient`: one WebSocket to a brokerbridge server's `/ws` and its REST API `/api`, for a
// browser page (the dashboard is one) or a Node program. No framework, no dependency.
//
// The socket reconnects by itself with jittered, capped backoff; a heartbeat watchdog notices a
// link that went silent (the server sends a heartbeat every 10 s); every subscription is sent again
// from its original request after a reconnect. While the link is down each subscription gets one
// `status` event `reconnecting` (saying why), and its first event after the reconnect is preceded
// by a `gap` event naming the time it was away — the same promise the Python `BridgeClient` makes.
// The client's own state (`connecting`, `live`, `reconnecting`, `closed`) is an event too.
//
// Who it is to the bridge, one of three:
//   - `key`: an API key (server-side programs only — never ship a key to a browser): sent in the
//     `auth` message on `/ws` and as `Authorization: Bearer` on REST;
//   - `getToken`: an async function returning a short-lived bridge token (`bbt.…`), called on every
//     (re)connect (`/ws?token=`) and before each REST request (`Authorization: Bearer`): cache it
//     in that function until shortly before it expires;
//   - neither: the browser's own session cookie (`bb_session`, same origin), with the session's CSRF
//     token on REST requests that change something, as the server requires.

import { BridgeError, errorFrom, NotSent, OutcomeUnknown } from "./errors.js";
import { RestClient } from "./rest.js";
import { Subscription } from "./subscription.js";

export const VERSION = "0.1.0"; // the Python package's (a test keeps the two equal)

const DEFAULT_BACKOFF = Object.freeze({ initial: 0.5, factor: 2, cap: 10 }); // seconds
const HEARTBEAT_TIMEOUT_S = 30; // the server sends one every 10 s: three missed, the link is dead
const ANSWER_TIMEOUT_S = 30; // an order op's answer: the venue's own timeouts are shorter
const RATE_LIMITED_RETRY_S = 1.2; // a subscribe refused for the message rate is sent again after this
const QUEUE_SIZE = 10_000; // events an async iterator holds for a reader that is behind
const AUTH_ID = "auth";
const ORDER_OPS = new Set(["place", "cancel", "amend"]);
const OPEN = 1; // WebSocket.OPEN (not every implementation has the constant on its class)

/** The event a `BridgeClient` dispatches: `type` is the kind, `detail` what happened. */
export class BridgeEvent extends Event {
  constructor(type, detail) {
    super(type);
    this.detail = detail;
  }
}

export class BridgeClient extends RestClient {
  /** @param {import("./index.js").BridgeClientOptions} [options] */
  constructor(options = {}) {
    super(options); // url, wsUrl, who the client is, fetch (rest.js)
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.heartbeatTimeout = options.heartbeatTimeout ?? HEARTBEAT_TIMEOUT_S;
    this.answerTimeout = options.answerTimeout ?? ANSWER_TIMEOUT_S;
    this.queueSize = Math.max(2, options.queueSize ?? QUEUE_SIZE);
    this.state = "idle"; // idle | connecting | live | reconnecting | closed
    this.attempt = 0; // failed connection attempts since the link last carried a message
    this.retryAt = null; // epoch ms of the next attempt while reconnecting
    this.reconnects = 0; // connections lost since `connect()`
    this.reason = ""; // why the last connection ended (or the client closed)
    this.streams = new Map(); // upstream stream name → its latest state (`status` events)
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._random = options.random ?? Math.random;
    this._ws = null;
    this._generation = 0; // bumped by connect/reconnect/close: a stale attempt sees it and stops
    this._subs = new Map(); // id → Subscription
    this._pending = new Map(); // op id → {resolve, reject, timer}
    this._nextId = 1;
    this._lastMessageAt = 0;
    this._openedAt = 0;
    this._retryTimer = null;
    this._watchdog = null;
    this._everLive = false;
  }

  // -- lifetime ------------------------------------------------------------------------------
  /** Open the socket (and keep it open until `close()`); returns the client. */
  connect() {
    if (this.state !== "idle" && this.state !== "closed") return this;
    if (!this._WebSocket) {
      throw new TypeError(
        "no WebSocket here: Node.js before 22 needs --experimental-websocket (20.10+) or the " +
          "`WebSocket` option (e.g. the `ws` package's class)",
      );
    }
    this.attempt = 0;
    this._everLive = false;
    const period = Math.max(50, Math.min(5000, (this.heartbeatTimeout * 1000) / 3));
    this._watchdog = setInterval(() => this._checkSilence(), period);
    this._open();
    return this;
  }

  /** Close the socket for good: subscriptions end, order ops waiting for an answer are refused. */
  close(reason = "closed by the client") {
    if (this.state === "closed" || this.state === "idle") {
      this._setState("closed", reason);
      return;
    }
    this._generation += 1;
    clearTimeout(this._retryTimer);
    clearInterval(this._watchdog);
    this._retryTimer = this._watchdog = null;
    this._drop(1000, reason);
    this._failPending("closed", reason);
    for (const sub of [...this._subs.values()]) sub._end(null);
    this._setState("closed", reason);
  }

  /** Reconnect at once (e.g. the browser's session changed: the new socket carries its scopes). */
  reconnect() {
    if (this.state === "idle" || this.state === "closed") return this.connect();
    clearTimeout(this._retryTimer);
    this.attempt = 0;
    this._drop(1000, "reconnecting");
    this._lost("reconnect asked for", false);
    clearTimeout(this._retryTimer);
    this._open();
    return this;
  }

  /** Listen to `state`, `status`, `gap` or `error`; `listener(detail)`; returns a function that stops it. */
  on(type, listener) {
    const handler = (event) => listener(event.detail);
    this.addEventListener(type, handler);
    return () => this.removeEventListener(type, handler);
  }

  /** Upstream streams this client heard of that are not live right now. */
  degradedStreams() {
    return [...this.streams].filter(([, state]) => state !== "live").map(([name]) => name);
  }

  // -- streams -------------------------------------------------------------------------------
  /**
   * Subscribe with a `/ws` `subscribe` request without `op`/`id` (`symbols` makes it a batch).
   * `onEvent(event, message)` gets every event (data, `status`, `gap`); `onError(error)` the typed
   * refusals of this subscription. The handle's `close()` unsubscribes; it is also an async iterable.
   */
  subscribe(request, onEvent = null, onError = null) {
    if (this.state === "closed") throw new NotSent({ code: "closed", message: "the client is closed", remedy: "create a new BridgeClient" });
    const id = `s${this._nextId++}`;
    const sub = new Subscription(this, id, { ...request }, onEvent, onError);
    this._subs.set(id, sub);
    if (this.state === "idle") this.connect();
    else if (this.state === "live") this._sendSubscribe(sub);
    return sub;
  }

  // -- orders (the `trade` scope) over /ws ------------------------------------------------------
  /** Place an order (an `OrderRequest`): resolves to the `OrderAck`, rejects with the typed refusal. */
  place(order) {
    return this._op({ op: "place", order });
  }

  /** Cancel the venue's order `orderId`: resolves to the `CancelAck`. */
  cancel(venue, orderId) {
    return this._op({ op: "cancel", venue, order_id: orderId });
  }

  /** Change an open order's qty and/or price (an `AmendRequest`): resolves to the `OrderAck`. */
  amend(change) {
    return this._op({ op: "amend", amend: change });
  }

  /** Round trip to the server: resolves to the server's wall time (epoch seconds). */
  ping() {
    return this._op({ op: "ping" }).then((pong) => pong.ts);
  }

  // -- internals -----------------------------------------------------------------------------
  /** A refusal nobody else took (a subscription without `onError`). */
  _report(error) {
    this.dispatchEvent(new BridgeEvent("error", error));
  }


  async _open() {
    const generation = ++this._generation;
    this._retryTimer = null;
    this.retryAt = null; // this attempt is under way
    this._setState(this.attempt === 0 && !this._everLive ? "connecting" : "reconnecting", this.reason);
    let url = this.wsUrl;
    if (this._getToken) {
      let token;
      try {
        token = await this._getToken();
      } catch (error) {
        if (generation === this._generation) this._retry(`getToken failed: ${error?.message ?? error}`);
        return;
      }
      if (generation !== this._generation) return; // closed or reconnected meanwhile
      if (token) url += `${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
    }
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (error) {
      this._retry(`cannot open ${this.wsUrl}: ${error?.message ?? error}`);
      return;
    }
    this._ws = ws;
    this._openedAt = Date.now();
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this._lastMessageAt = Date.now();
      if (this._key) ws.send(JSON.stringify({ op: "auth", id: AUTH_ID, key: this._key }));
      else this._live(ws);
    };
    ws.onmessage = (message) => {
      if (this._ws === ws) this._receive(ws, message.data);
    };
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      // A refused handshake reads as 1006 here (a browser shows no HTTP status): retried, since
      // a fresh token may be what it needs.
      this._lost(`the bridge closed the connection: ${event.code}${event.reason ? ` ${event.reason}` : ""}`);
    };
    ws.onerror = () => {}; // always followed by onclose, which says what happened
  }

  _live(ws) {
    this.streams.clear(); // the server sends each subscription's current status again
    this._everLive = true;
    this._setState("live");
    for (const sub of this._subs.values()) {
      if (ws === this._ws) this._sendSubscribe(sub);
    }
    // Order ops asked for while the link was down go now (each within its own timeout).
    for (const pending of [...this._pending.values()]) {
      const send = pending.waiting;
      pending.waiting = null;
      send?.();
    }
  }

  _lost(reason, retry = true) {
    this._ws = null;
    this.reason = reason;
    this._failPending("connection_lost", reason);
    if (this._everLive && this.state === "live") this.reconnects += 1;
    const now = Date.now() / 1000;
    for (const sub of this._subs.values()) {
      sub._sentOn = null;
      if (sub._awaySince === null) {
        sub._awaySince = now; // once per outage, not per failed attempt
        for (const stream of sub.streams) {
          const status = { kind: "status", venue: sub.request.venue, ts: now, stream, state: "reconnecting", reason, reconnects: this.reconnects };
          this._noteStatus(status);
          sub._deliver(status, null);
        }
      }
    }
    if (retry) this._retry(reason);
  }

  _retry(reason) {
    this.attempt += 1;
    const { initial, factor, cap } = this.backoff;
    const ceiling = Math.min(cap, initial * factor ** (this.attempt - 1));
    const delay = ceiling * (0.5 + this._random() * 0.5); // jitter: many clients never retry in step
    this.retryAt = Date.now() + delay * 1000;
    this.reason = reason;
    this._setState("reconnecting", reason);
    this._retryTimer = setTimeout(() => this._open(), delay * 1000);
  }

  _drop(code, reason) {
    const ws = this._ws;
    this._ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(code, reason.slice(0, 120));
    } catch {
      // already closing
    }
  }

  _checkSilence() {
    const ws = this._ws;
    if (!ws) return;
    // A peer that went away without closing (a laptop that slept, a hung server) never sends the
    // close, and a handshake to a hung server never ends: give up on this socket and open another.
    const open = ws.readyState === OPEN;
    if (Date.now() - (open ? this._lastMessageAt : this._openedAt) > this.heartbeatTimeout * 1000) {
      this._drop(4000, "silent");
      this._lost(
        open
          ? `no message from the bridge for ${this.heartbeatTimeout} s`
          : `no answer to the WebSocket handshake in ${this.heartbeatTimeout} s`,
      );
    }
  }

  _setState(state, reason = "") {
    if (state !== "reconnecting") this.retryAt = null;
    this.state = state;
    this.dispatchEvent(new BridgeEvent("state", { state, attempt: this.attempt, retryAt: this.retryAt, reason }));
  }

  _send(message) {
    const ws = this._ws;
    if (ws && ws.readyState === OPEN && this.state === "live") {
      ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  _sendSubscribe(sub) {
    if (sub._sentOn === this._ws || sub.closed) return;
    if (this._send({ ...sub.request, op: "subscribe", id: sub.id })) sub._sentOn = this._ws;
  }

  _unsubscribe(sub) {
    if (this._subs.get(sub.id) !== sub) return;
    this._subs.delete(sub.id);
    if (sub._sentOn && sub._sentOn === this._ws) this._send({ op: "unsubscribe", id: sub.id });
  }

  _op(message) {
    return new Promise((resolve, reject) => {
      if (this.state === "closed") {
        reject(new NotSent({ code: "closed", message: "the client is closed", remedy: "create a new BridgeClient" }));
        return;
      }
      const id = `${message.op[0]}${this._nextId++}`;
      const pending = { resolve, reject, op: message.op, timer: null, sent: false };
      this._pending.set(id, pending);
      pending.timer = setTimeout(() => {
        this._pending.delete(id);
        reject(
          pending.sent
            ? new OutcomeUnknown({ code: "timeout", id, message: `no answer to ${message.op} ${id} in ${this.answerTimeout} s`, remedy: outcomeRemedy(message.op) })
            : new NotSent({ code: "not_connected", id, message: `not connected to the bridge for ${this.answerTimeout} s: ${message.op} not sent`, remedy: "check the bridge (client state and reason) and send it again" }),
        );
      }, this.answerTimeout * 1000);
      const send = () => {
        if (!this._pending.has(id)) return;
        if (this._send({ ...message, id })) pending.sent = true;
        else pending.waiting = send; // sent when the link is live again, within the timeout
      };
      if (this.state === "idle") this.connect();
      send();
    });
  }

  _failPending(code, reason) {
    for (const [id, pending] of this._pending) {
      if (!pending.sent && code === "connection_lost") continue; // still waiting to be sent
      this._pending.delete(id);
      clearTimeout(pending.timer);
      const detail = { code, id, message: `${pending.op} ${id}: ${reason}` };
      pending.reject(
        pending.sent
          ? new OutcomeUnknown({ ...detail, code: code === "closed" ? "connection_lost" : code, remedy: outcomeRemedy(pending.op) })
          : new NotSent({ ...detail, remedy: "nothing was sent" }),
      );
    }
  }

  _receive(ws, text) {
    this._lastMessageAt = Date.now();
    if (this.attempt !== 0) this.attempt = 0; // the link works again: the next failure starts over
    let message;
    try {
      message = JSON.parse(typeof text === "string" ? text : new TextDecoder().decode(text));
    } catch {
      this.dispatchEvent(new BridgeEvent("error", new BridgeError({ code: "malformed", message: "the bridge sent something that is not JSON" })));
      return;
    }
    const id = message.id === null || message.id === undefined ? null : String(message.id);
    switch (message.type) {
      case "event": {
        const sub = this._subs.get(id);
        const event = message.event;
        if (event.kind === "status") this._noteStatus(event);
        else if (event.kind === "gap") this.dispatchEvent(new BridgeEvent("gap", event));
        if (!sub) return;
        if (sub._awaySince !== null) {
          const now = Date.now() / 1000;
          for (const stream of sub.streams) {
            const gap = { kind: "gap", venue: sub.request.venue, ts: now, stream, start: sub._awaySince, end: now, reason: "lost the connection to the bridge" };
            this.dispatchEvent(new BridgeEvent("gap", gap));
            sub._deliver(gap, null);
          }
          sub._awaySince = null;
        }
        sub._deliver(event, message);
        return;
      }
      case "ack":
        if (id === AUTH_ID && message.op === "auth") {
          if (this.state !== "live") this._live(ws);
        } else if (ORDER_OPS.has(message.op)) {
          this._settle(id, null, message.op === "cancel" ? message.cancel : message.order);
        } else if (message.op === "subscribe") {
          const sub = this._subs.get(id);
          if (sub) sub._ack(message);
        }
        return;
      case "pong":
        if (id !== null) this._settle(id, null, message);
        return;
      case "error":
        this._receiveError(message, id);
        return;
      default: // heartbeat: proof of life is all it carries
    }
  }

  _receiveError(message, id) {
    const error = errorFrom(message);
    if (id === AUTH_ID && this.state !== "live") {
      // A refused key: no retry can fix it. Everything ends with the reason.
      if (error.code === "rate_limited") {
        this._drop(1000, "auth rate limited");
        this._lost(error.message);
        return;
      }
      for (const sub of [...this._subs.values()]) sub._end(error); // their iterators throw it
      this.close(`the bridge refused the key: ${error.message}`);
      this.dispatchEvent(new BridgeEvent("error", error));
      return;
    }
    if (id !== null && this._pending.has(id)) {
      this._settle(id, error, null);
      return;
    }
    const sub = id === null ? undefined : this._subs.get(id);
    if (!sub) {
      this.dispatchEvent(new BridgeEvent("error", error));
      return;
    }
    if (error.code === "rate_limited") {
      sub._sentOn = null;
      const ws = this._ws;
      setTimeout(() => {
        if (this._ws === ws && this._subs.get(sub.id) === sub) this._sendSubscribe(sub);
      }, RATE_LIMITED_RETRY_S * 1000);
      return;
    }
    // Refused before it was acknowledged (a bad request, a missing scope), or the one stream of a
    // single-symbol subscription refused later: the subscription ends. A batch's symbol refused
    // later is reported while its other symbols go on.
    sub._refused(error, !(sub._acked && sub.request.symbols));
  }

  _settle(id, error, value) {
    const pending = this._pending.get(id);
    if (!pending) return;
    this._pending.delete(id);
    clearTimeout(pending.timer);
    if (error) pending.reject(error);
    else pending.resolve(value);
  }

  _noteStatus(event) {
    this.streams.set(event.stream, event.state);
    this.dispatchEvent(new BridgeEvent("status", event));
  }

}

function outcomeRemedy(op) {
  return op === "place"
    ? "the order may be live: place it again with the same client_order_id (never a second order), or read openOrders()"
    : `the ${op} may have been done: check openOrders() before sending it again`;
}

/** `new BridgeClient(options).connect()`. */
export function connect(options) {
  return new BridgeClient(options).connect();
}
