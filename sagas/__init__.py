"""Sagas: business processes across aggregates, crash-safe and exactly-once in effect.

*Orchestration*: a ``Saga`` is a list of ``Step``s, each issuing a ``Command`` on
an aggregate and naming its compensation; when a step is refused, the completed
steps are compensated in reverse order.  An instance's progress is the stream
``saga-<id>`` (the ``SagaProcess`` aggregate), so it survives restarts and shows
in ``chronik history`` / ``chronik state saga <id>``.  A step may await an
answer with a deadline kept in the stream and checked on the database clock.

*Choreography*: a ``Reaction`` reacts to events by issuing commands.  A reaction
that keeps raising on an event is retried with backoff (``ReactionRetry``), then
the event is parked for it: listed by ``list_sagas`` (status ``parked``), shown
by ``show_saga``, handled again by ``retry_parked``; never dropped.

A ``SagaRunner`` drives both from any ``projections.EventSource``; of several
runners on one store (same name), one leads and the others stand by.  Each
transition commits the command's events, the saga's progress and its index row
in one PostgreSQL transaction; the command's events carry ids derived from the
saga and the step (uuid5), so a redelivered trigger never acts twice.
Shipped: ``sagas.shipped`` (``TRANSFER``, ``CHECKOUT``, ``PAY_ON_PLACE``).
"""

from ._choreography import ReactionRetry
from ._definition import SAGA_NAMESPACE, Await, Command, Issue, Reaction, Saga, Step
from ._engine import CommitHook, SagaEngine
from ._errors import (
    SagaConfigError,
    SagaDefinitionError,
    SagaError,
    SagaNotFoundError,
    SagaStateError,
)
from ._ops import (
    DEFAULT_STUCK_AFTER,
    STATUSES,
    SagaReport,
    SagaSummary,
    StepRecord,
    list_sagas,
    migrate_sagas,
    retry_parked,
    retry_saga,
    show_saga,
    start_saga,
)
from ._parked import ParkedTrigger
from ._process import SAGA_EVENTS, SagaProcess, SagaState, SagaStatus
from ._runner import SagaRunner, SagaRunnerOptions, SagaRunnerStats

__all__ = [
    "DEFAULT_STUCK_AFTER",
    "SAGA_EVENTS",
    "SAGA_NAMESPACE",
    "STATUSES",
    "Await",
    "Command",
    "CommitHook",
    "Issue",
    "ParkedTrigger",
    "Reaction",
    "ReactionRetry",
    "Saga",
    "SagaConfigError",
    "SagaDefinitionError",
    "SagaEngine",
    "SagaError",
    "SagaNotFoundError",
    "SagaProcess",
    "SagaReport",
    "SagaRunner",
    "SagaRunnerOptions",
    "SagaRunnerStats",
    "SagaState",
    "SagaStateError",
    "SagaStatus",
    "SagaSummary",
    "Step",
    "StepRecord",
    "list_sagas",
    "migrate_sagas",
    "retry_parked",
    "retry_saga",
    "show_saga",
    "start_saga",
]
