"""Bad config files and bad credentials, as a user meets them on the command line.

A config mistake stops `serve`, `watch` and `doctor` alike with exit status 2 and one message on
stderr that names the setting and the fix — no traceback, and no secret from the file. Wrong
credentials against the simulators are reported with the venue's reason and what to do: `doctor`
exits 1 (documented: "exits 1 with a remedy per failed check"), `watch` shows the stream's status.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.hardening.cli_rig import (
    CLIENT_KEY,
    KRAKEN_KEY,
    KRAKEN_SECRET,
    PRIMARY_PASSWORD,
    SECRETS,
    leaks,
    one_line,
    process,
    run,
    simulator,
    toml_string,
)

pytestmark = pytest.mark.timeout(300)

# Valid settings holding the distinctive secrets; each case adds one mistake.
SERVER = "[server.keys.bot]"
SECRETS_TOML = f"""
[kraken]
api_key = {toml_string(KRAKEN_KEY)}
api_secret = {toml_string(KRAKEN_SECRET)}

[primary]
user = "someone"
password = {toml_string(PRIMARY_PASSWORD)}

[server.keys.bot]
key = {toml_string(CLIENT_KEY)}
scopes = ["market", "account"]
"""

# name → (file text, fragments the one message must hold: the setting, and the fix)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "toml syntax": (
        f'[kraken]\napi_secret = "{KRAKEN_SECRET}\n',
        ("not valid TOML", "line 2"),
    ),
    "unknown section": (SECRETS_TOML + "\n[krakn]\nrest_url = 'https://x'\n", ("krakn", "[kraken]")),
    "unknown field": (
        SECRETS_TOML.replace(SERVER, f"[server]\ngrace = 5\n\n{SERVER}"),
        ("server.grace", "grace_s"),
    ),
    "wrong type": (
        SECRETS_TOML.replace(SERVER, f'[server]\nmax_subscriptions = "many"\n\n{SERVER}'),
        ("server.max_subscriptions", "whole number"),
    ),
    "wrong type in a venue": (
        SECRETS_TOML.replace('user = "someone"', "user = 5"),
        ("primary.user", "string"),
    ),
    "bad url": (
        SECRETS_TOML.replace("[kraken]", '[kraken]\nrest_url = "ftp://api.example.com"'),
        ("kraken.rest_url", "https://"),
    ),
    "bad scope": (
        SECRETS_TOML.replace('["market", "account"]', '["trading"]'),
        ("scopes", "market, account, trade, admin"),
    ),
    # A venue configured in part: an error at load on every command, never a simulator.
    "half a kraken key": (
        SECRETS_TOML.replace(f"api_secret = {toml_string(KRAKEN_SECRET)}\n", ""),
        ("kraken.api_key is set", "kraken.api_secret is missing"),
    ),
    "kraken secret not base64": (
        SECRETS_TOML.replace(toml_string(KRAKEN_SECRET), toml_string(KRAKEN_SECRET + "!")),
        ("kraken.api_secret", "not valid base64", "key page"),
    ),
    "primary in part": (
        SECRETS_TOML.replace(
            f'[primary]\nuser = "someone"\npassword = {toml_string(PRIMARY_PASSWORD)}\n',
            '[primary]\nenvironment = "cocos"\n',
        ),
        ("primary.environment", "primary.user and primary.password missing", "simulator"),
    ),
    "short client key": (
        SECRETS_TOML.replace(toml_string(CLIENT_KEY), toml_string(CLIENT_KEY[:12])),
        ("server.keys.bot.key", "16 to 256 characters"),
    ),
}


@pytest.mark.parametrize("command", ["serve", "watch", "doctor"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_config_mistake_is_one_clear_message_and_exit_2(tmp_path: Path, case: str, command: str) -> None:
    text, fragments = CASES[case]
    config = tmp_path / "bad.toml"
    config.write_text(text)
    sim = ["--no-sim"] if command != "doctor" else []  # the file alone must decide
    result = run(command, "--config", str(config), *sim)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    message = one_line(result.stderr)
    assert message.startswith("error: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not leaks(output, (*SECRETS, CLIENT_KEY[:12])), output


def _wrong_kraken_config(tmp_path: Path, sim: dict[str, str]) -> Path:
    config = tmp_path / "wrong.toml"
    config.write_text(
        f"""
[kraken]
rest_url = {toml_string(sim["rest"])}
ws_url = {toml_string(sim["ws_public"])}
ws_auth_url = {toml_string(sim["ws_private"])}
api_key = {toml_string(KRAKEN_KEY)}
api_secret = {toml_string(KRAKEN_SECRET)}

[server.keys.bot]
key = {toml_string(CLIENT_KEY)}
scopes = ["market", "account"]
"""
    )
    return config


def test_doctor_with_wrong_kraken_credentials_names_the_key_and_exits_1(tmp_path: Path) -> None:
    with simulator("kraken") as sim:
        result = run("doctor", "kraken", "--config", str(_wrong_kraken_config(tmp_path, sim)))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    text = one_line(output)
    assert "EAPI:Invalid key" in text and "kraken.api_key" in text, text
    assert not leaks(output), output


def test_doctor_with_a_wrong_primary_password_names_the_credentials_and_exits_1(tmp_path: Path) -> None:
    with simulator("primary") as sim:
        config = tmp_path / "wrong.toml"
        config.write_text(
            f"""
[primary]
environment = {toml_string(sim["rest"])}
rest_url = {toml_string(sim["rest"])}
ws_url = {toml_string(sim["ws"])}
user = {toml_string(sim["user"])}
password = {toml_string(PRIMARY_PASSWORD)}
account = {toml_string(sim["account"])}
"""
        )
        result = run("doctor", "primary", "--config", str(config))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    text = one_line(output).lower()
    assert "password" in text and "user" in text, text
    assert not leaks(output), output


def test_watch_with_wrong_credentials_shows_why_the_private_stream_is_down(tmp_path: Path) -> None:
    with simulator("kraken") as sim:
        config = _wrong_kraken_config(tmp_path, sim)
        # 3: the account stream is the Bridge's own, open before watch joins it: its current status
        # comes first, then the attempt's and the failure's.
        result = run("watch", "--config", str(config), "-C", "balances", "--count", "3", "--json")
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    statuses = [json.loads(line) for line in result.stdout.splitlines()]
    assert any("EAPI:Invalid key" in s.get("reason", "") for s in statuses), statuses
    assert "API key" in one_line(result.stderr)
    assert not leaks(output), output


def test_serve_with_wrong_credentials_stays_up_and_tells_account_clients_why(tmp_path: Path) -> None:
    with simulator("kraken") as sim:
        config = _wrong_kraken_config(tmp_path, sim)
        with process("serve", "--port", "0", "--config", str(config), cwd=tmp_path) as serve:
            ws_url = ""
            while not ws_url:
                line = serve.read_line()
                if "WebSocket:" in line:
                    ws_url = line.split()[-1]
            headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
            with connect(ws_url, additional_headers=headers, open_timeout=20) as ws:
                ws.send(json.dumps({"op": "subscribe", "id": "b", "venue": "kraken", "channel": "balances"}))
                reasons = []
                while not any("EAPI:Invalid key" in r for r in reasons):
                    message = json.loads(ws.recv(timeout=30))
                    if message["type"] == "event" and message["event"]["kind"] == "status":
                        reasons.append(message["event"]["reason"])
                    assert message["type"] != "error" or message["code"] != "malformed", message
            status, out, err = serve.stop()
    assert status == 0, err
    assert "Traceback" not in out + err
    assert "API key" in one_line(err)
    assert not leaks(out + err), err
