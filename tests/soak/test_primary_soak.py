"""The short soak of the Primary-compatible endpoint (tests/soak/primary.py): 5 pyRofex processes and
20 WebSocket clients on `/primary/` of one `serve` for 20 s, the venue's tokens made short (14 s) and
the bridge renewing them every 8 s, so renewals happen inside the run: each must be one login that
ends only the token before it, with nothing refused and every client's `Md` flowing throughout.

The 10-minute run (50 pyRofex, 200 WebSocket clients, Primary's own 24 h tokens: ONE login, no
invalidation) is by hand: `python -m tests.soak.primary --seconds 600 --pyrofex 50 --ws 200`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.soak.primary import SoakOptions, run_soak

ARTIFACTS = Path(__file__).parents[2] / "artifacts" / "soak"
SHORT = SoakOptions(seconds=20, pyrofex=5, ws=20, token_ttl=14, relogin=8)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def test_pyrofex_and_websocket_clients_share_one_upstream_session_across_token_renewals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await run_soak(SHORT, tmp_path)
    with capsys.disabled():
        print("\n" + report.summary())
    if report.problems:
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        shutil.copytree(tmp_path, ARTIFACTS, ignore=shutil.ignore_patterns("cache", "state"))
        pytest.fail(f"the soak failed; serve.log kept in {ARTIFACTS}\n{report.summary()}", pytrace=False)
    upstream = report.upstream
    assert upstream["logins"] >= 2 and upstream["revoked_by_login"] == upstream["logins"] - 1
    assert upstream["rest_calls"], "the pyRofex processes' account calls reached the venue"
    assert all(c.md for c in report.clients) and all(w["md"] for w in report.workers)
