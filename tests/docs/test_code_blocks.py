"""Every code block of the guides is code the test suite runs.

A python or shell block in ``docs/`` may only include (``--8<--``) a section of an
example file that ``tests/integration/test_examples.py`` runs, directly or through an
import; ``text`` and ``mermaid`` blocks (output, diagrams) are not code.  So a guide
cannot show code that was never run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

# What test_examples.py runs: its modules and scripts, and the modules they import.
RUN_BY_THE_TESTS = {
    "shopping_cart/cli.sh",
    "shopping_cart/main.py",
    "shopping_cart/cart.py",
    "shopping_cart/read_model.py",
    "shopping_cart/app.py",
    "bank/runbook.sh",
    "bank/seed.py",
    "bank/evolve.py",
    "bank/read_models.py",
    "bank/account.py",
    "bank/views.py",
    "bank/release1.py",
    "bank/app.py",
    "streaming/publish.py",
    "streaming/consume.py",
    "streaming/sagas_guide.py",
    "streaming/cdc.py",
    "streaming/careless.py",
    "streaming/schema_test.py",
    "streaming/deploy_check.sh",
    "streaming/operate.sh",
    "streaming/cluster.py",
    "django_outbox/main.py",
    "django_outbox/orders.py",
    "django_outbox/models.py",
}
CODE = {"python", "py", "sh", "bash", "shell", "console"}
NOT_CODE = {"text", "mermaid"}
FENCE = re.compile(r"^```(\S*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::([A-Za-z0-9_-]+))?"$')

PAGES = sorted(DOCS.rglob("*.md"))


def test_the_run_list_matches_the_examples() -> None:
    files = {
        str(path.relative_to(EXAMPLES))
        for path in EXAMPLES.rglob("*")
        if path.suffix in {".py", ".sh"} and path.name != "__init__.py"
    }
    assert files == RUN_BY_THE_TESTS


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_code_blocks_only_include_tested_examples(page: Path) -> None:
    for language, body in FENCE.findall(page.read_text()):
        if language in NOT_CODE:
            continue
        assert language in CODE, f"{page.name}: a ```{language} block (use text or a language)"
        lines = body.strip().splitlines()
        assert lines, f"{page.name}: an empty code block"
        for line in lines:
            found = INCLUDE.match(line.strip())
            assert found, f"{page.name}: code written inline, not included: {line!r}"
            path, section = found.groups()
            assert path in RUN_BY_THE_TESTS, f"{page.name}: {path} is not run by the tests"
            if section:
                text = (EXAMPLES / path).read_text()
                assert f"--8<-- [start:{section}]" in text, (page.name, path, section)
                assert f"--8<-- [end:{section}]" in text, (page.name, path, section)


def test_the_guides_have_code() -> None:
    guides = [page for page in PAGES if page.parent.name == "guides"]
    assert len(guides) >= 5
    with_code = [page for page in guides if "--8<--" in page.read_text()]
    assert len(with_code) >= 4, with_code
