"""``python -m strand``: the ``strand`` command (see strand.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
