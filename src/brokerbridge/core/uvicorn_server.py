"""`OwnedServer`: uvicorn run inside an owner's event loop (the bridge's server, each simulator).

The owner decides when to stop — uvicorn's signal handlers are off — and stops it at once with
`exit()`. Stock uvicorn polls `should_exit` every 0.1 s and, at shutdown, waits a fixed 0.1 s for
connections to see the shutdown even when there are none: every test stack starts and stops three
servers, so those waits were most of a stack's teardown.

It lives in `core` because the simulators (which may not use our client's layers) and the server
both run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn


class OwnedServer(uvicorn.Server):
    """uvicorn that says when it listens (`listening`) and stops when its owner calls `exit()`."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()

    async def main_loop(self) -> None:
        # uvicorn's tick refreshes the Date header (when its counter is a multiple of 10) and
        # answers should_exit: once a second is enough for the first, `exit()` wakes the second.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.server_state.connections or self.server_state.tasks:
            await super().shutdown(sockets)  # connections to drain: uvicorn's own order and waits
            return
        # Nothing to drain: stop listening and return, without uvicorn's fixed 0.1 s wait.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()
