"""``promptci`` and ``python -m promptci``: a warm worker answers where it may, else this process."""

import sys


def entry() -> int:
    """Hand the command to the project's warm worker before the CLI is even imported; run it here
    where no worker may answer."""
    from .worker.client import forward

    code = forward(sys.argv[1:])
    if code is not None:
        return code
    from .cli import main

    return main()


if __name__ == "__main__":
    sys.exit(entry())
