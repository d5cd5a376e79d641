"""The app object: what the command knows about a user's domain.

An app bundles the event classes, the upcasters, the aggregate classes and the
projections of one service, so the command can decode streams, load aggregates
at any point in time and run, rebuild or replay projections::

    from chronik import App
    app = App(
        name="billing",
        aggregates=[Invoice, Customer],        # their event classes are registered too
        projections=[InvoiceTotals()],
        sagas=[PAY_INVOICE],                   # sagas.Saga / sagas.Reaction, run by 'chronik run'
        upcasters=billing_upcasters,           # an UpcasterChain or a list of Upcaster
        events=[LegacyEvent],                  # extra event classes, if any
    )

The command finds it through ``--app module:attr``, ``CHRONIK_APP`` or
``[tool.chronik] app = "module:attr"`` in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eventstore import Event, EventCodec
from sagas import Reaction, Saga, SagaProcess
from snapshots import SnapshotPolicy
from upcasters import Upcaster, UpcasterChain

from ._errors import NotFoundError, UsageError


class App:
    """A service's event classes, upcasters, aggregates and projections."""

    def __init__(
        self,
        *,
        name: str = "app",
        aggregates: Iterable[type[Any]] = (),
        projections: Iterable[Any] = (),
        sagas: Iterable[Saga | Reaction] = (),
        events: Iterable[type[Event]] = (),
        upcasters: UpcasterChain | Iterable[Upcaster] | None = None,
        snapshot_policy: SnapshotPolicy | None = None,
        seed: Callable[..., Any] | None = None,
    ) -> None:
        """``snapshot_policy``: when saves write snapshots (default: the repository's).

        ``upcasters`` are merged with those the aggregate classes declare; they serve
        ``history``, projections and events no aggregate owns (the repository uses the
        aggregates' own chains).  ``seed``: ``async seed(repository, progress) ->
        chronik.SeedReport``, what ``chronik demo`` runs for this app.  ``sagas``:
        orchestrated sagas and choreography reactions; with any, the saga instances'
        aggregate (``sagas.SagaProcess``) joins the aggregates, so ``history`` and
        ``state`` show instances like any aggregate.
        """
        self.name = name
        given = tuple(sagas)
        self.sagas: tuple[Saga, ...] = tuple(s for s in given if isinstance(s, Saga))
        self.reactions: tuple[Reaction, ...] = tuple(s for s in given if isinstance(s, Reaction))
        if len(self.sagas) + len(self.reactions) != len(given):
            raise UsageError(
                f"app {name!r}: sagas= takes sagas.Saga and sagas.Reaction objects",
                "declare them with sagas.Saga(...) or sagas.Reaction(...)",
            )
        aggregates = tuple(aggregates)
        if given and SagaProcess not in aggregates:
            aggregates = (*aggregates, SagaProcess)
        self.aggregates: tuple[type[Any], ...] = aggregates
        self.projections: tuple[Any, ...] = tuple(projections)
        self.events: tuple[type[Event], ...] = tuple(events)
        if upcasters is None or isinstance(upcasters, UpcasterChain):
            self.upcasters = upcasters if upcasters is not None else UpcasterChain()
        else:
            self.upcasters = UpcasterChain(upcasters)
        self.snapshot_policy = snapshot_policy
        self.seed = seed
        self._check_unique_names()

    # -- events --------------------------------------------------------------

    def event_classes(self) -> list[type[Event]]:
        """Every event class: the explicit ones plus those the aggregates declare."""
        seen: dict[type[Event], None] = dict.fromkeys(self.events)
        for aggregate in self.aggregates:
            seen.update(dict.fromkeys(aggregate_events(aggregate)))
        return list(seen)

    def upcaster_chain(self) -> UpcasterChain:
        """The app's upcasters plus those each aggregate class declares."""
        steps: dict[tuple[str, int], Upcaster] = {}
        chains = [self.upcasters, *(getattr(a, "upcasters", None) for a in self.aggregates)]
        for chain in chains:
            for step in chain if isinstance(chain, UpcasterChain) else ():
                known = steps.setdefault((step.event_type, step.from_version), step)
                if known != step:
                    raise UsageError(
                        f"app {self.name!r} has two different upcasters for "
                        f"{step.event_type} v{step.from_version}",
                        "keep one of them",
                    )
        return UpcasterChain(steps.values())

    def codec(self) -> EventCodec:
        """A codec for every event class, checked against the upcaster chain."""
        return EventCodec(self.event_classes(), self.upcaster_chain())

    # -- aggregates ----------------------------------------------------------

    def aggregate(self, name: str) -> type[Any]:
        """The aggregate class called ``name`` (class name or type name, any case)."""
        wanted = name.casefold()
        for aggregate in self.aggregates:
            if wanted in {alias.casefold() for alias in aggregate_names(aggregate)}:
                return aggregate
        known = ", ".join(sorted(aggregate_type_name(a) for a in self.aggregates)) or "none"
        raise NotFoundError(
            f"no aggregate type {name!r} in app {self.name!r} (known: {known})",
            "pass one of the known types, or point --app at the app that defines it",
        )

    def stream_type(self, stream_id: str) -> str:
        """The aggregate type a stream belongs to, by the app's stream naming."""
        for aggregate in self.aggregates:
            prefix = aggregate_stream_prefix(aggregate)
            if prefix and stream_id.startswith(prefix):
                return aggregate_type_name(aggregate)
        return guess_stream_type(stream_id)

    def stream_prefix(self, type_name: str) -> str | None:
        """The stream id prefix of an aggregate type, when the app knows it."""
        for aggregate in self.aggregates:
            names = {alias.casefold() for alias in aggregate_names(aggregate)}
            if type_name.casefold() in names:
                return aggregate_stream_prefix(aggregate)
        return None

    # -- projections ---------------------------------------------------------

    def projection(self, name: str) -> Any:
        for projection in self.projections:
            if projection_name(projection) == name:
                return projection
        known = ", ".join(sorted(projection_name(p) for p in self.projections)) or "none"
        raise NotFoundError(
            f"no projection {name!r} in app {self.name!r} (known: {known})",
            "run 'chronik projections status' to list them",
        )

    def projection_names(self) -> list[str]:
        return [projection_name(p) for p in self.projections]

    def _check_unique_names(self) -> None:
        for kind, names in (
            ("projection", self.projection_names()),
            ("saga", [s.name for s in self.sagas] + [r.name for r in self.reactions]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise UsageError(
                    f"app {self.name!r} declares {kind}(s) {', '.join(duplicates)} twice",
                    f"give every {kind} its own name",
                )

    def __repr__(self) -> str:
        return (
            f"App({self.name!r}, aggregates={[a.__name__ for a in self.aggregates]}, "
            f"projections={self.projection_names()})"
        )


# The helpers below read what the aggregates and projections packages declare on
# their classes, so an App works with any class following those conventions.


def aggregate_type_name(aggregate: type[Any]) -> str:
    for attribute in ("type_name", "aggregate_type"):
        value = getattr(aggregate, attribute, None)
        if isinstance(value, str) and value:
            return value
    return aggregate.__name__


def aggregate_names(aggregate: type[Any]) -> set[str]:
    names = {aggregate.__name__, aggregate_type_name(aggregate)}
    prefix = aggregate_stream_prefix(aggregate)
    if prefix:
        names.add(prefix.rstrip("-:/._"))
    return names


def aggregate_stream_prefix(aggregate: type[Any]) -> str | None:
    value = getattr(aggregate, "stream_prefix", None)
    if isinstance(value, str) and value:
        return value
    # aggregates.Aggregate names its streams "<type_name>-<id>".
    type_name = getattr(aggregate, "type_name", None)
    return f"{type_name}-" if isinstance(type_name, str) and type_name else None


def aggregate_events(aggregate: type[Any]) -> Sequence[type[Event]]:
    for attribute in ("event_classes", "events"):
        value = getattr(aggregate, attribute, None)
        if callable(value):
            value = value()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list | tuple | set | frozenset):
            return [cls for cls in value if isinstance(cls, type) and issubclass(cls, Event)]
    return []


def projection_name(projection: Any) -> str:
    name = getattr(projection, "name", None)
    return name if isinstance(name, str) and name else type(projection).__name__


def guess_stream_type(stream_id: str) -> str:
    """``"ledger-42"`` -> ``"ledger"``: the part before the first separator."""
    for index, char in enumerate(stream_id):
        if char in "-:/.":
            return stream_id[:index] or stream_id
    return stream_id
