"""One codec between typed events and the store's envelopes.

Every read path (stream loads, the feed, subscriptions, snapshots, Kafka
consumers, the CLI) decodes through ``EventCodec.decode``, which runs the
upcaster chain first: application code only ever sees current versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from upcasters import (
    MissingUpcasterError,
    UpcasterChain,
    UpcasterError,
    UpcastPath,
    UpcastStepError,
)

from ._errors import (
    EventCodecError,
    EventValidationError,
    UnknownEventTypeError,
    UpcasterChainError,
    UpcastError,
)
from ._events import Event
from ._model import NewEvent, RecordedEvent


class EventCodec:
    """Registry of event classes plus the upcaster chain that feeds them."""

    def __init__(
        self, events: Iterable[type[Event]] = (), upcasters: UpcasterChain | None = None
    ) -> None:
        self.upcasters = upcasters if upcasters is not None else UpcasterChain()
        self._classes: dict[str, type[Event]] = {}
        self.register(*events)

    def register(self, *events: type[Event]) -> None:
        """Add event classes; re-check the upcaster chain against them."""
        for cls in events:
            if not (isinstance(cls, type) and issubclass(cls, Event)):
                raise TypeError(f"{cls!r} is not an eventstore.Event subclass")
            known = self._classes.get(cls.event_type)
            if known is not None and known is not cls:
                raise EventCodecError(
                    f"event type {cls.event_type!r} is registered twice: by "
                    f"{_qualified(known)} and {_qualified(cls)}"
                )
            self._classes[cls.event_type] = cls
        self.validate()

    def validate(self) -> None:
        """Raise ``UpcasterChainError`` if some stored version cannot reach the current one."""
        current = {name: cls.event_version for name, cls in self._classes.items()}
        try:
            self.upcasters.validate(current)
        except MissingUpcasterError as error:
            raise UpcasterChainError(list(error.problems)) from error

    @property
    def event_classes(self) -> dict[str, type[Event]]:
        return dict(self._classes)

    def encode(
        self,
        event: Event,
        *,
        event_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> NewEvent:
        if self._classes.get(event.event_type) is not type(event):
            raise EventCodecError(
                f"event class {type(event).__qualname__} ({event.event_type!r}) is not registered"
            )
        return event.to_new_event(event_id=event_id, metadata=metadata)

    def decode(self, recorded: RecordedEvent) -> Event:
        """The typed, current-version event for a stored one."""
        cls = self._classes.get(recorded.type)
        if cls is not None and cls.event_version == recorded.schema_version:
            data = recorded.data
        else:
            # Inline rather than in helpers: a replay of old events runs this per
            # event, and each Python call here cost a tenth of the upcast itself.
            path = self.upcasters.path(recorded.type, recorded.schema_version)
            if (
                path is None
                or (cls := self._classes.get(path.event_type)) is None
                or cls.event_version != path.schema_version
            ):
                raise self._no_class(recorded, path)
            try:
                data = path.run(recorded.data)
            except UpcasterError as error:
                raise _upcast_error(recorded, error) from error
        try:
            # The validator itself: ``model_validate`` is a Python wrapper around
            # this call, a tenth of decoding a small event.
            event: Event = cls.__pydantic_validator__.validate_python(data)
        except ValidationError as error:
            raise EventValidationError(
                *_about(recorded),
                f"data does not validate into {cls.__qualname__}: {_brief(error)}",
            ) from error
        return event

    def upcast(self, recorded: RecordedEvent) -> RecordedEvent:
        """The envelope with type, schema version and data brought to the current version."""
        path = self.upcasters.path(recorded.type, recorded.schema_version)
        if path is None:
            return recorded
        try:
            data = path.run(recorded.data)
        except UpcasterError as error:
            raise _upcast_error(recorded, error) from error
        return recorded._replace(
            type=path.event_type, schema_version=path.schema_version, data=data
        )

    def _no_class(self, recorded: RecordedEvent, path: UpcastPath | None) -> EventCodecError:
        """Why an old (or unknown) event has no class to decode into."""
        if path is None:
            event_type, version = recorded.type, recorded.schema_version
        else:
            event_type, version = path.event_type, path.schema_version
        cls = self._classes.get(event_type)
        if cls is None:
            return UnknownEventTypeError(
                *_about(recorded),
                f"no event class is registered for type {event_type!r}",
            )
        return UpcastError(
            *_about(recorded),
            f"upcasting ended at v{version}, but {cls.__qualname__} is v{cls.event_version}",
            "(none)",
        )


def _upcast_error(recorded: RecordedEvent, error: UpcasterError) -> UpcastError:
    if isinstance(error, UpcastStepError):
        return UpcastError(*_about(recorded), str(error.__cause__ or error), error.step)
    return UpcastError(*_about(recorded), str(error))


def _about(recorded: RecordedEvent) -> tuple[str, int, str, int]:
    """What every error about a stored event names."""
    return recorded.stream_id, recorded.version, recorded.type, recorded.schema_version


def _brief(error: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['msg']}"
        for item in error.errors()[:3]
    ]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
