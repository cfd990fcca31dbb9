"""One mistake, one exception class: in-process from the `Bridge` and remotely through `BridgeClient`
against the same bridge served on loopback (both simulators behind it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import cast

import pytest

from brokerbridge.bridge import Bridge
from brokerbridge.client import BridgeClient
from brokerbridge.core.errors import (
    WIRE_ERRORS,
    BrokerBridgeError,
    InvalidRequest,
    NotAuthorized,
    PermissionDenied,
    ServiceUnavailable,
    UnknownChannel,
    UnknownSymbol,
    UnknownVenue,
    VenueError,
    error_from_wire,
    wire_error_of,
)
from brokerbridge.core.events import AnyEvent
from brokerbridge.server.protocol import ErrorCode
from tests.server.conftest import ACCOUNT_KEY, LIMIT, Stack, catalogues_loaded


async def in_process(bridge: Bridge, venue: str, channel: str, symbol: str) -> BrokerBridgeError:
    with pytest.raises(BrokerBridgeError) as refused:
        async with asyncio.timeout(LIMIT), aclosing(bridge.subscribe(venue, channel, symbol)) as stream:
            async for _ in stream:
                pass
    return refused.value


async def remote(client: BridgeClient, venue: str, channel: str, symbol: str) -> BrokerBridgeError:
    stream = cast(AsyncIterator[AnyEvent], client.subscribe(venue, channel, symbol))
    with pytest.raises(BrokerBridgeError) as refused:
        async with asyncio.timeout(LIMIT), aclosing(stream):  # type: ignore[type-var]
            async for _ in stream:
                pass
    return refused.value


@pytest.mark.parametrize(
    ("venue", "channel", "symbol", "kind"),
    [
        ("binance", "ticker", "BTC/USD", UnknownVenue),
        ("kraken", "orderbook", "BTC/USD", UnknownChannel),
        ("kraken", "ticker", "NOPE/USD", UnknownSymbol),
    ],
    ids=["unknown-venue", "unknown-channel", "unknown-symbol"],
)
async def test_a_mistake_raises_the_same_class_in_process_and_through_the_client(
    stack: Stack, venue: str, channel: str, symbol: str, kind: type[BrokerBridgeError]
) -> None:
    await catalogues_loaded(stack)  # from here an unlisted symbol is refused before going upstream
    mine = await in_process(stack.bridge, venue, channel, symbol)
    async with BridgeClient(stack.server.http_url, key=ACCOUNT_KEY) as client:
        theirs = await remote(client, venue, channel, symbol)
    assert type(mine) is type(theirs) is kind
    assert theirs.message == mine.message


async def test_rest_answers_raise_the_classes_the_bridge_raises(stack: Stack) -> None:
    await catalogues_loaded(stack)
    with pytest.raises(UnknownVenue) as mine:
        stack.bridge.balances("binance")
    async with BridgeClient(stack.server.http_url, key=ACCOUNT_KEY) as client:
        with pytest.raises(UnknownVenue) as theirs:
            await client.balances("binance")
        assert (theirs.value.message, theirs.value.remedy) == (mine.value.message, mine.value.remedy)
        with pytest.raises(UnknownSymbol):
            await client.ticker("kraken", "NOPE/USD")
    with pytest.raises(UnknownSymbol):
        stack.bridge.subscription("kraken", "ticker", "NOPE/USD")


# -- the table itself ---------------------------------------------------------------------------


def test_every_code_the_server_sends_maps_back_to_the_class_it_was_sent_for() -> None:
    codes = {row.code for row in WIRE_ERRORS}
    assert len(codes) == len(WIRE_ERRORS)
    assert {code.value for code in ErrorCode} <= codes  # /ws's codes, each with a class
    for row in WIRE_ERRORS:
        received = error_from_wire(row.code, "m", "r", venue="kraken")
        assert type(received) is row.error
        assert (received.code, received.venue, received.remedy) == (row.code, "kraken", "r")
        if row.sent_for:
            sent = row.error("m")
            assert wire_error_of(sent) == row  # round trip: class → code → class


def test_the_table_names_subclasses_before_their_bases() -> None:
    assert wire_error_of(UnknownVenue("m")).code == "unknown_venue"  # type: ignore[union-attr]
    assert wire_error_of(InvalidRequest("m")).code == "invalid_request"  # type: ignore[union-attr]
    assert wire_error_of(PermissionDenied("m")).code == "not_authorized"  # type: ignore[union-attr]
    assert wire_error_of(ServiceUnavailable("m")).http_status == 503  # type: ignore[union-attr]
    assert isinstance(error_from_wire("not_authorized", "m"), NotAuthorized)
    unknown = error_from_wire("a_code_from_a_newer_server", "m")
    assert type(unknown) is VenueError and unknown.code == "a_code_from_a_newer_server"
