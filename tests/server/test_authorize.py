"""The sign-in flow for web apps (server/authorization.py, authorize_routes.py): `/authorize` with
PKCE → sign in → consent → 303 back with a one-time code → `POST /api/tokens` exchanges it with
the verifier for an access token of the consented scopes. On the app's FakeClock, in process.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from brokerbridge.server.logins import COOKIE
from tests.server.web_app_rig import (
    APP,
    BRIDGE,
    CALLBACK,
    EVIL,
    READ_KEY,
    TRADE_KEY,
    TTL,
    WebRig,
    authorize_query,
    bearer,
    hidden_fields,
    pkce,
    redirected,
    web_rig,
)

OWN = {"Origin": BRIDGE}  # the bridge's own page posts its forms


async def consent(rig: WebRig, cookie: str, query: str) -> dict[str, str]:
    """The consent page of `query` for the browser with `cookie`: its form's fields."""
    page = await rig.http.get(f"/authorize?{query}", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert page.status_code == 200, page.text
    assert 'action="/authorize"' in page.text
    return hidden_fields(page.text)


async def decide(rig: WebRig, cookie: str, fields: dict[str, str], **extra: str) -> httpx.Response:
    return await rig.http.post(
        "/authorize", data={**fields, **extra}, headers={"Cookie": f"{COOKIE}={cookie}", **OWN}
    )


async def exchange(rig: WebRig, code: str, verifier: str, **overrides: str) -> httpx.Response:
    """The web app's `fetch` of `POST /api/tokens` (a form body, from its own origin)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    return await rig.http.post("/api/tokens", data={**form, **overrides}, headers={"Origin": APP})


async def allowed_code(rig: WebRig, cookie: str, challenge: str, **extra: str) -> str:
    where, answer = redirected(
        await decide(
            rig, cookie, await consent(rig, cookie, authorize_query(challenge)), decision="allow", **extra
        )
    )
    assert where == CALLBACK and answer["state"] == "st-1"
    return answer["code"]


async def test_sign_in_consent_and_exchange(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        verifier, challenge = pkce()
        query = authorize_query(challenge, state="a b&c=d/é")
        # Not signed in: the page says how (an API key form, or serve's link), nothing else.
        page = await rig.http.get(f"/authorize?{query}")
        assert page.status_code == 200 and 'action="/authorize/sign-in"' in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        wrong = await rig.http.post(
            "/authorize/sign-in", data={**hidden_fields(page.text), "key": "x" * 20}, headers=OWN
        )
        assert wrong.status_code == 401 and 'action="/authorize/sign-in"' in wrong.text
        signed = await rig.http.post(
            "/authorize/sign-in", data={**hidden_fields(page.text), "key": READ_KEY}, headers=OWN
        )
        where, _ = redirected(signed)
        assert where == "/authorize" and signed.headers["location"] == f"/authorize?{query}"
        cookie = signed.cookies[COOKIE]
        rig.http.cookies.clear()
        # Signed in: the consent page, whose form may end up at the app's origin only.
        fields = await consent(rig, cookie, query)
        assert (
            f"form-action 'self' {APP}"
            in (await rig.http.get(f"/authorize?{query}", headers={"Cookie": f"{COOKIE}={cookie}"})).headers[
                "content-security-policy"
            ]
        )
        where, answer = redirected(await decide(rig, cookie, fields, decision="allow"))
        assert where == CALLBACK and answer["state"] == "a b&c=d/é" and set(answer) == {"code", "state"}
        issued = await exchange(rig, answer["code"], verifier, client_id="Opciones")
        assert issued.status_code == 200, issued.text
        assert issued.headers["access-control-allow-origin"] == APP
        assert issued.headers["cache-control"] == "no-store"
        token = issued.json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == TTL
        assert token["scopes"] == ["account", "market"]
        who = await rig.who({**bearer(token["access_token"]), "Origin": APP})
        assert who["authenticated"] is True and who["name"] == "reader"
        # A code exchanged as JSON works the same.
        verifier, challenge = pkce()
        code = await allowed_code(rig, cookie, challenge)
        body = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        }
        assert (await rig.http.post("/api/tokens", json=body, headers={"Origin": APP})).status_code == 200


async def test_trade_only_when_ticked_and_held(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        trader, _ = await rig.sign_in(TRADE_KEY)
        reader, _ = await rig.sign_in(READ_KEY)
        for cookie, ticked, scopes in (
            (trader, False, ["account", "market"]),
            (trader, True, ["account", "market", "trade"]),
            (reader, True, ["account", "market"]),  # the session has no trade to give
        ):
            verifier, challenge = pkce()
            fields = await consent(rig, cookie, authorize_query(challenge, scope="read trade"))
            where, answer = redirected(
                await decide(rig, cookie, fields, decision="allow", **({"trade": "on"} if ticked else {}))
            )
            token = (await exchange(rig, answer["code"], verifier)).json()
            assert token["scopes"] == scopes
        # Deny: the app hears access_denied with its state.
        _, challenge = pkce()
        where, answer = redirected(
            await decide(rig, trader, await consent(rig, trader, authorize_query(challenge)), decision="deny")
        )
        assert where == CALLBACK and answer == {"error": "access_denied", "state": "st-1"}


async def test_codes_are_bound_single_use_and_short_lived(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        cookie, _ = await rig.sign_in(READ_KEY)
        verifier, challenge = pkce()
        # PKCE mismatch: refused, and the code is used up by the attempt.
        code = await allowed_code(rig, cookie, challenge)
        other, _ = pkce()
        refused = await exchange(rig, code, other)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert (await exchange(rig, code, verifier)).json()["error"] == "invalid_grant"
        # Bound to redirect_uri and client_id.
        for overrides in ({"redirect_uri": f"{APP}/other"}, {"client_id": "Otra"}):
            code = await allowed_code(rig, cookie, challenge)
            assert (await exchange(rig, code, verifier, **overrides)).json()["error"] == "invalid_grant"
        # Used twice: the second is refused and the token of the first revoked (the code leaked).
        code = await allowed_code(rig, cookie, challenge)
        first = (await exchange(rig, code, verifier)).json()
        assert (await rig.who(bearer(first["token"])))["authenticated"] is True
        again = await exchange(rig, code, verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert (await rig.who(bearer(first["token"])))["status"] == 401
        # 60 s to exchange it.
        code = await allowed_code(rig, cookie, challenge)
        await rig.clock.advance(60)
        assert (await exchange(rig, code, verifier)).json()["error"] == "invalid_grant"
        # Not a code exchange at all.
        bad = await rig.http.post("/api/tokens", data={"grant_type": "password"}, headers={"Origin": APP})
        assert bad.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": f"{EVIL}/callback"}, None),  # not a listed origin: never redirected
        ({"redirect_uri": "/callback"}, None),
        ({"redirect_uri": f"{CALLBACK}#frag"}, None),
        ({"client_id": None}, None),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "read admin"}, "invalid_scope"),
    ],
)
async def test_bad_authorization_requests(
    tmp_path: Path, overrides: dict[str, str | None], error: str | None
) -> None:
    async with web_rig(tmp_path) as rig:
        cookie, _ = await rig.sign_in(READ_KEY)
        _, challenge = pkce()
        answer = await rig.http.get(
            f"/authorize?{authorize_query(challenge, **overrides)}", headers={"Cookie": f"{COOKIE}={cookie}"}
        )
        if error is None:
            assert answer.status_code == 400 and "location" not in answer.headers
            assert "<h1>" in answer.text
        else:
            where, fields = redirected(answer)
            assert where == CALLBACK and fields["error"] == error and fields["state"] == "st-1"


async def test_the_consent_form_is_this_sessions_and_this_sites(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        cookie, _ = await rig.sign_in(READ_KEY)
        _, challenge = pkce()
        fields = await consent(rig, cookie, authorize_query(challenge))
        forged = await decide(rig, cookie, {**fields, "csrf_token": "forged"}, decision="allow")
        assert forged.status_code == 403 and "location" not in forged.headers
        from_elsewhere = await rig.http.post(
            "/authorize",
            data={**fields, "decision": "allow"},
            headers={"Cookie": f"{COOKIE}={cookie}", "Origin": APP},
        )
        assert from_elsewhere.status_code == 403 and "location" not in from_elsewhere.headers
        # A redirect_uri changed in the form is checked again.
        changed = await decide(rig, cookie, {**fields, "redirect_uri": f"{EVIL}/x"}, decision="allow")
        assert changed.status_code == 400 and "location" not in changed.headers
