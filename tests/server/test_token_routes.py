"""The access-token routes (server/token_routes.py): `POST /api/tokens` from an API key or a
dashboard session (with its CSRF token), scopes narrowed to the minter's, `POST
/api/tokens/renew` up to the chain's limit, `DELETE /api/tokens/{id}` by whom it may — on the
app's FakeClock, in process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from brokerbridge.server.logins import COOKIE
from tests.server.web_app_rig import (
    ADMIN_KEY,
    APP,
    BRIDGE,
    MAX_AGE,
    READ_KEY,
    SESSION_TTL,
    TRADE_KEY,
    TTL,
    VIEW_KEY,
    bearer,
    web_rig,
)


async def test_a_key_mints_a_token_with_some_of_its_scopes(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        now = rig.clock.time()
        answer = await rig.http.post(
            "/api/tokens", json={"scopes": ["read"], "ttl_s": 300}, headers=bearer(READ_KEY)
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        issued = answer.json()
        assert issued["token"].startswith("bbt.") and issued["access_token"] == issued["token"]
        assert issued["scopes"] == ["account", "market"] and issued["scope"] == "account market"
        assert issued["expires_at"] == pytest.approx(now + 300) and issued["expires_in"] == 300
        assert issued["renew_until"] == pytest.approx(now + MAX_AGE)
        assert issued["token_type"] == "Bearer"
        who = await rig.who(bearer(issued["token"]))
        assert who["authenticated"] is True and who["scopes"] == ["account", "market"]
        assert (await rig.who({"X-Auth-Token": issued["token"]}))["scopes"] == ["account", "market"]
        # By default: what the key can see (read), never more than it holds.
        viewer = (await rig.http.post("/api/tokens", headers=bearer(VIEW_KEY))).json()
        assert viewer["scopes"] == ["market"] and viewer["expires_at"] == pytest.approx(now + TTL)
        # A one-time WebSocket token (/api/token) is for /ws, not for minting a renewable chain.
        once = (await rig.http.post("/api/token", headers=bearer(READ_KEY))).json()["token"]
        assert (await rig.http.post(f"/api/tokens?token={once}")).status_code == 403
        trader = await rig.http.post(
            "/api/tokens", json={"scopes": ["market", "trade"]}, headers=bearer(TRADE_KEY)
        )
        assert trader.json()["scopes"] == ["market", "trade"]


@pytest.mark.parametrize(
    ("key", "body", "status", "says"),
    [
        (VIEW_KEY, {"scopes": ["read"]}, 403, "'account'"),
        (READ_KEY, {"scopes": ["trade"]}, 403, "'trade'"),
        (ADMIN_KEY, {"scopes": ["trade"]}, 403, "'trade'"),  # admin grants all but trade
        (READ_KEY, {"scopes": ["root"]}, 400, "unknown scope"),
        (READ_KEY, {"scopes": []}, 403, "none of the scopes"),
        (READ_KEY, {"ttl_s": 5}, 400, "ttl_s"),
        (READ_KEY, {"ttl_s": TTL + 1}, 400, "ttl_s"),
        (READ_KEY, {"scopes": ["read"], "extra": 1}, 400, "extra"),
        (None, {}, 401, "needs an API key or a session"),
    ],
)
async def test_what_a_token_request_may_not_have(
    tmp_path: Path, key: str | None, body: dict[str, object], status: int, says: str
) -> None:
    async with web_rig(tmp_path) as rig:
        answer = await rig.http.post("/api/tokens", json=body, headers=bearer(key) if key else {})
        assert answer.status_code == status, answer.text
        assert says in answer.json()["error"]["message"]


async def test_tokens_renew_within_their_limit_and_expire(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        start = rig.clock.time()
        first = (await rig.http.post("/api/tokens", headers=bearer(READ_KEY))).json()
        # A token cannot mint tokens (it would escape its chain's limit): it renews.
        assert (await rig.http.post("/api/tokens", headers=bearer(first["token"]))).status_code == 403
        await rig.clock.advance(600)
        renewed = await rig.http.post("/api/tokens/renew", headers=bearer(first["token"]))
        assert renewed.status_code == 200 and renewed.headers["cache-control"] == "no-store"
        second = renewed.json()
        assert second["id"] == first["id"] and second["token"] != first["token"]
        assert second["expires_at"] == pytest.approx(rig.clock.time() + TTL)
        assert second["renew_until"] == pytest.approx(start + MAX_AGE)
        await rig.clock.advance(TTL - 600)  # the first has expired, the second has not
        assert (await rig.who(bearer(first["token"])))["status"] == 401
        assert (await rig.who(bearer(second["token"])))["authenticated"] is True
        third = (await rig.http.post("/api/tokens/renew", headers=bearer(second["token"]))).json()
        assert third["expires_at"] == pytest.approx(start + MAX_AGE)  # never past the chain's limit
        await rig.clock.advance(MAX_AGE - (rig.clock.time() - start))
        refused = await rig.http.post("/api/tokens/renew", headers=bearer(third["token"]))
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_authorized"
        no_token = await rig.http.post("/api/tokens/renew", headers=bearer(READ_KEY))
        assert no_token.status_code == 401 and "needs the access token" in no_token.json()["error"]["message"]


async def test_who_may_revoke_a_token(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:

        async def mint(key: str) -> dict[str, str]:
            answer = await rig.http.post("/api/tokens", headers=bearer(key))
            assert answer.status_code == 200
            return answer.json()

        by_itself, by_minter, by_admin, kept = [await mint(READ_KEY) for _ in range(4)]
        gone = await rig.http.delete(f"/api/tokens/{by_itself['id']}", headers=bearer(by_itself["token"]))
        assert gone.status_code == 200 and gone.json() == {"revoked": by_itself["id"]}
        assert (await rig.who(bearer(by_itself["token"])))["status"] == 401
        assert (
            await rig.http.delete(f"/api/tokens/{by_minter['id']}", headers=bearer(READ_KEY))
        ).status_code == 200
        assert (
            await rig.http.delete(f"/api/tokens/{by_admin['id']}", headers=bearer(ADMIN_KEY))
        ).status_code == 200
        # Another key, another token, nobody: refused, and the token lives on.
        assert (
            await rig.http.delete(f"/api/tokens/{kept['id']}", headers=bearer(TRADE_KEY))
        ).status_code == 403
        assert (
            await rig.http.delete(f"/api/tokens/{kept['id']}", headers=bearer(by_admin["token"]))
        ).status_code == 401
        assert (await rig.http.delete(f"/api/tokens/{kept['id']}")).status_code == 401
        assert (await rig.who(bearer(kept["token"])))["authenticated"] is True
        for token in (by_minter, by_admin):
            assert (await rig.who(bearer(token["token"])))["status"] == 401
            renew = await rig.http.post("/api/tokens/renew", headers=bearer(token["token"]))
            assert renew.status_code == 401  # the whole chain is revoked


async def test_a_dashboard_session_mints_with_its_csrf_token(tmp_path: Path) -> None:
    async with web_rig(tmp_path, access_token_max_age=2 * SESSION_TTL) as rig:
        cookie, csrf = await rig.sign_in(TRADE_KEY)
        session = {"Cookie": f"{COOKIE}={cookie}", "Origin": BRIDGE}
        forged = await rig.http.post("/api/tokens", json={"scopes": ["trade"]}, headers=session)
        assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["error"]["message"]
        answer = await rig.http.post(
            "/api/tokens", json={"scopes": ["read", "trade"]}, headers={**session, "X-CSRF-Token": csrf}
        )
        assert answer.status_code == 200, answer.text
        issued = answer.json()
        assert issued["scopes"] == ["account", "market", "trade"]
        # Never renewed past the session that minted it.
        assert issued["renew_until"] == pytest.approx(rig.clock.time() + SESSION_TTL)
        # The session revokes what it minted (a state change: its CSRF token again); the key that
        # signed it in is another minter.
        path = f"/api/tokens/{issued['id']}"
        assert (await rig.http.delete(path, headers=session)).status_code == 403
        assert (await rig.http.delete(path, headers=bearer(TRADE_KEY))).status_code == 403
        assert (await rig.http.delete(path, headers={**session, "X-CSRF-Token": csrf})).status_code == 200
        # A listed origin's page may call the routes with a key or token, never with the cookie.
        cross = await rig.http.post(
            "/api/tokens", json={}, headers={**session, "Origin": APP, "X-CSRF-Token": csrf}
        )
        assert cross.status_code == 401
