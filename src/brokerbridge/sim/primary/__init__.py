"""The Primary API simulator (Matba Rofex / reMarkets / xOMS): REST + WebSocket on one loopback port,
in front of sim.market, faithful enough for the unmodified pyRofex. Its fault switches
(`PrimaryFaults`) live with Kraken's in sim.faults."""

from brokerbridge.sim.primary.server import PrimaryEndpoints, PrimarySimulator

__all__ = ["PrimaryEndpoints", "PrimarySimulator"]
