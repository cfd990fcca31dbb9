"""The chaos run: both simulators, a Bridge, the server and real WebSocket clients, real time.

While the demo accounts trade (orders placed and cancelled through the Bridge all the time) and the
simulated markets move, a seeded schedule injects the simulators' faults at random. Afterwards the
run is judged against the simulators' own truth (`ChaosReport.problems`):

* the journal (SQLite file) holds every fill of the simulators' accounts exactly once;
* after each recovery of the private stream, Kraken balances equal the simulator's within 2 s;
* after each resync, every book equals the simulator's book (within a bounded wait);
* every WebSocket client's streams are live and carrying data at the end;
* no ERROR log, no task exception; memory (RSS) did not keep growing.

Real time, because the server, the clients and uvicorn run on it; every wait is bounded by
`seconds` and fixed margins. Everything random comes from one `random.Random(seed)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import websockets

from brokerbridge.bridge import Bridge
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.config import ApiKey, ServerConfig
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import StreamState, StreamStatus
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.ws import WsSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary import PrimarySimulator
from tests.server.conftest import stack_config

KEY = "chaos-account-key-0123456789"
GGAL = "MERV - XMEV - GGAL - 24hs"
KRAKEN_BOOKS = ("BTC/USD", "ETH/USD")
BALANCE_WINDOW = 2.0  # seconds after a recovery within which balances must equal the simulator's
# Seconds after a resync within which a book must equal the simulator's (sampled between market
# steps: a loaded machine delays frames, so a single look could catch one in flight).
BOOK_WINDOW = 8.0
UNKNOWN_WINDOW = 15.0  # seconds the end of the run waits for unanswered submits to be decided
SETTLE = 12.0  # quiet seconds at the end: faults off, trading stopped, streams back to live
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
    order_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recoveries: int = 0
    worst_recovery_s: float = 0.0
    balance_checks: int = 0
    book_checks: int = 0
    client_messages: int = 0
    rss_mb: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        faults = ", ".join(f"{name} {n}" for name, n in sorted(self.faults.items()))
        lines = [
            f"chaos: {self.seconds:.0f} s, seed {self.seed}",
            f"  faults injected: {sum(self.faults.values())} ({faults})",
            f"  orders: {dict(self.orders)}; refused or unanswered: {dict(self.order_errors)}",
            f"  fills journaled: {self.fills}",
            f"  recoveries: {self.recoveries}; worst recovery {self.worst_recovery_s:.2f} s",
            f"  checks: {self.balance_checks} balance, {self.book_checks} book; "
            f"{self.client_messages} client messages",
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
                keys=(ApiKey(name="chaos", key=Secret(KEY), scopes=frozenset({"market", "account"})),)
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
        self.chaos_on = True
        self.live_events: list[tuple[float, str, StreamState]] = []
        self.clients: list[_Client] = []

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
                await self._run_stack()
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
        self.clients = [await _Client.open(self.server.ws_url, subs) for subs in _CLIENT_SUBS]
        background += [loop.create_task(client.read_forever()) for client in self.clients]
        background.append(loop.create_task(self._sample_memory()))
        started = time.monotonic()
        workers = [
            loop.create_task(self._trade_kraken()),
            loop.create_task(self._trade_primary()),
            loop.create_task(self._inject_faults()),
        ]
        try:
            await asyncio.sleep(max(self.seconds - SETTLE, 1.0))
            self.chaos_on = False
            await _stop(workers)
            await self._reset_faults()
            await asyncio.sleep(SETTLE)
            for task in (*workers, *background):
                if task.done() and not task.cancelled() and task.exception() is not None:
                    self.report.problems.append(f"harness task failed: {task.exception()!r}")
            await self._judge(time.monotonic() - started)
        finally:
            await _stop(workers + background)
            for client in self.clients:
                await client.close()

    # -- load ------------------------------------------------------------------------------------
    async def _trade_kraken(self) -> None:
        book = self.ksim.exchange.market.book("BTC/USD")
        while True:
            await asyncio.sleep(self.rng.uniform(0.2, 0.6))
            side = self.rng.choice(("buy", "sell"))
            try:
                if self.rng.random() < 0.5:
                    await self.bridge.place_order("kraken", "BTC/USD", side, "market", "0.0005")
                else:
                    best = book.best(BookSide.BID if side == "buy" else BookSide.ASK) or Decimal("60000")
                    await self.bridge.place_order("kraken", "BTC/USD", side, "limit", "0.0005", str(best))
                self.report.orders["kraken"] += 1
                await self._cancel_some("kraken")
            except BrokerBridgeError as exc:
                self.report.order_errors[type(exc).__name__] += 1

    async def _trade_primary(self) -> None:
        book = self.psim.exchange.market.book(GGAL)
        while True:
            await asyncio.sleep(self.rng.uniform(0.3, 0.8))
            side = self.rng.choice(("buy", "sell"))
            best = book.best(BookSide.ASK if side == "buy" else BookSide.BID)
            try:
                price = best if best is not None else Decimal(1000)
                await self.bridge.place_order("primary", GGAL, side, "limit", "1", str(price))
                self.report.orders["primary"] += 1
                await self._cancel_some("primary")
            except BrokerBridgeError as exc:
                self.report.order_errors[type(exc).__name__] += 1

    async def _cancel_some(self, venue: str) -> None:
        live = [o for o in self.bridge.open_orders(venue) if o.status in ("new", "partially_filled")]
        if live and self.rng.random() < 0.5:
            await self.bridge.cancel_order(venue, self.rng.choice(live).order_id)

    async def _inject_faults(self) -> None:
        """Every fault once per round, in a seeded random order, one every 0.5–1.5 s."""
        schedule: list[tuple[str, str, dict[str, Any], float | None]] = []
        while True:
            if not schedule:
                schedule = list(FAULTS)
                self.rng.shuffle(schedule)
            await asyncio.sleep(self.rng.uniform(0.5, 1.5))
            venue, name, switches, hold = schedule.pop()
            sim = self.ksim if venue == "kraken" else self.psim
            sim.faults.apply(switches)
            self.report.faults[f"{venue} {name}"] += 1
            if hold is not None:
                await asyncio.sleep(hold)
                sim.faults.reset()
            self.fault_clear_at[venue] = time.monotonic()

    async def _reset_faults(self) -> None:
        for venue, sim in (("kraken", self.ksim), ("primary", self.psim)):
            sim.faults.reset()
            if venue == "primary":
                sim.faults.apply({"idle_close_s": 0})
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
        if self.chaos_on and self.fault_clear_at["kraken"] > deadline - BALANCE_WINDOW:
            return  # a new fault landed inside the window: the next recovery is checked instead
        self.report.problems.append(
            f"kraken balances differ {BALANCE_WINDOW} s after recovery: {seen} != {want}"
        )

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
        if self.chaos_on and self.fault_clear_at[venue] > deadline - BOOK_WINDOW:
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
        for venue, expected in (("kraken", self._kraken_truth()), ("primary", self._primary_truth())):
            scope = self.bridge.state[venue].scope
            stored = store.fills(venue, scope)
            report.fills[venue] = len(stored)
            if venue == "kraken":
                got = sorted(f.exec_id for f in stored)
                if got != sorted(expected):
                    missing = set(expected) - set(got)
                    extra = set(got) - set(expected)
                    report.problems.append(
                        f"kraken journal: {len(missing)} fills missing, {len(extra)} extra"
                    )
            else:
                totals: dict[str, Decimal] = defaultdict(Decimal)
                for f in stored:
                    totals[f.order_id] += f.qty
                if dict(totals) != expected:
                    report.problems.append(
                        f"primary journal: filled quantities per order differ: {dict(totals)} != {expected}"
                    )
        for _ in range(int(UNKNOWN_WINDOW / 0.2)):  # polled: the journal has no event to wait on
            if not self._unknown():
                break
            await asyncio.sleep(0.2)
        unknown = self._unknown()
        if unknown:
            report.problems.append(f"orders still unknown after the run: {unknown}")
        for client in self.clients:
            report.client_messages += client.count
            report.problems.extend(client.problems(time.monotonic() - SETTLE / 2))
        if len(report.rss_mb) >= 6:
            half = len(report.rss_mb) // 2
            first, second = max(report.rss_mb[:half]), max(report.rss_mb[half:])
            if second > first * 1.5 + 64:
                report.problems.append(
                    f"memory grew: peak RSS {first:.0f} MB in the first half, {second:.0f} MB in the second"
                )

    def _unknown(self) -> list[str]:
        states = self.bridge.state
        return [
            f"{v} {o.order_id}" for v in ("kraken", "primary") for o in states[v].journal.unknown_orders()
        ]

    def _kraken_truth(self) -> list[str]:
        return list(self.ksim.exchange.account.trades)

    def _primary_truth(self) -> dict[str, Decimal]:
        """Filled quantity per order, keyed like our fills: by the original request's clOrdId."""
        orders = self.psim.exchange.account.orders
        totals: dict[str, Decimal] = {}
        for order in orders.values():
            root = order
            while root.orig_cl_ord_id is not None and root.orig_cl_ord_id in orders:
                root = orders[root.orig_cl_ord_id]
            if order.cum_qty:
                totals[root.cl_ord_id] = max(order.cum_qty, totals.get(root.cl_ord_id, Decimal(0)))
        return totals


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


class _Client:
    """A real `websockets` client of the server: its subscriptions' last status and data times."""

    def __init__(self, ws: Any, subs: tuple[dict[str, Any], ...]) -> None:
        self.ws = ws
        self.subs = {str(i): sub for i, sub in enumerate(subs)}
        self.state: dict[str, str] = {}
        self.last_data: dict[str, float] = {}
        self.count = 0
        self.closed: str | None = None

    @classmethod
    async def open(cls, url: str, subs: tuple[dict[str, Any], ...]) -> _Client:
        ws = await websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {KEY}"}, max_queue=None
        )
        client = cls(ws, subs)
        for sid, sub in client.subs.items():
            await ws.send(json.dumps({"op": "subscribe", "id": sid, **sub}))
        return client

    async def read_forever(self) -> None:
        try:
            async for raw in self.ws:
                self.count += 1
                message = json.loads(raw)
                if message.get("type") != "event":
                    if message.get("type") == "error":
                        self.closed = f"error: {message.get('message')}"
                    continue
                event = message["event"]
                sid = str(message["id"])
                if event["kind"] == "status":
                    self.state[sid] = event["state"]
                elif event["kind"] != "gap":
                    self.last_data[sid] = time.monotonic()
        except websockets.ConnectionClosed as exc:
            self.closed = f"closed: {exc}"

    def problems(self, data_since: float) -> list[str]:
        out = []
        if self.closed:
            out.append(f"client {list(self.subs.values())}: {self.closed}")
        for sid, sub in self.subs.items():
            name = f"{sub['venue']}:{sub['channel']}:{sub.get('symbol', '')}"
            if self.state.get(sid) != "live":
                out.append(f"client stream {name} ended {self.state.get(sid)}, not live")
            if sub["channel"] in ("book", "ticker", "trades") and self.last_data.get(sid, 0.0) < data_since:
                out.append(f"client stream {name} carried no data in the last {SETTLE / 2:.0f} s")
        return out

    async def close(self) -> None:
        await self.ws.close()


async def run_chaos(seconds: float, seed: int, workdir: Path) -> ChaosReport:
    return await Chaos(seconds, seed, workdir).run()


def main_report(report: ChaosReport, out: Callable[[str], None] = print) -> int:
    out(report.summary())
    return 1 if report.problems else 0
