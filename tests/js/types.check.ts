// Compiled by `tsc --noEmit` (tests/js/test_node_client.py): the package's declarations (index.d.ts,
// the generated protocol.d.ts) type what a TypeScript user writes, and refuse what is wrong.
import {
  BridgeClient,
  BridgeError,
  connect,
  OrderRefused,
  OutcomeUnknown,
  type AnyEvent,
  type ClientMessage,
  type OptionAnalytics,
  type OptionChain,
  type OrderAck,
  type ServerMessage,
  type StreamStatus,
  type Ticker,
} from "../../src/brokerbridge/server/static/client/index.js";

const bridge = new BridgeClient({ url: "http://127.0.0.1:8000", key: "k", backoff: { cap: 5 } }).connect();
const stop: () => void = bridge.on("state", ({ state, attempt, retryAt, reason }) => {
  const known: "idle" | "connecting" | "live" | "reconnecting" | "closed" = state;
  console.log(known, attempt, retryAt ?? 0, reason.length);
});
stop();
bridge.on("status", (status: StreamStatus) => console.log(status.stream, status.state));
bridge.on("gap", (gap) => console.log(gap.start < gap.end));
bridge.on("error", (error) => console.log(error.code, error.remedy));

const sub = bridge.subscribe({ venue: "kraken", channel: "ticker", symbol: "BTC/USD" }, (event) => {
  if (event.kind === "ticker") {
    const ticker: Ticker = event;
    console.log(ticker.bid?.length);
  }
  // @ts-expect-error a ticker subscription never delivers fills
  if (event.kind === "fill") console.log(event);
});
sub.close();

async function trade(): Promise<void> {
  for await (const event of bridge.subscribe({ venue: "kraken", channel: "book", symbol: "BTC/USD", depth: 10 })) {
    if (event.kind === "book_snapshot") console.log(event.bids[0]?.[0], event.checksum);
    break;
  }
  try {
    const ack: OrderAck = await bridge.place({ venue: "kraken", symbol: "BTC/USD", side: "buy", qty: "0.01", type: "limit", price: "30000" });
    const canceled = await bridge.cancel("kraken", ack.order_id ?? "");
    console.log(canceled.canceled);
    await bridge.amend({ venue: "kraken", order_id: "O1", price: "30001" });
    // @ts-expect-error side is "buy" or "sell"
    await bridge.place({ venue: "kraken", symbol: "BTC/USD", side: "hold", qty: "1" });
  } catch (error) {
    if (error instanceof OrderRefused) console.log(error.rule);
    else if (error instanceof OutcomeUnknown) console.log(error.code);
    else if (error instanceof BridgeError) console.log(error.status);
  }
  const page = await bridge.fillsPage("kraken", { limit: 5 });
  for (const fill of page.fills) console.log(fill.price, fill.exec_id);
  for await (const fill of bridge.allFills("kraken")) console.log(fill.qty);
  const balances = await bridge.balances("kraken");
  console.log(balances[0]?.stale);
  const open = await bridge.openOrders("kraken");
  console.log(open[0]?.status);
}

async function options(): Promise<void> {
  const chain: OptionChain = await bridge.optionChain("primary", "GGAL", { expiry: "2026-12-18", model: "european" });
  for (const expiry of chain.expiries) {
    for (const option of expiry.options) console.log(option.strike, option.iv_mid ?? option.reasons?.["iv_mid"], option.delta);
  }
  const csv: string = await bridge.optionChainCsv("primary", "GGAL");
  console.log(csv.split("\r\n")[0], chain.caucion_tna, chain.simulated);
  // @ts-expect-error the model is american or european
  await bridge.optionChain("primary", "GGAL", { model: "binomial" });
  for await (const event of bridge.subscribe({ venue: "primary", channel: "greeks", symbol: "GGAL", expiry: "2026-12-18", model: "american" })) {
    if (event.kind === "option_analytics") {
      const analytics: OptionAnalytics = event;
      console.log(analytics.symbol, analytics.vega, analytics.stale);
    }
    // @ts-expect-error a greeks subscription never delivers tickers
    if (event.kind === "ticker") console.log(event);
    break;
  }
}

const wire: ClientMessage = { op: "subscribe", id: 1, venue: "kraken", channel: "ticker", symbol: "BTC/USD" };
function kindOf(message: ServerMessage): string {
  return message.type === "event" ? (message.event as AnyEvent).kind : message.type;
}
console.log(wire, kindOf, trade, options, connect);
