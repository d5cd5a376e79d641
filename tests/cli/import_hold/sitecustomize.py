"""Holds a ``chronik`` process inside its own imports, for the interrupt test.

Only a process started with this folder on PYTHONPATH and ``CHRONIK_TEST_IMPORT_HOLD``
set imports it (Python imports ``sitecustomize`` at start-up).  When the command
starts importing ``chronik.cli`` (the heavy part, inside the window where Ctrl-C
must end in one line), it touches ``CHRONIK_TEST_IMPORT_ENTERED`` and waits while
the hold file exists: the test signals at a moment that is certainly that window.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType


class _HoldImport:
    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "chronik.cli":
            sys.meta_path.remove(self)
            Path(os.environ["CHRONIK_TEST_IMPORT_ENTERED"]).touch()
            hold = Path(os.environ["CHRONIK_TEST_IMPORT_HOLD"])
            while hold.exists():
                time.sleep(0.01)
        return None  # the usual finders import it


if os.environ.get("CHRONIK_TEST_IMPORT_HOLD"):
    sys.meta_path.insert(0, _HoldImport())
