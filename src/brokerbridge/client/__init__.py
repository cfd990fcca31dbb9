"""`brokerbridge.client`: use a running bridge server from another process or machine.

    from brokerbridge.client import BridgeClient

    async with BridgeClient("http://127.0.0.1:8000") as bridge:
        async for event in bridge.subscribe("kraken", "ticker", "BTC/USD"):
            print(event)

Depends on `brokerbridge.core` only (the normalized events and the error tree). See docs/client.md.
"""

from brokerbridge.client.client import BridgeClient

# The server's refusals, re-exported: they are core's classes, the ones the Bridge raises in-process.
from brokerbridge.core.errors import NotAuthorized, NotLoaded, UnknownChannel, UnknownVenue

__all__ = ["BridgeClient", "NotAuthorized", "NotLoaded", "UnknownChannel", "UnknownVenue"]
