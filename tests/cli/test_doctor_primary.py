"""`brokerbridge doctor primary` against the Primary simulator: the healthy chain, a wrong password,
a blocked account, a host that is no Primary API, a `matriz.*` host (and `--fix` writing the API
host to the config file), a rejected WebSocket handshake and a stalled feed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from doctor_helpers import doctor, drive, primary_config

from brokerbridge.cli.doctor.command import diagnose_primary
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import PrimaryConfig
from brokerbridge.core.secret import Secret
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator

pytestmark = pytest.mark.asyncio(loop_scope="module")

STEPS = ["host", "reach", "login", "rest", "ws_handshake", "md", "os"]


async def test_healthy_chain_passes_every_step(primary_sim: PrimarySimulator, tmp_path: Path) -> None:
    config = primary_config(tmp_path / "bb.toml", primary_sim)
    run = await doctor("primary", "--config", str(config), "--json")
    assert run.exit_code == 0, run.output
    assert run.statuses() == dict.fromkeys(STEPS, "pass")
    assert "plain TCP ok" in run.step("reach")["evidence"]
    assert "MERV - XMEV - GGAL - 24hs" in run.step("md")["evidence"]
    assert primary_sim.endpoints.account in run.step("os")["evidence"]
    assert primary_sim.endpoints.password not in run.output


async def test_venue_option_is_an_alias(primary_sim: PrimarySimulator, tmp_path: Path) -> None:
    config = primary_config(tmp_path / "bb.toml", primary_sim)
    run = await doctor("--venue", "primary", "--config", str(config))
    assert run.exit_code == 0, run.output
    assert "7/7 steps passed" in run.output and primary_sim.endpoints.password not in run.output


async def test_bad_password(primary_sim: PrimarySimulator, tmp_path: Path) -> None:
    config = primary_config(tmp_path / "bb.toml", primary_sim, password="not-the-password")
    run = await doctor("primary", "--config", str(config), "--json", "--fix")
    assert run.exit_code == 1
    login = run.step("login")
    assert login["status"] == "fail" and "or its password is wrong" in login["cause"]
    assert "another environment" in login["cause"] and "primary.password" in login["remedy"]
    assert login["evidence"].startswith("HTTP 401")
    assert {run.statuses()[k] for k in ("rest", "ws_handshake", "md", "os")} == {"skipped"}
    assert "not-the-password" not in run.output
    (report,) = run.json()["fixes"]
    assert not report["applied"] and report["step"] == "login"


async def test_blocked_account_is_told_apart_from_a_wrong_password(
    primary_sim: PrimarySimulator, tmp_path: Path
) -> None:
    primary_sim.faults.apply({"block_user": True})
    run = await doctor(
        "primary", "--config", str(primary_config(tmp_path / "bb.toml", primary_sim)), "--json"
    )
    assert run.exit_code == 1
    login = run.step("login")
    assert "is blocked" in login["cause"] and "contact your broker" in login["remedy"]
    assert "locked" in login["evidence"]


async def test_a_host_that_is_no_primary_api_is_the_wrong_environment(
    primary_sim: PrimarySimulator, kraken_sim: KrakenSimulator, tmp_path: Path
) -> None:
    elsewhere = kraken_sim.endpoints.rest + "/"
    config = primary_config(tmp_path / "bb.toml", primary_sim, environment=elsewhere)
    run = await doctor("primary", "--config", str(config), "--json")
    assert run.exit_code == 1
    assert run.statuses()["reach"] == "pass"
    login = run.step("login")
    assert "is not a Primary API" in login["cause"] and "wrong environment" in login["cause"]


async def test_matriz_host_is_explained_and_fix_writes_the_api_environment(
    primary_sim: PrimarySimulator, tmp_path: Path
) -> None:
    config = primary_config(tmp_path / "bb.toml", primary_sim, environment="matriz.cocos.xoms.com.ar")
    run = await doctor("primary", "--config", str(config), "--json")
    assert run.exit_code == 1
    host = run.step("host")
    assert "Matriz web app" in host["cause"] and "_mtz_web_key" in host["cause"]
    assert "environment = 'cocos'" in host["remedy"] and "api.cocos.xoms.com.ar" in host["remedy"]
    assert {run.statuses()[k] for k in STEPS[1:]} == {"skipped"}
    assert run.step("os")["cause"] == "skipped: “API host” failed"

    # The fix itself is offline; the re-run then reaches for the real broker host, so only the
    # host step's outcome is asserted.
    fixed = await doctor("primary", "--config", str(config), "--json", "--fix", "--timeout", "3")
    assert fixed.step("host")["status"] == "pass"
    assert "api.cocos.xoms.com.ar" in fixed.step("host")["evidence"]
    written = config.read_text(encoding="utf-8")
    assert 'environment = "cocos"' in written
    assert "# Primary through my broker: keep this comment" in written
    (report,) = [f for f in fixed.json()["fixes"] if f["step"] == "host"]
    assert report["applied"] and f"written to {config}" in report["detail"]


async def test_matriz_from_env_flag_is_checked_but_not_written(
    primary_sim: PrimarySimulator, tmp_path: Path
) -> None:
    config = primary_config(tmp_path / "bb.toml", primary_sim)
    before = config.read_text(encoding="utf-8")
    run = await doctor(
        "primary", "--config", str(config), "--env", "https://matriz.bull.xoms.com.ar/", "--json"
    )
    assert "environment = 'bull'" in run.step("host")["remedy"]
    fixed = await doctor(
        "primary",
        "--config",
        str(config),
        "--env",
        "matriz.bull.xoms.com.ar",
        "--json",
        "--fix",
        "--timeout",
        "3",
    )
    (report,) = [f for f in fixed.json()["fixes"] if f["step"] == "host"]
    assert "not written" in report["detail"]
    assert config.read_text(encoding="utf-8") == before


async def test_rejected_websocket_handshake(primary_sim: PrimarySimulator, tmp_path: Path) -> None:
    primary_sim.faults.apply({"reject_ws_handshake": -1})
    run = await doctor(
        "primary", "--config", str(primary_config(tmp_path / "bb.toml", primary_sim)), "--json"
    )
    assert run.exit_code == 1
    handshake = run.step("ws_handshake")
    assert "handshake was rejected with HTTP 503" in handshake["cause"]
    assert "retry in a minute" in handshake["remedy"]
    assert run.statuses()["rest"] == "pass"
    assert run.statuses()["md"] == "skipped" and run.statuses()["os"] == "skipped"


async def test_stalled_market_data_is_named_as_a_stall(primary_sim: PrimarySimulator) -> None:
    primary_sim.faults.apply({"stall": "public"})
    ep = primary_sim.endpoints
    config = PrimaryConfig(
        environment=ep.rest, user=ep.user, password=Secret(ep.password), account=ep.account
    )
    clock = FakeClock(wall_start=time.time())
    report, secrets = await drive(clock, diagnose_primary(config, clock=clock, step_timeout=5))
    statuses = {r.key: r.status for r in report.results}
    assert statuses == {**dict.fromkeys(STEPS[:5], "pass"), "md": "fail", "os": "skipped"}
    (md,) = [r for r in report.results if r.key == "md"]
    assert md.cause.startswith("stalled feed: no Md for 'MERV - XMEV - GGAL - 24hs' within 5 s")
    assert "revoked by another login" in md.remedy
    assert ep.password in secrets  # handed to the renderer for masking


async def test_unknown_instrument_is_refused_with_a_remedy(
    primary_sim: PrimarySimulator, tmp_path: Path
) -> None:
    config = primary_config(tmp_path / "bb.toml", primary_sim)
    run = await doctor("primary", "--config", str(config), "--json", "--symbol", "MERV - XMEV - NOPE - 24hs")
    assert run.exit_code == 1
    assert "NOPE" in run.step("md")["cause"] and "--symbol" in run.step("md")["remedy"]


async def test_fix_removes_a_matriz_ws_url_when_the_environment_is_already_right(
    primary_sim: PrimarySimulator, tmp_path: Path
) -> None:
    """docs/doctor.md: --fix removes matriz `ws_url` entries. Before, with the environment already
    right, the web app's socket failed the host step as something --fix "cannot fix"."""
    config = primary_config(tmp_path / "bb.toml", primary_sim)
    with config.open("a", encoding="utf-8") as file:
        file.write('ws_url = "wss://matriz.cocos.xoms.com.ar/ws"  # copied from the browser\n')
    run = await doctor("primary", "--config", str(config), "--json")
    host = run.step("host")
    assert host["status"] == "fail" and host["fixable"], host
    assert "Matriz web app" in host["cause"] and "primary.ws_url" in host["cause"]
    assert "remove ws_url" in host["remedy"]

    fixed = await doctor("primary", "--config", str(config), "--json", "--fix")
    assert fixed.exit_code == 0, fixed.output  # every step, against the environment's own socket
    assert fixed.step("host")["note"].startswith("fixed by --fix")
    written = config.read_text(encoding="utf-8")
    assert "ws_url" not in written and "matriz" not in written
    assert f'environment = "{primary_sim.endpoints.rest}"' in written
    assert "# Primary through my broker: keep this comment" in written
    (report,) = [f for f in fixed.json()["fixes"] if f["step"] == "host"]
    assert report["applied"] and f"written to {config}" in report["detail"]
    assert "removed ws_url" in report["detail"]


async def test_the_same_with_a_broker_environment_name(tmp_path: Path) -> None:
    """The case as reported: `environment = "cocos"` and the Matriz socket in ws_url (only the host
    step and the file are looked at: the re-run reaches for the real broker)."""
    config = tmp_path / "bb.toml"
    config.write_text(
        '[primary]\nenvironment = "cocos"\nws_url = "wss://matriz.cocos.xoms.com.ar/ws"\n'
        'user = "api-user"\npassword = "s3cret-pass"\naccount = "1"\n',
        encoding="utf-8",
    )
    fixed = await doctor("primary", "--config", str(config), "--json", "--fix", "--timeout", "2")
    assert fixed.step("host")["status"] == "pass", fixed.output
    assert "wss://api.cocos.xoms.com.ar/" in fixed.step("host")["evidence"]
    assert config.read_text(encoding="utf-8").splitlines()[:2] == ["[primary]", 'environment = "cocos"']
    assert "ws_url" not in config.read_text(encoding="utf-8")
