"""``chronik schemas``: the real command on a history release 1 wrote."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cli_runner import Chronik
from cli_schema_app import ShippedV1

from eventstore import PostgresEventStore

RELEASE1 = ("--app", "cli_schema_app:release1")
UNBUMPED = ("--app", "cli_schema_app:unbumped")
BUMPED = ("--app", "cli_schema_app:bumped")


@pytest.fixture(scope="module")
async def seeded(
    chronik: Chronik, cli_schema: str, make_pg_store: Callable[..., Awaitable[PostgresEventStore]]
) -> PostgresEventStore:
    first = chronik("init")
    assert first.code == 0, first.describe()
    store = await make_pg_store(schema=cli_schema)
    for n in range(3):  # release 1 writes: its schema is registered by the append
        await store.append(f"parcel-{n}", [ShippedV1(parcel=str(n), grams=250 * n)])
    return store


def test_list_shows_what_the_first_write_registered(
    chronik: Chronik, seeded: PostgresEventStore
) -> None:
    rows = chronik("schemas", "list", "--json", *RELEASE1).json()
    assert [(r["type"], r["schema_version"], r["current"]) for r in rows] == [
        ("post.Shipped", 1, True)
    ]
    assert rows[0]["uri"] == "urn:chronik:schema:post.Shipped:1"
    table = chronik("schemas", "list", *RELEASE1)
    assert table.stdout.splitlines()[1].split()[:3] == ["post.Shipped", "v1", "yes"]


def test_check_passes_for_the_release_that_wrote_it(
    chronik: Chronik, seeded: PostgresEventStore
) -> None:
    result = chronik("schemas", "check", *RELEASE1)
    assert result.code == 0, result.describe()
    assert "schemas check ok" in result.stdout


def test_a_model_changed_without_a_bump_fails_the_check_naming_the_field(
    chronik: Chronik, seeded: PostgresEventStore
) -> None:
    result = chronik("schemas", "check", *UNBUMPED)
    assert result.code == 1, result.describe()
    assert "ERROR   [model] post.Shipped v1: ShippedUnbumped changed without a version bump" in (
        result.stdout
    )
    assert "grams: removed" in result.stdout and "weight_kg: added as required" in result.stdout

    report = json.loads(chronik("schemas", "check", "--json", "--all", *UNBUMPED).stdout)
    assert report["ok"] is False
    model = [f for f in report["findings"] if f["check"] == "model"]
    assert [c["path"] for c in model[0]["details"]["changes"] if not c["compatible"]] == [
        "grams",
        "weight_kg",
    ]
    history = [f for f in report["findings"] if f["check"] == "history"]
    streams = sorted(f["details"]["stream_id"] for f in history)
    assert streams == ["parcel-0", "parcel-1", "parcel-2"]

    refused = chronik("schemas", "register", *UNBUMPED)
    assert refused.code == 1, refused.describe()
    assert "refused post.Shipped v1" in refused.stderr


def test_after_a_bump_with_an_upcaster_check_passes_and_register_records_it(
    chronik: Chronik, seeded: PostgresEventStore, tmp_path: Path
) -> None:
    result = chronik("schemas", "check", "--all", *BUMPED)
    assert result.code == 0, result.describe()
    registered = chronik("schemas", "register", "--json", *BUMPED).json()
    assert [(r["type"], r["schema_version"], r["status"]) for r in registered] == [
        ("post.Shipped", 2, "registered")
    ]
    rows = chronik("schemas", "list", "--json", *BUMPED).json()
    assert [(r["schema_version"], r["current"]) for r in rows] == [(1, False), (2, True)]

    exported = chronik("schemas", "export", "--out", str(tmp_path / "out"), *BUMPED)
    assert exported.code == 0, exported.describe()
    v1 = json.loads((tmp_path / "out" / "post.Shipped" / "v1.json").read_text())
    v2 = json.loads((tmp_path / "out" / "post.Shipped" / "v2.json").read_text())
    assert v1["$id"] == "urn:chronik:schema:post.Shipped:1" and "grams" in v1["properties"]
    assert v2["$id"] == "urn:chronik:schema:post.Shipped:2" and "weight_kg" in v2["properties"]
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert [(s["schema_version"], s["file"]) for s in index["schemas"]] == [
        (1, "post.Shipped/v1.json"),
        (2, "post.Shipped/v2.json"),
    ]
    bundle = chronik(
        "schemas", "export", "--base-url", "https://schemas.example.com/post", *BUMPED
    ).json()
    assert bundle["schemas"][1]["schema"]["$id"] == (
        "https://schemas.example.com/post/post.Shipped/v2.json"
    )


def test_a_bump_without_an_upcaster_fails(chronik: Chronik, seeded: PostgresEventStore) -> None:
    result = chronik("schemas", "check", "--app", "cli_schema_app:bumped_without_upcaster")
    assert result.code == 1, result.describe()
    assert "missing step post.Shipped v1->v2" in result.stdout


def test_usage_errors(chronik: Chronik, seeded: PostgresEventStore) -> None:
    both = chronik("schemas", "check", "--all", "--sample", "3", *RELEASE1)
    assert both.code == 2 and "not allowed with" in both.stderr


_CHANNEL_ID = re.compile(r"^[A-Za-z0-9_\-]+$")  # AsyncAPI 3.0: channel and operation keys
_COMPONENT_ID = re.compile(r"^[a-zA-Z0-9.\-_]+$")  # AsyncAPI 3.0: components keys


def resolve(document: dict[str, Any], pointer: str) -> Any:
    """A local JSON pointer (``#/a/b``) in ``document``; KeyError if it leads nowhere."""
    found: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        found = found[part.replace("~1", "/").replace("~0", "~")]
    return found


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def check_asyncapi(document: dict[str, Any], folder: Path) -> None:
    """The AsyncAPI 3.0 structure the export promises, and every $ref resolving."""
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and isinstance(document["info"]["version"], str)
    for channel_id, channel in document["channels"].items():
        assert _CHANNEL_ID.match(channel_id), channel_id
        assert channel["address"] == channel["bindings"]["kafka"]["topic"]
        assert channel["messages"], channel_id
    for operation_id, operation in document["operations"].items():
        assert _CHANNEL_ID.match(operation_id), operation_id
        assert operation["action"] in ("send", "receive")
        channel_ref = operation["channel"]["$ref"]
        # An operation's messages must be the channel's own (AsyncAPI 3.0 rule).
        assert all(m["$ref"].startswith(channel_ref + "/messages/") for m in operation["messages"])
    for message_id, message in document["components"]["messages"].items():
        assert _COMPONENT_ID.match(message_id), message_id
        headers = message["headers"]
        assert headers["type"] == "object" and set(headers["required"]) <= set(
            headers["properties"]
        )
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    for ref in refs(document):
        if ref.startswith("#/"):
            resolve(document, ref)
        else:  # an exported schema file, relative to the document
            schema = json.loads((folder / ref).read_text())
            assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", ref


def test_export_writes_an_asyncapi_document_of_the_relay_topics(
    chronik: Chronik, seeded: PostgresEventStore, tmp_path: Path
) -> None:
    out = tmp_path / "api"
    app = ("--app", "chronik.default_app:app")
    result = chronik("schemas", "export", "--out", str(out), "--topic-prefix", "bank.", *app)
    assert result.code == 0, result.describe()
    # post.Shipped is registered in this store but no aggregate of this app owns it.
    assert "no channel for post.Shipped" in result.stderr
    document = json.loads((out / "asyncapi.json").read_text())
    check_asyncapi(document, out)
    channels = {c["address"]: c for c in document["channels"].values()}
    assert set(channels) == {"bank.ledger", "bank.order", "bank.saga"}
    messages = document["components"]["messages"]
    ledger = [
        messages[ref["$ref"].rsplit("/", 1)[1]]
        for ref in channels["bank.ledger"]["messages"].values()
    ]
    deposited = next(m for m in ledger if m["name"] == "ledger.Deposited")
    version = deposited["headers"]["properties"]["ce_chronikschema"]["const"]
    assert deposited["payload"] == {"$ref": f"ledger.Deposited/v{version}.json"}
    assert deposited["headers"]["properties"]["ce_dataschema"]["const"] == (
        f"urn:chronik:schema:ledger.Deposited:{version}"
    )
    assert {m["name"] for m in ledger} == {
        "ledger.Opened", "ledger.Deposited", "ledger.Withdrawn", "ledger.Frozen",
        "ledger.Unfrozen", "ledger.Closed",
    }  # fmt: skip

    # The references must fail when a file is missing: the check is not vacuous.
    (out / deposited["payload"]["$ref"]).unlink()
    with pytest.raises(FileNotFoundError):
        check_asyncapi(document, out)
