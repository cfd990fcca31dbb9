"""How the connectors reach a venue: the HTTP client of their REST clients and the WebSocket opener
of their supervisors, given to a `Bridge` as one value.

`Transports()` is the network: httpx and websockets over TCP (what production runs). An
`io.inprocess.InProcessNetwork` gives transports that reach ASGI servers — the simulators — in
memory, for tests on a `FakeClock` where nothing must depend on how fast bytes cross a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from brokerbridge.core.clock import Clock
from brokerbridge.io.http import HttpClient
from brokerbridge.io.ws import Connection, connect


class HttpClientFactory(Protocol):
    """`timeout` bounds each read, `deadline` a whole call, on `clock` (see io/http.py)."""

    def __call__(
        self, *, timeout: float, deadline: float = ..., clock: Clock | None = None
    ) -> HttpClient: ...


class WsConnect(Protocol):
    """Open a WebSocket to `url` (as `io.ws.connect` does): `headers` on the upgrade, `redact`
    masking secrets in whatever logs frames, a protocol ping every `ping_interval` seconds."""

    def __call__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        redact: Callable[[str], str] | None = None,
        ping_interval: float = 20.0,
    ) -> AbstractAsyncContextManager[Connection]: ...


@dataclass(frozen=True, slots=True)
class Transports:
    http: HttpClientFactory = HttpClient
    ws_connect: WsConnect = connect
