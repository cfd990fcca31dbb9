"""The dashboard in real Chromium against `brokerbridge serve` on both simulators.

Values are read from the DOM and checked against the bridge's own REST answers or against each
other; simulator faults (`/_sim/faults`) freeze or break the market where a check needs it to.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_tab import Tab
from serve_process import ACCOUNT_KEY, Serve, start_serve, write_config

# What each page shows once it has live data (and the screenshot is worth taking).
READY = {
    "acciones": '#page tr[data-symbol] td[data-col="last"]:not(:empty)',
    "opciones": '.chain td[data-col="call-bid"]:not(:empty)',
    "crypto": '.ladder tr.bid[data-level="0"] td[data-col="price"]:not(:empty)',
    "cuenta": '.venue-account[data-venue="kraken"] tr[data-asset]',
    "estado": 'tr[data-venue="primary"][data-stream="ws"]',
}
ROW_TEXTS = "() => [...document.querySelectorAll('#page tbody tr')].map((r) => r.innerText)"
ANY_ROW_CHANGED = """(before) => {
  const now = [...document.querySelectorAll('#page tbody tr')].map((r) => r.innerText);
  return now.length === before.length && now.some((text, i) => text !== before[i]);
}"""
ROW_COUNT_IS = "(n) => document.querySelectorAll('#page tbody tr').length === n"
ROWS_MORE_THAN = "(n) => document.querySelectorAll('#page tbody tr').length > n"
TEXT_IS = "([selector, text]) => document.querySelector(selector)?.textContent === text"
PRIMARY_WS = 'tr[data-venue="primary"][data-stream="ws"]'


def es_number(text: str) -> Decimal:
    """'63.472,7' (es-AR) → Decimal('63472.7')."""
    return Decimal(text.replace(".", "").replace(",", ".").replace("−", "-").replace("+", ""))


def column(tab: Tab, col: str) -> list[str]:
    return tab.page.eval_on_selector_all(
        f'#page tbody tr td[data-col="{col}"]', "cells => cells.map((c) => c.textContent)"
    )


def goto(open_tab: Callable[[], Tab], serve: Serve, page: str) -> Tab:
    tab = open_tab()
    tab.page.goto(f"{serve.base_url}/#/{page}")
    tab.page.wait_for_selector(READY[page])
    tab.page.wait_for_selector('#conn[data-state="live"]')
    return tab


def test_dashboard_is_served_same_origin_only(serve: Serve) -> None:
    page = httpx.get(f"{serve.base_url}/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/dashboard/js/main.js">' in page.text
    module = httpx.get(f"{serve.base_url}/dashboard/js/main.js", timeout=10)
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
    assert module.headers["cache-control"] == "no-cache"
    assert httpx.head(f"{serve.base_url}/", timeout=10).status_code == 200
    assert httpx.get(f"{serve.base_url}/dashboard/missing.js", timeout=10).status_code == 404
    assert httpx.get(f"{serve.base_url}/api/health", timeout=10).json()["venues"]  # not shadowed


def test_every_page_loads_live_without_console_errors(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    signed_in = open_tab()
    signed_in.page.goto(serve.login_url)  # the one-time link `serve` printed: cookie, then 303 → /
    assert signed_in.page.url == f"{serve.base_url}/"
    for name in READY:
        tab = goto(open_tab, serve, name)  # a full page load each (same browser context: signed in)
        tab.page.wait_for_timeout(600)  # let the flash of the first burst of updates fade
        path = tab.shot(name)
        assert path.stat().st_size > 10_000
        assert tab.errors == [], f"{name}: {tab.errors}"
    assert signed_in.errors == []


# The venues whose data each page shows: on the embedded simulators every one is marked.
SHOWS = {
    "acciones": "primary",
    "opciones": "primary",
    "crypto": "kraken",
    "cuenta": "kraken",  # each venue's section has its own badge; the first is Kraken's
    "estado": "kraken primary",
}


def test_every_page_marks_the_simulated_venues(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    signed_in = open_tab()
    signed_in.page.goto(serve.fresh_login_url())  # Cuenta shows accounts to a signed-in browser only
    for name, venues in SHOWS.items():
        tab = goto(open_tab, serve, name)
        badge = tab.page.wait_for_selector('[data-testid="simulated"]:not([hidden])')
        assert badge is not None and badge.text_content() == "SIMULADOR"
        assert badge.get_attribute("data-venues") == venues, name
        assert badge.is_visible()
        assert tab.errors == [], f"{name}: {tab.errors}"


def test_pages_of_a_venue_not_served_are_hidden(tmp_path: Path, open_tab: Callable[[], Tab]) -> None:
    # `serve --venue kraken`: no Primary, so Acciones (the default page) and Opciones would only
    # show "unknown venue"; the dashboard opens on Crypto and offers what runs.
    kraken_only = start_serve(write_config(tmp_path), venues=("kraken",))
    try:
        tab = open_tab()
        tab.page.goto(f"{kraken_only.base_url}/#/acciones")
        tab.page.wait_for_selector('#nav a[data-route="acciones"][hidden]', state="attached")
        tab.page.wait_for_selector('#page[data-page="crypto"]')
        shown = tab.page.eval_on_selector_all(
            "#nav a[data-route]", "links => links.filter((a) => !a.hidden).map((a) => a.dataset.route)"
        )
        assert shown == ["crypto", "cuenta", "estado"]
        tab.page.wait_for_selector(READY["crypto"])
        assert tab.errors == [], tab.errors
    finally:
        kraken_only.stop()


def test_acciones_values_change_within_two_seconds(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = goto(open_tab, serve, "acciones")
    stocks = tab.page.locator("#page tbody tr").count()
    assert stocks >= 100  # every ESXXXX of the simulated BYMA, in both settlements
    assert all(c in ("CI", "24hs") for c in column(tab, "settlement"))
    before = tab.page.evaluate(ROW_TEXTS)
    tab.page.wait_for_function(ANY_ROW_CHANGED, arg=before, timeout=2_000)
    assert tab.page.locator("#page tbody tr[data-flash]").count() > 0  # updated rows flash
    # Variación = Último − Cierre anterior, signed and coloured by its sign.
    change = tab.page.locator('#page tbody tr td[data-col="change"]:not(:empty)').first
    # Text and class read in one evaluation: two reads can straddle a re-render (CI saw "+" with
    # the previous tick's "num neg").
    text, classes = change.evaluate("(cell) => [cell.textContent, cell.className]")
    signed = {("+", "num pos"), ("−", "num neg")}
    assert (text[0], classes) in signed or es_number(text) == 0


def test_three_hundred_instruments_update_smoothly(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = goto(open_tab, serve, "acciones")
    tab.page.click('[data-filter="kind"] button[data-value="both"]')  # stocks and CEDEARs
    tab.page.wait_for_function("() => document.querySelectorAll('#page tbody tr').length >= 300")
    tab.page.wait_for_selector('#page tbody tr:last-child td[data-col="last"]:not(:empty)')
    measured: dict[str, Any] = tab.page.evaluate(
        """() => new Promise((resolve) => {
          const rows = [...document.querySelectorAll('#page tbody tr')];
          const before = rows.map((r) => r.innerText);
          const start = performance.now();
          let frames = 0, last = start, worst = 0;
          const tick = (now) => {
            frames += 1;
            worst = Math.max(worst, now - last);
            last = now;
            if (now - start < 3000) return requestAnimationFrame(tick);
            resolve({ frames, worst, seconds: (now - start) / 1000, rows: rows.length,
                      changed: rows.filter((r, i) => r.innerText !== before[i]).length });
          };
          requestAnimationFrame(tick);
        })"""
    )
    assert measured["rows"] >= 300
    assert measured["changed"] >= measured["rows"] // 2, measured  # most instruments moved in 3 s
    # Not blocked: the page keeps drawing frames while hundreds of rows update. Headless runs at
    # 60 fps; how fast is for the benchmarks — these bounds only catch a page that blocks on every
    # event (a loaded 2-core machine measured 26 fps, worst frame 150 ms, and that is not a bug).
    assert measured["frames"] / measured["seconds"] >= 10, measured
    assert measured["worst"] < 500, measured
    assert tab.errors == []


def test_sorting_search_and_settlement_filter(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = goto(open_tab, serve, "acciones")
    serve.sim_faults("primary", {"stall": "public"})  # freeze the quotes: an order can be checked
    try:
        tab.page.wait_for_timeout(1_500)  # what was already on its way arrives
        tab.page.click('th[data-col="last"] button')
        assert tab.page.get_attribute('th[data-col="last"]', "aria-sort") == "descending"
        tab.page.wait_for_timeout(100)
        values = [es_number(v) for v in column(tab, "last") if v]
        assert len(values) > 50 and values == sorted(values, reverse=True)
        tab.page.click('th[data-col="last"] button')
        assert tab.page.get_attribute('th[data-col="last"]', "aria-sort") == "ascending"
        tab.page.wait_for_timeout(100)
        values = [es_number(v) for v in column(tab, "last") if v]
        assert values == sorted(values)
        tab.page.click('th[data-col="changePct"] button')
        tab.page.wait_for_timeout(100)
        pct = [es_number(v.removesuffix(" %")) for v in column(tab, "changePct") if v]
        assert pct == sorted(pct, reverse=True) and pct[0] > pct[-1]
    finally:
        serve.sim_reset("primary")
    tab.page.click('th[data-col="symbol"] button')
    tab.page.wait_for_timeout(100)
    symbols = column(tab, "symbol")
    assert symbols == sorted(symbols) and symbols[0] < symbols[-1]

    tab.page.fill("input.search", "ggal")
    tab.page.wait_for_function(ROW_COUNT_IS, arg=2)
    assert column(tab, "symbol") == ["GGAL", "GGAL"] and column(tab, "settlement") == ["CI", "24hs"]
    tab.page.fill("input.search", "energia")  # Pampa Energía: company names, accents ignored
    tab.page.wait_for_function(TEXT_IS, arg=['#page tbody tr td[data-col="symbol"]', "PAMP"])
    assert column(tab, "symbol") == ["PAMP", "PAMP"]
    tab.page.fill("input.search", "")
    tab.page.wait_for_function(ROWS_MORE_THAN, arg=2)  # the cleared search is rendered (next frame)
    ci_rows = column(tab, "settlement").count("CI")
    tab.page.click('[data-filter="settlement"] button[data-value="CI"]')
    tab.page.wait_for_function(ROW_COUNT_IS, arg=ci_rows)
    assert set(column(tab, "settlement")) == {"CI"}
    assert tab.errors == []


def test_order_book_top_levels_match_the_bridge_book(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = goto(open_tab, serve, "crypto")  # BTC/USD by default
    tab.page.wait_for_selector('.ladder tr.ask[data-level="9"] td[data-col="price"]:not(:empty)')
    serve.sim_faults("kraken", {"stall": "public"})  # freeze the venue's book where it is
    try:
        tab.page.wait_for_timeout(1_000)
        ladder: dict[str, list[list[str]]] = tab.page.evaluate(
            """() => Object.fromEntries(['bid', 'ask'].map((side) => [side,
                 [...Array(10).keys()].map((i) => {
                   const row = document.querySelector(`.ladder tr.${side}[data-level="${i}"]`);
                   return ['price', 'qty'].map((c) => row.querySelector(`td[data-col="${c}"]`).textContent);
                 })]))"""
        )
        body = httpx.get(
            f"{serve.base_url}/api/book/kraken", params={"symbol": "BTC/USD", "depth": 25}, timeout=10
        ).json()
    finally:
        serve.sim_reset("kraken")
    book = body["book"]
    assert body["state"] == "live" and book["kind"] == "book_snapshot"
    for side, levels in (("bid", book["bids"]), ("ask", book["asks"])):
        shown = [(es_number(p), es_number(q)) for p, q in ladder[side]]
        assert shown == [(Decimal(p), Decimal(q)) for p, q in levels[:10]], side
    best_bid, best_ask = Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])
    assert best_bid < best_ask
    assert tab.errors == []


def test_status_shows_reconnecting_then_live_when_the_simulator_drops(
    serve: Serve, open_tab: Callable[[], Tab]
) -> None:
    market = goto(open_tab, serve, "acciones")  # keeps Primary subscriptions open upstream
    status = goto(open_tab, serve, "estado")
    status.page.wait_for_selector(f'{PRIMARY_WS}[data-state="live"]')
    reconnects_before = int(status.page.text_content(f'{PRIMARY_WS} td[data-col="reconnects"]') or "0")
    # Drop every socket and refuse new handshakes: the bridge must reconnect (and keep trying).
    serve.sim_faults("primary", {"reject_ws_handshake": -1, "drop_now": True})
    try:
        status.page.wait_for_selector(f'{PRIMARY_WS}:not([data-state="live"])', timeout=10_000)
        state = status.page.get_attribute(PRIMARY_WS, "data-state")
        assert state in ("reconnecting", "polling", "connecting", "stale")
        # The page is in Spanish: so are the state names (the attribute keeps the server's).
        shown = status.page.text_content(f'{PRIMARY_WS} td[data-col="state"]')
        assert shown in ("reconectando", "por REST", "conectando", "desactualizado")
        status.page.wait_for_timeout(300)
        status.shot("estado-reconnecting")
        # Every page's indicator says the data is not live (the browser's own link is fine).
        market.page.wait_for_selector('#conn[data-state="degraded"]', timeout=10_000)
    finally:
        serve.sim_reset("primary")
    status.page.wait_for_selector(f'{PRIMARY_WS}[data-state="live"]', timeout=30_000)
    reconnects = int(status.page.text_content(f'{PRIMARY_WS} td[data-col="reconnects"]') or "0")
    assert reconnects > reconnects_before
    # Live again: "en vivo", and the reason the connection dropped is not shown as its last error.
    status.page.wait_for_function(TEXT_IS, arg=[f'{PRIMARY_WS} td[data-col="error"]', ""], timeout=10_000)
    assert status.page.text_content(f'{PRIMARY_WS} td[data-col="state"]') == "en vivo"
    assert status.page.text_content('[data-testid="bridge-state"]') == "en vivo"
    market.page.wait_for_selector('#conn[data-state="live"]', timeout=30_000)
    before = market.page.evaluate(ROW_TEXTS)
    market.page.wait_for_function(ANY_ROW_CHANGED, arg=before, timeout=10_000)
    assert status.errors == [] and market.errors == []


def test_account_sign_in_with_a_key_and_out(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_tab()  # a fresh context: no session cookie
    tab.page.goto(f"{serve.base_url}/#/cuenta")
    tab.page.wait_for_selector('[data-testid="signin"]')
    tab.shot("cuenta-signin")
    tab.page.fill('[data-testid="signin"] input', "not-the-key-0123456789")
    tab.page.click('[data-testid="signin"] button[type="submit"]')
    tab.page.wait_for_selector(".notice.error")
    assert "not-the-key" not in (tab.page.text_content("#page") or "")  # keys are never echoed
    tab.page.fill('[data-testid="signin"] input', ACCOUNT_KEY)
    tab.page.click('[data-testid="signin"] button[type="submit"]')
    tab.page.wait_for_selector(READY["cuenta"])
    tab.page.wait_for_selector('.venue-account[data-venue="primary"] tr[data-asset="ARS"]')
    assert "trader" in (tab.page.text_content(".page-head") or "")
    assets = tab.page.eval_on_selector_all(
        '.venue-account[data-venue="kraken"] tr[data-asset]', "rows => rows.map((r) => r.dataset.asset)"
    )
    assert "USD" in assets and "BTC" in assets
    tab.page.click(".page-head .btn.ghost")  # sign out
    tab.page.wait_for_selector('[data-testid="signin"]')
    # The errors are the failed sign-in's 401, which the browser itself logs.
    assert all("401" in error for error in tab.errors), tab.errors


def test_language_switch_translates_our_texts_only(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = goto(open_tab, serve, "acciones")
    assert tab.page.text_content('th[data-col="last"]') == "Último"
    tab.page.click('.lang button[data-lang="en"]')
    tab.page.wait_for_function(TEXT_IS, arg=['th[data-col="last"]', "Last"])
    assert tab.page.text_content('#nav a[data-route="acciones"]') == "Stocks"
    assert tab.page.get_attribute("html", "lang") == "en"
    tab.page.wait_for_selector(READY["acciones"])
    assert "," in next(v for v in column(tab, "last") if v)  # BYMA prices stay in es-AR
    tab.page.reload()  # the choice is remembered
    tab.page.wait_for_selector(READY["acciones"])
    assert tab.page.text_content('th[data-col="last"]') == "Last"
    tab.page.click('.lang button[data-lang="es"]')
    assert tab.errors == []


@pytest.mark.timeout(300)
def test_page_reconnects_by_itself_after_serve_restarts(
    tmp_path_factory: pytest.TempPathFactory, open_tab: Callable[[], Tab]
) -> None:
    config = write_config(tmp_path_factory.mktemp("restart"))
    first = start_serve(config)
    try:
        tab = goto(open_tab, first, "acciones")
        tab.page.evaluate("window.sameDocument = 'still here'")
        first.stop()
        tab.page.wait_for_selector('#conn[data-state="reconnecting"]', timeout=10_000)
        assert "Reconectando" in (tab.page.text_content("#conn") or "")  # and it says so
        tab.shot("reconnecting")
        second = start_serve(config, port=first.port)
        try:
            tab.page.wait_for_selector('#conn[data-state="live"]', timeout=60_000)
            before = tab.page.evaluate(ROW_TEXTS)
            tab.page.wait_for_function(ANY_ROW_CHANGED, arg=before, timeout=15_000)
            assert tab.page.evaluate("window.sameDocument") == "still here"  # no reload happened
        finally:
            second.stop()
    finally:
        first.stop()
