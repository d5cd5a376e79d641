"""The documentation builds with ``mkdocs build --strict``, and strict really is strict.

Skipped only when the docs toolchain (the ``docs`` or ``dev`` extra) is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
    pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[docs]')")

ROOT = Path(__file__).resolve().parents[2]


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # cwd is the checkout: the snippets extension resolves examples/ from it.
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    reference = (tmp_path / "site" / "reference" / "projections" / "index.html").read_text()
    # The API reference is generated from the docstrings of the public names.
    for name in ("projections.Projection", "projections.RedisView", "projections.rebuild"):
        assert f'id="{name}"' in reference, name
    guide = (tmp_path / "site" / "guides" / "first-service" / "index.html").read_text()
    assert "--8&lt;--" not in guide and "cart.ItemAdded" in guide  # snippets were included


@pytest.mark.parametrize(
    ("page", "complaints"),
    [
        ("[gone](missing.md)\n\n[nope][eventstore.NoSuchName]", ["missing.md", "NoSuchName"]),
        ('```python\n--8<-- "shopping_cart/no_such_file.py"\n```', ["no_such_file.py"]),
    ],
    ids=["link-and-reference", "include"],
)
def test_a_broken_link_reference_or_include_fails_the_build(
    tmp_path: Path, page: str, complaints: list[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(f"# Broken\n\n{page}\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        f"INHERIT: {ROOT / 'mkdocs.yml'}\ndocs_dir: {docs}\nnav:\n  - index.md\n"
        "validation:\n  omitted_files: info\n"
    )
    done = _build(config, tmp_path / "site")
    assert done.returncode != 0, done.stdout + done.stderr
    for complaint in complaints:
        assert complaint in done.stdout + done.stderr
