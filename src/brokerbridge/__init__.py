"""brokerbridge: self-healing venue sessions re-served as one normalized stream.

    async with brokerbridge.Bridge(brokerbridge.load_config()) as bridge:
        async for event in bridge.subscribe("kraken", "ticker", "BTC/USD"):
            ...

Layers (imports only point left):  core ◀ venues ◀ io ◀ services ◀ bridge/cli; sim stands apart.
"""

from brokerbridge.bridge import Bridge
from brokerbridge.core.config import Config, KrakenConfig, load_config
from brokerbridge.core.errors import BrokerBridgeError

__version__ = "0.1.0"

__all__ = ["Bridge", "BrokerBridgeError", "Config", "KrakenConfig", "__version__", "load_config"]
