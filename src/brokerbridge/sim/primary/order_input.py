"""Order input as REST query parameters or a WS `no` frame → `OrderRequest`, or `OrderError`.

Outright refusals (HTTP 200 `{"status":"ERROR"}` on REST, an error frame on WS): unknown product
(`Product <sym>:<mkt> doesn't exist`), an account the user cannot use (`No tiene acceso a la cuenta
<acc>`, DOC), a missing or malformed parameter (the Spring-style `Required String parameter 'x' is
not present` — the backend is Java/Spring; exact texts are not public). Business rules (tick, lot,
order type or time in force not enabled, funds) are the account's: they end in a REJECTED report.
Values are taken the way pyRofex sends them: numbers or numeric strings, enums in any case,
`True`/`False` strings (§3.1, §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from brokerbridge.sim.primary.account import OrderError, OrderRequest
from brokerbridge.sim.primary.catalog import MARKET_ID, Catalog, PrimaryInstrument
from brokerbridge.venues.primary.wire_format import (
    ORDER_TYPES,
    SIDES,
    TIMES_IN_FORCE,
    parse_bool,
    parse_decimal,
    parse_enum,
)


@dataclass(frozen=True, slots=True)
class RawOrder:
    """Order fields under neutral names, before validation (None = absent)."""

    symbol: Any
    market_id: Any
    quantity: Any
    side: Any
    account: Any
    ord_type: Any = None
    time_in_force: Any = None
    price: Any = None
    expire_date: Any = None
    iceberg: Any = None
    display_qty: Any = None
    cancel_previous: Any = None
    ws_cl_ord_id: Any = None


def missing(name: str) -> OrderError:
    return OrderError(f"Required String parameter '{name}' is not present")


def invalid(name: str, value: Any) -> OrderError:
    return OrderError(f"Invalid value '{value}' for parameter '{name}'")


def product(catalog: Catalog, symbol: Any, market_id: Any) -> PrimaryInstrument:
    market = market_id if isinstance(market_id, str) and market_id else MARKET_ID
    inst = catalog.get(symbol) if isinstance(symbol, str) else None
    if inst is None or market != MARKET_ID:
        raise OrderError(f"Product {symbol}:{market} doesn't exist")
    return inst


def parse_order(catalog: Catalog, raw: RawOrder, names: dict[str, str]) -> OrderRequest:
    """`names` maps neutral names to the wire's parameter names (for error texts)."""
    for field_name in ("symbol", "quantity", "side", "account"):
        if getattr(raw, field_name) in (None, ""):
            raise missing(names[field_name])
    inst = product(catalog, raw.symbol, raw.market_id)
    qty = parse_decimal(raw.quantity)
    if qty is None or qty <= 0:
        raise invalid(names["quantity"], raw.quantity)
    side = parse_enum(raw.side, SIDES)
    if side is None:
        raise invalid(names["side"], raw.side)
    ord_type = parse_enum(raw.ord_type, ORDER_TYPES) if raw.ord_type is not None else "LIMIT"
    if ord_type is None:
        raise invalid(names["ord_type"], raw.ord_type)
    tif = parse_enum(raw.time_in_force, TIMES_IN_FORCE) if raw.time_in_force is not None else "DAY"
    if tif is None:
        raise invalid(names["time_in_force"], raw.time_in_force)
    price = None
    if raw.price not in (None, ""):
        price = parse_decimal(raw.price)
        if price is None:
            raise invalid(names["price"], raw.price)
    iceberg = parse_bool(raw.iceberg)
    cancel_previous = parse_bool(raw.cancel_previous)
    if iceberg is None:
        raise invalid(names["iceberg"], raw.iceberg)
    if cancel_previous is None:
        raise invalid(names["cancel_previous"], raw.cancel_previous)
    display = parse_decimal(raw.display_qty) if raw.display_qty not in (None, "") else None
    expire = str(raw.expire_date) if raw.expire_date not in (None, "") else None
    return OrderRequest(
        instrument=inst,
        account=str(raw.account),
        side=side,
        ord_type=ord_type,
        time_in_force=tif,
        qty=qty,
        price=price,
        expire_date=expire,
        iceberg=iceberg,
        display_qty=display if iceberg else None,
        cancel_previous=cancel_previous,
        ws_cl_ord_id=str(raw.ws_cl_ord_id) if raw.ws_cl_ord_id is not None else None,
    )


def no_access(account: Any) -> OrderError:
    return OrderError(f"No tiene acceso a la cuenta {account}")


def as_decimal(value: Any, name: str) -> Decimal:
    if value in (None, ""):
        raise missing(name)
    parsed = parse_decimal(value)
    if parsed is None:
        raise invalid(name, value)
    return parsed
