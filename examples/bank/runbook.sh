# The on-call runbook, played on the bank (run from the repository root).
export PYTHONPATH="examples${PYTHONPATH:+:$PYTHONPATH}"  # where the example packages live
export CHRONIK_APP=bank.app:app  # the fixed release; --app picks another
ann=$(python -m bank.seed | awk '{print $1}')  # Ann's and Ben's accounts; release 1 is live

# --8<-- [start:incident]
# Release 1 runs its projections (in production: `chronik run` as a service).
chronik run --until-caught-up --app bank.release1:app
chronik projections status --app bank.release1:app    # closures: 1 dead letter
chronik deadletters list --app bank.release1:app      # the event, and the error it raised
# --8<-- [end:incident]

# --8<-- [start:investigate]
chronik history "account-$ann"                        # what happened, upcast...
chronik history "account-$ann" --raw                  # ...and as stored (schema v1 inside)
chronik state account "$ann" --at-version 2           # the state back then
# --8<-- [end:investigate]

# --8<-- [start:deadletters]
# The closures handler is fixed without a version bump: replay its parked events.
chronik deadletters replay closures
chronik deadletters list                              # nothing parked any more
# --8<-- [end:deadletters]

# --8<-- [start:rebuild]
# balances v2 fixes the sign of withdrawals. What would change? (live copy untouched)
chronik replay balances --into fix-check --diff
# Build v2 beside the live v1, swap readers to it once caught up.
chronik rebuild balances
chronik projections status                            # balances: active v2, no lag
# --8<-- [end:rebuild]
