"""Human output never passes a terminal control character through; JSON stays exact."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from cli_runner import Chronik

from eventstore import NewEvent, PostgresEventStore

# Clear the screen, set the window title (OSC ... BEL), return to the line's
# start to forge a row, a C1 CSI, and a right-to-left override.
CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"
EVIL_STREAM = f"evil-{CLEAR}{TITLE}\rforged\u202eabc"
EVIL_TYPE = f"evil.Typed{CLEAR}"
EVIL_DATA = {"note": f"\x9b31m red \x1b[0m\r\n{TITLE}", f"key{CLEAR}": "\u2066x\u2069"}
RAW = ("\x1b", "\r", "\x07", "\x9b", "\u202e", "\u2066", "\u2069")


@pytest.fixture(scope="module")
async def evil(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> PostgresEventStore:
    assert chronik("init").code == 0
    store = await make_pg_store(schema=cli_schema)
    await store.append(EVIL_STREAM, [NewEvent(EVIL_TYPE, EVIL_DATA), NewEvent("plain", {})])
    return store


def _assert_inert(text: str) -> None:
    found = [char for char in RAW if char in text]
    assert found == [], f"raw control characters {found!r} in {text!r}"


def test_tables_escape_control_characters(chronik: Chronik, evil: PostgresEventStore) -> None:
    streams = chronik("streams")
    assert streams.code == 0, streams.describe()
    _assert_inert(streams.stdout + streams.stderr)
    assert "evil-\\x1b[2J\\x1b]0;pwned\\x07\\x0dforged\\u202eabc" in streams.stdout
    for args in (("history", EVIL_STREAM, "--raw"), ("history", EVIL_STREAM, "--raw", "--debug")):
        history = chronik(*args)
        assert history.code == 0, history.describe()
        _assert_inert(history.stdout + history.stderr)
        assert "evil.Typed\\x1b[2J" in history.stdout
        # One line per event, whatever their data holds.
        assert len(history.stdout.splitlines()) == 3


def test_json_keeps_the_exact_values(chronik: Chronik, evil: PostgresEventStore) -> None:
    streams = chronik("streams", "--json")
    _assert_inert(streams.stdout)
    assert EVIL_STREAM in [row["stream_id"] for row in json.loads(streams.stdout)]
    history = chronik("history", EVIL_STREAM, "--raw", "--json")
    _assert_inert(history.stdout)
    events = history.json()
    assert (events[0]["stream_id"], events[0]["type"], events[0]["data"]) == (
        EVIL_STREAM,
        EVIL_TYPE,
        EVIL_DATA,
    )


def test_error_messages_escape_what_they_echo(chronik: Chronik, evil: PostgresEventStore) -> None:
    # An app whose import fails with an error message full of control characters.
    (chronik.cwd / "evil_terminal_app.py").write_text(
        f"raise RuntimeError({'boom' + TITLE + CLEAR + chr(13)!r})\n"
    )
    for args in (
        ("streams", "--app", "evil_terminal_app:app"),
        ("history", EVIL_STREAM + "-404"),
        ("state", f"ledger{CLEAR}", "x"),
        ("state", "ledger", f"nobody{TITLE}\r"),
        ("--app", f"no_module{CLEAR}:app", "streams"),
        ("replay", f"p{TITLE}", "--into", "x"),
    ):
        result = chronik(*args)
        assert result.code in (1, 2, 3), result.describe()
        _assert_inert(result.stdout + result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.describe()
