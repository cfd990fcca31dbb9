// The dashboard's shell: the page's one bridge client (api.js), the connection indicator, the language switch and a
// hash router (#/acciones, #/opciones, #/crypto/BTC%2FUSD, #/cuenta, #/estado). Each page module
// exports `mount(root, ctx, params)` returning an `unmount()` that closes its subscriptions.

import { api, bridge } from "./api.js";
import { FrameScheduler } from "./frame.js";
import { I18n } from "./i18n.js";
import * as acciones from "./pages/acciones.js";
import * as crypto from "./pages/crypto.js";
import * as cuenta from "./pages/cuenta.js";
import * as estado from "./pages/estado.js";
import * as opciones from "./pages/opciones.js";

const PAGES = { acciones, opciones, crypto, cuenta, estado };
// Pages of one venue: hidden when the server does not run it (`serve --venue kraken`), so no page
// opens on an "unknown venue" error. The first page left is the default.
const PAGE_VENUE = { acciones: "primary", opciones: "primary", crypto: "kraken" };
const DEFAULT_PAGES = ["acciones", "crypto", "cuenta"];
let served = null; // the venues the server runs, once /api/venues answered (null: show every page)

function available(name) {
  return !served || !PAGE_VENUE[name] || served.has(PAGE_VENUE[name]);
}

const i18n = new I18n();
const frames = new FrameScheduler();
const ctx = { i18n, bridge, frames };

let current = null; // {name, unmount}

function route() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = PAGES[name] && available(name) ? name : DEFAULT_PAGES.find(available);
  const params = rest.map(decodeURIComponent);
  if (current) {
    current.unmount();
    frames.cancel(`${current.name}:`);
  }
  const root = document.getElementById("page");
  root.replaceChildren();
  root.dataset.page = page;
  for (const link of document.querySelectorAll("#nav a[data-route]")) {
    link.toggleAttribute("aria-current", link.dataset.route === page);
  }
  current = { name: page, unmount: PAGES[page].mount(root, ctx, params) };
}

function renderConnection() {
  const node = document.getElementById("conn");
  const text = node.querySelector(".conn-text");
  let state = bridge.state;
  let label;
  if (state === "live") {
    const degraded = bridge.degradedStreams();
    if (degraded.length) {
      state = "degraded";
      label = i18n.t("conn.degraded", { streams: degraded.length });
      node.title = degraded.map((s) => `${s}: ${bridge.streams.get(s)}`).join("\n");
    } else {
      label = i18n.t("conn.live");
      node.title = bridge.wsUrl;
    }
  } else if (state === "reconnecting") {
    const seconds = bridge.retryAt ? Math.max(0, Math.ceil((bridge.retryAt - Date.now()) / 1000)) : 0;
    label = bridge.retryAt
      ? i18n.t("conn.reconnecting", { attempt: bridge.attempt, seconds })
      : i18n.t("conn.retrying", { attempt: bridge.attempt });
    node.title = bridge.reason ? `${bridge.wsUrl}\n${bridge.reason}` : bridge.wsUrl;
  } else {
    label = i18n.t("conn.connecting");
  }
  node.dataset.state = state;
  document.body.dataset.conn = state; // the page dims what it shows while its link is down
  if (text.textContent !== label) text.textContent = label;
}

function renderLanguage() {
  i18n.apply(document);
  for (const button of document.querySelectorAll(".lang button")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === i18n.lang));
  }
  renderConnection();
}

for (const kind of ["state", "status"]) {
  bridge.addEventListener(kind, () => frames.schedule("shell:conn", renderConnection));
}
// While reconnecting, count the seconds down.
setInterval(() => {
  if (bridge.state === "reconnecting") frames.schedule("shell:conn", renderConnection);
}, 500);

document.querySelector(".lang").addEventListener("click", (e) => {
  const button = e.target.closest("button[data-lang]");
  if (button) i18n.set(button.dataset.lang);
});
i18n.addEventListener("change", () => {
  renderLanguage();
  route(); // pages rebuild their labels and headers in the new language
});

window.addEventListener("hashchange", route);
renderLanguage();
bridge.connect();
// The first page opens once the server said which venues it runs (one loopback request), so a
// page of a venue it does not run is never opened to fail.
api("/api/venues")
  .then(({ venues }) => {
    served = new Set(venues.map((v) => v.venue));
    for (const link of document.querySelectorAll("#nav a[data-route]")) {
      link.hidden = !available(link.dataset.route);
    }
  })
  .catch(() => {}) // unknown: every page stays, each reports its own load errors
  .finally(route);
