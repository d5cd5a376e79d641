"""Run the recipe: Django on PostgreSQL, events appended on Django's connection.

``python -m django_outbox.main`` with ``DATABASE_URL`` set: places one order
that commits, one whose transaction rolls back after the append, and one whose
append conflicts, and prints what each left behind.
"""

from __future__ import annotations

import os
import uuid

# --8<-- [start:settings]
import django
from django.conf import settings
from psycopg.conninfo import conninfo_to_dict

url = os.environ["DATABASE_URL"]
parts = conninfo_to_dict(url)
settings.configure(
    INSTALLED_APPS=["django_outbox"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",  # psycopg 3 when installed
            "NAME": parts.get("dbname", ""),
            "USER": parts.get("user", ""),
            "PASSWORD": parts.get("password", ""),
            "HOST": parts.get("host", ""),
            "PORT": parts.get("port", ""),
        }
    },
)
django.setup()
# --8<-- [end:settings]

import psycopg  # noqa: E402 (after django.setup(), as Django requires for models)
from django.db import connection, transaction  # noqa: E402

from eventstore import NO_STREAM, ConcurrencyError, NewEvent  # noqa: E402
from eventstore.sync import PostgresEventStore  # noqa: E402

from .models import Order  # noqa: E402
from .orders import place_order  # noqa: E402


class Refused(Exception):
    pass


def main() -> None:
    with connection.schema_editor() as editor:
        if Order._meta.db_table not in connection.introspection.table_names():
            editor.create_model(Order)
    run = uuid.uuid4().hex[:8]
    with PostgresEventStore.connect(url, pool_size=1) as store:
        connection.ensure_connection()
        is_psycopg3 = isinstance(connection.connection, psycopg.Connection)
        print("django connection is psycopg 3:", is_psycopg3)

        committed = place_order(store, f"{run}-1", 1200)
        print("committed:", committed.stream_id, committed.version)

        try:
            with transaction.atomic():
                place_order(store, f"{run}-2", 500)
                raise Refused  # a later step of the request fails
        except Refused:
            print("rolled back:", f"order-{run}-2")

        try:
            with transaction.atomic():
                Order.objects.create(order_id=f"{run}-3", cents=700)
                # order-<run>-1 exists already: NO_STREAM fails, and the row goes too.
                store.append(
                    f"order-{run}-1",
                    [NewEvent("shop.OrderPlaced", {"order_id": f"{run}-3", "cents": 700})],
                    NO_STREAM,
                    connection=connection.connection,
                )
        except ConcurrencyError as error:
            print("conflict:", error.stream_id)

        for n in (1, 2, 3):
            rows = Order.objects.filter(order_id=f"{run}-{n}").count()
            events = list(store.read_stream(f"order-{run}-{n}"))
            print(f"order {run}-{n}: rows={rows} events={len(events)}")


if __name__ == "__main__":
    main()
