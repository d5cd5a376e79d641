"""The pre-deploy schema check inside your own test suite (no plugin needed).

::

    from chronik.testing import check_schemas
    from billing.app import app

    def test_this_code_reads_production_history(prod_copy_dsn: str) -> None:
        check_schemas(app, prod_copy_dsn, check_all=True)

Point it at a fixture database, or at a database restored from a dump of
production (``pg_restore -d "$DSN" prod.dump``): it runs exactly what ``chronik
schemas check`` runs and raises ``SchemaCheckFailed`` (an ``AssertionError``)
with the readable report when anything is an error.  In an async test, await
``acheck_schemas`` instead.  The event store schema is migrated if it is older
than this code (the registry table arrived in migration 6), so use a copy.
"""

from __future__ import annotations

import asyncio

from eventstore import DEFAULT_SCHEMA, EventStore, PostgresEventStore
from snapshots import PostgresSnapshotStore

from ._app import App
from ._schema_check import DEFAULT_MAX_FAILURES, DEFAULT_SAMPLE, SchemaReport, check_app_schemas

__all__ = ["SchemaCheckFailed", "acheck_schemas", "check_schemas"]


class SchemaCheckFailed(AssertionError):
    """The schema check found errors; ``report`` holds everything it found."""

    def __init__(self, report: SchemaReport) -> None:
        super().__init__("schema check failed:\n" + report.render())
        self.report = report


async def acheck_schemas(
    app: App,
    target: str | EventStore,
    *,
    schema: str = DEFAULT_SCHEMA,
    sample: int = DEFAULT_SAMPLE,
    check_all: bool = False,
    max_failures: int = DEFAULT_MAX_FAILURES,
    fail_on_warnings: bool = False,
) -> SchemaReport:
    """Check ``app`` against a DSN or an open event store; return the report or raise.

    ``check_all`` reads every stored event instead of the sample; with
    ``fail_on_warnings`` stale snapshots and orphaned handlers fail the test too.
    """
    if isinstance(target, EventStore):
        return _verdict(await _run(app, target, sample, check_all, max_failures), fail_on_warnings)
    async with await PostgresEventStore.connect(target, schema=schema, pool_size=2) as store:
        return _verdict(await _run(app, store, sample, check_all, max_failures), fail_on_warnings)


def check_schemas(
    app: App,
    target: str,
    *,
    schema: str = DEFAULT_SCHEMA,
    sample: int = DEFAULT_SAMPLE,
    check_all: bool = False,
    max_failures: int = DEFAULT_MAX_FAILURES,
    fail_on_warnings: bool = False,
) -> SchemaReport:
    """``acheck_schemas`` for plain (sync) tests: connects to the DSN ``target``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("check_schemas runs its own event loop: await acheck_schemas here")
    return asyncio.run(
        acheck_schemas(
            app,
            target,
            schema=schema,
            sample=sample,
            check_all=check_all,
            max_failures=max_failures,
            fail_on_warnings=fail_on_warnings,
        )
    )


async def _run(
    app: App, store: EventStore, sample: int, check_all: bool, max_failures: int
) -> SchemaReport:
    snapshots = (
        PostgresSnapshotStore.from_event_store(store)
        if isinstance(store, PostgresEventStore)
        else None
    )
    return await check_app_schemas(
        app,
        store,
        snapshots=snapshots,
        sample=None if check_all else sample,
        max_failures=max_failures,
    )


def _verdict(report: SchemaReport, fail_on_warnings: bool) -> SchemaReport:
    if not report.ok or (fail_on_warnings and report.warnings):
        raise SchemaCheckFailed(report)
    return report
