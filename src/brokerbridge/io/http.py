"""HTTP requests: httpx underneath, `TransportError` on top (mapped once, here).

Two limits on every call: httpx's `timeout` bounds each connect, write and read — a server that
sends a byte now and then never trips it — and `deadline` bounds the whole call, from connecting to
the last byte of the body. The deadline runs on the injected clock, like every other wait of the
connectors.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping

import httpx

from brokerbridge.core.clock import Clock, SystemClock, race
from brokerbridge.core.errors import NotSent, TransportError

# httpx's errors raised before any byte of the request was written: no connection could be opened
# (refused, unreachable, DNS, TLS handshake), none opened in time, or none free in the pool. A
# request that failed so never reached the server (`NotSent`); any other failure may come after
# the request went out (a plain `TransportError`: its outcome is unknown).
_NOTHING_WRITTEN = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class HttpResponse:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers


class HttpClient:
    """A shared `httpx.AsyncClient` (connection pooling) with errors mapped to ours."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        deadline: float = 30.0,
        clock: Clock | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._client = client or httpx.AsyncClient(
            timeout=timeout, headers={"User-Agent": "brokerbridge"}, follow_redirects=False
        )
        self._deadline = deadline
        self._clock = clock or SystemClock()
        mask_secret_headers()

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: str | None = None,
        headers: Mapping[str, str] | None = None,
        repeatable: bool | None = None,
    ) -> HttpResponse:
        """The whole answer, or `TransportError` (refused, reset, timed out, over the deadline) —
        `NotSent` when no connection could be opened (nothing was written). `repeatable`: whether
        the request may go again at once when a pooled connection drops under it (None: a GET
        may) — False for a GET that acts (Primary takes its order entry as GETs)."""
        again = method == "GET" if repeatable is None else repeatable
        call = asyncio.ensure_future(
            self._request(method, url, content=content, headers=headers, again=again)
        )
        # Over the deadline the call is cancelled, which closes the connection it was trickling on.
        await race(call, self._clock.sleep(self._deadline))
        if call.cancelled():
            raise TransportError(
                f"{method} {_strip_query(url)}: no complete answer within {self._deadline:g} s",
                remedy="the venue is answering too slowly; brokerbridge retries with backoff (raise "
                "request_deadline in the venue's config section if the link is just slow)",
            )
        return call.result()

    async def _request(
        self, method: str, url: str, *, content: str | None, headers: Mapping[str, str] | None, again: bool
    ) -> HttpResponse:
        sent = dict(headers or {})
        try:
            try:
                response = await self._client.request(method, url, content=content, headers=sent)
            except _NOTHING_WRITTEN as exc:
                raise NotSent(
                    f"{method} {_strip_query(url)} not sent: {type(exc).__name__}: {exc}",
                    remedy="the venue could not be reached (nothing was sent); brokerbridge retries "
                    "with backoff — check the network and the venue URL",
                ) from exc
            except (httpx.RemoteProtocolError, httpx.ReadError):
                if not again:
                    raise  # it may have reached the venue (an order): never sent twice from here
                # A pooled keep-alive connection the server closed as this request went out (servers
                # close idle ones after a few seconds, pollers come back every few seconds): a GET
                # changes nothing, so it goes again at once, on a new connection. (Its failure is a
                # plain TransportError: the first attempt may have reached the server.)
                response = await self._client.request(method, url, content=content, headers=sent)
        except NotSent:
            raise
        except httpx.TimeoutException as exc:
            raise TransportError(f"{method} {_strip_query(url)} timed out") from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{method} {_strip_query(url)} failed: {type(exc).__name__}: {exc}") from exc
        return HttpResponse(response.status_code, response.content, response.headers)

    async def aclose(self) -> None:
        await self._client.aclose()


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


# httpcore logs every response's headers at DEBUG — Primary's login answer carries its token in
# `X-Auth-Token` — whatever logging the embedding app set up. Its loggers get a masking filter.
HTTPCORE_LOGGERS = ("httpcore.http11", "httpcore.http2")
_SECRET_HEADER = re.compile(
    r"(\(b'(?:x-auth-token|authorization|api-sign|api-key|set-cookie|cookie)',\s*b')[^']*",
    re.IGNORECASE,
)


class MaskSecretHeaders(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = _SECRET_HEADER.sub(r"\1***", text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


def mask_secret_headers() -> None:
    """Put the filter on httpcore's loggers once (idempotent)."""
    for name in HTTPCORE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MaskSecretHeaders) for f in logger.filters):
            logger.addFilter(MaskSecretHeaders())
