"""TokenManager on a FakeClock: single-flight fetches, periodic refresh, retry after failure, no leaks."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import AsyncIterator

import pytest

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.errors import AuthenticationError, PermissionDenied, TransportError
from brokerbridge.io.token import REFUSED_RETRY, TokenManager

MINUTE = 60.0


class Ceiling(random.Random):
    """Jitter pinned to its top: each retry waits the longest the backoff allows (1, 2, 4, 8, 10 s…)."""

    def uniform(self, a: float, b: float) -> float:
        return b


class FakeVenue:
    """Issues distinct tokens; can be told to hold the answer back or to fail."""

    def __init__(self, lifetime: float = 900.0) -> None:
        self.lifetime = lifetime
        self.calls = 0
        self.issued: list[str] = []
        self.gate: asyncio.Event | None = None
        self.failures: list[Exception] = []

    async def fetch(self) -> tuple[str, float]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        token = f"TOKEN-{self.calls:03d}-s3cr3t-do-not-log"
        self.issued.append(token)
        return token, self.lifetime


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def step_through(clock: FakeClock, seconds: float, step: float = 0.5) -> None:
    """Advance in steps, so a retry that schedules the next one has turns to do it in between."""
    for _ in range(round(seconds / step)):
        await clock.advance(step)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=0.0)


@pytest.fixture
def venue() -> FakeVenue:
    return FakeVenue()


@pytest.fixture
def manager(clock: FakeClock, venue: FakeVenue) -> TokenManager:
    return TokenManager(venue.fetch, clock=clock, venue="kraken", refresh_interval=600.0, rng=Ceiling())


@pytest.fixture
async def refresher(manager: TokenManager) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(manager.run_refresher())
    await turns()
    yield task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_ten_concurrent_fresh_gets_share_one_fetch(manager: TokenManager, venue: FakeVenue) -> None:
    venue.gate = asyncio.Event()
    callers = [asyncio.create_task(manager.get(fresh=True)) for _ in range(10)]
    await turns()
    assert venue.calls == 1
    venue.gate.set()
    tokens = await asyncio.gather(*callers)
    assert tokens == [venue.issued[0]] * 10
    assert venue.calls == 1
    assert manager.fetches == 1


async def test_cached_token_is_reused_until_refresh_interval(
    manager: TokenManager, venue: FakeVenue, clock: FakeClock
) -> None:
    first = await manager.get()
    assert await manager.get() == first
    await clock.advance(599.0)
    assert await manager.get() == first
    assert venue.calls == 1
    await clock.advance(1.0)
    second = await manager.get()
    assert second != first
    assert venue.calls == 2
    # fresh=True always asks the venue.
    assert await manager.get(fresh=True) not in (first, second)
    assert venue.calls == 3


async def test_short_lived_token_is_renewed_at_its_lifetime(clock: FakeClock) -> None:
    venue = FakeVenue(lifetime=60.0)
    manager = TokenManager(venue.fetch, clock=clock, venue="kraken", refresh_interval=600.0)
    first = await manager.get()
    await clock.advance(60.0)
    assert await manager.get() != first


async def test_expires_at_is_wall_clock_issue_time_plus_lifetime(
    manager: TokenManager, clock: FakeClock
) -> None:
    assert manager.expires_at is None
    issued_wall = clock.time()
    await manager.get()
    assert manager.expires_at == pytest.approx(issued_wall + 900.0)
    await clock.advance(100.0)
    assert manager.expires_at == pytest.approx(issued_wall + 900.0)


async def test_on_token_receives_every_new_token(manager: TokenManager, venue: FakeVenue) -> None:
    seen: list[str] = []
    manager.on_token = seen.append
    await manager.get()
    await manager.get()
    await manager.get(fresh=True)
    assert seen == venue.issued
    assert len(seen) == 2


@pytest.mark.usefixtures("refresher")
async def test_refresher_does_nothing_before_a_token_is_used(venue: FakeVenue, clock: FakeClock) -> None:
    await clock.advance(30 * MINUTE)
    assert venue.calls == 0


async def test_refresher_fetches_every_refresh_interval(
    manager: TokenManager, venue: FakeVenue, clock: FakeClock, refresher: asyncio.Task[None]
) -> None:
    await manager.get()  # a private stream starts: token #1 at t=0
    seen: list[str] = []
    manager.on_token = seen.append

    def refreshes() -> int:
        return venue.calls - 1

    await clock.advance(10 * MINUTE)
    assert refreshes() == 1
    await clock.advance(5 * MINUTE)  # t = 15 min
    assert refreshes() == 1
    await clock.advance(5 * MINUTE)  # t = 20 min
    assert refreshes() == 2
    assert seen == venue.issued[1:]
    assert not refresher.done()


async def test_refresher_counts_from_the_latest_fetch(
    manager: TokenManager, venue: FakeVenue, clock: FakeClock, refresher: asyncio.Task[None]
) -> None:
    """A reconnect fetching a fresh token pushes the next proactive refresh back."""
    await manager.get()
    await clock.advance(8 * MINUTE)
    await manager.get(fresh=True)  # t = 8 min
    assert venue.calls == 2
    await clock.advance(4 * MINUTE)  # t = 12 min: the old schedule would have refreshed at 10
    assert venue.calls == 2
    await clock.advance(6 * MINUTE)  # t = 18 min = 8 + 10
    assert venue.calls == 3
    assert not refresher.done()


async def test_failed_refresh_is_logged_and_retried_on_the_backoff(
    manager: TokenManager,
    venue: FakeVenue,
    clock: FakeClock,
    refresher: asyncio.Task[None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await manager.get()
    venue.failures = [
        TransportError("GetWebSocketsToken timed out"),
        PermissionDenied("no websockets"),
        PermissionDenied("no websockets"),
    ]

    def warnings() -> int:
        return sum(r.levelno == logging.WARNING for r in caplog.records)

    await clock.advance(10 * MINUTE)
    assert venue.calls == 2
    with pytest.raises(TransportError):
        await manager.get()  # the failure, from memory until its retry is due
    assert warnings() == 1  # one line for it
    await clock.advance(0.9)
    assert venue.calls == 2  # the first retry is due 1 s later…
    await clock.advance(0.1)
    assert venue.calls == 3  # …and refused: a new error, logged
    with pytest.raises(PermissionDenied):
        await manager.get()
    assert warnings() == 2
    await clock.advance(2.0)
    assert venue.calls == 4  # the same refusal again: not news, not a WARNING
    with pytest.raises(PermissionDenied):
        await manager.get()
    assert warnings() == 2
    await clock.advance(4.0)
    assert venue.calls == 5  # the venue says yes: the backoff starts over
    assert manager.fetches == 2
    assert await manager.get() == venue.issued[-1]
    assert not refresher.done()
    for token in venue.issued:
        assert token not in caplog.text


async def test_a_refusal_after_a_success_is_retried_within_the_cap_and_announced(
    manager: TokenManager, venue: FakeVenue, clock: FakeClock, refresher: asyncio.Task[None]
) -> None:
    # An account locked after we logged in: every retry refused, at most one per 10 s once the
    # backoff has grown; the first retry after the venue lets us in again brings a token.
    await manager.get()
    seen: list[str] = []
    manager.on_token = seen.append
    venue.failures = [AuthenticationError("User account is locked")] * 100
    with pytest.raises(AuthenticationError):
        await manager.get(fresh=True)
    await step_through(clock, 2 * MINUTE)
    attempts = venue.calls - 2
    assert 12 <= attempts <= 16  # 1+2+4+8 s, then every 10 s — not a storm, not a minute apart
    venue.failures = []
    await step_through(clock, 10.0)
    assert len(seen) == 1 and seen[0] == venue.issued[-1]


async def test_credentials_never_accepted_are_retried_once_a_minute(
    manager: TokenManager, venue: FakeVenue, clock: FakeClock, refresher: asyncio.Task[None]
) -> None:
    # A wrong password: retrying it fast could get the account locked at brokers that count failures.
    venue.failures = [AuthenticationError("bad credentials")] * 10
    with pytest.raises(AuthenticationError):
        await manager.get()
    await clock.advance(59.0)
    with pytest.raises(AuthenticationError):
        await manager.get()  # from memory
    assert venue.calls == 1
    await clock.advance(1.0)
    assert venue.calls == 2  # the refresher's retry, a minute on


async def test_a_failed_fetch_is_retried_only_while_needed(clock: FakeClock, venue: FakeVenue) -> None:
    wanted = [True]
    manager = TokenManager(venue.fetch, clock=clock, venue="kraken", rng=Ceiling(), needed=lambda: wanted[0])
    refresher = asyncio.create_task(manager.run_refresher())
    venue.failures = [TransportError("refused")] * 100
    with pytest.raises(TransportError):
        await manager.get()
    await step_through(clock, 3.5)
    assert venue.calls == 3  # retried at +1 and +3 s
    wanted[0] = False
    await step_through(clock, MINUTE)
    assert venue.calls == 3  # nobody needs a token: no retries
    wanted[0] = True
    await step_through(clock, 10.0)
    assert venue.calls == 4  # needed again: retried within the cap
    refresher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await refresher


async def test_a_due_refresh_that_failed_while_nobody_needs_a_token_does_not_spin(
    clock: FakeClock, venue: FakeVenue
) -> None:
    wanted = [True]
    manager = TokenManager(venue.fetch, clock=clock, venue="kraken", rng=Ceiling(), needed=lambda: wanted[0])
    refresher = asyncio.create_task(manager.run_refresher())
    await manager.get()
    venue.failures = [TransportError("refused")] * 100
    wanted[0] = False
    await asyncio.wait_for(step_through(clock, 11 * MINUTE), 10.0)  # the refresh is due, and fails
    assert venue.calls == 2
    refresher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await refresher


async def test_a_refused_token_is_not_handed_out_again(manager: TokenManager, venue: FakeVenue) -> None:
    first = await manager.get()
    venue.failures = [AuthenticationError("User account is locked")]
    manager.reject(first)
    assert manager.refused(first) and not manager.refused("another")
    with pytest.raises(AuthenticationError):
        await manager.get()
    with pytest.raises(AuthenticationError):
        await manager.get()  # not the refused token: the failure, from memory
    assert venue.calls == 2


async def test_tokens_never_appear_in_logs(
    manager: TokenManager, venue: FakeVenue, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    refresher = asyncio.create_task(manager.run_refresher())
    await turns()
    await manager.get()
    await clock.advance(25 * MINUTE)
    refresher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await refresher
    assert len(venue.issued) == manager.fetches == 3
    # One INFO line per token issued — the lines that would carry one, had it leaked.
    assert sum(r.name == "brokerbridge.io.token" and r.levelno == logging.INFO for r in caplog.records) == 3
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for token in venue.issued:
            assert token not in text


async def test_a_failed_fetch_reaches_every_waiter_and_is_not_retried_in_a_storm(
    manager: TokenManager, venue: FakeVenue, clock: FakeClock
) -> None:
    venue.gate = asyncio.Event()
    venue.failures = [TransportError("connection refused")]
    callers = [asyncio.create_task(manager.get(fresh=True)) for _ in range(3)]
    await turns()
    venue.gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, TransportError) for r in results), results
    assert manager.fetches == 0
    for _ in range(5):  # callers keep asking: the failure is answered from memory
        with pytest.raises(TransportError):
            await manager.get(fresh=True)
    assert venue.calls == 1
    await clock.advance(1.0)  # the first retry's delay
    assert await manager.get() == venue.issued[0]
    assert venue.calls == 2


async def test_replacing_a_token_someone_already_replaced_does_not_log_in_again(
    manager: TokenManager, venue: FakeVenue
) -> None:
    first = await manager.get()
    second = await manager.get(fresh=True, replacing=first)
    assert second != first and venue.calls == 2
    # A second caller that saw the first token refused too gets the new one, no third login.
    assert await manager.get(fresh=True, replacing=first) == second
    assert venue.calls == 2


async def test_cancelling_the_first_caller_does_not_cancel_the_other_waiters(
    manager: TokenManager, venue: FakeVenue
) -> None:
    venue.gate = asyncio.Event()
    first = asyncio.create_task(manager.get(fresh=True))
    await turns()
    second = asyncio.create_task(manager.get(fresh=True))
    await turns()
    first.cancel()
    await turns()
    venue.gate.set()
    try:
        token = await asyncio.wait_for(second, 1.0)
    except asyncio.CancelledError:
        pytest.fail("a waiter that nobody cancelled received CancelledError")
    except TransportError:
        return  # acceptable: a retryable error the caller can handle
    assert token


# -- tokens the venue issues and then refuses (Kraken: every subscribe with it refused) -------------------


async def test_tokens_refused_in_a_row_are_replaced_ever_more_slowly(
    clock: FakeClock, venue: FakeVenue
) -> None:
    manager = TokenManager(
        venue.fetch, clock=clock, venue="kraken", rng=Ceiling(), refused_retry=REFUSED_RETRY
    )
    token = await manager.get()
    assert manager.reject(token) == 1  # a stale or invalidated token: replaced at once
    token = await manager.get()
    assert venue.calls == 2
    waits = []
    for _ in range(7):
        assert manager.reject(token) >= 2  # refused right after issue, again
        wait = manager.next_fetch_in
        waits.append(wait)
        pending = asyncio.create_task(manager.get())
        await turns()
        await clock.advance(wait - 0.5)  # halves: exact in binary, so the sum is exactly `wait`
        await turns()
        assert not pending.done() and venue.calls == len(waits) + 1  # not before it is due
        await clock.advance(0.5)
        token = await pending
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]  # the ceiling of 1–2 s doubling to 60 s
    assert manager.reject(token) == 9 and manager.reject(token) == 0  # reported twice: one refusal
    # A token the venue accepted ends the streak: the next refusal is replaced at once again.
    await clock.advance(manager.next_fetch_in)
    token = await manager.get()
    manager.accepted(token)
    assert manager.reject(token) == 1 and manager.next_fetch_in == 0.0


async def test_without_refused_retry_a_refused_token_is_replaced_at_once(
    manager: TokenManager, venue: FakeVenue
) -> None:
    for _ in range(3):  # Primary's re-login after a 401 keeps its at-once retry
        manager.reject(await manager.get())
    await manager.get()
    assert venue.calls == 4 and manager.next_fetch_in == 0.0


async def test_a_denied_fetch_is_retried_up_to_a_minute_apart(clock: FakeClock, venue: FakeVenue) -> None:
    manager = TokenManager(
        venue.fetch, clock=clock, venue="kraken", rng=Ceiling(), refused_retry=REFUSED_RETRY
    )
    await manager.get()  # accepted once: no never-accepted hold-off below
    venue.failures = [PermissionDenied("kraken: EGeneral:Permission denied", code="x")] * 8
    waits = []
    for _ in range(8):
        with pytest.raises(PermissionDenied):
            await manager.get(fresh=True)
        waits.append(manager.next_fetch_in)
        await clock.advance(manager.next_fetch_in)
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    await manager.get(fresh=True)  # granted: a success resets the backoff
    venue.failures = [TransportError("reset")]  # a passing failure keeps the short one (1–10 s)
    with pytest.raises(TransportError):
        await manager.get(fresh=True)
    assert manager.next_fetch_in == 1.0


async def test_aclose_ends_a_fetch_under_way(manager: TokenManager, venue: FakeVenue) -> None:
    venue.gate = asyncio.Event()  # the venue never answers
    waiter = asyncio.create_task(manager.get())
    await turns()
    waiter.cancel()  # the one who asked leaves (a reconnect abandoned at shutdown)…
    await asyncio.gather(waiter, return_exceptions=True)
    assert [t for t in asyncio.all_tasks() if t.get_name() == "token-fetch" and not t.done()]
    await manager.aclose()  # …and closing the manager ends the fetch it left behind
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "token-fetch" and not t.done()]


async def test_a_fetch_failing_after_its_waiters_left_is_not_an_unretrieved_exception(
    manager: TokenManager, venue: FakeVenue
) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    venue.gate = asyncio.Event()
    venue.failures = [TransportError("kraken REST: GetWebSocketsToken failed: ReadError")]
    waiter = asyncio.create_task(manager.get())
    await turns()
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    venue.gate.set()  # fails with nobody waiting
    await turns()
    gc.collect()
    await turns()
    loop.set_exception_handler(None)
    assert unhandled == []
    with pytest.raises(TransportError):  # remembered for the next caller all the same
        await manager.get()
