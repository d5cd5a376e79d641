"""The synchronous ``Repository``: load, create, update with retries, time travel.

Generated from the async module by ``tools/async_to_sync.py`` (see
``eventstore.sync`` for why).  Aggregates themselves are pure and synchronous
already, so the same ``Aggregate`` classes serve both repositories.
"""

from ._repository import Repository

__all__ = ["Repository"]
