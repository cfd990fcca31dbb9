"""`FillWatermark`: how far back reconciliation must read Kraken's TradesHistory so no fill is skipped.

The watermark is a Kraken timestamp such that every fill stamped up to it has been reported. A
fill moves it only when its arrival proves that no older fill is missing, which holds for a fill
that comes on an executions subscription unbroken (one connection, one subscription, no sequence
gap) since a reconciliation that began while it was live read fills: the reads hold
everything up to their start, the subscription everything after its own start.

Any other fill proves nothing about older ones: a snapshot's (the newest 50 only), a REST poll's
(one page while the stream is down), and any fill on a subscription not yet followed by a history
read (fills made while the old connection was stalled are lost with it, and the new one's
snapshot can be lost in the same stall). When the watermark followed every fill, one such newer
fill moved it past the lost ones and every later reconciliation started reading after them.

Pure bookkeeping: no I/O, no clock; the connector tells it what happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HistoryRead:
    """What was true when a reconciliation began reading orders and TradesHistory."""

    live: bool  # the executions subscription was live
    breaks: int  # breaks in it so far


class FillWatermark:
    def __init__(self) -> None:
        self.complete_to: float | None = None  # every fill stamped up to here is reported
        self._newest: float | None = None  # newest fill seen, from any source
        self._live = False  # the executions subscription is live on the current connection
        self._breaks = 0
        self._unbroken = False  # live, and unbroken since a history read that began while live

    @property
    def proven(self) -> bool:
        """True while fills arriving on the stream move the watermark: no history read is due."""
        return self._unbroken

    def restore(self, newest: float) -> None:
        """Fills journaled by an earlier run, up to `newest`: the next read starts there."""
        self.complete_to = max(newest, self.complete_to or newest)
        self._newest = max(newest, self._newest or newest)

    def stream_live(self) -> None:
        """The executions subscription was accepted (or recovered by a fresh snapshot)."""
        self._live = True

    def stream_broken(self) -> None:
        """The executions subscription stopped being live: connection lost, sequence gap, refusal."""
        self._live = False
        self._unbroken = False
        self._breaks += 1

    def fill_seen(self, ts: float) -> None:
        self._newest = ts if self._newest is None else max(ts, self._newest)
        if self._unbroken:
            self.complete_to = ts if self.complete_to is None else max(ts, self.complete_to)

    def read_started(self) -> HistoryRead:
        return HistoryRead(live=self._live, breaks=self._breaks)

    def fills_read(self, fill_times: Iterable[float]) -> None:
        """A TradesHistory read back to the watermark (less the margin) returned fills stamped
        `fill_times`: every fill up to the newest of them is reported once they are published."""
        newest = max(fill_times, default=None)
        if newest is not None:
            self.complete_to = max(newest, self.complete_to or newest)

    def read_done(self, read: HistoryRead) -> None:
        """The reconciliation begun at `read` has read the fills (back to the watermark)."""
        if read.live and read.breaks == self._breaks:
            # The reads cover up to their start, the unbroken subscription everything after.
            self._unbroken = True
            if self._newest is not None:
                self.complete_to = max(self._newest, self.complete_to or self._newest)
