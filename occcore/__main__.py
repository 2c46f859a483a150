"""``python -m occcore``: the same as the ``occcore`` command."""
from occcore.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
