"""The client-facing `/ws` under random, malformed, binary, huge and flooding frames.

Every frame gets a typed answer (`ack`, `pong` or an `error` with a documented code) and the socket
stays open; a frame beyond `max_message_bytes` closes only that socket, with 1009; a flood is
answered with `rate_limited` errors. Meanwhile a well-behaved client's stream keeps flowing and the
server keeps accepting new clients.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from brokerbridge.server.protocol import ErrorCode
from brokerbridge.server.ws import WsSettings
from tests.fuzz.mutations import Captured, fuzz_settings, hostile_text, json_values, mutated, odd_values
from tests.fuzz.server_rig import TICKER, LiveServer, Watcher, client, live_server, receive
from tests.server.conftest import ACCOUNT_KEY

pytestmark = pytest.mark.timeout(600)

MESSAGE_TYPES = {"ack", "error", "event", "pong", "heartbeat"}
ERROR_CODES = {code.value for code in ErrorCode}
REQUESTS = [
    {"op": "subscribe", "id": "t1", "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"},
    {"op": "subscribe", "id": 7, "venue": "kraken", "channel": "book", "symbol": "BTC/USD", "depth": 10},
    {
        "op": "subscribe",
        "id": "c",
        "venue": "kraken",
        "channel": "candles",
        "symbol": "ETH/USD",
        "interval": 5,
    },
    {"op": "subscribe", "id": "p", "venue": "primary", "channel": "book", "symbol": "DLR/DIC26", "depth": 5},
    {"op": "subscribe", "id": "b", "venue": "kraken", "channel": "trades", "symbols": ["BTC/USD", "ETH/USD"]},
    {"op": "subscribe", "id": "acct", "venue": "kraken", "channel": "balances"},
    {"op": "unsubscribe", "id": "t1"},
    {"op": "ping", "id": 1},
    {"op": "auth", "key": ACCOUNT_KEY, "id": "a"},
]
FIELDS = ("id", "venue", "channel", "symbol", "symbols", "depth", "interval", "key")

OPS = ["subscribe", "unsubscribe", "ping", "auth", "SUBSCRIBE", "", "exec"]
wrong_types = st.fixed_dictionaries(
    {"op": st.sampled_from(OPS) | json_values},
    optional={name: odd_values | json_values for name in FIELDS},
)
frames = st.one_of(
    st.sampled_from(REQUESTS).flatmap(lambda r: mutated(Captured(str(r["op"]), json.dumps(r)))),
    wrong_types.map(json.dumps),
    hostile_text,
)
# Text or binary frames; binary ones may also hold bytes that are not UTF-8.
payloads = st.one_of(
    frames,
    frames.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # No rate limit here (the flood test below has its own server): every fuzz frame is processed.
    ws = WsSettings(heartbeat_interval=0.2, messages_per_second=1e6, message_burst=1_000_000)
    with live_server(tmp_path_factory.mktemp("fuzz-ws"), ws) as live:
        yield live


class Prober:
    """One fuzzing connection: send a frame, then a ping, and read everything up to its pong."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.ws = client(server, legacy=True)  # held across examples, not a with block
        self.probes = itertools.count()

    def exchange(self, payload: str | bytes) -> list[dict[str, Any]]:
        self.ws.send(payload)
        probe = f"probe-{next(self.probes)}"
        self.ws.send(json.dumps({"op": "ping", "id": probe}))
        answers = []
        while True:
            message = receive(self.ws)
            assert message.get("type") in MESSAGE_TYPES, message
            if message["type"] == "error":
                assert message["code"] in ERROR_CODES, message
                assert isinstance(message["message"], str) and isinstance(message["remedy"], str)
            if message["type"] == "pong" and message.get("id") == probe:
                return answers
            answers.append(message)


@pytest.fixture(scope="module")
def prober(server: LiveServer, watcher: Watcher) -> Prober:
    return Prober(server)


@fuzz_settings
@given(payloads)
def test_every_frame_gets_a_typed_answer_and_the_socket_stays_open(
    prober: Prober, watcher: Watcher, payload: str | bytes
) -> None:
    answers = prober.exchange(payload)
    assert any(m["type"] in ("ack", "error", "pong") for m in answers), (payload[:200], answers)


def test_the_watcher_kept_streaming_through_the_fuzzing(prober: Prober, watcher: Watcher) -> None:
    """Runs after the fuzz test (file order): it must have seen events all along."""
    start = time.monotonic()
    for request in REQUESTS * 5:
        prober.exchange(json.dumps(request))
    watcher.wait_for_events(len(watcher.arrivals) + 3)
    watcher.assert_flowing(start, max_gap=5.0)


def test_deeply_nested_json_is_answered_as_malformed(prober: Prober) -> None:
    for deep in ("[" * 5000 + "]" * 5000, '{"op":"subscribe","id":' + "[" * 5000 + "]" * 5000 + "}"):
        answers = prober.exchange(deep)
        assert [m["code"] for m in answers if m["type"] == "error"] in (["malformed"], ["invalid_request"])


def test_a_binary_frame_holding_a_request_is_served_like_text(prober: Prober) -> None:
    answers = prober.exchange(json.dumps({"op": "ping", "id": "bin"}).encode())
    assert {"type": "pong", "id": "bin"} in [{"type": m["type"], "id": m.get("id")} for m in answers]
    answers = prober.exchange(b"\xff\xfe\x00garbage")
    assert [m["code"] for m in answers if m["type"] == "error"] == ["malformed"]


def test_a_frame_beyond_the_limit_closes_only_that_socket_with_1009(
    server: LiveServer, watcher: Watcher
) -> None:
    limit = server.stack.server.state.settings.ws.max_message_bytes
    assert limit <= 1 << 20, "the server accepts frames far larger than any request needs"
    start = time.monotonic()
    with client(server) as big:
        big.send("[" + " " * limit + "]")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                receive(big)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, closed.value
    with client(server) as after:  # the server still takes new clients
        after.send(json.dumps({"op": "ping", "id": "after"}))
        assert receive(after) == {"type": "pong", "id": "after", "ts": pytest.approx(time.time(), abs=60)}
    watcher.wait_for_events(len(watcher.arrivals) + 3)
    watcher.assert_flowing(start, max_gap=5.0)


# ---------------------------------------------------------------- floods, with the default limits


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("flood"), WsSettings(heartbeat_interval=0.2)) as live:
        yield live


def test_a_flood_is_answered_with_rate_limited_errors_and_others_keep_streaming(limited: LiveServer) -> None:
    settings = limited.stack.server.state.settings.ws
    with Watcher(limited, TICKER) as watcher:
        watcher.wait_for_events(2)
        start = time.monotonic()
        with client(limited) as flooder:
            sent = settings.message_burst * 5
            for n in range(sent):
                flooder.send(json.dumps({"op": "ping", "id": n}))
            answers = [receive(flooder) for _ in range(sent)]
            kinds = {(m["type"], m.get("code")) for m in answers if m["type"] != "heartbeat"}
            assert kinds <= {("pong", None), ("error", "rate_limited")}, kinds
            limited_ids = [m["id"] for m in answers if m["type"] == "error"]
            assert limited_ids, "no message beyond the burst was refused"
        watcher.wait_for_events(len(watcher.arrivals) + 3)
        watcher.assert_flowing(start, max_gap=5.0)


def test_a_flooder_that_never_reads_is_closed_and_others_keep_streaming(limited: LiveServer) -> None:
    settings = limited.stack.server.state.settings.ws
    with Watcher(limited, TICKER) as watcher:
        watcher.wait_for_events(2)
        start = time.monotonic()
        with client(limited, max_queue=4) as flooder:
            garbage = "x" * 1000
            try:
                # Every garbage frame earns an error that can never be dropped; not reading them
                # must cost the flooder its connection (1008), not the server its memory.
                for _ in range(settings.client_queue_size * 20):
                    flooder.send(garbage)
            except ConnectionClosed:
                pass
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    flooder.recv(timeout=1)
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    assert exc.rcvd is not None and exc.rcvd.code == 1008, exc
                    break
            else:
                pytest.fail("a client that never reads its errors was not closed")
        watcher.wait_for_events(len(watcher.arrivals) + 3)
        watcher.assert_flowing(start, max_gap=5.0)
