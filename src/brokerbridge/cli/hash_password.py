"""`brokerbridge hash-password`: the `password_hash` of a bridge-local user ([server.users.<name>]).

Bridge-local users log in where a Primary client expects a user and password
(`POST /primary/auth/getToken` with X-Username/X-Password): never the broker's own credentials,
which only `serve` holds. The password is read without echo (twice) or, with --stdin, from the
first line of standard input (for scripts); only the hash is printed, as a line to paste.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from brokerbridge.core.passwords import hash_password as make_hash

MIN_LENGTH = 8


def hash_password(
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Print the whole [server.users.<USER>] table, not only the line."),
    ] = None,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from the first line of standard input.")
    ] = False,
) -> None:
    """Print the scrypt hash of a password for a bridge-local user ([server.users.<name>]
    password_hash): the login that Primary clients (pyRofex, fetch code) use at /primary/."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_LENGTH:
        typer.echo(f"the password must have at least {MIN_LENGTH} characters", err=True)
        raise typer.Exit(2)
    line = f'password_hash = "{make_hash(password)}"'
    if user:
        scopes = 'scopes = ["read"]  # read = market + account; add "trade" to place orders'
        typer.echo(f"[server.users.{user}]\n{line}\n{scopes}")
    else:
        typer.echo(line)
