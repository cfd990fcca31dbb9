// The client's API (written by hand; the wire types in protocol.d.ts are generated from the
// server's JSON Schemas by scripts/gen_js_types.py).

import type {
  AmendRequest,
  AnyEvent,
  CancelAck,
  EventByKind,
  EventMessage,
  Fill,
  Gap,
  OptionAnalytics,
  OrderAck,
  OrderRequest,
  OrderUpdate,
  StreamStatus,
  Subscribe,
} from "./protocol.js";

export type * from "./protocol.js";

export declare const VERSION: string;

/** The client's own link to the bridge. */
export type ConnectionState = "idle" | "connecting" | "live" | "reconnecting" | "closed";

export interface BackoffPolicy {
  /** Seconds before the first retry. Default 0.5. */
  initial: number;
  /** Each retry waits this many times longer. Default 2. */
  factor: number;
  /** Never longer than this many seconds (before jitter: each wait is 50–100 % of it). Default 10. */
  cap: number;
}

export interface BridgeClientOptions {
  /** The bridge's `http(s)://host:port`; default: the page's origin. `/ws` is derived from it. */
  url?: string;
  /** Override the WebSocket URL (default `ws(s)://host:port/ws`). */
  wsUrl?: string;
  /** An API key — for server-side programs only; never ship one to a browser. */
  key?: string;
  /** Browsers: a short-lived bridge token (`bbt.…`), called on every (re)connect and REST request. */
  getToken?: () => Promise<string | null | undefined> | string | null | undefined;
  /** A WebSocket class (Node before 22: the `ws` package's, or run with --experimental-websocket). */
  WebSocket?: new (url: string) => WebSocket;
  /** A fetch function (default: the global one). */
  fetch?: typeof fetch;
  /** `fetch` credentials: "same-origin" (default; the session cookie on the bridge's own page) or "include". */
  credentials?: RequestCredentials;
  backoff?: Partial<BackoffPolicy>;
  /** Seconds without any message before the link counts as dead and is replaced. Default 30. */
  heartbeatTimeout?: number;
  /** Seconds an order op waits to be sent and answered. Default 30. */
  answerTimeout?: number;
  /** Events an async iterator holds for a reader that is behind (then: oldest half dropped, one `gap`). Default 10 000. */
  queueSize?: number;
  /** Random numbers in [0, 1) for the backoff's jitter (tests). */
  random?: () => number;
}

export interface StateDetail {
  state: ConnectionState;
  /** Failed attempts since the link last carried a message. */
  attempt: number;
  /** Epoch ms of the next attempt while waiting to reconnect, else null. */
  retryAt: number | null;
  /** Why the last connection ended (or the client closed). */
  reason: string;
}

export interface ClientEventMap {
  state: StateDetail;
  /** Every `status` event of any stream, and the client's own `reconnecting` per subscription. */
  status: StreamStatus;
  /** Every `gap` event: the bridge's, and the client's own after a reconnect. */
  gap: Gap;
  /** A refusal no subscription or order op took (or an ended subscription without `onError`). */
  error: BridgeError;
}

/** A `subscribe` request as `BridgeClient.subscribe` takes it (no `op`, no `id`). */
export type SubscribeRequest = Omit<Subscribe, "op" | "id">;

/** Events by channel (plus `status` and `gap`, which every subscription gets). */
export interface ChannelEvents {
  ticker: EventByKind["ticker"];
  book: EventByKind["book_snapshot"] | EventByKind["book_update"];
  trades: EventByKind["trade"];
  candles: EventByKind["candle"];
  stats: EventByKind["stats"];
  instruments: EventByKind["instrument"];
  balances: EventByKind["balance_snapshot"] | EventByKind["balance_update"];
  executions: EventByKind["order_update"] | EventByKind["fill"];
  orders: EventByKind["order_update"];
  positions: EventByKind["position"];
  /** One `option_analytics` per option of the underlying (and expiry), on every tick. */
  greeks: EventByKind["option_analytics"];
  status: never;
}

export type EventOf<C extends string> = (C extends keyof ChannelEvents ? ChannelEvents[C] : AnyEvent) | StreamStatus | Gap;

export declare class BridgeEvent<T = unknown> extends Event {
  readonly detail: T;
}

export declare class Subscription<E = AnyEvent> implements AsyncIterable<E> {
  readonly id: string;
  readonly request: SubscribeRequest;
  /** The bridge's stream names once acknowledged (one per symbol of a batch). */
  readonly streams: string[];
  readonly closed: boolean;
  /** The refusal that ended it, if one did. */
  readonly error: BridgeError | null;
  /** Unsubscribe (idempotent). */
  close(): void;
  /** Events until `close()`; throws the refusal that ended the subscription. Leaving the loop unsubscribes. */
  [Symbol.asyncIterator](): AsyncIterator<E>;
}

export declare class BridgeClient extends EventTarget {
  constructor(options?: BridgeClientOptions);
  readonly url: string;
  readonly wsUrl: string;
  readonly state: ConnectionState;
  readonly attempt: number;
  readonly retryAt: number | null;
  /** Connections lost since `connect()`. */
  readonly reconnects: number;
  readonly reason: string;
  /** Upstream stream name → its latest state. */
  readonly streams: Map<string, StreamStatus["state"]>;
  /** The cookie session's CSRF token, once read (`session()`). */
  readonly csrfToken: string | null;

  connect(): this;
  close(reason?: string): void;
  /** Reconnect at once (e.g. the signed-in session changed). */
  reconnect(): this;
  on<K extends keyof ClientEventMap>(type: K, listener: (detail: ClientEventMap[K]) => void): () => void;
  degradedStreams(): string[];

  subscribe<const R extends SubscribeRequest>(
    request: R,
    onEvent?: ((event: EventOf<R["channel"]>, message: EventMessage | null) => void) | null,
    onError?: ((error: BridgeError) => void) | null,
  ): Subscription<EventOf<R["channel"]>>;

  /** Over /ws: resolves to the `OrderAck` (`accepted`, or `unknown`: the venue did not answer). */
  place(order: OrderRequest): Promise<OrderAck>;
  cancel(venue: string, orderId: string): Promise<CancelAck>;
  amend(change: AmendRequest): Promise<OrderAck>;
  /** Resolves to the server's wall time (epoch seconds). */
  ping(): Promise<number>;

  request<T = any>(
    path: string,
    options?: { method?: string; body?: unknown; query?: Record<string, string | number | boolean | null | undefined>; answers?: number[]; text?: boolean },
  ): Promise<T>;
  session(): Promise<SessionInfo>;
  signIn(key: string): Promise<SessionInfo>;
  signOut(): Promise<void>;
  venues(): Promise<VenueSummary[]>;
  health(): Promise<any>;
  ready(): Promise<{ status: "ready" | "not_ready"; venues: Record<string, { state: string; reason: string; remedy: string; account_streams: Record<string, string> }> }>;
  instruments(venue: string, search?: string): Promise<{ venue: string; source: string; instruments: Record<string, unknown>[] }>;
  ticker(venue: string, symbol: string): Promise<{ venue: string; symbol: string; state: string; ticker: EventByKind["ticker"] | null; stats: EventByKind["stats"] | null }>;
  book(venue: string, symbol: string, depth?: number): Promise<{ venue: string; symbol: string; depth: number; state: string; book: EventByKind["book_snapshot"] }>;
  trades(venue: string, symbol: string, limit?: number): Promise<{ venue: string; symbol: string; state: string; trades: EventByKind["trade"][] }>;
  candles(venue: string, symbol: string, options?: { interval?: number; limit?: number }): Promise<{ venue: string; symbol: string; interval: number; state: string; candles: EventByKind["candle"][] }>;
  /** `GET /api/options/{venue}/{underlying}`: the chain with its analytics (UnknownSymbol: no options listed for it). */
  optionChain(venue: string, underlying: string, options?: OptionChainOptions): Promise<OptionChain>;
  /** The same as CSV text: a header row, one row per option, "." decimals, ISO dates, empty cells with `reasons`. */
  optionChainCsv(venue: string, underlying: string, options?: OptionChainOptions): Promise<string>;
  balances(venue: string): Promise<Balance[]>;
  openOrders(venue: string): Promise<OrderUpdate[]>;
  fillsPage(venue: string, options?: { after?: string; limit?: number }): Promise<FillsPage>;
  allFills(venue: string, options?: { pageSize?: number }): AsyncGenerator<Fill>;
}

export interface SessionInfo {
  authenticated: boolean;
  name: string | null;
  scopes: string[];
  expires_at: number | null;
  csrf_token: string | null;
}

export interface VenueSummary {
  venue: string;
  credentials: boolean;
  simulated: boolean;
  streams: Record<string, string>;
}

export interface Balance {
  asset: string;
  total: string;
  hold: string | null;
  stale: boolean;
  updated_at: number | null;
}

export type OptionModel = "american" | "european";

export interface OptionChainOptions {
  /** One expiry, an ISO date (default: every listed expiry). */
  expiry?: string;
  /** Default: the server's [options] model. */
  model?: OptionModel;
}

/** One expiry of an option chain. */
export interface ExpiryChain {
  /** ISO date. */
  expiry: string;
  /** Calendar days (fractional) to the expiry's close. */
  days: number;
  /** BYMA sessions after today up to and including the expiry. */
  business_days: number;
  /** By strike, call before put. */
  options: OptionAnalytics[];
}

/** `optionChain`'s answer: every listed expiry (or the one asked for) of one underlying. */
export interface OptionChain {
  venue: string;
  /** The underlying's ticker (GGAL). */
  underlying: string;
  underlying_symbol: string | null;
  /** When these figures were computed (epoch seconds). */
  ts: number;
  model: OptionModel;
  /** Decimal string. */
  spot: string | null;
  spot_stale: boolean;
  /** Continuous annual rate the model uses. */
  rate: number | null;
  rate_source: string;
  /** The caución's own quote, % TNA, when the rate comes from one. */
  caucion_tna: number | null;
  /** The venue is an embedded simulator: not a real market. */
  simulated: boolean;
  expiries: ExpiryChain[];
  /** Chain-wide: why spot, rate or calendar figures are missing or flagged. */
  reasons: Record<string, string>;
}

export interface FillsPage {
  venue: string;
  fills: Fill[];
  /** The cursor for the next page (`after`); null on the last. */
  next: string | null;
}

export declare function connect(options?: BridgeClientOptions): BridgeClient;

export interface ErrorDetail {
  code: string;
  message: string;
  remedy?: string;
  rule?: string;
  status?: number | null;
  id?: string | number | null;
}

export declare class BridgeError extends Error {
  constructor(detail: ErrorDetail);
  /** The server's code (`order_refused`, `not_authorized`, …) or the client's own (`connection_lost`, `timeout`, `unreachable`, `not_connected`, `closed`). */
  readonly code: string;
  readonly remedy: string;
  /** `order_refused`: the rule broken (tick_size, lot_size, min_qty, rate_limit, …). */
  readonly rule: string;
  /** A REST refusal's HTTP status; null over /ws. */
  readonly status: number | null;
  readonly id: string | number | null;
}
export declare class NotAuthorized extends BridgeError {}
export declare class InvalidRequest extends BridgeError {}
export declare class UnknownVenue extends InvalidRequest {}
export declare class UnknownChannel extends InvalidRequest {}
export declare class UnknownSymbol extends BridgeError {}
export declare class RateLimited extends BridgeError {}
export declare class OrderRefused extends BridgeError {}
export declare class OrderRejected extends BridgeError {}
export declare class OrderConflict extends BridgeError {}
export declare class UnknownOrder extends BridgeError {}
export declare class NotLoaded extends BridgeError {}
export declare class Unavailable extends BridgeError {}
/** Sent, but no answer came (connection lost, timeout): it may have taken effect. */
export declare class OutcomeUnknown extends BridgeError {}
/** Not sent (unreachable, not connected in time, client closed). */
export declare class NotSent extends BridgeError {}
export declare const ERROR_CLASSES: Readonly<Record<string, typeof BridgeError>>;
export declare function errorFrom(detail: Partial<ErrorDetail> | null | undefined, status?: number | null): BridgeError;
