"""A GET that meets a keep-alive connection the server closed just then is sent again at once; a POST
is not (it may have reached the venue). A raw loopback server plays the race deterministically: it
answers the first request on a connection and closes the connection when the second one arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from brokerbridge.core.errors import NotSent, TransportError
from brokerbridge.io.http import HttpClient
from brokerbridge.venues.primary.rest import new_order_request, segments_request, wire

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def closing_after_one_answer() -> AsyncIterator[tuple[str, list[str]]]:
    seen: list[str] = []  # the request lines received, in order

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head.split(b"\r\n", 1)[0].decode())
                if answered:  # the second request on this connection: closed unanswered
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                await writer.drain()
                answered += 1
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


async def test_a_get_on_a_connection_closed_under_it_is_sent_again_on_a_new_one() -> None:
    async with closing_after_one_answer() as (url, seen):
        client = HttpClient(timeout=5, deadline=10)
        try:
            assert (await client.request("GET", f"{url}/a")).body == b"ok"
            assert (await client.request("GET", f"{url}/b")).body == b"ok"  # retried on a new connection
        finally:
            await client.aclose()
    assert seen == ["GET /a HTTP/1.1", "GET /b HTTP/1.1", "GET /b HTTP/1.1"]


async def test_a_get_that_acts_on_a_connection_closed_under_it_is_not_sent_twice() -> None:
    """Primary's order entry is GETs (`order/newSingleOrder`): one whose connection dropped under
    it may have been booked, so it is not sent again — that would be a second order."""
    async with closing_after_one_answer() as (url, seen):
        client = HttpClient(timeout=5, deadline=10)
        try:
            await client.request("GET", f"{url}/a", repeatable=False)
            with pytest.raises(TransportError, match=r"GET http://.*/b failed: RemoteProtocolError") as lost:
                await client.request("GET", f"{url}/b", repeatable=False)
            assert not isinstance(lost.value, NotSent)  # it reached the server: its outcome is unknown
        finally:
            await client.aclose()
    assert seen == ["GET /a HTTP/1.1", "GET /b HTTP/1.1"]
    new_order = wire(
        new_order_request(symbol="X", side="BUY", quantity=Decimal(1), account="A", price=Decimal(1))
    )
    assert new_order.method == "GET" and new_order.acts and not wire(segments_request()).acts


async def test_a_post_on_a_connection_closed_under_it_is_not_sent_twice() -> None:
    async with closing_after_one_answer() as (url, seen):
        client = HttpClient(timeout=5, deadline=10)
        try:
            await client.request("POST", f"{url}/a")
            with pytest.raises(TransportError, match=r"POST http://.*/b failed: RemoteProtocolError"):
                await client.request("POST", f"{url}/b")
        finally:
            await client.aclose()
    assert seen == ["POST /a HTTP/1.1", "POST /b HTTP/1.1"]
