// The page's one client of the bridge — the JavaScript client package the bridge serves at
// `/client/` (the very files of the npm package), for the page's WebSocket and its REST calls —
// and how a page shows a refusal.
//
// Same origin: the session cookie goes with every request, and requests that change something
// (orders: POST, PATCH, DELETE) also carry the session's CSRF token in `X-CSRF-Token`, which the
// client reads from `GET /api/session` (a page of another origin cannot read it: it cannot trade
// with this browser's session).

import { BridgeClient, BridgeError } from "/client/index.js";

export { BridgeError };

/** The page's client: one socket (reconnects, resubscribes, reports its state) and the REST API. */
export const bridge = new BridgeClient({ url: location.origin });
// Refusals no page took (a page shows its own through its subscription's onError): for the console.
bridge.on("error", (error) => console.warn(`bridge error ${error.code}: ${error.message}`));

/** JSON over the bridge's REST API; a refusal rejects with the typed `BridgeError` (`status` set). */
export function api(path, { method = "GET", body } = {}) {
  return bridge.request(path, { method, body });
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
