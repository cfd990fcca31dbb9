"""BalanceBook: snapshot + ledger deltas, REST reconciliation that never overwrites newer stream data,
and stale marking that never turns a balance into 0."""

from __future__ import annotations

from decimal import Decimal

from brokerbridge.core.events import AssetBalance, BalanceSnapshot, BalanceUpdate, Source
from brokerbridge.services.balances import BalanceBook

D = Decimal


def snap(ts: float, source: Source = Source.WS, **totals: str | tuple[str, str]) -> BalanceSnapshot:
    balances = []
    for asset, value in totals.items():
        if isinstance(value, tuple):
            balances.append(AssetBalance(asset=asset, total=D(value[0]), hold=D(value[1])))
        else:
            balances.append(AssetBalance(asset=asset, total=D(value)))
    return BalanceSnapshot(venue="kraken", ts=ts, balances=tuple(balances), source=source)


def update(ts: float, asset: str, total: str, amount: str = "0") -> BalanceUpdate:
    return BalanceUpdate(venue="kraken", ts=ts, asset=asset, amount=D(amount), total=D(total))


def totals(book: BalanceBook) -> dict[str, Decimal]:
    return {asset: view.total for asset, view in book.all().items()}


def test_snapshot_sets_every_asset_it_names() -> None:
    book = BalanceBook()
    changed = book.apply_snapshot(snap(100.0, USD=("1000.50", "200"), BTC="0.25000000"))
    assert sorted(changed) == ["BTC", "USD"]
    assert totals(book) == {"BTC": D("0.25000000"), "USD": D("1000.50")}
    usd = book.get("USD")
    assert usd is not None
    assert (usd.hold, usd.available, usd.updated_at) == (D("200"), D("800.50"), 100.0)
    btc = book.get("BTC")
    assert btc is not None and btc.hold is None and btc.available is None
    assert str(btc.total) == "0.25000000"  # exact digits kept
    assert book.get("ETH") is None
    assert book.snapshots == 1
    assert list(book.all()) == ["BTC", "USD"]  # sorted


def test_second_identical_snapshot_reports_no_change() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(1.0, USD="5"))
    assert book.apply_snapshot(snap(2.0, USD="5")) == []
    assert book.snapshots == 2


def test_update_carries_the_new_total_and_is_idempotent() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, USD="1000"))
    assert book.apply_update(update(101.0, "USD", "900", "-100")) is True
    assert book.apply_update(update(101.0, "USD", "900", "-100")) is False  # replayed: no double count
    assert totals(book) == {"USD": D("900")}
    view = book.get("USD")
    assert view is not None and view.updated_at == 101.0


def test_update_for_a_new_asset_creates_it() -> None:
    book = BalanceBook()
    assert book.apply_update(update(5.0, "SOL", "3.5", "3.5")) is True
    assert totals(book) == {"SOL": D("3.5")}


def test_assets_missing_from_a_snapshot_go_to_zero() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, USD="1000", BTC="1"))
    changed = book.apply_snapshot(snap(200.0, USD="1000"))
    assert changed == ["BTC"]
    assert totals(book) == {"BTC": D(0), "USD": D("1000")}
    btc = book.get("BTC")
    assert btc is not None and btc.updated_at == 200.0
    # Already zero: not reported as changed again.
    assert book.apply_snapshot(snap(300.0, USD="1000")) == []


def test_hold_is_kept_when_a_later_snapshot_does_not_say() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, source=Source.REST, USD=("1000", "250")), as_of=100.0)
    book.apply_snapshot(snap(200.0, USD="1000"))
    view = book.get("USD")
    assert view is not None and view.hold == D("250")


def test_rest_snapshot_does_not_overwrite_a_newer_ws_delta() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, USD="1000", BTC="1"))
    book.apply_update(update(110.0, "USD", "900", "-100"))
    # REST request sent at 105 (before the delta at 110) answers with the old 1000 and no BTC.
    rest = snap(105.0, source=Source.REST, USD="1000")
    changed = book.apply_snapshot(rest, as_of=105.0)
    assert "USD" not in changed
    assert totals(book)["USD"] == D("900")
    assert totals(book)["BTC"] == D(0)  # BTC had no newer delta: the REST answer wins
    assert list(book.corrections) == []


def test_rest_snapshot_missing_an_asset_keeps_it_if_a_delta_is_newer() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, USD="1000"))
    book.apply_update(update(120.0, "ETH", "2", "2"))
    book.apply_snapshot(snap(110.0, source=Source.REST, USD="1000"), as_of=110.0)
    assert totals(book) == {"ETH": D("2"), "USD": D("1000")}


def test_newer_rest_snapshot_corrects_and_records_the_correction() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, USD="1000"))
    book.apply_update(update(110.0, "USD", "900", "-100"))
    changed = book.apply_snapshot(snap(120.0, source=Source.REST, USD="950"), as_of=120.0)
    assert changed == ["USD"]
    assert totals(book) == {"USD": D("950")}
    assert list(book.corrections) == [("USD", D("900"), D("950"))]
    # A later REST answer still loses against a delta newer than it.
    book.apply_update(update(130.0, "USD", "940", "-10"))
    book.apply_snapshot(snap(125.0, source=Source.REST, USD="950"), as_of=125.0)
    assert totals(book) == {"USD": D("940")}


def test_stale_follows_set_live() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, USD="1000"))
    assert not book.live
    assert book.all()["USD"].stale  # nothing live yet
    book.set_live(True)
    assert book.live
    assert not book.all()["USD"].stale
    book.set_live(False)
    assert book.all()["USD"].stale


def test_values_are_never_reset_to_zero_when_not_live() -> None:
    book = BalanceBook()
    book.apply_snapshot(snap(100.0, USD="1000", BTC="0.5"))
    book.set_live(True)
    book.apply_update(update(101.0, "BTC", "0.75", "0.25"))
    book.set_live(False)
    views = book.all()
    assert {a: v.total for a, v in views.items()} == {"BTC": D("0.75"), "USD": D("1000")}
    assert all(v.stale for v in views.values())
    # A REST reconciliation while down (older than the delta) changes nothing either.
    book.apply_snapshot(snap(100.5, source=Source.REST, USD="1000", BTC="0.5"), as_of=100.5)
    assert totals(book) == {"BTC": D("0.75"), "USD": D("1000")}
    book.set_live(True)
    assert not any(v.stale for v in book.all().values())
