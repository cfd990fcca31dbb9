"""Mask client credentials in what uvicorn logs.

uvicorn logs every request line with its query string (`/login?code=…`, `/ws?token=…`, `?key=`),
and the `websockets` protocol under it logs handshake headers (`Authorization`, `Cookie`) and whole
frames (`{"op": "auth", "key": …}`) at DEBUG. `BridgeServer` puts this filter on those loggers for
its lifetime: the record is formatted, masked, and passed on — whatever handlers the embedder has.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from brokerbridge.core.secret import Secret, redact

# Loggers uvicorn (and the websockets protocol it drives) write request lines, headers and frames to,
# and ours for `/ws` handshakes (server/wire.py masks its lines itself too).
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access", "brokerbridge.server.wire")

_PATTERNS = (
    re.compile(r"([?&](?:code|token|key)=)[^&\s\"'#]*", re.IGNORECASE),
    re.compile(r"(\"(?:key|token|code)\"\s*:\s*\")[^\"]*", re.IGNORECASE),
    re.compile(r"(\b(?:authorization|cookie|set-cookie)\s*:\s*)[^\r\n]+", re.IGNORECASE),
    re.compile(r"(\bbb_session=)[^;\s]*"),
)


def redact_credentials(text: str, secrets: Sequence[Secret] = ()) -> str:
    """`text` with credential-looking values (query, JSON, headers, cookie) and `secrets` masked."""
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1***", text)
    return redact(text, *secrets)


class RedactCredentials(logging.Filter):
    """`secrets`: the configured client keys, masked wherever they appear (belt and braces)."""

    def __init__(self, secrets: Sequence[Secret] = ()) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = redact_credentials(text, self._secrets)
        if masked != text:
            record.msg, record.args = masked, None
        return True
