"""Orders across the cluster (issue 21; docs/cluster.md "Orders"): an edge's `place/cancel/amend`
go to the venue's holder through Redis, and come back as the answers a single bridge gives.

    edge  OrderRelay ── XADD bb:{v}:orders (id, reply, call) ──▶ holder  OrderServer
          ReplyInbox ◀── XADD bb:reply:<node> (id, answer), fenced, + XACK ──┘  (its Bridge)

`OrderRelay` (edge): fills in a client order id where the caller gave none — so the request, if
handled twice (a holder died after reading it), is one order: the holder's order service is
idempotent by client order id through the journal in Redis —, XADDs the request and waits for the
answer on its node's reply stream up to `timeout`. No answer by then: an `OrderAck` `unknown`
("no holder answered within …": the order may still be placed; its outcome follows on
`executions`), as a single bridge answers for a silent venue. A typed error comes back as the same
typed error (its core/errors.py `WIRE_ERRORS` code, message, remedy and rule).

`ReplyInbox` (edge, one per node): the one reader of the node's reply stream, shared by the
node's relays (one per venue). It reads only while a request waits (XREAD from the stream's last
id, taken before the request is sent) and hands each answer to the waiter with its request id;
an answer nobody waits for any more (it came after the timeout) is dropped.

`OrderServer` (holder): creates the group `holders` (MKSTREAM, from the stream's start: a request
queued while no node held the venue is served), then first XAUTOCLAIMs what a dead holder read
and never acknowledged and answers it, in order, before reading anything new (XREADGROUP). Each
request goes to the handler (the holder Bridge's `place/cancel/amend`); its answer is written by
one fenced script that XADDs it to the request's reply stream and XACKs the request, so a request
is acknowledged exactly when its answer is out, and a holder whose lease is gone does neither: its
request stays pending for the next holder to claim. A fenced write (or a handler that raises
`Fenced`) stops the server and calls `on_fenced`.

A request older than its `ttl` (by Redis's clock: the entry id's time against TIME) when a holder
reads it is refused unplaced: an edge that answered `unknown` long ago must not see the order
appear minutes later (a venue with no holder for that long). The relay's `unknown` says how long
the request stays valid.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import msgspec
import redis
import redis.asyncio

from brokerbridge.core.clock import Clock, SystemClock, race, within
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ClusterUnavailable,
    Fenced,
    InvalidRequest,
    OrderConflict,
    OrderRefused,
    ServiceUnavailable,
    error_from_wire,
    wire_error_of,
)
from brokerbridge.core.orders import (
    AmendRequest,
    CancelAck,
    OrderAck,
    OrderRequest,
    mint_client_order_id,
)
from brokerbridge.io.cluster.fencing import FencedScript, fenced_script, parse_token
from brokerbridge.io.cluster.keys import ORDER_GROUP, ClusterKeys
from brokerbridge.io.cluster.link import UNREACHABLE, redis_errors

logger = logging.getLogger(__name__)

REQUEST_TTL_S = 60.0  # a request a holder reads later than this after it was sent is refused unplaced
BLOCK_MS = 500  # one blocking read; under the link's 1 s command timeout (io/cluster/link.py)
RETRY_S = 0.5  # Redis unreachable: read again after this long (bridge clock)
ORDERS_MAXLEN = 10_000  # requests kept per venue (XADD MAXLEN ~): far more than are ever pending
REPLIES_MAXLEN = 1_000  # answers kept per node's reply stream
REPLY_TTL_MS = 3_600_000  # a node that went away leaves its reply stream for an hour, no longer
MAX_IN_FLIGHT = 32  # requests a holder handles at once (each may wait on the venue)


# -- the wire --------------------------------------------------------------------------------------
class PlaceCall(msgspec.Struct, frozen=True, kw_only=True, tag="place"):
    request: OrderRequest  # its client order id filled in by the edge


class CancelCall(msgspec.Struct, frozen=True, kw_only=True, tag="cancel"):
    order_id: str | None = None
    client_order_id: str | None = None


class AmendCall(msgspec.Struct, frozen=True, kw_only=True, tag="amend"):
    request: AmendRequest


OrderCall = PlaceCall | CancelCall | AmendCall


class AnswerError(msgspec.Struct, frozen=True, kw_only=True):
    """A typed error as it crosses: enough to raise the same class again (`error_from_wire`)."""

    code: str  # WIRE_ERRORS code; "" for an error with none (the edge raises a plain VenueError)
    message: str
    remedy: str = ""
    rule: str = ""  # an OrderRefused's rule


class OrderAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The holder's answer to one request: one of `ack` (place, amend), `cancel`, `error`."""

    id: str  # the request's id
    ack: OrderAck | None = None
    cancel: CancelAck | None = None
    error: AnswerError | None = None


class OrderHandler(Protocol):
    """What answers requests on the holder: its Bridge (the order service behind it)."""

    async def place(self, request: OrderRequest) -> OrderAck: ...

    async def cancel(
        self, venue: str, order_id: str | None = None, *, client_order_id: str | None = None
    ) -> CancelAck: ...

    async def amend(self, request: AmendRequest) -> OrderAck: ...


_CALL_ENCODER = msgspec.json.Encoder(decimal_format="string")
_CALL_DECODER: msgspec.json.Decoder[OrderCall] = msgspec.json.Decoder(OrderCall)
_ANSWER_DECODER = msgspec.json.Decoder(OrderAnswer)


def answer_error(error: BrokerBridgeError) -> AnswerError:
    wire = wire_error_of(error)
    return AnswerError(
        code="" if wire is None else wire.code,
        message=error.message,
        remedy=error.remedy,
        rule=error.rule if isinstance(error, OrderRefused) else "",
    )


# What redis-py (bytes, not decoded) answers to XRANGE-like and XREAD-like commands.
_Entries = list[tuple[bytes, dict[bytes, bytes]]]
_Read = list[tuple[bytes, _Entries]]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _same_venue(venue: str, served: str) -> None:
    """Relays and servers are per venue (the lease, the fence and the queue are the venue's)."""
    if venue != served:
        raise InvalidRequest(
            f"an order for {venue} on {served}'s order relay",
            venue=venue,
            remedy=f"send it through {venue}'s relay",
        )


def _entry_key(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id "<ms>-<seq>" as a tuple, in the stream's order."""
    ms, _, seq = _text(entry_id).partition("-")
    return int(ms), int(seq or 0)


def _entry_ms(entry_id: bytes | str) -> int:
    return int(_text(entry_id).partition("-")[0])


# -- the edge --------------------------------------------------------------------------------------
class ReplyInbox:
    """The node's reply stream, read by one task while any request waits (see the module doc)."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        node_id: str,
        *,
        clock: Clock,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self._redis = redis
        self.stream = keys.reply(node_id)
        self._clock = clock
        self._block_ms = block_ms
        self._waiting: dict[str, asyncio.Future[OrderAnswer]] = {}
        self._last: bytes | None = None  # the last entry read (or there before the first request)
        self._reader: asyncio.Task[None] | None = None

    async def expect(self, request_id: str) -> asyncio.Future[OrderAnswer]:
        """A future for the answer to `request_id`; call it before the request goes out, so the
        answer cannot come before the reader's starting point. `forget` it when done."""
        if self._last is None:
            newest = cast(_Entries, await self._redis.xrevrange(self.stream, count=1))
            self._last = newest[0][0] if newest else b"0-0"
        future: asyncio.Future[OrderAnswer] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"replies {self.stream}")
        return future

    def forget(self, request_id: str) -> None:
        future = self._waiting.pop(request_id, None)
        if future is not None and not future.done():
            future.cancel()

    async def _read(self) -> None:
        # Ends as soon as nobody waits (checked with no await in between: a new waiter either
        # finds this task running or starts another).
        while self._waiting:
            try:
                read = cast(
                    _Read, await self._redis.xread({self.stream: self._last or b"0-0"}, block=self._block_ms)
                )
            except UNREACHABLE as exc:
                logger.warning(
                    "order answers on %s unreadable: Redis unreachable (%s)", self.stream, type(exc).__name__
                )
                await self._clock.sleep(RETRY_S)
                continue
            except redis.exceptions.RedisError as exc:  # an error reply: the waiters time out (unknown)
                logger.error("order answers on %s unreadable: %s", self.stream, exc)
                await self._clock.sleep(RETRY_S)
                continue
            for _, entries in read:
                for entry_id, fields in entries:
                    self._last = entry_id
                    self._deliver(fields)

    def _deliver(self, fields: dict[bytes, bytes]) -> None:
        try:
            answer = _ANSWER_DECODER.decode(fields[b"a"])
        except (KeyError, msgspec.DecodeError) as exc:
            logger.error("an order answer on %s could not be read (%s): skipped", self.stream, exc)
            return
        future = self._waiting.get(answer.id)
        if future is None:
            logger.debug("answer to request %s came after its caller stopped waiting", answer.id)
        elif not future.done():
            future.set_result(answer)

    async def aclose(self) -> None:
        for request_id in list(self._waiting):
            self.forget(request_id)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None


class OrderRelay:
    """An edge's way to `venue`'s holder: `place/cancel/amend` with the Bridge's semantics."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        venue: str,
        node_id: str,
        *,
        timeout: float,
        clock: Clock,
        ttl: float = REQUEST_TTL_S,
        inbox: ReplyInbox | None = None,
    ) -> None:
        """`timeout`: how long to wait for the holder's answer (`[cluster] order_timeout`);
        `ttl`: how long after sending a holder may still act on the request (longer than
        `timeout`: a failover within it still places the order once); `inbox`: the node's shared
        reader of answers (one is made for this relay when None, closed by `aclose`)."""
        if ttl < timeout:
            raise ValueError(f"the request ttl ({ttl} s) must not be shorter than the timeout ({timeout} s)")
        self._redis = redis
        self.venue = venue
        self.node_id = node_id
        self.timeout = timeout
        self.ttl = ttl
        self._clock = clock
        self._stream = keys.orders(venue)
        self._owns_inbox = inbox is None
        self._inbox = inbox if inbox is not None else ReplyInbox(redis, keys, node_id, clock=clock)

    async def place(self, request: OrderRequest) -> OrderAck:
        _same_venue(request.venue, self.venue)
        if request.client_order_id is None:  # so that a request handled twice is one order
            request = msgspec.structs.replace(request, client_order_id=mint_client_order_id())
        cid = request.client_order_id
        assert cid is not None
        answer = await self._ask(PlaceCall(request=request), f"order {cid}", retry=f"client_order_id {cid}")
        if answer is None:
            return OrderAck(
                venue=self.venue,
                client_order_id=cid,
                order_id=None,
                status="unknown",
                ts=self._clock.time(),
                reason=self._silence(),
            )
        return self._ack(answer)

    async def cancel(self, order_id: str | None = None, client_order_id: str | None = None) -> CancelAck:
        what = f"cancel of order {order_id or client_order_id}"
        answer = await self._ask(
            CancelCall(order_id=order_id, client_order_id=client_order_id), what, retry="it"
        )
        if answer is None:
            return CancelAck(
                venue=self.venue,
                order_id=order_id or client_order_id or "",
                client_order_id=client_order_id,
                canceled=0,
                ts=self._clock.time(),
                status="pending",
                reason=self._silence(),
            )
        if answer.cancel is None:
            raise self._unexpected(answer)
        return answer.cancel

    async def amend(self, request: AmendRequest) -> OrderAck:
        _same_venue(request.venue, self.venue)
        what = f"amend of order {request.order_id or request.client_order_id}"
        answer = await self._ask(AmendCall(request=request), what, retry="it")
        if answer is None:
            return OrderAck(
                venue=self.venue,
                client_order_id=request.client_order_id or "",
                order_id=request.order_id,
                status="unknown",
                ts=self._clock.time(),
                reason=self._silence(),
            )
        return self._ack(answer)

    def _silence(self) -> str:
        return (
            f"no holder answered within {self.timeout:g} s: the request stays valid for {self.ttl:g} s "
            "after it was sent (a holder taking it over within that time acts on it, once); "
            "the outcome follows on executions"
        )

    def _ack(self, answer: OrderAnswer) -> OrderAck:
        if answer.ack is None:
            raise self._unexpected(answer)
        return answer.ack

    def _unexpected(self, answer: OrderAnswer) -> BrokerBridgeError:
        if answer.error is not None:
            error = answer.error
            return error_from_wire(error.code, error.message, error.remedy, venue=self.venue, rule=error.rule)
        return ServiceUnavailable(
            f"the {self.venue} holder answered request {answer.id} with nothing (a bug)",
            venue=self.venue,
            remedy="check the holder's log; the order's outcome follows on executions",
        )

    async def _ask(self, call: OrderCall, what: str, *, retry: str) -> OrderAnswer | None:
        """Send `call`; its answer, or None when none came within `timeout`."""
        request_id = secrets.token_hex(8)
        try:
            try:
                answer = await self._inbox.expect(request_id)
                await self._redis.xadd(
                    self._stream,
                    {
                        "id": request_id,
                        "reply": self._inbox.stream,
                        "c": _CALL_ENCODER.encode(call),
                        "n": self.node_id,
                        "ttl": str(int(self.ttl * 1000)),
                    },
                    maxlen=ORDERS_MAXLEN,
                    approximate=True,
                )
            except UNREACHABLE as exc:
                # A connection that broke mid-XADD leaves its fate open: say what a retry does.
                raise ClusterUnavailable(
                    f"the {what} could not be sent to the {self.venue} holder: the cluster's Redis is "
                    f"unreachable ({type(exc).__name__})",
                    venue=self.venue,
                    remedy=f"send it again with the same {retry} once Redis answers: it is carried out once",
                ) from exc
            try:
                return await within(self._clock, self.timeout, answer)
            except TimeoutError:
                logger.warning("%s: no holder answered the %s within %g s", self.venue, what, self.timeout)
                return None
        finally:
            self._inbox.forget(request_id)

    async def aclose(self) -> None:
        if self._owns_inbox:
            await self._inbox.aclose()


# -- the holder ------------------------------------------------------------------------------------
# KEYS: lease, reply stream, orders stream; ARGV: token, answer, group, request id, epoch, node.
_ANSWER = f"""
redis.call('XADD', KEYS[2], 'MAXLEN', '~', {REPLIES_MAXLEN}, '*', 'a', ARGV[2], 'ep', ARGV[5], 'n', ARGV[6])
redis.call('PEXPIRE', KEYS[2], {REPLY_TTL_MS})
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[7])
end
return redis.call('XACK', KEYS[3], ARGV[3], ARGV[4])
"""
# How long a "refused" marker outlives the request validity it guards (a request older than its
# own ttl is not acted on anyway): twice the longest, at least two minutes.
REFUSED_MIN_MS = 120_000


class OrderServer:
    """The holder's side: answers `venue`'s order requests with `handler` until fenced."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        venue: str,
        node_id: str,
        *,
        token: str,
        handler: OrderHandler,
        on_fenced: Callable[[Fenced], None],
        clock: Clock | None = None,
        block_ms: int = BLOCK_MS,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        """`token`: the holder's lease token (`Lease.token`); `clock`: for the pause after Redis
        did not answer (the system clock when None)."""
        self._redis = redis
        self.venue = venue
        self.node_id = node_id
        self.token = token
        self._handler = handler
        self._on_fenced = on_fenced
        self._clock = clock or SystemClock()
        self._block_ms = block_ms
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_in_flight = max_in_flight
        self._keys = keys
        self._lease = keys.lease(venue)
        self._stream = keys.orders(venue)
        self._epoch = str(parse_token(token)[1])
        self._answer: FencedScript = fenced_script(redis, _ANSWER)
        self._fenced: Fenced | None = None
        self._stop = asyncio.Event()
        self.answered = 0  # requests answered (claimed ones included)
        self.claimed = 0  # requests taken over from a holder that read them and never answered

    @property
    def fenced(self) -> Fenced | None:
        """Why the server stopped, if its lease was gone."""
        return self._fenced

    async def run(self) -> None:
        """Serve until fenced (then `on_fenced`, and return) or cancelled."""
        serving = asyncio.ensure_future(self._serve())
        await race(serving, self._stop.wait())
        if serving.done() and not serving.cancelled() and serving.exception() is not None:
            raise serving.exception()  # type: ignore[misc]
        if self._fenced is not None:
            self._on_fenced(self._fenced)

    async def _serve(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            await self._redis_retrying(self._create_group)
            for entry_id, fields in await self._redis_retrying(self._claim):
                await self._handle(entry_id, fields)  # in order, before anything new
            while not self._stop.is_set():
                async with self._slots:  # read only with room to take on what comes
                    pass
                read = await self._redis_retrying(self._read_new)
                for _, entries in read:
                    for entry_id, fields in entries:
                        await self._slots.acquire()
                        tasks.create_task(self._handle_then_release(entry_id, fields))

    async def _redis_retrying(self, call: Callable[[], Any]) -> Any:
        while True:
            try:
                return await call()
            except UNREACHABLE as exc:
                logger.warning(
                    "%s: order requests unreadable: Redis unreachable (%s)", self.venue, type(exc).__name__
                )
                await self._clock.sleep(RETRY_S)
            except redis.exceptions.ResponseError as exc:
                if not str(exc).startswith("NOGROUP"):
                    raise
                # The stream went (Redis restarted without its AOF): make the group again.
                logger.warning("%s: the order request group was gone: made again", self.venue)
                await self._create_group()

    async def _create_group(self) -> None:
        try:
            # From the start: a request queued while no node held the venue is served (within its ttl).
            await self._redis.xgroup_create(self._stream, ORDER_GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    async def _claim(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Everything read and never acknowledged (by a holder that died, or by this node before
        a restart), oldest first; requests trimmed meanwhile are acknowledged (nothing to do)."""
        claimed: list[tuple[bytes, dict[bytes, bytes]]] = []
        start: bytes | str = "0-0"
        while True:
            found = await self._redis.xautoclaim(self._stream, ORDER_GROUP, self.node_id, 0, start_id=start)
            start, entries = found[0], found[1]
            deleted: Sequence[bytes] = found[2] if len(found) > 2 else []
            claimed.extend((entry_id, fields) for entry_id, fields in entries if fields)
            if deleted:
                await self._redis.xack(self._stream, ORDER_GROUP, *deleted)
            if _text(start) == "0-0":
                break
        if claimed:
            logger.warning(
                "%s: %d order requests read by an earlier holder and never answered: answering them now",
                self.venue,
                len(claimed),
            )
        self.claimed += len(claimed)
        return claimed

    async def _read_new(self) -> Any:
        return await self._redis.xreadgroup(
            ORDER_GROUP,
            self.node_id,
            {self._stream: ">"},
            count=self._max_in_flight,
            block=self._block_ms,
        )

    async def _handle_then_release(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            await self._handle(entry_id, fields)
        finally:
            self._slots.release()

    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        if self._stop.is_set():
            return  # fenced meanwhile: the request stays pending for the next holder
        reply = fields.get(b"reply")
        request_id = _text(fields.get(b"id", b""))
        try:
            answer, refused = await self._answer_of(entry_id, request_id, fields)
        except Fenced as exc:  # the handler's own write was refused: not ours to answer any more
            self._stopped(exc)
            return
        try:
            if reply is None:  # nobody to answer: acknowledged, so no holder tries it again
                logger.error(
                    "%s: order request %s names no reply stream: dropped", self.venue, _text(entry_id)
                )
                await self._redis.xack(self._stream, ORDER_GROUP, entry_id)
                return
            # A place answered without placing marks its client order id in the same script
            # (so the mark exists exactly when that answer was delivered): see `_superseded`.
            ttl_ms = int(_text(fields.get(b"ttl", b"0")) or 0)
            await self._answer(
                keys=[self._lease, reply, self._stream, self._keys.refused(self.venue, refused or "-")],
                args=[
                    self.token,
                    msgspec.json.encode(answer),
                    ORDER_GROUP,
                    entry_id,
                    self._epoch,
                    self.node_id,
                    str(max(2 * ttl_ms, REFUSED_MIN_MS)) if refused else "",
                ],
            )
        except Fenced as exc:
            self._stopped(exc)
            return
        except UNREACHABLE as exc:
            # Unanswered and unacknowledged: the next holder claims it (the edge meanwhile says
            # `unknown`); handled again, it is the same order (idempotent by client order id).
            logger.error(
                "%s: the answer to order request %s could not be written: Redis unreachable (%s)",
                self.venue,
                request_id,
                type(exc).__name__,
            )
            return
        except redis.exceptions.RedisError as exc:  # e.g. out of memory: the same, and say why
            logger.error(
                "%s: the answer to order request %s was refused by Redis: %s", self.venue, request_id, exc
            )
            return
        self.answered += 1

    async def _answer_of(
        self, entry_id: bytes, request_id: str, fields: dict[bytes, bytes]
    ) -> tuple[OrderAnswer, str | None]:
        """The answer, and the client order id of a place answered without placing (None
        otherwise): its mark keeps older requests with that id from being acted on later."""
        try:
            call = _CALL_DECODER.decode(fields[b"c"])
        except (KeyError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            unreadable = InvalidRequest(f"order request {request_id} unreadable: {exc}", venue=self.venue)
            return OrderAnswer(id=request_id, error=answer_error(unreadable)), None
        cid = call.request.client_order_id if isinstance(call, PlaceCall) else None
        try:
            await self._check_age(entry_id, fields)
            superseded = None if cid is None else await self._superseded(entry_id, cid)
            if superseded is not None:  # not acted on; the newer request's mark stays the one
                return OrderAnswer(id=request_id, error=answer_error(superseded)), None
            return await self._call(request_id, call), None
        except Fenced:
            raise
        except BrokerBridgeError as exc:
            # Not placed by this request — except a conflict: the id's row is another order's
            # (placed, perhaps by the very request still pending), which the journal answers.
            return OrderAnswer(id=request_id, error=answer_error(exc)), (
                None if isinstance(exc, OrderConflict) else cid
            )
        except Exception as exc:  # our bug: the edge must hear something, and the holder live on
            logger.exception("%s: order request %s failed (a bug)", self.venue, request_id)
            bug = AnswerError(
                code="",
                message=f"the {self.venue} holder failed to handle the request: {exc!r}",
                remedy="a bug in brokerbridge (please report it); the outcome follows on executions",
            )
            return OrderAnswer(id=request_id, error=bug), None

    async def _superseded(self, entry_id: bytes, client_order_id: str) -> ServiceUnavailable | None:
        """The error to answer with when a newer request with this client order id was answered without
        placing it. An edge that heard nothing for `timeout` tells its client "unknown, the
        request stays valid"; the client retries, the retry is refused (the rate model, the
        venue's rules) and the client takes that as the order's end — while the first request,
        its answer lost with a Redis restart, was still pending: the next holder claimed it and
        placed the order (cluster chaos seed 661963: "refused yet booked"). The first request is
        older than the refused one: it is not acted on."""
        with redis_errors(self._redis):
            newer = await self._redis.get(self._keys.refused(self.venue, client_order_id))
        if newer is None or _entry_key(newer) <= _entry_key(entry_id):
            return None
        return ServiceUnavailable(
            f"order {client_order_id}: a later request with this client order id was answered "
            "without placing it, so this earlier one was not acted on",
            venue=self.venue,
            remedy="send it again with the same client order id if it is still wanted",
        )

    async def _check_age(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        ttl_ms = int(_text(fields.get(b"ttl", b"0")) or 0)
        if ttl_ms <= 0:
            return
        # Redis's clock: the one that stamped the entry id. Redis gone meanwhile (restarting) is
        # ClusterUnavailable, answered as such — not "a bug".
        with redis_errors(self._redis):
            seconds, micros = await self._redis.time()
        age_ms = seconds * 1000 + micros // 1000 - _entry_ms(entry_id)
        if age_ms > ttl_ms:
            raise ServiceUnavailable(
                f"the order request waited {age_ms / 1000:.1f} s for a {self.venue} holder, longer than its "
                f"{ttl_ms / 1000:g} s: it was not acted on",
                venue=self.venue,
                remedy="send it again if it is still wanted (with the same client order id: placed once)",
            )

    async def _call(self, request_id: str, call: OrderCall) -> OrderAnswer:
        match call:
            case PlaceCall(request=request):
                _same_venue(request.venue, self.venue)
                return OrderAnswer(id=request_id, ack=await self._handler.place(request))
            case CancelCall(order_id=order_id, client_order_id=client_order_id):
                done = await self._handler.cancel(self.venue, order_id, client_order_id=client_order_id)
                return OrderAnswer(id=request_id, cancel=done)
            case AmendCall(request=amend):
                _same_venue(amend.venue, self.venue)
                return OrderAnswer(id=request_id, ack=await self._handler.amend(amend))

    def _stopped(self, fenced: Fenced) -> None:
        if self._fenced is None:
            logger.warning("%s: order server stops: %s", self.venue, fenced.message)
            self._fenced = fenced
        self._stop.set()
