"""An option chain with its analytics, as `GET /api/options/{venue}/{underlying}`, `Bridge.option_chain`
and `BridgeClient.option_chain` give it: one Struct for every way in (msgspec only, no numpy)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from brokerbridge.core.events import OptionAnalytics

MODELS = ("american", "european")  # american: Bjerksund–Stensland 2002; european: Black–Scholes–Merton


class ExpiryChain(msgspec.Struct, frozen=True, kw_only=True):
    expiry: str  # ISO date
    days: float  # calendar days (fractional) to the expiry's close
    business_days: int  # BYMA sessions after today up to and including the expiry
    # The expiry's put-call-parity rate, % TNA: the median of its strikes' (set it against the caución).
    parity_tna: float | None = None
    options: tuple[OptionAnalytics, ...]  # by strike, call before put


class OptionChain(msgspec.Struct, frozen=True, kw_only=True):
    """Every listed expiry (or the one asked for) of one underlying's options."""

    venue: str
    underlying: str  # ticker (GGAL)
    underlying_symbol: str | None
    ts: float  # when these figures were computed (epoch seconds)
    model: str
    spot: Decimal | None
    spot_stale: bool
    rate: float | None  # continuous annual rate used
    rate_source: str
    caucion_tna: float | None  # the caución's own quote, % TNA, when the rate comes from one
    simulated: bool  # the venue is an embedded simulator: not a real market
    expiries: tuple[ExpiryChain, ...]
    reasons: dict[str, str] = msgspec.field(default_factory=dict)  # chain-wide: spot, rate, calendar
