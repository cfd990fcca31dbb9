"""The Kraken Spot simulator: REST + WebSocket v2 on one loopback port, in front of sim.market."""

from brokerbridge.sim.kraken.account import ALL_PERMISSIONS, Permission
from brokerbridge.sim.kraken.server import KrakenSimulator, SimEndpoints

__all__ = ["ALL_PERMISSIONS", "KrakenSimulator", "Permission", "SimEndpoints"]
