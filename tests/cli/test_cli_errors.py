"""Exit codes and one-line errors: usage (2), not found (3), unavailable (4)."""

from __future__ import annotations

import socket

import pytest
from cli_runner import Chronik

APP = ("--app", "cli_bank_app:app")


def _closed_port() -> int:
    # A port nothing listens on: bind, note it, close.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "args",
    [
        ("streams", "--bogus"),
        ("no-such-command",),
        (),
        ("history",),
        ("state", "ledger", "a-1", "--at-version", "0"),
        ("state", "ledger", "a-1", "--at-version", "2", "--as-of", "2024-01-01"),
        ("state", "ledger", "a-1", "--as-of", "last tuesday"),
        ("state", "ledger", "a-1", "--at-position", "12"),
        ("history", "x", "--from-version", "-1"),
        ("--schema", "bad-schema!", "streams"),
        ("--schema", "pg_catalog", "streams"),
        ("--schema", "information_schema", "streams"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(bare_chronik: Chronik, args: tuple[str, ...]) -> None:
    result = bare_chronik(*args)
    assert result.code == 2, result.describe()
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.describe()
    assert lines[0].startswith("chronik: error: ")
    assert "--help" in lines[0] or "use letters" in lines[0]


def test_help_documents_the_exit_codes(bare_chronik: Chronik) -> None:
    result = bare_chronik("--help")
    assert result.code == 0
    for line in ("2    usage error", "3    not found", "4    unavailable"):
        assert line in result.stdout


def test_unreachable_database_exits_4_without_the_password(bare_chronik: Chronik) -> None:
    url = f"postgresql://alice:s3cr3t-pw@127.0.0.1:{_closed_port()}/ledgerdb"
    for args in (("--database-url", url, "streams", *APP), ("history", "bank-1", *APP)):
        result = bare_chronik(*args, extra_env={"DATABASE_URL": url})
        assert result.code == 4, result.describe()
        assert "s3cr3t-pw" not in result.stdout + result.stderr
        assert "ledgerdb" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_with_debug_still_hides_the_password(bare_chronik: Chronik) -> None:
    url = f"postgresql://alice:s3cr3t-pw@127.0.0.1:{_closed_port()}/ledgerdb"
    result = bare_chronik("--debug", "--database-url", url, "init")
    assert result.code == 4, result.describe()
    assert "Traceback" in result.stderr
    assert "s3cr3t-pw" not in result.stdout + result.stderr


def test_unknown_app_module_is_a_usage_error(bare_chronik: Chronik) -> None:
    result = bare_chronik("--app", "no_such_module_xyz:app", "history", "s-1")
    assert result.code == 2, result.describe()
    assert "no_such_module_xyz" in result.stderr


def test_unreachable_redis_exits_4_without_the_password(chronik: Chronik) -> None:
    assert chronik("init").code == 0
    url = f"redis://:r3d1s-pw@127.0.0.1:{_closed_port()}/0"
    result = chronik("projections", "status", "--redis-url", url)
    assert result.code == 4, result.describe()
    assert "r3d1s-pw" not in result.stdout + result.stderr
    assert "cannot reach Redis" in result.stderr
