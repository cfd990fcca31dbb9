"""Kraken REST arguments as the simulator reads them: a form or JSON body as text parameters, and
the numbers and flags inside them, refused with Kraken's `EGeneral:Invalid arguments:<name>`."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from brokerbridge.sim.kraken.account import ApiError

Params = dict[str, str]


def invalid(name: str) -> ApiError:
    return ApiError(f"EGeneral:Invalid arguments:{name}")


def parse_body(body: str, content_type: str) -> Params:
    """A form body, or a JSON object (its values as the text a form would carry)."""
    if not body:
        return {}
    if "json" in content_type.lower() or body.lstrip().startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            raise ApiError("EGeneral:Invalid arguments") from None
        if not isinstance(data, dict):
            raise ApiError("EGeneral:Invalid arguments")
        return {k: _param_text(v) for k, v in data.items()}
    return dict(parse_qsl(body, keep_blank_values=True))


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_param_text(v) for v in value)
    return str(value)


def flag_arg(params: Params, name: str) -> bool:
    return params.get(name, "").strip().lower() in ("true", "1", "yes")


def int_arg(params: Params, name: str, default: int | None = None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid(name) from None


def decimal_arg(raw: str, name: str) -> Decimal:
    try:
        value = Decimal(raw.strip())
    except (InvalidOperation, AttributeError):
        raise invalid(name) from None
    if not value.is_finite():
        raise invalid(name)
    return value
