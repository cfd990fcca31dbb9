"""The bridge server: many WebSocket/REST clients share the Bridge's upstream venue sessions.

`create_app(bridge)` builds the ASGI app (FastAPI); `BridgeServer` runs it under uvicorn in the
caller's event loop. The protocol spoken on `/ws` is in `protocol.py` (documented in docs/server.md).
"""

from brokerbridge.server.app import ServerSettings, create_app
from brokerbridge.server.runner import BridgeServer

__all__ = ["BridgeServer", "ServerSettings", "create_app"]
