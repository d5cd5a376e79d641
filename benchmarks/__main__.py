"""``python -m benchmarks``: see ``benchmarks._cli`` and ``--help``."""

import sys

from ._cli import main

sys.exit(main())
