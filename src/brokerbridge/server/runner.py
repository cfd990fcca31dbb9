"""`BridgeServer`: the app under uvicorn in the caller's event loop.

    async with BridgeServer(bridge, host="127.0.0.1", port=0) as server:
        server.http_url, server.ws_url        # the bound address (port 0: the OS picks)
        server.login_url()                    # a one-time sign-in link for a browser
        await server.wait_closed()            # until shutdown() (e.g. from a signal handler)

Signals are the caller's business (uvicorn's own handlers are disabled): `shutdown(reason)`
first sends every WebSocket client a close frame with `reason`, then stops uvicorn. While it runs,
uvicorn's loggers mask credentials (`?code=`, `?token=`, `?key=`, auth headers, cookies, keys).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.uvicorn_server import OwnedServer
from brokerbridge.server.app import ServerSettings, ServerState, create_app
from brokerbridge.server.auth import is_loopback
from brokerbridge.server.log_redaction import UVICORN_LOGGERS, RedactCredentials

SHUTDOWN_REASON = "server shutting down"


class BridgeServer:
    def __init__(
        self,
        bridge: Bridge,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        settings: ServerSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`clock`: what logins, login codes and tokens expire on (default: the Bridge's)."""
        self.app = create_app(bridge, settings, loopback=is_loopback(host), clock=clock, host=host)
        self._redaction = RedactCredentials([key.key for key in self.state.settings.config.keys])
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_config=None,  # the CLI configures logging; the library never does
            ws=self.state.gate.protocol_factory(),  # type: ignore[arg-type]  # a factory, as uvicorn calls it
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = OwnedServer(config)
        self._task: asyncio.Task[Any] | None = None
        self._heartbeats: asyncio.Task[None] | None = None
        self._host = host
        self._port = port

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

    def login_url(self) -> str:
        """A fresh one-time sign-in link (market + account, valid 10 minutes). Print it, never log it.
        Makes the login signing key now, so a state_dir problem is a ConfigError here."""
        logins = self.state.logins
        logins.ensure_signing_key()
        return f"{self.http_url}/login?code={logins.mint_code()}"

    async def __aenter__(self) -> BridgeServer:
        self._mask_credentials(True)
        try:
            sock = _listening_socket(self._host, self._port)
            self._task = asyncio.get_running_loop().create_task(
                self._server.serve(sockets=[sock]), name="uvicorn"
            )
            listening = asyncio.ensure_future(self._server.listening.wait())
            await asyncio.wait({self._task, listening}, return_when=asyncio.FIRST_COMPLETED)
            if not listening.done():
                listening.cancel()
                await self._task  # raises why it could not start
                raise RuntimeError("server stopped during startup")  # e.g. port in use (uvicorn logs it)
            state, ws = self.state, self.state.settings.ws
            self._heartbeats = asyncio.get_running_loop().create_task(
                state.clients.run_heartbeats(
                    ws.heartbeat_interval,
                    ws.client_timeout,
                    state.bridge.clock,
                    state.codec,
                    state.logins.withdrawn,
                ),
                name="ws-heartbeats",
            )
        except BaseException:
            self._mask_credentials(False)
            raise
        return self

    def _mask_credentials(self, on: bool) -> None:
        for name in UVICORN_LOGGERS:
            uvicorn_logger = logging.getLogger(name)
            if on:
                uvicorn_logger.addFilter(self._redaction)
            else:
                uvicorn_logger.removeFilter(self._redaction)

    async def shutdown(self, reason: str = SHUTDOWN_REASON) -> None:
        # Stop listening first: a client told "shutting down" reconnects at once, and a connection
        # accepted after close_all would hold its streams until uvicorn's own shutdown.
        for server in getattr(self._server, "servers", []):
            server.close()
        await self.state.clients.close_all(reason)
        self._server.exit()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            if self._heartbeats is not None:
                self._heartbeats.cancel()
            if self._task is None:
                return
            if not self._task.done():
                await self.shutdown()
            await self._task
            await self.state.orders.aclose()
        finally:
            self._mask_credentials(False)


# Linux grows a loopback socket's send buffer to megabytes: minutes of market data would sit in the
# kernel below our conflation, where a slow client can never skip it. Accepted sockets inherit this.
SEND_BUFFER_BYTES = 256 * 1024


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are
    # TCP, and accepted sockets inherit the listener's protocol number. With Nagle on, a small write
    # behind one not yet acknowledged waited for the client's delayed ACK: 20–40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            remedy="choose another --port (0 picks a free one) or stop the process using it",
        ) from None
    return sock
