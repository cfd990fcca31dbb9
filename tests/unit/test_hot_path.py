"""The hot-path shortcuts of issue 8 give exactly what the plain code gives: the cached per-level
checksum text, the one-pass book decode, the per-second timestamp cache, the Primary number check."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from brokerbridge.core.book import OrderBook
from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.numbers import first_insane
from brokerbridge.venues.kraken.checksum import book_checksum, checksum_of_text, level_digits
from brokerbridge.venues.kraken.messages import BookFrame, parse_ws_frame
from brokerbridge.venues.kraken.normalize import TimestampParser, parse_timestamp
from brokerbridge.venues.primary.messages import MarketData, check_market_data


def _frames(kraken_dir: Path) -> list[str]:
    updates = (kraken_dir / "ws_book_updates_btcusd.jsonl").read_text().splitlines()
    return [(kraken_dir / "ws_book_snapshot_btcusd.json").read_text(), *updates]


def test_cached_level_text_gives_the_reference_checksum_after_every_frame(kraken_dir: Path) -> None:
    book = OrderBook(10, level_text=level_digits)
    for text in _frames(kraken_dir):
        frame = parse_ws_frame(text)
        assert isinstance(frame, BookFrame)
        data = frame.data[0]
        book.apply(data.bids, data.asks)
        reference = book_checksum(
            [(lv.price, lv.qty) for lv in book.asks_levels(10)],
            [(lv.price, lv.qty) for lv in book.bids_levels(10)],
        )
        assert checksum_of_text(*book.top_text(10)) == reference == data.checksum


def test_cached_text_follows_deletes_truncation_and_new_digits() -> None:
    book = OrderBook(2, level_text=level_digits)
    book.apply([], [_level("10.0", "1.50"), _level("11.0", "2"), _level("12.0", "3")])
    assert book.top_text(10) == ("100150" + "1102", "")  # 12.0 cut by depth 2
    book.apply([], [_level("10.00", "0.0"), _level("11.0", "2.000")])  # delete, then same price re-sent
    assert book.top_text(10) == ("1102000", "")
    book.apply([_level("9", "1"), _level("8", "1")], [])
    assert book.top_text(1) == ("1102000", "91")  # bids best (highest) first


def test_level_digits_reads_exponent_form_as_fixed_point() -> None:
    assert level_digits(Decimal("1E+2"), Decimal("1E-8")) == "100" + "1"
    assert level_digits(Decimal("63502.0"), Decimal("0.01500000")) == "635020" + "1500000"


def test_top_text_needs_a_book_built_with_level_text() -> None:
    with pytest.raises(ValueError, match="level_text"):
        OrderBook(10).top_text(10)


def test_book_frame_decodes_the_same_whichever_key_comes_first(kraken_dir: Path) -> None:
    for text in _frames(kraken_dir)[:50]:
        fast = parse_ws_frame(text)  # starts with "channel": the one-pass route
        body = json.loads(text)
        reordered = json.dumps({"type": body["type"], "data": body["data"], "channel": "book"})
        assert parse_ws_frame(reordered) == fast


@pytest.mark.parametrize(
    "data",
    [
        '[{"symbol":"BTC/USD","bids":[{"price":"NaN","qty":1}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[],"asks":[{"price":1,"qty":"Infinity"}]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":1e41,"qty":1}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":1,"qty":0e-99}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":-1,"qty":1}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[{"price":1,"qty":-0.5}],"asks":[]}]',
        '[{"symbol":"BTC/USD","bids":[], "asks":[{"price":[],"qty":1}]}]',
    ],
)
def test_insane_book_numbers_are_refused_on_the_fast_route(data: str) -> None:
    with pytest.raises(ProtocolError):
        parse_ws_frame('{"channel":"book","type":"update","data":' + data + "}")


def test_timestamp_parser_gives_parse_timestamps_float() -> None:
    parse = TimestampParser()
    rng = random.Random(8)
    stamps = [
        f"2026-07-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:"
        f"{rng.randint(0, 59):02d}.{rng.randint(0, 999_999):06d}Z"
        for _ in range(5000)
    ]
    stamps += ["2026-07-07T23:00:04Z", "2026-07-07T23:00:04.031158+00:00", "1969-12-31T23:59:59.500000Z"]
    for stamp in sorted(stamps) + stamps:  # sorted: the cached second is reused
        assert parse(stamp) == parse_timestamp(stamp), stamp


@pytest.mark.parametrize("bad", ["2026-07-07T23:00:04.03115٣Z", "2026-07-07T25:00:04.031158Z", "garbage"])
def test_timestamp_parser_refuses_what_parse_timestamp_refuses(bad: str) -> None:
    with pytest.raises(ProtocolError):
        TimestampParser()(bad)


def test_primary_number_check_agrees_with_the_generic_walk() -> None:
    rng = random.Random(5)
    specials = [
        "NaN",
        "Infinity",
        "-Infinity",
        "0E-41",
        "0E+40",
        "-0",
        "1E-40",
        "9.99E+40",
        "1E+41",
        "-1E-41",
    ]
    values = specials + [
        f"{rng.choice('-+')}{rng.randint(0, 10**6)}E{rng.randint(-50, 50)}" for _ in range(3000)
    ]
    for value in values:
        for body in (
            {"BI": [{"price": value, "size": 1}]},
            {"OF": [{"price": 1, "size": value}]},
            {"LA": {"price": value, "size": 1, "date": 1}},
            {"CL": value},
        ):
            data = msgspec.json.decode(json.dumps(body), type=MarketData)
            generic_ok = first_insane(data) is None
            try:
                check_market_data(data)
                fast_ok = True
            except ValueError:
                fast_ok = False
            assert fast_ok == generic_ok, (value, body)


class _Lv(msgspec.Struct, frozen=True):
    price: Decimal
    qty: Decimal


def _level(price: str, qty: str) -> _Lv:
    return _Lv(Decimal(price), Decimal(qty))
