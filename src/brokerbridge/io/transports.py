"""How the connectors reach a venue: the HTTP client of their REST clients and the WebSocket opener
of their supervisors, given to a `Bridge` as one value.

`Transports()` is the network: httpx and websockets over TCP (what production runs). An
`io.inprocess.InProcessNetwork` gives transports that reach ASGI servers — the simulators — in
memory, for tests on a `FakeClock` where nothing must depend on how fast bytes cross a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import NotSent
from brokerbridge.io.http import HttpClient, HttpResponse
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


# Why a node refuses to reach a venue now (None: it may): see `guarded`.
Barred = Callable[[], str | None]


def never_barred() -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Transports:
    http: HttpClientFactory = HttpClient
    ws_connect: WsConnect = connect
    # Asked by the order service right before it hands an order to a connector (`guarded` sets it):
    # a refusal then is certain to have sent nothing, on whichever path the connector would take.
    barred: Barred = never_barred


def guarded(transports: Transports, barred: Barred) -> Transports:
    """`transports` that send nothing while `barred()` names a reason (a cluster holder whose lease
    lapsed: docs/cluster.md): every HTTP request, WebSocket connect and frame asks first, and a
    refusal is a `NotSent` (a `TransportError`) saying why — to the connector's supervisor the
    venue is unreachable, and nothing reaches the venue. The check comes before the wrapped call,
    so a refused request wrote nothing: an order refused so never reached the venue (its client
    order id is free again: services/orders.py). A frame refused on a WebSocket is the connection's
    end for its supervisor (a request whose frame went before it may have reached the venue), so
    the order service also asks `barred` itself before an order goes to the connector."""

    def http(*, timeout: float, deadline: float = 30.0, clock: Clock | None = None) -> HttpClient:
        return _GuardedHttp(transports.http(timeout=timeout, deadline=deadline, clock=clock), barred)

    @asynccontextmanager
    async def ws_connect(
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        redact: Callable[[str], str] | None = None,
        ping_interval: float = 20.0,
    ) -> AsyncIterator[Connection]:
        _refuse_if(barred, f"WebSocket connect to {_strip_query(url)}")
        async with transports.ws_connect(
            url, headers=headers, redact=redact, ping_interval=ping_interval
        ) as connection:
            yield _GuardedConnection(connection, barred)

    return Transports(http=http, ws_connect=ws_connect, barred=barred)


def _refuse_if(barred: Barred, what: str) -> None:
    reason = barred()
    if reason is not None:
        raise NotSent(
            f"{what} not sent: {reason}",
            remedy="this node does not hold the venue session now: another node of the cluster does, "
            "or will once it takes the lease",
        )


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


class _GuardedHttp(HttpClient):
    """An `HttpClient` that asks `barred` before every request (the wrapped client does the rest)."""

    def __init__(self, inner: HttpClient, barred: Barred) -> None:  # no super(): `inner` has the pool
        self._inner = inner
        self._barred = barred

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
        repeatable: bool | None = None,
    ) -> HttpResponse:
        _refuse_if(self._barred, f"{method} {_strip_query(url)}")
        return await self._inner.request(method, url, content=content, headers=headers, repeatable=repeatable)

    async def aclose(self) -> None:
        await self._inner.aclose()


class _GuardedConnection:
    def __init__(self, inner: Connection, barred: Barred) -> None:
        self._inner = inner
        self._barred = barred

    async def recv_text(self) -> str:
        return await self._inner.recv_text()

    async def send_text(self, text: str) -> None:
        _refuse_if(self._barred, "WebSocket frame")
        await self._inner.send_text(text)
