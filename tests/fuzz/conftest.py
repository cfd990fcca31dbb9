"""The well-behaved client every server fuzz test watches (over the module's own `server`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.server_rig import TICKER, LiveServer, Watcher


@pytest.fixture(scope="module")
def watcher(server: LiveServer) -> Iterator[Watcher]:
    with Watcher(server, TICKER) as watching:
        watching.wait_for_events(2)
        yield watching
