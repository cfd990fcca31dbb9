"""Primary's order rules, read from the instrument details: checked before an order is sent.

Primary (and the xOMS brokers behind it) answers a broken business rule with a REJECTED order
report some time after the request, in Spanish, naming no number. Every rule the instrument detail
states is checked here first, so the caller gets `OrderRefused` at once with the rule, the numbers
and the nearest valid values:

| rule          | detail field (`rest/instruments/details`)       | refused when                       |
|---------------|-------------------------------------------------|------------------------------------|
| order_type    | `orderTypes`                                    | LIMIT / MARKET not enabled         |
| time_in_force | `timesInForce`                                  | the one asked for is not enabled   |
| min_qty       | `minTradeVol`                                   | quantity below it                  |
| max_qty       | `maxTradeVol`                                   | quantity above it                  |
| lot_size      | `tickSize` (the quantity increment), else       | quantity not a multiple of it      |
|               | 10^-`instrumentSizePrecision`                   |                                    |
| tick_size     | `minPriceIncrement` (else `tickPriceRanges`)    | price not a multiple of it         |
| price_band    | `lowLimitPrice` / `highLimitPrice`, when given  | price outside them                 |

`roundLot` is not the quantity step: the captured details list BYMA options with `roundLot` 100
and `minTradeVol` 1 / `tickSize` 1 (an option is traded by the contract; 100 is the shares a
contract covers), so a rule "multiple of roundLot" would refuse orders the market takes. The step
is `tickSize`, which Primary documents as the quantity increment.

A `lowLimitPrice` of 0 is no bound (every price is positive anyway). A market order has no price:
only its quantity is checked.
"""

from __future__ import annotations

from decimal import Decimal

from brokerbridge.core.errors import OrderRefused, UnknownSymbol
from brokerbridge.core.orders import OrderRequest
from brokerbridge.venues.order_checks import check_common, check_range, check_step
from brokerbridge.venues.primary import VENUE
from brokerbridge.venues.primary.catalog import InstrumentDetail

# Our order types and times in force as Primary spells them (`ordType`, `timeInForce`).
ORDER_TYPE_NAMES = {"limit": "LIMIT", "market": "MARKET"}
TIME_IN_FORCE_NAMES = {"day": "DAY", "ioc": "IOC", "fok": "FOK", "gtc": "GTC"}


def qty_step(detail: InstrumentDetail) -> Decimal | None:
    if detail.qty_increment:
        return detail.qty_increment
    if detail.qty_precision is not None:
        return Decimal(1).scaleb(-detail.qty_precision)
    return None


def check_order(request: OrderRequest, detail: InstrumentDetail | None, *, venue: str = VENUE) -> None:
    """Raise `OrderRefused` naming the first rule `request` breaks (`UnknownSymbol` when the
    instrument is not listed: `detail` None); return when nothing the details state is broken."""
    check_common(request, venue=venue)
    if detail is None:
        raise UnknownSymbol(
            f"{venue} does not list {request.symbol!r}",
            venue=venue,
            remedy="use the instrument's full symbol as Primary lists it (e.g. 'MERV - XMEV - GGAL - 24hs'); "
            "`brokerbridge instruments` searches them",
        )
    ord_type = ORDER_TYPE_NAMES[request.type]
    if detail.order_types and ord_type not in detail.order_types:
        enabled = ", ".join(detail.order_types)
        raise OrderRefused(
            f"{detail.symbol} does not take {ord_type} orders (it takes {enabled})",
            rule="order_type",
            venue=venue,
            remedy="place a limit order" if "LIMIT" in detail.order_types else f"use one of {enabled}",
        )
    if request.time_in_force is not None and detail.times_in_force:
        tif = TIME_IN_FORCE_NAMES[request.time_in_force]
        if tif not in detail.times_in_force:
            enabled = ", ".join(detail.times_in_force)
            raise OrderRefused(
                f"{detail.symbol} does not take time in force {tif} (it takes {enabled})",
                rule="time_in_force",
                venue=venue,
                remedy=f"use one of {enabled.lower()} (or leave it out: DAY)",
            )
    check_range(
        request.qty,
        detail.min_qty or None,
        detail.max_qty or None,
        what="quantity",
        low_rule="min_qty",
        high_rule="max_qty",
        venue=venue,
    )
    check_step(request.qty, qty_step(detail), what="quantity", rule="lot_size", venue=venue)
    if request.price is None:
        return
    check_step(request.price, detail.tick, what="price", rule="tick_size", venue=venue)
    check_range(
        request.price,
        detail.low_limit or None,
        detail.high_limit or None,
        what="price",
        low_rule="price_band",
        high_rule="price_band",
        venue=venue,
    )
