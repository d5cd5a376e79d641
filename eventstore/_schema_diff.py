"""Which changes between two JSON Schemas of one event version are safe.

Pure and I/O-free: the registry uses it when a model registers again under a
version that already has a schema, and ``chronik schemas check`` uses it to refuse
a model changed without a version bump.

The rule, deliberately narrow: a change is *compatible* when every event stored
under the old schema still validates into the new model and means the same.
Exactly three kinds of change pass:

* a new field that is not required (it has a default): old events simply lack it;
* a required field that gains a default ("no longer required");
* annotations only: ``title``, ``description``, ``examples``, ``$comment``.

Everything else is incompatible: a field removed (old events carry it and
``extra="forbid"`` refuses them), a type or constraint changed, a required field
added, a default changed (old events that lack the field would change meaning).
Such a change needs a new ``event_version`` and an upcaster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SchemaChange", "compare_schemas", "incompatible_changes"]

_ANNOTATIONS = frozenset({"title", "description", "examples", "$comment"})
# Titles are derived from Python class and field names: a rename is not news.
_REPORTED_ANNOTATIONS = _ANNOTATIONS - {"title"}
# Keys whose value is one subschema, and the suffix the path gets below them.
_SUBSCHEMA = {"items": "[]", "additionalProperties": "{}", "not": "(not)"}
_SUBSCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_HANDLED = frozenset({"properties", "required", "default", "$defs", "$ref"})
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """One difference: where (``path``, dotted field names), what, and whether it is safe."""

    path: str
    kind: str
    compatible: bool
    detail: str = ""

    def __str__(self) -> str:
        verdict = "compatible" if self.compatible else "INCOMPATIBLE"
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.path}: {self.kind}{detail} ({verdict})"


def compare_schemas(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[SchemaChange]:
    """Every difference between two JSON Schemas (as pydantic writes them), in field order.

    ``$ref`` pointers into each document's own ``$defs`` are followed, so renaming
    a nested model is no change, while a field removed inside it is reported as
    ``outer.inner``.
    """
    changes: list[SchemaChange] = []
    _Walk(old, new, changes).node(old, new, "(root)", frozenset())
    return changes


def incompatible_changes(changes: list[SchemaChange]) -> list[SchemaChange]:
    return [change for change in changes if not change.compatible]


class _Walk:
    def __init__(
        self, old_root: Mapping[str, Any], new_root: Mapping[str, Any], out: list[SchemaChange]
    ) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.out = out

    def node(self, old: Any, new: Any, path: str, seen: frozenset[tuple[str, str]]) -> None:
        if not isinstance(old, Mapping) or not isinstance(new, Mapping):
            if _normal(old, self.old_root) != _normal(new, self.new_root):
                self._type_changed(path, old, new)
            return
        refs = (str(old.get("$ref", "")), str(new.get("$ref", "")))
        if refs != ("", ""):
            if refs in seen:  # a recursive model: this pair is being compared already
                return
            seen = seen | {refs}
        old, new = _resolve(old, self.old_root), _resolve(new, self.new_root)
        changed = sorted(
            k for k in _REPORTED_ANNOTATIONS if old.get(k, _MISSING) != new.get(k, _MISSING)
        )
        if changed:
            self.out.append(SchemaChange(path, "annotation changed", True, ", ".join(changed)))
        if "properties" in old or "properties" in new:
            self._properties(old, new, path, seen)
        if self._structure_differs(old, new, path, seen):
            self._type_changed(path, old, new)

    def _properties(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, seen: frozenset[Any]
    ) -> None:
        old_props: Mapping[str, Any] = old.get("properties") or {}
        new_props: Mapping[str, Any] = new.get("properties") or {}
        old_required = set(old.get("required") or ())
        new_required = set(new.get("required") or ())
        prefix = "" if path == "(root)" else f"{path}."
        for name in old_props:
            where = prefix + name
            if name not in new_props:
                self.out.append(
                    SchemaChange(where, "removed", False, _summary(old_props[name], self.old_root))
                )
                continue
            self._field(
                old_props[name],
                new_props[name],
                where,
                name in old_required,
                name in new_required,
                seen,
            )
        for name in new_props:
            if name in old_props:
                continue
            where, summary = prefix + name, _summary(new_props[name], self.new_root)
            if name in new_required:
                self.out.append(SchemaChange(where, "added as required", False, summary))
            else:
                default = _default_text(new_props[name])
                self.out.append(
                    SchemaChange(where, "added with a default", True, f"{summary}{default}")
                )

    def _field(
        self,
        old: Any,
        new: Any,
        where: str,
        was_required: bool,
        is_required: bool,
        seen: frozenset[Any],
    ) -> None:
        old_default = old.get("default", _MISSING) if isinstance(old, Mapping) else _MISSING
        new_default = new.get("default", _MISSING) if isinstance(new, Mapping) else _MISSING
        if was_required and not is_required:
            self.out.append(
                SchemaChange(where, "no longer required", True, _default_text(new).strip())
            )
        elif is_required and not was_required:
            self.out.append(SchemaChange(where, "now required", False, "old events may lack it"))
        elif not is_required and old_default != new_default:
            self.out.append(
                SchemaChange(
                    where,
                    "default changed",
                    False,
                    f"was {_value(old_default)}, now {_value(new_default)}",
                )
            )
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            old = {k: v for k, v in old.items() if k != "default"}
            new = {k: v for k, v in new.items() if k != "default"}
        self.node(old, new, where, seen)

    def _structure_differs(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, seen: frozenset[Any]
    ) -> bool:
        """Recurse into subschemas; True when a key of this node itself differs."""
        differs = False
        for key in sorted((old.keys() | new.keys()) - _ANNOTATIONS - _HANDLED):
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if key in _SUBSCHEMA and isinstance(a, Mapping) and isinstance(b, Mapping):
                self.node(a, b, path + _SUBSCHEMA[key], seen)
            elif (
                key in _SUBSCHEMA_LISTS
                and isinstance(a, list)
                and isinstance(b, list)
                and len(a) == len(b)
            ):
                for left, right in zip(a, b, strict=True):
                    self.node(left, right, path, seen)
            elif _normal(a, self.old_root) != _normal(b, self.new_root):
                differs = True
        return differs

    def _type_changed(self, path: str, old: Any, new: Any) -> None:
        was, now = _summary(old, self.old_root), _summary(new, self.new_root)
        detail = f"was {was}, now {now}" if was != now else "a constraint changed"
        self.out.append(SchemaChange(path, "type changed", False, detail))


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """The node with a local ``$ref`` replaced by its definition (siblings kept)."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part, {}) if isinstance(target, Mapping) else {}
    merged = dict(target) if isinstance(target, Mapping) else {}
    merged.update((k, v) for k, v in node.items() if k != "$ref")
    return merged


def _normal(node: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """The node without annotations and with refs resolved: what equality means here."""
    if depth > 32:  # recursive models: deep enough to tell real differences apart
        return "..."
    if isinstance(node, Mapping):
        node = _resolve(node, root)
        return {
            k: _normal(v, root, depth + 1)
            for k, v in node.items()
            if k not in _ANNOTATIONS and k != "$defs"
        }
    if isinstance(node, list):
        return [_normal(item, root, depth + 1) for item in node]
    return node


def _summary(node: Any, root: Mapping[str, Any], depth: int = 0) -> str:
    """A short type for people: ``string``, ``integer|null``, ``array of string``, ``Address``."""
    if not isinstance(node, Mapping):
        return json.dumps(node)
    ref = node.get("$ref")
    if isinstance(ref, str):
        return ref.rsplit("/", 1)[-1]
    if depth > 3:
        return "..."
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            return "|".join(_summary(item, root, depth + 1) for item in node[key])
    if "const" in node:
        return f"const {json.dumps(node['const'])}"
    if isinstance(node.get("enum"), list):
        return "enum " + "|".join(json.dumps(v) for v in node["enum"])
    kind = node.get("type")
    text = "|".join(kind) if isinstance(kind, list) else str(kind) if kind else "any"
    if kind == "array" and isinstance(node.get("items"), Mapping):
        text = f"array of {_summary(node['items'], root, depth + 1)}"
    elif kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
        text = f"object of {_summary(node['additionalProperties'], root, depth + 1)}"
    extras = [
        k
        for k in ("format", "pattern", "minimum", "maximum", "minLength", "maxLength")
        if k in node
    ]
    if extras:
        text += "(" + ", ".join(f"{k}={node[k]}" for k in extras) + ")"
    return text


def _default_text(node: Any) -> str:
    if isinstance(node, Mapping) and "default" in node:
        return f" = {_value(node['default'])}"
    return ""


def _value(value: Any) -> str:
    return "(none)" if value is _MISSING else json.dumps(value, sort_keys=True)
