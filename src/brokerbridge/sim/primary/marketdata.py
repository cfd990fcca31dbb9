"""Market-data entries (BI, OF, LA, OP, CL, SE, HI, LO, TV, OI, IV, EV, NV, ACP, TC) of one instrument.

Shapes as observed (§3.4, fixtures): BI/OF lists of `{price,size}`; LA `{price,size,date}`; OP/HI/LO,
TV/EV/NV bare numbers; CL `{price,date}` on BYMA (the captured GGAL frame has no size) and
`{price,size,date}` on Matba Rofex; SE `{price}` on BYMA, `{price,size,date}` on futures; OI
`{price:null,size,date}` on futures. Entries with nothing to show are `null` — except an empty book
side on the WebSocket, which is `[]` (both captured: `"BI":[]` on WS, `null` on REST).
Choices where nothing is observed: `IV` and `ACP` are `null` (no indices or external auctions are
listed), `TC` is the session's trade count as a bare number, and OP/HI/LO are `null` before the
first trade of the session.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary.catalog import PrimaryInstrument
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.venues.primary.messages import MD_ENTRIES
from brokerbridge.venues.primary.wire_format import num

ENTRIES = MD_ENTRIES
MAX_DEPTH = 10


def market_data(
    exchange: PrimaryExchange,
    inst: PrimaryInstrument,
    entries: Iterable[str],
    depth: int,
    *,
    empty_book: list[Any] | None,
) -> dict[str, Any]:
    """The `marketData` object with exactly `entries`, in request order."""
    symbol = inst.symbol
    book = exchange.market.book(symbol)
    stats = exchange.stats(symbol)
    traded = stats.count > 0
    trades = exchange.market.trades(symbol)
    out: dict[str, Any] = {}
    for entry in entries:
        value: Any = None
        if entry in ("BI", "OF"):
            side = BookSide.BID if entry == "BI" else BookSide.ASK
            levels = [{"price": num(p), "size": num(q)} for p, q in book.levels(side, depth)]
            value = levels or empty_book
        elif entry == "LA" and trades:
            last = trades[-1]
            value = {"price": num(last.price), "size": num(last.qty), "date": last.time_ns // 1_000_000}
        elif entry == "OP" and traded:
            value = num(stats.open)
        elif entry == "HI" and traded:
            value = num(stats.high)
        elif entry == "LO" and traded:
            value = num(stats.low)
        elif entry == "CL":
            price, date = exchange.previous_close(symbol)
            value = (
                {"price": num(price), "date": date}
                if inst.byma
                else {"price": num(price), "size": num(_last_size(exchange, symbol)), "date": date}
            )
        elif entry == "SE":
            price, date = exchange.previous_close(symbol)
            if inst.kind == "future":
                value = {"price": num(price), "size": None, "date": date}
            elif inst.byma:
                value = {"price": num(price)}
        elif entry == "TV":
            value = num(stats.volume)
        elif entry == "NV" and inst.byma:
            value = num(stats.volume)
        elif entry == "EV" and inst.byma:
            value = num(inst.notional(stats.vwap, stats.volume).quantize(Decimal("0.01")))
        elif entry == "OI":
            oi = exchange.open_interest.get(symbol)
            if oi is not None:
                value = {"price": None, "size": oi.size, "date": oi.date_ms}
        elif entry == "TC":
            value = stats.count
        out[entry] = value
    return out


def _last_size(exchange: PrimaryExchange, symbol: str) -> Decimal:
    trades = exchange.market.trades(symbol)
    return trades[-1].qty if trades else Decimal(0)
