// Crypto (Kraken): the pairs the venue lists with their last price and 24 h change; for the
// selected pair (#/crypto/BTC%2FUSD) the order book as a ladder and a depth chart (the bridge has
// verified the venue's checksum before any level reaches us), the trade tape, and candles with a
// choice of interval. Every render waits for the next animation frame.

import { el, flash, segmented, setClass, setText } from "../dom.js";
import { formatDecimal, formatFixed, formatSigned, formatTime, signClass } from "../format.js";
import { ChartCanvas } from "../charts/canvas.js";
import { drawCandles } from "../charts/candles.js";
import { drawDepth } from "../charts/depth.js";
import { simulatedBadge } from "../simulated.js";

const VENUE = "kraken";
const DEFAULT_PAIR = "BTC/USD";
const BOOK_DEPTH = 25; // the depth chart shows all of it; the ladder the top LADDER_LEVELS
const LADDER_LEVELS = 12;
const TAPE_LENGTH = 60;
const INTERVALS = [
  [1, "1m"],
  [5, "5m"],
  [15, "15m"],
  [60, "1h"],
  [240, "4h"],
  [1440, "1D"],
];

/** A price-level book kept from book_snapshot / book_update events (qty "0" removes a level). */
export class Book {
  constructor(depth) {
    this.depth = depth;
    this.bids = new Map();
    this.asks = new Map();
    this.checksum = null;
  }

  apply(event) {
    if (event.kind === "book_snapshot") {
      this.bids.clear();
      this.asks.clear();
    }
    for (const [side, levels] of [
      [this.bids, event.bids],
      [this.asks, event.asks],
    ]) {
      for (const [price, qty] of levels) {
        if (Number(qty) === 0) side.delete(Number(price));
        else side.set(Number(price), [price, qty]);
      }
    }
    this.checksum = event.checksum ?? null;
    this.trim();
  }

  trim() {
    for (const [side, best] of [
      [this.bids, (a, b) => b - a],
      [this.asks, (a, b) => a - b],
    ]) {
      if (side.size <= this.depth) continue;
      const keep = [...side.keys()].sort(best).slice(0, this.depth);
      const wanted = new Set(keep);
      for (const price of [...side.keys()]) if (!wanted.has(price)) side.delete(price);
    }
  }

  /** [[priceText, qtyText]] best first. */
  levels(side) {
    const map = side === "bid" ? this.bids : this.asks;
    const order = side === "bid" ? (a, b) => b - a : (a, b) => a - b;
    return [...map.keys()].sort(order).map((price) => map.get(price));
  }
}

export function mount(root, { i18n, bridge, frames }, params) {
  const t = (key, values) => i18n.t(key, values);
  const locale = i18n.locale;
  const selected = params[0] || DEFAULT_PAIR;
  const pairs = new Map(); // symbol → {tr, cells, ticker, precision}
  const handles = [];
  const pairHandles = [];
  let precision = 2;
  let qtyPrecision = 8;
  let candleHandle = null;
  let interval = 1;

  // -- layout ---------------------------------------------------------------------------------
  const pairBody = el("tbody");
  const pairsPanel = el(
    "section",
    { class: "panel pairs" },
    el("h2", {}, t("crypto.pairs")),
    el(
      "table",
      { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", {}, "Par"), el("th", { class: "num" }, t("col.last")), el("th", { class: "num" }, "24h %"))),
      pairBody,
    ),
  );
  const ladderBody = el("tbody");
  const spreadCell = el("td", { colspan: "3" });
  const checksumNote = el("div", { class: "muted" });
  const bookPanel = el(
    "section",
    { class: "panel book" },
    el("h2", {}, `${t("crypto.book")} · ${selected}`),
    el(
      "table",
      { class: "grid ladder", dataset: { testid: "ladder" } },
      el(
        "thead",
        {},
        el("tr", {}, el("th", { class: "num" }, t("col.price")), el("th", { class: "num" }, t("col.qty")), el("th", { class: "num" }, t("col.total"))),
      ),
      ladderBody,
    ),
    checksumNote,
  );
  const ladderRows = { ask: [], bid: [] };
  const makeLadderRow = (side, index) => {
    const cells = {
      price: el("td", { class: "num", dataset: { col: "price" } }),
      qty: el("td", { class: "num", dataset: { col: "qty" } }),
      total: el("td", { class: "num", dataset: { col: "total" } }),
    };
    const tr = el("tr", { class: side, dataset: { side, level: String(index) } }, cells.price, cells.qty, cells.total);
    return { tr, cells };
  };
  for (let i = LADDER_LEVELS - 1; i >= 0; i--) ladderRows.ask[i] = makeLadderRow("ask", i);
  for (let i = 0; i < LADDER_LEVELS; i++) ladderRows.bid[i] = makeLadderRow("bid", i);
  ladderBody.append(
    ...[...ladderRows.ask].reverse().map((r) => r.tr),
    el("tr", { class: "mid" }, spreadCell),
    ...ladderRows.bid.map((r) => r.tr),
  );

  const depthCanvas = el("canvas", { class: "chart", dataset: { testid: "depth" } });
  const candleCanvas = el("canvas", { class: "chart", dataset: { testid: "candles" } });
  const intervalChoice = segmented(
    INTERVALS.map(([value, label]) => [String(value), label]),
    String(interval),
    (value) => {
      interval = Number(value);
      subscribeCandles();
    },
    t("crypto.candles"),
  );
  intervalChoice.dataset.filter = "interval";
  const tapeBody = el("tbody");
  const charts = el(
    "div",
    { class: "charts" },
    el(
      "section",
      { class: "panel" },
      el("div", { class: "chart-head" }, el("h2", {}, `${t("crypto.candles")} · ${selected}`), intervalChoice),
      candleCanvas,
    ),
    el(
      "div",
      { class: "lower" },
      el("section", { class: "panel" }, el("h2", {}, t("crypto.depth")), depthCanvas),
      el(
        "section",
        { class: "panel tape" },
        el("h2", {}, t("crypto.trades")),
        el(
          "table",
          { class: "grid", dataset: { testid: "tape" } },
          el(
            "thead",
            {},
            el("tr", {}, el("th", {}, t("col.time")), el("th", { class: "num" }, t("col.price")), el("th", { class: "num" }, t("col.qty"))),
          ),
          tapeBody,
        ),
      ),
    ),
  );
  root.append(
    el("section", { class: "page-head" }, el("h1", {}, "Crypto · Kraken ", simulatedBadge(i18n, [VENUE]))),
    el("div", { class: "crypto" }, pairsPanel, bookPanel, charts),
  );

  const formatPrice = (p) => formatFixed(p, locale, precision);
  const formatQty = (q) => formatFixed(q, locale, q >= 100 ? 0 : 2);

  // -- book -----------------------------------------------------------------------------------
  const book = new Book(BOOK_DEPTH);
  const depthChart = new ChartCanvas(depthCanvas, 210, frames, "crypto:depth", (ctx, w, h) => {
    const nums = (side) => book.levels(side).map(([p, q]) => [Number(p), Number(q)]);
    drawDepth(ctx, w, h, nums("bid"), nums("ask"), formatPrice, formatQty);
  });

  function renderLadder() {
    for (const side of ["ask", "bid"]) {
      const levels = book.levels(side).slice(0, LADDER_LEVELS);
      let total = 0;
      const totals = levels.map(([, qty]) => (total += Number(qty)));
      const max = totals[totals.length - 1] || 1;
      ladderRows[side].forEach((row, i) => {
        const level = levels[i];
        setText(row.cells.price, level ? formatDecimal(level[0], locale, precision) : "");
        setText(row.cells.qty, level ? formatDecimal(level[1], locale) : "");
        setText(row.cells.total, level ? formatFixed(totals[i], locale, Math.min(qtyPrecision, 4)) : "");
        row.tr.style.setProperty("--fill", level ? `${((totals[i] / max) * 100).toFixed(1)}%` : "0%");
      });
    }
    const bestBid = book.levels("bid")[0];
    const bestAsk = book.levels("ask")[0];
    setText(
      spreadCell,
      bestBid && bestAsk ? `${t("crypto.spread")}: ${formatFixed(Number(bestAsk[0]) - Number(bestBid[0]), locale, precision)}` : "",
    );
    setText(checksumNote, book.checksum !== null ? `✓ ${t("crypto.checksum")} (${book.checksum})` : "");
  }

  function onBook(event) {
    if (event.kind !== "book_snapshot" && event.kind !== "book_update") return;
    book.apply(event);
    frames.schedule("crypto:ladder", renderLadder);
    depthChart.request();
  }

  // -- trades ---------------------------------------------------------------------------------
  const tape = [];
  const tapeIds = new Set(); // a reconnect replays the venue's recent trades: show each once
  function renderTape() {
    const rows = tape.map((trade) =>
      el(
        "tr",
        { dataset: { tradeId: trade.trade_id } },
        el("td", { class: "muted" }, formatTime(trade.ts, locale)),
        el("td", { class: `num ${trade.side}`, dataset: { col: "price" } }, formatDecimal(trade.price, locale, precision)),
        el("td", { class: "num" }, formatDecimal(trade.qty, locale)),
      ),
    );
    tapeBody.replaceChildren(...rows);
  }

  function onTrade(event) {
    if (event.kind !== "trade" || tapeIds.has(event.trade_id)) return;
    tapeIds.add(event.trade_id);
    tape.unshift(event);
    while (tape.length > TAPE_LENGTH) tapeIds.delete(tape.pop().trade_id);
    frames.schedule("crypto:tape", renderTape);
  }

  // -- candles --------------------------------------------------------------------------------
  let candles = new Map(); // begin → candle (numbers)
  const candleChart = new ChartCanvas(candleCanvas, 300, frames, "crypto:candles", (ctx, w, h) => {
    const series = [...candles.values()].sort((a, b) => a.begin - b.begin);
    const timeOf = (s) => (interval >= 1440 ? new Date(s * 1000).toLocaleDateString(locale, { day: "2-digit", month: "2-digit" }) : formatTime(s, locale).slice(0, 5));
    drawCandles(ctx, w, h, series, formatPrice, timeOf);
  });

  function onCandle(event) {
    if (event.kind !== "candle" || event.interval !== interval) return;
    candles.set(event.begin, {
      begin: event.begin,
      open: Number(event.open),
      high: Number(event.high),
      low: Number(event.low),
      close: Number(event.close),
      volume: Number(event.volume),
    });
    candleChart.request();
  }

  function subscribeCandles() {
    candleHandle?.close();
    candles = new Map();
    candleChart.request();
    candleHandle = bridge.subscribe({ venue: VENUE, channel: "candles", symbol: selected, interval }, onCandle);
  }

  // -- pairs ----------------------------------------------------------------------------------
  /** A row for a pair not seen before; false when it is already listed (a replay after reconnect). */
  function addPair(event) {
    if (pairs.has(event.symbol)) return false;
    const cells = {
      symbol: el("td", { dataset: { col: "symbol" } }, event.symbol),
      last: el("td", { class: "num", dataset: { col: "last" } }),
      change: el("td", { class: "num", dataset: { col: "change_pct" } }),
    };
    const tr = el("tr", { dataset: { symbol: event.symbol }, "aria-selected": String(event.symbol === selected) }, cells.symbol, cells.last, cells.change);
    tr.addEventListener("click", () => {
      location.hash = `#/crypto/${encodeURIComponent(event.symbol)}`;
    });
    pairs.set(event.symbol, { tr, cells, precision: event.price_precision, ticker: null, tone: null });
    pairBody.append(tr);
    if (event.symbol === selected) {
      precision = event.price_precision;
      qtyPrecision = event.qty_precision;
      frames.schedule("crypto:ladder", renderLadder);
      depthChart.request();
      candleChart.request();
    }
    return true;
  }

  function renderPair(symbol) {
    const pair = pairs.get(symbol);
    const tick = pair.ticker;
    setText(pair.cells.last, formatDecimal(tick.last, locale, pair.precision));
    const pct = tick.change_pct === null ? null : Number(tick.change_pct);
    setText(pair.cells.change, pct === null ? "" : `${formatSigned(pct, locale, 2)} %`);
    setClass(pair.cells.change, `num ${signClass(pct)}`);
    if (pair.tone) {
      flash(pair.tr, pair.tone);
      pair.tone = null;
    }
  }

  function onTicker(event) {
    if (event.kind !== "ticker") return;
    const pair = pairs.get(event.symbol);
    if (!pair) return;
    const before = pair.ticker?.last;
    if (before !== undefined && before !== event.last) pair.tone = Number(event.last) > Number(before) ? "up" : "down";
    pair.ticker = event;
    frames.schedule(`crypto:pair:${event.symbol}`, () => renderPair(event.symbol));
  }

  let tickerHandle = null;
  function onInstrument(event) {
    if (event.kind !== "instrument" || !addPair(event)) return;
    // Once per burst of instruments: one batch ticker subscription for every pair listed so far.
    frames.schedule("crypto:tickers", () => {
      tickerHandle?.close();
      tickerHandle = bridge.subscribe({ venue: VENUE, channel: "ticker", symbols: [...pairs.keys()] }, onTicker);
    });
  }

  handles.push(bridge.subscribe({ venue: VENUE, channel: "instruments" }, onInstrument));
  pairHandles.push(bridge.subscribe({ venue: VENUE, channel: "book", symbol: selected, depth: BOOK_DEPTH }, onBook));
  pairHandles.push(bridge.subscribe({ venue: VENUE, channel: "trades", symbol: selected }, onTrade));
  subscribeCandles();

  return () => {
    for (const handle of [...handles, ...pairHandles]) handle.close();
    tickerHandle?.close();
    candleHandle?.close();
    depthChart.dispose();
    candleChart.dispose();
  };
}
