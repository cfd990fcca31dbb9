"""One pyRofex process of the soak (tests/soak/primary.py): the unmodified pyRofex 0.5.0, only its
URLs changed (its maintainer's recipe, `_set_environment_parameter("url"/"ws", …)`), running a
Primary client's whole flow in a loop until `--until` (wall time), then printing one JSON line.

A session is: `initialize` (getToken), the instrument lists (all, details, byCFICode, bySegment),
the WebSocket with its handlers, `market_data_subscription` (BI/OF/LA, depth `--depth`, two symbols)
and `order_report_subscription`; then rounds of REST — the instrument's detail, `marketdata/get`,
`data/getTrades`, order/all, positions, detailed position, account report — and every few rounds one
order sent and cancelled, alternately over REST and over the WebSocket (`send_order_via_websocket`,
found by its `wsClOrdId` in the reports). Every `--session-s` the socket is closed and the whole flow
begins again with `initialize`, as a script run again by cron would.

Checked on the way and counted, never raised: every `Md` has exactly the entries asked for and at
most `--depth` levels a side; every REST answer is `status: OK`; every order sent is acknowledged
and its cancel answered; no error frame, no exception from pyRofex's socket thread.

pyRofex keeps its config in module globals and runs its socket on a non-daemon thread: one process
per client, and the process ends with `os._exit` after its line is printed (joining a closed
socket's thread takes up to 10 s: websocket-client notices the close on its select timeout).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pyRofex
from pyRofex import CFICode, Environment, MarketDataEntry, MarketSegment, OrderType, Side

ENV = Environment.REMARKET
ENTRIES = [MarketDataEntry.BIDS, MarketDataEntry.OFFERS, MarketDataEntry.LAST]
ENTRY_CODES = frozenset(e.value for e in ENTRIES)
ANSWER_WAIT_S = 10.0  # an order's report or a cancel's, over the socket
ROUND_PAUSE_S = (0.5, 1.5)  # between REST rounds: 50 processes ≈ 50 rounds a second on the bridge
ORDER_EVERY = 4  # rounds between orders
KEPT_ERRORS = 8  # error texts kept per kind (the count is exact)


@dataclass
class WorkerSummary:
    """What one pyRofex process did and saw (its JSON line)."""

    worker: int
    sessions: int = 0
    rounds: int = 0
    calls: dict[str, int] = field(default_factory=dict)  # REST calls made, by pyRofex function
    md: int = 0  # Md messages received
    md_by_symbol: dict[str, int] = field(default_factory=dict)
    md_wrong_entries: int = 0  # Md whose entries are not exactly BI/OF/LA
    md_too_deep: int = 0  # Md with more levels on a side than asked
    first_md_s: float | None = None  # seconds after the first session began
    last_md_at: float | None = None  # wall time of the last Md
    max_md_gap_s: float = 0.0  # longest wait between two Md within a session
    order_reports: int = 0
    orders_rest: int = 0  # sent and cancelled over REST
    orders_ws: int = 0  # sent over the WebSocket and ended: cancelled, or filled before the cancel
    orders_ws_filled: int = 0  # of those, filled before the cancel reached the market
    errors: dict[str, int] = field(default_factory=dict)  # by kind
    error_samples: dict[str, list[str]] = field(default_factory=dict)

    def error(self, kind: str, text: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        samples = self.error_samples.setdefault(kind, [])
        if len(samples) < KEPT_ERRORS:
            samples.append(text[:300])


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.summary = WorkerSummary(worker=args.worker)
        self.rng = random.Random(args.worker)
        self.lock = threading.Lock()  # the socket thread's handlers and the main thread share counts
        self.reports: collections.deque[dict[str, Any]] = collections.deque(maxlen=2000)
        self.report_seen = threading.Condition(self.lock)
        self.symbols: list[str] = args.symbols.split("|")
        self.started = time.time()
        self.session_md_at: float | None = None

    # -- socket thread ------------------------------------------------------------------------------
    def on_md(self, message: dict[str, Any]) -> None:
        now = time.time()
        data = message.get("marketData") or {}
        symbol = (message.get("instrumentId") or {}).get("symbol", "?")
        with self.lock:
            s = self.summary
            s.md += 1
            s.md_by_symbol[symbol] = s.md_by_symbol.get(symbol, 0) + 1
            if set(data) != ENTRY_CODES:
                s.md_wrong_entries += 1
                s.error("md entries", json.dumps(sorted(data)))
            for side in ("BI", "OF"):
                levels = data.get(side)
                if isinstance(levels, list) and len(levels) > self.args.depth:
                    s.md_too_deep += 1
            if s.first_md_s is None:
                s.first_md_s = now - self.started
            if self.session_md_at is not None:
                s.max_md_gap_s = max(s.max_md_gap_s, now - self.session_md_at)
            self.session_md_at = s.last_md_at = now

    def on_report(self, message: dict[str, Any]) -> None:
        with self.lock:
            self.summary.order_reports += 1
            self.reports.append(message.get("orderReport") or {})
            self.report_seen.notify_all()

    def on_error(self, message: Any) -> None:
        with self.lock:
            self.summary.error(
                "ws error frame", json.dumps(message) if isinstance(message, dict) else str(message)
            )

    def on_exception(self, exc: Exception) -> None:
        with self.lock:
            self.summary.error("ws exception", f"{type(exc).__name__}: {exc}")

    # -- main thread --------------------------------------------------------------------------------
    def run(self) -> WorkerSummary:
        pyRofex._set_environment_parameter("url", self.args.url, ENV)
        pyRofex._set_environment_parameter("ws", self.args.ws, ENV)
        while time.time() < self.args.until:
            try:
                self.session(min(self.args.until, time.time() + self.args.session_s))
            except Exception as exc:  # counted; the next session starts over
                with self.lock:
                    self.summary.error("session", f"{type(exc).__name__}: {exc}")
                time.sleep(1)
        return self.summary

    def session(self, ends: float) -> None:
        args = self.args
        self.call("initialize", pyRofex.initialize, args.user, args.password, args.account, ENV)
        with self.lock:
            self.summary.sessions += 1
            self.session_md_at = None
        self.ok("get_all_instruments", pyRofex.get_all_instruments)
        self.ok("get_detailed_instruments", pyRofex.get_detailed_instruments)
        self.ok("get_instruments by_cfi", pyRofex.get_instruments, "by_cfi", cfi_code=[CFICode.STOCK])
        self.ok(
            "get_instruments by_segments",
            pyRofex.get_instruments,
            "by_segments",
            market_segment=[MarketSegment.MERV],
            market=pyRofex.Market.ROFEX,
        )
        pyRofex.init_websocket_connection(
            market_data_handler=self.on_md,
            order_report_handler=self.on_report,
            error_handler=self.on_error,
            exception_handler=self.on_exception,
        )
        try:
            tickers = self.rng.sample(self.symbols, 2)
            pyRofex.market_data_subscription(tickers=tickers, entries=ENTRIES, depth=args.depth)
            pyRofex.order_report_subscription(snapshot=True)
            while time.time() < ends:
                self.round(tickers)
                time.sleep(min(self.rng.uniform(*ROUND_PAUSE_S), max(0.0, ends - time.time())))
        finally:
            pyRofex.close_websocket_connection()

    def round(self, tickers: list[str]) -> None:
        symbol = self.rng.choice(tickers)
        detail = self.ok("get_instrument_details", pyRofex.get_instrument_details, symbol)
        book = self.ok("get_market_data", pyRofex.get_market_data, symbol, ENTRIES, self.args.depth)
        if book is not None and set(book.get("marketData") or {}) != ENTRY_CODES:
            with self.lock:
                self.summary.error("rest md entries", json.dumps(sorted(book.get("marketData") or {})))
        today = time.strftime("%Y-%m-%d")
        self.ok("get_trade_history", pyRofex.get_trade_history, symbol, today, today)
        self.ok("get_all_orders_status", pyRofex.get_all_orders_status)
        self.ok("get_account_position", pyRofex.get_account_position)
        self.ok("get_detailed_position", pyRofex.get_detailed_position)
        self.ok("get_account_report", pyRofex.get_account_report)
        with self.lock:
            self.summary.rounds += 1
            rounds = self.summary.rounds
        if rounds % ORDER_EVERY == 0 and detail is not None and book is not None:
            price = resting_bid(detail, book)
            if price is not None:
                if (rounds // ORDER_EVERY) % 2:
                    self.order_rest(symbol, price)
                else:
                    self.order_ws(symbol, price)

    def order_rest(self, symbol: str, price: float) -> None:
        ack = self.ok("send_order", pyRofex.send_order, symbol, 1, OrderType.LIMIT, Side.BUY, price=price)
        if ack is None:
            return
        order = ack.get("order") or {}
        answer = self.ok(
            "cancel_order", pyRofex.cancel_order, order.get("clientId"), order.get("proprietary")
        )
        if answer is not None:
            with self.lock:
                self.summary.orders_rest += 1

    def order_ws(self, symbol: str, price: float) -> None:
        """`no` with a `wsClOrdId`: the first report carrying it names the order's clOrdId (only the
        first carries it, on Primary as on the bridge); then `co` once the order is NEW."""
        mark = f"soak{self.args.worker}x{self.summary.rounds}"
        pyRofex.send_order_via_websocket(
            symbol, 1, Side.BUY, OrderType.LIMIT, price=price, ws_client_order_id=mark
        )
        first = self.wait_report(lambda r: r.get("wsClOrdId") == mark)
        cl_ord_id = first.get("clOrdId") if first is not None else None
        new = first and self.wait_report(
            lambda r: r.get("clOrdId") == cl_ord_id and r.get("status") in ("NEW", "REJECTED")
        )
        if first is None or new is None or new.get("status") != "NEW":
            seen = "none" if first is None else json.dumps(new or first)[:200]
            with self.lock:
                self.summary.error("ws order", f"wsClOrdId {mark} not NEW within {ANSWER_WAIT_S} s: {seen}")
            return
        pyRofex.cancel_order_via_websocket(cl_ord_id, proprietary=new.get("proprietary"))
        order_id = new.get("orderId")
        names = {cl_ord_id, order_id} - {None}
        # The order's last report: CANCELLED, or FILLED when the market took the order (a buy at a
        # price the book crossed) before the cancel reached it — then Primary refuses the cancel.
        ended = self.wait_report(
            lambda r: (
                r.get("status") in ("CANCELLED", "FILLED")
                and bool(names & {r.get("clOrdId"), r.get("origClOrdId"), r.get("orderId")})
            )
        )
        with self.lock:
            if ended is None:
                self.summary.error(
                    "ws order", f"no CANCELLED or FILLED report for {cl_ord_id} within {ANSWER_WAIT_S} s"
                )
            else:
                self.summary.orders_ws += 1
                self.summary.orders_ws_filled += ended.get("status") == "FILLED"

    def wait_report(self, match: Any) -> dict[str, Any] | None:
        deadline = time.monotonic() + ANSWER_WAIT_S
        with self.report_seen:
            while True:
                for report in self.reports:
                    if match(report):
                        return report
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.report_seen.wait(remaining)

    def call(self, name: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.summary.calls[name] = self.summary.calls.get(name, 0) + 1
        return function(*args, **kwargs)

    def ok(self, name: str, function: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """The answer when it says `status: OK`; anything else (or an exception) counted as an error."""
        try:
            answer = self.call(name, function, *args, **kwargs)
        except Exception as exc:  # pyRofex's ApiException, requests' errors
            with self.lock:
                self.summary.error(f"rest {name}", f"{type(exc).__name__}: {exc}")
            return None
        if not isinstance(answer, dict) or answer.get("status") != "OK":
            with self.lock:
                self.summary.error(f"rest {name}", json.dumps(answer)[:300])
            return None
        return answer


def resting_bid(detail: dict[str, Any], book: dict[str, Any]) -> float | None:
    """A buy price on the instrument's tick well under the market (so the order rests until its
    cancel), inside the instrument's price limits."""
    instrument = detail.get("instrument") or {}
    tick = Decimal(str(instrument.get("minPriceIncrement") or "0.01"))
    data = book.get("marketData") or {}
    bids, last = data.get("BI") or [], data.get("LA") or {}
    reference = bids[0]["price"] if bids else (last or {}).get("price")
    if not reference:
        return None
    steps = (Decimal(str(reference)) * Decimal("0.8") / tick).to_integral_value(rounding=ROUND_FLOOR)
    price = steps * tick
    return float(price) if price > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--url", required=True, help="REST base, e.g. http://127.0.0.1:P/primary/")
    parser.add_argument("--ws", required=True, help="WebSocket URL, e.g. ws://127.0.0.1:P/primary/")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--symbols", required=True, help="symbols to pick from, separated by |")
    parser.add_argument("--until", type=float, required=True, help="wall time (epoch s) to stop at")
    parser.add_argument("--session-s", type=float, default=120.0, help="seconds between new initialize")
    parser.add_argument("--depth", type=int, default=5)
    summary = Worker(parser.parse_args()).run()
    sys.stdout.write(json.dumps(asdict(summary)) + "\n")
    sys.stdout.flush()
    os._exit(0)  # pyRofex's socket thread is not a daemon and lingers after close (see above)


if __name__ == "__main__":
    main()
