"""Kraken Spot: REST (/0/public, /0/private) and WebSocket v2, pure protocol code."""

VENUE = "kraken"
