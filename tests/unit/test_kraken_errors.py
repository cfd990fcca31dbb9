"""Error table: every string of kraken.md §1.5/§3.9 maps to a class, remedy and retryable flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from brokerbridge.core import errors as e
from brokerbridge.venues.kraken.errors import ERROR_TABLE, error_from_kraken, error_from_kraken_list

CASES: list[tuple[str, type[e.VenueError], bool]] = [
    ("EGeneral:Invalid arguments", e.InvalidRequest, False),
    ("EGeneral:Invalid arguments:ordertype", e.InvalidRequest, False),
    ("EGeneral:Invalid arguments:Index unavailable", e.OrderRejected, False),
    ("EGeneral:Permission denied", e.PermissionDenied, False),
    ("EGeneral:Temporary lockout", e.AuthenticationError, False),
    ("EGeneral:Internal error", e.ServiceUnavailable, True),
    ("EGeneral:Internal error:12345", e.ServiceUnavailable, True),
    ("EGeneral:Too many requests", e.RateLimited, True),
    ("EGeneral:Unknown method", e.InvalidRequest, False),
    ("EAPI:Invalid key", e.AuthenticationError, False),
    ("EAPI:Invalid signature", e.AuthenticationError, False),
    ("EAPI:Invalid nonce", e.InvalidNonce, True),
    ("EAPI:Rate limit exceeded", e.RateLimited, True),
    ("EAPI:Bad request", e.InvalidRequest, False),
    ("EAPI:Invalid token", e.SessionInvalid, True),
    ("EService:Throttled", e.RateLimited, True),
    ("EService:Throttled: 1700000000", e.RateLimited, True),
    ("EService:Throttled:1700000000", e.RateLimited, True),
    ("EService:Unavailable", e.ServiceUnavailable, True),
    ("EService:Busy", e.ServiceUnavailable, True),
    ("EService:Market in cancel_only mode", e.ServiceUnavailable, True),
    ("EService:Market in post_only mode", e.ServiceUnavailable, True),
    ("EService:Deadline elapsed", e.ServiceUnavailable, True),
    ("EQuery:Unknown asset pair", e.UnknownSymbol, False),
    ("EQuery:Unknown asset", e.UnknownSymbol, False),
    ("EOrder:Insufficient funds", e.OrderRejected, False),
    ("EOrder:Order minimum not met", e.OrderRejected, False),
    ("EOrder:Cost minimum not met", e.OrderRejected, False),
    ("EOrder:Tick size check failed", e.OrderRejected, False),
    ("EOrder:Invalid price", e.OrderRejected, False),
    ("EOrder:Unknown order", e.UnknownOrder, False),
    ("EOrder:Invalid order", e.UnknownOrder, False),
    ("EOrder:Orders limit exceeded", e.OrderRejected, False),
    ("EOrder:Rate limit exceeded", e.RateLimited, True),
    ("EOrder:Domain rate limit exceeded", e.RateLimited, True),
    ("EOrder:Margin allowance exceeded", e.OrderRejected, False),
    ("EOrder:Margin level too low", e.OrderRejected, False),
    ("EOrder:Cannot open position", e.OrderRejected, False),
    ("EOrder:Positions limit exceeded", e.OrderRejected, False),
    ("EOrder:Reduce only", e.OrderRejected, False),
    ("EOrder:Reduce only:Non-PC", e.OrderRejected, False),
    ("EAuth:Rate limit exceeded", e.RateLimited, True),
    ("EAuth:Too many requests", e.RateLimited, True),
    ("EAuth:Account temporary disabled", e.AuthenticationError, False),
    ("EAuth:Account unconfirmed", e.AuthenticationError, False),
    ("EAccount:Invalid permissions", e.PermissionDenied, False),
    ("ETrade:Invalid request", e.InvalidRequest, False),
    ("ESession:Invalid session", e.SessionInvalid, True),
    # WS v2 (§3.9)
    ("Currency pair not supported XBT/USD", e.UnknownSymbol, False),
    ("Subscription name invalid", e.InvalidRequest, False),
    ("Unsupported event", e.InvalidRequest, False),
    ("Unsupported field: 'params' for the given msg type: ping", e.InvalidRequest, False),
    ("Already subscribed", e.InvalidRequest, False),
    ("Subscription Not Found", e.InvalidRequest, False),
    ("Symbol(s) not found", e.UnknownSymbol, False),
    ("Token(s) not found", e.SessionInvalid, True),
    ("Cash_order_qty field must be a number_float", e.InvalidRequest, False),
    ("Limit_price field must be a number_float", e.InvalidRequest, False),
    ("Exceeded msg rate", e.RateLimited, True),
    (
        "Private data and trading are unavailable on this endpoint. Try ws-auth.kraken.com",
        e.InvalidRequest,
        False,
    ),
    (
        "Public market data subscriptions are unavailable on this endpoint. Try ws.kraken.com",
        e.InvalidRequest,
        False,
    ),
]


@pytest.mark.parametrize(("code", "cls", "retryable"), CASES)
def test_mapping(code: str, cls: type[e.VenueError], retryable: bool) -> None:
    error = error_from_kraken(code)
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.code == code
    assert error.venue == "kraken"
    assert code in error.message
    assert error.remedy, "every mapped error carries a human remedy"


def test_every_table_row_has_a_remedy_and_is_covered() -> None:
    covered = {code for code, _, _ in CASES}
    assert set(ERROR_TABLE) <= covered
    assert all(rule.remedy for rule in ERROR_TABLE.values())


def test_unknown_string_is_plain_venue_error() -> None:
    error = error_from_kraken("EFoo:Something new")
    assert type(error) is e.VenueError
    assert error.code == "EFoo:Something new"
    assert error.retryable is False
    # A near miss must not match a shorter code by accident.
    assert type(error_from_kraken("EGeneral")) is e.VenueError
    assert type(error_from_kraken("")) is e.VenueError


def test_rest_list_keeps_all_strings() -> None:
    error = error_from_kraken_list(["EOrder:Insufficient funds", "EGeneral:Invalid arguments:volume"])
    assert isinstance(error, e.OrderRejected)
    assert "EGeneral:Invalid arguments:volume" in error.message


def test_captured_error_acks_all_map_to_specific_classes(kraken_dir: Path) -> None:
    for line in (kraken_dir / "ws_error_acks.jsonl").read_text().splitlines():
        code = json.loads(line)["error"]
        assert type(error_from_kraken(code)) is not e.VenueError, code
    for line in (kraken_dir / "http_errors.jsonl").read_text().splitlines():
        (code,) = json.loads(line)["error"]
        assert type(error_from_kraken(code)) is not e.VenueError, code
