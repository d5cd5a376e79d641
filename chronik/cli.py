"""The ``chronik`` command: inspect, time-travel, replay and rebuild an event-sourced app."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from . import (
    _cmd_cdc,
    _cmd_consume,
    _cmd_deadletters,
    _cmd_demo,
    _cmd_projections,
    _cmd_relay,
    _cmd_run,
    _cmd_sagas,
    _cmd_schemas,
    _cmd_state,
    _cmd_store,
    _cmd_topics,
    _cmd_trace,
)
from ._config import Config
from ._context import Context
from ._entry import main as entry_main
from ._errors import EXIT_CODES_HELP, ExitCode, Interrupted, UsageError, classify
from ._interrupts import Interrupts
from ._logs import json_handler
from ._output import printable, printable_lines
from ._parsing import Parser, global_options
from ._services import Services
from ._version import chronik_version

_EPILOG = f"""\
Start with 'chronik demo' (seeds the embedded database), then 'chronik streams'.
Without URLs chronik runs on embedded servers kept in ./.chronik.

{EXIT_CODES_HELP}
"""


def build_parser() -> Parser:
    parser = Parser(
        prog="chronik",
        description="Inspect, time-travel, replay and rebuild a chronik event-sourced app.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[global_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"chronik {chronik_version()}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", parser_class=Parser
    )
    parents = [global_options(suppress=True)]
    for module in (
        _cmd_store,
        _cmd_state,
        _cmd_projections,
        _cmd_deadletters,
        _cmd_sagas,
        _cmd_run,
        _cmd_demo,
        _cmd_schemas,
        _cmd_relay,
        _cmd_topics,
        _cmd_cdc,
        _cmd_consume,
        _cmd_trace,
    ):
        module.register(commands, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    return entry_main(argv)


def run(argv: Sequence[str] | None) -> int:
    """The command, once ``_entry.main`` has prepared the process."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "handler", None) is None:
            raise UsageError("no command given", "see 'chronik --help' for the commands")
        config = Config.resolve(args, os.environ)
    except UsageError as error:
        _report(str(error))
        return ExitCode.USAGE
    except SystemExit as done:
        # --help and --version end through SystemExit(0).
        return done.code if isinstance(done.code, int) else ExitCode.USAGE
    _configure_logging(config.debug, getattr(args, "log_format", None) or "text")
    command = _run(config, args)
    try:
        return asyncio.run(command)
    except KeyboardInterrupt:
        # A Ctrl-C while asyncio.run is still making its loop, before it turned the
        # coroutine into a task, leaves the coroutine never started: closed here,
        # or Python adds a "coroutine '_run' was never awaited" warning under the
        # one line.
        if inspect.getcoroutinestate(command) == inspect.CORO_CREATED:
            command.close()
        _report("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader went away ('chronik streams | head'): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return ExitCode.FAILURE
    except Exception as error:
        code, message = classify(_unwrap(error), debug=config.debug)
        if config.debug:
            trace = "".join(traceback.format_exception(error))
            sys.stderr.write(printable_lines(config.mask(trace)))
        _report(config.mask(message))
        return code


async def _run(config: Config, args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    with Interrupts(task).installed() as interrupts:
        try:
            async with Services(config) as services:
                context = Context(config, services)
                try:
                    code = int(await args.handler(context, args))
                finally:
                    for note in services.notes:
                        context.note(note)
            if interrupts.cancelled:
                # Something on the way swallowed the cancellation (asyncio.wait_for's
                # race in 3.11): the person still asked to stop, so say so.
                raise Interrupted(f"interrupted ({interrupts.received})")
            return code
        except asyncio.CancelledError:
            if interrupts.received is None:
                raise
            # Every 'async with' above has unwound: connections closed, embedded
            # servers stopped.  Report it like any other ending.
            task.uncancel()
            raise Interrupted(f"interrupted ({interrupts.received})") from None


def _configure_logging(debug: bool, log_format: str = "text") -> None:
    # Library warnings (a snapshot write that failed, a runner restart) reach the
    # person at the terminal on stderr; --debug shows chronik's own detail too.
    if log_format == "json":
        handler = json_handler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Printable("chronik: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("chronik").setLevel(logging.DEBUG if debug else logging.WARNING)
    # librdkafka's own log (every failed connection attempt) is for --debug; the
    # relay reports what matters in one line.
    logging.getLogger("chronik.messaging.kafka").setLevel(
        logging.DEBUG if debug else logging.CRITICAL
    )


class _Printable(logging.Formatter):
    """Log lines name streams and events: keep their control characters off the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable_lines(super().format(record))


def _unwrap(error: BaseException) -> BaseException:
    # A task group that failed for one reason reports that reason, not the group.
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _report(message: str) -> None:
    sys.stderr.write(f"chronik: error: {printable(message)}\n")
    sys.stderr.flush()
