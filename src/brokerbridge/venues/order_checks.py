"""What every venue refuses in an order, checked before anything is sent: pure, no I/O.

An order the bridge can tell is wrong is refused here with `OrderRefused`, naming the rule broken
(`rule`), the numbers, and — where there is one — the nearest valid value, so the caller can fix it
without a round trip to the venue (whose refusal texts are terse, and whose refusals of bad input
may count against the account's rate limits). The venue-specific rules live beside each venue
(`venues/kraken/order_rules.py`, `venues/primary/order_rules.py`) and call `check_common` first.

Rules named here: `side`, `order_type`, `qty`, `price`, `client_order_id`, `time_in_force`; the
helpers word `tick_size`, `lot_size`, `min_qty`, `max_qty`, `min_notional` and `price_band` for
the venue modules.

Amounts are `Decimal`s and stay exact: `0.10` and `0.1` are the same amount, a multiple is checked
by exact division (in a context wide enough for the numbers given, so a huge quantity over a tiny
step is never rounded into a false "multiple"), and suggestions keep the step's digits (`100.00`,
`100.05` for a tick of `0.05`).
"""

from __future__ import annotations

import decimal
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import get_args

from brokerbridge.core.errors import OrderRefused
from brokerbridge.core.events import Side
from brokerbridge.core.orders import OrderRequest, OrderType, TimeInForce, valid_client_order_id

ORDER_TYPES: tuple[str, ...] = get_args(OrderType)
TIMES_IN_FORCE: tuple[str, ...] = get_args(TimeInForce)
SIDES: tuple[str, ...] = tuple(side.value for side in Side)
# No venue takes an amount past these, and checking one would cost time and memory without bound
# (`1E+999999999` is a valid Decimal): digits before and after the point, and digits in all.
MAX_PLACES = 30
MAX_DIGITS = 40


def text(value: Decimal) -> str:
    """A Decimal as people write it: no exponent (`1E+2` → `100`), its own digits kept."""
    return format(value, "f")


def plain(value: Decimal) -> str:
    """A venue's number without the zeros its JSON float added (`5.0` → `5`, `1000000.0` → `1000000`)."""
    return text(value.normalize())


def _wide(*values: Decimal) -> decimal.Context:
    """A context with digits enough to divide `values` exactly: the default 28 would round
    `10**30 / 0.05` (and refuse `%` on it outright)."""
    span = max(v.adjusted() for v in values) - min(v.adjusted() for v in values)
    digits = max(len(v.as_tuple().digits) for v in values)
    return decimal.Context(prec=max(28, span + digits + 10), traps=[decimal.InvalidOperation])


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """`value` is a whole number of `step`s (exactly; `0.10` of `0.05` is)."""
    with decimal.localcontext(_wide(value, step)):
        return value % step == 0


def nearest_multiples(value: Decimal, step: Decimal) -> tuple[Decimal, Decimal]:
    """The multiples of `step` just below and just above `value` (equal when it is one), written
    with the step's digits: (100.00, 100.05) for 100.03 and 0.05, (1000, 1005) for 1002 and 5.0."""
    with decimal.localcontext(_wide(value, step)):
        quotient = value / step
        below = quotient.to_integral_value(rounding=ROUND_FLOOR) * step
        above = quotient.to_integral_value(rounding=ROUND_CEILING) * step
        places = Decimal(1).scaleb(min(step.normalize().as_tuple().exponent, 0))  # type: ignore[arg-type]
        return below.quantize(places), above.quantize(places)


def decimals_of(value: Decimal) -> int:
    """Digits after the point that matter: 0.10 → 1, 100 → 0, 1E-8 → 8."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _choices(values: tuple[Decimal, ...]) -> str:
    unique = [v for i, v in enumerate(values) if v > 0 and v not in values[:i]]
    return " or ".join(text(v) for v in unique)


def _sane(value: Decimal) -> bool:
    return (
        -MAX_PLACES <= value.adjusted() < MAX_PLACES
        and -value.as_tuple().exponent <= MAX_PLACES  # type: ignore[operator]
        and len(value.as_tuple().digits) <= MAX_DIGITS
    )


def _check_amount(value: Decimal, *, what: str, rule: str, venue: str) -> None:
    """A quantity or a price: a finite Decimal above 0, of a size some venue could take."""
    if not isinstance(value, Decimal):
        raise OrderRefused(
            f"{what} {value!r} is not a Decimal",
            rule=rule,
            venue=venue,
            remedy=f'pass Decimal("{value}") — a float cannot hold most prices and sizes exactly',
        )
    if not value.is_finite() or value <= 0:
        raise OrderRefused(
            f"{what} {value} is not a positive amount",
            rule=rule,
            venue=venue,
            remedy=f'give a {what} above 0, as a decimal string (e.g. "0.01")',
        )
    if not _sane(value):
        raise OrderRefused(
            f"{what} {value} is out of range",
            rule=rule,
            venue=venue,
            remedy=f"give at most {MAX_PLACES} digits before and after the point ({MAX_DIGITS} in all)",
        )


def check_common(request: OrderRequest, *, venue: str) -> None:
    """The rules of every venue: a side, a type, a positive finite quantity, a price for a limit
    order (none for a market order), a well-formed client order id and time in force."""
    if request.side not in SIDES:
        raise OrderRefused(
            f"side {request.side!r} is not an order side",
            rule="side",
            venue=venue,
            remedy="use buy or sell",
        )
    if request.type not in ORDER_TYPES:
        raise OrderRefused(
            f"order type {request.type!r} is not one the bridge places",
            rule="order_type",
            venue=venue,
            remedy=f"use {' or '.join(ORDER_TYPES)}",
        )
    _check_amount(request.qty, what="quantity", rule="qty", venue=venue)
    if request.type == "limit":
        if request.price is None:
            raise OrderRefused(
                "a limit order needs a price",
                rule="price",
                venue=venue,
                remedy="give the limit price, or place a market order",
            )
    elif request.price is not None:
        raise OrderRefused(
            f"a market order takes no price (got {request.price})",
            rule="price",
            venue=venue,
            remedy="leave the price out, or place a limit order at that price",
        )
    if request.price is not None:
        _check_amount(request.price, what="price", rule="price", venue=venue)
    if request.client_order_id is not None and not valid_client_order_id(request.client_order_id):
        raise OrderRefused(
            f"client order id {request.client_order_id!r} is not valid",
            rule="client_order_id",
            venue=venue,
            remedy="use up to 18 letters, digits, '-' or '_', or a UUID (or leave it out: one is minted)",
        )
    if request.time_in_force is not None and request.time_in_force not in TIMES_IN_FORCE:
        raise OrderRefused(
            f"time in force {request.time_in_force!r} is not known",
            rule="time_in_force",
            venue=venue,
            remedy=f"use one of {', '.join(TIMES_IN_FORCE)} (or leave it out: the venue's default)",
        )


def check_step(value: Decimal, step: Decimal | None, *, what: str, rule: str, venue: str) -> None:
    """`value` (a price or a quantity) must be a multiple of `step` (the tick, the lot)."""
    if step is None or step <= 0 or is_multiple(value, step):
        return
    below, above = nearest_multiples(value, step)
    name = "tick" if rule == "tick_size" else "lot"
    raise OrderRefused(
        f"{what} {text(value)} is not a multiple of the {name} {plain(step)}",
        rule=rule,
        venue=venue,
        remedy=f"use {_choices((below, above))}",
    )


def check_decimals(value: Decimal, places: int | None, *, what: str, rule: str, venue: str) -> None:
    """`value` may have at most `places` digits after the point (trailing zeros do not count)."""
    if places is None or decimals_of(value) <= places:
        return
    quantum = Decimal(1).scaleb(-places)
    with decimal.localcontext(_wide(value, quantum)):
        below = value.quantize(quantum, rounding=ROUND_FLOOR)
        above = value.quantize(quantum, rounding=ROUND_CEILING)
    raise OrderRefused(
        f"{what} {text(value)} has {decimals_of(value)} decimals; at most {places} are allowed",
        rule=rule,
        venue=venue,
        remedy=f"use {_choices((below, above))}",
    )


def check_range(
    value: Decimal,
    low: Decimal | None,
    high: Decimal | None,
    *,
    what: str,
    low_rule: str,
    high_rule: str,
    venue: str,
    unit: str = "",
) -> None:
    """`low` ≤ `value` ≤ `high` (None: no bound that side)."""
    suffix = f" {unit}" if unit else ""
    if low is not None and value < low:
        raise OrderRefused(
            f"{what} {text(value)}{suffix} is below the minimum {plain(low)}{suffix}",
            rule=low_rule,
            venue=venue,
            remedy=f"use at least {plain(low)}{suffix}",
        )
    if high is not None and value > high:
        raise OrderRefused(
            f"{what} {text(value)}{suffix} is above the maximum {plain(high)}{suffix}",
            rule=high_rule,
            venue=venue,
            remedy=f"use at most {plain(high)}{suffix}"
            + (" (split the order)" if what == "quantity" else ""),
        )
