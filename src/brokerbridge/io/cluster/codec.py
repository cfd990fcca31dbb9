"""The cluster's stream entries and interest texts (docs/cluster.md "Events", "Interest").

An event stream entry has three fields: `e` (the event as msgspec JSON — the tagged `AnyEvent`
union, exactly what `/ws` sends, so the `kind` tag says its type), `ep` (the holder's fencing
epoch, decimal ASCII) and `n` (the holder's node id); the publisher adds a fourth, `s`: the
entry's number in its stream for that publisher (1, 2, 3…), so a reader knows exactly when it
missed one (trimmed unread) or met one twice (a write retried after a timeout). An entry written
by another writer than the publisher carries a fifth, `w`, naming it: `journal` for a fill the
holder's journal in Redis streamed in the same script that journaled it (io/cluster/journal.py).
Each writer numbers its own entries (the journal by the fill's `seq`), so a reader follows the
numbering per writer (`Entry.writer`) — the two interleave in the executions stream.

A subscription is stored (interest sets, the `ctl` notes) as its canonical msgspec JSON: every
field, in declaration order, so two nodes that want the same subscription write the same member.

Bad input (a field missing, text that is not an event) is a `ProtocolError` naming the field:
something else wrote to our keys, or a node of another version did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

import msgspec

from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.events import AnyEvent, Event, Subscription, decode_event, encode_event

EVENT_FIELD = b"e"
EPOCH_FIELD = b"ep"
NODE_FIELD = b"n"
SEQ_FIELD = b"s"
WRITER_FIELD = b"w"
PUBLISHER = ""  # the writer of an entry with no `w`: the holder's EventPublisher
JOURNAL_WRITER = "journal"  # a fill streamed by the journal's own write (io/cluster/journal.py)

_REMEDY = (
    "a cluster stream or interest key held something brokerbridge did not write (another program "
    "on the same Redis keys, or a node of another brokerbridge version): give the cluster its own "
    "[cluster] prefix or database, and run one version on every node"
)


# A stream record's fields as redis-py gives them: bytes, or str with `decode_responses`.
Fields = Mapping[bytes, bytes] | Mapping[str, str] | Mapping[bytes | str, bytes | str]


class Entry(msgspec.Struct, frozen=True):
    """One decoded stream entry: the event, the epoch of the holder that wrote it, and its node."""

    event: AnyEvent
    epoch: int
    node: str
    seq: int | None = None  # the entry's number in its stream for its publisher (None: not given)
    writer: str = PUBLISHER  # who numbered it (`w`): "" the publisher, "journal" the journal


def encode_entry(
    event: Event, *, epoch: int, node: str, seq: int | None = None, writer: str = PUBLISHER
) -> dict[bytes | str, bytes]:
    """The fields of the XADD that publishes `event` (a `dict` as redis-py's `xadd` takes)."""
    fields: dict[bytes | str, bytes] = {
        EVENT_FIELD: encode_event(event),
        EPOCH_FIELD: b"%d" % epoch,
        NODE_FIELD: node.encode(),
    }
    if writer != PUBLISHER:
        fields[WRITER_FIELD] = writer.encode()
    if seq is not None:
        fields[SEQ_FIELD] = b"%d" % seq
    return fields


def decode_entry(fields: Fields) -> Entry:
    """The entry of a stream record's fields (bytes or str keys and values, as redis-py returns them
    with or without `decode_responses`). Raises `ProtocolError` naming what is wrong."""
    raw_event = _field(fields, EVENT_FIELD)
    raw_epoch = _field(fields, EPOCH_FIELD)
    raw_node = _field(fields, NODE_FIELD)
    try:
        event = decode_event(raw_event)
    except msgspec.DecodeError as exc:
        raise ProtocolError(
            f"cluster stream entry: field 'e' is not an event ({exc})", remedy=_REMEDY
        ) from exc
    try:
        epoch = int(raw_epoch)
    except ValueError as exc:
        raise ProtocolError(
            f"cluster stream entry: field 'ep' is not an epoch (an integer): {raw_epoch[:40]!r}",
            remedy=_REMEDY,
        ) from exc
    node = _text(raw_node)
    raw_writer = _field(fields, WRITER_FIELD, required=False)
    writer = PUBLISHER if raw_writer is None else _text(raw_writer)
    raw_seq = _field(fields, SEQ_FIELD, required=False)
    if raw_seq is None:
        return Entry(event, epoch, node, writer=writer)
    try:
        seq = int(raw_seq)
    except ValueError as exc:
        raise ProtocolError(
            f"cluster stream entry: field 's' is not an entry number: {raw_seq[:40]!r}", remedy=_REMEDY
        ) from exc
    return Entry(event, epoch, node, seq, writer)


@overload
def _field(fields: Fields, name: bytes) -> bytes | str: ...


@overload
def _field(fields: Fields, name: bytes, *, required: bool) -> bytes | str | None: ...


def _field(fields: Fields, name: bytes, *, required: bool = True) -> bytes | str | None:
    mapping: Mapping[bytes | str, bytes | str] = fields  # type: ignore[assignment]
    value = mapping.get(name)
    if value is None:
        value = mapping.get(name.decode())
    if value is None and required:
        raise ProtocolError(
            f"cluster stream entry: no field {name.decode()!r} (an entry has 'e', 'ep' and 'n'; "
            f"this one has {sorted(_text(k) for k in mapping)})",
            remedy=_REMEDY,
        )
    return value


def _text(key: bytes | str) -> str:
    return key.decode(errors="replace") if isinstance(key, bytes) else key


_subscription_encoder = msgspec.json.Encoder()
_subscription_decoder = msgspec.json.Decoder(Subscription)


def subscription_text(sub: Subscription) -> str:
    """`sub` as canonical JSON: every field, in declaration order (equal subscriptions, equal text)."""
    return _subscription_encoder.encode(sub).decode()


def subscription_of(text: str | bytes) -> Subscription:
    """The subscription of `subscription_text`'s output. Raises `ProtocolError` when it is not one."""
    try:
        return _subscription_decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"cluster interest: not a subscription ({exc})", remedy=_REMEDY) from exc
