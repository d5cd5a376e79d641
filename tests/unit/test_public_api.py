"""Each package's ``__all__`` is exactly what it exports, and everything in it resolves."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "upcasters",
    "eventstore",
    "snapshots",
    "aggregates",
    "projections",
    "messaging",
    "sagas",
    "chronik",
]
# Side by side above projections: neither imports the other.
SIDE_BY_SIDE = {"messaging": {"sagas"}, "sagas": {"messaging"}}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    package = importlib.import_module(name)
    for public in package.__all__:
        getattr(package, public)  # resolves names a package loads on first use (chronik)
    exported = {
        attribute
        for attribute, value in vars(package).items()
        if not attribute.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attribute != "annotations"
    }
    assert set(package.__all__) == exported
    assert len(package.__all__) == len(set(package.__all__)), "a name is listed twice"


@pytest.mark.parametrize("name", PACKAGES)
def test_imports_point_one_way(name: str) -> None:
    # upcasters <- eventstore <- snapshots <- aggregates <- projections
    #   <- (messaging, sagas side by side: neither imports the other) <- chronik
    order = PACKAGES
    package = importlib.import_module(name)
    for public in package.__all__:
        getattr(package, public)
    higher = set(order[order.index(name) + 1 :]) | SIDE_BY_SIDE.get(name, set())
    for module in list(vars(package).values()):
        if isinstance(module, types.ModuleType) and module.__name__.startswith(f"{name}."):
            for value in vars(module).values():
                origin = getattr(value, "__module__", None) or ""
                assert origin.split(".")[0] not in higher, (module.__name__, origin)


SYNC_PACKAGES = {
    "eventstore.sync": "eventstore",
    "snapshots.sync": "snapshots",
    "aggregates.sync": "aggregates",
    "projections.sync": "projections",
}


@pytest.mark.parametrize("name", sorted(SYNC_PACKAGES))
def test_sync_subpackages_export_their_all_and_import_no_higher(name: str) -> None:
    # The generated sync API mirrors its package: same public names, same
    # direction of imports (nothing in eventstore.sync reaches snapshots...).
    package = importlib.import_module(name)
    exported = {
        attribute
        for attribute, value in vars(package).items()
        if not attribute.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(package.__all__) == exported
    parent = importlib.import_module(SYNC_PACKAGES[name])
    for attribute in package.__all__:
        if attribute != "Closing":
            assert attribute in parent.__all__, f"{name}.{attribute} has no async twin"
    higher = set(PACKAGES[PACKAGES.index(SYNC_PACKAGES[name]) + 1 :])
    for module in list(vars(package).values()):
        if isinstance(module, types.ModuleType):
            for value in vars(module).values():
                origin = getattr(value, "__module__", None) or ""
                assert origin.split(".")[0] not in higher, (module.__name__, origin)


def test_messaging_reads_the_store_through_its_public_api() -> None:
    # The relay once ran the store's feed_page SQL and called its private
    # _wake_up_listener: a change inside eventstore would have broken it silently.
    # It uses read_raw_page and listen_for_appends now; keep it that way.
    import pathlib
    import re

    import messaging

    private = re.compile(
        r"\bstore\._[a-z]\w*|\bfeed_page\b|\bfrom eventstore\._|\bimport eventstore\._"
    )
    root = pathlib.Path(messaging.__file__).parent
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(root.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line) and not line.lstrip().startswith("#")
    ]
    assert found == []
