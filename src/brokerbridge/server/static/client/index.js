// brokerbridge's JavaScript client: `import { connect } from "…/client/index.js"`.
// The same files are the npm package `brokerbridge-client` and what a running bridge serves at
// `/client/` (the dashboard imports them from there too). Types: index.d.ts, protocol.d.ts.

export { BridgeClient, BridgeEvent, connect, VERSION } from "./client.js";
export { Subscription } from "./subscription.js";
export {
  BridgeError,
  ERROR_CLASSES,
  errorFrom,
  InvalidRequest,
  NotAuthorized,
  NotLoaded,
  NotSent,
  OrderConflict,
  OrderRefused,
  OrderRejected,
  OutcomeUnknown,
  RateLimited,
  Unavailable,
  UnknownChannel,
  UnknownOrder,
  UnknownSymbol,
  UnknownVenue,
} from "./errors.js";
