"""Kraken's private channels (balances, executions): sequence numbers and silences.

Private channels carry `sequence` (kraken.md §3.8): a snapshot resets it, an update must be last + 1;
a jump resubscribes that channel with a snapshot and emits a `Gap`. A jump shows only with the next
sequenced frame, so a private frame after `SILENCE_SUSPECT` of silence (heartbeats come every second)
raises `SilenceEnded`: frames lost at the end of a burst would otherwise never show.
"""

from __future__ import annotations

import logging

from brokerbridge.core.events import Gap, StreamState, Subscription
from brokerbridge.core.signals import Resyncing, SilenceEnded
from brokerbridge.venues.kraken.messages import BalancesSnapshotFrame, BalancesUpdateFrame, ExecutionsFrame
from brokerbridge.venues.kraken.normalize import (
    balance_snapshot_from_ws,
    balance_update_from_ws,
    execution_from_ws,
)
from brokerbridge.venues.kraken.session.requests import Requests
from brokerbridge.venues.kraken.session.state import SILENCE_SUSPECT

logger = logging.getLogger(__name__)


class PrivateStreams(Requests):
    """Balances and executions frames in, each sequence checked."""

    def _silence_ended(self, now: float) -> None:
        """Called with a frame on a private connection whose sequences are running, before
        `_last_rx` moves: this long a silence on a live subscription may have swallowed frames (a
        stall the watchdog did not wait out), and Kraken heartbeats every second."""
        if now - self._last_rx >= SILENCE_SUSPECT:
            self._signals.append(SilenceEnded(now - self._last_rx))

    def _on_private(
        self, frame: BalancesSnapshotFrame | BalancesUpdateFrame | ExecutionsFrame, received: float
    ) -> None:
        snapshot = isinstance(frame, BalancesSnapshotFrame) or (
            isinstance(frame, ExecutionsFrame) and frame.type == "snapshot"
        )
        sub = self._route(
            "executions" if isinstance(frame, ExecutionsFrame) else "balances", None, snapshot=snapshot
        )
        if sub is None:
            return
        recovering = snapshot and sub in self._sequence_resyncs
        if not self._accept_sequence(sub, frame.sequence, snapshot, received):
            return
        if isinstance(frame, BalancesSnapshotFrame):
            self._events.append(balance_snapshot_from_ws(frame.data, received=received, venue=self.venue))
        elif isinstance(frame, BalancesUpdateFrame):
            for row in frame.data:
                self._events.append(balance_update_from_ws(row, received=received, venue=self.venue))
        else:
            for report in frame.data:
                self._events.append(
                    execution_from_ws(report, snapshot=snapshot, received=received, venue=self.venue)
                )
        if recovering:  # after the snapshot's events, as for books
            self._snapshot_due.pop(sub, None)
            self._status(sub, StreamState.LIVE, "fresh snapshot received", received)

    def _accept_sequence(
        self, sub: Subscription, sequence: int | None, snapshot: bool, received: float
    ) -> bool:
        previous_rx = self._private_rx_wall.get(sub, received)
        self._private_rx_wall[sub] = received
        if snapshot:
            if sequence is not None:
                self._sequences[sub] = sequence
            self._sequence_resyncs.discard(sub)
            return True
        if sub in self._sequence_resyncs:
            return False  # waiting for the snapshot that restarts the numbering
        last = self._sequences.get(sub)
        if sequence is None:
            return True
        if last is not None and sequence != last + 1:
            reason = f"sequence jumped from {last} to {sequence}"
            logger.warning("kraken %s: %s; resubscribing with snapshot", sub.describe(), reason)
            self._sequences.pop(sub, None)
            self._sequence_resyncs.add(sub)
            self._events.append(
                Gap(
                    venue=self.venue,
                    ts=received,
                    stream=sub.describe(),
                    start=previous_rx,
                    end=received,
                    reason=reason,
                )
            )
            self._send_request("unsubscribe", [sub])
            self._send_request("subscribe", [sub], resync=True)
            self._signals.append(Resyncing(sub, reason))
            self._status(sub, StreamState.RESYNCING, reason, received)
            return False
        # No baseline yet (update before any snapshot on this connection): adopt it.
        self._sequences[sub] = sequence
        return True
