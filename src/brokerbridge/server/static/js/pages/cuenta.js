// Cuenta / Account: per venue with credentials, the balances (each marked live or stale: stale
// while the private stream is down — a balance is never shown as 0 because a stream dropped), the
// orders believed open, and the recent executions. Needs the `account` scope: the browser's
// session cookie (the sign-in link `serve` prints, or an API key typed in the form below).

import { api, errorBox } from "../api.js";
import { el, setText } from "../dom.js";
import { formatDecimal, formatTime } from "../format.js";
import { simulatedBadge } from "../simulated.js";

const CLOSED = new Set(["filled", "canceled", "cancelled", "expired", "rejected", "closed"]);
const FILLS_SHOWN = 50;

function table(headers, body) {
  return el(
    "table",
    { class: "grid" },
    el("thead", {}, el("tr", {}, ...headers.map(([text, num]) => el("th", { class: num ? "num" : "" }, text)))),
    body,
  );
}

class VenueAccount {
  constructor(venue, ctx) {
    this.venue = venue;
    this.ctx = ctx;
    this.balances = new Map(); // asset → {total, hold, stale}
    this.orders = new Map(); // order_id → order_update
    this.fills = []; // newest first
    this.fillIds = new Set();
    this.streamLive = null; // null: no status heard yet (trust REST's stale marks)
    const t = (key) => ctx.i18n.t(key);
    this.balanceBody = el("tbody");
    this.orderBody = el("tbody");
    this.fillBody = el("tbody");
    this.badge = el("span", { class: "badge" });
    this.node = el(
      "div",
      { class: "venue-account", dataset: { venue } },
      el("h2", { class: "venue-name" }, venue, " ", this.badge, " ", simulatedBadge(ctx.i18n, [venue])),
      el(
        "div",
        { class: "cards" },
        el(
          "section",
          { class: "panel" },
          el("h2", {}, t("account.balances")),
          table([[t("account.asset")], [t("account.total"), true], [t("account.hold"), true], [t("account.state")]], this.balanceBody),
        ),
        el(
          "section",
          { class: "panel" },
          el("h2", {}, t("account.orders")),
          table(
            [[t("account.order_id")], [t("col.symbol")], [t("col.side")], [t("col.qty"), true], [t("col.price"), true], [t("account.filled"), true], [t("account.status")]],
            this.orderBody,
          ),
        ),
      ),
      el(
        "section",
        { class: "panel" },
        el("h2", {}, t("account.fills")),
        table(
          [[t("col.time")], [t("col.symbol")], [t("col.side")], [t("col.qty"), true], [t("col.price"), true], [t("account.fee"), true], [t("account.order_id")]],
          this.fillBody,
        ),
      ),
    );
  }

  schedule() {
    this.ctx.frames.schedule(`cuenta:${this.venue}`, () => this.render());
  }

  loadRest(balances, orders, fills) {
    for (const b of balances.balances) this.balances.set(b.asset, { total: b.total, hold: b.hold, stale: b.stale });
    for (const o of orders.orders) this.orders.set(o.order_id, o);
    for (const f of [...fills.fills].reverse()) this.addFill(f);
    this.schedule();
  }

  addFill(fill) {
    if (this.fillIds.has(fill.exec_id)) return;
    this.fillIds.add(fill.exec_id);
    this.fills.unshift(fill);
    if (this.fills.length > FILLS_SHOWN) this.fills.length = FILLS_SHOWN;
  }

  onBalances = (event) => {
    if (event.kind === "status") {
      this.streamLive = event.state === "live";
    } else if (event.kind === "balance_snapshot") {
      this.balances.clear();
      for (const b of event.balances) this.balances.set(b.asset, { total: b.total, hold: b.hold, stale: false });
    } else if (event.kind === "balance_update") {
      const known = this.balances.get(event.asset);
      this.balances.set(event.asset, { total: event.total, hold: known?.hold ?? null, stale: false });
    } else {
      return;
    }
    this.schedule();
  };

  onExecutions = (event) => {
    if (event.kind === "order_update") {
      if (CLOSED.has(String(event.status).toLowerCase())) this.orders.delete(event.order_id);
      else this.orders.set(event.order_id, { ...this.orders.get(event.order_id), ...event });
    } else if (event.kind === "fill") {
      this.addFill(event);
    } else {
      return;
    }
    this.schedule();
  };

  render() {
    const { i18n } = this.ctx;
    const locale = i18n.locale;
    const t = (key) => i18n.t(key);
    const live = this.streamLive;
    setText(this.badge, live === null ? "" : live ? t("account.live") : t("account.stale"));
    this.badge.className = `badge ${live === null ? "" : live ? "live" : "stale"}`;
    const balanceRows = [...this.balances].sort(([a], [b]) => a.localeCompare(b)).map(([asset, b]) => {
      const stale = live === false || (live === null && b.stale);
      return el(
        "tr",
        { dataset: { asset, stale: String(stale) } },
        el("td", {}, asset),
        el("td", { class: "num" }, formatDecimal(b.total, locale)),
        el("td", { class: "num" }, b.hold === null || b.hold === undefined ? "" : formatDecimal(b.hold, locale)),
        el("td", {}, el("span", { class: `badge ${stale ? "stale" : "live"}` }, stale ? t("account.stale") : t("account.live"))),
      );
    });
    this.balanceBody.replaceChildren(...(balanceRows.length ? balanceRows : [emptyRow(4, t("common.none"))]));
    const orderRows = [...this.orders.values()].map((o) =>
      el(
        "tr",
        { dataset: { orderId: o.order_id } },
        el("td", {}, o.client_order_id ?? o.order_id),
        el("td", {}, o.symbol ?? ""),
        el("td", { class: o.side === "buy" ? "pos" : "neg" }, o.side ? t(`side.${o.side}`) : ""),
        el("td", { class: "num" }, formatDecimal(o.qty, locale)),
        el("td", { class: "num" }, formatDecimal(o.limit_price, locale)),
        el("td", { class: "num" }, formatDecimal(o.cum_qty, locale)),
        el("td", {}, o.status),
      ),
    );
    this.orderBody.replaceChildren(...(orderRows.length ? orderRows : [emptyRow(7, t("common.none"))]));
    const fillRows = this.fills.map((f) =>
      el(
        "tr",
        { dataset: { execId: f.exec_id } },
        el("td", { class: "muted" }, formatTime(f.ts, locale)),
        el("td", {}, f.symbol),
        el("td", { class: f.side === "buy" ? "pos" : "neg" }, t(`side.${f.side}`)),
        el("td", { class: "num" }, formatDecimal(f.qty, locale)),
        el("td", { class: "num" }, formatDecimal(f.price, locale)),
        el("td", { class: "num" }, `${formatDecimal(f.fee, locale)} ${f.fee_asset ?? ""}`.trim()),
        el("td", { class: "muted" }, f.order_id),
      ),
    );
    this.fillBody.replaceChildren(...(fillRows.length ? fillRows : [emptyRow(7, t("common.none"))]));
  }
}

function emptyRow(span, text) {
  return el("tr", {}, el("td", { colspan: String(span), class: "muted" }, text));
}

function signInForm(ctx, notices, onSignedIn) {
  const { i18n } = ctx;
  const t = (key) => i18n.t(key);
  const input = el("input", { type: "password", name: "key", autocomplete: "off", "aria-label": t("account.key"), placeholder: t("account.key") });
  const form = el("form", {}, input, el("button", { type: "submit", class: "btn" }, t("account.signin")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("/api/session", { method: "POST", body: { key: input.value } });
      input.value = "";
      onSignedIn();
    } catch (error) {
      notices.replaceChildren(errorBox(error, i18n));
    }
  });
  return el("section", { class: "panel signin", dataset: { testid: "signin" } }, el("h2", {}, t("account.signin")), el("div", { class: "muted" }, t("account.signin_help")), form);
}

export function mount(root, ctx) {
  const { i18n, bridge } = ctx;
  const t = (key, values) => i18n.t(key, values);
  const handles = [];
  let disposed = false;
  const notices = el("div");
  const who = el("span", { class: "muted" });
  const toolbar = el("div", { class: "toolbar" }, who);
  const content = el("div");
  root.append(el("section", { class: "page-head" }, el("h1", {}, t("account.title")), toolbar), notices, content);

  const reload = () => {
    bridge.reconnectNow(); // the socket must carry the new session's scopes
    location.hash = "#/cuenta";
    if (!disposed) {
      for (const handle of handles.splice(0)) handle.close();
      content.replaceChildren();
      notices.replaceChildren();
      start();
    }
  };

  async function start() {
    let session = { authenticated: false, scopes: [] };
    try {
      session = await api("/api/session");
    } catch (error) {
      if (error.status !== 401) notices.replaceChildren(errorBox(error, i18n));
    }
    if (disposed) return;
    if (!session.authenticated || !session.scopes.includes("account")) {
      setText(who, "");
      toolbar.replaceChildren(who);
      content.replaceChildren(signInForm(ctx, notices, reload));
      return;
    }
    setText(who, t("account.signed_in", { name: session.name ?? t("account.link") }));
    const signOut = el("button", { type: "button", class: "btn ghost" }, t("account.signout"));
    signOut.addEventListener("click", async () => {
      try {
        await api("/api/session", { method: "DELETE" });
      } catch (error) {
        notices.replaceChildren(errorBox(error, i18n));
        return;
      }
      reload();
    });
    toolbar.replaceChildren(who, signOut);
    try {
      const { venues } = await api("/api/venues");
      for (const { venue, credentials, simulated } of venues) {
        if (disposed) return;
        if (!credentials && !simulated) { // a simulator's demo account is an account, not the user's
          content.append(el("div", { class: "notice" }, `${venue}: ${t("account.no_credentials")}`));
          continue;
        }
        const account = new VenueAccount(venue, ctx);
        content.append(account.node);
        // Subscribe first, then read REST: nothing that happens in between is missed (fills dedupe).
        handles.push(bridge.subscribe({ venue, channel: "balances" }, account.onBalances, (e) => notices.replaceChildren(errorBox(e, i18n))));
        handles.push(bridge.subscribe({ venue, channel: "executions" }, account.onExecutions, (e) => notices.replaceChildren(errorBox(e, i18n))));
        const [balances, orders, fills] = await Promise.all([
          api(`/api/balances/${venue}`),
          api(`/api/orders/${venue}`),
          api(`/api/fills/${venue}`),
        ]);
        account.loadRest(balances, orders, fills);
      }
    } catch (error) {
      if (!disposed) notices.replaceChildren(errorBox(error, i18n));
    }
  }

  start();
  return () => {
    disposed = true;
    for (const handle of handles) handle.close();
  };
}
