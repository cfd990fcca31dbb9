"""The Kraken fill watermark: only fills that prove no older one is missing move it."""

from __future__ import annotations

from brokerbridge.io.kraken.watermark import FillWatermark


def test_fills_on_an_unproven_stream_do_not_move_the_watermark() -> None:
    mark = FillWatermark()
    mark.restore(100.0)
    mark.stream_live()
    mark.fill_seen(110.0)  # a snapshot's or a new subscription's fill: older ones may be missing
    assert mark.complete_to == 100.0 and not mark.proven


def test_a_read_begun_while_live_and_unbroken_proves_the_stream() -> None:
    mark = FillWatermark()
    mark.restore(100.0)
    mark.stream_live()
    read = mark.read_started()
    mark.fills_read([105.0])
    mark.fill_seen(120.0)  # on the stream while the orders are read
    mark.read_done(read)
    assert mark.proven and mark.complete_to == 120.0
    mark.fill_seen(130.0)
    assert mark.complete_to == 130.0


def test_a_break_during_the_read_leaves_the_stream_unproven() -> None:
    mark = FillWatermark()
    mark.restore(100.0)
    mark.stream_live()
    read = mark.read_started()
    mark.stream_broken()  # e.g. a sequence gap while TradesHistory was being read
    mark.stream_live()
    mark.fill_seen(140.0)
    mark.fills_read([105.0, 110.0])
    mark.read_done(read)
    assert not mark.proven and mark.complete_to == 110.0  # what the read itself covered


def test_a_read_begun_before_the_stream_was_live_proves_nothing_about_it() -> None:
    mark = FillWatermark()
    read = mark.read_started()
    mark.stream_live()
    mark.fill_seen(50.0)
    mark.fills_read([])
    mark.read_done(read)
    assert not mark.proven and mark.complete_to is None


def test_a_break_stops_fills_moving_the_watermark() -> None:
    mark = FillWatermark()
    mark.stream_live()
    read = mark.read_started()
    mark.fills_read([10.0])
    mark.read_done(read)
    assert mark.proven and mark.complete_to == 10.0
    mark.stream_broken()
    mark.fill_seen(20.0)  # polled from REST while the stream is down: the newest page only
    assert mark.complete_to == 10.0 and not mark.proven
