"""An underlying's option facts from Primary's details: the captured xOMS entries and the
simulator's catalogue (strike, expiry, type and lot from the details, never from the ticker)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from brokerbridge.core.errors import UnknownSymbol
from brokerbridge.sim.primary.catalog import default_catalog
from brokerbridge.venues.primary import rest_messages as rm
from brokerbridge.venues.primary.catalog import Catalog, detail_from_wire
from brokerbridge.venues.primary.options import (
    caucion_term,
    lot_of,
    option_facts,
    optionable,
    peso_caucion,
)

D = dt.date
FIXTURE = Path(__file__).parents[1] / "fixtures" / "primary" / "http_instruments_details_subset.json"


def captured() -> Catalog:
    return Catalog.from_wire(msgspec.json.decode(FIXTURE.read_bytes(), type=list[rm.InstrumentDetailWire]))


def simulated(today: dt.date = D(2026, 12, 7)) -> Catalog:
    """The simulator's catalogue as a client sees it: its details through the wire decoder."""
    details = [inst.detail() for inst in default_catalog(today).instruments]
    return Catalog.from_wire(
        msgspec.json.decode(msgspec.json.encode(details), type=list[rm.InstrumentDetailWire])
    )


def test_captured_ggal_options_take_strike_expiry_type_and_lot_from_the_details() -> None:
    facts = option_facts(captured(), "GGAL")
    assert facts.underlying == "GGAL"
    assert facts.underlying_symbol == "MERV - XMEV - GGAL - 24hs"
    assert facts.settlement == "24hs"
    by_symbol = {c.symbol: c for c in facts.contracts}
    wide = by_symbol["MERV - XMEV - GFGC82777F - 24hs"]
    # The ticker reads 82777; the detail says 8277.7, and the detail is the fact.
    assert wide.strike == Decimal("8277.7")
    assert wide.expiry == D(2026, 2, 20)
    assert wide.option_type == "call"
    assert wide.lot == Decimal(100)  # roundLot; contractMultiplier is 1.0 on xOMS
    assert by_symbol["MERV - XMEV - GFGV38781D - 24hs"].strike == Decimal("3878.1")
    assert by_symbol["MERV - XMEV - GFGV38781D - 24hs"].option_type == "put"
    # by expiry, then strike, call before put; TRAN's put is not GGAL's
    assert [c.symbol.split(" - ")[2] for c in facts.contracts] == [
        "GFGV2900DI",
        "GFGV38781D",
        "GFGC4500DI",
        "GFGC82777F",
    ]
    assert facts.expiries == (D(2025, 12, 19), D(2026, 2, 20))
    assert facts.rate is None  # the fixture lists only a dollar caución


def test_a_stock_symbol_names_the_underlying_too_and_an_expiry_filters() -> None:
    facts = option_facts(captured(), "MERV - XMEV - GGAL - 24hs", expiry=D(2025, 12, 19))
    assert facts.underlying == "GGAL"
    assert {c.expiry for c in facts.contracts} == {D(2025, 12, 19)}
    assert len(facts.contracts) == 3
    assert facts.expiries == (D(2025, 12, 19), D(2026, 2, 20))  # still every listed expiry


def test_an_underlying_without_options_names_those_that_have_them() -> None:
    catalog = captured()
    with pytest.raises(UnknownSymbol) as raised:
        option_facts(catalog, "YPFD")
    assert "YPFD" in raised.value.message
    assert raised.value.remedy == "underlyings with options listed: GGAL"
    # Transener's put has no Transener share in the fixture to name it by: not offered as a ticker.
    assert optionable(catalog) == ["GGAL"]


def test_an_expiry_not_listed_names_the_listed_ones() -> None:
    with pytest.raises(UnknownSymbol) as raised:
        option_facts(captured(), "GGAL", expiry=D(2026, 1, 16))
    assert raised.value.remedy == "GGAL expiries listed: 2025-12-19, 2026-02-20"


def test_lot_is_round_lot_else_a_multiplier_above_one() -> None:
    catalog = captured()
    option = catalog.get("MERV - XMEV - GFGC4500DI - 24hs")
    agro = catalog.get("SOJ.ROS/JUL26 312 C")  # roundLot 1, contractMultiplier 100 (tons)
    stock = catalog.get("MERV - XMEV - GGAL - 24hs")
    assert option is not None and agro is not None and stock is not None
    assert lot_of(option) == Decimal(100)
    assert lot_of(agro) == Decimal(100)
    assert lot_of(stock) == Decimal(1)


def test_caucion_term_is_read_from_the_symbol() -> None:
    assert caucion_term("MERV - XMEV - PESOS - 1D") == 1
    assert caucion_term("MERV - XMEV - DOLAR - 136D") == 136
    assert caucion_term("MERV - XMEV - GGAL - 24hs") is None


def test_simulator_chain_has_twenty_contracts_the_24hs_spot_and_the_one_day_peso_caucion() -> None:
    catalog = simulated()
    facts = option_facts(catalog, "GGAL")
    assert len(facts.contracts) == 20
    assert facts.underlying_symbol == "MERV - XMEV - GGAL - 24hs"  # the options settle 24hs
    assert facts.rate is not None
    assert (facts.rate.symbol, facts.rate.days) == ("MERV - XMEV - PESOS - 1D", 1)
    assert len(facts.expiries) == 2
    first = [c for c in facts.contracts if c.expiry == facts.expiries[0]]
    assert [(c.strike, c.option_type) for c in first[:4]] == [
        (Decimal(6000), "call"),
        (Decimal(6000), "put"),
        (Decimal(6500), "call"),
        (Decimal(6500), "put"),
    ]
    assert all(c.lot == Decimal(100) and c.underlying == "GGAL" for c in facts.contracts)


def test_the_shortest_peso_caucion_when_there_is_no_one_day() -> None:
    catalog = simulated()
    without = Catalog(d for d in catalog if d.symbol != "MERV - XMEV - PESOS - 1D")
    found = peso_caucion(without)
    assert found is not None and (found.symbol, found.days) == ("MERV - XMEV - PESOS - 3D", 3)


def test_a_settlement_twin_keeps_the_options_own_settlement() -> None:
    catalog = simulated()
    twins = []
    for detail in catalog.options()[:2]:
        twins.append(
            msgspec.structs.replace(detail, symbol=detail.symbol.replace("24hs", "CI"), settlement="CI")
        )
    facts = option_facts(Catalog([*twins, *catalog]), "GGAL")
    assert len(facts.contracts) == 20
    assert all(c.symbol.endswith("24hs") for c in facts.contracts)


def test_detail_from_wire_is_what_the_facts_read() -> None:
    # the facts never look at the ticker: a detail whose ticker lies still gives the detail's strike
    wire = msgspec.json.decode(FIXTURE.read_bytes(), type=list[rm.InstrumentDetailWire])
    option = next(w for w in wire if w.instrumentId.symbol == "MERV - XMEV - GFGC4500DI - 24hs")
    lying = msgspec.structs.replace(option, strike=Decimal("4321.5"))
    catalog = Catalog([detail_from_wire(w) for w in wire if w is not option] + [detail_from_wire(lying)])
    contract = next(c for c in option_facts(catalog, "GGAL").contracts if "GFGC4500DI" in c.symbol)
    assert contract.strike == Decimal("4321.5")
