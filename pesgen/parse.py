"""Parsing of the school software's scalar values: amounts and dates, French or ISO.

Each parser returns the value or raises ``ValueError`` with a message meant for
the user ("'1.234,5x' is not an amount"); callers attach the record and mapping key.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

from .errors import shown_value

# Grouping (thousands) separators that are never a decimal separator: spaces of every
# width (U+2007 is the figure space some spreadsheets write) and the Swiss apostrophe
_SPACE_GROUPS = " \u00a0\u202f\u2009\u2007"
# ASCII digits only (\d also takes '٣' or '３', which Decimal and int() accept), and \Z,
# not $, which lets a final newline through
_ISO_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_FR_DATE = re.compile(r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})\Z")
# a date followed by a time of day, as databases and spreadsheets export them
# ('2026-11-20T08:15:00', '2026-11-20 00:00:00.000', '20/11/2026 08:15'): refused, with how
# to bind the date alone (dropping the time is the mapping's to write, not pesgen's to guess)
# a date of one of the two syntaxes written with another separator, as spreadsheets and
# databases set up for another country export it ('20-11-2026', '20.11.2026',
# '2026/11/20'): refused, with the replace() that binds it in the syntax it is close to
_DAY_FIRST_OTHER = re.compile(r"^[0-9]{1,2}([-.])[0-9]{1,2}\1[0-9]{4}\Z")
_YEAR_FIRST_OTHER = re.compile(r"^[0-9]{4}([/.])[0-9]{2}\1[0-9]{2}\Z")
# the same followed by a time of day ('20-11-2026 08:15', '2026.11.20T08:15:00'): the
# date alone ([:10]) with its separators replaced binds it
_OTHER_AND_TIME = re.compile(r"^([0-9]{1,4}[-./][0-9]{1,2}[-./][0-9]{2,4})[T ][0-9]{1,2}[:h]"
                             r"[0-9]{2}")
# a date whose year has two digits ('20/11/26', '26-11-20'): refused, saying the year must
# have four; never read (which century, and even which part is the year, is a guess)
_TWO_DIGITS = r"^[0-9]{1,2}([-/.])[0-9]{1,2}\1[0-9]{2}"
_TWO_DIGIT_YEAR = re.compile(_TWO_DIGITS + r"\Z")
# the same followed by a time of day ('20/11/26 08:15', '26-11-20T08:15:00'): taking the
# date alone ([:10]) would not read it either, the year is what the export must change
_TWO_DIGIT_YEAR_AND_TIME = re.compile(_TWO_DIGITS + r"[T ][0-9]{1,2}[:h][0-9]{2}")
_TWO_DIGITS_SAID = ("its year has two digits: the export must write the year with four "
                    "(pesgen never guesses the century)")
_DATE_AND_TIME = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})"
                            r"[T ][0-9]{1,2}[:h][0-9]{2}")
# an integer part: plain digits, or groups of exactly 3 digits after a first group of
# 1 to 3 (not starting with 0) joined by one grouping character (captured)
_INTEGER = re.compile(r"^(?:[0-9]+|[1-9][0-9]{0,2}(?:([^0-9])[0-9]{3})(?:\1[0-9]{3})*)\Z")
_FRACTION = re.compile(r"^[0-9]+\Z")
# one '.' or one ',' after 1 to 3 digits (not a lone 0) and before exactly 3 digits
_AMBIGUOUS = re.compile(r"^[-+]?(?!0[.,])[0-9]{1,3}[.,][0-9]{3}\Z")

NUMBER_STYLES = ("auto", "iso", "fr")
DATE_STYLES = ("auto", "iso", "fr")
# An amount (or quantity) of more digits than this is refused as too large: Base_Montant
# holds 12 before the decimal point, and the 28-digit decimal context computes totals
# and rounds to the cent only below 10**26
_MAX_INTEGER_DIGITS = 15
# Dates: Base_Date is xs:date, which takes any year from 0001; a year outside this
# window is a typo ('0026' for '2026'), never a billing, debit or birth date
YEAR_MIN, YEAR_MAX = 1900, 2099


class DateWithTime(ValueError):
    """parse_date's refusal of a date followed by a time of day (``2026-11-20T08:15:00``,
    ``20/11/2026 08:15``): its caller may say how to bind the date alone, of
    ``date_length`` characters (10; 8 for ``1/2/2026 08:15``), ``time_mark`` (' ' or 'T')
    between it and the time."""

    def __init__(self, message: str, date_length: int = 10, time_mark: str = " ",
                 reads: str | None = None) -> None:
        super().__init__(message)
        self.date_length = date_length
        self.time_mark = time_mark
        # the input.dates style that reads the date alone when the one given does not
        # ('20/11/2026 08:15' under iso: fr), else None
        self.reads = reads


class DateOtherSeparator(ValueError):
    """parse_date's refusal of a date of one of its syntaxes written with another
    separator (``20-11-2026``): ``separator`` and the one its syntax takes (``wanted``),
    for its caller to say how to bind it with that one; when a time of day follows it
    (``20-11-2026 08:15``), which the binding leaves out too, ``date_length`` the date's
    length (10) and ``time_mark`` the character between them (' ' or 'T'); else None."""

    def __init__(self, message: str, separator: str, wanted: str,
                 date_length: int | None = None, time_mark: str | None = None) -> None:
        super().__init__(message)
        self.separator = separator
        self.wanted = wanted
        self.date_length = date_length
        self.time_mark = time_mark


class AmountWithCurrency(ValueError):
    """parse_amount's refusal of an amount written with its currency sign (``85,00 €``):
    ``currency``, for its caller to say how to bind the amount without it."""

    def __init__(self, message: str, currency: str) -> None:
        super().__init__(message)
        self.currency = currency


def parse_amount(value: object, style: str = "auto") -> Decimal:
    """An amount from text or number. ``1 234,50``, ``1234.50``, ``1.234,50`` (auto/fr).

    A grouping separator (a space of any width, an apostrophe, and the ``.`` of fr or
    the ``,`` of iso) is read only between groups of exactly three digits, one kind per
    amount: ``142 50``, ``1.2,50`` or ``85.00`` in fr are refused, never read as 14250,
    12.50 or 8500. In auto, ``1.500`` or ``45,000`` (one separator, three digits after
    it) is refused as ambiguous: the mapping says which it is with ``input.numbers``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, Decimal):
        return _sized(value, value)
    if isinstance(value, int):
        return _sized(Decimal(value), value)
    if isinstance(value, float):
        # JSON loaded elsewhere than by pesgen; keep the shortest repr, never binary noise.
        return _sized(Decimal(repr(value)), value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an amount")
    try:
        return _amount_text(value, style)
    except ValueError:
        currency = _currency_sign(value, style)
        if currency is None:
            raise
    raise AmountWithCurrency(f"{shown_value(value)} is not an amount: it holds the currency "
                             f"sign {currency!r}; bind the amount without it", currency)


# what a spreadsheet's currency format writes beside an amount ('85,00 €', '€85.00')
_CURRENCY_SIGNS = ("€", "EUR")


def _currency_sign(value: str, style: str) -> str | None:
    """The currency sign an amount refused starts or ends with (``85,00 €``, ``€85.00``,
    ``85.00 EUR``), when what is left is an amount; else None."""
    text = value.strip()
    for currency in _CURRENCY_SIGNS:
        for rest in (text.removeprefix(currency), text.removesuffix(currency)):
            if rest != text:
                try:
                    _amount_text(rest, style)
                except ValueError:
                    continue
                return currency
    return None


def _amount_text(value: str, style: str) -> Decimal:
    text = value.strip()
    sign = ""
    if text[:1] in ("-", "+"):
        sign, text = text[0], text[1:]
    if style == "iso":
        decimal_mark, group_mark = ".", ","
    elif style == "fr":
        decimal_mark, group_mark = ",", "."
    elif "," in text and "." in text:
        # both: the last one is the decimal separator
        decimal_mark, group_mark = (",", ".") if text.rfind(",") > text.rfind(".") \
            else (".", ",")
    elif _AMBIGUOUS.match(text):
        # '1.500' or '45,000': a decimal part of 3 digits, or a thousands separator?
        raise ValueError(f"'{value}' is ambiguous: a decimal separator or a thousands "
                         "separator? (set input.numbers to iso or fr)")
    else:
        # one kind of separator (or none): a decimal separator, read as such
        decimal_mark, group_mark = ("," if "," in text else "."), ""
    integer, mark, fraction = text.rpartition(decimal_mark) if decimal_mark in text \
        else (text, "", "")
    m = _INTEGER.match(integer)
    group = m[1] if m else None
    if not m or (group is not None and group not in _SPACE_GROUPS + "'" + group_mark) or \
            (mark and not _FRACTION.match(fraction)):
        raise ValueError(f"{shown_value(value)} is not an amount{_hint(text, style)}")
    digits = integer if group is None else integer.replace(group, "")
    return _sized(Decimal(f"{sign}{digits}.{fraction}" if mark else f"{sign}{digits}"), value)


def _shown(value: object) -> str:
    """A value refused, as a message shows it: a text by ``shown_value`` (quoted when
    short and plain, else described), a JSON number as written (``46346.5``, not its
    Python repr ``Decimal('46346.5')``), anything else by its repr."""
    if isinstance(value, str):
        return shown_value(value)
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


def _hint(text: str, style: str) -> str:
    """Why a text with separators is not an amount: what the style reads them as."""
    if not any(c in text for c in ",." + _SPACE_GROUPS + "'"):
        return ""
    groups = {"iso": "',' or a space", "fr": "'.' or a space"}.get(
        style, "a space, or the other of '.' and ','")
    decimals = {"iso": "'.'", "fr": "','"}.get(style, "'.' or ','")
    return (f" (input.numbers {style}: decimal separator {decimals}; a thousands separator, "
            f"{groups}, only between groups of 3 digits)")


def _sized(amount: Decimal, value: object) -> Decimal:
    """``amount``, unless it is not finite or has more integer digits than any amount."""
    if not amount.is_finite():
        raise ValueError(f"{_shown(value)} is not an amount")
    if amount and amount.adjusted() >= _MAX_INTEGER_DIGITS:
        shown = value if isinstance(value, str) and len(value) <= 40 else f"{amount:.3E}"
        raise ValueError(f"'{shown}' is too large for an amount (more than "
                         f"{_MAX_INTEGER_DIGITS} digits before the decimal point)")
    return amount


def parse_date(value: object, style: str = "auto") -> date:
    """A date from ``2026-11-20`` (iso/auto) or ``20/11/2026`` (fr/auto), of a year
    from YEAR_MIN to YEAR_MAX."""
    if isinstance(value, datetime):
        return _in_window(value.date(), value)
    if isinstance(value, date):
        return _in_window(value, value)
    if not isinstance(value, str):
        raise ValueError(f"{_shown(value)} is not a date{_serial_hint(value)}")
    text = value.strip()
    m = _ISO_DATE.match(text) if style in ("auto", "iso") else None
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _FR_DATE.match(text) if style in ("auto", "fr") else None
        if not m:
            expected = {"iso": "YYYY-MM-DD", "fr": "DD/MM/YYYY"}.get(
                style, "YYYY-MM-DD or DD/MM/YYYY")
            said = f"{shown_value(value)} is not a date ({expected})"
            if timed := _DATE_AND_TIME.match(text):
                # the date alone, in the syntax the style does not read, would be refused
                # again: the style that reads it is said too
                iso = _ISO_DATE.match(timed[1]) is not None
                reads = None if style == "auto" or (style == "iso") == iso else \
                    "iso" if iso else "fr"
                unread = "" if reads is None else (
                    f", {'YYYY-MM-DD' if iso else 'DD/MM/YYYY'}, which input.dates {style} "
                    "does not read")
                raise DateWithTime(f"{said}; it is a date followed by a time of day{unread}: "
                                   "bind the date alone", len(timed[1]), text[len(timed[1])],
                                   reads)
            if other := _other_separator(text, style):
                syntax, separator, wanted = other
                raise DateOtherSeparator(f"{said}; it is {syntax} with '{separator}' in place "
                                         f"of '{wanted}': bind it with '{wanted}'",
                                         separator, wanted)
            if (timed := _OTHER_AND_TIME.match(text)) and \
                    (other := _other_separator(timed[1], style)):
                syntax, separator, wanted = other
                raise DateOtherSeparator(f"{said}; it is a date followed by a time of day, "
                                         f"{syntax} with '{separator}' in place of "
                                         f"'{wanted}': bind the date alone with '{wanted}'",
                                         separator, wanted, len(timed[1]),
                                         text[len(timed[1])])
            if _TWO_DIGIT_YEAR.match(text):
                raise ValueError(f"{said}; {_TWO_DIGITS_SAID}")
            if _TWO_DIGIT_YEAR_AND_TIME.match(text):
                raise ValueError(f"{said}; it is a date followed by a time of day, and "
                                 f"{_TWO_DIGITS_SAID}; then bind the date alone")
            raise ValueError(f"{said}{_serial_hint(text)}")
        d, mo, y = int(m[1]), int(m[2]), int(m[3])
    try:
        parsed = date(y, mo, d)
    except ValueError:
        raise ValueError(f"{shown_value(value)} is not a valid calendar date"
                         f"{_month_first_hint(m[0], d, mo, y) or _month_length_hint(d, mo, y)}"
                         ) from None
    return _in_window(parsed, value)


def _other_separator(text: str, style: str) -> tuple[str, str, str] | None:
    """(the syntax, the separator written, the one it takes) when ``text`` is a date of a
    syntax ``style`` reads written with another separator (``20-11-2026``), else None."""
    if style in ("auto", "fr") and (m := _DAY_FIRST_OTHER.match(text)):
        return "DD/MM/YYYY", m[1], "/"
    if style in ("auto", "iso") and (m := _YEAR_FIRST_OTHER.match(text)):
        return "YYYY-MM-DD", m[1], "-"
    return None


def _month_length_hint(day: int, month: int, year: int) -> str:
    """Why a date whose month exists is refused: its day is past the month's last
    (``31/02/2026``), said with how many days the month has, so that the school's data is
    corrected without a calendar at hand."""
    if not 1 <= month <= 12 or not 1 <= year <= 9999 or day < 1:
        return ""
    days = calendar.monthrange(year, month)[1]
    if day <= days:
        return ""
    return f" ({_MONTHS[month - 1]} {year} has {days} days)"


# English names whatever the locale (calendar.month_name follows LC_TIME)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def _month_first_hint(text: str, day: int, month: int, year: int) -> str:
    """What a DD/MM/YYYY date whose month is over 12 most likely is: the month written
    first, as English-language software writes dates (``11/20/2026``), said with the day
    it would be; never read so (every date of such an export whose day is 12 or less
    would be read the wrong way round, silently)."""
    if "/" not in text or not 1 <= day <= 12 <= month:
        return ""
    try:
        would_be = date(year, day, month)
    except ValueError:
        return ""
    return (f" (DD/MM/YYYY has no month {month}); month first (MM/DD/YYYY, as "
            f"English-language software writes dates) it would be {would_be.isoformat()}: "
            "the export must write the day first (DD/MM/YYYY) or YYYY-MM-DD, or every "
            "date of it whose day is 12 or less is read the wrong way round")


# the day a spreadsheet's serial date 0 stands for (1900 date system, after its 29
# February 1900 that never was)
_SERIAL_EPOCH = date(1899, 12, 30)
_SERIAL = re.compile(r"^([0-9]{5})(?:\.[0-9]+)?\Z")


def _serial_hint(value: object) -> str:
    """What a number of five digits refused as a date most likely is: a spreadsheet's
    serial date (46346 is 2026-11-20), said with the day it would be; never read as one."""
    m = _SERIAL.match(str(value).strip()) if isinstance(value, (str, int, Decimal)) and \
        not isinstance(value, bool) else None
    if m is None:
        return ""
    day = _SERIAL_EPOCH + timedelta(days=int(m[1]))
    if not YEAR_MIN <= day.year <= YEAR_MAX:
        return ""
    return (f"; a spreadsheet's serial date ({m[1]} would be {day.isoformat()})? the export "
            "should write the date as text, YYYY-MM-DD or DD/MM/YYYY")


def _in_window(day: date, value: object) -> date:
    if not YEAR_MIN <= day.year <= YEAR_MAX:
        shown = value if isinstance(value, str) else day.isoformat()
        raise ValueError(f"'{shown}': year {day.year:04d} is outside {YEAR_MIN}-{YEAR_MAX} "
                         "(a typo?)")
    return day


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
    # a text quoted as it is (a payment method bound as a flag: 'PRELEVEMENT'), not
    # described as _shown describes texts
    raise ValueError(f"{repr(value) if isinstance(value, str) else _shown(value)} is not a "
                     "yes/no value")
