"""The slow app, imported slowly: its import waits while a file exists.

With ``CHRONIK_TEST_IMPORT_HOLD`` set, importing this module touches
``CHRONIK_TEST_IMPORT_ENTERED`` and then waits until the hold file is gone, so
the interrupt test can signal a command that is certainly inside the app's import.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cli_slow_app import app

__all__ = ["app"]

if os.environ.get("CHRONIK_TEST_IMPORT_HOLD"):
    Path(os.environ["CHRONIK_TEST_IMPORT_ENTERED"]).touch()
    while Path(os.environ["CHRONIK_TEST_IMPORT_HOLD"]).exists():
        time.sleep(0.01)
