"""Target 1, the venue hot path: decode → normalize → book apply → checksum verify.

Kraken: `KrakenWsSession.receive_text` over fixed message sets — the captured BTC/USD depth-10
sequence (real checksums) and a stream recorded from the Kraken simulator (seeded,
fake clock, so the same frames every run) — against python-kraken-sdk's `SpotOrderBookClient`
processing the same messages in the same process: its websocket layer's `json.loads` and then its
`on_message` handler, driven directly (no network; its one REST lookup, the pair's decimals, is
answered from the captured AssetPairs reply). Both must verify every checksum.

Primary: `PrimaryWsSession.receive_text` over `Md` frames (the captured ones and a seeded set of the
same shape with five levels a side), ticker + book + trades subscribed, against stdlib
`json.loads` of the same frames (the least any client does).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bench.common import FIXTURES, SEED, Report, lines, median_seconds
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.core.signals import BadFrame, Resyncing, Signal
from brokerbridge.venues.kraken.session import KrakenWsSession
from brokerbridge.venues.primary.session import PrimaryWsSession

KRAKEN = FIXTURES / "kraken"
PRIMARY = FIXTURES / "primary"
BOOK = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10)
# The Kraken path's per-level code: a mypyc build of these (bench/README.md, section 1, fifth pass)
# puts an extension module beside the source, which Python then loads instead.
HOT_MODULES = (
    "brokerbridge.core.book",
    "brokerbridge.venues.kraken.book",
    "brokerbridge.venues.kraken.checksum",
    "brokerbridge.venues.kraken.normalize",
    "brokerbridge.venues.kraken.session.books",
    "brokerbridge.venues.kraken.session.connection",
)


# ---------------------------------------------------------------- message sets


def captured_kraken() -> list[str]:
    """The 2026 capture (its numbers carry the pair's precision; the 2023 one verifies only after
    reformatting, see tests/sessions)."""
    return [
        (KRAKEN / "ws_book_snapshot_btcusd.json").read_text(),
        *lines(KRAKEN / "ws_book_updates_btcusd.jsonl"),
    ]


async def record_simulated_kraken(updates: int) -> list[str]:
    """The simulator's BTC/USD depth-10 book stream: its snapshot and then `updates` updates.

    Seeded market and a fake clock moved one tick at a time, so the frames are the same every run."""
    import websockets

    from brokerbridge.core.clock import FakeClock
    from brokerbridge.sim.kraken import KrakenSimulator

    clock = FakeClock()
    frames: list[str] = []
    async with KrakenSimulator(host="127.0.0.1", port=0, seed=SEED, clock=clock) as sim:
        async with websockets.connect(sim.endpoints.ws_public, max_size=None) as ws:
            subscribe = {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}}
            await ws.send(json.dumps(subscribe))
            while len(frames) < updates + 1:
                try:
                    text = await asyncio.wait_for(ws.recv(), timeout=0.002)
                except TimeoutError:
                    await clock.advance(0.01)
                    continue
                if isinstance(text, str) and text.startswith('{"channel":"book"'):
                    frames.append(text)
    return frames


def primary_md_sets(count: int) -> dict[str, list[str]]:
    captured = [*lines(PRIMARY / "ws_md_al30.jsonl"), (PRIMARY / "ws_md_ggal.json").read_text().strip()]
    rng = random.Random(SEED)
    symbols = ["MERV - XMEV - GGAL - 24hs", "MERV - XMEV - AL30 - 24hs", "DLR/DIC26"]
    mid = {symbol: rng.uniform(500, 80_000) for symbol in symbols}
    synthetic = []
    for index in range(count):
        symbol = symbols[index % len(symbols)]
        mid[symbol] *= 1 + rng.uniform(-0.001, 0.001)
        tick = round(mid[symbol] / 2000, 2) or 0.01
        frame = {
            "type": "Md",
            "timestamp": 1_733_169_290_243 + index,
            "instrumentId": {"marketId": "ROFX", "symbol": symbol},
            "marketData": {
                "BI": [
                    {"price": round(mid[symbol] - tick * (i + 1), 2), "size": rng.randint(1, 9999)}
                    for i in range(5)
                ],
                "OF": [
                    {"price": round(mid[symbol] + tick * (i + 1), 2), "size": rng.randint(1, 9999)}
                    for i in range(5)
                ],
                "LA": {
                    "price": round(mid[symbol], 2),
                    "size": rng.randint(1, 500),
                    "date": 1_733_169_288_000 + index,
                },
            },
        }
        synthetic.append(json.dumps(frame, separators=(",", ":")))
    return {"captured": captured * max(1, count // len(captured)), "seeded-5-levels": synthetic}


# ---------------------------------------------------------------- runners


def _feed(session: KrakenWsSession | PrimaryWsSession, texts: list[str]) -> tuple[float, int]:
    """Connect `session` (its subscriptions added), feed it `texts`; the CPU seconds feeding took
    and the number of events it gave.

    Events are drained after every frame, as the connection supervisor's writer does: left in the
    session, 20,000 frames' worth (a million objects for 5-level books) made the cyclic garbage
    collector rescan a heap no running gateway holds, and the figure measured that instead."""
    session.connection_made(0.0)
    session.data_to_send()
    receive, drain = session.receive_text, session.events_received
    events = 0
    start = time.process_time()
    for text in texts:
        receive(text, 1.0)
        events += len(drain())
    elapsed = time.process_time() - start
    _require_clean(session.signals_received(), session.venue)
    return elapsed, events


def run_ours(texts: list[str]) -> float:
    session = KrakenWsSession(private=False, wall_clock=lambda: 0.0)
    session.add(BOOK, 0.0)
    elapsed, events = _feed(session, texts)
    if events != len(texts):
        raise AssertionError("every kraken frame must verify and give one event")
    return elapsed


def compiled_modules() -> list[str]:
    """The hot modules loaded from an extension module rather than their `.py` source."""
    return [name for name in HOT_MODULES if not str(importlib.import_module(name).__file__).endswith(".py")]


def _require_clean(signals: list[Signal], venue: str) -> None:
    refused = [s for s in signals if isinstance(s, BadFrame | Resyncing)]
    if refused:
        raise AssertionError(f"{venue}: a frame was refused or a book resynced: {refused[0]}")


class _CapturedAssetPairs:
    """Stands in for the SDK's REST `Market` client: answers `get_asset_pairs` from the capture."""

    def __init__(self) -> None:
        reply = json.loads((KRAKEN / "http_assetpairs.json").read_text())
        self._entry = next(e for e in reply["result"].values() if e.get("wsname") == "XBT/USD")

    def get_asset_pairs(self, pair: str | list[str], **_: Any) -> dict[str, Any]:
        return {pair if isinstance(pair, str) else pair[0]: self._entry}


def run_sdk(texts: list[str]) -> float:
    from kraken.spot import SpotOrderBookClient

    mismatches: list[str] = []

    def on_update(pair: str, message: dict[str, Any]) -> None:
        if "error" in message:
            mismatches.append(message["error"])

    async def drive() -> float:
        client = SpotOrderBookClient(depth=10, callback=on_update)
        client._SpotOrderBookClient__market = _CapturedAssetPairs()  # type: ignore[attr-defined]
        handle = client.on_message
        start = time.process_time()
        for text in texts:
            await handle(json.loads(text))  # what its connector does with every frame
        elapsed = time.process_time() - start
        book = client.get("BTC/USD")
        await client.close()
        if mismatches or not book or not book["valid"]:
            raise AssertionError(f"python-kraken-sdk lost the book: {mismatches[:1]}")
        return elapsed

    return asyncio.run(drive())


def run_primary(texts: list[str]) -> float:
    symbols = sorted({json.loads(text)["instrumentId"]["symbol"] for text in texts})
    session = PrimaryWsSession(wall_clock=lambda: 0.0, account="bench")
    for symbol in symbols:
        for channel in (Channel.TICKER, Channel.BOOK, Channel.TRADES):
            session.add(Subscription(venue="primary", channel=channel, symbol=symbol, depth=5), 0.0)
    elapsed, events = _feed(session, texts)
    if not events:
        raise AssertionError("primary: the Md frames gave no event")
    return elapsed


def run_json(texts: list[str]) -> float:
    start = time.process_time()
    for text in texts:
        json.loads(text)
    return time.process_time() - start


def run_json_decimal(texts: list[str]) -> float:
    """The least any correct Kraken book client does: decode, prices as exact Decimals."""
    start = time.process_time()
    for text in texts:
        json.loads(text, parse_float=Decimal)
    return time.process_time() - start


def _rate(
    report: Report, name: str, run: Callable[[list[str]], float], texts: list[str], rounds: int
) -> float:
    return report.add(name, len(texts) / median_seconds(lambda: run(texts), rounds), "msg/s")


def run(smoke: bool) -> list[Report]:
    rounds = 1 if smoke else 15
    kraken = Report("hotpath_kraken")
    sets = {"captured": captured_kraken()}
    sets["simulated"] = asyncio.run(record_simulated_kraken(50 if smoke else 2000))
    for name, texts in sets.items():
        _rate(kraken, f"{name} brokerbridge", run_ours, texts, rounds)
        _rate(kraken, f"{name} python-kraken-sdk", run_sdk, texts, max(1, rounds // 3))
        _rate(kraken, f"{name} json.loads(parse_float=Decimal)", run_json_decimal, texts, rounds)
        kraken.ratio(f"{name} ratio vs sdk", f"{name} brokerbridge", f"{name} python-kraken-sdk")
        kraken.ratio(
            f"{name} share of json.loads speed",
            f"{name} brokerbridge",
            f"{name} json.loads(parse_float=Decimal)",
        )
        kraken.target(f"{name} brokerbridge", ">=", 300_000)
        kraken.target(f"{name} ratio vs sdk", ">=", 10)
    kraken.note(
        f"messages per set: {', '.join(f'{k} {len(v)}' for k, v in sets.items())}; "
        f"median of {rounds} rounds (sdk: {max(1, rounds // 3)}); "
        "process CPU time (the machine is shared), one core"
    )
    # Said every run, so a figure from a compiled build is never taken for the pure-Python one.
    compiled = compiled_modules()
    kraken.note(f"compiled modules in use: {', '.join(compiled)}" if compiled else "code: pure Python")
    primary = Report("hotpath_primary")
    for name, texts in primary_md_sets(100 if smoke else 20_000).items():
        _rate(primary, f"{name} brokerbridge", run_primary, texts, rounds)
        _rate(primary, f"{name} json.loads", run_json, texts, rounds)
        primary.ratio(f"{name} share of json.loads speed", f"{name} brokerbridge", f"{name} json.loads")
        primary.target(f"{name} brokerbridge", ">=", 200_000)
    primary.note("ticker + book (depth 5) + trades subscribed for every symbol; baseline: stdlib json.loads")
    return [kraken, primary]
