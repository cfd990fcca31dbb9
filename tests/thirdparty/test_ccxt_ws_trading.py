"""ccxt.pro (unmodified) `create_order_ws` / `edit_order_ws` / `cancel_order_ws` on the simulator's
authenticated WebSocket v2 (add_order, amend_order, cancel_order), read back over REST."""

from __future__ import annotations

import ccxt.pro
import pytest
from tp_helpers import bounded

pytestmark = [pytest.mark.thirdparty, pytest.mark.timeout(60)]

SYMBOL = "BTC/USD"


async def test_ccxt_create_edit_cancel_order_ws(sim):
    ex = ccxt.pro.kraken(
        {
            "apiKey": sim.api_key,
            "secret": sim.api_secret,
            "enableRateLimit": False,
            "timeout": 10_000,
            "urls": {
                "api": {
                    "public": sim.rest,
                    "private": sim.rest,
                    "ws": {
                        "publicV2": sim.ws_public,
                        "privateV2": sim.ws_private,
                        "public": sim.pks_ws_url,
                        "private": sim.pks_auth_ws_url,
                    },
                }
            },
        }
    )
    try:
        await bounded(ex.load_markets(), 10, "load_markets")
        book = await ex.fetch_order_book(SYMBOL, 10)
        price = float(ex.price_to_precision(SYMBOL, book["bids"][0][0] * 0.5))
        create = ex.create_order_ws(SYMBOL, "limit", "buy", 0.001, price, {"clientOrderId": "ccxt-1"})
        created = await bounded(create, 10, "add_order")
        oid = created["id"]
        assert oid and isinstance(oid, str), created
        new_price = float(ex.price_to_precision(SYMBOL, price - 1))
        edit = ex.edit_order_ws(oid, SYMBOL, "limit", "buy", 0.002, new_price)
        edited = await bounded(edit, 10, "amend_order")
        assert edited["id"] == oid, edited
        (open_order,) = [o for o in await ex.fetch_open_orders() if o["id"] == oid]
        assert open_order["amount"] == pytest.approx(0.002)
        assert open_order["price"] == pytest.approx(new_price)
        assert open_order["clientOrderId"] == "ccxt-1"
        # The same amend over REST (AmendOrder): the order keeps its id.
        await bounded(ex.edit_order(oid, SYMBOL, "limit", "buy", 0.003, new_price), 10, "AmendOrder")
        (open_order,) = [o for o in await ex.fetch_open_orders() if o["id"] == oid]
        assert open_order["amount"] == pytest.approx(0.003)
        ack = await bounded(ex.cancel_order_ws(oid), 10, "cancel_order")
        assert ack["success"] is True and ack["result"]["order_id"] == oid, ack
        assert oid not in {o["id"] for o in await ex.fetch_open_orders()}
    finally:
        await ex.close()
