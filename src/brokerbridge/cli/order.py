"""`brokerbridge order place|cancel|amend|list|fills`: trade through a running `serve`.

The orders go through the server's `/api/orders` (`BridgeClient`), so they share the one venue
session `serve` holds, its journal and its idempotency by client order id. Who may trade: the
`[client] key` (BROKERBRIDGE_CLIENT_KEY) needs the `trade` scope; without a key, a caller on the
server's machine signs in with a one-time login link that grants `trade` (as `login-link --trade`).

`place`, `cancel` and `amend` ask first, naming venue, side, quantity, symbol and price — and
SIMULATED when the venue is the embedded simulator — unless `--yes`.

Exit codes: 0 done (an order accepted, canceled, amended; a list printed), 1 not confirmed,
2 a bad option or a refusal (by the bridge: order_refused, not_authorized, …; or by the venue:
order_rejected, unknown_order), 3 no `serve` runs, 4 the outcome is unknown (the venue did not
answer: the order may be live; `order list` or the executions stream tell, and placing again with
the same `--client-order-id` never makes a second order), 5 the venue could not be reached (also
`not_sent`: the order was refused before anything of it reached the venue — placing it again with
the same `--client-order-id` places it once).
`--json` prints the ack (or `{"error": {code, message, remedy, rule}}`) on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from brokerbridge.cli.attach import Attachment, BridgeClient, BridgeOpt, simulated_banner
from brokerbridge.cli.common import ConfigOpt, LogFormatOpt, LogLevelOpt, load, setup_logging
from brokerbridge.cli.render import plain
from brokerbridge.cli.status import running_server
from brokerbridge.core.config import Config
from brokerbridge.core.errors import (
    BrokerBridgeError,
    NotAuthorized,
    OrderRefused,
    ServiceUnavailable,
    TransportError,
    VenueError,
)
from brokerbridge.core.events import Side
from brokerbridge.core.orders import AmendRequest, CancelAck, OrderAck, OrderRequest

NOT_CONFIRMED = 1
REFUSED = 2
UNKNOWN_OUTCOME = 4
UNREACHABLE = 5

T = TypeVar("T")

app = typer.Typer(
    name="order",
    help="Place, cancel, amend and list orders through a running `brokerbridge serve` (trade scope).",
    no_args_is_help=True,
)

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the answer as JSON (for scripts).")]
VenueArg = Annotated[str, typer.Argument(help="kraken or primary", show_default=False)]


class _Done(Exception):
    """End the command with `code` (after what was printed)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _decimal(what: str, text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{what} {text!r} is not a decimal number (e.g. 0.01)") from None
    if not value.is_finite() or value <= 0:
        raise typer.BadParameter(f"{what} must be a positive number, got {text}")
    return value


@contextlib.asynccontextmanager
async def _client(
    cfg: Config, bridge: str | None, err: Console, *, trade: bool = True
) -> AsyncIterator[tuple[BridgeClient, Attachment]]:
    """A client of the running server that may trade (`trade`; else read the account): the
    [client] key, or (none) a sign-in with a one-time login link — granting `trade` when asked
    for — which the server gives a caller on its own machine."""
    found = await running_server(cfg, bridge, err)
    async with found.client() as client:
        if found.key is None:
            try:
                await client.sign_in(await client.login_link(trade=trade))
            except NotAuthorized as exc:
                raise NotAuthorized(
                    f"this caller cannot sign in to trade: {exc.message}",
                    remedy="set [client] key (BROKERBRIDGE_CLIENT_KEY) to a key with the trade scope",
                ) from None
        yield client, found


async def _confirm(client: BridgeClient, venue: str, what: str, yes: bool, err: Console) -> None:
    """Ask before sending `what` (rich markup) to `venue` — unless `yes` — and say SIMULATED (a
    banner first, and in the question) when the server's venue is its embedded simulator."""
    served = {v.venue: v for v in await client.venues()}
    simulated = venue in served and served[venue].simulated
    if simulated:
        simulated_banner(venue, err)
    if yes:
        return
    prefix = "[bold black on yellow] SIMULATED [/] " if simulated else ""
    err.print(f"{prefix}{escape(venue)}: [bold]{what}[/]", highlight=False)
    try:
        answer = typer.confirm("Send it?", default=False, err=True)
    except typer.Abort:  # no terminal to ask on (EOF): not confirmed
        answer = False
    if not answer:
        err.print("not sent", style="dim")
        raise _Done(NOT_CONFIRMED)


async def _held(client: BridgeClient, venue: str, order_id: str) -> str:
    """The open order `order_id` as a person reads it ("BUY 0.01 BTC/USD at 30000 "), "" when the
    bridge does not hold it open."""
    held = next((o for o in await client.orders(venue) if o.order_id == order_id), None)
    if held is None:
        return ""
    parts = [
        held.side.value.upper() if held.side else "",
        plain(held.qty) if held.qty is not None else "",
        escape(held.symbol or ""),
        f"at {plain(held.limit_price)}" if held.limit_price is not None else "",
    ]
    return "".join(f"{part} " for part in parts if part)


def _run(
    config: Any,
    log_level: str | None,
    log_format: str | None,
    json_out: bool,
    work: Callable[[Config, Console], Coroutine[Any, Any, T]],
) -> T:
    """Load the config, run `work`, and turn a refusal into its exit code (the error said on
    stderr, and as JSON on stdout with --json)."""
    err = Console(stderr=True)
    cfg = load(config, console=err)
    setup_logging(log_level or "WARNING", err, [cfg.client.key], fmt=log_format or cfg.log_format)
    try:
        return asyncio.run(work(cfg, err))
    except _Done as done:
        raise typer.Exit(done.code) from None
    except BrokerBridgeError as exc:
        code = exc.code if isinstance(exc, VenueError) else ""
        if json_out:
            rule = exc.rule if isinstance(exc, OrderRefused) else ""
            error = {"code": code, "message": exc.message, "remedy": exc.remedy, "rule": rule}
            sys.stdout.write(msgspec.json.encode({"error": error}).decode() + "\n")
        named = (
            f" ({code}{': ' + exc.rule if isinstance(exc, OrderRefused) and exc.rule else ''})"
            if code
            else ""
        )
        err.print(f"[bold red]error{escape(named)}:[/] {escape(str(exc))}", highlight=False)
        unreachable = isinstance(exc, TransportError | ServiceUnavailable) and code != "not_loaded"
        raise typer.Exit(UNREACHABLE if unreachable else REFUSED) from None


def _print_ack(ack: OrderAck | CancelAck, json_out: bool, err: Console) -> None:
    if json_out:
        sys.stdout.write(msgspec.json.encode(ack).decode() + "\n")
        sys.stdout.flush()
    if isinstance(ack, CancelAck):
        if not json_out:
            print(f"{ack.venue} order {ack.order_id}: {'canceled' if ack.canceled else 'was not open'}")
        return
    if not json_out:
        print(
            f"{ack.venue} order {ack.order_id or '(id not known yet)'} client_order_id "
            f"{ack.client_order_id}: {ack.status}{' (duplicate: sent before)' if ack.duplicate else ''}"
        )
    if ack.status == "unknown":
        err.print(
            f"the venue did not answer ({escape(ack.reason or 'no reason given')}): the order may be live. "
            f"Check `brokerbridge order list {ack.venue}`; placing again with --client-order-id "
            f"{ack.client_order_id} never makes a second order.",
            style="yellow",
            highlight=False,
        )
        raise _Done(UNKNOWN_OUTCOME)


@app.command()
def place(
    venue: VenueArg,
    side: Annotated[Side, typer.Argument(help="buy or sell", show_default=False)],
    qty: Annotated[str, typer.Argument(help="quantity, e.g. 0.01", show_default=False)],
    symbol: Annotated[str, typer.Argument(help="the venue's symbol: BTC/USD, 'MERV - XMEV - GGAL - 24hs'")],
    price: Annotated[
        str | None,
        typer.Option("--price", "-p", help="limit price (a limit order needs one)", show_default=False),
    ] = None,
    order_type: Annotated[
        str, typer.Option("--type", help="limit or market (default: limit; market without --price)")
    ] = "",
    client_order_id: Annotated[
        str | None,
        typer.Option(
            "--client-order-id",
            help="your id for the order (up to 18 letters, digits, - or _): sending it again never "
            "places a second order. Default: one is minted.",
            show_default=False,
        ),
    ] = None,
    time_in_force: Annotated[
        str | None,
        typer.Option("--tif", help="gtc, day, ioc or fok (default: the venue's)", show_default=False),
    ] = None,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    bridge: BridgeOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Place an order: `brokerbridge order place kraken buy 0.01 BTC/USD --price 30000`."""
    kind = order_type or ("limit" if price is not None else "market")
    if kind not in ("limit", "market"):
        raise typer.BadParameter(f"--type {kind!r}: give limit or market")
    if time_in_force is not None and time_in_force not in ("gtc", "day", "ioc", "fok"):
        raise typer.BadParameter(f"--tif {time_in_force!r}: give gtc, day, ioc or fok")
    request = msgspec.convert(
        {
            "venue": venue,
            "symbol": symbol,
            "side": side.value,
            "qty": _decimal("qty", qty),
            "type": kind,
            "price": _decimal("--price", price),
            "client_order_id": client_order_id,
            "time_in_force": time_in_force,
        },
        OrderRequest,
    )

    async def work(cfg: Config, err: Console) -> None:
        async with _client(cfg, bridge, err) as (client, _):
            at = f"at {plain(request.price)}" if request.price is not None else "at market"
            what = f"{request.side.value.upper()} {plain(request.qty)} {escape(symbol)} {at}"
            await _confirm(
                client, venue, f"{what} ({kind}{', ' + time_in_force if time_in_force else ''})", yes, err
            )
            _print_ack(await client.place(request), json_out, err)

    _run(config, log_level, log_format, json_out, work)


@app.command()
def cancel(
    venue: VenueArg,
    order_id: Annotated[
        str, typer.Argument(help="the venue's order id (see `order list`)", show_default=False)
    ],
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    bridge: BridgeOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Cancel an open order by the venue's id."""

    async def work(cfg: Config, err: Console) -> None:
        async with _client(cfg, bridge, err) as (client, _):
            what = await _held(client, venue, order_id)
            await _confirm(client, venue, f"CANCEL {what}order {escape(order_id)}", yes, err)
            _print_ack(await client.cancel(venue, order_id), json_out, err)

    _run(config, log_level, log_format, json_out, work)


@app.command()
def amend(
    venue: VenueArg,
    order_id: Annotated[
        str, typer.Argument(help="the venue's order id (see `order list`)", show_default=False)
    ],
    qty: Annotated[str | None, typer.Option("--qty", help="the new quantity", show_default=False)] = None,
    price: Annotated[
        str | None, typer.Option("--price", "-p", help="the new limit price", show_default=False)
    ] = None,
    yes: YesOpt = False,
    json_out: JsonOpt = False,
    bridge: BridgeOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Change an open order's quantity and/or price (where the venue can amend)."""
    if qty is None and price is None:
        raise typer.BadParameter("give --qty and/or --price")
    request = AmendRequest(
        venue=venue, order_id=order_id, qty=_decimal("--qty", qty), price=_decimal("--price", price)
    )

    async def work(cfg: Config, err: Console) -> None:
        async with _client(cfg, bridge, err) as (client, _):
            what = await _held(client, venue, order_id)
            changes = ", ".join(
                part
                for part in (
                    f"qty → {plain(request.qty)}" if request.qty is not None else "",
                    f"price → {plain(request.price)}" if request.price is not None else "",
                )
                if part
            )
            await _confirm(client, venue, f"AMEND {what}order {escape(order_id)}: {changes}", yes, err)
            _print_ack(await client.amend(request), json_out, err)

    _run(config, log_level, log_format, json_out, work)


@app.command(name="list")
def list_orders(
    venue: VenueArg,
    json_out: JsonOpt = False,
    bridge: BridgeOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """The orders the bridge believes open on a venue."""

    async def work(cfg: Config, err: Console) -> None:
        async with _client(cfg, bridge, err, trade=False) as (client, _):
            orders = await client.orders(venue)
        if json_out:
            sys.stdout.write(msgspec.json.encode(orders).decode() + "\n")
            return
        # Ids whole on one line (the list is where a person copies the id to cancel), numbers folded
        # rather than cut short with "…": the other columns give way.
        table = Table(
            _id("order_id", [o.order_id for o in orders]),
            _id("client_order_id", [o.client_order_id or "" for o in orders]),
            "side",
            _number("qty"),
            "symbol",
            _number("price"),
            _number("filled"),
            "status",
        )
        for o in orders:
            table.add_row(
                o.order_id,
                o.client_order_id or "",
                o.side.value if o.side else "",
                plain(o.qty),
                o.symbol or "",
                plain(o.limit_price),
                plain(o.cum_qty),
                o.status,
            )
        Console(highlight=False, emoji=False).print(table if orders else f"no open orders on {venue}")

    _run(config, log_level, log_format, json_out, work)


@app.command()
def fills(
    venue: VenueArg,
    csv_out: Annotated[bool, typer.Option("--csv", help="Every fill as CSV with a header row.")] = False,
    json_out: JsonOpt = False,
    bridge: BridgeOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Every journaled fill of a venue, oldest first (a table, --json lines, or --csv)."""
    output: Literal["table", "json", "csv"] = "csv" if csv_out else "json" if json_out else "table"

    async def work(cfg: Config, err: Console) -> None:
        async with _client(cfg, bridge, err, trade=False) as (client, _):
            writer = csv.writer(sys.stdout, lineterminator="\n")
            if output == "csv":
                writer.writerow(
                    ("ts", "symbol", "side", "price", "qty", "fee", "fee_asset", "order_id", "exec_id")
                )
            numbers = (_number(h) for h in ("price", "qty", "fee", "order_id", "exec_id"))
            table = Table("ts", "symbol", "side", *numbers)  # a stream of rows: ids fold whole
            async for f in client.all_fills(venue):
                if output == "json":
                    sys.stdout.write(msgspec.json.encode(f).decode() + "\n")
                elif output == "csv":
                    row = (
                        f.ts,
                        f.symbol,
                        f.side.value,
                        f.price,
                        f.qty,
                        f.fee,
                        f.fee_asset or "",
                        f.order_id,
                        f.exec_id,
                    )
                    writer.writerow(row)
                else:
                    table.add_row(
                        f"{f.ts:.3f}",
                        f.symbol,
                        f.side.value,
                        plain(f.price),
                        plain(f.qty),
                        plain(f.fee),
                        f.order_id,
                        f.exec_id,
                    )
        if output == "table":
            Console(highlight=False, emoji=False).print(table)

    _run(config, log_level, log_format, json_out, work)


def _id(header: str, values: list[str]) -> Column:
    return Column(header, no_wrap=True, min_width=max([len(header), *map(len, values)]))


def _number(header: str) -> Column:
    return Column(header, overflow="fold")
