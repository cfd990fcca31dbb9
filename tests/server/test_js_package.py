"""The JavaScript client package is in step with the server: its generated protocol types equal what
scripts/gen_js_types.py makes of docs/schemas/ now, its version is the Python package's, and the
server serves it at /client/ to pages of any origin — the dashboard importing it from there."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import httpx

import brokerbridge
from tests.server.conftest import LIMIT, Stack

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "brokerbridge" / "server" / "static" / "client"


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_js_types", ROOT / "scripts" / "gen_js_types.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_protocol_types_are_generated_from_the_schemas_as_they_are() -> None:
    generator = load_generator()
    committed = (PACKAGE / "protocol.d.ts").read_text(encoding="utf-8")
    assert committed == generator.render(), (
        "src/brokerbridge/server/static/client/protocol.d.ts is stale against docs/schemas/: "
        "run  .venv/bin/python scripts/gen_js_types.py  and commit the result"
    )


def test_every_event_and_message_has_a_type() -> None:
    text = (PACKAGE / "protocol.d.ts").read_text(encoding="utf-8")
    for name in (
        "Ticker",
        "BookSnapshot",
        "Fill",
        "OrderUpdate",
        "StreamStatus",
        "Gap",
        "OrderAck",
        "CancelAck",
    ):
        assert re.search(rf"^export interface {name} \{{", text, re.M), name
    union = re.search(r"^export type ClientMessage = (.*);$", text, re.M)
    assert union and set(union[1].split(" | ")) == {
        "Amend",
        "Auth",
        "Cancel",
        "Ping",
        "Place",
        "Subscribe",
        "Unsubscribe",
    }
    union = re.search(r"^export type ServerMessage = (.*);$", text, re.M)
    assert union and set(union[1].split(" | ")) == {
        "Ack",
        "ErrorMessage",
        "EventMessage",
        "Heartbeat",
        "OrderAnswer",
        "Pong",
    }


def test_package_version_and_files() -> None:
    manifest = json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))
    assert manifest["version"] == brokerbridge.__version__
    client = (PACKAGE / "client.js").read_text(encoding="utf-8")
    assert f'export const VERSION = "{brokerbridge.__version__}";' in client
    assert manifest["type"] == "module" and not manifest.get("dependencies")
    # Every file the package publishes is there (LICENSE is copied in by `npm pack`'s prepack).
    missing = [name for name in manifest["files"] if name != "LICENSE" and not (PACKAGE / name).is_file()]
    assert not missing
    for target in manifest["exports"].values():
        paths = [target] if isinstance(target, str) else list(target.values())
        assert all((PACKAGE / path).is_file() for path in paths), target


async def test_served_at_client_for_any_origin_and_imported_by_the_dashboard(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http:
        for name in ("index.js", "client.js", "errors.js"):
            answer = await http.get(f"/client/{name}", headers={"Origin": "https://app.example"})
            assert answer.status_code == 200, name
            assert answer.headers["content-type"].startswith("text/javascript")
            assert answer.headers["access-control-allow-origin"] == "*"  # module scripts are CORS fetches
            assert answer.text == (PACKAGE / name).read_text(encoding="utf-8")
        types = await http.get("/client/protocol.d.ts")
        assert types.status_code == 200 and types.headers["content-type"].startswith("text/plain")
        assert (await http.get("/client/package.json")).json()["version"] == brokerbridge.__version__
        # One client: the dashboard's modules import the package from /client/, no socket of their own.
        api = (await http.get("/dashboard/js/api.js")).text
        assert 'from "/client/index.js"' in api
        assert (await http.get("/dashboard/js/bridge.js")).status_code == 404
