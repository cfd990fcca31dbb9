"""WebSocket connections: `websockets` underneath, our errors on top (mapped once, here)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from brokerbridge.core.errors import SessionInvalid, TransportError


class Connection(Protocol):
    async def recv_text(self) -> str: ...

    async def send_text(self, text: str) -> None: ...


class WsConnection:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def recv_text(self) -> str:
        try:
            message = await self._ws.recv()
        except websockets.ConnectionClosed as exc:
            raise closed_error(_close_frame(exc), sending=False) from exc
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except websockets.ConnectionClosed as exc:
            raise closed_error(_close_frame(exc), sending=True) from exc


# The mapping of a closed or refused WebSocket to our errors, shared with the in-process
# connections of io/inprocess.py so that both look the same to a connector.
def closed_error(frame: tuple[int, str] | None, *, sending: bool) -> TransportError:
    """The connection is closed: `frame` is the close frame's (code, reason), None if none came."""
    if frame is None:
        how = "no close frame: connection dropped"
    else:
        code, reason = frame
        how = f"code {code}{': ' + reason if reason else ''}"
    return TransportError(f"WebSocket closed {'while sending' if sending else 'by peer'} ({how})")


def refused_error(url: str, status: int) -> SessionInvalid | TransportError:
    """The server answered the upgrade with HTTP `status` instead of 101."""
    if status in (401, 403):
        # The credential on the upgrade (a token header) was refused: a new one may fix it.
        return SessionInvalid(
            f"{url} refused the WebSocket upgrade with HTTP {status}",
            code=f"HTTP {status}",
            remedy="the access token was refused; a new login is attempted before reconnecting",
        )
    return TransportError(f"{url} refused the WebSocket upgrade with HTTP {status}")


def unreachable_error(url: str, exc: OSError | TimeoutError) -> TransportError:
    return TransportError(f"cannot connect to {url}: {exc or type(exc).__name__}")


def _close_frame(exc: websockets.ConnectionClosed) -> tuple[int, str] | None:
    frame = exc.rcvd or exc.sent
    return None if frame is None else (frame.code, frame.reason)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """What `websockets` logs at DEBUG includes whole frames — our private subscribe frames carry
    the WebSocket token. This adapter formats each record and masks the secrets before logging."""

    def __init__(self, logger: logging.Logger, redact: Callable[[str], str]) -> None:
        super().__init__(logger, {})
        self._redact = redact

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            kwargs.pop("extra", None)
            self.logger.log(level, "%s", self._redact(text), **kwargs)


@asynccontextmanager
async def connect(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    open_timeout: float = 10.0,
    redact: Callable[[str], str] | None = None,
    ping_interval: float = 20.0,
) -> AsyncIterator[WsConnection]:
    """Open a WebSocket; any failure to open is a `TransportError` naming the URL and cause.

    `redact` masks secrets in the frames `websockets` logs at DEBUG."""
    base_logger = logging.getLogger("websockets.client")
    try:
        ws = await ws_connect(
            url,
            logger=RedactingLogger(base_logger, redact) if redact is not None else base_logger,
            additional_headers=dict(headers or {}),
            open_timeout=open_timeout,
            # Protocol pings catch half-open TCP (and keep Primary's socket alive: it closes
            # sockets that send nothing); sessions add their own application-level checks.
            ping_interval=ping_interval,
            ping_timeout=20,
            # Giving up on a dead socket must not wait 10 s (the default) for a closing handshake
            # that will never come: reconnecting and REST polling are waiting.
            close_timeout=1,
            max_size=16 * 2**20,
            user_agent_header="brokerbridge",
        )
    except (OSError, TimeoutError) as exc:
        raise unreachable_error(url, exc) from exc
    except websockets.InvalidStatus as exc:
        raise refused_error(url, exc.response.status_code) from exc
    except (websockets.InvalidURI, websockets.InvalidHandshake) as exc:
        raise TransportError(f"WebSocket handshake with {url} failed: {exc}") from exc
    try:
        yield WsConnection(ws)
    finally:
        await ws.close()
