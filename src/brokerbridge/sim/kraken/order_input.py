"""An order's arguments → an `OrderRequest`, for REST `AddOrder` and WebSocket v2 `add_order` alike.

Kraken's rules hold on both wires and are written once here: the side is buy or sell, the order
type limit or market (the only ones simulated; Kraken's other types are refused), the volume
positive and within the pair's lot decimals, a limit order has a price (a market order's is
ignored), the time in force is GTC or IOC, and a user reference excludes a client order id.
Refusals raise `ApiError` with Kraken's text; the account's own checks (funds, minimums, tick)
come after, when the request is placed.

What differs per wire is kept per wire, in the two readers below: the field names (`type`/`side`,
`volume`/`order_qty`, `userref`/`order_userref`…, which the refusal texts name), the value types
(form text on REST; JSON numbers on WS, where a string is refused as `… must be a number_float`),
the unknown-pair text, and the order of the checks — the first failing check is the error a
client sees, and REST looks the pair up first where WS checks it after the side and type.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from brokerbridge.sim.kraken.account import ApiError, OrderRequest
from brokerbridge.sim.kraken.catalog import Catalog, KrakenPair
from brokerbridge.sim.kraken.rest_args import Params, decimal_arg, int_arg, invalid
from brokerbridge.sim.kraken.ws_wire import unsupported
from brokerbridge.sim.market import Side

SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "market")
TIMES_IN_FORCE = ("GTC", "IOC")
OFLAGS = frozenset({"post", "fcib", "fciq"})
# The fields WS `add_order` takes; any other is refused as unsupported.
WS_FIELDS = (
    "order_type",
    "side",
    "order_qty",
    "symbol",
    "limit_price",
    "limit_price_type",
    "time_in_force",
    "post_only",
    "reduce_only",
    "margin",
    "cl_ord_id",
    "order_userref",
    "fee_preference",
    "stp_type",
    "validate",
    "deadline",
    "token",
    "display_qty",
    "no_mpp",
    "cash_order_qty",
    "effective_time",
    "expire_time",
    "sender_sub_id",
)
WS_NUMBER_FIELDS = ("order_qty", "limit_price", "cash_order_qty", "display_qty")


def add_order_from_rest(catalog: Catalog, params: Params) -> OrderRequest:
    """REST AddOrder's form arguments (`pair`, `type`, `ordertype`, `volume`, `price`, `oflags`…)."""
    if "pair" not in params:
        raise invalid("pair")
    pair = catalog.rest_pair(params["pair"])
    if pair is None:
        raise ApiError("EQuery:Unknown asset pair")
    side = _one_of(params.get("type", ""), SIDES, "type")
    ordertype = _one_of(params.get("ordertype", ""), ORDER_TYPES, "ordertype")
    if "volume" not in params:
        raise invalid("volume")
    volume = _volume(decimal_arg(params["volume"], "volume"), pair, "volume")
    price: Decimal | None = None
    if ordertype == "limit":
        if not params.get("price"):
            raise invalid("price")
        price = decimal_arg(params["price"], "price")
    oflags = {f.strip() for f in params.get("oflags", "").split(",") if f.strip()}
    if oflags - OFLAGS:
        raise invalid("oflags")
    timeinforce = _one_of((params.get("timeinforce") or "GTC").upper(), TIMES_IN_FORCE, "timeinforce")
    userref = int_arg(params, "userref", 0) or 0
    cl_ord_id = params.get("cl_ord_id") or None
    _exclusive(userref, cl_ord_id, "userref")
    post_only, fee_in_base = "post" in oflags, "fcib" in oflags
    return OrderRequest(
        pair, Side(side), ordertype, volume, price, userref, cl_ord_id, timeinforce, post_only, fee_in_base
    )


def add_order_from_ws(catalog: Catalog, params: dict[str, Any]) -> OrderRequest:
    """WS v2 add_order's params (`order_type`, `side`, `order_qty`, `symbol`, `limit_price`…)."""
    for name in params:
        if name not in WS_FIELDS:
            raise ApiError(unsupported(name, "add order"))
    for name in WS_NUMBER_FIELDS:
        if name in params and not _is_number(params[name]):
            raise ApiError(f"{name.capitalize()} field must be a number_float")
    ordertype = _one_of(params.get("order_type"), ORDER_TYPES, "order_type")
    side = _one_of(params.get("side"), SIDES, "side")
    if "order_qty" not in params:
        raise invalid("order_qty")
    pair = catalog.ws_pair(str(params.get("symbol", "")))
    if pair is None:
        raise ApiError(f"Currency pair not supported {params.get('symbol', '')}")
    price = Decimal(params["limit_price"]) if ordertype == "limit" and "limit_price" in params else None
    if ordertype == "limit" and price is None:
        raise invalid("limit_price")
    timeinforce = _one_of(str(params.get("time_in_force", "gtc")).upper(), TIMES_IN_FORCE, "time_in_force")
    userref = params.get("order_userref", 0)
    cl_ord_id = params.get("cl_ord_id")
    if not isinstance(userref, int) or (cl_ord_id is not None and not isinstance(cl_ord_id, str)):
        raise ApiError("EGeneral:Invalid arguments")
    _exclusive(userref, cl_ord_id, "order_userref")
    volume = _volume(Decimal(params["order_qty"]), pair, "order_qty")
    post_only, fee_in_base = params.get("post_only") is True, params.get("fee_preference") == "base"
    return OrderRequest(
        pair, Side(side), ordertype, volume, price, userref, cl_ord_id, timeinforce, post_only, fee_in_base
    )


def _one_of(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise invalid(name)
    return str(value)


def _volume(volume: Decimal, pair: KrakenPair, name: str) -> Decimal:
    """A positive volume with no more decimals than the pair's lot allows (trailing zeros aside)."""
    if volume <= 0 or -volume.normalize().as_tuple().exponent > pair.lot_decimals:  # type: ignore[operator]
        raise invalid(name)
    return volume


def _exclusive(userref: int, cl_ord_id: str | None, userref_name: str) -> None:
    if userref and cl_ord_id:
        raise invalid(f"cl_ord_id and {userref_name} are mutually exclusive")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)
