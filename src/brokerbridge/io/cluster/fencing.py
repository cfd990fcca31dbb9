"""Fenced writes: everything a venue's holder writes to Redis goes through a Lua script that first
checks the venue's lease still holds the writer's token, and otherwise refuses with `FENCED`.

A script body is appended to `FENCE_PRELUDE`; by the prelude's contract KEYS[1] is the venue's
lease key (`ClusterKeys.lease`) and ARGV[1] the writer's holder token `"<node_id> <epoch>"`
(`Lease.token`), so the body's own keys start at KEYS[2] and its arguments at ARGV[2]:

    append = fenced_script(redis, "return redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])")
    await append(keys=[keys.lease(venue), keys.events(venue, topic)], args=[lease.token, data])
    # → Fenced("kraken: a write of lease epoch 3 was refused: … node b at epoch 4 holds it now")

The check and the write run as one script, so nothing lands between them: a holder whose epoch is
old, or whose lease lapsed even with nobody holding yet, writes nothing. Every key a script touches
shares the venue's hash tag, so it is valid on a Redis Cluster too.

A script run inside a pipeline (`script(keys, args, client=pipe)`) comes back as a result, not
raised: `fenced_error(result, keys, args)` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

import redis
import redis.asyncio
from redis.commands.core import AsyncScript, Script

from brokerbridge.core.errors import Fenced

__all__ = [
    "FENCE_PRELUDE",
    "Fenced",
    "FencedScript",
    "SyncFencedScript",
    "fenced_error",
    "fenced_script",
    "is_fenced",
    "parse_token",
]

FENCE_MARK = "FENCED"
# GET returns false in Lua for a missing key: the refusal then names no holder ("FENCED ").
FENCE_PRELUDE = f"""
local bb_fence_holder = redis.call('GET', KEYS[1])
if bb_fence_holder ~= ARGV[1] then
  return redis.error_reply('{FENCE_MARK} ' .. (bb_fence_holder or ''))
end
"""


def parse_token(token: str | bytes) -> tuple[str, int]:
    """`(node_id, epoch)` of a holder token `"<node_id> <epoch>"`."""
    text = token.decode() if isinstance(token, bytes) else token
    node, _, epoch = text.rpartition(" ")
    if not node or not epoch.isdigit():
        raise ValueError(f"not a holder token ('<node_id> <epoch>'): {text!r}")
    return node, int(epoch)


def _venue_of(lease_key: str | bytes) -> str:
    """The venue of a lease key, from its hash tag (`bb:{kraken}:lease` → `kraken`)."""
    text = lease_key.decode() if isinstance(lease_key, bytes) else lease_key
    start, end = text.find("{"), text.find("}")
    return text[start + 1 : end] if 0 <= start < end else text


def is_fenced(error: BaseException) -> bool:
    """A refusal by the fence: our `Fenced`, or the script's raw error reply (from a pipeline)."""
    if isinstance(error, Fenced):
        return True
    return isinstance(error, redis.exceptions.ResponseError) and str(error).startswith(FENCE_MARK)


def fenced_error(result: object, keys: Sequence[Any], args: Sequence[Any]) -> Fenced | None:
    """`Fenced` when `result` (a script's outcome: raised, or a pipeline's result) is the fence's
    refusal of the write with `keys` and `args` (the lease key and the token first); else None."""
    if not isinstance(result, BaseException) or not is_fenced(result):
        return None
    if isinstance(result, Fenced):
        return result
    holder = str(result)[len(FENCE_MARK) :].strip() or None
    token = args[0] if args else ""
    try:
        _, epoch = parse_token(token)
    except ValueError:
        epoch_known: int | None = None
    else:
        epoch_known = epoch
    return Fenced.refused(_venue_of(keys[0] if keys else ""), epoch_known, holder)


class FencedScript:
    """A fenced Lua script on an asyncio client: call it with the lease key and the token first."""

    def __init__(self, client: redis.asyncio.Redis, body: str) -> None:
        self.script: AsyncScript = client.register_script(FENCE_PRELUDE + body)

    async def __call__(
        self, keys: Sequence[Any], args: Sequence[Any], client: redis.asyncio.Redis | None = None
    ) -> Any:
        try:
            return await self.script(keys=keys, args=args, client=client)
        except redis.exceptions.ResponseError as error:
            fenced = fenced_error(error, keys, args)
            if fenced is None:
                raise
            raise fenced from error


class SyncFencedScript:
    """The same on a blocking client (the executions journal)."""

    def __init__(self, client: redis.Redis, body: str) -> None:
        self.script: Script = client.register_script(FENCE_PRELUDE + body)

    def __call__(self, keys: Sequence[Any], args: Sequence[Any], client: redis.Redis | None = None) -> Any:
        try:
            return self.script(keys=keys, args=args, client=client)
        except redis.exceptions.ResponseError as error:
            fenced = fenced_error(error, keys, args)
            if fenced is None:
                raise
            raise fenced from error


@overload
def fenced_script(client: redis.asyncio.Redis, body: str) -> FencedScript: ...


@overload
def fenced_script(client: redis.Redis, body: str) -> SyncFencedScript: ...


def fenced_script(client: redis.asyncio.Redis | redis.Redis, body: str) -> FencedScript | SyncFencedScript:
    """`body` behind the fence, registered on `client` (EVALSHA, loaded again after a Redis
    restart); awaitable on an asyncio client, blocking on a blocking one."""
    if isinstance(client, redis.asyncio.Redis):
        return FencedScript(client, body)
    return SyncFencedScript(client, body)
