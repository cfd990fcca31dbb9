"""Kraken Spot REST as served by the simulator: `/0/public/<Method>` and `/0/private/<Method>`.

Always HTTP 200 with `{"error":[…],"result":…}` and `Content-Type: application/json; charset=utf-8`
for API-level outcomes (HTTP 5xx only when the fault switch asks for it). Private calls are checked
in this order (Kraken does not document it, see protocol §7.6): POST, API-Key, nonce present,
API-Sign over the raw body, nonce increasing, rate limit, method known, permission, arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from brokerbridge.sim.faults import hold_until_disconnected
from brokerbridge.sim.kraken.account import TOKEN_TTL_S, ApiError, ApiKey, Order, OwnTrade, Permission
from brokerbridge.sim.kraken.catalog import MAKER_FEES, TAKER_FEES, KrakenPair
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.numbers import fixed, num, rfc1123, rfc3339, seconds_literal
from brokerbridge.sim.kraken.order_input import add_order_from_rest, amend_from_rest, amend_volume
from brokerbridge.sim.kraken.rest_args import Params, flag_arg, int_arg, parse_body
from brokerbridge.sim.market import CANDLE_INTERVALS, BookSide, Side
from brokerbridge.venues.kraken.auth import verify

log = logging.getLogger(__name__)

JSON_TYPE = "application/json; charset=utf-8"
Result = Any


def envelope(result: Result) -> bytes:
    return msgspec.json.encode({"error": [], "result": result})


def error_body(code: str) -> bytes:
    return msgspec.json.encode({"error": [code]})


def json_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, headers={"Content-Type": JSON_TYPE})


@dataclass(frozen=True, slots=True)
class PrivateMethod:
    handler: Callable[[Params, ApiKey], Result]
    permissions: tuple[Permission, ...]  # any of them suffices
    cost: float = 1.0  # REST call counter cost; 0 = trading calls (separate limiter on Kraken)


class KrakenRest:
    def __init__(self, exchange: KrakenExchange) -> None:
        self.exchange = exchange
        self.public: dict[str, Callable[[Params], Result]] = {
            "Time": self.time,
            "SystemStatus": self.system_status,
            "Assets": self.assets,
            "AssetPairs": self.asset_pairs,
            "Ticker": self.ticker,
            "Depth": self.depth,
            "OHLC": self.ohlc,
            "Trades": self.trades,
        }
        query_funds = (Permission.QUERY_FUNDS,)
        self.private: dict[str, PrivateMethod] = {
            "Balance": PrivateMethod(self.balance, query_funds),
            "BalanceEx": PrivateMethod(self.balance_ex, query_funds),
            "GetWebSocketsToken": PrivateMethod(self.websockets_token, (Permission.WEBSOCKETS,)),
            "OpenOrders": PrivateMethod(self.open_orders, (Permission.QUERY_OPEN,)),
            "ClosedOrders": PrivateMethod(self.closed_orders, (Permission.QUERY_CLOSED,)),
            "QueryOrders": PrivateMethod(self.query_orders, (Permission.QUERY_OPEN, Permission.QUERY_CLOSED)),
            "TradesHistory": PrivateMethod(self.trades_history, (Permission.QUERY_CLOSED,), cost=2.0),
            "AddOrder": PrivateMethod(self.add_order, (Permission.CREATE_ORDERS,), cost=0.0),
            "CancelOrder": PrivateMethod(
                self.cancel_order, (Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS), cost=0.0
            ),
            "CancelAll": PrivateMethod(
                self.cancel_all, (Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS), cost=0.0
            ),
            "AmendOrder": PrivateMethod(
                self.amend_order, (Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS), cost=0.0
            ),
            "CancelAllOrdersAfter": PrivateMethod(
                self.cancel_all_orders_after, (Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS), cost=0.0
            ),
        }

    # -- HTTP edge -----------------------------------------------------------------------------------------
    async def handle_public(self, request: Request) -> Response:
        early = await self._faults_first()
        if early is not None:
            return early
        method = request.path_params["method"]
        params: Params = dict(request.query_params)
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", "replace")
            params.update(parse_body(body, request.headers.get("content-type", "")))
        handler = self.public.get(method)
        if handler is None:
            return json_response(error_body("EGeneral:Unknown method"))
        try:
            return json_response(envelope(handler(params)))
        except ApiError as exc:
            return json_response(error_body(exc.code))

    async def handle_private(self, request: Request) -> Response:
        early = await self._faults_first()
        if early is not None:
            return early
        if request.method != "POST":
            return json_response(error_body("EGeneral:Invalid arguments"))
        body = (await request.body()).decode("utf-8", "replace")
        try:
            result = await self._private(request, body)
        except ApiError as exc:
            return json_response(error_body(exc.code))
        if request.path_params["method"] == "AddOrder" and self.exchange.faults.take("lose_answers"):
            await hold_until_disconnected(request.receive)
        return json_response(envelope(result))

    async def _faults_first(self) -> Response | None:
        faults = self.exchange.faults
        if faults.latency_ms > 0:
            await self.exchange.clock.sleep(faults.latency_ms / 1000)
        if faults.take("rest_http_errors"):
            status = faults.rest_http_status
            return Response(
                f"<html><body><h1>{status} Service Unavailable</h1></body></html>",
                status_code=status,
                headers={"Content-Type": "text/html"},
            )
        if faults.take("rest_unavailable"):
            return json_response(error_body("EService:Unavailable"))
        return None

    async def _private(self, request: Request, body: str) -> Result:
        method = request.path_params["method"]
        key = self.exchange.keys.get(request.headers.get("API-Key", "").strip())
        if key is None:
            raise ApiError("EAPI:Invalid key")
        params = parse_body(body, request.headers.get("content-type", ""))
        nonce_text = params.get("nonce", "")
        if not nonce_text:
            raise ApiError("EAPI:Invalid nonce")
        if not verify(request.url.path, nonce_text, body, key.secret, request.headers.get("API-Sign", "")):
            raise ApiError("EAPI:Invalid signature")
        try:
            nonce = int(nonce_text)
        except ValueError:
            raise ApiError("EAPI:Invalid nonce") from None
        if not key.accept_nonce(nonce):
            raise ApiError("EAPI:Invalid nonce")
        spec = self.private.get(method)
        if spec is not None:
            self.exchange.private_calls[method] += 1  # signed calls received, refused ones too
        if self.exchange.faults.take("rate_limit"):
            raise ApiError("EAPI:Rate limit exceeded")
        if spec is not None and spec.cost and not key.charge(spec.cost, self.exchange.clock.monotonic()):
            raise ApiError("EAPI:Rate limit exceeded")
        if spec is None:
            raise ApiError("EGeneral:Unknown method")
        if not set(spec.permissions) & self.exchange.permissions(key):
            raise ApiError("EGeneral:Permission denied")
        return spec.handler(params, key)

    # -- public ----------------------------------------------------------------------------------------------
    def time(self, params: Params) -> Result:
        now = self.exchange.clock.time() + self.exchange.faults.clock_offset_s
        return {"unixtime": int(now), "rfc1123": rfc1123(now)}

    def system_status(self, params: Params) -> Result:
        return {
            "status": self.exchange.faults.system_status,
            "timestamp": rfc3339(self.exchange.clock.time(), digits=0),
        }

    def assets(self, params: Params) -> Result:
        wanted = [name for name in params.get("asset", "").split(",") if name.strip()]
        assets = list(self.exchange.catalog.assets)
        if wanted:
            assets = []
            for name in wanted:
                asset = self.exchange.catalog.asset(name)
                if asset is None:
                    raise ApiError("EQuery:Unknown asset")
                assets.append(asset)
        return {
            a.asset_id: {
                "aclass": "currency",
                "altname": a.altname,
                "decimals": a.decimals,
                "display_decimals": a.display_decimals,
                "collateral_value": 1,
                "status": "enabled",
            }
            for a in assets
        }

    def _pairs(self, params: Params, required: bool) -> list[tuple[str, KrakenPair]]:
        """(result key, pair) for the `pair` argument; keys echo slash names as Kraken does."""
        raw = params.get("pair", "")
        names = [name.strip() for name in raw.split(",") if name.strip()]
        if not names:
            if required:
                raise ApiError("EGeneral:Invalid arguments")
            return [(pair.pair_id, pair) for pair in self.exchange.catalog.pairs]
        found: list[tuple[str, KrakenPair]] = []
        for name in names:
            pair = self.exchange.catalog.rest_pair(name)
            if pair is None:
                raise ApiError("EQuery:Unknown asset pair")
            found.append((name if "/" in name else pair.pair_id, pair))
        return found

    def asset_pairs(self, params: Params) -> Result:
        info = params.get("info", "info") or "info"
        if info not in ("info", "leverage", "fees", "margin"):
            raise ApiError("EGeneral:Invalid arguments:info")
        return {key: _pair_row(pair, info) for key, pair in self._pairs(params, required=False)}

    def ticker(self, params: Params) -> Result:
        out: dict[str, Any] = {}
        for key, pair in self._pairs(params, required=False):
            out[key] = self._ticker_row(pair)
        return out

    def _ticker_row(self, pair: KrakenPair) -> Result:
        market = self.exchange.market
        book = market.book(pair.symbol)
        cd = pair.cost_decimals
        now = self.exchange.clock.time()
        midnight = now - now % 86_400
        today = market.stats(pair.symbol, midnight)
        day = market.stats(pair.symbol, now - 86_400)
        last = market.trades(pair.symbol)[-1]
        ask = book.levels(BookSide.ASK, 1)[0]
        bid = book.levels(BookSide.BID, 1)[0]
        return {
            "a": [fixed(ask[0], cd), str(max(1, int(ask[1]))), fixed(ask[1], 3)],
            "b": [fixed(bid[0], cd), str(max(1, int(bid[1]))), fixed(bid[1], 3)],
            "c": [fixed(last.price, cd), fixed(last.qty, pair.lot_decimals)],
            "v": [fixed(today.volume, 8), fixed(day.volume, 8)],
            "p": [fixed(today.vwap, cd), fixed(day.vwap, cd)],
            "t": [today.count, day.count],
            "l": [fixed(today.low, cd), fixed(day.low, cd)],
            "h": [fixed(today.high, cd), fixed(day.high, cd)],
            "o": fixed(today.open, cd),
        }

    def depth(self, params: Params) -> Result:
        count = int_arg(params, "count", 100) or 100
        if not 1 <= count <= 500:
            raise ApiError("EGeneral:Invalid arguments:count")
        out: dict[str, Any] = {}
        for key, pair in self._pairs(params, required=True):
            book = self.exchange.market.book(pair.symbol)
            cd = pair.cost_decimals

            def rows(side: BookSide, book: Any = book, cd: int = cd) -> list[Any]:
                # Volumes with 3 decimals, as every captured Depth response shows them.
                return [
                    [
                        fixed(price, cd),
                        fixed(qty.quantize(Decimal("0.001"), ROUND_DOWN), 3),
                        int(book.stamp.get((side, price), 0)),
                    ]
                    for price, qty in book.levels(side, count)
                ]

            out[key] = {"asks": rows(BookSide.ASK), "bids": rows(BookSide.BID)}
        return out

    def ohlc(self, params: Params) -> Result:
        interval = int_arg(params, "interval", 1) or 1
        if interval not in CANDLE_INTERVALS:
            raise ApiError("EGeneral:Invalid arguments:interval")
        since = int_arg(params, "since")
        (key, pair), *_ = self._pairs(params, required=True)
        candles = self.exchange.market.filled_candles(pair.symbol, interval)
        candles = candles[-720:]
        last = candles[-2].begin if len(candles) > 1 else (candles[-1].begin if candles else 0)
        if since is not None:
            candles = [c for c in candles if c.begin > since]
        pd = pair.pair_decimals
        rows = [
            [
                c.begin,
                fixed(c.open, pd),
                fixed(c.high, pd),
                fixed(c.low, pd),
                fixed(c.close, pd),
                fixed(c.vwap, pd),
                fixed(c.volume, 8),
                c.count,
            ]
            for c in candles
        ]
        return {key: rows, "last": last}

    def trades(self, params: Params) -> Result:
        count = int_arg(params, "count", 1000) or 1000
        if not 1 <= count <= 1000:
            raise ApiError("EGeneral:Invalid arguments:count")
        (key, pair), *_ = self._pairs(params, required=True)
        since_raw = params.get("since", "").strip()
        history = self.exchange.market.trades(pair.symbol)
        if since_raw:
            since = int_arg(params, "since") or 0
            since_ns = since if since > 10**12 else since * 1_000_000_000  # seconds or a ns cursor
            picked = [t for t in history if t.time_ns > since_ns][:count]
        else:
            picked = list(history)[-count:]
        cd = pair.cost_decimals
        rows = [
            [
                fixed(t.price, cd),
                fixed(t.qty, pair.lot_decimals),
                seconds_literal(t.time_ns),
                "b" if t.side is Side.BUY else "s",
                "m" if t.ord_type == "market" else "l",
                "",
                t.trade_id,
            ]
            for t in picked
        ]
        last = (
            str(picked[-1].time_ns) if picked else (since_raw or str(int(self.exchange.clock.time() * 1e9)))
        )
        return {key: rows, "last": last}

    # -- private: account ------------------------------------------------------------------------------------
    def balance(self, params: Params, key: ApiKey) -> Result:
        account = self.exchange.account
        return {
            asset_id: fixed(amount, self._decimals(asset_id)) for asset_id, amount in account.balances.items()
        }

    def balance_ex(self, params: Params, key: ApiKey) -> Result:
        account = self.exchange.account
        return {
            asset_id: {
                "balance": fixed(amount, self._decimals(asset_id)),
                "hold_trade": fixed(account.held(asset_id), self._decimals(asset_id)),
            }
            for asset_id, amount in account.balances.items()
        }

    def _decimals(self, asset_id: str) -> int:
        asset = self.exchange.catalog.asset(asset_id)
        return asset.decimals if asset else 8

    def websockets_token(self, params: Params, key: ApiKey) -> Result:
        issued = self.exchange.clock.monotonic()
        if self.exchange.faults.take("stale_tokens"):
            issued -= TOKEN_TTL_S  # already too old to subscribe with
        token = self.exchange.tokens.issue(key.key, issued)
        return {"token": token.value, "expires": 900}

    def open_orders(self, params: Params, key: ApiKey) -> Result:
        orders = self._filter(self.exchange.account.open_orders(), params)
        with_trades = flag_arg(params, "trades")
        return {"open": {o.txid: order_row(o, with_trades) for o in orders}}

    def closed_orders(self, params: Params, key: ApiKey) -> Result:
        orders = self._filter(self.exchange.account.closed_orders(), params)
        start, end = int_arg(params, "start"), int_arg(params, "end")
        if start is not None:
            orders = [o for o in orders if (o.closetm_ns or 0) / 1e9 > start]
        if end is not None:
            orders = [o for o in orders if (o.closetm_ns or 0) / 1e9 <= end]
        ofs = int_arg(params, "ofs", 0) or 0
        with_trades = flag_arg(params, "trades")
        page = orders[ofs : ofs + 50]
        return {"closed": {o.txid: order_row(o, with_trades) for o in page}, "count": len(orders)}

    def query_orders(self, params: Params, key: ApiKey) -> Result:
        txids = [t.strip() for t in params.get("txid", "").split(",") if t.strip()]
        if not txids:
            raise ApiError("EGeneral:Invalid arguments:txid")
        with_trades = flag_arg(params, "trades")
        out: dict[str, Any] = {}
        for txid in txids:
            order = self.exchange.account.orders.get(txid)
            if order is None:
                raise ApiError("EOrder:Invalid order")
            out[txid] = order_row(order, with_trades)
        return out

    def _filter(self, orders: list[Order], params: Params) -> list[Order]:
        userref = int_arg(params, "userref")
        cl_ord_id = params.get("cl_ord_id")
        if userref is not None:
            orders = [o for o in orders if o.userref == userref]
        if cl_ord_id:
            orders = [o for o in orders if o.cl_ord_id == cl_ord_id]
        return orders

    def trades_history(self, params: Params, key: ApiKey) -> Result:
        trades = sorted(self.exchange.account.trades.values(), key=lambda t: t.time_ns, reverse=True)
        start, end = int_arg(params, "start"), int_arg(params, "end")
        if start is not None:
            trades = [t for t in trades if t.time_ns / 1e9 > start]
        if end is not None:
            trades = [t for t in trades if t.time_ns / 1e9 <= end]
        ofs = int_arg(params, "ofs", 0) or 0
        ledgers = flag_arg(params, "ledgers")
        page = trades[ofs : ofs + 50]
        return {"count": len(trades), "trades": {t.txid: trade_row(t, ledgers) for t in page}}

    # -- private: trading ------------------------------------------------------------------------------------
    def add_order(self, params: Params, key: ApiKey) -> Result:
        req = add_order_from_rest(self.exchange.catalog, params)
        validate = flag_arg(params, "validate")
        descr = {"order": describe(req.pair, req.side, req.ordertype, req.volume, req.price)}
        if validate:
            self.exchange.account.check(req)
            return {"descr": descr}
        order, result = self.exchange.account.place(req, self.exchange.clock.time())
        self.exchange.publish(result)
        return {"txid": [order.txid], "descr": descr}

    def cancel_order(self, params: Params, key: ApiKey) -> Result:
        account = self.exchange.account
        ref: str | int
        if params.get("cl_ord_id"):
            ref = params["cl_ord_id"]
        elif params.get("txid"):
            raw = params["txid"].strip()
            ref = int(raw) if raw.lstrip("-").isdigit() else raw
        else:
            raise ApiError("EGeneral:Invalid arguments")
        orders = account.find(ref)
        if not orders:
            raise ApiError("EOrder:Unknown order")
        for order in orders:
            account.cancel(order, self.exchange.clock.time())
        return {"count": len(orders)}

    def cancel_all(self, params: Params, key: ApiKey) -> Result:
        orders = self.exchange.account.open_orders()
        for order in orders:
            # Kraken's trading rate table lists no cancel-all: it is not counted (nor refused) here.
            self.exchange.account.cancel(order, self.exchange.clock.time(), counted=False)
        return {"count": len(orders)}

    def amend_order(self, params: Params, key: ApiKey) -> Result:
        """The order keeps its ids; the answer is the amend's own id."""
        args = amend_from_rest(params)
        orders = self.exchange.account.find(args.ref)
        if not orders:
            raise ApiError("EOrder:Unknown order")
        order = orders[0]
        volume = amend_volume(args, order.pair)
        result = self.exchange.account.amend(order, volume, args.price, self.exchange.clock.time())
        self.exchange.publish(result)
        return {"amend_id": self.exchange.ids.kraken_id()}

    def cancel_all_orders_after(self, params: Params, key: ApiKey) -> Result:
        timeout = int_arg(params, "timeout")
        if timeout is None or timeout < 0:
            raise ApiError("EGeneral:Invalid arguments:timeout")
        return self.exchange.cancel_all_after(timeout)


def describe(pair: KrakenPair, side: Side, ordertype: str, volume: Decimal, price: Decimal | None) -> str:
    where = f"limit {fixed(price, pair.pair_decimals)}" if price is not None else "market"
    return f"{side.value} {fixed(volume, pair.lot_decimals)} {pair.altname} @ {where}"


def order_row(order: Order, with_trades: bool = False) -> dict[str, Any]:
    pair = order.pair
    cd = pair.cost_decimals
    row: dict[str, Any] = {"refid": None, "userref": order.userref}
    if order.cl_ord_id:
        row["cl_ord_id"] = order.cl_ord_id
    row.update(
        {
            "status": order.status,
            "opentm": seconds_literal(order.opentm_ns, 4),
            "starttm": 0,
            "expiretm": 0,
            "descr": {
                "pair": pair.altname,
                "type": order.side.value,
                "ordertype": order.ordertype,
                "price": fixed(order.price, pair.pair_decimals) if order.price is not None else "0",
                "price2": "0",
                "leverage": "none",
                "order": describe(pair, order.side, order.ordertype, order.volume, order.price),
                "close": "",
            },
            "vol": fixed(order.volume, pair.lot_decimals),
            "vol_exec": fixed(order.vol_exec, pair.lot_decimals),
            "cost": fixed(order.cost, cd),
            "fee": fixed(order.fee, cd),
            "price": fixed(order.avg_price, cd),
            "stopprice": fixed(0, cd),
            "limitprice": fixed(0, cd),
            "misc": "",
            "oflags": order.oflags,
        }
    )
    if with_trades and order.trades:
        row["trades"] = list(order.trades)
    if order.closetm_ns is not None:
        row["closetm"] = seconds_literal(order.closetm_ns, 4)
        row["reason"] = order.reason
    return row


def trade_row(trade: OwnTrade, with_ledgers: bool = False) -> dict[str, Any]:
    pair = trade.order.pair
    cd = pair.cost_decimals
    row: dict[str, Any] = {
        "ordertxid": trade.order.txid,
        "postxid": trade.postxid,
        "pair": pair.pair_id,
        "time": seconds_literal(trade.time_ns),
        "type": trade.order.side.value,
        "ordertype": trade.order.ordertype,
        "price": fixed(trade.price, cd),
        "cost": fixed(trade.cost, cd),
        "fee": fixed(trade.fee, cd),
        "vol": fixed(trade.vol, pair.lot_decimals),
        "margin": fixed(0, cd),
        "leverage": "0",
        "misc": "",
    }
    if with_ledgers:
        row["ledgers"] = list(trade.ledgers)
    row["trade_id"] = trade.trade_id
    row["maker"] = trade.maker
    return row


def _pair_row(pair: KrakenPair, info: str) -> dict[str, Any]:
    leverage = [2, 3, 4, 5] if pair.quote.ws_id != "USD" else list(range(2, 11))
    fees = [[volume, num(pct, len(pct.split(".")[1]))] for volume, pct in TAKER_FEES]
    fees_maker = [[volume, num(pct, len(pct.split(".")[1]))] for volume, pct in MAKER_FEES]
    if info == "leverage":
        return {"leverage_buy": leverage, "leverage_sell": leverage}
    if info == "fees":
        return {"fees": fees, "fees_maker": fees_maker, "fee_volume_currency": "ZUSD"}
    if info == "margin":
        return {"margin_call": 80, "margin_stop": 40}
    return {
        "altname": pair.altname,
        "wsname": pair.wsname,
        "aclass_base": "currency",
        "base": pair.base.asset_id,
        "aclass_quote": "currency",
        "quote": pair.quote.asset_id,
        "lot": "unit",
        "cost_decimals": pair.cost_decimals,
        "pair_decimals": pair.pair_decimals,
        "lot_decimals": pair.lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": leverage,
        "leverage_sell": leverage,
        "fees": fees,
        "fees_maker": fees_maker,
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": pair.ordermin,
        "costmin": pair.costmin,
        "tick_size": pair.tick_size,
        "status": "online",
        "execution_venue": "international",
        "long_position_limit": pair.long_position_limit,
        "short_position_limit": pair.short_position_limit,
    }
