"""Where a Primary API lives: environment names and explicit URLs → REST base, WebSocket URL, proprietary.

primary.md §1: the REST base must end with "/" (paths are appended without a leading slash) and the
WebSocket is the root path of the same host (`wss://<host>/`), authenticated by the `X-Auth-Token`
header on the upgrade. Brokers on xOMS serve the API at `api.<broker>.xoms.com.ar` with proprietary
`ISV_PBCP` (maintainer's suggestion, seen in real xOMS order reports).

The broker's *web app* (`matriz.<broker>.xoms.com.ar`, socket `/ws?session_id=…&conn_id=…`, cookie
`_mtz_web_key`) is a different system (primary.md §6) that API credentials cannot use; it is refused
here with an explanation rather than failing later with an opaque handshake error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from brokerbridge.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class PrimaryEnvironment:
    name: str
    rest_url: str  # ends with "/"
    ws_url: str  # the host root, "wss://host/"
    proprietary: str  # default for order status / cancel calls

    def url(self, path: str) -> str:
        """Absolute URL of a REST path given without a leading slash (`rest/segment/all`)."""
        return self.rest_url + path.lstrip("/")


def _api(name: str, host: str, proprietary: str) -> PrimaryEnvironment:
    return PrimaryEnvironment(name, f"https://{host}/", f"wss://{host}/", proprietary)


XOMS_PROPRIETARY = "ISV_PBCP"
# Short names of the xOMS brokers whose API hosts are known (primary.md §1.2).
XOMS_BROKERS: tuple[str, ...] = ("cocos", "bull", "veta", "lbo", "eco", "zeni", "dmabroker", "demo")

ENVIRONMENTS: Mapping[str, PrimaryEnvironment] = MappingProxyType(
    {
        "remarkets": _api("remarkets", "api.remarkets.primary.com.ar", "PBCP"),
        "live": _api("live", "api.primary.com.ar", "api"),
        **{b: _api(b, f"api.{b}.xoms.com.ar", XOMS_PROPRIETARY) for b in XOMS_BROKERS},
        "latinsecurities": _api("latinsecurities", "api.latinsecurities.matrizoms.com.ar", XOMS_PROPRIETARY),
    }
)
_ALIASES = MappingProxyType({"remarket": "remarkets", "primary": "live"})  # pyRofex's REMARKET too

MATRIZ_EXPLANATION = (
    "{host} is the broker's Matriz web app, not the Primary API: its socket "
    "(/ws?session_id=…&conn_id=…) is authenticated by the browser's session cookie (_mtz_web_key), a "
    "different auth system that API clients cannot use (the API's X-Auth-Token is not accepted there)"
)


def known_names() -> list[str]:
    return sorted(ENVIRONMENTS)


def resolve_environment(
    name_or_url: str, *, ws_url: str | None = None, proprietary: str | None = None
) -> PrimaryEnvironment:
    """The environment for a name (`remarkets`, `live`, `cocos`, …) or an explicit URL.

    An explicit URL may be http(s) or ws(s), with or without a path; the REST base becomes
    `<scheme>://<host>[:port]<path>/` and the socket the same host's root (or `ws_url` if given).
    Raises `ConfigError` for unknown names, unusable URLs and `matriz.*` hosts.
    """
    text = name_or_url.strip()
    if not text:
        raise ConfigError("primary environment is empty", remedy=_names_remedy())
    if "://" not in text and "." not in text and ":" not in text:
        key = _ALIASES.get(text.lower(), text.lower())
        env = ENVIRONMENTS.get(key)
        if env is None:
            raise ConfigError(f"unknown Primary environment {text!r}", remedy=_names_remedy())
        return _override(env, ws_url, proprietary)
    return _override(_from_url(text), ws_url, proprietary)


def _names_remedy() -> str:
    return (
        f"use one of {', '.join(known_names())}, or an explicit API URL such as "
        "https://api.<broker>.xoms.com.ar/"
    )


def _override(env: PrimaryEnvironment, ws_url: str | None, proprietary: str | None) -> PrimaryEnvironment:
    if ws_url is not None:
        ws = _from_url(ws_url).ws_url if "://" in ws_url else ws_url
        env = PrimaryEnvironment(env.name, env.rest_url, ws, env.proprietary)
    if proprietary:
        env = PrimaryEnvironment(env.name, env.rest_url, env.ws_url, proprietary)
    return env


def _from_url(text: str) -> PrimaryEnvironment:
    if "://" not in text:
        text = "https://" + text  # a bare host: api.cocos.xoms.com.ar
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"not a usable Primary API URL: {text!r} ({exc})", remedy=_names_remedy()) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https", "ws", "wss") or not host:
        raise ConfigError(
            f"not a usable Primary API URL: {text!r}",
            remedy="give an http(s):// or ws(s):// URL, e.g. https://api.cocos.xoms.com.ar/",
        )
    if host.startswith("matriz."):
        broker = host.split(".")[1] if host.count(".") >= 2 else "<broker>"
        raise ConfigError(
            MATRIZ_EXPLANATION.format(host=host),
            remedy=(
                f"use the API host https://api.{broker}.xoms.com.ar/ (environment name {broker!r} if it "
                "is a known xOMS broker) with the API user and password your broker issues for the "
                "Primary API"
            ),
        )
    secure = scheme in ("https", "wss")
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    path = parts.path if scheme in ("http", "https") else ""
    if not path.endswith("/"):
        path += "/"
    rest = urlunsplit(("https" if secure else "http", netloc, path, "", ""))
    ws = urlunsplit(("wss" if secure else "ws", netloc, "/", "", ""))
    proprietary = (
        XOMS_PROPRIETARY
        if host.endswith((".xoms.com.ar", ".matrizoms.com.ar"))
        else ("PBCP" if "remarkets" in host else "api")
    )
    return PrimaryEnvironment(host, rest, ws, proprietary)
