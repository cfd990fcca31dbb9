"""REST under `/api/`: venues, health, instruments, balances, open orders, fills.

Bodies are encoded with msgspec (Decimals as strings, exactly the venue's digits). Mistakes answer
with a typed error body `{"error": {"code", "message", "remedy"}}` and a 4xx status.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from brokerbridge.bridge import Bridge
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.server.auth import presented_key

_encoder = msgspec.json.Encoder(decimal_format="string")


class JsonBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encoder.encode(content)


def _bridge(request: Request) -> Bridge:
    bridge: Bridge = request.app.state.bridge
    return bridge


def _error(status: int, code: str, message: str, remedy: str = "") -> JsonBody:
    return JsonBody({"error": {"code": code, "message": message, "remedy": remedy}}, status_code=status)


def refusal(request: Request, scope: str) -> JsonBody | None:
    """401 without a valid key when one is needed, 403 when the key lacks `scope`; None: allowed."""
    auth = request.app.state.server.auth
    presented = presented_key(request.headers, request.query_params)
    key = None
    if presented is not None:
        key = auth.lookup(presented)
        if key is None:
            return _error(
                401, "not_authorized", "invalid API key", "use a key from the server's [server] keys"
            )
    principal = auth.principal_of(key)
    if principal.allows(scope):
        return None
    if key is None:
        return _error(
            401,
            "not_authorized",
            f"this needs an API key with the {scope!r} scope",
            "send Authorization: Bearer <key> (or ?key=)",
        )
    return _error(403, "not_authorized", f"key {key.name!r} lacks the {scope!r} scope")


def _unknown_venue(bridge: Bridge, venue: str) -> JsonBody | None:
    if venue in bridge.connectors:
        return None
    return _error(
        404, "unknown_venue", f"unknown venue {venue!r}", f"venues: {', '.join(sorted(bridge.connectors))}"
    )


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["api"])

    @router.get("/venues", summary="Configured venues and the state of their streams")
    async def venues(request: Request) -> Response:
        if (denied := refusal(request, "market")) is not None:
            return denied
        bridge = _bridge(request)
        out = []
        for venue, health in bridge.health().items():
            streams = {
                name: stream.get("state")
                for name, stream in (health.get("streams") or {}).items()
                if isinstance(stream, dict) and "state" in stream
            }
            out.append({"venue": venue, "credentials": health.get("credentials", False), "streams": streams})
        return JsonBody({"venues": out})

    @router.get("/health", summary="Per venue and stream: state, mode, reconnects, message age, token expiry")
    async def health(request: Request) -> Response:
        if (denied := refusal(request, "market")) is not None:
            return denied
        bridge = _bridge(request)
        venues = bridge.health()
        ok = all(
            stream.get("state") in ("live", None)
            for h in venues.values()
            for stream in (h.get("streams") or {}).values()
            if isinstance(stream, dict) and stream.get("subscriptions")
        )
        return JsonBody({"status": "ok" if ok else "degraded", "venues": venues})

    @router.get("/instruments", summary="Instruments: Primary's catalogue; Kraken: the symbols in use")
    async def instruments(
        request: Request,
        venue: str = Query(..., description="kraken or primary"),
        search: str = Query("", description="case-insensitive substring of symbol/ticker"),
    ) -> Response:
        if (denied := refusal(request, "market")) is not None:
            return denied
        bridge = _bridge(request)
        if (refused := _unknown_venue(bridge, venue)) is not None:
            return refused
        if venue == "primary":
            try:
                catalog = await bridge.catalog(venue)
            except BrokerBridgeError as exc:
                return _error(503, "unavailable", exc.message, exc.remedy)
            details = catalog.search(search)
            return JsonBody(
                {"venue": venue, "source": "catalog", "count": len(details), "instruments": details}
            )
        # Kraken: the symbols this bridge currently streams (the AssetPairs listing is not exposed yet).
        symbols = sorted(
            {
                sub.split(":")[2]
                for stream in (bridge.health()[venue].get("streams") or {}).values()
                if isinstance(stream, dict)
                for sub in (stream.get("subscriptions") or {})
                if len(sub.split(":")) > 2
            }
        )
        needle = search.strip().lower()
        rows = [{"symbol": s} for s in symbols if needle in s.lower()]
        return JsonBody({"venue": venue, "source": "subscriptions", "count": len(rows), "instruments": rows})

    @router.get("/balances/{venue}", summary="Balances (stale while the private stream is down)")
    async def balances(request: Request, venue: str) -> Response:
        if (denied := refusal(request, "account")) is not None:
            return denied
        bridge = _bridge(request)
        if (refused := _unknown_venue(bridge, venue)) is not None:
            return refused
        views = bridge.balances(venue)
        return JsonBody({"venue": venue, "balances": list(views.values())})

    @router.get("/orders/{venue}", summary="Orders believed open")
    async def orders(request: Request, venue: str) -> Response:
        if (denied := refusal(request, "account")) is not None:
            return denied
        bridge = _bridge(request)
        if (refused := _unknown_venue(bridge, venue)) is not None:
            return refused
        return JsonBody({"venue": venue, "orders": bridge.open_orders(venue)})

    @router.get("/fills/{venue}", summary="Every fill seen, each once")
    async def fills(request: Request, venue: str) -> Response:
        if (denied := refusal(request, "account")) is not None:
            return denied
        bridge = _bridge(request)
        if (refused := _unknown_venue(bridge, venue)) is not None:
            return refused
        return JsonBody({"venue": venue, "fills": bridge.fills(venue)})

    return router
