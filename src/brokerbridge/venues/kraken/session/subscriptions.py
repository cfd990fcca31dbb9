"""What a Kraken session asks for: subscriptions, one upstream book per symbol, and the acks.

* Subscriptions are remembered from their original arguments and replayed on every new connection,
  batched into one frame per (channel, depth, interval). Every request carries a `req_id`; acks come
  one per symbol and are matched back by (req_id, symbol) (kraken.md §3.3). A refusal for good
  (unknown pair, bad argument) forgets the subscription; a passing one (rate limit, venue busy) is
  asked again after `RETRY_REFUSED_FIRST_S`, doubling up to `RETRY_REFUSED_MAX_S`.
* One book subscription per symbol on the wire, at the deepest depth any consumer wants: Kraken's
  book frames do not say their depth, so two depths of one symbol on one connection could not be
  told apart. Each shallower depth is cut from that book (`books`). A deeper consumer moves the wire
  to its depth (unsubscribe, then subscribe); when the deepest one leaves, the wire moves down to
  the deepest left, so nobody pays for levels no one reads. While the wire moves, the symbol's
  frames belong to the old depth and are dropped, until Kraken answers either request of the move
  (or, if both answers were lost, the snapshot after the old subscription's own); then the new
  snapshot reaches every consumer, each at its depth. A consumer's book pauses for one round trip
  and starts again from a snapshot — never a book of another depth. Everything the venue says about
  the book (acks, refusals, resyncs, STALE) concerns every depth of the symbol.
"""

from __future__ import annotations

import logging
import math

from brokerbridge.core.errors import SessionInvalid
from brokerbridge.core.events import Channel, StreamState, Subscription
from brokerbridge.core.signals import Subscribed, SubscribeFailed
from brokerbridge.venues.kraken.errors import error_from_kraken
from brokerbridge.venues.kraken.messages import MethodAck
from brokerbridge.venues.kraken.session.books import Books
from brokerbridge.venues.kraken.session.state import (
    BOOK_DEPTHS,
    OHLC_INTERVALS,
    RETRY_REFUSED_FIRST_S,
    RETRY_REFUSED_MAX_S,
    DepthMove,
    route_key,
)
from brokerbridge.venues.kraken.session.tokens import Tokens

logger = logging.getLogger(__name__)


def _deepest_first(sub: Subscription) -> int:
    return -sub.depth


class Subscriptions(Tokens, Books):
    """`add`/`remove`, the symbols' books on the wire, and the answers to subscribe requests."""

    def add(self, sub: Subscription, now: float) -> None:
        """Remember `sub`; if connected, queue its subscribe frame. Adding twice is a no-op.

        A book depth of a symbol that has one already shares its book (see the module docstring).
        Raises ValueError for a subscription this endpoint cannot serve (our mistake, not Kraken's):
        wrong endpoint, bad depth/interval, missing symbol.
        """
        self._now = now
        if sub in self._subs:
            return
        self.validate(sub)
        self._subs[sub] = None
        if sub.channel is Channel.BOOK:
            self._add_book(sub)
            return
        self._routes[route_key(sub)] = sub
        if self._connected:
            self._subscribe([sub])

    def remove(self, sub: Subscription, now: float) -> None:
        """Forget `sub`; if connected, queue its unsubscribe frame (echoing depth/interval)."""
        self._now = now
        if sub not in self._subs:
            return
        del self._subs[sub]
        if sub.channel is Channel.BOOK:
            self._remove_book(sub)
            return
        del self._routes[route_key(sub)]
        self._forget_stream_state(sub)
        if self._connected:
            self._send_request("unsubscribe", [sub])

    def _add_book(self, sub: Subscription) -> None:
        symbol = sub.symbol
        assert symbol is not None  # validated
        members = self._book_members.setdefault(symbol, [])
        lead = members[0] if members else None
        members.append(sub)
        members.sort(key=_deepest_first)  # stable: of equal depths the first stays on the wire
        self._set_cuts(symbol)
        if lead is None:
            self._routes[route_key(sub)] = sub
            if self._connected:
                self._subscribe([sub])
        elif members[0] is lead:
            if self._connected:
                self._join_book(lead, sub)
        else:
            self._routes[route_key(sub)] = sub
            if self._connected:
                self._move_wire(lead, sub)
            else:
                self._forget_stream_state(lead)

    def _remove_book(self, sub: Subscription) -> None:
        symbol = sub.symbol
        assert symbol is not None
        members = self._book_members[symbol]
        members.remove(sub)
        self._set_cuts(symbol)
        key = route_key(sub)
        if self._routes.get(key) != sub:
            return  # a shallower depth: nothing of its own on the wire
        if members:
            # The deepest left takes the wire: nobody pays for levels no one reads.
            self._routes[key] = members[0]
            if self._connected:
                self._move_wire(sub, members[0])
            else:
                self._forget_stream_state(sub)
            return
        del self._book_members[symbol]
        del self._routes[key]
        self._moving.pop(symbol, None)
        self._forget_stream_state(sub)
        if self._connected:
            self._send_request("unsubscribe", [sub])

    def _set_cuts(self, symbol: str) -> None:
        members = self._book_members.get(symbol)
        wire_depth = members[0].depth if members else 0
        cuts = sorted({sub.depth for sub in members or () if sub.depth < wire_depth}, reverse=True)
        if cuts:
            self._cuts[symbol] = tuple(cuts)
        else:
            self._cuts.pop(symbol, None)

    def _join_book(self, lead: Subscription, sub: Subscription) -> None:
        """`sub`, no deeper than `lead`, reads the book `lead` holds on the wire (connected)."""
        symbol = sub.symbol
        assert symbol is not None
        now = self._wall_clock()
        if lead in self._book_resyncs:
            self._status(sub, StreamState.RESYNCING, f"the {symbol} book is resyncing", now)
            return  # the fresh snapshot serves `sub` too
        if lead in self._stale_books:
            reason = f"the {symbol} book is paused after failed snapshots; retrying"
            self._status(sub, StreamState.STALE, reason, now)
            return
        if lead in self._retry_refused and lead not in self._awaiting_ack:
            reason = f"the {symbol} book was refused for now; asking again shortly"
            self._status(sub, StreamState.STALE, reason, now)
            return
        if lead in self._awaiting_ack or symbol in self._moving:
            return  # the lead's answer and snapshot serve `sub` too
        self._signals.append(Subscribed(sub))
        book = self._books.get(lead)
        if book is not None:  # else its snapshot is on the way, and serves `sub` too
            self._events.append(self._cut_snapshot(book, symbol, sub.depth, book.checksum(), now))

    def _move_wire(self, old: Subscription, new: Subscription) -> None:
        """Move the symbol's book on this connection from `old`'s depth to `new`'s (module docstring)."""
        symbol = new.symbol
        assert symbol is not None
        retry = self._retry_refused.get(old)
        # Subscribed or asked for on this connection (a refused one waiting to be asked again, or a
        # stale one, was unsubscribed).
        on_wire = old not in self._stale_books and (retry is None or retry[0] == math.inf)
        move = self._moving.pop(symbol, None)
        self._awaiting_ack.discard(old)
        if not on_wire:
            self._forget_stream_state(old)
            self._send_request("subscribe", [new])
            return
        old_snapshots = (move.old_snapshots if move else 0) + (old not in self._books)
        self._forget_stream_state(old)
        unsubscribe = self._send_request("unsubscribe", [old])
        subscribe = self._send_request("subscribe", [new])
        self._moving[symbol] = DepthMove(old_snapshots, (unsubscribe, subscribe))

    def validate(self, sub: Subscription) -> None:
        """Raise ValueError if this endpoint cannot serve `sub` (see `add`)."""
        if sub.channel.private != self.private:
            where = "private (ws-auth)" if self.private else "public (ws)"
            raise ValueError(f"{sub.describe()} cannot be served by the {where} endpoint session")
        needs_symbol = sub.channel not in (Channel.INSTRUMENTS, Channel.BALANCES, Channel.EXECUTIONS)
        if needs_symbol and not sub.symbol:
            raise ValueError(f"{sub.describe()} needs a symbol (e.g. BTC/USD)")
        if not needs_symbol and sub.symbol:
            raise ValueError(f"{sub.describe()} takes no symbol")
        if sub.channel is Channel.BOOK and sub.depth not in BOOK_DEPTHS:
            raise ValueError(f"Kraken book depth must be one of {sorted(BOOK_DEPTHS)}, got {sub.depth}")
        if sub.channel is Channel.CANDLES and sub.interval not in OHLC_INTERVALS:
            raise ValueError(
                f"Kraken ohlc interval must be one of {sorted(OHLC_INTERVALS)}, got {sub.interval}"
            )
        other = self._routes.get(route_key(sub))
        if other is not None and other != sub and sub.channel is not Channel.BOOK:
            # Our caller's mistake: a depth or interval the channel does not use makes another
            # Subscription of the same stream (`Bridge.subscription` leaves them at their defaults).
            unused = "depth" if sub.channel is Channel.CANDLES else "depth or interval"
            raise ValueError(
                f"{sub.describe()} is open already as {other!r}: a {sub.channel.value} stream takes no "
                f"{unused}; leave it at its default"
            )

    # ------------------------------------------------------------ acks

    def _on_ack(self, ack: MethodAck, received: float) -> None:
        if ack.method not in (None, "subscribe", "unsubscribe"):
            return  # trading acks (add_order, …) belong to whoever sent the order
        request = self._pending.get(ack.req_id) if ack.req_id is not None else None
        req_id = ack.req_id
        if request is None:
            req_id, request = self._match_without_req_id(ack)
        if request is None or req_id is None:
            if not ack.ok:
                logger.warning("kraken refused a request we did not send: %s", ack.error_text)
            return
        symbol = ack.ack_symbol
        if symbol in request.subs:
            targets = [request.subs.pop(symbol)]
        elif symbol is None or len(request.subs) == 1:
            # Failure acks often omit the symbol: they concern the whole request.
            targets = list(request.subs.values())
            request.subs.clear()
        else:
            targets = []
        if not request.subs:
            del self._pending[req_id]
        if self._moving:
            # Any answer to a move's requests comes after the last frame of the old depth.
            for symbol, move in list(self._moving.items()):
                if req_id in move.req_ids:
                    del self._moving[symbol]
        if request.method != "subscribe":
            if not ack.ok:
                logger.debug("kraken %s failed: %s", request.method, ack.error_text)
            return
        error = None if ack.ok else error_from_kraken(ack.error_text or "unknown error", venue=self.venue)
        if error is not None and error.code == "Already subscribed":
            error = None
        if isinstance(error, SessionInvalid):
            self._token_refused_for(request, targets, error)
            return
        for sub in targets:
            self._awaiting_ack.discard(sub)
            if self._routes.get(route_key(sub)) != sub:
                continue  # removed while the request was in flight, or its book moved depth since
            members = self._members(sub)
            if error is not None:
                if not error.retryable:
                    # Refused for good (unknown pair, bad argument, no permission): replaying it
                    # on every reconnect would only be refused again, so forget it here.
                    self._forget_refused(sub)
                else:
                    # A passing refusal on a live connection: ask again after a growing pause
                    # rather than wait for the next reconnect.
                    _, attempts = self._retry_refused.get(sub, (0.0, 0))
                    delay = min(RETRY_REFUSED_MAX_S, RETRY_REFUSED_FIRST_S * 2**attempts)
                    self._retry_refused[sub] = (self._now + delay, attempts + 1)
                self._signals.extend(SubscribeFailed(member, error) for member in members)
            else:
                self._retry_refused.pop(sub, None)
                if not request.resync:
                    self._signals.extend(Subscribed(member) for member in members)

    def _forget_refused(self, sub: Subscription) -> None:
        """`sub` (on the wire) is refused for good: forget it, and for a book every depth of it."""
        for member in self._members(sub):
            self._subs.pop(member, None)
        if sub.channel is Channel.BOOK and sub.symbol is not None:
            self._book_members.pop(sub.symbol, None)
            self._cuts.pop(sub.symbol, None)
            self._moving.pop(sub.symbol, None)
        del self._routes[route_key(sub)]
        self._forget_stream_state(sub)
