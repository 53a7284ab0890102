"""What an export keeps of each title it rendered, until the run is written and recorded:
(invoice, IdPce, NumDette, Per, Cle1, Cle2, amount), in columns of machine numbers
rather than a tuple of objects per title.

A tuple of str, int and Decimal per title was ~300 bytes (the tuple, its Decimal, its
IdPce, Cle1 and NumDette objects); the columns take ~40 (the invoice number's text is
the duplicate check's, shared). A value a column cannot hold exactly (an amount of more
than 18 digits, a NumDette not of ASCII digits) is kept as it is, aside.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from .keys import debt_key

Figures = tuple[str, int, "str | None", str, "str | None", "str | None", Decimal]

_NONE = -1


class _Codes:
    """A column of few distinct values (Per, Cle1, Cle2): a code per title
    (``TitleFigures.append`` looks a value up in ``index``, ``add`` only a new one)."""

    def __init__(self) -> None:
        self.codes = array("H")
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}

    def add(self, value: Any) -> int:
        """The code of a value not in the column yet."""
        code = self.index[value] = len(self.values)
        if code > 0xFFFF:
            raise OverflowError("more than 65 536 distinct values")
        self.values.append(value)
        return code


def coefficient_exponent(amount: Decimal) -> tuple[int, int] | None:
    """``amount`` as (coefficient, exponent) (``Decimal(coefficient).scaleb(exponent)``
    is ``amount``, its exponent too), or None if it is not finite, is -0, or its
    coefficient has more than 18 digits or its exponent is outside -128..127. Read from
    its text when that is plain digits with a decimal point or none (what an amount
    writes: 40 ns, against 300 for ``as_tuple``); from ``as_tuple`` otherwise."""
    text = str(amount)
    whole, point, fraction = text.partition(".")
    digits = whole + fraction
    if digits.isdigit() or (digits[:1] == "-" and digits[1:].isdigit()):
        coefficient = int(digits)
        # (written without an exponent, 18 digits at most have at most 24 decimals)
        if -_MAX_COEFFICIENT < coefficient < _MAX_COEFFICIENT and \
                not (coefficient == 0 and digits[0] == "-"):
            return coefficient, -len(fraction)
        return None
    return _coefficient_exponent(amount)


def _coefficient_exponent(amount: Decimal) -> tuple[int, int] | None:
    """``coefficient_exponent`` from ``as_tuple`` (an amount written with an exponent,
    or not finite)."""
    sign, digits, exponent = amount.as_tuple()
    if isinstance(exponent, int) and -128 <= exponent <= 127 and len(digits) <= 18 \
            and not (sign and not any(digits)):
        return int(amount.scaleb(-exponent)), exponent
    return None


_MAX_COEFFICIENT = 10 ** 18
_AMOUNTS_MADE = 4096  # distinct amounts a read of the figures makes once


class TitleFigures:
    """The figures of a bordereau's titles, in rendering order: ``append`` one title's,
    ``len``, ``[k]`` and iteration give the tuple (invoice, IdPce, NumDette, Per, Cle1,
    Cle2, amount) as it was appended."""

    def __init__(self) -> None:
        self.invoices: list[str] = []
        self._pieces = array("q")
        # NumDette: its value and its number of digits (leading zeros), -1: none
        self._debts = array("q")
        self._debt_digits = array("B")
        # the amount: its coefficient and exponent (Decimal(coefficient).scaleb(exponent))
        self._coefficients = array("q")
        self._exponents = array("b")
        self._per, self._cle1, self._cle2 = _Codes(), _Codes(), _Codes()
        self._aside: dict[tuple[int, int], Any] = {}  # (title, field) -> a value as it is
        # each title's number of lines as rendered (IdLigne 1 to it), -1: not given; the
        # store keeps it (run_invoices.line_count), not a field of the tuple above
        self._lines = array("l")

    def append(self, invoice: str, piece: int, debt: str | None, per: str,
               cle1: str | None, cle2: str | None, amount: Decimal,
               lines: int | None = None) -> None:
        k = len(self.invoices)
        self.invoices.append(invoice)
        self._pieces.append(piece)
        self._lines.append(_NONE if lines is None else lines)
        if debt is None:
            self._debts.append(_NONE)
            self._debt_digits.append(0)
        elif debt.isascii() and debt.isdigit() and len(debt) <= 18:
            self._debts.append(int(debt))
            self._debt_digits.append(len(debt))
        else:
            self._debts.append(_NONE)
            self._debt_digits.append(0)
            self._aside[k, 2] = debt
        parts = coefficient_exponent(amount)
        if parts is None:  # not finite, -0, or too long for the columns
            self._coefficients.append(0)
            self._exponents.append(0)
            self._aside[k, 6] = amount
        else:
            self._coefficients.append(parts[0])
            self._exponents.append(parts[1])
        for column, value in ((self._per, per), (self._cle1, cle1), (self._cle2, cle2)):
            code = column.index.get(value)
            if code is None:
                code = column.add(value)
            column.codes.append(code)

    def __len__(self) -> int:
        return len(self.invoices)

    def debt(self, k: int) -> str | None:
        value = self._debts[k]
        if value == _NONE:
            return self._aside.get((k, 2))
        return str(value).zfill(self._debt_digits[k])

    def amount(self, k: int) -> Decimal:
        if (k, 6) in self._aside:
            return self._aside[k, 6]
        return Decimal(self._coefficients[k]).scaleb(self._exponents[k])

    def __getitem__(self, k: int) -> Figures:
        if k < 0:
            k += len(self.invoices)
        return (self.invoices[k], self._pieces[k], self.debt(k),
                self._per.values[self._per.codes[k]],
                self._cle1.values[self._cle1.codes[k]],
                self._cle2.values[self._cle2.codes[k]], self.amount(k))

    def __iter__(self) -> Iterator[Figures]:
        return self.span(0, len(self.invoices))

    def span(self, start: int, stop: int) -> Iterator[Figures]:
        """The titles ``start`` to ``stop`` (0 <= start <= stop <= len), as ``[k]`` gives
        each, read column by column (the payment references CSV and the run's rows
        read every title: 1 µs a title less than ``[k]``)."""
        aside = self._aside
        amounts: dict[tuple[int, int], Decimal] = {}  # made once each: amounts repeat
        columns = zip(self.invoices[start:stop], self._pieces[start:stop],
                      self._debts[start:stop], self._debt_digits[start:stop],
                      self._coefficients[start:stop], self._exponents[start:stop],
                      map(self._per.values.__getitem__, self._per.codes[start:stop]),
                      map(self._cle1.values.__getitem__, self._cle1.codes[start:stop]),
                      map(self._cle2.values.__getitem__, self._cle2.codes[start:stop]),
                      strict=True)
        amount: Decimal | None  # a miss of ``amounts`` is made below
        for k, (inv, piece, value, digits, coefficient, exponent, per, cle1,
                cle2) in enumerate(columns, start):
            debt = None if value == _NONE else str(value).zfill(digits)
            if aside and ((k, 2) in aside or (k, 6) in aside):
                debt, amount = self.debt(k), self.amount(k)
            else:
                amount = amounts.get((coefficient, exponent))
                if amount is None:
                    amount = Decimal(coefficient).scaleb(exponent)
                    if len(amounts) < _AMOUNTS_MADE:
                        amounts[coefficient, exponent] = amount
            yield inv, piece, debt, per, cle1, cle2, amount

    def line_counts(self, start: int, stop: int) -> list[int | None]:
        """The number of lines of the titles ``start`` to ``stop`` (None: not given)."""
        return [None if n == _NONE else n for n in self._lines[start:stop]]

    def has_debts(self) -> bool:
        """Whether any title has a NumDette."""
        return any(d != _NONE for d in self._debts) or any(f == 2 for _, f in self._aside)


class RunInvoices:
    """Every title of a run once its numbers are allocated, bordereau after bordereau:
    (invoice, IdBord, IdPce, NumDette as ``keys.debt_key`` gives it, amount), made from
    each bordereau's ``TitleFigures`` as they are read (``len``, iteration, slices)."""

    def __init__(self) -> None:
        self._parts: list[tuple[int, TitleFigures]] = []

    def add(self, id_bord: int, titles: TitleFigures) -> None:
        self._parts.append((id_bord, titles))

    def clear(self) -> None:
        self._parts.clear()

    def __len__(self) -> int:
        return sum(len(titles) for _, titles in self._parts)

    def __iter__(self) -> Iterator[tuple[str, int, int, str | None, Decimal]]:
        for id_bord, titles in self._parts:
            yield from self._rows(id_bord, titles, 0, len(titles))

    @staticmethod
    def _rows(id_bord: int, titles: TitleFigures, start: int,
              stop: int) -> Iterator[tuple[str, int, int, str | None, Decimal]]:
        for inv, piece, debt, _per, _c1, _c2, amount in titles.span(start, stop):
            yield inv, id_bord, piece, None if debt is None else debt_key(debt), amount

    def __getitem__(self, index: slice) -> list[tuple[str, int, int, str | None, Decimal]]:
        out: list[tuple[str, int, int, str | None, Decimal]] = []
        for id_bord, titles, first, last in self._spans(index):
            out.extend(self._rows(id_bord, titles, first, last))
        return out

    def line_counts(self, index: slice) -> list[int | None]:
        """Each title's number of lines (``TitleFigures.line_counts``), of the titles
        ``[index]`` gives, in the same order."""
        out: list[int | None] = []
        for _id_bord, titles, first, last in self._spans(index):
            out.extend(titles.line_counts(first, last))
        return out

    def _spans(self, index: slice) -> Iterator[tuple[int, TitleFigures, int, int]]:
        """The titles ``[index]`` gives, as each bordereau's (IdBord, its figures, first,
        stop) holding some of them, in order."""
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("RunInvoices take a slice (start:stop) only")
        start, stop, _ = index.indices(len(self))
        base = 0
        for id_bord, titles in self._parts:
            n = len(titles)
            first, last = max(start - base, 0), min(stop - base, n)
            if first < last:
                yield id_bord, titles, first, last
            base += n
