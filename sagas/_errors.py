"""The sagas' branch of the chronik error tree.

::

    ChronikError
     └── SagaError                      names the saga (definition or instance) it is about
          ├── SagaDefinitionError        a saga or reaction is declared wrongly
          ├── SagaConfigError            the runner cannot work with what it was given
          ├── SagaInputError             bad id, data or limit given to an operation
          ├── SagaNotFoundError          no saga instance with that id (a LookupError)
          └── SagaStateError             the operation does not fit the saga's status

A step's business refusal is not a saga error: it is the aggregate's ``DomainError``,
which the saga records (``saga.StepFailed``) and answers with compensations.
Errors are picklable: each keeps its constructor arguments in ``args``.
"""

from __future__ import annotations

from eventstore import ChronikError


class SagaError(ChronikError):
    """Root of the saga errors; ``saga`` names the definition or the instance."""

    def __init__(self, saga: str, reason: str) -> None:
        super().__init__(saga, reason)
        self.saga = saga
        self.reason = reason

    def __str__(self) -> str:
        return f"saga {self.saga!r}: {self.reason}"


class SagaDefinitionError(SagaError, ValueError):
    """A saga, step or reaction is declared wrongly (raised when it is declared)."""


class SagaConfigError(SagaError, ValueError):
    """The runner was given something it cannot work with (a store, a repository)."""


class SagaInputError(SagaError, ValueError):
    """Bad input to an operation (an instance id, its data, a limit); nothing was written."""


class SagaNotFoundError(SagaError, LookupError):
    """No saga instance has this id."""


class SagaStateError(SagaError):
    """The operation does not fit the saga's status (e.g. retrying a completed saga)."""
