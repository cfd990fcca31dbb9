"""python-kraken-sdk (unmodified) `SpotOrderBookClient`: its OWN CRC32 validation against the
simulator's book channel.

The client takes no URL arguments (kraken/spot/orderbook.py: ``super().__init__()`` and an
internal ``Market()``). Per kraken.md §4.1 it is redirected with class attributes, restored
after each test by ``monkeypatch``:

* ``SpotWSClientBase.WS_URL`` -> the simulator's public base (the client appends ``/v2``);
* ``SpotClient.URL`` -> the simulator's REST base (read by the internal ``Market()`` that fetches
  ``AssetPairs?pair=BTC/USD`` for ``pair_decimals``/``lot_decimals``).

Its checksum-mismatch path (``on_message``): the book's ``valid`` flag turns False, the callback
receives ``{"error": "Checksum mismatch - resubscribing to the orderbook for BTC/USD"}``, then
it unsubscribes, sleeps 3 s and subscribes again. We observe that path only through the
documented callback and ``get(pair)["valid"]``; nothing of the client is wrapped or patched.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kraken.base_api import SpotClient
from kraken.spot import SpotOrderBookClient
from kraken.spot.websocket import SpotWSClientBase
from tp_helpers import async_wait_until, bounded

pytestmark = [pytest.mark.thirdparty, pytest.mark.timeout(110)]

SYMBOL = "BTC/USD"
MISMATCH = f"Checksum mismatch - resubscribing to the orderbook for {SYMBOL}"


class BookWatch:
    """Callback for SpotOrderBookClient: counts snapshots/updates and the client's own verdict."""

    def __init__(self) -> None:
        self.client: SpotOrderBookClient | None = None
        self.snapshots = 0
        self.updates = 0
        self.valid_updates = 0
        self.invalid_updates = 0
        self.errors: list[str] = []
        self.events: list[tuple[str, float]] = []  # ("snapshot"|"valid"|"invalid"|"error", t)
        self.bad_books: list[str] = []

    async def on_update(self, pair: str, message: dict[str, Any]) -> None:
        # a bound coroutine method: the client awaits it only if inspect.iscoroutinefunction()
        assert pair == SYMBOL
        now = time.monotonic()
        if "error" in message:
            self.errors.append(message["error"])
            self.events.append(("error", now))
            return
        assert self.client is not None
        book = self.client.get(pair)
        if message["type"] == "snapshot":
            self.snapshots += 1
            self.events.append(("snapshot", now))
            return
        self.updates += 1
        if book["valid"]:
            self.valid_updates += 1
            self.events.append(("valid", now))
        else:
            self.invalid_updates += 1
            self.events.append(("invalid", now))
        # the client's book itself must stay a proper depth-10 book
        bids = [float(p) for p in book["bid"]]
        asks = [float(p) for p in book["ask"]]
        if not (len(bids) == 10 and len(asks) == 10 and bids[0] < asks[0]):
            self.bad_books.append(f"bids={len(bids)} asks={len(asks)} top={bids[:1]}/{asks[:1]}")

    def run_after(self, kind: str, after: float) -> int:
        return sum(1 for k, t in self.events if k == kind and t > after)


@pytest.fixture
def redirected(sim, monkeypatch):
    monkeypatch.setattr(SpotWSClientBase, "WS_URL", sim.pks_ws_url)
    monkeypatch.setattr(SpotClient, "URL", sim.rest)
    return sim


async def _open_book(watch: BookWatch) -> SpotOrderBookClient:
    client = SpotOrderBookClient(depth=10, callback=watch.on_update)
    watch.client = client
    # start() never times out by itself when the socket cannot open
    await bounded(client.start(), 15, "SpotOrderBookClient.start()")
    await client.add_book(pairs=[SYMBOL])
    return client


async def test_own_checksum_accepts_1000_consecutive_updates(redirected):
    watch = BookWatch()
    client = await _open_book(watch)
    try:
        await async_wait_until(lambda: watch.snapshots >= 1, 10, "book snapshot")
        await async_wait_until(
            lambda: watch.updates >= 1000 or watch.errors or watch.invalid_updates,
            75,
            "1,000 book updates",
            interval=0.1,
        )
    finally:
        await bounded(client.close(), 25, "close()")

    assert watch.errors == [], watch.errors[:3]
    assert watch.invalid_updates == 0
    assert watch.snapshots == 1, "no resubscription may have happened"
    assert watch.updates >= 1000
    assert watch.valid_updates == watch.updates
    assert watch.bad_books == [], watch.bad_books[:3]
    assert not client.exception_occur


async def test_corrupt_checksum_fault_is_detected_and_recovered(redirected):
    faults = redirected.get_faults()
    keys = [k for k in faults if "checksum" in k.lower()]
    assert len(keys) == 1, f"expected one checksum fault switch in {faults}"
    key = keys[0]
    value: Any = True if isinstance(faults[key], bool) else 1

    watch = BookWatch()
    client = await _open_book(watch)
    try:
        await async_wait_until(
            lambda: watch.snapshots == 1 and watch.valid_updates >= 20, 20, "20 valid updates"
        )
        assert watch.errors == [] and watch.invalid_updates == 0
        t_fault = time.monotonic()
        redirected.set_faults(**{key: value})
        await async_wait_until(lambda: watch.errors, 10, "client to detect the corrupted checksum")
        # it resubscribes after 3 s: fresh snapshot, then valid updates again
        await async_wait_until(lambda: watch.snapshots >= 2, 15, "resubscription snapshot")
        t_resub = max(t for k, t in watch.events if k == "snapshot")
        await async_wait_until(
            lambda: watch.run_after("valid", t_resub) >= 20, 20, "20 valid updates after resub"
        )
    finally:
        await bounded(client.close(), 25, "close()")
        redirected.reset_faults()

    assert watch.errors == [MISMATCH], watch.errors
    assert watch.invalid_updates == 1, "exactly the one corrupted update is rejected"
    invalid_at = next(t for k, t in watch.events if k == "invalid")
    assert invalid_at > t_fault
    assert watch.snapshots == 2
    assert watch.run_after("invalid", t_resub) == 0
    assert watch.run_after("error", t_resub) == 0
    assert watch.bad_books == [], watch.bad_books[:3]


class MultiBookWatch:
    """Per-pair verdicts of the client's own checksum for a multi-pair, deeper subscription."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.client: SpotOrderBookClient | None = None
        self.snapshots: dict[str, int] = {}
        self.valid: dict[str, int] = {}
        self.invalid: dict[str, int] = {}
        self.errors: list[str] = []
        self.bad_books: list[str] = []

    async def on_update(self, pair: str, message: dict[str, Any]) -> None:
        if "error" in message:
            self.errors.append(message["error"])
            return
        assert self.client is not None
        book = self.client.get(pair)
        if message["type"] == "snapshot":
            self.snapshots[pair] = self.snapshots.get(pair, 0) + 1
            return
        verdict = self.valid if book["valid"] else self.invalid
        verdict[pair] = verdict.get(pair, 0) + 1
        bids = [float(p) for p in book["bid"]]
        asks = [float(p) for p in book["ask"]]
        if not (len(bids) == self.depth and len(asks) == self.depth and bids[0] < asks[0]):
            self.bad_books.append(f"{pair}: bids={len(bids)} asks={len(asks)}")


async def test_own_checksum_multi_pair_depth_25(redirected):
    # pairs with different precisions: BTC/USD 1/8, ETH/USD 2/8, XRP/USD 5/8, ETH/BTC 5/8
    pairs = ["BTC/USD", "ETH/USD", "XRP/USD", "ETH/BTC"]
    watch = MultiBookWatch(depth=25)
    client = SpotOrderBookClient(depth=25, callback=watch.on_update)
    watch.client = client
    await bounded(client.start(), 15, "SpotOrderBookClient.start()")
    try:
        await client.add_book(pairs=pairs)
        await async_wait_until(
            lambda: all(watch.valid.get(p, 0) >= 150 for p in pairs) or watch.errors,
            40,
            "150 updates on every pair",
            interval=0.1,
        )
    finally:
        await bounded(client.close(), 25, "close()")

    assert watch.errors == [], watch.errors[:3]
    assert watch.invalid == {}, watch.invalid
    assert watch.snapshots == dict.fromkeys(pairs, 1)
    assert all(watch.valid[p] >= 150 for p in pairs), watch.valid
    assert watch.bad_books == [], watch.bad_books[:3]
