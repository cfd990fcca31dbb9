"""Secrets never reach a log record, an error message or an event, even at DEBUG and on failures.

Runs the bridge's private channels against the in-process simulator with the root logger at DEBUG
(so third-party frame logging is on too), including a token rejection (the simulator revokes every
token, then a new private subscription must renew it) and REST calls signed with a wrong secret.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from brokerbridge.bridge import Bridge
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.config import Config, KrakenConfig
from brokerbridge.core.errors import AuthenticationError, BrokerBridgeError
from brokerbridge.core.events import AnyEvent, StreamState, StreamStatus, encode_event
from brokerbridge.core.secret import Secret
from brokerbridge.io.kraken.rest import KrakenRestClient
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.venues.kraken import rest as kraken_rest

LIMIT = 10.0
WRONG_SECRET = base64.b64encode(b"this is not the key's secret, keep it out of logs").decode()


def sim_config(sim: KrakenSimulator, *, secret: str | None = None, **kraken: object) -> Config:
    ep = sim.endpoints
    return Config(
        kraken=dataclasses.replace(
            KrakenConfig(
                rest_url=ep.rest,
                ws_url=ep.ws_public,
                ws_auth_url=ep.ws_private,
                api_key=ep.api_key,
                api_secret=Secret(secret or ep.api_secret),
            ),
            **kraken,  # type: ignore[arg-type]
        )
    )


async def until(
    stream: AsyncIterator[AnyEvent], seen: list[AnyEvent], predicate: Callable[[AnyEvent], bool]
) -> None:
    async for event in stream:
        seen.append(event)
        if predicate(event):
            return


def live(stream: str) -> Callable[[AnyEvent], bool]:
    return lambda e: isinstance(e, StreamStatus) and e.stream == stream and e.state is StreamState.LIVE


def issued_tokens(sim: KrakenSimulator) -> list[str]:
    return list(sim.exchange.tokens._tokens)


def error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + str(exc) + repr(exc)


def assert_absent(secrets: list[str], texts: dict[str, str]) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret ({secret[:4]}…) appears in {where}: {text[:300]!r}"


@pytest.fixture
async def sim() -> AsyncIterator[KrakenSimulator]:
    async with KrakenSimulator(port=0, seed=1) as simulator:
        yield simulator


async def test_no_secret_or_token_in_logs_errors_or_events(
    sim: KrakenSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Earlier in-process CLI runs may have quietened these libraries' loggers: turn them back on.
    for noisy in ("websockets", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=noisy)
    assert logging.getLogger().level == logging.DEBUG
    events: list[AnyEvent] = []
    errors: list[BaseException] = []
    async with asyncio.timeout(LIMIT):
        # 1. Private streams with a good key, then every token revoked and a new subscription.
        # (Account streams on demand: the second subscription meets the revoked token.)
        async with Bridge(sim_config(sim), hold_accounts=False) as bridge:
            connector = bridge.connectors["kraken"]
            balances = bridge.subscribe("kraken", "balances")
            await until(balances, events, live("kraken:balances"))
            assert connector.tokens.fetches == 1
            sim.faults.invalidate_tokens()
            executions = bridge.subscribe("kraken", "executions")
            await until(executions, events, live("kraken:executions"))
            assert connector.tokens.fetches == 2  # the rejected token was replaced…
            assert connector.private.reconnects == 0  # …on the live socket: the rejection path ran
            current_token = connector.tokens._token
            assert current_token is not None
            await executions.aclose()
            await balances.aclose()

        # 2. REST calls with a wrong secret and with a wrong key.
        ep = sim.endpoints
        for key, secret in ((ep.api_key, WRONG_SECRET), ("not-a-key", ep.api_secret)):
            rest = KrakenRestClient(
                KrakenConfig(rest_url=ep.rest, api_key=key, api_secret=Secret(secret), request_timeout=5)
            )
            try:
                for request in (kraken_rest.balance_request(), kraken_rest.websockets_token_request()):
                    with pytest.raises(AuthenticationError) as info:
                        await rest.call(request)
                    assert "EAPI:Invalid" in str(info.value)
                    errors.append(info.value)
            finally:
                await rest.aclose()

        # 3. A bridge whose secret is wrong: the private connect fails and is logged and reported.
        config = sim_config(
            sim, secret=WRONG_SECRET, backoff=BackoffPolicy(initial=60, cap=60, immediate_attempts=0)
        )
        async with Bridge(config) as bridge:
            balances = bridge.subscribe("kraken", "balances")
            await until(
                balances,
                events,
                lambda e: isinstance(e, StreamStatus) and e.state is StreamState.RECONNECTING,
            )
            assert "EAPI:Invalid signature" in events[-1].reason  # type: ignore[union-attr]
            await balances.aclose()

    tokens = issued_tokens(sim)
    assert len(tokens) >= 2
    assert current_token.reveal() in tokens
    secrets = [ep.api_secret, WRONG_SECRET, *tokens]

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = caplog.records
    assert any(r.name.startswith("websockets") and r.levelno == logging.DEBUG for r in records), (
        "frame logging was not on: the test would prove nothing about it"
    )
    assert any(r.name.startswith("brokerbridge.io") for r in records)
    # The failed private connect was logged (a line that names the venue's error, so a place a
    # secret could slip into): once, by the stream's supervisor.
    assert any(r.levelno >= logging.ERROR and r.name == "brokerbridge.io.supervisor" for r in records)
    assert_absent(secrets, {f"log record {r.name}:{r.lineno}": formatter.format(r) for r in records})
    assert_absent(secrets, {"caplog.text": caplog.text})
    assert_absent(secrets, {f"error {type(e).__name__}": error_text(e) for e in errors})
    assert_absent(secrets, {f"event {type(e).__name__}": encode_event(e).decode() for e in events})


async def test_errors_raised_to_the_caller_carry_no_secret(sim: KrakenSimulator) -> None:
    ep = sim.endpoints
    rest = KrakenRestClient(
        KrakenConfig(rest_url=ep.rest, api_key=ep.api_key, api_secret=Secret(WRONG_SECRET))
    )
    order = kraken_rest.add_order_request(pair="XBTUSD", side="buy", order_type="market", volume=Decimal(1))
    try:
        with pytest.raises(BrokerBridgeError) as info:
            await rest.call(order)
    finally:
        await rest.aclose()
    text = error_text(info.value)
    assert "EAPI:Invalid signature" in text
    assert WRONG_SECRET not in text
    assert ep.api_secret not in text


def test_frames_logged_by_websockets_have_the_token_masked(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from brokerbridge.io.ws import RedactingLogger

    token = "xeAQ/RCChBYNVh53sTv1yZ5H4wIbwDF20PiHtTF+4UI"
    adapter = RedactingLogger(logging.getLogger("websockets.client"), lambda text: text.replace(token, "***"))
    with caplog.at_level(logging.DEBUG, logger="websockets.client"):
        adapter.debug(
            "> TEXT %s", '{"method":"subscribe","params":{"channel":"balances","token":"' + token + '"}}'
        )
    assert caplog.records and token not in caplog.text and '"token":"***"' in caplog.text
