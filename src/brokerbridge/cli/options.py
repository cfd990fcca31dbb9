"""`brokerbridge options GGAL`: an underlying's option chain with IVs, greeks and implied rates.

Goes through a running `brokerbridge serve` when one runs (its venue session, no login of its
own), else opens a Bridge of its own — as `instruments` does. The figures are the very
`OptionChain` the API gives (`GET /api/options/{venue}/{underlying}`); an empty figure prints as
"—" and `--reasons` lists why.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from brokerbridge.cli.attach import BridgeOpt, StandaloneOpt, find_bridge, simulated_banner
from brokerbridge.cli.common import ConfigOpt, LogFormatOpt, LogLevelOpt, SimOpt, fail, load, setup_logging
from brokerbridge.cli.runtime import venue_config
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import OptionAnalytics
from brokerbridge.core.options.views import OptionChain
from brokerbridge.venues.primary.catalog import split_symbol

VENUE = "primary"  # the one venue with options today
DASH = "—"


def options(
    underlying: Annotated[str, typer.Argument(help="The underlying's ticker, e.g. GGAL.")],
    expiry: Annotated[
        str | None,
        typer.Option(help="One expiry (YYYY-MM-DD); default: all.", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="american (Bjerksund–Stensland 2002) or european (Black–Scholes); default: \\[options].",
            show_default=False,
        ),
    ] = None,
    greeks: Annotated[bool, typer.Option("--greeks", help="Show the greeks.")] = False,
    reasons: Annotated[bool, typer.Option("--reasons", help="Why each empty figure is.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="The API's JSON.")] = False,
    sim: SimOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    bridge: BridgeOpt = None,
    standalone: StandaloneOpt = False,
) -> None:
    """Print an underlying's option chain: bid/ask/last with their implied volatilities, intrinsic
    and time value, the put-call-parity rate against the caución, the covered-call rate — and the
    greeks with --greeks (Primary; see docs/options.md)."""
    err = Console(stderr=True)
    cfg = load(config, console=err)
    setup_logging(
        log_level or "WARNING",
        err,
        [cfg.primary.password if cfg.primary else None, cfg.client.key],
        fmt=log_format or cfg.log_format,
    )
    if model is not None and model not in ("american", "european"):
        raise typer.BadParameter("--model must be american or european")
    try:
        chain = asyncio.run(_chain(cfg, sim, err, underlying.upper(), expiry, model, (bridge, standalone)))
    except BrokerBridgeError as exc:
        fail(exc, err)
        return
    if json_out:
        sys.stdout.write(msgspec.json.encode(chain).decode() + "\n")
        return
    if chain.simulated:
        simulated_banner(VENUE, err)
    print_chain(chain, Console(highlight=False, emoji=False), greeks=greeks, reasons=reasons)


async def _chain(
    cfg: Config,
    sim: bool | None,
    err: Console,
    underlying: str,
    expiry: str | None,
    model: str | None,
    attach: tuple[str | None, bool],
) -> OptionChain:
    bridge_url, standalone = attach
    reason = "--sim: the embedded simulator" if sim else "--standalone" if standalone else None
    attachment = await find_bridge(cfg, bridge_url, reason, err)
    if attachment is not None:
        async with attachment.client(timeout=60.0) as client:  # a first catalogue download takes a while
            return await client.option_chain(VENUE, underlying, expiry=expiry, model=model)
    from brokerbridge.bridge import Bridge  # here: the server stack and numpy load only when used

    async with (
        venue_config(cfg, use_sim=sim, console=err, venues={VENUE}) as run_cfg,
        Bridge(run_cfg, hold_accounts=False) as own,  # market data only: no account session
    ):
        return await own.option_chain(VENUE, underlying, expiry=expiry, model=model)


def _num(value: float | None, digits: int, *, percent: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value * 100:.{digits}f}%" if percent else f"{value:.{digits}f}"


def _price(value: object) -> str:
    return DASH if value is None else format(value, "f")


def _rate(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}%"


def print_chain(chain: OptionChain, out: Console, *, greeks: bool, reasons: bool) -> None:
    model = {"american": "American (Bjerksund–Stensland 2002)", "european": "European (Black–Scholes)"}
    rate = DASH if chain.rate is None else f"{chain.rate * 100:.2f}% continuous"
    out.print(
        f"{chain.underlying} ({chain.underlying_symbol or DASH}) spot {_price(chain.spot)}"
        f"{' (stale)' if chain.spot_stale else ''} · rate {rate} from {chain.rate_source or DASH}"
        f"{'' if chain.caucion_tna is None else f' ({chain.caucion_tna:.2f}% TNA)'}"
        f" · model {model.get(chain.model, chain.model)}"
    )
    for figure, why in chain.reasons.items():
        out.print(f"  {figure}: {why}")
    for group in chain.expiries:
        columns = ["option", "", "strike", "bid", "ask", "last", "IV bid/ask", "IV mid", "time val."]
        columns += ["parity TNA", "cov.call TNA"]
        if greeks:
            columns += ["delta", "gamma", "vega", "theta/d", "rho"]
        table = Table(
            *columns,
            title=f"{group.expiry} · {group.days:.1f} days · {group.business_days} business days"
            + ("" if group.parity_tna is None else f" · parity {group.parity_tna:.2f}% TNA"),
            box=None,
        )
        for option in group.options:
            table.add_row(*_row(option, greeks=greeks))
        out.print(table)
        if reasons:
            for option in group.options:
                for figure, why in option.reasons.items():
                    out.print(f"  {split_symbol(option.symbol)[0]} {figure}: {why}")


def _row(o: OptionAnalytics, *, greeks: bool) -> list[str]:
    iv_sides = f"{_num(o.iv_bid, 1, percent=True)}/{_num(o.iv_ask, 1, percent=True)}"
    cells = [
        split_symbol(o.symbol)[0] + (" (stale)" if o.stale else ""),
        "C" if o.option_type == "call" else "P",
        _price(o.strike),
        _price(o.bid),
        _price(o.ask),
        _price(o.last),
        iv_sides,
        _num(o.iv_mid, 1, percent=True),
        _price(o.time_value),
        _rate(o.parity_tna),
        _rate(o.covered_call_tna),
    ]
    if greeks:
        cells += [_num(o.delta, 3), _num(o.gamma, 5), _num(o.vega, 2), _num(o.theta, 2), _num(o.rho, 2)]
    return cells
