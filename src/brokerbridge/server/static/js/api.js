// JSON over the bridge's REST API (same origin, so the session cookie goes along).
//
// Requests that change something (orders: POST, PATCH, DELETE) made with the session cookie also
// carry the session's CSRF token in `X-CSRF-Token`: the server refuses them without it, so a page
// of another origin — which the browser lets send the cookie but not read `GET /api/session` —
// cannot trade with this browser's session. The token comes from `GET /api/session`
// (`rememberSession`).

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error.code ?? "http_error";
    this.remedy = error.remedy ?? "";
    this.rule = error.rule ?? ""; // order_refused: the rule broken (tick_size, min_qty, …)
  }
}

const CSRF_HEADER = "X-CSRF-Token";
const SAFE_METHODS = new Set(["GET", "HEAD"]);
const csrf = { token: null }; // this page's session's token; null: not signed in (or not yet read)

/** Keep the CSRF token of a `GET`/`POST /api/session` answer (null when signed out). */
export function rememberSession(session) {
  csrf.token = session?.csrf_token ?? null;
  return session;
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (!SAFE_METHODS.has(method) && csrf.token) init.headers[CSRF_HEADER] = csrf.token;
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

/** An element showing an API error with its remedy, for a page that could not load something. */
export function errorBox(error, i18n) {
  const box = document.createElement("div");
  box.className = "notice error";
  const title = document.createElement("strong");
  title.textContent = `${i18n.t("common.error")}: ${error.message}`;
  box.append(title);
  if (error.remedy) {
    const remedy = document.createElement("div");
    remedy.textContent = error.remedy;
    box.append(remedy);
  }
  if (error.code && error.code !== "http_error") {
    // The wire code (and an order refusal's rule): what to quote when asking for help.
    const code = document.createElement("div");
    code.className = "muted";
    code.dataset.code = error.code;
    code.textContent = error.rule ? `${error.code} · ${error.rule}` : error.code;
    if (error.rule) code.dataset.rule = error.rule;
    box.append(code);
  }
  return box;
}
