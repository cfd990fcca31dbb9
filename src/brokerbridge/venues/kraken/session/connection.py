"""`KrakenWsSession`: one Kraken WebSocket v2 connection's session, its jobs put together, and the
table that hands each decoded frame to its job.

* A `status` frame with system != online does not ask for a reconnect: the socket stays up during
  maintenance and reconnecting would only loop (Kraken asks for ≥5 s between attempts after
  maintenance). The driver gets `SystemStatus` and decides (e.g. polling, STALE).
* The Cloudflare "proxy restarting" text frame and the idle watchdog ask for a reconnect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.signals import ReconnectNeeded, SystemStatus
from brokerbridge.venues.kraken import VENUE
from brokerbridge.venues.kraken.messages import (
    BalancesSnapshotFrame,
    BalancesUpdateFrame,
    BookFrame,
    CloudflareRestarting,
    ExecutionsFrame,
    Heartbeat,
    InstrumentFrame,
    MethodAck,
    OhlcFrame,
    Pong,
    StatusFrame,
    TickerFrame,
    TradeFrame,
    decode_ws_frame,
)
from brokerbridge.venues.kraken.normalize import (
    candle_from_ws,
    instruments_from_ws,
    ticker_from_ws,
    trade_from_ws,
)
from brokerbridge.venues.kraken.session.private import PrivateStreams
from brokerbridge.venues.kraken.session.state import route_key
from brokerbridge.venues.kraken.session.subscriptions import Subscriptions
from brokerbridge.venues.kraken.session.timers import Timers
from brokerbridge.venues.kraken.session.trading import Trading
from brokerbridge.venues.session_base import HANDLING_FAILURES


class KrakenWsSession(Subscriptions, PrivateStreams, Timers, Trading):
    """Pure Kraken WS v2 session for one endpoint (public or private). See the package docstring."""

    def __init__(
        self,
        *,
        private: bool,
        venue: str = VENUE,
        idle_timeout: float = 10.0,
        ping_interval: float = 20.0,
        ack_timeout: float = 10.0,
        wall_clock: Callable[[], float],
    ) -> None:
        super().__init__(
            private=private,
            venue=venue,
            idle_timeout=idle_timeout,
            ping_interval=ping_interval,
            ack_timeout=ack_timeout,
            wall_clock=wall_clock,
        )

    def connection_made(self, now: float) -> None:
        """A new socket is open: reset per-connection state and replay every subscription."""
        self._now = now
        super().connection_made(now)

    def _replay(self, now: float) -> None:
        routes = self._routes
        self._subscribe([sub for sub in self._subs if routes.get(route_key(sub)) == sub])

    # ------------------------------------------------------------ incoming frames

    def _on_method_ack(self, ack: MethodAck, received: float) -> None:
        """A trading request's answer goes to whoever sent it; the rest are subscriptions'."""
        if self._trading_pending and self._on_trading_ack(ack):
            return
        self._on_ack(ack, received)

    def receive_text(self, text: str, now: float) -> None:
        """Handle one text frame. Never raises: bad frames become `BadFrame` signals."""
        self._now = now
        if self.private and self._sequences:
            self._silence_ended(now)
        self._last_rx = now
        self._idle_reported = False
        received = self._wall_clock()
        try:
            frame = decode_ws_frame(text)  # book levels: checked as applied (KrakenBook)
            FRAME_HANDLERS[type(frame)](self, frame, received)
        except ProtocolError as exc:
            self._frame_refused(exc)
        except HANDLING_FAILURES as exc:
            # Should not happen (decoding and KrakenBook validate); if it does it is our bug, but one
            # frame must not take the connection down.
            self._frame_handling_failed(exc)

    def _on_ticker(self, frame: TickerFrame, received: float) -> None:
        for ticker in frame.data:
            if self._route("ticker", ticker.symbol):
                self._events.append(ticker_from_ws(ticker, received=received, venue=self.venue))

    def _on_trade(self, frame: TradeFrame, received: float) -> None:
        for trade in frame.data:
            if self._route("trade", trade.symbol):
                self._events.append(trade_from_ws(trade, venue=self.venue))

    def _on_ohlc(self, frame: OhlcFrame, received: float) -> None:
        for candle in frame.data:
            if self._route("ohlc", candle.symbol, candle.interval):
                self._events.append(candle_from_ws(candle, venue=self.venue))

    def _on_instruments(self, frame: InstrumentFrame, received: float) -> None:
        if self._route("instrument", None):
            self._events.extend(instruments_from_ws(frame.data, received=received, venue=self.venue))

    def _on_pong(self, frame: Pong, received: float) -> None:
        if frame.req_id is not None:
            self._pending.pop(frame.req_id, None)

    def _on_status(self, frame: StatusFrame, received: float) -> None:
        for status in frame.data:
            self._signals.append(SystemStatus(status.system))

    def _on_cloudflare(self, frame: CloudflareRestarting, received: float) -> None:
        self._signals.append(ReconnectNeeded(frame.text))

    def _on_heartbeat(self, frame: Heartbeat, received: float) -> None:
        """Nothing: a heartbeat only refreshes the watchdog (done for every frame)."""


# Every type `decode_ws_frame` returns → its handler, called as handler(session, frame, received).
# Looked up by the frame's exact type: one dict lookup instead of a chain of isinstance tests, and
# the book handler is reached with no call in between (the hot path). A frame type missing here is
# a KeyError, i.e. our bug (tests/sessions checks the table covers `WsFrame`).
FRAME_HANDLERS: Mapping[type, Callable[[KrakenWsSession, Any, float], None]] = MappingProxyType(
    {
        BookFrame: KrakenWsSession._on_book,
        Heartbeat: KrakenWsSession._on_heartbeat,
        TickerFrame: KrakenWsSession._on_ticker,
        TradeFrame: KrakenWsSession._on_trade,
        OhlcFrame: KrakenWsSession._on_ohlc,
        InstrumentFrame: KrakenWsSession._on_instruments,
        MethodAck: KrakenWsSession._on_method_ack,
        Pong: KrakenWsSession._on_pong,
        StatusFrame: KrakenWsSession._on_status,
        CloudflareRestarting: KrakenWsSession._on_cloudflare,
        BalancesSnapshotFrame: KrakenWsSession._on_private,
        BalancesUpdateFrame: KrakenWsSession._on_private,
        ExecutionsFrame: KrakenWsSession._on_private,
    }
)
