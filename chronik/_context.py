"""What every command handler receives: config, connections, the app, and its output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from aggregates import Repository

from ._app import App
from ._config import Config
from ._discovery import find_app_reference, load_app
from ._output import printable_lines
from ._read_models import ReadModels
from ._services import Services


@dataclass
class Context:
    config: Config
    services: Services
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _app: App | None = None
    _read_models: ReadModels | None = None

    def app(self) -> App:
        """The user's app, imported on first use (commands that only read the store skip it)."""
        if self._app is None:
            self._app = load_app(find_app_reference(self.config.app))
        return self._app

    @property
    def read_models(self) -> ReadModels:
        if self._read_models is None:
            self._read_models = ReadModels(self.services)
        return self._read_models

    def projection_targets(self, names: Sequence[str] = ()) -> list[Any]:
        """The app's projections named (default: all), in the app's order."""
        app = self.app()
        if names:
            return [app.projection(name) for name in names]
        return list(app.projections)

    async def repository(self) -> Repository:
        """A repository for the app's aggregates, with snapshots beside the events."""
        app = self.app()
        return Repository(
            await self.services.store(),
            app.aggregates,
            snapshots=await self.services.snapshots(),
            snapshot_policy=app.snapshot_policy,
        )

    def say(self, text: str) -> None:
        """Text for people on stdout; values from the data in it go through ``printable``."""
        self.out.write(printable_lines(text))

    def note(self, message: str) -> None:
        """A remark for people, on stderr, so stdout stays clean for ``--json``."""
        self.err.write(printable_lines(message) + "\n")
        self.err.flush()


Handler = Callable[[Context, argparse.Namespace], Awaitable[int]]
