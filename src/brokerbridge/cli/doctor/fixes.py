"""`doctor --fix`: the safe automatic fixes, and a plain statement for everything else.

Safe means: nothing is sent that a failed step had not already sent, nothing is deleted, and the
config file is edited with tomlkit so the user's comments and layout survive. What is fixed here:

* nonce  — find a nonce scale above the key's last nonce (trying 1e7…1e9 /s) and write
           `kraken.nonce_scale`;
* token  — a fresh WebSocket token / a new Primary login (the re-run fetches it);
* host   — a `matriz.*` web-app host replaced by the broker's API environment in `[primary]`.

The clock cannot be set without root: the fix reports the command. The caller re-runs the steps
afterwards; a fix is only "applied" here, the re-run says whether it worked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from brokerbridge.cli.doctor.kraken import KrakenDoctor
from brokerbridge.cli.doctor.primary import PrimaryDoctor, matriz_suggestion
from brokerbridge.cli.doctor.steps import FixReport, StepResult
from brokerbridge.core.config import NONCE_SCALES
from brokerbridge.core.errors import BrokerBridgeError, InvalidNonce, PermissionDenied
from brokerbridge.io.kraken.rest import KrakenRestClient
from brokerbridge.venues.kraken import rest as kraken_rest
from brokerbridge.venues.kraken.auth import NonceSource

CLOCK_FIX = (
    "needs root, so it is not done for you: run `sudo timedatectl set-ntp true` (systemd-timesyncd) "
    "or `sudo chronyc makestep` (chrony), then `timedatectl status` should say “System clock "
    "synchronized: yes”"
)


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigTarget:
    """Where fixes may write: the config file in use, unless the run uses a simulator."""

    path: Path | None
    simulated: bool = False

    def why_not(self) -> str | None:
        if self.simulated:
            return "running against the embedded simulator: the config file is left alone"
        if self.path is None:
            return "no config file in use (--config FILE or $BROKERBRIDGE_CONFIG)"
        return None


async def fix_kraken(doctor: KrakenDoctor, failed: list[StepResult], target: ConfigTarget) -> list[FixReport]:
    reports: list[FixReport] = []
    for fix in _fix_names(failed):
        if fix == "nonce":
            reports.append(await _fix_nonce(doctor, target))
        elif fix == "token":
            reports.append(
                FixReport("ws_private", "fresh WebSocket token", True, "a new token is requested now")
            )
        elif fix == "clock":
            reports.append(FixReport("clock", "clock sync", False, CLOCK_FIX))
    return reports + _cannot_fix(failed)


async def fix_primary(
    doctor: PrimaryDoctor, failed: list[StepResult], target: ConfigTarget
) -> list[FixReport]:
    reports: list[FixReport] = []
    for fix in _fix_names(failed):
        if fix == "host":
            reports.append(_fix_host(doctor, target))
        elif fix == "token":
            reports.append(FixReport("login", "fresh token", True, "logging in again now"))
    return reports + _cannot_fix(failed)


def _fix_names(failed: list[StepResult]) -> list[str]:
    return list(dict.fromkeys(r.fix for r in failed if r.fix is not None))


def _cannot_fix(failed: list[StepResult]) -> list[FixReport]:
    return [
        FixReport(r.key, r.title, False, f"cannot be fixed automatically — {r.remedy}")
        for r in failed
        if r.fix is None
    ]


async def _fix_nonce(doctor: KrakenDoctor, target: ConfigTarget) -> FixReport:
    action = "nonce scale above the key's last nonce"
    current = doctor.config.nonce_scale
    for scale in (s for s in NONCE_SCALES if s > current):
        if await _nonce_accepted(doctor, scale):
            await doctor.use_nonce_scale(scale)
            written = _write(target, "kraken", {"nonce_scale": scale})
            return FixReport(
                "private",
                action,
                True,
                f"Kraken accepts nonces at {scale:g}/s (was {current:g}/s); {written}. The other client "
                "using this key will now get “Invalid nonce” itself: give each client its own key",
            )
    return FixReport(
        "private",
        action,
        False,
        f"no scale up to {NONCE_SCALES[-1]:g}/s is above the key's last nonce: create a new API key for "
        "brokerbridge (or set a nonce window on this one)",
    )


async def _nonce_accepted(doctor: KrakenDoctor, scale: int) -> bool:
    config = dataclasses.replace(doctor.config, nonce_scale=scale, request_timeout=doctor.timeout)
    client = KrakenRestClient(config, clock=doctor.clock, nonces=NonceSource(doctor.clock.time, scale=scale))
    try:
        await client.call(kraken_rest.balance_request())
    except InvalidNonce:
        return False
    except PermissionDenied:
        return True  # Kraken checks the nonce before permissions: this one was taken
    except BrokerBridgeError:
        return False
    finally:
        await client.aclose()
    return True


def _fix_host(doctor: PrimaryDoctor, target: ConfigTarget) -> FixReport:
    if doctor.matriz_ws_url is not None:
        return _fix_ws_url(doctor, target, doctor.matriz_ws_url)
    wrong = doctor.environment or ""
    suggestion = matriz_suggestion(wrong)
    if suggestion is None:
        return FixReport("host", "API host", False, "no replacement known for this host")
    doctor.environment = suggestion
    action = f"API host {suggestion!r} instead of the web app's {wrong!r}"
    why_not = target.why_not()
    if why_not is None:
        assert target.path is not None
        section = _read_section(target.path, "primary")
        holds = [name for name in ("environment", "rest_url", "ws_url") if section.get(name) == wrong]
        if not holds:
            why_not = f"{target.path} does not hold {wrong!r} (it comes from a flag or the environment)"
        else:
            drop = [name for name in ("rest_url", "ws_url") if matriz_suggestion(str(section.get(name, "")))]
            detail = _write(target, "primary", {"environment": suggestion}, remove=drop)
            return FixReport("host", action, True, detail)
    return FixReport(
        "host", action, True, f"checked now; not written ({why_not}): set environment = {suggestion!r}"
    )


def _fix_ws_url(doctor: PrimaryDoctor, target: ConfigTarget, wrong: str) -> FixReport:
    """The environment is right and only `ws_url` names the web app: remove it (the environment's
    WebSocket is then used)."""
    doctor.drop_ws_url, doctor.matriz_ws_url = True, None
    action = f"the web app's ws_url {wrong!r} removed (environment {doctor.environment!r} gives the API's)"
    why_not = target.why_not()
    if why_not is None:
        assert target.path is not None
        if _read_section(target.path, "primary").get("ws_url") != wrong:
            why_not = f"{target.path} does not hold it (it comes from the environment)"
        else:
            return FixReport("host", action, True, _write(target, "primary", {}, remove=["ws_url"]))
    return FixReport(
        "host", action, True, f"checked now; not written ({why_not}): remove ws_url from [primary]"
    )


def _read_section(path: Path, section: str) -> dict[str, Any]:
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, TOMLKitError):
        return {}
    table = document.get(section)
    return dict(table) if isinstance(table, dict) else {}


def _write(
    target: ConfigTarget, section: str, values: dict[str, Any], remove: list[str] | None = None
) -> str:
    """Set `values` in `[section]` of the config file, keeping everything else; say what happened."""
    why_not = target.why_not()
    settings = ", ".join(f"{k} = {v!r}" for k, v in values.items())
    change = " and ".join(
        part
        for part in (f"add {settings}" if settings else "", f"remove {', '.join(remove)}" if remove else "")
        if part
    )
    if why_not is not None:
        return f"not written ({why_not}): {change} under [{section}]"
    assert target.path is not None
    try:
        write_settings(target.path, section, values, remove or [])
    except (OSError, TOMLKitError) as exc:
        return f"could not write {target.path} ({exc}): {change} under [{section}] yourself"
    done = "; ".join(part for part in (settings, f"removed {', '.join(remove)}" if remove else "") if part)
    return f"written to {target.path}: [{section}] {done}"


def write_settings(path: Path, section: str, values: dict[str, Any], remove: list[str]) -> None:
    """Edit one table of a TOML file in place; comments, order and formatting elsewhere survive."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    document = tomlkit.parse(text)
    table = document.get(section)
    if table is None:
        table = tomlkit.table()
        document[section] = table
    for name in remove:
        if name in table:
            del table[name]
    for name, value in values.items():
        table[name] = value
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
