"""schemathesis against the running server's own OpenAPI document (`/openapi.json`).

Every operation is called with generated valid and invalid parameters, with and without an API key:
never a 5xx, and every answer (status, content type, headers, body) is what the document declares.
Afterwards the server still answers and a well-behaved client's stream still flows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import schemathesis

# schemathesis imports its OpenAPI loader lazily, inside `from_url` — i.e. while the live server's
# thread runs — and pytest rewrites the plugin's modules with `ast.parse` as they are imported.
# CPython 3.11's AST-to-object conversion tracks its recursion depth in shared state, so two threads
# parsing at once can fail with "AST constructor recursion depth mismatch" (a clean-clone run met
# it). Imported here, before any thread starts, the parse happens alone.
import schemathesis.specs.openapi.schemas
from hypothesis import given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from brokerbridge.server.ws import WsSettings
from tests.fuzz.mutations import EXAMPLES, fuzz_settings
from tests.fuzz.server_rig import LiveServer, Watcher, client, live_server, receive
from tests.server.conftest import ACCOUNT_KEY, MARKET_KEY

pytestmark = pytest.mark.timeout(900)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Every case is also called with a wrong key: no lockout here, so the right keys stay served.
    ws = WsSettings(heartbeat_interval=0.2)
    with live_server(tmp_path_factory.mktemp("fuzz-rest"), ws, auth_failure_burst=1_000_000) as live:
        yield live


@pytest.fixture(scope="module")
def api(server: LiveServer, watcher: Watcher) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.http_url}/openapi.json")


def test_the_document_describes_the_api(api: schemathesis.BaseSchema) -> None:
    paths = {operation.ok().path for operation in api.get_all_operations()}
    assert {"/api/venues", "/api/health", "/api/instruments"} <= paths, paths


def test_every_operation_conforms_and_never_fails_with_5xx(api: schemathesis.BaseSchema) -> None:
    # schemathesis' own pytest loader does not run under this pytest; drive hypothesis directly,
    # every operation to the end, so one run lists every non-conforming operation.
    failures: dict[str, str] = {}
    for result in api.get_all_operations():
        operation = result.ok()

        @settings(fuzz_settings, max_examples=max(10, EXAMPLES // 5))
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            # Anonymous, market scope, account scope, a key the server does not know.
            for key in (None, MARKET_KEY, ACCOUNT_KEY, "not-a-configured-key-000"):
                headers = {"Authorization": f"Bearer {key}"} if key else {}
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=20)

        try:
            call()
        except (AssertionError, FailureGroup) as exc:  # shrunk by hypothesis
            failures[operation.label] = str(exc)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_server_still_serves_after_the_api_fuzzing(server: LiveServer, watcher: Watcher) -> None:
    start = time.monotonic()
    with client(server) as ws:
        ws.send(json.dumps({"op": "ping", "id": "after"}))
        answer = receive(ws)
        while answer["type"] == "heartbeat":  # the server's own, due while the fuzzing ran
            answer = receive(ws)
        assert answer["type"] == "pong"
    watcher.wait_for_events(len(watcher.arrivals) + 3)
    watcher.assert_flowing(start, max_gap=5.0)
