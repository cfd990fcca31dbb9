"""What the simulated Kraken lists: assets and pairs with Kraken's IDs, names and precisions.

Values follow captured AssetPairs/Assets responses (fixtures http_assetpairs_2026.json,
http_assetpairs.json, http_assets.json, ws_instrument_snapshot.json). The market behind the venue
only sees `InstrumentSpec`s built from these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokerbridge.sim.market import InstrumentSpec

# 2026 fee schedule as captured for USD pairs (taker `fees`, maker `fees_maker`: [volume, percent]).
TAKER_FEES: tuple[tuple[int, str], ...] = (
    (0, "0.4"),
    (10000, "0.35"),
    (50000, "0.24"),
    (100000, "0.22"),
    (250000, "0.2"),
    (500000, "0.18"),
    (1000000, "0.16"),
    (2500000, "0.14"),
    (5000000, "0.12"),
    (10000000, "0.1"),
    (100000000, "0.08"),
    (500000000, "0.05"),
)
MAKER_FEES: tuple[tuple[int, str], ...] = (
    (0, "0.25"),
    (10000, "0.2"),
    (50000, "0.14"),
    (100000, "0.12"),
    (250000, "0.1"),
    (500000, "0.08"),
    (1000000, "0.06"),
    (2500000, "0.04"),
    (5000000, "0.02"),
    (10000000, "0.0"),
    (100000000, "0.0"),
    (500000000, "0.0"),
)


@dataclass(frozen=True, slots=True)
class KrakenAsset:
    asset_id: str  # REST id: "XXBT"
    altname: str  # "XBT"
    ws_id: str  # WS v2 code: "BTC"
    decimals: int
    display_decimals: int
    margin_rate: str = "0.020000"
    borrowable: bool = True


@dataclass(frozen=True, slots=True)
class KrakenPair:
    pair_id: str  # "XXBTZUSD"
    altname: str  # "XBTUSD"
    wsname: str  # v1 name "XBT/USD" (REST `wsname`; refused on WS v2)
    symbol: str  # v2 name "BTC/USD"
    base: KrakenAsset
    quote: KrakenAsset
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    cost_precision_ws: int  # instrument channel `cost_precision`
    ordermin: str
    costmin: str
    tick_size: str
    long_position_limit: int
    short_position_limit: int
    start_price: str
    level_qty: str
    margin_initial: str = "0.20"

    @property
    def taker_fee_pct(self) -> Decimal:
        return Decimal(TAKER_FEES[0][1])

    @property
    def maker_fee_pct(self) -> Decimal:
        return Decimal(MAKER_FEES[0][1])

    def spec(self) -> InstrumentSpec:
        return InstrumentSpec(
            symbol=self.symbol,
            base=self.base.ws_id,
            quote=self.quote.ws_id,
            price_decimals=self.pair_decimals,
            qty_decimals=self.lot_decimals,
            tick=Decimal(self.tick_size),
            qty_min=Decimal(self.ordermin),
            cost_min=Decimal(self.costmin),
            start_price=Decimal(self.start_price),
            level_qty=Decimal(self.level_qty),
        )


USD = KrakenAsset("ZUSD", "USD", "USD", 4, 2, margin_rate="0.025000")
BTC = KrakenAsset("XXBT", "XBT", "BTC", 10, 5)
ETH = KrakenAsset("XETH", "ETH", "ETH", 10, 5)
SOL = KrakenAsset("SOL", "SOL", "SOL", 10, 5)
XRP = KrakenAsset("XXRP", "XRP", "XRP", 8, 5)


class Catalog:
    """Lookups by every name a client may use (pair ID, altname, v1 wsname for REST, v2 symbol)."""

    def __init__(self, assets: tuple[KrakenAsset, ...], pairs: tuple[KrakenPair, ...]) -> None:
        self.assets = assets
        self.pairs = pairs
        self._assets_by_name = {name: a for a in assets for name in (a.asset_id, a.altname, a.ws_id)}
        self._rest_names: dict[str, KrakenPair] = {}
        for pair in pairs:
            for name in (pair.pair_id, pair.altname, pair.wsname, pair.symbol):
                self._rest_names[name.upper()] = pair
        self._by_symbol = {pair.symbol: pair for pair in pairs}

    def rest_pair(self, name: str) -> KrakenPair | None:
        """A pair as REST accepts it: ID, altname, or slash names (`XBT/USD`, `BTC/USD`)."""
        return self._rest_names.get(name.strip().upper())

    def ws_pair(self, symbol: str) -> KrakenPair | None:
        """A pair as WS v2 accepts it: only the v2 symbol (`BTC/USD`, never `XBT/USD`)."""
        return self._by_symbol.get(symbol)

    def asset(self, name: str) -> KrakenAsset | None:
        return self._assets_by_name.get(name.strip().upper())

    def asset_by_ws_id(self, ws_id: str) -> KrakenAsset:
        return next(a for a in self.assets if a.ws_id == ws_id)


def default_catalog() -> Catalog:
    pairs = (
        KrakenPair(
            "XXBTZUSD",
            "XBTUSD",
            "XBT/USD",
            "BTC/USD",
            BTC,
            USD,
            1,
            8,
            5,
            5,
            "0.00005",
            "0.5",
            "0.1",
            350,
            250,
            "63500.0",
            "0.25",
        ),
        KrakenPair(
            "XETHZUSD",
            "ETHUSD",
            "ETH/USD",
            "ETH/USD",
            ETH,
            USD,
            2,
            8,
            5,
            5,
            "0.001",
            "0.5",
            "0.01",
            6000,
            6000,
            "3050.00",
            "2.5",
        ),
        KrakenPair(
            "SOLUSD",
            "SOLUSD",
            "SOL/USD",
            "SOL/USD",
            SOL,
            USD,
            2,
            8,
            5,
            5,
            "0.06",
            "0.5",
            "0.01",
            37000,
            24000,
            "145.00",
            "40",
        ),
        KrakenPair(
            "XXRPZUSD",
            "XRPUSD",
            "XRP/USD",
            "XRP/USD",
            XRP,
            USD,
            5,
            8,
            8,
            8,
            "1.65",
            "0.5",
            "0.00001",
            3200000,
            1800000,
            "0.52000",
            "3000",
        ),
        KrakenPair(
            "XETHXXBT",
            "ETHXBT",
            "ETH/XBT",
            "ETH/BTC",
            ETH,
            BTC,
            5,
            8,
            6,
            10,
            "0.002",
            "0.00002",
            "0.00001",
            1000,
            600,
            "0.04800",
            "2.5",
        ),
    )
    return Catalog((BTC, USD, ETH, SOL, XRP), pairs)
