"""One readable line per normalized event, for `watch`; durations and states as `status` shows them."""

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

STATE_STYLE = {
    StreamState.IDLE: "dim",
    StreamState.LIVE: "green",
    StreamState.CONNECTING: "cyan",
    StreamState.RECONNECTING: "yellow",
    StreamState.POLLING: "yellow",
    StreamState.RESYNCING: "yellow",
    StreamState.STALE: "red",
}


def ago(seconds: float) -> str:
    """A duration as `status` shows it: seconds, minutes, then hours."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plain(value: Decimal | None) -> str:
    """Plain digits (Decimal('0E-8') → 0.00000000), never exponent notation."""
    return "-" if value is None else format(value, "f")


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def render(event: AnyEvent) -> str:
    head = f"[dim]{_time(event.ts)}[/] {event.venue} "
    match event:
        case Ticker():
            return head + (
                f"[bold]ticker[/] {event.symbol} bid {plain(event.bid)} ({plain(event.bid_qty)}) "
                f"ask {plain(event.ask)} ({plain(event.ask_qty)}) last {plain(event.last)} "
                f"[dim]{event.source}[/]"
            )
        case BookSnapshot():
            best_bid = event.bids[0] if event.bids else None
            best_ask = event.asks[0] if event.asks else None
            return head + (
                f"[bold]book[/] {event.symbol} snapshot {len(event.bids)}x{len(event.asks)} "
                f"best {plain(best_bid.price) if best_bid else '-'} / "
                f"{plain(best_ask.price) if best_ask else '-'} "
                f"[dim]{event.source}[/]"
            )
        case BookUpdate():
            changes = [f"b {plain(lv.price)}×{plain(lv.qty)}" for lv in event.bids] + [
                f"a {plain(lv.price)}×{plain(lv.qty)}" for lv in event.asks
            ]
            return head + f"[bold]book[/] {event.symbol} " + ", ".join(changes)
        case Trade():
            colour = "green" if event.side == "buy" else "red"
            side = f"[{colour}]{event.side}[/]"
            return head + f"[bold]trade[/] {event.symbol} {side} {plain(event.qty)} @ {plain(event.price)}"
        case Candle():
            return head + (
                f"[bold]candle[/] {event.symbol} {event.interval}m {_time(event.begin)} "
                f"o {plain(event.open)} h {plain(event.high)} l {plain(event.low)} c {plain(event.close)} "
                f"v {plain(event.volume)}"
            )
        case SessionStats():
            return head + (
                f"[bold]stats[/] {event.symbol} open {plain(event.open)} high {plain(event.high)} "
                f"low {plain(event.low)} close {plain(event.close)} settle {plain(event.settlement)} "
                f"vol {plain(event.volume)} oi {plain(event.open_interest)}"
            )
        case Position():
            return head + f"[bold]position[/] {event.account} {event.symbol} {plain(event.qty)}"
        case Instrument():
            return head + f"[bold]instrument[/] {event.symbol} {event.status}"
        case BalanceSnapshot():
            parts = ", ".join(f"{b.asset} {plain(b.total)}" for b in event.balances)
            return head + f"[bold]balances[/] [dim]{event.source}[/] {parts}"
        case BalanceUpdate():
            sign = "+" if event.amount >= 0 else ""
            return head + f"[bold]balance[/] {event.asset} {sign}{plain(event.amount)} → {plain(event.total)}"
        case OrderUpdate():
            return head + (
                f"[bold]order[/] {event.order_id} {event.exec_type} → {event.status}"
                + (f" {event.side} {plain(event.qty)} {event.symbol}" if event.symbol else "")
                + (" [dim](snapshot)[/]" if event.snapshot else "")
            )
        case Fill():
            return head + (
                f"[bold magenta]fill[/] {event.order_id} {event.side} {plain(event.qty)} {event.symbol} "
                f"@ {plain(event.price)} fee {plain(event.fee)} {event.fee_asset or ''}"
                + (" [dim](snapshot)[/]" if event.snapshot else "")
            )
        case StreamStatus():
            style = STATE_STYLE.get(event.state, "white")
            return head + f"[{style}]status {event.stream}: {event.state}[/] [dim]{event.reason}[/]"
        case Gap():
            return head + (
                f"[bold red]gap[/] {event.stream}: {_time(event.start)} → {_time(event.end)} ({event.reason})"
            )
    return head + repr(event)  # pragma: no cover
