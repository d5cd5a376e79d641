"""Wiring and the ``chronik`` command: config, app discovery, embedded defaults, the demo.

The names below load on first use: the ``chronik`` command starts by importing
this package, and until its own code runs (taking the working directory off
sys.path, turning Ctrl-C into a one-line "interrupted"), it should import
nothing else.
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from ._app import App
    from ._config import Config
    from ._demo import SeedReport
    from ._entry import main
    from ._errors import CommandError, ExitCode, NotFoundError, UnavailableError, UsageError

__all__ = [
    "App",
    "CommandError",
    "Config",
    "ExitCode",
    "NotFoundError",
    "SeedReport",
    "UnavailableError",
    "UsageError",
    "main",
]

_MODULES = {
    "App": "._app",
    "CommandError": "._errors",
    "Config": "._config",
    "ExitCode": "._errors",
    "NotFoundError": "._errors",
    "SeedReport": "._demo",
    "UnavailableError": "._errors",
    "UsageError": "._errors",
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
