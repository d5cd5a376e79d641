"""``python -m benchmarks``: see ``benchmarks._cli`` and ``--help``."""

import itertools
import sys


def _wants_no_otel(argv: list[str]) -> bool:
    if "--instrument=absent" in argv:
        return True
    return any(a == "--instrument" and b == "absent" for a, b in itertools.pairwise(argv))


if _wants_no_otel(sys.argv):
    # Before chronik is imported: its optional import of opentelemetry then fails,
    # as on a machine without the extra.
    sys.modules["opentelemetry"] = None  # type: ignore[assignment]

from ._cli import main  # noqa: E402

sys.exit(main())
