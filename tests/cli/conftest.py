"""CLI test fixtures: the real ``chronik`` command against the session's servers.

Every test module gets a schema of its own (``CHRONIK_SCHEMA``), so tests that
read whole listings or the feed never see each other's data.
"""

from __future__ import annotations

import uuid

import pytest
from cli_runner import Chronik, base_environment


@pytest.fixture(scope="module")
def cli_schema() -> str:
    return f"cli_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def chronik(
    pg_dsn: str, redis_url: str, cli_schema: str, tmp_path_factory: pytest.TempPathFactory
) -> Chronik:
    """``chronik(*args)`` runs the command on this module's schema; returns a Result."""
    tmp = tmp_path_factory.mktemp("cli")
    env = base_environment(tmp)
    env.update(DATABASE_URL=pg_dsn, REDIS_URL=redis_url, CHRONIK_SCHEMA=cli_schema)
    return Chronik(env, tmp)


@pytest.fixture(scope="module")
def bare_chronik(tmp_path_factory: pytest.TempPathFactory) -> Chronik:
    """The command with no URLs at all (only for commands that never reach a server)."""
    tmp = tmp_path_factory.mktemp("cli_bare")
    return Chronik(base_environment(tmp), tmp)
