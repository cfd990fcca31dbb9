"""REST codec: request building and response/error parsing (sans I/O)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokerbridge.core import errors as e
from brokerbridge.core.rest import Request
from brokerbridge.venues.kraken import rest
from brokerbridge.venues.kraken import rest_messages as rm
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


# ---------------------------------------------------------------- typed requests

ADD_ORDER = rest.add_order_request(
    pair="XBTUSD",
    side="buy",
    order_type="limit",
    volume=Decimal("0.00000100"),
    price=Decimal("50000.0"),
    cl_ord_id="bot-1",
)
# Every typed builder with the captured answer of its method.
CAPTURED: list[tuple[Request[Any], str]] = [
    (rest.server_time_request(), "http_time.json"),
    (rest.system_status_request(), "http_systemstatus.json"),
    (rest.asset_pairs_request(), "http_assetpairs.json"),
    (rest.ticker_request(["XBTUSD", "ETHUSD"]), "http_ticker.json"),
    (rest.depth_request("XBTUSD", 10), "http_depth_xbtusd.json"),
    (rest.ohlc_request("XBTUSD", 1, 1701019771.5), "http_ohlc_xbtusd.json"),
    (rest.trades_request("XBTUSD", 1701019771.5), "http_trades_xbtusd.json"),
    (rest.balance_request(), "http_balance.json"),
    (rest.balance_ex_request(), "http_balanceex.json"),
    (rest.open_orders_request(), "http_openorders.json"),
    (rest.trades_history_request(1700000000.0, 2), "http_tradeshistory.json"),
    (rest.websockets_token_request(), "http_getwebsocketstoken.json"),
    (ADD_ORDER, "http_addorder.json"),
    (rest.cancel_order_request("OQCLML-BW3P3-BUCMWZ"), "http_cancelorder.json"),
]


@pytest.mark.parametrize(("request_", "fixture"), CAPTURED, ids=[r.name for r, _ in CAPTURED])
def test_a_typed_request_decodes_its_captured_answer_as_its_method_does(
    request_: Request[Any], fixture: str, kraken_dir: Path
) -> None:
    body = (kraken_dir / fixture).read_bytes()
    assert request_.answer == rest.RESULT_TYPES[request_.name]  # the builder names its method's type
    prefix = rest.PRIVATE_PREFIX if request_.name in rest.PRIVATE_METHODS else rest.PUBLIC_PREFIX
    assert request_.path == prefix + request_.name and rest.is_private(request_) == (
        prefix == rest.PRIVATE_PREFIX
    )
    assert rest.parse_answer(request_, 200, body) == rest.parse_result(200, body, request_.name)


def test_typed_answers_keep_krakens_digits(kraken_dir: Path) -> None:
    balances = rest.parse_answer(rest.balance_request(), 200, (kraken_dir / "http_balance.json").read_bytes())
    assert format(balances["GNO"], "f") == "0.0000000100" and str(balances["ZUSD"]) == "22.6354"
    history = rest.parse_answer(
        rest.trades_history_request(), 200, (kraken_dir / "http_tradeshistory.json").read_bytes()
    )
    assert isinstance(history, rm.TradesHistory) and history.count == 396
    trade = history.trades["DH9ICY-FXRTM-GESBKK"]
    assert (str(trade.price), str(trade.vol), str(trade.fee)) == ("8.250000", "4.00000000", "0.079000")
    trades = rest.parse_answer(
        rest.trades_request("XBTUSD"), 200, (kraken_dir / "http_trades_xbtusd.json").read_bytes()
    )
    assert isinstance(trades, rm.TradesResult) and trades.pair == "XXBTZUSD"
    assert (str(trades.rows[0][0]), str(trades.rows[0][1])) == ("37247.00000", "0.00026451")


def test_typed_requests_send_the_fields_the_stringly_calls_sent() -> None:
    assert rest.trades_request("XBTUSD", 1701019771.5).params == (
        ("pair", "XBTUSD"),
        ("since", "1701019771500000000"),
    )
    assert rest.trades_request("XBTUSD").params == (("pair", "XBTUSD"),)
    assert rest.ohlc_request("XBTUSD", 5, 1701019771.5).params == (
        ("pair", "XBTUSD"),
        ("interval", "5"),
        ("since", "1701019771"),
    )
    assert rest.ticker_request(["XBTUSD", "ETHUSD"]).params == (("pair", "XBTUSD,ETHUSD"),)
    assert rest.depth_request("XBTUSD", 500).params == (("pair", "XBTUSD"), ("count", "500"))
    # History pages: `start` in whole seconds, `ofs` counted in rows, 50 a page, absent on page 0.
    assert rest.closed_orders_request().params == ()
    assert rest.closed_orders_request(1700000000.9).params == (("start", "1700000000"),)
    assert rest.trades_history_request(1700000000.9, 2).params == (("start", "1700000000"), ("ofs", "100"))
    assert rest.public_wire(rest.depth_request("XBTUSD", 10)).target == "/0/public/Depth?pair=XBTUSD&count=10"
    signed = rest.signed_wire(ADD_ORDER, 5, "k", "a2V5")
    stringly = rest.build_private(
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "volume": Decimal("0.00000100"),
            "price": Decimal("50000.0"),
            "cl_ord_id": "bot-1",
        },
        5,
        "k",
        "a2V5",
    )
    assert signed == stringly  # the same body, byte for byte, and so the same signature
    assert (
        signed.body
        == "nonce=5&pair=XBTUSD&type=buy&ordertype=limit&volume=0.00000100&price=50000.0&cl_ord_id=bot-1"
    )
    assert "a2V5" not in repr(signed) and signed.headers["API-Sign"] not in repr(signed)


def test_a_typed_request_gets_the_mapped_error_of_its_answer() -> None:
    with pytest.raises(e.PermissionDenied):
        rest.parse_answer(rest.balance_request(), 200, b'{"error":["EGeneral:Permission denied"]}')
    with pytest.raises(e.ProtocolError):
        rest.parse_answer(rest.websockets_token_request(), 200, b'{"error":[],"result":{"a":1}}')
    with pytest.raises(e.RateLimited):
        rest.parse_answer(rest.open_orders_request(), 429, b"")
