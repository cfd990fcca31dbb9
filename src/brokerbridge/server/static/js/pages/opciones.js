// Mercado › Opciones: the option chain of one underlying (GGAL by default; #/opciones/<TICKER>)
// with its analytics. The snapshot is `GET /api/options/primary/<TICKER>` (every expiry, the rate,
// the model); then the /ws `greeks` channel sends one OptionAnalytics event per option whenever
// the option, its underlying or the rate ticks. Per expiry: a header (days, BYMA business days, a
// CSV link), the chain (calls left, strike and the put-call-parity rate in the middle, puts right;
// IV and greek columns behind a toggle) and the smile (IV by strike). Prices, IVs and rates are
// shown as the bridge computed them — the page computes no figure of its own. Events only update
// models; rows, headers and charts render once per animation frame (frame.js).

import { api, errorBox } from "../api.js";
import { ChartCanvas } from "../charts/canvas.js";
import { drawSmile, smileOf } from "../charts/smile.js";
import { el, flash, segmented, setClass, setText } from "../dom.js";
import {
  ANALYTICS,
  CALL_COLS,
  COMPUTED,
  EMPTY,
  KIND,
  PUT_COLS,
  chainPath,
  figureText,
  reasonFor,
  rowsOf,
  staleReason,
} from "../figures.js";
import { formatDate, formatDecimal, formatFixed, formatPercent, formatSigned, signClass } from "../format.js";
import { simulatedBadge } from "../simulated.js";

const LOCALE = "es-AR";
const VENUE = "primary";
const DEFAULT_UNDERLYING = "GGAL";
const MODELS = ["american", "european"];
const SHOW_ANALYTICS_KEY = "brokerbridge.options.analytics"; // "on": IV and greek columns shown
const MODEL_KEY = "brokerbridge.options.model";
// The caución's quote is in the snapshot only (events carry the rate the model used): when an
// event's rate moves, the header is read again, at most this often.
const RATES_REFRESH_MS = 3000;
const SMILE_HEIGHT = 200;
const QUOTE_ABSENT = { bid: "options.no_bid", ask: "options.no_ask", last: "options.no_last" };

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

function storedModel() {
  const saved = globalThis.localStorage?.getItem(MODEL_KEY);
  return MODELS.includes(saved) ? saved : null; // null: the server's [options] model
}

export function mount(root, { i18n, bridge, frames }, params) {
  const t = (key, values) => i18n.t(key, values);
  const underlying = (params[0] ?? DEFAULT_UNDERLYING).toUpperCase();
  const options = new Map(); // option symbol → {symbol, expiry, side, digits, cells, event, volume}
  const expiries = new Map(); // expiry → {days, sessions, chart, canvas, symbols}
  const strikeRows = []; // {strike, tr, parity: td, call, put} (call/put: option symbols)
  const precision = new Map(); // symbol → price digits (instrument details)
  const volumes = new Map(); // option symbol → session volume (stats), kept across model switches
  let chain = null; // the snapshot's chain-wide figures (rate, caución, model, reasons)
  let model = storedModel();
  let showAnalytics = globalThis.localStorage?.getItem(SHOW_ANALYTICS_KEY) === "on";
  let spot = { symbol: null, last: null, close: null }; // the market's last trade (ticker, stats)
  let modelSpot = null; // the price the figures were computed at (the underlying's mid, else last)
  let greeks = null; // the greeks subscription (replaced on a model switch)
  let marketHandles = [];
  let generation = 0; // a model switch makes answers and events of the previous one stale
  let ratesTimer = null;
  let disposed = false;

  const page = el("div", { class: "options", dataset: { analytics: showAnalytics ? "on" : "off" } });
  const select = el("select", { "aria-label": t("options.underlying") });
  const spotBox = el(
    "div",
    { class: "spot panel" },
    el("span", { class: "muted" }, t("options.spot")),
    el("span", { class: "ticker" }, underlying),
    el("span", { class: "price", dataset: { testid: "spot" } }, EMPTY),
    el("span", { class: "change" }),
  );
  const modelControl = segmented(
    MODELS.map((m) => [m, t(`options.model.${m}`)]),
    model,
    (value) => switchModel(value),
    t("options.model"),
  );
  modelControl.dataset.testid = "model";
  for (const button of modelControl.querySelectorAll("button")) button.title = t(`options.model.${button.dataset.value}.title`);
  const toggle = el(
    "button",
    { type: "button", class: "btn ghost small", "aria-pressed": String(showAnalytics), dataset: { testid: "analytics-toggle" } },
    t("options.analytics"),
  );
  toggle.title = t("options.analytics.title");
  toggle.addEventListener("click", () => setAnalytics(!showAnalytics));
  const csv = el("a", { class: "btn ghost small", dataset: { testid: "options-csv" } }, t("options.csv"));
  const rates = el("div", { class: "rates panel", dataset: { testid: "rates" } });
  const notices = el("div");
  const chains = el("div", { dataset: { testid: "chains" } });
  page.append(
    el(
      "section",
      { class: "page-head" },
      el("h1", {}, `${t("nav.market")} › ${t("options.title")} `, simulatedBadge(i18n, [VENUE])),
      el(
        "div",
        { class: "toolbar" },
        el("label", { class: "muted" }, t("options.underlying")),
        select,
        spotBox,
        modelControl,
        toggle,
        csv,
      ),
    ),
    rates,
    notices,
    chains,
  );
  root.append(page);

  // -- controls ----------------------------------------------------------------------------------
  function setAnalytics(on) {
    showAnalytics = on;
    globalThis.localStorage?.setItem(SHOW_ANALYTICS_KEY, on ? "on" : "off");
    page.dataset.analytics = on ? "on" : "off";
    toggle.setAttribute("aria-pressed", String(on));
    const hidden = on ? 0 : ANALYTICS.length;
    for (const th of page.querySelectorAll("th[data-side-head]")) {
      const all = th.dataset.sideHead === "call" ? CALL_COLS.length : PUT_COLS.length;
      th.colSpan = all - hidden;
    }
    for (const entry of expiries.values()) entry.chart.request(); // the table's width changed
    frames.schedule("opciones:center", centerStrikes);
  }

  /** Scroll each chain sideways so its strike column is in the middle (a wide chain opens there,
   * the calls' and the puts' nearest figures both in view). Reads layout: on a build or a toggle only. */
  function centerStrikes() {
    for (const wrap of chains.querySelectorAll(".table-wrap")) {
      // The parity column, beside the strike: the strike is sticky, so its own offset moves.
      const parity = wrap.querySelector('th[data-col="parity_tna"]');
      if (parity && wrap.scrollWidth > wrap.clientWidth) wrap.scrollLeft = parity.offsetLeft - wrap.clientWidth / 2;
    }
  }

  function csvHref(expiry) {
    return chainPath(VENUE, underlying, { format: "csv", model: chain?.model ?? model, expiry });
  }

  function switchModel(next) {
    if (next === model && chain?.model === next) return;
    model = next;
    globalThis.localStorage?.setItem(MODEL_KEY, next);
    load();
  }

  // -- header: spot and rates --------------------------------------------------------------------
  function renderSpot() {
    const [, , priceNode, changeNode] = spotBox.children;
    setText(priceNode, spot.last === null ? EMPTY : formatDecimal(spot.last, LOCALE, 2));
    const change = spot.last !== null && spot.close ? Number(spot.last) - Number(spot.close) : null;
    const pct = change === null ? null : (change / Number(spot.close)) * 100;
    setText(changeNode, change === null ? "" : `${formatSigned(change, LOCALE, 2)} (${formatSigned(pct, LOCALE, 2)} %)`);
    setClass(changeNode, `change ${signClass(change)}`);
    const stale = chain?.spot_stale ? chain.reasons?.spot ?? t("options.stale") : "";
    spotBox.classList.toggle("stale", Boolean(stale));
    spotBox.title = stale;
    // In and at the money by the price the figures use, so shading agrees with the intrinsic values.
    const at = modelSpot ?? spot.last;
    if (at === null) return;
    const price = Number(at);
    let nearest = null;
    for (const row of strikeRows) {
      row.tr.classList.toggle("itm-call", row.strike < price);
      row.tr.classList.toggle("itm-put", row.strike > price);
      if (nearest === null || Math.abs(row.strike - price) < Math.abs(nearest.strike - price)) nearest = row;
    }
    for (const row of strikeRows) row.tr.classList.toggle("atm", row === nearest); // "at the money"
    for (const entry of expiries.values()) entry.chart.request(); // the smile's spot line
  }

  function renderRates() {
    if (!chain) return;
    const source = chain.rate_source === "configured" || chain.rate_source === "config" ? t("options.rate_configured") : chain.rate_source;
    const caucion = figureText("rate", chain.caucion_tna, 2);
    const rate = figureText("rate", chain.rate === null ? null : chain.rate * 100, 2);
    const why = (key) => chain.reasons?.[key] ?? "";
    rates.replaceChildren(
      el("span", { class: "muted" }, t("options.caucion")),
      el(
        "strong",
        { dataset: { testid: "caucion-tna" }, title: caucion === null ? why("rate") || t("options.no_caucion") : source },
        caucion === null ? EMPTY : `${caucion} ${t("options.tna")}`,
      ),
      el("span", { class: "muted", dataset: { testid: "rate-source" } }, source),
      el("span", { class: "muted" }, t("options.model_spot")),
      el(
        "strong",
        { dataset: { testid: "model-spot" }, title: modelSpot === null ? why("spot") : t("options.model_spot.title") },
        modelSpot === null ? EMPTY : formatDecimal(modelSpot, LOCALE, 2),
      ),
      el("span", { class: "muted" }, t("options.rate_used")),
      el(
        "strong",
        { dataset: { testid: "rate" }, title: rate === null ? why("rate") : t("options.rate_used.title") },
        rate === null ? EMPTY : `${rate} ${t("options.continuous")}`,
      ),
      el("span", { class: "muted" }, t(`options.model.${chain.model}.title`)),
      ...Object.entries(chain.reasons ?? {})
        .filter(([key]) => key !== "rate" && key !== "spot")
        .map(([key, text]) => el("span", { class: "notice-inline", dataset: { reason: key } }, text)),
    );
  }

  function refreshRatesSoon() {
    if (ratesTimer !== null) return;
    const mine = generation;
    ratesTimer = setTimeout(() => {
      const first = expiries.keys().next().value;
      bridge
        .optionChain(VENUE, underlying, { model: chain?.model ?? model ?? undefined, expiry: first })
        .then((answer) => {
          if (disposed || mine !== generation) return;
          chain = { ...answer, expiries: undefined };
          frames.schedule("opciones:rates", renderRates);
          frames.schedule("opciones:spot", renderSpot);
          frames.schedule("opciones:parity", () => strikeRows.forEach(renderParity)); // vs the new caución
        })
        .catch(() => {}) // the next change tries again; the chain's figures keep coming meanwhile
        .finally(() => {
          ratesTimer = null;
        });
    }, RATES_REFRESH_MS);
  }

  // -- the chain ---------------------------------------------------------------------------------
  function headCell(side, col) {
    const th = el("th", { class: `num ${side}${ANALYTICS.includes(col) ? " an" : ""}`, dataset: { col: `${side}-${col}` } }, t(`ocol.${col}`));
    th.title = t(`ocol.${col}.title`);
    return th;
  }

  function optionCells(option, cols, side) {
    const cells = {};
    const tds = cols.map((col) => {
      const base = `num ${side}${ANALYTICS.includes(col) ? " an" : ""}`;
      const td = el("td", { class: base, dataset: { col: `${side}-${col}` } });
      cells[col] = { td, base };
      return td;
    });
    if (option) {
      options.set(option.symbol, {
        symbol: option.symbol,
        expiry: option.expiry,
        side,
        digits: precision.get(option.symbol) ?? 3, // BYMA options: 3 decimals
        cells,
        event: option,
        volume: volumes.get(option.symbol) ?? null,
      });
    }
    return tds;
  }

  function buildChains(answer) {
    for (const entry of expiries.values()) entry.chart.dispose();
    expiries.clear();
    options.clear();
    strikeRows.length = 0;
    const sections = [];
    for (const expiryChain of answer.expiries) {
      const { expiry } = expiryChain;
      const canvas = el("canvas", { class: "chart", dataset: { testid: "smile" } });
      const first = expiryChain.options[0];
      const entry = {
        days: expiryChain.days,
        sessions: expiryChain.business_days,
        sessionsReason: first?.reasons?.business_days ?? null, // the calendar ends before the expiry
        canvas,
        symbols: [],
      };
      entry.chart = new ChartCanvas(canvas, SMILE_HEIGHT, frames, `opciones:smile:${expiry}`, (ctx, w, h) =>
        paintSmile(expiry, ctx, w, h),
      );
      expiries.set(expiry, entry);
      const head = el(
        "thead",
        {},
        el(
          "tr",
          { class: "side-head" },
          el("th", { colspan: String(CALL_COLS.length), dataset: { sideHead: "call" } }, t("options.calls")),
          el("th", { colspan: "2" }, ""),
          el("th", { colspan: String(PUT_COLS.length), dataset: { sideHead: "put" } }, t("options.puts")),
        ),
        el(
          "tr",
          {},
          ...CALL_COLS.map((c) => headCell("call", c)),
          el("th", { dataset: { col: "strike" } }, t("col.strike")),
          el("th", { class: "num", dataset: { col: "parity_tna" }, title: t("ocol.parity_tna.title") }, t("ocol.parity_tna")),
          ...PUT_COLS.map((c) => headCell("put", c)),
        ),
      );
      const body = el("tbody");
      for (const row of rowsOf(expiryChain.options)) {
        const parity = el("td", { class: "num parity", dataset: { col: "parity_tna" } });
        const tr = el(
          "tr",
          { dataset: { strike: row.strikeText } },
          ...optionCells(row.call, CALL_COLS, "call"),
          el("td", { dataset: { col: "strike" } }, formatDecimal(row.strike, LOCALE, 0, 2)),
          parity,
          ...optionCells(row.put, PUT_COLS, "put"),
        );
        const strikeRow = { strike: row.strike, tr, parity, call: row.call?.symbol ?? null, put: row.put?.symbol ?? null };
        for (const o of [row.call, row.put]) if (o) entry.symbols.push(o.symbol);
        strikeRows.push(strikeRow);
        for (const o of [row.call, row.put]) if (o) options.get(o.symbol).row = strikeRow;
        body.append(tr);
      }
      entry.title = el("span", { class: "expiry-days" });
      sections.push(
        el(
          "section",
          { class: "chain", dataset: { expiry } },
          el(
            "div",
            { class: "chain-head" },
            el("h2", {}, t("options.expiry", { date: formatDate(expiry, LOCALE) })),
            entry.title,
            el("a", { class: "btn ghost small", href: csvHref(expiry), download: "", dataset: { testid: "expiry-csv" } }, t("options.csv")),
          ),
          el(
            "div",
            { class: "chain-body" },
            el("div", { class: "table-wrap" }, el("table", { class: "grid" }, head, body)),
            el("div", { class: "smile panel" }, el("h2", {}, t("options.smile")), canvas),
          ),
        ),
      );
    }
    chains.replaceChildren(...sections);
    chains.dataset.model = answer.model;
    csv.href = csvHref(undefined);
    csv.setAttribute("download", "");
    setAnalytics(showAnalytics);
    for (const symbol of options.keys()) renderOption(symbol);
    for (const row of strikeRows) renderParity(row);
    for (const expiry of expiries.keys()) renderExpiryHead(expiry);
  }

  function paintCell(cell, option, col) {
    const event = option.event;
    let text;
    let cls = cell.base;
    let title = option.symbol;
    if (col === "volume") {
      text = figureText("volume", option.volume, 0) ?? "";
    } else {
      text = figureText(KIND[col], event[col], option.digits);
      if (text === null) {
        text = EMPTY;
        cls += " empty";
        title = reasonFor(event, col) || (QUOTE_ABSENT[col] ? t(QUOTE_ABSENT[col]) : t("options.no_figure"));
      } else if (event.reasons?.[col]) {
        cls += " flagged"; // a figure given with a warning (a negative time value: an arbitrage)
        title = event.reasons[col];
      } else if (event.stale && COMPUTED.has(col)) {
        cls += " stale";
        title = t("options.stale_title", { why: staleReason(event) });
      }
    }
    setText(cell.td, text);
    setClass(cell.td, cls);
    if (cell.td.title !== title) cell.td.title = title;
  }

  function renderOption(symbol) {
    const option = options.get(symbol);
    for (const [col, cell] of Object.entries(option.cells)) paintCell(cell, option, col);
    if (option.tone) {
      flash(option.cells.last.td, option.tone);
      option.tone = null;
    }
  }

  function renderParity(row) {
    const call = options.get(row.call)?.event;
    const put = options.get(row.put)?.event;
    const source = call ?? put; // both carry the strike's parity rate; the put alone when no call
    const value = source?.parity_tna ?? null;
    const text = figureText("rate", value, 2);
    let cls = "num parity";
    let title;
    if (text === null) {
      cls += " empty";
      title = source ? reasonFor(source, "parity_tna") || t("options.no_figure") : "";
    } else {
      const caucion = chain?.caucion_tna ?? null;
      if (caucion !== null) {
        const diff = value - caucion;
        cls += diff > 0 ? " pos" : diff < 0 ? " neg" : "";
        title = t("options.parity_vs", { diff: formatSigned(diff, LOCALE, 2), caucion: formatPercent(caucion, LOCALE, 2) });
      } else {
        title = t("ocol.parity_tna.title");
      }
      if (source.stale) {
        cls += " stale";
        title = `${title}\n${t("options.stale_title", { why: staleReason(source) })}`;
      }
    }
    setText(row.parity, text ?? EMPTY);
    setClass(row.parity, cls);
    if (row.parity.title !== title) row.parity.title = title;
  }

  function renderExpiryHead(expiry) {
    const entry = expiries.get(expiry);
    const days = entry.days > 0 ? formatFixed(entry.days, LOCALE, 1) : null;
    entry.title.replaceChildren(
      el("span", { dataset: { testid: "days" } }, days ?? "0"),
      ` ${t("options.days")} · `,
      el("span", { dataset: { testid: "business-days" }, title: entry.sessionsReason ?? "" }, String(entry.sessions)),
      ` ${t("options.sessions")}`,
      days === null ? el("span", { class: "badge stale" }, t("options.expired")) : "",
    );
  }

  function paintSmile(expiry, ctx, width, height) {
    const entry = expiries.get(expiry);
    if (!entry) return;
    const smile = smileOf(entry.symbols.map((s) => options.get(s)?.event));
    const price = modelSpot !== null ? Number(modelSpot) : spot.last !== null ? Number(spot.last) : null;
    drawSmile(
      ctx,
      width,
      height,
      smile,
      price,
      (x) => formatFixed(x, LOCALE, 0),
      (iv) => formatPercent(iv * 100, LOCALE, 0),
      { calls: t("options.calls"), puts: t("options.puts"), spot: t("options.spot_short"), legend: t("options.smile.legend"), empty: t("options.smile.empty") },
    );
    entry.canvas.dataset.points = String(smile.count); // how many IVs it drew (the browser test reads it)
  }

  // -- live data ---------------------------------------------------------------------------------
  function onAnalytics(mine, event) {
    if (mine !== generation || event.kind !== "option_analytics" || event.model !== chain?.model) return;
    const option = options.get(event.symbol);
    if (!option || (option.event && event.ts < option.event.ts)) return;
    const before = option.event?.last ?? null;
    if (before !== null && event.last !== null && event.last !== before) {
      option.tone = Number(event.last) > Number(before) ? "up" : "down";
    }
    option.event = event;
    frames.schedule(`opciones:o:${event.symbol}`, () => renderOption(event.symbol));
    frames.schedule(`opciones:p:${event.symbol}`, () => renderParity(option.row));
    const entry = expiries.get(option.expiry);
    const sessionsReason = event.reasons?.business_days ?? null;
    if (entry && (entry.days !== event.days || entry.sessions !== event.business_days || entry.sessionsReason !== sessionsReason)) {
      entry.days = event.days;
      entry.sessions = event.business_days;
      entry.sessionsReason = sessionsReason;
      frames.schedule(`opciones:e:${option.expiry}`, () => renderExpiryHead(option.expiry));
    }
    entry?.chart.request();
    if (event.spot !== null && event.spot !== modelSpot) {
      modelSpot = event.spot;
      frames.schedule("opciones:spot", renderSpot);
      frames.schedule("opciones:rates", renderRates);
    }
    const spotReason = event.reasons?.spot ?? null;
    if ((chain.reasons?.spot ?? null) !== spotReason) {
      // The underlying went stale (or fresh again) since the snapshot: say so on the spot too.
      chain = { ...chain, spot_stale: spotReason !== null, reasons: { ...chain.reasons, spot: spotReason ?? undefined } };
      frames.schedule("opciones:spot", renderSpot);
    }
    if (event.rate !== chain.rate || event.rate_source !== chain.rate_source) refreshRatesSoon();
  }

  function onTicker(event) {
    if (event.kind === "ticker" && event.symbol === spot.symbol) {
      if (event.last !== null) spot.last = event.last;
      frames.schedule("opciones:spot", renderSpot);
    }
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
    const option = options.get(event.symbol);
    if (event.volume !== null && volumes.has(event.symbol)) {
      volumes.set(event.symbol, event.volume);
      if (option) {
        option.volume = event.volume;
        frames.schedule(`opciones:o:${event.symbol}`, () => renderOption(event.symbol));
      }
    }
  }

  function onRefusal(error) {
    notices.replaceChildren(errorBox(error, i18n));
  }

  function subscribeMarket(answer) {
    const symbols = answer.expiries.flatMap((e) => e.options.map((o) => o.symbol));
    for (const symbol of symbols) if (!volumes.has(symbol)) volumes.set(symbol, null);
    spot = { ...spot, symbol: answer.underlying_symbol };
    const withSpot = spot.symbol ? [...symbols, spot.symbol] : symbols;
    if (spot.symbol) marketHandles.push(bridge.subscribe({ venue: VENUE, channel: "ticker", symbols: [spot.symbol] }, onTicker, onRefusal));
    if (withSpot.length) marketHandles.push(bridge.subscribe({ venue: VENUE, channel: "stats", symbols: withSpot }, onStats, onRefusal));
  }

  /** Read the chain (in `model`, else the server's), show it, and follow its greeks stream. */
  function load() {
    const mine = ++generation;
    greeks?.close();
    greeks = null;
    chains.dataset.loading = "";
    return bridge
      .optionChain(VENUE, underlying, { model: model ?? undefined })
      .then((answer) => {
        if (disposed || mine !== generation) return;
        chain = { ...answer, expiries: undefined };
        modelSpot = answer.spot;
        for (const button of modelControl.querySelectorAll("button")) {
          button.setAttribute("aria-pressed", String(button.dataset.value === answer.model));
        }
        notices.replaceChildren();
        if (!answer.expiries.length) {
          chains.replaceChildren(el("div", { class: "notice" }, t("options.none", { underlying })));
        } else {
          buildChains(answer);
        }
        delete chains.dataset.loading;
        renderRates();
        renderSpot();
        if (!marketHandles.length) subscribeMarket(answer);
        greeks = bridge.subscribe(
          { venue: VENUE, channel: "greeks", symbol: underlying, model: answer.model },
          (event) => onAnalytics(mine, event),
          onRefusal,
        );
      })
      .catch((error) => {
        if (!disposed && mine === generation) notices.replaceChildren(errorBox(error, i18n));
      });
  }

  api(`/api/instruments?venue=${VENUE}`)
    .then((body) => {
      if (disposed) return;
      for (const d of body.instruments) if (d.price_precision !== null && d.price_precision !== undefined) precision.set(d.symbol, d.price_precision);
      const underlyings = underlyingsOf(body.instruments);
      if (!underlyings.some((u) => u.ticker === underlying)) underlyings.unshift({ ticker: underlying });
      select.replaceChildren(
        ...underlyings.map((u) => el("option", { value: u.ticker, selected: u.ticker === underlying }, u.ticker)),
      );
      select.addEventListener("change", () => {
        location.hash = `#/opciones/${encodeURIComponent(select.value)}`;
      });
      for (const option of options.values()) option.digits = precision.get(option.symbol) ?? option.digits;
      for (const symbol of options.keys()) frames.schedule(`opciones:o:${symbol}`, () => renderOption(symbol));
    })
    .catch((error) => {
      if (!disposed) notices.append(errorBox(error, i18n));
    });
  load();

  return () => {
    disposed = true;
    clearTimeout(ratesTimer);
    greeks?.close();
    for (const handle of marketHandles) handle.close();
    marketHandles = [];
    for (const entry of expiries.values()) entry.chart.dispose();
  };
}
