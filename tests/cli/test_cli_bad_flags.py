"""Wrong flags and arguments of ``chronik relay``, ``cdc`` and ``trace``: exit 2, one
line on stderr, no traceback, no password, and nothing set up on any server."""

from __future__ import annotations

import uuid

import pytest
from cli_runner import Chronik, Result

# Nothing listens there: a command that got as far as Kafka would fail differently.
NO_BROKER = "127.0.0.1:1"


def assert_usage_error(result: Result, says: str) -> None:
    assert result.code == 2, result.describe()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chronik: error: "), result.describe()
    assert says in lines[0], result.describe()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        # The empty name used to run, warning that a status query lacked its parameter.
        (["--name", ""], "relay '': a relay name is a non-empty string"),
        (
            ["--schema-registry-url", "http://svc:hunter2@registry:99999"],
            "'http://svc:***@registry:99999' is malformed",
        ),
        (["--max-message-bytes", "999"], "max_message_bytes must be an int from 1000"),
    ],
    ids=["empty name", "registry port", "message limit"],
)
def test_relay_flags(chronik: Chronik, flags: list[str], says: str) -> None:
    result = chronik("relay", "--until-caught-up", "--kafka-bootstrap-servers", NO_BROKER, *flags)
    assert_usage_error(result, says)
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--name", "shop orders"], "invalid CDC connector name 'shop orders'"),
        (["--name", "n" * 60], "is too long"),
        (["--topic-prefix", "shop orders"], "invalid topic prefix 'shop orders'"),
    ],
    ids=["name with a space", "long name", "topic prefix"],
)
def test_cdc_flags(chronik: Chronik, flags: list[str], says: str) -> None:
    table = f"public.t{uuid.uuid4().hex[:8]}"
    result = chronik(
        "cdc", "--table", table, "--until-idle", "--kafka-bootstrap-servers", NO_BROKER, *flags
    )
    assert_usage_error(result, says)


def test_a_password_in_the_kafka_brokers_is_masked(chronik: Chronik) -> None:
    result = chronik(
        "topics", "tail", "chronik.ledger", "--kafka-bootstrap-servers", "svc:hunter2@127.0.0.1:1"
    )
    assert result.code == 4, result.describe()
    assert "svc:***@127.0.0.1:1" in result.stderr, result.describe()
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        # It used to reach the server and exit 1 as if the drop had failed there.
        (["cdc", "drop", "a b", "--yes"], "invalid CDC connector name 'a b'"),
        # Checked before asking: nobody should confirm dropping what cannot exist.
        (["cdc", "drop", "a-b"], "invalid CDC connector name 'a-b'"),
        (["cdc", "drop", "n" * 60, "--yes"], "is too long"),
        (["cdc", "status", "--name", "a b"], "invalid CDC connector name 'a b'"),
        (["trace", ""], "expected an event id or a correlation id, got ''"),
        (["trace", " "], "expected an event id or a correlation id, got ' '"),
    ],
    ids=[
        "drop space",
        "drop dash unasked",
        "drop long",
        "status name",
        "trace empty",
        "trace blank",
    ],
)
def test_bad_arguments_exit_2_before_any_server(
    chronik: Chronik, args: list[str], says: str
) -> None:
    # Nothing listens at this database: a command that got as far as the server would
    # exit 4, not 2.
    result = chronik(*args, "--database-url", "postgresql://u:hunter2@127.0.0.1:1/none")
    assert_usage_error(result, says)
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        # The consume loop restarts on errors (as on an outage): a blank group used to
        # print "failed; restarting" until someone noticed.
        (["--group", " ", "--topic", "orders"], "consumer group ' ': a group id is a non-blank"),
        (["--group", "g", "--topic", "bad topic"], "'bad topic' is not a Kafka topic name"),
        (["--group", "g", "--topic", "orders.dlq"], "'orders.dlq' is a retry or dead-letter"),
        (["--group", "g", "--topic", "a", "--topic", "a"], "topic 'a' is listed twice"),
        # A plain def sent every message to the DLQ ("can't be used in 'await'").
        (["--group", "g", "--topic", "a", "--handler", "os.path:join"], "must be an async def"),
    ],
    ids=["blank group", "topic name", "dlq topic", "twice", "sync handler"],
)
def test_consume_flags(chronik: Chronik, flags: list[str], says: str) -> None:
    if "--handler" not in flags:
        flags = [*flags, "--handler", "asyncio:sleep"]  # an async def
    result = chronik("consume", "--kafka-bootstrap-servers", NO_BROKER, *flags)
    assert_usage_error(result, says)


def test_consumers_status_refuses_a_blank_group(chronik: Chronik) -> None:
    result = chronik(
        "consumers", "status", "--group", "", "--topic", "a", "--kafka-bootstrap-servers", NO_BROKER
    )
    assert_usage_error(result, "consumer group '': a group id is a non-blank string")
