"""Kraken I/O: signed REST client, WebSocket token lifecycle, and the connector that runs the
public and private streams under the shared supervisor."""
