"""Trading from the dashboard in real Chromium: the Cuenta page's order ticket, its confirmation,
cancel, and a page of another origin that tries to trade with the dashboard's cookie.

`serve` runs with Kraken on its embedded simulator (SIMULADOR) and Primary configured as a real
venue pointed at a `brokerbridge sim primary` child process whose demo credentials the test chose:
so the test reads the simulator's own order list (`rest/order/all`), not the bridge's view of it.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest
from browser_tab import Tab
from serve_process import Serve, start_serve
from test_dashboard import es_number

GGAL = "MERV - XMEV - GGAL - 24hs"
TRADE_KEY = "browser-test-trade-key-0123"  # scopes market, account, trade
VIEW_KEY = "browser-test-view-key-01234"  # scopes market, account: may look, not trade
SIM_PASSWORD = "browser-test-sim-pass"
LIMIT_S = 20.0


@dataclass
class PrimaryVenue:
    """The Primary simulator child process and its order list, as the venue sees it."""

    process: subprocess.Popen[str]
    endpoints: dict[str, str]
    token: str | None = None

    def orders(self) -> list[dict[str, Any]]:
        """Every order the simulator holds (`rest/order/all`), logged in as the demo user (the
        simulator runs with --no-relogin-invalidates: this login leaves the bridge's alone)."""
        rest = self.endpoints["rest"].rstrip("/")
        if self.token is None:
            answer = httpx.post(
                f"{rest}/auth/getToken",
                headers={"X-Username": self.endpoints["user"], "X-Password": self.endpoints["password"]},
                timeout=10,
            )
            answer.raise_for_status()
            self.token = answer.headers["X-Auth-Token"]
        answer = httpx.get(
            f"{rest}/rest/order/all",
            params={"accountId": self.endpoints["account"]},
            headers={"X-Auth-Token": self.token},
            timeout=10,
        )
        answer.raise_for_status()
        body = answer.json()
        assert body["status"] == "OK", body
        orders: list[dict[str, Any]] = body["orders"]
        return orders

    def order(self, order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders() if o.get("clOrdId") == order_id), None)


@pytest.fixture(scope="module")
def primary_venue() -> Iterator[PrimaryVenue]:
    command = [sys.executable, "-m", "brokerbridge.cli.main", "sim", "primary", "--port", "0"]
    command += ["--password", SIM_PASSWORD, "--no-relogin-invalidates"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    endpoints = json.loads(process.stdout.readline())  # the endpoints JSON, once it listens
    try:
        yield PrimaryVenue(process, endpoints)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, primary_venue: PrimaryVenue) -> Iterator[Serve]:
    directory = tmp_path_factory.mktemp("trading")
    ep = primary_venue.endpoints
    config = directory / "brokerbridge.toml"
    config.write_text(
        f'journal_path = "{directory / "journal.sqlite3"}"\n\n'
        f'[primary]\nenvironment = "{ep["rest"]}"\nrest_url = "{ep["rest"]}"\nws_url = "{ep["ws"]}"\n'
        f'user = "{ep["user"]}"\npassword = "{ep["password"]}"\naccount = "{ep["account"]}"\n'
        f'market_hours = "always"\ninstruments_cache_dir = "{directory / "cache"}"\n\n'
        f'[server]\nstate_dir = "{directory / "state"}"\n\n'
        f'[server.keys.dealer]\nkey = "{TRADE_KEY}"\nscopes = ["market", "account", "trade"]\n\n'
        f'[server.keys.viewer]\nkey = "{VIEW_KEY}"\nscopes = ["market", "account"]\n',
        encoding="utf-8",
    )
    running = start_serve(config, simulated=("kraken",))
    yield running
    running.stop()


def signed_in(open_tab: Callable[[], Tab], serve: Serve, key: str) -> Tab:
    """A fresh browser context signed in on Cuenta with `key` (the form: a cookie session)."""
    tab = open_tab()
    tab.page.goto(f"{serve.base_url}/#/cuenta")
    tab.page.fill('[data-testid="signin"] input', key)
    tab.page.click('[data-testid="signin"] button[type="submit"]')
    tab.page.wait_for_selector('.venue-account[data-venue="primary"] tr[data-asset]')
    return tab


def api_get(serve: Serve, path: str, **params: Any) -> Any:
    answer = httpx.get(
        f"{serve.base_url}{path}", params=params, headers={"Authorization": f"Bearer {TRADE_KEY}"}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()


def resting_buy_price(serve: Serve, venue: str, symbol: str, tick: Decimal) -> Decimal:
    """A buy price on the tick grid well under the best bid: the order rests, it does not fill."""
    depth = 10 if venue == "kraken" else 5  # the depths each venue offers
    book = api_get(serve, f"/api/book/{venue}", symbol=symbol, depth=depth)["book"]
    bid = Decimal(book["bids"][0][0])
    return ((bid * Decimal("0.8")) / tick).to_integral_value(ROUND_FLOOR) * tick


def es_ar(page: Any, value: Decimal) -> str:
    """`value` as the browser writes it in es-AR with its own digits (5432.5 → '5.432,5')."""
    digits = max(0, -int(value.as_tuple().exponent))
    shown: str = page.evaluate(
        "([n, d]) => new Intl.NumberFormat('es-AR', {minimumFractionDigits: d, maximumFractionDigits: d})"
        ".format(Number(n))",
        [str(value), digits],
    )
    assert es_number(shown) == value
    return shown


def wait_until(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` (a read of the simulator over loopback) until it answers truthy, for LIMIT_S."""
    deadline = time.monotonic() + LIMIT_S
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


TICKET = '[data-testid="ticket"]'
PROBLEM = '[data-testid="ticket-problem"]'
TEXT_HAS = "([selector, text]) => (document.querySelector(selector)?.textContent ?? '').includes(text)"


def ticket_for(open_tab: Callable[[], Tab], serve: Serve, venue: str, symbol: str) -> Tab:
    """A tab signed in with the trade key whose ticket has `symbol` of `venue` chosen."""
    tab = signed_in(open_tab, serve, TRADE_KEY)
    page = tab.page
    page.wait_for_selector(TICKET)
    page.select_option(f'{TICKET} select[name="venue"]', venue)
    page.fill(f'{TICKET} input[name="symbol"]', symbol)
    page.dispatch_event(f'{TICKET} input[name="symbol"]', "change")
    page.wait_for_function(TEXT_HAS, arg=['[data-testid="ticket-rules"]', "tick"])
    return tab


def test_ticket_places_on_the_simulator_and_cancel_removes_it(
    serve: Serve, primary_venue: PrimaryVenue, open_tab: Callable[[], Tab]
) -> None:
    tab = ticket_for(open_tab, serve, "primary", GGAL)
    page = tab.page
    detail = next(
        d
        for d in api_get(serve, "/api/instruments", venue="primary", search="GGAL")["instruments"]
        if d["symbol"] == GGAL
    )
    tick = Decimal(detail["tick"])
    price = resting_buy_price(serve, "primary", GGAL, tick)
    typed = f"{price:f}".replace(".", ",")  # Primary's figures are es-AR, typed with a comma

    # Checked as typed, with the venue's increments: a point is refused (1.500 is 1500 in es-AR),
    # a price off the tick grid is refused naming the tick; −/+ step by the tick.
    page.fill(f'{TICKET} input[name="qty"]', "1")
    page.fill(f'{TICKET} input[name="price"]', "1.500")
    page.wait_for_function(TEXT_HAS, arg=[PROBLEM, "coma"])
    page.fill(f'{TICKET} input[name="price"]', f"{price + tick / 2:f}".replace(".", ","))
    page.wait_for_function(TEXT_HAS, arg=[PROBLEM, "tick"])
    page.fill(f'{TICKET} input[name="price"]', typed)
    page.wait_for_function(f"() => document.querySelector('{PROBLEM}').textContent === ''")
    page.click(f'{TICKET} button[data-step="price:1"]')
    assert page.input_value(f'{TICKET} input[name="price"]') == f"{price + tick:f}".replace(".", ",")
    page.click(f'{TICKET} button[data-step="price:-1"]')
    assert page.input_value(f'{TICKET} input[name="price"]') == typed

    before = {o["clOrdId"] for o in primary_venue.orders()}
    page.click('[data-testid="ticket-submit"]')
    dialog = page.wait_for_selector('[data-testid="confirm"]')
    assert dialog is not None
    summary = page.text_content('[data-testid="confirm-summary"]')
    assert summary == f"COMPRA 1 {GGAL} a {es_ar(page, price)} en primary"
    assert page.locator('[data-testid="confirm"] .badge.simulated').count() == 0  # a venue, not the simulator
    assert {o["clOrdId"] for o in primary_venue.orders()} == before  # nothing sent before confirming
    tab.shot("cuenta-confirm")
    page.click('[data-testid="confirm"] button[data-action="send"]')

    ack = page.wait_for_selector('[data-testid="ticket-result"] .notice[data-status="accepted"]')
    assert ack is not None
    order_id = ack.get_attribute("data-order-id")
    assert order_id
    row = f'.venue-account[data-venue="primary"] tr[data-order-id="{order_id}"]'
    page.wait_for_selector(row)
    on_venue = wait_until(lambda: primary_venue.order(order_id), "the order on the simulator")
    assert on_venue["status"] in ("NEW", "PENDING_NEW"), on_venue
    assert Decimal(str(on_venue["price"])) == price and Decimal(str(on_venue["orderQty"])) == 1
    assert on_venue["side"] == "BUY"
    tab.shot("cuenta-order-open")

    page.click(f'{row} button[data-action="cancel"]')
    page.wait_for_selector(row, state="detached")
    canceled = wait_until(
        lambda: (o := primary_venue.order(order_id)) and o["status"] == "CANCELLED" and o,
        "the order canceled on the simulator",
    )
    assert canceled["status"] == "CANCELLED"
    # One order on the market, placed once: every request new since (the order, its cancel
    # request, which Primary gives its own clOrdId) names the same venue order id.
    new = [o for o in primary_venue.orders() if o["clOrdId"] not in before]
    assert {o["orderId"] for o in new} == {on_venue["orderId"]}, new
    assert tab.errors == [], tab.errors


def test_simulated_venue_is_named_and_a_venue_refusal_shown(
    serve: Serve, open_tab: Callable[[], Tab]
) -> None:
    tab = ticket_for(open_tab, serve, "kraken", "BTC/USD")
    page = tab.page
    page.fill(f'{TICKET} input[name="qty"]', "1000")  # far more than the demo account's USD
    book = api_get(serve, "/api/book/kraken", symbol="BTC/USD", depth=10)["book"]
    page.fill(f'{TICKET} input[name="price"]', book["bids"][0][0].replace(".", ","))
    page.click('[data-testid="ticket-submit"]')
    page.wait_for_selector('[data-testid="confirm"]')
    summary = page.text_content('[data-testid="confirm-summary"]') or ""
    assert summary.startswith("COMPRA 1.000 BTC/USD a ") and summary.endswith(" en kraken")
    assert page.is_visible('[data-testid="confirm"] .badge.simulated')
    assert page.text_content('[data-testid="confirm"] .badge.simulated') == "SIMULADOR"
    page.click('[data-testid="confirm"] button[data-action="send"]')
    # The venue refuses (funds): its message, the remedy and the code are shown, nothing is open.
    error = page.wait_for_selector('[data-testid="ticket-result"] .notice.error')
    assert error is not None
    code = page.get_attribute('[data-testid="ticket-result"] [data-code]', "data-code")
    assert code in ("order_rejected", "order_refused"), code
    assert len(page.locator('[data-testid="ticket-result"] .notice.error > div').all_text_contents()) >= 2
    assert page.locator('.venue-account[data-venue="kraken"] tr[data-order-id]').count() == 0
    # The fills export is the journal as CSV, read with the page's own session.
    csv = page.evaluate(
        """async () => {
          const link = '.venue-account[data-venue="kraken"] [data-testid="fills-csv"]';
          const r = await fetch(document.querySelector(link).href);
          return [r.status, r.headers.get('content-type'), (await r.text()).split('\\n')[0]];
        }"""
    )
    assert csv[0] == 200 and csv[1].startswith("text/csv"), csv
    assert "order_id" in csv[2], csv


KRAKEN_ORDERS = '.venue-account[data-venue="kraken"] tr[data-order-id]'
# True once an open Kraken order shows `price` (es-AR cells read back as numbers) or a refusal shows.
AMENDED_OR_REFUSED = """(price) => [...document.querySelectorAll('ORDERS')].some(
    (r) => Number(r.children[4].textContent.replaceAll('.', '').replace(',', '.')) === Number(price))
  || document.querySelector('[data-venue="kraken"] [data-testid="orders-notice"] .notice.error') !== null
""".replace("ORDERS", KRAKEN_ORDERS)


def test_amend_is_confirmed_then_applied_or_refused_with_its_remedy(
    serve: Serve, open_tab: Callable[[], Tab]
) -> None:
    tab = ticket_for(open_tab, serve, "kraken", "BTC/USD")
    page = tab.page
    rules = page.text_content('[data-testid="ticket-rules"]') or ""
    tick = es_number(rules.split("tick ", 1)[1].split(" ", 1)[0])  # the pair's price increment
    price = resting_buy_price(serve, "kraken", "BTC/USD", tick)
    page.fill(f'{TICKET} input[name="qty"]', "0,01")
    page.fill(f'{TICKET} input[name="price"]', f"{price:f}".replace(".", ","))
    page.click('[data-testid="ticket-submit"]')
    page.click('[data-testid="confirm"] button[data-action="send"]')
    ack = page.wait_for_selector('[data-testid="ticket-result"] .notice[data-status="accepted"]')
    assert ack is not None
    row = f'{KRAKEN_ORDERS}[data-order-id="{ack.get_attribute("data-order-id")}"]'
    page.wait_for_selector(row)

    page.click(f'{row} button[data-action="amend"]')
    lower = price - tick
    page.fill('[data-testid="amend"] input[name="price"]', f"{lower:f}".replace(".", ","))
    page.click('[data-testid="amend"] button[data-action="review-amend"]')
    summary = page.text_content('[data-testid="confirm-summary"]') or ""
    assert "Precio" in summary and "→" in summary and summary.endswith(" en kraken"), summary
    assert page.is_visible('[data-testid="confirm"] .badge.simulated')
    page.click('[data-testid="confirm"] button[data-action="send"]')
    # Where the venue amends, the row shows the new price; where it cannot (yet), the refusal is
    # shown with its code and remedy and the order stays open as it was.
    page.wait_for_function(AMENDED_OR_REFUSED, arg=str(lower))
    refused = page.locator('.venue-account[data-venue="kraken"] [data-testid="orders-notice"] .notice.error')
    if refused.count():
        assert refused.locator("[data-code]").count() == 1
        assert len(refused.locator("div").all_text_contents()) >= 2  # remedy and code
    tab.shot("cuenta-amend")
    cancel = page.locator(f'{KRAKEN_ORDERS} button[data-action="cancel"]')
    assert cancel.count() == 1
    cancel.click()
    page.wait_for_selector(KRAKEN_ORDERS, state="detached")
    wait_until(lambda: api_get(serve, "/api/orders/kraken")["orders"] == [], "no Kraken order open")
    # A refused amend's 4xx is logged by the browser itself; nothing else may be.
    assert all("status of 4" in error for error in tab.errors), tab.errors


def test_a_session_without_trade_sees_no_ticket(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = signed_in(open_tab, serve, VIEW_KEY)
    tab.page.wait_for_selector('[data-testid="trade-signin"]')
    assert tab.page.locator(TICKET).count() == 0
    assert tab.page.locator('button[data-action="cancel"]').count() == 0


EVIL_PAGE = """<!doctype html><html><body>
<iframe name="sink" id="sink"></iframe>
<form id="evil" method="POST" action="BRIDGE/api/orders" enctype="text/plain" target="sink">
<input name='{"venue":"primary","symbol":"SYMBOL","side":"buy","qty":"1","price":"PRICE",
"client_order_id":"evilform1","x":"' value='"}'>
</form>
<script>
const order = (id) => JSON.stringify(
  {venue: "primary", symbol: "SYMBOL", side: "buy", qty: "1", price: "PRICE", client_order_id: id});
window.results = {};
async function attack() {
  try {  // JSON: the browser asks first (CORS preflight), the bridge does not allow it
    const r = await fetch("BRIDGE/api/orders", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"}, body: order("evilcors1")});
    window.results.cors = r.status;
  } catch (e) { window.results.cors = "blocked"; }
  try {  // a "simple" request: sent without asking, with the cookie; the answer is opaque
    const r = await fetch("BRIDGE/api/orders", {method: "POST", mode: "no-cors", credentials: "include",
      headers: {"Content-Type": "text/plain"}, body: order("evilsimple1")});
    window.results.simple = r.type;
  } catch (e) { window.results.simple = "blocked"; }
  await new Promise((resolve) => {  // a form POST: a navigation, cookie included
    document.getElementById("sink").onload = resolve;
    document.getElementById("evil").submit();
  });
  window.results.form = "submitted";
  window.done = true;
}
attack();
</script></body></html>"""


def test_a_page_of_another_origin_cannot_place_an_order_with_the_cookie(
    serve: Serve, primary_venue: PrimaryVenue, open_tab: Callable[[], Tab]
) -> None:
    tab = signed_in(open_tab, serve, TRADE_KEY)  # this browser holds a session that may trade
    tab.page.wait_for_selector(TICKET)
    tick = Decimal(
        next(
            d
            for d in api_get(serve, "/api/instruments", venue="primary", search="GGAL")["instruments"]
            if d["symbol"] == GGAL
        )["tick"]
    )
    price = resting_buy_price(serve, "primary", GGAL, tick)
    page_text = (
        EVIL_PAGE.replace("BRIDGE", serve.base_url).replace("SYMBOL", GGAL).replace("PRICE", f"{price:f}")
    )
    seen: list[str] = []

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page_text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            seen.append(self.path)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    # Another port of the same host: another origin but the same *site*, so the SameSite=Strict
    # cookie goes along — only the bridge's Origin and CSRF-token checks stand in the way.
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    before = [(o["clOrdId"], o["status"]) for o in primary_venue.orders()]
    try:
        attacker = open_tab()  # the same browser context: it holds the dashboard's cookie
        attacker.page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        attacker.page.wait_for_function("() => window.done === true")
        results = attacker.page.evaluate("window.results")
    finally:
        evil.shutdown()
        evil.server_close()
    assert "/" in seen  # the page was served (the browser asks for its favicon too)
    assert results["cors"] == "blocked" and results["simple"] == "opaque", results
    # The simulator got no order: its list is as before (the bridge answered every request before
    # the page went on, so an order placed would be there now), and the bridge shows none open.
    assert [(o["clOrdId"], o["status"]) for o in primary_venue.orders()] == before
    opened = api_get(serve, "/api/orders/primary")["orders"]
    assert not [o for o in opened if str(o.get("client_order_id", "")).startswith("evil")]
    # The same browser's own dashboard page still trades: the cookie is good, the origin was not.
    assert tab.page.is_visible(TICKET)


def test_exact_decimals_of_the_ticket(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_tab()
    tab.page.goto(f"{serve.base_url}/#/estado")
    checks = tab.page.evaluate(
        """async () => {
          const d = await import('/dashboard/js/decimal.js');
          return [
            d.isMultiple('0.3', '0.1'), d.isMultiple('7145.37', '0.05'),
            d.isMultiple('0.00012', '1E-5'), d.stepped('7145.37', '0.05', 1),
            d.stepped('7145.37', '0.05', -1), d.stepped('7145.40', '0.05', -1),
            d.parseTyped('0,5', 'es-AR').value, d.parseTyped('1.500', 'es-AR').error,
            d.parseTyped('0.5', 'en-US').value, d.parseTyped('1,5', 'en-US').error,
            d.multiply('63472.5', '0.01'),
          ];
        }"""
    )
    assert checks == [
        True,
        False,
        True,
        "7145.40",
        "7145.35",
        "7145.35",
        "0.5",
        "ticket.err.use_comma",
        "0.5",
        "ticket.err.use_point",
        "634.725",
    ]
    assert tab.errors == []
