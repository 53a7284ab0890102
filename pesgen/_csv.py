"""Text cells of the CSV files pesgen writes for people and spreadsheets (the payment
references beside an export, the PayFiP payments, the Datamatrix payloads).

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
formula by a spreadsheet opening the file (CSV injection: ``=HYPERLINK(...)`` sends
data away). A text cell holding a value from outside (the input, PayFiP's answer) is
written with an apostrophe before such a first character, as OWASP advises: the
spreadsheet shows the text, and the apostrophe says the value was guarded.

Not for a vendor import format (a finance package reads those files, not a
spreadsheet, and ``-12,50`` is an amount there), nor for pesgen's own numbers.
"""

from __future__ import annotations

from typing import Any

# a cell a spreadsheet reads as a formula starts with one of these (OWASP, CSV injection)
FORMULA_START = frozenset("=+-@\t\r")


def text_cell(value: Any) -> Any:
    """``value`` fit for a CSV text cell: a string starting as a formula gets an
    apostrophe before it; any other value (None, a number, a safe text) is unchanged."""
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return value
