"""Configuration: one frozen object, read from a TOML file and environment variables.

Precedence (last wins): built-in defaults → TOML file → environment → command-line flags.
Defaults point at the real Kraken; no credentials means "public data only" for a real venue and
"use the simulator's demo account" for `brokerbridge watch` when no URL was changed.
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
class Config:
    kraken: KrakenConfig = field(default_factory=KrakenConfig)
    log_level: str = "INFO"


# name in TOML [kraken] table / env suffix → (field, parser)
_URL_FIELDS = {"rest_url": ("http", "https"), "ws_url": ("ws", "wss"), "ws_auth_url": ("ws", "wss")}
_FLOAT_FIELDS = (
    "token_refresh_interval",
    "idle_timeout",
    "poll_after",
    "poll_interval",
    "request_timeout",
    "rate_limit_max",
    "rate_limit_decay",
)
_ENV_PREFIX = "BROKERBRIDGE_KRAKEN_"


def _check_url(name: str, value: Any, schemes: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: kraken.{name} must be a string URL, got {type(value).__name__}")
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ConfigError(
            f"{where}: kraken.{name} = {value!r} is not a {'/'.join(schemes)} URL",
            remedy=f"use e.g. {schemes[-1]}://host:port{'/v2' if schemes[0] == 'ws' else ''}",
        )
    return value.rstrip("/") if schemes[0] == "http" else value


def _check_float(name: str, value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: kraken.{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{where}: kraken.{name} must be a positive number of seconds, got {value!r}")
    return number


def _kraken_from_mapping(base: KrakenConfig, values: Mapping[str, Any], where: str) -> KrakenConfig:
    known = {f.name for f in fields(KrakenConfig)} - {"backoff"}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(
                f"{where}: unknown setting kraken.{name}",
                remedy=f"valid settings are: {', '.join(sorted(known))}",
            )
        if name in _URL_FIELDS:
            changes[name] = _check_url(name, value, _URL_FIELDS[name], where)
        elif name in _FLOAT_FIELDS:
            changes[name] = _check_float(name, value, where)
            if name == "token_refresh_interval" and changes[name] >= 900:
                raise ConfigError(
                    f"{where}: kraken.token_refresh_interval = {value!r} is not under 900 s",
                    remedy="Kraken tokens must be used within 15 minutes of issue; keep it below 900 "
                    "(default 600)",
                )
        elif name == "api_key":
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: kraken.api_key must be a non-empty string")
            changes[name] = value.strip()
        elif name == "api_secret":
            if not isinstance(value, str) or not value.strip():
                # Do not echo the value: it is a secret even when malformed.
                raise ConfigError(f"{where}: kraken.api_secret must be a non-empty string")
            changes[name] = Secret(value.strip())
    return replace(base, **changes)


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the Config from defaults, an optional TOML file, env vars and CLI overrides."""
    env = os.environ if env is None else env
    path = path or env.get("BROKERBRIDGE_CONFIG") or None
    kraken = KrakenConfig()
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
        unknown = set(data) - {"kraken", "log_level"}
        if unknown:
            raise ConfigError(
                f"{file}: unknown section(s) {', '.join(sorted(unknown))}",
                remedy="supported: [kraken] and log_level",
            )
        if "kraken" in data:
            if not isinstance(data["kraken"], dict):
                raise ConfigError(f"{file}: 'kraken' must be a table ([kraken])")
            kraken = _kraken_from_mapping(kraken, data["kraken"], str(file))
        log_level = str(data.get("log_level", log_level)).upper()
    from_env = {
        key[len(_ENV_PREFIX) :].lower(): value for key, value in env.items() if key.startswith(_ENV_PREFIX)
    }
    if from_env:
        kraken = _kraken_from_mapping(kraken, from_env, "environment (BROKERBRIDGE_KRAKEN_*)")
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        if given:
            kraken = _kraken_from_mapping(kraken, given, "command line")
    if env.get("BROKERBRIDGE_LOG_LEVEL"):
        log_level = env["BROKERBRIDGE_LOG_LEVEL"].upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log_level {log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    if bool(kraken.api_key) != bool(kraken.api_secret):
        raise ConfigError(
            "kraken.api_key and kraken.api_secret must be given together",
            remedy="set both (or neither, for public data only)",
        )
    return Config(kraken=kraken, log_level=log_level)
