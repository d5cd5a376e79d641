"""The pre-deploy schema check: can this code read everything the database holds?

``check_app_schemas`` composes five checks over one app and one event store:

``model``        each event class against the schema registered for its version
                 (an incompatible change without a version bump is an error);
``upcasters``    every stored (type, version) has a path to a current class;
``history``      stored events, upcast and validated into the current models
                 (a sample per stored (type, version) with every distinct shape,
                 or all of them);
``snapshots``    snapshots whose state fingerprint is stale (a warning: loads
                 ignore them and rebuild from events) or whose type is gone;
``projections``  handlers for types the app no longer produces (a warning), and
                 produced types a projection declared it ``must_handle`` (an error).

Only the store reads do I/O; each check's logic is a plain function of data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventstore import (
    Event,
    EventCodec,
    EventCodecError,
    EventStore,
    RecordedEvent,
    SchemaRecord,
    UpcasterChainError,
    compare_schemas,
    event_json_schema,
    incompatible_changes,
    schema_fingerprint,
)
from upcasters import UpcasterChain

from ._app import App, aggregate_type_name, projection_name

DEFAULT_SAMPLE = 100
DEFAULT_MAX_FAILURES = 50
ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One result: which check, how bad, about what, and the facts behind it."""

    check: str
    level: str
    subject: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class SchemaReport:
    """Everything ``chronik schemas check`` found; ``ok`` when nothing is an error."""

    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "stats": dict(self.stats),
            "findings": [
                {
                    "check": f.check,
                    "level": f.level,
                    "subject": f.subject,
                    "message": f.message,
                    "details": dict(f.details),
                }
                for f in self.findings
            ],
        }

    def render(self) -> str:
        """The report for people: one block per finding, errors first, then a verdict."""
        order = {ERROR: 0, WARNING: 1, INFO: 2}
        lines: list[str] = []
        for f in sorted(self.findings, key=lambda f: order.get(f.level, 3)):
            lines.append(f"{f.level.upper():7} [{f.check}] {f.subject}: {f.message}")
            lines.extend(f"          {line}" for line in f.details.get("lines", ()))
        stats = ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in self.stats.items())
        verdict = "FAILED" if not self.ok else "ok"
        lines.append(
            f"schemas check {verdict}: {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s) ({stats})"
        )
        return "\n".join(lines) + "\n"


async def check_app_schemas(
    app: App,
    store: EventStore,
    *,
    snapshots: Any = None,
    sample: int | None = DEFAULT_SAMPLE,
    max_failures: int = DEFAULT_MAX_FAILURES,
) -> SchemaReport:
    """Run every check of the app against the store; ``sample=None`` reads all events.

    ``snapshots``: a snapshot store with ``fingerprint_counts()`` (Postgres,
    in-memory), or None to skip that check.  At most ``max_failures`` failing
    events are listed one by one; the rest are counted per (type, version).
    """
    classes = {cls.event_type: cls for cls in app.event_classes()}
    chain = app.upcaster_chain()
    codec, chain_problems = build_lenient_codec(classes.values(), chain)
    registered = {record.key: record for record in await store.schemas.list()}
    stored = await store.stored_schema_versions()

    report = SchemaReport()
    report.findings += model_findings(classes.values(), registered)
    report.findings += upcaster_findings(classes, chain, chain_problems, stored)
    history = HistoryCheck(codec, max_failures)
    if sample is None:
        async for event in store.read_all():
            history.add(event)
    else:
        for event in await store.sample_events(sample):
            history.add(event)
    report.findings += history.findings
    if snapshots is not None and hasattr(snapshots, "fingerprint_counts"):
        counts = await snapshots.fingerprint_counts()
        report.findings += snapshot_findings(app.aggregates, counts)
    report.findings += projection_findings(app.projections, set(classes))
    report.stats = {
        "event_classes": len(classes),
        "registered_schemas": len(registered),
        "stored_type_versions": len(stored),
        "stored_events": sum(stored.values()),
        "events_checked": history.checked,
    }
    return report


def build_lenient_codec(
    classes: Iterable[type[Event]], chain: UpcasterChain
) -> tuple[EventCodec, list[str]]:
    """A codec for the classes even when the chain has gaps, and the gaps.

    The app itself would refuse to start with a gap; the check reports it and
    still reads history, so one run shows every problem.  ``register`` adds the
    classes before it validates, so the codec is complete when it raises.
    """
    codec = EventCodec()  # no classes yet: handing it the chain now would fail at once
    codec.upcasters = chain
    try:
        codec.register(*classes)
    except UpcasterChainError as error:
        return codec, list(error.problems)
    return codec, []


def model_findings(
    classes: Iterable[type[Event]], registered: Mapping[tuple[str, int], SchemaRecord]
) -> list[Finding]:
    """Each class's schema against the registered one of its version."""
    findings: list[Finding] = []
    for cls in sorted(classes, key=lambda c: c.event_type):
        subject = f"{cls.event_type} v{cls.event_version}"
        record = registered.get((cls.event_type, cls.event_version))
        schema = event_json_schema(cls)
        if record is None:
            findings.append(
                Finding(
                    "model",
                    INFO,
                    subject,
                    "not registered yet: recorded at its first write or by "
                    "'chronik schemas register'",
                )
            )
            continue
        if record.fingerprint == schema_fingerprint(schema):
            continue
        changes = compare_schemas(record.json_schema, schema)
        bad = incompatible_changes(changes)
        lines = [str(change) for change in changes]
        if bad:
            fields = ", ".join(dict.fromkeys(change.path for change in bad))
            message = (
                f"{cls.__qualname__} changed without a version bump ({fields}): events "
                f"stored as v{cls.event_version} may no longer validate; bump event_version "
                "and add an upcaster from this version"
            )
            findings.append(Finding("model", ERROR, subject, message, _changes(changes, lines)))
        else:
            message = "compatible change to the registered schema (run 'chronik schemas register')"
            findings.append(Finding("model", INFO, subject, message, _changes(changes, lines)))
    return findings


def upcaster_findings(
    classes: Mapping[str, type[Event]],
    chain: UpcasterChain,
    chain_problems: Iterable[str],
    stored: Mapping[tuple[str, int], int],
) -> list[Finding]:
    """Gaps in the chain, and stored (type, version) pairs no path brings to a class."""
    findings = [
        Finding("upcasters", ERROR, "upcaster chain", problem) for problem in chain_problems
    ]
    steps = {(step.event_type, step.from_version): step for step in chain}
    for (event_type, version), count in sorted(stored.items()):
        key = (event_type, version)
        while key in steps:
            step = steps[key]
            key = (step.to_type, step.to_version)
        cls = classes.get(key[0])
        if cls is not None and cls.event_version == key[1]:
            continue
        subject = f"{event_type} v{version}"
        held = f"{count} stored event(s)"
        if cls is None:
            reached = "" if key == (event_type, version) else f" (upcast to {key[0]} v{key[1]})"
            message = f"{held}{reached}: no event class is registered for {key[0]!r}"
        elif key[1] < cls.event_version:
            message = (
                f"{held}: no upcaster path to the current v{cls.event_version}; the chain "
                f"stops at v{key[1]} (missing step {key[0]} v{key[1]}->v{key[1] + 1})"
            )
        else:
            message = (
                f"{held}: newer than {cls.__qualname__} (v{cls.event_version}); this code is "
                "older than the code that wrote them"
            )
        details = {"type": event_type, "schema_version": version, "stored": count}
        findings.append(Finding("upcasters", ERROR, subject, message, details))
    return findings


class HistoryCheck:
    """Decodes events one at a time (so ``--all`` streams), keeping the failures."""

    def __init__(self, codec: EventCodec, max_failures: int) -> None:
        self.codec = codec
        self.max_failures = max_failures
        self.checked = 0
        self.failed: Counter[tuple[str, int]] = Counter()
        self._listed: list[Finding] = []

    def add(self, event: RecordedEvent) -> None:
        self.checked += 1
        try:
            self.codec.decode(event)
        except EventCodecError as error:
            self.failed[(event.type, event.schema_version)] += 1
            if len(self._listed) < self.max_failures:
                self._listed.append(_failure(event, error))

    @property
    def findings(self) -> list[Finding]:
        findings = list(self._listed)
        if self.failed.total() > len(self._listed):
            for (event_type, version), count in sorted(self.failed.items()):
                message = (
                    f"{count} checked event(s) failed in all (only the first "
                    f"{self.max_failures} failures are listed)"
                )
                details = {"type": event_type, "schema_version": version, "failed": count}
                findings.append(
                    Finding("history", ERROR, f"{event_type} v{version}", message, details)
                )
        return findings


def _failure(event: RecordedEvent, error: EventCodecError) -> Finding:
    details = {
        "stream_id": event.stream_id,
        "version": event.version,
        "position": str(event.position),
        "event_id": str(event.event_id),
        "type": event.type,
        "schema_version": event.schema_version,
        "error": str(error),
        "error_type": type(error).__name__,
    }
    message = (
        f"{event.stream_id!r} version {event.version} (position {event.position}) does not "
        f"load: {_reason(error)}"
    )
    return Finding("history", ERROR, f"{event.type} v{event.schema_version}", message, details)


def snapshot_findings(
    aggregates: Iterable[type[Any]], counts: Mapping[tuple[str, str], int]
) -> list[Finding]:
    """Snapshots the current aggregates would ignore (and rebuild) on load."""
    current: dict[str, str | None] = {}
    for aggregate in aggregates:
        fingerprint = getattr(aggregate, "state_fingerprint", None)
        current[aggregate_type_name(aggregate)] = fingerprint() if callable(fingerprint) else None
    stale: Counter[str] = Counter()
    orphans: Counter[str] = Counter()
    for (aggregate_type, fingerprint), count in counts.items():
        if aggregate_type not in current:
            orphans[aggregate_type] += count
        elif current[aggregate_type] is not None and fingerprint != current[aggregate_type]:
            stale[aggregate_type] += count
    findings = [
        Finding(
            "snapshots",
            WARNING,
            name,
            f"{count} snapshot(s) have an older state fingerprint: loads ignore them and "
            "rebuild from events (slower first loads until fresh snapshots are written)",
            {"aggregate_type": name, "stale": count},
        )
        for name, count in sorted(stale.items())
    ]
    findings += [
        Finding(
            "snapshots",
            WARNING,
            name,
            f"{count} snapshot(s) of an aggregate type this app does not have",
            {"aggregate_type": name, "orphaned": count},
        )
        for name, count in sorted(orphans.items())
    ]
    return findings


def projection_findings(projections: Iterable[Any], produced: set[str]) -> list[Finding]:
    """Handlers for types the app no longer produces; required types left unhandled."""
    findings: list[Finding] = []
    for projection in projections:
        name = projection_name(projection)
        handled = set(getattr(projection, "handled_types", ()) or ())
        for event_type in sorted(handled - produced):
            findings.append(
                Finding(
                    "projections",
                    WARNING,
                    name,
                    f"handles {event_type!r}, which no event class of the app produces",
                    {"projection": name, "type": event_type},
                )
            )
        missing = getattr(projection, "missing_handlers", None)
        for event_type in missing(produced) if callable(missing) else ():
            findings.append(
                Finding(
                    "projections",
                    ERROR,
                    name,
                    f"declares must_handle {list(projection.must_handle)} but has no handler "
                    f"for {event_type!r}",
                    {"projection": name, "type": event_type},
                )
            )
    return findings


def _reason(error: EventCodecError) -> str:
    """The error's reason; for an upcaster, which step raised what (``KeyError: 'x'``)."""
    reason = str(getattr(error, "reason", error))
    step = getattr(error, "step", "")
    if not step:
        return reason
    root: BaseException = error
    while root.__cause__ is not None:
        root = root.__cause__
    return f"upcaster step {step} raised {type(root).__name__}: {reason}"


def _changes(changes: Iterable[Any], lines: list[str]) -> dict[str, Any]:
    return {
        "lines": lines,
        "changes": [
            {"path": c.path, "kind": c.kind, "compatible": c.compatible, "detail": c.detail}
            for c in changes
        ],
    }
