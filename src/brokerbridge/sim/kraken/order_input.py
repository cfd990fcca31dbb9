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

from dataclasses import dataclass
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


# -- amend ---------------------------------------------------------------------------------------------
# AmendOrder (REST) and amend_order (WS) change an open order in place: its ids stay. The order is
# named by Kraken's id or by the client's (one of them); quantity and limit price are what the
# simulator amends (Kraken's display, trigger and post-only changes are accepted and ignored:
# iceberg and triggered orders are not simulated). Kraken's WS reference marks `order_qty`
# required, its REST one optional, and its own v1 example amends a trigger price alone: the
# simulator takes either field alone, as REST does.
WS_AMEND_FIELDS = (
    "order_id",
    "cl_ord_id",
    "order_qty",
    "display_qty",
    "limit_price",
    "limit_price_type",
    "post_only",
    "trigger_price",
    "trigger_price_type",
    "deadline",
    "token",
)
WS_AMEND_NUMBERS = ("order_qty", "display_qty", "limit_price", "trigger_price")


@dataclass(frozen=True, slots=True)
class AmendArgs:
    ref: str  # Kraken's order id or the client's
    by_client_id: bool
    qty: Decimal | None
    price: Decimal | None
    qty_field: str  # the field's name on its wire, for refusals


def amend_from_ws(params: dict[str, Any]) -> AmendArgs:
    """WS v2 amend_order's params."""
    for name in params:
        if name not in WS_AMEND_FIELDS:
            raise ApiError(unsupported(name, "amend order"))
    for name in WS_AMEND_NUMBERS:
        if name in params and not _is_number(params[name]):
            raise ApiError(f"{name.capitalize()} field must be a number_float")
    order_id, cl_ord_id = params.get("order_id"), params.get("cl_ord_id")
    ref = _amend_ref(order_id, cl_ord_id, "order_id")
    qty = Decimal(params["order_qty"]) if "order_qty" in params else None
    price = Decimal(params["limit_price"]) if "limit_price" in params else None
    return AmendArgs(ref, order_id is None, qty, price, "order_qty")


def amend_from_rest(params: Params) -> AmendArgs:
    """REST AmendOrder's form arguments (`txid` or `cl_ord_id`, `order_qty`, `limit_price`…)."""
    txid, cl_ord_id = params.get("txid") or None, params.get("cl_ord_id") or None
    ref = _amend_ref(txid, cl_ord_id, "txid")
    qty = decimal_arg(params["order_qty"], "order_qty") if params.get("order_qty") else None
    price = decimal_arg(params["limit_price"], "limit_price") if params.get("limit_price") else None
    return AmendArgs(ref, txid is None, qty, price, "order_qty")


def amend_volume(args: AmendArgs, pair: KrakenPair) -> Decimal | None:
    """The new quantity, checked against the pair's lot decimals (None: unchanged)."""
    return None if args.qty is None else _volume(args.qty, pair, args.qty_field)


def _amend_ref(order_id: Any, cl_ord_id: Any, id_name: str) -> str:
    if (order_id is None) == (cl_ord_id is None):
        raise invalid(f"{id_name} or cl_ord_id is required (one of them)")
    ref = order_id if order_id is not None else cl_ord_id
    if not isinstance(ref, str) or not ref:
        raise invalid(id_name if order_id is not None else "cl_ord_id")
    return ref


# -- batches ---------------------------------------------------------------------------------------------
BATCH_ADD_MIN, BATCH_ADD_MAX = 2, 15  # orders in one batch_add, all on one pair
BATCH_CANCEL_MIN, BATCH_CANCEL_MAX = 2, 50  # ids in one batch_cancel


def batch_add_from_ws(catalog: Catalog, params: dict[str, Any]) -> list[OrderRequest]:
    """WS v2 batch_add's params: the whole batch is checked before any order reaches the engine,
    and one bad order refuses it all (with that order's error)."""
    for name in params:
        if name not in ("symbol", "orders", "validate", "deadline", "token"):
            raise ApiError(unsupported(name, "batch add"))
    orders = params.get("orders")
    if not isinstance(orders, list) or not BATCH_ADD_MIN <= len(orders) <= BATCH_ADD_MAX:
        raise invalid("orders")
    symbol = params.get("symbol")
    requests = []
    for order in orders:
        if not isinstance(order, dict):
            raise invalid("orders")
        if "symbol" in order:
            raise ApiError(unsupported("symbol", "batch add"))
        requests.append(add_order_from_ws(catalog, {**order, "symbol": symbol}))
    return requests
