"""Named Jinja filters: all formatting templates and mapping expressions may use.

Templates do no arithmetic and no strftime: an amount is ``{{ x | amount }}``, a
date ``{{ d | isodate }}``. Each filter is a plain function, unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from typing import Any

from .memo import remember

_CENT = Decimal("0.01")
_NON_DIGITS = re.compile(r"[^0-9]+")  # ASCII digits only (\D keeps "٤")


_AMOUNTS: dict[tuple[Decimal, str], str] = {}


def amount(value: Decimal | int | str, decimal_sep: str = ".") -> str:
    """``Decimal('282.7')`` -> ``'282.70'``: 2 decimals, no thousands separator.
    Refuses values that would need rounding (amounts are exact by then). Memoised for
    a finite, non-zero ``Decimal`` (equal ones give the same text; 0 and -0 do not)."""
    if type(value) is Decimal and value.is_finite() and value:
        key = (value, decimal_sep)
        text = _AMOUNTS.get(key)
        if text is None:
            text = _amount(value, decimal_sep)
            remember(_AMOUNTS, key, text)
        return text
    return _amount(value, decimal_sep)


def _amount(value: Decimal | int | str, decimal_sep: str) -> str:
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    q = d.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if q != d:
        raise RefusedValue(f"amount {value} has more than 2 decimals", value)
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


# A field, a record: no width a format needs comes near this (a guard against a width
# computed by mistake, or on purpose, which would fill memory).
MAX_WIDTH = 10_000


def _said(value: Any, text: str) -> str:
    """How a refusal speaks of a value: a number (an amount in cents, a count, a piece
    number) as it is; a text by its length only: it may be a family's name or street,
    and pesgen's messages carry no billing data beyond the record and the binding that
    hold it (the export names them)."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return repr(text)
    return f"a text of {len(text)} characters"


class RefusedValue(ValueError):
    """A value a filter refuses for what it holds (``fixed``, ``zfill``: longer than
    their width; ``amount``: more than 2 decimals; ``csv_record``: a delimiter it may
    not quote): ``value`` is the value as the template gave it, for an export to name
    the binding it holds (``sample.binding_of_value``)."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


def _width(width: int) -> int:
    if not isinstance(width, int) or not 0 <= width <= MAX_WIDTH:
        raise ValueError(f"width {width!r} is not between 0 and {MAX_WIDTH}")
    return width


def zfill(value: Any, width: int) -> str:
    if value is None:  # str() would write '0None'
        raise ValueError("zfill of None: the value is not set (guard it, or give it a default)")
    text = str(value)
    if len(text) > _width(width):
        raise RefusedValue(f"{_said(value, text)} is longer than {width} characters",
                           value)
    return text.zfill(width)


def zfill_as_before(value: Any, width: int) -> str:
    """``zfill`` as pesgen had it before it refused None (2026-12-01): None zero-filled as
    the word, ``'0None'`` at width 5, ``'None'`` at 4, refused below (longer than the
    width). Only to rebuild a run recorded then, whose sha256 holds those bytes (a
    template environment that ``writes_none``: runs.regenerate)."""
    return zfill("None" if value is None else value, width)


def fixed(value: Any, width: int, align: str = "left", fill: str = " ") -> str:
    """A fixed-width field; refuses a value longer than the width (no silent cut)."""
    text = "" if value is None else str(value)
    if len(text) > _width(width):
        raise RefusedValue(f"{_said(value, text)} is longer than {width} characters", value)
    if align == "left":
        return text.ljust(width, fill)
    if fill == "0" and text[:1] in ("-", "+"):
        return text.zfill(width)  # the sign comes before the zeros: '-0000012'
    return text.rjust(width, fill)


def csv_field(value: Any, delimiter: str = ";", quote: str = '"') -> str:
    """Quote a CSV field only when needed (delimiter, quote or line break inside)."""
    text = "" if value is None else str(value)
    if any(ch in text for ch in (delimiter, quote, "\n", "\r")):
        return quote + text.replace(quote, quote * 2) + quote
    return text


def yesno(value: Any, yes: str = "1", no: str = "0") -> str:
    return yes if value else no


def number(value: Decimal | int | str | None, decimal_sep: str = ".") -> str:
    """A quantity without useless zeros: ``Decimal('1.00')`` -> ``'1'``,
    ``Decimal('1.50')`` -> ``'1.5'`` (``'1,5'`` with ``decimal_sep=','``)."""
    if value is None:
        return ""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    # normalize() drops the trailing zeros (1.50 -> 1.5, 1.00 -> 1), and :f writes a
    # normalized value without any (1E+2 -> 100, never '100.' or '1.50')
    text = f"{d.normalize():f}"
    return text.replace(".", decimal_sep) if decimal_sep != "." else text


_QUOTINGS = ("always", "minimal", "never")


def csv_record(values: Any, delimiter: str = ";", quoting: str = "minimal", quote: str = '"',
               size: int | None = None, unquoted: Any = ()) -> str:
    """One CSV record (without its line ending).

    ``values`` is a list, or a dict ``{position: value}`` with 1-based positions and
    ``size`` columns in all (the other columns are empty) so a template can fill the
    few columns of a wide vendor file by number. ``None`` is empty. ``quoting``:
    ``always`` (every value quoted, empty is ``""``), ``minimal`` (quoted only when it
    holds the delimiter, the quote or a line break) or ``never`` (refused when quoting
    would be needed). Positions in ``unquoted`` are never quoted (numbers in a
    file that quotes text)."""
    if isinstance(values, dict):
        if size is None:
            raise ValueError("csv_record with a {position: value} dict needs size=")
        _width(size)
        bad = [k for k in values if not isinstance(k, int) or not 1 <= k <= size]
        if bad:
            raise ValueError(f"csv_record: positions {bad} are outside 1..{size}")
        cells = [None] * size
        for position, value in values.items():
            cells[position - 1] = value
    else:
        cells = list(values)
        if size is not None and len(cells) != size:
            raise ValueError(f"csv_record: {len(cells)} values, the record has {size} columns")
    if quoting not in _QUOTINGS:  # a mistyped mode would quote as 'never' does
        raise ValueError(f"csv_record: quoting {quoting!r} is not one of "
                         f"{', '.join(map(repr, _QUOTINGS))}")
    skip = set(unquoted)
    doubled = quote * 2
    if quoting == "always" and not skip and cells:
        # every value quoted (e.magnus' 125 columns): one join
        texts = ["" if cell is None else str(cell) for cell in cells]
        if quote in "".join(texts):
            texts = [text.replace(quote, doubled) for text in texts]
        return quote + (quote + delimiter + quote).join(texts) + quote
    special = _special_characters(delimiter, quote)
    out = []
    for position, cell in enumerate(cells, start=1):
        text = "" if cell is None else str(cell)
        mode = "never" if position in skip else quoting
        if mode == "always":
            out.append(quote + text.replace(quote, doubled) + quote)
        elif not special(text):
            out.append(text)
        elif mode == "minimal":
            out.append(quote + text.replace(quote, doubled) + quote)
        else:
            held = _special_held(text, delimiter, quote)
            raise RefusedValue(f"csv_record: the value at position {position} "
                               f"({_said(cell, text)}) holds {held} and may not be quoted",
                               cell)
    return delimiter.join(out)


def _special_held(text: str, delimiter: str, quote: str) -> str:
    """What of the delimiter, the quote and a line break ``text`` holds, said by name."""
    held = [f"the delimiter {delimiter!r}" if delimiter in text else "",
            f"the quote {quote!r}" if quote in text else "",
            "a line break" if "\n" in text or "\r" in text else ""]
    said = [x for x in held if x]
    return " and ".join((", ".join(said[:-1]), said[-1])) if len(said) > 1 else said[0]


@lru_cache(maxsize=16)
def _special_characters(delimiter: str, quote: str) -> Callable[[str], Any]:
    """Whether a CSV value holds the delimiter, the quote or a line break (then it is
    quoted, or refused): a compiled regex's search, once per delimiter and quote."""
    return re.compile("|".join(map(re.escape, (delimiter, quote, "\n", "\r")))).search


@dataclass(frozen=True, slots=True)
class Imputation:
    """Lines of a title that share one imputation, with their summed amount."""

    product_code: str
    nature: str
    fonction: str | None
    operation: str | None
    amount: Decimal
    lines: tuple[Any, ...]


def by_imputation(lines: Any) -> list[Imputation]:
    """Group a title's lines by imputation (product, nature, fonction, operation) in
    first-seen order, summing their amounts: one accounting entry per imputation."""
    groups: dict[tuple[str, str, str | None, str | None], list[Any]] = {}
    for ln in lines:
        groups.setdefault((ln.product_code, ln.nature, ln.fonction, ln.operation), []).append(ln)
    return [Imputation(key[0], key[1], key[2], key[3],
                       sum((ln.amount for ln in group), Decimal(0)), tuple(group))
            for key, group in groups.items()]


@dataclass(frozen=True, slots=True)
class Pricing:
    quantity: Decimal
    unit_price: Decimal


def pricing(line: Any) -> Pricing:
    """Quantity and unit price that multiply to the line's amount: the exported ones
    when they do, else 1 x amount (a line netted by a discount, or without a price)."""
    q, u = getattr(line, "quantity", None), getattr(line, "unit_price", None)
    if q is not None and u is not None and q > 0 and q * u == line.amount:
        return Pricing(q, u)
    return Pricing(Decimal(1), line.amount)


FILTERS = {
    "number": number,
    "csv_record": csv_record,
    "by_imputation": by_imputation,
    "pricing": pricing,
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
