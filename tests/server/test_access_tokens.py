"""Access tokens (server/access_tokens.py), bridge-local users and Primary-style password logins, and
how `identify` reads them: minted, verified, renewed and revoked on a fake clock; presented as
`Authorization: Bearer`, `X-Auth-Token` or `?token=`; checked against the config at every use.

The requests go through a real Starlette app (in-process ASGI) whose one route answers what
`identify` found — the function every way in (/api, /ws, /primary/) calls.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import ApiKey, ServerConfig, User, expand_scopes, load_config
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.passwords import check_password, hash_password, is_password_hash
from brokerbridge.core.secret import Secret
from brokerbridge.server.access_tokens import PREFIX, Grant
from brokerbridge.server.auth import Authenticator
from brokerbridge.server.login_store import StateDir
from brokerbridge.server.logins import Denied, Logins, identify, password_grant

KEY = ApiKey("bot", Secret("k" * 24), frozenset({"market", "account", "trade"}))
# Cheap scrypt parameters for the tests' own users: the check is the same, only faster.
PASSWORD = "correct horse battery"
USER = User("ana", Secret(hash_password(PASSWORD, n=2**4)), frozenset({"market", "account"}))


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.store = StateDir(tmp_path / "state")
        self.configure(ServerConfig(keys=(KEY,), users=(USER,)))

    def configure(self, config: ServerConfig) -> None:
        self.auth = Authenticator(config, open_market_data=False, clock=self.clock)
        self.logins = Logins(self.store, ttl=3600.0, clock=self.clock)

    def app(self) -> Starlette:
        async def who(request: Request) -> JSONResponse:
            found = identify(request, self.auth, self.logins)
            if isinstance(found, Denied):
                return JSONResponse({"denied": found.message}, status_code=found.status)
            return JSONResponse(
                {"name": found.name, "scopes": sorted(found.scopes), "token_id": found.token_id}
            )

        async def login(request: Request) -> JSONResponse:
            found = await password_grant(
                request,
                self.auth,
                self.logins,
                request.headers.get("x-username", ""),
                request.headers.get("x-password", ""),
            )
            if isinstance(found, Denied):
                return JSONResponse({"denied": found.message}, status_code=found.status)
            issued = self.logins.access.mint(found)
            return JSONResponse({"token": issued.token, "scopes": issued.scopes})

        return Starlette(routes=[Route("/who", who), Route("/login", login, methods=["POST"])])

    async def who(self, **request: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get("/who", **request)

    async def login(self, user: str, password: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.post("/login", headers={"X-Username": user, "X-Password": password})


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    yield Rig(tmp_path)


def key_grant(rig: Rig, scopes: frozenset[str] = KEY.scopes) -> Grant:
    return Grant(KEY.name, scopes, rig.logins.fingerprint(KEY.key))


PRESENTATIONS: list[Callable[[str], dict[str, Any]]] = [
    lambda token: {"headers": {"Authorization": f"Bearer {token}"}},
    lambda token: {"headers": {"X-Auth-Token": token}},
    lambda token: {"params": {"token": token}},
]


@pytest.mark.parametrize("present", PRESENTATIONS, ids=["bearer", "x-auth-token", "query"])
async def test_a_token_is_accepted_however_presented_and_carries_its_scopes(
    rig: Rig, present: Callable[[str], dict[str, Any]]
) -> None:
    issued = rig.logins.access.mint(key_grant(rig, frozenset({"market"})))
    assert issued.token.startswith(PREFIX) and issued.scopes == ["market"]
    answer = await rig.who(**present(issued.token))
    assert answer.status_code == 200
    assert answer.json() == {"name": "bot", "scopes": ["market"], "token_id": issued.id}
    # Reusable within its life (unlike the one-time /ws token).
    assert (await rig.who(**present(issued.token))).status_code == 200


async def test_expiry_renewal_limit_and_revocation(rig: Rig) -> None:
    access = rig.logins.access
    issued = access.mint(key_grant(rig), ttl=60.0, renew_until=rig.clock.time() + 150.0)
    bearer = {"headers": {"Authorization": f"Bearer {issued.token}"}}
    await rig.clock.advance(59.0)
    renewed = access.renew(issued.token, ttl=60.0)
    assert not isinstance(renewed, str)
    assert renewed.id == issued.id and renewed.expires_at == rig.clock.time() + 60.0
    await rig.clock.advance(1.0)
    assert (await rig.who(**bearer)).json() == {"denied": "access token refused: the token expired"}
    assert (await rig.who(headers={"X-Auth-Token": renewed.token})).status_code == 200
    # Renewals never pass the chain's limit.
    await rig.clock.advance(50.0)
    last = access.renew(renewed.token, ttl=60.0)
    assert not isinstance(last, str) and last.expires_at == issued.renew_until
    await rig.clock.advance(40.0)
    assert access.renew(last.token) == "the token expired"
    # Revoking ends the chain, also for a server started again on the same state_dir.
    fresh = access.mint(key_grant(rig))
    found = access.verify(fresh.token)
    assert not isinstance(found, str)
    access.revoke(found)
    rig.configure(ServerConfig(keys=(KEY,), users=(USER,)))
    assert rig.logins.access.verify(fresh.token) == "the token was revoked"
    assert (await rig.who(headers={"X-Auth-Token": fresh.token})).status_code == 401


async def test_tampered_foreign_and_malformed_tokens_are_refused(rig: Rig) -> None:
    issued = rig.logins.access.mint(key_grant(rig, frozenset({"market"})))
    payload, signature = issued.token[len(PREFIX) :].split(".")
    other = Logins(StateDir(rig.store.path.parent / "other"), ttl=3600.0, clock=rig.clock)
    for token in (
        f"{PREFIX}{payload}x.{signature}",  # claims changed
        f"{PREFIX}{payload}.{signature[:-1]}",
        other.access.mint(key_grant(rig)).token,  # signed by another server
        "bbt.",
        "bbt." + "A" * 5000,
        "not-a-bridge-token",  # e.g. a Primary token sent to /primary/
    ):
        answer = await rig.who(headers={"X-Auth-Token": token})
        assert answer.status_code == 401, token[:20]
        assert token not in answer.text  # never echoed


async def test_a_token_follows_the_config_key_removed_changed_or_narrowed(rig: Rig) -> None:
    issued = rig.logins.access.mint(key_grant(rig))
    header = {"headers": {"X-Auth-Token": issued.token}}
    narrowed = ApiKey(KEY.name, KEY.key, frozenset({"market"}))
    rig.configure(ServerConfig(keys=(narrowed,)))
    assert (await rig.who(**header)).json()["scopes"] == ["market"]
    rig.configure(ServerConfig(keys=(ApiKey(KEY.name, Secret("z" * 24), KEY.scopes),)))
    assert (await rig.who(**header)).json() == {"denied": "access token refused: key 'bot' was changed"}
    rig.configure(ServerConfig())
    assert "no longer configured" in (await rig.who(**header)).json()["denied"]


async def test_password_logins_users_and_keys_never_the_broker(rig: Rig) -> None:
    answer = await rig.login("ana", PASSWORD)
    assert answer.status_code == 200 and answer.json()["scopes"] == ["account", "market"]
    token = answer.json()["token"]
    assert (await rig.who(headers={"X-Auth-Token": token})).json()["name"] == "ana"
    # An API key's name with the key as password.
    by_key = await rig.login("bot", KEY.key.reveal())
    assert by_key.status_code == 200 and by_key.json()["scopes"] == ["account", "market", "trade"]
    for user, password in (("ana", "wrong"), ("nobody", PASSWORD), ("bot", "k" * 23)):
        refused = await rig.login(user, password)
        assert refused.status_code == 401 and refused.json() == {"denied": "wrong user name or password"}
    # The user's password changed: its tokens end.
    changed = User("ana", Secret(hash_password("another password", n=2**4)), USER.scopes)
    rig.configure(ServerConfig(keys=(KEY,), users=(changed,)))
    assert (await rig.who(headers={"X-Auth-Token": token})).status_code == 401


async def test_password_guessing_is_throttled_per_address(rig: Rig) -> None:
    rig.configure(ServerConfig(keys=(KEY,), users=(USER,), auth_failure_burst=3, auth_failure_interval=60.0))
    statuses = [(await rig.login("ana", f"guess {n}")).status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert (await rig.login("ana", PASSWORD)).status_code == 429  # even the right one, until Retry-After
    await rig.clock.advance(60.0)
    assert (await rig.login("ana", PASSWORD)).status_code == 200


def test_password_hashes_and_the_users_table(tmp_path: Path) -> None:
    hashed = hash_password(PASSWORD, n=2**4)
    assert is_password_hash(hashed) and PASSWORD not in hashed
    assert check_password(PASSWORD, hashed) and not check_password(PASSWORD + "x", hashed)
    assert not is_password_hash(PASSWORD) and not is_password_hash("scrypt$1$8$1$AAAA$BBBB")
    config = tmp_path / "bridge.toml"
    config.write_text(f'[server.users.ana]\npassword_hash = "{hashed}"\nscopes = ["read", "trade"]\n')
    users = load_config(config, env={}).server.users
    assert [(u.name, sorted(u.scopes)) for u in users] == [("ana", ["account", "market", "trade"])]
    # A password written where the hash goes: refused, and not echoed.
    config.write_text(f'[server.users.ana]\npassword_hash = "{PASSWORD}"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config, env={})
    assert PASSWORD not in str(refused.value) + refused.value.remedy
    assert "brokerbridge hash-password" in refused.value.remedy
    assert expand_scopes(["read"]) == {"market", "account"}
    with pytest.raises(ValueError, match="unknown scope"):
        expand_scopes(["write"])


def test_hash_password_command_prints_a_hash_that_checks() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "brokerbridge.cli.main", "hash-password", "--stdin", "--user", "ana"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout
    line = next(line for line in done.stdout.splitlines() if line.startswith("password_hash"))
    assert check_password(PASSWORD, line.split('"')[1])
    assert done.stdout.startswith("[server.users.ana]")
    short = subprocess.run(
        [sys.executable, "-m", "brokerbridge.cli.main", "hash-password", "--stdin"],
        input="short\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2 and "at least" in short.stderr


async def test_expired_tokens_do_not_lock_their_address_out_forged_ones_do(rig: Rig) -> None:
    """Fifty pyRofex processes on one machine whose tokens expire together are not guessers: an
    expired or revoked token (ours, by its signature) is refused without counting against the
    address; a text that is no token of ours counts like a bad key."""
    rig.configure(ServerConfig(keys=(KEY,), users=(USER,), auth_failure_burst=3, auth_failure_interval=60.0))
    expired = [rig.logins.access.mint(key_grant(rig), ttl=10.0) for _ in range(5)]
    await rig.clock.advance(11.0)
    for issued in expired:
        assert (await rig.who(headers={"X-Auth-Token": issued.token})).status_code == 401
    fresh = rig.logins.access.mint(key_grant(rig))
    assert (await rig.who(headers={"X-Auth-Token": fresh.token})).status_code == 200
    forged = [(await rig.who(headers={"X-Auth-Token": f"bbt.x{n}.y"})).status_code for n in range(4)]
    assert forged == [401, 401, 401, 429]
    assert (await rig.who(headers={"X-Auth-Token": fresh.token})).status_code == 429
