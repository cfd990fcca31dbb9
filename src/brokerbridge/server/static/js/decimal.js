// Exact decimal arithmetic on the strings the bridge sends ("7145.50", "1E-8"): what an order
// ticket needs to check a price against the venue's tick and a size against its increment. Floats
// cannot do this (0.1 + 0.2 is not 0.3; 0.3 % 0.1 is not 0), so values are scaled to BigInts.

const PLAIN = /^-?\d+(\.\d+)?$/;

/** "1E-8" → "0.00000001", "2.5e3" → "2500", "7145.50" unchanged; null for what is not a number. */
export function plain(text) {
  const s = String(text ?? "").trim();
  if (PLAIN.test(s)) return s;
  const found = s.match(/^(-?)(\d+)(?:\.(\d+))?[eE]([-+]?\d+)$/);
  if (!found) return null;
  const [, sign, whole, fraction = "", exp] = found;
  let digits = whole + fraction;
  let point = whole.length + Number(exp);
  if (point <= 0) {
    digits = "0".repeat(1 - point) + digits;
    point = 1;
  } else if (point > digits.length) {
    digits += "0".repeat(point - digits.length);
  }
  const int = digits.slice(0, point).replace(/^0+(?=\d)/, "");
  const frac = digits.slice(point);
  return sign + int + (frac ? `.${frac}` : "");
}

function scaleOf(s) {
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}

function scaled(s, scale) {
  const negative = s.startsWith("-");
  const body = negative ? s.slice(1) : s;
  const [int, frac = ""] = body.split(".");
  const value = BigInt(int + frac.padEnd(scale, "0"));
  return negative ? -value : value;
}

function unscaled(value, scale) {
  const negative = value < 0n;
  let digits = (negative ? -value : value).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (negative ? "-" : "") + digits;
}

/** Both as BigInts on one scale, and that scale. */
function aligned(a, b) {
  const x = plain(a);
  const y = plain(b);
  if (x === null || y === null) return null;
  const scale = Math.max(scaleOf(x), scaleOf(y));
  return [scaled(x, scale), scaled(y, scale), scale];
}

/** -1, 0 or 1 (null: not numbers). */
export function compare(a, b) {
  const both = aligned(a, b);
  if (!both) return null;
  const [x, y] = both;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** `value` is a whole number of `step`s (a step of 0 or none: anything is). */
export function isMultiple(value, step) {
  const both = aligned(value, step);
  if (!both) return false;
  const [x, y] = both;
  return y === 0n || x % y === 0n;
}

/**
 * `value` moved `count` steps (negative: down), landing on the step grid: 7145,37 with a tick of
 * 0,05 one step up is 7145,40, not 7145,42. Never below one step. The result keeps the step's digits.
 */
export function stepped(value, step, count) {
  const base = plain(value) ?? "0";
  const both = aligned(base, step);
  if (!both) return base;
  const [x, y, scale] = both;
  if (y <= 0n) return base;
  let units = x / y; // truncates toward zero: the grid point at or below a positive value
  const onGrid = x % y === 0n;
  if (count > 0) units += BigInt(count);
  else if (count < 0) units += BigInt(count) + (onGrid ? 0n : 1n);
  if (units < 1n) units = 1n;
  return unscaled(units * y, scale);
}

/** `a × b` exactly (a notional: price × size). */
export function multiply(a, b) {
  const x = plain(a);
  const y = plain(b);
  if (x === null || y === null) return null;
  const sx = scaleOf(x);
  const sy = scaleOf(y);
  return unscaled(scaled(x, sx) * scaled(y, sy), sx + sy);
}

/**
 * What a person typed, as a plain decimal string, read strictly in `locale`'s convention so a
 * size is never misread by a factor of a thousand: es-AR takes a comma for decimals ("0,5") and
 * refuses a point, since "1.500" means 1500 there but 1.5 elsewhere; en takes a point and refuses
 * a comma. No thousands separators either way. `{value}` or `{error}` (an i18n key).
 */
export function parseTyped(text, locale) {
  const s = String(text ?? "").trim().replace(/\s/g, "");
  if (!s) return { error: "ticket.err.empty" };
  const comma = locale.startsWith("es");
  const decimalMark = comma ? "," : ".";
  const otherMark = comma ? "." : ",";
  if (s.includes(otherMark)) return { error: comma ? "ticket.err.use_comma" : "ticket.err.use_point" };
  const normal = comma ? s.replace(",", ".") : s;
  if (!/^\d+(\.\d+)?$/.test(normal) || s.split(decimalMark).length > 2) return { error: "ticket.err.not_number" };
  const value = normal.replace(/^0+(?=\d)/, "");
  if (!/[1-9]/.test(value)) return { error: "ticket.err.positive" };
  return { value };
}

/** A plain decimal string as the person would type it in `locale` (no grouping): "0,5" in es-AR. */
export function typedForm(value, locale) {
  const s = plain(value) ?? "";
  return locale.startsWith("es") ? s.replace(".", ",") : s;
}
