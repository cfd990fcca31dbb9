// The order ticket of the Cuenta page, and the confirmation every order and amend goes through.
//
// Prices and sizes are typed in the venue's convention (Primary: es-AR, "7145,50"; Kraken: the
// page's language) and checked against the instrument before anything is sent — Primary's tick,
// size increment, minimum and price limits from its instrument details (`/api/instruments`),
// Kraken's price and size increments, minimum size and minimum cost from the `instruments`
// channel. The server checks again (order_refused names the rule); these checks only spare a round
// trip and show the increments, with −/+ buttons that step by them.
//
// Every order carries a client order id minted here when it is confirmed: sending it again after a
// timeout or a dropped answer ("Reintentar") can never make a second order — the bridge answers
// the first order's ack, marked duplicate.

import { api, BridgeError, errorBox } from "../api.js";
import { compare, isMultiple, multiply, parseTyped, stepped, typedForm } from "../decimal.js";
import { el, segmented, setText } from "../dom.js";
import { formatDecimal } from "../format.js";

const DEFAULT_SYMBOL = { kraken: "BTC/USD", primary: "MERV - XMEV - GGAL - 24hs" };
// Times in force each venue takes ("" = the venue's default: Kraken gtc, Primary day).
const TIME_IN_FORCE = { kraken: ["gtc", "ioc"], primary: ["day", "ioc", "fok"] };

/** The number locale of a venue's figures: Primary's are always es-AR (as on its Mercado pages). */
export function venueLocale(venue, i18n) {
  return venue === "primary" ? "es-AR" : i18n.locale;
}

/** A client order id (core/orders.py CLIENT_ORDER_ID: up to 18 of [A-Za-z0-9_-]): "bbw" + 15 hex. */
export function mintClientOrderId() {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  return `bbw${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 15)}`;
}

/** What an order must respect, from Kraken's `instrument` event or Primary's instrument detail. */
function rulesOfKraken(event) {
  return {
    priceStep: event.price_increment,
    qtyStep: event.qty_increment,
    qtyMin: event.qty_min,
    costMin: event.cost_min ?? null,
    low: null,
    high: null,
    priceDigits: event.price_precision,
  };
}

function rulesOfPrimary(detail) {
  const positive = (v) => (v !== null && v !== undefined && compare(v, "0") > 0 ? v : null);
  return {
    priceStep: positive(detail.tick),
    qtyStep: positive(detail.qty_increment) ?? "1",
    qtyMin: positive(detail.min_qty),
    qtyMax: positive(detail.max_qty),
    costMin: null,
    low: positive(detail.low_limit),
    high: positive(detail.high_limit),
    lot: positive(detail.lot),
    priceDigits: detail.price_precision ?? 2,
  };
}

/**
 * A modal confirmation: `lines` (text or nodes) and two buttons. Resolves true when the person
 * chose `sendLabel`, false on "back", Escape or closing it.
 */
export function confirmDialog(i18n, { title, summary, lines = [], simulated = false, sendLabel }) {
  const t = (key) => i18n.t(key);
  return new Promise((resolve) => {
    const send = el("button", { type: "button", class: "btn", dataset: { action: "send" } }, sendLabel);
    const back = el("button", { type: "button", class: "btn ghost", dataset: { action: "back" } }, t("ticket.back"));
    const dialog = el(
      "dialog",
      { class: "confirm", dataset: { testid: "confirm" }, "aria-labelledby": "confirm-title" },
      el("h2", { id: "confirm-title" }, title),
      simulated
        ? el("div", { class: "confirm-sim" }, el("span", { class: "badge simulated" }, t("sim.badge")), " ", t("ticket.simulated_note"))
        : null,
      el("p", { class: "confirm-summary", dataset: { testid: "confirm-summary" } }, summary),
      ...lines.map((line) => el("div", { class: "muted" }, line)),
      el("div", { class: "confirm-actions" }, back, send),
    );
    let answer = false;
    send.addEventListener("click", () => {
      answer = true;
      dialog.close();
    });
    back.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    back.focus(); // Enter on an opened dialog must not send: sending is a deliberate click
  });
}

/** The order as a sentence: "COMPRA 0,01 BTC/USD a 63.472,5 en kraken". */
export function orderSummary(i18n, order, locale) {
  const side = i18n.t(`ticket.side.${order.side}`).toUpperCase();
  const qty = formatDecimal(order.qty, locale);
  const price =
    order.type === "market" ? i18n.t("ticket.at_market") : i18n.t("ticket.at_price", { price: formatDecimal(order.price, locale) });
  return i18n.t("ticket.summary", { side, qty, symbol: order.symbol, price, venue: order.venue });
}

export class OrderTicket {
  /** `venues`: [{venue, simulated}] that may trade; `onAck(order, ack)` after the venue's answer. */
  constructor(ctx, venues, { onAck }) {
    this.ctx = ctx;
    this.venues = venues;
    this.onAck = onAck;
    this.rules = new Map(); // venue → Map(symbol → rules)
    this.loading = new Map(); // venue → promise of its rules
    this.handles = [];
    this.quoteHandle = null;
    this.quote = null;
    this.disposed = false;
    const { i18n } = ctx;
    const t = (key) => i18n.t(key);

    this.venueSelect = el("select", { name: "venue", "aria-label": t("ticket.venue") }, ...venues.map(({ venue }) => el("option", { value: venue }, venue)));
    this.symbolList = el("datalist", { id: "ticket-symbols" });
    this.symbolInput = el("input", { name: "symbol", list: "ticket-symbols", autocomplete: "off", spellcheck: "false", "aria-label": t("col.symbol"), class: "symbol" });
    this.side = "buy";
    this.sideControl = segmented(
      [
        ["buy", t("ticket.side.buy")],
        ["sell", t("ticket.side.sell")],
      ],
      this.side,
      (value) => {
        this.side = value;
        this.form.dataset.side = value;
        this.check();
      },
      t("col.side"),
    );
    this.sideControl.dataset.field = "side";
    this.typeSelect = el(
      "select",
      { name: "type", "aria-label": t("ticket.type") },
      el("option", { value: "limit" }, t("ticket.type.limit")),
      el("option", { value: "market" }, t("ticket.type.market")),
    );
    this.tifSelect = el("select", { name: "tif", "aria-label": t("ticket.tif") });
    this.qtyInput = el("input", { name: "qty", inputmode: "decimal", autocomplete: "off", "aria-label": t("col.qty"), class: "amount" });
    this.priceInput = el("input", { name: "price", inputmode: "decimal", autocomplete: "off", "aria-label": t("col.price"), class: "amount" });
    this.rulesLine = el("div", { class: "muted ticket-rules", dataset: { testid: "ticket-rules" } });
    this.quoteLine = el("div", { class: "ticket-quote" });
    this.problem = el("div", { class: "ticket-problem", role: "alert", dataset: { testid: "ticket-problem" } });
    this.notional = el("div", { class: "muted" });
    this.submit = el("button", { type: "submit", class: "btn", dataset: { testid: "ticket-submit" } }, t("ticket.review"));
    this.result = el("div", { dataset: { testid: "ticket-result" } });

    // Not <label>: a label forwards a click on its text to its first button (a stepper's "−").
    const field = (label, ...control) => el("div", { class: "field" }, el("span", { class: "field-label" }, label), ...control);
    const stepper = (input, which) =>
      el(
        "span",
        { class: "stepper" },
        el("button", { type: "button", class: "step", "aria-label": `${which} −`, dataset: { step: `${which}:-1` } }, "−"),
        input,
        el("button", { type: "button", class: "step", "aria-label": `${which} +`, dataset: { step: `${which}:1` } }, "+"),
      );
    this.priceField = field(t("col.price"), stepper(this.priceInput, "price"));
    this.form = el(
      "form",
      { class: "ticket", dataset: { testid: "ticket", side: this.side }, novalidate: true },
      el(
        "div",
        { class: "ticket-row" },
        field(t("ticket.venue"), this.venueSelect),
        field(t("col.symbol"), this.symbolInput, this.symbolList),
        field(t("col.side"), this.sideControl),
        field(t("ticket.type"), this.typeSelect),
        field(t("col.qty"), stepper(this.qtyInput, "qty")),
        this.priceField,
        field(t("ticket.tif"), this.tifSelect),
        el("div", { class: "field" }, el("span", { class: "field-label" }, "\u00a0"), this.submit),
      ),
      this.rulesLine,
      this.quoteLine,
      this.notional,
      this.problem,
    );
    this.node = el("section", { class: "panel ticket-panel" }, el("h2", {}, t("ticket.title")), this.form, this.result);

    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.review();
    });
    this.form.addEventListener("click", (e) => {
      const button = e.target.closest("button[data-step]");
      if (button) this.step(...button.dataset.step.split(":"));
    });
    for (const input of [this.qtyInput, this.priceInput]) {
      input.addEventListener("input", () => this.check());
      input.addEventListener("keydown", (e) => {
        if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
        e.preventDefault();
        this.step(input === this.qtyInput ? "qty" : "price", e.key === "ArrowUp" ? "1" : "-1");
      });
    }
    this.venueSelect.addEventListener("change", () => this.selectVenue());
    this.symbolInput.addEventListener("change", () => this.selectSymbol());
    this.typeSelect.addEventListener("change", () => {
      this.priceField.hidden = this.typeSelect.value === "market";
      this.check();
    });
    this.selectVenue();
  }

  get venue() {
    return this.venueSelect.value;
  }

  get locale() {
    return venueLocale(this.venue, this.ctx.i18n);
  }

  get simulated() {
    return Boolean(this.venues.find((v) => v.venue === this.venue)?.simulated);
  }

  close() {
    this.disposed = true;
    for (const handle of this.handles) handle.close();
    this.quoteHandle?.close();
  }

  /** The instrument rules of `venue`, loaded once: Primary's catalogue, Kraken's instruments channel. */
  rulesOf(venue) {
    let loading = this.loading.get(venue);
    if (loading) return loading;
    const rules = new Map();
    this.rules.set(venue, rules);
    if (venue === "kraken") {
      loading = new Promise((resolve) => {
        let settle = null;
        const handle = this.ctx.bridge.subscribe(
          { venue, channel: "instruments" },
          (event) => {
            if (event.kind !== "instrument") return;
            rules.set(event.symbol, rulesOfKraken(event));
            // Instruments arrive as a burst: resolve once it has paused.
            clearTimeout(settle);
            settle = setTimeout(() => resolve(rules), 150);
          },
          (error) => {
            this.problem.replaceChildren(errorBox(error, this.ctx.i18n));
            resolve(rules);
          },
        );
        this.handles.push(handle);
        setTimeout(() => resolve(rules), 10_000); // none came: the ticket says the symbol is unknown
      });
    } else {
      loading = api(`/api/instruments?venue=${encodeURIComponent(venue)}`)
        .then((body) => {
          for (const detail of body.instruments) if (detail.tick !== undefined) rules.set(detail.symbol, rulesOfPrimary(detail));
          return rules;
        })
        .catch((error) => {
          this.problem.replaceChildren(errorBox(error, this.ctx.i18n));
          return rules;
        });
    }
    this.loading.set(venue, loading);
    return loading;
  }

  async selectVenue() {
    const venue = this.venue;
    const t = (key) => this.ctx.i18n.t(key);
    this.tifSelect.replaceChildren(
      el("option", { value: "" }, t("ticket.tif.default")),
      ...(TIME_IN_FORCE[venue] ?? []).map((tif) => el("option", { value: tif }, tif.toUpperCase())),
    );
    this.symbolInput.value = DEFAULT_SYMBOL[venue] ?? "";
    this.qtyInput.value = "";
    this.priceInput.value = "";
    const rules = await this.rulesOf(venue);
    if (this.disposed || venue !== this.venue) return;
    this.symbolList.replaceChildren(...[...rules.keys()].sort().map((symbol) => el("option", { value: symbol })));
    if (!rules.has(this.symbolInput.value)) this.symbolInput.value = rules.keys().next().value ?? "";
    this.selectSymbol();
  }

  selectSymbol() {
    const { i18n, bridge } = this.ctx;
    const venue = this.venue;
    const symbol = this.symbolInput.value.trim();
    const rules = this.currentRules();
    const locale = this.locale;
    const parts = [];
    if (rules) {
      if (rules.priceStep) parts.push(i18n.t("ticket.rule.tick", { value: formatDecimal(rules.priceStep, locale) }));
      parts.push(i18n.t("ticket.rule.qty_step", { value: formatDecimal(rules.qtyStep, locale) }));
      if (rules.qtyMin) parts.push(i18n.t("ticket.rule.qty_min", { value: formatDecimal(rules.qtyMin, locale) }));
      if (rules.costMin) parts.push(i18n.t("ticket.rule.cost_min", { value: formatDecimal(rules.costMin, locale) }));
      if (rules.lot && compare(rules.lot, "1") !== 0) parts.push(i18n.t("ticket.rule.lot", { value: formatDecimal(rules.lot, locale) }));
      if (rules.low || rules.high) {
        parts.push(i18n.t("ticket.rule.limits", { low: formatDecimal(rules.low ?? "0", locale), high: rules.high ? formatDecimal(rules.high, locale) : "∞" }));
      }
      if (!this.qtyInput.value && rules.qtyMin) this.qtyInput.value = typedForm(rules.qtyMin, locale);
    }
    setText(this.rulesLine, parts.join(" · "));
    // The top of the book, to price the order from: click a side to copy it.
    this.quoteHandle?.close();
    this.quoteHandle = null;
    this.quote = null;
    this.quoteLine.replaceChildren();
    if (symbol && rules) {
      this.quoteHandle = bridge.subscribe({ venue, channel: "ticker", symbol }, (event) => {
        if (event.kind !== "ticker" || venue !== this.venue) return;
        this.quote = event;
        this.ctx.frames.schedule("cuenta:ticket:quote", () => this.renderQuote());
      });
    }
    this.check();
  }

  renderQuote() {
    const quote = this.quote;
    if (!quote) return;
    const { i18n } = this.ctx;
    const locale = this.locale;
    const digits = this.currentRules()?.priceDigits ?? 0;
    const pick = (key, value) => {
      if (value === null || value === undefined) return el("span", { class: "muted" }, `${i18n.t(key)}: —`);
      const use = () => {
        this.priceInput.value = typedForm(value, locale);
        this.check();
      };
      const text = `${i18n.t(key)}: ${formatDecimal(value, locale, digits)}`;
      return el("button", { type: "button", class: "link", dataset: { quote: key }, onclick: use }, text);
    };
    this.quoteLine.replaceChildren(pick("col.bid", quote.bid), " ", pick("col.ask", quote.ask));
  }

  currentRules() {
    return this.rules.get(this.venue)?.get(this.symbolInput.value.trim()) ?? null;
  }

  step(which, direction) {
    const rules = this.currentRules();
    const input = which === "qty" ? this.qtyInput : this.priceInput;
    const step = which === "qty" ? rules?.qtyStep : rules?.priceStep;
    if (!step) return;
    const typed = parseTyped(input.value, this.locale);
    const start = typed.value ?? (which === "qty" ? rules.qtyMin ?? step : this.quote?.bid ?? step);
    input.value = typedForm(typed.value === undefined ? start : stepped(start, step, Number(direction)), this.locale);
    this.check();
  }

  /** The order as typed, or the first problem with it (an i18n text). */
  read() {
    const { i18n } = this.ctx;
    const locale = this.locale;
    const symbol = this.symbolInput.value.trim();
    const type = this.typeSelect.value;
    const rules = this.currentRules();
    if (!symbol) return { problem: i18n.t("ticket.err.symbol") };
    if (!rules) return { problem: i18n.t("ticket.err.unknown_symbol", { symbol, venue: this.venue }) };
    const qty = parseTyped(this.qtyInput.value, locale);
    if (qty.error) return { problem: `${i18n.t("col.qty")}: ${i18n.t(qty.error)}`, empty: qty.error === "ticket.err.empty" };
    const fmt = (v) => formatDecimal(v, locale);
    if (rules.qtyStep && !isMultiple(qty.value, rules.qtyStep)) {
      return { problem: i18n.t("ticket.err.qty_step", { step: fmt(rules.qtyStep) }), rule: "lot_size" };
    }
    if (rules.qtyMin && compare(qty.value, rules.qtyMin) < 0) return { problem: i18n.t("ticket.err.qty_min", { min: fmt(rules.qtyMin) }), rule: "min_qty" };
    if (rules.qtyMax && compare(qty.value, rules.qtyMax) > 0) return { problem: i18n.t("ticket.err.qty_max", { max: fmt(rules.qtyMax) }), rule: "max_qty" };
    const order = { venue: this.venue, symbol, side: this.side, type, qty: qty.value };
    if (this.tifSelect.value) order.time_in_force = this.tifSelect.value;
    if (type === "limit") {
      const price = parseTyped(this.priceInput.value, locale);
      if (price.error) return { problem: `${i18n.t("col.price")}: ${i18n.t(price.error)}`, empty: price.error === "ticket.err.empty" };
      if (rules.priceStep && !isMultiple(price.value, rules.priceStep)) {
        return { problem: i18n.t("ticket.err.tick", { tick: fmt(rules.priceStep) }), rule: "tick_size" };
      }
      if ((rules.low && compare(price.value, rules.low) < 0) || (rules.high && compare(price.value, rules.high) > 0)) {
        return { problem: i18n.t("ticket.err.limits", { low: fmt(rules.low ?? "0"), high: rules.high ? fmt(rules.high) : "∞" }), rule: "price_band" };
      }
      order.price = price.value;
      const cost = multiply(price.value, qty.value);
      if (rules.costMin && compare(cost, rules.costMin) < 0) return { problem: i18n.t("ticket.err.cost_min", { min: fmt(rules.costMin) }), rule: "min_notional" };
      order.notional = cost;
    }
    return { order };
  }

  /** Show the first problem as the person types (a field not filled in yet is not one until sent). */
  check() {
    const { order, problem, empty } = this.read();
    this.problem.replaceChildren(...(empty || !problem ? [] : [problem]));
    setText(
      this.notional,
      order?.notional ? this.ctx.i18n.t("ticket.notional", { value: formatDecimal(order.notional, this.locale, 0, 8) }) : "",
    );
    return order;
  }

  async review() {
    const { i18n } = this.ctx;
    const { order, problem } = this.read();
    if (!order) {
      this.problem.replaceChildren(problem);
      return;
    }
    const locale = this.locale;
    const lines = [
      `${i18n.t("ticket.type")}: ${i18n.t(`ticket.type.${order.type}`)} · ${i18n.t("ticket.tif")}: ${order.time_in_force ? order.time_in_force.toUpperCase() : i18n.t("ticket.tif.default")}`,
    ];
    if (order.notional) lines.push(i18n.t("ticket.notional", { value: formatDecimal(order.notional, locale, 0, 8) }));
    const sure = await confirmDialog(i18n, {
      title: i18n.t("ticket.confirm_title", { venue: order.venue }),
      summary: orderSummary(i18n, order, locale),
      lines,
      simulated: this.simulated,
      sendLabel: i18n.t("ticket.send"),
    });
    if (!sure || this.disposed) return;
    const { notional, ...fields } = order;
    await this.send({ ...fields, client_order_id: mintClientOrderId() }, locale);
  }

  /** POST the order; a failure that may have left it unanswered offers to send the same again. */
  async send(body, locale) {
    const { i18n } = this.ctx;
    this.submit.disabled = true;
    this.result.replaceChildren(el("div", { class: "notice" }, i18n.t("ticket.sending")));
    try {
      const ack = await api("/api/orders", { method: "POST", body });
      if (this.disposed) return;
      this.result.replaceChildren(this.ackNotice(body, ack, locale));
      this.onAck(body, ack);
    } catch (error) {
      if (this.disposed) return;
      const box = errorBox(error, i18n);
      // No answer, or the bridge itself failing: the order may or may not be in. The same client
      // order id again is safe (never a second order), so offer exactly that.
      if (!(error instanceof BridgeError) || error.status === null || error.status >= 500) {
        const again = el("button", { type: "button", class: "btn ghost", dataset: { action: "retry" } }, i18n.t("ticket.retry"));
        again.addEventListener("click", () => this.send(body, locale));
        box.append(el("div", { class: "muted" }, i18n.t("ticket.retry_note", { id: body.client_order_id })), again);
      }
      this.result.replaceChildren(box);
    } finally {
      this.submit.disabled = false;
    }
  }

  ackNotice(order, ack, locale) {
    const { i18n } = this.ctx;
    const key = ack.duplicate ? "ticket.ack.duplicate" : ack.status === "unknown" ? "ticket.ack.unknown" : "ticket.ack.accepted";
    const text = i18n.t(key, { summary: orderSummary(i18n, order, locale), id: ack.order_id ?? "—", client: ack.client_order_id });
    const box = el("div", { class: `notice ${ack.status === "unknown" ? "warn" : "ok"}`, dataset: { status: ack.status, orderId: ack.order_id ?? "", clientOrderId: ack.client_order_id } }, text);
    if (ack.reason) box.append(el("div", { class: "muted" }, ack.reason));
    return box;
  }
}
