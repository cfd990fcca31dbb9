"""Kraken's per-pair trading rate counter as the bridge models it (venues/kraken/rate_counter.py),
over time passed in, for every tier; and against the simulator's own counter, written apart."""

from __future__ import annotations

import random
from typing import get_args

import pytest

from brokerbridge.core.config import KrakenConfig, KrakenTier, load_config
from brokerbridge.core.errors import ConfigError, OrderRefused
from brokerbridge.sim.kraken.order_rate import OrderRateCounter
from brokerbridge.venues.kraken.rate_counter import (
    TIER_NAMES,
    TIERS,
    OrderAges,
    RateCounter,
    transaction_count,
)


@pytest.mark.parametrize(
    ("age", "add", "amend", "cancel"),
    [
        (0.0, 1, 4, 8),
        (4.999, 1, 4, 8),
        (5.0, 1, 3, 6),  # "< 5 s": five seconds is the next row
        (9.99, 1, 3, 6),
        (10.0, 1, 2, 5),
        (14.9, 1, 2, 5),
        (15.0, 1, 1, 4),
        (44.9, 1, 1, 4),
        (45.0, 1, 1, 2),
        (89.9, 1, 1, 2),
        (90.0, 1, 1, 1),
        (299.9, 1, 1, 1),
        (300.0, 1, 1, 0),
        (86_400.0, 1, 1, 0),
        (None, 1, 4, 8),  # age unknown: the youngest row, never less than Kraken counts
    ],
)
def test_counts_by_order_age(age: float | None, add: int, amend: int, cancel: int) -> None:
    assert transaction_count("add", age) == add
    assert transaction_count("amend", age) == amend
    assert transaction_count("cancel", age) == cancel


@pytest.mark.parametrize("tier", TIER_NAMES)
def test_each_tier_admits_its_threshold_then_refuses_saying_when_to_retry(tier: str) -> None:
    limits = TIERS[tier]
    counter = RateCounter(limits, headroom_s=0.0)
    now = 1000.0
    for _ in range(int(limits.threshold)):
        assert counter.admit("BTC/USD", 1.0, now, max_wait=0.0) == 0.0
    assert counter.level("BTC/USD", now) == limits.threshold
    with pytest.raises(OrderRefused) as refused:
        counter.admit("BTC/USD", 1.0, now, max_wait=0.0)
    error = refused.value
    assert error.rule == "rate_limit" and error.venue == "kraken" and error.retryable
    assert f"{limits.threshold:g}" in error.message and tier in error.message
    retry = 1.0 / limits.decay_per_s
    assert f"retry in {int(retry * 10 + 0.999) / 10:.1f} s" in error.remedy
    assert counter.level("BTC/USD", now) == limits.threshold  # a refusal reserves nothing
    # Decay over time: after `retry` seconds exactly one more fits, and no second one.
    later = now + retry + 1e-9
    assert counter.admit("BTC/USD", 1.0, later, max_wait=0.0) == 0.0
    with pytest.raises(OrderRefused):
        counter.admit("BTC/USD", 1.0, later, max_wait=0.0)
    # Drained: all of it decays at the tier's rate.
    assert counter.level("BTC/USD", now + retry + limits.threshold / limits.decay_per_s + 1e-6) == 0.0
    assert counter.level("BTC/USD", now + retry + 10 / limits.decay_per_s) == pytest.approx(
        limits.threshold - 10
    )


@pytest.mark.parametrize("tier", TIER_NAMES)
def test_the_bridge_stops_a_seconds_decay_below_the_threshold(tier: str) -> None:
    limits = TIERS[tier]
    counter = RateCounter(limits)
    assert counter.capacity == pytest.approx(limits.threshold - limits.decay_per_s)
    for _ in range(int(counter.capacity)):
        assert counter.admit("BTC/USD", 1.0, 0.0, max_wait=0.0) == 0.0
    with pytest.raises(OrderRefused) as refused:
        counter.admit("BTC/USD", 1.0, 0.0, max_wait=0.0)
    assert f"stops at {counter.capacity:g}" in refused.value.message


def test_pairs_count_apart() -> None:
    counter = RateCounter(TIERS["starter"])
    for _ in range(59):
        counter.admit("BTC/USD", 1.0, 0.0, max_wait=0.0)
    assert counter.admit("ETH/USD", 1.0, 0.0, max_wait=0.0) == 0.0
    with pytest.raises(OrderRefused) as refused:
        counter.admit("BTC/USD", 8.0, 0.0, max_wait=0.0, what="cancelling O1")
    assert "cancelling O1 on BTC/USD" in refused.value.message


def test_a_queue_waits_in_turn_and_refuses_past_its_limit() -> None:
    """Starter, 5 s of queue: 59 go at once (60 less a second's decay), the next five wait 1..5 s
    in the order they came, the one after is refused; a waiter that gives up hands its count back."""
    counter = RateCounter(TIERS["starter"])
    waits = [counter.admit("BTC/USD", 1.0, 0.0, max_wait=5.0) for _ in range(64)]
    assert waits[:59] == [0.0] * 59
    assert waits[59:] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(OrderRefused):
        counter.admit("BTC/USD", 1.0, 0.0, max_wait=5.0)
    counter.release("BTC/USD", 1.0, 0.0)
    assert counter.admit("BTC/USD", 1.0, 0.0, max_wait=5.0) == pytest.approx(5.0)
    # A second on, a second's decay has made room for one more, 5 s from then.
    assert counter.admit("BTC/USD", 1.0, 1.0, max_wait=5.0) == pytest.approx(5.0)


def test_a_cancel_that_counts_nothing_waits_behind_no_one() -> None:
    counter = RateCounter(TIERS["starter"])
    for _ in range(64):
        counter.admit("BTC/USD", 1.0, 0.0, max_wait=5.0)
    assert counter.admit("BTC/USD", transaction_count("cancel", 600.0), 0.0, max_wait=0.0) == 0.0


def test_a_count_no_wait_can_fit_is_refused() -> None:
    with pytest.raises(OrderRefused):
        RateCounter(TIERS["starter"]).admit("BTC/USD", 60.0, 0.0, max_wait=1e9)


def test_idle_pairs_are_forgotten() -> None:
    counter = RateCounter(TIERS["pro"], max_pairs=10)
    for i in range(100):
        counter.admit(f"P{i}/USD", 1.0, float(i), max_wait=0.0)
    assert len(counter._levels) <= 11  # those still counting, a second or less each


def test_order_ages_are_bounded_and_prefer_the_bridges_own_record() -> None:
    ages = OrderAges(capacity=3)
    ages.placed("A", "BTC/USD", 100.0)
    ages.seen("A", "BTC/USD", 90.0)  # the stream's older stamp does not replace the ack's
    assert ages.age("A", 105.0) == 5.0
    for name in ("B", "C", "D"):
        ages.placed(name, "ETH/USD", 101.0)
    assert len(ages) == 3 and ages.get("A") is None and ages.age("A", 105.0) is None
    ages.placed("B", "ETH/USD", 104.0)  # amended: its age starts again
    assert ages.age("B", 105.0) == 1.0
    ages.closed("C")
    assert ages.get("C") is None and len(ages) == 2


def test_the_model_never_counts_less_than_the_simulated_venue() -> None:
    """Random adds and cancels at Starter on one pair: the bridge charges before sending, the venue
    when the transaction arrives (a little later); whatever the bridge admits, the venue takes."""
    rng = random.Random(18)
    model = RateCounter(TIERS["starter"])
    venue = OrderRateCounter(tier="starter")
    placed: dict[int, float] = {}
    now = 0.0
    for i in range(5000):
        now += rng.expovariate(2.0)
        cancel = placed and rng.random() < 0.4
        if cancel:
            order = rng.choice(list(placed))
            age = now - placed[order]
            count = transaction_count("cancel", age)
        else:
            count = transaction_count("add", None)
        try:
            wait = model.admit("BTC/USD", count, now, max_wait=2.0)
        except OrderRefused:
            continue
        arrives = now + wait + rng.uniform(0.0, 0.05)
        if cancel:
            assert venue.cancel_order("BTC/USD", arrives - placed.pop(order), arrives)
        else:
            assert venue.add_order("BTC/USD", arrives)
            placed[i] = arrives + 0.01  # acked after it arrived
        now = max(now, arrives)
    assert venue.refused == 0 and venue.counted > 1000


def test_tier_setting() -> None:
    assert set(get_args(get_args(KrakenTier)[0])) == set(TIER_NAMES)
    assert KrakenConfig().tier == "starter" and KrakenConfig().order_queue_s == 5.0
    config = load_config(
        env={"BROKERBRIDGE_KRAKEN_TIER": "Intermediate", "BROKERBRIDGE_KRAKEN_ORDER_QUEUE_S": "0"}
    )
    assert config.kraken.tier == "intermediate" and config.kraken.order_queue_s == 0.0
    with pytest.raises(ConfigError) as bad:
        load_config(env={"BROKERBRIDGE_KRAKEN_TIER": "gold"})
    assert "kraken.tier" in bad.value.message and "starter, intermediate, pro" in bad.value.message
    with pytest.raises(ConfigError):
        load_config(env={"BROKERBRIDGE_KRAKEN_ORDER_QUEUE_S": "-1"})
