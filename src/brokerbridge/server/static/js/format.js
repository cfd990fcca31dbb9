// Number and time formatting. Prices arrive as decimal strings with the venue's digits; they are
// shown with at least those digits, in the page's locale (es-AR: 7.145,50).

const numberFormats = new Map();
const timeFormats = new Map();

export const BUENOS_AIRES = "America/Argentina/Buenos_Aires";

function numberFormat(locale, minDigits, maxDigits) {
  const key = `${locale}|${minDigits}|${maxDigits}`;
  let format = numberFormats.get(key);
  if (format === undefined) {
    format = new Intl.NumberFormat(locale, {
      minimumFractionDigits: minDigits,
      maximumFractionDigits: maxDigits,
    });
    numberFormats.set(key, format);
  }
  return format;
}

/** Digits after the point in a decimal string ("7145.50" → 2, "1E-8" → 8). */
export function fractionDigits(text) {
  const s = String(text);
  const exp = s.match(/[eE]([-+]?\d+)$/);
  if (exp) {
    const mantissa = s.slice(0, exp.index);
    return Math.max(0, fractionDigits(mantissa) - Number(exp[1]));
  }
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** A decimal string (or number) in `locale`; `minDigits` pads, the value's own digits are kept. */
export function formatDecimal(value, locale, minDigits = 0, maxDigits = 8) {
  if (value === null || value === undefined || value === "") return "";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  const own = typeof value === "string" ? fractionDigits(value) : minDigits;
  const digits = Math.min(Math.max(own, minDigits), maxDigits);
  return numberFormat(locale, digits, digits).format(n);
}

/** A number with a fixed number of decimals (computed values: variations, totals). */
export function formatFixed(n, locale, digits) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "";
  return numberFormat(locale, digits, digits).format(n);
}

/** A number with `digits` significant digits (gamma: 0,000635 and 0,0412 both keep 3). */
export function formatSignificant(n, locale, digits) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "";
  const key = `${locale}|sig${digits}`;
  let format = numberFormats.get(key);
  if (format === undefined) {
    format = new Intl.NumberFormat(locale, { minimumSignificantDigits: digits, maximumSignificantDigits: digits });
    numberFormats.set(key, format);
  }
  return format.format(n);
}

/** A value already in percent points with `digits` decimals: 45.2 → "45,2 %" (es-AR). A fraction
 * (an IV of 0.452) is multiplied by the caller, so a rate quoted in % is never scaled twice. */
export function formatPercent(points, locale, digits) {
  if (points === null || points === undefined || !Number.isFinite(points)) return "";
  return `${numberFormat(locale, digits, digits).format(points)} %`;
}

/** A signed number: "+12,50" / "−3,10" (the typographic minus reads better in tables). */
export function formatSigned(n, locale, digits) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "";
  const text = numberFormat(locale, digits, digits).format(Math.abs(n));
  if (n > 0) return `+${text}`;
  if (n < 0) return `−${text}`;
  return text;
}

/** Wall time of an epoch-seconds stamp, HH:MM:SS, in `timeZone` (default: the browser's). */
export function formatTime(epochSeconds, locale, timeZone = undefined) {
  if (!epochSeconds) return "";
  const key = `${locale}|${timeZone}`;
  let format = timeFormats.get(key);
  if (format === undefined) {
    format = new Intl.DateTimeFormat(locale, {
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hour12: false,
      timeZone,
    });
    timeFormats.set(key, format);
  }
  return format.format(new Date(epochSeconds * 1000));
}

/** A date ("2026-12-18" or epoch seconds) as dd/mm/yyyy or mm/dd/yyyy per `locale`. */
export function formatDate(value, locale) {
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(`${value}T12:00:00`);
  return new Intl.DateTimeFormat(locale, { day: "2-digit", month: "2-digit", year: "numeric" }).format(date);
}

/** "1 h 02 min 05 s" style countdown for a number of seconds. */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (h > 0) return `${h} h ${pad(m)} min ${pad(rest)} s`;
  if (m > 0) return `${m} min ${pad(rest)} s`;
  return `${rest} s`;
}

/** Sign class for colouring: "pos", "neg" or "" . */
export function signClass(n) {
  if (n === null || n === undefined || !Number.isFinite(n) || n === 0) return "";
  return n > 0 ? "pos" : "neg";
}

/** Lower-case without accents, for search boxes ("Energía" matches "energia"). */
export function foldText(text) {
  return String(text).normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}
