"""A venue's session lease in Redis, with its fencing epoch, and the campaign that holds it.

    lease = Lease(redis, keys, "kraken", node_id, ttl=3.0, clock=clock)
    campaign = LeaseCampaign(lease, renew_interval=1.0, clock=clock,
                             on_acquired=start_holding, on_lost=stop_holding)
    await campaign.run()      # acquires when free, renews while held, reports the loss, campaigns again

Redis holds `bb:{v}:lease` = `"<node_id> <epoch>"` with a PX time to live, and `bb:{v}:epoch`, a
counter incremented by every acquisition (never expiring): acquiring is one Lua script (no lease →
INCR the epoch, SET NX PX the token), renewing and releasing compare the token and act in one.

The node does not trust Redis's clock nor wait to be told: the lease is valid *locally* until the
send time of its last successful acquire or renew + ttl − a margin, on the node's monotonic clock.
Redis started its TTL after that send, so Redis's copy lapses later than ours: a holder that was
stopped (SIGSTOP), cut off from Redis or starved stops acting before anyone else can hold. A renew
that fails (Redis unreachable) extends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import redis.asyncio
import redis.exceptions

from brokerbridge.core.clock import Clock, sleep_unless, within
from brokerbridge.core.errors import ClusterUnavailable, Fenced
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import redis_errors

log = logging.getLogger(__name__)

# Of the ttl, the share kept back from local validity: it covers the node's clock running slower
# than Redis's (rates differ by far less than 1 %) and an action checked valid just before the
# deadline still reaching the venue. 10 % of 3 s = 0.3 s.
MARGIN_SHARE = 0.1

# KEYS: lease, epoch. ARGV: node id, ttl ms, this node's own dead token ('' when none): a lease
# still holding the token of a tenure this node already gave up (its release failed, Redis being
# down) is free, not worth waiting out its TTL for.
ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[3] then
  return false
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. epoch, 'PX', ARGV[2])
return epoch
"""
# KEYS: lease. ARGV: token, ttl ms. 1 when renewed; else who holds it now ('' nobody).
RENEW = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return current or ''
"""
# KEYS: lease. ARGV: token. 1 when deleted (it was ours), 0 otherwise.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """One node's claim on one venue's session. `epoch` and `token` are those of the last
    acquisition (None before the first); `valid()` says whether it may act on them now."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        venue: str,
        node_id: str,
        *,
        ttl: float,
        clock: Clock,
        margin: float | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"lease ttl must be positive, not {ttl}")
        if " " in node_id or not node_id:
            raise ValueError(f"a node id is one word (it is half of the token '<node> <epoch>'): {node_id!r}")
        self.redis = redis
        self.keys = keys
        self.venue = venue
        self.node_id = node_id
        self.ttl = ttl
        self.margin = ttl * MARGIN_SHARE if margin is None else margin
        self.clock = clock
        self.epoch: int | None = None
        self.token: str | None = None
        self.holder_seen: str | None = None  # who held it at our last failed acquire or renew
        self._valid_until = -math.inf
        self._dead_token = ""  # a tenure given up locally whose key may still be in Redis
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)

    @property
    def key(self) -> str:
        return self.keys.lease(self.venue)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    def valid(self, epoch: int | None = None) -> bool:
        """Whether this node may act for the venue now (and, given `epoch`, for that tenure: work
        started under an earlier epoch stays refused after a new acquisition)."""
        if epoch is not None and epoch != self.epoch:
            return False
        return self.token is not None and self.clock.monotonic() < self._valid_until

    def remaining(self) -> float:
        """Seconds of local validity left (0 when not valid)."""
        return max(0.0, self._valid_until - self.clock.monotonic()) if self.token is not None else 0.0

    async def acquire(self) -> int | None:
        """Take the lease if nobody holds it: the new epoch, or None (held by another node).
        Raises `ClusterUnavailable` when Redis does not answer."""
        sent = self.clock.monotonic()
        with redis_errors(self.redis):
            epoch = await self._acquire(
                keys=[self.key, self.keys.epoch(self.venue)],
                args=[self.node_id, self._ttl_ms, self._dead_token],
            )
        if epoch is None:
            return None
        self.epoch = int(epoch)
        self.token = f"{self.node_id} {self.epoch}"
        self._dead_token = ""
        self._valid_until = sent + self.ttl - self.margin
        return self.epoch

    async def renew(self) -> bool:
        """Extend the lease: True when it was still ours (valid again for ttl − margin from this
        call's send time), False when it is gone or another node's (`holder_seen` says whose; the
        lease is then invalid at once). Raises `ClusterUnavailable` when Redis does not answer —
        the validity is not extended, and lapses on its own."""
        if self.token is None:
            return False
        token = self.token
        sent = self.clock.monotonic()
        with redis_errors(self.redis):
            answer = await self._renew(keys=[self.key], args=[token, self._ttl_ms])
        if self.token != token:  # dropped or re-acquired meanwhile: this answer is of no tenure
            return False
        if answer == 1:
            self._valid_until = sent + self.ttl - self.margin
            return True
        self.holder_seen = answer.decode() if isinstance(answer, bytes) and answer else None
        self.drop()
        return False

    def drop(self) -> None:
        """Stop acting on the current tenure now (the lease was found gone, a fenced write was
        refused, or it lapsed). Its key, if Redis still has it, no longer stops this node's next
        acquisition."""
        if self.token is not None:
            self._dead_token = self.token
        self._valid_until = -math.inf

    async def release(self) -> None:
        """Give the lease up on a clean stop, so a standby need not wait out its TTL: deleted only
        if it is still ours. Invalid locally first, whatever Redis answers."""
        self.drop()
        token = self._dead_token
        if not token:
            return
        with redis_errors(self.redis):
            await self._release(keys=[self.key], args=[token])
        self._dead_token = ""


# What a campaign rides out: Redis unreachable, or answering with an error (out of memory, a
# replica that became read-only, still loading its AOF…). Either way no renewal got through: the
# lease lapses on its own unless a later one does.
REDIS_FAILED = (ClusterUnavailable, redis.exceptions.RedisError)

OnAcquired = Callable[[int], None]
OnLost = Callable[[str], None]


class LeaseCampaign:
    """Holds `lease` whenever it can: tries to acquire it every `renew_interval` while another node
    holds it (or Redis is unreachable), renews it every `renew_interval` while held, and reports
    the tenure's start and end.

    `on_acquired(epoch)` and `on_lost(reason)` are called in the campaign's task and must return at
    once (start or cancel the holder's work in tasks of their own): a slow callback would delay the
    next renewal. `on_lost` is called once per tenure, when a renewal finds the lease gone or
    another node's, when the local validity lapses (renewals failing: Redis unreachable, the
    process stopped), or on `fenced()` (a write of this epoch refused). Cancelling `run()` (a clean
    stop) releases the lease without calling it."""

    def __init__(
        self,
        lease: Lease,
        *,
        renew_interval: float,
        clock: Clock,
        on_acquired: OnAcquired,
        on_lost: OnLost,
    ) -> None:
        if not 0 < renew_interval < lease.ttl - lease.margin:
            raise ValueError(
                f"renew_interval ({renew_interval} s) must be positive and shorter than the lease's "
                f"ttl less its margin ({lease.ttl - lease.margin:.3g} s): it would lapse between renewals"
            )
        self.lease = lease
        self.renew_interval = renew_interval
        self.clock = clock
        self.on_acquired = on_acquired
        self.on_lost = on_lost
        self.holding = False
        self.acquisitions = 0
        self.losses = 0
        self.renewals = 0  # renewals that extended the lease
        self.acquire_failures = 0  # acquisitions Redis did not answer, or answered with an error
        self.renew_failures = 0  # renewals Redis did not answer (the lease then lapses on its own)
        self._wake = asyncio.Event()
        self._lost_reason: str | None = None
        self._redis_down = False

    def fenced(self, error: Fenced) -> None:
        """A write of this node's epoch was refused (`Fenced`): the tenure ends now, whatever the
        local validity says. Safe to call from any writer, any number of times."""
        if self.holding and (error.epoch is None or error.epoch == self.lease.epoch):
            self.lease.drop()
            self._lost_reason = f"a write was refused: {error.message}"
            self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                if self.holding:
                    await self._hold_turn()
                else:
                    await self._campaign_turn()
        finally:
            if self.holding:
                self.holding = False
                await self._release_quietly()

    async def _campaign_turn(self) -> None:
        try:
            epoch = await self.lease.acquire()
        except REDIS_FAILED as error:
            self.acquire_failures += 1
            self._note_down(error)
            epoch = None
        else:
            self._note_up()
        if epoch is not None:
            self.holding = True
            self.acquisitions += 1
            log.info("%s: this node holds the venue now (epoch %d)", self.lease.venue, epoch)
            self.on_acquired(epoch)
            return
        await self.clock.sleep(self.renew_interval)

    async def _hold_turn(self) -> None:
        lease = self.lease
        # Wake for the next renewal, or when the validity would lapse first (renewals failing).
        await sleep_unless(self.clock, min(self.renew_interval, lease.remaining()), self._wake)
        self._wake.clear()
        if self._lost_reason is None and not lease.valid():
            self._lost_reason = (
                f"the lease lapsed: no renewal succeeded within {lease.ttl - lease.margin:.3g} s"
            )
        if self._lost_reason is None:
            try:
                # A renewal stuck past the validity is as good as failed: do not wait it out.
                renewed = await within(self.clock, lease.remaining(), lease.renew())
            except REDIS_FAILED as error:
                self.renew_failures += 1
                self._note_down(error)
                return  # not extended: it lapses unless a later renewal gets through
            except TimeoutError:
                self.renew_failures += 1
                return  # the next turn finds it lapsed
            self._note_up()
            if renewed:
                self.renewals += 1
            elif self._lost_reason is None:
                holder = lease.holder_seen
                self._lost_reason = (
                    f"the lease is held by node {holder} now" if holder else "the lease expired in Redis"
                )
        if self._lost_reason is not None:
            await self._lose(self._lost_reason)

    async def _lose(self, reason: str) -> None:
        self._lost_reason = None
        self.holding = False
        self.losses += 1
        log.warning("%s: this node lost the venue (epoch %s): %s", self.lease.venue, self.lease.epoch, reason)
        self.on_lost(reason)
        await self._release_quietly()  # a lapsed lease still in Redis: free it for the next holder
        await self.clock.sleep(self.renew_interval)  # let the tenure's work stop before the next

    async def _release_quietly(self) -> None:
        try:
            await asyncio.shield(self.lease.release())
        except REDIS_FAILED:
            pass  # its TTL ends it, or this node's next acquisition treats it as free

    def _note_down(self, error: Exception) -> None:
        if not self._redis_down:
            self._redis_down = True
            log.warning("%s: lease campaign: %s", self.lease.venue, error)

    def _note_up(self) -> None:
        if self._redis_down:
            self._redis_down = False
            log.info("%s: lease campaign: Redis answers again", self.lease.venue)
