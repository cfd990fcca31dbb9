// The client's one error tree. Every refusal the bridge answers — a `/ws` `error` message or a REST
// body `{"error": {code, message, remedy, rule}}` — becomes the class of its `code`, by one table
// (the server's codes: core/errors.py WIRE_ERRORS), so `catch (e) { if (e instanceof OrderRefused) … }`
// reads the same whichever way the request went. A few codes are the client's own: the connection
// was lost before an answer came, no answer came in time, the bridge could not be reached, or the
// client was closed — each says whether the request may have taken effect.

export class BridgeError extends Error {
  /**
   * @param {{code: string, message: string, remedy?: string, rule?: string, status?: number|null,
   *          id?: string|number|null}} detail
   */
  constructor({ code, message, remedy = "", rule = "", status = null, id = null }) {
    super(message);
    this.name = new.target.name;
    this.code = code; // the server's code (or the client's own, below)
    this.remedy = remedy; // what to do about it, in words
    this.rule = rule; // order_refused: the venue rule broken (tick_size, lot_size, min_qty, rate_limit, …)
    this.status = status; // the HTTP status of a REST refusal; null over /ws
    this.id = id; // the /ws request id it answers, when it answers one
  }
}

export class NotAuthorized extends BridgeError {}
export class InvalidRequest extends BridgeError {} // also `malformed`
export class UnknownVenue extends InvalidRequest {}
export class UnknownChannel extends InvalidRequest {}
export class UnknownSymbol extends BridgeError {}
export class RateLimited extends BridgeError {}
export class OrderRefused extends BridgeError {} // the bridge refused it; nothing reached the venue: see `rule`
export class OrderRejected extends BridgeError {} // the venue refused it
export class OrderConflict extends BridgeError {} // a client_order_id used before with other arguments
export class UnknownOrder extends BridgeError {}
export class NotLoaded extends BridgeError {} // account state asked for before the venue's first snapshot
export class Unavailable extends BridgeError {} // the venue (or the bridge) could not be reached: send it again
/** The request went out but its answer did not come (the connection dropped, or no answer in
 * time): it may have taken effect. An order: place it again with the same client_order_id. */
export class OutcomeUnknown extends BridgeError {}
/** Nothing was sent: the bridge could not be reached, or the client is closed. */
export class NotSent extends BridgeError {}

export const ERROR_CLASSES = Object.freeze({
  not_authorized: NotAuthorized,
  malformed: InvalidRequest,
  invalid_request: InvalidRequest,
  unknown_venue: UnknownVenue,
  unknown_channel: UnknownChannel,
  unknown_symbol: UnknownSymbol,
  rate_limited: RateLimited,
  order_refused: OrderRefused,
  order_rejected: OrderRejected,
  order_conflict: OrderConflict,
  unknown_order: UnknownOrder,
  not_loaded: NotLoaded,
  unavailable: Unavailable,
  cluster_unavailable: Unavailable, // a cluster node's Redis does not answer: send it again
  fenced: Unavailable, // another node of the cluster holds the venue now: send it again
  not_sent: NotSent, // the bridge refused it before anything reached the venue: send it again
  // the client's own
  connection_lost: OutcomeUnknown,
  timeout: OutcomeUnknown,
  unreachable: NotSent,
  not_connected: NotSent,
  closed: NotSent,
});

/** The typed error for a server answer `{code, message, remedy?, rule?}` (a /ws `error` message, or
 * a REST body's `error` with its HTTP `status`). An unknown code is a plain BridgeError. */
export function errorFrom(detail, status = null) {
  const code = detail?.code ?? (status !== null && status >= 500 ? "unavailable" : "http_error");
  const Kind = ERROR_CLASSES[code] ?? BridgeError;
  return new Kind({
    code,
    message: detail?.message ?? `HTTP ${status}`,
    remedy: detail?.remedy ?? "",
    rule: detail?.rule ?? "",
    status,
    id: detail?.id ?? null,
  });
}
