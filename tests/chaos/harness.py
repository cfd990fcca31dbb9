"""The chaos run: both simulators, a Bridge, the server and real WebSocket clients, real time.

While the demo accounts trade (orders placed and cancelled through every way in all the time) and the
simulated markets move, a seeded schedule injects the simulators' faults at random. Afterwards the
run is judged against the simulators' own truth (`ChaosReport.problems`):

* the journal (SQLite file) holds every fill of the simulators' accounts exactly once;
* after each recovery of the private stream, Kraken balances equal the simulator's within 2 s;
* after each resync, every book equals the simulator's book (within a bounded wait);
* every WebSocket client's streams are live and carrying data at the end;
* what the WebSocket clients of `executions` received: every fill published while a subscription
  was open delivered on it, none twice, none that is not in the journal, `seq` without a jump; no
  order's status going back (e.g. filled → new). One client leaves and comes back now and then
  (`_Window` says exactly which fills each of its subscriptions owes);
* orders (placed through the Bridge, REST, `/ws` and `BridgeClient`, retried with their client
  order id): none booked twice, no cancel lost, the open orders equal the venue's
  (tests/chaos/orders.py);
* no ERROR log, no task exception; memory (RSS) did not keep growing.

Real time, because the server, the clients and uvicorn run on it; every wait is bounded by
`seconds` and fixed margins. Everything random comes from one `random.Random(seed)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import json
import logging
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import websockets

from brokerbridge.bridge import Bridge
from brokerbridge.client import BridgeClient
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.config import ApiKey, ServerConfig
from brokerbridge.core.events import AnyEvent, Fill, Side, StreamState, StreamStatus
from brokerbridge.core.orders import OrderRequest
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.ws import WsSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary import PrimarySimulator
from tests.chaos.orders import OrderLedger, RestWay, VenueTruth, Way, WsWay
from tests.server.conftest import stack_config

logger = logging.getLogger(__name__)

KEY = "chaos-account-key-0123456789"
GGAL = "MERV - XMEV - GGAL - 24hs"
KRAKEN_BOOKS = ("BTC/USD", "ETH/USD")
BALANCE_WINDOW = 2.0  # seconds after a recovery within which balances must equal the simulator's
# Seconds after a resync within which a book must equal the simulator's (sampled between market
# steps: a loaded machine delays frames, so a single look could catch one in flight).
BOOK_WINDOW = 8.0
UNKNOWN_WINDOW = 15.0  # seconds the end of the run waits for unanswered submits to be decided
DELIVERY_WINDOW = 3.0  # seconds a fill made just before judging has to reach the journal
SETTLE = 12.0  # quiet seconds at the end: faults off, trading stopped, streams back to live
LEAVE_TIMEOUT = 5.0  # seconds a client waits for the server to acknowledge its unsubscribes
# Seconds between the roaming client's leaving and coming back (it stays away 0.2–1 s).
ROAM_EVERY = (6.0, 14.0)
DOWN = (StreamState.RECONNECTING, StreamState.POLLING, StreamState.STALE, StreamState.RESYNCING)

# (venue, fault, switches to set, seconds to hold before reset or None for one-shot)
FAULTS: tuple[tuple[str, str, dict[str, Any], float | None], ...] = (
    ("kraken", "drop", {"drop_now": True}, None),
    ("kraken", "stall public", {"stall": "public"}, 4.0),
    ("kraken", "stall private", {"stall": "private"}, 4.0),
    ("kraken", "corrupt checksum", {"corrupt_checksums": 2}, None),
    ("kraken", "skip sequence", {"skip_sequence": ["executions", "balances"]}, None),
    ("kraken", "invalidate tokens", {"invalidate_tokens": True}, None),
    ("kraken", "REST 5xx", {"rest_http_errors": 3}, None),
    ("kraken", "REST unavailable", {"rest_unavailable": 2}, None),
    ("kraken", "rate limit", {"rate_limit": 3}, None),
    ("kraken", "latency", {"latency_ms": 300}, 2.0),
    ("kraken", "lost answer", {"lose_answers": 1}, None),
    ("primary", "drop", {"drop_now": True}, None),
    ("primary", "stall all", {"stall": "all"}, 4.0),
    ("primary", "invalidate tokens", {"invalidate_tokens": True}, None),
    ("primary", "REST 5xx", {"rest_http_errors": 3}, None),
    ("primary", "refused handshake", {"reject_ws_handshake": 2}, None),
    ("primary", "latency", {"latency_ms": 300}, 2.0),
    ("primary", "lost answer", {"lose_answers": 1}, None),
)


@dataclass
class ChaosReport:
    seconds: float
    seed: int
    faults: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fills: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ledger: str = ""  # the orders' counts (tests/chaos/orders.py)
    recoveries: int = 0
    worst_recovery_s: float = 0.0
    balance_checks: int = 0
    book_checks: int = 0
    # Checks that could not judge: a fault was in force or landed inside their window (a short
    # run's faults come every 0.5–1.5 s, so a recovery's check often meets the next fault).
    checks_deferred: int = 0
    client_messages: int = 0
    client_fills: int = 0  # fills the clients of executions received
    client_fills_owed: int = 0  # fills published while one of their subscriptions was open
    client_order_updates: int = 0
    client_reconnects: int = 0
    rss_mb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        faults = ", ".join(f"{name} {n}" for name, n in sorted(self.faults.items()))
        lines = [
            f"chaos: {self.seconds:.0f} s, seed {self.seed}",
            f"  faults injected: {sum(self.faults.values())} ({faults})",
            f"  orders decided: {dict(self.orders)}; {self.ledger}",
            f"  fills journaled: {self.fills}",
            f"  recoveries: {self.recoveries}; worst recovery {self.worst_recovery_s:.2f} s",
            f"  checks: {self.balance_checks} balance, {self.book_checks} book, "
            f"{self.checks_deferred} deferred (a fault inside their window); "
            f"{self.client_messages} client messages",
            f"  clients of executions: {self.client_fills} fills received, {self.client_fills_owed} owed; "
            f"{self.client_order_updates} order updates; {self.client_reconnects} reconnects",
            f"  RSS MB first/peak/last: {self._rss()}",
            f"  problems: {len(self.problems)}",
        ]
        lines.extend(f"    - {p}" for p in self.problems)
        return "\n".join(lines)

    def _rss(self) -> str:
        if not self.rss_mb:
            return "n/a"
        return f"{self.rss_mb[0]:.0f}/{max(self.rss_mb):.0f}/{self.rss_mb[-1]:.0f}"


class _ErrorLog(logging.Handler):
    """Collects ERROR records (data lost or our bug, by the logging policy)."""

    def __init__(self, report: ChaosReport) -> None:
        super().__init__(logging.ERROR)
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:
        self.report.errors.append(f"{record.name}: {record.getMessage()}"[:300])


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


@contextlib.asynccontextmanager
async def _stack(journal: Path, cache: Path, seed: int) -> AsyncIterator[tuple[Any, Any, Bridge, Any]]:
    async with (
        KrakenSimulator(host="127.0.0.1", port=0, seed=seed, tick_s=0.2) as ksim,
        PrimarySimulator(host="127.0.0.1", port=0, seed=seed, tick_s=0.2) as psim,
    ):
        # The server tests' wiring, with a faster pulse: short watchdogs, timeouts and backoff.
        base = stack_config(ksim, psim, cache)
        quick = {"idle_timeout": 2.5, "poll_after": 1.0, "request_timeout": 2.0}
        fast = BackoffPolicy(initial=0.1, factor=2.0, cap=1.0)
        assert base.primary is not None
        config = dataclasses.replace(
            base,
            kraken=dataclasses.replace(base.kraken, poll_interval=1.0, backoff=fast, **quick),
            primary=dataclasses.replace(base.primary, backoff=fast, **quick),
            journal_path=str(journal),
        )
        settings = ServerSettings(
            config=ServerConfig(
                keys=(
                    ApiKey(name="chaos", key=Secret(KEY), scopes=frozenset({"market", "account", "trade"})),
                )
            ),
            ws=WsSettings(heartbeat_interval=1.0),
        )
        async with (
            # The simulators answer at once: a submit not found 5 s after it was sent never arrived.
            Bridge(config, unknown_give_up_s=5.0) as bridge,
            BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings) as server,
        ):
            yield ksim, psim, bridge, server


class Chaos:
    def __init__(self, seconds: float, seed: int, workdir: Path) -> None:
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.report = ChaosReport(seconds=seconds, seed=seed)
        self.workdir = workdir
        self.journal = workdir / "journal.sqlite3"
        self.fault_clear_at: dict[str, float] = {"kraken": 0.0, "primary": 0.0}
        # A held fault (a stall, a blocked user) in force: the bridge cannot know of what the
        # venue holds back, so nothing is judged against the simulator while it lasts.
        self.fault_held: dict[str, bool] = {"kraken": False, "primary": False}
        self.chaos_on = True
        self.injecting = True  # the fault injector starts no new fault once this is False
        self.live_events: list[tuple[float, str, StreamState]] = []
        self.clients: list[_Client] = []
        # venue → exec_id → when the Bridge published the fill (to every listener in one go,
        # the server's clients included): what each client subscription owes.
        self.published: dict[str, dict[str, float]] = {"kraken": {}, "primary": {}}
        self.roam_rng = random.Random(seed * 7919 + 1)  # apart: the fault schedule stays the seed's
        self.roaming: asyncio.Task[None] | None = None  # the roaming client's step under way

    async def run(self) -> ChaosReport:
        errors = _ErrorLog(self.report)
        root = logging.getLogger()
        root.addHandler(errors)
        loop = asyncio.get_running_loop()
        old_handler = loop.get_exception_handler()
        loop.set_exception_handler(lambda _l, ctx: self.report.errors.append(f"loop: {ctx.get('message')}"))
        try:
            async with _stack(self.journal, self.workdir, self.rng.randrange(1 << 30)) as (
                ksim,
                psim,
                bridge,
                server,
            ):
                self.ksim, self.psim, self.bridge, self.server = ksim, psim, bridge, server
                self.ledger = OrderLedger(VenueTruth(ksim, psim), f"ch{self.report.seed % 10_000:04d}-")
                rest, ws = RestWay(server.http_url, KEY), WsWay(server.ws_url, KEY)
                async with BridgeClient(server.http_url, key=KEY) as client:
                    self.ways = [
                        Way("python", bridge.place, bridge.cancel),
                        Way("rest", rest.place, rest.cancel),
                        Way("ws", ws.place, ws.cancel),
                        Way("client", client.place, client.cancel),
                    ]
                    try:
                        await self._run_stack()
                    finally:
                        await rest.aclose()
                        await ws.aclose()
        finally:
            root.removeHandler(errors)
            loop.set_exception_handler(old_handler)
        self.report.problems[:0] = [f"ERROR logged: {e}" for e in self.report.errors[:10]]
        return self.report

    async def _run_stack(self) -> None:
        watchers = [("kraken", "book", s) for s in KRAKEN_BOOKS] + [
            ("kraken", "balances", None),
            ("kraken", "executions", None),
            ("primary", "executions", None),
            ("primary", "book", GGAL),
            ("kraken", "trades", "BTC/USD"),
        ]
        loop = asyncio.get_running_loop()
        background = [loop.create_task(self._watch(v, c, s)) for v, c, s in watchers]
        listening = [
            self.bridge.listen(
                self.bridge.subscription(venue, "executions"),
                functools.partial(self._on_published, venue),
                lambda _error: None,
            )
            for venue in self.published
        ]
        named = [(f"{i + 1}", subs) for i, subs in enumerate(_CLIENT_SUBS)] + [("roaming", _ROAMING_SUBS)]
        self.clients = [_Client(self.server.ws_url, subs, name) for name, subs in named]
        for client in self.clients:
            await client.connect()
        background.append(loop.create_task(self._sample_memory()))
        started = time.monotonic()
        workers = [
            loop.create_task(self._trade_kraken()),
            loop.create_task(self._trade_primary()),
            loop.create_task(self._inject_faults()),
            loop.create_task(self._roam(self.clients[-1])),
        ]
        try:
            await asyncio.sleep(max(self.seconds - SETTLE, 1.0))
            # A held fault runs its course: cut short, a 4 s stall would become a different fault
            # (a blink that loses frames without silence), which only the periodic read back
            # (`reconcile_interval`, tests/io/test_journal.py) finds, later than SETTLE.
            self.injecting = False
            await asyncio.wait([workers[2]])  # its failure is reported below with the others
            self.chaos_on = False
            await _stop(workers)
            if self.roaming is not None:
                await self.roaming
            await self._reset_faults()
            await asyncio.sleep(SETTLE)
            for task in (*workers, *background):
                if task.done() and not task.cancelled() and task.exception() is not None:
                    self.report.problems.append(f"harness task failed: {task.exception()!r}")
            await self._judge(time.monotonic() - started)
        finally:
            await _stop(workers + background)
            for handle in listening:
                handle.close()
            for client in self.clients:
                await client.close()

    def _on_published(self, venue: str, event: AnyEvent) -> None:
        if isinstance(event, Fill):
            self.published[venue].setdefault(event.exec_id, time.monotonic())

    async def _roam(self, client: _Client) -> None:
        """Leave and come back now and then. A step is not cut short when roaming stops (a
        client half gone would fail the end checks): `_run_stack` waits for it instead."""
        while True:
            await asyncio.sleep(self.roam_rng.uniform(*ROAM_EVERY))
            self.roaming = asyncio.get_running_loop().create_task(
                client.reconnect(away=self.roam_rng.uniform(0.2, 1.0))
            )
            await asyncio.shield(self.roaming)

    # -- load ------------------------------------------------------------------------------------
    async def _trade_kraken(self) -> None:
        book = self.ksim.exchange.market.book("BTC/USD")
        while True:
            await asyncio.sleep(self.rng.uniform(0.2, 0.6))
            side = Side(self.rng.choice(("buy", "sell")))
            if self.rng.random() < 0.5:
                request = OrderRequest(
                    venue="kraken", symbol="BTC/USD", side=side, qty=Decimal("0.0005"), type="market"
                )
            else:
                best = book.best(BookSide.BID if side is Side.BUY else BookSide.ASK) or Decimal("60000")
                request = OrderRequest(
                    venue="kraken", symbol="BTC/USD", side=side, qty=Decimal("0.0005"), price=best
                )
            await self._place(request)

    async def _trade_primary(self) -> None:
        book = self.psim.exchange.market.book(GGAL)
        while True:
            await asyncio.sleep(self.rng.uniform(0.3, 0.8))
            side = Side(self.rng.choice(("buy", "sell")))
            best = book.best(BookSide.ASK if side is Side.BUY else BookSide.BID)
            price = best if best is not None else Decimal(1000)
            await self._place(
                OrderRequest(venue="primary", symbol=GGAL, side=side, qty=Decimal(1), price=price)
            )

    async def _place(self, request: OrderRequest) -> None:
        """One order through a way in chosen at random, retried with its client order id until
        decided; then now and then a cancel of an open one."""
        way = self.rng.choice(self.ways)
        request = msgspec.structs.replace(request, client_order_id=self.ledger.new_id())
        ack = await self.ledger.place(way, request, lambda: asyncio.sleep(self.rng.uniform(0.1, 0.5)))
        if ack is not None:
            self.report.orders[request.venue] += 1
        live = [o for o in self.bridge.open_orders(request.venue) if o.status in ("new", "partially_filled")]
        if live and self.rng.random() < 0.5:
            await self.ledger.cancel(
                self.rng.choice(self.ways), request.venue, self.rng.choice(live).order_id
            )

    async def _inject_faults(self) -> None:
        """Every fault once per round, in a seeded random order, one every 0.5–1.5 s."""
        schedule: list[tuple[str, str, dict[str, Any], float | None]] = []
        while self.injecting:
            if not schedule:
                schedule = list(FAULTS)
                self.rng.shuffle(schedule)
            await asyncio.sleep(self.rng.uniform(0.5, 1.5))
            if not self.injecting:
                return
            venue, name, switches, hold = schedule.pop()
            sim = self.ksim if venue == "kraken" else self.psim
            sim.faults.apply(switches)
            self.report.faults[f"{venue} {name}"] += 1
            logger.info("chaos: %s %s %s", venue, name, "on" if hold is not None else "(once)")
            if hold is not None:
                self.fault_held[venue] = True
                await asyncio.sleep(hold)
                sim.faults.reset()
                self.fault_held[venue] = False
                logger.info("chaos: %s %s off", venue, name)
            self.fault_clear_at[venue] = time.monotonic()

    async def _reset_faults(self) -> None:
        for venue, sim in (("kraken", self.ksim), ("primary", self.psim)):
            sim.faults.reset()
            if venue == "primary":
                sim.faults.apply({"idle_close_s": 0})
            self.fault_held[venue] = False
            self.fault_clear_at[venue] = time.monotonic()

    # -- observing ---------------------------------------------------------------------------------
    async def _watch(self, venue: str, channel: str, symbol: str | None) -> None:
        """Follow one stream in-process: recoveries, and the checks due after each."""
        down_since: float | None = None
        checks: list[asyncio.Task[None]] = []
        depth = 10 if venue == "kraken" else 5
        async for event in self.bridge.subscribe(venue, channel, symbol, depth=depth):
            if not isinstance(event, StreamStatus):
                continue
            now = time.monotonic()
            if event.state in DOWN and down_since is None:
                down_since = now
            elif event.state is StreamState.LIVE and down_since is not None:
                since = max(down_since, self.fault_clear_at[venue])
                self.report.recoveries += 1
                self.report.worst_recovery_s = max(self.report.worst_recovery_s, now - since)
                down_since = None
                if channel == "balances":
                    checks.append(asyncio.create_task(self._check_balances()))
                elif channel == "book" and symbol is not None:
                    checks.append(asyncio.create_task(self._check_book(venue, symbol)))
                checks = [c for c in checks if not c.done()]

    async def _check_balances(self) -> None:
        """Kraken balances equal the simulator's within BALANCE_WINDOW of the recovery."""
        deadline = time.monotonic() + BALANCE_WINDOW
        seen: dict[str, Decimal] = {}
        want: dict[str, Decimal] = {}
        while time.monotonic() < deadline:
            want = {a: v for a, v in self._sim_balances().items() if v}
            seen = {a: v.total for a, v in self.bridge.balances("kraken").items() if v.total}
            if seen == want:
                self.report.balance_checks += 1
                return
            await asyncio.sleep(0.05)
        if self._fault_during("kraken", deadline - BALANCE_WINDOW):
            self.report.checks_deferred += 1
            return  # a fault was in force or landed inside the window: the next recovery is checked
        # Stamped (wall time) so the kept log can be searched around it.
        at = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
        self.report.problems.append(
            f"kraken balances differ {BALANCE_WINDOW} s after the recovery before {at}: {seen} != {want}"
        )

    def _fault_during(self, venue: str, since: float) -> bool:
        """A fault was in force at some time after `since` (a check started then cannot judge:
        e.g. a fill the simulator made during a private-stream stall reaches the bridge only once
        the stall ends, yet a REST reconciliation inside the stall rightly shows the stream live)."""
        return self.chaos_on and (self.fault_held[venue] or self.fault_clear_at[venue] > since)

    def _sim_balances(self) -> dict[str, Decimal]:
        account = self.ksim.exchange.account
        catalog = self.ksim.exchange.catalog
        out = {}
        for asset_id, amount in account.balances.items():
            asset = catalog.asset(asset_id)
            out[asset.ws_id if asset else asset_id] = amount
        return out

    async def _check_book(self, venue: str, symbol: str) -> None:
        deadline = time.monotonic() + BOOK_WINDOW
        mine = theirs = None
        while time.monotonic() < deadline:
            mine, theirs = self._books(venue, symbol)
            if mine is not None and mine == theirs:
                self.report.book_checks += 1
                return
            await asyncio.sleep(0.02)
        if self._fault_during(venue, deadline - BOOK_WINDOW):
            self.report.checks_deferred += 1
            return
        self.report.problems.append(f"{venue} {symbol}: book differs from the simulator's after a resync")

    def _books(self, venue: str, symbol: str) -> tuple[Any, Any]:
        from brokerbridge.core.events import Channel, Subscription

        depth = 10 if venue == "kraken" else 5
        sub = Subscription(venue=venue, channel=Channel.BOOK, symbol=symbol, depth=depth)
        snap = self.bridge.connectors[venue].book_snapshot(sub)
        if snap is None:
            return None, None
        sim = self.ksim if venue == "kraken" else self.psim
        book = sim.exchange.market.book(symbol)
        mine = ([(lv.price, lv.qty) for lv in snap.bids], [(lv.price, lv.qty) for lv in snap.asks])
        theirs = (book.levels(BookSide.BID, depth), book.levels(BookSide.ASK, depth))
        return mine, theirs

    async def _sample_memory(self) -> None:
        while True:
            self.report.rss_mb.append(_rss_mb())
            await asyncio.sleep(1.0)

    # -- judging -----------------------------------------------------------------------------------
    async def _judge(self, elapsed: float) -> None:
        report = self.report
        report.seconds = elapsed
        store = self.bridge.journal_store
        assert store is not None
        # Resting orders still fill while the market moves: a fill made a moment ago may be on
        # its way. Every fill the venue had when judging began must be journaled within
        # DELIVERY_WINDOW (polled: the journal has no event to wait on).
        kraken_then = set(self._kraken_truth())
        for _ in range(int(DELIVERY_WINDOW / 0.2)):
            if kraken_then <= self._journaled("kraken") and self._primary_totals() == self._primary_truth():
                break
            await asyncio.sleep(0.2)
        got, expected = self._journaled("kraken"), set(self._kraken_truth())
        missing, extra = kraken_then - got, got - expected
        if missing or extra:
            report.problems.append(
                f"kraken journal: {len(missing)} fills missing, {len(extra)} extra"
                + "".join(f"; {self._kraken_fill(e)}" for e in sorted(missing)[:5])
                + "".join(f"; extra {e}" for e in sorted(extra)[:5])
            )
        totals, expected_totals = self._primary_totals(), self._primary_truth()
        if totals != expected_totals:
            report.problems.append(
                f"primary journal: filled quantities per order differ: {totals} != {expected_totals}"
            )
        for venue in ("kraken", "primary"):
            report.fills[venue] = len(store.fills(venue, self.bridge.state[venue].scope))
        for _ in range(int(UNKNOWN_WINDOW / 0.2)):  # polled: the journal has no event to wait on
            if not self._unknown():
                break
            await asyncio.sleep(0.2)
        unknown = self._unknown()
        if unknown:
            report.problems.append(f"orders still unknown after the run: {unknown}")
        report.problems.extend(await self.ledger.problems(self.bridge, within=UNKNOWN_WINDOW))
        report.ledger = self.ledger.summary()
        for client in self.clients:
            report.client_messages += client.count
            report.problems.extend(client.problems(time.monotonic() - SETTLE / 2))
        await self._judge_clients()
        if len(report.rss_mb) >= 6:
            half = len(report.rss_mb) // 2
            first, second = max(report.rss_mb[:half]), max(report.rss_mb[half:])
            if second > first * 1.5 + 64:
                report.problems.append(
                    f"memory grew: peak RSS {first:.0f} MB in the first half, {second:.0f} MB in the second"
                )

    async def _judge_clients(self) -> None:
        """Every client leaves executions (acknowledged: all it was owed has been read), then
        what each received is held against what the Bridge published and journaled."""
        for client in self.clients:
            await client.leave()
        store = self.bridge.journal_store
        assert store is not None
        journaled = {
            venue: {f.exec_id for f in store.fills(venue, self.bridge.state[venue].scope)}
            for venue in self.published
        }
        for client in self.clients:
            self.report.problems.extend(client.delivery_problems(self.published, journaled))
            self.report.client_fills += sum(client.delivered.values())
            self.report.client_fills_owed += client.owed(self.published)
            self.report.client_order_updates += client.order_updates
            self.report.client_reconnects += client.reconnects

    def _unknown(self) -> list[str]:
        states = self.bridge.state
        return [
            f"{v} {o.order_id}" for v in ("kraken", "primary") for o in states[v].journal.unknown_orders()
        ]

    def _journaled(self, venue: str) -> set[str]:
        store = self.bridge.journal_store
        assert store is not None
        return {f.exec_id for f in store.fills(venue, self.bridge.state[venue].scope)}

    def _primary_totals(self) -> dict[str, Decimal]:
        """Filled quantity per order in the journal file."""
        store = self.bridge.journal_store
        assert store is not None
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for f in store.fills("primary", self.bridge.state["primary"].scope):
            totals[f.order_id] += f.qty
        return dict(totals)

    def _kraken_fill(self, exec_id: str) -> str:
        """A missing fill as the simulator knows it, stamped so the kept log can be searched."""
        trade = self.ksim.exchange.account.trades[exec_id]
        stamp = time.strftime("%H:%M:%S", time.localtime(trade.time_ns / 1e9))
        return f"{exec_id} (order {trade.order.txid}, {stamp}.{trade.time_ns // 1_000_000 % 1000:03d})"

    def _kraken_truth(self) -> list[str]:
        return list(self.ksim.exchange.account.trades)

    def _primary_truth(self) -> dict[str, Decimal]:
        return self.ledger.truth.primary_filled()


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


_CLIENT_SUBS: tuple[tuple[dict[str, Any], ...], ...] = (
    (
        {"venue": "kraken", "channel": "book", "symbol": "BTC/USD", "depth": 10},
        {"venue": "kraken", "channel": "trades", "symbol": "BTC/USD"},
        {"venue": "kraken", "channel": "ticker", "symbol": "ETH/USD"},
    ),
    (
        {"venue": "kraken", "channel": "executions"},
        {"venue": "kraken", "channel": "balances"},
        {"venue": "primary", "channel": "executions"},
    ),
    (
        {"venue": "primary", "channel": "book", "symbol": GGAL, "depth": 5},
        {"venue": "primary", "channel": "ticker", "symbol": GGAL},
    ),
)
# The roaming client: leaves (unsubscribe, close) and comes back (connect, subscribe) all the time.
_ROAMING_SUBS: tuple[dict[str, Any], ...] = (
    {"venue": "kraken", "channel": "executions"},
    {"venue": "primary", "channel": "executions"},
)
_PRIVATE_CHANNELS = frozenset({"executions", "balances", "orders", "positions"})
# How far along its life an order is; an order's status never goes back. "unknown" is the
# Bridge's placeholder for a submit that got no answer, "resolved" its end; a status named nowhere
# here counts as open.
_ORDER_RANK = {"unknown": 0, "pending_new": 0, "partially_filled": 2}
_ORDER_FINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "resolved"})


@dataclass
class _Window:
    """One `executions` subscription of one client connection, and the fills it owes.

    It is open from `acked_at` (when the client read the server's ack: the server joined it to the
    stream before sending that) to `ended_at` (when the client sent `unsubscribe`; the server
    acknowledges after every event it delivered before). Every fill the Bridge published strictly
    between the two must arrive on it, exactly once; fills published around either end may arrive
    or not (the server's side of each moment is not visible from here). A client that reconnects
    gets a new window: fills published while it was away are not owed to it (docs/server.md: a
    client catches up from /api/fills)."""

    venue: str
    acked_at: float | None = None
    ended_at: float = math.inf
    left: bool = False  # the server acknowledged the unsubscribe
    fills: list[str] = field(default_factory=list)

    def owed(self, published: dict[str, float]) -> set[str]:
        if self.acked_at is None:
            return set()
        start, end = self.acked_at, self.ended_at
        return {exec_id for exec_id, at in published.items() if start < at < end}


class _Client:
    """A real `websockets` client of the server: its subscriptions' last status and data times,
    and what its `executions` subscriptions received."""

    def __init__(self, url: str, subs: tuple[dict[str, Any], ...], name: str) -> None:
        self.url = url
        self.name = name
        self.subs = {str(i): sub for i, sub in enumerate(subs)}
        self.ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self.state: dict[str, str] = {}
        self.state_why: dict[str, str] = {}
        self.last_data: dict[str, float] = {}
        self.count = 0
        self.closed: str | None = None
        self.reconnects = 0
        self.windows: dict[str, _Window] = {}  # this connection's executions subscriptions
        self.past: list[_Window] = []  # those of earlier connections, and ended ones
        self.delivered: Counter[tuple[str, str]] = Counter()  # (venue, exec_id) → times received
        self.order_updates = 0
        self._orders: dict[tuple[str, str], tuple[int, str, Decimal | None]] = {}
        self.regressions: list[str] = []
        self._seq: dict[str, int] = {}
        self.seq_jumps: list[str] = []
        self._left = asyncio.Event()  # every executions unsubscribe acknowledged
        self._closing = False

    async def connect(self) -> None:
        self.ws = await websockets.connect(
            self.url, additional_headers={"Authorization": f"Bearer {KEY}"}, max_queue=None
        )
        self.state, self._seq = {}, {}
        for sid, sub in self.subs.items():
            if sub["channel"] == "executions":
                self.windows[sid] = _Window(venue=sub["venue"])
            await self.ws.send(json.dumps({"op": "subscribe", "id": sid, **sub}))
        self._closing = False
        self._reader = asyncio.get_running_loop().create_task(self._read(self.ws))

    async def leave(self) -> None:
        """Unsubscribe from executions and wait until the server says so: every fill it
        published before the unsubscribe was sent has then been read."""
        if not self.windows or self.ws is None:
            return
        self._left = asyncio.Event()
        for sid, window in self.windows.items():
            window.ended_at = time.monotonic()
            await self.ws.send(json.dumps({"op": "unsubscribe", "id": sid}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._left.wait(), LEAVE_TIMEOUT)
        self.past.extend(self.windows.values())
        self.windows = {}

    async def reconnect(self, *, away: float) -> None:
        await self.leave()
        await self.close()
        await asyncio.sleep(away)
        self.reconnects += 1
        await self.connect()

    async def close(self) -> None:
        self._closing = True  # whatever the closing handshake raises, it is ours
        if self.ws is not None:
            with contextlib.suppress(websockets.WebSocketException, OSError):
                await self.ws.close()
        if self._reader is not None:
            await _stop([self._reader])
            self._reader = None

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self.count += 1
                self._receive(json.loads(raw))
        except websockets.ConnectionClosed as exc:
            if not self._closing and self.closed is None:
                self.closed = f"closed: {exc}"

    def _receive(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        sid = str(message.get("id"))
        window = self.windows.get(sid)
        if kind == "ack" and window is not None:
            if message.get("op") == "subscribe":
                window.acked_at = time.monotonic()
            elif message.get("op") == "unsubscribe":
                window.left = True
                if all(w.left for w in self.windows.values()):
                    self._left.set()
            return
        if kind == "error":
            self.closed = f"error: {message.get('message')}"
            return
        if kind != "event":
            return
        event = message["event"]
        self._check_seq(sid, message["seq"])
        if event["kind"] == "status":
            self.state[sid] = event["state"]
            # When and why, for the report of a stream that did not end live.
            at = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
            self.state_why[sid] = f"since {at}: {event.get('reason', '')}"
        elif event["kind"] != "gap":
            self.last_data[sid] = time.monotonic()
        venue = event["venue"]
        if event["kind"] == "fill" and window is not None:
            window.fills.append(event["exec_id"])
            self.delivered[(venue, event["exec_id"])] += 1
        elif event["kind"] == "order_update":
            self.order_updates += 1
            self._check_order(venue, event)

    def _check_seq(self, sid: str, seq: int) -> None:
        """Private channels are never dropped or conflated: `seq` counts 1, 2, 3…"""
        last = self._seq.get(sid, 0)
        self._seq[sid] = seq
        if self.subs[sid]["channel"] in _PRIVATE_CHANNELS and seq != last + 1:
            name = f"{self.subs[sid]['venue']}:{self.subs[sid]['channel']}"
            self.seq_jumps.append(f"{name} seq {last} → {seq}")

    def _check_order(self, venue: str, event: dict[str, Any]) -> None:
        status = event["status"]
        rank = 3 if status in _ORDER_FINAL else _ORDER_RANK.get(status, 1)
        cum = Decimal(event["cum_qty"]) if event.get("cum_qty") is not None else None
        key = (venue, event["order_id"])
        before = self._orders.get(key)
        if before is not None:
            old_rank, old_status, old_cum = before
            went_back = rank < old_rank or (old_status in _ORDER_FINAL and status != old_status)
            if went_back or (cum is not None and old_cum is not None and cum < old_cum):
                self.regressions.append(
                    f"{venue} order {event['order_id']}: {old_status} (cum {old_cum}) → {status} "
                    f"(cum {cum}, {event['exec_type']})"
                )
            if cum is None or (old_cum is not None and cum < old_cum):
                cum = old_cum
            if went_back:
                rank, status = old_rank, old_status
        self._orders[key] = (rank, status, cum)

    def problems(self, data_since: float) -> list[str]:
        out = []
        if self.closed:
            out.append(f"client {self.name} {list(self.subs.values())}: {self.closed}")
        for sid, sub in self.subs.items():
            name = f"{sub['venue']}:{sub['channel']}:{sub.get('symbol', '')}"
            if self.state.get(sid) != "live":
                out.append(
                    f"client {self.name} stream {name} ended {self.state.get(sid)}, not live "
                    f"({self.state_why.get(sid)})"
                )
            if sub["channel"] in ("book", "ticker", "trades") and self.last_data.get(sid, 0.0) < data_since:
                out.append(f"client {self.name} stream {name} carried no data in the last {SETTLE / 2:.0f} s")
        return out

    def delivery_problems(
        self, published: dict[str, dict[str, float]], journaled: dict[str, set[str]]
    ) -> Iterator[str]:
        """What `executions` delivered against what the Bridge published and journaled."""
        who = f"client {self.name}"
        twice = [f"{v} {e} ×{n}" for (v, e), n in self.delivered.items() if n > 1]
        if twice:
            yield f"{who}: {len(twice)} fills received more than once: {twice[:5]}"
        phantom = [f"{v} {e}" for (v, e) in self.delivered if e not in journaled[v]]
        if phantom:
            yield f"{who}: {len(phantom)} fills received that are not in the journal: {phantom[:5]}"
        counted: Counter[str] = Counter()
        for window in self.past:
            counted[window.venue] += 1
            where = f"{who} {window.venue}:executions (its subscription no. {counted[window.venue]})"
            if window.acked_at is None:
                yield f"{where}: never acknowledged"
                continue
            if not window.left:
                yield f"{where}: unsubscribe not acknowledged within {LEAVE_TIMEOUT:.0f} s"
            missing = sorted(window.owed(published[window.venue]) - set(window.fills))
            if missing:
                yield f"{where}: {len(missing)} fills published while subscribed not received: {missing[:5]}"
        if self.seq_jumps:
            yield f"{who}: seq jumped on a private channel: {self.seq_jumps[:5]}"
        if self.regressions:
            yield f"{who}: {len(self.regressions)} order statuses went back: {self.regressions[:5]}"

    def owed(self, published: dict[str, dict[str, float]]) -> int:
        return sum(len(w.owed(published[w.venue])) for w in self.past)


@contextlib.contextmanager
def _log_to(path: Path | None) -> Iterator[None]:
    """brokerbridge's INFO and above into `path` for the run (a failed run's log is kept)."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    loggers = [logging.getLogger("brokerbridge"), logger]  # the injected faults too
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)
        handler.close()


async def run_chaos(seconds: float, seed: int, workdir: Path, *, log: Path | None = None) -> ChaosReport:
    """One run; with `log`, brokerbridge's INFO log of it and then its summary go to that file."""
    with _log_to(log):
        report = await Chaos(seconds, seed, workdir).run()
    if log is not None:
        with log.open("a", encoding="utf-8") as f:
            f.write(report.summary() + "\n")
    return report
