"""The doctor's step model: steps run in order, each one passes, fails or is skipped with a reason.

A step is a name, the steps it needs, and a probe: an async function that returns its evidence
(what it saw) or raises `Finding` (what is wrong, why, what to do, and which fix could help). The
runner owns timing and dependencies; the probes own I/O. Everything here is pure data plus one
small async loop, so tests drive it with plain coroutines and a `FakeClock`.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from brokerbridge.core.clock import Clock, within
from brokerbridge.core.errors import BrokerBridgeError


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"


class Finding(Exception):
    """A probe's diagnosis of a failure.

    `blocking=False` lets the steps that need this one run anyway (a missing permission does not
    stop the calls that need another one). `fix` names the fix in fixes.py that may repair it.
    """

    def __init__(
        self,
        cause: str,
        remedy: str,
        *,
        evidence: str = "",
        fix: str | None = None,
        blocking: bool = True,
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.remedy = remedy
        self.evidence = evidence
        self.fix = fix
        self.blocking = blocking


Probe = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    title: str
    probe: Probe
    needs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    key: str
    title: str
    status: Status
    seconds: float
    evidence: str = ""
    cause: str = ""
    remedy: str = ""
    fix: str | None = None
    blocking: bool = True
    note: str = ""  # e.g. "fixed by --fix: …"

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS


@dataclass(slots=True)
class Progress:
    """How far each waiting step got, so a timeout can say where a feed stalled."""

    reached: dict[str, str] = field(default_factory=dict)

    def tracker(self, key: str, start: str = "") -> Callable[[str], None]:
        self.reached[key] = start

        def stage(text: str) -> None:
            self.reached[key] = text

        return stage

    def of(self, key: str) -> str:
        return self.reached.get(key, "")


@dataclass(frozen=True, slots=True)
class FixReport:
    """What `--fix` did (or could not do) for one failed step."""

    step: str
    action: str
    applied: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Summary:
    works: tuple[str, ...]
    broken: tuple[str, ...]
    first: str  # what to do first ("" when everything passed)


@dataclass(slots=True)
class Report:
    venue: str
    target: str  # where the doctor looked (URLs, environment)
    results: list[StepResult]
    fixes: list[FixReport] = field(default_factory=list)
    simulated: bool = False  # the embedded simulator was checked, not a real venue

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> Summary:
        return summarize(self.results)


async def run_steps(
    steps: Sequence[Step],
    *,
    step_timeout: float,
    clock: Clock,
    timeouts: dict[str, Callable[[float], Finding]] | None = None,
) -> list[StepResult]:
    """Run `steps` in order. A step whose needed step failed (blocking) or was skipped is skipped,
    naming that step; a probe that outlives `step_timeout` fails with `timeouts[key](step_timeout)` if given
    (a stalled feed is a diagnosis, not a generic timeout)."""
    results: dict[str, StepResult] = {}
    for step in steps:
        blocker = next(
            (
                results[need]
                for need in step.needs
                if need in results
                and (
                    results[need].status is Status.SKIPPED
                    or (not results[need].passed and results[need].blocking)
                )
            ),
            None,
        )
        if blocker is not None:
            results[step.key] = StepResult(
                step.key,
                step.title,
                Status.SKIPPED,
                0.0,
                # Name the step that failed, not one that was itself skipped because of it.
                cause=blocker.cause
                if blocker.status is Status.SKIPPED
                else f"skipped: “{blocker.title}” failed",
            )
            continue
        started = clock.monotonic()
        try:
            evidence = await within(clock, step_timeout, step.probe())
            results[step.key] = StepResult(
                step.key, step.title, Status.PASS, clock.monotonic() - started, evidence=evidence
            )
        except Finding as finding:
            results[step.key] = _failed(step, finding, clock.monotonic() - started)
        except TimeoutError:
            make = (timeouts or {}).get(step.key)
            late = (
                make(step_timeout)
                if make
                else Finding(
                    f"no answer within {step_timeout:g} s",
                    "check the URL, the network and any proxy or firewall in between; "
                    "raise --timeout on a slow link",
                )
            )
            results[step.key] = _failed(step, late, clock.monotonic() - started)
        except BrokerBridgeError as exc:  # an error no probe diagnosed more precisely
            plain = Finding(exc.message, exc.remedy or "see the cause")
            results[step.key] = _failed(step, plain, clock.monotonic() - started)
    return list(results.values())


def _failed(step: Step, finding: Finding, seconds: float) -> StepResult:
    return StepResult(
        step.key,
        step.title,
        Status.FAIL,
        seconds,
        evidence=finding.evidence,
        cause=finding.cause,
        remedy=finding.remedy,
        fix=finding.fix,
        blocking=finding.blocking,
    )


def merge(first: list[StepResult], again: list[StepResult], notes: dict[str, str]) -> list[StepResult]:
    """The re-run's results, marked where `--fix` turned a failure into a pass."""
    before = {r.key: r for r in first}
    merged = []
    for result in again:
        old = before.get(result.key)
        if result.passed and old is not None and not old.passed:
            result = replace(result, note=notes.get(result.key, "passes after --fix"))
        merged.append(result)
    return merged


def summarize(results: Sequence[StepResult]) -> Summary:
    works = tuple(r.title for r in results if r.passed)
    broken = tuple(r.title for r in results if r.status is Status.FAIL)
    first_failure = next((r for r in results if r.status is Status.FAIL), None)
    first = f"{first_failure.title}: {first_failure.remedy}" if first_failure else ""
    return Summary(works, broken, first)


class Doctor(Protocol):
    """A venue's doctor (kraken.py, primary.py; attached.py checks through a running `serve`): its
    steps, the findings for the steps that may time out, and the secrets its run saw (to mask)."""

    secrets: list[str]

    @property
    def target(self) -> str: ...

    def steps(self) -> list[Step]: ...

    def timeouts(self) -> dict[str, Callable[[float], Finding]]: ...

    async def aclose(self) -> None: ...
