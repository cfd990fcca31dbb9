"""`brokerbridge doctor`: find and fix broker authentication and connectivity problems, step by step.

steps.py (the pure step model and runner) · kraken.py, primary.py (the probes per venue) ·
fixes.py (`--fix`) · render.py (table and JSON, secrets masked) · command.py (the Typer command).
"""

from brokerbridge.cli.doctor.command import doctor

__all__ = ["doctor"]
