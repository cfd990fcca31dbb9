"""The Opciones page in real Chromium against `brokerbridge serve` on the simulators.

Every figure the page shows is read back from the DOM and compared with the bridge's own answer,
`GET /api/options/primary/GGAL` (fetched here, not by the page), with the simulator's public feed
stalled so both sides hold the same market. A shown number is parsed from its es-AR text and must
sit within one unit of its last shown digit of the API's figure (the API's answer is computed a
few seconds later, so `t` moved a little); Decimal prices must match exactly; an empty figure must
read "—" with the API's reason as its tooltip. Also: the IV/greeks toggle (remembered across a
reload), the model switch (a new greeks subscription on the socket; the European figures shown),
the tooltip of an arbitrage the simulator's `option_arbitrage` switch puts on, the CSV download,
the smile, and no console errors.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from browser_tab import Tab
from serve_process import Serve, start_serve, write_config

UNDERLYING = "GGAL"
API = "/api/options/primary/GGAL"
CHAINS = '[data-testid="chains"]'
READY = '.chain td[data-col="call-bid"]:not(:empty)'
EMPTY = "—"
ANALYTICS = ("iv_bid", "iv_ask", "iv_last", "iv_mid", "delta", "gamma", "vega", "theta", "rho")
COVERED_CALL = ("covered_call_tna", "covered_call_tea", "break_even")  # calls only
COMPUTED = {*ANALYTICS, *COVERED_CALL, "intrinsic", "time_value", "parity_tna"}
GROUP = {
    **{f"iv_{n}": "iv" for n in ("bid", "ask", "last", "mid")},
    **{g: "greeks" for g in ("delta", "gamma", "vega", "theta", "rho")},
    "covered_call_tna": "covered_call",
    "covered_call_tea": "covered_call",
    "break_even": "covered_call",
    "parity_tna": "parity",
}
PRICES = ("bid", "ask", "last", "intrinsic", "time_value", "break_even")
PERCENT_FRACTION = ("iv_bid", "iv_ask", "iv_last", "iv_mid")  # shown ×100
PERCENT = ("parity_tna", "covered_call_tna", "covered_call_tea")
QUOTE_ABSENT = {
    "bid": "Sin ofertas de compra",
    "ask": "Sin ofertas de venta",
    "last": "Sin operaciones en la rueda",
}

# Every option cell of the page: expiry → strike → "call-iv_mid" → [text, title, class].
READ_CELLS = """() => Object.fromEntries([...document.querySelectorAll('.chain[data-expiry]')].map((s) => [
  s.dataset.expiry,
  {
    days: s.querySelector('[data-testid="days"]').textContent,
    business_days: s.querySelector('[data-testid="business-days"]').textContent,
    points: s.querySelector('canvas[data-testid="smile"]').dataset.points ?? null,
    rows: Object.fromEntries([...s.querySelectorAll('tbody tr[data-strike]')].map((tr) => [
      tr.dataset.strike,
      Object.fromEntries([...tr.querySelectorAll('td[data-col]')].map((td) => [
        td.dataset.col, [td.textContent, td.title, td.className]])),
    ])),
  },
]))"""
# Resolves once nothing in the page's text changed for `ms` (what was on its way has arrived).
QUIET = """(ms) => new Promise((resolve) => {
  let timer = null;
  const observer = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(done, ms); });
  function done() { observer.disconnect(); resolve(true); }
  observer.observe(document.querySelector('#page'), { subtree: true, childList: true, characterData: true });
  timer = setTimeout(done, ms);
})"""


def es_number(text: str) -> Decimal:
    """'1.234,56' / '45,2 %' / '-0,523' (es-AR) → Decimal."""
    plain = text.removesuffix(" %").replace(".", "").replace(",", ".").replace("−", "-")
    assert re.fullmatch(r"-?\d+(\.\d+)?", plain), f"not an es-AR number: {text!r}"
    return Decimal(plain)


def last_digit(text: str) -> Decimal:
    """One unit of the last digit shown: '45,2 %' → 0.1, '1.234' → 1."""
    body = text.removesuffix(" %")
    return Decimal(1).scaleb(-len(body.split(",")[1])) if "," in body else Decimal(1)


def words(reason: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "#", reason)


def reason_for(option: dict[str, Any], field: str) -> str:
    """figures.js's reasonFor, restated: the tooltip an empty figure must carry."""
    reasons: dict[str, str] = option.get("reasons") or {}
    if reasons.get(field):
        return reasons[field]
    if field not in COMPUTED:
        return QUOTE_ABSENT.get(field, "")
    for key in (GROUP.get(field), "expiry", "spot", "rate"):
        if key and reasons.get(key):
            return reasons[key]
    return "; ".join(reasons.values()) or "Sin dato"


def check_figure(where: str, field: str, shown: list[str], option: dict[str, Any]) -> None:
    text, title, _ = shown
    value = option[field]
    if value is None:
        assert text == EMPTY, f"{where}: {text!r} shown for an empty {field}"
        # The same words; their numbers (a model bound) move with the time to expiry between reads.
        assert words(title) == words(reason_for(option, field)), f"{where}: tooltip {title!r}"
        return
    assert "NaN" not in text and text != EMPTY, f"{where}: {text!r} for {value!r}"
    number = es_number(text)
    if field in PRICES:
        # Prices are the venue's (or exact differences of them) written with ≥ 3 decimals.
        assert number == Decimal(str(value)).quantize(last_digit(text)), f"{where}: {text} vs {value}"
        return
    expected = Decimal(repr(value)) * (100 if field in PERCENT_FRACTION else 1)
    if field in PERCENT_FRACTION or field in PERCENT:
        assert text.endswith(" %"), f"{where}: {text!r} has no %"
    assert abs(number - expected) <= last_digit(text), f"{where}: {text} vs {expected}"


def api_chain(serve: Serve, model: str | None = None, expiry: str | None = None) -> dict[str, Any]:
    params = {k: v for k, v in (("model", model), ("expiry", expiry)) if v}
    response = httpx.get(f"{serve.base_url}{API}", params=params, timeout=20)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@contextmanager
def frozen(serve: Serve, tab: Tab) -> Iterator[None]:
    """The simulator's public feed stalled; yields once the page has shown what was on its way
    (the page's caución refresh included: no text changed for 3.5 s)."""
    serve.sim_faults("primary", {"stall": "public"})
    try:
        tab.page.evaluate(QUIET, 3_500)
        yield
    finally:
        serve.sim_reset("primary")


def open_options(open_tab: Callable[[], Tab], serve: Serve, analytics: bool = True) -> Tab:
    tab = open_tab()
    tab.page.goto(f"{serve.base_url}/#/opciones")
    tab.page.wait_for_selector(READY)
    if analytics and tab.page.get_attribute('[data-testid="analytics-toggle"]', "aria-pressed") != "true":
        tab.page.click('[data-testid="analytics-toggle"]')
    # Hidden (display: none) while the toggle is off: attached is what the figures need.
    tab.page.wait_for_selector('.chain td[data-col="call-iv_mid"]:not(:empty)', state="attached")
    return tab


def compare_with_api(shown: dict[str, Any], chain: dict[str, Any], fields: tuple[str, ...]) -> int:
    """Every option's `fields` as shown against `chain`; returns how many figures were compared."""
    assert set(shown) == {e["expiry"] for e in chain["expiries"]}
    compared = 0
    for expiry in chain["expiries"]:
        page = shown[expiry["expiry"]]
        assert int(page["business_days"]) == expiry["business_days"], expiry["expiry"]
        assert abs(es_number(page["days"]) - Decimal(repr(expiry["days"]))) <= Decimal("0.1")
        smile = sum(o[f] is not None for o in expiry["options"] for f in ("iv_bid", "iv_ask", "iv_mid"))
        assert page["points"] == str(smile), f"smile of {expiry['expiry']}: {page['points']} vs {smile}"
        with_call = {o["strike"] for o in expiry["options"] if o["option_type"] == "call"}
        for option in expiry["options"]:
            row = page["rows"][option["strike"]]
            side = option["option_type"]
            for field in fields:
                if field in COVERED_CALL and side == "put":
                    continue
                key = "parity_tna" if field == "parity_tna" else f"{side}-{field}"
                if field == "parity_tna" and side == "put" and option["strike"] in with_call:
                    continue  # the strike's cell shows the call's figure (the put's when no call)
                check_figure(f"{option['symbol']} {field}", field, row[key], option)
                compared += 1
    return compared


FIGURES = (
    "bid",
    "ask",
    "last",
    *ANALYTICS,
    "intrinsic",
    "time_value",
    "parity_tna",
    "covered_call_tna",
    "covered_call_tea",
    "break_even",
)


def test_every_figure_shown_equals_the_api(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_options(open_tab, serve)
    model = tab.page.get_attribute(CHAINS, "data-model")
    assert model == "american"  # the server's [options] model, BYMA's options being American
    with frozen(serve, tab):
        shown = tab.page.evaluate(READ_CELLS)
        rates = tab.page.evaluate(
            """() => ['caucion-tna', 'rate', 'rate-source', 'model-spot'].map(
                 (id) => document.querySelector(`[data-testid="${id}"]`).textContent)"""
        )
        chain = api_chain(serve, model)
    tab.shot("opciones-analytics")
    compared = compare_with_api(shown, chain, FIGURES)
    assert compared >= 20 * len(FIGURES) * 0.8, compared  # ≥ 20 options (the simulator lists more)
    # The caución on top, with its source; the continuous rate the model used.
    assert chain["caucion_tna"] is not None, chain["reasons"]
    caucion, rate, source, model_spot = rates
    assert es_number(model_spot) == Decimal(chain["spot"])  # the price the figures were computed at
    caucion_tna, rate_used = Decimal(repr(chain["caucion_tna"])), Decimal(repr(chain["rate"] * 100))
    assert abs(es_number(caucion.removesuffix(" TNA")) - caucion_tna) <= Decimal("0.01")
    assert abs(es_number(rate.removesuffix(" (continua)")) - rate_used) <= Decimal("0.01")
    assert source == chain["rate_source"] and "PESOS" in source
    text = tab.page.text_content("#page") or ""
    assert "NaN" not in text and "undefined" not in text and "Infinity" not in text
    assert tab.errors == []


def test_helpers_write_es_ar_figures(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_tab()
    tab.page.goto(f"{serve.base_url}/#/opciones")
    written = tab.page.evaluate(
        """async () => {
          const f = await import('/dashboard/js/figures.js');
          return [f.figureText('iv', 0.452, 3), f.figureText('rate', 29.55, 2),
                  f.figureText('price', '1234.56', 3), f.figureText('delta', -0.52349, 3),
                  f.figureText('gamma', 0.000635123, 3), f.figureText('money', -5.126, 2),
                  f.figureText('iv', NaN, 3), f.figureText('money', 'NaN', 2),
                  f.figureText('iv', null, 3), f.figureText('price', 'Infinity', 3)];
        }"""
    )
    assert written == ["45,2 %", "29,55 %", "1.234,560", "-0,523", "0,000635", "-5,13", *[None] * 4]


def test_iv_and_greeks_toggle_is_remembered(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_options(open_tab, serve, analytics=False)  # a new browser context: nothing stored
    toggle = '[data-testid="analytics-toggle"]'
    iv_head = '.chain th[data-col="call-iv_mid"]'
    assert tab.page.get_attribute(toggle, "aria-pressed") == "false"
    assert not tab.page.is_visible(iv_head) and not tab.page.is_visible('.chain td[data-col="put-delta"]')
    assert tab.page.is_visible('.chain td[data-col="call-covered_call_tna"]')  # not behind the toggle
    calls = '.chain th[data-side-head="call"]'
    narrow = int(tab.page.get_attribute(calls, "colspan") or 0)
    tab.page.click(toggle)
    tab.page.wait_for_selector(iv_head, state="visible")
    assert tab.page.is_visible('.chain td[data-col="put-delta"]')
    assert int(tab.page.get_attribute(calls, "colspan") or 0) == narrow + len(ANALYTICS)
    tab.page.reload()
    tab.page.wait_for_selector(READY)
    assert tab.page.get_attribute(toggle, "aria-pressed") == "true"
    assert tab.page.is_visible(iv_head)
    tab.page.click(toggle)
    tab.page.wait_for_selector(iv_head, state="hidden")
    tab.page.reload()
    tab.page.wait_for_selector(READY)
    assert not tab.page.is_visible(iv_head)
    assert tab.errors == []


def test_model_switch_resubscribes_and_shows_the_european_figures(
    serve: Serve, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    sent: list[dict[str, Any]] = []

    def record(payload: str | bytes) -> None:
        if isinstance(payload, str):
            sent.append(json.loads(payload))

    tab.page.on("websocket", lambda ws: ws.on("framesent", record))
    tab.page.goto(f"{serve.base_url}/#/opciones")
    tab.page.wait_for_selector(READY)
    tab.page.click('[data-testid="analytics-toggle"]')
    tab.page.wait_for_selector(f'{CHAINS}[data-model="american"]')
    tab.page.click('[data-testid="model"] button[data-value="european"]')
    tab.page.wait_for_selector(f'{CHAINS}[data-model="european"]:not([data-loading])')
    tab.page.wait_for_selector('.chain td[data-col="call-iv_mid"]:not(:empty)')
    greeks = [m for m in sent if m.get("op") == "subscribe" and m.get("channel") == "greeks"]
    assert [(m["symbol"], m["model"]) for m in greeks] == [(UNDERLYING, "american"), (UNDERLYING, "european")]
    assert greeks[0].get("expiry") is None  # one stream for every expiry
    assert {"op": "unsubscribe", "id": greeks[0]["id"]} in sent  # the American stream was left
    assert "model=european" in (tab.page.get_attribute('[data-testid="options-csv"]', "href") or "")
    european_button = '[data-testid="model"] button[data-value="european"]'
    assert tab.page.get_attribute(european_button, "aria-pressed") == "true"
    with frozen(serve, tab):
        shown = tab.page.evaluate(READ_CELLS)
        european = api_chain(serve, "european")
        american = api_chain(serve, "american")
    compare_with_api(shown, european, ANALYTICS)
    # The two models differ where early exercise is worth something (puts at a positive rate): the
    # page shows the European numbers, not the American ones.
    differs = [
        o["symbol"]
        for e_exp, a_exp in zip(european["expiries"], american["expiries"], strict=True)
        for o, a in zip(e_exp["options"], a_exp["options"], strict=True)
        if o["iv_mid"] is not None and a["iv_mid"] is not None and abs(o["iv_mid"] - a["iv_mid"]) > 0.002
    ]
    assert differs, "no option's IV differs between the models: the switch is not visible"
    tab.page.reload()  # the choice is remembered
    tab.page.wait_for_selector(f'{CHAINS}[data-model="european"]')
    assert tab.errors == []


ARBITRAGED = '.chain[data-expiry]:first-child tbody tr:first-child td[data-col="call-iv_ask"]'
ARBITRAGE_SHOWN = """(selector) => { const td = document.querySelector(selector);
  return td.classList.contains('empty') && /below the intrinsic value/.test(td.title); }"""


def test_an_arbitrage_is_shown_empty_with_its_reason(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_options(open_tab, serve)
    # The simulator's "auto" target: the nearest expiry's lowest-strike call (in the money).
    assert not tab.page.evaluate(ARBITRAGE_SHOWN, ARBITRAGED)
    serve.sim_faults("primary", {"option_arbitrage": "auto"})  # its ask 3 % below intrinsic value
    try:
        tab.page.wait_for_function(ARBITRAGE_SHOWN, arg=ARBITRAGED)
        cell = tab.page.evaluate(
            """(selector) => { const td = document.querySelector(selector); const tr = td.closest('tr');
                 const time = tr.querySelector('td[data-col="call-time_value"]');
                 return { expiry: td.closest('.chain').dataset.expiry, strike: tr.dataset.strike,
                          text: td.textContent, title: td.title,
                          time: time.className, timeTitle: time.title }; }""",
            ARBITRAGED,
        )
        chain = api_chain(serve, "american", cell["expiry"])
        tab.shot("opciones-arbitrage")
    finally:
        serve.sim_reset("primary")
    option = next(
        o
        for o in chain["expiries"][0]["options"]
        if o["strike"] == cell["strike"] and o["option_type"] == "call"
    )
    assert cell["text"] == EMPTY and option["iv_ask"] is None
    # The same words as the API's (the ask itself may have moved between the two reads).
    assert words(cell["title"]) == words(option["reasons"]["iv_ask"])
    # A negative time value is shown, flagged with its reason.
    if option["time_value"] is not None and Decimal(option["time_value"]) < 0:
        assert "flagged" in cell["time"] and "arbitrage" in cell["timeTitle"]
    assert tab.errors == []


STALE_CELL = '.chain td.stale[data-col="call-iv_mid"]'


def test_a_stale_underlying_marks_the_figures(tmp_path: Path, open_tab: Callable[[], Tab]) -> None:
    config = write_config(tmp_path)
    # A spot older than 2 s is stale (300 s by default): the simulator's GGAL is then held still.
    config.write_text(config.read_text(encoding="utf-8") + "\n[options]\nstale_after = 2\n", encoding="utf-8")
    running = start_serve(config, venues=("primary",))
    try:
        tab = open_options(open_tab, running)
        assert tab.page.locator(STALE_CELL).count() == 0
        running.sim_faults("primary", {"freeze_underlying": True})  # its options keep being quoted
        tab.page.wait_for_selector(STALE_CELL, timeout=30_000)
        tab.page.wait_for_selector(".spot.stale")
        title = tab.page.get_attribute(STALE_CELL, "title") or ""
        chain = api_chain(running, "american")
        tab.shot("opciones-stale")
        assert chain["spot_stale"] is True
        assert words(title) == words(f"Calculado con un dato desactualizado: {chain['reasons']['spot']}")
        assert tab.errors == []
    finally:
        running.stop()


def test_csv_export_downloads_the_chain_shown(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_options(open_tab, serve, analytics=False)
    tab.page.click('[data-testid="model"] button[data-value="european"]')
    tab.page.wait_for_selector(f'{CHAINS}[data-model="european"]:not([data-loading])')
    with tab.page.expect_download() as whole:
        tab.page.click('[data-testid="options-csv"]')
    rows = list(csv.DictReader(io.StringIO(whole.value.path().read_text(encoding="utf-8"))))
    assert whole.value.suggested_filename.endswith(".csv")
    expiries = tab.page.eval_on_selector_all(".chain[data-expiry]", "s => s.map((e) => e.dataset.expiry)")
    assert {r["expiry"] for r in rows} == set(expiries) and {r["model"] for r in rows} == {"european"}
    listed = api_chain(serve, "european")
    assert len(rows) == sum(len(e["options"]) for e in listed["expiries"])
    first = tab.page.locator('.chain[data-expiry] [data-testid="expiry-csv"]').first
    with tab.page.expect_download() as one:
        first.click()
    rows = list(csv.DictReader(io.StringIO(one.value.path().read_text(encoding="utf-8"))))
    assert {r["expiry"] for r in rows} == {expiries[0]} and {r["model"] for r in rows} == {"european"}
    assert tab.errors == []
