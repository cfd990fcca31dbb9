"""One Kraken WebSocket v2 connection's protocol, without I/O: requests in, frames out.

`WsProtocol` takes the client's text (`receive_text`) and the exchange's events (`on_market`,
`on_account`) and hands every frame to answer to its `send` callable; the connection's I/O
(ws.WsSession) owns the socket, the write queue and the heartbeat. It checks each request's
envelope and the parts every channel shares, applies the token rule, carries out trading requests,
and leaves each channel's own arguments and data to market_channels and account_channels. Public
(`/v2`) and private (`/auth/v2`) connections share this code; `private` decides which channels and
methods the connection accepts (ws_wire).

Token rule (protocol §2, open question §7.1): a token is accepted if it was issued less than 900 s
ago, or if it was already accepted on this same connection (session-bound), unless the
`invalidate_tokens` fault revoked it: revoked tokens are refused everywhere, bound or not, because
the fault models Kraken invalidating sessions after an upgrade; streams already subscribed keep
flowing (Kraken does not close sockets over token age). Refusals: a private subscribe gets
`ESession:Invalid session` (the captured shape, with `"status":"error"`); a trading method with no
token gets `Token(s) not found` (captured), with a bad/expired token `EAPI:Invalid token` (the
official SDK's wording; the exact live string is not captured).

Trading methods: `add_order`, `amend_order`, `cancel_order`, `cancel_all`, `batch_add` (2–15
orders on one pair, checked as a whole; one the engine refuses alone carries its `error` in its
entry), `batch_cancel` (2–50 ids; answers a `count`) and `cancel_all_orders_after` (the account's
dead man's switch, on the exchange's clock: `KrakenExchange.cancel_all_after`). `edit_order` is
refused as not simulated. Each answer goes out before the executions frames it caused, as live.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from brokerbridge.sim.kraken.account import AccountEvent, ApiError, ApiKey, Permission
from brokerbridge.sim.kraken.account_channels import AccountChannels
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.market_channels import MarketChannels
from brokerbridge.sim.kraken.order_input import (
    BATCH_CANCEL_MAX,
    BATCH_CANCEL_MIN,
    add_order_from_ws,
    amend_from_ws,
    amend_volume,
    batch_add_from_ws,
)
from brokerbridge.sim.kraken.ws_wire import (
    CHANNEL_FIELDS,
    PRIVATE_CHANNELS,
    PUBLIC_CHANNELS,
    TRADING_METHODS,
    WRONG_HOST_PRIVATE,
    WRONG_HOST_PUBLIC,
    Frame,
    Reject,
    Replies,
    decode_request,
    status_frame,
    unsupported,
)
from brokerbridge.sim.market import StepResult

# What amending and canceling need: either key permission.
_CANCELING = frozenset({Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS})


class WsProtocol:
    def __init__(
        self,
        exchange: KrakenExchange,
        send: Callable[[Frame], None],
        *,
        private: bool,
        connection_id: int,
    ) -> None:
        self.exchange = exchange
        self.send = send
        self.private = private
        self.connection_id = connection_id
        self.replies = Replies(exchange.clock, send)
        self.market_channels = MarketChannels(exchange, send, self.replies)
        self.account_channels = AccountChannels(exchange, send, self.replies)
        self.heartbeat_channel = False
        self.bound_tokens: set[str] = set()

    @property
    def subscribed(self) -> bool:
        return self.market_channels.active or self.heartbeat_channel or self.account_channels.active

    def status_frame(self) -> Frame:
        return status_frame(self.exchange.faults.system_status, self.connection_id)

    # -- the exchange's events ---------------------------------------------------------------------------
    def on_market(self, result: StepResult) -> None:
        self.market_channels.on_market(result)

    def on_account(self, event: AccountEvent) -> None:
        self.account_channels.on_account(event)

    # -- requests ---------------------------------------------------------------------------------------
    def receive_text(self, text: str) -> None:
        time_in = self.exchange.clock.time()
        try:
            message = decode_request(text)
        except ValueError:
            self.replies.error("Unsupported event", None, None, time_in)
            return
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            self.replies.error("Unsupported event", None, None, time_in)
            return
        method: str = message["method"]
        req_id = message.get("req_id")
        for name in message:
            if name not in ("method", "params", "req_id"):
                self.replies.error(unsupported(name, method), method, req_id, time_in)
                return
        params = message.get("params")
        try:
            if method == "ping":
                if "params" in message:
                    raise Reject(unsupported("params", "ping"))
                self.replies.pong(req_id, time_in)
            elif method in ("subscribe", "unsubscribe"):
                if not isinstance(params, dict):
                    raise Reject("EGeneral:Invalid arguments")
                self._subscription(method, params, req_id, time_in)
            elif method in TRADING_METHODS:
                if not self.private:
                    raise Reject(WRONG_HOST_PUBLIC)
                self._trading(method, params if isinstance(params, dict) else {}, req_id, time_in)
            else:
                raise Reject("Unsupported event")
        except Reject as reject:
            self.replies.error(reject.error, method, req_id, time_in, **reject.extra)

    def _subscription(self, method: str, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        channel = params.get("channel")
        if channel == "status":
            self.send(self.status_frame())
            raise Reject("Symbol(s) not found")
        if channel == "heartbeat":
            # Open question §7.3: accepted (heartbeats then flow, as the reconnection guide expects).
            self.heartbeat_channel = method == "subscribe"
            self.replies.ack(method, req_id, {"channel": "heartbeat"}, time_in)
            return
        if not isinstance(channel, str) or channel not in (*PUBLIC_CHANNELS, *PRIVATE_CHANNELS):
            raise Reject("Subscription name invalid")
        if channel in PUBLIC_CHANNELS and self.private:
            raise Reject(WRONG_HOST_PRIVATE)
        if channel in PRIVATE_CHANNELS and not self.private:
            raise Reject(WRONG_HOST_PUBLIC)
        if channel == "level3":
            raise Reject("EGeneral:Internal error:level3 is not simulated")
        for name in params:
            if name not in CHANNEL_FIELDS[channel]:
                raise Reject(unsupported(name, f"{channel} {method}"))
        snapshot = params.get("snapshot", channel != "trade")
        if not isinstance(snapshot, bool):
            raise Reject("EGeneral:Invalid arguments:snapshot")
        if channel in ("balances", "executions"):
            key = self._token_key(params.get("token"))
            if key is None:
                self.replies.session_error(channel, method, req_id, time_in)
                return
            if Permission.WEBSOCKETS not in self.exchange.permissions(key):
                raise Reject("EGeneral:Permission denied")
            self.account_channels.request(method, channel, params, req_id, time_in)
        elif channel == "instrument":
            self.market_channels.instrument_request(method, snapshot, req_id, time_in)
        else:
            self.market_channels.request(method, channel, params, snapshot, req_id, time_in)

    def _token_key(self, token: Any) -> ApiKey | None:
        """The key behind `token` if the token rule (module docstring) accepts it here and now."""
        if not isinstance(token, str):
            return None
        found = self.exchange.tokens.get(token)
        if found is None or found.revoked:
            return None
        if not (found.fresh(self.exchange.clock.monotonic()) or token in self.bound_tokens):
            return None
        key = self.exchange.keys.get(found.key)
        if key is None:
            return None
        self.bound_tokens.add(token)
        return key

    # -- trading ---------------------------------------------------------------------------------------------
    def _trading(self, method: str, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        if "token" not in params:
            raise Reject("Token(s) not found")
        key = self._token_key(params["token"])
        if key is None:
            raise Reject("EAPI:Invalid token")
        perms = self.exchange.permissions(key)
        handlers = {
            "add_order": self._add_order,
            "batch_add": self._batch_add,
            "amend_order": self._amend_order,
            "cancel_order": self._cancel_order,
            "cancel_all": self._cancel_all,
            "batch_cancel": self._batch_cancel,
            "cancel_all_orders_after": self._cancel_all_orders_after,
        }
        handler = handlers.get(method)
        if handler is None:
            raise Reject(f"EGeneral:Internal error:{method} is not simulated")
        # Kraken's key permissions: placing needs "Create & modify orders"; amending and canceling
        # either that or "Cancel & close orders".
        allowed = {Permission.CREATE_ORDERS} if method in ("add_order", "batch_add") else _CANCELING
        if not allowed & perms:
            raise Reject("EGeneral:Permission denied")
        with self.account_channels.holding():
            try:
                handler(params, req_id, time_in)
            except ApiError as exc:
                raise Reject(exc.code) from None

    def _add_order(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        account = self.exchange.account
        req = add_order_from_ws(self.exchange.catalog, params)
        if params.get("validate") is True:
            account.check(req)
            order_id = ""
        else:
            order, result = account.place(req, self.exchange.clock.time())
            order_id = order.txid
        ack_result: dict[str, Any] = {"order_id": order_id}
        if req.cl_ord_id is not None:
            ack_result["cl_ord_id"] = req.cl_ord_id
        elif "order_userref" in params:
            ack_result["order_userref"] = req.userref
        # `lose_answers`: the order is placed (its executions flow), its answer never comes.
        if not (order_id and self.exchange.faults.take("lose_answers")):
            self.replies.ack("add_order", req_id, ack_result, time_in)
        if order_id:
            self.exchange.publish(result)

    def _cancel_order(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        refs: list[tuple[str, str | int]] = []
        for name in ("order_id", "cl_ord_id", "order_userref"):
            values = params.get(name, [])
            if not isinstance(values, list):
                raise Reject(f"EGeneral:Invalid arguments:{name}")
            refs.extend((name, v) for v in values)
        for name in params:
            if name not in ("order_id", "cl_ord_id", "order_userref", "token"):
                raise Reject(unsupported(name, "cancel order"))
        if not refs:
            raise Reject("EGeneral:Invalid arguments")
        account = self.exchange.account
        for name, ref in refs:
            orders = account.find(ref)
            if not orders:
                self.replies.error("EOrder:Unknown order", "cancel_order", req_id, time_in)
                continue
            for order in orders:
                account.cancel(order, self.exchange.clock.time())
            result = {"cl_ord_id": ref} if name == "cl_ord_id" else {"order_id": orders[0].txid}
            self.replies.ack("cancel_order", req_id, result, time_in)

    def _cancel_all(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        account = self.exchange.account
        orders = account.open_orders()
        for order in orders:
            # Kraken's trading rate table lists no cancel-all: not counted, as REST CancelAll.
            account.cancel(order, self.exchange.clock.time(), counted=False)
        self.replies.ack("cancel_all", req_id, {"count": len(orders)}, time_in)

    def _amend_order(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        args = amend_from_ws(params)
        account = self.exchange.account
        orders = account.find(args.ref)
        if not orders:
            raise ApiError("EOrder:Unknown order")
        order = orders[0]
        result = account.amend(order, amend_volume(args, order.pair), args.price, self.exchange.clock.time())
        # The answer names the order as the request did (Kraken's captured acks: order_id, or
        # cl_ord_id when amended by it).
        answer: dict[str, Any] = {"amend_id": self.exchange.ids.kraken_id()}
        answer["cl_ord_id" if args.by_client_id else "order_id"] = args.ref
        self.replies.ack("amend_order", req_id, answer, time_in)
        self.exchange.publish(result)

    def _batch_add(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        """All orders are checked first (one bad order refuses the batch); then each is placed,
        and one the engine refuses (funds) is refused alone: its entry carries the error (as REST
        AddOrderBatch's does; Kraken's WS shape for it is not captured)."""
        requests = batch_add_from_ws(self.exchange.catalog, params)
        account = self.exchange.account
        validate = params.get("validate") is True
        entries: list[dict[str, Any]] = []
        for req, raw in zip(requests, params["orders"], strict=True):
            entry: dict[str, Any] = {}
            try:
                if validate:
                    account.check(req)
                    entry["order_id"] = ""
                else:
                    order, result = account.place(req, self.exchange.clock.time())
                    self.exchange.publish(result)
                    entry["order_id"] = order.txid
            except ApiError as exc:
                entry = {"error": exc.code}
            if req.cl_ord_id is not None:
                entry["cl_ord_id"] = req.cl_ord_id
            elif "order_userref" in raw:
                entry["order_userref"] = req.userref
            entries.append(entry)
        self.replies.ack("batch_add", req_id, entries, time_in)

    def _batch_cancel(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        """Orders by Kraken id or user reference (`orders`) and client order id (`cl_ord_id`);
        the answer counts those canceled (ids no longer open are not an error)."""
        for name in params:
            if name not in ("orders", "cl_ord_id", "token"):
                raise Reject(unsupported(name, "batch cancel"))
        refs: list[str | int] = []
        for name in ("orders", "cl_ord_id"):
            values = params.get(name, [])
            if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
                raise Reject(f"EGeneral:Invalid arguments:{name}")
            refs.extend(int(v) if name == "orders" and str(v).isdigit() else v for v in values)
        if not BATCH_CANCEL_MIN <= len(refs) <= BATCH_CANCEL_MAX:
            raise Reject("EGeneral:Invalid arguments:orders")
        account = self.exchange.account
        canceled = 0
        for ref in refs:
            for order in account.find(ref):
                account.cancel(order, self.exchange.clock.time())
                canceled += 1
        self.replies.ack("batch_cancel", req_id, {"count": canceled}, time_in)

    def _cancel_all_orders_after(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        for name in params:
            if name not in ("timeout", "token"):
                raise Reject(unsupported(name, "cancel all orders after"))
        timeout = params.get("timeout")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise Reject("EGeneral:Invalid arguments:timeout")
        self.replies.ack("cancel_all_orders_after", req_id, self.exchange.cancel_all_after(timeout), time_in)
