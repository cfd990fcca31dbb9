"""The account sessions are the server's own: a fresh `serve` stack (both simulators, their demo
credentials) loads the accounts with no client connected, journals fills nobody watches, and says
so on `/api/ready` — 503 until loaded, 200, 503 again while an account stream is down, with why.
Real sockets, real time (bounded waits)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from brokerbridge.client import BridgeClient, NotLoaded
from brokerbridge.venues.kraken import rest as kraken_rest
from tests.server.conftest import ACCOUNT_KEY, LIMIT, Stack, make_stack
from tests.server.observe import eventually

AUTH = {"Authorization": f"Bearer {ACCOUNT_KEY}"}


def ready(stack: Stack, venue: str | None = None) -> Callable[[], bool]:
    venues = stack.bridge.readiness
    return lambda: all(r.ready for v, r in venues().items() if venue in (None, v))


def kraken_is(stack: Stack, state: str) -> Callable[[], bool]:
    return lambda: stack.bridge.readiness()["kraken"].state == state


async def test_a_fresh_stack_gets_ready_with_no_client_and_journals_unwatched_fills(
    tmp_path: Path,
) -> None:
    # How soon is the benchmarks' (bench/startup.py: serve to its first live ticker): a wall-clock
    # bound here failed on a loaded box (house rule: no timing asserted in tests).
    async with (
        make_stack(tmp_path) as stack,
        httpx.AsyncClient(base_url=stack.server.http_url, headers=AUTH, timeout=LIMIT) as http,
    ):
        await eventually(ready(stack), within=LIMIT)
        answer = await http.get("/api/ready")
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "ready"
        assert {venue: r["state"] for venue, r in body["venues"].items()} == {
            "kraken": "ready",
            "primary": "ready",
        }
        assert stack.server.state.clients.clients() == []  # no WebSocket client, no consumer
        assert all(not stack.bridge.fanout.consumers(sub) for sub in stack.bridge.held)
        balances = (await http.get("/api/balances/kraken")).json()["balances"]
        assert {b["asset"]: Decimal(b["total"]) for b in balances}["BTC"] == Decimal(2)
        assert len(balances) == 5 and not any(b["stale"] for b in balances)
        assert (await http.get("/api/balances/primary")).json()["balances"]

        # Nobody watches: market data is idle, the account streams live.
        health = (await http.get("/api/health")).json()
        assert health["venues"]["kraken"]["streams"]["public"]["state"] == "idle"
        assert health["venues"]["kraken"]["streams"]["private"]["state"] == "live"
        assert health["venues"]["kraken"]["readiness"]["state"] == "ready"
        venues = {v["venue"]: v["streams"] for v in (await http.get("/api/venues")).json()["venues"]}
        assert venues["kraken"]["public"] == "idle"

        # A trade made on the venue by someone else, with no client connected.
        connector = stack.bridge.connectors["kraken"]
        add = kraken_rest.add_order_request(
            pair="XBTUSD", side="sell", order_type="market", volume=Decimal("0.1")
        )
        await connector.rest.call(add)
        made = set(stack.kraken_sim.exchange.account.trades)

        await eventually(lambda: len(stack.bridge.fills("kraken")) == len(made))
        served = (await http.get("/api/fills/kraken")).json()["fills"]
        assert {f["exec_id"] for f in served} == made
        assert stack.bridge.journal_store is not None
        journaled = stack.bridge.journal_store.fills("kraken", connector.journal_scope)
        assert {f.exec_id for f in journaled} == made


async def test_ready_is_503_until_loaded_then_200_then_503_while_degraded_then_200(tmp_path: Path) -> None:
    # The key may not open WebSockets: no token, so no account stream and no balances snapshot.
    async with (
        make_stack(tmp_path, kraken_faults={"deny_permissions": ["websockets"]}) as stack,
        httpx.AsyncClient(base_url=stack.server.http_url, headers=AUTH, timeout=LIMIT) as http,
        BridgeClient(stack.server.http_url, key=ACCOUNT_KEY) as client,
    ):

        async def kraken_state(state: str) -> dict[str, Any]:
            """Once the Bridge's kraken is `state`, what /api/ready answers."""
            await eventually(kraken_is(stack, state))
            answer = await http.get("/api/ready")
            body: dict[str, Any] = answer.json()
            assert body["venues"]["kraken"]["state"] == state
            assert answer.status_code == (200 if state == "ready" else 503), body
            assert body["status"] == ("ready" if state == "ready" else "not_ready")
            return body

        degraded = (await kraken_state("degraded"))["venues"]["kraken"]
        assert "kraken:" in degraded["reason"] and "doctor kraken" in degraded["remedy"]
        refused = await http.get("/api/balances/kraken")
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "not_loaded" and "not loaded yet" in error["message"] and error["remedy"]
        try:
            await client.balances("kraken")
            raise AssertionError("balances answered before the account was loaded")
        except NotLoaded as exc:  # the same typed error as in-process
            assert exc.code == "not_loaded" and exc.remedy
        assert (await client.ready()).status == "not_ready"

        stack.kraken_sim.faults.apply({"deny_permissions": []})
        await kraken_state("ready")
        assert (await client.ready()).status == "ready"
        assert {b.asset for b in await client.balances("kraken")} >= {"BTC", "USD"}

        # The session's token revoked and no new one to be had: the account stream goes down.
        stack.kraken_sim.faults.apply({"deny_permissions": ["websockets"]})
        stack.kraken_sim.faults.invalidate_tokens()
        stack.kraken_sim.faults.drop_now()
        degraded = (await kraken_state("degraded"))["venues"]["kraken"]
        assert degraded["account_streams"]["kraken:balances"] != "live"
        kept = (await http.get("/api/balances/kraken")).json()["balances"]  # loaded: kept, marked stale
        assert kept and all(b["stale"] for b in kept)

        stack.kraken_sim.faults.apply({"deny_permissions": []})
        await kraken_state("ready")
