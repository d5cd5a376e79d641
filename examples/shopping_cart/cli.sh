# The chronik command on the shop (run from the repository root).
# --8<-- [start:run]
export PYTHONPATH="examples${PYTHONPATH:+:$PYTHONPATH}"  # where the example packages live
export CHRONIK_APP=shopping_cart.app:app  # or --app, or [tool.chronik] app in pyproject.toml
stream=$(python -m shopping_cart.main | awk 'NR == 1 {print $1}')  # cart-1a2b3c4d
# --8<-- [end:run]

# --8<-- [start:commands]
chronik streams --type cart                       # every cart: type, version, last change
chronik history "$stream"                         # its events as the app sees them
chronik state cart "${stream#cart-}"              # its state now...
chronik state cart "${stream#cart-}" --at-version 2   # ...and after its 2nd event
chronik run --until-caught-up                     # the app's projections, then stop
chronik projections status                        # checkpoint, lag, dead letters
# --8<-- [end:commands]
