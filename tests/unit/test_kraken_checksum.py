"""Book checksum vectors from kraken.md §3.6.2, incl. the float-formatting pitfall."""

from __future__ import annotations

from decimal import Decimal

from brokerbridge.core.book import OrderBook
from brokerbridge.core.events import Level
from brokerbridge.venues.kraken.book import KrakenBook
from brokerbridge.venues.kraken.checksum import book_checksum, checksum_text
from brokerbridge.venues.kraken.messages import BookLevel

# Kraken checksum guide, BTC/USD (wire text with full precision).
GUIDE_BIDS = [
    ("45283.5", "0.10000000"), ("45283.4", "1.54582015"), ("45282.1", "0.10000000"),
    ("45281.0", "0.10000000"), ("45280.3", "1.54592586"), ("45279.0", "0.07990000"),
    ("45277.6", "0.03310103"), ("45277.5", "0.30000000"), ("45277.3", "1.54602737"),
    ("45276.6", "0.15445238"),
]  # fmt: skip
GUIDE_ASKS = [
    ("45285.2", "0.00100000"), ("45286.4", "1.54571953"), ("45286.6", "1.54571109"),
    ("45289.6", "1.54560911"), ("45290.2", "0.15890660"), ("45291.8", "1.54553491"),
    ("45294.7", "0.04454749"), ("45296.1", "0.35380000"), ("45297.5", "0.09945542"),
    ("45299.5", "0.18772827"),
]  # fmt: skip
GUIDE_ASK_TEXT = (
    "4528521000004528641545719534528661545711094528961545609114529021589066045291815455349145294744547494"
    "5296135380000452975994554245299518772827"
)

# Kraken book page, MATIC/USD, as printed (floats lost their trailing zeros).
MATIC_BIDS = [
    ("0.5666", "4831.75496356"), ("0.5665", "6658.22734739"), ("0.5664", "18724.91513344"),
    ("0.5663", "11563.92544914"), ("0.5662", "14006.65365711"), ("0.5661", "17454.85679807"),
    ("0.566", "18097.1547"), ("0.5659", "33644.89175666"), ("0.5658", "148.3464"),
    ("0.5657", "606.70854372"),
]  # fmt: skip
MATIC_ASKS = [
    ("0.5668", "4410.79769741"), ("0.5669", "4655.40412487"), ("0.567", "49844.89424998"),
    ("0.5671", "24306.41678"), ("0.5672", "29783.25223475"), ("0.5673", "57234.71239278"),
    ("0.5674", "45065.04744"), ("0.5675", "5912.76380354"), ("0.5676", "42514.92434778"),
    ("0.5677", "36304.0847022"),
]  # fmt: skip


def as_decimals(levels: list[tuple[str, str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in levels]


def at_precision(levels: list[tuple[str, str]], price_dp: int, qty_dp: int) -> list[Level]:
    return [
        Level(Decimal(f"{Decimal(p):.{price_dp}f}"), Decimal(f"{Decimal(q):.{qty_dp}f}")) for p, q in levels
    ]


def test_guide_example() -> None:
    text = checksum_text(GUIDE_ASKS, GUIDE_BIDS)
    assert len(text) == 281
    assert text.startswith(GUIDE_ASK_TEXT)
    assert book_checksum(GUIDE_ASKS, GUIDE_BIDS) == 3310070434
    assert book_checksum(as_decimals(GUIDE_ASKS), as_decimals(GUIDE_BIDS)) == 3310070434


def test_float_parsing_breaks_the_guide_example() -> None:
    floats = [(Decimal(repr(float(p))), Decimal(repr(float(q)))) for p, q in GUIDE_BIDS]
    assert book_checksum(as_decimals(GUIDE_ASKS), floats) != 3310070434


def test_matic_snapshot_and_update_with_pair_precision() -> None:
    book = OrderBook(10)
    book.replace(at_precision(MATIC_BIDS, 4, 8), at_precision(MATIC_ASKS, 4, 8))
    pairs = lambda levels: [(lvl.price, lvl.qty) for lvl in levels]  # noqa: E731
    assert book_checksum(pairs(book.asks_levels()), pairs(book.bids_levels())) == 2439117997
    book.apply(at_precision([("0.5657", "1098.3947558")], 4, 8), [])
    assert book_checksum(pairs(book.asks_levels()), pairs(book.bids_levels())) == 2114181697


def wire(levels: list[Level]) -> list[BookLevel]:
    return [BookLevel(price=level.price, qty=level.qty) for level in levels]


def test_kraken_book_gives_the_guide_and_matic_checksums() -> None:
    # The book the session verifies with: digits cached per level as it applies them.
    guide = KrakenBook(10)
    guide.apply_wire(wire(at_precision(GUIDE_BIDS, 1, 8)), wire(at_precision(GUIDE_ASKS, 1, 8)))
    assert guide.top_text(10)[0] == GUIDE_ASK_TEXT
    assert guide.checksum() == 3310070434
    matic = KrakenBook(10)  # prices below 1: leading zeros stripped, trailing ones kept
    matic.apply_wire(wire(at_precision(MATIC_BIDS, 4, 8)), wire(at_precision(MATIC_ASKS, 4, 8)))
    assert matic.checksum() == 2439117997
    matic.apply_wire(wire(at_precision([("0.5657", "1098.3947558")], 4, 8)), [])
    assert matic.checksum() == 2114181697


def test_matic_docs_float_text_gives_the_wrong_value() -> None:
    assert book_checksum(MATIC_ASKS, MATIC_BIDS) == 3830085102
