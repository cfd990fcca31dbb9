"""The requests a Kraken session sends and how their answers find them.

Every request carries a `req_id` and is remembered until answered; acks come one per symbol and are
matched back by (req_id, symbol), or by content when Kraken omits the req_id. Data on a channel
proves its subscription too (Kraken only sends it after accepting), but for a resync only the fresh
snapshot does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import msgspec

from brokerbridge.core.errors import SessionInvalid, VenueError
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.core.signals import Subscribed, TokenRejected
from brokerbridge.venues.kraken.messages import MethodAck
from brokerbridge.venues.kraken.session.state import WIRE_CHANNEL, KrakenSessionState, Request

_MAX_REQ_ID = 2**31 - 1  # Kraken told ccxt req_id must fit int32
_encode = msgspec.json.Encoder().encode


class Requests(KrakenSessionState):
    """Request frames out (subscribe, unsubscribe, ping) and their matching answers back."""

    def _next_req_id(self) -> int:
        req_id = next(self._req_ids)
        if req_id > _MAX_REQ_ID:
            self._req_ids = itertools.count(2)
            req_id = 1
        return req_id

    def _subscribe(self, subs: Iterable[Subscription], *, resync: bool = False) -> None:
        """Queue subscribe frames, one per (channel, depth, interval) group of symbols."""
        groups: dict[tuple[Channel, int, int], list[Subscription]] = {}
        for sub in subs:
            if sub.channel.private and self._token is None:
                self._token_refused.add(sub)
                self._reject_token(SessionInvalid(f"{self.venue}: no WebSocket token yet", venue=self.venue))
                continue
            groups.setdefault((sub.channel, sub.depth, sub.interval), []).append(sub)
        for group in groups.values():
            self._send_request("subscribe", group, resync=resync)

    def _send_request(self, method: str, subs: list[Subscription], *, resync: bool = False) -> int:
        """Queue a request frame; its req_id."""
        req_id = self._next_req_id()
        frame: dict[str, object] = {"method": method}
        if subs:
            frame["params"] = self._params(subs, subscribe=method == "subscribe")
        if resync:
            self._snapshot_due.update((sub, self._now + self.ack_timeout) for sub in subs)
        frame["req_id"] = req_id
        token = self._token if subs and subs[0].channel.private else None
        self._pending[req_id] = Request(method, {sub.symbol: sub for sub in subs}, resync, self._now, token)
        if method == "subscribe":
            self._awaiting_ack.update(subs)
        self._outgoing.append(_encode(frame).decode())
        return req_id

    def _params(self, subs: list[Subscription], *, subscribe: bool) -> dict[str, object]:
        first = subs[0]
        params: dict[str, object] = {"channel": WIRE_CHANNEL[first.channel]}
        symbols = [sub.symbol for sub in subs if sub.symbol]
        if symbols:
            params["symbol"] = symbols
        if first.channel is Channel.BOOK:
            params["depth"] = first.depth  # unsubscribe must echo it too
        elif first.channel is Channel.CANDLES:
            params["interval"] = first.interval
        if first.channel.private:
            params["token"] = self._token or ""
            if subscribe and first.channel is Channel.EXECUTIONS:
                # Open orders and recent fills in the snapshot: nothing is lost across reconnects.
                params["snap_orders"] = True
                params["snap_trades"] = True
            elif subscribe:
                params["snapshot"] = True
        elif subscribe and first.channel is Channel.BOOK:
            params["snapshot"] = True
        return params

    def _reject_token(self, error: VenueError) -> None:
        if not self._token_reported:  # once per token: the driver fetches a new one
            self._token_reported = True
            self._signals.append(TokenRejected(error))

    # ------------------------------------------------------------ answers

    def _route(
        self, channel: str, symbol: str | None, interval: int = 0, *, snapshot: bool = False
    ) -> Subscription | None:
        """The subscription a data frame of wire `channel` belongs to, if any."""
        sub = self._routes.get((channel, symbol, interval))
        if sub is not None and self._awaiting_ack and sub in self._awaiting_ack:
            self._confirm_by_data(sub, snapshot)
        return sub

    def _confirm_by_data(self, sub: Subscription, snapshot: bool) -> None:
        """Data for a subscription whose ack never came (lost in a stalled or lossy link) proves it
        is live: Kraken only sends a channel's data after accepting the subscription.

        Not so for a resync: updates of the old subscription are still in flight when we ask again,
        so only the fresh snapshot proves the new one (an update taken as proof would swallow the
        pending request, and with it a refusal: the stream would wait for a snapshot forever)."""
        for req_id, request in list(self._pending.items()):
            if request.method == "subscribe" and request.subs.get(sub.symbol) == sub:
                if request.resync and not snapshot:
                    return
                self._awaiting_ack.discard(sub)
                del request.subs[sub.symbol]
                if not request.subs:
                    del self._pending[req_id]
                if not request.resync:
                    self._signals.extend(Subscribed(member) for member in self._members(sub))
                return
        self._awaiting_ack.discard(sub)

    def _match_without_req_id(self, ack: MethodAck) -> tuple[int | None, Request | None]:
        """Acks without req_id (Kraken omits it when the request had none): match by content."""
        channel, symbol = ack.ack_channel, ack.ack_symbol
        for req_id, request in self._pending.items():
            if ack.method is not None and request.method != ack.method:
                continue
            for sub in request.subs.values():
                if (channel is None or WIRE_CHANNEL[sub.channel] == channel) and (
                    symbol is None or sub.symbol == symbol
                ):
                    return req_id, request
        return None, None
