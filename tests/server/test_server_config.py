"""The [server] table and BROKERBRIDGE_SERVER_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from brokerbridge.core.config import load_config
from brokerbridge.core.errors import ConfigError

KEY = "k" * 20


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_keys_as_table_or_list_and_env_scalars(tmp_path: Path) -> None:
    table = load_config(write(tmp_path, f'[server.keys.bot]\nkey = "{KEY}"\nscopes = ["account"]\n'), env={})
    (key,) = table.server.keys
    assert (key.name, key.scopes, key.key.reveal()) == ("bot", frozenset({"account"}), KEY)
    assert KEY not in repr(table)
    listed = load_config(
        write(tmp_path, f'[server]\nkeys = [{{name = "v", key = "{KEY}"}}]\n'),
        env={"BROKERBRIDGE_SERVER_GRACE_S": "0", "BROKERBRIDGE_SERVER_OPEN_MARKET_DATA": "false"},
    )
    assert listed.server.keys[0].scopes == frozenset({"market"})
    assert (listed.server.grace_s, listed.server.open_market_data) == (0.0, False)


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("[server]\nmax_subscriptions = 0\n", {}, "server.max_subscriptions"),
        ("[server]\nflavour = 1\n", {}, "server.flavour"),
        ('[server.keys.bot]\nkey = "short"\n', {}, "server.keys.bot.key"),
        (f'[server.keys.bot]\nkey = "{KEY}"\nscopes = ["root"]\n', {}, "server.keys.bot.scopes"),
        ("", {"BROKERBRIDGE_SERVER_GRACE_S": "-1"}, "server.grace_s"),
        ("", {"BROKERBRIDGE_SERVER_OPEN_MARKET_DATA": "maybe"}, "server.open_market_data"),
    ],
)
def test_mistakes_name_the_setting(tmp_path: Path, text: str, env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text), env=env)
    assert names in str(error.value.message) and "short" not in str(error.value.message)
