"""`VenueSession`: the bookkeeping every pure venue session does the same way.

A pure session (Kraken's, Primary's) is driven by one connection supervisor with the same API::

    session.connection_made(now)             # socket open: the session queues its subscribe frames
    for frame in session.data_to_send(): ws.send(frame)
    session.receive_text(text, now)          # for every incoming frame
    session.events_received()                # normalized core.events, for consumers
    session.signals_received()               # core.signals, for the driver
    session.next_deadline() / handle_timer(now)

What is the same for every venue lives here: the three queues the driver drains, the subscriptions
remembered across connections (an ordered set: replayed in the order added), the connection flag
and its reset, and what a frame that cannot be handled becomes. Time is passed in: `now` arguments
are the driver's monotonic clock, `wall_clock` gives the wall time events are stamped with — this
package never reads a clock of its own, so tests drive both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from brokerbridge.core.errors import InternalError, ProtocolError
from brokerbridge.core.events import AnyEvent, Subscription
from brokerbridge.core.signals import BadFrame, Signal

logger = logging.getLogger(__name__)

# What our own handling of a decoded frame can raise when it has a bug. Caught per frame (one frame
# must not take the connection down) and reported as `InternalError`, never as the venue's
# `ProtocolError`: a test that accepts every `ProtocolError` must still see our bug.
HANDLING_FAILURES = (ArithmeticError, ValueError, TypeError, KeyError, IndexError, AttributeError)


class VenueSession:
    """Base of the pure venue sessions: queues, subscriptions, connection state, bad frames.

    A subclass sets up its per-connection state in `_reset_connection_state(now)` (called by its
    constructor, and here on every connect and disconnect) and queues its subscriptions in
    `_replay(now)` when a connection is made.
    """

    def __init__(self, *, venue: str, wall_clock: Callable[[], float]) -> None:
        self.venue = venue
        # Event timestamps are wall time; `now` arguments are the driver's monotonic clock.
        self._wall_clock = wall_clock
        self._subs: dict[Subscription, None] = {}  # ordered set: replay in the order added
        self._events: list[AnyEvent] = []
        self._signals: list[Signal] = []
        self._outgoing: list[str] = []
        self._connected = False

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subs)

    @property
    def connected(self) -> bool:
        return self._connected

    # ------------------------------------------------------------ draining

    def events_received(self) -> list[AnyEvent]:
        events, self._events = self._events, []
        return events

    def signals_received(self) -> list[Signal]:
        signals, self._signals = self._signals, []
        return signals

    def data_to_send(self) -> list[str]:
        frames, self._outgoing = self._outgoing, []
        return frames

    # ------------------------------------------------------------ connection

    def connection_made(self, now: float) -> None:
        """A new socket is open: reset per-connection state and replay every subscription."""
        self._connected = True
        self._reset_connection_state(now)
        self._outgoing.clear()  # frames queued for a dead socket must not leak into the new one
        self._replay(now)

    def connection_lost(self, now: float) -> None:
        self._connected = False
        self._reset_connection_state(now)
        self._outgoing.clear()

    def _reset_connection_state(self, now: float) -> None:
        raise NotImplementedError

    def _replay(self, now: float) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ frames we cannot use

    def _frame_refused(self, exc: ProtocolError) -> None:
        """The venue sent a frame we cannot parse: skipped, the driver told."""
        logger.debug("bad %s frame: %s", self.venue, exc)
        self._signals.append(BadFrame(exc))

    def _frame_handling_failed(self, exc: Exception) -> None:
        """Handling a decoded frame raised one of `HANDLING_FAILURES`: our bug. Logged loudly with
        its traceback, the frame skipped, the driver told."""
        logger.error("%s frame handling failed", self.venue, exc_info=exc)
        self._signals.append(
            BadFrame(InternalError(f"{self.venue} ws: unusable frame ({type(exc).__name__})"))
        )
