"""Side-by-side benchmarks: chronik, raw psycopg (the limit) and the eventsourcing library.

Run ``python -m benchmarks`` (``--help`` for options).  Each case module's
docstring says exactly what every implementation does; ``_harness`` says how
it is measured.  Nothing here is imported by chronik itself.
"""

from ._cases import Case
from ._cli import main
from ._harness import CaseResult, Measurement
from ._registry import ALL_CASES

__all__ = ["ALL_CASES", "Case", "CaseResult", "Measurement", "main"]
