"""Configuration: one frozen object, read from a TOML file and environment variables.

Precedence (last wins): built-in defaults → TOML file → environment → command-line flags.
Defaults point at the real Kraken; no credentials means "public data only" for a real venue and
"use the simulator's demo account" for `brokerbridge watch` when no URL was changed. Primary is
configured by a [primary] table or BROKERBRIDGE_PRIMARY_* variables (absent: not used).
Every mistake raises `ConfigError` saying which setting, why, and what to do. See docs/configuration.md.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.secret import Secret

KRAKEN_REST_URL = "https://api.kraken.com"
KRAKEN_WS_URL = "wss://ws.kraken.com/v2"
KRAKEN_WS_AUTH_URL = "wss://ws-auth.kraken.com/v2"


@dataclass(frozen=True, slots=True)
class KrakenConfig:
    rest_url: str = KRAKEN_REST_URL
    ws_url: str = KRAKEN_WS_URL
    ws_auth_url: str = KRAKEN_WS_AUTH_URL
    api_key: str | None = None
    api_secret: Secret | None = None
    # Kraken tokens must be used within 15 minutes; refresh well before that.
    token_refresh_interval: float = 600.0
    # Kraken heartbeats every second once subscribed: this much silence means a dead socket.
    idle_timeout: float = 10.0
    # While a stream is down, serve the same events from REST after this long, every poll_interval.
    poll_after: float = 1.0
    poll_interval: float = 2.0
    request_timeout: float = 10.0
    # Kraken's private REST call counter for the key's tier (Intermediate: 20, −0.5/s; Starter: 15, −0.33/s).
    rate_limit_max: float = 20.0
    rate_limit_decay: float = 0.5
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)

    @property
    def has_credentials(self) -> bool:
        return bool(self.api_key and self.api_secret)

    @property
    def uses_default_endpoints(self) -> bool:
        return (self.rest_url, self.ws_url, self.ws_auth_url) == (
            KRAKEN_REST_URL,
            KRAKEN_WS_URL,
            KRAKEN_WS_AUTH_URL,
        )


@dataclass(frozen=True, slots=True)
class PrimaryConfig:
    """Primary's trading API: reMarkets, Matba Rofex live, or a broker's xOMS (`api.<broker>.xoms.com.ar`).

    `environment` is a name (`remarkets`, `live`, a broker such as `cocos`) or a URL; `rest_url` /
    `ws_url` override it (venues/primary/environments.py resolves both)."""

    environment: str = "remarkets"
    rest_url: str | None = None
    ws_url: str | None = None
    user: str | None = None
    password: Secret | None = None
    account: str | None = None
    proprietary: str | None = None  # default per environment (PBCP, api, ISV_PBCP)
    # Tokens live 24 h; log in again well before (Primary asks for about one login a day).
    relogin_interval: float = 20 * 3600.0
    # A socket silent this long while the market is open is presumed dead or de-authorised.
    idle_timeout: float = 120.0
    market_hours: str = "10:00-17:15"  # Buenos Aires time (UTC−3, no DST); "always" for simulators
    poll_after: float = 2.0
    poll_interval: float = 1.0  # marketdata/get at most once a second (Primary's best practice)
    ping_interval: float = 30.0  # WebSocket ping frames: Primary closes sockets that send nothing
    request_timeout: float = 10.0
    instruments_cache_dir: str = "~/.cache/brokerbridge"
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)

    @property
    def has_credentials(self) -> bool:
        return bool(self.user and self.password)


@dataclass(frozen=True, slots=True)
class Config:
    kraken: KrakenConfig = field(default_factory=KrakenConfig)
    primary: PrimaryConfig | None = None  # None: Primary not configured
    log_level: str = "INFO"


_SECTION_URLS: dict[str, dict[str, tuple[str, ...]]] = {
    "kraken": {"rest_url": ("http", "https"), "ws_url": ("ws", "wss"), "ws_auth_url": ("ws", "wss")},
    "primary": {"rest_url": ("http", "https"), "ws_url": ("ws", "wss")},
}
_FLOAT_FIELDS = (
    "token_refresh_interval",
    "idle_timeout",
    "poll_after",
    "poll_interval",
    "request_timeout",
    "rate_limit_max",
    "rate_limit_decay",
    "relogin_interval",
    "ping_interval",
)
_SECRET_FIELDS = ("api_secret", "password")
_TEXT_FIELDS = (
    "api_key",
    "user",
    "account",
    "proprietary",
    "environment",
    "market_hours",
    "instruments_cache_dir",
)


def _check_url(section: str, name: str, value: Any, schemes: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {section}.{name} must be a string URL, got {type(value).__name__}")
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.netloc:
        path = "/v2" if section == "kraken" and schemes[0] == "ws" else "/"
        raise ConfigError(
            f"{where}: {section}.{name} = {value!r} is not a {'/'.join(schemes)} URL",
            remedy=f"use e.g. {schemes[-1]}://host:port{path}",
        )
    if section == "kraken" and schemes[0] == "http":
        return value.rstrip("/")
    return value


def _check_float(section: str, name: str, value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {section}.{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{where}: {section}.{name} must be a positive number of seconds, got {value!r}")
    return number


def _section_from_mapping(base: Any, section: str, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name for f in fields(base)} - {"backoff"}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(
                f"{where}: unknown setting {section}.{name}",
                remedy=f"valid settings are: {', '.join(sorted(known))}",
            )
        if name in _SECTION_URLS[section]:
            changes[name] = _check_url(section, name, value, _SECTION_URLS[section][name], where)
        elif name in _FLOAT_FIELDS:
            changes[name] = _check_float(section, name, value, where)
            if name == "token_refresh_interval" and changes[name] >= 900:
                raise ConfigError(
                    f"{where}: kraken.token_refresh_interval = {value!r} is not under 900 s",
                    remedy="Kraken tokens must be used within 15 minutes of issue; keep it below 900 "
                    "(default 600)",
                )
            if name == "relogin_interval" and changes[name] >= 24 * 3600:
                raise ConfigError(
                    f"{where}: primary.relogin_interval = {value!r} is not under 24 h",
                    remedy="Primary tokens last 24 h; keep it below 86400 (default 72000)",
                )
        elif name in _SECRET_FIELDS:
            if not isinstance(value, str) or not value.strip():
                # Do not echo the value: it is a secret even when malformed.
                raise ConfigError(f"{where}: {section}.{name} must be a non-empty string")
            changes[name] = Secret(value.strip())
        elif name in _TEXT_FIELDS:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: {section}.{name} must be a non-empty string")
            changes[name] = value.strip()
    return replace(base, **changes)


def _env_section(env: Mapping[str, str], section: str) -> dict[str, str]:
    prefix = f"BROKERBRIDGE_{section.upper()}_"
    return {key[len(prefix) :].lower(): value for key, value in env.items() if key.startswith(prefix)}


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the Config from defaults, an optional TOML file, env vars and CLI overrides."""
    env = os.environ if env is None else env
    path = path or env.get("BROKERBRIDGE_CONFIG") or None
    kraken = KrakenConfig()
    primary: PrimaryConfig | None = None
    log_level = "INFO"
    if path:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"config file {file} does not exist", remedy="pass an existing file with --config"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        unknown = set(data) - {"kraken", "primary", "log_level"}
        if unknown:
            raise ConfigError(
                f"{file}: unknown section(s) {', '.join(sorted(unknown))}",
                remedy="supported: [kraken], [primary] and log_level",
            )
        for section in ("kraken", "primary"):
            if section in data and not isinstance(data[section], dict):
                raise ConfigError(f"{file}: '{section}' must be a table ([{section}])")
        if "kraken" in data:
            kraken = _section_from_mapping(kraken, "kraken", data["kraken"], str(file))
        if "primary" in data:
            primary = _section_from_mapping(PrimaryConfig(), "primary", data["primary"], str(file))
        log_level = str(data.get("log_level", log_level)).upper()
    from_env = _env_section(env, "kraken")
    if from_env:
        kraken = _section_from_mapping(kraken, "kraken", from_env, "environment (BROKERBRIDGE_KRAKEN_*)")
    primary_env = _env_section(env, "primary")
    if primary_env:
        primary = _section_from_mapping(
            primary or PrimaryConfig(), "primary", primary_env, "environment (BROKERBRIDGE_PRIMARY_*)"
        )
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        kraken_given = {k: v for k, v in given.items() if not k.startswith("primary_")}
        primary_given = {k[len("primary_") :]: v for k, v in given.items() if k.startswith("primary_")}
        if kraken_given:
            kraken = _section_from_mapping(kraken, "kraken", kraken_given, "command line")
        if primary_given:
            primary = _section_from_mapping(
                primary or PrimaryConfig(), "primary", primary_given, "command line"
            )
    if env.get("BROKERBRIDGE_LOG_LEVEL"):
        log_level = env["BROKERBRIDGE_LOG_LEVEL"].upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log_level {log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    if bool(kraken.api_key) != bool(kraken.api_secret):
        raise ConfigError(
            "kraken.api_key and kraken.api_secret must be given together",
            remedy="set both (or neither, for public data only)",
        )
    if primary is not None and bool(primary.user) != bool(primary.password):
        raise ConfigError(
            "primary.user and primary.password must be given together",
            remedy="set both (Primary needs a login even for market data)",
        )
    return Config(kraken=kraken, primary=primary, log_level=log_level)
