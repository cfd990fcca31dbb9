"""`brokerbridge sim primary` as a user runs it: JSON endpoints line first, exit 0 on SIGINT."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys

import httpx

CLI = [sys.executable, "-m", "brokerbridge.cli.main"]
FAULT_FLAGS = [
    "--idle-close-s", "30", "--rest-trickle", "2", "--rest-headers-only", "3", "--block-user",
    "--option-arbitrage", "GFGC6000EN", "--freeze-underlying",
]  # fmt: skip


def test_cli_prints_the_endpoints_line_serves_and_exits_0_on_sigint() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERBRIDGE_")}
    proc = subprocess.Popen(
        [*CLI, "sim", "primary", "--port", "0", "--seed", "3", *FAULT_FLAGS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no endpoints line"
        line = json.loads(proc.stdout.readline())
        assert set(line) == {"venue", "rest", "ws", "control", "user", "password", "account"}
        assert line["venue"] == "primary" and line["rest"].endswith("/") and line["ws"].startswith("ws://")
        switches = httpx.get(line["control"] + "/faults").json()
        assert switches["rest_trickle_s"] == 2 and switches["rest_headers_only"] == 3
        assert switches["block_user"] is True
        assert switches["option_arbitrage"] == "GFGC6000EN" and switches["freeze_underlying"] is True
        httpx.post(line["control"] + "/faults/reset").raise_for_status()
        httpx.post(line["control"] + "/faults", json={"idle_close_s": 30}).raise_for_status()
        token = httpx.post(
            line["rest"] + "auth/getToken",
            headers={"X-Username": line["user"], "X-Password": line["password"]},
        ).headers["X-Auth-Token"]
        accounts = httpx.get(line["rest"] + "rest/accounts", headers={"X-Auth-Token": token}).json()
        assert accounts["accounts"][0]["name"] == line["account"]
        assert httpx.get(line["control"] + "/faults").json()["idle_close_s"] == 30
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
