"""The documented compatibility rules of ``compare_schemas``, one case each."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from eventstore import Event, compare_schemas, event_json_schema, incompatible_changes


class Address(BaseModel):
    street: str
    zip: str


class Moved(Event):
    """A customer moved."""

    event_type: ClassVar[str] = "crm.Moved"
    customer: str
    address: Address
    note: str = ""


def changes_to(model: type[Event]) -> list[tuple[str, str, bool]]:
    return [
        (c.path, c.kind, c.compatible)
        for c in compare_schemas(event_json_schema(Moved), event_json_schema(model))
    ]


def test_a_description_change_is_compatible() -> None:
    class Renamed(Event):
        """Another text."""

        customer: str
        address: Address
        note: str = ""

    found = changes_to(Renamed)
    assert found and all(compatible for _, _, compatible in found)
    assert ("(root)", "annotation changed", True) in found


def test_a_field_removed_inside_a_nested_model_is_named_with_its_path() -> None:
    class ShortAddress(BaseModel):
        street: str

    class Changed(Event):
        """A customer moved."""

        customer: str
        address: ShortAddress
        note: str = ""

    assert ("address.zip", "removed", False) in changes_to(Changed)


def test_gaining_a_default_is_compatible_losing_one_is_not() -> None:
    class Relaxed(Event):
        """A customer moved."""

        customer: str = "unknown"
        address: Address
        note: str = ""

    class Stricter(Event):
        """A customer moved."""

        customer: str
        address: Address
        note: str

    assert changes_to(Relaxed) == [("customer", "no longer required", True)]
    assert changes_to(Stricter) == [("note", "now required", False)]


def test_a_changed_default_is_incompatible() -> None:
    class OtherDefault(Event):
        """A customer moved."""

        customer: str
        address: Address
        note: str = "n/a"

    assert changes_to(OtherDefault) == [("note", "default changed", False)]


def test_a_list_item_type_change_is_found_below_the_field() -> None:
    class Tags(Event):
        tags: list[str] = Field(default_factory=list)

    class IntTags(Event):
        tags: list[int] = Field(default_factory=list)

    bad = incompatible_changes(compare_schemas(event_json_schema(Tags), event_json_schema(IntTags)))
    assert [(c.path, c.kind, c.detail) for c in bad] == [
        ("tags[]", "type changed", "was string, now integer")
    ]


def test_recursive_models_compare_without_looping() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    class Tree(Event):
        root: Node

    schema: dict[str, Any] = event_json_schema(Tree)
    assert compare_schemas(schema, schema) == []
