"""Secret/redact, BackoffPolicy delays and FakeClock: the small core pieces everything else leans on."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

import pytest

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import FakeClock, SystemClock, race, sleep_unless, within
from brokerbridge.core.secret import Secret, redact

# -- Secret ----------------------------------------------------------------------------------------


def test_secret_is_masked_everywhere_it_could_be_printed() -> None:
    secret = Secret("hunter2-very-secret")
    masked = "Secret('***')"
    assert repr(secret) == masked
    assert str(secret) == masked
    assert f"{secret}" == masked
    assert "%s %r" % (secret, secret) == f"{masked} {masked}"  # noqa: UP031 - logging style
    assert "hunter2" not in repr([secret, {"k": secret}])
    assert secret.reveal() == "hunter2-very-secret"


def test_secret_equality_hash_and_truthiness() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"  # never equal to the bare string (no accidental comparisons)
    assert hash(Secret("a")) == hash(Secret("a"))
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2
    assert Secret("x")
    assert not Secret("")


def test_redact_masks_every_occurrence_of_every_secret() -> None:
    text = "key=AAA secret=BBB again AAA and BBB"
    assert redact(text, Secret("AAA"), "BBB") == "key=*** secret=*** again *** and ***"


def test_redact_ignores_empty_and_missing_secrets() -> None:
    text = "nothing to hide"
    assert redact(text, None, "", Secret("")) == text  # an empty secret must not mask between chars
    assert redact(text) == text


# -- BackoffPolicy ---------------------------------------------------------------------------------


def take(policy: BackoffPolicy, n: int, seed: int = 1) -> list[float]:
    return list(itertools.islice(policy.delays(random.Random(seed)), n))


def test_first_delay_is_zero_then_each_within_half_to_full_ceiling() -> None:
    policy = BackoffPolicy(initial=0.5, factor=2.0, cap=30.0, immediate_attempts=1)
    delays = take(policy, 12)
    assert delays[0] == 0.0
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    for delay, ceiling in zip(delays[1:], ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling, (delay, ceiling)


def test_growth_follows_the_factor() -> None:
    policy = BackoffPolicy(initial=1.0, factor=3.0, cap=1_000.0, immediate_attempts=0)
    # With a stub rng returning the upper bound, the delays are exactly the ceilings.
    rng = random.Random()
    rng.uniform = lambda a, b: b  # type: ignore[method-assign]
    delays = list(itertools.islice(policy.delays(rng), 6))
    assert delays == [1.0, 3.0, 9.0, 27.0, 81.0, 243.0]


def test_capped_forever_and_never_gives_up() -> None:
    policy = BackoffPolicy(initial=0.5, factor=2.0, cap=5.0)
    delays = take(policy, 1_000)
    assert len(delays) == 1_000
    assert max(delays) <= 5.0
    assert min(delays[10:]) >= 2.5  # at the cap the floor is cap/2: never a tight loop
    assert len(set(delays[10:])) > 100  # jittered, not lockstep


def test_immediate_attempts() -> None:
    assert take(BackoffPolicy(immediate_attempts=3), 4)[:3] == [0.0, 0.0, 0.0]
    assert take(BackoffPolicy(immediate_attempts=3), 4)[3] > 0
    first = take(BackoffPolicy(initial=2.0, immediate_attempts=0), 1)[0]
    assert 1.0 <= first <= 2.0


def test_seeded_rng_is_reproducible_and_seeds_differ() -> None:
    policy = BackoffPolicy()
    assert take(policy, 50, seed=42) == take(policy, 50, seed=42)
    assert take(policy, 50, seed=42) != take(policy, 50, seed=43)


def test_each_generator_starts_over() -> None:
    """A caller resets backoff after success by asking for a new generator."""
    policy = BackoffPolicy(initial=1.0, cap=100.0)
    old = policy.delays(random.Random(0))
    for _ in range(8):
        next(old)
    fresh = policy.delays(random.Random(0))
    assert next(fresh) == 0.0
    assert next(fresh) <= 1.0


# -- FakeClock -------------------------------------------------------------------------------------


async def test_fake_clock_does_not_move_by_itself() -> None:
    clock = FakeClock(start=50.0)
    task = asyncio.create_task(clock.sleep(1.0))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not task.done()
    assert clock.monotonic() == 50.0
    assert clock.sleepers == 1
    await clock.advance(1.0)
    assert task.done()
    assert clock.sleepers == 0


async def test_sleepers_wake_in_deadline_order_at_their_deadline() -> None:
    clock = FakeClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 5.0), ("a", 1.0), ("b", 3.0), ("b2", 3.0))]
    await asyncio.sleep(0)
    assert clock.sleepers == 4
    await clock.advance(2.0)
    assert woke == [("a", 101.0)]
    assert clock.monotonic() == 102.0
    await clock.advance(10.0)
    assert woke == [("a", 101.0), ("b", 103.0), ("b2", 103.0), ("c", 105.0)]
    assert clock.monotonic() == 112.0
    await asyncio.gather(*tasks)


async def test_periodic_sleeper_wakes_every_period_within_one_advance() -> None:
    clock = FakeClock(start=0.0)
    ticks: list[float] = []

    async def periodic() -> None:
        while True:
            await clock.sleep(1.0)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(periodic())
    await asyncio.sleep(0)
    await clock.advance(3.5)
    assert ticks == [1.0, 2.0, 3.0]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_wall_time_moves_with_monotonic_time() -> None:
    clock = FakeClock(start=10.0, wall_start=1_700_000_000.0)
    assert clock.time() == 1_700_000_000.0
    await clock.advance(2.5)
    assert clock.monotonic() == 12.5
    assert clock.time() == 1_700_000_002.5


async def test_zero_sleep_returns_without_advance() -> None:
    clock = FakeClock()
    await asyncio.wait_for(clock.sleep(0), 1)
    await asyncio.wait_for(clock.sleep(-3), 1)
    assert clock.sleepers == 0


async def test_cancelled_sleeper_is_not_counted_and_does_not_break_advance() -> None:
    clock = FakeClock(start=0.0)
    task = asyncio.create_task(clock.sleep(1.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    await clock.advance(2.0)
    assert clock.monotonic() == 2.0


async def test_sleep_unless_ends_at_the_time_or_when_the_event_is_set() -> None:
    clock = FakeClock(start=0.0)
    event = asyncio.Event()
    sleeper = asyncio.ensure_future(sleep_unless(clock, 10.0, event))
    for _ in range(5):  # it starts sleeping
        await asyncio.sleep(0)
    await clock.advance(9.0)
    assert not sleeper.done()
    await clock.advance(1.0)
    assert sleeper.done()
    woken = asyncio.ensure_future(sleep_unless(clock, 10.0, event))
    await clock.advance(1.0)
    event.set()
    await asyncio.wait_for(woken, 1.0)
    assert clock.monotonic() == 11.0 and clock.sleepers == 0
    await asyncio.wait_for(sleep_unless(clock, 10.0, event), 1.0)  # already set: no wait at all


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_within_answers_before_the_deadline_or_raises_timeout_at_it() -> None:
    clock = FakeClock(start=0.0)
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    call = asyncio.ensure_future(within(clock, 5.0, answer))
    await settle()  # it starts waiting
    await clock.advance(4.0)
    assert not call.done()
    answer.set_result("ok")
    assert await asyncio.wait_for(call, 1.0) == "ok"
    assert clock.sleepers == 0  # the deadline's sleeper is gone with the answer

    slow = asyncio.ensure_future(clock.sleep(60.0))
    late = asyncio.ensure_future(within(clock, 5.0, slow))
    await settle()
    await clock.advance(4.9)
    assert not late.done()
    await clock.advance(0.1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(late, 1.0)
    assert slow.cancelled() and clock.sleepers == 0  # the work was stopped, not left running


async def test_within_passes_the_works_own_error_through() -> None:
    async def refuse() -> str:
        raise LookupError("refused")

    with pytest.raises(LookupError, match="refused"):
        await within(FakeClock(), 5.0, refuse())


async def test_race_returns_the_first_to_end_and_stops_the_rest() -> None:
    clock = FakeClock(start=0.0)

    async def fails_at(seconds: float) -> None:
        await clock.sleep(seconds)
        raise ValueError(f"at {seconds}")

    racing = asyncio.ensure_future(race(fails_at(3.0), fails_at(7.0), clock.sleep(10.0)))
    await settle()
    await clock.advance(3.0)
    done = await asyncio.wait_for(racing, 1.0)
    assert [str(f.exception()) for f in done] == ["at 3.0"]
    assert clock.sleepers == 0  # the losers were cancelled and awaited
    await clock.advance(10.0)  # nothing left to wake


async def test_race_cancelled_cancels_every_contender() -> None:
    clock = FakeClock(start=0.0)
    first, second = asyncio.ensure_future(clock.sleep(5.0)), asyncio.ensure_future(clock.sleep(9.0))
    racing = asyncio.ensure_future(race(first, second))
    await settle()
    racing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await racing
    assert first.cancelled() and second.cancelled() and clock.sleepers == 0


def test_system_clock_is_real() -> None:
    clock = SystemClock()
    assert abs(clock.time() - time.time()) < 1.0
    assert abs(clock.monotonic() - time.monotonic()) < 1.0
