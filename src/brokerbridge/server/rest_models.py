"""OpenAPI schemas for `/api/*`, derived from the msgspec Structs the routes encode.

FastAPI documents response bodies through pydantic models. Writing those by hand would duplicate
every event type and let the docs drift from what is sent, so `OpenApiModels` builds them from the
Structs' own type information (`msgspec.inspect`): the routes keep encoding with msgspec, and the
schemas at `/openapi.json` describe exactly those bytes (Decimals as strings, every field present).
"""

from __future__ import annotations

import datetime
import typing
from typing import Any, Literal

import msgspec
import msgspec.inspect as mi
from pydantic import BaseModel, ConfigDict, Field, create_model

from brokerbridge.client import models
from brokerbridge.venues.primary.catalog import InstrumentDetail


class SymbolRow(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str


class CatalogResponse(models.InstrumentsResponse, frozen=True, kw_only=True):
    """Primary: catalogue details (`source: catalog`)."""

    instruments: list[InstrumentDetail]  # type: ignore[assignment]


class SymbolsResponse(models.InstrumentsResponse, frozen=True, kw_only=True):
    """Kraken: the symbols the bridge streams (`source: subscriptions`)."""

    instruments: list[SymbolRow]  # type: ignore[assignment]


class OpenApiModels:
    """One pydantic model per msgspec Struct (built once, shared where types nest)."""

    def __init__(self) -> None:
        self._built: dict[type, Any] = {}

    def of(self, struct: type) -> type[BaseModel]:
        model: type[BaseModel] = self._annotation(mi.type_info(struct))
        return model

    def responses(self, ok: type | tuple[type, ...], *errors: int) -> dict[int | str, dict[str, Any]]:
        """FastAPI `responses=`: the 200 body (one of `ok`) and the error body for each of `errors`."""
        bodies = tuple(self.of(t) for t in (ok if isinstance(ok, tuple) else (ok,)))
        out: dict[int | str, dict[str, Any]] = {200: {"model": typing.Union[bodies]}}  # noqa: UP007
        for status in errors:
            out[status] = {"model": self.of(models.ErrorResponse)}
        return out

    def _annotation(self, info: mi.Type) -> Any:
        match info:
            case mi.DecimalType():
                return typing.Annotated[str, Field(description="decimal number as text")]
            case mi.StrType():
                return str
            case mi.IntType():
                return int
            case mi.FloatType():
                return float
            case mi.BoolType():
                return bool
            case mi.NoneType():
                return None
            case mi.AnyType():
                return Any
            case mi.DateType():
                return datetime.date
            case mi.EnumType(cls=cls):
                return cls
            case mi.LiteralType(values=values):
                return Literal[values]
            case mi.UnionType(types=types):
                return typing.Union[tuple(self._annotation(t) for t in types)]  # noqa: UP007
            case mi.ListType(item_type=item) | mi.VarTupleType(item_type=item) | mi.SetType(item_type=item):
                return list[self._annotation(item)]  # type: ignore[misc]
            case mi.TupleType(item_types=items):
                return tuple[tuple(self._annotation(t) for t in items)]  # type: ignore[misc]
            case mi.DictType(key_type=key, value_type=value):
                return dict[self._annotation(key), self._annotation(value)]  # type: ignore[misc]
            case mi.StructType(array_like=True, fields=fields):
                return tuple[tuple(self._annotation(f.type) for f in fields)]  # type: ignore[misc]
            case mi.StructType(cls=cls):
                return self._model(cls, info)
        raise TypeError(f"no OpenAPI schema for {info!r}")  # pragma: no cover

    def _model(self, cls: type, info: mi.StructType) -> type[BaseModel]:
        if cls in self._built:
            return self._built[cls]  # type: ignore[no-any-return]
        fields: dict[str, Any] = {}
        if info.tag_field is not None:
            fields[info.tag_field] = (Literal[info.tag], ...)
        optional: frozenset[str] = getattr(cls, "__wire_optional__", frozenset())
        for field in info.fields:
            # msgspec encodes every field (no omit_defaults here): each is always present — but
            # those a Struct names as sent only by some routes (ErrorDetail.rule).
            required = field.default if field.encode_name in optional else ...
            fields[field.encode_name] = (self._annotation(field.type), required)
        model = create_model(
            cls.__name__,
            __config__=ConfigDict(title=cls.__name__),
            __doc__=(cls.__doc__ or "").strip() or None,
            **fields,
        )
        self._built[cls] = model
        return model  # type: ignore[no-any-return]
