"""Ctrl-C in the windows of ``chronik.cli.run`` a real process rarely hits.

A signal lands at a bytecode boundary; these tests raise ``KeyboardInterrupt``
at the exact boundary instead of hoping a signal does (the subprocess tests in
``tests/cli/test_cli_interrupts.py`` cover the ordinary moments).
"""

from __future__ import annotations

import asyncio.runners
import contextlib
import gc
import signal
import warnings

import pytest

from chronik import _entry, cli
from chronik._interrupts import Interrupts


def test_ctrl_c_while_asyncio_run_makes_its_loop_prints_one_line_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # asyncio.run makes its loop, then the task of the command's coroutine: a
    # KeyboardInterrupt in between leaves that coroutine never started.
    make_loop = asyncio.runners.Runner._lazy_init

    def interrupted(self: asyncio.runners.Runner) -> None:
        make_loop(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(asyncio.runners.Runner, "_lazy_init", interrupted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli.run(["projections", "status"])
        gc.collect()
    assert code == 130
    assert capsys.readouterr().err.splitlines() == ["chronik: error: interrupted"]
    assert [str(w.message) for w in caught] == []


def test_ctrl_c_swallowed_by_a_library_while_importing_still_ends_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler in this test process")

    def import_with_a_bare_except(cwd: object = None) -> None:
        # What a bare 'except:' in a dependency does with a KeyboardInterrupt:
        with contextlib.suppress(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_entry, "isolate_from_cwd", import_with_a_bare_except)
    assert _entry.main(["--version"]) == 130
    assert capsys.readouterr().err == "chronik: error: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


async def test_a_cancellation_swallowed_on_the_way_still_reports_the_interrupt() -> None:
    # The command ignores the cancel a Ctrl-C sends (asyncio.wait_for's race in
    # 3.11 does that): the command must still end as interrupted, not as done.
    task = asyncio.current_task()
    assert task is not None
    with Interrupts(task).installed() as interrupts:
        interrupts._on_signal(signal.SIGINT)
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            task.uncancel()
        assert interrupts.cancelled and interrupts.received == "SIGINT"
