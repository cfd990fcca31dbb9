"""The only layer that touches sockets or waits: REST client, WebSocket connections, the shared
connection supervisor, REST polling fallback and per-venue connectors that wire them together."""
