"""Unit tests of the upcaster chain: running steps, errors, and start-up validation."""

from __future__ import annotations

import pickle
from types import MappingProxyType
from typing import Any

import pytest

import upcasters
from upcasters import (
    MissingUpcasterError,
    Upcaster,
    UpcasterChain,
    UpcasterConflictError,
    UpcasterError,
    UpcastResult,
    UpcastStepError,
)

Data = dict[str, Any]


def add_currency(data: Data) -> Data:
    return {**data, "currency": "EUR"}


def cents(data: Data) -> Data:
    return {**data, "amount": round(data["amount"] * 100)}


def ledger_chain() -> UpcasterChain:
    return UpcasterChain(
        [
            Upcaster("ledger.Deposited", 1, add_currency),
            Upcaster("ledger.Deposited", 2, cents),
        ]
    )


def test_public_api_is_pinned() -> None:
    assert sorted(upcasters.__all__) == sorted(
        [
            "Migration",
            "MissingUpcasterError",
            "UpcastPath",
            "UpcastResult",
            "UpcastStepError",
            "Upcaster",
            "UpcasterChain",
            "UpcasterConflictError",
            "UpcasterError",
        ]
    )
    for name in upcasters.__all__:
        assert hasattr(upcasters, name)


def test_error_tree() -> None:
    for error in (UpcastStepError, MissingUpcasterError, UpcasterConflictError):
        assert issubclass(error, UpcasterError)
    assert issubclass(UpcasterError, Exception)


# --- running steps ---------------------------------------------------------------------


def test_single_step() -> None:
    chain = UpcasterChain([Upcaster("ledger.Deposited", 1, add_currency)])
    result = chain.upcast("ledger.Deposited", 1, {"amount": 5})
    assert result == UpcastResult("ledger.Deposited", 2, {"amount": 5, "currency": "EUR"})


def test_multi_step_chain_applies_steps_in_version_order() -> None:
    result = ledger_chain().upcast("ledger.Deposited", 1, {"amount": 1.5})
    assert result == UpcastResult("ledger.Deposited", 3, {"amount": 150, "currency": "EUR"})


def test_chain_starts_at_the_stored_version() -> None:
    result = ledger_chain().upcast("ledger.Deposited", 2, {"amount": 2.0})
    assert result == UpcastResult("ledger.Deposited", 3, {"amount": 200})


def test_rename_continues_under_the_new_name() -> None:
    chain = UpcasterChain()

    @chain.upcaster("Deposited", from_version=1, new_type="ledger.Deposited")
    def move(data: Data) -> Data:
        return {**data, "moved": True}

    chain.register(Upcaster("ledger.Deposited", 2, add_currency))

    result = chain.upcast("Deposited", 1, {"amount": 1})
    assert result == UpcastResult(
        "ledger.Deposited", 3, {"amount": 1, "moved": True, "currency": "EUR"}
    )
    # The decorator returns the function itself, so it stays testable on its own.
    assert move({}) == {"moved": True}


def test_no_step_is_a_fast_path_returning_the_same_objects() -> None:
    data = {"amount": 1}
    chain = ledger_chain()
    result = chain.upcast("ledger.Deposited", 3, data)
    assert result.data is data
    assert (result.event_type, result.schema_version) == ("ledger.Deposited", 3)
    assert chain.upcast("other.Type", 1, data).data is data
    assert not chain.has_steps("ledger.Deposited", 3)
    assert chain.has_steps("ledger.Deposited", 1)


def test_fast_path_turns_a_read_only_mapping_into_a_dict() -> None:
    result = ledger_chain().upcast("ledger.Deposited", 3, MappingProxyType({"amount": 1}))
    assert type(result.data) is dict
    assert result.data == {"amount": 1}


def test_upcast_accepts_a_read_only_mapping() -> None:
    frozen = MappingProxyType({"amount": 1.0})
    result = ledger_chain().upcast("ledger.Deposited", 1, frozen)
    assert result.data == {"amount": 100, "currency": "EUR"}


def test_step_mutating_its_argument_leaves_the_callers_data_alone() -> None:
    def in_place(data: Data) -> Data:
        data["tags"].append("new")
        data["added"] = 1
        return data

    chain = UpcasterChain([Upcaster("T", 1, in_place)])
    stored = {"tags": ["old"]}
    result = chain.upcast("T", 1, stored)
    assert stored == {"tags": ["old"]}
    assert result.data == {"tags": ["old", "new"], "added": 1}


def test_decorator_registers_with_the_given_version() -> None:
    chain = UpcasterChain()

    @chain.upcaster("T", from_version=4)
    def step(data: Data) -> Data:
        return data

    assert [(u.event_type, u.from_version, u.migrate) for u in chain] == [("T", 4, step)]


def test_len_and_iteration_list_steps_sorted() -> None:
    chain = UpcasterChain(
        [Upcaster("b", 1, cents), Upcaster("a", 2, cents), Upcaster("a", 1, cents)]
    )
    assert len(chain) == 3
    assert [(u.event_type, u.from_version) for u in chain] == [("a", 1), ("a", 2), ("b", 1)]


def test_step_descriptions() -> None:
    assert Upcaster("ledger.Deposited", 1, cents).step == "ledger.Deposited v1->v2"
    renamed = Upcaster("Deposited", 2, cents, new_type="ledger.Deposited")
    assert renamed.step == "Deposited v2 -> ledger.Deposited v3"
    assert (renamed.to_type, renamed.to_version) == ("ledger.Deposited", 3)
    # Naming the same type is not a rename.
    assert Upcaster("T", 1, cents, new_type="T").step == "T v1->v2"


@pytest.mark.parametrize(
    "args",
    [("", 1, cents), ("T", 0, cents), ("T", True, cents), ("T", "1", cents), ("T", 1, "nope")],
)
def test_bad_upcaster_definitions_fail_where_they_are_written(args: tuple[Any, ...]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Upcaster(*args)


def test_empty_new_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="new_type of T v1"):
        Upcaster("T", 1, cents, new_type="")


# --- registration and step failures ---------------------------------------------------


def test_double_registration_conflicts() -> None:
    chain = ledger_chain()
    with pytest.raises(UpcasterConflictError) as info:
        chain.register(Upcaster("ledger.Deposited", 1, cents, new_type="X"))
    error = info.value
    assert (error.event_type, error.from_version) == ("ledger.Deposited", 1)
    assert error.existing_step == "ledger.Deposited v1->v2"
    assert error.new_step == "ledger.Deposited v1 -> X v2"
    assert "ledger.Deposited v1" in str(error)
    # The first registration stays in force.
    assert chain.upcast("ledger.Deposited", 1, {"amount": 1}).data["currency"] == "EUR"
    assert len(chain) == 2


def test_conflict_through_the_constructor() -> None:
    with pytest.raises(UpcasterConflictError):
        UpcasterChain([Upcaster("T", 1, cents), Upcaster("T", 1, add_currency)])


def test_raising_step_is_wrapped_with_stored_type_version_and_cause() -> None:
    boom = KeyError("amount")

    def broken(data: Data) -> Data:
        raise boom

    chain = UpcasterChain([Upcaster("ledger.Deposited", 1, add_currency)])
    chain.register(Upcaster("ledger.Deposited", 2, broken))
    with pytest.raises(UpcastStepError) as info:
        chain.upcast("ledger.Deposited", 1, {})
    error = info.value
    assert error.event_type == "ledger.Deposited"
    assert error.stored_version == 1
    assert error.step == "ledger.Deposited v2->v3"
    assert error.cause is boom
    assert error.__cause__ is boom
    message = str(error)
    assert "ledger.Deposited v1" in message
    assert "v2->v3" in message
    assert "KeyError" in message


def test_non_dict_return_is_a_step_error() -> None:
    chain = UpcasterChain([Upcaster("T", 3, lambda data: [data])])  # type: ignore[arg-type, return-value]
    with pytest.raises(UpcastStepError) as info:
        chain.upcast("T", 3, {"a": 1})
    error = info.value
    assert (error.event_type, error.stored_version, error.step) == ("T", 3, "T v3->v4")
    assert isinstance(error.__cause__, TypeError)
    assert "list" in str(error)


def test_step_errors_can_be_caught_as_upcaster_errors() -> None:
    def broken(data: Data) -> Data:
        raise ValueError("bad")

    with pytest.raises(UpcasterError):
        UpcasterChain([Upcaster("T", 1, broken)]).upcast("T", 1, {})


# --- validation -------------------------------------------------------------------------


def problems_of(chain: UpcasterChain, current: dict[str, int]) -> list[str]:
    with pytest.raises(MissingUpcasterError) as info:
        chain.validate(current)
    assert all(problem in str(info.value) for problem in info.value.problems)
    return info.value.problems


def test_validate_passes_for_a_complete_chain() -> None:
    ledger_chain().validate({"ledger.Deposited": 3, "ledger.Withdrawn": 1})


def test_validate_passes_for_a_chain_with_a_rename() -> None:
    chain = UpcasterChain(
        [
            Upcaster("Deposited", 1, cents, new_type="ledger.Deposited"),
            Upcaster("ledger.Deposited", 2, add_currency),
        ]
    )
    # ledger.Deposited v1 never existed: v1 was stored under the old name.
    chain.validate({"ledger.Deposited": 3})


def test_validate_passes_for_an_empty_chain_of_first_versions() -> None:
    UpcasterChain().validate({"a": 1, "b": 1})


def test_validate_finds_a_missing_middle_step() -> None:
    chain = UpcasterChain([Upcaster("T", 1, cents), Upcaster("T", 3, cents)])
    problems = problems_of(chain, {"T": 4})
    assert any("T v1->v2 dead-ends at T v2" in p for p in problems)
    assert any("T v1..v2 cannot be upcast" in p and "missing step T v2->v3" in p for p in problems)


def test_validate_finds_a_missing_first_step() -> None:
    chain = UpcasterChain([Upcaster("T", 2, cents)])
    assert problems_of(chain, {"T": 3}) == [
        "T v1 cannot be upcast to the current v3: missing step T v1->v2"
    ]


def test_validate_finds_a_type_with_no_steps_at_all() -> None:
    assert problems_of(UpcasterChain(), {"T": 2}) == [
        "T v1 cannot be upcast to the current v2: missing step T v1->v2"
    ]


def test_validate_finds_a_dead_end_rename() -> None:
    # Renamed to a name the application does not know, so events would stop there.
    chain = UpcasterChain(
        [
            Upcaster("Deposited", 1, cents, new_type="ledger.Deposit"),
            Upcaster("ledger.Deposited", 2, cents),
        ]
    )
    problems = problems_of(chain, {"ledger.Deposited": 3})
    assert any(
        "Deposited v1 -> ledger.Deposit v2 dead-ends at ledger.Deposit v2" in p
        and "not a known event type" in p
        for p in problems
    )
    assert any("missing step ledger.Deposited v1->v2" in p for p in problems)


def test_validate_finds_a_step_beyond_the_current_version() -> None:
    chain = ledger_chain()
    chain.register(Upcaster("ledger.Deposited", 3, cents))
    problems = problems_of(chain, {"ledger.Deposited": 3})
    assert problems == [
        "step ledger.Deposited v3->v4 reads the current version of ledger.Deposited (v3) "
        "and would move current events past it"
    ]
    chain.register(Upcaster("ledger.Deposited", 5, cents))
    problems = problems_of(chain, {"ledger.Deposited": 3})
    assert any("v5->v6 is beyond the current version" in p for p in problems)


def test_validate_finds_a_rename_beyond_the_current_version() -> None:
    chain = UpcasterChain([Upcaster("Old", 3, cents, new_type="T"), Upcaster("T", 1, cents)])
    problems = problems_of(chain, {"T": 2})
    assert problems == ["step Old v3 -> T v4 leads beyond the current version of T (v2)"]


def test_validate_reports_every_problem_at_once() -> None:
    chain = UpcasterChain([Upcaster("a", 2, cents), Upcaster("b", 1, cents)])
    problems = problems_of(chain, {"a": 3, "b": 1, "c": 2, "d": 0})
    assert len(problems) == 4
    text = "\n".join(problems)
    for fact in ("a v1->v2", "b v1->v2", "c v1->v2", "current version of d"):
        assert fact in text


def test_validate_rejects_an_old_name_reused_by_a_current_type() -> None:
    chain = UpcasterChain([Upcaster("A", 1, cents, new_type="B")])
    problems = problems_of(chain, {"A": 1, "B": 2})
    assert problems == [
        "step A v1 -> B v2 reads the current version of A (v1) and would move current "
        "events past it"
    ]


# --- pickling ---------------------------------------------------------------------------


class FussyError(Exception):
    """Pickles, but cannot be unpickled: its __init__ takes more than its args."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")


@pytest.mark.parametrize(
    "error",
    [
        UpcastStepError("T", 1, "T v2->v3", ValueError("bad")),
        UpcastStepError("T", 1, "T v2->v3"),
        MissingUpcasterError(["one", "two"]),
        UpcasterConflictError("T", 1, "T v1->v2", "T v1 -> U v2"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_survive_pickle(error: UpcasterError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    attributes = {
        name: getattr(error, name)
        for name in ("event_type", "stored_version", "step", "problems", "from_version")
        if hasattr(error, name)
    }
    assert attributes
    assert attributes == {name: getattr(copy, name) for name in attributes}
    if isinstance(error, UpcastStepError) and error.cause is not None:
        assert isinstance(copy, UpcastStepError)
        assert repr(copy.cause) == repr(error.cause)


def test_step_error_with_an_unpicklable_cause_still_round_trips() -> None:
    error = UpcastStepError("T", 1, "T v1->v2", FussyError("amount", "missing"))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.event_type, copy.stored_version, copy.step) == ("T", 1, "T v1->v2")
    assert copy.cause is None
    assert str(copy) == str(error)
    assert "FussyError: amount: missing" in str(copy)
