"""Log output for people and for machines — the only place handlers are configured.

Three formats, one line per event in each:
- `rich`: colour and columns for a person at a terminal (the default when stderr is a TTY);
- `plain`: `2026-12-07T02:30:00.123Z INFO logger: message` — for systemd, Docker, CI and pipes (the
  default when stderr is not a TTY), never wrapped at the terminal's width;
- `json`: one JSON object per line: `time`, `level`, `logger`, `message`, any structured fields the
  code passed with `extra=`, and `exc` for a traceback.

Whatever the format, control characters in a message (a client's newline or ESC inside a symbol) are
escaped, so no input can forge a second log line or drive the terminal, and configured secrets are
masked.
"""

from __future__ import annotations

import enum
import logging
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec
from rich.console import Console
from rich.highlighter import NullHighlighter
from rich.logging import RichHandler

from brokerbridge.core.secret import Secret, redact

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class LogFormat(enum.StrEnum):
    AUTO = "auto"
    RICH = "rich"
    PLAIN = "plain"
    JSON = "json"


# Attributes every LogRecord has; anything else on a record came from `extra=` (structured fields).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# C0 controls but tab, DEL, and C1 controls (ESC sequences, NEL) — written as \n, \x1b, \x85 ….
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _escape_control(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def one_line(text: str) -> str:
    """`text` with control characters escaped: what a log line may safely contain."""
    return _CONTROL.sub(_escape_control, text)


class SafeMessage(logging.Filter):
    """Resolves the message once: control characters escaped, `secrets` masked (belt and braces —
    the library never logs secrets, this would mask one anyway)."""

    def __init__(self, secrets: Sequence[Secret] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        safe = one_line(redact(text, *self._secrets) if self._secrets else text)
        if safe != text:
            record.msg, record.args = safe, None
        return True


def _utc(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class PlainFormatter(logging.Formatter):
    """`time level logger: message`, a traceback folded into the same line."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += " | " + one_line(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record (msgspec encodes; anything it cannot is written with `str`)."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder(enc_hook=str)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry).decode()


def resolve_format(fmt: str, stream: TextIO) -> LogFormat:
    """`auto` becomes `rich` on a terminal, `plain` anywhere else."""
    chosen = LogFormat(fmt)
    if chosen is LogFormat.AUTO:
        return LogFormat.RICH if stream.isatty() else LogFormat.PLAIN
    return chosen


def make_handler(fmt: LogFormat, console: Console, stream: TextIO) -> logging.Handler:
    if fmt is LogFormat.RICH:
        # No highlighter: ReprHighlighter's regexes take time superlinear in a long message.
        return RichHandler(
            console=console,
            show_path=False,
            rich_tracebacks=False,
            markup=False,
            highlighter=NullHighlighter(),
        )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt is LogFormat.JSON else PlainFormatter())
    return handler


def configure(
    level: str,
    fmt: str,
    console: Console,
    secrets: Sequence[Secret | None] = (),
    stream: TextIO | None = None,
) -> LogFormat:
    """Send every log record of the process to stderr (or `stream`) in `fmt`; returns the format used.

    `level` and `fmt` must already be valid (`LOG_LEVELS`, `LogFormat`)."""
    out = stream or sys.stderr
    chosen = resolve_format(fmt, out)
    handler = make_handler(chosen, console, out)
    handler.addFilter(SafeMessage([s for s in secrets if s]))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for noisy in ("websockets", "httpx", "httpcore", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return chosen
