"""The ``pesgen`` command's first code (the console script, ``python -m pesgen``): as
light as can be, so that Ctrl-C or SIGTERM while the command line loads (typer, rich,
the commands: a tenth of a second or more) is said as the command says it, exit 130,
not as a traceback (Ctrl-C) nor as a silent end (SIGTERM, which ``cli.main`` had not
yet turned into an interrupt). Nothing has been done then: nothing to undo."""

from __future__ import annotations

import os
import signal
import sys

# what a command interrupted before it did anything says (docs/flow.md, exit 130); the
# others say "interrupted"
_SAID = {"export": "interrupted: nothing written, no number used",
         "regenerate": "interrupted: nothing written"}


def terminate(signum: int, _frame: object) -> None:
    """SIGTERM (a service manager, `timeout`, `kill`) unwinds like Ctrl-C: temporary
    files are removed and the open transaction is rolled back on the way out."""
    raise KeyboardInterrupt(f"signal {signum}")


def interrupted(args: list[str]) -> str:
    """The line said for a command (``args``: the command line's words after
    ``pesgen``) interrupted before it began."""
    command = next((word for word in args if not word.startswith("-")), "")
    return _SAID.get(command, "interrupted")


def main() -> None:
    signal.signal(signal.SIGTERM, terminate)
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        try:  # written through to the descriptor: nothing left buffered for the exit
            os.write(2, (interrupted(sys.argv[1:]) + "\n").encode())
        except OSError:
            pass  # standard error closed, or its reader gone: the exit code says it
        sys.exit(130)
    run()
