"""The pre-deploy schema check against real PostgreSQL history."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from cli.cli_schema_app import (
    ShippedV1,
    bumped,
    bumped_without_upcaster,
    release1,
    returns_unhandled,
    unbumped,
)

from chronik import SchemaReport, check_app_schemas
from chronik.testing import SchemaCheckFailed, acheck_schemas, check_schemas
from eventstore import NewEvent, PostgresEventStore

MakeStore = Callable[..., Awaitable[PostgresEventStore]]
STREAMS, PER_STREAM = 30, 100
ODD_STREAM, ODD_VERSION = "parcel-17", 42


@pytest.fixture(scope="module")
async def history(make_pg_store: MakeStore) -> PostgresEventStore:
    """3,000 v1 events as release 1 wrote them, and one of an older, odd shape."""
    store = await make_pg_store()
    for stream in range(STREAMS):
        stream_id = f"parcel-{stream}"
        batch: list[NewEvent | ShippedV1] = [
            ShippedV1(parcel=f"{stream}-{n}", grams=100 + n) for n in range(PER_STREAM)
        ]
        if stream_id == ODD_STREAM:
            # A hand-written import from before release 1: "weight", not "grams".
            batch[ODD_VERSION - 1] = NewEvent("post.Shipped", {"parcel": "x", "weight": "2kg"})
        await store.append(stream_id, batch)
    return store


def errors(report: SchemaReport, check: str) -> list[dict[str, object]]:
    return [
        {"subject": f.subject, "message": f.message, **f.details}
        for f in report.errors
        if f.check == check
    ]


async def test_the_release_that_wrote_the_history_passes_except_the_odd_event(
    history: PostgresEventStore,
) -> None:
    report = await check_app_schemas(release1, history, sample=5)
    assert [(e["stream_id"], e["version"]) for e in errors(report, "history")] == [
        (ODD_STREAM, ODD_VERSION)
    ]
    assert not errors(report, "model") and not errors(report, "upcasters")


async def test_a_model_changed_without_a_version_bump_fails_naming_the_fields(
    history: PostgresEventStore,
) -> None:
    report = await check_app_schemas(unbumped, history, sample=5)
    [model] = errors(report, "model")
    assert model["subject"] == "post.Shipped v1"
    assert "(grams, weight_kg)" in str(model["message"])
    assert {(c["path"], c["kind"]) for c in model["changes"]} == {  # type: ignore[attr-defined]
        ("grams", "removed"),
        ("weight_kg", "added as required"),
    }
    assert "grams: removed" in report.render()


async def test_an_upcaster_that_raises_on_one_old_shape_among_thousands_is_found(
    history: PostgresEventStore,
) -> None:
    stored = await history.stored_schema_versions()
    assert stored == {("post.Shipped", 1): STREAMS * PER_STREAM}
    [odd] = [e async for e in history.read_stream(ODD_STREAM, ODD_VERSION, ODD_VERSION)]

    sampled = await check_app_schemas(bumped, history, sample=5)
    everything = await check_app_schemas(bumped, history, sample=None)
    for report in (sampled, everything):
        [failure] = errors(report, "history")
        assert (failure["stream_id"], failure["version"]) == (ODD_STREAM, ODD_VERSION)
        assert failure["position"] == str(odd.position)
        assert failure["error_type"] == "UpcastError"
        assert "'grams'" in str(failure["error"]) and "post.Shipped v1->v2" in str(failure["error"])
        assert "raised KeyError" in str(failure["message"])
        assert not errors(report, "model") and not errors(report, "upcasters")
    # The sample found it by its shape, reading a fraction of the history.
    assert sampled.stats["events_checked"] < 20
    assert everything.stats["events_checked"] == STREAMS * PER_STREAM


async def test_after_the_bump_with_an_upcaster_a_clean_history_passes(
    make_pg_store: MakeStore,
) -> None:
    store = await make_pg_store()
    await store.append("parcel-a", [ShippedV1(parcel="a", grams=1500)])
    assert (await check_app_schemas(bumped, store)).ok
    failed = await check_app_schemas(bumped_without_upcaster, store)
    [gap] = errors(failed, "upcasters")[-1:]
    assert gap["subject"] == "post.Shipped v1" and "missing step post.Shipped v1->v2" in str(
        gap["message"]
    )
    # Without an upcaster the v1 event cannot load either.
    assert [e["stream_id"] for e in errors(failed, "history")] == ["parcel-a"]


async def test_a_type_a_projection_must_handle_but_does_not_fails(
    make_pg_store: MakeStore,
) -> None:
    store = await make_pg_store()
    report = await check_app_schemas(returns_unhandled, store)
    assert [(e["subject"], e["type"]) for e in errors(report, "projections")] == [
        ("parcels", "post.Returned")
    ]


async def test_the_async_helper_raises_with_the_report(history: PostgresEventStore) -> None:
    with pytest.raises(SchemaCheckFailed) as raised:
        await acheck_schemas(bumped, history)
    assert ODD_STREAM in str(raised.value) and raised.value.report.errors


@pytest.fixture(scope="module")
async def clean_schema(make_pg_store: MakeStore) -> str:
    store = await make_pg_store(schema=f"t_{uuid.uuid4().hex[:12]}")
    await store.append("parcel-b", [ShippedV1(parcel="b", grams=10)])
    return store.schema


def test_the_sync_helper_passes_and_fails_against_a_database(
    pg_dsn: str, clean_schema: str
) -> None:
    report = check_schemas(bumped, pg_dsn, schema=clean_schema, check_all=True)
    assert report.ok and report.stats["events_checked"] == 1
    with pytest.raises(SchemaCheckFailed, match=r"grams, weight_kg"):
        check_schemas(unbumped, pg_dsn, schema=clean_schema)
