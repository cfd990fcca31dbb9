"""The web dashboard: static files (HTML, CSS, JavaScript modules) shipped inside the package.

`/` answers the single page (`static/index.html`); its assets live under `/dashboard/`. Routing
between pages happens in the browser (`#/acciones`, `#/crypto`, …), so no other path is taken and
the app's own routes (`/api`, `/ws`, `/login` …) are never shadowed. The page talks only to this
server (same origin: `/ws`, `/api`), never to a venue, so no broker credential reaches the browser.
There is no build step: the files are served as they are in the repository (and the wheel).

`/client/` serves the JavaScript client package (`static/client/`: the npm package's very files),
which the dashboard imports from there too — one client. Any page may `import` it, also from
another origin (module scripts are fetched with CORS): it is public code, so it is sent with
`Access-Control-Allow-Origin: *` and no credentials are ever read for it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).with_name("static")
ASSETS_PATH = "/dashboard"
CLIENT_DIR = STATIC_DIR / "client"
CLIENT_PATH = "/client"

# Everything the page loads comes from this origin; the WebSocket goes to this host too.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Revalidate on every load (ETag → 304 on loopback): an upgraded server never runs stale modules.
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
}


# The client package: importable by pages of any origin (`import … from "https://bridge/client/index.js"`).
_CLIENT_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


class _Assets(StaticFiles):
    def __init__(self, *, directory: Path, headers: dict[str, str]) -> None:
        super().__init__(directory=directory)
        self._headers = headers

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(self._headers)
        if path.endswith(".d.ts"):  # not MPEG transport streams, whatever mimetypes guesses
            response.headers["Content-Type"] = "text/plain; charset=utf-8"
        return response


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at `/`, its assets under `/dashboard/` and the client package under `/client/`."""
    index = STATIC_DIR / "index.html"

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=_HEADERS)

    app.mount(CLIENT_PATH, _Assets(directory=CLIENT_DIR, headers=_CLIENT_HEADERS), name="client")
    app.mount(ASSETS_PATH, _Assets(directory=STATIC_DIR, headers=_HEADERS), name="dashboard")
