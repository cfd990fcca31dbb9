"""Signing: Kraken's official test vector (kraken.md §1.4), through `auth.sign` and the REST codec."""

from __future__ import annotations

import pytest

from brokerbridge.core.errors import ConfigError
from brokerbridge.core.secret import Secret
from brokerbridge.venues.kraken.auth import NonceSource, sign, verify
from brokerbridge.venues.kraken.rest import build_private

SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
NONCE = "1616492376594"
BODY = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
PATH = "/0/private/AddOrder"
EXPECTED = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


def test_official_vector() -> None:
    assert sign(PATH, NONCE, BODY, SECRET) == EXPECTED
    assert verify(PATH, NONCE, BODY, SECRET, EXPECTED)
    assert not verify(PATH, NONCE, BODY + "&x=1", SECRET, EXPECTED)


def test_codec_builds_the_vector_request() -> None:
    params = {"ordertype": "limit", "pair": "XBTUSD", "price": 37500, "type": "buy", "volume": "1.25"}
    request = build_private("AddOrder", params, NONCE, "my-key", Secret(SECRET))
    assert request.method == "POST"
    assert request.path == PATH
    assert request.body == BODY
    assert request.headers["API-Sign"] == EXPECTED
    assert request.headers["API-Key"] == "my-key"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    shown = repr(request)
    assert "my-key" not in shown and EXPECTED not in shown


def test_bad_secret_error_does_not_leak_it() -> None:
    secret = "not*base64*secret-value"
    with pytest.raises(ConfigError) as info:
        build_private("Balance", None, "1", "key", secret)
    assert secret not in str(info.value)
    assert secret not in repr(info.value)


def test_nonces_strictly_increase_on_a_stuck_clock() -> None:
    nonces = NonceSource(wall_time=lambda: 1_700_000_000.0)
    values = [int(nonces.next()) for _ in range(5)]
    assert values == sorted(set(values)) and values[0] == 1_700_000_000_000_000
