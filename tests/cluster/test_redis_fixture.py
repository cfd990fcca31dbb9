"""The test fixture itself: Debian's redis-server, with the AOF on (what the journal's promise needs)."""

from __future__ import annotations

import redis


def test_redis_server_is_real(redis_url: str) -> None:
    """It is Debian's redis-server, with the AOF on (what the journal's promise needs)."""
    with redis.Redis.from_url(redis_url) as r:
        assert r.ping()
        info = r.info("persistence")
        assert info["aof_enabled"] == 1
        assert r.config_get("appendfsync")["appendfsync"] == "always"
        assert r.info("server")["redis_version"].startswith(("7.", "8."))
