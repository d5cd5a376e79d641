"""Properties of the upcaster chain, checked against simple models with hypothesis."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from upcasters import MissingUpcasterError, Upcaster, UpcasterChain

Data = dict[str, Any]
Step = Callable[[Data], Data]

keys = st.text(alphabet="abcxyz", max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
event_data = st.dictionaries(keys, json_values, max_size=5)


@dataclass(frozen=True)
class Op:
    """One migration, written both as a pure function and as one that mutates in place."""

    kind: str
    key: str
    value: Any

    def pure(self, data: Data) -> Data:
        if self.kind == "set":
            return {**data, self.key: copy.deepcopy(self.value)}
        if self.kind == "drop":
            return {k: v for k, v in data.items() if k != self.key}
        if self.kind == "wrap":
            return {self.key: dict(data)}
        if self.kind == "scribble":
            scribbled = copy.deepcopy(data)
            _scribble(scribbled)
            return scribbled
        return {**data, self.key: sorted(data)}

    def in_place(self, data: Data) -> Data:
        if self.kind == "set":
            data[self.key] = copy.deepcopy(self.value)
        elif self.kind == "drop":
            data.pop(self.key, None)
        elif self.kind == "wrap":
            inner = dict(data)
            data.clear()
            data[self.key] = inner
        elif self.kind == "scribble":
            _scribble(data)
        else:
            data[self.key] = sorted(data)
        return data


MARK = "scribbled"


def _scribble(value: Any) -> None:
    """Mutate every container in ``value``, however deeply nested."""
    if isinstance(value, dict):
        for item in value.values():
            _scribble(item)
        value[MARK] = True
    elif isinstance(value, list):
        for item in value:
            _scribble(item)
        value.append(MARK)


ops = st.builds(
    Op,
    kind=st.sampled_from(["set", "drop", "wrap", "keys", "scribble"]),
    key=keys,
    value=json_values,
)


@given(
    data=event_data,
    steps=st.lists(st.tuples(ops, st.booleans()), min_size=1, max_size=5),
    start=st.integers(1, 3),
    names=st.lists(st.sampled_from(["A", "B"]), min_size=6, max_size=6),
)
def test_chain_equals_applying_steps_one_by_one(
    data: Data, steps: list[tuple[Op, bool]], start: int, names: list[str]
) -> None:
    chain = UpcasterChain()
    for offset, (op, mutates) in enumerate(steps):
        migrate: Step = op.in_place if mutates else op.pure
        version = start + offset
        chain.register(Upcaster(names[offset], version, migrate, new_type=names[offset + 1]))

    expected = copy.deepcopy(data)
    for op, _ in steps:
        expected = op.pure(expected)

    result = chain.upcast(names[0], start, data)
    assert result.data == expected
    assert result.event_type == names[len(steps)]
    assert result.schema_version == start + len(steps)


@given(data=event_data, steps=st.lists(ops, min_size=1, max_size=4))
def test_upcasting_never_mutates_its_input(data: Data, steps: list[Op]) -> None:
    chain = UpcasterChain(Upcaster("T", v, op.in_place) for v, op in enumerate(steps, start=1))
    before = copy.deepcopy(data)
    result = chain.upcast("T", 1, data)
    assert data == before
    # Mutating the result must not reach back into the input either.
    _scribble(result.data)
    assert data == before


@given(data=event_data)
def test_leaving_nested_objects_untouched_is_not_enough(data: Data) -> None:
    """A step that only mutates nested values (not its top-level dict) is caught too."""

    def nested_only(arg: Data) -> Data:
        for value in arg.values():
            _scribble(value)
        return arg

    before = copy.deepcopy(data)
    UpcasterChain([Upcaster("T", 1, nested_only)]).upcast("T", 1, data)
    assert data == before


def identity(data: Data) -> Data:
    return data


def verdict(chain: UpcasterChain, current: dict[str, int]) -> bool:
    try:
        chain.validate(current)
    except MissingUpcasterError as error:
        assert error.problems
        return False
    return True


@given(current=st.integers(1, 6), versions=st.sets(st.integers(1, 8)))
def test_validate_accepts_exactly_the_gapless_single_type_chains(
    current: int, versions: set[int]
) -> None:
    chain = UpcasterChain(Upcaster("T", v, identity) for v in versions)
    assert verdict(chain, {"T": current}) == (versions == set(range(1, current)))


@st.composite
def lineages(draw: st.DrawFn, alphabet: str) -> tuple[list[str], set[int], set[int]]:
    """The names of one event type at versions 1..N (renames happen where they change),
    the versions whose step is dropped, and extra versions >= N given a stray step."""
    names = draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=6))
    current = len(names)
    dropped = draw(st.sets(st.integers(1, current - 1))) if current > 1 else set()
    beyond = draw(st.sets(st.integers(current, current + 2), max_size=2))
    return names, dropped, beyond


@given(
    first=lineages("ABC"),
    second=lineages("XY"),
    dead_end=st.none() | st.integers(1, 4),
)
def test_validate_accepts_exactly_complete_lineages_with_renames(
    first: tuple[list[str], set[int], set[int]],
    second: tuple[list[str], set[int], set[int]],
    dead_end: int | None,
) -> None:
    chain = UpcasterChain()
    current: dict[str, int] = {}
    for names, dropped, beyond in (first, second):
        current[names[-1]] = len(names)
        for version in range(1, len(names)):
            if version not in dropped:
                new_type = names[version]
                chain.register(Upcaster(names[version - 1], version, identity, new_type))
        for version in beyond:
            chain.register(Upcaster(names[-1], version, identity))
    if dead_end is not None:
        # A step from a retired name to a name nothing knows.
        chain.register(Upcaster("Retired", dead_end, identity, new_type="Nowhere"))

    complete = not any(dropped or beyond for _, dropped, beyond in (first, second))
    expected = complete and dead_end is None
    assert verdict(chain, current) == expected

    if expected:
        # What validate promises: every stored version of the lineage reaches current.
        for names, _, _ in (first, second):
            for version, name in enumerate(names, start=1):
                result = chain.upcast(name, version, {"v": version})
                assert (result.event_type, result.schema_version) == (names[-1], len(names))
