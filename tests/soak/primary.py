"""The soak of the Primary-compatible endpoint: many unmodified Primary clients on ONE bridge session.

    python -m tests.soak.primary --seconds 600 --pyrofex 50 --ws 200

Processes, as a deployment runs them: the Primary simulator (`brokerbridge sim primary`, the venue);
`brokerbridge serve --venue primary` pointed at it with a config holding one API key the clients
log in with at `POST /primary/auth/getToken` (X-Username/X-Password: the pyRofex processes a
bridge-local user's name and password, the WebSocket clients an API key's name and the key);
`--pyrofex` pyRofex processes (tests/soak/pyrofex_worker.py: pyRofex 0.5.0 unmodified, only its URLs
changed, each running the whole flow in a loop — initialize, instruments, market data over REST, the
WebSocket with `Md` BI/OF/LA depth 5, order reports, an order sent and cancelled every few rounds
over REST or the socket, positions, account report); and here, `--ws` WebSocket clients on
`/primary/` (half with the token as the `X-Auth-Token` header, half as `?token=`, as a browser must),
each sending one `smd` for two BYMA symbols with BI/OF/LA at a depth of 1–5 and reading `Md`.

At the end it reads what the venue saw (`GET /_sim/stats` of the simulator) and prints the counts.
It exits 1 (and lists the problems) unless:

* the venue saw ONE login and no token ended (`invalidations` 0: none revoked by another login, none
  removed, none expired), one token and one socket in use at most, no call or handshake refused,
  no error frame and no malformed client frame forwarded — or, with `--token-ttl`/`--relogin`
  (the venue's tokens made short so the bridge must renew inside the run), at least one renewal,
  each a login that revoked only the previous token, no token left to expire, no handshake or
  login refused (see `judge_upstream` for what a renewal may cost);
* every WebSocket client and every pyRofex process received `Md`, with exactly the entries it asked
  for and no more levels than its depth, and still received them in the last `RECENT_S` of the run;
  no client's socket dropped, no gap in its `Md` longer than `GAP_LIMIT_S`;
* pyRofex saw no error: every REST answer `status: OK`, no error frame, no exception from its socket
  thread, every order acknowledged and cancelled;
* `serve` logged no ERROR.

`--direct` runs the same clients straight against the simulator instead (no bridge; the simulator
does not revoke on re-login there, or the clients would cut each other off): what the venue would
see without the bridge — one login per client session. `--workdir DIR` keeps the config, `serve.log`,
the simulator's log and `report.json` (every figure, per client and per pyRofex process).
tests/soak/test_primary_soak.py runs a short version under pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import random
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from bench.primary_stack import KEY, KEY_NAME, USER, USER_PASSWORD, Serve, Simulator, byma_symbols, child_env

ENTRIES = ("BI", "OF", "LA")
SYMBOL_POOL = 24  # BYMA stocks the clients pick their two from
STOP_LIMIT_S = 60.0  # pyRofex processes print their line after their last round ends
GAP_LIMIT_S = 15.0  # the longest a client may wait between two Md (the venue sends ≤ 2 a second)
RECENT_S = 15.0  # every client still receives Md this close to the end
PROBLEMS_SHOWN = 40


# What each pyRofex worker counts, summed over the workers in the report.
WORKER_COUNTS = ("sessions", "rounds", "orders_rest", "orders_ws", "orders_ws_filled", "order_reports")


@dataclass
class WsClientSummary:
    client: int
    depth: int
    by_query: bool  # the token as ?token= (else the X-Auth-Token header)
    connects: int = 0
    drops: int = 0  # the socket closed under the client before the end
    md: int = 0
    wrong_entries: int = 0
    too_deep: int = 0
    error_frames: int = 0
    first_md_s: float | None = None  # seconds after the client started
    last_md_at: float | None = None  # wall time
    max_gap_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Target:
    """Where the clients go: the bridge's `/primary/` or (`--direct`) the simulator itself."""

    rest: str  # base URL ending in "/": auth/getToken and rest/… below it
    ws: str
    user: str  # the pyRofex processes' login
    password: str
    key_name: str  # the WebSocket clients' login
    key: str
    account: str
    query_token: bool  # the WebSocket accepts ?token= (the bridge does; Primary does not)


@dataclass
class SoakReport:
    seconds: float
    pyrofex: int
    ws: int
    direct: bool
    renewing: bool
    relogin_s: float | None
    elapsed_s: float = 0.0  # simulator start to the stats read
    upstream: dict[str, Any] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)
    clients: list[WsClientSummary] = field(default_factory=list)
    serve_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        u = self.upstream
        md_clients = [c.md for c in self.clients] or [0]
        done = [w for w in self.workers if "missing" not in w]
        md_workers = [w["md"] for w in done] or [0]
        calls: Counter[str] = Counter()
        worker_errors: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        for w in done:
            calls.update(w["calls"])
            worker_errors.update(w["errors"])
            totals.update({k: w[k] for k in WORKER_COUNTS})
        client_errors: Counter[str] = Counter()
        for c in self.clients:
            client_errors.update(c.errors)
        way = "straight to the simulator (--direct)" if self.direct else "through one bridge (/primary/)"
        lines = [
            f"primary soak: {self.seconds:.0f} s, {self.pyrofex} pyRofex processes + {self.ws} WebSocket "
            f"clients {way}"
            + (f"; venue tokens renewed every {self.relogin_s:g} s" if self.renewing else ""),
            f"  upstream: logins {u.get('logins')}, invalidations {u.get('invalidations')} (revoked by login "
            f"{u.get('revoked_by_login')}, removed {u.get('removed')}, invalidated {u.get('invalidated')}, "
            f"expired {u.get('expired')}), refused calls {u.get('refused_calls')}, refused handshakes "
            f"{u.get('refused_handshakes')}, refused logins {u.get('refused_logins')}",
            f"  upstream sessions: tokens in use at most {u.get('tokens_in_use_max')}, sockets open at most "
            f"{u.get('sockets_open_max')} ({u.get('sockets_opened')} opened, {u.get('sockets_silenced')} "
            f"silenced), error frames {u.get('ws_error_frames')}",
            f"  upstream REST calls: {u.get('rest_calls')}",
            f"  upstream WS requests: {u.get('ws_requests')}",
            f"  WebSocket clients: Md per client min {min(md_clients)} / median "
            f"{sorted(md_clients)[len(md_clients) // 2]} / max {max(md_clients)}; drops "
            f"{sum(c.drops for c in self.clients)}; longest gap "
            f"{max((c.max_gap_s for c in self.clients), default=0):.1f} s; errors {dict(client_errors)}",
            f"  pyRofex ({len(done)} of {len(self.workers)} reported): sessions {totals['sessions']}, "
            f"rounds {totals['rounds']}, REST calls {sum(calls.values())}, orders {totals['orders_rest']} "
            f"REST + {totals['orders_ws']} WS "
            f"({totals['orders_ws_filled']} filled before their cancel), "
            f"order reports {totals['order_reports']}, Md per process "
            f"min {min(md_workers)} / max {max(md_workers)}; errors {dict(worker_errors)}",
            f"  serve ERROR lines: {len(self.serve_errors)}",
            f"  problems: {len(self.problems)}",
        ]
        lines += [f"    - {p}" for p in self.problems[:PROBLEMS_SHOWN]]
        if len(self.problems) > PROBLEMS_SHOWN:
            lines.append(f"    … {len(self.problems) - PROBLEMS_SHOWN} more")
        return "\n".join(lines)


async def start_workers(
    count: int, target: Target, symbols: list[str], until: float
) -> list[asyncio.subprocess.Process]:
    """The pyRofex processes, started a few at a time (50 interpreters at once starve the bridge)."""
    workers = []
    for i in range(count):
        command = [
            sys.executable,
            "-m",
            "tests.soak.pyrofex_worker",
            "--worker",
            str(i),
            "--url",
            target.rest,
        ]
        command += ["--ws", target.ws, "--user", target.user, "--password", target.password]
        command += ["--account", target.account, "--symbols", "|".join(symbols), "--until", str(until)]
        command += ["--session-s", str(max(20.0, min(120.0, (until - time.time()) / 3)))]
        workers.append(
            await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                cwd=Path(__file__).parents[2], env=child_env(),
            )
        )  # fmt: skip
        if i % 5 == 4:
            await asyncio.sleep(0.5)
    return workers


async def worker_results(workers: list[asyncio.subprocess.Process], until: float) -> list[dict[str, Any]]:
    results = []
    for i, process in enumerate(workers):
        try:
            out, _ = await asyncio.wait_for(
                process.communicate(), max(5.0, until + STOP_LIMIT_S - time.time())
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            results.append({"worker": i, "missing": "did not finish in time"})
            continue
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            results.append(json.loads(lines[-1]))
        except (IndexError, ValueError):
            results.append({"worker": i, "missing": f"exit {process.returncode}, no summary line"})
    return results


# -- the WebSocket clients -------------------------------------------------------------------------------


async def get_token(http: httpx.AsyncClient, target: Target) -> str:
    answer = await http.post(
        f"{target.rest}auth/getToken", headers={"X-Username": target.key_name, "X-Password": target.key}
    )
    token: str | None = answer.headers.get("X-Auth-Token")
    if answer.status_code != 200 or not token:
        raise RuntimeError(f"getToken answered {answer.status_code}: {answer.text[:200]}")
    return token


async def ws_client(
    summary: WsClientSummary, target: Target, symbols: list[str], until: float, http: httpx.AsyncClient
) -> None:
    """Log in, open the socket, one `smd`, read `Md` until `until`; a socket that closes early is a
    drop (counted) and the client connects again, as a Primary client that reconnects does."""
    started = time.time()
    smd = json.dumps(
        {
            "type": "smd",
            "level": 1,
            "depth": summary.depth,
            "entries": list(ENTRIES),
            "products": [{"symbol": s, "marketId": "ROFX"} for s in symbols],
        }
    )
    while time.time() < until:
        try:
            token = await get_token(http, target)
            url, headers = target.ws, {"X-Auth-Token": token}
            if summary.by_query:
                url, headers = f"{target.ws}?token={urllib.parse.quote(token)}", {}
            async with websockets.connect(
                url, additional_headers=headers, max_size=None, open_timeout=30, compression=None
            ) as ws:
                summary.connects += 1
                await ws.send(smd)
                last: float | None = None
                while (left := until - time.time()) > 0:
                    try:
                        text = await asyncio.wait_for(ws.recv(), left)
                    except TimeoutError:
                        break
                    now = time.time()
                    message = json.loads(text)
                    if message.get("type") != "Md":
                        summary.error_frames += 1
                        summary.errors[f"frame {str(message)[:80]}"] += 1
                        continue
                    data = message.get("marketData") or {}
                    summary.md += 1
                    if set(data) != set(ENTRIES):
                        summary.wrong_entries += 1
                    if any(len(data.get(side) or []) > summary.depth for side in ("BI", "OF")):
                        summary.too_deep += 1
                    if summary.first_md_s is None:
                        summary.first_md_s = now - started
                    if last is not None:
                        summary.max_gap_s = max(summary.max_gap_s, now - last)
                    last = summary.last_md_at = now
                return
        except websockets.ConnectionClosed as closed:
            summary.drops += 1
            summary.errors[f"closed {closed.rcvd.code if closed.rcvd else None}"] += 1
        except (OSError, RuntimeError, websockets.InvalidHandshake, httpx.HTTPError, TimeoutError) as exc:
            summary.errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        await asyncio.sleep(1.0)


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class SoakOptions:
    seconds: float
    pyrofex: int
    ws: int
    seed: int = 7
    token_ttl: float | None = None  # the venue's token lifetime (None: Primary's 24 h)
    relogin: float | None = None  # the bridge's primary.relogin_interval (None: its default)
    direct: bool = False


async def run_soak(options: SoakOptions, workdir: Path) -> SoakReport:
    renewing = options.relogin is not None
    report = SoakReport(
        options.seconds, options.pyrofex, options.ws, options.direct, renewing, options.relogin
    )
    sim = Simulator(
        workdir, options.seed, token_ttl=options.token_ttl, relogin_invalidates=not options.direct
    )
    sim_started = time.monotonic()
    await sim.start()
    serve: Serve | None = None
    workers: list[asyncio.subprocess.Process] = []
    try:
        ends = sim.ends
        if options.direct:
            login = (ends["user"], ends["password"])
            target = Target(ends["rest"], ends["ws"], *login, *login, ends["account"], query_token=False)
        else:
            serve = Serve(workdir, ends, relogin_s=options.relogin)
            await serve.start()
            rest, ws = f"{serve.url}/primary/", f"{serve.ws_url}/primary/"
            target = Target(rest, ws, USER, USER_PASSWORD, KEY_NAME, KEY, ends["account"], query_token=True)
        symbols = byma_symbols(SYMBOL_POOL)
        until = time.time() + options.seconds
        rng = random.Random(options.seed)
        workers = await start_workers(options.pyrofex, target, symbols, until)
        report.clients = [
            WsClientSummary(i, depth=1 + i % 5, by_query=target.query_token and i % 2 == 1)
            for i in range(options.ws)
        ]
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            await asyncio.gather(
                *(ws_client(c, target, rng.sample(symbols, 2), until, http) for c in report.clients)
            )
        report.workers = await worker_results(workers, until)
        report.upstream = await sim.stats()
        report.elapsed_s = time.monotonic() - sim_started
    finally:
        for process in workers:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if serve is not None:
            await serve.stop()
            report.serve_errors = serve.error_lines()
        await sim.stop()
    judge(report, until)
    # Every figure, per client and per pyRofex process, beside serve.log (kept with --workdir).
    (workdir / "report.json").write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n")
    return report


def judge(report: SoakReport, until: float) -> None:
    p = report.problems
    u = report.upstream
    if not report.direct:
        judge_upstream(report)
    for c in report.clients:
        who = f"ws client {c.client} (depth {c.depth}, token {'?token=' if c.by_query else 'header'})"
        if not c.md:
            p.append(f"{who}: no Md at all; errors {dict(c.errors)}")
            continue
        if c.wrong_entries or c.too_deep:
            p.append(f"{who}: {c.wrong_entries} Md with entries other than BI/OF/LA, {c.too_deep} too deep")
        if c.last_md_at is None or c.last_md_at < until - RECENT_S:
            p.append(f"{who}: no Md in the last {RECENT_S:g} s")
        if c.drops or c.error_frames:
            p.append(f"{who}: {c.drops} drops, {c.error_frames} error frames: {dict(c.errors)}")
        if c.max_gap_s > GAP_LIMIT_S:
            p.append(f"{who}: a gap of {c.max_gap_s:.1f} s between two Md")
    for w in report.workers:
        who = f"pyRofex {w['worker']}"
        if "missing" in w:
            p.append(f"{who}: {w['missing']}")
            continue
        if not w["md"]:
            p.append(f"{who}: no Md at all")
        elif w["last_md_at"] < until - RECENT_S - 5:  # its last round may end a little early
            p.append(f"{who}: no Md in the last {RECENT_S:g} s")
        if w["md_wrong_entries"] or w["md_too_deep"]:
            p.append(f"{who}: {w['md_wrong_entries']} Md with other entries, {w['md_too_deep']} too deep")
        if w["errors"]:
            p.append(f"{who}: errors {w['errors']} e.g. {next(iter(w['error_samples'].values()))[:2]}")
        if not w["rounds"]:
            p.append(f"{who}: not one round of REST calls")
    if report.pyrofex and report.seconds >= 60 and not any(w.get("orders_ws") for w in report.workers):
        p.append("no pyRofex process sent and cancelled an order over the WebSocket")
    p.extend(f"serve logged: {line[:300]}" for line in report.serve_errors[:10])
    if u.get("ws_error_frames") or u.get("ws_requests", {}).get("invalid"):
        p.append(f"the venue answered {u.get('ws_error_frames')} error frames: something bad was forwarded")


def judge_upstream(report: SoakReport) -> None:
    """What the venue saw. Without renewals: ONE login, no token ended, one token and one socket,
    nothing refused. With them (`--relogin`), Primary's own rule shows: a login revokes the token
    before it at once, so a forwarded call already on its way with that token is refused (the
    bridge retries it with the new one, no further login) and the socket moves to the new token
    (the old one may not have closed at the venue yet when the new one opens) — those are counted,
    not failed; another login, an expiry or a refused handshake is."""
    p, u = report.problems, report.upstream
    strict = ("refused_handshakes", "refused_logins", "expired_refusals")
    refused = {k: u[k] for k in ("refused_calls", *strict) if k in strict or not report.renewing}
    if any(refused.values()):
        p.append(f"the venue refused the bridge: {refused}")
    sockets = 2 if report.renewing else 1
    if u["tokens_in_use_max"] != 1 or u["sockets_open_max"] > sockets:
        p.append(
            f"the bridge held {u['tokens_in_use_max']} tokens and {u['sockets_open_max']} sockets at once "
            f"at the venue (one session: 1 token, {sockets} socket{'s' if sockets > 1 else ''} at most)"
        )
    ended_otherwise = {k: u[k] for k in ("removed", "invalidated", "expired")}
    if not report.renewing:
        if u["logins"] != 1 or u["invalidations"] != 0:
            p.append(
                f"upstream logins {u['logins']} and invalidations {u['invalidations']}: 1 and 0 expected"
            )
        return
    assert report.relogin_s is not None
    most = 1 + math.ceil(report.elapsed_s / report.relogin_s)
    if not 2 <= u["logins"] <= most:
        p.append(f"upstream logins {u['logins']}: a renewal every {report.relogin_s:g} s makes 2 to {most}")
    if u["revoked_by_login"] != u["logins"] - 1 or any(ended_otherwise.values()):
        p.append(
            f"tokens ended: {u['revoked_by_login']} by a login (each renewal ends the one before: "
            f"{u['logins'] - 1}), {ended_otherwise} otherwise (none expected)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak.primary",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--pyrofex", type=int, default=50, help="pyRofex processes")
    parser.add_argument("--ws", type=int, default=200, help="WebSocket clients on /primary/")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's market")
    parser.add_argument("--token-ttl", type=float, help="the venue's token lifetime in s (Primary: 24 h)")
    parser.add_argument("--relogin", type=float, help="the bridge's primary.relogin_interval in s")
    parser.add_argument("--direct", action="store_true", help="the clients straight at the simulator")
    parser.add_argument("--workdir", type=Path, help="keep config, serve.log and sim.log here")
    args = parser.parse_args()
    if (args.token_ttl is None) != (args.relogin is None):
        parser.error("--token-ttl and --relogin go together (the bridge must renew before the TTL)")
    options = SoakOptions(
        args.seconds, args.pyrofex, args.ws, args.seed, args.token_ttl, args.relogin, args.direct
    )
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bb-soak-")))
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run_soak(options, workdir))
        print(report.summary(), flush=True)
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
