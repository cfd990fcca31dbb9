// Our texts in Spanish and English. Venue data (symbols, error texts sent by the server) is not
// translated; the states the server names (`live`, `reconnecting`, …) are, through `state.<name>`.
// The choice is kept in localStorage; pages re-render their labels on the "change" event.

const TEXTS = {
  es: {
    "nav.market": "Mercado",
    "nav.stocks": "Acciones",
    "nav.options": "Opciones",
    "nav.account": "Cuenta",
    "nav.status": "Estado",
    "conn.connecting": "Conectando…",
    "conn.live": "En vivo",
    "conn.degraded": "Conectado · {streams} sin datos en vivo",
    "conn.reconnecting": "Reconectando (intento {attempt}, en {seconds} s)…",
    "conn.retrying": "Reconectando (intento {attempt})…",
    "common.search": "Buscar",
    "common.all": "Todos",
    "common.loading": "Cargando…",
    "common.none": "Nada para mostrar",
    "common.updated": "Última actualización",
    "common.instruments": "{n} instrumentos",
    "common.error": "Error",
    "stocks.title": "Acciones",
    "stocks.settlement": "Plazo",
    "stocks.kind": "Panel",
    "stocks.kind.stock": "Acciones",
    "stocks.kind.cedear": "CEDEARs",
    "stocks.kind.both": "Acciones y CEDEARs",
    "col.symbol": "Símbolo",
    "col.settlement": "Plazo",
    "col.bid_qty": "Cant. compra",
    "col.bid": "Precio compra",
    "col.ask": "Precio venta",
    "col.ask_qty": "Cant. venta",
    "col.last": "Último",
    "col.change": "Variación",
    "col.change_pct": "Variación %",
    "col.time": "Hora",
    "col.volume": "Volumen",
    "col.strike": "Ejercicio",
    "col.price": "Precio",
    "col.qty": "Cantidad",
    "col.total": "Acumulado",
    "col.side": "Lado",
    "options.title": "Opciones",
    "options.underlying": "Subyacente",
    "options.calls": "Calls",
    "options.puts": "Puts",
    "options.expiry": "Vencimiento {date} ({days} días)",
    "options.spot": "Precio del subyacente",
    "options.none": "No hay opciones listadas sobre {underlying}",
    "crypto.pairs": "Pares",
    "crypto.book": "Libro de órdenes",
    "crypto.depth": "Profundidad",
    "crypto.trades": "Operaciones",
    "crypto.candles": "Velas",
    "crypto.spread": "Spread",
    "crypto.checksum": "checksum verificado por el bridge",
    "side.buy": "compra",
    "side.sell": "venta",
    "account.title": "Cuenta",
    "account.signin": "Ingresar",
    "account.signout": "Salir",
    "account.key": "Clave de API del bridge",
    "account.signin_help": "Ingresá con el enlace que imprime «brokerbridge serve» o con una clave de API con el permiso «account».",
    "account.signed_in": "Sesión: {name}",
    "account.link": "enlace de ingreso",
    "account.balances": "Saldos",
    "account.orders": "Órdenes abiertas",
    "account.fills": "Ejecuciones recientes",
    "account.asset": "Activo",
    "account.total": "Total",
    "account.hold": "Retenido",
    "account.state": "Estado",
    "account.live": "en vivo",
    "account.stale": "desactualizado",
    "account.no_credentials": "sin credenciales",
    "account.order_id": "Orden",
    "account.status": "Estado",
    "account.filled": "Ejecutado",
    "account.fee": "Comisión",
    "status.title": "Estado",
    "status.venue": "Mercado",
    "status.stream": "Stream",
    "status.state": "Estado",
    "status.mode": "Modo",
    "status.reconnects": "Reconexiones",
    "status.since": "Último mensaje (s)",
    "status.token": "Vence el token en",
    "status.subscriptions": "Suscripciones",
    "status.error": "Último error",
    "status.overall": "Estado general: {status}",
    "status.bridge": "Conexión del navegador con el bridge",
    "status.no_token": "—",
    "status.expired": "vencido",
    "health.ok": "normal",
    "health.degraded": "degradado",
    "mode.ws": "WebSocket",
    "mode.polling": "consultas REST",
    "mode.rest": "REST",
    "mode.down": "—",
    "state.connecting": "conectando",
    "state.live": "en vivo",
    "state.reconnecting": "reconectando",
    "state.polling": "por REST",
    "state.resyncing": "resincronizando",
    "state.stale": "desactualizado",
    "state.idle": "inactivo",
  },
  en: {
    "nav.market": "Market",
    "nav.stocks": "Stocks",
    "nav.options": "Options",
    "nav.account": "Account",
    "nav.status": "Status",
    "conn.connecting": "Connecting…",
    "conn.live": "Live",
    "conn.degraded": "Connected · {streams} not live",
    "conn.reconnecting": "Reconnecting (attempt {attempt}, in {seconds} s)…",
    "conn.retrying": "Reconnecting (attempt {attempt})…",
    "common.search": "Search",
    "common.all": "All",
    "common.loading": "Loading…",
    "common.none": "Nothing to show",
    "common.updated": "Last update",
    "common.instruments": "{n} instruments",
    "common.error": "Error",
    "stocks.title": "Stocks",
    "stocks.settlement": "Settlement",
    "stocks.kind": "Panel",
    "stocks.kind.stock": "Stocks",
    "stocks.kind.cedear": "CEDEARs",
    "stocks.kind.both": "Stocks and CEDEARs",
    "col.symbol": "Symbol",
    "col.settlement": "Settl.",
    "col.bid_qty": "Bid size",
    "col.bid": "Bid",
    "col.ask": "Ask",
    "col.ask_qty": "Ask size",
    "col.last": "Last",
    "col.change": "Change",
    "col.change_pct": "Change %",
    "col.time": "Time",
    "col.volume": "Volume",
    "col.strike": "Strike",
    "col.price": "Price",
    "col.qty": "Size",
    "col.total": "Total",
    "col.side": "Side",
    "options.title": "Options",
    "options.underlying": "Underlying",
    "options.calls": "Calls",
    "options.puts": "Puts",
    "options.expiry": "Expiry {date} ({days} days)",
    "options.spot": "Underlying price",
    "options.none": "No options listed on {underlying}",
    "crypto.pairs": "Pairs",
    "crypto.book": "Order book",
    "crypto.depth": "Depth",
    "crypto.trades": "Trades",
    "crypto.candles": "Candles",
    "crypto.spread": "Spread",
    "crypto.checksum": "checksum verified by the bridge",
    "side.buy": "buy",
    "side.sell": "sell",
    "account.title": "Account",
    "account.signin": "Sign in",
    "account.signout": "Sign out",
    "account.key": "Bridge API key",
    "account.signin_help": "Sign in with the link “brokerbridge serve” prints, or with an API key that has the “account” scope.",
    "account.signed_in": "Session: {name}",
    "account.link": "sign-in link",
    "account.balances": "Balances",
    "account.orders": "Open orders",
    "account.fills": "Recent executions",
    "account.asset": "Asset",
    "account.total": "Total",
    "account.hold": "On hold",
    "account.state": "State",
    "account.live": "live",
    "account.stale": "stale",
    "account.no_credentials": "no credentials",
    "account.order_id": "Order",
    "account.status": "Status",
    "account.filled": "Filled",
    "account.fee": "Fee",
    "status.title": "Status",
    "status.venue": "Venue",
    "status.stream": "Stream",
    "status.state": "State",
    "status.mode": "Mode",
    "status.reconnects": "Reconnects",
    "status.since": "Last message (s)",
    "status.token": "Token expires in",
    "status.subscriptions": "Subscriptions",
    "status.error": "Last error",
    "status.overall": "Overall: {status}",
    "status.bridge": "Browser ↔ bridge connection",
    "status.no_token": "—",
    "status.expired": "expired",
    "health.ok": "ok",
    "health.degraded": "degraded",
    "mode.ws": "WebSocket",
    "mode.polling": "REST polling",
    "mode.rest": "REST",
    "mode.down": "—",
    "state.connecting": "connecting",
    "state.live": "live",
    "state.reconnecting": "reconnecting",
    "state.polling": "REST polling",
    "state.resyncing": "resyncing",
    "state.stale": "stale",
    "state.idle": "idle",
  },
};

const STORAGE_KEY = "brokerbridge.lang";

export class I18n extends EventTarget {
  constructor() {
    super();
    const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
    this.lang = saved in TEXTS ? saved : "es";
  }

  /** The text for `key`, with `{name}` placeholders filled from `values`. */
  t(key, values = {}) {
    const text = TEXTS[this.lang][key] ?? TEXTS.es[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
  }

  /** The text for a name the server sends (`kind` "state": live, reconnecting, …; "mode"; "health": ok, degraded),
   * or the name itself when we have none for it (a state added later still shows). */
  named(kind, name) {
    const key = `${kind}.${name}`;
    const text = TEXTS[this.lang][key] ?? TEXTS.es[key];
    return text ?? String(name ?? "");
  }

  /** The locale for numbers and dates in texts that follow the language (Mercado pages stay es-AR). */
  get locale() {
    return this.lang === "es" ? "es-AR" : "en-US";
  }

  set(lang) {
    if (!(lang in TEXTS) || lang === this.lang) return;
    this.lang = lang;
    globalThis.localStorage?.setItem(STORAGE_KEY, lang);
    this.dispatchEvent(new Event("change"));
  }

  /** Fill every `[data-i18n]` element under `root` with its text. */
  apply(root) {
    document.documentElement.lang = this.lang;
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = this.t(el.dataset.i18n);
    for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
      el.placeholder = this.t(el.dataset.i18nPlaceholder);
    }
  }
}
