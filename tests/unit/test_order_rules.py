"""Order rules checked before an order is sent: every venue's, Primary's from the captured
instrument details, Kraken's from captured AssetPairs. Each refusal names its rule and the nearest
valid values; what the rules allow passes untouched."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from brokerbridge.core.errors import OrderRefused, UnknownSymbol
from brokerbridge.core.events import Side
from brokerbridge.core.orders import OrderRequest
from brokerbridge.venues import order_checks as checks
from brokerbridge.venues.kraken import order_rules as kraken_rules
from brokerbridge.venues.kraken import rest as kraken_rest
from brokerbridge.venues.kraken.normalize import SymbolMap
from brokerbridge.venues.primary import order_rules as primary_rules
from brokerbridge.venues.primary import rest_messages as rm
from brokerbridge.venues.primary.catalog import Catalog

GGAL = "MERV - XMEV - GGAL - 24hs"  # tick 5, minTradeVol 1, maxTradeVol 1000000
IRSA = "MERV - XMEV - IRSA - CI"  # minTradeVol 10
VSCVD = "MERV - XMEV - VSCVD - CI"  # tick 0.05
OPTION = "MERV - XMEV - GFGC82777F - 24hs"  # tick 0.001, roundLot 100, minTradeVol 1
DLR = "DLR/FEB26"  # tick 0.5, maxTradeVol 10000


def fixtures(venue: str) -> Path:
    env = os.environ.get("BROKERBRIDGE_FIXTURES")
    return Path(env) / venue if env else Path(__file__).parents[1] / "fixtures" / venue


def catalog() -> Catalog:
    raw = (fixtures("primary") / "http_instruments_details_subset.json").read_bytes()
    return Catalog.from_wire(msgspec.json.decode(raw, type=list[rm.InstrumentDetailWire]))


def kraken_pairs(name: str = "http_assetpairs_2026.json") -> dict[str, kraken_rules.PairRules]:
    request = kraken_rest.asset_pairs_request()
    pairs = kraken_rest.parse_answer(request, 200, (fixtures("kraken") / name).read_bytes())
    return kraken_rules.pair_rules(pairs, SymbolMap(pairs))


def order(symbol: str, qty: str, price: str | None = None, **kw: Any) -> OrderRequest:
    kw.setdefault("type", "limit" if price is not None else "market")
    return OrderRequest(
        venue=kw.pop("venue", "primary"),
        symbol=symbol,
        side=kw.pop("side", Side.BUY),
        qty=Decimal(qty),
        price=Decimal(price) if price is not None else None,
        **kw,
    )


def primary_refusal(request: OrderRequest) -> OrderRefused:
    with pytest.raises(OrderRefused) as refused:
        primary_rules.check_order(request, catalog().get(request.symbol))
    assert refused.value.venue == "primary" and refused.value.code == "order_refused"
    return refused.value


def kraken_refusal(request: OrderRequest, name: str = "http_assetpairs_2026.json") -> OrderRefused:
    with pytest.raises(OrderRefused) as refused:
        kraken_rules.check_order(request, kraken_pairs(name).get(request.symbol))
    assert refused.value.venue == "kraken"
    return refused.value


# ---------------------------------------------------------------- every venue


@pytest.mark.parametrize(
    ("request_", "rule"),
    [
        (order(GGAL, "0", "100"), "qty"),
        (order(GGAL, "-5", "100"), "qty"),
        (order(GGAL, "NaN", "100"), "qty"),
        (order(GGAL, "Infinity", "100"), "qty"),
        (order(GGAL, "1E+31", "100"), "qty"),  # no venue takes it; checking it would cost without bound
        (order(GGAL, "1E+999999999", "100"), "qty"),
        (order(GGAL, "0." + "0" * 30 + "1", "100"), "qty"),
        (order(GGAL, "1", "1." + "1" * 40), "price"),
        (order(GGAL, "1", None, type="limit"), "price"),
        (order(GGAL, "1", "100", type="market"), "price"),
        (order(GGAL, "1", "0"), "price"),
        (order(GGAL, "1", "-100"), "price"),
        (msgspec.structs.replace(order(GGAL, "1", "100"), qty=1.5), "qty"),  # a float from Python
        (order(GGAL, "1", "100", side="short"), "side"),
        (order(GGAL, "1", "100", type="stop"), "order_type"),
        (order(GGAL, "1", "100", client_order_id="has space"), "client_order_id"),
        (order(GGAL, "1", "100", client_order_id="x" * 19), "client_order_id"),
        (order(GGAL, "1", "100", time_in_force="gtd"), "time_in_force"),
    ],
)
def test_what_no_venue_takes_is_refused_with_its_rule(request_: OrderRequest, rule: str) -> None:
    assert primary_refusal(request_).rule == rule
    assert kraken_refusal(msgspec.structs.replace(request_, venue="kraken", symbol="BTC/USD")).rule == rule


def test_multiples_are_exact_whatever_the_digits_or_the_size() -> None:
    assert checks.is_multiple(Decimal("0.10"), Decimal("0.05"))
    assert checks.is_multiple(Decimal("0.1"), Decimal("0.050"))
    assert checks.is_multiple(Decimal("100.00"), Decimal("5.0"))
    assert not checks.is_multiple(Decimal("100.03"), Decimal("0.05"))
    # Beyond the default 28 digits: 10^30 + 0.01 is no multiple of 0.05, 10^30 is.
    assert checks.is_multiple(Decimal("1E30"), Decimal("0.05"))
    assert not checks.is_multiple(Decimal("1000000000000000000000000000000.01"), Decimal("0.05"))
    assert checks.is_multiple(Decimal("0.00000000000000000000000000000002"), Decimal("1E-32"))
    assert checks.nearest_multiples(Decimal("100.03"), Decimal("0.05")) == (
        Decimal("100.00"),
        Decimal("100.05"),
    )
    assert checks.nearest_multiples(Decimal("1000000000000000000000000000000.01"), Decimal("0.05")) == (
        Decimal("1000000000000000000000000000000.00"),
        Decimal("1000000000000000000000000000000.05"),
    )
    assert checks.decimals_of(Decimal("0.10")) == 1
    assert checks.decimals_of(Decimal("1E+2")) == 0
    assert checks.decimals_of(Decimal("1E-8")) == 8
    assert checks.text(Decimal("1E+2")) == "100"


# ---------------------------------------------------------------- Primary


def test_primary_tick_refusal_names_the_tick_and_the_nearest_prices() -> None:
    refused = primary_refusal(order(VSCVD, "1", "100.03"))
    assert refused.rule == "tick_size"
    assert "100.03" in refused.message and "0.05" in refused.message
    assert refused.remedy == "use 100.00 or 100.05"
    refused = primary_refusal(order(GGAL, "1", "1002"))
    assert refused.rule == "tick_size" and refused.remedy == "use 1000 or 1005"
    below_first_tick = primary_refusal(order(GGAL, "1", "3"))
    assert below_first_tick.remedy == "use 5"  # 0 is no price


@pytest.mark.parametrize(
    ("symbol", "qty", "price"),
    [
        (VSCVD, "1", "100.05"),
        (VSCVD, "1", "100.050000"),  # the same price, other digits
        (VSCVD, "1", "0.05"),  # the smallest tick
        (GGAL, "1000000", "999995"),  # the largest quantity, near the upper price limit
        (GGAL, "1", "1000000"),  # on the upper limit
        (IRSA, "10", "1"),  # on the minimum
        (OPTION, "1", "0.001"),  # one contract: roundLot 100 is no step
        (OPTION, "3", "12.345"),
        (DLR, "10000", "1000.5"),
    ],
)
def test_primary_accepts_what_the_details_allow(symbol: str, qty: str, price: str) -> None:
    primary_rules.check_order(order(symbol, qty, price), catalog().get(symbol))


def test_primary_quantity_rules() -> None:
    low = primary_refusal(order(IRSA, "9", "100"))
    assert low.rule == "min_qty" and "10" in low.message and low.remedy == "use at least 10"
    high = primary_refusal(order(DLR, "10001", "1000"))
    assert high.rule == "max_qty" and "10000" in high.message
    step = primary_refusal(order(GGAL, "1.5", "100"))
    assert step.rule == "lot_size" and step.remedy == "use 1 or 2"


def test_primary_price_limits_order_types_and_times_in_force() -> None:
    band = primary_refusal(order(GGAL, "1", "1000005"))
    assert band.rule == "price_band" and "1000000" in band.message
    market_future = primary_refusal(order(DLR, "1", type="market"))
    assert market_future.rule == "order_type" and market_future.remedy == "place a limit order"
    primary_rules.check_order(order(GGAL, "1", type="market"), catalog().get(GGAL))  # BYMA takes MARKET
    ioc = primary_refusal(order(GGAL, "1", "100", time_in_force="ioc"))
    assert ioc.rule == "time_in_force" and "FOK" in ioc.message and "DAY" in ioc.message
    primary_rules.check_order(order(GGAL, "1", "100", time_in_force="fok"), catalog().get(GGAL))


def test_primary_unknown_symbol() -> None:
    with pytest.raises(UnknownSymbol):
        primary_rules.check_order(order("MERV - XMEV - NOPE - 24hs", "1", "1"), catalog().get("nope"))


# ---------------------------------------------------------------- Kraken


def kraken(symbol: str, qty: str, price: str | None = None, **kw: Any) -> OrderRequest:
    return order(symbol, qty, price, venue="kraken", **kw)


@pytest.mark.parametrize(
    ("symbol", "qty", "price"),
    [
        ("BTC/USD", "0.00005", "10000.0"),  # the minimum, exactly
        ("BTC/USD", "0.000050000", "10000.10"),  # trailing zeros are no decimals
        ("BTC/USD", "12345678.12345678", "0.1"),  # 8 lot decimals; a huge quantity
        ("DOGE/USD", "50", "0.0100001"),  # the 1e-7 tick
        ("ETH/USD", "0.001", "500"),  # cost 0.5, the minimum exactly
        ("ETH/USD", "1", None),  # market: no cost to check
    ],
)
def test_kraken_accepts_what_assetpairs_allows(symbol: str, qty: str, price: str | None) -> None:
    kraken_rules.check_order(kraken(symbol, qty, price), kraken_pairs().get(symbol))


def test_kraken_refusals_name_rule_numbers_and_nearest_values() -> None:
    tick = kraken_refusal(kraken("BTC/USD", "0.01", "100000.05"))
    assert tick.rule == "price_decimals" and tick.remedy == "use 100000.0 or 100000.1"
    small = kraken_refusal(kraken("BTC/USD", "0.00004", "100000.0"))
    assert small.rule == "min_qty" and "0.00005" in small.message and small.remedy == "use at least 0.00005"
    lot = kraken_refusal(kraken("SOL/USD", "1.000000001", "100.00"))
    assert lot.rule == "lot_size" and lot.remedy == "use 1.00000000 or 1.00000001"
    cost = kraken_refusal(kraken("ETH/USD", "0.001", "499.99"))
    assert cost.rule == "min_notional" and "0.5" in cost.message
    assert cost.remedy == "at price 499.99 use a quantity of at least 0.00100003"


def test_kraken_tick_apart_from_decimals() -> None:
    """tick_size 0.1 with pair_decimals 1 and a tick coarser than the decimals (a made-up pair)."""
    rules = kraken_rules.PairRules(symbol="X/USD", quote="USD", pair_decimals=2, tick_size=Decimal("0.05"))
    with pytest.raises(OrderRefused) as refused:
        kraken_rules.check_order(kraken("X/USD", "1", "10.03"), rules)
    assert refused.value.rule == "tick_size" and refused.value.remedy == "use 10.00 or 10.05"
    kraken_rules.check_order(kraken("X/USD", "1", "10.10"), rules)


@pytest.mark.parametrize(
    ("status", "order_type", "allowed"),
    [
        ("online", "market", True),
        ("limit_only", "limit", True),
        ("limit_only", "market", False),
        ("cancel_only", "limit", False),
        ("post_only", "limit", False),
        ("reduce_only", "limit", False),
        ("delisted", "limit", False),
        ("maintenance", "market", False),
        ("work_in_progress", "limit", False),
    ],
)
def test_kraken_pair_status(status: str, order_type: str, allowed: bool) -> None:
    rules = msgspec.structs.replace(kraken_pairs()["BTC/USD"], status=status)
    request = kraken("BTC/USD", "0.01", "100000.0" if order_type == "limit" else None)
    if allowed:
        kraken_rules.check_order(request, rules)
        return
    with pytest.raises(OrderRefused) as refused:
        kraken_rules.check_order(request, rules)
    assert refused.value.rule == "pair_status" and status in refused.value.message


def test_kraken_unknown_pair_and_names() -> None:
    pairs = kraken_pairs("http_assetpairs.json")
    assert {"BTC/USD", "USDC/USD", "ETH/BTC"} <= set(pairs)
    assert pairs["ETH/BTC"].quote == "BTC" and pairs["ETH/BTC"].costmin == Decimal("0.00002")
    with pytest.raises(UnknownSymbol):
        kraken_rules.check_order(kraken("NOPE/USD", "1", "1"), pairs.get("NOPE/USD"))
