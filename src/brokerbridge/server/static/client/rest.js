// The REST half of `BridgeClient` (client.js extends it): who the client is, its URLs, and JSON
// requests to the bridge's `/api` with the right credentials — an API key or a bridge token as
// `Authorization: Bearer`, or (neither) the browser's session cookie plus, on requests that change
// something, the session's CSRF token (`X-CSRF-Token`, read once from `GET /api/session`: a page of
// another origin cannot read it, so it cannot trade with this browser's session).

import { errorFrom, NotSent } from "./errors.js";

const CSRF_HEADER = "X-CSRF-Token";
const SAFE_METHODS = new Set(["GET", "HEAD"]);

export class RestClient extends EventTarget {
  /** @param {import("./index.js").BridgeClientOptions} [options] */
  constructor(options = {}) {
    super();
    const base = options.url ?? globalThis.location?.origin;
    if (!base) {
      throw new TypeError("BridgeClient needs `url` (the bridge's http(s)://host:port) outside a browser page");
    }
    const url = new URL(base);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`url must start with http:// or https:// (the bridge's address), got ${base}`);
    }
    if (options.key && options.getToken) {
      throw new TypeError("give either `key` (a server-side program) or `getToken` (a browser page), not both");
    }
    const path = url.pathname.replace(/\/+$/, "");
    this.url = url.origin + path;
    this.wsUrl = options.wsUrl ?? `${url.protocol === "https:" ? "wss" : "ws"}://${url.host}${path}/ws`;
    this.credentials = options.credentials ?? "same-origin";
    this.csrfToken = null; // the cookie session's, read from /api/session
    this._key = options.key ?? null;
    this._getToken = options.getToken ?? null;
    this._fetch = options.fetch ?? globalThis.fetch?.bind(globalThis);
  }

  /**
   * A JSON request to the bridge's REST API (`path` from the root, e.g. `/api/venues`); resolves to
   * the parsed body (`text: true`: the body's text, e.g. a CSV), rejects with the typed refusal
   * (`status` set) or `NotSent` (unreachable).
   */
  async request(path, { method = "GET", body, query, answers, text: asText = false } = {}) {
    if (!this._fetch) throw new TypeError("no fetch here: pass the `fetch` option");
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: this.credentials };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const bearer = this._key ?? (this._getToken ? await this._getToken() : null);
    if (bearer) {
      headers.Authorization = `Bearer ${bearer}`;
    } else if (!SAFE_METHODS.has(method)) {
      // A cookie session's state-changing requests carry its CSRF token (read once).
      if (this.csrfToken === null) await this.session().catch(() => null);
      if (this.csrfToken) headers[CSRF_HEADER] = this.csrfToken;
    }
    let target = this.url + path;
    if (query) {
      const pairs = Object.entries(query).filter(([, value]) => value !== undefined && value !== null);
      if (pairs.length) target += `${target.includes("?") ? "&" : "?"}${new URLSearchParams(pairs.map(([k, v]) => [k, String(v)]))}`;
    }
    let response;
    try {
      response = await this._fetch(target, init);
    } catch (error) {
      throw new NotSent({
        code: "unreachable",
        message: `the bridge at ${this.url} is unreachable: ${error?.message ?? error}`,
        remedy: "check that `brokerbridge serve` runs there (and, from another origin, that it lists this page's origin in server.allowed_origins)",
      });
    }
    const text = await response.text();
    const ok = answers ? answers.includes(response.status) : response.ok;
    if (ok && asText) return text;
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!ok) throw errorFrom(parsed?.error, response.status);
    return parsed;
  }

  /** Who the bridge takes this client for (`name`, `scopes`, a cookie session's `csrf_token`). */
  async session() {
    return this._rememberSession(await this.request("/api/session"));
  }

  /** Sign this browser in with an API key (`POST /api/session`: the key goes once, the cookie stays). */
  async signIn(key) {
    return this._rememberSession(await this.request("/api/session", { method: "POST", body: { key } }));
  }

  /** Sign this browser's session out (`DELETE /api/session`). */
  async signOut() {
    try {
      await this.request("/api/session", { method: "DELETE" });
    } finally {
      this.csrfToken = null;
    }
  }

  venues() {
    return this.request("/api/venues").then((answer) => answer.venues);
  }

  health() {
    return this.request("/api/health");
  }

  /** Readiness (`status` ready / not_ready, per venue why): the body of a 503 too. */
  ready() {
    return this.request("/api/ready", { answers: [200, 503] });
  }

  instruments(venue, search = "") {
    return this.request("/api/instruments", { query: { venue, search: search || undefined } });
  }

  ticker(venue, symbol) {
    return this.request(`/api/ticker/${encodeURIComponent(venue)}`, { query: { symbol } });
  }

  book(venue, symbol, depth) {
    return this.request(`/api/book/${encodeURIComponent(venue)}`, { query: { symbol, depth } });
  }

  trades(venue, symbol, limit) {
    return this.request(`/api/trades/${encodeURIComponent(venue)}`, { query: { symbol, limit } });
  }

  candles(venue, symbol, { interval, limit } = {}) {
    return this.request(`/api/candles/${encodeURIComponent(venue)}`, { query: { symbol, interval, limit } });
  }

  /**
   * The option chain of `underlying` (a ticker: GGAL) with every option's analytics: IVs, greeks,
   * intrinsic and time value, parity and covered-call rates, a reason for each empty figure.
   * `expiry`: one ISO date (default: every listed expiry); `model`: "american" or "european"
   * (default: the server's [options] model).
   */
  optionChain(venue, underlying, { expiry, model } = {}) {
    return this.request(this._optionsPath(venue, underlying), { query: { expiry, model } });
  }

  /** `optionChain` as the server's CSV text (one row per option, a header row, "." decimals, ISO dates). */
  optionChainCsv(venue, underlying, { expiry, model } = {}) {
    return this.request(this._optionsPath(venue, underlying), { query: { expiry, model, format: "csv" }, text: true });
  }

  _optionsPath(venue, underlying) {
    return `/api/options/${encodeURIComponent(venue)}/${encodeURIComponent(underlying)}`;
  }

  balances(venue) {
    return this.request(`/api/balances/${encodeURIComponent(venue)}`).then((answer) => answer.balances);
  }

  /** The orders the bridge believes open (`order_update` events). */
  openOrders(venue) {
    return this.request(`/api/orders/${encodeURIComponent(venue)}`).then((answer) => answer.orders);
  }

  /** One page of the journal's fills, oldest first, from the cursor `after` (a page's `next`). */
  fillsPage(venue, { after, limit } = {}) {
    return this.request(`/api/fills/${encodeURIComponent(venue)}`, { query: { after, limit } });
  }

  /** Every journaled fill of `venue`, oldest first, a page at a time. */
  async *allFills(venue, { pageSize = 500 } = {}) {
    let after;
    for (;;) {
      const page = await this.fillsPage(venue, { after, limit: pageSize });
      yield* page.fills;
      if (page.next === null || page.next === undefined) return;
      after = page.next;
    }
  }


  _rememberSession(session) {
    this.csrfToken = session?.csrf_token ?? null;
    return session;
  }
}
