"""Pure ``dict -> dict`` migrations between stored event schema versions.

The bottom of chronik's import graph: this package imports only the standard library.
"""

from upcasters._chain import UpcasterChain
from upcasters._errors import (
    MissingUpcasterError,
    UpcasterConflictError,
    UpcasterError,
    UpcastStepError,
)
from upcasters._upcaster import Migration, Upcaster, UpcastPath, UpcastResult

__all__ = [
    "Migration",
    "MissingUpcasterError",
    "UpcastPath",
    "UpcastResult",
    "UpcastStepError",
    "Upcaster",
    "UpcasterChain",
    "UpcasterConflictError",
    "UpcasterError",
]
