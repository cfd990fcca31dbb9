"""docs/schemas/ holds one JSON Schema per /ws message, generated from the msgspec Structs.

Regenerate after changing `brokerbridge/server/protocol.py`:
    BROKERBRIDGE_UPDATE_SCHEMAS=1 pytest tests/server/test_schemas.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec

from brokerbridge.server.protocol import Codec, EventMessage, schemas

SCHEMA_DIR = Path(__file__).parents[2] / "docs" / "schemas"


def meaning(schema: Any) -> Any:
    """The schema with prose normalized: `description`/`title` texts compared by their words, so a
    msgspec release that dedents or re-flows docstrings changes nothing, while a field, a type, a
    bound or a word of documentation still does."""
    if isinstance(schema, dict):
        return {
            key: " ".join(value.split())
            if key in ("description", "title") and isinstance(value, str)
            else meaning(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [meaning(item) for item in schema]
    return schema


def test_committed_schemas_match_the_code() -> None:
    expected = schemas()
    if os.environ.get("BROKERBRIDGE_UPDATE_SCHEMAS"):
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        for name, body in expected.items():
            (SCHEMA_DIR / name).write_bytes(body)
    on_disk = {p.name: p.read_bytes() for p in SCHEMA_DIR.glob("*.schema.json")}
    assert set(on_disk) == set(expected), "docs/schemas is out of date (see this module's docstring)"
    for name, body in expected.items():
        assert meaning(json.loads(on_disk[name])) == meaning(json.loads(body)), (
            f"{name} is out of date (see this module's docstring)"
        )


def test_reflowed_prose_is_the_same_schema_and_a_changed_field_is_not() -> None:
    body = json.loads(schemas()["server.event.schema.json"])
    ticker = body["$defs"]["Ticker"]
    reflowed = json.loads(json.dumps(body))
    reflowed["$defs"]["Ticker"]["description"] = "\n    ".join(ticker.get("description", "a b").split())
    assert meaning(reflowed) == meaning(body)
    changed = json.loads(json.dumps(body))
    changed["$defs"]["Ticker"]["properties"]["bid"] = {"type": "number"}
    assert meaning(changed) != meaning(body)
    renamed = json.loads(json.dumps(body))
    renamed["$defs"]["Ticker"]["required"] = [*ticker["required"], "spread"]
    assert meaning(renamed) != meaning(body)


def test_decimals_are_strings_in_event_messages_and_the_schema_says_so() -> None:
    from decimal import Decimal

    from brokerbridge.core.events import Ticker

    ticker = Ticker(
        venue="kraken",
        ts=1.0,
        symbol="BTC/USD",
        bid=Decimal("1.50"),
        bid_qty=None,
        ask=None,
        ask_qty=None,
        last=None,
    )
    data = json.loads(Codec().encode(EventMessage(id="t", seq=1, event=ticker)))
    assert data == {
        "type": "event",
        "id": "t",
        "seq": 1,
        "event": msgspec.to_builtins(ticker) | {"bid": "1.50"},
    }
    schema = json.loads(schemas()["server.event.schema.json"])
    assert schema["$defs"]["Ticker"]["properties"]["bid"]["anyOf"][0] == {
        "type": "string",
        "format": "decimal",
    }
