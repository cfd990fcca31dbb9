"""`KrakenWsSession`: the pure state machine of one Kraken WebSocket v2 connection.

No sockets, no asyncio, no sleeps, no clock: the I/O driver feeds it text and the time, and drains
what it produced (the aioquic / wsproto shape; the API is `venues.session_base.VenueSession`'s)::

    session.connection_made(now)             # socket open: subscribe frames are queued
    for frame in session.data_to_send(): ws.send(frame)
    session.receive_text(text, now)          # for every incoming frame
    session.events_received()                # normalized core.events
    session.signals_received()               # control signals for the driver (core.signals)
    session.next_deadline() / handle_timer(now)
    session.send_trading(params, now)        # an order request; its answer → trading_listener

One session per endpoint: public channels on `ws.kraken.com/v2`, private ones (balances, executions,
token-authenticated) on `ws-auth.kraken.com/v2` (kraken.md §3.1). StreamStatus events from the
session are only about resyncs (RESYNCING, then LIVE when the fresh snapshot verifies, or STALE when
it gives up); connection-level LIVE/RECONNECTING statuses belong to the driver, which sees
`Subscribed` signals.

The session is one object whose jobs live in modules of their own, each a class on top of the
state they share (`state.py`), each module's docstring saying its design decisions:

    requests.py       request frames, req_ids, matching answers (and data) to requests
    books.py          checksummed books, resync and STALE pauses, shallower depths cut
    private.py        balances and executions: sequence numbers, silences
    tokens.py         the WebSocket token, refusals of it
    subscriptions.py  add/remove, one upstream book per symbol and depth moves, acks
    timers.py         watchdog, pings, overdue answers and snapshots, retries
    trading.py        orders on the authenticated socket (add, amend, cancel, batches, dead man's
                      switch), answers matched by req_id
    connection.py     `KrakenWsSession`: receive_text and the frame type → handler table
"""

from brokerbridge.core.signals import (
    BadFrame,
    ReconnectNeeded,
    Resyncing,
    Signal,
    SilenceEnded,
    Subscribed,
    SubscribeFailed,
    SystemStatus,
    TokenRejected,
)
from brokerbridge.venues.kraken.session.connection import FRAME_HANDLERS, KrakenWsSession
from brokerbridge.venues.kraken.session.state import (
    BOOK_DEPTHS,
    BOOK_RETRY_AFTER,
    MAX_BOOK_RESYNCS,
    OHLC_INTERVALS,
    RETRY_REFUSED_FIRST_S,
    RETRY_REFUSED_MAX_S,
    SILENCE_SUSPECT,
    WIRE_CHANNEL,
)
from brokerbridge.venues.kraken.session.trading import TradingAnswer

# Signals are the venue-independent ones of core.signals (the supervisor matches on them);
# re-exported here so venue code and tests can import them from the session module.
__all__ = [
    "BOOK_DEPTHS",
    "BOOK_RETRY_AFTER",
    "FRAME_HANDLERS",
    "MAX_BOOK_RESYNCS",
    "OHLC_INTERVALS",
    "RETRY_REFUSED_FIRST_S",
    "RETRY_REFUSED_MAX_S",
    "SILENCE_SUSPECT",
    "WIRE_CHANNEL",
    "BadFrame",
    "KrakenWsSession",
    "ReconnectNeeded",
    "Resyncing",
    "Signal",
    "SilenceEnded",
    "SubscribeFailed",
    "Subscribed",
    "SystemStatus",
    "TokenRejected",
    "TradingAnswer",
]
