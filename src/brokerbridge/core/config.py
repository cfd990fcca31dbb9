"""Configuration: one frozen object, read from a TOML file and environment variables.

Precedence (last wins): built-in defaults → TOML file → environment → command-line flags.
Defaults point at the real Kraken; no credentials means "public data only" for a real venue and
"use the simulator's demo account" for `brokerbridge serve` / `watch` when no URL was changed.
Primary is configured by a [primary] table or BROKERBRIDGE_PRIMARY_* variables (absent: not used).
A venue configured in part (a Kraken key without its secret, a Primary environment without a user
and password) is refused, never quietly replaced by a simulator. `[server] venues` picks the venues
that run. Every mistake raises `ConfigError` saying which setting, why, and what to do.
See docs/configuration.md.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlparse

import msgspec
from msgspec import Meta

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.events import Channel
from brokerbridge.core.passwords import is_password_hash
from brokerbridge.core.secret import Secret

KRAKEN_REST_URL = "https://api.kraken.com"
KRAKEN_WS_URL = "wss://ws.kraken.com/v2"
KRAKEN_WS_AUTH_URL = "wss://ws-auth.kraken.com/v2"
# What must outlive a run — the session signing key, the fills journal — lives in one directory:
# $XDG_STATE_HOME/brokerbridge when that is set (`state_path`), else this.
DEFAULT_STATE_DIR = "~/.local/state/brokerbridge"
# Every fill, journaled before it is published.
DEFAULT_JOURNAL_PATH = DEFAULT_STATE_DIR + "/journal.sqlite3"
# Every venue brokerbridge speaks; `[server] venues` (or `serve --venue`) runs a subset of them.
VENUES = ("kraken", "primary")


# What a setting may hold is its field's type: `load_config` checks a value given in the file, the
# environment or on the command line with `msgspec.convert` against it (lax for text, so "120" from
# the environment is a number), and words a refusal from the type's Meta: `title` when the value is
# not of the type at all, `description` when it breaks a bound, `extra["remedy"]` what to do.
# Numbers are echoed in the refusal; text never is (it may be a secret, even when malformed).
_FINITE = sys.float_info.max  # ≤ this: no inf (msgspec's bounds are finite; NaN fails any bound)
Seconds = Annotated[
    float, Meta(gt=0, le=_FINITE, title="a number of seconds", description="a positive number of seconds")
]
Delay = Annotated[  # may be 0
    float, Meta(ge=0, le=_FINITE, title="a number of seconds ≥ 0", description="a number of seconds ≥ 0")
]
# An access token's lifetime: long enough for one request round trip, at most 30 days.
TokenSeconds = Annotated[
    float,
    Meta(
        ge=10,
        le=30 * 86400,
        title="a number of seconds",
        description="a number of seconds from 10 to 2592000 (30 days)",
    ),
]
Milliseconds = Annotated[
    float,
    Meta(gt=0, le=_FINITE, title="a number of milliseconds", description="a positive number of milliseconds"),
]
Amount = Annotated[float, Meta(gt=0, le=_FINITE, title="a number", description="a positive number")]
Count = Annotated[int, Meta(ge=1, title="a whole number", description="a whole number of at least 1")]
Text = Annotated[str, Meta(min_length=1, title="a non-empty string", description="a non-empty string")]
PathText = Annotated[str, Meta(min_length=1, title="a non-empty path", description="a non-empty path")]
Names = Annotated[  # a list in the file, comma-separated in the environment
    tuple[Annotated[str, Meta(min_length=1)], ...],
    Meta(title="a list of strings", description="a list of strings"),
]
# URLs: their scheme and host are checked by `_check_url` (its texts say which schemes).
HttpUrl = Annotated[str, Meta(extra={"schemes": ("http", "https")})]
WsUrl = Annotated[str, Meta(extra={"schemes": ("ws", "wss")})]
# Kraken's verification tiers, which set its per-pair trading rate counter (venues/kraken/rate_counter.py).
_TIER_RULE = "one of starter, intermediate, pro"
KrakenTier = Annotated[
    Literal["starter", "intermediate", "pro"],
    Meta(
        title=_TIER_RULE,
        description=_TIER_RULE,
        extra={
            "remedy": "use the verification tier of the account the key belongs to (Kraken: Settings › "
            "Account); starter, the lowest, when unsure"
        },
    ),
]
# Nanoseconds at most: a larger scale would overflow Kraken's 64-bit nonce.
NONCE_SCALES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000)
_NONCE_RULE = f"a power of ten from {NONCE_SCALES[0]} to {NONCE_SCALES[-1]}"
_NONCE_REMEDY = "use 1000000 (microseconds, the default), or the scale `brokerbridge doctor --fix` found"
NonceScale = Annotated[  # and a power of ten: `_check_nonce_scale`
    int,
    Meta(
        ge=NONCE_SCALES[0],
        le=NONCE_SCALES[-1],
        title=_NONCE_RULE,
        description=_NONCE_RULE,
        extra={"remedy": _NONCE_REMEDY},
    ),
]


def state_path(path: str, env: Mapping[str, str] | None = None) -> Path:
    """`path` with `~` expanded — and the defaults (`DEFAULT_STATE_DIR`, `DEFAULT_JOURNAL_PATH`)
    under `$XDG_STATE_HOME/brokerbridge` when that variable is set. A path the user chose is kept."""
    xdg = (os.environ if env is None else env).get("XDG_STATE_HOME")
    if xdg and path in (DEFAULT_STATE_DIR, DEFAULT_JOURNAL_PATH):
        return Path(xdg) / "brokerbridge" / path[len(DEFAULT_STATE_DIR) :].lstrip("/")
    return Path(path).expanduser()


@dataclass(frozen=True, slots=True)
class KrakenConfig:
    rest_url: HttpUrl = KRAKEN_REST_URL
    ws_url: WsUrl = KRAKEN_WS_URL
    ws_auth_url: WsUrl = KRAKEN_WS_AUTH_URL
    api_key: Text | None = None
    api_secret: Secret | None = None
    # Kraken tokens must be used within 15 minutes; refresh well before that.
    token_refresh_interval: Seconds = 600.0
    # Kraken heartbeats every second once subscribed: this much silence means a dead socket.
    idle_timeout: Seconds = 10.0
    # While a stream is down, serve the same events from REST after this long, every poll_interval.
    poll_after: Seconds = 1.0
    poll_interval: Seconds = 2.0
    request_timeout: Seconds = 10.0  # each connect / read / write of a REST call
    request_deadline: Seconds = 30.0  # a whole REST call, headers and body: a trickling answer ends here
    # Private state is read back from REST when no reconciliation ran for this long (≥ 5 s): a
    # frame lost with nothing after it shows no sequence gap. ~5 REST counter points per read.
    reconcile_interval: Seconds = 60.0
    # Kraken's private REST call counter for the key's tier (Intermediate: 20, −0.5/s; Starter: 15, −0.33/s).
    rate_limit_max: Amount = 20.0
    rate_limit_decay: Amount = 0.5
    # Nonces are wall time × this (1e6: microseconds). Kraken wants them increasing per key, so a
    # key another client used at a larger scale needs a larger one here (`brokerbridge doctor --fix`).
    nonce_scale: NonceScale = 1_000_000
    # The account's tier sets Kraken's per-pair trading rate counter (threshold 60 / 125 / 180,
    # decay 1 / 2.34 / 3.75 per s), which the bridge keeps so that it waits or refuses before Kraken
    # answers `EOrder:Rate limit exceeded`. Starter, the lowest, by default: modelled too low, the
    # counter only makes a higher-tier account wait more than it must; too high, Kraken refuses.
    tier: KrakenTier = "starter"
    # How long an order (or cancel, amend) may wait for room on that counter before it is refused
    # with the time to retry; 0 refuses at once. A burst a little over the counter then goes out at
    # the pace Kraken allows instead of failing, and no order waits long enough to go stale.
    order_queue_s: Delay = 5.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    # An order request on the authenticated socket unanswered this long has an unknown outcome.
    order_timeout: Seconds = 10.0
    # Kraken's dead man's switch (cancel_all_orders_after): > 0 arms it with this timeout (whole
    # seconds) while the bridge runs, refreshed every third of it; every open order is canceled
    # if the bridge stops refreshing it (crash, network). Disarmed on a clean stop. 0: off.
    dead_man_switch_s: Delay = 0.0

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

    environment: Text = "remarkets"
    rest_url: HttpUrl | None = None
    ws_url: WsUrl | None = None
    user: Text | None = None
    password: Secret | None = None
    account: Text | None = None
    proprietary: Text | None = None  # default per environment (PBCP, api, ISV_PBCP)
    # Tokens live 24 h; log in again well before (Primary asks for about one login a day).
    relogin_interval: Seconds = 20 * 3600.0
    # A socket silent this long while the market is open is presumed dead or de-authorised.
    idle_timeout: Seconds = 120.0
    market_hours: Text = "10:00-17:15"  # Buenos Aires time (UTC−3, no DST); "always" for simulators
    poll_after: Seconds = 2.0
    poll_interval: Seconds = 1.0  # marketdata/get at most once a second (Primary's best practice)
    ping_interval: Seconds = 30.0  # WebSocket ping frames: Primary closes sockets that send nothing
    request_timeout: Seconds = 10.0  # each connect / read / write of a REST call
    request_deadline: Seconds = 30.0  # a whole REST call, headers and body: a trickling answer ends here
    instruments_cache_dir: Text = "~/.cache/brokerbridge"
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)

    @property
    def has_credentials(self) -> bool:
        return bool(self.user and self.password)


SCOPES = ("market", "account", "trade", "admin")
# What a caller may write where it names scopes (access tokens, the sign-in flow): `read` is
# market + account, the word front ends use for "see, not trade".
SCOPE_ALIASES = {"read": ("market", "account")}


def expand_scopes(names: Iterable[str]) -> frozenset[str]:
    """`names` with aliases expanded (`read` → market, account); ValueError naming an unknown one."""
    scopes: set[str] = set()
    for raw in names:
        name = raw.strip().lower()
        if name in SCOPE_ALIASES:
            scopes.update(SCOPE_ALIASES[name])
        elif name in SCOPES:
            scopes.add(name)
        else:
            known = ", ".join((*SCOPES, *SCOPE_ALIASES))
            raise ValueError(f"unknown scope {raw[:40]!r} (scopes: {known})")
    return frozenset(scopes)


def scope_allowed(scopes: frozenset[str], scope: str) -> bool:
    """`admin` grants every scope but `trade`: placing orders is granted by name only, so no key
    written before the scope existed (an admin key included) can trade."""
    return scope in scopes or (scope != "trade" and "admin" in scopes)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A client key for `brokerbridge serve`: `scopes` ⊆ market, account, trade, admin (admin grants
    all but trade). `cancel_on_disconnect_s`: orders this key placed over a `/ws` connection are
    canceled once none of its connections has been open for that long (None: they stay)."""

    name: str
    key: Secret
    scopes: frozenset[str] = frozenset({"market"})
    cancel_on_disconnect_s: float | None = None

    def allows(self, scope: str) -> bool:
        return scope_allowed(self.scopes, scope)


@dataclass(frozen=True, slots=True)
class User:
    """A bridge-local user for Primary-style logins (`POST /primary/auth/getToken` with
    X-Username/X-Password): `password_hash` made by `brokerbridge hash-password` (scrypt; the
    password itself is never configured). Never the broker's user."""

    name: str
    password_hash: Secret
    scopes: frozenset[str] = frozenset({"market"})

    def allows(self, scope: str) -> bool:
        return scope_allowed(self.scopes, scope)


# Market channels a `[server] warm` entry may name (account streams are held anyway).
WARM_CHANNELS = (Channel.TICKER, Channel.BOOK, Channel.TRADES, Channel.CANDLES, Channel.STATS)
_WARM_FORM = "venue:channel:symbol[:depth=N|:interval=N]"
_WARM_REMEDY = (
    f'write each entry as {_WARM_FORM}, e.g. "kraken:ticker:BTC/USD", "kraken:book:BTC/USD:depth=25", '
    f'"primary:trades:MERV - XMEV - GGAL - 24hs" (channels: {", ".join(c.value for c in WARM_CHANNELS)})'
)


@dataclass(frozen=True, slots=True)
class WarmStream:
    """A `[server] warm` entry: a market stream the Bridge holds open from start (for a fast first
    tick), whether or not anyone consumes it. `depth` None: the venue's default book depth."""

    venue: str
    channel: Channel
    symbol: str
    depth: int | None = None  # book only
    interval: int = 1  # candles only, minutes

    def describe(self) -> str:
        option = f":depth={self.depth}" if self.depth is not None else ""
        option = f":interval={self.interval}" if self.channel is Channel.CANDLES else option
        return f"{self.venue}:{self.channel.value}:{self.symbol}{option}"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """`[server]`: client auth, per-client limits and queue policy of `brokerbridge serve`."""

    keys: tuple[ApiKey, ...] = ()
    users: tuple[User, ...] = ()  # bridge-local users ([server.users.<name>]), for /primary/ logins
    # Market data without a key. None: open only when the server binds to a loopback address.
    open_market_data: bool | None = None
    allowed_origins: Names = ()  # besides same-origin, e.g. "https://app.example.com"
    messages_per_second: Amount = 20.0  # client → server messages, token bucket per connection
    message_burst: Count = 40
    max_subscriptions: Count = 1000  # per connection (a batch subscribe counts each symbol)
    max_connections_per_key: Count = 20
    client_queue_size: Count = 1000  # outgoing messages per client before conflation / disconnect
    conflate_after: Count = 64  # waiting market messages per client from which ticker/book conflate
    heartbeat_interval: Seconds = 10.0  # s between heartbeat messages and WebSocket pings to clients
    client_timeout: Seconds = 30.0  # s without anything from a client (pongs included) before it is closed
    # The longest a message waits to be written together with others (the window grows with load).
    write_window_ms: Milliseconds = 5.0
    grace_s: Delay = 5.0  # an upstream with no subscriber left closes after this long
    session_ttl: Seconds = 12 * 3600.0  # browser sessions (cookie) last this long
    # Access tokens (`bbt.…`, POST /api/tokens): one lives at most this long (default and upper
    # bound of a request's ttl_s) …
    access_token_ttl: TokenSeconds = 900.0
    # … and renewing it (POST /api/tokens/renew) stops this long after its grant was first minted
    # (a token minted by a browser session also stops when that session would end).
    access_token_max_age: TokenSeconds = 12 * 3600.0
    # Holds the key that signs session cookies, so sessions survive a restart of `serve`.
    state_dir: PathText = DEFAULT_STATE_DIR
    # Failed authentications (bad key, token or login code) one client address may make in a row;
    # after that one more per auth_failure_interval seconds, every other credential it presents
    # answered 429 with Retry-After.
    auth_failure_burst: Count = 10
    auth_failure_interval: Seconds = 6.0
    # Host header names served (HTTP and /ws handshakes) besides the loopback names and the bound
    # host; "*" serves any (DNS rebinding is then possible).
    allowed_hosts: Names = ()
    # The venues that run (`serve --venue`): empty means all of VENUES. A venue left out gets no
    # connector, no simulator and no route data.
    venues: Names = ()

    # Market streams held open from start (`venue:channel:symbol[:depth=N|:interval=N]`).
    warm: tuple[WarmStream, ...] = ()


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """`[client]`: the running `brokerbridge serve` that `watch`, `doctor`, `instruments`, `status`
    and `login-link` attach to (instead of opening venue sessions of their own). `url` None: the
    one found through serve's discovery file in `[server] state_dir`; `key`: an API key of that
    server (the account scope shows balances and executions; admin allows status and login links
    from another machine)."""

    url: HttpUrl | None = None
    key: Secret | None = None


_MODEL_RULE = "american or european"
OptionModel = Annotated[
    Literal["american", "european"],
    Meta(
        title=_MODEL_RULE,
        description=_MODEL_RULE,
        extra={
            "remedy": "american (Bjerksund–Stensland 2002: BYMA's equity options are American) or european"
        },
    ),
]
_BASIS_RULE = "calendar or business"
TimeBasis = Annotated[
    Literal["calendar", "business"],
    Meta(
        title=_BASIS_RULE,
        description=_BASIS_RULE,
        extra={
            "remedy": "calendar (days/365 to the expiry's close, like the caución) or business (sessions/252)"
        },
    ),
]
Percent = Annotated[
    float, Meta(ge=-100, le=10_000, title="a percentage", description="a percentage from -100 to 10000")
]
ClockTime = Annotated[
    str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", title="HH:MM", description="HH:MM, e.g. 17:00")
]


@dataclass(frozen=True, slots=True)
class Dividend:
    """A cash dividend per share of `underlying` going ex on `ex_date` ([options.dividends])."""

    underlying: str  # ticker, e.g. GGAL
    ex_date: str  # ISO date
    amount: Decimal  # per share, in the underlying's currency


@dataclass(frozen=True, slots=True)
class OptionsConfig:
    """`[options]`: the options analytics (issue 20; docs/options.md)."""

    model: OptionModel = "american"  # the default; each request / subscription may choose the other
    # The rate: the peso caución's quote (1-day, else the shortest listed) when the catalogue has one;
    # `rate_tna` when it has none, or always with rate_source = "config". % TNA, simple ACT/365.
    rate_source: Literal["caucion", "config"] = "caucion"
    rate_tna: Percent = 30.0
    time_basis: TimeBasis = "calendar"
    expiry_time: ClockTime = "17:00"  # Buenos Aires: the close of the expiry day's session
    # An underlying price older than this (or from a stream that is not live) is stale.
    stale_after: Seconds = 300.0
    holidays_file: PathText | None = None  # closures read on top of the shipped BYMA calendar
    dividends: tuple[Dividend, ...] = ()  # [options.dividends] GGAL = [{ex_date = "…", amount = 25.5}]


_ROLE_RULE = "one of holder, edge"
Role = Annotated[
    Literal["holder", "edge"],
    Meta(
        title=_ROLE_RULE,
        description=_ROLE_RULE,
        extra={"remedy": "holder: may hold venue sessions (and serves clients); edge: serves clients only"},
    ),
]
REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """`[cluster]`: this node of a brokerbridge cluster on Redis (issue 21; docs/cluster.md). Without
    `redis_url` the node is one process on its own (today's), and nothing here is read."""

    # redis://[:password@]host:port/db, rediss://… (TLS) or unix:///path.sock: a Secret, since the
    # URL may carry Redis's password (logs and `status` show it without: `ClusterKeys.describe_url`).
    redis_url: Secret | None = None
    node_id: Text | None = None  # this node's name in the cluster; default <hostname>-<pid>
    prefix: Text = "bb"  # every key and stream of this cluster starts "<prefix>:"
    # What this node may be: "holder" (an edge that may also hold venue sessions, the default) or
    # "edge" (serves clients only, never logs in to a venue).
    role: Role = "holder"
    # The venue-session lease: its time to live, and how often its holder renews it. A standby
    # takes over at most lease_ttl + renew_interval after the holder's last renewal.
    lease_ttl: Seconds = 3.0
    renew_interval: Seconds = 1.0
    stream_maxlen: Count = 100_000  # entries kept per event stream (XADD MAXLEN ~): the resume window
    interest_ttl: Seconds = 10.0  # a node's market-data subscriptions expire this long after it dies
    order_timeout: Seconds = 10.0  # an edge's order request unanswered this long → unknown


# An unanswered submit not found among the venue's orders this long after it was sent never arrived.
DEFAULT_UNKNOWN_GIVE_UP_S = 60.0


@dataclass(frozen=True, slots=True)
class OrdersConfig:
    """`[orders]`: the order service's settings common to every venue (services/orders.py)."""

    # A submit that got no answer (its outcome UNKNOWN) is looked for among the venue's orders; not
    # found this long after it was sent, it never arrived: `rejected`, and its client order id
    # answers that refusal. Longer covers a venue that books orders late (a queue, a slow matching
    # engine); shorter frees a retry sooner. A submit refused before anything was sent is never
    # UNKNOWN (`not_sent` at once): this wait is only for sends that may have gone out.
    unknown_give_up: Seconds = DEFAULT_UNKNOWN_GIVE_UP_S


@dataclass(frozen=True, slots=True)
class Config:
    kraken: KrakenConfig = field(default_factory=KrakenConfig)
    primary: PrimaryConfig | None = None  # None: Primary not configured
    server: ServerConfig = field(default_factory=ServerConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    options: OptionsConfig = field(default_factory=OptionsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    orders: OrdersConfig = field(default_factory=OrdersConfig)
    log_level: str = "INFO"
    log_format: str = "auto"  # auto (rich on a terminal, plain otherwise), rich, plain, json
    journal_path: str | None = DEFAULT_JOURNAL_PATH  # SQLite file of every fill; None / ":memory:": in memory
    # Venues whose settings point at an embedded simulator (its demo account). Never read from a
    # file: set only by the simulator start-up (sim/embedded.py), so everything downstream (the
    # server's /api/venues, the dashboard, `watch`) can say which data is not real.
    simulated: frozenset[str] = frozenset()

    @property
    def venues(self) -> tuple[str, ...]:
        """The venues that run, in VENUES order (`[server] venues`, all when not given)."""
        return tuple(v for v in VENUES if v in self.server.venues) if self.server.venues else VENUES


LOG_FORMATS = ("auto", "rich", "plain", "json")


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


def _converted(section: str, name: str, value: Any, kind: Any, where: str) -> Any:
    """`value` as `kind` (one of the Annotated types above), or the `ConfigError` its Meta words."""
    base, meta = get_args(kind)[:2]
    refused = f"{where}: {section}.{name} must be"
    got = f", got {value!r}" if base in (int, float) else ""
    remedy = (meta.extra or {}).get("remedy")
    if isinstance(value, str):
        value = value.strip()
        if get_origin(base) is tuple:
            value = [part for part in (part.strip() for part in value.split(",")) if part]
    try:
        # Text (the environment, a flag) is read as the type says; the file's values have their own.
        typed = msgspec.convert(value, base, strict=not isinstance(value, str))
    except msgspec.ValidationError:
        raise ConfigError(f"{refused} {meta.title}{got}", remedy=remedy) from None
    if isinstance(typed, tuple):
        typed = tuple(item.strip() for item in typed)
    try:
        return msgspec.convert(typed, kind)
    except msgspec.ValidationError:
        raise ConfigError(f"{refused} {meta.description}{got}", remedy=remedy) from None


def _check_nonce_scale(scale: int, value: Any, where: str) -> int:
    if scale not in NONCE_SCALES:
        raise ConfigError(
            f"{where}: kraken.nonce_scale must be {_NONCE_RULE}, got {value!r}", remedy=_NONCE_REMEDY
        )
    return scale


def _check_interval(name: str, value: Any, seconds: float, where: str) -> None:
    """The bounds a venue sets on some intervals, beyond being a positive number of seconds."""
    if name == "token_refresh_interval" and seconds >= 900:
        raise ConfigError(
            f"{where}: kraken.token_refresh_interval = {value!r} is not under 900 s",
            remedy="Kraken tokens must be used within 15 minutes of issue; keep it below 900 (default 600)",
        )
    if name == "reconcile_interval" and seconds < 5:
        raise ConfigError(
            f"{where}: kraken.reconcile_interval = {value!r} is under 5 s",
            remedy="each read back costs ~5 points of Kraken's REST call counter; use 5 or more (default 60)",
        )
    if name == "relogin_interval" and seconds >= 24 * 3600:
        raise ConfigError(
            f"{where}: primary.relogin_interval = {value!r} is not under 24 h",
            remedy="Primary tokens last 24 h; keep it below 86400 (default 72000)",
        )


def _check_kraken_secret(secret: Secret, where: str) -> None:
    """Kraken signs with the secret's base64 decoding (venues/kraken/auth.py decodes it the same
    way): a secret that does not decode can sign nothing, so it is refused here, once, rather than
    found by every private call and token fetch of a running bridge."""
    try:
        base64.b64decode(secret.reveal(), validate=True)
    except (binascii.Error, ValueError):
        # Never echo the value, not even in part: say what is wrong with it.
        raise ConfigError(
            f"{where}: kraken.api_secret is not valid base64 (a character is missing, extra or was changed)",
            remedy="copy the private key again from Kraken's key page (Settings › API); it is shown once, "
            "at creation — if it is lost, create a new key",
        ) from None


def _setting(section: str, name: str, value: Any, kind: Any, where: str) -> Any:
    """`value` checked against the type of setting `section.name` (`kind`: its field's type)."""
    if get_origin(kind) in (Union, UnionType):  # `X | None`: a value given is an X
        (kind,) = (arg for arg in get_args(kind) if arg is not NoneType)
    if kind is Secret:
        secret = Secret(_converted(section, name, value, Text, where))
        if (section, name) == ("kraken", "api_secret"):
            _check_kraken_secret(secret, where)
        return secret
    schemes = (get_args(kind)[1].extra or {}).get("schemes")
    if schemes is not None:
        return _check_url(section, name, value, schemes, where)
    if kind == KrakenTier and isinstance(value, str):
        value = value.lower()  # "Pro" as Kraken's pages write it
    typed = _converted(section, name, value, kind, where)
    if kind == NonceScale:
        return _check_nonce_scale(typed, value, where)
    if kind == Seconds:
        _check_interval(name, value, typed, where)
    return typed


def _check_names(base: Any, section: str, values: Mapping[str, Any], where: str, *, hidden: set[str]) -> None:
    """Every key of `values` must be a setting of `base` (a typo must not fall back to a default)."""
    known = {f.name for f in fields(base)} - hidden
    unknown = next((name for name in values if name not in known), None)
    if unknown is not None:
        raise ConfigError(
            f"{where}: unknown setting {section}.{unknown}",
            remedy=f"valid settings are: {', '.join(sorted(known))}",
        )


def _section_from_mapping(base: Any, section: str, values: Mapping[str, Any], where: str) -> Any:
    _check_names(base, section, values, where, hidden={"backoff"})
    kinds = get_type_hints(type(base), include_extras=True)
    changes = {name: _setting(section, name, value, kinds[name], where) for name, value in values.items()}
    return replace(base, **changes)


MAX_KEY_LENGTH = 256  # what a client may present (server/protocol.py bounds it too)


def _check_bool(name: str, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{where}: server.{name} must be true or false, got {value!r}")


def _parse_keys(value: Any, where: str) -> tuple[ApiKey, ...]:
    """`keys = [{name, key, scopes}, …]` or `[server.keys.<name>] key = …, scopes = […]`."""
    if isinstance(value, dict):
        value = [
            {"name": name, **entry} if isinstance(entry, dict) else entry for name, entry in value.items()
        ]
    if not isinstance(value, list):
        raise ConfigError(
            f"{where}: server.keys must be a list of {{name, key, scopes}} tables or a [server.keys] table"
        )
    keys: list[ApiKey] = []
    for n, entry in enumerate(value):
        label = f"server.keys[{n}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {label} must be a table with name, key and scopes")
        unknown = set(entry) - {"name", "key", "scopes", "cancel_on_disconnect_s"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown setting {label}.{sorted(unknown)[0]}",
                remedy="valid: name, key, scopes, cancel_on_disconnect_s",
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: {label}.name must be a non-empty string")
        label = f"server.keys.{name.strip()}"
        key = _api_key(
            name.strip(),
            entry.get("key"),
            entry.get("scopes", ["market"]),
            key_label=f"{where}: {label}.key",
            scopes_label=f"{where}: {label}.scopes",
        )
        grace = entry.get("cancel_on_disconnect_s")
        if grace is not None:
            if isinstance(grace, bool) or not isinstance(grace, int | float) or not 0 <= grace <= 86400:
                raise ConfigError(
                    f"{where}: {label}.cancel_on_disconnect_s = {grace!r} is not a number of seconds",
                    remedy="give 0 to 86400 seconds (how long a dropped connection may take to come "
                    "back before its orders are canceled), or leave it out",
                )
            key = replace(key, cancel_on_disconnect_s=float(grace))
        keys.append(key)
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: server.keys has duplicate names")
    _check_distinct(keys, f"{where}: server.keys")
    return tuple(keys)


def _parse_users(value: Any, where: str) -> tuple[User, ...]:
    """`[server.users.<name>] password_hash = "scrypt$…", scopes = […]`."""
    if not isinstance(value, dict) or not all(isinstance(entry, dict) for entry in value.values()):
        raise ConfigError(
            f"{where}: server.users must be tables [server.users.<name>] with password_hash and scopes"
        )
    users: list[User] = []
    for name, entry in value.items():
        label = f"server.users.{str(name).strip()}"
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise ConfigError(f"{where}: server.users has a user with an empty or too long name")
        unknown = set(entry) - {"password_hash", "scopes"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown setting {label}.{sorted(unknown)[0]}",
                remedy="valid: password_hash, scopes",
            )
        hashed = entry.get("password_hash")
        if not isinstance(hashed, str) or not is_password_hash(hashed.strip()):
            # Not echoed: someone may have put the password itself there.
            raise ConfigError(
                f"{where}: {label}.password_hash is not a password hash made by brokerbridge",
                remedy="make one with: brokerbridge hash-password (it prompts for the password), and "
                "paste the line it prints; never write the password itself in the config",
            )
        scopes = entry.get("scopes", ["market"])
        try:
            granted = expand_scopes(scopes) if isinstance(scopes, list) and scopes else None
        except ValueError:
            granted = None
        if granted is None:
            raise ConfigError(
                f"{where}: {label}.scopes = {scopes!r} is not a list of scopes",
                remedy=f"scopes: {', '.join((*SCOPES, *SCOPE_ALIASES))}",
            )
        users.append(User(name=name.strip(), password_hash=Secret(hashed.strip()), scopes=granted))
    return tuple(users)


def _api_key(name: str, key: Any, scopes: Any, *, key_label: str, scopes_label: str) -> ApiKey:
    if not isinstance(key, str) or not 16 <= len(key.strip()) <= MAX_KEY_LENGTH:
        # Do not echo the value: it is a secret even when malformed.
        raise ConfigError(
            f"{key_label} must be a string of 16 to {MAX_KEY_LENGTH} characters",
            remedy='generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"',
        )
    if isinstance(scopes, str):
        scopes = [s for s in (part.strip() for part in scopes.split(",")) if s]
    if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
        raise ConfigError(
            f"{scopes_label} = {scopes!r} is not a list of scopes", remedy=f"scopes: {', '.join(SCOPES)}"
        )
    return ApiKey(name=name, key=Secret(key.strip()), scopes=frozenset(scopes))


def _check_distinct(keys: list[ApiKey], where: str) -> None:
    if len({k.key for k in keys}) != len(keys):
        raise ConfigError(
            f"{where}: two keys share the same key value", remedy="give every client its own key"
        )


_ENV_KEY = "BROKERBRIDGE_SERVER_KEY_"


def _env_keys(env: Mapping[str, str], configured: tuple[ApiKey, ...]) -> tuple[ApiKey, ...]:
    """`BROKERBRIDGE_SERVER_KEY_<NAME>=<key>` and `…_<NAME>_SCOPES=market,account`: one variable per
    key, so no key value ever sits in a list next to others. `<name>` is lowercased. Like any
    setting they override the file's: the key value and/or the scopes of `[server.keys.<name>]`;
    a new key's scopes default to market."""
    variables = {var: value for var, value in env.items() if var.startswith(_ENV_KEY)}
    keys = {key.name: key for key in configured}
    from_env: set[str] = set()
    for var in sorted(variables, key=lambda v: v.removesuffix("_SCOPES")):
        base = var.removesuffix("_SCOPES")
        name = base[len(_ENV_KEY) :].lower()
        if not name:
            raise ConfigError(
                f"environment: {var} names no key", remedy=f"name the key: {_ENV_KEY}<NAME>=<key>"
            )
        if var == base and name in from_env:
            raise ConfigError(
                f"environment: {var} names key {name!r} a second time (names are not case-sensitive)",
                remedy="keep one variable per key name",
            )
        if var != base and base in variables:
            continue  # read together with its key below
        if var == base:
            from_env.add(name)
        elif name not in keys:
            raise ConfigError(
                f"environment: {var} is set but {base} is not (and no [server.keys.{name}] in the file)",
                remedy=f"set the key itself in {base}, or unset {var}",
            )
        old = keys.get(name)
        keys[name] = _api_key(
            name,
            variables[base] if var == base else old.key.reveal() if old else None,
            variables.get(f"{base}_SCOPES") or (sorted(old.scopes) if old else ["market"]),
            key_label=f"environment: {base}",
            scopes_label=f"environment: {base}_SCOPES",
        )
        if old is not None:  # the file's other settings of the key stay
            keys[name] = replace(keys[name], cancel_on_disconnect_s=old.cancel_on_disconnect_s)
    return tuple(keys.values())


def _server_from_mapping(base: ServerConfig, values: Mapping[str, Any], where: str) -> ServerConfig:
    _check_names(base, "server", values, where, hidden=set())
    kinds = get_type_hints(ServerConfig, include_extras=True)
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == "keys":  # tables of their own, whose key values are never echoed
            changes[name] = _parse_keys(value, where)
        elif name == "users":  # the same, with password hashes
            changes[name] = _parse_users(value, where)
        elif name == "warm":  # entries of their own form, each checked for what it names
            changes[name] = _parse_warm(value, where)
        elif name == "open_market_data":  # also yes/no/on/off, which msgspec does not read as booleans
            changes[name] = _check_bool(name, value, where)
        elif name == "venues":
            changes[name] = check_venues(_setting("server", name, value, kinds[name], where), where)
        elif name == "allowed_origins":
            changes[name] = check_origins(_setting("server", name, value, kinds[name], where), where)
        else:
            changes[name] = _setting("server", name, value, kinds[name], where)
    return replace(base, **changes)


def check_venues(names: tuple[str, ...] | list[str], where: str) -> tuple[str, ...]:
    """`names` lowercased, each one a venue of VENUES (else the ConfigError naming them)."""
    chosen = tuple(dict.fromkeys(name.strip().lower() for name in names))
    unknown = [name for name in chosen if name not in VENUES]
    if unknown:
        raise ConfigError(
            f"{where}: unknown venue {unknown[0]!r}", remedy=f"valid venues are: {', '.join(VENUES)}"
        )
    return chosen


_ORIGIN_REMEDY = (
    "list each web app's origin exactly as its browser sends it: scheme://host[:port] with no path, "
    'e.g. "http://localhost:5173" or "https://app.example.com"'
)


def check_origins(origins: tuple[str, ...], where: str) -> tuple[str, ...]:
    """`server.allowed_origins`, each an origin as browsers send it (`scheme://host[:port]`,
    lowercase, no default port): a path, `*` or `null` is refused, since a listed origin is
    answered with credentials allowed and a near miss would never match."""
    normal: list[str] = []
    for origin in origins:
        label = f"{where}: server.allowed_origins entry {origin!r}"
        if origin in ("*", "null"):
            raise ConfigError(
                f"{label} is not allowed: a listed origin is trusted to call the API from a "
                "browser (CORS with credentials), so every origin must be named",
                remedy=_ORIGIN_REMEDY,
            )
        parsed = urlparse(origin.strip().rstrip("/"))
        try:
            port = parsed.port
        except ValueError:
            port = -1
        if (
            not parsed.scheme
            or not parsed.hostname
            or port == -1
            or parsed.path
            or parsed.query
            or parsed.fragment
            or "@" in parsed.netloc
        ):
            raise ConfigError(f"{label} is not an origin (scheme://host[:port])", remedy=_ORIGIN_REMEDY)
        scheme, host = parsed.scheme.lower(), parsed.hostname
        host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
        if port is None or (scheme, port) in (("http", 80), ("https", 443)):  # as browsers send it
            normal.append(f"{scheme}://{host}")
        else:
            normal.append(f"{scheme}://{host}:{port}")
    return tuple(dict.fromkeys(normal))


# Settings that say which Primary to log in to: given without user and password they are a venue
# configured in part (`[primary] environment = "cocos"` alone), which must not become the simulator.
_PRIMARY_TARGET = ("environment", "rest_url", "ws_url", "account", "proprietary")


def _check_complete(kraken: KrakenConfig, primary: PrimaryConfig | None, primary_named: set[str]) -> None:
    """A venue configured in part is a mistake to name, never a silent fall-back (the simulator,
    or public data only)."""
    if bool(kraken.api_key) != bool(kraken.api_secret):
        has, lacks = ("api_key", "api_secret") if kraken.api_key else ("api_secret", "api_key")
        raise ConfigError(
            f"kraken.{has} is set but kraken.{lacks} is missing: a Kraken key is the pair of both",
            remedy=f"set kraken.{lacks} (BROKERBRIDGE_KRAKEN_{lacks.upper()}) from the same key on "
            "Kraken's key page, or remove both for public data only (or the embedded simulator)",
        )
    if primary is None or primary.has_credentials:
        return
    missing = [f"primary.{name}" for name in ("user", "password") if not getattr(primary, name)]
    given = [f"primary.{name}" for name in (*_PRIMARY_TARGET, "user", "password") if name in primary_named]
    if len(missing) == 1 or any(name in primary_named for name in _PRIMARY_TARGET):
        raise ConfigError(
            f"Primary is configured in part: {', '.join(given)} set but {' and '.join(missing)} missing "
            "(Primary needs a login even for market data)",
            remedy="set primary.user and primary.password (BROKERBRIDGE_PRIMARY_USER / _PASSWORD): the "
            "API credentials your broker issues (reMarkets: your remarkets.primary.com.ar account); or "
            "remove the Primary settings to run the embedded Primary simulator, clearly marked as such",
        )


def _parse_warm(value: Any, where: str) -> tuple[WarmStream, ...]:
    """`warm = ["kraken:ticker:BTC/USD", …]` (the environment: comma-separated)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"{where}: server.warm must be a list of streams", remedy=_WARM_REMEDY)
    streams: list[WarmStream] = []
    for entry in value:
        if not isinstance(entry, str):
            raise ConfigError(
                f"{where}: server.warm entries must be strings, got {type(entry).__name__}",
                remedy=_WARM_REMEDY,
            )
        stream = _warm_stream(entry.strip(), where)
        if stream not in streams:
            streams.append(stream)
    return tuple(streams)


def _warm_stream(entry: str, where: str) -> WarmStream:
    parts = entry.split(":")
    venue, channel, symbol = [*parts, "", ""][:3]
    options = parts[3:]
    bad = f"{where}: server.warm entry {entry!r}"
    if venue not in ("kraken", "primary"):
        raise ConfigError(f"{bad} names no venue (kraken or primary) first", remedy=_WARM_REMEDY)
    if not channel:
        raise ConfigError(f"{bad} names no channel after the venue", remedy=_WARM_REMEDY)
    kind = next((c for c in Channel if c.value == channel), None)
    if kind is None or kind not in WARM_CHANNELS:
        why = "an account channel: account streams are always held open" if kind and kind.private else ""
        raise ConfigError(
            f"{bad}: {channel!r} is not a market channel{f' ({why})' if why else ''}", remedy=_WARM_REMEDY
        )
    if not symbol.strip():
        raise ConfigError(f"{bad} names no symbol", remedy=_WARM_REMEDY)
    stream = WarmStream(venue=venue, channel=kind, symbol=symbol.strip())
    for option in options:
        name, _, number = option.partition("=")
        allowed = {Channel.BOOK: "depth", Channel.CANDLES: "interval"}.get(kind)
        if name.strip() != allowed or not number.strip().isdigit() or int(number) < 1:
            raise ConfigError(
                f"{bad}: {option!r} is not an option of {kind.value}"
                + (f" (only {allowed}=N, a whole number ≥ 1)" if allowed else " (it takes none)"),
                remedy=_WARM_REMEDY,
            )
        if kind is Channel.BOOK:
            stream = replace(stream, depth=int(number))
        else:
            stream = replace(stream, interval=int(number))
    return stream


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
    server = ServerConfig()
    client = ClientConfig()
    options = OptionsConfig()
    cluster = ClusterConfig()
    orders = OrdersConfig()
    log_level = "INFO"
    log_format = "auto"
    journal_path: str | None = DEFAULT_JOURNAL_PATH
    primary_named: set[str] = set()  # the Primary settings given anywhere
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
        sections = {"kraken", "primary", "server", "client", "options", "cluster", "orders"}
        unknown = set(data) - sections - {"log_level", "log_format", "journal_path"}
        if unknown:
            raise ConfigError(
                f"{file}: unknown section(s) {', '.join(sorted(unknown))}",
                remedy="supported: [kraken], [primary], [server], [client], [options], [cluster], "
                "[orders], log_level, log_format and journal_path",
            )
        for section in sorted(sections):
            if section in data and not isinstance(data[section], dict):
                raise ConfigError(f"{file}: '{section}' must be a table ([{section}])")
        if "kraken" in data:
            kraken = _section_from_mapping(kraken, "kraken", data["kraken"], str(file))
        if "primary" in data:
            primary = _section_from_mapping(PrimaryConfig(), "primary", data["primary"], str(file))
            primary_named.update(data["primary"])
        if "server" in data:
            server = _server_from_mapping(server, data["server"], str(file))
        if "client" in data:
            client = _section_from_mapping(client, "client", data["client"], str(file))
        if "options" in data:
            options = _options_from_mapping(options, data["options"], str(file))
        if "cluster" in data:
            cluster = _section_from_mapping(cluster, "cluster", data["cluster"], str(file))
        if "orders" in data:
            orders = _section_from_mapping(orders, "orders", data["orders"], str(file))
        log_level = str(data.get("log_level", log_level)).upper()
        log_format = str(data.get("log_format", log_format)).lower()
        journal_path = _journal_path(data.get("journal_path", journal_path), str(file))
    from_env = _env_section(env, "kraken")
    if from_env:
        kraken = _section_from_mapping(kraken, "kraken", from_env, "environment (BROKERBRIDGE_KRAKEN_*)")
    primary_env = _env_section(env, "primary")
    if primary_env:
        primary = _section_from_mapping(
            primary or PrimaryConfig(), "primary", primary_env, "environment (BROKERBRIDGE_PRIMARY_*)"
        )
        primary_named.update(primary_env)
    server_env = {
        name: value for name, value in _env_section(env, "server").items() if not name.startswith("key_")
    }
    if "keys" in server_env:
        raise ConfigError(
            "environment: BROKERBRIDGE_SERVER_KEYS is not supported (it would list keys side by side)",
            remedy=f"set one variable per key: {_ENV_KEY}<NAME>=<key>, optionally "
            f"{_ENV_KEY}<NAME>_SCOPES=market,account; or use [server.keys] in the config file",
        )
    if server_env:
        server = _server_from_mapping(server, server_env, "environment (BROKERBRIDGE_SERVER_*)")
    if any(var.startswith(_ENV_KEY) for var in env):
        keys = _env_keys(env, server.keys)
        _check_distinct(list(keys), "server keys (file and environment)")
        server = replace(server, keys=keys)
    client_env = _env_section(env, "client")
    if client_env:
        client = _section_from_mapping(client, "client", client_env, "environment (BROKERBRIDGE_CLIENT_*)")
    options_env = _env_section(env, "options")
    if options_env:
        options = _options_from_mapping(options, options_env, "environment (BROKERBRIDGE_OPTIONS_*)")
    cluster_env = _env_section(env, "cluster")
    if cluster_env:
        cluster = _section_from_mapping(
            cluster, "cluster", cluster_env, "environment (BROKERBRIDGE_CLUSTER_*)"
        )
    orders_env = _env_section(env, "orders")
    if orders_env:
        orders = _section_from_mapping(orders, "orders", orders_env, "environment (BROKERBRIDGE_ORDERS_*)")
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        venues = given.pop("venues", None)
        redis_url = given.pop("cluster_redis_url", None)
        if redis_url is not None:  # `serve --cluster redis://…`
            cluster = _section_from_mapping(
                cluster, "cluster", {"redis_url": redis_url}, "command line (--cluster)"
            )
        kraken_given = {k: v for k, v in given.items() if not k.startswith("primary_")}
        primary_given = {k[len("primary_") :]: v for k, v in given.items() if k.startswith("primary_")}
        if kraken_given:
            kraken = _section_from_mapping(kraken, "kraken", kraken_given, "command line")
        if primary_given:
            primary = _section_from_mapping(
                primary or PrimaryConfig(), "primary", primary_given, "command line"
            )
            primary_named.update(primary_given)
        if venues:  # `serve --venue`, repeatable
            server = replace(server, venues=check_venues(venues, "command line (--venue)"))
    if "BROKERBRIDGE_JOURNAL_PATH" in env:
        journal_path = _journal_path(
            env["BROKERBRIDGE_JOURNAL_PATH"], "environment (BROKERBRIDGE_JOURNAL_PATH)"
        )
    if env.get("BROKERBRIDGE_LOG_LEVEL"):
        log_level = env["BROKERBRIDGE_LOG_LEVEL"].upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log_level {log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    if env.get("BROKERBRIDGE_LOG_FORMAT"):
        log_format = env["BROKERBRIDGE_LOG_FORMAT"].lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(
            f"log_format {log_format!r} is not one of {', '.join(LOG_FORMATS)}",
            remedy="auto picks rich on a terminal and plain elsewhere; json writes one object per line",
        )
    _check_complete(kraken, primary, primary_named)
    if server.client_timeout <= server.heartbeat_interval:
        raise ConfigError(
            f"server.client_timeout ({server.client_timeout:g} s) must be longer than "
            f"server.heartbeat_interval ({server.heartbeat_interval:g} s): clients are pinged once per "
            "interval, so a shorter timeout would close clients that answer every ping",
            remedy="make client_timeout a few heartbeat intervals (defaults: 30 and 10)",
        )
    if server.access_token_max_age < server.access_token_ttl:
        raise ConfigError(
            f"server.access_token_max_age ({server.access_token_max_age:g} s) is shorter than "
            f"server.access_token_ttl ({server.access_token_ttl:g} s): no token could be renewed",
            remedy="make access_token_max_age at least access_token_ttl (defaults: 43200 and 900)",
        )
    return Config(
        kraken=kraken,
        primary=primary,
        server=server,
        client=client,
        options=options,
        cluster=_checked_cluster(cluster),
        orders=orders,
        log_level=log_level,
        log_format=log_format,
        journal_path=journal_path,
    )


def _checked_cluster(cluster: ClusterConfig) -> ClusterConfig:
    """The settings no single type says: a Redis URL (never echoed: it may hold a password), a node
    id of one word, and a renewal well inside the lease."""
    if cluster.redis_url is not None:
        parsed = urlparse(cluster.redis_url.reveal())
        if parsed.scheme not in REDIS_SCHEMES or not (parsed.netloc or parsed.path):
            raise ConfigError(
                "cluster.redis_url is not a Redis URL",
                remedy="use redis://[:password@]host:6379/0, rediss://… for TLS, or unix:///path/redis.sock",
            )
    if cluster.node_id is not None and (not cluster.node_id or any(c.isspace() for c in cluster.node_id)):
        raise ConfigError(
            f"cluster.node_id {cluster.node_id!r} must be one word: it is half of the lease's holder "
            "token '<node_id> <epoch>'",
            remedy="use letters, digits, '-', '_' or '.' (e.g. gw-1), or leave it out for <hostname>-<pid>",
        )
    if cluster.renew_interval * 2 > cluster.lease_ttl:
        raise ConfigError(
            f"cluster.renew_interval ({cluster.renew_interval:g} s) must be at most half of "
            f"cluster.lease_ttl ({cluster.lease_ttl:g} s): one lost renewal must not lose the lease",
            remedy="keep the defaults (lease_ttl 3, renew_interval 1) or renew at least twice per lease",
        )
    return cluster


def _options_from_mapping(base: OptionsConfig, values: Mapping[str, Any], where: str) -> OptionsConfig:
    values = dict(values)
    dividends = values.pop("dividends", None)
    options: OptionsConfig = _section_from_mapping(base, "options", values, where)
    if dividends is not None:
        options = replace(options, dividends=_parse_dividends(dividends, where))
    return options


_DIVIDEND_REMEDY = '[options.dividends] GGAL = [{ex_date = "2027-05-10", amount = 25.5}] (amount per share)'


def _parse_dividends(value: Any, where: str) -> tuple[Dividend, ...]:
    """`{ticker: [{ex_date, amount}, …]}` → Dividends; a mistake names the entry."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: options.dividends must be a table of tickers", remedy=_DIVIDEND_REMEDY)
    found: list[Dividend] = []
    for ticker, entries in value.items():
        if not isinstance(entries, list):
            raise ConfigError(
                f"{where}: options.dividends.{ticker} must be a list of {{ex_date, amount}}",
                remedy=_DIVIDEND_REMEDY,
            )
        for number, entry in enumerate(entries, start=1):
            label = f"{where}: options.dividends.{ticker} entry {number}"
            if not isinstance(entry, Mapping) or set(entry) != {"ex_date", "amount"}:
                raise ConfigError(f"{label} must have exactly ex_date and amount", remedy=_DIVIDEND_REMEDY)
            ex_date = entry["ex_date"]
            try:
                day = ex_date if isinstance(ex_date, date) else date.fromisoformat(str(ex_date))
            except ValueError:
                raise ConfigError(f"{label}: ex_date is not an ISO date", remedy=_DIVIDEND_REMEDY) from None
            try:
                amount = Decimal(str(entry["amount"]))
            except InvalidOperation:
                amount = Decimal("NaN")
            if not amount.is_finite() or amount <= 0 or isinstance(entry["amount"], bool):
                raise ConfigError(f"{label}: amount must be a positive number", remedy=_DIVIDEND_REMEDY)
            found.append(Dividend(underlying=str(ticker).upper(), ex_date=day.isoformat(), amount=amount))
    return tuple(found)


def _journal_path(value: Any, where: str) -> str | None:
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: journal_path must be a file path (a string), got {type(value).__name__}",
            remedy='e.g. journal_path = "~/.local/state/brokerbridge/journal.sqlite3", or ":memory:"',
        )
    return value.strip() or None
