"""``chronik schemas``: list, register, check and export the app's event schemas."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from eventstore import (
    Event,
    SchemaRecord,
    event_json_schema,
    schema_file_name,
    schema_uri,
)
from messaging import TopicMapping, check_topic, schema_document

from ._asyncapi import asyncapi_document
from ._context import Context
from ._errors import ExitCode, UsageError
from ._output import print_json, print_table
from ._parsing import positive_int
from ._schema_check import DEFAULT_MAX_FAILURES, DEFAULT_SAMPLE, check_app_schemas


def register(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "schemas",
        parents=parents,
        help="event schemas: list, register, check before a deploy, export",
        description="The JSON Schema of every event type and version the app has written, "
        "kept in the event store's database.",
    )
    sub = group.add_subparsers(dest="schemas_command", metavar="COMMAND", required=True)

    listing = sub.add_parser(
        "list",
        parents=parents,
        help="registered types and versions",
        description="The registered schemas, by type and version; 'current' marks the "
        "versions of the app's event classes.",
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(handler=run_list)

    record = sub.add_parser(
        "register",
        parents=parents,
        help="record the current schema of every event class of the app",
        description="Record each event class's schema under its version. A compatible "
        "change (an optional field with a default, a new description) replaces the "
        "registered schema; an incompatible one is refused (exit 1) and needs a version "
        "bump with an upcaster.",
    )
    record.add_argument("--json", action="store_true", help="print a JSON list of outcomes")
    record.set_defaults(handler=run_register)

    check = sub.add_parser(
        "check",
        parents=parents,
        help="can this code read the stored history? (exit 1 if not)",
        description="Compare the app's event classes with the registered schemas, check "
        "that every stored (type, version) has an upcaster path, upcast and validate "
        "stored events, and look at snapshots and projections. Exit 1 on any error.",
    )
    how_many = check.add_mutually_exclusive_group()
    how_many.add_argument(
        "--sample",
        type=_count,
        default=DEFAULT_SAMPLE,
        metavar="N",
        help=f"per stored (type, version): N events spread over history plus one of every "
        f"distinct data shape (default {DEFAULT_SAMPLE})",
    )
    how_many.add_argument("--all", action="store_true", help="check every stored event")
    check.add_argument(
        "--max-failures",
        type=positive_int,
        default=DEFAULT_MAX_FAILURES,
        metavar="N",
        help=f"list at most N failing events one by one (default {DEFAULT_MAX_FAILURES})",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON (for CI)")
    check.set_defaults(handler=run_check)

    export = sub.add_parser(
        "export",
        parents=parents,
        help="write the JSON Schemas for consumers in other languages",
        description="Every registered (type, version) plus the app's current classes, as "
        "JSON Schema 2020-12 documents with a stable $id, and an AsyncAPI 3.0 document of "
        "the topics the relay publishes them to. With --out: one file per version, "
        "DIR/<type>/v<version>.json, DIR/index.json and DIR/asyncapi.json; without: one "
        "JSON document on stdout.",
    )
    export.add_argument("--out", type=Path, metavar="DIR", help="folder to write into")
    export.add_argument(
        "--base-url",
        metavar="URL",
        help="where DIR will be served: $id becomes URL/<type>/v<version>.json "
        "(env CHRONIK_SCHEMA_BASE_URL, as for the relay's dataschema; default: "
        "urn:chronik:schema:<type>:<version>)",
    )
    export.add_argument(
        "--topic-prefix",
        default="chronik.",
        metavar="PREFIX",
        help="the relay's --topic-prefix, for the AsyncAPI channels (default: chronik.)",
    )
    export.set_defaults(handler=run_export)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


async def run_list(ctx: Context, args: argparse.Namespace) -> int:
    store = await ctx.services.store()
    records = await store.schemas.list()
    current = {(c.event_type, c.event_version) for c in ctx.app().event_classes()}
    rows: list[dict[str, Any]] = [
        {
            "type": r.event_type,
            "schema_version": r.schema_version,
            "current": r.key in current,
            "fingerprint": r.fingerprint,
            "model": r.model,
            "uri": r.uri,
            "registered_at": r.registered_at,
            "updated_at": r.updated_at,
        }
        for r in records
    ]
    if args.json:
        print_json(rows, ctx.out)
        return 0
    print_table(
        ["type", "version", "current", "fingerprint", "registered", "model"],
        [
            [
                r["type"],
                f"v{r['schema_version']}",
                "yes" if r["current"] else "-",
                r["fingerprint"][:12],
                r["registered_at"],
                r["model"],
            ]
            for r in rows
        ],
        ctx.out,
        empty="(no schemas registered: run 'chronik schemas register')",
    )
    return 0


async def run_register(ctx: Context, args: argparse.Namespace) -> int:
    classes = ctx.app().event_classes()
    store = await ctx.services.store()
    outcomes = await store.schemas.register(SchemaRecord.of(cls) for cls in classes)
    rows: list[dict[str, Any]] = [
        {
            "type": o.record.event_type,
            "schema_version": o.record.schema_version,
            "status": str(o.status),
            "changes": [str(change) for change in o.changes],
        }
        for o in outcomes
    ]
    if args.json:
        print_json(rows, ctx.out)
    else:
        print_table(
            ["type", "version", "status", "changes"],
            [
                [r["type"], f"v{r['schema_version']}", r["status"], "; ".join(r["changes"])]
                for r in rows
            ],
            ctx.out,
            empty="(the app has no event classes)",
        )
    refused = [r for r in rows if r["status"] == "refused"]
    for row in refused:
        ctx.note(
            f"refused {row['type']} v{row['schema_version']}: incompatible with the "
            "registered schema of that version; bump event_version and add an upcaster"
        )
    return ExitCode.FAILURE if refused else ExitCode.OK


async def run_check(ctx: Context, args: argparse.Namespace) -> int:
    app = ctx.app()
    store = await ctx.services.store()
    report = await check_app_schemas(
        app,
        store,
        snapshots=await ctx.services.snapshots(),
        sample=None if args.all else args.sample,
        max_failures=args.max_failures,
    )
    if args.json:
        print_json(report.as_dict(), ctx.out)
    else:
        ctx.say(report.render())
    return ExitCode.OK if report.ok else ExitCode.FAILURE


async def run_export(ctx: Context, args: argparse.Namespace) -> int:
    app = ctx.app()
    try:
        topics = TopicMapping(prefix=check_topic(args.topic_prefix + "x", "--topic-prefix")[:-1])
    except ValueError as error:
        raise UsageError(str(error), "use letters, digits, '.', '_' and '-'") from None
    store = await ctx.services.store()
    base_url = args.base_url or ctx.config.schema_base_url
    documents = export_documents(app.event_classes(), await store.schemas.list(), base_url)
    asyncapi, notes = asyncapi_document(app, documents, topics)
    for note in notes:
        ctx.note(note)
    if args.out is None:
        print_json({"schemas": documents, "asyncapi": asyncapi}, ctx.out)
        return 0
    _write_export(args.out, documents, asyncapi)
    ctx.say(f"wrote {len(documents)} schema(s), index.json and asyncapi.json to {args.out}\n")
    return 0


def _write_export(out: Path, documents: list[dict[str, Any]], asyncapi: dict[str, Any]) -> None:
    # A one-shot command: blocking file writes are fine here.
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder", "give a folder path")
    index = []
    for document in documents:
        path = out / document["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document["schema"], indent=2, sort_keys=True) + "\n")
        index.append({key: value for key, value in document.items() if key != "schema"})
    (out / "index.json").write_text(json.dumps({"schemas": index}, indent=2) + "\n")
    (out / "asyncapi.json").write_text(json.dumps(asyncapi, indent=2) + "\n")


def export_documents(
    classes: list[type[Event]], records: list[SchemaRecord], base_url: str | None
) -> list[dict[str, Any]]:
    """One document per (type, version): the current class's schema where there is
    one, the registered schema for older versions."""
    schemas: dict[tuple[str, int], tuple[dict[str, Any], bool]] = {
        record.key: (record.json_schema, False) for record in records
    }
    for cls in classes:
        schemas[(cls.event_type, cls.event_version)] = (event_json_schema(cls), True)
    documents = []
    for (event_type, version), (schema, current) in sorted(schemas.items()):
        uri = schema_uri(event_type, version, base=base_url)
        documents.append(
            {
                "type": event_type,
                "schema_version": version,
                "current": current,
                "uri": uri,
                "file": schema_file_name(event_type, version),
                "schema": schema_document(event_type, version, schema, base_url),
            }
        )
    return documents
