"""Book path throughput: the captured BTC/USD depth-10 sequence (562 frames, real checksums) through
`KrakenWsSession` (parse → apply → truncate → verify CRC32 → normalized event), against a baseline run
in the same process on the same frames: `json.loads(parse_float=Decimal)` alone — the least any
correct Kraken book client must do.

    python bench/bench_kraken_book.py [--rounds 20]

Prints frames/s for both and the ratio (session cost in units of plain JSON decoding). Reproducible:
fixed input, fixed rounds, the median of rounds is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from decimal import Decimal
from pathlib import Path

from brokerbridge.core.events import Channel, Subscription
from brokerbridge.venues.kraken.session import KrakenWsSession

HERE = Path(__file__).resolve().parent
FIXTURES = Path(os.environ.get("BROKERBRIDGE_FIXTURES", HERE.parent / "tests" / "fixtures")) / "kraken"
SUB = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10)


def frames() -> list[str]:
    snapshot = (FIXTURES / "ws_book_snapshot_btcusd.json").read_text()
    return [snapshot, *(FIXTURES / "ws_book_updates_btcusd.jsonl").read_text().splitlines()]


def run_session(texts: list[str]) -> float:
    session = KrakenWsSession(private=False, wall_clock=lambda: 0.0)
    session.add(SUB, 0.0)
    session.connection_made(0.0)
    session.data_to_send()
    start = time.perf_counter()
    for text in texts:
        session.receive_text(text, 1.0)
    elapsed = time.perf_counter() - start
    events = session.events_received()
    assert len(events) == len(texts), "every frame must verify (no resync)"
    return elapsed


def run_baseline(texts: list[str]) -> float:
    start = time.perf_counter()
    for text in texts:
        json.loads(text, parse_float=Decimal)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    texts = frames()
    session_times = [run_session(texts) for _ in range(args.rounds)]
    baseline_times = [run_baseline(texts) for _ in range(args.rounds)]
    s, b = statistics.median(session_times), statistics.median(baseline_times)
    n = len(texts)
    print(f"frames per round: {n}, rounds: {args.rounds}")
    print(f"baseline json.loads(parse_float=Decimal): {n / b:>10,.0f} frames/s")
    print(f"KrakenWsSession (parse+book+checksum):    {n / s:>10,.0f} frames/s")
    print(f"ratio session/baseline time: {s / b:.2f}x")


if __name__ == "__main__":
    main()
