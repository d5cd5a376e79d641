"""The checked-in sync modules are exactly what tools/async_to_sync.py writes now.

Edit the async module, run ``python tools/async_to_sync.py``, commit both: this
test fails when the second step was forgotten, so the sync API never drifts.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED_PACKAGES = ["eventstore", "snapshots", "aggregates", "projections"]


def _generated_files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for package in GENERATED_PACKAGES
        for path in sorted((root / package / "sync").glob("_[a-z]*.py"))
    }


def test_checked_in_sync_modules_are_current(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "async_to_sync.py"), "--root", str(tmp_path)],
        check=True,
        cwd=ROOT,
    )
    fresh = _generated_files(tmp_path)
    checked_in = _generated_files(ROOT)
    assert fresh, "the generator wrote nothing"
    assert sorted(checked_in) == sorted(fresh), "a sync module is missing or stale"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"run 'python tools/async_to_sync.py' and commit: {stale} differ"


def test_generated_modules_await_nothing_and_say_so() -> None:
    for name, text in _generated_files(ROOT).items():
        tree = ast.parse(text)
        assert "by tools/async_to_sync.py: do not edit" in (ast.get_docstring(tree) or ""), name
        for node in ast.walk(tree):
            assert not isinstance(
                node, ast.AsyncFunctionDef | ast.Await | ast.AsyncWith | ast.AsyncFor
            ), (name, ast.dump(node)[:80])
        assert "asyncio" not in text, name
