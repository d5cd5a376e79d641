"""The schema comparison against random models: compatible changes pass, others fail.

Models are built with pydantic from random field specs, so the schemas compared
are the ones the registry really stores; ``compare_schemas`` is pure, no I/O.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import create_model

from eventstore import Event, compare_schemas, event_json_schema, incompatible_changes

# Types whose JSON Schemas all differ from each other.
TYPES: list[Any] = [int, str, bool, float, list[str], dict[str, int], int | None, list[int]]
DEFAULTS: dict[Any, Any] = {
    int: 0,
    str: "",
    bool: False,
    float: 0.5,
    list[str]: [],
    dict[str, int]: {},
    int | None: None,
    list[int]: [],
}
names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


@st.composite
def field_specs(draw: st.DrawFn) -> dict[str, tuple[int, bool]]:
    """name -> (index into TYPES, has a default)."""
    return draw(
        st.dictionaries(
            names, st.tuples(st.integers(0, len(TYPES) - 1), st.booleans()), min_size=1, max_size=6
        )
    )


def schema_of(spec: dict[str, tuple[int, bool]], doc: str = "") -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, (kind, has_default) in spec.items():
        annotation = TYPES[kind]
        fields[name] = (annotation, DEFAULTS[annotation]) if has_default else (annotation, ...)
    model = create_model("Generated", __base__=Event, __doc__=doc or None, **fields)
    return event_json_schema(model)


@given(field_specs(), names, st.integers(0, len(TYPES) - 1), st.text(max_size=20))
def test_an_optional_field_or_a_new_description_is_compatible(
    spec: dict[str, tuple[int, bool]], new_name: str, kind: int, doc: str
) -> None:
    changed = dict(spec)
    added = new_name not in spec
    if added:
        changed[new_name] = (kind, True)
    changes = compare_schemas(schema_of(spec), schema_of(changed, doc))
    assert incompatible_changes(changes) == [], changes
    if added:
        assert [c.kind for c in changes if c.path == new_name] == ["added with a default"]


@given(field_specs(), st.data())
def test_a_removed_field_is_incompatible_and_named(
    spec: dict[str, tuple[int, bool]], data: st.DataObject
) -> None:
    gone = data.draw(st.sampled_from(sorted(spec)))
    changed = {name: value for name, value in spec.items() if name != gone}
    bad = incompatible_changes(compare_schemas(schema_of(spec), schema_of(changed)))
    assert [(c.path, c.kind) for c in bad] == [(gone, "removed")]


@given(field_specs(), st.data())
def test_a_changed_type_is_incompatible_and_named(
    spec: dict[str, tuple[int, bool]], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(spec)))
    kind, has_default = spec[name]
    other = data.draw(st.integers(0, len(TYPES) - 1).filter(lambda k: k != kind))
    changed = {**spec, name: (other, has_default)}
    bad = incompatible_changes(compare_schemas(schema_of(spec), schema_of(changed)))
    assert bad, "a type change passed as compatible"
    assert {c.path.split(".")[0].split("[")[0].split("{")[0] for c in bad} == {name}


@given(field_specs(), names, st.integers(0, len(TYPES) - 1))
def test_a_new_required_field_is_incompatible(
    spec: dict[str, tuple[int, bool]], new_name: str, kind: int
) -> None:
    assume(new_name not in spec)
    changed = {**spec, new_name: (kind, False)}
    bad = incompatible_changes(compare_schemas(schema_of(spec), schema_of(changed)))
    assert [(c.path, c.kind) for c in bad] == [(new_name, "added as required")]


@given(field_specs())
def test_a_schema_is_compatible_with_itself(spec: dict[str, tuple[int, bool]]) -> None:
    assert compare_schemas(schema_of(spec), schema_of(spec)) == []
