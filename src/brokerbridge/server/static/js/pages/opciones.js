// Mercado › Opciones: the option chain of one underlying (GGAL by default; #/opciones/<TICKER>):
// one table per expiry, calls on the left and puts on the right of the strike, with bid, ask,
// last and volume live, and the underlying's own price at the top. In-the-money cells are shaded.

import { api, errorBox } from "../api.js";
import { el, flash, setClass, setText } from "../dom.js";
import { formatDate, formatDecimal, formatSigned, signClass } from "../format.js";
import { simulatedBadge } from "../simulated.js";

const LOCALE = "es-AR";
const VENUE = "primary";
const DEFAULT_UNDERLYING = "GGAL";
const CALL_COLS = ["volume", "last", "bid", "ask"];
const PUT_COLS = ["bid", "ask", "last", "volume"];
const DAY_MS = 86_400_000;

/** Underlyings that have options: [{ticker, names: Set of lower-case names the options use}]. */
export function underlyingsOf(instruments) {
  const nameToTicker = new Map();
  for (const d of instruments) {
    if (d.kind === "stock" && d.underlying) nameToTicker.set(d.underlying.toLowerCase(), d.ticker);
  }
  const found = new Map();
  for (const d of instruments) {
    if (d.kind !== "option" || !d.underlying) continue;
    const name = d.underlying.toLowerCase();
    const ticker = nameToTicker.get(name) ?? d.underlying;
    if (!found.has(ticker)) found.set(ticker, new Set([ticker.toLowerCase()]));
    found.get(ticker).add(name);
  }
  return [...found].map(([ticker, names]) => ({ ticker, names })).sort((a, b) => a.ticker.localeCompare(b.ticker));
}

/** {maturity → [{strike, call, put}] sorted by strike}, maturities in date order. */
export function chainOf(instruments, names) {
  const byExpiry = new Map();
  for (const d of instruments) {
    if (d.kind !== "option" || d.strike === null || !names.has((d.underlying ?? "").toLowerCase())) continue;
    const expiry = d.maturity ?? "";
    if (!byExpiry.has(expiry)) byExpiry.set(expiry, new Map());
    const strikes = byExpiry.get(expiry);
    const strike = Number(d.strike);
    if (!strikes.has(strike)) strikes.set(strike, { strike, strikeText: d.strike, call: null, put: null });
    strikes.get(strike)[d.option_type === "put" ? "put" : "call"] = d;
  }
  return [...byExpiry.keys()].sort().map((expiry) => ({
    expiry,
    rows: [...byExpiry.get(expiry).values()].sort((a, b) => a.strike - b.strike),
  }));
}

export function mount(root, { i18n, bridge, frames }, params) {
  const t = (key, values) => i18n.t(key, values);
  const handles = [];
  const quotes = new Map(); // option symbol → {cells: {field: td}, values}
  const strikeRows = []; // {strike, tr}
  let spot = { symbol: null, last: null, close: null };
  let disposed = false;

  const select = el("select", { "aria-label": t("options.underlying") });
  const spotBox = el(
    "div",
    { class: "spot panel" },
    el("span", { class: "muted" }, t("options.spot")),
    el("span", { class: "ticker" }),
    el("span", { class: "price", dataset: { testid: "spot" } }, "—"),
    el("span", { class: "change" }),
  );
  const notices = el("div");
  const chains = el("div");
  root.append(
    el(
      "section",
      { class: "page-head" },
      el("h1", {}, `${t("nav.market")} › ${t("options.title")} `, simulatedBadge(i18n, [VENUE])),
      el("div", { class: "toolbar" }, el("label", { class: "muted" }, t("options.underlying")), select, spotBox),
    ),
    notices,
    chains,
  );

  function renderSpot() {
    const [, tickerNode, priceNode, changeNode] = spotBox.children;
    setText(tickerNode, spot.ticker ?? "");
    setText(priceNode, spot.last === null ? "—" : formatDecimal(spot.last, LOCALE, 2));
    const change = spot.last !== null && spot.close ? Number(spot.last) - Number(spot.close) : null;
    const pct = change === null ? null : (change / Number(spot.close)) * 100;
    setText(changeNode, change === null ? "" : `${formatSigned(change, LOCALE, 2)} (${formatSigned(pct, LOCALE, 2)} %)`);
    setClass(changeNode, `change ${signClass(change)}`);
    const price = Number(spot.last);
    if (spot.last === null) return;
    for (const { strike, tr } of strikeRows) {
      tr.classList.toggle("itm-call", strike < price);
      tr.classList.toggle("itm-put", strike > price);
    }
    // The strike nearest the spot is "at the money".
    let nearest = null;
    for (const row of strikeRows) {
      if (nearest === null || Math.abs(row.strike - price) < Math.abs(nearest.strike - price)) nearest = row;
    }
    for (const row of strikeRows) row.tr.classList.toggle("atm", row === nearest);
  }

  function quoteCells(detail, cols, side) {
    const cells = {};
    const tds = cols.map((col) => {
      const td = el("td", { class: `num ${side}`, dataset: { col: `${side}-${col}` } });
      cells[col] = td;
      return td;
    });
    if (detail) {
      // Prices with the instrument's own precision (3 decimals for BYMA options), so columns align.
      const digits = detail.price_precision ?? 2;
      quotes.set(detail.symbol, {
        cells,
        digits,
        values: { bid: null, ask: null, last: null, volume: null },
        tone: null,
      });
      for (const td of tds) td.title = detail.symbol;
    }
    return tds;
  }

  function buildChain(chain) {
    const sections = [];
    const today = new Date();
    for (const { expiry, rows } of chain) {
      const days = Math.max(0, Math.round((new Date(`${expiry}T12:00:00`) - today) / DAY_MS));
      const head = el(
        "thead",
        {},
        el(
          "tr",
          { class: "side-head" },
          el("th", { colspan: "4" }, t("options.calls")),
          el("th", {}, ""),
          el("th", { colspan: "4" }, t("options.puts")),
        ),
        el(
          "tr",
          {},
          ...CALL_COLS.map((c) => el("th", { class: "num" }, t(`col.${c}`))),
          el("th", { dataset: { col: "strike" } }, t("col.strike")),
          ...PUT_COLS.map((c) => el("th", { class: "num" }, t(`col.${c}`))),
        ),
      );
      const body = el("tbody");
      for (const row of rows) {
        const tr = el(
          "tr",
          { dataset: { strike: row.strikeText } },
          ...quoteCells(row.call, CALL_COLS, "call"),
          el("td", { dataset: { col: "strike" } }, formatDecimal(row.strike, LOCALE, 0, 2)),
          ...quoteCells(row.put, PUT_COLS, "put"),
        );
        strikeRows.push({ strike: row.strike, tr });
        body.append(tr);
      }
      sections.push(
        el(
          "section",
          { class: "chain", dataset: { expiry } },
          el("h2", {}, t("options.expiry", { date: formatDate(expiry, LOCALE), days })),
          el("div", { class: "table-wrap" }, el("table", { class: "grid" }, head, body)),
        ),
      );
    }
    chains.replaceChildren(...sections);
  }

  function renderQuote(symbol) {
    const quote = quotes.get(symbol);
    for (const col of ["bid", "ask", "last"]) {
      setText(quote.cells[col], formatDecimal(quote.values[col], LOCALE, quote.digits));
    }
    setText(quote.cells.volume, formatDecimal(quote.values.volume, LOCALE));
    if (quote.tone) {
      flash(quote.cells.last, quote.tone);
      quote.tone = null;
    }
  }

  function onTicker(event) {
    if (event.kind !== "ticker") return;
    if (event.symbol === spot.symbol) {
      if (event.last !== null) spot.last = event.last;
      frames.schedule("opciones:spot", renderSpot);
      return;
    }
    const quote = quotes.get(event.symbol);
    if (!quote) return;
    const before = quote.values.last;
    // Primary's ticker has no volume: it comes with the session statistics (onStats).
    quote.values = {
      bid: event.bid,
      ask: event.ask,
      last: event.last ?? before,
      volume: event.volume ?? quote.values.volume,
    };
    if (before !== null && quote.values.last !== before) {
      quote.tone = Number(quote.values.last) > Number(before) ? "up" : "down";
    }
    frames.schedule(`opciones:q:${event.symbol}`, () => renderQuote(event.symbol));
  }

  function onStats(event) {
    if (event.kind !== "stats") return;
    if (event.symbol === spot.symbol) {
      if (event.close !== null) {
        spot.close = event.close;
        frames.schedule("opciones:spot", renderSpot);
      }
      return;
    }
    const quote = quotes.get(event.symbol);
    if (quote && event.volume !== null) {
      quote.values = { ...quote.values, volume: event.volume };
      frames.schedule(`opciones:q:${event.symbol}`, () => renderQuote(event.symbol));
    }
  }

  function onRefusal(error) {
    notices.replaceChildren(errorBox(error, i18n));
  }

  api(`/api/instruments?venue=${VENUE}`)
    .then((body) => {
      if (disposed) return;
      const instruments = body.instruments;
      const underlyings = underlyingsOf(instruments);
      const wanted = (params[0] ?? DEFAULT_UNDERLYING).toUpperCase();
      const chosen = underlyings.find((u) => u.ticker === wanted) ?? underlyings[0];
      select.replaceChildren(
        ...underlyings.map((u) => el("option", { value: u.ticker, selected: u === chosen }, u.ticker)),
      );
      select.addEventListener("change", () => {
        location.hash = `#/opciones/${encodeURIComponent(select.value)}`;
      });
      if (!chosen) {
        chains.replaceChildren(el("div", { class: "notice" }, t("options.none", { underlying: wanted })));
        return;
      }
      const chain = chainOf(instruments, chosen.names);
      buildChain(chain);
      const spotDetail =
        instruments.find((d) => d.kind === "stock" && d.ticker === chosen.ticker && d.settlement === "24hs") ??
        instruments.find((d) => d.kind === "stock" && d.ticker === chosen.ticker);
      spot = { symbol: spotDetail?.symbol ?? null, ticker: chosen.ticker, last: null, close: null };
      renderSpot();
      const symbols = [...quotes.keys()];
      if (spot.symbol) symbols.push(spot.symbol);
      if (symbols.length) {
        handles.push(bridge.subscribe({ venue: VENUE, channel: "ticker", symbols }, onTicker, onRefusal));
      }
      if (symbols.length) {
        handles.push(bridge.subscribe({ venue: VENUE, channel: "stats", symbols }, onStats, onRefusal));
      }
    })
    .catch((error) => {
      if (!disposed) notices.replaceChildren(errorBox(error, i18n));
    });

  return () => {
    disposed = true;
    for (const handle of handles) handle.close();
  };
}
