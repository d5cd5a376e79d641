"""Output for people (aligned tables) and for scripts (JSON), always to stdout.

Everything printed for people passes ``printable``: stream ids, event types and
data come from whoever appended them, and a terminal obeys control characters
in them (clear the screen, set the title, forge a row with a carriage return,
reverse the text with a bidi override).  JSON output keeps every value exact.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Self, TextIO
from uuid import UUID

from pydantic import BaseModel

from eventstore import Position, RecordedEvent


# Escaped for people: what Python's repr() escapes, i.e. C0 and C1 controls, DEL,
# the invisible format characters that reorder or hide text (bidi overrides and
# isolates, zero-width characters), line/paragraph separators, odd spaces,
# surrogates and unassigned code points.  A terminal may act on any of them
# (U+009B is CSI on some); str.isprintable() knows them all, at C speed.
def _escape(char: str) -> str:
    if char == " " or char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(value: object) -> str:
    """``value`` as text safe for a terminal: control characters shown escaped (``\\x1b``)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_escape(char) for char in text)


def printable_lines(text: str) -> str:
    """Like ``printable`` but keeps line breaks: for messages of several lines."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _json_inert(text: str) -> str:
    """JSON text with every non-printable character as a ``\\uXXXX`` escape.

    json escapes C0 controls itself; the others (C1, bidi overrides...) are
    written raw with ``ensure_ascii=False``.  As escapes they decode to the very
    same strings, so the output stays exact, but cannot steer a terminal.  Raw
    newlines in the text are json's indentation, never data.
    """
    if text.isprintable():
        return text
    return "".join(
        char if char in " \n" or char.isprintable() else _json_unit_escapes(char) for char in text
    )


def _json_unit_escapes(char: str) -> str:
    data = char.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{data[i] << 8 | data[i + 1]:04x}" for i in range(0, len(data), 2))


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
    text = json.dumps(to_jsonable(value), indent=2, ensure_ascii=False)
    stream.write(_json_inert(text) + "\n")


def compact(value: Any) -> str:
    """One-line JSON for a table cell."""
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def cell(value: Any) -> str:
    """A table cell: one line, nothing a terminal would obey."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, Position):  # a tuple, but printed as people type it: 968:393
        return str(value)
    if isinstance(value, Mapping | list | tuple):
        return printable(compact(value))
    return printable(to_jsonable(value))


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    out: TextIO | None = None,
    *,
    empty: str = "(none)",
) -> int:
    """Left-aligned columns; the last column is cut to the terminal width on a TTY."""
    with TableWriter(headers, out, empty=empty) as table:
        for row in rows:
            table.add(row)
    return table.rows


class TableWriter:
    """A table written as rows arrive, so a long listing never sits in memory.

    Column widths come from the first ``sample`` rows (all of them, for a short
    table); a later, wider cell pushes its line out rather than holding output back.
    """

    def __init__(
        self,
        headers: Sequence[str],
        out: TextIO | None = None,
        *,
        empty: str = "(none)",
        sample: int = 200,
    ) -> None:
        self.headers = [printable(h.upper()) for h in headers]
        self.out = out or sys.stdout
        self.empty = empty
        self.sample = sample
        self.rows = 0
        self._pending: list[list[str]] | None = []
        self._widths: list[int] = []
        self._limit = shutil.get_terminal_size((10_000, 24)).columns if self.out.isatty() else None

    def add(self, row: Sequence[Any]) -> None:
        text = [cell(value) for value in row]
        self.rows += 1
        if self._pending is None:
            self.out.write(self._line(text) + "\n")
            return
        self._pending.append(text)
        if len(self._pending) >= self.sample:
            self._flush()

    def close(self) -> None:
        if self._pending == [] and self.rows == 0:
            self.out.write(self.empty + "\n")
            self._pending = None
        elif self._pending is not None:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending or [], None
        self._widths = [len(header) for header in self.headers]
        for row in pending:
            for index, value in enumerate(row[:-1]):
                self._widths[index] = max(self._widths[index], len(value))
        self.out.write(self._line(self.headers) + "\n")
        for row in pending:
            self.out.write(self._line(row) + "\n")

    def _line(self, values: Sequence[str]) -> str:
        head = "  ".join(
            value.ljust(width) for value, width in zip(values[:-1], self._widths[:-1], strict=True)
        )
        full = f"{head}  {values[-1]}" if len(values) > 1 else values[-1]
        if self._limit is not None and len(full) > self._limit:
            full = full[: max(self._limit - 1, 10)] + "…"
        return full.rstrip()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class JsonArrayWriter:
    """A JSON list written item by item; the text is what ``print_json(list)`` prints."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.items = 0

    def add(self, value: Any) -> None:
        text = json.dumps(to_jsonable(value), indent=2, ensure_ascii=False)
        self.out.write(("[\n" if self.items == 0 else ",\n") + _indent(_json_inert(text)))
        self.items += 1

    def close(self) -> None:
        self.out.write("[]\n" if self.items == 0 else "\n]\n")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # An error mid-way leaves the list unclosed: a truncated list must not
        # parse as a complete one.
        if exc_info[0] is None:
            self.close()


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.split("\n"))


def print_fields(pairs: Sequence[tuple[str, Any]], out: TextIO | None = None) -> None:
    """``name: value`` lines, names aligned."""
    stream = out or sys.stdout
    width = max((len(printable(name)) for name, _ in pairs), default=0)
    for name, value in pairs:
        stream.write(f"{printable(name) + ':':<{width + 1}} {cell(value)}\n")
