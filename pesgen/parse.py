"""Parsing of the school software's scalar values: amounts and dates, French or ISO.

Each parser returns the value or raises ``ValueError`` with a message meant for
the user ("'1.234,5x' is not an amount"); callers attach the record and mapping key.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009'")
# ASCII digits only (\d also takes '٣' or '３', which Decimal and int() accept), and \Z,
# not $, which lets a final newline through
_ISO_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_FR_DATE = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\Z")
_NUMBER = re.compile(r"^[-+]?[0-9]+(\.[0-9]+)?\Z")
# one '.' or one ',' after 1 to 3 digits (not a lone 0) and before exactly 3 digits
_AMBIGUOUS = re.compile(r"^[-+]?(?!0[.,])[0-9]{1,3}[.,][0-9]{3}\Z")

NUMBER_STYLES = ("auto", "iso", "fr")
DATE_STYLES = ("auto", "iso", "fr")


def parse_amount(value: object, style: str = "auto") -> Decimal:
    """An amount from text or number. ``1 234,50``, ``1234.50``, ``1.234,50`` (auto/fr).
    In auto, ``1.500`` or ``45,000`` (one separator, three digits after it) is refused
    as ambiguous: the mapping says which it is with ``input.numbers``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # JSON loaded elsewhere than by pesgen; keep the shortest repr, never binary noise.
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an amount")
    text = value.strip().translate(_SPACES)
    if style == "iso":
        normalized = text.replace(",", "") if "." in text else text
    elif style == "fr":
        normalized = text.replace(".", "").replace(",", ".")
    else:
        has_comma, has_dot = "," in text, "." in text
        if has_comma and has_dot:
            if text.rfind(",") > text.rfind("."):
                normalized = text.replace(".", "").replace(",", ".")
            else:
                normalized = text.replace(",", "")
        elif _AMBIGUOUS.match(text):
            # '1.500' or '45,000': a decimal part of 3 digits, or a thousands separator?
            raise ValueError(f"'{value}' is ambiguous: a decimal separator or a thousands "
                             "separator? (set input.numbers to iso or fr)")
        elif has_comma:
            normalized = text.replace(",", ".")
        else:
            normalized = text
    if not _NUMBER.match(normalized):
        raise ValueError(f"'{value}' is not an amount")
    try:
        return Decimal(normalized)
    except InvalidOperation:  # pragma: no cover - regex guards it
        raise ValueError(f"'{value}' is not an amount") from None


def parse_date(value: object, style: str = "auto") -> date:
    """A date from ``2026-11-20`` (iso/auto) or ``20/11/2026`` (fr/auto)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date")
    text = value.strip()
    m = _ISO_DATE.match(text) if style in ("auto", "iso") else None
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _FR_DATE.match(text) if style in ("auto", "fr") else None
        if not m:
            expected = {"iso": "YYYY-MM-DD", "fr": "DD/MM/YYYY"}.get(
                style, "YYYY-MM-DD or DD/MM/YYYY")
            raise ValueError(f"'{value}' is not a date ({expected})")
        d, mo, y = int(m[1]), int(m[2]), int(m[3])
    try:
        return date(y, mo, d)
    except ValueError:
        raise ValueError(f"'{value}' is not a valid calendar date") from None


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "oui", "o", "y"):
            return True
        if low in ("0", "false", "no", "non", "n", ""):
            return False
    raise ValueError(f"{value!r} is not a yes/no value")
