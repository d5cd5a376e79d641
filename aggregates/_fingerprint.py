"""A stable fingerprint of an aggregate's state schema, for snapshot invalidation.

A snapshot is only as good as the code that reads it: when the state model changes
shape, old snapshots must be ignored.  The fingerprint hashes the model's JSON schema
without its human text (titles and descriptions), so editing a docstring does not
throw every snapshot away, while adding, removing or retyping a field does.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Keys whose values map names to schemas: their keys are field or definition names,
# never annotations, and must survive the stripping below.
_NAME_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_TEXT_KEYS = frozenset({"title", "description", "examples"})


def schema_fingerprint(type_name: str, state_version: int, schema: dict[str, Any]) -> str:
    """``sha256`` hex digest of the type name, state version and stripped schema."""
    document = {"aggregate": type_name, "state_version": state_version, "schema": _strip(schema)}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _strip(node: Any, names: bool = False) -> Any:
    if isinstance(node, dict):
        if names:
            return {key: _strip(value) for key, value in node.items()}
        return {
            key: _strip(value, key in _NAME_MAPS)
            for key, value in node.items()
            if key not in _TEXT_KEYS
        }
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node
