"""Kraken books: verified by checksum, resynced one symbol at a time, shallower depths cut.

* Books are verified with the CRC32 checksum on every snapshot and update (kraken.md §3.6.2). A
  mismatch drops that one book and resubscribes that symbol only (same depth) — the connection and
  the other streams stay up. Updates for a book that is resyncing are ignored. If the fresh snapshot
  fails too, `MAX_BOOK_RESYNCS` times in a row, the session pauses (a wrong checksum would otherwise
  loop at network speed), marks the stream STALE and tries again `BOOK_RETRY_AFTER` later. Updates
  with no snapshot before them on this connection (the snapshot was lost, e.g. in a stalled link)
  resync the same way: without it no update can ever apply. So does a book level that is not a sane
  number (NaN, 1e999999999, a negative price): `KrakenBook` checks each level as it applies it, so
  the book has taken part of that message; the frame is a `BadFrame` too.
* One book per symbol is on the wire, at the deepest depth wanted (`subscriptions`); each shallower
  depth is cut from it — a snapshot of its best levels, and for every message the difference of its
  best levels before and after (`KrakenBook.changes_since`), so a level that enters the window from
  below comes as an insert, as Kraken sends it. Kraken's checksum covers the top 10 levels, the same
  for every depth (all are ≥ 10), so each cut carries the frame's checksum. While the wire moves to
  another depth, the symbol's frames of the old depth are dropped (`_old_depth_frame`).
* A resync is proven by its fresh snapshot only (see `requests`); one that does not come within
  `ack_timeout` is asked for again (`timers`).
"""

from __future__ import annotations

import logging

from brokerbridge.core.events import BookSnapshot, BookUpdate, Channel, StreamState, Subscription
from brokerbridge.core.signals import BadFrame, Resyncing
from brokerbridge.venues.kraken.book import BookWindow, KrakenBook, KrakenBookError
from brokerbridge.venues.kraken.messages import BookFrame
from brokerbridge.venues.kraken.session.requests import Requests
from brokerbridge.venues.kraken.session.state import BOOK_RETRY_AFTER, MAX_BOOK_RESYNCS, route_key

logger = logging.getLogger(__name__)


class Books(Requests):
    """Book frames in: verified books, their cuts, resyncs and STALE pauses."""

    def _on_book(self, frame: BookFrame, received: float) -> None:
        # The hot path: a Subscription's hash is recomputed on every lookup, so the (usually
        # empty) resync and stale maps are tested for emptiness before membership; routing, the
        # checksum and the event are written out here rather than called. Shallower depths cut
        # from the book (`_cuts`, usually empty too) are worked out in calls.
        snapshot = frame.type == "snapshot"
        routes, awaiting_ack, cuts_of = self._routes, self._awaiting_ack, self._cuts
        for data in frame.data:
            symbol = data.symbol
            sub = routes.get(("book", symbol, 0))
            if sub is None:
                continue
            if self._moving and symbol in self._moving and self._old_depth_frame(symbol, snapshot):
                continue
            if awaiting_ack and sub in awaiting_ack:
                self._confirm_by_data(sub, snapshot)
            if self._stale_books and sub in self._stale_books:
                continue
            cuts = cuts_of.get(symbol) if cuts_of else None
            windows: list[BookWindow] | None = None
            if snapshot:
                book = KrakenBook(sub.depth)
            else:
                existing = self._books.get(sub)
                if existing is None:
                    if sub not in self._book_resyncs:
                        # Updates, but no snapshot before them on this connection: it was lost (a
                        # stalled link drops frames), and without it no update can ever apply.
                        self._resync_book(sub, f"no snapshot for {symbol} before its updates", received)
                    continue  # resyncing: the fresh snapshot starts the book again
                book = existing
                if cuts:
                    windows = [
                        book.window(depth) for depth in cuts if book.touched_by(depth, data.bids, data.asks)
                    ]
            try:
                bids, asks = book.apply_wire(data.bids, data.asks)
            except KrakenBookError as exc:
                # Refused, and the book has taken the levels before the bad one: rebuild it.
                self._signals.append(BadFrame(exc))
                self._resync_book(sub, f"{exc.message}; the {symbol} book is not verifiable", received)
                continue
            checksum = data.checksum
            if checksum is not None:
                local = book.checksum()
                if local != checksum:
                    reason = f"checksum mismatch for {symbol}: Kraken {checksum}, local {local}"
                    self._resync_book(sub, reason, received)
                    continue
            kind: type[BookSnapshot | BookUpdate]
            if snapshot:
                self._books[sub] = book  # before the timestamp: a bad one still leaves it verified
                kind, bids, asks = BookSnapshot, book.bids_levels(), book.asks_levels()
            else:
                kind = BookUpdate
            stamp = self._parse_timestamp(data.timestamp) if data.timestamp else received
            self._events.append(
                kind(
                    venue=self.venue,
                    ts=stamp,
                    symbol=symbol,
                    depth=sub.depth,
                    bids=bids,
                    asks=asks,
                    checksum=checksum,
                )
            )
            if cuts:
                if snapshot:
                    cut = self._cut_snapshot
                    self._events.extend(cut(book, symbol, depth, checksum, stamp) for depth in cuts)
                elif windows:
                    self._cut_updates(book, symbol, windows, checksum, stamp)
            if snapshot and self._book_resyncs.pop(sub, None) is not None:
                self._snapshot_due.pop(sub, None)
                self._status_members(sub, StreamState.LIVE, "book snapshot verified", received)

    def _old_depth_frame(self, symbol: str, snapshot: bool) -> bool:
        """True for a frame of the depth the symbol's book is moving away from (dropped). Each
        subscription starts with one snapshot, so once the old ones are in, a snapshot is the new
        subscription's (both answers to the move were lost): the move is over."""
        move = self._moving[symbol]
        if not snapshot:
            return True
        if move.old_snapshots:
            move.old_snapshots -= 1
            return True
        del self._moving[symbol]
        return False

    def _cut_snapshot(
        self, book: KrakenBook, symbol: str, depth: int, checksum: int | None, ts: float
    ) -> BookSnapshot:
        """The book's best `depth` levels as a snapshot; the checksum covers them (the top 10)."""
        return BookSnapshot(
            venue=self.venue,
            ts=ts,
            symbol=symbol,
            depth=depth,
            bids=book.bids_levels(depth),
            asks=book.asks_levels(depth),
            checksum=checksum,
        )

    def _cut_updates(
        self, book: KrakenBook, symbol: str, windows: list[BookWindow], checksum: int | None, ts: float
    ) -> None:
        """An update per shallower depth whose best levels the message changed."""
        for window in windows:
            bids, asks = book.changes_since(window)
            if bids or asks:
                self._events.append(
                    BookUpdate(
                        venue=self.venue,
                        ts=ts,
                        symbol=symbol,
                        depth=window.depth,
                        bids=bids,
                        asks=asks,
                        checksum=checksum,
                    )
                )

    def _resync_book(self, sub: Subscription, reason: str, received: float) -> None:
        self._books.pop(sub, None)
        self._snapshot_due.pop(sub, None)
        failures = self._book_resyncs.get(sub, -1) + 1
        if failures >= MAX_BOOK_RESYNCS:
            # Asking again at network speed would only loop: pause, then start over.
            self._book_resyncs.pop(sub, None)
            self._stale_books[sub] = self._now + BOOK_RETRY_AFTER
            message = f"{reason}; {failures} fresh snapshots failed too, retrying in {BOOK_RETRY_AFTER:.0f} s"
            logger.warning("%s", message)
            self._send_request("unsubscribe", [sub])
            self._status_members(sub, StreamState.STALE, message, received)
            return
        self._book_resyncs[sub] = failures
        logger.warning("%s; resubscribing %s", reason, sub.describe())
        self._send_request("unsubscribe", [sub])
        self._send_request("subscribe", [sub], resync=True)
        self._signals.append(Resyncing(sub, reason))
        self._status_members(sub, StreamState.RESYNCING, reason, received)

    def book(self, sub: Subscription) -> KrakenBook | None:
        """The verified book a book subscription reads (None while absent, resyncing or moving to
        another depth): its symbol's book on the wire, at least `sub.depth` deep — cut it to that."""
        if sub not in self._subs or sub.channel is not Channel.BOOK:
            return None
        lead = self._routes.get(route_key(sub))
        if lead is None or lead in self._book_resyncs or lead in self._stale_books:
            return None
        return self._books.get(lead)
