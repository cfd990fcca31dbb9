"""The fence every holder write goes through, and the link's errors, against a real redis-server."""

from __future__ import annotations

import signal
import time

import pytest

from brokerbridge.core.errors import ClusterUnavailable, Fenced, error_from_wire, wire_error_of
from brokerbridge.core.secret import Secret
from brokerbridge.io.cluster.fencing import fenced_script, is_fenced, parse_token
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import COMMAND_TIMEOUT_S, open_redis, redis_errors, sync_redis
from tests.redis_server import RedisServer, free_port

KEYS = ClusterKeys()
LEASE = KEYS.lease("kraken")
STREAM = KEYS.events("kraken", "ticker:BTC/USD")
APPEND = "return redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])"


async def test_a_write_lands_only_while_the_lease_holds_the_writers_token(redis_url: str) -> None:
    redis = open_redis(redis_url)
    try:
        append = fenced_script(redis, APPEND)
        await redis.set(LEASE, "a 3")
        assert await append(keys=[LEASE, STREAM], args=["a 3", b"one"])
        await redis.set(LEASE, "b 4")  # another node took over
        with pytest.raises(Fenced) as refused:
            await append(keys=[LEASE, STREAM], args=["a 3", b"two"])
        assert (refused.value.venue, refused.value.epoch, refused.value.holder) == ("kraken", 3, "b 4")
        assert "epoch 3" in refused.value.message and "node b at epoch 4" in refused.value.message
        await redis.delete(LEASE)  # lapsed, nobody holding yet: still refused
        with pytest.raises(Fenced) as lapsed:
            await append(keys=[LEASE, STREAM], args=["a 3", b"three"])
        assert lapsed.value.holder is None and "nobody holds it now" in lapsed.value.message
        assert [fields[b"e"] for _, fields in await redis.xrange(STREAM)] == [b"one"]
    finally:
        await redis.aclose()


async def test_a_pipelined_refusal_is_read_as_fenced(redis_url: str) -> None:
    redis = open_redis(redis_url)
    try:
        append = fenced_script(redis, APPEND)
        await redis.set(LEASE, "b 4")
        async with redis.pipeline(transaction=False) as pipe:
            await append.script(keys=[LEASE, STREAM], args=["a 3", b"x"], client=pipe)
            results = await pipe.execute(raise_on_error=False)
        assert is_fenced(results[0])
    finally:
        await redis.aclose()


def test_the_blocking_client_is_fenced_the_same_way(redis_url: str) -> None:
    with sync_redis(redis_url) as redis:
        append = fenced_script(redis, APPEND)
        redis.set(LEASE, "a 5")
        assert append(keys=[LEASE, STREAM], args=["a 5", b"one"])
        with pytest.raises(Fenced):
            append(keys=[LEASE, STREAM], args=["a 4", b"old"])


def test_fenced_and_cluster_unavailable_cross_the_wire_as_themselves() -> None:
    fenced = Fenced.refused("primary", 2, "n1 3")
    assert wire_error_of(fenced).code == "fenced"  # type: ignore[union-attr]
    assert isinstance(error_from_wire("fenced", "m"), Fenced)
    assert wire_error_of(ClusterUnavailable("m")).code == "cluster_unavailable"  # type: ignore[union-attr]
    assert parse_token("host-12 7") == ("host-12", 7)
    with pytest.raises(ValueError):
        parse_token("no-epoch")


async def test_an_unreachable_redis_is_named_without_its_password() -> None:
    url = Secret(f"redis://:hunter2@127.0.0.1:{free_port()}/0")  # nothing listens there
    redis = open_redis(url)
    try:
        with pytest.raises(ClusterUnavailable) as down:
            with redis_errors(url):
                await redis.ping()
    finally:
        await redis.aclose()
    text = f"{down.value} {down.value!r}"
    assert "hunter2" not in text
    assert f"redis://127.0.0.1:{url.reveal().rsplit(':', 1)[1]}" in text
    assert "[cluster] redis_url" in down.value.remedy and down.value.retryable


async def test_a_stuck_redis_fails_a_command_within_its_timeout_and_never_resends_it(
    redis_url: str, redis_server: RedisServer
) -> None:
    client = open_redis(redis_url)
    try:
        await client.ping()  # connected
        assert redis_server.process is not None
        redis_server.process.send_signal(signal.SIGSTOP)  # answers nothing, refuses nothing
        try:
            started = time.monotonic()
            with pytest.raises(ClusterUnavailable), redis_errors(client):
                await client.incr("counter")
            took = time.monotonic() - started
        finally:
            redis_server.process.send_signal(signal.SIGCONT)
        assert COMMAND_TIMEOUT_S <= took < 2 * COMMAND_TIMEOUT_S  # one timeout, no retry after it
        assert await client.get("counter") == b"1"  # it had run: sent once, not twice
    finally:
        await client.aclose()


async def test_a_unix_socket_url_reaches_redis_with_both_clients(redis_server: RedisServer) -> None:
    """`unix:///path.sock` (what docs/configuration.md offers): TCP-only options left out."""
    url = f"unix://{redis_server.socket_path}"
    client = open_redis(url, name="unix-test")
    try:
        assert await client.ping()
    finally:
        await client.aclose()
    blocking = sync_redis(url)
    try:
        assert blocking.ping()
    finally:
        blocking.close()
