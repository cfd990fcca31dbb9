"""The venue lease and its campaign against a real redis-server: one holder at a time, a new epoch
per acquisition, local validity on the injected clock, failover, fencing, Redis killed and back.

Local validity runs on a `FakeClock`; Redis's own TTLs run on real time, so the failover and
expiry tests use TTLs of a few hundred milliseconds and wait on the condition with a bounded poll."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis.asyncio

from brokerbridge.core.clock import Clock, FakeClock, SystemClock
from brokerbridge.core.config import load_config
from brokerbridge.core.errors import ClusterUnavailable, ConfigError, Fenced
from brokerbridge.io.cluster.fencing import fenced_script
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.lease import Lease, LeaseCampaign
from brokerbridge.io.cluster.link import open_redis
from tests.redis_server import RedisServer

KEYS = ClusterKeys()
VENUE = "primary"
APPEND = "return redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])"
POLL_LIMIT_S = 5.0
STEP = 0.05  # s of fake time per poll


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    r = open_redis(redis_url)
    yield r
    await r.aclose()


async def eventually(
    condition: Callable[[], bool], *, clock: FakeClock | None = None, step: float = 0.0
) -> None:
    """Poll `condition` (advancing `clock` by `step` each time), giving real I/O a moment between
    tries; fail after POLL_LIMIT_S of real time. Fake time moves in small steps rather than one
    jump: the campaign's next sleep may not be registered yet when a test would jump."""
    deadline = time.monotonic() + POLL_LIMIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        if clock is not None:
            await clock.advance(step)
        await asyncio.sleep(0.005)


class Tenures:
    """What a campaign reported: the epochs acquired (with the real time) and the reasons lost
    (with the campaign clock's time)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.acquired: list[tuple[int, float]] = []
        self.lost: list[str] = []
        self.lost_at: list[float] = []

    def on_acquired(self, epoch: int) -> None:
        self.acquired.append((epoch, time.monotonic()))

    def on_lost(self, reason: str) -> None:
        self.lost.append(reason)
        self.lost_at.append(self.clock.monotonic())


@asynccontextmanager
async def campaigning(
    lease: Lease, *, renew_interval: float, clock: Clock
) -> AsyncIterator[tuple[LeaseCampaign, Tenures]]:
    """A campaign for `lease` running in a task, cancelled (a clean stop) on leaving."""
    tenures = Tenures(clock)
    campaign = LeaseCampaign(
        lease,
        renew_interval=renew_interval,
        clock=clock,
        on_acquired=tenures.on_acquired,
        on_lost=tenures.on_lost,
    )
    task = asyncio.create_task(campaign.run())
    try:
        yield campaign, tenures
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_of_two_candidates_exactly_one_holds(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    for _ in range(20):
        a = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
        b = Lease(client, KEYS, VENUE, "b", ttl=3.0, clock=clock)
        results = await asyncio.gather(a.acquire(), b.acquire())
        assert sorted(r is None for r in results) == [False, True]
        assert [a.valid(), b.valid()].count(True) == 1
        winner = a if a.valid() else b
        assert await client.get(KEYS.lease(VENUE)) == winner.token.encode()  # type: ignore[union-attr]
        await winner.release()
        assert not winner.valid() and await client.get(KEYS.lease(VENUE)) is None


async def test_every_acquisition_takes_the_next_epoch(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    a = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
    b = Lease(client, KEYS, VENUE, "b", ttl=3.0, clock=clock)
    assert await a.acquire() == 1 and a.token == "a 1"
    assert await b.acquire() is None  # held
    await a.release()
    assert await b.acquire() == 2 and b.token == "b 2"
    await b.release()
    assert await a.acquire() == 3
    assert await client.get(KEYS.epoch(VENUE)) == b"3"
    assert await client.ttl(KEYS.epoch(VENUE)) == -1  # the epoch never expires


async def test_validity_lapses_after_ttl_without_renewal_on_the_nodes_clock(
    client: redis.asyncio.Redis,
) -> None:
    clock = FakeClock()
    lease = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
    assert not lease.valid()
    assert await lease.acquire() == 1
    await clock.advance(2.6)  # ttl − margin = 2.7 s from the acquire's send time
    assert lease.valid() and lease.valid(1) and not lease.valid(0)
    await clock.advance(0.2)
    assert not lease.valid() and lease.remaining() == 0.0
    assert await client.exists(KEYS.lease(VENUE))  # Redis's copy (real time) outlives ours


async def test_a_renewal_extends_the_lease_past_its_ttl(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    lease = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
    await lease.acquire()
    for _ in range(5):  # 5 × 2 s = 10 s, more than three ttls, kept by renewals
        await clock.advance(2.0)
        # Redis's clock near the end of the ttl too (1 s left: a loaded box took longer than
        # 50 ms to send the renewal, and the key was gone).
        await client.pexpire(KEYS.lease(VENUE), 1_000)
        assert await lease.renew()
        assert lease.valid()
        assert await client.pttl(KEYS.lease(VENUE)) > 2_000  # PEXPIRE'd to the full ttl again
    await clock.advance(2.8)
    assert not lease.valid()


async def test_a_renewal_that_finds_another_holder_ends_the_tenure(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    lease = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
    await lease.acquire()
    await client.set(KEYS.lease(VENUE), "b 9")
    assert not await lease.renew()
    assert not lease.valid() and lease.holder_seen == "b 9"
    assert await client.get(KEYS.lease(VENUE)) == b"b 9"  # not ours to touch
    await lease.release()
    assert await client.get(KEYS.lease(VENUE)) == b"b 9"


async def test_a_silent_holder_loses_to_a_standby_within_ttl_plus_renew_interval(
    client: redis.asyncio.Redis,
) -> None:
    ttl, interval = 0.4, 0.1
    clock = SystemClock()  # the holder's silence is measured against Redis's real-time TTL
    old = Lease(client, KEYS, VENUE, "old", ttl=ttl, clock=clock)
    assert await old.acquire() == 1
    last_renewal = time.monotonic()  # the old holder stops renewing here
    standby = Lease(client, KEYS, VENUE, "standby", ttl=ttl, clock=clock)
    async with campaigning(standby, renew_interval=interval, clock=clock) as (_, tenures):
        await eventually(lambda: bool(tenures.acquired))
        epoch, at = tenures.acquired[0]
        assert epoch == 2
        # Redis expires the key at ttl; the standby's next try is at most one interval later
        # (plus scheduling slack on a shared machine).
        assert ttl <= at - last_renewal <= ttl + interval + 0.25
        assert not old.valid()  # the old holder knew on its own, before the standby held
        # Its writes are fenced: the lease names the standby's epoch now.
        append = fenced_script(client, APPEND)
        with pytest.raises(Fenced) as refused:
            await append(keys=[old.key, KEYS.events(VENUE, "t")], args=[old.token, b"late"])
        assert (refused.value.epoch, refused.value.holder) == (1, "standby 2")
        assert not await old.renew() and old.holder_seen == "standby 2"
    assert await client.get(KEYS.lease(VENUE)) is None  # the cancelled campaign released it


async def test_an_expired_holders_write_is_fenced_even_with_nobody_holding(
    client: redis.asyncio.Redis,
) -> None:
    lease = Lease(client, KEYS, VENUE, "a", ttl=0.2, clock=SystemClock())
    await lease.acquire()
    assert lease.token is not None
    append = fenced_script(client, APPEND)
    stream = KEYS.events(VENUE, "t")
    await append(keys=[lease.key, stream], args=[lease.token, b"in time"])
    for _ in range(500):  # Redis expires it on its real clock: a bounded poll, 5 s at most
        if not await client.exists(lease.key):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the lease did not expire in Redis")
    with pytest.raises(Fenced) as refused:
        await append(keys=[lease.key, stream], args=[lease.token, b"too late"])
    assert refused.value.holder is None and refused.value.epoch == 1
    assert await client.xlen(stream) == 1


async def test_the_campaign_renews_and_reports_a_fenced_write_once(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    lease = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
    async with campaigning(lease, renew_interval=1.0, clock=clock) as (campaign, tenures):
        await eventually(lambda: bool(tenures.acquired))
        start = clock.monotonic()
        await eventually(lambda: campaign.renewals == 6, clock=clock, step=STEP)
        assert clock.monotonic() - start >= 6.0  # one renewal a second at most: twice the ttl, held
        assert lease.remaining() > 2.0
        assert lease.valid() and campaign.holding and not tenures.lost
        error = Fenced.refused(VENUE, lease.epoch, "b 7")
        campaign.fenced(error)
        campaign.fenced(error)  # several writers refused at once: one loss
        await eventually(lambda: bool(tenures.lost))
        assert not lease.valid() and "refused" in tenures.lost[0]
        # It campaigns again (a renew interval later) and, nobody else holding, takes a new epoch.
        await eventually(lambda: len(tenures.acquired) == 2, clock=clock, step=0.5)
        assert [epoch for epoch, _ in tenures.acquired] == [1, 2] and len(tenures.lost) == 1


async def test_redis_killed_the_lease_lapses_then_the_campaign_resumes(
    client: redis.asyncio.Redis, redis_server: RedisServer
) -> None:
    clock = FakeClock()
    lease = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
    try:
        async with campaigning(lease, renew_interval=1.0, clock=clock) as (campaign, tenures):
            await run_through_a_redis_crash(lease, campaign, tenures, clock, redis_server)
    finally:
        redis_server.start()


async def run_through_a_redis_crash(
    lease: Lease, campaign: LeaseCampaign, tenures: Tenures, clock: FakeClock, redis_server: RedisServer
) -> None:
    await eventually(lambda: bool(tenures.acquired))
    acquired = clock.monotonic()  # the acquire's send time: fake time stands still during I/O
    redis_server.kill()
    await eventually(lambda: campaign.renew_failures == 1, clock=clock, step=STEP)
    assert lease.valid() and not tenures.lost  # a failed renewal: still valid until it lapses
    with pytest.raises(ClusterUnavailable):
        await lease.renew()  # and it extends nothing
    await eventually(lambda: campaign.renew_failures == 2, clock=clock, step=STEP)
    assert lease.valid() and not tenures.lost
    await eventually(lambda: bool(tenures.lost), clock=clock, step=STEP)
    assert not lease.valid() and "lapsed" in tenures.lost[0]
    # Lost once ttl − margin (2.7 s) had passed since the last successful send: not before, and
    # before Redis's own copy (3 s) could expire and another node take over.
    assert 2.7 <= tenures.lost_at[0] - acquired < 3.0
    # Redis still down: the campaign goes on trying, reporting nothing more.
    await eventually(lambda: campaign.acquire_failures == 3, clock=clock, step=STEP)
    assert len(tenures.lost) == 1 and len(tenures.acquired) == 1
    redis_server.start()
    left_ms = await lease.redis.pttl(KEYS.lease(VENUE))
    restarted = time.monotonic()
    assert left_ms > 0  # the AOF brought the old lease back, with real time left on it
    await eventually(lambda: len(tenures.acquired) == 2, clock=clock, step=1.0)
    epoch, at = tenures.acquired[1]
    assert epoch == 2  # the epoch survived the restart: the next one
    assert at - restarted < left_ms / 1000  # taken before it expired: it was this node's own, given up
    assert lease.valid() and await lease.redis.get(KEYS.lease(VENUE)) == b"a 2"


async def test_a_redis_error_reply_does_not_end_the_campaign(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    await client.hset(KEYS.lease(VENUE), "not", "a string")  # every GET of it: WRONGTYPE
    lease = Lease(client, KEYS, VENUE, "a", ttl=3.0, clock=clock)
    async with campaigning(lease, renew_interval=1.0, clock=clock) as (campaign, tenures):
        await eventually(lambda: campaign.acquire_failures == 3, clock=clock, step=STEP)
        assert not tenures.acquired and not campaign.holding
        await client.delete(KEYS.lease(VENUE))
        await eventually(lambda: bool(tenures.acquired), clock=clock, step=1.0)
        assert tenures.acquired[0][0] == 1


def test_a_renew_interval_that_cannot_keep_the_lease_is_refused(redis_url: str) -> None:
    lease = Lease(open_redis(redis_url), KEYS, VENUE, "a", ttl=3.0, clock=FakeClock())
    with pytest.raises(ValueError, match="renew_interval"):
        LeaseCampaign(lease, renew_interval=2.8, clock=FakeClock(), on_acquired=print, on_lost=print)
    with pytest.raises(ValueError, match="one word"):
        Lease(lease.redis, KEYS, VENUE, "two words", ttl=3.0, clock=FakeClock())


def test_a_node_id_of_two_words_is_refused_at_load(tmp_path: Path) -> None:
    config = tmp_path / "bb.toml"
    config.write_text('[cluster]\nredis_url = "redis://127.0.0.1:1/0"\nnode_id = "gw 1"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="one word"):
        load_config(config)
