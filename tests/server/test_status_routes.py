"""`GET /api/status` and `POST /api/login-link` over a real BridgeServer: answered to a caller on
the server's machine or with an admin key, refused (with what to do) to anyone else — a caller on
another address, one behind a proxy, a web page of another origin, a key without the admin scope.

The "other machine" is this machine's own non-loopback address (the server bound to all
interfaces): a real socket whose peer address is not loopback. Without one, those tests skip.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from brokerbridge.bridge import Bridge
from brokerbridge.client import BridgeClient, NotAuthorized
from brokerbridge.core.config import ApiKey, ServerConfig
from brokerbridge.core.events import BalanceSnapshot
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator
from tests.server.conftest import ACCOUNT_KEY, KEYS, LIMIT, MARKET_KEY, stack_config
from tests.server.test_rest_snapshots import validator_for

ADMIN_KEY = "admin-key-0123456789abcdef"
ALL_KEYS = (*KEYS, ApiKey(name="ops", key=Secret(ADMIN_KEY), scopes=frozenset({"admin"})))


def own_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: this only picks the route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@dataclass
class Served:
    bridge: Bridge
    server: BridgeServer
    url: str  # where the test's callers reach it


@asynccontextmanager
async def serving(
    tmp_path: Path, *, host: str = "127.0.0.1", reach: str | None = None
) -> AsyncIterator[Served]:
    settings = ServerSettings.from_config(
        ServerConfig(
            keys=ALL_KEYS,
            state_dir=str(tmp_path / "state"),
            allowed_hosts=(reach,) if reach else (),
        )
    )
    async with (
        asyncio.timeout(LIMIT * 3),
        KrakenSimulator(host="127.0.0.1", port=0, seed=3) as kraken_sim,
        PrimarySimulator(host="127.0.0.1", port=0) as primary_sim,
        Bridge(stack_config(kraken_sim, primary_sim, tmp_path), grace_s=0.0) as bridge,
        BridgeServer(bridge, host=host, port=0, settings=settings) as server,
    ):
        yield Served(bridge, server, f"http://{reach}:{server.port}" if reach else server.http_url)


async def test_status_shows_venues_streams_balances_and_clients(tmp_path: Path) -> None:
    async with (
        serving(tmp_path) as served,
        BridgeClient(served.url, key=ACCOUNT_KEY) as bot,
        BridgeClient(served.url) as local,
    ):
        before = await local.status()  # loopback, no key: the machine's owner
        assert set(before.venues) == {"kraken", "primary"}
        assert before.venues["kraken"].balances.updated_at is None
        assert before.clients.connections == 0
        assert before.started_at <= before.now

        balances = bot.subscribe("kraken", "balances")
        async with asyncio.timeout(LIMIT):
            async for event in balances:
                if isinstance(event, BalanceSnapshot):
                    break
        after = await local.status()
        kraken = after.venues["kraken"]
        assert kraken.balances.assets == len(event.balances) > 0
        assert kraken.balances.stale == 0 and kraken.balances.updated_at is not None
        assert kraken.health.token_expires_at is not None and kraken.health.token_expires_at > after.now
        assert kraken.health.streams["private"].state == "live"
        assert after.clients.connections == 1 and after.clients.by_key == {"bot": 1}
        await balances.aclose()


async def test_a_login_link_from_loopback_signs_a_client_in_for_account_data(tmp_path: Path) -> None:
    async with serving(tmp_path) as served, BridgeClient(served.url) as local:
        link = await local.login_link()
        assert link.url.startswith(f"{served.url}/login?code=")
        assert link.expires_at > served.bridge.clock.time()
        await local.sign_in(link)
        async with asyncio.timeout(LIMIT):
            async for event in local.subscribe("kraken", "balances"):
                if isinstance(event, BalanceSnapshot):
                    break
        with pytest.raises(NotAuthorized):  # a link works once
            await local.sign_in(link)


async def test_a_caller_behind_a_proxy_or_a_foreign_page_is_not_local(tmp_path: Path) -> None:
    async with serving(tmp_path) as served, httpx.AsyncClient(base_url=served.url, timeout=LIMIT) as http:
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        for method, path in (("GET", "/api/status"), ("POST", "/api/login-link")):
            refused = await http.request(method, path, headers=proxied)
            assert refused.status_code == 401, refused.text
            error = refused.json()["error"]
            assert error["code"] == "not_authorized" and "admin" in error["remedy"]
            admitted = await http.request(
                method, path, headers={**proxied, "Authorization": f"Bearer {ADMIN_KEY}"}
            )
            assert admitted.status_code == 200, admitted.text
        foreign = await http.post("/api/login-link", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        wrong_key = await http.get(
            "/api/status", headers={"Authorization": "Bearer not-a-key-of-this-server"}
        )
        assert wrong_key.status_code == 401  # a credential presented is checked, even from loopback


async def test_another_machine_needs_an_admin_key(tmp_path: Path) -> None:
    address = own_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to call from")
    async with serving(tmp_path, host="0.0.0.0", reach=address) as served:
        async with BridgeClient(served.url) as anonymous, BridgeClient(served.url, key=MARKET_KEY) as viewer:
            for caller in (anonymous, viewer):
                with pytest.raises(NotAuthorized) as refused:
                    await caller.login_link()
                assert "this machine" in refused.value.message and "admin" in refused.value.remedy
                with pytest.raises(NotAuthorized):
                    await caller.status()
        async with BridgeClient(served.url, key=ADMIN_KEY) as admin:
            assert (await admin.login_link()).url.startswith(f"{served.url}/login?code=")
            assert set((await admin.status()).venues) == {"kraken", "primary"}


async def test_status_and_login_link_answers_match_their_openapi_schemas(tmp_path: Path) -> None:
    async with serving(tmp_path) as served, httpx.AsyncClient(base_url=served.url, timeout=LIMIT) as http:
        document = (await http.get("/openapi.json")).json()
        for method, path in (("get", "/api/status"), ("post", "/api/login-link")):
            answers = document["paths"][path][method]["responses"]
            answer = await http.request(method.upper(), path)
            assert answer.status_code == 200, answer.text
            assert answer.headers["cache-control"] == "no-store"
            validator_for(document, answers["200"]["content"]["application/json"]["schema"]).validate(
                answer.json()
            )
            refused = await http.request(method.upper(), path, headers={"X-Forwarded-For": "203.0.113.9"})
            assert refused.status_code == 401
            validator_for(document, answers["401"]["content"]["application/json"]["schema"]).validate(
                refused.json()
            )
