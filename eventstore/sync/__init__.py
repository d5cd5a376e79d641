"""The synchronous event store, for Django, Flask, Celery tasks and scripts.

Same names, errors, validation and semantics as ``eventstore``; only the import
changes (``from eventstore.sync import PostgresEventStore``), and nothing is
awaited.  ``append(..., connection=conn)`` takes a caller's synchronous psycopg
connection, such as Django's ``django.db.connection.connection``, and appends
inside its open transaction.

Why generated from the async code
---------------------------------
The modules here are written by ``tools/async_to_sync.py`` from their async
twins (the way psycopg derives its sync classes), never by hand, and a test
regenerates them and fails if a checked-in file differs.  Everything that does
no I/O (SQL text, validation, row decoding, errors, the models) is *imported*
from the async modules rather than converted, so there is one implementation of
the logic and the generated part is the thin I/O layer.  A wrapper running the
async code on a hidden event loop was rejected: it cannot join a caller's
synchronous connection, breaks inside a running loop, and costs a loop round
trip per call.

Live subscriptions (``subscribe``) stay async, as do the runners and the relay.
The shared models and errors (``Position``, ``NO_STREAM``, ``ConcurrencyError``
...) are imported from ``eventstore`` itself.
"""

from ._embedded import embedded_dsn
from ._lifecycle import Closing
from ._memory import InMemoryEventStore
from ._pg_schema import apply_migrations
from ._pg_schemas import PostgresSchemaRegistry
from ._postgres import PostgresEventStore
from ._schemas import InMemorySchemaRegistry, SchemaRegistry
from ._store import EventStore

__all__ = [
    "Closing",
    "EventStore",
    "InMemoryEventStore",
    "InMemorySchemaRegistry",
    "PostgresEventStore",
    "PostgresSchemaRegistry",
    "SchemaRegistry",
    "apply_migrations",
    "embedded_dsn",
]
