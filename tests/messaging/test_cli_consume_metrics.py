"""``chronik consume --metrics-port``: a real HTTP client against a real consumer process
on the session's Kafka: the group's lag per partition, its dead letters (sent by this
process, and held by the DLQ topic), and a /readyz
that fails while the group is behind and names its worst partition; then the DLQ's
replay with its progress."""

from __future__ import annotations

import json
import re
import signal
import uuid
from pathlib import Path
from typing import Any

from kafka_support import fresh_topic, publish
from support.http_scrape import StderrReader, get, poll
from test_cli_consume import chronik, environment, start
from test_kafka_projection import seed_ledgers

from eventstore import PostgresEventStore


async def test_consume_serves_group_lag_dead_letters_and_lag_based_readiness(
    store: PostgresEventStore, pg_dsn: str, redis_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await seed_ledgers(store, 2, 2)
    events = [e async for e in store.read_all()]
    topic, group = fresh_topic("chronik.ledger"), f"g-{uuid.uuid4().hex[:8]}"
    publish(kafka_bootstrap, topic, events, raw=[(b"ledger-x", b"{oops", [])])
    env = environment(tmp_path, store, pg_dsn, redis_url, kafka_bootstrap)
    gate = tmp_path / "gate"
    env["CHRONIK_TEST_GATE"] = str(gate)
    member = start(env, "consume", "--group", group, "--topic", topic,
                   "--handler", "cli_gated_handler:handle",
                   "--metrics-port", "0", "--ready-lag", "2")  # fmt: skip
    try:
        stderr = StderrReader(member)
        url = stderr.metrics_url()
        assert get(url + "/healthz") == (200, "alive\n")

        # The handler holds the messages: the group stays behind, and /readyz says so.
        code, body = get(url + "/readyz")
        assert code == 503, body
        behind = json.loads(body)
        assert behind["ready"] is False
        consumer = behind["consumer"]
        assert consumer["group"] == group and consumer["lag_events"] > 2
        worst = consumer["worst_partition"]
        assert worst["topic"] == topic and worst["lag_events"] >= 1
        metrics = get(url + "/metrics")[1]
        partition = worst["partition"]
        shown = re.search(
            rf'^chronik_consumer_lag_events\{{group="{group}",partition="{partition}",'
            rf'topic="{re.escape(topic)}"\}} (\S+)$',
            metrics,
            re.M,
        )
        assert shown and float(shown.group(1)) >= 1, metrics

        gate.touch()

        def caught_up() -> dict[str, Any] | None:
            code, body = get(url + "/readyz")
            return json.loads(body) if code == 200 else None

        ready = poll(caught_up)["consumer"]
        assert ready["group"] == group and ready["ready"] is True
        assert ready["lag_events"] <= 2

        def settled() -> str | None:
            metrics = get(url + "/metrics")[1]
            lags = re.findall(
                rf'^chronik_consumer_lag_events\{{group="{group}",partition="\d+",'
                rf'topic="{re.escape(topic)}"\}} (\S+)$',
                metrics,
                re.M,
            )
            dead = re.search(
                rf'^chronik_consumer_dlq_messages\{{topic="{re.escape(topic)}"\}} 1\.0$',
                metrics,
                re.M,
            )
            done = lags and all(float(lag) == 0 for lag in lags)
            return metrics if done and dead else None

        metrics = poll(settled)
        consumed = re.search(
            rf'^chronik_consumed_messages_total\{{consumer="{group}"\}} (\S+)$', metrics, re.M
        )
        assert consumed and float(consumed.group(1)) >= len(events), metrics
        # The undecodable message went to the DLQ from this process: counted once, by
        # group and original topic.
        sent = re.findall(r"^chronik_consumer_dead_letters_total\{(.*)\} (\S+)$", metrics, re.M)
        assert sent == [(f'group="{group}",topic="{topic}"', "1.0")], metrics
        # A store-feed notion: a Kafka consumer has no feed to hold back.
        assert "chronik_feed_held_back_events" not in metrics, metrics
    finally:
        member.send_signal(signal.SIGTERM)
        member.wait(timeout=60)
    err = stderr.text()
    assert member.returncode == 0, err
    # Its catch-up progress (stderr is not a terminal): plain lines, the last at 100%.
    caught = [line for line in err.splitlines() if line.startswith(f"consuming as {group}")]
    total = len(events) + 1
    assert caught and caught[-1].startswith(
        f"consuming as {group}  100%  {total}/{total} messages"
    ), err

    # Replaying the DLQ shows its progress (stderr is not a terminal: plain lines).
    replay = chronik(env, "consumers", "deadletters", "replay", topic)
    assert replay.returncode == 0, replay.stderr
    assert "sent 1 dead letters back" in replay.stderr
    [done] = [line for line in replay.stderr.splitlines() if line.startswith("replaying")]
    assert re.fullmatch(
        rf"replaying {re.escape(topic)}\.dlq  100%  1/1 dead letters  \S+ dead letters/s  "
        r"elapsed \d+:\d\d",
        done,
    ), done
