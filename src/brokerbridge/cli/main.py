"""`brokerbridge` entry point: one Typer app, one sub-module per command group."""

from __future__ import annotations

import typer

from brokerbridge.cli import sim
from brokerbridge.cli.doctor import doctor
from brokerbridge.cli.instruments import instruments
from brokerbridge.cli.serve import serve
from brokerbridge.cli.watch import watch

app = typer.Typer(
    name="brokerbridge",
    help="Self-healing gateway between Kraken / Primary and your trading apps, with local simulators.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sim.app, name="sim")
app.command()(watch)
app.command()(doctor)
app.command()(instruments)
app.command()(serve)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
