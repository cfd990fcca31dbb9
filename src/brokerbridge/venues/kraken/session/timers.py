"""A Kraken session's deadlines: the idle watchdog, pings, unanswered subscribes, overdue
snapshots, refused subscriptions asked again and STALE books tried again.

The driver asks `next_deadline()` and calls `handle_timer(now)` then; nothing here reads a clock.
"""

from __future__ import annotations

import logging
import math

from brokerbridge.core.events import StreamState, Subscription
from brokerbridge.core.signals import ReconnectNeeded
from brokerbridge.venues.kraken.session.books import Books

logger = logging.getLogger(__name__)


class Timers(Books):
    """`next_deadline` and `handle_timer`."""

    def next_deadline(self) -> float | None:
        """Earliest of the idle watchdog and the next ping; None when not connected."""
        if not self._connected:
            return None
        deadlines = [self._next_ping, *self._stale_books.values(), *self._snapshot_due.values()]
        deadlines.extend(due for due, _ in self._retry_refused.values())
        if not self._idle_reported:
            deadlines.append(self._last_rx + self.idle_timeout)
            deadlines.extend(
                r.sent_at + self.ack_timeout for r in self._pending.values() if r.method == "subscribe"
            )
        return min(deadlines)

    def handle_timer(self, now: float) -> None:
        self._now = now
        if not self._connected:
            return
        if not self._idle_reported and now >= self._last_rx + self.idle_timeout:
            self._idle_reported = True  # once per connection: the driver reconnects
            self._signals.append(ReconnectNeeded(f"no frame from Kraken for {now - self._last_rx:.1f} s"))
        elif not self._idle_reported and any(
            r.method == "subscribe" and now >= r.sent_at + self.ack_timeout for r in self._pending.values()
        ):
            # A subscription neither acknowledged nor refused: the link is not trustworthy.
            self._idle_reported = True
            self._signals.append(ReconnectNeeded(f"no answer to a subscribe within {self.ack_timeout:.0f} s"))
        for sub, due in list(self._snapshot_due.items()):
            if now >= due:
                self._snapshot_overdue(sub)
        for sub, (due, attempts) in list(self._retry_refused.items()):
            if now >= due:
                self._retry_refused[sub] = (math.inf, attempts)  # until its answer comes
                self._subscribe([sub])
        for sub, retry_at in list(self._stale_books.items()):
            if now >= retry_at:
                del self._stale_books[sub]
                self._send_request("subscribe", [sub], resync=True)
                self._book_resyncs[sub] = 0
                self._status_members(sub, StreamState.RESYNCING, "trying the book again", self._wall_clock())
        if now >= self._next_ping:
            self._send_request("ping", [])
            self._next_ping = now + self.ping_interval

    def _snapshot_overdue(self, sub: Subscription) -> None:
        """A resync was accepted (or not answered yet) but its snapshot never came: ask again."""
        del self._snapshot_due[sub]
        reason = f"no snapshot within {self.ack_timeout:.0f} s of resubscribing"
        if sub in self._book_resyncs:
            self._resync_book(sub, reason, self._wall_clock())
        elif sub in self._sequence_resyncs and sub not in self._token_refused:
            logger.warning("kraken %s: %s; asking again", sub.describe(), reason)
            self._send_request("unsubscribe", [sub])
            self._send_request("subscribe", [sub], resync=True)
