"""`keep_fresh`: load something now and again every so often, for as long as the caller's task runs.

The connectors keep their venue's list of symbols this way (Kraken's AssetPairs, Primary's daily
catalogue): a failure is retried with the venue's backoff, said once at WARNING (what is missing and
what that means meanwhile), and a bug in loading is logged with its traceback and retried too —
never ending the connector's task group.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import BrokerBridgeError

logger = logging.getLogger(__name__)


async def keep_fresh(
    load: Callable[[], Awaitable[object]],
    *,
    clock: Clock,
    backoff: BackoffPolicy,
    every: float,
    what: str,
    meanwhile: str,
) -> None:
    """Await `load()` now and `every` seconds after each success, until cancelled."""
    delays = backoff.delays()
    warned = False
    while True:
        try:
            await load()
        except BrokerBridgeError as exc:
            if not warned:
                warned = True
                logger.warning(
                    "cannot load %s (%s); %s (retrying with backoff)", what, exc.message, meanwhile
                )
            await clock.sleep(next(delays))
            continue
        except Exception:  # a bug here must not take the connector down with it
            logger.exception("loading %s failed (a bug; retrying)", what)
            await clock.sleep(next(delays))
            continue
        delays, warned = backoff.delays(), False
        await clock.sleep(every)
