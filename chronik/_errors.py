"""Exit codes and the errors the command raises, plus the mapping of framework errors.

::

    ChronikError
     └── CommandError              a command cannot do what was asked (exit 1)
          ├── UsageError           bad arguments or configuration (exit 2)
          ├── NotFoundError        an unknown stream, aggregate, projection... (exit 3)
          ├── UnavailableError     a server is unreachable, or a feature is not there (exit 4)
          └── Interrupted          stopped by Ctrl-C / SIGTERM before it finished (exit 130)

Every error carries ``hint``: the one thing to do next, printed after the message.
"""

from __future__ import annotations

import enum

import psycopg

from eventstore import (
    ChronikError,
    InvalidInputError,
    StoreUnavailableError,
    StreamNotFoundError,
    UpcasterChainError,
)


class ExitCode(enum.IntEnum):
    """What ``chronik`` returns; scripts can rely on these numbers."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAVAILABLE = 4
    INTERRUPTED = 130


EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    the command failed (the message says why; --debug shows the traceback)
  2    usage error: bad arguments, options or configuration
  3    not found: unknown stream, aggregate type or id, projection, dead letter
  4    unavailable: a database or server is unreachable, or the feature is not available
  130  interrupted (Ctrl-C or SIGTERM)"""


class CommandError(ChronikError):
    """A command could not do what was asked."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(CommandError):
    """Bad arguments, options or configuration."""

    exit_code = ExitCode.USAGE


class NotFoundError(CommandError, LookupError):
    """What the command was asked about does not exist."""

    exit_code = ExitCode.NOT_FOUND


class UnavailableError(CommandError):
    """A server cannot be reached, or the feature is not available."""

    exit_code = ExitCode.UNAVAILABLE


class Interrupted(CommandError):
    """A signal stopped the command before it finished."""

    exit_code = ExitCode.INTERRUPTED


def classify(error: BaseException, *, debug: bool = False) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for an error that ended a command."""
    if isinstance(error, CommandError):
        return error.exit_code, _one_line(error)
    if isinstance(error, StoreUnavailableError):
        # Its text names host and database; the password was masked at the boundary.
        return ExitCode.UNAVAILABLE, (
            f"{_one_line(error)}; "
            "check --database-url / DATABASE_URL and that the server is running"
        )
    if isinstance(error, StreamNotFoundError):
        return ExitCode.NOT_FOUND, f"{error}; run 'chronik streams' to list the streams"
    if isinstance(error, UpcasterChainError):
        return ExitCode.FAILURE, " ".join(str(error).split()) + "; register the missing upcasters"
    if isinstance(error, InvalidInputError):
        return ExitCode.USAGE, str(error)
    if isinstance(error, ChronikError) and isinstance(error, LookupError):
        # The packages below name their own not-found errors (aggregate, time travel
        # target, projection, dead letter); all of them are LookupErrors of the tree.
        stream_id = getattr(error, "stream_id", None)
        if isinstance(stream_id, str):
            return ExitCode.NOT_FOUND, (
                f"{_one_line(error)}; run 'chronik history {stream_id}' to see its "
                "versions, times and positions"
            )
        return ExitCode.NOT_FOUND, _one_line(error)
    if isinstance(error, psycopg.OperationalError):
        return ExitCode.UNAVAILABLE, (
            f"lost the database connection ({type(error).__name__}); "
            "check that the server is running and retry"
        )
    if isinstance(error, ChronikError):
        return ExitCode.FAILURE, _one_line(error)
    unexpected = f"unexpected {type(error).__name__}: {_one_line(error)}"
    if debug:  # the traceback is right above
        return ExitCode.FAILURE, unexpected
    return ExitCode.FAILURE, f"{unexpected} (run with --debug for the traceback)"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
