"""The link to the cluster's Redis: clients opened one way, and Redis's errors mapped once to ours.

    redis = open_redis(config.cluster.redis_url)      # redis.asyncio.Redis, bytes in and out
    async with redis_errors(url):                     # ConnectionError/TimeoutError/OSError
        await redis.ping()                            #   → ClusterUnavailable naming the Redis

Timeouts are sized for the venue lease (3 s, renewed every second): a command that has not
answered within `COMMAND_TIMEOUT_S` fails, so a renewal stuck on a dead Redis gives way to the next
one long before the lease lapses; the lease's local validity (from the send time of the last
successful renewal) is what keeps a holder safe meanwhile, not these timeouts. A blocking read
(`XREAD BLOCK ms`) needs a longer `timeout` than its block time: pass it.

Cancellation. On Python 3.11, `asyncio.wait_for` returns the awaited result and drops the cancel
when the cancel arrives in the loop turn the awaited work finishes (CPython gh-86296; 3.12
rebuilt `wait_for` on `asyncio.timeout` and raises it). redis-py 8.2's asyncio connection sends
every command inside `wait_for(…, socket_timeout)` (`Connection.send_packed_command`), so a task
cancelled as its command's bytes go out goes on as if nothing happened: the command answers, the
cancel is counted (`Task.cancelling()`) but never raised, and a loop of commands — an `XREAD
BLOCK` reader, a renewal loop — runs for ever. Seen: 4 lost cancels in 36–161 cancels at random
moments of an XREAD BLOCK 100 loop on loopback. The clients made here (`open_redis`) check after
every command and pipeline: a cancel asked for while it ran and not raised is raised then
(`_raise_swallowed_cancel`), so cancelling a task that talks to Redis always ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.client
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from brokerbridge.core.errors import ClusterUnavailable
from brokerbridge.core.secret import Secret
from brokerbridge.io.cluster.keys import describe_url

CONNECT_TIMEOUT_S = 1.0  # a TCP connect on a LAN takes milliseconds; a second means it is not there
COMMAND_TIMEOUT_S = 1.0  # one renewal interval: the next renewal must not queue behind a stuck one
# A pooled connection is PINGed before use once idle this long: a Redis that restarted meanwhile is
# found before a command is sent on the dead socket (an integer: redis-py's type).
HEALTH_CHECK_S = 2
# One quick retry of a command whose connection broke (a Redis restart leaves every pooled socket
# dead): more would keep a lease renewal in flight past its interval. redis-py's default is ten
# retries with backoff up to 1 s each — a minute of a holder not knowing Redis is gone. Never a
# retry after a timeout (redis-py retries those too by default): the command may have run, and an
# XADD or an INCR must not run twice; nor is one more second of waiting on a stuck Redis useful.
RETRIES = 1
RETRY_ON = (redis.exceptions.ConnectionError,)

# What "Redis did not answer" is, in redis-py and below it (a refused connect can surface raw).
UNREACHABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    OSError,
    TimeoutError,
)


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=0.01, cap=0.1)  # one per client: backoffs may keep state


def _reveal(url: Secret | str) -> str:
    return url.reveal() if isinstance(url, Secret) else url


def _options(url: str, timeout: float, connect_timeout: float, name: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": connect_timeout,
        "health_check_interval": HEALTH_CHECK_S,
        "decode_responses": False,  # stream entries and journal rows are msgspec JSON bytes
        "client_name": name,
    }
    if not url.startswith("unix:"):  # TCP keepalive; redis-py's Unix-socket connection refuses it
        options["socket_keepalive"] = True
    return options


class _Pipeline(redis.asyncio.client.Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        answers: list[Any] = await _raise_swallowed_cancel(super().execute(raise_on_error))
        return answers


class _Redis(redis.asyncio.Redis):
    """redis-py's asyncio client, with a cancel its send dropped raised again (module doc)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        command = super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        return await _raise_swallowed_cancel(command)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> _Pipeline:
        return _Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


_T = TypeVar("_T")


async def _raise_swallowed_cancel(command: Awaitable[_T]) -> _T:
    """Await `command`; raise `CancelledError` if the task was cancelled meanwhile and the cancel
    was dropped on the way (Python 3.11's `wait_for` in redis-py's send: module doc). A cancel
    that was raised and handled inside (`asyncio.timeout` turning its own into TimeoutError)
    is taken back with `uncancel()` and leaves the count as it was."""
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    result = await command
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
    return result


def open_redis(
    url: Secret | str,
    *,
    timeout: float = COMMAND_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    retries: int = RETRIES,
    name: str | None = None,
) -> redis.asyncio.Redis:
    """An asyncio client of the Redis at `url` (`redis://[:password@]host:port/db`, `rediss://`,
    `unix://`); nothing is connected until the first command. `name`: the CLIENT SETNAME shown by
    `CLIENT LIST` (the node id, so an operator sees which node holds which connection)."""
    text = _reveal(url)
    return _Redis.from_url(
        text,
        retry=AsyncRetry(_backoff(), retries, supported_errors=RETRY_ON),
        **_options(text, timeout, connect_timeout, name),
    )


def sync_redis(
    url: Secret | str,
    *,
    timeout: float = COMMAND_TIMEOUT_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    retries: int = RETRIES,
    name: str | None = None,
) -> redis.Redis:
    """The same as `open_redis`, blocking: for the executions journal, whose store interface is
    synchronous (io/journal_store.py `JournalStore`)."""
    text = _reveal(url)
    return redis.Redis.from_url(
        text,
        retry=Retry(_backoff(), retries, supported_errors=RETRY_ON),
        **_options(text, timeout, connect_timeout, name),
    )


RedisTarget = Secret | str | redis.asyncio.Redis | redis.Redis


def describe_redis(target: RedisTarget) -> str:
    """A Redis URL, or the Redis a client talks to, as logs and errors may show it: never the
    password (`describe_url`)."""
    if isinstance(target, Secret | str):
        return describe_url(_reveal(target))
    pool = target.connection_pool
    kwargs = pool.connection_kwargs
    db = kwargs.get("db", 0)
    if "path" in kwargs:
        return f"unix://{kwargs['path']}" + (f"?db={db}" if db else "")
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    return f"{scheme}://{kwargs.get('host', '?')}:{kwargs.get('port', 6379)}/{db}"


def cluster_unavailable(target: RedisTarget, error: BaseException) -> ClusterUnavailable:
    """Our error for Redis at `target` (its URL, or a client of it) not answering, naming it
    without its password. Redis's own message is left out: an error's class says all a reader
    needs (refused, timed out, reset), and no library text can leak a secret into ours."""
    where = describe_redis(target)
    return ClusterUnavailable(f"the cluster's Redis at {where} is unreachable ({type(error).__name__})")


def is_unreachable(error: BaseException) -> bool:
    """Redis did not answer (as against answering with an error: a script's refusal, a wrong
    type), whichever layer raised it."""
    return isinstance(error, (ClusterUnavailable, *UNREACHABLE))


@contextmanager
def redis_errors(target: RedisTarget) -> Iterator[None]:
    """Map Redis not answering to `ClusterUnavailable` (raised from the original), once, at the
    I/O edge; Redis's error replies (`ResponseError`: a fenced script among them) pass unchanged."""
    try:
        yield
    except UNREACHABLE as error:
        raise cluster_unavailable(target, error) from error
