"""Kraken REST request signing (API-Sign) and nonces.

API-Sign = base64(HMAC-SHA512(base64decode(secret), uri_path + SHA256(nonce + body)))
over the exact body bytes that are sent. Both our client and the simulator's verifier use `sign`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections.abc import Callable


def sign(uri_path: str, nonce: str, body: str, secret_b64: str) -> str:
    """The API-Sign header for `body` (the exact text sent) posted to `uri_path`."""
    message = uri_path.encode() + hashlib.sha256((nonce + body).encode()).digest()
    try:
        key = base64.b64decode(secret_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        # Never echo the secret itself; say what is wrong with it.
        raise ValueError("API secret is not valid base64 (copy it again from the venue's key page)") from exc
    return base64.b64encode(hmac.new(key, message, hashlib.sha512).digest()).decode()


def verify(uri_path: str, nonce: str, body: str, secret_b64: str, signature: str) -> bool:
    try:
        expected = sign(uri_path, nonce, body, secret_b64)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature.strip())


class NonceSource:
    """Strictly increasing nonces, safe under concurrent calls from threads and tasks.

    Microseconds since the epoch, bumped by one when two calls land in the same microsecond.
    (python-kraken-sdk uses 1e8/s and ccxt 1e3/s; a key shared with a larger-scale client is
    "poisoned" for us, which the InvalidNonce remedy explains.) `wall_time` is the clock's wall
    time (`Clock.time`): this package reads no clock of its own.
    """

    def __init__(self, wall_time: Callable[[], float], scale: int = 1_000_000) -> None:
        self._wall_time = wall_time
        self._scale = scale
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            candidate = int(self._wall_time() * self._scale)
            self._last = max(candidate, self._last + 1)
            return str(self._last)
