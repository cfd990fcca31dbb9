"""`Request[T]`: one venue REST call, not yet sent, and the type its answer decodes to.

Both venues have the same shape: a pure builder in `venues/<venue>/rest.py` returns a
`Request[T]` (`kraken.rest.open_orders_request()` is a `Request[OpenOrders]`), and the venue's
REST client in `io/<venue>/rest.py` sends it with `call(request) -> T`. The answer's type travels
with the request, so mypy checks every field a caller reads from it — no method names as strings,
no `Any` results.

A request holds no secret: signing (Kraken) and the login token (Primary) are added by the client
when it sends, so a `Request` may be logged or shown in an error as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

# Covariant: a `Request[dict[str, AssetPair]]` is a request for a `Mapping[str, AssetPair]` too.
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Request(Generic[T_co]):
    name: str  # the venue's name for the call: Kraken "OpenOrders", Primary "rest/order/all"
    verb: str  # HTTP method: "GET", "POST"
    path: str  # below the venue's REST base: "/0/private/OpenOrders", "rest/order/all"
    answer: type[T_co]  # the (msgspec) type of the answer: `OpenOrders`, `dict[str, AssetPair]`
    # Query (GET) or form (POST) fields as text, in the order the venue gets them; the venue's
    # codec encodes them (Kraken and Primary quote differently).
    params: tuple[tuple[str, str], ...] = ()
