"""One connection's private channel subscriptions (balances, executions) and the account's events
sent on them, each channel numbered by its own `sequence`.

The `skip_sequence` and `lose_message` switches act here: a skipped number leaves a gap in the
sequence; a lost message uses its number and is never sent, so only a later message of the same
channel shows the loss. While a trading request of this connection runs (`holding`), its own account
events wait until the request's ack is out, as Kraken answers before it reports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from brokerbridge.sim.kraken.account import AccountEvent
from brokerbridge.sim.kraken.account_frames import (
    balances_snapshot,
    ledger_entry,
    order_event_entry,
    order_snapshot_entry,
    own_trade_entry,
)
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.ws_wire import EXECUTIONS_WARNINGS, MAX_RATE_COUNT, Frame, Reject, Replies


@dataclass(slots=True)
class PrivateSub:
    sequence: int = 0
    snap_orders: bool = True
    snap_trades: bool = False


class AccountChannels:
    def __init__(self, exchange: KrakenExchange, send: Callable[[Frame], None], replies: Replies) -> None:
        self.exchange = exchange
        self.send = send
        self.replies = replies
        self.balances: PrivateSub | None = None
        self.executions: PrivateSub | None = None
        self._held: list[tuple[str, list[Frame]]] | None = None

    @property
    def active(self) -> bool:
        return bool(self.balances or self.executions)

    def request(self, method: str, channel: str, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        """(Un)subscribe `channel` (balances or executions); the token was accepted already."""
        current = self.balances if channel == "balances" else self.executions
        if method == "unsubscribe":
            if current is None:
                raise Reject("Subscription Not Found")
            if channel == "balances":
                self.balances = None
            else:
                self.executions = None
            self.replies.ack(method, req_id, {"channel": channel}, time_in)
            return
        if current is not None:
            raise Reject("Already subscribed")
        if channel == "balances":
            snapshot = params.get("snapshot", True)
            self.balances = PrivateSub()
            self.replies.ack(method, req_id, {"channel": "balances", "snapshot": snapshot}, time_in)
            if snapshot:
                self._send(self.balances, "balances", "snapshot", balances_snapshot(self.exchange))
            return
        snap_orders = params.get("snap_orders", params.get("snapshot", True))
        snap_trades = params.get("snap_trades", params.get("snapshot_trades", False))
        for name, value in (("snap_orders", snap_orders), ("snap_trades", snap_trades)):
            if not isinstance(value, bool):
                raise Reject(f"EGeneral:Invalid arguments:{name}")
        self.executions = PrivateSub(snap_orders=snap_orders, snap_trades=snap_trades)
        # The 2024 capture's result shape; snap_* are echoed when asked so a client replaying the
        # ack as its subscription (python-kraken-sdk does) asks for the same again.
        result: dict[str, Any] = {
            "channel": "executions",
            "maxratecount": MAX_RATE_COUNT,
            "snapshot": snap_orders,
        }
        if "snap_orders" in params:
            result["snap_orders"] = snap_orders
        if "snap_trades" in params:
            result["snap_trades"] = snap_trades
        result["warnings"] = EXECUTIONS_WARNINGS
        self.replies.ack(method, req_id, dict(sorted(result.items())), time_in)
        account = self.exchange.account
        if snap_trades:
            trades = sorted(account.trades.values(), key=lambda t: t.time_ns)[-50:]
            self._send(self.executions, "executions", "snapshot", [own_trade_entry(t) for t in trades])
        if snap_orders or not snap_trades:
            orders = [order_snapshot_entry(o) for o in account.open_orders()] if snap_orders else []
            self._send(self.executions, "executions", "snapshot", orders)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """This connection's own account events wait until the block (a trading request) is over."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            for channel, data in held:
                self._send_update(channel, data)

    def on_account(self, event: AccountEvent) -> None:
        # Formatted now, against the order's state at this event; sent now or after a held-back ack.
        if event.kind == "ledger":
            if self.balances is None or event.ledger is None:
                return
            frame = ("balances", [ledger_entry(event.ledger)])
        elif self.executions is None or event.order is None:
            return
        elif event.kind == "trade" and event.trade is not None:
            frame = ("executions", [own_trade_entry(event.trade)])
        else:
            frame = ("executions", [order_event_entry(event)])
        if self._held is not None:
            self._held.append(frame)
        else:
            self._send_update(*frame)

    def _send_update(self, channel: str, data: list[Frame]) -> None:
        sub = self.balances if channel == "balances" else self.executions
        if sub is not None:
            self._send(sub, channel, "update", data)

    def _send(self, sub: PrivateSub, channel: str, kind: str, data: list[Frame]) -> None:
        sub.sequence += 1
        faults = self.exchange.faults
        if faults.take_sequence_skip(channel):
            sub.sequence += 1
        if faults.take_message_loss(channel):
            return  # lost on the way: numbered, never sent
        self.send({"channel": channel, "type": kind, "data": data, "sequence": sub.sequence})
