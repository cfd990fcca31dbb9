"""Browser logins (contract C) over a real BridgeServer on loopback: login link → cookie, keys posted
to /api/session, /api/token, restarts, config changes, CSRF/Origin, and no credential in any log.

Logins, codes and tokens expire on a FakeClock handed to the server; the Bridge runs on real time.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from rich.console import Console

from brokerbridge.bridge import Bridge
from brokerbridge.cli import serve as serve_cli
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import ApiKey, Config, ServerConfig, load_config
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.access_tokens import Grant
from brokerbridge.server.log_redaction import redact_credentials
from brokerbridge.server.login_store import StateDir
from brokerbridge.server.logins import CODE_TTL, COOKIE, TOKEN_TTL, Logins
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator
from tests.server.conftest import ACCOUNT_KEY, KEYS, LIMIT, MARKET_KEY, Client, is_event, stack_config

TTL = 3600.0
# The test's own clients log requests (with the credentials they send) on these loggers; what the
# server logs goes through uvicorn's and brokerbridge's loggers, which the log test inspects.
CLIENT_LOGGER = logging.getLogger("tests.logins.client")


@dataclass
class Rig:
    bridge: Bridge
    state_dir: Path
    clock: FakeClock

    def server(self, keys: tuple[ApiKey, ...] = KEYS, **config: Any) -> BridgeServer:
        settings = ServerSettings.from_config(
            ServerConfig(keys=keys, state_dir=str(self.state_dir), session_ttl=TTL, **config)
        )
        return BridgeServer(self.bridge, host="127.0.0.1", port=0, settings=settings, clock=self.clock)

    @asynccontextmanager
    async def serving(
        self, keys: tuple[ApiKey, ...] = KEYS, within: float = LIMIT * 2
    ) -> AsyncIterator[tuple[BridgeServer, httpx.AsyncClient]]:
        """A server on the rig's Bridge and an HTTP client for it, all within `within` seconds."""
        async with (
            asyncio.timeout(within),
            self.server(keys) as server,
            httpx.AsyncClient(base_url=server.http_url, timeout=LIMIT) as http,
        ):
            yield server, http


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with (
        KrakenSimulator(host="127.0.0.1", port=0, seed=3) as kraken_sim,
        PrimarySimulator(host="127.0.0.1", port=0) as primary_sim,
        Bridge(stack_config(kraken_sim, primary_sim, tmp_path), grace_s=0.0) as bridge,
    ):
        await bridge.wait_ready(LIMIT)  # the accounts loaded: account answers are 200 from the start
        yield Rig(bridge, tmp_path / "state", FakeClock())


def with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={value}"}


async def follow_login_link(http: httpx.AsyncClient, url: str) -> str:
    answer = await http.get(url, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    attributes = {part.strip().lower() for part in answer.headers["set-cookie"].split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= attributes
    assert "secure" not in attributes  # plain http on loopback: a Secure cookie would never come back
    http.cookies.clear()  # every request below names the cookie it sends
    return answer.cookies[COOKIE]


async def sign_in(http: httpx.AsyncClient, key: str) -> str:
    answer = await http.post("/api/session", json={"key": key})
    assert answer.status_code == 200, answer.text
    http.cookies.clear()
    return answer.cookies[COOKIE]


async def ws(server: BridgeServer, query: str = "", *, origin: str | None = "", cookie: str = "") -> Client:
    """A browser-like client: Origin is the server's own unless given (None: no Origin, a bot)."""
    return Client(
        await websockets.connect(
            server.ws_url + query,
            additional_headers=with_cookie(cookie) if cookie else None,
            origin=(origin or server.http_url) if origin is not None else None,  # type: ignore[arg-type]
            logger=CLIENT_LOGGER,
        )
    )


async def account_answer(client: Client) -> dict[str, Any]:
    """Subscribe to Kraken balances: the first event, or the refusal."""
    await client.send({"op": "subscribe", "id": "b", "venue": "kraken", "channel": "balances"})
    return await client.until(lambda m: m["type"] == "error" or is_event("balance_snapshot")(m), within=LIMIT)


async def session_of(http: httpx.AsyncClient, cookie: str) -> dict[str, Any]:
    answer = await http.get("/api/session", headers=with_cookie(cookie))
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def test_login_link_gives_a_cookie_for_the_account_channels(rig: Rig) -> None:
    async with rig.serving() as (server, http):
        link = server.login_url()
        assert link.startswith(f"{server.http_url}/login?code=")
        cookie = await follow_login_link(http, link)
        assert (await http.get(link, follow_redirects=False)).status_code == 401  # used up
        session = await session_of(http, cookie)
        assert session["authenticated"] and session["name"] is None
        assert set(session["scopes"]) >= {"market", "account"}
        assert session["expires_at"] == pytest.approx(rig.clock.time() + TTL)

        client = await ws(server, cookie=cookie)
        first = await account_answer(client)
        assert first["type"] == "event" and first["event"]["kind"] == "balance_snapshot"
        balances = await http.get("/api/balances/kraken", headers=with_cookie(cookie))
        assert balances.status_code == 200 and balances.json()["balances"]
        await client.close()

        anonymous = await http.get("/api/session")
        assert anonymous.json()["authenticated"] is False
        assert (await http.get("/api/balances/kraken")).status_code == 401


async def test_login_codes_are_single_use_and_expire(rig: Rig) -> None:
    async with rig.serving(within=LIMIT) as (server, http):
        first, second = server.login_url(), server.login_url()
        assert first != second
        await follow_login_link(http, first)
        refused = await http.get(first, follow_redirects=False)
        assert refused.status_code == 401 and COOKIE not in refused.cookies
        assert "not valid" in refused.text
        await rig.clock.advance(CODE_TTL)
        assert (await http.get(second, follow_redirects=False)).status_code == 401
        assert (await http.get("/login", follow_redirects=False)).status_code == 401
        assert (await http.get("/login?code=guess", follow_redirects=False)).status_code == 401


async def test_a_key_session_has_the_keys_scopes_only(rig: Rig) -> None:
    async with rig.serving() as (server, http):
        viewer = await sign_in(http, MARKET_KEY)
        session = await session_of(http, viewer)
        assert isinstance(session.pop("csrf_token"), str)  # this login's, for its order requests
        assert session == {
            "authenticated": True,
            "name": "viewer",
            "scopes": ["market"],
            "expires_at": pytest.approx(rig.clock.time() + TTL),
        }
        denied = await http.get("/api/balances/kraken", headers=with_cookie(viewer))
        assert denied.status_code == 403 and "viewer" in denied.json()["error"]["message"]
        client = await ws(server, cookie=viewer)
        refusal = await account_answer(client)
        assert refusal["type"] == "error" and refusal["code"] == "not_authorized"
        await client.close()

        bot = await sign_in(http, ACCOUNT_KEY)
        assert (await http.get("/api/balances/kraken", headers=with_cookie(bot))).status_code == 200

        wrong = await http.post("/api/session", json={"key": "not-a-configured-key-42"})
        assert wrong.status_code == 401 and "not-a-configured-key-42" not in wrong.text
        assert COOKIE not in wrong.cookies
        garbled = await http.post("/api/session", content=b'{"key": 7, "x": "secret-ish"}')
        assert garbled.status_code == 400 and "secret-ish" not in garbled.text


async def test_expired_and_tampered_cookies_are_refused(rig: Rig) -> None:
    async with rig.serving() as (server, http):
        cookie = await follow_login_link(http, server.login_url())
        payload, signature = cookie.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["n"], claims["s"] = "bot", ["admin"]
        forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")  # maybe only padding bits
        other = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        forged = f"{forged_payload}.{signature}"
        for bad in (forged, f"{payload}.{flipped}", f"{payload}.{other}", payload, "x.y.z", "%%%"):
            assert (await session_of(http, bad))["authenticated"] is False, bad
            answer = await http.get("/api/balances/kraken", headers=with_cookie(bad))
            assert answer.status_code == 401

        await rig.clock.advance(TTL)
        assert (await session_of(http, cookie))["authenticated"] is False
        expired = await http.get("/api/balances/kraken", headers=with_cookie(cookie))
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
        client = await ws(server, cookie=cookie)  # anonymous: market data stays open
        refusal = await account_answer(client)
        assert refusal["type"] == "error" and refusal["code"] == "not_authorized"
        await client.close()


async def test_sessions_survive_a_restart_and_follow_the_config(rig: Rig) -> None:
    async with asyncio.timeout(LIMIT * 4):
        async with rig.serving() as (first, http):
            linked = await follow_login_link(http, first.login_url())
            bot = await sign_in(http, ACCOUNT_KEY)
            signed_out = await sign_in(http, ACCOUNT_KEY)
            bye = await http.delete("/api/session", headers=with_cookie(signed_out))
            assert bye.status_code == 200 and bye.json()["authenticated"] is False
            assert (await session_of(http, signed_out))["authenticated"] is False
        assert stat.S_IMODE((rig.state_dir / "session-key").stat().st_mode) == 0o600

        async with rig.serving() as (second, http):
            for cookie in (linked, bot):
                assert (
                    await http.get("/api/balances/kraken", headers=with_cookie(cookie))
                ).status_code == 200
            assert (await session_of(http, signed_out))["authenticated"] is False  # sign-out persisted
            client = await ws(second, cookie=bot)  # a dashboard reconnecting, no reload
            assert (await account_answer(client))["type"] == "event"
            await client.close()

        viewer_only = tuple(k for k in KEYS if k.name != "bot")
        narrowed = (*viewer_only, ApiKey("bot", Secret(ACCOUNT_KEY), frozenset({"market"})))
        rotated = (*viewer_only, ApiKey("bot", Secret("a-brand-new-bot-key-0123"), frozenset({"account"})))
        for keys, bot_scopes in ((viewer_only, None), (narrowed, ["market"]), (rotated, None)):
            async with rig.serving(keys) as (_, http):
                session = await session_of(http, bot)
                assert session["authenticated"] is (bot_scopes is not None)
                if bot_scopes is not None:
                    assert session["scopes"] == bot_scopes
                    refused = await http.get("/api/balances/kraken", headers=with_cookie(bot))
                    assert refused.status_code == 403
                else:
                    refused = await http.get("/api/balances/kraken", headers=with_cookie(bot))
                    assert refused.status_code == 401 and "bot" in refused.json()["error"]["message"]
                assert (
                    await http.get("/api/balances/kraken", headers=with_cookie(linked))
                ).status_code == 200


async def test_a_foreign_origin_is_refused_even_with_the_cookie(rig: Rig) -> None:
    async with rig.serving(within=LIMIT) as (server, http):
        cookie = await follow_login_link(http, server.login_url())
        with pytest.raises(websockets.InvalidStatus) as refused:
            await ws(server, origin="https://evil.example", cookie=cookie)
        assert refused.value.response.status_code == 403

        evil = {"Origin": "https://evil.example", **with_cookie(cookie)}
        assert (await http.post("/api/session", json={"key": ACCOUNT_KEY}, headers=evil)).status_code == 403
        assert (await http.post("/api/token", headers=evil)).status_code == 403
        assert (await http.delete("/api/session", headers=evil)).status_code == 403
        same_site = {"Sec-Fetch-Site": "same-site", **with_cookie(cookie)}  # another port, same host
        assert (await http.delete("/api/session", headers=same_site)).status_code == 403
        assert (await session_of(http, cookie))["authenticated"] is True  # not signed out by them
        own = {"Origin": server.http_url, **with_cookie(cookie)}
        assert (await http.post("/api/token", headers=own)).status_code == 200


async def test_tokens_are_single_use_and_short_lived(rig: Rig) -> None:
    async with rig.serving() as (server, http):
        assert (await http.post("/api/token")).status_code == 401  # anonymous: nothing to hand on
        minted = await http.post("/api/token", headers={"Authorization": f"Bearer {ACCOUNT_KEY}"})
        token = minted.json()["token"]
        assert minted.json()["expires_at"] == pytest.approx(rig.clock.time() + TOKEN_TTL)
        client = await ws(server, f"?token={token}", origin=None)
        assert (await account_answer(client))["type"] == "event"
        await client.close()
        with pytest.raises(websockets.InvalidStatus) as reused:
            await ws(server, f"?token={token}")
        assert reused.value.response.status_code == 401

        cookie = await sign_in(http, MARKET_KEY)
        from_session = (await http.post("/api/token", headers=with_cookie(cookie))).json()["token"]
        market_only = await ws(server, f"?token={from_session}")
        assert (await account_answer(market_only))["code"] == "not_authorized"  # the session's scopes
        await market_only.close()

        late = (await http.post("/api/token", headers={"Authorization": f"Bearer {ACCOUNT_KEY}"})).json()
        await rig.clock.advance(TOKEN_TTL)
        with pytest.raises(websockets.InvalidStatus) as expired:
            await ws(server, f"?token={late['token']}")
        assert expired.value.response.status_code == 401
        rest = (await http.post("/api/token", headers={"Authorization": f"Bearer {ACCOUNT_KEY}"})).json()
        assert (await http.get(f"/api/balances/kraken?token={rest['token']}")).status_code == 200
        assert (await http.get(f"/api/balances/kraken?token={rest['token']}")).status_code == 401


async def test_keys_from_the_environment_sign_in(rig: Rig) -> None:
    env_key = "env-bot-key-0123456789abcdef"
    config = load_config(
        env={
            "BROKERBRIDGE_SERVER_KEY_ENVBOT": env_key,
            "BROKERBRIDGE_SERVER_KEY_ENVBOT_SCOPES": "market,account",
            "BROKERBRIDGE_SERVER_KEY_PEEK": "peek-key-0123456789abcdef",
        }
    )
    async with rig.serving(config.server.keys, within=LIMIT) as (_, http):
        cookie = await sign_in(http, env_key)
        assert (await session_of(http, cookie))["name"] == "envbot"
        assert (await http.get("/api/balances/kraken", headers=with_cookie(cookie))).status_code == 200
        peek = await sign_in(http, "peek-key-0123456789abcdef")
        assert (await session_of(http, peek))["scopes"] == ["market"]


def test_state_dir_files_are_private_and_checked(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "nested" / "state")
    assert state.signing_key(create=False) is None
    key = state.signing_key(create=True)
    assert key is not None and len(key) == 32
    assert stat.S_IMODE(state.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700
    assert StateDir(state.path).signing_key(create=False) == key

    os.chmod(state.key_file, 0o644)
    with pytest.raises(ConfigError) as loose:
        StateDir(state.path).signing_key(create=False)
    assert "chmod 600" in loose.value.remedy
    os.chmod(state.key_file, 0o600)
    state.key_file.write_text("not hex\n")
    with pytest.raises(ConfigError) as garbled:
        StateDir(state.path).signing_key(create=True)
    assert "delete it" in garbled.value.remedy
    state.revoked_file.write_text("[1, 2]")
    with pytest.raises(ConfigError):
        StateDir(state.path).load_revoked()


async def test_signed_out_ids_are_kept_only_until_they_would_expire(tmp_path: Path) -> None:
    clock = FakeClock()
    logins = Logins(StateDir(tmp_path), ttl=100.0, clock=clock)
    _, early = logins.open(Grant(None, frozenset({"market"})))
    logins.close(early)
    assert json.loads((tmp_path / "signed-out-sessions.json").read_text()) == {early.id: early.expires_at}
    await clock.advance(100.0)  # the ids are pruned on the next sign-out
    cookie, late = logins.open(Grant(None, frozenset({"market"})))
    logins.close(late)
    assert json.loads((tmp_path / "signed-out-sessions.json").read_text()) == {late.id: late.expires_at}
    assert Logins(StateDir(tmp_path), ttl=100.0, clock=clock).verify(cookie) == "the session was signed out"


@pytest.mark.parametrize(
    ("line", "hidden"),
    [
        ('127.0.0.1:5 - "GET /login?code=abc123 HTTP/1.1" 303', "abc123"),
        ('127.0.0.1:5 - "WebSocket /ws?x=1&token=tok-456" [accepted]', "tok-456"),
        ("GET /api/balances/kraken?key=k-789&x=1", "k-789"),
        ("< Authorization: Bearer k-789", "k-789"),
        ("< Cookie: theme=dark; bb_session=abc.def", "abc.def"),
        ("""< TEXT '{"op": "auth", "key": "k-7...89", "id": 1}' [40 bytes]""", "k-7...89"),
    ],
)
def test_credentials_in_log_lines_are_masked(line: str, hidden: str) -> None:
    masked = redact_credentials(line)
    assert hidden not in masked and "***" in masked


async def test_serve_prints_the_login_link_and_no_credential_reaches_a_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve`'s own start-up path at DEBUG: sign in by the printed link, mint and use a token, use
    keys by header, query and `auth` message — no record and no response body holds any of them."""
    monkeypatch.setenv("HOME", str(tmp_path))  # the simulators' instrument cache
    caplog.set_level(logging.DEBUG)
    for client_side in ("httpx", "httpcore", CLIENT_LOGGER.name):
        caplog.set_level(logging.WARNING, logger=client_side)
    stdout = _Printed()
    monkeypatch.setattr(sys, "stdout", stdout)
    cfg = Config(server=ServerConfig(keys=KEYS, state_dir=str(tmp_path / "state")))
    err = Console(stderr=True)
    serving = asyncio.create_task(serve_cli._serve(cfg, "127.0.0.1", 0, None, err, login_link=True))
    bodies: list[str] = []
    try:
        async with asyncio.timeout(LIMIT * 2):
            await stdout.done.wait()
            # The in-process simulators give uvicorn's loggers their own handlers and turn them down
            # (process-wide); turn them up and listen there too, so everything is logged and inspected.
            for name in ("uvicorn", "uvicorn.access"):
                caplog.set_level(logging.DEBUG, logger=name)
                logging.getLogger(name).addHandler(caplog.handler)
            caplog.set_level(logging.DEBUG, logger="uvicorn.error")
            lines = stdout.getvalue().splitlines()
            assert lines[1].split()[0] == "Dashboard:"  # the first URL printed
            link = lines[1].split()[1]
            code = link.split("code=")[1]
            base = link.split("/login")[0]
            async with httpx.AsyncClient(base_url=base, timeout=LIMIT) as http:
                answer = await http.get(link, follow_redirects=False)
                cookie = answer.cookies[COOKIE]
                http.cookies.clear()
                bodies.append(answer.text)
                minted = await http.post("/api/token", headers=with_cookie(cookie))
                token = minted.json()["token"]
                for answer in (
                    await http.get("/api/session", headers=with_cookie(cookie)),
                    await http.get(f"/api/balances/kraken?key={ACCOUNT_KEY}"),
                    await http.get(
                        "/api/balances/kraken", headers={"Authorization": f"Bearer {ACCOUNT_KEY}"}
                    ),
                    await http.post("/api/session", json={"key": MARKET_KEY}),
                    await http.get(link, follow_redirects=False),
                ):
                    bodies.append(answer.text)
            ws_url = base.replace("http://", "ws://") + "/ws"
            by_token = Client(await websockets.connect(f"{ws_url}?token={token}", logger=CLIENT_LOGGER))
            bodies.append(json.dumps(await account_answer(by_token)))
            await by_token.close()
            by_message = Client(await websockets.connect(ws_url, logger=CLIENT_LOGGER))
            await by_message.send({"op": "auth", "id": "a", "key": ACCOUNT_KEY})
            bodies.append(json.dumps(await by_message.next()))
            bodies.append(json.dumps(await account_answer(by_message)))
            await by_message.close()
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        for name in ("uvicorn", "uvicorn.access"):
            logging.getLogger(name).removeHandler(caplog.handler)

    credentials = {code, cookie, token, ACCOUNT_KEY, MARKET_KEY}
    records = [r.getMessage() for r in caplog.records]
    assert any("/login?code=***" in r for r in records)  # uvicorn did log the request line, masked
    assert any("?token=***" in r for r in records)  # the WebSocket handshake line
    # Client frames (the auth message holds a key) are not logged at all, not even at DEBUG.
    assert not any('"op": "auth"' in r for r in records)
    for text in records + bodies + stdout.getvalue().splitlines()[2:]:
        for credential in credentials:
            assert credential not in text, text


class _Printed(io.StringIO):
    """stdout for `serve`: says when the URL block is complete (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.done = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if "Press Ctrl-C" in self.getvalue():
            self.done.set()
        return written
