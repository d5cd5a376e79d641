"""Typed events: frozen pydantic models with a stable type name and schema version."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from ._model import NewEvent


class Event(BaseModel):
    """Base class of typed domain events.

    ``event_type`` is the name stored with each event; it defaults to the class
    name, but set it explicitly once data exists: renaming the class must not
    orphan stored events.  ``event_version`` is the schema version of this class;
    bump it together with an upcaster from the previous version.

    Events are frozen and forbid unknown fields, so an upcaster that forgets to
    drop or rename a field fails loudly at read time instead of losing data.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = "Event"
    event_version: ClassVar[int] = 1

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" not in cls.__dict__:
            cls.event_type = cls.__name__
        if not isinstance(cls.event_version, int) or cls.event_version < 1:
            raise TypeError(f"{cls.__name__}.event_version must be an int >= 1")

    def to_new_event(
        self, *, event_id: UUID | None = None, metadata: dict[str, Any] | None = None
    ) -> NewEvent:
        """This event as the store's envelope (JSON-mode data: Decimal as string)."""
        return NewEvent(
            type=self.event_type,
            data=self.model_dump(mode="json"),
            schema_version=self.event_version,
            event_id=event_id,
            metadata=metadata,
        )
