"""The Primary API simulator (Matba Rofex / reMarkets / xOMS): REST + WebSocket on one loopback port,
in front of sim.market, faithful enough for the unmodified pyRofex."""

from brokerbridge.sim.primary.faults import PrimaryFaults
from brokerbridge.sim.primary.server import PrimaryEndpoints, PrimarySimulator

__all__ = ["PrimaryEndpoints", "PrimaryFaults", "PrimarySimulator"]
