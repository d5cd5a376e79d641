"""chronik builds as a wheel that installs and works in a clean virtual environment.

One module fixture builds the wheel from a copy of the checkout (offline: no build
isolation) and installs it, without dependencies, into a new venv that borrows the
test environment's third-party packages through a ``.pth`` line.  The checkout is
never on that venv's path, so the tests see only what the wheel ships.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PACKAGES = [
    "upcasters",
    "eventstore",
    "snapshots",
    "aggregates",
    "projections",
    "messaging",
    "sagas",
    "chronik",
]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _run(args: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    return done


def _can_build_offline() -> str | None:
    try:
        import build  # noqa: F401
        import setuptools
    except ImportError as missing:
        return f"{missing.name} is not installed (pip install -e '.[dev]')"
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    if (major, minor) < (70, 1):
        try:
            import wheel  # noqa: F401
        except ImportError:
            return f"setuptools {setuptools.__version__} needs the wheel package to build wheels"
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = _can_build_offline()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in [*PACKAGES, "benchmarks"]:
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = work / "dist"
    done = _run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(source),
        ],
        cwd=work,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = dist.glob("chronik-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Iterator[Path]:
    home = wheel.parent.parent / "venv"
    done = _run([sys.executable, "-m", "venv", "--without-pip", str(home)], cwd=home.parent)
    assert done.returncode == 0, done.stderr
    python = home / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=home,
    ).stdout.strip()
    # The dependencies (pydantic, psycopg...) come from the test environment; the
    # venv's own site-packages come first on the path, so chronik is the wheel's.
    (Path(purelib) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        cwd=home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield home


def test_the_wheel_ships_every_package_with_its_type_marker(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        assert f"{package}/__init__.py" in names
        assert f"{package}/py.typed" in names, package
    assert not any(name.startswith(("tests/", "examples/", "docs/")) for name in names)
    assert wheel.name == f"chronik-{VERSION}-py3-none-any.whl"


def test_the_installed_command_reports_its_version(venv: Path) -> None:
    done = _run([str(venv / "bin" / "chronik"), "--version"], cwd=venv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"chronik {VERSION}"
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import chronik; print(chronik.__file__)"], cwd=venv
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr


def test_user_code_type_checks_strictly_against_the_wheel(venv: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    user = venv / "user"
    user.mkdir()
    shutil.copy(HERE / "typed_user_module.py", user / "service.py")
    # The same code with a type error the annotations must catch.
    broken = (user / "service.py").read_text().replace("Tallied(by=by)", 'Tallied(by="two")')
    (user / "broken.py").write_text(broken)

    # The example services are user code too.
    for example in ("shopping_cart", "bank"):
        shutil.copytree(ROOT / "examples" / example, user / example)
    # What a user's config needs: mongomock-motor (used by an example) ships no types.
    (user / "mypy.ini").write_text(
        "[mypy]\nstrict = True\n\n[mypy-mongomock_motor.*]\nignore_missing_imports = True\n"
    )
    # One run for all (the dependencies are analysed once): only broken.py may fail.
    done = _run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--cache-dir",
            str(user / ".cache"),
            "--python-executable",
            str(venv / "bin" / "python"),
            "service.py",
            "broken.py",
            "shopping_cart",
            "bank",
        ],
        cwd=user,  # only the mypy.ini above, and the checkout is not on the path
    )
    errors = [line for line in done.stdout.splitlines() if ": error: " in line]
    assert done.returncode == 1 and errors, done.stdout + done.stderr
    assert all(line.startswith("broken.py:") for line in errors), done.stdout
    assert 'Argument "by" to "Tallied" has incompatible type "str"' in done.stdout
