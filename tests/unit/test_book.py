"""core.book.OrderBook: in-order application, deletes, truncation to depth, wire text kept."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokerbridge.core.book import OrderBook
from brokerbridge.core.events import Level


def lv(price: str, qty: str) -> Level:
    return Level(Decimal(price), Decimal(qty))


def texts(levels: tuple[Level, ...]) -> list[tuple[str, str]]:
    return [(str(level.price), str(level.qty)) for level in levels]


def test_snapshot_sorted_best_first() -> None:
    book = OrderBook(10)
    book.replace([lv("99.0", "1"), lv("100.0", "2"), lv("98.5", "3")], [lv("102.0", "1"), lv("101.0", "2")])
    assert texts(book.bids_levels()) == [("100.0", "2"), ("99.0", "1"), ("98.5", "3")]
    assert texts(book.asks_levels()) == [("101.0", "2"), ("102.0", "1")]
    assert book.best_bid() == lv("100.0", "2")
    assert book.best_ask() == lv("101.0", "2")
    assert len(book) == 5


def test_zero_deletes_and_missing_delete_is_ignored() -> None:
    book = OrderBook(10)
    book.replace([lv("1.0", "1"), lv("2.0", "1")], [])
    book.apply([lv("1.0", "0.00000000"), lv("7.0", "0")], [])
    assert texts(book.bids_levels()) == [("2.0", "1")]


def test_levels_applied_in_order_within_one_message() -> None:
    book = OrderBook(10)
    book.apply([lv("5.0", "1"), lv("5.0", "0"), lv("5.0", "3")], [])
    assert texts(book.bids_levels()) == [("5.0", "3")]


def test_update_keeps_new_wire_text() -> None:
    book = OrderBook(10)
    book.replace([], [lv("63502.0", "0.00073311")])
    book.apply([], [lv("63502.0", "0.01500000")])
    assert texts(book.asks_levels()) == [("63502.0", "0.01500000")]
    # A key received with other trailing zeros replaces the old key object too.
    book.apply([], [lv("63502.00", "0.015")])
    assert texts(book.asks_levels()) == [("63502.00", "0.015")]


def test_truncates_after_whole_message() -> None:
    book = OrderBook(2)
    book.replace([lv("10", "1"), lv("9", "1")], [lv("11", "1"), lv("12", "1")])
    # Insert a better bid and delete it again in one message: the old worst level must survive,
    # because truncation happens only after the whole message.
    book.apply([lv("10.5", "1"), lv("10.5", "0")], [lv("10.9", "1")])
    assert texts(book.bids_levels()) == [("10", "1"), ("9", "1")]
    assert texts(book.asks_levels()) == [("10.9", "1"), ("11", "1")]
    # A level cut off by truncation does not come back when a better one is removed.
    book.apply([], [lv("10.9", "0")])
    assert texts(book.asks_levels()) == [("11", "1")]


def test_limit_slices_best_levels() -> None:
    book = OrderBook(100)
    book.replace([lv(str(p), "1") for p in range(1, 51)], [lv(str(p), "1") for p in range(51, 101)])
    assert [int(level.price) for level in book.bids_levels(3)] == [50, 49, 48]
    assert [int(level.price) for level in book.asks_levels(3)] == [51, 52, 53]
    assert book.bids_levels(0) == ()
    assert len(book.bids_levels(500)) == 50


def test_empty_book_and_bad_depth() -> None:
    book = OrderBook(10)
    assert book.best_bid() is None and book.best_ask() is None
    assert book.bids_levels() == () and book.asks_levels() == ()
    with pytest.raises(ValueError):
        OrderBook(0)


def test_deep_book_many_updates_stays_consistent() -> None:
    book = OrderBook(1000)
    reference: dict[Decimal, Decimal] = {}
    for i in range(5000):
        price = Decimal(1000 + (i * 7919) % 3000) / 10
        qty = Decimal(0) if i % 5 == 0 else Decimal(i % 13 + 1)
        book.apply([Level(price, qty)], [])
        if qty:
            reference[price] = qty
        else:
            reference.pop(price, None)
        if len(reference) > 1000:
            for p in sorted(reference)[: len(reference) - 1000]:
                del reference[p]
    expected = sorted(reference.items(), reverse=True)
    assert [(lvl.price, lvl.qty) for lvl in book.bids_levels()] == expected
