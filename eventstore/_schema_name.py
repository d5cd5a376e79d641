"""The rule for schema names, shared by every package that keeps tables in one.

Strict on purpose: the name is quoted as an identifier everywhere, but it also
lands inside a NOTIFY channel name, inside ``$body$``-quoted function bodies and
in SQL text that psycopg scans for ``%`` placeholders.  A name of letters, digits
and underscores is safe in all of them, and reads the same in every message.
"""

from __future__ import annotations

import re

from ._errors import InvalidConfigurationError

# The NOTIFY channel is "chronik_events.<schema>" and PostgreSQL truncates
# identifiers at 63 bytes; a longer channel name fails inside every append.
MAX_SCHEMA_NAME_LENGTH = 63 - len("chronik_events.")

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# PostgreSQL reserves "pg_" names and has its own information_schema.
_RESERVED_PREFIX = "pg_"
_RESERVED = frozenset({"information_schema"})

SCHEMA_NAME_RULE = (
    f"use letters, digits and underscores (at most {MAX_SCHEMA_NAME_LENGTH}), starting with "
    "a letter or underscore, not 'pg_...' or 'information_schema' (e.g. 'chronik')"
)


def check_schema_name(schema: object) -> str:
    """``schema`` if chronik may keep tables in it, else ``InvalidConfigurationError``."""
    if not isinstance(schema, str):
        raise InvalidConfigurationError(
            "schema", f"expected a name (a str), got {type(schema).__name__}"
        )
    shown = repr(schema[:60]) + ("..." if len(schema) > 60 else "")
    if not _SCHEMA_NAME.fullmatch(schema) or len(schema) > MAX_SCHEMA_NAME_LENGTH:
        raise InvalidConfigurationError(
            "schema", f"{shown} is not a usable name: {SCHEMA_NAME_RULE}"
        )
    folded = schema.lower()
    if folded.startswith(_RESERVED_PREFIX) or folded in _RESERVED:
        raise InvalidConfigurationError("schema", f"{shown} is reserved by PostgreSQL")
    return schema
