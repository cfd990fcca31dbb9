"""Trading requests on the authenticated socket: `add_order`, `amend_order`, `cancel_order`,
`batch_add`, `batch_cancel`, `cancel_all_orders_after`, each answered by Kraken with an ack carrying
the request's `req_id`.

* A request goes out with the session's WebSocket token, the one its private subscriptions carry:
  no token is fetched for an order (Kraken binds a token to the connection once accepted there).
* The answer is matched by `req_id` only: trading acks carry no channel or symbol to match by, and
  `send_trading` always sends a `req_id`. Each answer is handed to `trading_listener` as it is
  read (`TradingAnswer`), so whoever waits for it learns at once.
* A request still unanswered when the connection ends will never be answered (Kraken answers on
  the socket the request came by): it is handed over then as lost, so its waiter need not sit out
  a timeout to learn the order's fate is unknown. How long to wait for an answer on a live socket
  is the waiter's choice (the connector's `order_timeout`), not the session's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from brokerbridge.venues.kraken.messages import TRADING_METHOD, AnyTradingParams, MethodAck
from brokerbridge.venues.kraken.session.requests import Requests

# Amounts as JSON numbers with the Decimal's digits (Kraken refuses strings for them).
_encode = msgspec.json.Encoder(decimal_format="number").encode


@dataclass(frozen=True, slots=True)
class TradingAnswer:
    """Kraken's answer to a trading request, or why none will come (`lost`)."""

    req_id: int
    method: str
    ack: MethodAck | None = None
    lost: str | None = None  # the connection ended before the answer came


class Trading(Requests):
    """Trading requests out, their acks back by `req_id`."""

    trading_listener: Callable[[TradingAnswer], None] | None = None

    def send_trading(self, params: AnyTradingParams, now: float) -> int:
        """Queue a trading request carrying the current token; returns its `req_id` (the answer
        comes to `trading_listener` with it). Raises ValueError when not connected: a frame queued
        now would go to no socket."""
        self._now = now
        if not self._connected:
            raise ValueError("the private connection is not open")
        method = TRADING_METHOD[type(params)]
        req_id = self._next_req_id()
        signed = msgspec.structs.replace(params, token=self._token or "")
        self._trading_pending[req_id] = method
        self._outgoing.append(_encode({"method": method, "params": signed, "req_id": req_id}).decode())
        return req_id

    @property
    def trading_pending(self) -> int:
        """Trading requests sent on this connection and not answered yet."""
        return len(self._trading_pending)

    def _on_trading_ack(self, ack: MethodAck) -> bool:
        """Hand over the answer to a trading request we sent; False if it is not one."""
        if ack.req_id is None:
            return False
        method = self._trading_pending.pop(ack.req_id, None)
        if method is None:
            return False
        self._tell(TradingAnswer(req_id=ack.req_id, method=method, ack=ack))
        return True

    def _trading_lost(self, reason: str) -> None:
        pending, self._trading_pending = self._trading_pending, {}
        for req_id, method in pending.items():
            self._tell(TradingAnswer(req_id=req_id, method=method, lost=reason))

    def _tell(self, answer: TradingAnswer) -> None:
        if self.trading_listener is not None:
            self.trading_listener(answer)

    def connection_made(self, now: float) -> None:
        self._trading_lost("the connection was replaced before Kraken answered")
        super().connection_made(now)

    def connection_lost(self, now: float) -> None:
        self._trading_lost("the connection was lost before Kraken answered")
        super().connection_lost(now)
