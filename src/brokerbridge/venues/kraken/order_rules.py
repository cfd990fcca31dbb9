"""Kraken's order rules per pair, read from AssetPairs: checked before an order is sent.

Kraken refuses a broken rule with a bare error string (`EOrder:Order minimum not met`,
`EOrder:Tick size check failed`) that names no number; every one of them is also a transaction
on the pair's trading rate counter (its fixed count applies "even if the transaction fails
validation"). Checked here first, the caller gets `OrderRefused` with the rule, the numbers and
the nearest valid values, and nothing is charged:

| rule           | AssetPairs field | refused when                                              |
|----------------|------------------|-----------------------------------------------------------|
| pair_status    | `status`         | not `online`: `cancel_only`, `reduce_only`, `delisted`,   |
|                |                  | `maintenance`, `work_in_progress` refuse every new order; |
|                |                  | `limit_only` refuses market orders; `post_only` refuses   |
|                |                  | every order (the bridge sends none flagged post-only)     |
| lot_size       | `lot_decimals`   | the quantity has more decimals                            |
| min_qty        | `ordermin`       | the quantity is below it                                  |
| price_decimals | `pair_decimals`  | the price has more decimals                               |
| tick_size      | `tick_size`      | the price is not a multiple of it                         |
| min_notional   | `costmin`        | price × quantity is below it (limit orders; a market      |
|                |                  | order's cost is known only when it fills)                 |
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal

import msgspec

from brokerbridge.core.errors import OrderRefused, UnknownSymbol
from brokerbridge.core.orders import OrderRequest
from brokerbridge.venues.kraken import VENUE
from brokerbridge.venues.kraken.normalize import SymbolMap
from brokerbridge.venues.kraken.rest_messages import AssetPair
from brokerbridge.venues.order_checks import (
    check_common,
    check_decimals,
    check_range,
    check_step,
    plain,
    text,
)

# Pair statuses (AssetPairs `status`) and what each lets through.
ONLINE = "online"
LIMIT_ONLY = "limit_only"
NO_NEW_ORDERS = frozenset(
    {"cancel_only", "reduce_only", "post_only", "delisted", "maintenance", "work_in_progress"}
)


class PairRules(msgspec.Struct, frozen=True, kw_only=True):
    """What AssetPairs says an order on one pair must respect (None: not stated, not checked)."""

    symbol: str  # WS v2 name, BTC/USD
    quote: str  # the currency `costmin` is in (USD)
    status: str | None = None
    lot_decimals: int | None = None
    pair_decimals: int | None = None
    ordermin: Decimal | None = None
    costmin: Decimal | None = None
    tick_size: Decimal | None = None


def pair_rules(pairs: Mapping[str, AssetPair], symbols: SymbolMap) -> dict[str, PairRules]:
    """AssetPairs → rules keyed by the WS v2 symbol orders name (`symbols` already learned `pairs`)."""
    out: dict[str, PairRules] = {}
    for pair_id, info in pairs.items():
        symbol = symbols.to_ws(pair_id)
        out[symbol] = PairRules(
            symbol=symbol,
            quote=symbol.partition("/")[2],
            status=info.status,
            lot_decimals=info.lot_decimals,
            pair_decimals=info.pair_decimals,
            ordermin=info.ordermin,
            costmin=info.costmin,
            tick_size=info.tick_size,
        )
    return out


def check_order(request: OrderRequest, rules: PairRules | None, *, venue: str = VENUE) -> None:
    """Raise `OrderRefused` naming the first rule `request` breaks (`UnknownSymbol` when the pair
    is not listed: `rules` None); return when nothing AssetPairs states is broken."""
    check_common(request, venue=venue)
    if rules is None:
        raise UnknownSymbol(
            f"{venue} does not list {request.symbol!r}",
            venue=venue,
            remedy="use a pair as Kraken's WebSocket v2 names it (BASE/QUOTE, e.g. BTC/USD)",
        )
    _check_status(request, rules, venue)
    check_decimals(request.qty, rules.lot_decimals, what="quantity", rule="lot_size", venue=venue)
    check_range(
        request.qty, rules.ordermin, None, what="quantity", low_rule="min_qty", high_rule="", venue=venue
    )
    if request.price is None:
        return
    check_decimals(request.price, rules.pair_decimals, what="price", rule="price_decimals", venue=venue)
    check_step(request.price, rules.tick_size, what="price", rule="tick_size", venue=venue)
    cost = request.price * request.qty
    if rules.costmin is not None and cost < rules.costmin:
        least = _least_qty(rules.costmin, request.price, rules.lot_decimals)
        raise OrderRefused(
            f"order cost {text(cost)} {rules.quote} (quantity × price) is below the minimum "
            f"{plain(rules.costmin)} {rules.quote}",
            rule="min_notional",
            venue=venue,
            remedy=f"at price {text(request.price)} use a quantity of at least {text(least)}",
        )


def _check_status(request: OrderRequest, rules: PairRules, venue: str) -> None:
    status = rules.status
    if status is None or status == ONLINE:
        return
    if status == LIMIT_ONLY and request.type == "limit":
        return
    if status == LIMIT_ONLY:
        raise OrderRefused(
            f"{rules.symbol} is limit_only on Kraken: market orders are not accepted now",
            rule="pair_status",
            venue=venue,
            remedy="place a limit order",
        )
    raise OrderRefused(
        f"{rules.symbol} is {status} on Kraken: it takes no new orders now",
        rule="pair_status",
        venue=venue,
        remedy="wait until Kraken sets the pair online again (see Kraken's status page)"
        + ("; open orders can still be cancelled" if status in NO_NEW_ORDERS else ""),
    )


def _least_qty(costmin: Decimal, price: Decimal, lot_decimals: int | None) -> Decimal:
    """The smallest quantity, in the pair's lot decimals, whose cost at `price` meets `costmin`."""
    places = Decimal(1).scaleb(-(lot_decimals if lot_decimals is not None else 8))
    with decimal.localcontext(prec=100):  # amounts are bounded (order_checks.MAX_PLACES): exact here
        least = (costmin / price).quantize(places, rounding=ROUND_CEILING)
        return least if least * price >= costmin else least + places
