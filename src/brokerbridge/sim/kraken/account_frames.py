"""The private channels' data as Kraken WebSocket v2 entries: `balances` and `executions`.

Entries are dicts in the captured key order with numbers as raw literals at the asset's or pair's
precision (numbers.num). An order's first event (`pending_new`) and the snapshot carry the whole
order; later order events are sparse, as captured; a fill is one `trade` entry with the order's
running totals.
"""

from __future__ import annotations

from typing import Any

from brokerbridge.sim.kraken.account import AccountEvent, LedgerEntry, Order, OwnTrade
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.numbers import num, rfc3339


def balances_snapshot(exchange: KrakenExchange) -> list[dict[str, Any]]:
    out = []
    for asset_id, amount in exchange.account.balances.items():
        asset = exchange.catalog.asset(asset_id)
        assert asset is not None
        out.append(
            {
                "asset": asset.ws_id,
                "asset_class": "currency",
                "balance": num(amount, asset.decimals),
                "wallets": [{"type": "spot", "id": "main", "balance": num(amount, asset.decimals)}],
            }
        )
    return out


def ledger_entry(entry: LedgerEntry) -> dict[str, Any]:
    places = entry.asset.decimals
    return {
        "ledger_id": entry.ledger_id,
        "ref_id": entry.ref_id,
        "timestamp": rfc3339(entry.time_ns / 1e9),
        "type": entry.type,
        "asset": entry.asset.ws_id,
        "asset_class": "currency",
        "category": "trade",
        "wallet_type": "spot",
        "wallet_id": "main",
        "amount": num(entry.amount, places),
        "fee": num(entry.fee, places),
        "balance": num(entry.balance, places),
    }


def _order_ids(order: Order) -> dict[str, Any]:
    ids: dict[str, Any] = {"order_userref": order.userref}
    if order.cl_ord_id is not None:
        ids["cl_ord_id"] = order.cl_ord_id
    return ids


def _full_order(order: Order, exec_type: str, order_status: str, time_ns: int) -> dict[str, Any]:
    pair = order.pair
    cd = pair.cost_decimals
    entry: dict[str, Any] = {
        "order_id": order.txid,
        "symbol": pair.symbol,
        "order_qty": num(order.volume, pair.lot_decimals),
        "cum_cost": num(order.cost, cd),
        "time_in_force": order.timeinforce,
        "exec_type": exec_type,
        "side": order.side.value,
        "order_type": order.ordertype,
    }
    entry.update(_order_ids(order))
    if order.price is not None:
        entry["limit_price_type"] = "static"
        entry["limit_price"] = num(order.price, pair.pair_decimals)
        entry["stop_price"] = num(0, pair.pair_decimals)
    if order.post_only:
        entry["post_only"] = True
    entry["order_status"] = order_status
    entry["fee_usd_equiv"] = num(order.fee, cd)
    entry["fee_ccy_pref"] = "fcib" if "fcib" in order.oflags else "fciq"
    entry["timestamp"] = rfc3339(time_ns / 1e9)
    return entry


def order_snapshot_entry(order: Order) -> dict[str, Any]:
    """An open order in the `executions` snapshot."""
    entry = _full_order(order, "new", order.ws_status, order.opentm_ns)
    entry["cum_qty"] = num(order.vol_exec, order.pair.lot_decimals)
    entry["avg_price"] = num(order.avg_price, order.pair.pair_decimals)
    return entry


def order_event_entry(event: AccountEvent) -> dict[str, Any]:
    """pending_new carries the whole order; later events are sparse, as captured."""
    order = event.order
    assert order is not None
    pair = order.pair
    if event.kind == "pending_new":
        return _full_order(order, "pending_new", "pending_new", event.time_ns)
    entry: dict[str, Any] = {"timestamp": rfc3339(event.time_ns / 1e9)}
    if event.kind == "new":
        entry.update(order_status="new", exec_type="new")
    elif event.kind == "amended":
        # The order's new terms; its status is what it was (new or partially filled).
        entry.update(order_status=order.ws_status, exec_type="amended")
        entry["order_qty"] = num(order.volume, pair.lot_decimals)
        entry["cum_qty"] = num(order.vol_exec, pair.lot_decimals)
        if order.price is not None:
            entry["limit_price"] = num(order.price, pair.pair_decimals)
    else:
        status = "filled" if event.kind == "filled" else "canceled"
        entry.update(
            order_status=status,
            exec_type=status,
            cum_qty=num(order.vol_exec, pair.lot_decimals),
            cum_cost=num(order.cost, pair.cost_decimals),
            fee_usd_equiv=num(order.fee, pair.cost_decimals),
            avg_price=num(order.avg_price, pair.pair_decimals),
        )
    entry.update(_order_ids(order))
    if event.kind == "canceled":
        entry["cancel_reason"] = order.reason
        entry["reason"] = order.reason
    entry["order_id"] = order.txid
    if event.kind == "amended":
        entry["amended"] = True
        entry["reason"] = "User requested"
    return entry


def own_trade_entry(trade: OwnTrade) -> dict[str, Any]:
    """One fill of the account's order, with the order's running totals."""
    order = trade.order
    pair = order.pair
    cd = pair.cost_decimals
    status = "filled" if trade.cum_qty >= order.volume else "partially_filled"
    entry: dict[str, Any] = {"order_id": order.txid}
    entry.update(_order_ids(order))
    entry.update(
        {
            "exec_id": trade.txid,
            "exec_type": "trade",
            "trade_id": trade.trade_id,
            "symbol": pair.symbol,
            "side": order.side.value,
            "last_qty": num(trade.vol, pair.lot_decimals),
            "last_price": num(trade.price, pair.pair_decimals),
            "liquidity_ind": "m" if trade.maker else "t",
            "cost": num(trade.cost, cd),
            "order_type": order.ordertype,
            "timestamp": rfc3339(trade.time_ns / 1e9),
            "order_status": status,
            "cum_qty": num(trade.cum_qty, pair.lot_decimals),
            "cum_cost": num(trade.cum_cost, cd),
            "avg_price": num(trade.cum_cost / trade.cum_qty, pair.pair_decimals),
            "fee_usd_equiv": num(trade.fee, cd),
            "fees": [{"asset": pair.quote.ws_id, "qty": num(trade.fee, cd)}],
        }
    )
    return entry
