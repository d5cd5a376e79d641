"""``--metrics-port``: Prometheus metrics, ``/healthz`` and ``/readyz`` for long runners.

Why prometheus-client rather than OpenTelemetry metrics: a scrape endpoint is what
on-call already points Prometheus at, it needs no collector process, and lag is
best measured when scraped (one status query per projection), not pushed on a
timer.  Tracing stays OpenTelemetry's; the two meet at chronik's spans, whose
ends are observed here (``eventstore.add_span_observer``), so appends, conflicts,
loads, projection batches and relay publishes are counted whether or not anyone
traces.

The server is a few lines of asyncio, not prometheus-client's thread: readiness
needs the runner's state and the store, both of which live on this event loop.
It binds 127.0.0.1 unless told otherwise: metrics name streams and projections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventstore import ConcurrencyError, EventStore, add_span_observer
from projections import Phase, ProjectionRunner, status

from ._errors import UnavailableError
from ._projecting import Target

log = logging.getLogger("chronik")

DEFAULT_HOST = "127.0.0.1"
#: Ready while every projection this process leads is at most this many events behind.
DEFAULT_READY_LAG = 1000

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as error:
        raise UnavailableError(
            "--metrics-port needs prometheus-client", "pip install 'chronik[metrics]'"
        ) from error
    return prometheus_client


@dataclass
class _Watched:
    store: EventStore
    runner: ProjectionRunner
    targets: Sequence[Target]


@dataclass
class Readiness:
    ready: bool
    detail: dict[str, Any] = field(default_factory=dict)


class MetricsServer:
    """Serves ``/metrics``, ``/healthz`` and ``/readyz`` while its block runs."""

    def __init__(self, port: int, *, host: str = DEFAULT_HOST, ready_lag: int = DEFAULT_READY_LAG):
        prom = _prometheus()
        self.port = port
        self.host = host
        self.ready_lag = ready_lag
        self.registry = prom.CollectorRegistry()
        self._prom = prom
        self._watched: list[_Watched] = []
        self._relays: list[Any] = []
        self._extra: list[Callable[[], Readiness]] = []
        self._refreshers: list[Callable[[], Awaitable[None]]] = []
        self._checks: list[Callable[[], Awaitable[Readiness]]] = []
        r = self.registry
        self.appends = prom.Counter("chronik_appends", "Appends (batches)", registry=r)
        self.appended = prom.Counter("chronik_appended_events", "Events appended", registry=r)
        self.conflicts = prom.Counter(
            "chronik_append_conflicts", "Appends refused by a version conflict", registry=r
        )
        self.loads = prom.Histogram(
            "chronik_load_seconds", "Aggregate load latency", buckets=_BUCKETS, registry=r
        )
        self.batches = prom.Histogram(
            "chronik_projection_batch_seconds",
            "Projection batch duration",
            ["projection"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.published = prom.Counter(
            "chronik_relay_published_events", "Events handed to Kafka by the relay", registry=r
        )
        self.lag_events = prom.Gauge(
            "chronik_projection_lag_events",
            "Visible events not yet projected",
            ["projection"],
            registry=r,
        )
        self.lag_seconds = prom.Gauge(
            "chronik_projection_lag_seconds",
            "Age of the oldest event not yet projected",
            ["projection"],
            registry=r,
        )
        self.dead_letters = prom.Gauge(
            "chronik_dead_letters", "Parked events", ["projection"], registry=r
        )
        self.leader = prom.Gauge(
            "chronik_projection_leader",
            "1 when this process leads the projection",
            ["projection"],
            registry=r,
        )
        self.consumed = prom.Counter(
            "chronik_consumed_messages", "Kafka messages handled", ["consumer"], registry=r
        )
        self.relay_lag_events = prom.Gauge(
            "chronik_relay_lag_events", "Feed events not yet published", ["relay"], registry=r
        )
        self.relay_lag_seconds = prom.Gauge(
            "chronik_relay_lag_seconds",
            "Age of the oldest event not yet published",
            ["relay"],
            registry=r,
        )
        self.dead_lettered = prom.Counter(
            "chronik_consumer_dead_letters",
            "Messages this process sent to TOPIC.dlq, by group and original topic",
            ["group", "topic"],
            registry=r,
        )
        # Registered by the first projection or relay watched: a notion of the
        # store's feed, which a Kafka consumer (``consume``) never reads, so it
        # would only ever show a meaningless 0 there.
        self.held_back = prom.Gauge(
            "chronik_feed_held_back_events",
            "Committed events the feed holds back behind an open transaction",
            registry=None,
        )
        self._reads_feed = False

    # -- what is watched ----------------------------------------------------------

    def watch_projections(
        self, store: EventStore, runner: ProjectionRunner, targets: Sequence[Target]
    ) -> None:
        self._watched.append(_Watched(store, runner, targets))
        self._watch_feed()

    def watch_relay(self, relay: Any) -> None:
        """A ``messaging.Relay``: its lag, and its readiness (leading within the bound,
        or a standby)."""
        self._relays.append(relay)
        self._watch_feed()

    def _watch_feed(self) -> None:
        if not self._reads_feed:
            self.registry.register(self.held_back)
            self._reads_feed = True

    async def _relay_lag(self, relay: Any) -> tuple[int, float]:
        after = relay.state.checkpoint.events
        events = await relay.store.count_after(after)
        seconds = 0.0
        async for oldest in relay.store.read_all(after, limit=1):
            seconds = max((datetime.now(UTC) - oldest.recorded_at).total_seconds(), 0.0)
        return events, seconds

    def watch(self, check: Callable[[], Readiness]) -> None:
        """Another runner's readiness (the relay's, say), merged into ``/readyz``."""
        self._extra.append(check)

    def watch_async(
        self,
        refresh: Callable[[], Awaitable[None]],
        readiness: Callable[[], Awaitable[Readiness]],
    ) -> None:
        """A runner measured at scrape time (a Kafka consumer's lag, say): ``refresh``
        sets its gauges on ``/metrics``, ``readiness`` is merged into ``/readyz``."""
        self._refreshers.append(refresh)
        self._checks.append(readiness)

    def _observe(
        self, name: str, attributes: Mapping[str, Any], seconds: float, error: BaseException | None
    ) -> None:
        if name == "chronik.append":
            if error is None:
                self.appends.inc()
                self.appended.inc(attributes.get("chronik.events", 0))
            elif isinstance(error, ConcurrencyError):
                self.conflicts.inc()
        elif name == "chronik.load" and error is None:
            self.loads.observe(seconds)
        elif name == "chronik.projection.batch":
            self.batches.labels(str(attributes.get("chronik.projection"))).observe(seconds)
        elif name == "chronik.relay.publish" and error is None:
            self.published.inc()
        elif name == "chronik.consume" and error is None:
            self.consumed.labels(str(attributes.get("chronik.consumer"))).inc()
        elif name == "chronik.consume.batch" and error is None:
            consumer = str(attributes.get("chronik.consumer"))
            self.consumed.labels(consumer).inc(attributes.get("chronik.messages", 0))
        elif name == "chronik.consume.dead_letter" and error is None:
            group, topic = attributes.get("chronik.consumer"), attributes.get("chronik.topic")
            self.dead_lettered.labels(str(group), str(topic)).inc()

    # -- serving ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[MetricsServer]:
        remove = add_span_observer(self._observe)
        try:
            server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as error:
            remove()
            raise UnavailableError(
                f"cannot serve metrics on {self.host}:{self.port}: {error.strerror or error}",
                "choose another --metrics-port",
            ) from error
        self.port = server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)
        try:
            yield self
        finally:
            remove()
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 10)
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass  # the headers: nothing here depends on them
            parts = request.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else ""
            code, kind, body = await self._answer(path)
        except (TimeoutError, ConnectionError, UnicodeError):
            writer.close()
            return
        except Exception as error:
            # A scrape must not take the runner down; say why it failed instead.
            log.warning("metrics request failed: %s", error)
            code, kind, body = 500, "text/plain", f"{type(error).__name__}: {error}\n".encode()
        reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}.get(
            code, "Service Unavailable"
        )
        writer.write(
            f"HTTP/1.1 {code} {reason}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _answer(self, path: str) -> tuple[int, str, bytes]:
        if path == "/healthz":
            return 200, "text/plain", b"alive\n"
        if path == "/readyz":
            readiness = await self.readiness()
            body = json.dumps({"ready": readiness.ready, **readiness.detail}, indent=1) + "\n"
            return (200 if readiness.ready else 503), "application/json", body.encode()
        if path == "/metrics":
            await self.refresh()
            return 200, self._prom.CONTENT_TYPE_LATEST, self._prom.generate_latest(self.registry)
        return 404, "text/plain", b"try /metrics, /healthz or /readyz\n"

    # -- measuring ----------------------------------------------------------------

    async def refresh(self) -> None:
        """Lag and dead letters as of now (asked at scrape time)."""
        held = 0
        for watched in self._watched:
            states = watched.runner.states
            for projection, model in watched.targets:
                found = await status(projection, model, watched.store)
                name = projection.name
                self.lag_events.labels(name).set(found.lag_events)
                self.lag_seconds.labels(name).set(found.lag_seconds)
                self.dead_letters.labels(name).set(found.dead_letters)
                self.leader.labels(name).set(1 if states[name].phase is Phase.LIVE else 0)
                held = max(held, found.held_back_events)
        for relay in self._relays:
            events, seconds = await self._relay_lag(relay)
            self.relay_lag_events.labels(relay.options.name).set(events)
            self.relay_lag_seconds.labels(relay.options.name).set(seconds)
        if self._relays and not self._watched:
            held = await self._relays[0].store.held_back_count()
        if self._reads_feed:
            self.held_back.set(held)
        for refresh in self._refreshers:
            await refresh()

    async def readiness(self) -> Readiness:
        """Ready when every projection is led here within ``ready_lag`` events, or is a
        standby (another process leads it), and every other watched runner is ready."""
        if not (self._watched or self._extra or self._relays or self._checks):
            return Readiness(False, {"phase": "starting"})
        projections: dict[str, Any] = {}
        ready = True
        for watched in self._watched:
            states = watched.runner.states
            for projection, model in watched.targets:
                state = states[projection.name]
                if state.phase is Phase.STANDBY:
                    projections[projection.name] = {"role": "standby", "phase": str(state.phase)}
                    continue
                found = await status(projection, model, watched.store)
                fine = state.phase is Phase.LIVE and found.lag_events <= self.ready_lag
                ready = ready and fine
                projections[projection.name] = {
                    "role": "leader" if state.phase is Phase.LIVE else "none",
                    "phase": str(state.phase),
                    "lag_events": found.lag_events,
                    "ready": fine,
                }
        detail: dict[str, Any] = {"projections": projections} if projections else {}
        for relay in self._relays:
            phase = str(relay.state.phase)
            if phase == "standby":
                detail.setdefault("relays", {})[relay.options.name] = {"role": "standby"}
                continue
            events, _ = await self._relay_lag(relay)
            fine = phase == "leading" and events <= self.ready_lag
            ready = ready and fine
            detail.setdefault("relays", {})[relay.options.name] = {
                "role": "leader" if phase == "leading" else "none",
                "phase": phase,
                "lag_events": events,
                "ready": fine,
            }
        others = [check() for check in self._extra]
        others += [await check() for check in self._checks]
        for more in others:
            ready = ready and more.ready
            detail.update(more.detail)
        return Readiness(ready, detail)
