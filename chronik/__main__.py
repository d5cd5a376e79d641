"""``python -m chronik``: the same as the ``chronik`` command."""

import sys

from chronik._entry import main

if __name__ == "__main__":
    sys.exit(main())
