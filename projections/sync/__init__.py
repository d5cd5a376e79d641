"""Reading projections from synchronous code: a Django or Flask view's queries.

``RedisReader`` and ``MongoReader`` without ``await``, generated from the async
``projections._redis_reads`` and ``projections._mongo_reads`` by
``tools/async_to_sync.py`` (see
``eventstore.sync`` for why).  Runners and rebuilds stay async: they are
services of their own, run with the ``chronik`` command.
"""

# MongoView is the async API's own class: a view holds no I/O of its own (its
# collections are those of whichever client the reader was given).
from .._mongo_reads import MongoView
from ._mongo_reads import MongoReader
from ._redis_reads import RedisReader, RedisView

__all__ = ["MongoReader", "MongoView", "RedisReader", "RedisView"]
