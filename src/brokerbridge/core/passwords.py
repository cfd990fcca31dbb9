"""Password hashes of bridge-local users (`[server.users.<name>] password_hash`): scrypt from the
standard library (`hashlib.scrypt`, RFC 7914), written `scrypt$N$r$p$salt$hash` (base64url) so the
cost can be raised later without making old hashes unreadable.

Why scrypt: memory-hard, in the standard library (no new dependency), and what OWASP lists next to
Argon2 for password storage. N=2^14, r=8, p=1 costs about 16 MiB and some tens of ms per check —
the server runs the check off the event loop (server/auth.py) and refuses guessers by address
(`AuthThrottle`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "scrypt"
N, R, P = 2**14, 8, 1
_LENGTH = 32
_MAX_N = 2**20  # a hash asking for more would cost the server more memory than it should spend


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p)
    return f"{PREFIX}${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def is_password_hash(text: str) -> bool:
    return _parse(text) is not None


def check_password(password: str, hashed: str) -> bool:
    """True when `password` is the one `hashed` was made from (constant-time comparison)."""
    parsed = _parse(hashed)
    if parsed is None:
        return False
    n, r, p, salt, digest = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + 2**20,
        dklen=_LENGTH,
    )


def _parse(text: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        return None
    if len(salt) < 8 or len(digest) != _LENGTH:
        return None
    return n, r, p, salt, digest


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
