"""Config: defaults, TOML file, env vars and CLI overrides (in that precedence), and every error path."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from brokerbridge.core.config import (
    KRAKEN_REST_URL,
    KRAKEN_WS_AUTH_URL,
    KRAKEN_WS_URL,
    Config,
    KrakenConfig,
    load_config,
)
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.secret import Secret

SECRET = "c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1uZXZlci1sZWFr"  # base64 of an obviously secret string


def write(tmp_path: Path, text: str, name: str = "bb.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(**kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)  # type: ignore[arg-type]
    return info.value


# -- defaults ------------------------------------------------------------------------------------


def test_defaults_point_at_real_kraken_and_have_no_credentials() -> None:
    cfg = load_config(env={})
    assert cfg.kraken.rest_url == "https://api.kraken.com" == KRAKEN_REST_URL
    assert cfg.kraken.ws_url == "wss://ws.kraken.com/v2" == KRAKEN_WS_URL
    assert cfg.kraken.ws_auth_url == "wss://ws-auth.kraken.com/v2" == KRAKEN_WS_AUTH_URL
    assert cfg.kraken.api_key is None
    assert cfg.kraken.api_secret is None
    assert not cfg.kraken.has_credentials
    assert cfg.kraken.uses_default_endpoints
    assert cfg.kraken.token_refresh_interval == 600.0
    assert cfg.log_level == "INFO"
    assert cfg == Config()


def test_config_is_frozen() -> None:
    cfg = load_config(env={})
    with pytest.raises(AttributeError):
        cfg.kraken.rest_url = "http://elsewhere"  # type: ignore[misc]


# -- sources -------------------------------------------------------------------------------------


def test_toml_file_sets_kraken_table_and_log_level(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
log_level = "debug"

[kraken]
rest_url = "http://127.0.0.1:8080/"
ws_url = "ws://127.0.0.1:8080/v2"
ws_auth_url = "ws://127.0.0.1:8080/auth/v2"
api_key = "  my-key  "
api_secret = "{SECRET}"
token_refresh_interval = 300
idle_timeout = 2.5
""",
    )
    cfg = load_config(path, env={})
    assert cfg.log_level == "DEBUG"
    k = cfg.kraken
    assert k.rest_url == "http://127.0.0.1:8080"  # trailing slash dropped: paths are appended
    assert k.ws_url == "ws://127.0.0.1:8080/v2"
    assert k.ws_auth_url == "ws://127.0.0.1:8080/auth/v2"
    assert k.api_key == "my-key"
    assert isinstance(k.api_secret, Secret)
    assert k.api_secret.reveal() == SECRET
    assert k.token_refresh_interval == 300.0
    assert k.idle_timeout == 2.5
    assert k.has_credentials
    assert not k.uses_default_endpoints


def test_env_vars_set_every_kraken_setting() -> None:
    env = {
        "BROKERBRIDGE_KRAKEN_API_KEY": "env-key",
        "BROKERBRIDGE_KRAKEN_API_SECRET": SECRET,
        "BROKERBRIDGE_KRAKEN_REST_URL": "https://rest.example:9000",
        "BROKERBRIDGE_KRAKEN_WS_URL": "wss://ws.example/v2",
        "BROKERBRIDGE_KRAKEN_WS_AUTH_URL": "wss://ws-auth.example/v2",
        "BROKERBRIDGE_KRAKEN_TOKEN_REFRESH_INTERVAL": "120",
        "BROKERBRIDGE_KRAKEN_IDLE_TIMEOUT": "3",
        "BROKERBRIDGE_KRAKEN_POLL_AFTER": "0.5",
        "BROKERBRIDGE_KRAKEN_POLL_INTERVAL": "4",
        "BROKERBRIDGE_KRAKEN_REQUEST_TIMEOUT": "7.5",
        "BROKERBRIDGE_LOG_LEVEL": "warning",
        "UNRELATED": "ignored",
    }
    cfg = load_config(env=env)
    k = cfg.kraken
    assert (k.api_key, k.api_secret) == ("env-key", Secret(SECRET))
    assert (k.rest_url, k.ws_url, k.ws_auth_url) == (
        "https://rest.example:9000",
        "wss://ws.example/v2",
        "wss://ws-auth.example/v2",
    )
    assert (k.token_refresh_interval, k.idle_timeout, k.poll_after, k.poll_interval, k.request_timeout) == (
        120.0,
        3.0,
        0.5,
        4.0,
        7.5,
    )
    assert cfg.log_level == "WARNING"


def test_precedence_defaults_then_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
log_level = "ERROR"
[kraken]
rest_url = "http://file:1"
ws_url = "ws://file:1/v2"
ws_auth_url = "ws://file:1/auth/v2"
idle_timeout = 11
""",
    )
    env = {
        "BROKERBRIDGE_KRAKEN_WS_URL": "ws://env:2/v2",
        "BROKERBRIDGE_KRAKEN_WS_AUTH_URL": "ws://env:2/auth/v2",
        "BROKERBRIDGE_LOG_LEVEL": "DEBUG",
    }
    overrides = {"ws_auth_url": "ws://flag:3/auth/v2", "rest_url": None, "ws_url": None}
    cfg = load_config(path, env=env, overrides=overrides)
    k = cfg.kraken
    assert k.rest_url == "http://file:1"  # file beats default; a None override changes nothing
    assert k.ws_url == "ws://env:2/v2"  # env beats file
    assert k.ws_auth_url == "ws://flag:3/auth/v2"  # flag beats env
    assert k.idle_timeout == 11.0  # file value untouched by others
    assert k.poll_interval == KrakenConfig().poll_interval  # default where nobody spoke
    assert cfg.log_level == "DEBUG"  # env beats file


def test_config_path_from_env_and_explicit_path_wins(tmp_path: Path) -> None:
    from_env = write(tmp_path, '[kraken]\nrest_url = "http://from-env-file:1"\n', "env.toml")
    explicit = write(tmp_path, '[kraken]\nrest_url = "http://explicit-file:1"\n', "explicit.toml")
    env = {"BROKERBRIDGE_CONFIG": str(from_env)}
    assert load_config(env=env).kraken.rest_url == "http://from-env-file:1"
    assert load_config(explicit, env=env).kraken.rest_url == "http://explicit-file:1"


def test_empty_config_env_var_means_no_file() -> None:
    assert load_config(env={"BROKERBRIDGE_CONFIG": ""}) == Config()


# -- errors: each names the setting and says what to do ----------------------------------------------


def assert_helpful(exc: ConfigError, *names: str) -> None:
    text = str(exc)
    for name in names:
        assert name in text, f"{name!r} not named in {text!r}"
    assert exc.remedy, f"no remedy in {text!r}"
    assert exc.remedy in text
    assert not exc.retryable


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    exc = config_error(path=missing, env={})
    assert_helpful(exc, str(missing), "does not exist")
    assert "--config" in exc.remedy


def test_missing_file_named_by_env(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    exc = config_error(env={"BROKERBRIDGE_CONFIG": str(missing)})
    assert_helpful(exc, str(missing))


def test_bad_toml(tmp_path: Path) -> None:
    path = write(tmp_path, f'[kraken]\napi_secret = "{SECRET}"\nrest_url = http://unquoted\n')
    exc = config_error(path=path, env={})
    assert_helpful(exc, str(path), "not valid TOML")
    assert SECRET not in str(exc)


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path, '[krakn]\nrest_url = "http://x:1"\n[binance]\n')
    exc = config_error(path=path, env={})
    assert_helpful(exc, "binance", "krakn")
    assert "[kraken]" in exc.remedy


def test_kraken_must_be_a_table(tmp_path: Path) -> None:
    exc = config_error(path=write(tmp_path, 'kraken = "yes"\n'), env={})
    assert_helpful(exc, "kraken", "table")


def test_unknown_key_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, f'[kraken]\napi_secrte = "{SECRET}"\n')
    exc = config_error(path=path, env={})
    assert_helpful(exc, "kraken.api_secrte", str(path))
    assert "api_secret" in exc.remedy and "rest_url" in exc.remedy  # lists the valid names
    assert SECRET not in str(exc)


def test_unknown_key_in_env() -> None:
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_RESTURL": "http://x:1"})
    assert_helpful(exc, "kraken.resturl", "BROKERBRIDGE_KRAKEN_")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rest_url", "ws://127.0.0.1:1"),
        ("rest_url", "api.kraken.com"),
        ("ws_url", "https://ws.kraken.com/v2"),
        ("ws_auth_url", "http://ws-auth.kraken.com/v2"),
        ("ws_url", "wss://"),
    ],
)
def test_bad_url_scheme(name: str, value: str) -> None:
    exc = config_error(env={f"BROKERBRIDGE_KRAKEN_{name.upper()}": value})
    assert_helpful(exc, f"kraken.{name}", value)
    assert "://" in exc.remedy


def test_bad_url_from_override_names_the_command_line() -> None:
    exc = config_error(env={}, overrides={"rest_url": "ftp://x"})
    assert_helpful(exc, "command line", "kraken.rest_url")


def test_url_must_be_a_string_in_file(tmp_path: Path) -> None:
    exc = config_error(path=write(tmp_path, "[kraken]\nws_url = 42\n"), env={})
    assert_helpful(exc, "kraken.ws_url", "int")


@pytest.mark.parametrize("value", ["ten", "", "10s"])
def test_non_numeric_interval(value: str) -> None:
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_TOKEN_REFRESH_INTERVAL": value})
    assert_helpful(exc, "kraken.token_refresh_interval", "number of seconds")


@pytest.mark.parametrize("value", ["-1", "0", "-0.5"])
def test_negative_or_zero_interval(value: str) -> None:
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_POLL_INTERVAL": value})
    assert_helpful(exc, "kraken.poll_interval", "positive", value)


def test_reconcile_interval_has_a_floor_that_spares_the_rest_counter() -> None:
    assert load_config(env={"BROKERBRIDGE_KRAKEN_RECONCILE_INTERVAL": "5"}).kraken.reconcile_interval == 5.0
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_RECONCILE_INTERVAL": "1"})
    assert_helpful(exc, "kraken.reconcile_interval", "under 5 s", "counter")


def test_interval_in_file_must_be_a_number(tmp_path: Path) -> None:
    exc = config_error(path=write(tmp_path, '[kraken]\nidle_timeout = "soon"\n'), env={})
    assert_helpful(exc, "kraken.idle_timeout", str(tmp_path / "bb.toml"))


def test_nan_interval_is_rejected() -> None:
    try:
        cfg = load_config(env={"BROKERBRIDGE_KRAKEN_IDLE_TIMEOUT": "nan"})
    except ConfigError as exc:
        assert_helpful(exc, "kraken.idle_timeout")
        return
    assert not math.isnan(cfg.kraken.idle_timeout), "a NaN timeout was accepted"


def test_key_without_secret() -> None:
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_API_KEY": "lonely-key"})
    assert_helpful(exc, "kraken.api_key is set", "kraken.api_secret is missing")


def test_secret_without_key_does_not_echo_the_secret() -> None:
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_API_SECRET": SECRET})
    assert_helpful(exc, "kraken.api_key", "kraken.api_secret")
    assert SECRET not in str(exc)
    assert SECRET not in repr(exc)


def test_key_and_secret_may_come_from_different_sources(tmp_path: Path) -> None:
    path = write(tmp_path, f'[kraken]\napi_secret = "{SECRET}"\n')
    cfg = load_config(path, env={"BROKERBRIDGE_KRAKEN_API_KEY": "k"})
    assert cfg.kraken.has_credentials


def test_malformed_secret_is_not_echoed(tmp_path: Path) -> None:
    exc = config_error(path=write(tmp_path, "[kraken]\napi_key = 'k'\napi_secret = 123456789\n"), env={})
    assert_helpful(exc, "kraken.api_secret")
    assert "123456789" not in str(exc)


def test_blank_api_key_is_rejected() -> None:
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_API_KEY": "   ", "BROKERBRIDGE_KRAKEN_API_SECRET": SECRET})
    assert_helpful(exc, "kraken.api_key", "non-empty")
    assert SECRET not in str(exc)


def test_bad_log_level(tmp_path: Path) -> None:
    exc = config_error(env={"BROKERBRIDGE_LOG_LEVEL": "loud"})
    assert_helpful(exc, "log_level", "LOUD", "DEBUG, INFO, WARNING, ERROR")
    exc = config_error(path=write(tmp_path, 'log_level = "verbose"\n'), env={})
    assert_helpful(exc, "log_level", "VERBOSE")


# -- the secret stays secret ---------------------------------------------------------------------


def test_secret_never_in_repr_or_str_of_config() -> None:
    cfg = load_config(env={"BROKERBRIDGE_KRAKEN_API_KEY": "k", "BROKERBRIDGE_KRAKEN_API_SECRET": SECRET})
    for text in (repr(cfg), str(cfg), repr(cfg.kraken), f"{cfg.kraken}", repr(cfg.kraken.api_secret)):
        assert SECRET not in text
    assert "Secret('***')" in repr(cfg.kraken)


# Client API keys for `serve` from the environment: one variable per key, never a list of keys.

SERVER_KEY = "file-key-0123456789abcdef"


def test_server_keys_from_the_environment_join_and_override_the_file(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        f'[server]\nsession_ttl = 60\nstate_dir = "{tmp_path}"\n'
        f'[server.keys.bot]\nkey = "{SERVER_KEY}"\nscopes = ["account"]\n'
        f'[server.keys.viewer]\nkey = "viewer-key-0123456789abc"\n',
    )
    config = load_config(
        file,
        env={
            "BROKERBRIDGE_SERVER_KEY_BOT": "env-bot-key-0123456789ab",
            "BROKERBRIDGE_SERVER_KEY_VIEWER_SCOPES": "market,admin",
            "BROKERBRIDGE_SERVER_KEY_DASH_BOARD": "dash-key-0123456789abcd",
            "BROKERBRIDGE_SERVER_KEY_DASH_BOARD_SCOPES": " market , account ",
            "BROKERBRIDGE_SERVER_SESSION_TTL": "120",
        },
    ).server
    keys = {k.name: (k.key.reveal(), k.scopes) for k in config.keys}
    assert keys == {
        "viewer": ("viewer-key-0123456789abc", frozenset({"market", "admin"})),  # scopes from env
        "bot": ("env-bot-key-0123456789ab", frozenset({"account"})),  # key from env, scopes from file
        "dash_board": ("dash-key-0123456789abcd", frozenset({"market", "account"})),
    }
    assert (config.session_ttl, config.state_dir) == (120.0, str(tmp_path))
    assert "env-bot-key" not in repr(config)
    assert load_config(env={}).server.state_dir == "~/.local/state/brokerbridge"


@pytest.mark.parametrize(
    ("env", "names", "secret"),
    [
        ({"BROKERBRIDGE_SERVER_KEY_BOT": "short-one"}, "BROKERBRIDGE_SERVER_KEY_BOT", "short-one"),
        (
            {"BROKERBRIDGE_SERVER_KEY_BOT": "x" * 20, "BROKERBRIDGE_SERVER_KEY_BOT_SCOPES": "market,root"},
            "BROKERBRIDGE_SERVER_KEY_BOT_SCOPES",
            "x" * 20,
        ),
        ({"BROKERBRIDGE_SERVER_KEY_BOT_SCOPES": "account"}, "BROKERBRIDGE_SERVER_KEY_BOT", None),
        (
            {"BROKERBRIDGE_SERVER_KEYS": "bot:account:k" * 3},
            "BROKERBRIDGE_SERVER_KEY_<NAME>",
            "bot:account:k",
        ),
        ({"BROKERBRIDGE_SERVER_KEY_": "y" * 20}, "BROKERBRIDGE_SERVER_KEY_", "y" * 20),
        (
            {"BROKERBRIDGE_SERVER_KEY_A": "z" * 20, "BROKERBRIDGE_SERVER_KEY_B": "z" * 20},
            "same key value",
            "z" * 20,
        ),
        (
            {"BROKERBRIDGE_SERVER_KEY_A": "z" * 20, "BROKERBRIDGE_SERVER_KEY_a": "w" * 20},
            "second time",
            "w" * 20,
        ),
    ],
)
def test_environment_key_mistakes_name_the_variable_not_the_value(
    env: dict[str, str], names: str, secret: str | None
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(env=env)
    assert names in str(error.value)
    assert secret is None or secret not in str(error.value)


def test_the_default_state_locations_follow_xdg_state_home_and_chosen_paths_stay(tmp_path: Path) -> None:
    from brokerbridge.core.config import DEFAULT_JOURNAL_PATH, DEFAULT_STATE_DIR, state_path
    from brokerbridge.io.journal_store import SqliteJournalStore
    from brokerbridge.server.login_store import StateDir

    xdg = {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    assert state_path(DEFAULT_STATE_DIR, xdg) == tmp_path / "xdg" / "brokerbridge"
    assert state_path(DEFAULT_JOURNAL_PATH, xdg) == tmp_path / "xdg" / "brokerbridge" / "journal.sqlite3"
    home = Path("~").expanduser()
    assert state_path(DEFAULT_STATE_DIR, {}) == home / ".local" / "state" / "brokerbridge"
    assert state_path("~/mine/state", xdg) == home / "mine" / "state"  # chosen: kept as written
    assert state_path(str(tmp_path / "abs"), xdg) == tmp_path / "abs"
    # Both users of the state directory agree (tests run with a private XDG_STATE_HOME).
    journal = SqliteJournalStore(DEFAULT_JOURNAL_PATH)
    try:
        assert Path(journal.path).parent == StateDir(DEFAULT_STATE_DIR).path == state_path(DEFAULT_STATE_DIR)
    finally:
        journal.close()


def test_client_timeout_must_outlast_the_ping_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nheartbeat_interval = 5\nclient_timeout = 12\n")
    server = load_config(path=path, env={}).server
    assert (server.heartbeat_interval, server.client_timeout) == (5.0, 12.0)
    error = config_error(path=path, env={"BROKERBRIDGE_SERVER_CLIENT_TIMEOUT": "5"})
    assert "server.client_timeout (5 s) must be longer than server.heartbeat_interval (5 s)" in str(error)
    assert "client_timeout" in error.remedy
    assert "must be a number" in str(config_error(env={"BROKERBRIDGE_SERVER_CLIENT_TIMEOUT": "soon"}))


# -- every setting is checked against its type --------------------------------------------------


@pytest.mark.parametrize("section", ["kraken", "primary", "server"])
def test_every_setting_refuses_a_value_of_the_wrong_type_naming_it(tmp_path: Path, section: str) -> None:
    import dataclasses

    from brokerbridge.core.config import PrimaryConfig, ServerConfig

    base = {"kraken": KrakenConfig, "primary": PrimaryConfig, "server": ServerConfig}[section]
    for setting in (f.name for f in dataclasses.fields(base) if f.name != "backoff"):
        path = write(tmp_path, f"[{section}]\n{setting} = {{ a = 1 }}\n")  # a table: no setting's type
        exc = config_error(path=path, env={})
        assert f"{section}.{setting}" in exc.message and not exc.retryable, exc.message


def test_the_files_values_keep_their_toml_types(tmp_path: Path) -> None:
    # `true` is not one second, and an infinite whole number is refused, not a crash.
    exc = config_error(path=write(tmp_path, "[kraken]\nidle_timeout = true\n"), env={})
    assert_helpful(exc, "kraken.idle_timeout", "number of seconds")
    exc = config_error(path=write(tmp_path, "[kraken]\nnonce_scale = inf\n"), env={})
    assert_helpful(exc, "kraken.nonce_scale", "power of ten", "doctor --fix")
    exc = config_error(path=write(tmp_path, "[server]\nmax_subscriptions = inf\n"), env={})
    assert_helpful(exc, "server.max_subscriptions", "whole number")
    # Text from the environment is read as the type says, spaces around it ignored.
    cfg = load_config(
        env={"BROKERBRIDGE_KRAKEN_IDLE_TIMEOUT": " 2.5 ", "BROKERBRIDGE_SERVER_ALLOWED_HOSTS": "a, b ,"}
    )
    assert (cfg.kraken.idle_timeout, cfg.server.allowed_hosts) == (2.5, ("a", "b"))


# -- a venue configured in part is an error, never a simulator ----------------------------------


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        (
            '[primary]\nenvironment = "cocos"\n',
            {},
            ("primary.environment", "primary.user and primary.password"),
        ),
        ('[primary]\nuser = "me"\n', {}, ("primary.user", "primary.password")),
        (
            '[primary]\nrest_url = "http://127.0.0.1:9/"\naccount = "1"\n',
            {},
            ("primary.rest_url", "primary.user"),
        ),
        ("", {"BROKERBRIDGE_PRIMARY_ENVIRONMENT": "cocos"}, ("primary.environment", "primary.password")),
        ("", {"BROKERBRIDGE_PRIMARY_PASSWORD": SECRET}, ("primary.password", "primary.user")),
    ],
)
def test_a_primary_configured_in_part_is_refused_naming_what_is_missing(
    tmp_path: Path, toml: str, env: dict[str, str], named: tuple[str, ...]
) -> None:
    exc = config_error(path=write(tmp_path, toml) if toml else None, env=env)
    assert_helpful(exc, *named, "simulator")
    assert SECRET not in str(exc)


def test_primary_tuning_alone_is_not_a_venue_configured_in_part(tmp_path: Path) -> None:
    # Settings that say nothing about which Primary to log in to apply to whichever runs.
    cfg = load_config(path=write(tmp_path, '[primary]\nidle_timeout = 60\nmarket_hours = "always"\n'), env={})
    assert cfg.primary is not None and not cfg.primary.has_credentials


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BROKERBRIDGE_KRAKEN_API_KEY": "a-key"}, ("kraken.api_key is set", "kraken.api_secret is missing")),
        (
            {"BROKERBRIDGE_KRAKEN_API_SECRET": SECRET},
            ("kraken.api_secret is set", "kraken.api_key is missing"),
        ),
    ],
)
def test_half_a_kraken_key_is_refused_naming_the_missing_half(
    env: dict[str, str], named: tuple[str, ...]
) -> None:
    exc = config_error(env=env)
    assert_helpful(exc, *named)
    assert SECRET not in str(exc)


@pytest.mark.parametrize("secret", ["not*base64!", "abc", "c2VjcmV0LXZhbHVl LXRoYXQ=", SECRET + "x"])
def test_a_kraken_secret_that_is_not_base64_is_refused_at_load(tmp_path: Path, secret: str) -> None:
    exc = config_error(path=write(tmp_path, f'[kraken]\napi_key = "k"\napi_secret = "{secret}"\n'), env={})
    assert_helpful(exc, str(tmp_path / "bb.toml"), "kraken.api_secret", "not valid base64", "key page")
    assert secret not in str(exc)
    exc = config_error(env={"BROKERBRIDGE_KRAKEN_API_KEY": "k", "BROKERBRIDGE_KRAKEN_API_SECRET": secret})
    assert_helpful(exc, "BROKERBRIDGE_KRAKEN_*", "kraken.api_secret", "not valid base64")
    assert secret not in str(exc)


# -- the venues that run --------------------------------------------------------------------------


def test_venues_default_to_all_and_are_chosen_in_server_venues(tmp_path: Path) -> None:
    assert load_config(env={}).venues == ("kraken", "primary")
    cfg = load_config(path=write(tmp_path, '[server]\nvenues = ["Primary"]\n'), env={})
    assert cfg.server.venues == ("primary",) and cfg.venues == ("primary",)
    assert load_config(env={"BROKERBRIDGE_SERVER_VENUES": "primary, kraken"}).venues == ("kraken", "primary")
    # `serve --venue` (repeatable) wins over the file.
    assert load_config(
        path=write(tmp_path, '[server]\nvenues = ["primary"]\n'), env={}, overrides={"venues": ["kraken"]}
    ).venues == ("kraken",)


def test_an_unknown_venue_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    exc = config_error(path=write(tmp_path, '[server]\nvenues = ["kraken", "binance"]\n'), env={})
    assert_helpful(exc, "'binance'", "kraken, primary")
    exc = config_error(env={}, overrides={"venues": ["cocos"]})
    assert_helpful(exc, "--venue", "'cocos'", "kraken, primary")


def test_simulated_venues_are_never_read_from_a_file(tmp_path: Path) -> None:
    assert load_config(env={}).simulated == frozenset()
    exc = config_error(path=write(tmp_path, 'simulated = ["kraken"]\n'), env={})
    assert "simulated" in str(exc)


# -- [server] warm -------------------------------------------------------------------------------


def test_warm_streams_are_read_from_the_file_and_the_environment(tmp_path: Path) -> None:
    from brokerbridge.core.config import WarmStream
    from brokerbridge.core.events import Channel

    path = write(
        tmp_path,
        '[server]\nwarm = ["kraken:ticker:BTC/USD", "kraken:book:BTC/USD:depth=25",'
        ' "primary:candles:MERV - XMEV - GGAL - 24hs:interval=5", "kraken:ticker:BTC/USD"]\n',
    )
    assert load_config(path=path, env={}).server.warm == (
        WarmStream(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD"),
        WarmStream(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=25),
        WarmStream(venue="primary", channel=Channel.CANDLES, symbol="MERV - XMEV - GGAL - 24hs", interval=5),
    )  # the repeated entry once
    env = load_config(env={"BROKERBRIDGE_SERVER_WARM": "kraken:trades:ETH/USD, kraken:stats:BTC/USD"})
    assert [w.describe() for w in env.server.warm] == ["kraken:trades:ETH/USD", "kraken:stats:BTC/USD"]
    assert load_config(env={}).server.warm == ()


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ("kraken", "names no channel"),
        ("binance:ticker:BTC/USD", "names no venue"),
        ("kraken:balances", "account streams are always held open"),
        ("kraken:nope:BTC/USD", "'nope' is not a market channel"),
        ("kraken:ticker", "names no symbol"),
        ("kraken:book:BTC/USD:depth=0", "only depth=N"),
        ("kraken:book:BTC/USD:interval=5", "only depth=N"),
        ("kraken:ticker:BTC/USD:depth=5", "it takes none"),
    ],
)
def test_a_malformed_warm_entry_is_a_config_error_naming_it(tmp_path: Path, entry: str, named: str) -> None:
    exc = config_error(path=write(tmp_path, f'[server]\nwarm = ["{entry}"]\n'), env={})
    assert_helpful(exc, "server.warm", repr(entry), named, "kraken:ticker:BTC/USD")
    exc = config_error(path=write(tmp_path, "[server]\nwarm = 3\n"), env={})
    assert_helpful(exc, "server.warm must be a list")


def test_the_trade_scope_is_granted_by_name_only_and_cancel_on_disconnect_is_per_key(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        f'[server.keys.bot]\nkey = "{SERVER_KEY}"\nscopes = ["market", "trade"]\n'
        "cancel_on_disconnect_s = 10\n"
        '[server.keys.root]\nkey = "root-key-0123456789abcd"\nscopes = ["admin"]\n',
    )
    keys = {k.name: k for k in load_config(file, env={"BROKERBRIDGE_SERVER_KEY_BOT": "b" * 20}).server.keys}
    assert keys["bot"].allows("trade") and keys["bot"].cancel_on_disconnect_s == 10.0  # kept under env
    assert keys["root"].allows("account") and not keys["root"].allows("trade")  # admin: all but trade
    assert keys["root"].cancel_on_disconnect_s is None
    for bad in ("-1", '"soon"', "true", "100000"):
        path = write(tmp_path, f'[server.keys.bot]\nkey = "{SERVER_KEY}"\ncancel_on_disconnect_s = {bad}\n')
        with pytest.raises(ConfigError) as refused:
            load_config(path, env={})
        assert "cancel_on_disconnect_s" in refused.value.message and SERVER_KEY not in str(refused.value)
