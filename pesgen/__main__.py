"""``python -m pesgen``: the same as the ``pesgen`` command."""

from .cli import main

main()
