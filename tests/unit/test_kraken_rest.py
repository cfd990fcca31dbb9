"""REST codec: request building and response/error parsing (sans I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokerbridge.core import errors as e
from brokerbridge.venues.kraken import rest
from brokerbridge.venues.kraken.rest_messages import WebSocketsToken


def test_public_request() -> None:
    request = rest.build_public("Depth", {"pair": "XBTUSD", "count": 10, "asset_class": None})
    assert (request.method, request.path, request.query) == ("GET", "/0/public/Depth", "pair=XBTUSD&count=10")
    assert request.target == "/0/public/Depth?pair=XBTUSD&count=10"
    assert request.body == ""


def test_method_lists_and_unknown_methods() -> None:
    assert {"Ticker", "Depth", "OHLC", "Trades", "AssetPairs"} <= rest.PUBLIC_METHODS
    assert {
        "BalanceEx",
        "OpenOrders",
        "TradesHistory",
        "GetWebSocketsToken",
        "AddOrder",
    } <= rest.PRIVATE_METHODS
    assert not rest.PUBLIC_METHODS & rest.PRIVATE_METHODS
    with pytest.raises(ValueError):
        rest.build_public("BalanceEx")
    with pytest.raises(ValueError):
        rest.build_private("Ticker", None, 1, "k", "a2V5")


def test_private_params_formatting() -> None:
    request = rest.build_private(
        "AddOrder", {"volume": Decimal("0.00000100"), "validate": True, "nonce": "ignored"}, 5, "k", "a2V5"
    )
    assert request.body == "nonce=5&volume=0.00000100&validate=true"


def test_parse_success_and_typed() -> None:
    body = b'{"result":{"token":"abc","expires":900},"error":[]}'
    token = rest.parse_result(200, body, "GetWebSocketsToken")
    assert isinstance(token, WebSocketsToken) and token.token == "abc"
    assert "abc" not in repr(token)
    assert rest.parse_result(200, body) == {"token": "abc", "expires": 900}


def test_parse_error_envelopes() -> None:
    with pytest.raises(e.InvalidNonce):
        rest.parse_result(200, b'{"error":["EAPI:Invalid nonce"]}')
    with pytest.raises(e.AuthenticationError):
        rest.parse_result(200, b'{"error":["EAPI:Invalid key"],"result":{}}')
    # Warnings alone do not fail the call.
    assert rest.parse_result(200, b'{"error":["WGeneral:Something"],"result":{"count":1}}') == {"count": 1}


def test_parse_transport_failures() -> None:
    with pytest.raises(e.TransportError) as info:
        rest.parse_result(502, b"<html>bad gateway</html>")
    assert info.value.retryable
    with pytest.raises(e.TransportError):
        rest.parse_result(200, b"<html>cloudflare</html>")
    with pytest.raises(e.RateLimited):
        rest.parse_result(429, b"")
    with pytest.raises(e.ProtocolError):
        rest.parse_result(200, b'{"error":[]}')
    with pytest.raises(e.ProtocolError):
        rest.parse_result(200, b'{"error":[],"result":{"a":1}}', "GetWebSocketsToken")
