"""The bridge SIGKILLed and restarted mid-order, under chaos (issue 18's last proof).

Both simulators run in this process on loopback; `brokerbridge serve` runs as a child process with
a config file pointing at them, a journal file and a `trade` key. Clients place orders through it
all the time over REST (`POST /api/orders`) and the `/ws` op `place`, and cancel some, each order
with a client order id and retried with the SAME id after any undecided outcome (transport error,
5xx, connection refused while `serve` is down, an `unknown` ack) until the bridge decides it: an
`accepted` ack (a retry answers `duplicate` with the venue's id) or a refusal a retry cannot change
(e.g. "never reached the venue"). A cancel whose answer did not come is asked again.

A seeded schedule SIGKILLs `serve` every 3–7 s of running, right after an order went out (so some are in
flight), half the time with a simulator's `lose_answers` armed just before (an order booked whose
answer never comes), and starts it again on the same journal and state_dir; the clients carry on.

At the end (faults off, `serve` up and ready, trading stopped) it checks (`RestartRun.problems`):

* no client order id booked twice by a simulator, and bookings ≤ client order ids per venue, no
  lost cancel, every `accepted` ack booked, open orders equal to the venue's (tests/chaos/orders.py);
* every client order id decided; a refused one booked nowhere; every ack of one id names the same
  venue order;
* no order still `unknown` at the bridge;
* every fill at the simulators in the journal file exactly once (read with `JournalStore`, and
  again after `serve` stopped).

By hand: `python -m tests.chaos.restart --seconds 120 --seed 7` (the log of every `serve` start is
kept in the work dir, `serve.log`; `--workdir DIR` keeps it and the journal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import re
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import Side
from brokerbridge.core.orders import OrderAck, OrderRequest
from brokerbridge.io.journal_store import SqliteJournalStore
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary import PrimarySimulator
from tests.chaos.orders import OrderLedger, RestWay, VenueTruth, Way, WsWay

logger = logging.getLogger(__name__)

KEY = "restart-chaos-trade-key-0123456789"
GGAL = "MERV - XMEV - GGAL - 24hs"
START_LIMIT = 90.0  # s for `serve` to be ready (the first start builds Primary's catalogue)
UP_S = (3.0, 7.0)  # s `serve` runs between kills
DOWN_S = (0.2, 2.0)  # s it stays dead before it is started again
IN_FLIGHT_WAIT = 3.0  # s a kill waits for an order to be in flight (then it kills anyway)
# s the end waits for every order to be decided: the bridge gives an order it cannot find at the
# venue 60 s (`[orders] unknown_give_up`, services/unknown_orders.py) before it says "never reached".
DECIDE_WINDOW = 100.0
OPEN_WINDOW = 15.0  # s the open orders (and cancels) may take to agree at the end
FILL_WINDOW = 10.0  # s a fill the simulator made before judging has to reach the journal
MAX_IN_FLIGHT = 6  # orders each venue's client pursues at once


@dataclass
class RestartReport:
    seconds: float
    seed: int
    kills: int = 0
    kills_in_flight: int = 0  # kills with at least one order waiting for its answer
    lose_answers_armed: int = 0
    starts: list[float] = field(default_factory=list)  # s each `serve` start took to be ready
    counts: Counter[str] = field(default_factory=Counter)
    ledger: str = ""
    fills: dict[str, int] = field(default_factory=dict)
    cancel_errors: Counter[str] = field(default_factory=Counter)  # by venue, way and message
    refusals: Counter[str] = field(default_factory=Counter)  # orders refused, by message (no ids)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        c = self.counts
        lines = [
            f"restart chaos: {self.seconds:.0f} s, seed {self.seed}",
            f"  kills: {self.kills} ({self.kills_in_flight} with orders in flight, "
            f"{self.lose_answers_armed} with lose_answers armed); serve starts {len(self.starts)}, "
            f"slowest {max(self.starts, default=0):.1f} s",
            f"  orders: {c['orders']} client order ids (kraken {c['orders kraken']}, primary "
            f"{c['orders primary']}); attempts {c['attempts']}, retries {c['retries']}, "
            f"duplicate acks {c['duplicate acks']}, unknown acks {c['unknown acks']}, "
            f"accepted {c['accepted']}, refused {c['refused']} (never reached the venue "
            f"{c['never reached']}); cancels {c['cancels']} ({c['cancel retries']} asked again)",
            f"  ledger: {self.ledger}",
            f"  fills journaled: {self.fills}",
            f"  refusals: {dict(self.refusals.most_common(6))}",
            f"  cancel errors: {dict(self.cancel_errors.most_common(6))}",
            f"  problems: {len(self.problems)}",
        ]
        lines.extend(f"    - {p}" for p in self.problems)
        return "\n".join(lines)


def _free_port() -> int:
    """A port for every start of `serve` (the clients keep their address across restarts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(workdir: Path, ksim: KrakenSimulator, psim: PrimarySimulator) -> Path:
    ke, pe = ksim.endpoints, psim.endpoints
    path = workdir / "brokerbridge.toml"
    path.write_text(
        f'log_format = "plain"\njournal_path = "{workdir / "journal.sqlite3"}"\n'
        "[kraken]\n"
        f'api_key = "{ke.api_key}"\napi_secret = "{ke.api_secret}"\n'
        f'rest_url = "{ke.rest}"\nws_url = "{ke.ws_public}"\nws_auth_url = "{ke.ws_private}"\n'
        "idle_timeout = 2.5\npoll_after = 1\npoll_interval = 1\nrequest_timeout = 2\norder_timeout = 3\n"
        "[primary]\n"
        f'environment = "{pe.rest}"\nuser = "{pe.user}"\npassword = "{pe.password}"\n'
        f'account = "{pe.account}"\nmarket_hours = "always"\n'
        f'instruments_cache_dir = "{workdir / "cache"}"\n'
        "idle_timeout = 2.5\npoll_after = 1\nrequest_timeout = 2\n"
        "[server]\n"
        f'state_dir = "{workdir / "state"}"\n'
        "[server.keys.trader]\n"
        f'key = "{KEY}"\nscopes = ["market", "account", "trade"]\n',
        encoding="utf-8",
    )
    return path


class Serve:
    """`brokerbridge serve` as a child process, started again on the same config after a kill."""

    def __init__(
        self,
        config: Path,
        port: int,
        log: Path,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """`args`: more of serve's options (e.g. `--cluster URL`); `env`: variables on top of the
        parent's (whose BROKERBRIDGE_* are dropped, so only the config file and these count)."""
        self.config, self.port, self.log = config, port, log
        self.args, self.env = args, env or {}
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None
        self.up = asyncio.Event()

    async def start(self) -> float:
        """Start it and wait until `/api/ready` says ready; the seconds that took."""
        started = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROKERBRIDGE_")}
        env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200", **self.env)
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"==== restart chaos: serve started {time.strftime('%H:%M:%S')}\n")
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "brokerbridge.cli.main",
                "serve",
                "--config",
                str(self.config),
                "--port",
                str(self.port),
                "--no-login-link",
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
            )
        async with httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5
        ) as http:
            while time.monotonic() - started < START_LIMIT:  # polled: readiness has no event to await
                if self.process.returncode is not None:
                    raise RuntimeError(f"serve exited with {self.process.returncode}; see {self.log}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/api/ready")).status_code == 200:
                        self.up.set()
                        return time.monotonic() - started
                await asyncio.sleep(0.2)
        raise RuntimeError(f"serve was not ready within {START_LIMIT:.0f} s; see {self.log}")

    async def kill(self) -> None:
        assert self.process is not None
        self.up.clear()
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM (a clean stop), SIGKILL if it does not end within 30 s."""
        self.up.clear()
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@dataclass
class _Held:
    """An open order as `GET /api/orders/{venue}` lists it."""

    order_id: str
    status: str


class _RemoteBridge:
    """What `OrderLedger.problems` asks of a Bridge (`open_orders`), for the one in `serve`: its
    open orders read over REST every 0.2 s while `follow` runs."""

    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        self.held: dict[str, list[_Held]] = {"kraken": [], "primary": []}

    async def read(self) -> None:
        for venue in self.held:
            answer = await self.http.get(f"/api/orders/{venue}")
            answer.raise_for_status()
            self.held[venue] = [_Held(o["order_id"], o["status"]) for o in answer.json()["orders"]]

    async def follow(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.read()
            await asyncio.sleep(0.2)

    def open_orders(self, venue: str) -> list[_Held]:
        return self.held[venue]


class _InFlight:
    """Orders sent and not yet answered, across every way in."""

    def __init__(self, errors: Counter[str]) -> None:
        self.count = 0
        self.busy = asyncio.Event()
        self.errors = errors  # the cancels' (a place's are the ledger's)

    def wrap(self, way: Way) -> Way:
        async def place(request: OrderRequest) -> OrderAck:
            self.count += 1
            self.busy.set()
            try:
                return await way.place(request)
            finally:
                self.count -= 1
                if not self.count:
                    self.busy.clear()

        async def cancel(venue: str, order_id: str) -> Any:
            try:
                return await way.cancel(venue, order_id)
            except BrokerBridgeError as exc:
                self.errors[f"{venue} {way.name}: {str(exc).split(' — ')[0][:60]}"] += 1
                raise

        return Way(way.name, place, cancel)


class RestartRun:
    def __init__(self, seconds: float, seed: int, workdir: Path) -> None:
        self.seconds, self.seed, self.workdir = seconds, seed, workdir
        self.report = RestartReport(seconds=seconds, seed=seed)
        self.rng = random.Random(seed)  # the orders
        self.kill_rng = random.Random(seed * 7919 + 3)  # the kill schedule, apart from the orders
        self.journal = workdir / "journal.sqlite3"
        self.trading = True
        self.pursuits: set[asyncio.Task[None]] = set()
        self.accepted: dict[str, list[str]] = {"kraken": [], "primary": []}  # venue order ids
        self.in_flight = _InFlight(self.report.cancel_errors)
        self.cancelling: set[str] = set()  # venue order ids a cancel was asked for

    async def run(self) -> RestartReport:
        async with (
            KrakenSimulator(host="127.0.0.1", port=0, seed=self.seed, tick_s=0.2) as ksim,
            PrimarySimulator(host="127.0.0.1", port=0, seed=self.seed, tick_s=0.2) as psim,
        ):
            self.ksim, self.psim = ksim, psim
            config = write_config(self.workdir, ksim, psim)
            self.serve = Serve(config, _free_port(), self.workdir / "serve.log")
            self.ledger = OrderLedger(VenueTruth(ksim, psim), f"rs{self.seed % 10_000:04d}-")
            self.report.starts.append(await self.serve.start())
            rest = RestWay(self.serve.url, KEY)
            ws = WsWay(self.serve.url.replace("http", "ws", 1) + "/ws", KEY)
            self.ways = [self.in_flight.wrap(Way("rest", rest.place, rest.cancel)),
                         self.in_flight.wrap(Way("ws", ws.place, ws.cancel))]  # fmt: skip
            try:
                await self._run()
            finally:
                await rest.aclose()
                await ws.aclose()
                await self.serve.stop()
                for task in self.pursuits:
                    task.cancel()
                await asyncio.gather(*self.pursuits, return_exceptions=True)
            self._judge_journal_file()
        return self.report

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        traders = [loop.create_task(self._trade("kraken")), loop.create_task(self._trade("primary"))]
        killer = loop.create_task(self._kill())
        started = time.monotonic()
        try:
            await asyncio.sleep(self.seconds)
            self.trading = False
            await killer  # a restart under way finishes; its failure ends the run here
            await _stop(traders)
            for sim in (self.ksim, self.psim):
                sim.faults.reset()
            if not self.serve.up.is_set():
                self.report.starts.append(await self.serve.start())
            await self._judge(started)
        finally:
            await _stop([*traders, killer])

    # -- load --------------------------------------------------------------------------------------
    async def _trade(self, venue: str) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(0.15, 0.5))
            mine = [t for t in self.pursuits if t.get_name() == venue]
            if len(mine) < MAX_IN_FLIGHT:
                self._spawn(venue, self._pursue(self._request(venue)))
            truth = self.ledger.truth
            venue_open = truth.kraken_open() if venue == "kraken" else truth.primary_open()
            resting = [o for o in self.accepted[venue] if o in venue_open and o not in self.cancelling]
            if resting and self.rng.random() < 0.4:
                self._spawn(f"{venue} cancel", self._pursue_cancel(venue, self.rng.choice(resting)))

    def _spawn(self, name: str, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self.pursuits.add(task)
        task.add_done_callback(self.pursuits.discard)

    def _request(self, venue: str) -> OrderRequest:
        side = Side(self.rng.choice(("buy", "sell")))
        cid = self.ledger.new_id()
        if venue == "kraken":
            if self.rng.random() < 0.4:
                return OrderRequest(
                    venue=venue, symbol="BTC/USD", side=side, qty=Decimal("0.0005"), type="market",
                    client_order_id=cid,
                )  # fmt: skip
            book = self.ksim.exchange.market.book("BTC/USD")
            # At the touch or one step behind it: some fill as the market moves (also while the
            # bridge is down), some rest.
            best = book.best(BookSide.BID if side is Side.BUY else BookSide.ASK) or Decimal("60000")
            price = best - Decimal("0.1") * self.rng.randrange(4) * (1 if side is Side.BUY else -1)
            return OrderRequest(
                venue=venue,
                symbol="BTC/USD",
                side=side,
                qty=Decimal("0.0005"),
                price=price,
                client_order_id=cid,
            )
        book = self.psim.exchange.market.book(GGAL)
        # Across the spread (fills at once) or at the own side's best (rests, to be cancelled).
        cross = self.rng.random() < 0.5
        best = book.best(BookSide.ASK if (side is Side.BUY) == cross else BookSide.BID)
        return OrderRequest(
            venue=venue,
            symbol=GGAL,
            side=side,
            qty=Decimal(1),
            price=best or Decimal(1000),
            client_order_id=cid,
        )

    async def _pursue(self, request: OrderRequest) -> None:
        """Place `request` until the bridge decides it, always under its client order id."""
        way = self.rng.choice(self.ways)
        assert request.client_order_id is not None
        while True:
            ack = await self.ledger.place(way, request, self._pause, attempts=1)
            placed = self.ledger.placed[request.client_order_id]
            if placed.decided:
                if ack is not None and ack.order_id is not None:
                    self.accepted[request.venue].append(ack.order_id)
                return

    async def _pursue_cancel(self, venue: str, order_id: str) -> None:
        """Cancel until the bridge answers (it then owns the cancel, across restarts too)."""
        way = self.rng.choice(self.ways)
        self.report.counts["cancels"] += 1
        self.cancelling.add(order_id)
        while not await self.ledger.cancel(way, venue, order_id):
            self.report.counts["cancel retries"] += 1
            await self._pause()

    async def _pause(self) -> None:
        """Between attempts: short, so that some land while `serve` is down (connection refused)."""
        await asyncio.sleep(self.rng.uniform(0.2, 0.8))

    # -- kills -------------------------------------------------------------------------------------
    async def _kill(self) -> None:
        rng = self.kill_rng
        while self.trading:
            await asyncio.sleep(rng.uniform(*UP_S))
            if not self.trading:
                return
            if rng.random() < 0.6:
                venue = rng.choice(("kraken", "primary"))
                sim = self.ksim if venue == "kraken" else self.psim
                sim.faults.apply({"lose_answers": rng.randint(1, 2)})
                self.report.lose_answers_armed += 1
                # The next orders to that venue are booked and their answers lost: the bridge
                # waits `order_timeout` for them, and the kill lands inside that wait.
                await asyncio.sleep(rng.uniform(0.3, 2.0))
            # Right after an order went out, most of the time (the moment the journal must cover).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.in_flight.busy.wait(), IN_FLIGHT_WAIT)
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            in_flight = self.in_flight.count
            await self.serve.kill()
            self.report.kills += 1
            self.report.kills_in_flight += in_flight > 0
            logger.info("restart chaos: serve killed with %d orders in flight", in_flight)
            await asyncio.sleep(rng.uniform(*DOWN_S))  # the outage itself: seconds of the schedule
            self.report.starts.append(await self.serve.start())

    # -- judging -----------------------------------------------------------------------------------
    async def _judge(self, started: float) -> None:
        report = self.report
        if self.pursuits:
            # Every order pursued until decided (orders the venue never got take the bridge 60 s).
            _, pending = await asyncio.wait(set(self.pursuits), timeout=DECIDE_WINDOW)
            for task in pending:
                task.cancel()
        report.seconds = time.monotonic() - started
        self._count()
        undecided = [cid for cid, p in self.ledger.placed.items() if not p.decided]
        if undecided:
            report.problems.append(f"{len(undecided)} client order ids undecided: {undecided[:5]}")
        truth = self.ledger.truth
        for cid, placed in self.ledger.placed.items():
            if placed.refusal and (truth.kraken_booked[cid] or truth.primary_ws_booked[cid]):
                report.problems.append(f"{cid} refused ({placed.refusal[:120]}) yet booked at the venue")
            venue_ids = {a.order_id for a in placed.acks if a.status == "accepted"}
            if len(venue_ids) > 1:
                report.problems.append(f"{cid} acknowledged with different venue orders: {sorted(venue_ids)}")
        remote = _RemoteBridge(self.serve.url)
        follower = asyncio.get_running_loop().create_task(remote.follow())
        try:
            await remote.read()
            report.problems.extend(await self.ledger.problems(remote, within=OPEN_WINDOW))
            unknown = [
                f"{v} {o.order_id}"
                for v in ("kraken", "primary")
                for o in remote.open_orders(v)
                if o.status == "unknown"
            ]
            if unknown:
                report.problems.append(f"orders still unknown at the bridge: {unknown[:5]}")
        finally:
            await _stop([follower])
            await remote.http.aclose()
        report.ledger = self.ledger.summary()
        await self._judge_fills()
        errors = [line for line in self.serve.log.read_text("utf-8").splitlines() if " ERROR " in line]
        if errors:  # data lost or a bug of ours, by the logging policy
            report.problems.append(f"{len(errors)} ERROR lines in {self.serve.log.name}: {errors[:3]}")

    def _count(self) -> None:
        c, ledger = self.report.counts, self.ledger
        for placed in ledger.placed.values():
            c["orders"] += 1
            c[f"orders {placed.request.venue}"] += 1
            c["attempts"] += placed.attempts
            c["retries"] += placed.attempts - 1
            c["accepted"] += any(a.status == "accepted" for a in placed.acks)
            c["refused"] += bool(placed.refusal)
            c["never reached"] += "never reached" in placed.refusal
            if placed.refusal:
                kind = re.sub(r"\S*\d\S*", "#", placed.refusal.split(" — ")[0])[:70]
                self.report.refusals[f"{placed.request.venue}: {kind}"] += 1
        c["duplicate acks"] = ledger.counts["duplicate acks"]
        c["unknown acks"] = ledger.counts["unknown acks"]

    async def _judge_fills(self) -> None:
        """Every fill the simulators had when judging began is journaled within FILL_WINDOW
        (polled: the journal file has no event to wait on); none the simulators do not have."""
        kraken_then = set(self.ksim.exchange.account.trades)
        for _ in range(int(FILL_WINDOW / 0.2)):
            kraken, primary = self._journaled()
            if kraken_then <= kraken and primary == self.ledger.truth.primary_filled():
                break
            await asyncio.sleep(0.2)
        self._compare_fills(kraken_then, "while serve ran")

    def _judge_journal_file(self) -> None:
        """Once more from the file `serve` left behind (stopped): nothing lost at the stop."""
        if not self.report.problems:
            self._compare_fills(set(self.ksim.exchange.account.trades), "after serve stopped", subset=True)

    def _compare_fills(self, kraken_then: set[str], when: str, *, subset: bool = False) -> None:
        kraken, primary = self._journaled()
        truth_k, truth_p = set(self.ksim.exchange.account.trades), self.ledger.truth.primary_filled()
        self.report.fills = {"kraken": len(kraken), "primary": sum(1 for _ in self._fill_rows("primary"))}
        missing, extra = (set() if subset else kraken_then - kraken), kraken - truth_k
        if missing or extra:
            self.report.problems.append(
                f"kraken journal {when}: {len(missing)} fills missing {sorted(missing)[:5]}, "
                f"{len(extra)} not at the simulator {sorted(extra)[:5]}"
            )
        over = {o: q for o, q in primary.items() if q > truth_p.get(o, Decimal(0))}
        if over or (not subset and primary != truth_p):
            self.report.problems.append(
                f"primary journal {when}: filled quantity per order differs: {_diff(primary, truth_p)}"
            )
        ids = [f.exec_id for venue in ("kraken", "primary") for f in self._fill_rows(venue)]
        twice = [i for i, n in Counter(ids).items() if n > 1]
        if twice:
            self.report.problems.append(f"fills journaled twice {when}: {twice[:5]}")

    def _journaled(self) -> tuple[set[str], dict[str, Decimal]]:
        kraken = {f.exec_id for f in self._fill_rows("kraken")}
        primary: dict[str, Decimal] = {}
        for f in self._fill_rows("primary"):
            primary[f.order_id] = primary.get(f.order_id, Decimal(0)) + f.qty
        return kraken, primary

    def _fill_rows(self, venue: str) -> list[Any]:
        """The venue's fills in the journal file, read with JournalStore (one account scope per
        venue in this run's file; a second one would be another account's)."""
        if not self.journal.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.journal)) as db:
            scopes = [s for (s,) in db.execute("SELECT DISTINCT scope FROM fills WHERE venue=?", (venue,))]
        if len(scopes) > 1:
            self.report.problems.append(f"{venue}: fills journaled under {len(scopes)} account scopes")
        store = SqliteJournalStore(str(self.journal))
        try:
            return [f for scope in scopes for f in store.fills(venue, scope)]
        finally:
            store.close()


def _diff(mine: dict[str, Decimal], theirs: dict[str, Decimal]) -> str:
    keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    return "; ".join(f"{k}: journal {mine.get(k)} venue {theirs.get(k)}" for k in keys[:5])


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_restart(seconds: float, seed: int, workdir: Path) -> RestartReport:
    return await RestartRun(seconds, seed, workdir).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.restart", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="trading time with kills (default 90)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the orders and kills (default: fresh)"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the journal and serve.log here")
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    if args.seconds < 10:
        parser.error("--seconds must be at least 10 (kills come every 3–7 s)")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir / f"restart-{seed}" if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run_restart(args.seconds, seed, workdir))
        print(report.summary(), flush=True)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
