"""Running the real ``chronik`` command as a subprocess, for the CLI tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.describe()
        return json.loads(self.stdout)

    def describe(self) -> str:
        return (
            f"chronik {' '.join(self.args)} -> exit {self.code}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def base_environment(tmp: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DATABASE_URL",
            "REDIS_URL",
            "MONGO_URL",
            "KAFKA_BOOTSTRAP_SERVERS",
            "CHRONIK_APP",
            "CHRONIK_SCHEMA",
            "CHRONIK_DATA_DIR",
        }
    }
    # The checkout first: an editable install made before the packages had files
    # would otherwise resolve some of them as empty namespace packages.
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HERE)])
    env["CHRONIK_DATA_DIR"] = str(tmp / ".chronik")
    if os.environ.get("MONGO_URL"):
        env["MONGO_URL"] = os.environ["MONGO_URL"]
    return env


class Chronik:
    """``chronik(*args)`` runs ``python -m chronik *args`` to completion; ``start`` runs it
    in the background (for the long-running ``run``)."""

    def __init__(self, env: Mapping[str, str], cwd: Path) -> None:
        self.env = dict(env)
        self.cwd = cwd

    def __call__(
        self, *args: str, extra_env: Mapping[str, str] | None = None, timeout: float = 90
    ) -> Result:
        completed = subprocess.run(
            [sys.executable, "-m", "chronik", *args],
            env={**self.env, **(extra_env or {})},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(tuple(args), completed.returncode, completed.stdout, completed.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "chronik", *args],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
