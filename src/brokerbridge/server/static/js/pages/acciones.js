// Mercado › Acciones: every BYMA stock (CFI ESXXXX; CEDEARs, EMXXXX, on request) of the configured
// Primary environment, both settlements, live. One batch subscription per channel (ticker for the
// quotes, stats for the previous close); events update the row models and schedule a render of
// that row for the next animation frame, so hundreds of rows updating several times a second cost
// one DOM pass per frame. Numbers are always es-AR: this page is for BYMA users.

import { api, errorBox } from "../api.js";
import { el, flash, segmented, setClass, setText } from "../dom.js";
import {
  BUENOS_AIRES,
  foldText,
  formatDecimal,
  formatSigned,
  formatTime,
  signClass,
} from "../format.js";
import { simulatedBadge } from "../simulated.js";
import { SortableTable } from "../table.js";

const LOCALE = "es-AR";
const VENUE = "primary";
const RESORT_EVERY_MS = 1000; // rows sorted by a live column move at most once a second
const KINDS = { stock: ["stock"], cedear: ["cedear"], both: ["stock", "cedear"] };

const COLUMNS = [
  { key: "symbol", label: "col.symbol", text: true },
  { key: "settlement", label: "col.settlement", text: true },
  { key: "bidQty", label: "col.bid_qty" },
  { key: "bid", label: "col.bid" },
  { key: "ask", label: "col.ask" },
  { key: "askQty", label: "col.ask_qty" },
  { key: "last", label: "col.last" },
  { key: "change", label: "col.change" },
  { key: "changePct", label: "col.change_pct" },
  { key: "time", label: "col.time" },
];

class Row {
  constructor(detail) {
    this.symbol = detail.symbol;
    this.ticker = detail.ticker;
    this.settlement = detail.settlement ?? "";
    this.kind = detail.kind;
    this.search = foldText(`${detail.ticker} ${detail.symbol} ${detail.underlying ?? ""}`);
    this.values = { bid: null, bidQty: null, ask: null, askQty: null, last: null };
    this.close = null; // previous session's close (stats)
    this.time = 0;
    this.tone = null;
    this.refused = false;
  }

  get change() {
    const last = Number(this.values.last);
    const close = Number(this.close);
    if (this.values.last === null || this.close === null || !close) return null;
    return last - close;
  }

  get changePct() {
    const change = this.change;
    return change === null ? null : (change / Number(this.close)) * 100;
  }

  /** The value a column sorts by (numbers as numbers, null when unknown). */
  sortValue(key) {
    switch (key) {
      case "symbol":
        return `${this.ticker} ${this.settlement === "CI" ? 0 : 1}`;
      case "settlement":
        return this.settlement;
      case "change":
        return this.change;
      case "changePct":
        return this.changePct;
      case "time":
        return this.time || null;
      default: {
        const value = this.values[key];
        return value === null ? null : Number(value);
      }
    }
  }

  applyTicker(event) {
    const before = this.values.last;
    const v = this.values;
    v.bid = event.bid;
    v.bidQty = event.bid_qty;
    v.ask = event.ask;
    v.askQty = event.ask_qty;
    if (event.last !== null) v.last = event.last;
    this.time = event.ts;
    if (before !== null && v.last !== before) this.tone = Number(v.last) > Number(before) ? "up" : "down";
    else this.tone = "same";
  }
}

export function mount(root, { i18n, bridge, frames }) {
  const rows = new Map();
  const handles = [];
  const view = { search: "", settlement: "all", kind: "stock" };
  let lastUpdate = 0;
  let resortTimer = null;
  let disposed = false;

  const summary = el("span", { class: "summary" }, i18n.t("common.loading"));
  const search = el("input", {
    type: "search",
    class: "search",
    placeholder: i18n.t("common.search"),
    "aria-label": i18n.t("common.search"),
  });
  search.addEventListener("input", () => {
    view.search = foldText(search.value.trim());
    scheduleOrder();
  });
  // A segmented filter over `view[name]`; tests find it by `data-filter`.
  const filter = (name, options, label) => {
    const control = segmented(options, view[name], (value) => {
      view[name] = value;
      scheduleOrder();
    }, label);
    control.dataset.filter = name;
    return control;
  };
  const settlement = filter(
    "settlement",
    [
      ["all", i18n.t("common.all")],
      ["CI", "CI"],
      ["24hs", "24hs"],
    ],
    i18n.t("stocks.settlement"),
  );
  const kind = filter(
    "kind",
    [
      ["stock", i18n.t("stocks.kind.stock")],
      ["cedear", i18n.t("stocks.kind.cedear")],
      ["both", i18n.t("stocks.kind.both")],
    ],
    i18n.t("stocks.kind"),
  );

  const table = new SortableTable(
    COLUMNS.map((c) => ({ ...c, label: i18n.t(c.label) })),
    { key: "symbol", dir: 1 },
    () => scheduleOrder(),
  );
  table.table.classList.add("quotes");
  const notices = el("div");
  root.append(
    el(
      "section",
      { class: "page-head" },
      el("h1", {}, `${i18n.t("nav.market")} › ${i18n.t("stocks.title")} `, simulatedBadge(i18n, [VENUE])),
      el("div", { class: "toolbar" }, search, settlement, kind, summary),
    ),
    notices,
    el("div", { class: "table-wrap" }, table.table),
  );

  function visible(row) {
    if (!KINDS[view.kind].includes(row.kind)) return false;
    if (view.settlement !== "all" && row.settlement !== view.settlement) return false;
    return !view.search || row.search.includes(view.search);
  }

  function scheduleOrder() {
    frames.schedule("acciones:order", renderOrder);
  }

  function renderOrder() {
    const shown = [...rows.values()].filter(visible);
    table.sortRows(shown, (row, key) => row.sortValue(key));
    table.body.replaceChildren(...shown.map((row) => row.tr));
    renderSummary(shown.length);
  }

  function renderSummary(count = table.body.childElementCount) {
    const parts = [i18n.t("common.instruments", { n: count })];
    if (lastUpdate) parts.push(`${i18n.t("common.updated")}: ${formatTime(lastUpdate, LOCALE, BUENOS_AIRES)}`);
    setText(summary, parts.join(" · "));
  }

  function buildRow(row) {
    row.cells = {};
    row.tr = el("tr", { dataset: { symbol: row.symbol } });
    for (const column of COLUMNS) {
      const td = el("td", { dataset: { col: column.key }, class: column.text ? "" : "num" });
      row.cells[column.key] = td;
      row.tr.append(td);
    }
    setText(row.cells.symbol, row.ticker);
    row.cells.symbol.title = row.symbol;
    setText(row.cells.settlement, row.settlement);
  }

  function renderRow(row) {
    const v = row.values;
    const c = row.cells;
    setText(c.bidQty, formatDecimal(v.bidQty, LOCALE));
    setText(c.bid, formatDecimal(v.bid, LOCALE, 2));
    setText(c.ask, formatDecimal(v.ask, LOCALE, 2));
    setText(c.askQty, formatDecimal(v.askQty, LOCALE));
    setText(c.last, formatDecimal(v.last, LOCALE, 2));
    const change = row.change;
    const sign = signClass(change);
    setText(c.change, formatSigned(change, LOCALE, 2));
    setText(c.changePct, change === null ? "" : `${formatSigned(row.changePct, LOCALE, 2)} %`);
    setClass(c.change, `num ${sign}`);
    setClass(c.changePct, `num ${sign}`);
    setText(c.time, formatTime(row.time, LOCALE, BUENOS_AIRES));
    if (row.tone) {
      flash(row.tr, row.tone);
      row.tone = null;
    }
    row.tr.classList.toggle("refused", row.refused);
  }

  function onTicker(event) {
    if (event.kind !== "ticker") return;
    const row = rows.get(event.symbol);
    if (!row) return;
    row.applyTicker(event);
    lastUpdate = Math.max(lastUpdate, event.ts);
    frames.schedule(`acciones:row:${row.symbol}`, () => renderRow(row));
    frames.schedule("acciones:summary", () => renderSummary());
    if (table.sort.key !== "symbol" && table.sort.key !== "settlement" && resortTimer === null) {
      resortTimer = setTimeout(() => {
        resortTimer = null;
        scheduleOrder();
      }, RESORT_EVERY_MS);
    }
  }

  function onStats(event) {
    if (event.kind !== "stats" || event.close === null) return;
    const row = rows.get(event.symbol);
    if (!row || row.close === event.close) return;
    row.close = event.close;
    frames.schedule(`acciones:row:${row.symbol}`, () => renderRow(row));
  }

  function onRefusal(error) {
    if (error.code === "unknown_symbol") {
      for (const row of rows.values()) {
        if (error.message.includes(`'${row.symbol}'`)) {
          row.refused = true;
          frames.schedule(`acciones:row:${row.symbol}`, () => renderRow(row));
        }
      }
      return;
    }
    notices.replaceChildren(errorBox(error, i18n));
  }

  api(`/api/instruments?venue=${VENUE}`)
    .then((body) => {
      if (disposed) return;
      for (const detail of body.instruments) {
        if (detail.kind !== "stock" && detail.kind !== "cedear") continue;
        const row = new Row(detail);
        buildRow(row);
        rows.set(row.symbol, row);
      }
      const symbols = [...rows.keys()];
      if (symbols.length === 0) return renderOrder();
      handles.push(bridge.subscribe({ venue: VENUE, channel: "ticker", symbols }, onTicker, onRefusal));
      handles.push(bridge.subscribe({ venue: VENUE, channel: "stats", symbols }, onStats, onRefusal));
      renderOrder();
    })
    .catch((error) => {
      if (!disposed) notices.replaceChildren(errorBox(error, i18n));
      setText(summary, "");
    });

  return () => {
    disposed = true;
    clearTimeout(resortTimer);
    for (const handle of handles) handle.close();
  };
}
