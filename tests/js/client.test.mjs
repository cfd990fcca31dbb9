// The JavaScript client against a real `brokerbridge serve` on the simulators (tests/js/test_node_client.py
// starts it and runs this file with `node --test`). What it checks is what a user sees: the client's
// state and events, the server's answers — no part of the bridge is replaced.
//
// Environment: BB_URL (the bridge), BB_TRADE_KEY (market + account + trade), BB_VIEW_KEY (market +
// account), BB_KRAKEN_SIM (the Kraken simulator's http address: its /_sim/faults switches),
// BB_SERVE_PID and BB_SERVE_ARGV (JSON: the command that started serve, to start it again after
// the restart test stops it).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, test } from "node:test";

import {
  BridgeClient,
  BridgeError,
  connect,
  InvalidRequest,
  NotAuthorized,
  OrderRefused,
  UnknownSymbol,
  UnknownVenue,
  VERSION,
} from "../../src/brokerbridge/server/static/client/index.js";

const URL_ = required("BB_URL");
const TRADE_KEY = required("BB_TRADE_KEY");
const VIEW_KEY = required("BB_VIEW_KEY");
const KRAKEN_SIM = required("BB_KRAKEN_SIM");
const LIMIT_MS = 30_000; // any one wait: generous for a shared CI machine, never a pause by itself
const PAIR = "BTC/USD";

const clients = [];
const children = [];
after(async () => {
  for (const client of clients) client.close();
  for (const child of children) await stopped(child);
});

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this file through tests/js/test_node_client.py`);
  return value;
}

function client(options) {
  const made = new BridgeClient({ url: URL_, ...options });
  clients.push(made);
  return made;
}

/** Resolve with the first `detail` of `type` from `client` for which `check` holds. */
function next(target, type, check = () => true, limit = LIMIT_MS) {
  return new Promise((resolve, reject) => {
    const seen = [];
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no '${type}' event as expected within ${limit} ms; saw ${JSON.stringify(seen.slice(-5))}`));
    }, limit);
    const off = target.on(type, (detail) => {
      seen.push(detail);
      if (!check(detail)) return;
      clearTimeout(timer);
      off();
      resolve(detail);
    });
  });
}

/** A subscription whose events are all kept; `until(check)` waits for one (kept or to come). */
function recorded(bridge, request) {
  const all = [];
  const waiters = new Set();
  const sub = bridge.subscribe(request, (event) => {
    all.push(event);
    for (const waiter of [...waiters]) waiter();
  });
  /** Resolve with the events from index `from` up to the first for which `check` holds. */
  const until = (check, { from = 0, limit = LIMIT_MS } = {}) =>
    new Promise((resolve, reject) => {
      const look = () => {
        const index = all.findIndex((event, i) => i >= from && check(event));
        if (index < 0) return false;
        waiters.delete(look);
        clearTimeout(timer);
        resolve(all.slice(from, index + 1));
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(look);
        reject(new Error(`not seen within ${limit} ms; got ${JSON.stringify(all.slice(from).map((e) => `${e.kind}:${e.state ?? ""}`))}`));
      }, limit);
      if (!look()) waiters.add(look);
    });
  return { sub, all, until, mark: () => all.length };
}

/** Resolve once process `pid` (not ours: the pytest driver's child) has exited, zombie or gone. */
async function exited(pid, limit = LIMIT_MS) {
  const { readFile } = await import("node:fs/promises");
  for (const deadline = Date.now() + limit; Date.now() < deadline; ) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
    if (stat === null || / Z /.test(stat.slice(stat.lastIndexOf(")")))) return;
    await new Promise((resolve) => setTimeout(resolve, 100)); // poll: another process's exit has no event here
  }
  throw new Error(`serve (pid ${pid}) did not exit within ${limit} ms of SIGTERM`);
}

function stopped(child) {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

async function simFaults(switches) {
  const answer = await fetch(`${KRAKEN_SIM}/_sim/faults`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(switches),
  });
  assert.equal(answer.status, 200, await answer.text());
}

/** Integer units of `increment` (a decimal string) ↔ decimal strings, exactly. */
function units(increment) {
  const places = (increment.split(".")[1] ?? "").length;
  const scale = 10n ** BigInt(places);
  const step = BigInt(increment.replace(".", ""));
  const toUnits = (text) => {
    const [whole, frac = ""] = text.split(".");
    return BigInt(whole) * scale + BigInt((frac + "0".repeat(places)).slice(0, places) || "0");
  };
  const toText = (value) => {
    const digits = value.toString().padStart(places + 1, "0");
    return places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
  };
  return { step, toUnits, toText, places };
}

test("the package's version is the Python package's", async () => {
  const { readFile } = await import("node:fs/promises");
  const manifest = JSON.parse(await readFile(new URL("../../src/brokerbridge/server/static/client/package.json", import.meta.url), "utf8"));
  assert.equal(manifest.version, VERSION);
});

test("connect with a key, subscribe, read events by iteration; leaving the loop unsubscribes", async () => {
  const bridge = client({ key: TRADE_KEY });
  const states = [];
  bridge.on("state", ({ state }) => states.push(state));
  bridge.connect();
  await next(bridge, "state", ({ state }) => state === "live");
  assert.deepEqual(states.slice(0, 2), ["connecting", "live"]);

  const sub = bridge.subscribe({ venue: "kraken", channel: "ticker", symbol: PAIR });
  const kinds = [];
  for await (const event of sub) {
    kinds.push(event.kind);
    if (event.kind === "ticker") {
      assert.equal(event.symbol, PAIR);
      assert.match(event.bid, /^\d+(\.\d+)?$/); // decimals stay strings, the venue's digits
      break;
    }
  }
  assert.equal(kinds[0], "status"); // a subscriber joining gets the stream's state first
  assert.equal(sub.closed, true);
  assert.deepEqual(sub.streams, [`kraken:ticker:${PAIR}`]);
  assert.equal(bridge.streams.get(`kraken:ticker:${PAIR}`), "live");
  assert.equal(typeof (await bridge.ping()), "number");
});

test("a refused subscription ends with its typed error; a batch keeps going", async () => {
  const bridge = connect({ url: URL_ });
  clients.push(bridge);
  const refused = bridge.subscribe({ venue: "nowhere", channel: "ticker", symbol: PAIR });
  await assert.rejects(
    (async () => {
      for await (const _ of refused) {
        // nothing arrives before the refusal
      }
    })(),
    (error) => error instanceof UnknownVenue && error.code === "unknown_venue" && error.remedy !== "",
  );
  // Account data without a key: not_authorized, by callback this time.
  const denied = await new Promise((resolve) => bridge.subscribe({ venue: "kraken", channel: "balances" }, null, resolve));
  assert.ok(denied instanceof NotAuthorized, String(denied));
  assert.equal(denied.code, "not_authorized");
});

test("a wrong API key: the client closes with NotAuthorized, and its subscriptions throw it", async () => {
  const bridge = client({ key: "not-a-key-of-this-bridge-0123" });
  const closed = next(bridge, "state", ({ state }) => state === "closed");
  const sub = bridge.subscribe({ venue: "kraken", channel: "ticker", symbol: PAIR });
  await assert.rejects(
    (async () => {
      for await (const _ of sub) {
        // nothing comes before the refusal
      }
    })(),
    (error) => error instanceof NotAuthorized && error.message === "invalid API key",
  );
  assert.match((await closed).reason, /refused the key/);
  await assert.rejects(bridge.place({ venue: "kraken", symbol: PAIR, side: "buy", qty: "1", price: "1" }), (error) => error.code === "closed");
});

test("REST helpers: venues, book, balances, open orders, fills; typed refusals with the HTTP status", async () => {
  const bridge = client({ key: VIEW_KEY });
  const venues = await bridge.venues();
  assert.deepEqual(venues.map((v) => v.venue).sort(), ["kraken", "primary"]);
  assert.ok(venues.every((v) => v.simulated));
  const book = await bridge.book("kraken", PAIR, 10);
  assert.equal(book.book.kind, "book_snapshot");
  assert.equal(book.book.bids.length, 10);
  for (const deadline = Date.now() + LIMIT_MS; ; ) {
    const ready = await bridge.ready(); // 200 or 503: the body either way
    assert.ok(Date.now() < deadline, `kraken's account not ready: ${JSON.stringify(ready)}`);
    if (ready.venues.kraken?.state === "ready") break;
    await new Promise((resolve) => setTimeout(resolve, 200)); // poll: readiness has no event to wait on
  }
  const balances = await bridge.balances("kraken");
  assert.ok(balances.some((b) => b.asset === "USD"));
  assert.ok(Array.isArray(await bridge.openOrders("kraken")));
  const page = await bridge.fillsPage("kraken", { limit: 5 });
  assert.ok(Array.isArray(page.fills));
  const every = [];
  for await (const fill of bridge.allFills("kraken", { pageSize: 50 })) every.push(fill);
  assert.ok(every.length >= page.fills.length);
  await assert.rejects(bridge.ticker("kraken", "NOPE/NOPE"), (error) => error instanceof UnknownSymbol && error.status === 404);
  const anonymous = client({});
  await assert.rejects(anonymous.balances("kraken"), (error) => error instanceof NotAuthorized && error.status === 401);
});

test("options: optionChain and its CSV, a greeks subscription with expiry and model, typed refusals", async () => {
  const bridge = client({ key: VIEW_KEY });
  const chain = await bridge.optionChain("primary", "GGAL");
  assert.equal(chain.underlying, "GGAL");
  assert.equal(chain.simulated, true);
  assert.ok(chain.expiries.length >= 1 && chain.expiries[0].options.length >= 1);
  const expiry = chain.expiries[0].expiry;
  assert.match(expiry, /^\d{4}-\d{2}-\d{2}$/);
  const one = await bridge.optionChain("primary", "GGAL", { expiry, model: "european" });
  assert.deepEqual(one.expiries.map((e) => e.expiry), [expiry]);
  assert.equal(one.model, "european");
  const csv = await bridge.optionChainCsv("primary", "GGAL", { expiry });
  const lines = csv.trimEnd().split("\r\n");
  assert.ok(lines[0].startsWith("expiry,days,business_days,symbol,"));
  assert.equal(lines.length - 1, one.expiries[0].options.length);
  await assert.rejects(bridge.optionChain("primary", "NOPE"), (error) => error instanceof UnknownSymbol && error.status === 404);
  await assert.rejects(bridge.optionChain("primary", "GGAL", { expiry: "2031-01-17" }), (error) => error instanceof InvalidRequest && error.remedy.includes(expiry));

  bridge.connect();
  const sub = bridge.subscribe({ venue: "primary", channel: "greeks", symbol: "GGAL", expiry, model: "european" });
  for await (const event of sub) {
    if (event.kind === "option_analytics") {
      assert.equal(event.expiry, expiry);
      assert.equal(event.model, "european");
      assert.equal(event.underlying, "GGAL");
      break;
    }
  }
  assert.deepEqual(sub.streams, [`primary:greeks:GGAL:expiry=${expiry}:model=european`]);
  const wrong = bridge.subscribe({ venue: "primary", channel: "ticker", symbol: "MERV - XMEV - GGAL - 24hs", expiry });
  await assert.rejects(
    (async () => {
      for await (const event of wrong) void event;
    })(),
    (error) => error instanceof InvalidRequest && /greeks/.test(error.message),
  );
});

test("orders over /ws: place, amend and cancel answered by their acks; a refusal is typed with its rule", async () => {
  const bridge = client({ key: TRADE_KEY }).connect();
  const instrument = await new Promise((resolve, reject) => {
    const sub = bridge.subscribe({ venue: "kraken", channel: "instruments" }, (event) => {
      if (event.kind === "instrument" && event.symbol === PAIR) {
        sub.close();
        resolve(event);
      }
    }, reject);
  });
  const { ticker } = await bridge.ticker("kraken", PAIR);
  const price = units(instrument.price_increment);
  const low = (price.toUnits(ticker.bid) / 2n / price.step) * price.step; // far below: rests, never fills
  const qty = instrument.qty_min;

  const executions = recorded(bridge, { venue: "kraken", channel: "executions" });
  const clientOrderId = `js-${Date.now().toString(36)}`; // Kraken: at most 18 characters
  const ack = await bridge.place({ venue: "kraken", symbol: PAIR, side: "buy", qty, type: "limit", price: price.toText(low), client_order_id: clientOrderId });
  assert.equal(ack.status, "accepted");
  assert.equal(ack.client_order_id, clientOrderId);
  assert.ok(ack.order_id);
  await executions.until((event) => event.kind === "order_update" && event.order_id === ack.order_id);
  const open = await bridge.openOrders("kraken");
  assert.ok(open.some((order) => order.order_id === ack.order_id));

  const again = await bridge.place({ venue: "kraken", symbol: PAIR, side: "buy", qty, type: "limit", price: price.toText(low), client_order_id: clientOrderId });
  assert.equal(again.duplicate, true); // the same client order id: never a second order
  assert.equal(again.order_id, ack.order_id);

  const amended = await bridge.amend({ venue: "kraken", order_id: ack.order_id, price: price.toText(low - price.step) });
  assert.equal(amended.status, "accepted");
  assert.equal(amended.order_id, ack.order_id);

  const canceled = await bridge.cancel("kraken", ack.order_id);
  assert.equal(canceled.canceled, 1);
  assert.equal(canceled.order_id, ack.order_id);

  const finer = price.toText(low) + (price.places ? "5" : ".5"); // one digit more than the pair takes
  const refusal = await bridge.place({ venue: "kraken", symbol: PAIR, side: "buy", qty, type: "limit", price: finer }).then(
    (ack) => ack,
    (error) => error,
  );
  assert.ok(refusal instanceof OrderRefused, String(refusal));
  assert.equal(refusal.code, "order_refused");
  assert.equal(refusal.rule, "price_decimals"); // nothing reached the venue
  assert.match(refusal.remedy, /^use /);
  assert.equal(refusal.status, null); // over /ws, not REST

  const viewer = client({ key: VIEW_KEY }).connect();
  await assert.rejects(viewer.cancel("kraken", ack.order_id), (error) => error instanceof NotAuthorized && /trade/.test(error.message));
  executions.sub.close();
});

test("a browser-style client: getToken is asked on every (re)connect", async () => {
  let asked = 0;
  const getToken = async () => {
    asked += 1;
    const answer = await fetch(`${URL_}/api/token`, { method: "POST", headers: { Authorization: `Bearer ${VIEW_KEY}` } });
    assert.equal(answer.status, 200);
    return (await answer.json()).token;
  };
  const bridge = client({ getToken });
  const balances = recorded(bridge, { venue: "kraken", channel: "balances" }); // account data: the token's scopes
  await balances.until((event) => event.kind === "balance_snapshot");
  const before = asked;
  const from = balances.mark();
  bridge.reconnect();
  await next(bridge, "state", ({ state }) => state === "live");
  await balances.until((event) => event.kind === "balance_snapshot", { from });
  assert.equal(asked, before + 1);
});

test("an upstream drop shows as the bridge's status events on the subscription", async () => {
  const bridge = client({ key: VIEW_KEY });
  const ticker = recorded(bridge, { venue: "kraken", channel: "ticker", symbol: PAIR });
  await ticker.until((event) => event.kind === "ticker");
  const statuses = next(bridge, "status", (s) => s.stream === `kraken:ticker:${PAIR}` && s.state !== "live");
  const from = ticker.mark();
  await simFaults({ drop_now: true });
  const down = await statuses;
  assert.ok(["reconnecting", "polling", "resyncing"].includes(down.state), down.state);
  const back = await ticker.until((event) => event.kind === "status" && event.state === "live", { from });
  assert.ok(back.some((event) => event.kind === "status" && event.state === down.state));
  await ticker.until((event) => event.kind === "ticker", { from: from + back.length });
  assert.equal(bridge.state, "live"); // the client's own link never dropped
});

test("the watchdog replaces a link that went silent; subscriptions come back with a gap", async () => {
  const pid = Number(required("BB_SERVE_PID"));
  const bridge = client({ key: VIEW_KEY, heartbeatTimeout: 3, backoff: { initial: 0.2, cap: 1 } });
  const ticker = recorded(bridge, { venue: "kraken", channel: "ticker", symbol: PAIR });
  await ticker.until((event) => event.kind === "ticker");
  const from = ticker.mark();
  const silent = next(bridge, "state", ({ state }) => state === "reconnecting");
  process.kill(pid, "SIGSTOP"); // the server hangs: no close, no heartbeat
  let reason;
  try {
    ({ reason } = await silent);
  } finally {
    process.kill(pid, "SIGCONT");
  }
  assert.match(reason, /no message from the bridge for 3 s/);
  const seen = await ticker.until((event) => event.kind === "ticker" && ticker.all.slice(from).some((e) => e.kind === "gap"), { from });
  const own = seen.find((event) => event.kind === "status" && event.state === "reconnecting");
  assert.ok(own, "a reconnecting status for the subscription");
  const gap = seen.find((event) => event.kind === "gap");
  assert.equal(gap.stream, `kraken:ticker:${PAIR}`);
  assert.ok(gap.end > gap.start);
  assert.equal(bridge.state, "live");
});

test("serve restarted: the client reconnects with backoff, resubscribes, reports status and the gap", async () => {
  const pid = Number(required("BB_SERVE_PID"));
  const argv = JSON.parse(required("BB_SERVE_ARGV"));
  // A short silence limit: a handshake to a server that is shutting down hangs, and is given up.
  const bridge = client({ key: TRADE_KEY, heartbeatTimeout: 3, backoff: { initial: 0.2, factor: 2, cap: 2 } });
  const ticker = recorded(bridge, { venue: "kraken", channel: "ticker", symbol: PAIR });
  const batch = recorded(bridge, { venue: "kraken", channel: "trades", symbols: [PAIR, "ETH/USD"] });
  await ticker.until((event) => event.kind === "ticker");
  const from = ticker.mark();
  const batchFrom = batch.mark();
  const states = [];
  bridge.on("state", (detail) => states.push(detail));

  const down = next(bridge, "state", ({ state }) => state === "reconnecting");
  process.kill(pid, "SIGTERM"); // every client gets 1001 "server shutting down"
  const { reason } = await down;
  assert.match(reason, /1001/);
  // While it is away an order op is not lost silently: it waits to be sent, or is refused as not sent.
  const waiting = bridge.place({ venue: "kraken", symbol: PAIR, side: "buy", qty: "0.00000001", type: "limit", price: "1.0" }).catch((error) => error);
  await next(bridge, "state", ({ state, attempt }) => state === "reconnecting" && attempt >= 2); // a retry failed: nobody listens

  await exited(pid); // its port is free again
  const child = spawn(argv[0], argv.slice(1), { stdio: "ignore" });
  children.push(child);
  await next(bridge, "state", ({ state }) => state === "live", 120_000); // serve starts its simulators first
  // The gap first, then a ticker after it (a ticker that came between the mark and the kill is
  // not the one that proves the stream came back).
  const toGap = await ticker.until((event) => event.kind === "gap", { from, limit: 60_000 });
  const seen = [...toGap, ...(await ticker.until((event) => event.kind === "ticker", { from: from + toGap.length, limit: 60_000 }))];
  const kinds = seen.map((event) => `${event.kind}:${event.state ?? ""}`);
  assert.ok(kinds.includes("status:reconnecting"), kinds.join(","));
  assert.ok(kinds.indexOf("gap:") < kinds.lastIndexOf("ticker:"), kinds.join(","));
  assert.ok(kinds.indexOf("status:reconnecting") < kinds.indexOf("gap:"), kinds.join(","));
  assert.ok(bridge.reconnects >= 1);
  // Retries backed off: growing waits, each within the cap (+ jitter below it).
  const waits = states.filter((s) => s.retryAt !== null).map((s) => s.attempt);
  assert.ok(waits.length >= 2 && Math.max(...waits) >= 2, JSON.stringify(states));
  // The batch came back too, both symbols.
  await batch.until((event) => event.kind === "status" && event.state === "live", { from: batchFrom });
  assert.deepEqual(batch.sub.streams, [`kraken:trades:${PAIR}`, "kraken:trades:ETH/USD"]);
  // Sent once the link was back (refused: below the pair's minimum), or refused as never sent.
  const answered = await waiting;
  assert.ok(answered instanceof BridgeError && ["order_refused", "not_connected"].includes(answered.code), String(answered));
});
