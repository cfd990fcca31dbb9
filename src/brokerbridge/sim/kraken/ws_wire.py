"""Kraken WebSocket v2 requests and answers as the simulator serves them: what each endpoint
accepts, the refusal texts, and the answer frames in Kraken's key order.

Public (`/v2`) and private (`/auth/v2`) endpoints accept different channels and methods; a request
for the other host's ones is refused with Kraken's captured text (`WRONG_HOST_*`). Answers carry
`time_in` (when the request arrived) and `time_out` (when it is answered) in RFC 3339.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from brokerbridge.core.clock import Clock
from brokerbridge.sim.kraken.numbers import rfc3339

Frame = dict[str, Any]

PUBLIC_CHANNELS = ("book", "ticker", "trade", "ohlc", "instrument")
PRIVATE_CHANNELS = ("balances", "executions", "level3")
TRADING_METHODS = (
    "add_order",
    "amend_order",
    "batch_add",
    "batch_cancel",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
    "edit_order",
)
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    "book": ("channel", "symbol", "depth", "snapshot"),
    "ticker": ("channel", "symbol", "event_trigger", "snapshot"),
    "trade": ("channel", "symbol", "snapshot"),
    "ohlc": ("channel", "symbol", "interval", "snapshot"),
    "instrument": ("channel", "snapshot", "include_tokenized_assets", "execution_venue"),
    "balances": ("channel", "token", "snapshot", "rebased", "users"),
    "executions": (
        "channel",
        "token",
        "snap_orders",
        "snap_trades",
        "snapshot",
        "snapshot_trades",
        "order_status",
        "ratecounter",
        "rebased",
        "users",
    ),
}
WRONG_HOST_PUBLIC = "Private data and trading are unavailable on this endpoint. Try ws-auth.kraken.com"
WRONG_HOST_PRIVATE = "Public market data subscriptions are unavailable on this endpoint. Try ws.kraken.com"
EXECUTIONS_WARNINGS = [
    "cancel_reason is deprecated, use reason",
    "stop_price is deprecated, use triggers.price",
    "trigger is deprecated use triggers.reference",
    "triggered_price is deprecated use triggers.last_price",
]
MAX_RATE_COUNT = 180

# Floats as Decimal: an order's `order_qty: 0.1` keeps its digits (0.1 as a float is not 0.1).
_decoder = json.JSONDecoder(parse_float=Decimal)


class Reject(Exception):
    """A request refused with Kraken's `error` text; `extra` fields (`symbol`) go into the answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def decode_request(text: str) -> Any:
    """A client frame as JSON (floats as Decimal); ValueError if it is not JSON."""
    return _decoder.decode(text)


def unsupported(name: str, msg_type: str) -> str:
    return f"Unsupported field: '{name}' for the given msg type: {msg_type}"


def status_frame(system: str, connection_id: int) -> Frame:
    # The 2026 capture's key order (ws_status_2026.json).
    return {
        "channel": "status",
        "type": "update",
        "data": [
            {
                "version": "2.0.10",
                "system": system,
                "api_version": "v2",
                "connection_id": connection_id,
            }
        ],
    }


class Replies:
    """Answers to one connection's requests, in Kraken's key order: each is stamped with `time_in`
    (when the request arrived) and `time_out` (now, on `clock`) and handed to `send`."""

    def __init__(self, clock: Clock, send: Callable[[Frame], None]) -> None:
        self._clock = clock
        self._send = send

    def _times(self, time_in: float) -> dict[str, str]:
        return {"time_in": rfc3339(time_in), "time_out": rfc3339(max(time_in, self._clock.time()))}

    def pong(self, req_id: Any, time_in: float) -> None:
        frame: Frame = {"method": "pong"}
        if req_id is not None:
            frame["req_id"] = req_id
        frame.update(self._times(time_in))
        self._send(frame)

    def ack(
        self, method: str, req_id: Any, result: dict[str, Any] | list[dict[str, Any]], time_in: float
    ) -> None:
        frame: Frame = {"method": method}
        if req_id is not None:
            frame["req_id"] = req_id
        frame["result"] = result
        frame["success"] = True
        frame.update(self._times(time_in))
        self._send(frame)

    def error(self, error: str, method: str | None, req_id: Any, time_in: float, **extra: Any) -> None:
        frame: Frame = {"error": error}
        if method is not None:
            frame["method"] = method
        if req_id is not None:
            frame["req_id"] = req_id
        frame["success"] = False
        frame.update(extra)  # `symbol` sorts between success and time_in
        frame.update(self._times(time_in))
        self._send(frame)

    def session_error(self, channel: str, method: str, req_id: Any, time_in: float) -> None:
        """A private subscribe with a token the token rule refuses (the captured shape)."""
        frame: Frame = {"channel": channel, "error": "ESession:Invalid session", "method": method}
        if req_id is not None:
            frame["req_id"] = req_id
        frame.update(status="error", success=False)
        frame.update(self._times(time_in))
        self._send(frame)
