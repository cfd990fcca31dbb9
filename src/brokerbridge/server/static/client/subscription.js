// One subscription of a `BridgeClient`: its request (sent again after every reconnect), the
// bridge's stream names once acknowledged, and its readers — a callback, async iterators, or both.

/** `close()` unsubscribes; `for await (const event of sub)` reads its events. */
export class Subscription {
  constructor(client, id, request, onEvent, onError) {
    this.id = id;
    this.request = request;
    const symbols = request.symbols ?? [request.symbol];
    // The bridge's stream names once acknowledged; until then what was asked for.
    this.streams = symbols.map((symbol) => [request.venue, request.channel, symbol].filter(Boolean).join(":"));
    this.closed = false;
    this.error = null; // the refusal that ended it
    this._client = client;
    this._onEvent = onEvent;
    this._onError = onError;
    this._acked = false;
    this._sentOn = null;
    this._awaySince = null;
    this._queues = new Set(); // readers of async iterators
  }

  close() {
    if (this.closed) return;
    this._client._unsubscribe(this);
    this._end(null);
  }

  [Symbol.asyncIterator]() {
    const reader = { items: [], wake: null };
    this._queues.add(reader);
    const finish = () => {
      this._queues.delete(reader);
      return { value: undefined, done: true };
    };
    return {
      next: async () => {
        for (;;) {
          if (reader.items.length) return { value: reader.items.shift(), done: false };
          if (this.closed) {
            this._queues.delete(reader);
            if (this.error) throw this.error;
            return finish();
          }
          await new Promise((resolve) => {
            reader.wake = resolve;
          });
        }
      },
      return: async () => {
        this.close();
        return finish();
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  _ack(message) {
    this._acked = true;
    if (message.streams?.length) this.streams = [...message.streams];
    else if (message.stream) this.streams = [message.stream];
  }

  _deliver(event, message) {
    if (this.closed) return;
    if (this._onEvent) guarded(this._onEvent, event, message);
    for (const reader of this._queues) {
      if (reader.items.length >= this._client.queueSize) dropOldest(reader.items, event.venue ?? this.request.venue, this.streams[0]);
      reader.items.push(event);
      reader.wake?.();
      reader.wake = null;
    }
  }

  _refused(error, ends) {
    if (this._onError) guarded(this._onError, error);
    else this._client._report(error);
    if (ends) this._end(error); // an iterator reading it throws `error` after what came before
  }

  _end(error) {
    if (this.closed) return;
    this.closed = true;
    this.error = error;
    this._client._subs.delete(this.id);
    for (const reader of this._queues) {
      reader.wake?.();
      reader.wake = null;
    }
  }
}

/** Call a listener of the application's; what it throws is reported, not thrown into the client
 * (which would skip the other subscriptions' events of the same message). */
function guarded(listener, ...args) {
  try {
    listener(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/** A reader that is behind loses the oldest half of what waits, told by one `gap` event. */
function dropOldest(items, venue, stream) {
  const dropped = items.splice(0, Math.floor(items.length / 2));
  const start = dropped[0]?.kind === "gap" ? dropped[0].start : (dropped[0]?.ts ?? Date.now() / 1000);
  const end = dropped[dropped.length - 1]?.ts ?? start;
  items.unshift({ kind: "gap", venue, ts: Date.now() / 1000, stream, start, end, reason: `reader too slow: ${dropped.length} events dropped by BridgeClient` });
}

