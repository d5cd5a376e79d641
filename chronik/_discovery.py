"""Finding the app: ``--app``, then ``CHRONIK_APP``, then pyproject.toml, then the shipped one."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ._app import App
from ._errors import CommandError, UnavailableError, UsageError

DEFAULT_APP = "chronik.default_app:app"


@dataclass(frozen=True, slots=True)
class AppReference:
    """Where the app comes from, and how we learned it (for messages)."""

    target: str
    source: str


def find_app_reference(explicit: str | None, start: Path | None = None) -> AppReference:
    """``explicit`` (flag or environment) wins; then the nearest pyproject.toml; then ours."""
    if explicit:
        return AppReference(explicit, "--app / CHRONIK_APP")
    found = _from_pyproject(start or Path.cwd())
    if found is not None:
        return found
    return AppReference(DEFAULT_APP, "the shipped ledger/order app")


def _from_pyproject(start: Path) -> AppReference | None:
    for directory in (start.resolve(), *start.resolve().parents):
        path = directory / "pyproject.toml"
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise UsageError(
                f"cannot read {path}: {error}", "fix the file or pass --app module:attr"
            ) from error
        # The nearest pyproject.toml is the project; we do not look past it.
        target = data.get("tool", {}).get("chronik", {}).get("app")
        if target is None:
            return None
        if not isinstance(target, str):
            raise UsageError(
                f"[tool.chronik] app in {path} must be a string like 'package.module:app'",
                "fix pyproject.toml",
            )
        return AppReference(target, f"[tool.chronik] in {path}")
    return None


def import_app_module(module_name: str, cwd: Path | None = None) -> ModuleType:
    """Import the app module from sys.path, or else from the working directory.

    Only this module (its top-level package) may come from the working directory:
    the command never puts the directory on sys.path (see ``isolate_from_cwd``), so a
    stray ``pgserver.py`` there cannot stand in for a dependency.  Its submodules
    are found through the package itself; its other imports go through sys.path.
    """
    top = module_name.partition(".")[0]
    if top not in sys.modules and importlib.util.find_spec(top) is None:
        here = str((cwd or Path.cwd()).resolve())
        spec = importlib.machinery.PathFinder.find_spec(top, [here])
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            sys.modules[top] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[top]
                raise
    return importlib.import_module(module_name)


def load_app(reference: AppReference) -> App:
    """Import ``module:attr`` and check it is an App (or a function returning one)."""
    module_name, _, attribute = reference.target.partition(":")
    if not module_name or not attribute or module_name.startswith("."):
        raise UsageError(
            f"app reference {reference.target!r} (from {reference.source}) is not 'module:attr'",
            "write it as 'package.module:app'",
        )
    failed = f"app module {module_name!r} failed to import"
    try:
        module = import_app_module(module_name)
    except ModuleNotFoundError as error:
        if reference.target == DEFAULT_APP:
            raise UnavailableError(
                f"the shipped ledger/order app cannot be imported ({error})",
                "the chronik installation is incomplete: reinstall it, or pass --app",
            ) from error
        if error.name and (module_name + ".").startswith(error.name + "."):
            raise UsageError(
                f"cannot import app module {module_name!r} (from {reference.source})",
                "check the name and that its directory is the working directory or on PYTHONPATH",
            ) from error
        raise _app_failed(reference, failed, error) from error
    except Exception as error:
        raise _app_failed(reference, failed, error) from error
    try:
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part)
    except AttributeError as error:
        raise UsageError(
            f"module {module_name!r} has no attribute {attribute!r} (from {reference.source})",
            "point the reference at an App object",
        ) from error
    if isinstance(value, type):
        # Calling a class (an aggregate, a projection) would only fail obscurely.
        raise UsageError(
            f"{reference.target} (from {reference.source}) is the class "
            f"{value.__name__}, not a chronik.App",
            "point the reference at an App object, e.g. app = App(aggregates=[...])",
        )
    if not isinstance(value, App) and callable(value):
        try:
            value = value()
        except Exception as error:
            raise _app_failed(reference, f"app factory {reference.target} failed", error) from error
    if not isinstance(value, App):
        raise UsageError(
            f"{reference.target} (from {reference.source}) is a {type(value).__name__}, "
            "not a chronik.App",
            "point the reference at an App object (or a function returning one)",
        )
    return value


def _app_failed(reference: AppReference, doing: str, error: Exception) -> CommandError:
    """The app's own code failed: say so, with its error, so nobody suspects chronik."""
    return CommandError(
        f"{doing} (from {reference.source}): "
        f"{type(error).__name__}: {' '.join(str(error).split())}",
        "fix the app module",
    )
