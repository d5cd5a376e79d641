"""The command's entry point: what runs before anything heavy is imported.

Importing the command (pydantic, psycopg, redis...) takes about a second; a
Ctrl-C meanwhile must end in one line, not a traceback, and the working
directory must be off sys.path before the first of those imports, so a file
there named like a dependency never stands in for it.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        with _interrupts_noted() as noted:
            isolate_from_cwd()
            from .cli import run
        if noted:
            # A library's bare 'except:' swallowed the KeyboardInterrupt while it was
            # imported: the person still pressed Ctrl-C.
            raise KeyboardInterrupt
        return run(argv)
    except KeyboardInterrupt:
        # Ctrl-C outside the command's event loop (start-up, or shutting down).
        sys.stderr.write("chronik: error: interrupted\n")
        return _INTERRUPTED


@contextlib.contextmanager
def _interrupts_noted() -> Iterator[list[int]]:
    """Raise KeyboardInterrupt on SIGINT as Python does, and also note that it came."""
    noted: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()
    if not in_main_thread or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield noted  # ignored or handled by whoever started us: leave it so
        return

    def note(number: int, frame: FrameType | None) -> None:
        noted.append(number)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield noted
    finally:
        # asyncio.run installs its own handler only over the default one.
        signal.signal(signal.SIGINT, signal.default_int_handler)


def isolate_from_cwd(cwd: Path | None = None) -> None:
    """Take the working directory off sys.path (``python -m`` and ``-c`` put it first).

    Only the app module may come from there (see ``_discovery.import_app_module``).
    A checkout run from its own root (chronik itself imported from there) keeps
    the directory, last, so installed packages still win over files in it.
    """
    here = (cwd or Path.cwd()).resolve()

    def is_cwd(entry: str) -> bool:
        try:
            return entry in ("", ".") or Path(entry).resolve() == here
        except OSError:
            return False

    kept = [entry for entry in sys.path if not is_cwd(entry)]
    if len(kept) == len(sys.path):
        return
    ours = Path(__file__).resolve().parents[1]
    sys.path[:] = [*kept, str(here)] if ours == here else kept


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
