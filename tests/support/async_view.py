"""An async face on a synchronous object, so the async contract suites run unchanged.

USED ONLY IN TESTS.  ``AsyncView(sync_store)`` forwards every call straight to
the sync object, in the calling thread and with no event loop involved: a
returned generator becomes an async iterator that calls ``next()`` on it, any
other result is handed back through an already-finished coroutine.  The sync
code therefore runs exactly as a Django view would run it; the contract classes
in ``tests/contracts/`` only see ``await`` and ``async for`` on top.

Errors raised at call time (bad input) surface at the call, which in the
contracts is always inside the ``pytest.raises`` block that awaits it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any


async def _ready(value: Any) -> Any:
    return value


class _AsyncIterator:
    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator

    def __aiter__(self) -> _AsyncIterator:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._iterator)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()


def _is_sync_api(value: Any) -> bool:
    return ".sync." in type(value).__module__


class AsyncView:
    """Wraps a sync store (or registry) object; see the module docstring."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if _is_sync_api(value):
            return AsyncView(value)
        if not callable(value) or inspect.isclass(value):
            return value
        return _async_call(value)

    async def __aenter__(self) -> AsyncView:
        self.wrapped.__enter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.wrapped.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"AsyncView({self.wrapped!r})"


def _async_call(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if inspect.isgenerator(result):
            return _AsyncIterator(result)
        return _ready(result)

    return call
