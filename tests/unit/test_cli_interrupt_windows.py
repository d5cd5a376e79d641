"""Ctrl-C in the windows of ``chronik.cli.run`` a real process rarely hits.

A signal lands at a bytecode boundary; these tests raise ``KeyboardInterrupt``
at the exact boundary instead of hoping a signal does (the subprocess tests in
``tests/cli/test_cli_interrupts.py`` cover the ordinary moments).
"""

from __future__ import annotations

import asyncio.runners
import gc
import warnings

import pytest

from chronik import cli


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
