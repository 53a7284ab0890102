"""Named Jinja filters: all formatting templates and mapping expressions may use.

Templates do no arithmetic and no strftime: an amount is ``{{ x | amount }}``, a
date ``{{ d | isodate }}``. Each filter is a plain function, unit-tested.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

_CENT = Decimal("0.01")
_NON_DIGITS = re.compile(r"\D+")


def amount(value: Decimal | int | str, decimal_sep: str = ".") -> str:
    """``Decimal('282.7')`` -> ``'282.70'``: 2 decimals, no thousands separator.
    Refuses values that would need rounding (amounts are exact by then)."""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    q = d.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if q != d:
        raise ValueError(f"amount {value} has more than 2 decimals")
    text = f"{q:.2f}"
    return text.replace(".", decimal_sep) if decimal_sep != "." else text


def cents(value: Decimal) -> int:
    """Integer cents of an exact 2-decimal amount."""
    return int((value * 100).to_integral_exact())


def isodate(value: date) -> str:
    return value.isoformat()


def frdate(value: date) -> str:
    return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"


def compactdate(value: date) -> str:
    """``20261120``: the AAAAMMJJ form of flat files."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def digits(value: Any) -> str:
    """Only the digits of a value: ``FA-2026-00101`` -> ``202600101``."""
    return _NON_DIGITS.sub("", "" if value is None else str(value))


def zfill(value: Any, width: int) -> str:
    text = str(value)
    if len(text) > width:
        raise ValueError(f"{text!r} is longer than {width}")
    return text.zfill(width)


def fixed(value: Any, width: int, align: str = "left", fill: str = " ") -> str:
    """A fixed-width field; refuses a value longer than the width (no silent cut)."""
    text = "" if value is None else str(value)
    if len(text) > width:
        raise ValueError(f"{text!r} is longer than {width} characters")
    return text.ljust(width, fill) if align == "left" else text.rjust(width, fill)


def csv_field(value: Any, delimiter: str = ";", quote: str = '"') -> str:
    """Quote a CSV field only when needed (delimiter, quote or line break inside)."""
    text = "" if value is None else str(value)
    if any(ch in text for ch in (delimiter, quote, "\n", "\r")):
        return quote + text.replace(quote, quote * 2) + quote
    return text


def yesno(value: Any, yes: str = "1", no: str = "0") -> str:
    return yes if value else no


FILTERS = {
    "amount": amount,
    "cents": cents,
    "isodate": isodate,
    "frdate": frdate,
    "compactdate": compactdate,
    "digits": digits,
    "zfill": zfill,
    "fixed": fixed,
    "csv_field": csv_field,
    "yesno": yesno,
}
