"""Wiring and the ``chronik`` command: config, app discovery, embedded defaults, the demo.

The names below load on first use: the ``chronik`` command starts by importing
this package, and until its own code runs (taking the working directory off
sys.path, turning Ctrl-C into a one-line "interrupted"), it should import
nothing heavy.
"""

from __future__ import annotations

import importlib
import typing

from ._version import chronik_version as _chronik_version

if typing.TYPE_CHECKING:
    from ._app import App
    from ._config import Config
    from ._demo import SeedReport
    from ._entry import main
    from ._errors import CommandError, ExitCode, NotFoundError, UnavailableError, UsageError
    from ._schema_check import Finding, SchemaReport, check_app_schemas

#: The installed version (package metadata; a checkout's pyproject.toml without it).
__version__ = _chronik_version()

__all__ = [
    "App",
    "CommandError",
    "Config",
    "ExitCode",
    "Finding",
    "NotFoundError",
    "SchemaReport",
    "SeedReport",
    "UnavailableError",
    "UsageError",
    "check_app_schemas",
    "main",
]

_MODULES = {
    "App": "._app",
    "CommandError": "._errors",
    "Config": "._config",
    "ExitCode": "._errors",
    "Finding": "._schema_check",
    "NotFoundError": "._errors",
    "SchemaReport": "._schema_check",
    "SeedReport": "._demo",
    "UnavailableError": "._errors",
    "UsageError": "._errors",
    "check_app_schemas": "._schema_check",
    "main": "._entry",
}


def __getattr__(name: str) -> typing.Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'chronik' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
