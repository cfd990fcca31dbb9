"""Kraken's WebSocket token: private subscribes carry it, and a refusal of it is recovered.

A private subscribe refused for its token (`ESession:Invalid session`) is remembered; the driver gets
`TokenRejected` (once per token), fetches a new one and calls `resubscribe_private`, which asks again
for exactly what was refused (a resync unsubscribes first: the refused unsubscribe may have left the
old subscription in place). A refusal of a token already replaced is retried with the current one at
once.
"""

from __future__ import annotations

from brokerbridge.core.errors import VenueError
from brokerbridge.core.events import Subscription
from brokerbridge.venues.kraken.session.requests import Requests
from brokerbridge.venues.kraken.session.state import Request


class Tokens(Requests):
    """The token private frames carry, and subscriptions refused for it."""

    def set_token(self, token: str) -> None:
        """The WebSocket token used in private subscribe frames (from REST GetWebSocketsToken)."""
        self._token = token
        self._token_reported = False

    @property
    def token(self) -> str | None:
        """The token private frames carry now (the one a `TokenRejected` was about)."""
        return self._token

    def resubscribe_private(self, now: float) -> None:
        """Subscribe again, with the current token, to what Kraken refused for the last one (after
        `TokenRejected` and `set_token`). Streams still flowing are left alone."""
        self._now = now
        if not self._connected:
            return
        refused = [sub for sub in self._subs if sub in self._token_refused]
        self._token_refused.clear()
        self._resubscribe(refused)

    def _resubscribe(self, subs: list[Subscription]) -> None:
        """A stream that was resyncing starts over from a fresh snapshot: unsubscribe first, as the
        refused unsubscribe may have left the old subscription in place ("Already subscribed")."""
        for sub in subs:
            if sub in self._sequence_resyncs:
                self._send_request("unsubscribe", [sub])
                self._send_request("subscribe", [sub], resync=True)
        self._subscribe([sub for sub in subs if sub not in self._sequence_resyncs])

    def _token_refused_for(self, request: Request, targets: list[Subscription], error: VenueError) -> None:
        """Kraken refused the token `request` carried. If a newer token has arrived since, ask again
        with that one at once; otherwise keep the subscriptions for `resubscribe_private` and ask
        the driver for a new token (once per token)."""
        for sub in targets:
            self._awaiting_ack.discard(sub)
        wanted = [sub for sub in targets if sub in self._subs]
        if request.token is not None and self._token not in (None, request.token):
            self._resubscribe(wanted)
            return
        self._token_refused.update(wanted)
        self._reject_token(error)
