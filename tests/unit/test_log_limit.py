"""`clip` and `LogLimiter`: log lines others can make us write stay bounded and few."""

from __future__ import annotations

import logging

import pytest

from brokerbridge.core.log_limit import LogLimiter, clip


def test_clip_quotes_escapes_and_bounds() -> None:
    assert clip("BTC/USD") == "'BTC/USD'"
    assert clip("a\nb\x1b[31m") == "'a\\nb\\x1b[31m'"  # one line, no terminal escapes
    long = clip("S" * 900_000)
    assert len(long) < 200 and long.endswith("(+899880 characters)")


def test_a_flood_of_one_key_is_a_few_lines_and_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limiter = LogLimiter(logging.getLogger("test.limit"), lambda: now[0], burst=3, window=60.0)
    caplog.set_level(logging.WARNING, "test.limit")
    written = [limiter.log(logging.WARNING, "refused", "refused %s", n) for n in range(1000)]
    assert written.count(True) == 3 and len(caplog.records) == 3
    assert "counted, not logged" in caplog.records[-1].getMessage()
    limiter.log(logging.WARNING, "other", "another key")  # keys are limited apart
    now[0] = 61.0
    assert limiter.log(logging.WARNING, "refused", "refused %s", "again")
    assert "997 more like this" in caplog.records[-1].getMessage()
    assert len(caplog.records) == 5


def test_distinct_keys_cost_bounded_memory() -> None:
    limiter = LogLimiter(logging.getLogger("test.limit.keys"), lambda: 0.0, max_keys=10)
    for n in range(10_000):
        limiter.log(logging.CRITICAL + 10, n, "never enabled")  # disabled level: nothing kept
        limiter.log(logging.WARNING, n, "address %s", n)
    assert len(limiter._windows) == 10
