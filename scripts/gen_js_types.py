#!/usr/bin/env python3
"""TypeScript declarations of the `/ws` protocol, from the JSON Schemas in docs/schemas/.

    python scripts/gen_js_types.py            write src/brokerbridge/server/static/client/protocol.d.ts
    python scripts/gen_js_types.py --check    exit 1 when that file is not what the schemas give

The schemas are what msgspec emits for the Structs of server/protocol.py (tests/server/test_schemas.py
keeps them equal), so the chain is Structs → schemas → protocol.d.ts, each step checked by a test
(tests/server/test_js_package.py runs `render()` against the committed file). Only the JSON Schema
msgspec produces is read: objects, `anyOf`, `enum`, `$ref`, arrays and tuples (`prefixItems`),
scalars; a keyword outside that is an error here, not a silently wrong type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schemas"
TARGET = ROOT / "src" / "brokerbridge" / "server" / "static" / "client" / "protocol.d.ts"

# Schema titles that would shadow a TypeScript global inside the module.
RENAMED = {"Error": "ErrorMessage"}
# Keywords that only constrain values (TypeScript cannot say them): kept as documentation at most.
CONSTRAINTS = {"maxLength", "minLength", "pattern", "minimum", "maximum", "maxItems", "minItems", "format"}
READ = {"type", "anyOf", "enum", "$ref", "items", "prefixItems", "default", "title", "description"}
READ |= {"properties", "required", "additionalProperties", "discriminator"}
EVENT_UNION = "AnyEvent"  # the `anyOf` discriminated by `kind`: every normalized event


class Generator:
    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}  # name → schema, across every file
        self.messages: dict[str, str] = {}  # "client.subscribe" → type name
        self.event_kinds: dict[str, str] = {}  # kind → type name

    def load(self, directory: Path) -> None:
        for path in sorted(directory.glob("*.schema.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            for name, body in schema.get("$defs", {}).items():
                known = self.defs.get(name)
                if known is not None and known != body:
                    raise SystemExit(
                        f"{path.name}: $defs/{name} differs from another file's: rename one Struct"
                    )
                self.defs[name] = body
            self.messages[schema["title"]] = self.ref_name(schema["$ref"])

    @staticmethod
    def ref_name(ref: str) -> str:
        name = ref.removeprefix("#/$defs/")
        return RENAMED.get(name, name)

    def type_of(self, schema: dict[str, Any], where: str) -> str:
        unknown = set(schema) - CONSTRAINTS - READ
        if unknown:
            raise SystemExit(f"{where}: JSON Schema keywords this generator does not read: {sorted(unknown)}")
        if "$ref" in schema:
            return self.ref_name(schema["$ref"])
        if "anyOf" in schema:
            discriminator = schema.get("discriminator")
            if discriminator is not None and discriminator.get("propertyName") == "kind":
                for kind, ref in discriminator["mapping"].items():
                    self.event_kinds[kind] = self.ref_name(ref)
                return EVENT_UNION
            return " | ".join(self.type_of(part, where) for part in schema["anyOf"])
        if "enum" in schema:
            return " | ".join(json.dumps(value) for value in schema["enum"])
        kind = schema.get("type")
        if isinstance(kind, dict):  # only a property *named* type holds {"enum": [...]}: read above
            raise SystemExit(f"{where}: unexpected nested type")
        if kind == "string":
            return "Decimal" if schema.get("format") == "decimal" else "string"
        if kind in ("integer", "number"):
            return "number"
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "null"
        if kind == "array":
            if "prefixItems" in schema:
                return "[" + ", ".join(self.type_of(item, where) for item in schema["prefixItems"]) + "]"
            item = self.type_of(schema.get("items", {}), where) if schema.get("items") else "unknown"
            return f"({item})[]" if "|" in item else f"{item}[]"
        if kind == "object":
            if "properties" in schema:
                return (
                    "{ "
                    + " ".join(self.property(n, s, schema, where) for n, s in schema["properties"].items())
                    + " }"
                )
            extra = schema.get("additionalProperties")
            value = self.type_of(extra, where) if isinstance(extra, dict) and extra else "unknown"
            return f"Record<string, {value}>"
        if not schema or set(schema) <= {"default", "title", "description"}:
            return "unknown"
        raise SystemExit(f"{where}: cannot read {schema}")

    def property(self, name: str, schema: dict[str, Any], parent: dict[str, Any], where: str) -> str:
        optional = "" if name in parent.get("required", ()) else "?"
        key = name if name.isidentifier() else json.dumps(name)
        return f"{key}{optional}: {self.type_of(schema, f'{where}.{name}')};"

    def declaration(self, name: str, schema: dict[str, Any]) -> list[str]:
        public = RENAMED.get(name, name)
        lines = doc(schema.get("description", ""), "")
        if schema.get("type") == "object" and "properties" in schema:
            lines.append(f"export interface {public} {{")
            for prop, body in schema["properties"].items():
                note = body.get("description", "")
                if "default" in body:
                    note = (note + " " if note else "") + f"Default: `{json.dumps(body['default'])}`."
                lines += doc(note, "  ")
                lines.append("  " + self.property(prop, body, schema, name))
            lines.append("}")
        else:
            lines.append(f"export type {public} = {self.type_of(schema, name)};")
        return lines

    def render(self) -> str:
        out = [
            "// The /ws protocol's messages and events, generated by scripts/gen_js_types.py from",
            "// docs/schemas/*.schema.json (themselves generated from server/protocol.py). Do not edit:",
            "// change the Structs, regenerate the schemas, then run the script.",
            "",
            "/** A decimal number as the venue wrote it (trailing zeros kept): parse with a decimal library,",
            " * never `Number`, where exactness matters. */",
            "export type Decimal = string;",
            "",
        ]
        for name in sorted(self.defs):
            out += [*self.declaration(name, self.defs[name]), ""]
        kinds = sorted(self.event_kinds.items())
        out += [
            "/** Every normalized event, told apart by `kind`. */",
            f"export type {EVENT_UNION} = " + " | ".join(t for _, t in kinds) + ";",
            "",
            "/** The event type of each `kind`. */",
            "export interface EventByKind {",
            *(f"  {kind}: {name};" for kind, name in kinds),
            "}",
            "",
        ]
        for side, label in (
            ("client", "What a client sends (`op`)."),
            ("server", "What the server sends (`type`)."),
        ):
            names = [t for title, t in sorted(self.messages.items()) if title.startswith(f"{side}.")]
            union = "ClientMessage" if side == "client" else "ServerMessage"
            out += [f"/** {label} */", f"export type {union} = " + " | ".join(names) + ";", ""]
        return "\n".join(out).rstrip("\n") + "\n"


def doc(text: str, indent: str) -> list[str]:
    if not text:
        return []
    body = text.replace("*/", "*\\/").splitlines()
    if len(body) == 1:
        return [f"{indent}/** {body[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in body), f"{indent} */"]


def render(directory: Path = SCHEMAS) -> str:
    generator = Generator()
    generator.load(directory)
    return generator.render()


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(
                f"{TARGET.relative_to(ROOT)} is stale: run  python scripts/gen_js_types.py", file=sys.stderr
            )
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
