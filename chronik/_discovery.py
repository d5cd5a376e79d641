"""Finding the app: ``--app``, then ``CHRONIK_APP``, then pyproject.toml, then the shipped one."""

from __future__ import annotations

import importlib
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._app import App
from ._errors import UnavailableError, UsageError

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


def load_app(reference: AppReference) -> App:
    """Import ``module:attr`` and check it is an App (or a callable returning one)."""
    module_name, _, attribute = reference.target.partition(":")
    if not module_name or not attribute:
        raise UsageError(
            f"app reference {reference.target!r} (from {reference.source}) is not 'module:attr'",
            "write it as 'package.module:app'",
        )
    # Like other app runners, let 'module:attr' name a module in the working directory.
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if reference.target == DEFAULT_APP:
            raise UnavailableError(
                f"the shipped ledger/order app cannot be imported ({error})",
                "its aggregates or projections package has not landed yet; pass --app",
            ) from error
        if error.name and module_name.startswith(error.name):
            raise UsageError(
                f"cannot import app module {module_name!r} (from {reference.source})",
                "check the name and that its directory is on PYTHONPATH",
            ) from error
        raise
    try:
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part)
    except AttributeError as error:
        raise UsageError(
            f"module {module_name!r} has no attribute {attribute!r} (from {reference.source})",
            "point the reference at an App object",
        ) from error
    if not isinstance(value, App) and callable(value):
        value = value()
    if not isinstance(value, App):
        raise UsageError(
            f"{reference.target} is a {type(value).__name__}, not a chronik.App",
            "point the reference at an App object (or a function returning one)",
        )
    return value
