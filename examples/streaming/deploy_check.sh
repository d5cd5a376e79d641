# Schemas in CI: run from the repository root, against a copy of production's events.
export PYTHONPATH="examples${PYTHONPATH:+:$PYTHONPATH}"
python -m bank.seed >/dev/null  # a history: release 1's events, then release 2's

# --8<-- [start:register]
chronik schemas register --app bank.app:app   # what this release writes (appends do it too)
# --8<-- [end:register]

# --8<-- [start:check]
# Before a deploy: exit 1 if the release about to go out cannot read the history
# (--all: every stored event, not a sample; --json: a report for the CI's artifacts).
chronik schemas check --app bank.app:app --all --json > "${TMPDIR:-/tmp}/schema-report.json"
# --8<-- [end:check]

# --8<-- [start:refused]
if chronik schemas check --app streaming.careless:app; then
    echo "the careless release passed: this must not happen" && exit 1
fi
# --8<-- [end:refused]

# --8<-- [start:export]
# JSON Schema files, index.json and asyncapi.json (the relay's topics); --base-url: where
# the folder is served, as the relay's --schema-base-url (both read CHRONIK_SCHEMA_BASE_URL).
chronik schemas export --app bank.app:app --out "${TMPDIR:-/tmp}/schemas" \
    --base-url https://schemas.example.com/bank
# --8<-- [end:export]
python -m streaming.schema_test
