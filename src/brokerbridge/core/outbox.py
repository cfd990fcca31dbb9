"""The three queues every pure venue session fills and its driver drains (the wsproto shape)."""

from __future__ import annotations

from brokerbridge.core.events import AnyEvent
from brokerbridge.core.signals import Signal


class Outbox:
    """Mixin: `events_received()`, `signals_received()`, `data_to_send()` drain what was queued."""

    _events: list[AnyEvent]
    _signals: list[Signal]
    _outgoing: list[str]

    def _init_outbox(self) -> None:
        self._events = []
        self._signals = []
        self._outgoing = []

    def events_received(self) -> list[AnyEvent]:
        events, self._events = self._events, []
        return events

    def signals_received(self) -> list[Signal]:
        signals, self._signals = self._signals, []
        return signals

    def data_to_send(self) -> list[str]:
        frames, self._outgoing = self._outgoing, []
        return frames
