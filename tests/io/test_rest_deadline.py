"""The overall deadline of a REST call (`request_deadline`): a venue that trickles its answer or sends
headers and never the body ends the call in time — loopback sockets, the simulators' body faults,
fake time (the deadline and the trickle both run on the rig's clock, so nothing waits for real). Real
sockets, not the in-memory transport: how an HTTP body arrives over a connection is the subject here.
The Bridges hold no account session (`hold_accounts=False`): its own calls would meet the faults first."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from brokerbridge.core.errors import TransportError
from brokerbridge.venues.kraken import rest as kraken_rest
from brokerbridge.venues.primary import rest as codec
from tests.io.primary_rig import primary_rig
from tests.io.rig import Rig, rig

pytestmark = pytest.mark.timeout(60)
DEADLINE = 5.0


async def failure_after(r: Rig, coro: Any) -> tuple[BaseException | None, float]:
    """Run `coro` while fake time moves; (its exception, fake seconds it took)."""
    task = asyncio.get_running_loop().create_task(coro)
    took = await r.until(task.done, within=4 * DEADLINE, step=0.25, what="the call ended")
    return task.exception(), took


@pytest.mark.parametrize("fault", [{"rest_trickle_s": 2.0}, {"rest_headers_only": 1}])
async def test_a_kraken_call_ends_at_the_deadline(fault: dict[str, Any]) -> None:
    async with rig(request_deadline=DEADLINE, loopback=True, hold_accounts=False) as r:
        await r.faults(**fault)
        error, took = await failure_after(r, r.kraken.rest.call(kraken_rest.balance_request()))
        assert isinstance(error, TransportError) and error.retryable
        assert DEADLINE <= took <= DEADLINE + 0.5


async def test_a_kraken_call_queued_behind_a_stuck_one_waits_only_until_its_deadline() -> None:
    # Private calls go one at a time (nonce order): a stuck call held up every other one.
    async with rig(request_deadline=DEADLINE, loopback=True, hold_accounts=False) as r:
        await r.faults(rest_headers_only=1)
        loop = asyncio.get_running_loop()
        stuck = loop.create_task(r.kraken.rest.call(kraken_rest.balance_request()))
        queued = loop.create_task(r.kraken.rest.call(kraken_rest.open_orders_request()))
        took = await r.until(queued.done, within=4 * DEADLINE, step=0.25, what="the queued call answered")
        assert isinstance(stuck.exception(), TransportError)
        assert queued.result().open is not None and took <= DEADLINE + 0.5


@pytest.mark.parametrize("fault", [{"rest_trickle_s": 2.0}, {"rest_headers_only": -1}])
async def test_a_primary_call_ends_at_the_deadline(tmp_path: Path, fault: dict[str, Any]) -> None:
    async with primary_rig(tmp_path, request_deadline=DEADLINE, loopback=True, hold_accounts=False) as r:
        await r.call(r.primary.rest.call(codec.segments_request()))  # logged in
        await r.primary_faults(**fault)
        error, took = await failure_after(r, r.primary.rest.call(codec.segments_request()))
        assert isinstance(error, TransportError) and DEADLINE <= took <= DEADLINE + 0.5
        await r.primary_faults(rest_trickle_s=0, rest_headers_only=0)
        assert (await r.call(r.primary.rest.call(codec.segments_request()))).segments
