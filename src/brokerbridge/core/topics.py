"""`topic_of`: the fan-out topic an event or a subscription belongs to — its
`Subscription.describe()`.

The one routing key shared by the in-process fan-out (`services/fanout.py`) and the cluster's
event streams (`io/cluster/`: one Redis stream per topic), so the two cannot disagree on where an
event goes. Pure: no I/O, no state.
"""

from __future__ import annotations

from brokerbridge.core.events import (
    AnyEvent,
    BalanceSnapshot,
    BalanceUpdate,
    BookSnapshot,
    BookUpdate,
    Candle,
    Fill,
    Gap,
    Instrument,
    OptionAnalytics,
    OrderUpdate,
    Position,
    SessionStats,
    StreamStatus,
    Subscription,
    Ticker,
    Trade,
)


def topic_of(item: AnyEvent | Subscription) -> str:
    """The `Subscription.describe()` an event belongs to (a subscription: its own)."""
    match item:
        case Subscription():
            return item.describe()
        case Ticker(symbol=s):
            return f"{item.venue}:ticker:{s}"
        case BookSnapshot(symbol=s, depth=d) | BookUpdate(symbol=s, depth=d):
            return f"{item.venue}:book:{s}:depth={d}"
        case Trade(symbol=s):
            return f"{item.venue}:trades:{s}"
        case Candle(symbol=s, interval=i):
            return f"{item.venue}:candles:{s}:interval={i}"
        case SessionStats(symbol=s):
            return f"{item.venue}:stats:{s}"
        case Instrument():
            return f"{item.venue}:instruments"
        case OptionAnalytics(underlying=u, expiry=e, model=m):
            return f"{item.venue}:greeks:{u}:expiry={e}:model={m}"
        case Position():
            return f"{item.venue}:positions"
        case BalanceSnapshot() | BalanceUpdate():
            return f"{item.venue}:balances"
        case OrderUpdate() | Fill():
            return f"{item.venue}:executions"
        case StreamStatus(stream=s) | Gap(stream=s):
            return s
    raise TypeError(f"no topic for {type(item).__name__}")  # pragma: no cover
