"""Column values as Debezium's PostgreSQL connector renders them in JSON.

``pgoutput`` v1 sends every value as PostgreSQL's text output; ``to_json``
turns it into the JSON value a Debezium consumer (JSON converter, schemas off)
reads for the same column, with Debezium's defaults except for ``numeric``:

=========================================  ===============================================
PostgreSQL type                            JSON value (Debezium logical type)
=========================================  ===============================================
smallint, integer, bigint, oid             number
real, double precision                     number; ``"NaN"``, ``"Infinity"``,
                                           ``"-Infinity"`` as strings
numeric / decimal                          string, exact: ``"12.50"`` (Debezium with
                                           ``decimal.handling.mode=string``; its default
                                           ``precise`` writes base64 bytes instead)
boolean                                    ``true`` / ``false``
text, varchar, char, name, enum types      string
uuid                                       string (``io.debezium.data.Uuid``)
json, jsonb                                the JSON document as a string
                                           (``io.debezium.data.Json``)
bytea                                      base64 string (``binary.handling.mode=bytes``)
date                                       days since 1970-01-01 (``io.debezium.time.Date``)
time                                       microseconds since midnight (``MicroTime``)
timestamp(0..3)                            milliseconds since the epoch (``Timestamp``)
timestamp, timestamp(4..6)                 microseconds since the epoch (``MicroTimestamp``)
timestamptz                                ISO 8601 string in UTC, ``"2024-05-01T10:00:00.5Z"``
                                           (``ZonedTimestamp``)
arrays of the types above                  JSON arrays of the element values (nested
                                           for multi-dimensional arrays)
=========================================  ===============================================

Every other type (interval, money, inet, ranges, geometric types, timetz, ...)
stays as PostgreSQL's text output, a string.  ``infinity`` dates and timestamps
also stay text: they have no number.  A TOASTed value an update did not touch
is Debezium's placeholder ``"__debezium_unavailable_value"``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any, Final

from ._cdc_errors import CdcDecodeError

UNAVAILABLE: Final = "__debezium_unavailable_value"

_EPOCH_DATE: Final = date(1970, 1, 1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _integer(text: str, modifier: int) -> int:
    return int(text)


def _float(text: str, modifier: int) -> float | str:
    value = float(text)
    return text if math.isnan(value) or math.isinf(value) else value


def _text(text: str, modifier: int) -> str:
    return text


def _boolean(text: str, modifier: int) -> bool:
    return text == "t"


def _bytea(text: str, modifier: int) -> str:
    # bytea_output defaults to hex: "\x0a0b".
    raw = bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()
    return base64.b64encode(raw).decode()


def _date(text: str, modifier: int) -> int | str:
    if not text[:1].isdigit() or text.endswith(" BC"):
        return text  # infinity / BC dates: no day number Debezium agrees on
    return (date.fromisoformat(text) - _EPOCH_DATE).days


def _time(text: str, modifier: int) -> int:
    moment = time.fromisoformat(text) if text != "24:00:00" else None
    if moment is None:
        return 24 * 3600 * 1_000_000
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000 + (
        moment.microsecond
    )


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _timestamp(text: str, modifier: int) -> int | str:
    if not text[:1].isdigit() or text.endswith(" BC"):
        return text
    micros = _micros(datetime.fromisoformat(text).replace(tzinfo=UTC))
    # Debezium's adaptive precision: up to 3 fractional digits is a millisecond
    # Timestamp, more (or unspecified, which is 6) a MicroTimestamp.
    if 0 <= modifier <= 3:
        return micros // 1000
    return micros


def _timestamptz(text: str, modifier: int) -> str:
    if not text[:1].isdigit() or text.endswith(" BC"):
        return text
    # The server's output uses its TimeZone ("+00", "+05:30"): normalise to UTC.
    if text[-3] in "+-" and text[-3:].lstrip("+-").isdigit():
        text += ":00"
    moment = datetime.fromisoformat(text).astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        stamp += f".{moment.microsecond:06d}".rstrip("0")
    return stamp + "Z"


_Converter = Callable[[str, int], Any]

_SCALARS: Final[dict[int, _Converter]] = {
    16: _boolean,
    17: _bytea,
    19: _text,  # name
    20: _integer,  # int8
    21: _integer,  # int2
    23: _integer,  # int4
    25: _text,
    26: _integer,  # oid
    114: _text,  # json: the document as a string, as Debezium's Json type
    700: _float,
    701: _float,
    1042: _text,  # bpchar
    1043: _text,  # varchar
    1082: _date,
    1083: _time,
    1114: _timestamp,
    1184: _timestamptz,
    1700: _text,  # numeric: exact decimal string
    2950: _text,  # uuid
    3802: _text,  # jsonb
}

# Array type oid -> element type oid, for the element types above.
_ARRAYS: Final[dict[int, int]] = {
    1000: 16,
    1001: 17,
    1003: 19,
    1016: 20,
    1005: 21,
    1007: 23,
    1009: 25,
    1028: 26,
    199: 114,
    1021: 700,
    1022: 701,
    1014: 1042,
    1015: 1043,
    1182: 1082,
    1183: 1083,
    1115: 1114,
    1185: 1184,
    1231: 1700,
    2951: 2950,
    3807: 3802,
}


def converter(type_oid: int, modifier: int) -> Callable[[str], Any]:
    """The text -> JSON value function for a column of this type (``ValueError`` on bad text)."""
    element = _ARRAYS.get(type_oid)
    if element is not None:
        scalar = _SCALARS[element]
        # Array typmods are the element's (timestamp(3)[] has modifier 3).
        return lambda text: _map_nested(parse_array(text), lambda item: scalar(item, modifier))
    convert = _SCALARS.get(type_oid, _text)
    if convert is _text:
        return str
    if convert is _integer:
        return int
    return lambda text: convert(text, modifier)


def to_json(type_oid: int, modifier: int, text: str) -> Any:
    """The JSON value Debezium writes for a column of this type whose text output is ``text``."""
    try:
        return converter(type_oid, modifier)(text)
    except ValueError as error:
        raise CdcDecodeError(f"cannot convert {text!r} of type oid {type_oid}: {error}") from error


def _map_nested(value: Any, convert: Callable[[str], Any]) -> Any:
    if isinstance(value, list):
        return [_map_nested(item, convert) for item in value]
    return None if value is None else convert(value)


def parse_array(text: str) -> list[Any]:
    """PostgreSQL's array text output as nested lists of element strings (NULL: None)."""
    if text.startswith("["):
        # Explicit bounds ("[0:1]={1,2}"): the elements are what follows '='.
        text = text[text.index("=") + 1 :]
    position = 0

    def fail(reason: str) -> CdcDecodeError:
        return CdcDecodeError(f"invalid array literal {text!r} at {position}: {reason}")

    def parse_list() -> list[Any]:
        nonlocal position
        if text[position : position + 1] != "{":
            raise fail("expected '{'")
        position += 1
        items: list[Any] = []
        if text[position : position + 1] == "}":
            position += 1
            return items
        while True:
            items.append(parse_item())
            if position >= len(text):
                raise fail("unterminated array")
            separator = text[position]
            position += 1
            if separator == "}":
                return items
            if separator != ",":
                raise fail(f"unexpected {separator!r}")

    def parse_item() -> Any:
        nonlocal position
        if text[position : position + 1] == "{":
            return parse_list()
        if text[position : position + 1] == '"':
            position += 1
            chars: list[str] = []
            while position < len(text) and text[position] != '"':
                if text[position] == "\\":
                    position += 1
                chars.append(text[position : position + 1])
                position += 1
            position += 1
            return "".join(chars)
        start = position
        while position < len(text) and text[position] not in ",}":
            position += 1
        word = text[start:position]
        return None if word == "NULL" else word

    result = parse_list()
    if position != len(text):
        raise fail("text after the array")
    return result
