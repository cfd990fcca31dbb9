"""Primary REST codec, error table and environments."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokerbridge.core.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequest,
    OrderRejected,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    SessionInvalid,
    TransportError,
    UnknownOrder,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.core.rest import Request
from brokerbridge.core.secret import Secret
from brokerbridge.venues.primary import rest
from brokerbridge.venues.primary import rest_messages as rm
from brokerbridge.venues.primary.environments import ENVIRONMENTS, resolve_environment
from brokerbridge.venues.primary.errors import error_from_primary, symbol_in_error


def fixture_dir() -> Path:
    env = os.environ.get("BROKERBRIDGE_FIXTURES")
    if env:
        return Path(env) / "primary"
    return Path(__file__).parents[1] / "fixtures" / "primary"


def body(name: str) -> bytes:
    return (fixture_dir() / name).read_bytes()


# ---------------------------------------------------------------- environments


def test_named_environments() -> None:
    rem = resolve_environment("remarkets")
    assert (rem.rest_url, rem.ws_url, rem.proprietary) == (
        "https://api.remarkets.primary.com.ar/",
        "wss://api.remarkets.primary.com.ar/",
        "PBCP",
    )
    live = resolve_environment("LIVE")
    assert (live.rest_url, live.ws_url, live.proprietary) == (
        "https://api.primary.com.ar/",
        "wss://api.primary.com.ar/",
        "api",
    )
    cocos = resolve_environment("cocos")
    assert (cocos.rest_url, cocos.ws_url, cocos.proprietary) == (
        "https://api.cocos.xoms.com.ar/",
        "wss://api.cocos.xoms.com.ar/",
        "ISV_PBCP",
    )
    for broker in ("bull", "veta", "lbo", "eco", "zeni", "dmabroker", "demo"):
        assert ENVIRONMENTS[broker].rest_url == f"https://api.{broker}.xoms.com.ar/"
    assert resolve_environment("latinsecurities").ws_url == "wss://api.latinsecurities.matrizoms.com.ar/"
    assert cocos.url("rest/segment/all") == "https://api.cocos.xoms.com.ar/rest/segment/all"


@pytest.mark.parametrize(
    ("given", "rest_url", "ws_url", "proprietary"),
    [
        ("http://127.0.0.1:8123/", "http://127.0.0.1:8123/", "ws://127.0.0.1:8123/", "api"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123/", "ws://127.0.0.1:8123/", "api"),
        ("ws://localhost:9000", "http://localhost:9000/", "ws://localhost:9000/", "api"),
        (
            "wss://api.cocos.xoms.com.ar/",
            "https://api.cocos.xoms.com.ar/",
            "wss://api.cocos.xoms.com.ar/",
            "ISV_PBCP",
        ),
        ("api.veta.xoms.com.ar", "https://api.veta.xoms.com.ar/", "wss://api.veta.xoms.com.ar/", "ISV_PBCP"),
        ("https://proxy.example/primary", "https://proxy.example/primary/", "wss://proxy.example/", "api"),
    ],
)
def test_explicit_urls(given: str, rest_url: str, ws_url: str, proprietary: str) -> None:
    env = resolve_environment(given)
    assert (env.rest_url, env.ws_url, env.proprietary) == (rest_url, ws_url, proprietary)


def test_overrides() -> None:
    env = resolve_environment("remarkets", ws_url="ws://127.0.0.1:1/", proprietary="X")
    assert (env.rest_url, env.ws_url, env.proprietary) == (
        "https://api.remarkets.primary.com.ar/",
        "ws://127.0.0.1:1/",
        "X",
    )


@pytest.mark.parametrize(
    "given",
    [
        "https://matriz.cocos.xoms.com.ar/",
        "wss://matriz.cocos.xoms.com.ar/ws?session_id=abc%3D&conn_id=def",
        "matriz.cocos.xoms.com.ar",
    ],
)
def test_matriz_host_is_refused_with_an_explanation(given: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_environment(given)
    text = str(info.value)
    assert "_mtz_web_key" in text and "session_id" in text and "cookie" in text
    assert "https://api.cocos.xoms.com.ar/" in text and "API" in text


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_environment("galicia")
    assert (
        "cocos" in str(info.value) and "remarkets" in str(info.value) and "latinsecurities" in str(info.value)
    )
    for bad in ("", "ftp://x.y/", "http://"):
        with pytest.raises(ConfigError):
            resolve_environment(bad)


# ---------------------------------------------------------------- request builders


def test_login_request_never_shows_the_password() -> None:
    request = rest.login_request("user1", Secret("hunter2"))
    assert (request.method, request.target) == ("POST", "auth/getToken")
    assert request.headers == {"X-Username": "user1", "X-Password": "hunter2"}
    assert "hunter2" not in repr(request) and "user1" in repr(request)
    authed = rest.wire(rest.segments_request()).with_token(Secret("tok=="))
    assert authed.headers == {"X-Auth-Token": "tok=="} and "tok==" not in repr(authed)


def test_symbols_are_url_encoded() -> None:
    md = rest.wire(rest.market_data_request("MERV - XMEV - GGAL - 24hs", entries=["BI", "OF", "LA"], depth=2))
    assert md.target == (
        "rest/marketdata/get?marketId=ROFX&symbol=MERV%20-%20XMEV%20-%20GGAL%20-%2024hs&entries=BI%2COF%2CLA&depth=2"
    )
    assert (
        rest.wire(rest.instrument_detail_request("DLR/DIC23")).target
        == "rest/instruments/detail?symbol=DLR%2FDIC23&marketId=ROFX"
    )
    trades = rest.trades_request("DLR/DIC23", date_from="2023-01-01", date_to="2023-01-31")
    assert rest.wire(trades).target == (
        "rest/data/getTrades?marketId=ROFX&symbol=DLR%2FDIC23&dateFrom=2023-01-01&dateTo=2023-01-31"
    )
    assert rest.wire(rest.account_report_request("REM 1/2")).target == "rest/risk/accountReport/REM%201%2F2"
    assert (
        rest.wire(rest.instruments_by_cfi_request("OCASPS")).target
        == "rest/instruments/byCFICode?CFICode=OCASPS"
    )
    assert rest.wire(rest.instruments_by_segment_request("DDF")).target == (
        "rest/instruments/bySegment?MarketSegmentID=DDF&MarketID=ROFX"
    )
    with pytest.raises(ValueError):
        rest.market_data_request("X", entries=["ZZ"])
    with pytest.raises(ValueError):
        rest.trades_request("X", date="2023-01-01", date_from="2023-01-01", date_to="2023-01-02")


def test_order_requests() -> None:
    new = rest.new_order_request(
        symbol="DLR/DIC23",
        side="buy",
        quantity=10,
        account="REM1234",
        price=Decimal("180.5"),
        display_quantity=5,
    )
    assert rest.wire(new).target == (
        "rest/order/newSingleOrder?marketId=ROFX&symbol=DLR%2FDIC23&orderQty=10&ordType=LIMIT&side=BUY"
        "&timeInForce=DAY&account=REM1234&cancelPrevious=false&price=180.5&iceberg=true&displayQty=5"
    )
    assert rest.wire(rest.cancel_order_request("310059219481980", "PBCP")).target == (
        "rest/order/cancelById?clOrdId=310059219481980&proprietary=PBCP"
    )
    assert rest.wire(rest.orders_request("REM1", "actives")).target == "rest/order/actives?accountId=REM1"
    with pytest.raises(ValueError):
        rest.new_order_request(symbol="X", side="buy", quantity=1, account="a")


# ---------------------------------------------------------------- parsing

NEW_ORDER = rest.new_order_request(symbol="X", side="buy", quantity=1, account="A", price=Decimal("1.5"))
# Every typed builder, one request each.
BUILDERS: list[Request[Any]] = [
    rest.segments_request(),
    rest.instruments_all_request(),
    rest.instruments_details_request(),
    rest.instrument_detail_request("X"),
    rest.instruments_by_cfi_request("OCASPS"),
    rest.instruments_by_segment_request("DDF"),
    rest.market_data_request("X"),
    rest.trades_request("X", date="2023-01-01"),
    NEW_ORDER,
    rest.replace_order_request("1", "PBCP", quantity=1, price=Decimal(2)),
    rest.cancel_order_request("1", "PBCP"),
    rest.order_status_request("1", "PBCP"),
    rest.order_history_request("1", "PBCP"),
    rest.order_by_order_id_request("1"),
    rest.order_by_exec_id_request("1"),
    *(rest.orders_request("A", which) for which in ("all", "actives", "filleds")),
    rest.accounts_request(),
    rest.positions_request("A"),
    rest.detailed_position_request("A"),
    rest.account_report_request("A"),
]


def test_every_typed_request_names_the_type_its_endpoint_decodes_to() -> None:
    assert {request.name for request in BUILDERS} == set(rest.RESPONSE_TYPES)
    for request in BUILDERS:
        assert request.answer is rest.RESPONSE_TYPES[request.name], request.name
        wire = rest.wire(request)
        assert wire.endpoint == request.name == rest.endpoint_of(wire.path) and wire.headers == {}


@pytest.mark.parametrize(
    ("request_", "fixture"),
    [
        (rest.segments_request(), "http_segments.json"),
        (rest.accounts_request(), "http_accounts.json"),
        (rest.orders_request("REM1"), "http_order_all.json"),
        (rest.order_status_request("1", "PBCP"), "http_order_status.json"),
        (rest.market_data_request("X"), "http_marketdata_get.json"),
        (NEW_ORDER, "http_order_new_ack.json"),
        (rest.cancel_order_request("1", "PBCP"), "http_order_cancel_ack.json"),
        (rest.trades_request("X", date="2023-01-01"), "http_trades_get_empty.json"),
    ],
)
def test_a_typed_request_decodes_its_captured_answer(request_: Request[Any], fixture: str) -> None:
    answer = rest.parse_answer(request_, 200, {}, body(fixture))
    assert isinstance(answer, request_.answer)
    assert answer == rest.parse_response(request_.name, 200, {}, body(fixture))


def test_typed_answers_keep_the_digits_and_the_errors() -> None:
    status = rest.parse_answer(
        rest.order_status_request("1", "PBCP"), 200, {}, body("http_order_status.json")
    )
    assert str(status.order.avgPx) == "45730.000"
    with pytest.raises(SessionInvalid):
        rest.parse_answer(rest.segments_request(), 401, {}, b"")
    with pytest.raises(InvalidRequest):
        rest.parse_answer(
            rest.accounts_request(),
            200,
            {},
            b'{"status":"ERROR","description":"Segment MERV:ROFX doesn\'t exist"}',
        )


def test_every_rest_fixture_parses() -> None:
    segments = rest.parse_response(rest.segments_request(), 200, {}, body("http_segments.json"))
    assert isinstance(segments, rm.SegmentsResponse) and len(segments.segments) == 12
    assert segments.segments[0] == rm.Segment(marketSegmentId="DDA", marketId="ROFX")
    accounts = rest.parse_response("rest/accounts", 200, {}, body("http_accounts.json"))
    assert accounts.accounts == [rm.Account(id=1234, name="REM12345", brokerId=1, status=True)]
    ack = rest.parse_response("rest/order/newSingleOrder", 200, {}, body("http_order_new_ack.json"))
    assert ack.order == rm.OrderAckBody(clientId="310059219481980", proprietary="PBCP")
    cancel = rest.parse_response(
        rest.cancel_order_request("1", "PBCP"), 200, {}, body("http_order_cancel_ack.json")
    )
    assert cancel.order.clientId == "310060290499141"
    status = rest.parse_response("rest/order/id", 200, {}, body("http_order_status.json"))
    assert str(status.order.avgPx) == "45730.000" and status.order.cumQty == Decimal(1)
    orders = rest.parse_response("rest/order/all", 200, {}, body("http_order_all.json"))
    assert [o.status for o in orders.orders] == ["NEW"] and orders.orders[0].execId == "T4890257"
    trades = rest.parse_response("rest/data/getTrades", 200, {}, body("http_trades_get_empty.json"))
    assert (trades.symbol, trades.market, trades.trades) == ("RFX20Dic19", "ROFX", [])


def test_market_data_with_top_level_depth_and_null_entries() -> None:
    full = rest.parse_response("rest/marketdata/get", 200, {}, body("http_marketdata_get.json"))
    assert isinstance(full, rm.MarketDataResponse) and (full.depth, full.aggregated) == (1, True)
    assert full.marketData.levels("BI")[0].price == Decimal(45465)
    assert full.marketData.last() is not None and full.marketData.last().date == 1571491925262  # type: ignore[union-attr]
    empty = rest.parse_response(
        "rest/marketdata/get", 200, {}, body("http_marketdata_get_empty_entries.json")
    )
    data = empty.marketData
    assert data.has("LA", "BI", "OF", "OI") and (data.LA, data.BI, data.OF, data.OI) == (
        None,
        None,
        None,
        None,
    )


def test_risk_and_detail_endpoints_parse_documented_shapes() -> None:
    positions = rest.parse_response(
        "rest/risk/position/getPositions/REM1",
        200,
        {},
        '{"status":"OK","positions":[{"instrument":{"symbolReference":"AAPL","settlType":0},'
        '"symbol":"MERV - XMEV - AAPL - CI","buySize":5,"buyPrice":3092,"sellSize":0,"sellPrice":0,'
        '"totalDailyDiff":0,"totalDiff":15460,"tradingSymbol":"MERV - XMEV - AAPL - CI"}]}',
    )
    assert positions.positions[0].buySize == Decimal(5)
    detailed = rest.parse_response(
        rest.detailed_position_request("REM1"),
        200,
        {},
        '{"status":"OK","detailedPosition":{"account":"REM1","totalDailyDiffPlain":0,"totalMarketValue":10,'
        '"report":{"FUTURE":{"DLR/DIC23":{"detailedPositions":[{"symbolReference":"DLR/DIC23",'
        '"contractType":"FUTURE","totalCurrentSize":3}],"instrumentCurrentSize":3}}},"lastCalculation":1}}',
    )
    assert detailed.detailedPosition.report["FUTURE"]["DLR/DIC23"].instrumentCurrentSize == Decimal(3)
    detail = rest.parse_response(
        "rest/instruments/detail",
        200,
        {},
        b'{"status":"OK","instrument":'
        + body("http_instruments_details_subset.json")[1:].split(b",\n")[0]
        + b"}",
    )
    assert detail.instrument.instrumentId.symbol == "MERV - XMEV - GGAL - 24hs"
    flat = rest.parse_response(
        "rest/instruments/byCFICode",
        200,
        {},
        '{"status":"OK","instruments":[{"marketId":"ROFX","symbol":"A"}]}',
    )
    assert flat.instruments[0].symbol == "A"


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [
        (401, '{"status":"ERROR","message":"whatever"}', SessionInvalid),
        (403, "", SessionInvalid),
        (429, "", RateLimited),
        (502, "<html>bad gateway</html>", TransportError),
        (200, "<html>proxy</html>", TransportError),
        (200, '<form action="j_spring_security_check">', SessionInvalid),
        (200, '{"status":"WHAT"}', ProtocolError),
        (200, '{"status":"OK","segments":"nope"}', ProtocolError),
        (
            200,
            '{"status":"ERROR","description":"Segment MERV:ROFX doesn\'t exist","message":null}',
            InvalidRequest,
        ),
    ],
)
def test_response_errors(status: int, text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        rest.parse_response(rest.segments_request(), status, {}, text)


def test_401_says_relogin_and_is_retryable() -> None:
    with pytest.raises(SessionInvalid) as info:
        rest.parse_response("rest/accounts", 401, {}, b'{"status":"ERROR"}')
    assert info.value.retryable and "token expired or invalidated: re-login" in str(info.value)
    assert rest.is_auth_error(info.value)


def test_token_from_login() -> None:
    token = rest.token_from_login(200, {"x-auth-token": "8LCfQCvFjj7SGRicXT2HaursZ/4cltAhWL9o0tAjD2U="})
    assert isinstance(token, Secret) and token.reveal().endswith("=") and "8LC" not in repr(token)
    with pytest.raises(AuthenticationError) as refused:
        rest.token_from_login(401, {})
    assert "user and password" in refused.value.remedy and not refused.value.retryable
    with pytest.raises(AuthenticationError, match="without an X-Auth-Token"):
        rest.token_from_login(200, {"Content-Length": "0"})
    with pytest.raises(TransportError):
        rest.token_from_login(503, {})


def test_a_refused_login_carries_the_venues_words() -> None:
    locked = b'{"error":"invalid_grant","error_description":"User account is locked"}'
    with pytest.raises(AuthenticationError) as refused:
        rest.token_from_login(401, {}, rest.error_text(locked))
    assert refused.value.message.endswith("HTTP 401: User account is locked")
    assert rest.error_text(b'{"status":"ERROR","description":"Usuario bloqueado"}') == "Usuario bloqueado"
    assert rest.error_text(b'{"error":{"x":1},"message":"no"}') == "no"
    # Not JSON: its printable start; a password the venue echoes is masked, control characters go.
    page = b"<h1>denied for s3cret\x1b[31m</h1>" + b"x" * 500
    text = rest.error_text(page, mask=["s3cret"])
    assert "s3cret" not in text and "***" in text and "\x1b" not in text
    assert len(text) <= rest.ERROR_TEXT_LIMIT
    assert rest.error_text(b"") == ""


# ---------------------------------------------------------------- error table


@pytest.mark.parametrize(
    ("description", "message", "error", "retryable"),
    [
        ("Product DOEne15:ROFX doesn't exist", None, UnknownSymbol, False),
        ("Product InvalidInstrument:ROFX don't exist", "{...}", UnknownSymbol, False),
        ("No hay Market Data para MERV - XMEV - GGAL - 48hs : ROFX", None, UnknownSymbol, False),
        ("No tiene acceso a la cuenta 30", None, PermissionDenied, False),
        ("Order user1144733478:api doesn't exist", None, UnknownOrder, False),
        (None, "Access Denied", SessionInvalid, True),
        ("Ruta invalida", "", InvalidRequest, False),
        ("Segment MERV:ROFX doesn't exist", None, InvalidRequest, False),
        ("Saldo insuficiente", None, OrderRejected, False),
        ("something new", None, VenueError, False),
    ],
)
def test_error_table(
    description: str | None, message: str | None, error: type[VenueError], retryable: bool
) -> None:
    mapped = error_from_primary(description, message)
    assert isinstance(mapped, error) and mapped.retryable is retryable and mapped.venue == "primary"
    assert mapped.remedy


def test_error_details() -> None:
    unknown = error_from_primary("something new")
    assert type(unknown) is VenueError and "does not know" in unknown.remedy
    assert (
        symbol_in_error("Product MERV - XMEV - GGAL - 24hs:ROFX don't exist") == "MERV - XMEV - GGAL - 24hs"
    )
    assert symbol_in_error("Product DLR/DIC23:ROFX doesn't exist") == "DLR/DIC23"
    assert symbol_in_error("No tiene acceso a la cuenta 30") is None
    assert "proprietary" in error_from_primary("Order x:PBCP doesn't exist").remedy
