"""Aggregates: the Aggregate base, the Repository (load, save, retry, time travel,
snapshots) and the shipped ``ledger`` and ``order`` aggregates.

Domain code (aggregates, their commands and apply methods) is pure and synchronous;
the Repository does the I/O.  ``aggregates.testing`` has given/when/then helpers.
"""

from ._aggregate import Aggregate, applies, command
from ._codec import build_codec
from ._errors import (
    AggregateDefinitionError,
    AggregateError,
    AggregateNotFoundError,
    DomainError,
    InvalidAmount,
    InvalidStateError,
    RepositoryConfigError,
    TimeTravelError,
    UnhandledEventError,
    UnsavedEventsError,
)
from ._money import Money, MoneyInput
from ._repository import DEFAULT_SNAPSHOT_INTERVAL, Repository
from .testing import Scenario, ScenarioFailed, scenario

__all__ = [
    "DEFAULT_SNAPSHOT_INTERVAL",
    "Aggregate",
    "AggregateDefinitionError",
    "AggregateError",
    "AggregateNotFoundError",
    "DomainError",
    "InvalidAmount",
    "InvalidStateError",
    "Money",
    "MoneyInput",
    "Repository",
    "RepositoryConfigError",
    "Scenario",
    "ScenarioFailed",
    "TimeTravelError",
    "UnhandledEventError",
    "UnsavedEventsError",
    "applies",
    "build_codec",
    "command",
    "scenario",
]
