"""`brokerbridge status` of a cluster, as a user runs it, against a real redis-server holding a node's
heartbeat and a venue's lease: read from Redis directly, no `serve` running."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import redis
from typer.testing import CliRunner

from brokerbridge.cli.main import app
from brokerbridge.cli.status import NOT_RUNNING
from brokerbridge.core.clock import FakeClock
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.lease import Lease
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.nodes import NodeHeartbeat
from tests.redis_server import free_port

KEYS = ClusterKeys()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def config_file(tmp_path: Path, redis_url: str | None = None) -> Path:
    """A config with its own state dir (no `serve` discovered) and, given, the cluster's Redis."""
    path = tmp_path / "bb.toml"
    text = f'[server]\nstate_dir = "{tmp_path / "state"}"\n'
    if redis_url is not None:
        text += f'[cluster]\nredis_url = "{redis_url}"\n'
    path.write_text(text, encoding="utf-8")
    return path


async def a_holder(redis_url: str) -> None:
    """Node n1 holding kraken at epoch 2 (n0 held epoch 1), beating; the ticker stream 3 entries
    long, n1's reader one entry behind."""
    client = open_redis(redis_url)
    try:
        clock = FakeClock()
        old = Lease(client, KEYS, "kraken", "n0", ttl=30.0, clock=clock)
        await old.acquire()
        await old.release()
        lease = Lease(client, KEYS, "kraken", "n1", ttl=30.0, clock=clock)
        assert await lease.acquire() == 2
        stream = KEYS.events("kraken", "ticker:BTC/USD")
        ids = [(await client.xadd(stream, {"e": b"{}"})).decode() for _ in range(3)]
        beat = NodeHeartbeat(
            client,
            KEYS,
            "n1",
            role="holder",
            url="http://10.0.0.1:8000",
            ttl=30.0,
            holds=lambda: {"kraken": 2},
            reads=lambda: {stream: ids[1]},
            clock=clock,
        )
        await beat.beat()
    finally:
        await client.aclose()


async def test_status_shows_the_cluster_from_redis(redis_url: str, tmp_path: Path) -> None:
    await a_holder(redis_url)
    code, out, err = await asyncio.to_thread(
        run, "status", "--json", "--cluster", redis_url, "--config", str(config_file(tmp_path))
    )
    assert code == 0, err
    view = json.loads(out)
    assert view["redis"] == redis_url
    (node,) = view["nodes"]
    assert (node["id"], node["role"], node["alive"], node["holds"]) == ("n1", "holder", True, {"kraken": 2})
    leases = {lease["venue"]: lease for lease in view["leases"]}
    assert (leases["kraken"]["holder"], leases["kraken"]["epoch"], leases["kraken"]["last_epoch"]) == (
        "n1",
        2,
        2,
    )
    assert leases["primary"]["holder"] is None
    (stream,) = view["streams"]
    assert (stream["topic"], stream["length"]) == ("ticker:BTC/USD", 3)
    assert [(lag["node"], lag["entries"]) for lag in stream["lags"]] == [("n1", 1)]

    # The table, from [cluster] redis_url in the config this time.
    code, out, err = await asyncio.to_thread(run, "status", "--config", str(config_file(tmp_path, redis_url)))
    assert code == 0, err
    assert "brokerbridge cluster on " + redis_url in out
    assert "kraken (epoch 2)" in out and "ticker:BTC/USD" in out and "nobody holds it" in out


async def test_without_a_cluster_status_still_looks_for_a_serve(tmp_path: Path) -> None:
    code, _, err = await asyncio.to_thread(run, "status", "--config", str(config_file(tmp_path)))
    assert code == NOT_RUNNING and "no brokerbridge serve is running" in err


async def test_an_unreachable_redis_exits_3_without_its_password(tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    code, out, err = await asyncio.to_thread(
        run, "status", "--cluster", url, "--config", str(config_file(tmp_path))
    )
    assert code == NOT_RUNNING
    assert "unreachable" in err and "hunter2" not in out + err
    code, _, err = await asyncio.to_thread(
        run, "status", "--cluster", "http://:hunter2@x/", "--config", str(config_file(tmp_path))
    )
    assert code == 2 and "not a Redis URL" in err and "hunter2" not in err


def test_the_status_read_leaves_a_live_redis_as_it_was(redis_url: str, tmp_path: Path) -> None:
    with redis.Redis.from_url(redis_url) as r:
        r.sadd(KEYS.nodes(), "gone")  # a node whose heartbeat expired
    code, out, _ = run("status", "--json", "--cluster", redis_url, "--config", str(config_file(tmp_path)))
    assert code == 0 and [n["alive"] for n in json.loads(out)["nodes"]] == [False]
    with redis.Redis.from_url(redis_url) as r:
        assert r.smembers(KEYS.nodes()) == set()  # pruned, and nothing else written
        assert r.dbsize() == 0
