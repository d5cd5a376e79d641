"""What every command handler receives: config, connections, the app, and its output."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TextIO

from aggregates import Repository

from ._app import App
from ._config import Config
from ._discovery import find_app_reference, load_app
from ._services import Services


@dataclass
class Context:
    config: Config
    services: Services
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    _app: App | None = None

    def app(self) -> App:
        """The user's app, imported on first use (commands that only read the store skip it)."""
        if self._app is None:
            self._app = load_app(find_app_reference(self.config.app))
        return self._app

    async def repository(self) -> Repository:
        """A repository for the app's aggregates, with snapshots beside the events."""
        app = self.app()
        return Repository(
            await self.services.store(),
            app.aggregates,
            snapshots=await self.services.snapshots(),
            snapshot_policy=app.snapshot_policy,
        )

    def note(self, message: str) -> None:
        """A remark for people, on stderr, so stdout stays clean for ``--json``."""
        self.err.write(message + "\n")
        self.err.flush()


Handler = Callable[[Context, argparse.Namespace], Awaitable[int]]
