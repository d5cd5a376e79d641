"""The pre-deploy check as a test of your own (pytest collects a `test_` function)."""

from __future__ import annotations

import os

from bank.app import app

from chronik.testing import check_schemas


# --8<-- [start:pytest]
def test_this_release_reads_the_stored_history() -> None:
    # A fixture database, or a copy restored from a dump of production.
    # check_schemas raises SchemaCheckFailed, with the whole report, when it fails.
    report = check_schemas(app, os.environ["DATABASE_URL"], check_all=True)
    print(report.render())


# --8<-- [end:pytest]


if __name__ == "__main__":
    test_this_release_reads_the_stored_history()
