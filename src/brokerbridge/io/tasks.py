"""`spawn`: background work of a connector, owned by the task group of its `run()`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


def spawn(
    group: asyncio.TaskGroup | None, coro: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None] | None:
    """Run `coro` as task `name` of `group` (the connector's running task group) and return it.

    With no group (the connector is not running, or no longer) `coro` is closed unstarted and None
    returned: work asked for before `run()` is started by `run()` itself (e.g. the symbol list, for
    subscriptions added before it), work asked for after it has nobody left to serve. Neither is a
    fault, so it is logged at DEBUG only."""
    if group is None:
        coro.close()
        logger.debug("%s skipped: the connector is not running", name)
        return None
    return group.create_task(coro, name=name)
