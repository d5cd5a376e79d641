"""Crash the saga runner between any two steps, restart it: money is conserved.

Hypothesis picks the commits at which the runner dies: before a transaction,
inside it (everything written, not committed) or right after it commits.  Each
death is a ``BaseException`` thrown out of the runner, as abrupt as the process
ending there: no handler of ours runs, the open transaction is rolled back by
the connection, the checkpoint stays wherever it was.  A fresh runner (new
engine, new feed) then continues.  At the end every transfer is completed or
compensated, never half, and the money over all ledgers is what it was.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.saga_runs import balance, new_id, open_ledger, runner

from aggregates import Repository
from aggregates.ledger import Ledger
from sagas import SagaStatus, list_sagas, start_saga
from sagas.shipped import TRANSFER, transfer_data

D = Decimal


class Crash(BaseException):
    """The process dies here."""


#: The stages of one commit, in the order the engine's hook reports them.
STAGES = ("before", "inside", "after")


class CrashPlan:
    """Dies at the given (commit number, stage) points, in the order they come.

    Commits are counted at "before": a commit retried after a crash is a new one.
    A commit that dies "before" never reaches its "inside" or "after", one that
    dies "inside" never reaches "after": those points are skipped (kept in
    ``missed``) as soon as a later commit begins, else the first of them would
    stand in front of every later point for ever.
    """

    def __init__(self, points: list[tuple[int, str]]) -> None:
        self.points = sorted(points, key=lambda point: (point[0], STAGES.index(point[1])))
        self.commits = 0
        #: The stage each commit that crashed died at.
        self.died: dict[int, str] = {}
        self.missed: list[tuple[int, str]] = []

    def __call__(self, saga_id: str, where: str) -> None:
        if where == "before":
            self.commits += 1
            while self.points and self.points[0][0] < self.commits:
                self.missed.append(self.points.pop(0))
        if self.points and self.points[0] == (self.commits, where):
            self.points.pop(0)
            self.died[self.commits] = where
            raise Crash(f"{where} commit {self.commits} of {saga_id}")

    def passed_by(self, point: tuple[int, str]) -> bool:
        """True when ``point`` was not fired because its commit died at an earlier stage."""
        count, where = point
        died = self.died.get(count)
        return died is not None and STAGES.index(died) < STAGES.index(where)


transfers = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(1, 60)), min_size=1, max_size=8
)
# Each example runs whole transfers on PostgreSQL: a few in CI, the profile's number
# under HYPOTHESIS_PROFILE=thorough.
_EXAMPLES = 15 if settings().max_examples <= 40 else settings().max_examples

crash_points = st.lists(
    st.tuples(st.integers(1, 30), st.sampled_from(["before", "inside", "after"])),
    max_size=6,
    unique=True,
)


# A dead commit's later stages once blocked every crash point after them (CrashPlan).
@example(plan=[(0, 0, 1)], crashes=[(1, "before"), (1, "inside"), (2, "before")], frozen=set())
@settings(max_examples=_EXAMPLES)
@given(plan=transfers, crashes=crash_points, frozen=st.sets(st.integers(0, 4), max_size=2))
async def test_crashes_between_steps_never_lose_or_create_money(
    repo: Repository,
    plan: list[tuple[int, int, int]],
    crashes: list[tuple[int, str]],
    frozen: set[int],
) -> None:
    ledgers = [await open_ledger(repo, 50) for _ in range(5)]
    for index in frozen:
        await repo.update(Ledger, ledgers[index], lambda ledger: ledger.freeze("hold"))
    saga_ids = []
    for source, target, amount in plan:
        saga_id = new_id()
        saga_ids.append(saga_id)
        await start_saga(
            repo, TRANSFER, saga_id, transfer_data(ledgers[source], ledgers[target], amount, "EUR")
        )
    crash = CrashPlan(crashes)
    for _attempt in range(len(crashes) + 1):
        try:
            await runner(repo, sagas=[TRANSFER], on_commit=crash).catch_up()
            break
        except Crash:
            continue
    # Every crash point the run reached did fire (the test is not vacuous): those that
    # did not are either beyond the last commit or of a commit that died earlier on.
    assert all(crash.passed_by(point) for point in crash.missed), (crash.missed, crash.died)
    assert all(count > crash.commits for count, _ in crash.points), (crash.points, crash.commits)
    await runner(repo, sagas=[TRANSFER]).catch_up()  # whatever the crashes left over

    finals = {s.saga_id: s.status for s in await list_sagas(repo.store)}
    assert {finals[i] for i in saga_ids} <= {SagaStatus.COMPLETED, SagaStatus.COMPENSATED}
    balances = [await balance(repo, ledger) for ledger in ledgers]
    assert sum(balances) == 50 * 5
    # Each ledger moved by exactly the completed transfers: none half, none twice.
    expected = [D(50)] * 5
    for saga_id, (source, target, amount) in zip(saga_ids, plan, strict=True):
        if finals[saga_id] == SagaStatus.COMPLETED:
            expected[source] -= amount
            expected[target] += amount
    assert balances == expected
    for saga_id, (source, target, _amount) in zip(saga_ids, plan, strict=True):
        if target in frozen or source in frozen:
            assert finals[saga_id] == SagaStatus.COMPENSATED
