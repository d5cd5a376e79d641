"""Reading projections from synchronous code: a Django or Flask view's queries.

``RedisReader`` and ``RedisView`` without ``await``, generated from the async
``projections._redis_reads`` by ``tools/async_to_sync.py`` (see
``eventstore.sync`` for why).  Runners and rebuilds stay async: they are
services of their own, run with the ``chronik`` command.
"""

from ._redis_reads import RedisReader, RedisView

__all__ = ["RedisReader", "RedisView"]
