"""Kraken REST over HTTP: the pure codec (venues.kraken.rest) plus httpx and a nonce lock.

Private calls are serialised under one lock from nonce to response: the nonce must arrive at
Kraken strictly increasing per key, and two concurrent requests could otherwise overtake each
other on the wire. Public calls run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from brokerbridge.core.config import KrakenConfig
from brokerbridge.core.errors import ConfigError, InvalidNonce
from brokerbridge.io.http import HttpClient
from brokerbridge.venues.kraken import rest as codec
from brokerbridge.venues.kraken.auth import NonceSource

logger = logging.getLogger(__name__)


class KrakenRestClient:
    def __init__(
        self,
        config: KrakenConfig,
        *,
        http: HttpClient | None = None,
        nonces: NonceSource | None = None,
    ) -> None:
        self._config = config
        self._http = http or HttpClient(timeout=config.request_timeout)
        self._nonces = nonces or NonceSource()
        self._private_lock = asyncio.Lock()
        self.calls = 0

    @property
    def has_credentials(self) -> bool:
        return self._config.has_credentials

    async def public(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        request = codec.build_public(method, dict(params or {}))
        return await self._send(request, method)

    async def private(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        if not self._config.has_credentials:
            raise ConfigError(
                f"Kraken {method} needs API credentials",
                remedy="set kraken.api_key and kraken.api_secret (or BROKERBRIDGE_KRAKEN_API_KEY/_SECRET)",
            )
        assert self._config.api_key is not None and self._config.api_secret is not None
        async with self._private_lock:
            for attempt in (1, 2):
                request = codec.build_private(
                    method,
                    dict(params or {}),
                    nonce=self._nonces.next(),
                    api_key=self._config.api_key,
                    secret=self._config.api_secret.reveal(),
                )
                try:
                    return await self._send(request, method)
                except InvalidNonce:
                    # A fresh, larger nonce fixes a clock step; a second failure is a shared key.
                    if attempt == 2:
                        raise
                    logger.warning("kraken: EAPI:Invalid nonce on %s; retrying once with a new nonce", method)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, request: codec.RestRequest, method: str) -> Any:
        self.calls += 1
        response = await self._http.request(
            request.method,
            self._config.rest_url + request.target,
            content=request.body or None,
            headers=request.headers,
        )
        return codec.parse_result(response.status, response.body, method)

    async def aclose(self) -> None:
        await self._http.aclose()
