"""Kraken API-key permissions: which one each private call needs, and where the key page has it.

Kraken answers a call the key may not make with `EGeneral:Permission denied`, which names no
permission; `needed_for(method)` names it, so every message about a refusal can say which box to
tick. Labels are the ones the Kraken bot guide's checklist uses (Query Funds, Query Open Orders &
Trades, Query Closed Orders & Trades, Access WebSockets API) plus the two trading ones; `where` is
the group and the checkbox on kraken.com › Settings › API › edit the key.
"""

from __future__ import annotations

from dataclasses import dataclass

API_PAGE = "kraken.com › Settings › API"
DOCTOR = "`brokerbridge doctor kraken` checks every permission brokerbridge needs"


@dataclass(frozen=True, slots=True)
class KeyPermission:
    label: str  # as the bot guide names it
    where: str  # group › checkbox on the key page

    def how_to_enable(self) -> str:
        return (
            f"enable “{self.label}” for this API key: {API_PAGE} › edit the key › {self.where} › Save, "
            "then wait a minute or two (Kraken takes a moment to apply key changes)"
        )

    def remedy(self) -> str:
        """What to do when Kraken refused a call for want of this permission."""
        return f"{self.how_to_enable()}; {DOCTOR}"


QUERY_FUNDS = KeyPermission("Query Funds", "Funds permissions › tick “Query”")
QUERY_OPEN = KeyPermission(
    "Query Open Orders & Trades", "Orders and trades › tick “Query open orders & trades”"
)
QUERY_CLOSED = KeyPermission(
    "Query Closed Orders & Trades", "Orders and trades › tick “Query closed orders & trades”"
)
WEBSOCKETS = KeyPermission("Access WebSockets API", "Other › tick “Access WebSockets API”")
CREATE_ORDERS = KeyPermission("Create & Modify Orders", "Orders and trades › tick “Create & modify orders”")
CANCEL_ORDERS = KeyPermission("Cancel/Close Orders", "Orders and trades › tick “Cancel & close orders”")

# The bot guide's checklist: what reading an account needs (balances, orders, fills, streams).
READ_CHECKLIST = (QUERY_FUNDS, QUERY_OPEN, QUERY_CLOSED, WEBSOCKETS)
TRADING = (CREATE_ORDERS, CANCEL_ORDERS)

# Private REST method → the permission it needs. Kraken lets either trading permission cancel, so
# a cancel refused means both are missing: the remedy names the one for cancelling.
_BY_METHOD: dict[str, KeyPermission] = {
    "Balance": QUERY_FUNDS,
    "BalanceEx": QUERY_FUNDS,
    "TradeBalance": QUERY_FUNDS,
    "OpenOrders": QUERY_OPEN,
    "ClosedOrders": QUERY_CLOSED,
    "QueryOrders": QUERY_OPEN,
    "TradesHistory": QUERY_CLOSED,
    "QueryTrades": QUERY_CLOSED,
    "GetWebSocketsToken": WEBSOCKETS,
    "AddOrder": CREATE_ORDERS,
    "AddOrderBatch": CREATE_ORDERS,
    "EditOrder": CREATE_ORDERS,
    "AmendOrder": CREATE_ORDERS,
    "CancelOrder": CANCEL_ORDERS,
    "CancelAll": CANCEL_ORDERS,
    "CancelOrderBatch": CANCEL_ORDERS,
    "CancelAllOrdersAfter": CANCEL_ORDERS,
}


def needed_for(method: str) -> KeyPermission | None:
    """The permission Kraken's private REST `method` needs (None: not one we know)."""
    return _BY_METHOD.get(method)
