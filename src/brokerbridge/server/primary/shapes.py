"""Primary's JSON answers as `/primary/` gives them: the envelopes, the bodies the bridge builds
itself, and the refusals in Primary's wording (server/primary/rest.py decides which).

Shapes follow what Primary serves (and what the Primary simulator, src/brokerbridge/sim/primary/,
serves after the captures in /work/shared): `{"status":"OK", …payload…}`; errors as HTTP 200
`{"status":"ERROR","description":…,"message":…}` with Primary's sentences (`Product X:ROFX
doesn't exist`, `No tiene acceso a la cuenta X`, `Order X:P doesn't exist`, Spring's `Required
String parameter 'x' is not present`); a token that is not good: 401 with a JSON body (so pyRofex,
which re-logs in on a 401 and returns the failed body, gets a dict); a refused login: 401 with the
OAuth-style `invalid_grant` body. Numbers go out as JSON numbers with the venue's own digits.
A read the bridge forwards is answered with Primary's own body, unchanged (`forwarded`).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
from msgspec import UNSET, UnsetType
from starlette.responses import Response

from brokerbridge.core.log_limit import clip
from brokerbridge.venues.primary.messages import InstrumentId
from brokerbridge.venues.primary.rest_messages import (
    Account,
    InstrumentDetailWire,
    InstrumentRow,
    OrderAckBody,
    Segment,
)

JSON = "application/json;charset=UTF-8"
# Whatever a client named, echoed in an error at most this long (Primary echoes values; a bridge
# must not echo an unbounded or control-laden one).
ECHO_LIMIT = 80

_encoder = msgspec.json.Encoder(decimal_format="number")


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """`{"status":"ERROR","description":…,"message":…}`: Primary's refusal of a request."""

    status: str = "ERROR"
    description: str
    message: str | None = None


class LoginRefused(msgspec.Struct, frozen=True, kw_only=True):
    """getToken's refusal (the body APIDOC shows; pyRofex only looks at the status)."""

    error: str = "invalid_grant"
    error_description: str


class Segments(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "OK"
    segments: list[Segment]


class InstrumentsAll(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "OK"
    instruments: list[InstrumentRow]


class InstrumentsDetails(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "OK"
    instruments: list[InstrumentDetailWire]


class InstrumentDetail(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "OK"
    instrument: InstrumentDetailWire


class InstrumentsFlat(msgspec.Struct, frozen=True, kw_only=True):
    """byCFICode / bySegment: `[{marketId, symbol}]`, no `instrumentId` wrapper."""

    status: str = "OK"
    instruments: list[InstrumentId]


class PriceSize(msgspec.Struct, frozen=True):
    price: Decimal
    size: Decimal


class LastTrade(msgspec.Struct, frozen=True):
    price: Decimal
    size: Decimal | None
    date: int | None  # epoch milliseconds


class BookAndLast(msgspec.Struct, frozen=True, kw_only=True):
    """`marketData` of the entries served from the bridge's streams: only those asked for
    (UNSET: not asked), each null when there is nothing (REST's empty side is null, not [])."""

    BI: list[PriceSize] | UnsetType | None = UNSET
    OF: list[PriceSize] | UnsetType | None = UNSET
    LA: LastTrade | UnsetType | None = UNSET


class MarketDataAnswer(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "OK"
    marketData: BookAndLast
    depth: int
    aggregated: bool = True


class OrderAck(msgspec.Struct, frozen=True, kw_only=True):
    """newSingleOrder / cancelById: `{"order":{"clientId","proprietary"}}`."""

    status: str = "OK"
    order: OrderAckBody


class Accounts(msgspec.Struct, frozen=True, kw_only=True):
    status: str = "OK"
    accounts: list[Account]


Answer = (
    Failure
    | LoginRefused
    | Segments
    | InstrumentsAll
    | InstrumentsDetails
    | InstrumentDetail
    | InstrumentsFlat
    | MarketDataAnswer
    | OrderAck
    | Accounts
)


def respond(body: Answer, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type=JSON, headers=headers)


def forwarded(body: bytes) -> Response:
    """Primary's own answer to a read the bridge asked for, as it came."""
    return Response(body, media_type=JSON)


class Refused(Exception):
    """Answer the request with `body` (and `status`) now: a refusal in Primary's words."""

    def __init__(self, body: Failure, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(body.description)
        self.body = body
        self.status = status
        self.headers = headers

    def response(self) -> Response:
        return respond(self.body, self.status, self.headers)


def echo(value: object) -> str:
    """A value the client sent, as an error quotes it: bounded and on one line."""
    text = str(value)
    if not text.isprintable():  # escaped, quoted, so it stays one line
        return clip(text, ECHO_LIMIT)
    if len(text) <= ECHO_LIMIT:
        return text
    return f"{text[:ECHO_LIMIT]}… (+{len(text) - ECHO_LIMIT} characters)"


def refused(description: str, status: int = 200) -> Refused:
    return Refused(Failure(description=description), status)


def missing(name: str) -> Refused:
    return refused(f"Required String parameter '{name}' is not present")


def invalid(name: str, value: object, why: str = "") -> Refused:
    return refused(f"Invalid value '{echo(value)}' for parameter '{name}'" + (f": {why}" if why else ""))


def no_product(symbol: object, market: object) -> Refused:
    return refused(f"Product {echo(symbol)}:{echo(market)} doesn't exist")


def no_account(account: object) -> Refused:
    return refused(f"No tiene acceso a la cuenta {echo(account)}")


def no_order(cl_ord_id: object, proprietary: object) -> Refused:
    return refused(f"Order {echo(cl_ord_id)}:{echo(proprietary)} doesn't exist")


def no_segment(segment: object, market: object) -> Refused:
    return refused(f"Segment {echo(segment)}:{echo(market)} doesn't exist")


UNKNOWN_ROUTE = Failure(description="Ruta invalida", message="")
