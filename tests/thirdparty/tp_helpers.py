"""Bounded waiting helpers shared by the third-party fidelity tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


# ---- small waiting helpers (real time, bounded) ----------------------------------------------
def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(
    pred: Callable[[], Any], limit_s: float, what: str, interval: float = 0.02
) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what}")
        await asyncio.sleep(interval)


async def bounded(aw: Awaitable[Any], limit_s: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(aw, limit_s)
    except TimeoutError as exc:
        raise AssertionError(f"timed out after {limit_s}s: {what}") from exc
