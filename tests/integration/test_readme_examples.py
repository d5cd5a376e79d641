"""The README's Python examples run as written, against the test servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_the_readme_has_examples() -> None:
    # The quick start: the event store, then aggregates with time travel and a read model
    # (whose printed result test_readme_example_runs checks).
    assert len(BLOCKS) >= 2
    assert any("time travel" in block for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, pg_dsn: str, redis_url: str, tmp_path: Path) -> None:
    environment = {**os.environ, "DATABASE_URL": pg_dsn, "REDIS_URL": redis_url}
    environment["PYTHONPATH"] = os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[index]],
        cwd=tmp_path,  # nothing embedded may start in the checkout
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".chronik").exists(), "the example ignored the URLs it was given"
    if "time travel" in BLOCKS[index]:
        assert "3 69.50 100.00" in done.stdout, done.stdout
