"""`brokerbridge` entry point: one Typer app, one sub-module per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from brokerbridge import __version__
from brokerbridge.cli import order, sim
from brokerbridge.cli.doctor import doctor
from brokerbridge.cli.hash_password import hash_password
from brokerbridge.cli.instruments import instruments
from brokerbridge.cli.login_link import login_link
from brokerbridge.cli.options import options
from brokerbridge.cli.serve import serve
from brokerbridge.cli.status import status
from brokerbridge.cli.watch import watch

app = typer.Typer(
    name="brokerbridge",
    help="Self-healing gateway between Kraken / Primary and your trading apps, with local simulators.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"brokerbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Self-healing gateway between Kraken / Primary and your trading apps, with local simulators."""


app.add_typer(sim.app, name="sim")
app.add_typer(order.app, name="order")
app.command()(watch)
app.command()(doctor)
app.command()(instruments)
app.command()(options)
app.command()(serve)
app.command()(status)
app.command(name="login-link")(login_link)
app.command(name="hash-password")(hash_password)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
