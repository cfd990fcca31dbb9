// Cuenta / Account: per venue with credentials, the balances (each marked live or stale: stale
// while the private stream is down — a balance is never shown as 0 because a stream dropped), the
// orders believed open, and the recent executions with a CSV export of all of them. Needs the
// `account` scope: the browser's session cookie (the sign-in link `serve` prints, or an API key
// typed in the form below). With the `trade` scope too, the page trades: an order ticket
// (ticket.js), and cancel and amend on every open order — each order and amend confirmed first.

import { api, BridgeError, errorBox } from "../api.js";
import { isMultiple, parseTyped, typedForm } from "../decimal.js";
import { el, setText } from "../dom.js";
import { formatDecimal, formatTime } from "../format.js";
import { simulatedBadge } from "../simulated.js";
import { confirmDialog, OrderTicket, venueLocale } from "./ticket.js";

const CLOSED = new Set(["filled", "canceled", "cancelled", "expired", "rejected", "closed"]);
const FILLS_SHOWN = 50;
const FILL_PAGE = 5000; // fills per page of the journal (the server's most)
const FILL_PAGES_READ = 20; // at most 100,000 fills read for the newest FILLS_SHOWN

/** The session may trade: `trade` by name (the server's `admin` grants every scope but this one). */
export function canTrade(session) {
  return session.scopes.includes("trade");
}

function table(headers, body) {
  return el(
    "table",
    { class: "grid" },
    el("thead", {}, el("tr", {}, ...headers.map(([text, num]) => el("th", { class: num ? "num" : "" }, text)))),
    body,
  );
}

class VenueAccount {
  /** `trading`: null (read only) or {simulated, rulesOf(symbol)} when the session may trade. */
  constructor(venue, ctx, trading = null) {
    this.venue = venue;
    this.ctx = ctx;
    this.trading = trading;
    this.balances = new Map(); // asset → {total, hold, stale}
    this.orders = new Map(); // order_id → order_update
    this.ended = new Set(); // order ids seen closed: a late ack never brings one back
    this.pending = new Map(); // order_id → "cancel" | "amend" while the request is out
    this.editing = null; // {orderId, row} of the open amend form
    this.fills = []; // newest first
    this.fillIds = new Set();
    this.streamLive = null; // null: no status heard yet (trust REST's stale marks)
    const t = (key) => ctx.i18n.t(key);
    this.balanceBody = el("tbody");
    this.orderBody = el("tbody");
    this.fillBody = el("tbody");
    this.badge = el("span", { class: "badge" });
    this.notice = el("div", { dataset: { testid: "orders-notice" } });
    const orderHeaders = [[t("account.order_id")], [t("col.symbol")], [t("col.side")], [t("col.qty"), true], [t("col.price"), true], [t("account.filled"), true], [t("account.status")]];
    if (trading) orderHeaders.push([""]);
    this.orderColumns = orderHeaders.length;
    const csv = el(
      "a",
      { class: "btn ghost small", href: `/api/fills/${encodeURIComponent(venue)}?format=csv`, download: true, dataset: { testid: "fills-csv" } },
      t("account.export_csv"),
    );
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
        el("section", { class: "panel orders", dataset: { testid: "orders" } }, el("h2", {}, t("account.orders")), this.notice, table(orderHeaders, this.orderBody)),
      ),
      el(
        "section",
        { class: "panel" },
        el("div", { class: "panel-head" }, el("h2", {}, t("account.fills")), csv),
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
    for (const o of orders.orders) if (!this.ended.has(o.order_id)) this.orders.set(o.order_id, o);
    for (const f of fills) this.addFill(f);
    this.schedule();
  }

  /** The newest FILLS_SHOWN fills of the journal, oldest first (its pages run oldest first). */
  async newestFills() {
    const base = `/api/fills/${encodeURIComponent(this.venue)}`;
    let kept = [];
    let page = await api(`${base}?limit=${FILL_PAGE}`);
    for (let read = 1; ; read += 1) {
      kept = kept.concat(page.fills).slice(-FILLS_SHOWN);
      if (!page.next || read >= FILL_PAGES_READ) return kept;
      page = await api(`${base}?limit=${FILL_PAGE}&after=${encodeURIComponent(page.next)}`);
    }
  }

  /** The venue took an order placed from the ticket: show it open now (its events follow). */
  placed(order, ack) {
    if (!ack.order_id || ack.duplicate || this.orders.has(ack.order_id) || this.ended.has(ack.order_id)) return;
    this.orders.set(ack.order_id, {
      order_id: ack.order_id,
      client_order_id: ack.client_order_id,
      symbol: order.symbol,
      side: order.side,
      qty: order.qty,
      limit_price: order.price ?? null,
      cum_qty: "0",
      status: "pending_new",
    });
    this.schedule();
  }

  async cancel(order) {
    const { i18n } = this.ctx;
    this.pending.set(order.order_id, "cancel");
    this.schedule();
    try {
      await api(`/api/orders/${encodeURIComponent(this.venue)}/${encodeURIComponent(order.order_id)}`, { method: "DELETE" });
      // Canceled, or no longer open (canceled: 0): either way not open. Its events may follow.
      this.close(order.order_id);
      this.notice.replaceChildren();
    } catch (error) {
      this.notice.replaceChildren(errorBox(error, i18n));
      if (error instanceof BridgeError && error.code === "unknown_order") this.close(order.order_id);
    } finally {
      this.pending.delete(order.order_id);
      this.schedule();
    }
  }

  close(orderId) {
    this.orders.delete(orderId);
    this.ended.add(orderId);
    if (this.editing?.orderId === orderId) this.editing = null;
  }

  /** An amend form under the order's row: new size and price, checked, confirmed, then sent. */
  edit(order) {
    const { i18n } = this.ctx;
    const t = (key) => i18n.t(key);
    const locale = venueLocale(this.venue, i18n);
    const qty = el("input", { name: "qty", inputmode: "decimal", class: "amount", "aria-label": t("col.qty"), value: typedForm(order.qty ?? "", locale) });
    const price = el("input", { name: "price", inputmode: "decimal", class: "amount", "aria-label": t("col.price"), value: typedForm(order.limit_price ?? "", locale) });
    const problem = el("span", { class: "ticket-problem", role: "alert" });
    const review = el("button", { type: "submit", class: "btn small", dataset: { action: "review-amend" } }, t("ticket.review"));
    const back = el("button", { type: "button", class: "btn ghost small", onclick: () => this.stopEditing() }, t("ticket.back"));
    const form = el("form", { class: "amend", dataset: { testid: "amend" } }, `${t("col.qty")} `, qty, ` ${t("col.price")} `, price, " ", review, " ", back, " ", problem);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.amend(order, qty.value, price.value, problem);
    });
    this.editing = { orderId: order.order_id, row: el("tr", { class: "amend-row" }, el("td", { colspan: String(this.orderColumns) }, form)) };
    this.schedule();
  }

  stopEditing() {
    this.editing = null;
    this.schedule();
  }

  async amend(order, qtyText, priceText, problem) {
    const { i18n } = this.ctx;
    const locale = venueLocale(this.venue, i18n);
    const body = {};
    const rules = this.trading.rulesOf(order.symbol);
    for (const [field, text, step, label] of [
      ["qty", qtyText, rules?.qtyStep, "col.qty"],
      ["price", priceText, rules?.priceStep, "col.price"],
    ]) {
      if (field === "price" && !text.trim() && !order.limit_price) continue; // a market order has none
      const typed = parseTyped(text, locale);
      if (typed.error) return problem.replaceChildren(`${i18n.t(label)}: ${i18n.t(typed.error)}`);
      if (step && !isMultiple(typed.value, step)) {
        const key = field === "qty" ? "ticket.err.qty_step" : "ticket.err.tick";
        return problem.replaceChildren(i18n.t(key, { step: formatDecimal(step, locale), tick: formatDecimal(step, locale) }));
      }
      body[field] = typed.value;
    }
    problem.replaceChildren();
    const changes = [];
    if (body.qty !== undefined) changes.push(`${i18n.t("col.qty")} ${formatDecimal(order.qty, locale)} → ${formatDecimal(body.qty, locale)}`);
    if (body.price !== undefined) changes.push(`${i18n.t("col.price")} ${formatDecimal(order.limit_price, locale)} → ${formatDecimal(body.price, locale)}`);
    const sure = await confirmDialog(i18n, {
      title: i18n.t("amend.confirm_title", { venue: this.venue }),
      summary: i18n.t("amend.summary", { id: order.client_order_id ?? order.order_id, symbol: order.symbol ?? "", changes: changes.join(", "), venue: this.venue }),
      simulated: this.trading.simulated,
      sendLabel: i18n.t("amend.send"),
    });
    if (!sure) return;
    this.pending.set(order.order_id, "amend");
    this.schedule();
    try {
      const ack = await api(`/api/orders/${encodeURIComponent(this.venue)}/${encodeURIComponent(order.order_id)}`, { method: "PATCH", body });
      this.stopEditing();
      this.notice.replaceChildren();
      // Amended: the venue's events carry the new figures; show them now. A venue that gives the
      // order a new id on amend (Primary's replace) names it in the ack.
      const now = { ...this.orders.get(order.order_id), qty: body.qty ?? order.qty, limit_price: body.price ?? order.limit_price };
      if (ack.order_id && ack.order_id !== order.order_id) {
        this.close(order.order_id);
        if (!this.ended.has(ack.order_id)) this.orders.set(ack.order_id, { ...now, order_id: ack.order_id, ...this.orders.get(ack.order_id) });
      } else if (this.orders.has(order.order_id)) {
        this.orders.set(order.order_id, now);
      }
    } catch (error) {
      this.notice.replaceChildren(errorBox(error, i18n));
    } finally {
      this.pending.delete(order.order_id);
      this.schedule();
    }
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
      if (CLOSED.has(String(event.status).toLowerCase())) this.close(event.order_id);
      else if (!this.ended.has(event.order_id)) this.orders.set(event.order_id, { ...this.orders.get(event.order_id), ...sparse(event) });
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
    const numbers = venueLocale(this.venue, i18n); // Primary's figures in es-AR, as on its pages
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
        el("td", { class: "num" }, formatDecimal(b.total, numbers)),
        el("td", { class: "num" }, b.hold === null || b.hold === undefined ? "" : formatDecimal(b.hold, numbers)),
        el("td", {}, el("span", { class: `badge ${stale ? "stale" : "live"}` }, stale ? t("account.stale") : t("account.live"))),
      );
    });
    this.balanceBody.replaceChildren(...(balanceRows.length ? balanceRows : [emptyRow(4, t("common.none"))]));
    const orderRows = [];
    for (const o of this.orders.values()) {
      const pending = this.pending.get(o.order_id);
      orderRows.push(
        el(
          "tr",
          { dataset: { orderId: o.order_id, clientOrderId: o.client_order_id ?? "", ...(pending ? { pending } : {}) } },
          el("td", { title: o.order_id }, o.client_order_id ?? o.order_id),
          el("td", {}, o.symbol ?? ""),
          el("td", { class: o.side === "buy" ? "pos" : "neg" }, o.side ? t(`side.${o.side}`) : ""),
          el("td", { class: "num" }, formatDecimal(o.qty, numbers)),
          el("td", { class: "num" }, formatDecimal(o.limit_price, numbers)),
          el("td", { class: "num" }, formatDecimal(o.cum_qty, numbers)),
          el("td", {}, pending ? t(`orders.${pending}ing`) : o.status),
          this.trading ? this.actions(o, pending) : null,
        ),
      );
      if (this.editing?.orderId === o.order_id) orderRows.push(this.editing.row);
    }
    this.orderBody.replaceChildren(...(orderRows.length ? orderRows : [emptyRow(this.orderColumns, t("common.none"))]));
    const fillRows = this.fills.map((f) =>
      el(
        "tr",
        { dataset: { execId: f.exec_id } },
        el("td", { class: "muted" }, formatTime(f.ts, locale)),
        el("td", {}, f.symbol),
        el("td", { class: f.side === "buy" ? "pos" : "neg" }, t(`side.${f.side}`)),
        el("td", { class: "num" }, formatDecimal(f.qty, numbers)),
        el("td", { class: "num" }, formatDecimal(f.price, numbers)),
        el("td", { class: "num" }, `${formatDecimal(f.fee, numbers)} ${f.fee_asset ?? ""}`.trim()),
        el("td", { class: "muted" }, f.order_id),
      ),
    );
    this.fillBody.replaceChildren(...(fillRows.length ? fillRows : [emptyRow(7, t("common.none"))]));
  }

  actions(order, pending) {
    const t = (key) => this.ctx.i18n.t(key);
    const cancel = el("button", { type: "button", class: "btn ghost small", dataset: { action: "cancel" }, disabled: Boolean(pending), onclick: () => this.cancel(order) }, t("orders.cancel"));
    const amend = el("button", { type: "button", class: "btn ghost small", dataset: { action: "amend" }, disabled: Boolean(pending), onclick: () => this.edit(order) }, t("orders.amend"));
    return el("td", { class: "actions" }, amend, " ", cancel);
  }
}

/** An order_update's fields that it carries (None/null: unchanged, so kept from before). */
function sparse(event) {
  return Object.fromEntries(Object.entries(event).filter(([, value]) => value !== null && value !== undefined));
}

function emptyRow(span, text) {
  return el("tr", {}, el("td", { colspan: String(span), class: "muted" }, text));
}

/** The API-key sign-in form (`help`: why it is shown — no account, or no trade scope). */
function signInForm(ctx, notices, onSignedIn, { help = "account.signin_help", testid = "signin" } = {}) {
  const { i18n } = ctx;
  const t = (key) => i18n.t(key);
  const input = el("input", { type: "password", name: "key", autocomplete: "off", "aria-label": t("account.key"), placeholder: t("account.key") });
  const form = el("form", {}, input, el("button", { type: "submit", class: "btn" }, t("account.signin")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await ctx.bridge.signIn(input.value);
      input.value = "";
      onSignedIn();
    } catch (error) {
      notices.replaceChildren(errorBox(error, i18n));
    }
  });
  return el("section", { class: "panel signin", dataset: { testid } }, el("h2", {}, t("account.signin")), el("div", { class: "muted" }, t(help)), form);
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
    bridge.reconnect(); // the socket must carry the new session's scopes
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
      session = await bridge.session(); // also keeps the session's CSRF token for order requests
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
    const trading = canTrade(session);
    setText(who, t(trading ? "account.signed_in_trade" : "account.signed_in", { name: session.name ?? t("account.link") }));
    const signOut = el("button", { type: "button", class: "btn ghost" }, t("account.signout"));
    signOut.addEventListener("click", async () => {
      try {
        await bridge.signOut();
      } catch (error) {
        notices.replaceChildren(errorBox(error, i18n));
        return;
      }
      reload();
    });
    toolbar.replaceChildren(who, signOut);
    try {
      const { venues } = await api("/api/venues");
      if (disposed) return;
      // A simulator's demo account is an account, not the user's: it trades on the simulator.
      const held = venues.filter((v) => v.credentials || v.simulated);
      const accounts = new Map();
      let ticket = null;
      if (trading && held.length) {
        ticket = new OrderTicket(ctx, held, { onAck: (order, ack) => accounts.get(order.venue)?.placed(order, ack) });
        handles.push({ close: () => ticket.close() });
        content.append(ticket.node);
      } else if (held.length) {
        content.append(signInForm(ctx, notices, reload, { help: "account.trade_help", testid: "trade-signin" }));
      }
      for (const { venue, credentials, simulated } of venues) {
        if (disposed) return;
        if (!credentials && !simulated) {
          content.append(el("div", { class: "notice" }, `${venue}: ${t("account.no_credentials")}`));
          continue;
        }
        const rulesOf = (symbol) => ticket?.rules.get(venue)?.get(symbol) ?? null;
        const account = new VenueAccount(venue, ctx, ticket ? { simulated, rulesOf } : null);
        accounts.set(venue, account);
        content.append(account.node);
        // Subscribe first, then read REST: nothing that happens in between is missed (fills dedupe).
        handles.push(bridge.subscribe({ venue, channel: "balances" }, account.onBalances, (e) => notices.replaceChildren(errorBox(e, i18n))));
        handles.push(bridge.subscribe({ venue, channel: "executions" }, account.onExecutions, (e) => notices.replaceChildren(errorBox(e, i18n))));
        const [balances, orders, fills] = await Promise.all([
          api(`/api/balances/${venue}`),
          api(`/api/orders/${venue}`),
          account.newestFills(),
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
