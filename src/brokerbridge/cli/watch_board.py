"""The live view of `brokerbridge watch`: latest ticker per symbol, balances, and stream status.

`WatchBoard` only folds events into state and draws it (no I/O, no clock), so the terminal
loop redraws it as events arrive and tests feed it events directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from rich.console import Group
from rich.table import Table
from rich.text import Text

from brokerbridge.cli.render import STATE_STYLE, plain
from brokerbridge.core.events import (
    AnyEvent,
    BalanceSnapshot,
    BalanceUpdate,
    Fill,
    StreamStatus,
    Ticker,
    Trade,
)


@dataclasses.dataclass
class WatchBoard:
    venue: str
    symbols: list[str]
    tickers: dict[str, Ticker] = dataclasses.field(default_factory=dict)
    last_trade: dict[str, Trade] = dataclasses.field(default_factory=dict)
    balances: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    streams: dict[str, StreamStatus] = dataclasses.field(default_factory=dict)
    fills: int = 0
    events: int = 0

    def apply(self, event: AnyEvent) -> None:
        self.events += 1
        match event:
            case Ticker():
                self.tickers[event.symbol] = event
            case Trade():
                self.last_trade[event.symbol] = event
            case BalanceSnapshot():
                self.balances = {b.asset: b.total for b in event.balances}
            case BalanceUpdate():
                self.balances[event.asset] = event.total
            case StreamStatus():
                self.streams[event.stream] = event
            case Fill():
                self.fills += 1

    def render(self) -> Group:
        tickers = Table(title=f"{self.venue} tickers", expand=True)
        for column in ("symbol", "bid", "ask", "last", "last trade", "at (UTC)"):
            tickers.add_column(column, justify="left" if column == "symbol" else "right")
        for symbol in dict.fromkeys([*self.symbols, *self.tickers]):
            tick, trade = self.tickers.get(symbol), self.last_trade.get(symbol)
            traded = f"{trade.side} {plain(trade.qty)} @ {plain(trade.price)}" if trade else "-"
            if tick is None:
                tickers.add_row(symbol, "-", "-", "-", traded, Text("waiting", style="dim"))
                continue
            tickers.add_row(
                symbol, plain(tick.bid), plain(tick.ask), plain(tick.last), traded, _clock(tick.ts)
            )
        parts: list[Table | Text] = [tickers]
        if self.balances:
            balances = Table(title="balances", expand=True)
            balances.add_column("asset")
            balances.add_column("total", justify="right")
            for asset, total in sorted(self.balances.items()):
                balances.add_row(asset, plain(total))
            parts.append(balances)
        streams = Table(title="streams", expand=True)
        streams.add_column("stream")
        streams.add_column("state")
        streams.add_column("reason")
        for name, status in sorted(self.streams.items()):
            style = STATE_STYLE.get(status.state, "white")
            streams.add_row(name, Text(str(status.state), style=style), status.reason or "")
        parts.append(streams)
        parts.append(Text(f"{self.events} events, {self.fills} fills — Ctrl-C to stop", style="dim"))
        return Group(*parts)


def _clock(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S")
