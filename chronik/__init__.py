"""Wiring and the ``chronik`` command: config, app discovery, embedded defaults, the demo."""

from ._app import App
from ._config import Config
from ._demo import SeedReport
from ._errors import CommandError, ExitCode, NotFoundError, UnavailableError, UsageError
from ._schema_check import Finding, SchemaReport, check_app_schemas
from ._version import chronik_version as _chronik_version
from .cli import main

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
