"""HTTP requests: httpx underneath, `TransportError` on top (mapped once, here)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from brokerbridge.core.errors import TransportError


class HttpResponse:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers


class HttpClient:
    """A shared `httpx.AsyncClient` (connection pooling) with errors mapped to ours."""

    def __init__(self, *, timeout: float = 10.0, client: httpx.AsyncClient | None = None) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=timeout, headers={"User-Agent": "brokerbridge"}, follow_redirects=False
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        try:
            response = await self._client.request(method, url, content=content, headers=dict(headers or {}))
        except httpx.TimeoutException as exc:
            raise TransportError(f"{method} {_strip_query(url)} timed out") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {_strip_query(url)} failed: {type(exc).__name__}: {exc}") from exc
        return HttpResponse(response.status_code, response.content, response.headers)

    async def aclose(self) -> None:
        await self._client.aclose()


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]
