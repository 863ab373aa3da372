"""``python -m hwgen.flows …``: the rendered Makefile's helper steps (:mod:`hwgen.flows.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
