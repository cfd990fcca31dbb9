"""`BridgeServer`: the app under uvicorn in the caller's event loop.

    async with BridgeServer(bridge, host="127.0.0.1", port=0) as server:
        server.http_url, server.ws_url        # the bound address (port 0: the OS picks)
        await server.wait_closed()            # until shutdown() (e.g. from a signal handler)

Signals are the caller's business (uvicorn's own handlers are disabled): `shutdown(reason)`
first sends every WebSocket client a close frame with `reason`, then stops uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from brokerbridge.bridge import Bridge
from brokerbridge.server.app import ServerSettings, ServerState, create_app
from brokerbridge.server.auth import is_loopback

SHUTDOWN_REASON = "server shutting down"


class _Uvicorn(uvicorn.Server):
    """uvicorn that reports when it listens and leaves signal handling to its owner."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


class BridgeServer:
    def __init__(
        self,
        bridge: Bridge,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        settings: ServerSettings | None = None,
    ) -> None:
        self.app = create_app(bridge, settings, loopback=is_loopback(host))
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_config=None,  # the CLI configures logging; the library never does
            ws="websockets-sansio",
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _Uvicorn(config)
        self._task: asyncio.Task[Any] | None = None
        self._host = host

    @property
    def state(self) -> ServerState:
        state: ServerState = self.app.state.server
        return state

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        raise RuntimeError("server not listening")

    @property
    def http_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http://", "ws://", 1) + "/ws"

    async def __aenter__(self) -> BridgeServer:
        self._task = asyncio.get_running_loop().create_task(self._server.serve(), name="uvicorn")
        listening = asyncio.ensure_future(self._server.listening.wait())
        await asyncio.wait({self._task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            listening.cancel()
            await self._task  # raises why it could not start
            raise RuntimeError("server stopped during startup")  # e.g. port in use (uvicorn logs it)
        return self

    async def shutdown(self, reason: str = SHUTDOWN_REASON) -> None:
        await self.state.clients.close_all(reason)
        self._server.should_exit = True

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._task is None:
            return
        if not self._task.done():
            await self.shutdown()
        await self._task
