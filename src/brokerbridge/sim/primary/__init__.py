"""The Primary API simulator (Matba Rofex / reMarkets / xOMS): REST + WebSocket on one loopback port,
in front of sim.market, faithful enough for the unmodified pyRofex. Its fault switches
(`PrimaryFaults`) live with Kraken's in sim.faults."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brokerbridge.sim.primary.server import PrimaryEndpoints, PrimarySimulator

__all__ = ["PrimaryEndpoints", "PrimarySimulator"]


def __getattr__(name: str) -> Any:
    # The server on first use (PEP 562): the CLI reads `tokens` for a default without loading
    # the whole simulator (its catalogue, numpy, uvicorn).
    if name in __all__:
        from brokerbridge.sim.primary import server

        return getattr(server, name)
    raise AttributeError(f"module 'brokerbridge.sim.primary' has no attribute {name!r}")
