"""Output for people (aligned tables) and for scripts (JSON), always to stdout."""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

from pydantic import BaseModel

from eventstore import Position, RecordedEvent


def to_jsonable(value: Any) -> Any:
    """Plain JSON types for anything a command prints (Decimal stays exact, as a string)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID | Position | Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, RecordedEvent):
        return {name: to_jsonable(item) for name, item in value._asdict().items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(item) for item in value]
    return str(value)


def print_json(value: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False) + "\n")


def compact(value: Any) -> str:
    """One-line JSON for a table cell."""
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, Mapping | list | tuple):
        return compact(value)
    return str(to_jsonable(value))


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    out: TextIO | None = None,
    *,
    empty: str = "(none)",
) -> None:
    """Left-aligned columns; the last column is cut to the terminal width on a TTY."""
    stream = out or sys.stdout
    if not rows:
        stream.write(empty + "\n")
        return
    text = [[cell(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in text:
        for index, value in enumerate(row[:-1]):
            widths[index] = max(widths[index], len(value))
    limit = shutil.get_terminal_size((10_000, 24)).columns if stream.isatty() else None

    def line(values: Sequence[str]) -> str:
        head = "  ".join(
            value.ljust(width) for value, width in zip(values[:-1], widths[:-1], strict=True)
        )
        full = f"{head}  {values[-1]}" if len(values) > 1 else values[-1]
        if limit is not None and len(full) > limit:
            full = full[: max(limit - 1, 10)] + "…"
        return full.rstrip()

    stream.write(line([h.upper() for h in headers]) + "\n")
    for row in text:
        stream.write(line(row) + "\n")


def print_fields(pairs: Sequence[tuple[str, Any]], out: TextIO | None = None) -> None:
    """``name: value`` lines, names aligned."""
    stream = out or sys.stdout
    width = max((len(name) for name, _ in pairs), default=0)
    for name, value in pairs:
        stream.write(f"{name + ':':<{width + 1}} {cell(value)}\n")
