// The option figures of the Opciones page: which columns there are, how each is written (es-AR),
// and what an empty or stale one says. Pure (no DOM), so the page and its tests share one rule.
//
// Units are OptionAnalytics': IVs are annual fractions (0.452 is shown "45,2 %"), `*_tna`/`*_tea`
// are already percents, greeks are per share (delta per 1 of price, gamma per 1 per 1, vega per vol
// point, theta per calendar day, rho per rate point), prices are decimal strings.

import { formatDecimal, formatFixed, formatPercent, formatSignificant } from "./format.js";

export const EMPTY = "—"; // an empty figure; its reason is the cell's tooltip

/** IV and greek columns: shown only with the "IV y griegas" toggle on. */
export const ANALYTICS = ["iv_bid", "iv_ask", "iv_last", "iv_mid", "delta", "gamma", "vega", "theta", "rho"];
/** Left to right: calls read outward from the strike, so their columns mirror the puts'. */
export const CALL_COLS = [
  ...[...ANALYTICS].reverse(),
  "break_even",
  "covered_call_tea",
  "covered_call_tna",
  "time_value",
  "intrinsic",
  "volume",
  "last",
  "bid",
  "ask",
];
export const PUT_COLS = ["bid", "ask", "last", "volume", "intrinsic", "time_value", ...ANALYTICS];

/** How each figure is written. */
export const KIND = {
  bid: "price",
  ask: "price",
  last: "price",
  intrinsic: "price",
  time_value: "price",
  break_even: "price",
  volume: "volume",
  iv_bid: "iv",
  iv_ask: "iv",
  iv_last: "iv",
  iv_mid: "iv",
  delta: "delta",
  gamma: "gamma",
  vega: "money",
  theta: "money",
  rho: "money",
  parity_tna: "rate",
  covered_call_tna: "rate",
  covered_call_tea: "rate",
};

/** Figures computed from the spot or the model: marked when the event says an input is stale. */
export const COMPUTED = new Set([...ANALYTICS, "intrinsic", "time_value", "break_even", "parity_tna", "covered_call_tna", "covered_call_tea"]);

// Where a figure's reason may be filed when the event names a group rather than the figure.
const GROUP = {
  iv_bid: "iv",
  iv_ask: "iv",
  iv_last: "iv",
  iv_mid: "iv",
  delta: "greeks",
  gamma: "greeks",
  vega: "greeks",
  theta: "greeks",
  rho: "greeks",
  covered_call_tna: "covered_call",
  covered_call_tea: "covered_call",
  break_even: "covered_call",
  parity_tna: "parity",
};

/**
 * The text of one figure, or null when it has none to show (null, or not a finite number — which
 * the bridge never sends, and which must never reach the page as "NaN"). `digits`: the option's
 * price precision (3 for BYMA options); computed prices keep up to 4 decimals (a mid's half tick).
 */
export function figureText(kind, value, digits, locale = "es-AR") {
  if (value === null || value === undefined || value === "") return null;
  const n = Number(value);
  if (!Number.isFinite(n)) return null;
  switch (kind) {
    case "price":
      return formatDecimal(value, locale, digits, Math.max(digits, 4));
    case "volume":
      return formatDecimal(value, locale);
    case "iv":
      return formatPercent(n * 100, locale, 1);
    case "rate":
      return formatPercent(n, locale, 2);
    case "delta":
      return formatFixed(n, locale, 3);
    case "gamma":
      return n === 0 ? formatFixed(0, locale, 0) : formatSignificant(n, locale, 3);
    case "money":
      return formatFixed(n, locale, 2);
    default:
      return formatDecimal(value, locale);
  }
}

/**
 * Why `field` of an OptionAnalytics `event` is empty: its own reason; for a computed figure else
 * its group's (iv, greeks, covered_call, parity), else what empties everything (expiry, spot,
 * rate), else every reason given. "" when there is none (a quote side that is simply absent).
 */
export function reasonFor(event, field) {
  const reasons = event?.reasons ?? {};
  if (reasons[field]) return reasons[field];
  if (!COMPUTED.has(field)) return ""; // a quote (bid, ask, last): absent, the page says which
  const found = reasons[GROUP[field]] ?? reasons.expiry ?? reasons.spot ?? reasons.rate;
  if (found) return found;
  return Object.values(reasons).join("; ");
}

/** Why an event's figures are marked stale: the spot's reason first, else every reason. */
export function staleReason(event) {
  const reasons = event?.reasons ?? {};
  return reasons.spot ?? reasons.stale ?? Object.values(reasons).join("; ");
}

/** The chain's rows of one expiry: [{strike, strikeText, call, put}] by strike (options: the API's). */
export function rowsOf(options) {
  const byStrike = new Map();
  for (const o of options) {
    const key = Number(o.strike);
    if (!byStrike.has(key)) byStrike.set(key, { strike: key, strikeText: String(o.strike), call: null, put: null });
    byStrike.get(key)[o.option_type === "put" ? "put" : "call"] = o;
  }
  return [...byStrike.values()].sort((a, b) => a.strike - b.strike);
}

/** `GET /api/options/{venue}/{underlying}` with its query (model, expiry, format). */
export function chainPath(venue, underlying, { model, expiry, format } = {}) {
  const query = new URLSearchParams();
  if (format) query.set("format", format);
  if (model) query.set("model", model);
  if (expiry) query.set("expiry", expiry);
  const text = query.toString();
  return `/api/options/${encodeURIComponent(venue)}/${encodeURIComponent(underlying)}${text ? `?${text}` : ""}`;
}
