"""The example services run as the guides show them, against the test servers.

The examples get a database of their own (the CLI walks the whole feed: the other
tests' events would only slow it down), and each test a Redis database number of
its own, so read models never meet other tests' keys.  The runbook runs first, on
the empty database, so its output is exactly the guide's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
import redis.asyncio as aioredis

from projections import RedisReadModel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = str(db)
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="module")
def database(pg_dsn: str) -> Iterator[str]:
    name = f"examples_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # a fixed-alphabet name
    yield _with_database(pg_dsn, name)
    # The embedded server is thrown away with the session; dropping a database
    # costs seconds (a checkpoint), so only a real server is tidied up.
    if os.environ.get("CHRONIK_TEST_DATABASE_URL"):
        with psycopg.connect(pg_dsn, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_REDIS_DBS = iter(range(1, 16))  # 0 is the other tests'


@pytest.fixture
def servers(database: str, redis_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database, "REDIS_URL": _with_redis_db(redis_url, next(_REDIS_DBS))}


def _environment(servers: dict[str, str], data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CHRONIK_APP", "CHRONIK_SCHEMA", "MONGO_URL", "KAFKA_BOOTSTRAP_SERVERS"}
    }
    env.update(servers)
    # The checkout first (its packages, not an installed copy), the examples next.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(EXAMPLES)])
    # The scripts call `python` and `chronik`: this interpreter's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # Embedded servers would start here: the test checks none did.
    env["CHRONIK_DATA_DIR"] = str(data_dir)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, f"{args} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _python(module: str, servers: dict[str, str], tmp_path: Path) -> str:
    out = _run(
        [sys.executable, "-m", module], _environment(servers, tmp_path / ".chronik"), tmp_path
    )
    assert not (tmp_path / ".chronik").exists(), "the example ignored the URLs it was given"
    return out


def _script(name: str, servers: dict[str, str], tmp_path: Path) -> str:
    env = _environment(servers, tmp_path / ".chronik")
    out = _run(["bash", "-e", "-o", "pipefail", str(EXAMPLES / name)], env, ROOT)
    assert not (tmp_path / ".chronik").exists(), "the script ignored the URLs it was given"
    return out


async def test_bank_runbook(servers: dict[str, str], tmp_path: Path) -> None:
    out = _script("bank/runbook.sh", servers, tmp_path)
    assert "bank.Deposited  v2 (stored v1)" in out  # history, upcast
    assert '{"cents":10000}' in out  # history --raw
    assert "balance: 100" in out  # state at version 2
    assert "closures: replayed 1 dead letter(s)" in out
    assert "(no dead letters)" in out
    assert "1 key(s) differ" in out
    assert "rebuilt balances v2" in out
    client = aioredis.Redis.from_url(servers["REDIS_URL"], decode_responses=True)
    try:
        model = RedisReadModel(client)
        balances = await model.snapshot("balances")
        closures = await model.snapshot("closures")
    finally:
        await client.aclose()
    assert sorted(balances["cents"].values()) == ["1000", "6975"]  # withdrawals subtracted
    assert list(closures["reasons"].values()) == ["unknown"]


def test_shopping_cart_and_its_command_line(servers: dict[str, str], tmp_path: Path) -> None:
    # cli.sh runs shopping_cart.main first, then the command on what it wrote.
    out = _script("shopping_cart/cli.sh", servers, tmp_path)
    now = [line for line in out.splitlines() if line.startswith("cart '") and " now: " in line]
    assert len(now) == 1 and "version 4 of 4" in now[0], out
    stream = "cart-" + now[0].split("'")[1]
    assert any(line.split()[:1] == [stream] for line in out.splitlines())  # streams lists it
    assert 'cart.CheckedOut   v1      {"total_cents":1200}' in out  # its history
    assert 'lines:       {"mug":{"quantity":1,"unit_price_cents":1200}}' in out
    assert '"tea":{"quantity":2' in out  # the state at version 2
    rows = [line.split() for line in out.splitlines() if line.startswith("cart_contents ")]
    assert len(rows) == 2, out  # run's final state, then the status table
    assert rows[1][1:3] == ["v1", "v1g1"] and rows[1][4] == "0" and rows[1][-1] == "live"


def test_shopping_cart_main_prints_what_the_guide_says(
    servers: dict[str, str], tmp_path: Path
) -> None:
    lines = _python("shopping_cart.main", servers, tmp_path).splitlines()
    stream = lines[0].split()[0]
    assert lines[0] == f"{stream} 4 1200"
    assert lines[1].startswith("refused: cart ") and "checked out" in lines[1]
    assert lines[2] == "['mug', 'tea'] 2100"
    assert lines[3] == (
        f"CartContents(cart='{stream}', quantities={{'mug': 1}}, checked_out_cents=1200)"
    )


def test_bank_evolve(servers: dict[str, str], tmp_path: Path) -> None:
    lines = _python("bank.evolve", servers, tmp_path).splitlines()
    assert lines[0] == "25.5"
    assert lines[1:5] == [
        "bank.Opened 1 {'owner': 'Eve'}",
        "bank.Deposited 1 {'cents': 2550}",
        "owner='Eve'",
        "amount=Decimal('25.5')",
    ]
    assert lines[5].startswith("Snapshot(stream_id='account-eve-") and "version=3" in lines[5]
    assert lines[6] == "30.00 1"


def test_bank_read_models(servers: dict[str, str], tmp_path: Path) -> None:
    lines = _python("bank.read_models", servers, tmp_path).splitlines()
    assert lines[0] == "1 v1g1"
    assert lines[1] == "Zoe 950 2"
    parked = [line for line in lines if "bank.Closed" in line]
    assert any("account-zoe-" in line and "closed without a reason" in line for line in parked)
    assert lines[-2] == f"{len(parked)} 0"
    assert lines[-1] == "unknown"


def test_publishing_to_kafka(servers: dict[str, str], tmp_path: Path) -> None:
    lines = _python("streaming.publish", servers, tmp_path).splitlines()
    assert lines[0] == "1 outbox message(s) published", lines
    assert lines[1].startswith("outbox.event.invoice key=inv-") and "invoice.Issued" in lines[1]
    assert "{'total': '12.00'}" in lines[1]
    ledger = [line for line in lines[2:] if line.startswith("bank.ledger key=ledger-guide-")]
    assert [line.split()[2] for line in ledger] == ["ledger.Opened", "ledger.Deposited"], lines
    # Typed appends registered the schemas: each event names its exported file.
    assert all(" dataschema=https://schemas.example.com/bank/ledger." in x for x in ledger)


def test_consuming_from_kafka(servers: dict[str, str], tmp_path: Path) -> None:
    lines = _python("streaming.consume", servers, tmp_path).splitlines()
    assert lines[0] == "Ada's balance, fed from Kafka: 10.0000", lines
    parked = [line for line in lines if line.startswith("bank.ledger.dlq ")]
    assert len(parked) == 1 and "ledger.Opened ledger-mallory-" in parked[0], lines
    assert "MailRefused - mailbox of Mallory refuses mail" in parked[0]
    assert lines[-1] == "mailer lag: 0 event(s)"


def test_sagas_guide(servers: dict[str, str], tmp_path: Path) -> None:
    lines = _python("streaming.sagas_guide", servers, tmp_path).splitlines()
    assert lines[0].startswith("pay-b-") and " completed [" in lines[0], lines
    assert lines[1].startswith("pay-c-") and "('debit', 'compensated')" in lines[1]
    assert lines[2] == "A's balance: 70"
    assert lines[3].startswith("o1-") and lines[3].endswith(" shipped")
    assert lines[4].startswith("o2-") and lines[4].endswith(" cancelled")
    assert lines[5] == "A's balance: 65.00"  # the forgotten order's 5.00 refunded


def test_change_data_capture(servers: dict[str, str], tmp_path: Path) -> None:
    lines = _python("streaming.cdc", servers, tmp_path).splitlines()
    assert lines[0] == "3 change(s) published after the snapshot", lines
    assert [line.split()[1] for line in lines[1:4]] == ["op=r", "op=u", "op=d"]
    assert "'fare': '12.50'" in lines[1] and "'booked': '2024-05-01T10:00:00Z'" in lines[1]
    assert "before={'id': 1, 'driver': 'ann'" in lines[2] and "'driver': 'bob'" in lines[2]
    assert lines[4] == 'key={"id":1} (tombstone)'
    assert lines[5].startswith("chronik_cdc_rides_") and "active=False" in lines[5]


def test_schemas_in_ci(servers: dict[str, str], pg_dsn: str, tmp_path: Path) -> None:
    # A database of its own: the check reads the whole history, which must be the
    # bank's alone (the other examples store carts, ledgers and sagas).
    name = f"schemas_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # a fixed-alphabet name
    env = {**servers, "DATABASE_URL": _with_database(pg_dsn, name), "TMPDIR": str(tmp_path)}
    out = _script("streaming/deploy_check.sh", env, tmp_path)
    report = json.loads((tmp_path / "schema-report.json").read_text())
    assert report["ok"] is True, report
    assert sorted(p.name for p in (tmp_path / "schemas").rglob("*.json"))  # exported
    asyncapi = json.loads((tmp_path / "schemas" / "asyncapi.json").read_text())
    assert "chronik.account" in {c["address"] for c in asyncapi["channels"].values()}, asyncapi
    refused = out[: out.index("schemas check OK")] if "schemas check OK" in out else out
    assert "bank.Withdrawn" in refused and "atm" in refused, out  # the careless release


def test_operating_kafka_sagas_and_cdc(servers: dict[str, str], tmp_path: Path) -> None:
    out = _script("streaming/operate.sh", servers, tmp_path)
    lines = out.splitlines()
    status = next(line.split() for line in lines if line.startswith("guide "))
    assert status[1:3] == ["exactly-once", "-"] and status[4] == "0", out  # caught up
    assert "ledger.Deposited" in out  # topics tail decoded the relayed events
    compensated = [line.split()[:3] for line in lines if " compensated " in line]
    assert ["ship-or-refund", "compensated"] in [row[1:3] for row in compensated], out
    assert any(line.split()[:3] == ["debit", "undo", "compensated"] for line in lines), out


def test_django_outbox_commits_and_rolls_back_rows_and_events_together(
    servers: dict[str, str], tmp_path: Path
) -> None:
    # A real Django project (settings.configure, django.setup) on the embedded
    # PostgreSQL, appending through eventstore.sync on Django's own connection.
    lines = _python("django_outbox.main", servers, tmp_path).splitlines()
    assert lines[0] == "django connection is psycopg 3: True"
    run = lines[1].split()[1].removeprefix("order-").removesuffix("-1")
    assert lines[1:4] == [
        f"committed: order-{run}-1 1",
        f"rolled back: order-{run}-2",
        f"conflict: order-{run}-1",
    ]
    # Checked again from outside Django: the commit kept the row and its event,
    # the rollback and the conflict left neither behind.
    with psycopg.connect(servers["DATABASE_URL"]) as connection:
        for n, expected in ((1, 1), (2, 0), (3, 0)):
            rows = connection.execute(
                "SELECT count(*) FROM django_outbox_order WHERE order_id = %s", (f"{run}-{n}",)
            ).fetchone()
            events = connection.execute(
                "SELECT count(*) FROM chronik.events WHERE stream_id = %s", (f"order-{run}-{n}",)
            ).fetchone()
            assert (rows, events) == ((expected,), (expected,)), n
    assert lines[4:] == [
        f"order {run}-1: rows=1 events=1",
        f"order {run}-2: rows=0 events=0",
        f"order {run}-3: rows=0 events=0",
    ]
