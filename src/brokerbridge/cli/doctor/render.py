"""A doctor report as a rich table (terminals) or JSON (scripts), secrets masked in both.

Masking is the last thing before output: every string of the report passes through `redact` with
every secret the run saw (API key and secret, password, tokens fetched on the way), so even a
venue message that echoed one could not leak it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from brokerbridge.cli.doctor.steps import Report, Status
from brokerbridge.core.secret import Secret, redact

_MARK = {
    Status.PASS: ("✓ pass", "green"),
    Status.FAIL: ("✗ fail", "red"),
    Status.SKIPPED: ("– skipped", "dim"),
}


def report_dict(report: Report, secrets: Iterable[Secret | str | None]) -> dict[str, Any]:
    masked = [s for s in secrets if s]
    summary = report.summary()

    def m(text: str) -> str:
        return redact(text, *masked)

    return {
        "venue": report.venue,
        "target": m(report.target),
        "simulated": report.simulated,
        "ok": report.ok,
        "exit_code": report.exit_code,
        "steps": [
            {
                "step": r.key,
                "title": r.title,
                "status": r.status.value,
                "seconds": round(r.seconds, 3),
                "evidence": m(r.evidence),
                "cause": m(r.cause),
                "remedy": m(r.remedy),
                "fixable": r.fix is not None,
                "note": m(r.note),
            }
            for r in report.results
        ],
        "fixes": [
            {"step": f.step, "action": m(f.action), "applied": f.applied, "detail": m(f.detail)}
            for f in report.fixes
        ],
        "summary": {
            "works": list(summary.works),
            "broken": list(summary.broken),
            "first": m(summary.first),
        },
    }


def to_json(report: Report, secrets: Iterable[Secret | str | None]) -> str:
    return json.dumps(report_dict(report, secrets), ensure_ascii=False, indent=2)


def to_rich(report: Report, secrets: Iterable[Secret | str | None]) -> Group:
    data = report_dict(report, secrets)
    table = Table(
        title=f"brokerbridge doctor {data['venue']} — {data['target']}", show_lines=True, expand=True
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("evidence / cause → what to do", ratio=1)
    for n, (step, result) in enumerate(zip(data["steps"], report.results, strict=True), 1):
        label, style = _MARK[result.status]
        detail = Text()
        if step["evidence"]:
            detail.append(step["evidence"])
        if step["cause"]:
            detail.append(
                ("\n" if len(detail) else "") + step["cause"],
                style="red" if result.status is Status.FAIL else "dim",
            )
        if step["remedy"]:
            detail.append("\n→ " + step["remedy"], style="bold")
        if step["note"]:
            detail.append(("\n" if len(detail) else "") + step["note"], style="green")
        seconds = f"{step['seconds']:.2f}s" if result.status is not Status.SKIPPED else ""
        table.add_row(str(n), step["title"], Text(label, style=style), seconds, detail)
    parts: list[Any] = [table]
    for fix in data["fixes"]:
        mark = Text(
            "fixed: " if fix["applied"] else "not fixed: ", style="green" if fix["applied"] else "yellow"
        )
        parts.append(mark + Text(f"{fix['action']} — {fix['detail']}"))
    summary = data["summary"]
    lines = Text()
    lines.append("works: ", style="bold green")
    lines.append(", ".join(summary["works"]) or "nothing yet")
    lines.append("\nbroken: ", style="bold red")
    lines.append(", ".join(summary["broken"]) or "nothing")
    if summary["first"]:
        lines.append("\ndo first: ", style="bold")
        lines.append(summary["first"])
    passed = sum(1 for r in report.results if r.passed)
    lines.append(f"\n{passed}/{len(report.results)} steps passed", style="bold")
    parts.append(lines)
    return Group(*parts)


def print_report(console: Console, report: Report, secrets: Iterable[Secret | str | None]) -> None:
    console.print(to_rich(report, list(secrets)))
