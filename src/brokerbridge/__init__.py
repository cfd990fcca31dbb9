"""brokerbridge: self-healing venue sessions re-served as one normalized stream.

    async with brokerbridge.Bridge(brokerbridge.load_config()) as bridge:
        async for event in bridge.subscribe("kraken", "ticker", "BTC/USD"):
            ...

Layers (imports only point left):  core ◀ venues ◀ io ◀ services ◀ bridge/cli; sim stands apart.
"""

from typing import TYPE_CHECKING, Any

from brokerbridge.core.config import Config, KrakenConfig, load_config
from brokerbridge.core.errors import BrokerBridgeError

if TYPE_CHECKING:
    from brokerbridge.bridge import Bridge

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `Bridge` on first use (PEP 562): importing it loads the server stack, numpy and scipy
    # (about 1.5 s of CPU), which the CLI's light commands (`--help`, `status`, `sim`) never need.
    if name == "Bridge":
        from brokerbridge.bridge import Bridge

        return Bridge
    raise AttributeError(f"module 'brokerbridge' has no attribute {name!r}")


__all__ = ["Bridge", "BrokerBridgeError", "Config", "KrakenConfig", "__version__", "load_config"]
