"""One readable line per normalized event, for `watch`."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

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
    OrderUpdate,
    Position,
    SessionStats,
    StreamState,
    StreamStatus,
    Ticker,
    Trade,
)

_STATE_STYLE = {
    StreamState.LIVE: "green",
    StreamState.CONNECTING: "cyan",
    StreamState.RECONNECTING: "yellow",
    StreamState.POLLING: "yellow",
    StreamState.RESYNCING: "yellow",
    StreamState.STALE: "red",
}


def _n(value: Decimal | None) -> str:
    """Plain digits (Decimal('0E-8') → 0.00000000), never exponent notation."""
    return "-" if value is None else format(value, "f")


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def render(event: AnyEvent) -> str:
    head = f"[dim]{_time(event.ts)}[/] {event.venue} "
    match event:
        case Ticker():
            return head + (
                f"[bold]ticker[/] {event.symbol} bid {_n(event.bid)} ({_n(event.bid_qty)}) "
                f"ask {_n(event.ask)} ({_n(event.ask_qty)}) last {_n(event.last)} [dim]{event.source}[/]"
            )
        case BookSnapshot():
            best_bid = event.bids[0] if event.bids else None
            best_ask = event.asks[0] if event.asks else None
            return head + (
                f"[bold]book[/] {event.symbol} snapshot {len(event.bids)}x{len(event.asks)} "
                f"best {_n(best_bid.price) if best_bid else '-'} / {_n(best_ask.price) if best_ask else '-'} "
                f"[dim]{event.source}[/]"
            )
        case BookUpdate():
            changes = [f"b {_n(lv.price)}×{_n(lv.qty)}" for lv in event.bids] + [
                f"a {_n(lv.price)}×{_n(lv.qty)}" for lv in event.asks
            ]
            return head + f"[bold]book[/] {event.symbol} " + ", ".join(changes)
        case Trade():
            colour = "green" if event.side == "buy" else "red"
            side = f"[{colour}]{event.side}[/]"
            return head + f"[bold]trade[/] {event.symbol} {side} {_n(event.qty)} @ {_n(event.price)}"
        case Candle():
            return head + (
                f"[bold]candle[/] {event.symbol} {event.interval}m {_time(event.begin)} "
                f"o {_n(event.open)} h {_n(event.high)} l {_n(event.low)} c {_n(event.close)} "
                f"v {_n(event.volume)}"
            )
        case SessionStats():
            return head + (
                f"[bold]stats[/] {event.symbol} open {_n(event.open)} high {_n(event.high)} "
                f"low {_n(event.low)} close {_n(event.close)} settle {_n(event.settlement)} "
                f"vol {_n(event.volume)} oi {_n(event.open_interest)}"
            )
        case Position():
            return head + f"[bold]position[/] {event.account} {event.symbol} {_n(event.qty)}"
        case Instrument():
            return head + f"[bold]instrument[/] {event.symbol} {event.status}"
        case BalanceSnapshot():
            parts = ", ".join(f"{b.asset} {_n(b.total)}" for b in event.balances)
            return head + f"[bold]balances[/] [dim]{event.source}[/] {parts}"
        case BalanceUpdate():
            sign = "+" if event.amount >= 0 else ""
            return head + f"[bold]balance[/] {event.asset} {sign}{_n(event.amount)} → {_n(event.total)}"
        case OrderUpdate():
            return head + (
                f"[bold]order[/] {event.order_id} {event.exec_type} → {event.status}"
                + (f" {event.side} {_n(event.qty)} {event.symbol}" if event.symbol else "")
                + (" [dim](snapshot)[/]" if event.snapshot else "")
            )
        case Fill():
            return head + (
                f"[bold magenta]fill[/] {event.order_id} {event.side} {_n(event.qty)} {event.symbol} "
                f"@ {_n(event.price)} fee {_n(event.fee)} {event.fee_asset or ''}"
                + (" [dim](snapshot)[/]" if event.snapshot else "")
            )
        case StreamStatus():
            style = _STATE_STYLE.get(event.state, "white")
            return head + f"[{style}]status {event.stream}: {event.state}[/] [dim]{event.reason}[/]"
        case Gap():
            return head + (
                f"[bold red]gap[/] {event.stream}: {_time(event.start)} → {_time(event.end)} ({event.reason})"
            )
    return head + repr(event)  # pragma: no cover
