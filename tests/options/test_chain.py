"""`analyze_chain` and `chain_view`: hand-worked parity and covered-call figures, every reason,
dividends, and the chain's IVs and greeks equal to the math functions' (no drift in the plumbing)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import msgspec
import numpy as np
import pytest

from brokerbridge.core.config import Dividend
from brokerbridge.core.events import OptionAnalytics
from brokerbridge.core.options.american import american_greeks, american_price
from brokerbridge.core.options.analytics import (
    BUENOS_AIRES,
    ChainInputs,
    OptionContract,
    Quote,
    analyze_chain,
    chain_view,
)
from brokerbridge.core.options.black_scholes import european_greeks, european_price
from brokerbridge.core.options.calendar import byma_calendar
from brokerbridge.core.options.implied_vol import implied_vol
from brokerbridge.core.options.rates import (
    RateInput,
    caucion_quote_tna,
    caucion_rate,
    chosen_rate,
    configured_rate,
    continuous_rate,
    dividends_of,
    dividends_pv,
    simple_tna,
)

D = dt.date
EXPIRY = D(2026, 12, 18)  # a Friday; BYMA's December series
# Monday 2026-12-07 13:00 Buenos Aires: 11 days and 4 hours before the expiry's 17:00 close.
NOW = dt.datetime(2026, 12, 7, 13, 0, tzinfo=BUENOS_AIRES).timestamp()
DAYS = 11 + 4 / 24
SPOT = Quote(bid=Decimal("7140"), ask=Decimal("7160"), last=Decimal("7155"), ts=NOW)  # mid 7150
RATE = caucion_rate("MERV - XMEV - PESOS - 1D", 29.5, 1)
CALENDAR = byma_calendar()


def contract(kind: str, strike: str, expiry: dt.date = EXPIRY) -> OptionContract:
    right = "C" if kind == "call" else "V"
    return OptionContract(
        symbol=f"MERV - XMEV - GFG{right}{strike}{expiry.month:02d} - 24hs",
        underlying="GGAL",
        option_type=kind,
        strike=Decimal(strike),
        expiry=expiry,
        lot=Decimal(100),
    )


def q(bid: str | None = None, ask: str | None = None, last: str | None = None) -> Quote:
    num = lambda text: Decimal(text) if text is not None else None  # noqa: E731
    return Quote(bid=num(bid), ask=num(ask), last=num(last), ts=NOW)


def inputs(
    pairs: list[tuple[OptionContract, Quote | None]],
    *,
    model: str = "european",
    spot: Quote | None = SPOT,
    rate: RateInput | None = RATE,
    now: float = NOW,
    **kw: object,
) -> ChainInputs:
    return ChainInputs(
        venue="primary",
        underlying="GGAL",
        underlying_symbol="MERV - XMEV - GGAL - 24hs",
        contracts=tuple(c for c, _ in pairs),
        quotes={c.symbol: quote for c, quote in pairs if quote is not None},
        spot=spot,
        spot_stale=kw.pop("spot_stale", None),  # type: ignore[arg-type]
        rate=rate,
        model=model,
        now=now,
        calendar=CALENDAR,
        **kw,  # type: ignore[arg-type]
    )


def one(pair: tuple[OptionContract, Quote | None], **kw: object) -> OptionAnalytics:
    (event,) = analyze_chain(inputs([pair], **kw))
    return event


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def figure_price(quote: Quote | None, figure: str) -> float:
    """The float the solver gets for `figure` (NaN where there is none)."""
    if quote is None:
        return math.nan
    if figure == "mid":
        if quote.bid is None or quote.ask is None:
            return math.nan
        return (float(quote.bid) + float(quote.ask)) / 2
    value = getattr(quote, figure)
    return math.nan if value is None else float(value)


def assert_no_nan(events: list[OptionAnalytics]) -> None:
    for event in events:
        for name in event.__struct_fields__:
            value = getattr(event, name)
            if isinstance(value, float):
                assert math.isfinite(value), (event.symbol, name)
    assert b"NaN" not in msgspec.json.encode(events)


# ---------------------------------------------------------------- rates and dividends


def test_caucion_tna_becomes_the_continuous_rate_of_the_same_growth() -> None:
    r = continuous_rate(29.5, 1)
    assert r == pytest.approx(math.log(1 + 0.295 / 365) * 365, rel=1e-15)
    assert continuous_rate(30.0, 7) == pytest.approx(math.log(1 + 0.30 * 7 / 365) * 365 / 7, rel=1e-15)
    assert simple_tna(continuous_rate(30.0, 7), 7) == pytest.approx(30.0, rel=1e-12)
    assert RATE.source == "caución MERV - XMEV - PESOS - 1D" and RATE.tna == 29.5
    configured = configured_rate(30.0)
    assert (configured.source, configured.rate) == ("configured", continuous_rate(30.0, 1))
    with pytest.raises(ValueError, match="at least 1 day"):
        continuous_rate(30.0, 0)


def test_dividends_pv_counts_those_going_ex_after_today_up_to_the_expiry() -> None:
    midnight = dt.datetime(2026, 12, 7, tzinfo=BUENOS_AIRES).timestamp()
    divs = [
        (D(2026, 12, 7), Decimal("10")),  # ex today: already in the price
        (D(2026, 12, 10), Decimal("25.5")),
        (D(2026, 12, 18), Decimal("4")),  # on the expiry: counts
        (D(2026, 12, 21), Decimal("99")),  # after the expiry: does not
    ]
    r = 0.3
    pv = dividends_pv(divs, today=D(2026, 12, 7), expiry=EXPIRY, now=NOW, midnight=midnight, rate=r)
    # 13:00 today → 00:00 on the 10th is 2 days 11 hours; → the 18th is 10 days 11 hours
    expected = 25.5 * math.exp(-r * (2 + 11 / 24) / 365) + 4 * math.exp(-r * (10 + 11 / 24) / 365)
    assert pv == pytest.approx(expected, rel=1e-14)


def test_the_models_see_the_escrowed_spot() -> None:
    call = contract("call", "7000")
    divs = ((D(2026, 12, 10), Decimal("25.5")),)
    event = one((call, q("395", "405")), dividends=divs)
    assert event.dividends_pv == pytest.approx(25.5 * math.exp(-RATE.rate * (2 + 11 / 24) / 365), rel=1e-12)
    escrowed = 7150 - event.dividends_pv
    t = DAYS / 365
    expected = implied_vol(
        arr(400.0), np.array([True]), arr(escrowed), arr(7000), arr(t), arr(RATE.rate), arr(0)
    )
    assert event.iv_mid == expected.vol[0]
    assert event.spot == Decimal("7150")  # the event shows the market's spot, not the escrowed one
    plain = one((call, q("395", "405")))
    assert plain.dividends_pv == 0.0 and plain.iv_mid is not None and event.iv_mid is not None
    assert event.iv_mid > plain.iv_mid  # the same price on a lower forward is dearer in vol


# ---------------------------------------------------------------- the figures


def test_time_to_expiry_days_business_days_and_t() -> None:
    event = one((contract("call", "7000"), q("390", "410")))
    assert event.days == pytest.approx(DAYS, abs=1e-6)
    # 8 Dec is a holiday: 9, 10, 11, 14, 15, 16, 17, 18 December
    assert event.business_days == 8
    assert event.t == pytest.approx(DAYS / 365, rel=1e-12)
    business = one((contract("call", "7000"), q("390", "410")), time_basis="business")
    # 8 sessions after today plus today's 4 hours left before 17:00
    assert business.t == pytest.approx((8 + 4 / 24) / 252, rel=1e-12)


@pytest.mark.parametrize("model", ["european", "american"])
def test_chain_ivs_and_greeks_equal_the_math_functions(model: str) -> None:
    strikes = [6000, 6500, 7000, 7500, 8000]
    k = np.array(strikes * 2, dtype=np.float64)
    price_of = american_price if model == "american" else european_price
    fair = price_of(
        np.array([True] * 5 + [False] * 5), arr(*[7150.0] * 10), k, arr(*[DAYS / 365] * 10),
        arr(*[RATE.rate] * 10), arr(*[0.0] * 10), arr(*[0.5] * 10),
    )  # fmt: skip
    pairs = []
    for i, strike in enumerate(strikes * 2):
        kind = "call" if i < 5 else "put"
        mid = float(fair[i])
        last = None if i in (2, 8) else f"{mid * 1.01:.1f}"
        pairs.append((contract(kind, str(strike)), q(f"{mid * 0.97:.1f}", f"{mid * 1.03:.1f}", last)))
    pairs.append((contract("call", "7250"), q(None, "300", "290")))  # greeks at the last
    events = analyze_chain(inputs(pairs, model=model))
    assert_no_nan(events)
    n = len(pairs)
    is_call = np.array([c.option_type == "call" for c, _ in pairs])
    strike = np.array([float(c.strike) for c, _ in pairs])
    t = np.full(n, DAYS / 365)
    spot, r, q0 = np.full(n, 7150.0), np.full(n, RATE.rate), np.zeros(n)
    for figure in ("bid", "ask", "last", "mid"):
        price = np.array([figure_price(quote, figure) for _, quote in pairs], dtype=np.float64)
        solved = implied_vol(price, is_call, spot, strike, t, r, q0, model=model)  # type: ignore[arg-type]
        for i, event in enumerate(events):
            mine = getattr(event, "iv_" + figure)
            if math.isfinite(solved.vol[i]):
                # The American solver stops on its tolerances (docs/options-models.md: a step under
                # 1e-9 of vol, a residual worth 1e-7 of vol), and where it stops moves with the batch's
                # other entries (siblings share a curve); a plumbing slip (spot, t, rate, price) moves
                # an IV by far more than 1e-7.
                tolerance = {"abs": 1e-7} if model == "american" else {"rel": 1e-10}
                assert mine == pytest.approx(solved.vol[i], **tolerance), (event.symbol, figure)
            else:
                assert mine is None and ("iv_" + figure) in event.reasons
    assert sum(e.iv_mid is not None for e in events) == 10
    assert events[-1].greeks_from == "last" and events[-1].iv_last is not None
    vol = np.array([e.iv_mid if e.iv_mid is not None else e.iv_last for e in events], dtype=np.float64)
    greeks = (american_greeks if model == "american" else european_greeks)(
        is_call, spot, strike, t, r, q0, vol
    )
    for i, event in enumerate(events):
        assert event.model == model
        assert event.greeks_from == ("mid" if i < 10 else "last")
        assert event.delta == pytest.approx(greeks.delta[i], rel=1e-9, abs=1e-15)
        assert event.gamma == pytest.approx(greeks.gamma[i], rel=1e-9, abs=1e-15)
        assert event.vega == pytest.approx(greeks.vega[i] / 100, rel=1e-9)  # per vol point
        assert event.theta == pytest.approx(greeks.theta[i] / 365, rel=1e-9)  # per calendar day
        assert event.rho == pytest.approx(greeks.rho[i] / 100, rel=1e-9)  # per rate point


def test_greeks_at_the_last_when_there_is_no_mid() -> None:
    event = one((contract("call", "7000"), q(None, "410", "400")))
    assert event.iv_mid is None and event.iv_last is not None
    assert event.greeks_from == "last" and event.delta is not None
    assert event.reasons["mid"] == "no mid: it needs both a bid and an ask"
    assert event.reasons["bid"] == "no bid" and event.reasons["iv_bid"] == "no bid"


def test_intrinsic_time_value_and_mid_keep_the_venues_digits() -> None:
    event = one((contract("call", "7000"), q("390.125", "410.5")))
    assert event.mid == Decimal("400.3125")  # exact: not rounded to the tick
    assert event.intrinsic == Decimal("150")
    assert event.time_value == Decimal("250.3125")
    put = one((contract("put", "7000"), q("100", "110")))
    assert put.intrinsic == Decimal("0") and put.time_value == Decimal("105")


def test_put_call_parity_rate_by_hand() -> None:
    call, put = contract("call", "7000"), contract("put", "7000")
    events = analyze_chain(inputs([(call, q("390", "410")), (put, q("195", "205"))]))
    # conversion: buy the share at 7150, buy the put at 200, sell the call at 400 → costs 6950,
    # pays 7000 at the expiry, 11 days 4 hours away.
    expected = (7000 / 6950 - 1) * 365 / DAYS * 100
    assert events[0].parity_tna == pytest.approx(expected, rel=1e-12)
    assert events[1].parity_tna == events[0].parity_tna
    assert expected == pytest.approx(23.516, abs=1e-3)
    view = chain_view(inputs([(call, q("390", "410")), (put, q("195", "205"))]), events)
    assert view.expiries[0].parity_tna == events[0].parity_tna
    assert view.caucion_tna == 29.5


def test_parity_needs_both_mids() -> None:
    call, put = contract("call", "7000"), contract("put", "7000")
    events = analyze_chain(inputs([(call, q("390", "410")), (put, q(None, "205"))]))
    assert events[0].parity_tna is None and events[1].parity_tna is None
    assert "both with a mid" in events[0].reasons["parity_tna"]


def test_covered_call_by_hand() -> None:
    # buy GGAL at its ask 7160, sell the 7000 call at its bid 390: 6770 paid; exercised (7000 ≤
    # 7150) it returns 7000 in 11 days 4 hours.
    event = one((contract("call", "7000"), q("390", "410")))
    growth = 7000 / 6770
    assert event.covered_call_tna == pytest.approx((growth - 1) * 365 / DAYS * 100, rel=1e-12)
    assert event.covered_call_tea == pytest.approx((growth ** (365 / DAYS) - 1) * 100, rel=1e-12)
    assert event.break_even == Decimal("6770")
    # out of the money: the share kept at today's 7150 (the rate if nothing moves)
    otm = one((contract("call", "7500"), q("160", "172")))
    assert otm.covered_call_tna == pytest.approx((7150 / 7000 - 1) * 365 / DAYS * 100, rel=1e-12)
    assert otm.break_even == Decimal("7000")
    # a dividend going ex before the expiry is collected too, and lowers the break-even
    divs = ((D(2026, 12, 10), Decimal("25.5")),)
    paid = one((contract("call", "7000"), q("390", "410")), dividends=divs)
    assert paid.covered_call_tna == pytest.approx((7025.5 / 6770 - 1) * 365 / DAYS * 100, rel=1e-12)
    assert paid.break_even == Decimal("6744.5")
    assert one((contract("put", "7000"), q("195", "205"))).covered_call_tna is None


def test_covered_call_needs_a_bid() -> None:
    event = one((contract("call", "7000"), q(None, "410", "400")))
    assert event.covered_call_tna is None and event.break_even is None
    assert event.reasons["covered_call"] == "no bid to sell the call at"


# ---------------------------------------------------------------- reasons, never NaN


def test_no_quote_at_all() -> None:
    event = one((contract("call", "7000"), None))
    assert (event.bid, event.ask, event.last, event.mid) == (None, None, None, None)
    assert event.reasons["bid"] == "no bid" and event.reasons["last"] == "no trade yet"
    assert event.iv_last is None and event.reasons["iv_last"] == "no trade yet"
    assert event.greeks_from is None and event.delta is None
    assert event.reasons["greeks"] == "no implied volatility of the mid or the last to take greeks at"
    assert event.intrinsic == Decimal("150") and event.time_value is None
    assert_no_nan([event])


def test_a_price_below_intrinsic_says_by_how_much() -> None:
    event = one((contract("call", "6000"), q("1100", "1120", "1130")))
    assert event.iv_ask is None and event.iv_bid is None and event.iv_mid is None
    assert event.reasons["iv_ask"] == (
        "the ask 1120 is below the intrinsic value 1150 by 30: an arbitrage (buy and exercise), "
        "no volatility gives this price"
    )
    assert (
        event.reasons["iv_bid"]
        == "the bid 1100 is below the intrinsic value 1150 by 50: no volatility gives this price"
    )
    assert event.time_value == Decimal("-40")
    assert event.reasons["time_value"] == (
        "negative: the price is 40 below the intrinsic value (an arbitrage: the ask is below it too)"
    )
    assert_no_nan([event])


def test_a_price_below_the_models_lower_bound_but_above_intrinsic() -> None:
    # European: a deep call is worth S − K·e^(−rt) ≈ 1203.9 at the least, above S − K = 1150
    event = one((contract("call", "6000"), q("1170", "1230")))
    assert event.iv_bid is None and event.iv_ask is not None
    lower = 7150 - 6000 * math.exp(-RATE.rate * DAYS / 365)
    assert event.reasons["iv_bid"] == (
        f"the bid 1170 is below the model's lower bound {lower:.3f} by {lower - 1170:.3f}: "
        "no volatility gives this price"
    )


def test_a_price_above_the_upper_bound() -> None:
    event = one((contract("call", "7000"), q("390", "7200")))
    assert event.iv_ask is None
    assert event.reasons["iv_ask"] == (
        "the ask 7200 is at or above the upper bound 7150.000 (the spot): no volatility gives this price"
    )
    assert event.iv_bid is not None


def test_expired_keeps_only_intrinsic() -> None:
    after = dt.datetime(2026, 12, 18, 17, 30, tzinfo=BUENOS_AIRES).timestamp()
    event = one((contract("call", "7000"), q("140", "160", "150")), now=after)
    assert event.days < 0 and event.business_days == 0 and event.t is None
    assert event.intrinsic == Decimal("150")
    assert event.time_value is None
    for figure in ("iv_bid", "iv_ask", "iv_last", "iv_mid", "delta", "parity_tna", "covered_call_tna"):
        assert getattr(event, figure) is None
    assert event.reasons["expiry"].startswith("expired: the expiry's close (2026-12-18 17:00 Buenos Aires)")
    assert event.reasons["iv_mid"] == event.reasons["expiry"] == event.reasons["greeks"]
    assert_no_nan([event])


def test_the_expiry_day_before_its_close_is_still_live() -> None:
    morning = dt.datetime(2026, 12, 18, 11, 0, tzinfo=BUENOS_AIRES).timestamp()
    event = one((contract("call", "7000"), q("152", "160")), now=morning)
    assert event.days == pytest.approx(0.25) and event.business_days == 0
    assert event.iv_mid is not None and event.delta is not None


def test_no_spot() -> None:
    event = one((contract("call", "7000"), q("390", "410")), spot=None)
    assert event.spot is None and event.intrinsic is None
    assert event.reasons["spot"] == "no price of the underlying yet"
    assert event.iv_mid is None and event.reasons["iv_mid"].startswith("no spot")
    assert event.delta is None and event.covered_call_tna is None
    assert_no_nan([event])


def test_spot_from_last_when_a_side_is_missing() -> None:
    event = one((contract("call", "7000"), q("390", "410")), spot=q("7140", None, "7155"))
    assert event.spot == Decimal("7155")


def test_a_stale_spot_is_flagged_not_hidden() -> None:
    event = one((contract("call", "7000"), q("390", "410")), spot_stale="the last GGAL price is 6 min old")
    assert event.stale is True
    assert event.reasons["spot"] == "the last GGAL price is 6 min old"
    assert event.iv_mid is not None and event.delta is not None  # given, and flagged


def test_no_rate() -> None:
    event = one((contract("call", "7000"), q("390", "410")), rate=None)
    assert event.rate is None and event.rate_source == ""
    assert event.reasons["rate"].startswith("no rate")
    assert event.iv_mid is None and event.reasons["iv_mid"] == "no rate"
    assert_no_nan([event])


def test_a_crossed_book_has_no_mid() -> None:
    event = one((contract("call", "7000"), q("420", "410")))
    assert event.mid is None
    assert event.reasons["mid"] == "no mid: the bid 420 is above the ask 410 (a crossed book)"


def test_an_expiry_beyond_the_holiday_data_says_so() -> None:
    far = D(CALENDAR.last_year + 1, 6, 18)
    (event,) = analyze_chain(inputs([(contract("call", "7000", far), q("3500", "3600"))]))
    assert "holiday calendar ends with" in event.reasons["business_days"]
    assert event.iv_mid is not None
    view = chain_view(inputs([(contract("call", "7000", far), q("3500", "3600"))]), [event])
    assert "business_days" in view.reasons


def test_chain_view_groups_by_expiry_and_orders_by_strike_call_first() -> None:
    later = D(2027, 2, 19)
    pairs = [
        (contract("put", "7500", later), q("600", "640")),
        (contract("put", "7000"), q("195", "205")),
        (contract("call", "7500"), q("160", "172")),
        (contract("call", "7000"), q("390", "410")),
        (contract("call", "7000", later), q("800", "840")),
    ]
    chain = inputs(pairs, rate=configured_rate(30.0))
    view = chain_view(chain, analyze_chain(chain), simulated=True)
    assert [e.expiry for e in view.expiries] == ["2026-12-18", "2027-02-19"]
    assert [(o.strike, o.option_type) for o in view.expiries[0].options] == [
        (Decimal(7000), "call"),
        (Decimal(7000), "put"),
        (Decimal(7500), "call"),
    ]
    assert view.expiries[0].business_days == 8
    assert view.expiries[1].parity_tna is None  # no pair in February
    assert view.caucion_tna is None and view.rate_source == "configured"
    assert view.spot == Decimal("7150") and view.simulated and view.reasons == {}
    assert msgspec.json.decode(msgspec.json.encode(view), type=type(view)) == view


def test_the_rate_chosen_by_rate_source() -> None:
    caucion = {"caucion_symbol": "MERV - XMEV - PESOS - 1D", "caucion_days": 1}
    assert chosen_rate(rate_source="caucion", rate_tna=30.0, tna=29.5, **caucion) == RATE
    # not quoted yet, or the source is the configuration: rate_tna as a 1-day caución
    assert chosen_rate(rate_source="caucion", rate_tna=30.0, tna=None, **caucion) == configured_rate(30.0)
    assert chosen_rate(rate_source="config", rate_tna=30.0, tna=29.5, **caucion) == configured_rate(30.0)
    assert chosen_rate(
        rate_source="caucion", rate_tna=30.0, tna=29.5, caucion_symbol=None, caucion_days=None
    ) == (configured_rate(30.0))
    assert caucion_quote_tna(Decimal("29.4"), Decimal("29.6"), Decimal("29.55")) == 29.55
    assert caucion_quote_tna(Decimal("29.4"), Decimal("29.6"), None) == 29.5
    assert caucion_quote_tna(None, Decimal("29.6"), None) is None


def test_dividends_of_an_underlying_from_the_config() -> None:
    config = (
        Dividend(underlying="GGAL", ex_date="2027-05-10", amount=Decimal("25.5")),
        Dividend(underlying="YPFD", ex_date="2027-01-10", amount=Decimal("100")),
        Dividend(underlying="GGAL", ex_date="2026-12-10", amount=Decimal("4")),
    )
    assert dividends_of(config, "ggal") == (
        (D(2026, 12, 10), Decimal("4")),
        (D(2027, 5, 10), Decimal("25.5")),
    )


def test_an_american_put_at_its_exercise_value_implies_no_vol_and_says_why() -> None:
    # deep in the money with a 29.5 % rate: exercising now is worth more than waiting, so the
    # American price is the intrinsic value for every low volatility
    event = one((contract("put", "10000"), q("2850", "2850")), model="american")
    assert event.iv_mid is None
    assert event.reasons["iv_mid"] == (
        "the mid 2850 is at the model's lower bound 2850.000 (worth exercising now): "
        "every low volatility gives this price, so it implies none"
    )


def test_no_business_time_left_on_a_holiday_expiry_says_so() -> None:
    # a series listed to expire on a holiday (8 December), seen that morning in business time:
    # no session is left, though the calendar day has hours to run
    holiday = D(2026, 12, 8)
    morning = dt.datetime(2026, 12, 8, 10, 0, tzinfo=BUENOS_AIRES).timestamp()
    event = one((contract("call", "7000", holiday), q("150", "160")), now=morning, time_basis="business")
    assert event.days > 0 and event.t == 0.0
    assert event.iv_mid is None and event.delta is None
    assert (
        event.reasons["iv_mid"] == "no business time is left before the expiry's close (time_basis business)"
    )
    calendar = one((contract("call", "7000", holiday), q("152", "160")), now=morning)
    assert calendar.t is not None and calendar.t > 0 and calendar.iv_mid is not None


def test_a_plain_option_carries_only_the_reasons_it_can_have() -> None:
    """An option whose figures are all there takes no reason of its own (`analyze_chain` skips
    `_reasons` for it) but its chain's, its expiry's and a negative time value's: each still said."""
    far = D(2031, 12, 19)  # beyond the shipped holiday data
    strikes = ["6000", "6500", "7000", "7500", "8000"]
    fair = european_price(
        np.array([True] * 5 + [False] * 5), arr(*[7150.0] * 10), np.array([float(k) for k in strikes * 2]),
        arr(*[DAYS / 365] * 10), arr(*[RATE.rate] * 10), arr(*[0.0] * 10), arr(*[0.5] * 10),
    )  # fmt: skip
    pairs = [
        (contract("call" if i < 5 else "put", k), q(f"{m * 0.97:.1f}", f"{m * 1.03:.1f}", f"{m:.1f}"))
        for i, (k, m) in enumerate(zip(strikes * 2, fair.tolist(), strict=True))
    ]
    # A European put under its intrinsic value (1,850) but above its discounted bound: a negative
    # time value with every IV solved; its call at 9000 makes the pair.
    pairs.append((contract("put", "9000"), q("1790", "1810", "1800")))
    pairs.append((contract("call", "9000"), q("1", "2", "1.5")))
    pairs.append((contract("call", "7100", far), q("5900", "6100", "6000")))  # no put: no parity
    events = {e.symbol: e for e in analyze_chain(inputs(pairs, spot_stale="the spot is 90 s old"))}
    plain = [e for e in events.values() if None not in (e.iv_bid, e.iv_ask, e.iv_last, e.iv_mid, e.delta)]
    assert len(plain) >= 10
    for event in plain:
        assert event.reasons["spot"] == "the spot is 90 s old" and event.stale
    put = events[contract("put", "9000").symbol]
    assert put in plain and put.time_value == Decimal("-50")
    assert put.reasons["time_value"] == (
        "negative: the price is 50 below the intrinsic value (an arbitrage: the ask is below it too)"
    )
    lonely = events[contract("call", "7100", far).symbol]
    assert lonely.parity_tna is None and lonely.reasons["parity_tna"] == (
        "needs a call and a put of this strike and expiry, both with a mid, and a spot"
    )
    assert lonely.reasons["business_days"].startswith("the holiday calendar ends with")
    assert set(lonely.reasons) == {"spot", "business_days", "parity_tna"}  # its IVs: all solved
    assert lonely.iv_mid is not None and lonely.covered_call_tna is not None
    for e in plain:  # no reason of an empty figure on an option whose figures are all there
        if e is not lonely and e.parity_tna is not None:
            assert {"spot"} <= set(e.reasons) <= {"spot", "time_value", "covered_call"}, e.symbol
            assert ("time_value" in e.reasons) == (e.time_value is not None and e.time_value < 0)


def test_a_memo_kept_across_ticks_changes_no_figure() -> None:
    """`ChainMemo` reuses a quote's floats and mid while the quote is the same object: across
    ticks that replace, remove and add quotes and change the contracts, every event equals the
    one computed without a memo."""
    from brokerbridge.core.options.analytics import ChainMemo

    strikes = ["6500", "7000", "7500"]
    pairs = [(contract(kind, k), q("150", "160", "155")) for k in strikes for kind in ("call", "put")]
    memo = ChainMemo()
    chain = inputs(pairs)
    quotes = dict(chain.quotes)
    steps: list[ChainInputs] = [chain]
    quotes[pairs[0][0].symbol] = q("151", "161", "156")  # one option ticks
    steps.append(inputs(pairs, spot=q("7100", "7110", "7105")))
    steps.append(ChainInputs(**{**_fields(chain), "quotes": dict(quotes)}))
    del quotes[pairs[1][0].symbol]  # a quote gone
    quotes[pairs[2][0].symbol] = q(None, "40", None)  # one side only
    steps.append(ChainInputs(**{**_fields(chain), "quotes": dict(quotes)}))
    steps.append(ChainInputs(**{**_fields(chain), "quotes": dict(quotes), "contracts": chain.contracts[2:]}))
    steps.append(
        ChainInputs(**{**_fields(chain), "quotes": dict(quotes), "contracts": chain.contracts[::-1]})
    )
    for step in steps:
        with_memo = analyze_chain(ChainInputs(**{**_fields(step), "memo": memo}))
        assert msgspec.json.encode(with_memo) == msgspec.json.encode(analyze_chain(step))


def _fields(chain: ChainInputs) -> dict[str, object]:
    return {name: getattr(chain, name) for name in chain.__slots__}


@pytest.mark.parametrize("model", ["american", "european"])
def test_guesses_change_no_figure_beyond_the_solvers_tolerance(model: str) -> None:
    """The previous tick's IVs as the solver's starting points (what the service passes): the same
    figures and reasons within the solver's tolerance, whether the guesses are the previous
    tick's, stale, absurd or partial."""
    strikes = ["5000", "6000", "6500", "7000", "7500", "8000", "9500"]
    price_of = american_price if model == "american" else european_price
    kinds = np.array([True] * len(strikes) + [False] * len(strikes))
    fair = price_of(
        kinds, arr(*[7150.0] * 14), np.array([float(k) for k in strikes * 2]), arr(*[DAYS / 365] * 14),
        arr(*[RATE.rate] * 14), arr(*[0.0] * 14), arr(*[0.5 + 0.02 * i for i in range(14)]),
    )  # fmt: skip
    pairs = [
        (
            contract("call" if i < len(strikes) else "put", k),
            q(f"{m * 0.97:.3f}", f"{m * 1.03:.3f}", f"{m:.3f}"),
        )
        for i, (k, m) in enumerate(zip(strikes * 2, fair.tolist(), strict=True))
    ]
    before = analyze_chain(inputs(pairs, model=model, spot=q("7100", "7110", "7105")))
    cold = analyze_chain(inputs(pairs, model=model))
    symbols = [c.symbol for c, _ in pairs]
    previous = {e.symbol: (e.iv_bid, e.iv_ask, e.iv_last, e.iv_mid) for e in before}
    stale = {s: (0.9, 0.9, 0.9, 0.9) for s in symbols}
    absurd = {s: (1e-9, 50.0, math.nan, None) for s in symbols}
    partial = {s: previous[s] for s in symbols[::3]}
    figures = ("iv_bid", "iv_ask", "iv_last", "iv_mid", "delta", "vega")
    for guesses in (previous, stale, absurd, partial):
        warm = analyze_chain(inputs(pairs, model=model, guesses=guesses))
        for a, b in zip(cold, warm, strict=True):
            assert a.reasons.keys() == b.reasons.keys(), a.symbol
            for name in figures:
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None) == (y is None), (a.symbol, name)
                if x is not None:
                    assert y == pytest.approx(x, abs=1e-6, rel=1e-5), (a.symbol, name)
    assert sum(e.iv_mid is not None for e in cold) >= 12
