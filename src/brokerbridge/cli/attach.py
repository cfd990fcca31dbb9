"""Attach to a running `brokerbridge serve` instead of opening a second venue session.

One process holds the authenticated venue sessions: a second login with the same Primary user
revokes the first one's token (and two programs signing with one Kraken key race each other's
nonces). So `watch`, `doctor` and `instruments` first look for a running `serve` — `--bridge URL`,
then `[client] url` (BROKERBRIDGE_CLIENT_URL), then serve's discovery file (cli/discovery.py) —
and go through its API; only without one do they open venue sessions themselves (standalone).
Each says which it did, in one line on stderr.

A server named by `--bridge` or `[client] url` that does not answer is an error (the user asked
for it); one found through the discovery file that does not answer (its process is alive but is
not a server any more) is passed over with a note.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Protocol

import msgspec
import typer
from rich.console import Console
from rich.markup import escape

from brokerbridge.cli import discovery
from brokerbridge.client import BridgeClient
from brokerbridge.client.models import LoginLinkResponse, StatusResponse, VenueSummary
from brokerbridge.core.config import Config
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    NotAuthorized,
    PermissionDenied,
    RateLimited,
    TransportError,
)
from brokerbridge.core.events import AnyEvent
from brokerbridge.core.secret import Secret

# The CLI reaches the remote client through this module only (scripts/check_layers.py): the other
# commands take what they need of it from here.
__all__ = [
    "Attachment",
    "BridgeClient",
    "BridgeOpt",
    "LoginLinkResponse",
    "StandaloneOpt",
    "StatusResponse",
    "Streams",
    "find_bridge",
]

BridgeOpt = Annotated[
    str | None,
    typer.Option(
        "--bridge",
        help="URL of a running `brokerbridge serve` to go through (default: \\[client] url, else the "
        "one serve's discovery file names; standalone when none runs).",
        show_default=False,
    ),
]
StandaloneOpt = Annotated[
    bool,
    typer.Option(
        "--standalone",
        help="Open venue sessions of this command's own even when a `brokerbridge serve` runs "
        "(with the same Primary user, each login revokes the other's token).",
    ),
]
PROBE_TIMEOUT_S = 3.0  # a local server answers /api/health in milliseconds


@dataclass(frozen=True)
class Attachment:
    """A running server to go through: where, with which key, and how it was found."""

    url: str
    key: Secret | None
    found_by: str  # "--bridge", "[client] url", "the discovery file …"
    pid: int | None = None

    def client(self, timeout: float = 10.0) -> BridgeClient:
        return BridgeClient(self.url, key=self.key.reveal() if self.key else None, timeout=timeout)


def candidate(cfg: Config, bridge_url: str | None) -> Attachment | None:
    """The server the user named, else the one the discovery file names (not yet probed)."""
    key = cfg.client.key
    if bridge_url:
        if not bridge_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"--bridge {bridge_url!r} is not an http:// or https:// URL",
                remedy="give the address `brokerbridge serve` prints, e.g. --bridge http://127.0.0.1:8000",
            )
        return Attachment(bridge_url.rstrip("/"), key, "--bridge")
    if cfg.client.url:
        return Attachment(cfg.client.url.rstrip("/"), key, "[client] url")
    path = discovery.discovery_file(cfg.server.state_dir)
    found = discovery.read(path)
    if found is None:
        return None
    return Attachment(found.url, key, f"the discovery file {path}", pid=found.pid)


async def answers(attachment: Attachment) -> str | None:
    """None when a bridge server answers at `attachment.url`, else why not. A refusal (401, 403,
    429) is a server answering: the command's own calls then say what the key lacks."""
    async with attachment.client(timeout=PROBE_TIMEOUT_S) as client:
        try:
            await client.health()
        except TransportError as exc:
            return exc.message
        except (PermissionDenied, RateLimited):
            return None
        except (BrokerBridgeError, msgspec.DecodeError) as exc:
            return f"what answers there is not a brokerbridge serve ({exc})"
    return None


async def find_bridge(
    cfg: Config, bridge_url: str | None, standalone: str | None, err: Console
) -> Attachment | None:
    """The running server to attach to (said on stderr), or None: standalone (said too).
    `standalone`: why this run must not attach (the flag that says so); None: it may."""
    if standalone is not None:
        if bridge_url:
            raise ConfigError(
                f"--bridge and {standalone.partition(':')[0]} contradict each other",
                remedy="give one of them",
            )
        say(err, f"standalone ({standalone}): opening this command's own venue sessions")
        return None
    found = candidate(cfg, bridge_url)
    if found is None:
        say(err, "no running brokerbridge serve found: standalone, opening this command's own venue sessions")
        return None
    why = await answers(found)
    if why is None:
        pid = f", pid {found.pid}" if found.pid else ""
        say(
            err,
            f"attached to brokerbridge serve at {found.url} (from {found.found_by}{pid}): "
            "its venue sessions are used, no login of this command's own",
        )
        return found
    if found.pid is None:  # named by the user: not answering is an error
        raise TransportError(
            f"no brokerbridge serve answers at {found.url} (from {found.found_by}): {why}",
            remedy="start `brokerbridge serve`, correct the URL, or run with --standalone",
        )
    say(err, f"brokerbridge serve at {found.url} (pid {found.pid}) does not answer ({why}): standalone")
    return None


def say(err: Console, line: str) -> None:
    err.print(escape(line), style="dim", highlight=False, soft_wrap=True)


async def venue_summary(client: BridgeClient, venue: str, url: str) -> VenueSummary:
    """The server's entry for `venue`, or `UnknownVenue`-like ConfigError naming what it runs."""
    served = {v.venue: v for v in await client.venues()}
    if venue not in served:
        raise ConfigError(
            f"the brokerbridge serve at {url} does not run {venue} "
            f"(it runs: {', '.join(served) or 'nothing'})",
            remedy=f"configure {venue} for serve and restart it, or run this command with --standalone",
        )
    return served[venue]


async def account_access(client: BridgeClient, attachment: Attachment) -> bool:
    """Make sure `client` may read account channels: with a key, the key decides; without one,
    sign in with a one-time login link (granted to callers on the server's machine). False: the
    server refused (another machine without an admin key)."""
    if attachment.key is not None:
        return True
    try:
        await client.sign_in(await client.login_link())
    except NotAuthorized:
        return False
    return True


class Streams(Protocol):
    """What `watch` needs of its source of events: the in-process Bridge or `RemoteStreams`."""

    def subscription(
        self, venue: str, channel: str, symbol: str | None = None, *, depth: int = 10, interval: int = 1
    ) -> object: ...

    def subscribe(
        self, venue: str, channel: str, symbol: str | None = None, *, depth: int = 10, interval: int = 1
    ) -> AsyncIterator[AnyEvent]: ...


class RemoteStreams:
    """`watch`'s view of a Bridge (`subscription` to check a request, `subscribe` to stream it),
    served by a running server through `BridgeClient`."""

    def __init__(self, client: BridgeClient) -> None:
        self._client = client

    def subscription(
        self, venue: str, channel: str, symbol: str | None = None, *, depth: int = 10, interval: int = 1
    ) -> None:
        """The server checks the request when it is subscribed: a refusal ends that stream with
        the server's typed error (the same classes the Bridge raises)."""

    def subscribe(
        self, venue: str, channel: str, symbol: str | None = None, *, depth: int = 10, interval: int = 1
    ) -> AsyncIterator[AnyEvent]:
        return self._client.subscribe(venue, channel, symbol, depth=depth, interval=interval)


@contextlib.asynccontextmanager
async def attached_streams(
    attachment: Attachment, venue: str, *, wants_account: bool, err: Console
) -> AsyncIterator[tuple[Streams, bool]]:
    """`watch` through a running server: its streams and whether account channels may be shown
    (the venue has credentials there and this client may read them)."""
    async with attachment.client() as client:
        summary = await venue_summary(client, venue, attachment.url)
        if summary.simulated:
            simulated_banner(venue, err)
        # A simulated venue has an account too (the simulator's demo one), though not the user's.
        has_account = summary.credentials or summary.simulated
        account = has_account and wants_account and await account_access(client, attachment)
        if has_account and wants_account and not account:
            say(
                err,
                "balances and executions not shown: the server gives them to callers on its machine "
                "or with a key of the account scope ([client] key / BROKERBRIDGE_CLIENT_KEY)",
            )
        yield RemoteStreams(client), account


def simulated_banner(venue: str, err: Console) -> None:
    """Say before any data that it is not real: on stderr, so `--json` output stays pure events."""
    err.print(
        f"[bold black on yellow] SIMULATED [/] {venue}: the embedded simulator's demo account — not a "
        f"real market. Configure {venue} credentials to use the real venue.",
        highlight=False,
    )
