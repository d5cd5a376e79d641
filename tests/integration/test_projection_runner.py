"""The projection runner on real PostgreSQL (the feed, advisory locks) and real Redis.

Crash and restart at random points, writers appending while projecting, poison
events parked and replayed, rebuilds while readers read, standby takeover, and
the status of a projection held back by an open transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from support.projection_runs import (
    DEADLINE,
    is_caught_up,
    last_committed,
    run_until_caught_up,
    until,
)

from eventstore import Event, EventCodec, NewEvent, PostgresEventStore, RecordedEvent
from projections import (
    CommitBatch,
    FailedWrite,
    Phase,
    PoisonPolicy,
    Projection,
    ProjectionRunner,
    RedisReadModel,
    RedisWrites,
    RetryPolicy,
    RunnerOptions,
    StoreFeedSource,
    diff,
    list_dead_letters,
    rebuild,
    replay_dead_letters,
    replay_into,
    status,
)
from upcasters import UpcasterChain

MakeStore = Callable[..., Awaitable[PostgresEventStore]]
FAST = RunnerOptions(batch_size=7, idle_timeout=0.02, standby_poll=0.02, lock_check_interval=0.05)


class Added(Event):
    event_type: ClassVar[str] = "it.Added"
    key: str
    n: int


class AddedV2(Event):
    """A later release of ``it.Added``: ``n`` became ``amount``."""

    event_type: ClassVar[str] = "it.Added"
    event_version: ClassVar[int] = 2
    key: str
    amount: int


class Crash(BaseException):
    """A process dying: not an Exception, so nothing in the runner handles it."""


@dataclass
class Hooks:
    calls: int = 0
    crash_at: int | None = None
    on_call: Callable[[int], None] | None = None
    broken: Callable[[Added], bool] = lambda event: False
    seen: list[str] = field(default_factory=list)


def counter(
    name: str,
    *,
    version: int = 1,
    hooks: Hooks | None = None,
    on_poison: PoisonPolicy = PoisonPolicy.PARK,
    marker: str | None = None,
) -> Projection[RedisWrites]:
    """totals[key] += n and log += position, for each it.Added."""
    projection = Projection(
        name,
        writes=RedisWrites,
        version=version,
        on_poison=on_poison,
        retry=RetryPolicy(attempts=2, initial_delay=0.001),
    )
    hooks = hooks or Hooks()

    @projection.on(Added)
    def added(event: Added, envelope: RecordedEvent, w: RedisWrites) -> None:
        hooks.calls += 1
        if hooks.crash_at is not None and hooks.calls >= hooks.crash_at:
            hooks.crash_at = None
            raise Crash
        if hooks.on_call is not None:
            hooks.on_call(hooks.calls)
        if hooks.broken(event):
            raise ValueError(f"cannot take {event.n}")
        w.hincrby("totals", event.key, event.n)
        w.rpush("log", str(envelope.position))
        if marker is not None:
            w.set("marker", marker)

    return projection


class CrashingRedis(RedisReadModel):
    """Crashes before or after its n-th commit (a crash between batch and commit)."""

    crash: tuple[str, int] | None = None
    commits = 0

    async def commit(
        self, name: str, slot: str, batch: CommitBatch[RedisWrites], *, require_active: bool
    ) -> list[FailedWrite]:
        self.commits += 1
        if self.crash == ("before", self.commits):
            raise Crash
        result = await super().commit(name, slot, batch, require_active=require_active)
        if self.crash == ("after", self.commits):
            raise Crash
        return result


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    redis_client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield redis_client
    await redis_client.aclose()


def new_model(client: aioredis.Redis, cls: type[RedisReadModel] = RedisReadModel) -> Any:
    return cls(client, prefix=f"it{uuid.uuid4().hex[:10]}:")


async def append_added(
    store: PostgresEventStore, items: Iterable[tuple[str, int]], streams: int = 5
) -> None:
    for index, (key, n) in enumerate(items):
        await store.append(f"thing-{index % streams}", [Added(key=key, n=n)])


async def expected(store: PostgresEventStore) -> tuple[dict[str, str], list[str]]:
    totals: dict[str, int] = {}
    log: list[str] = []
    async for event in store.read_all():
        if event.type == Added.event_type and event.schema_version == 1:
            totals[event.data["key"]] = totals.get(event.data["key"], 0) + event.data["n"]
            log.append(str(event.position))
    return {k: str(v) for k, v in totals.items()}, log


async def model(read_model: RedisReadModel, name: str) -> tuple[dict[str, str], list[str]]:
    view = await read_model.view(name)
    totals = await view.client.hgetall(view.key("totals"))
    return totals, await view.client.lrange(view.key("log"), 0, -1)


async def run_until(runner: ProjectionRunner, until: Callable[[], bool]) -> asyncio.Task[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    task.stop = stop  # type: ignore[attr-defined]

    async def wait() -> None:
        while not until():
            if task.done():
                await task
                raise AssertionError(f"the runner ended early: {runner.states}")
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(wait(), DEADLINE)
    except TimeoutError:
        raise AssertionError(f"never reached the condition: {runner.states}") from None
    return task


async def stop_task(task: asyncio.Task[None]) -> None:
    task.stop.set()  # type: ignore[attr-defined]
    await task


# -- exactly-once across crashes -----------------------------------------------------


@pytest.fixture
async def crash_store(make_pg_store: MakeStore) -> AsyncIterator[PostgresEventStore]:
    store = await make_pg_store()
    rng = random.Random(5)
    await append_added(store, [(rng.choice("abcd"), rng.randint(1, 9)) for _ in range(40)])
    yield store
    await store.close()  # per test: a session of idle pools exhausts connection slots


crash_points = st.lists(
    st.tuples(st.sampled_from(["handler", "before", "after", "cancel"]), st.integers(1, 45)),
    min_size=1,
    max_size=3,
)


@settings(max_examples=25)
@given(crashes=crash_points, batch_size=st.integers(1, 9))
async def test_restarts_after_crashes_at_any_point_equal_a_full_rebuild(
    crash_store: PostgresEventStore,
    client: aioredis.Redis,
    crashes: list[tuple[str, int]],
    batch_size: int,
) -> None:
    store, source = crash_store, StoreFeedSource(crash_store, page_size=11)
    read_model: CrashingRedis = new_model(client, CrashingRedis)
    options = RunnerOptions(batch_size=batch_size, idle_timeout=0.02, standby_poll=0.02)
    for kind, at in crashes:
        hooks = Hooks()
        runner = ProjectionRunner(
            source, [(counter("crashy", hooks=hooks), read_model)], options=options
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        if kind == "handler":
            hooks.crash_at = at
        elif kind == "cancel":
            hooks.on_call = lambda call, at=at, task=task: task.cancel() if call == at else None
        else:
            read_model.commits, read_model.crash = 0, (kind, at)

        async def settle(
            task: asyncio.Task[None] = task, runner: ProjectionRunner = runner
        ) -> None:
            # Until it crashed, or (the crash point never came) it caught up.
            while not task.done():
                state = runner.states["crashy"]
                if state.phase is Phase.LIVE and state.position == await store.head():
                    break
                await asyncio.sleep(0.01)

        await asyncio.wait_for(settle(), DEADLINE)
        stop.set()
        with contextlib.suppress(Crash, asyncio.CancelledError):
            await task
        read_model.crash = None

    await run_until_caught_up(
        ProjectionRunner(source, [(counter("crashy"), read_model)], options=options), store
    )
    assert await model(read_model, "crashy") == await expected(store)


async def test_a_crashed_model_diffs_clean_against_a_replay_into_scratch(
    crash_store: PostgresEventStore, client: aioredis.Redis
) -> None:
    source = StoreFeedSource(crash_store)
    live: CrashingRedis = new_model(client, CrashingRedis)
    live.crash = ("after", 2)
    runner = ProjectionRunner(source, [(counter("diffed"), live)], options=FAST)
    with pytest.raises(Crash):
        await runner.run(asyncio.Event())
    live.crash = None
    await run_until_caught_up(
        ProjectionRunner(source, [(counter("diffed"), live)], options=FAST), crash_store
    )

    scratch = new_model(client)
    checkpoint = await live.checkpoint("diffed")
    assert await replay_into(counter("diffed"), source, scratch, up_to=checkpoint) == checkpoint
    result = await diff("diffed", live, scratch)
    assert result.identical, result
    assert result.left_checkpoint == result.right_checkpoint == checkpoint

    # And the diff does see a difference when there is one.
    view = await live.view("diffed")
    await client.hincrby(view.key("totals"), "a", 1)
    changed = await diff("diffed", live, scratch)
    assert list(changed.changed) == ["totals"]


# -- live projection under concurrent writers -------------------------------------------


async def test_writers_appending_while_projecting_lose_and_repeat_nothing(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store(pool_size=6)
    await append_added(store, [("seed", 1)] * 20)
    read_model = new_model(client)
    runner = ProjectionRunner(StoreFeedSource(store), [(counter("busy"), read_model)], options=FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    async def writer(number: int) -> None:
        rng = random.Random(number)
        for _ in range(40):
            stream = f"writer-{number}-{rng.randint(0, 3)}"
            await store.append(stream, [Added(key=rng.choice("xyz"), n=rng.randint(1, 5))])

    await asyncio.gather(*(writer(n) for n in range(4)))
    stop.set()
    await task
    await run_until_caught_up(
        ProjectionRunner(StoreFeedSource(store), [(counter("busy"), read_model)], options=FAST),
        store,
    )
    totals, log = await model(read_model, "busy")
    assert (totals, log) == await expected(store)
    assert len(log) == 180


# -- poison events --------------------------------------------------------------------


async def test_a_poison_event_is_parked_then_replayed_after_the_fix(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", n) for n in range(1, 21)])
    read_model = new_model(client)
    broken = {"yes": True}
    hooks = Hooks(broken=lambda event: broken["yes"] and event.n == 13)
    projection = counter("poisoned", hooks=hooks)
    source = StoreFeedSource(store)
    await run_until_caught_up(
        ProjectionRunner(source, [(projection, read_model)], options=FAST), store
    )

    [letter] = await list_dead_letters(read_model, "poisoned")
    poison = [e async for e in store.read_all()][12]
    assert letter.position == poison.position and letter.projection == "poisoned"
    assert letter.event.stream_id == poison.stream_id and letter.attempts == 2
    assert letter.error == "cannot take 13" and "ValueError" in letter.traceback
    assert (await model(read_model, "poisoned"))[0] == {"k": str(210 - 13)}
    assert (await status(projection, read_model, store)).dead_letters == 1

    broken["yes"] = False
    result = await replay_dead_letters(projection, read_model)
    assert result.replayed == [poison.position] and result.failed == []
    assert (await model(read_model, "poisoned"))[0] == {"k": "210"}
    assert await list_dead_letters(read_model, "poisoned") == []
    assert (await replay_dead_letters(projection, read_model)).replayed == []


async def test_live_at_a_head_held_back_by_an_open_transaction_is_not_caught_up(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    # The poison test above once stopped with events 15-20 missing: a transaction
    # took an xid between two of its appends, so the visible head stayed at 14, the
    # runner was (rightly) live there, and the old wait took that for caught up.
    store = await make_pg_store()
    await append_added(store, [("k", n) for n in range(1, 15)])
    read_model = new_model(client)
    runner = ProjectionRunner(StoreFeedSource(store), [(counter("held"), read_model)], options=FAST)
    stop = asyncio.Event()
    async with await psycopg.AsyncConnection.connect(store.dsn) as holder:
        await holder.execute("SELECT pg_current_xact_id()")  # an xid, and no event
        await append_added(store, [("k", n) for n in range(15, 21)])
        held, through = await store.head(), await last_committed(store)
        assert held is not None and through is not None and held < through
        task = asyncio.create_task(runner.run(stop))
        state = runner.states["held"]
        await until(lambda: state.phase is Phase.LIVE and state.position == held)
        assert (await model(read_model, "held"))[0] == {"k": str(sum(range(1, 15)))}
        assert not await is_caught_up(runner, store, ["held"], through)
        await holder.commit()
    async with asyncio.timeout(DEADLINE):
        while not await is_caught_up(runner, store, ["held"], through):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    stop.set()
    await task
    assert await model(read_model, "held") == await expected(store)


async def test_an_undecodable_event_is_parked_and_replayed_once_its_class_exists(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", 1), ("k", 2)])
    # Written by a newer release that this runner does not know yet.
    await store.append("thing-new", [NewEvent("it.Added", {"key": "k", "amount": 40}, 2)])
    await append_added(store, [("k", 3)])
    read_model = new_model(client)
    old = counter("upgraded")
    await run_until_caught_up(
        ProjectionRunner(StoreFeedSource(store), [(old, read_model)], options=FAST), store
    )
    [letter] = await list_dead_letters(read_model, "upgraded")
    assert letter.error_type.endswith("UpcastError") and letter.event.schema_version == 2
    assert (await model(read_model, "upgraded"))[0] == {"k": "6"}

    chain = UpcasterChain()
    chain.upcaster("it.Added", from_version=1)(
        lambda data: {"key": data["key"], "amount": data["n"]}
    )
    fixed = Projection("upgraded", writes=RedisWrites, codec=EventCodec([AddedV2], chain))
    fixed.on(AddedV2)(lambda event, envelope, w: w.hincrby("totals", event.key, event.amount))
    result = await replay_dead_letters(fixed, read_model)
    assert result.replayed == [letter.position]
    assert (await model(read_model, "upgraded"))[0] == {"k": "46"}


async def test_a_stop_policy_halts_only_its_projection_until_replayed(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", n) for n in range(1, 11)])
    read_model = new_model(client)
    broken = {"yes": True}
    strict = counter(
        "strict",
        hooks=Hooks(broken=lambda event: broken["yes"] and event.n == 4),
        on_poison=PoisonPolicy.STOP,
    )
    lenient = counter("lenient")
    source = StoreFeedSource(store)
    runner = ProjectionRunner(source, [(strict, read_model), (lenient, read_model)], options=FAST)
    head = await last_committed(store)
    # Wait for both outcomes: lenient caught up does not imply strict has stopped yet
    # (strict may still be retrying event 4 on a busy machine).
    task = await run_until(
        runner,
        lambda: (
            runner.states["strict"].phase is Phase.STOPPED
            and runner.states["lenient"].phase is Phase.LIVE
            and runner.states["lenient"].position == head
        ),
    )
    task.stop.set()  # type: ignore[attr-defined]
    await task

    events = [e async for e in store.read_all()]
    report = await status(strict, read_model, store)
    assert report.stopped_at == events[3].position
    assert report.checkpoint == events[2].position and report.lag_events == 7
    # It stopped during its first build: nothing is active, the building slot has 1+2+3.
    assert not report.active and report.slot is not None
    assert (await read_model.snapshot("strict", report.slot))["totals"] == {"k": "6"}

    # Restarting without a fix stops again at the same event, parked once.
    again = ProjectionRunner(source, [(strict, read_model)], options=FAST)
    await again.run(asyncio.Event())
    assert again.states["strict"].phase is Phase.STOPPED
    assert len(await list_dead_letters(read_model, "strict")) == 1

    broken["yes"] = False
    result = await replay_dead_letters(strict, read_model)
    assert result.replayed == [events[3].position]
    assert await read_model.checkpoint("strict", report.slot) == events[3].position
    await run_until_caught_up(ProjectionRunner(source, [(strict, read_model)], options=FAST), store)
    assert await model(read_model, "strict") == await expected(store)
    assert (await status(strict, read_model, store)).stopped_at is None


# -- rebuilds without downtime --------------------------------------------------------------


class Readers:
    """Tasks reading the projection through its active pointer, recording what they saw."""

    def __init__(self, read_model: RedisReadModel, name: str) -> None:
        self.read_model, self.name = read_model, name
        self.seen: list[tuple[str, int]] = []
        self.started = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _read(self) -> None:
        while not self._stop.is_set():
            view = await self.read_model.view(self.name)
            totals = await view.client.hgetall(view.key("totals"))
            self.seen.append((view.slot, sum(int(v) for v in totals.values())))
            self.started.set()
            await asyncio.sleep(0)

    async def __aenter__(self) -> Readers:
        self._tasks = [asyncio.create_task(self._read()) for _ in range(3)]
        await self.started.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def test_a_rebuild_swaps_in_only_a_complete_model_while_readers_read(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", n % 7) for n in range(300)])
    read_model = new_model(client)
    projection = counter("rebuilt")
    source = StoreFeedSource(store)
    runner = ProjectionRunner(source, [(projection, read_model)], options=FAST)
    live = await run_until(runner, lambda: runner.states["rebuilt"].events == 300)
    total = sum(n % 7 for n in range(300))
    async with Readers(read_model, "rebuilt") as readers:
        result = await rebuild(projection, read_model, source, options=RunnerOptions(batch_size=10))
        seen_after = len(readers.seen)
        await until(lambda: len(readers.seen) >= seen_after + 3)
    await stop_task(live)

    assert (result.previous_slot, result.slot) == ("v1g1", "v1g2")
    assert {s for s, _ in readers.seen} == {"v1g1", "v1g2"}
    assert all(sum_ == total for _, sum_ in readers.seen), "a reader saw a partial model"
    meta = await read_model.meta("rebuilt")
    assert meta.active == "v1g2" and meta.slots["v1g1"].state.value == "retired"


async def test_a_live_runner_follows_a_rebuild_while_writers_append(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", 1)] * 100)
    read_model = new_model(client)
    projection = counter("followed")
    source = StoreFeedSource(store)
    runner = ProjectionRunner(source, [(projection, read_model)], options=FAST)
    live = await run_until(runner, lambda: runner.states["followed"].events == 100)

    async def write() -> None:
        for n in range(60):
            await store.append(f"late-{n % 4}", [Added(key="late", n=1)])

    rebuilt, _ = await asyncio.gather(
        rebuild(projection, read_model, source, options=RunnerOptions(batch_size=5)), write()
    )
    head = await store.head()
    await stop_task(live)
    await run_until_caught_up(
        ProjectionRunner(source, [(projection, read_model)], options=FAST), store
    )
    assert head is not None
    assert (await read_model.meta("followed")).active == rebuilt.slot == "v1g2"
    assert await model(read_model, "followed") == await expected(store)


async def test_a_new_version_builds_beside_the_old_and_retires_it(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", 2)] * 150)
    read_model = new_model(client)
    source = StoreFeedSource(store)
    old_runner = ProjectionRunner(source, [(counter("versioned"), read_model)], options=FAST)
    old = await run_until(old_runner, lambda: old_runner.states["versioned"].events == 150)

    v2 = counter("versioned", version=2, marker="v2")
    new_runner = ProjectionRunner(
        source, [(v2, read_model)], options=RunnerOptions(batch_size=5, idle_timeout=0.02)
    )
    async with Readers(read_model, "versioned") as readers:
        new = await run_until(
            new_runner, lambda: new_runner.states["versioned"].phase is Phase.LIVE
        )
        await store.append("after-swap", [Added(key="k", n=2)])
        # Wait on the old runner's own task: a second run() of the same runner would race it.
        await until(lambda: old.done() or old_runner.states["versioned"].phase is Phase.RETIRED)
    await stop_task(new)
    await old
    assert old_runner.states["versioned"].phase is Phase.RETIRED

    assert {s for s, _ in readers.seen} <= {"v1g1", "v2g1"}
    assert all(sum_ in (300, 302) for _, sum_ in readers.seen), "a reader saw a partial model"
    await run_until_caught_up(ProjectionRunner(source, [(v2, read_model)], options=FAST), store)
    assert (await read_model.view("versioned")).slot == "v2g1"
    assert await model(read_model, "versioned") == await expected(store)
    assert (await read_model.snapshot("versioned"))["marker"] == "v2"


# -- one leader per projection ----------------------------------------------------------


async def test_a_standby_takes_over_when_the_leader_dies(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", 1)] * 10)
    read_model = new_model(client)
    source = StoreFeedSource(store)
    first = ProjectionRunner(source, [(counter("led"), read_model)], options=FAST)
    second = ProjectionRunner(source, [(counter("led"), read_model)], options=FAST)
    leader = await run_until(first, lambda: first.states["led"].events == 10)
    standby = await run_until(second, lambda: second.states["led"].phase is Phase.STANDBY)

    await append_added(store, [("k", 1)] * 5)
    await until(lambda: first.states["led"].events == 15)
    leader.cancel()  # the leading process dies: its lock connection goes with it
    with pytest.raises(asyncio.CancelledError):
        await leader
    await append_added(store, [("k", 1)] * 5)
    head = await last_committed(store)
    await until(lambda: second.states["led"].position == head)
    assert second.states["led"].phase is Phase.LIVE
    await stop_task(standby)
    assert await model(read_model, "led") == await expected(store)


async def test_a_leader_cut_off_from_its_lock_steps_down_and_nothing_doubles(
    make_pg_store: MakeStore, client: aioredis.Redis, pg_dsn: str
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", 1)] * 10)
    read_model = new_model(client)
    source = StoreFeedSource(store)
    runners = [
        ProjectionRunner(source, [(counter("cut"), read_model)], options=FAST) for _ in range(2)
    ]
    tasks = [await run_until(runners[0], lambda: runners[0].states["cut"].events == 10)]
    tasks.append(
        await run_until(runners[1], lambda: runners[1].states["cut"].phase is Phase.STANDBY)
    )

    lock_pid = runners[0].workers[0].lock.backend_pid  # type: ignore[union-attr]
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (lock_pid,))
    await append_added(store, [("k", 1)] * 20)
    # The last committed event: the feed's head may be held back by a transaction
    # open elsewhere, and the new leader goes past it once that one ends.
    head = await last_committed(store)

    def settled() -> bool:
        phases = sorted(r.states["cut"].phase.value for r in runners)
        leaders = [r for r in runners if r.states["cut"].phase is Phase.LIVE]
        return phases == ["live", "standby"] and leaders[0].states["cut"].position == head

    try:
        await until(settled)
    except TimeoutError:
        raise AssertionError(f"{[r.states for r in runners]} head={head}") from None
    for task in tasks:
        await stop_task(task)
    assert await model(read_model, "cut") == await expected(store)


# -- status ------------------------------------------------------------------------------


async def test_status_shows_lag_and_the_transaction_holding_the_feed_back(
    make_pg_store: MakeStore, client: aioredis.Redis
) -> None:
    store = await make_pg_store()
    await append_added(store, [("k", 1)] * 6)
    read_model = new_model(client)
    projection = counter("watched")
    source = StoreFeedSource(store)
    await run_until_caught_up(
        ProjectionRunner(source, [(projection, read_model)], options=FAST), store
    )
    await append_added(store, [("k", 1)] * 4)

    report = await status(projection, read_model, store)
    assert report.lag_events == 4 and report.lag_seconds > 0
    assert report.held_back_by is None and report.held_back_events == 0
    assert report.checkpoint is not None and report.head is not None
    assert report.checkpoint < report.head

    async with await psycopg.AsyncConnection.connect(store.dsn) as blocker:
        # An open transaction that appended: every later commit waits behind it.
        await store.append("slow", [Added(key="slow", n=1)], connection=blocker)
        await store.append("quick", [Added(key="quick", n=1)])
        held = await status(projection, read_model, store)
        assert held.held_back_events == 1
        assert held.held_back_by is not None
        assert held.held_back_by.pid == blocker.info.backend_pid
        assert held.held_back_by.age_seconds is not None and held.held_back_by.age_seconds >= 0
        assert held.lag_events == 4  # the waiting event is not in the visible feed yet
        await blocker.commit()
    after = await status(projection, read_model, store)
    assert after.held_back_by is None and after.lag_events == 6
