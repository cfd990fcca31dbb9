// Estado / Status: every upstream stream of every venue (state, mode, reconnects, seconds since
// the last message, subscriptions, last error) from /api/health once a second, each venue's
// token expiry as a countdown that ticks between polls, and this page's own link to the bridge.

import { api, errorBox } from "../api.js";
import { el, setClass, setText } from "../dom.js";
import { formatDuration, formatFixed } from "../format.js";
import { simulatedBadge } from "../simulated.js";

const POLL_MS = 1000;

export function mount(root, { i18n, bridge, frames }) {
  const t = (key, values) => i18n.t(key, values);
  const overall = el("span", { class: "summary" }, t("common.loading"));
  const bridgeState = el("span", { class: "badge", dataset: { testid: "bridge-state" } });
  const columns = [
    ["venue", "status.venue"],
    ["stream", "status.stream"],
    ["state", "status.state"],
    ["mode", "status.mode"],
    ["reconnects", "status.reconnects"],
    ["since", "status.since"],
    ["subscriptions", "status.subscriptions"],
    ["token", "status.token"],
    ["error", "status.error"],
  ];
  const body = el("tbody");
  const table = el(
    "table",
    { class: "grid status" },
    el("thead", {}, el("tr", {}, ...columns.map(([key, label]) => el("th", { dataset: { col: key } }, t(label))))),
    body,
  );
  const notices = el("div");
  root.append(
    el(
      "section",
      { class: "page-head" },
      el("h1", {}, `${t("status.title")} `, simulatedBadge(i18n, ["kraken", "primary"])),
      el("div", { class: "toolbar" }, el("span", { class: "muted" }, t("status.bridge")), bridgeState, overall),
    ),
    notices,
    el("div", { class: "table-wrap" }, table),
  );

  const rows = new Map(); // "venue/stream" → {tr, cells}
  let expiries = {}; // venue → epoch seconds
  let timer = null;
  let disposed = false;

  function rowFor(venue, stream) {
    const key = `${venue}/${stream}`;
    let row = rows.get(key);
    if (!row) {
      const cells = {};
      const tr = el("tr", { dataset: { venue, stream } });
      for (const [col] of columns) {
        cells[col] = el("td", { dataset: { col }, class: ["reconnects", "since", "subscriptions"].includes(col) ? "num" : "" });
        tr.append(cells[col]);
      }
      setText(cells.venue, venue);
      setText(cells.stream, stream);
      row = { tr, cells, venue };
      rows.set(key, row);
      body.append(tr);
    }
    return row;
  }

  function renderHealth(health) {
    setText(overall, t("status.overall", { status: i18n.named("health", health.status) }));
    expiries = {};
    const seen = new Set();
    for (const [venue, info] of Object.entries(health.venues)) {
      expiries[venue] = info.token_expires_at;
      for (const [stream, s] of Object.entries(info.streams ?? {})) {
        if (!s || s.state === undefined) continue;
        const row = rowFor(venue, stream);
        seen.add(`${venue}/${stream}`);
        const c = row.cells;
        // The state's name in the page's language; `data-state` and the class keep the server's.
        setText(c.state, i18n.named("state", s.state));
        setClass(c.state, `state-${s.state}`);
        row.tr.dataset.state = s.state;
        setText(c.mode, i18n.named("mode", s.mode));
        setText(c.reconnects, String(s.reconnects ?? ""));
        setText(c.since, s.seconds_since_last_message === null || s.seconds_since_last_message === undefined
          ? "—" : formatFixed(s.seconds_since_last_message, i18n.locale, 1));
        setText(c.subscriptions, String(Object.keys(s.subscriptions ?? {}).length));
        setText(c.error, s.last_error ?? "");
        c.error.title = s.last_error ?? "";
      }
    }
    for (const [key, row] of rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        rows.delete(key);
      }
    }
    renderCountdowns();
  }

  function renderCountdowns() {
    const now = Date.now() / 1000;
    for (const row of rows.values()) {
      const expires = expiries[row.venue];
      let text = t("status.no_token");
      if (expires) text = expires > now ? formatDuration(expires - now) : t("status.expired");
      setText(row.cells.token, text);
    }
  }

  function renderBridge() {
    setText(bridgeState, i18n.named("state", bridge.state));
    bridgeState.dataset.state = bridge.state;
    setClass(bridgeState, `badge ${bridge.state === "live" ? "live" : "reconnecting"}`);
  }

  async function poll() {
    try {
      const health = await api("/api/health");
      if (disposed) return;
      notices.replaceChildren();
      frames.schedule("estado:health", () => renderHealth(health));
    } catch (error) {
      if (disposed) return;
      // The bridge is down or restarting: say so, keep the last rows (their age keeps counting).
      notices.replaceChildren(errorBox(error, i18n));
    } finally {
      if (!disposed) timer = setTimeout(poll, POLL_MS);
    }
  }

  const onBridge = () => frames.schedule("estado:bridge", renderBridge);
  bridge.addEventListener("state", onBridge);
  const ticker = setInterval(() => frames.schedule("estado:countdown", renderCountdowns), 1000);
  renderBridge();
  poll();

  return () => {
    disposed = true;
    clearTimeout(timer);
    clearInterval(ticker);
    bridge.removeEventListener("state", onBridge);
  };
}
