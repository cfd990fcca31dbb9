"""`[client]`: the running `serve` the other commands go through, from the file or the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from brokerbridge.core.config import load_config
from brokerbridge.core.errors import ConfigError


def test_client_url_and_key_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "bb.toml"
    path.write_text('[client]\nurl = "http://127.0.0.1:8000"\nkey = "a-key-of-that-server-0123"\n')
    config = load_config(path, env={})
    assert config.client.url == "http://127.0.0.1:8000"
    assert config.client.key is not None and config.client.key.reveal() == "a-key-of-that-server-0123"
    assert "a-key-of-that-server" not in repr(config)
    env = {"BROKERBRIDGE_CLIENT_URL": "https://bridge.example:8443"}
    assert load_config(path, env=env).client.url == "https://bridge.example:8443"
    assert load_config(None, env={}).client.url is None


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[client]\nurl = "ws://127.0.0.1:8000"\n', "client.url"),
        ('[client]\nurll = "http://127.0.0.1:8000"\n', "client.urll"),
    ],
)
def test_a_bad_client_setting_is_named(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "bb.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={})
    assert names in refused.value.message
