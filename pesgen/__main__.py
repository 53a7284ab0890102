"""``python -m pesgen``: the same as the ``pesgen`` command."""

from ._entry import main

main()
