"""Primary's wire conventions shared by REST and WebSocket: numbers, times, tolerant input parsing —
what both sides of Primary's protocol write and read alike: the simulator (sim/primary/) and the
bridge's Primary-compatible endpoint (server/primary/).

Numbers go out as JSON numbers (integral values without a fraction, `76830`, as in every capture;
others with their exact digits, `108.25`). Times: `timestamp`/`date`/`servertime` are epoch
milliseconds; `transactTime` is Buenos Aires local time with milliseconds and offset
(`20210908-13:11:04.214-0300`, §3.6). Input is parsed as pyRofex sends it: numbers as JSON numbers
or strings, booleans as `true`/`"True"`/`"false"`, enums in any case (§3.1, §4.2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

# Argentina has no daylight saving time: a fixed UTC-3 is exact.
from brokerbridge.core.hours import BUENOS_AIRES
from brokerbridge.venues.primary.messages import MD_ENTRIES

ART = BUENOS_AIRES
SIDES = ("BUY", "SELL")
ORDER_TYPES = ("LIMIT", "MARKET", "MARKET_TO_LIMIT")
TIMES_IN_FORCE = ("DAY", "IOC", "FOK", "GTD", "GTC")

_encoder = msgspec.json.Encoder(decimal_format="number")


def encode(obj: Any) -> str:
    return _encoder.encode(obj).decode()


def encode_bytes(obj: Any) -> bytes:
    return _encoder.encode(obj)


def num(value: Decimal) -> int | Decimal:
    """A price or size as the venue prints it: `76830`, `108.25` (never `7.15E+3`)."""
    if value == value.to_integral_value():
        return int(value)
    return value.normalize()


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def transact_time(seconds: float) -> str:
    stamp = dt.datetime.fromtimestamp(seconds, ART)
    return stamp.strftime("%Y%m%d-%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}-0300"


def trade_datetime(seconds: float) -> str:
    """`datetime` of a historical trade (local time, milliseconds)."""
    stamp = dt.datetime.fromtimestamp(seconds, ART)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"


def local_date(seconds: float) -> dt.date:
    return dt.datetime.fromtimestamp(seconds, ART).date()


def local_midnight(seconds: float) -> float:
    day = local_date(seconds)
    return dt.datetime(day.year, day.month, day.day, tzinfo=ART).timestamp()


def parse_decimal(value: Any) -> Decimal | None:
    """`180.5`, `"180.5"`, `10`, `"10"` → Decimal; anything else → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def parse_bool(value: Any, default: bool = False) -> bool | None:
    """`true`, `"True"`, `"false"`, `1`, absent → bool; anything else → None (invalid)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
    return None


def parse_enum(value: Any, allowed: tuple[str, ...]) -> str | None:
    """Case-insensitive enum (`buy`, `Day`, `market_to_limit`) → canonical upper-case, or None."""
    if not isinstance(value, str):
        return None
    upper = value.strip().upper()
    return upper if upper in allowed else None


def parse_entries(values: Iterable[Any]) -> tuple[list[str], list[str]]:
    """(known market-data entries in request order without repeats, unknown ones); codes are
    case-insensitive, as Primary takes them."""
    known: list[str] = []
    unknown: list[str] = []
    for value in values:
        code = value.strip().upper() if isinstance(value, str) else ""
        if code in MD_ENTRIES:
            if code not in known:
                known.append(code)
        else:
            unknown.append(str(value))
    return known, unknown


# `level` of an `smd`: the least time between two `Md` of a product (Primary.Net's documented
# throttle, levels 1–5); another value is level 1, as Primary takes it.
LEVEL_INTERVALS = {1: 0.1, 2: 0.5, 3: 1.0, 4: 3.0, 5: 6.0}
MAX_SMD_PRODUCTS = 1000  # per `smd`: Primary's best-practice limit
_SHOWN = 80  # characters of a client's value quoted in an error description


class SmdRequest(msgspec.Struct, frozen=True):
    """An `smd` as Primary reads it: the entries (known, in order, without repeats), the depth, the
    level (1–5) and each product as sent — `(symbol, marketId)`, either possibly not a string: the
    caller answers each product it cannot serve with its own error frame."""

    entries: tuple[str, ...]
    depth: int
    level: int
    products: tuple[tuple[object, object], ...]


def parse_smd(message: dict[str, Any], *, max_depth: int, default_market: str) -> SmdRequest | str:
    """`message` (a decoded `smd` frame) read as Primary does, or the description of the error
    frame Primary answers the whole request with. Written once for both sides of the protocol —
    the simulator and the bridge's `/primary/` endpoint — so they refuse alike."""
    products = message.get("products")
    if not isinstance(products, list) or not products:
        return "Invalid message"
    if len(products) > MAX_SMD_PRODUCTS:
        return f"Too many products ({len(products)} > {MAX_SMD_PRODUCTS})"
    raw_entries = message.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        return "Invalid message"
    entries, unknown = parse_entries(raw_entries)
    if unknown:
        return f"Entry {unknown[0][:_SHOWN]!s} invalid"
    depth = parse_decimal(message.get("depth", 1))
    if depth is None or not depth.is_finite() or not 1 <= depth <= max_depth or depth % 1:
        return "Invalid depth"
    # `level` picks a throttle (1–5); anything else (absurd exponents included) means the fastest.
    level = parse_decimal(message.get("level", 1))
    whole = level is not None and level.is_finite() and 1 <= level <= 5 and level % 1 == 0
    wanted = tuple(
        (item.get("symbol"), item.get("marketId", default_market)) if isinstance(item, dict) else (None, None)
        for item in products
    )
    return SmdRequest(tuple(entries), int(depth), int(level) if whole and level is not None else 1, wanted)
