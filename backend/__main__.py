"""`python -m backend`: the cancel signals are trapped first, before the CLI imports torch and
the rest (seconds), and stay trapped until the process exits: a cancel at any moment exits
with the cancelled status and an error event, never a bare signal death."""

import sys

from .events import cancel_on_signals, run_to_exit_status

cancel_on_signals()


def _main() -> int:
    from .cli import main

    return main()


sys.exit(run_to_exit_status(_main, events="--events" in sys.argv[1:]))
