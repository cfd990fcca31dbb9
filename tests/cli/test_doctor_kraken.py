"""`brokerbridge doctor kraken` against the Kraken simulator: the healthy chain and every failure
the simulator's switches reproduce, each with its step, cause, remedy and exit code; `--fix`."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from doctor_helpers import doctor, drive, kraken_config

from brokerbridge.cli.doctor.command import diagnose_kraken
from brokerbridge.cli.doctor.render import to_json
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import KrakenConfig
from brokerbridge.core.errors import PermissionDenied
from brokerbridge.core.secret import Secret
from brokerbridge.io.kraken.rest import KrakenRestClient
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.kraken.account import ALL_PERMISSIONS, Permission
from brokerbridge.venues.kraken import rest as kraken_rest
from brokerbridge.venues.kraken.auth import NonceSource

pytestmark = pytest.mark.asyncio(loop_scope="module")

STEPS = ["credentials", "rest", "clock", "private", "orders", "ws_token", "ws_public", "ws_private"]


def _cfg(tmp_path: Path, sim: KrakenSimulator, key: str, secret: str) -> str:
    return str(kraken_config(tmp_path / "bb.toml", sim, key, secret))


def _without(*denied: Permission) -> set[Permission]:
    return set(ALL_PERMISSIONS) - set(denied)


async def test_healthy_key_passes_every_step_and_exits_0(kraken_sim: KrakenSimulator, tmp_path: Path) -> None:
    key, secret = kraken_sim.create_key()
    config = kraken_config(tmp_path / "bb.toml", kraken_sim, key, secret)
    run = await doctor("kraken", "--config", str(config), "--json")
    assert run.exit_code == 0, run.output
    assert run.statuses() == dict.fromkeys(STEPS, "pass")
    assert "balances snapshot with 5 assets" in run.step("ws_private")["evidence"]
    assert run.json()["summary"]["broken"] == []
    assert secret not in run.output and key not in run.output


async def test_table_output_masks_the_key_and_secret(kraken_sim: KrakenSimulator, tmp_path: Path) -> None:
    key, secret = kraken_sim.create_key()
    run = await doctor("kraken", "--config", _cfg(tmp_path, kraken_sim, key, secret))
    assert run.exit_code == 0, run.output
    assert "8/8 steps passed" in run.output
    assert secret not in run.output and key not in run.output
    assert f"{key[:4]}…" in run.output  # recognisable, not usable


async def test_json_holds_no_token_even_if_a_message_echoed_it(kraken_sim: KrakenSimulator) -> None:
    key, secret = kraken_sim.create_key()
    ep = kraken_sim.endpoints
    config = KrakenConfig(ep.rest, ep.ws_public, ep.ws_private, api_key=key, api_secret=Secret(secret))
    clock = FakeClock(wall_start=time.time())
    report, secrets = await drive(clock, diagnose_kraken(config, clock=clock))
    assert report.ok
    token = next(s for s in secrets if s not in (key, secret))
    report.results[0] = type(report.results[0])(**{**_fields(report.results[0]), "evidence": f"echo {token}"})
    text = to_json(report, secrets)
    assert token not in text and "echo ***" in text


def _fields(result: object) -> dict[str, object]:
    return {name: getattr(result, name) for name in result.__slots__}  # type: ignore[attr-defined]


async def test_invalid_key(kraken_sim: KrakenSimulator, tmp_path: Path) -> None:
    _, secret = kraken_sim.create_key()
    config = kraken_config(tmp_path / "bb.toml", kraken_sim, "A" * 56, secret)
    run = await doctor("kraken", "--config", str(config), "--json")
    assert run.exit_code == 1
    private = run.step("private")
    assert private["status"] == "fail"
    assert "does not know this API key" in private["cause"] and "EAPI:Invalid key" in private["cause"]
    assert "copy the API key again" in private["remedy"]
    assert run.statuses()["ws_token"] == "skipped" and run.statuses()["ws_private"] == "skipped"
    assert run.statuses()["ws_public"] == "pass"  # the public side does not need the key
    assert run.json()["summary"]["first"].startswith("signed call (Balance):")


async def test_wrong_secret_is_an_invalid_signature(kraken_sim: KrakenSimulator, tmp_path: Path) -> None:
    key, _ = kraken_sim.create_key()
    _, other_secret = kraken_sim.create_key()
    run = await doctor(
        "kraken",
        "--config",
        _cfg(tmp_path, kraken_sim, key, other_secret),
        "--json",
    )
    assert run.exit_code == 1
    private = run.step("private")
    assert "EAPI:Invalid signature" in private["cause"] and "the secret is wrong" in private["cause"]
    assert "kraken.api_secret" in private["remedy"]
    assert other_secret not in run.output


async def test_secret_that_is_not_base64_is_a_config_error_before_any_step(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    # Like every command: load_config refuses it (exit 2, the setting and the remedy on stderr;
    # tests/unit/test_config.py holds the message), so no step runs against the venue.
    key, _ = kraken_sim.create_key()
    run = await doctor(
        "kraken",
        "--config",
        _cfg(tmp_path, kraken_sim, key, "not*base64!"),
        "--json",
    )
    assert run.exit_code == 2
    assert run.output == ""
    assert "not*base64!" not in run.output


async def _poison(sim: KrakenSimulator, key: str, secret: str) -> None:
    """Another client (nonces at 1e8/s, like some SDKs) uses the key first."""
    ep = sim.endpoints
    config = KrakenConfig(ep.rest, api_key=key, api_secret=Secret(secret))
    other = KrakenRestClient(config, nonces=NonceSource(time.time, scale=100_000_000))
    try:
        await other.call(kraken_rest.balance_request())
    finally:
        await other.aclose()


async def test_invalid_nonce_is_explained_and_fix_finds_a_larger_scale(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    key, secret = kraken_sim.create_key()
    await _poison(kraken_sim, key, secret)
    config = kraken_config(tmp_path / "bb.toml", kraken_sim, key, secret)
    run = await doctor("kraken", "--config", str(config), "--json")
    assert run.exit_code == 1
    private = run.step("private")
    assert "another client uses the same key with a larger nonce scale" in private["cause"]
    assert "same time" in private["cause"]  # or concurrent use
    assert "Nonce window" in private["remedy"] and private["fixable"]

    fixed = await doctor("kraken", "--config", str(config), "--json", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.statuses() == dict.fromkeys(STEPS, "pass")
    assert fixed.step("private")["note"].startswith("fixed by --fix")
    written = config.read_text(encoding="utf-8")
    assert "nonce_scale = 100000000" in written
    assert "# my Kraken set-up: keep this comment" in written and "# from the key page" in written
    # The written scale is what the next run uses: green without --fix.
    again = await doctor("kraken", "--config", str(config), "--json")
    assert again.exit_code == 0, again.output


async def test_missing_query_funds_does_not_stop_the_websocket_steps(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    key, secret = kraken_sim.create_key(permissions=_without(Permission.QUERY_FUNDS))
    run = await doctor("kraken", "--config", _cfg(tmp_path, kraken_sim, key, secret), "--json")
    assert run.exit_code == 1
    assert "Query Funds" in run.step("private")["cause"]
    assert "Funds permissions" in run.step("private")["remedy"]
    assert run.statuses()["ws_token"] == "pass" and run.statuses()["ws_private"] == "pass"


async def test_missing_websockets_permission_gives_the_exact_steps(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    key, secret = kraken_sim.create_key(permissions=_without(Permission.WEBSOCKETS))
    config = kraken_config(tmp_path / "bb.toml", kraken_sim, key, secret)
    run = await doctor("kraken", "--config", str(config), "--json", "--fix")
    assert run.exit_code == 1
    token = run.step("ws_token")
    assert "Access WebSockets API" in token["cause"]
    assert "Settings › API › edit the key › Other › tick “Access WebSockets API”" in token["remedy"]
    assert "wait a minute or two" in token["remedy"]
    assert run.statuses()["ws_private"] == "skipped"
    # --fix cannot change key permissions and says so.
    (report,) = [f for f in run.json()["fixes"] if f["step"] == "ws_token"]
    assert not report["applied"] and report["detail"].startswith("cannot be fixed automatically")


async def test_expired_token_is_named_and_fix_fetches_a_fresh_one(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    key, secret = kraken_sim.create_key()
    config = kraken_config(tmp_path / "bb.toml", kraken_sim, key, secret)
    kraken_sim.faults.apply({"stale_tokens": 1})
    run = await doctor("kraken", "--config", str(config), "--json")
    assert run.exit_code == 1
    private_ws = run.step("ws_private")
    assert "token was refused" in private_ws["cause"] and "expired or was invalidated" in private_ws["cause"]
    assert "fresh token" in private_ws["remedy"] and private_ws["fixable"]

    kraken_sim.faults.apply({"stale_tokens": 1})
    fixed = await doctor("kraken", "--config", str(config), "--json", "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert fixed.step("ws_private")["note"].startswith("fixed by --fix")


async def test_clock_skew_is_reported_with_the_time_sync_command(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    key, secret = kraken_sim.create_key()
    kraken_sim.faults.apply({"clock_offset_s": -30})
    config = kraken_config(tmp_path / "bb.toml", kraken_sim, key, secret)
    run = await doctor("kraken", "--config", str(config), "--json", "--fix")
    assert run.exit_code == 1
    clock = run.step("clock")
    # Kraken's Time has whole seconds: 30 s behind reads as 30 or 31.
    assert re.search(r"clock is 3[01] s ahead of Kraken's", clock["cause"]), clock["cause"]
    assert "timedatectl set-ntp true" in clock["remedy"] and "chronyc" in clock["remedy"]
    assert run.statuses()["private"] == "pass"  # a skew alone blocks nothing
    (report,) = [f for f in run.json()["fixes"] if f["step"] == "clock"]
    assert not report["applied"] and "needs root" in report["detail"]


def _config(sim: KrakenSimulator) -> KrakenConfig:
    ep = sim.endpoints
    return KrakenConfig(
        ep.rest, ep.ws_public, ep.ws_private, api_key=ep.api_key, api_secret=Secret(ep.api_secret)
    )


async def test_stalled_public_feed_is_named_after_the_timeout(kraken_sim: KrakenSimulator) -> None:
    kraken_sim.faults.apply({"stall": "public"})
    clock = FakeClock(wall_start=time.time())
    report, _ = await drive(clock, diagnose_kraken(_config(kraken_sim), clock=clock, step_timeout=5))
    (public,) = [r for r in report.results if r.key == "ws_public"]
    assert public.status == "fail" and public.cause.startswith("stalled feed: no ticker message within 5 s")
    assert "connected; no message yet" in public.cause
    assert report.exit_code == 1
    assert all(r.passed for r in report.results if r.key != "ws_public")


async def test_stalled_private_feed_is_the_balance_shows_0_case(kraken_sim: KrakenSimulator) -> None:
    kraken_sim.faults.apply({"stall": "private"})
    clock = FakeClock(wall_start=time.time())
    report, _ = await drive(clock, diagnose_kraken(_config(kraken_sim), clock=clock, step_timeout=5))
    (private,) = [r for r in report.results if r.key == "ws_private"]
    assert private.status == "fail" and "no balances snapshot within 5 s" in private.cause
    assert "balance shows 0" in private.cause


async def test_unknown_venue_and_misplaced_env_exit_2() -> None:
    assert (await doctor("bitfinex")).exit_code == 2
    assert (await doctor("kraken", "--env", "cocos")).exit_code == 2
    assert (await doctor("kraken", "--venue", "primary")).exit_code == 2


async def test_no_credentials_fails_the_first_step_and_skips_the_signed_ones(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    ep = kraken_sim.endpoints
    config = tmp_path / "bb.toml"
    config.write_text(f'[kraken]\nrest_url = "{ep.rest}"\nws_url = "{ep.ws_public}"\n', encoding="utf-8")
    run = await doctor("--config", str(config), "--json")  # kraken is the default venue
    assert run.exit_code == 1
    assert "no Kraken API key" in run.step("credentials")["cause"]
    assert run.statuses()["ws_public"] == "pass"
    assert run.statuses()["private"] == "skipped" and run.statuses()["ws_private"] == "skipped"


# -- permissions: the bot guide's checklist, and the trading ones with --trading ------------------------

CHECKLIST = [
    (Permission.QUERY_FUNDS, "private", "Query Funds"),
    (Permission.QUERY_OPEN, "orders", "Query Open Orders & Trades"),
    (Permission.QUERY_CLOSED, "orders", "Query Closed Orders & Trades"),
    (Permission.WEBSOCKETS, "ws_token", "Access WebSockets API"),
]


@pytest.mark.parametrize(("denied", "step", "label"), CHECKLIST, ids=[c[2] for c in CHECKLIST])
async def test_each_permission_of_the_checklist_is_checked_and_named(
    kraken_sim: KrakenSimulator, tmp_path: Path, denied: Permission, step: str, label: str
) -> None:
    key, secret = kraken_sim.create_key(permissions=_without(denied))
    run = await doctor("kraken", "--config", _cfg(tmp_path, kraken_sim, key, secret), "--json")
    assert run.exit_code == 1, run.output  # before: Query Open / Closed denied passed every step
    failed = {k: v for k, v in run.statuses().items() if v == "fail"}
    assert failed == {step: "fail"}, failed
    assert f"“{label}”" in run.step(step)["cause"]
    assert "Settings › API › edit the key" in run.step(step)["remedy"]


async def test_every_missing_order_permission_is_named_in_one_step(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    key, secret = kraken_sim.create_key(permissions=_without(Permission.QUERY_OPEN, Permission.QUERY_CLOSED))
    run = await doctor("kraken", "--config", _cfg(tmp_path, kraken_sim, key, secret), "--json")
    orders = run.step("orders")
    assert orders["status"] == "fail"
    assert "“Query Open Orders & Trades” and “Query Closed Orders & Trades”" in orders["cause"]
    assert "Query open orders & trades" in orders["remedy"]
    assert "Query closed orders & trades" in orders["remedy"]
    assert run.statuses()["ws_private"] == "pass"  # not blocking: the streams need other permissions


async def test_trading_permissions_are_checked_with_trading_and_nothing_is_placed(
    kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    trading = (Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS)
    key, secret = kraken_sim.create_key(permissions=_without(*trading))
    config = _cfg(tmp_path, kraken_sim, key, secret)
    assert (await doctor("kraken", "--config", config, "--json")).exit_code == 0  # not asked for
    run = await doctor("kraken", "--config", config, "--json", "--trading")
    assert run.exit_code == 1
    step = run.step("trading")
    assert "“Create & Modify Orders” and “Cancel/Close Orders”" in step["cause"]
    assert "Create & modify orders" in step["remedy"] and "Cancel & close orders" in step["remedy"]
    # With them the step passes, and the probes placed and cancelled nothing.
    key, secret = kraken_sim.create_key()
    account = kraken_sim.exchange.account
    before = (len(account.orders), sum(o.status == "canceled" for o in account.orders.values()))
    config = _cfg(tmp_path, kraken_sim, key, secret)
    granted = await doctor("kraken", "--config", config, "--json", "--trading")
    assert granted.exit_code == 0, granted.output
    assert "Create & Modify Orders" in granted.step("trading")["evidence"]
    assert (len(account.orders), sum(o.status == "canceled" for o in account.orders.values())) == before
    assert (await doctor("primary", "--trading")).exit_code == 2


async def test_serve_names_the_permission_kraken_refused(kraken_sim: KrakenSimulator) -> None:
    """Kraken's `EGeneral:Permission denied` names nothing; the error brokerbridge raises (and `serve`
    logs and reports) names the permission the call needs."""
    key, secret = kraken_sim.create_key(permissions=_without(Permission.QUERY_CLOSED))
    ep = kraken_sim.endpoints
    client = KrakenRestClient(KrakenConfig(ep.rest, api_key=key, api_secret=Secret(secret)))
    try:
        with pytest.raises(PermissionDenied) as refused:
            await client.call(kraken_rest.trades_history_request())
    finally:
        await client.aclose()
    assert refused.value.code == "EGeneral:Permission denied"
    assert "“Query Closed Orders & Trades”" in refused.value.remedy
    assert "brokerbridge doctor kraken" in refused.value.remedy


async def test_no_credentials_and_default_urls_check_the_simulator_as_documented() -> None:
    """docs/configuration.md: `doctor` with no credentials and the default URLs uses the embedded
    simulator (before: it went to the real Kraken and failed the credentials step)."""
    run = await doctor("kraken", "--json", "--timeout", "5")
    assert run.exit_code == 0, run.output
    assert run.json()["simulated"] is True and "EMBEDDED SIMULATOR" in run.json()["target"]
    real = await doctor("kraken", "--json", "--no-sim", "--timeout", "1")
    assert real.json()["simulated"] is False
    assert "no Kraken API key" in real.step("credentials")["cause"]
