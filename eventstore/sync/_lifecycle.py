"""Generated from eventstore/_lifecycle.py by tools/async_to_sync.py: do not edit.

The synchronous twin of ``eventstore._lifecycle``; read the source for the reasons
behind the code (comments do not survive the conversion)."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class Closing(abc.ABC):
    """``async with thing:`` closes it on the way out, error or not."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
