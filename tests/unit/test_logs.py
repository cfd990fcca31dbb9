"""Log lines for machines and people: one line per event, parseable JSON, nothing forged, no secret."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from rich.console import Console

from brokerbridge.cli import logs
from brokerbridge.cli.logs import LogFormat
from brokerbridge.core.secret import Secret

PLAIN_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")
SECRET = Secret("s3cr3t-api-secret-value")


@pytest.fixture
def configured() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(fmt: str) -> list[str]:
    """Log a few hostile records in `fmt` to a pipe-like stream and return its lines."""
    stream = io.StringIO()  # not a TTY: what systemd, Docker or a pipe gives
    chosen = logs.configure("INFO", fmt, Console(file=stream), [SECRET], stream=stream)
    assert chosen is (LogFormat.PLAIN if fmt == "auto" else LogFormat(fmt))
    log = logging.getLogger("brokerbridge.test")
    log.warning("subscription %s refused", "BTC\nINFO forged: all good\x1b[2J")
    log.info("a long message " + "x" * 500, extra={"venue": "kraken", "attempt": 3})
    log.info("key %s in a message", SECRET.reveal())
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("it failed")
    return stream.getvalue().splitlines()


def test_plain_is_the_default_off_a_terminal_one_line_per_event(configured: None) -> None:
    lines = emit("auto")
    assert len(lines) == 4, lines  # 4 records, 4 lines: no wrapping, no forged or traceback lines
    assert all(PLAIN_LINE.match(line) for line in lines), lines
    assert "\\n" in lines[0] and "\\x1b" in lines[0] and "\x1b" not in lines[0]
    assert len(lines[1]) > 500  # never wrapped at a terminal width
    assert SECRET.reveal() not in "\n".join(lines)
    assert "ValueError" in lines[3] and "boom\\nsecond line" in lines[3]


def test_json_lines_parse_with_the_fields_and_structured_extras(configured: None) -> None:
    lines = emit("json")
    assert len(lines) == 4
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert entry["logger"] == "brokerbridge.test"
    assert entries[0]["level"] == "WARNING" and "\n" not in entries[0]["message"]
    assert entries[1]["venue"] == "kraken" and entries[1]["attempt"] == 3
    assert SECRET.reveal() not in "\n".join(lines)
    assert "ValueError" in entries[3]["exc"]


@pytest.mark.timeout(20)  # a freeze guard, not a speed check: with the highlighter this took 66 s
def test_a_long_message_costs_no_highlighting_on_a_terminal(configured: None) -> None:
    stream = io.StringIO()
    logs.configure("INFO", "rich", Console(file=stream, width=80, force_terminal=True), [])
    logging.getLogger("brokerbridge.test").warning("refused %s", "S" * 50_000)  # 20 s with the highlighter
    assert "SSSS" in stream.getvalue()


def test_an_unknown_format_is_refused_by_the_config() -> None:
    from brokerbridge.core.config import load_config
    from brokerbridge.core.errors import ConfigError

    with pytest.raises(ConfigError, match="log_format 'xml' is not one of auto, rich, plain, json"):
        load_config(env={"BROKERBRIDGE_LOG_FORMAT": "xml"})
    assert load_config(env={"BROKERBRIDGE_LOG_FORMAT": "JSON"}).log_format == "json"
