"""`brokerbridge sim <venue>`: run a protocol-faithful local simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run a local venue simulator (prints its endpoints as JSON on the first line).")
