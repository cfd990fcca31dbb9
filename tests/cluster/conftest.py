"""Each test module of tests/cluster gets its own real redis-server (tests/redis_server.py), each
test an empty database of it: `redis_url`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.redis_server import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    redis_server.start()  # a test before may have killed it
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushall()
    yield redis_server.url
