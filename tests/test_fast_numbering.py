"""The shortcuts of numbering give what the general paths give: ``renumber`` as
``model.evolve``, ``cle1``'s one-pass sum as the digit loop."""

from __future__ import annotations

import random
from dataclasses import fields, replace

import pytest

from pesgen import keys
from pesgen.export import renumber
from pesgen.model import Title, evolve

from .test_rules import TITLE


def _reference_cle1(cod_col, nature_code, exercise, period, debt_number, zero="0"):
    digits = f"{cod_col}{nature_code}{exercise % 100:02d}{period}{int(debt_number):013d}"
    remainder = keys._mod11_total(digits) % 11
    if remainder == 0:
        return zero
    return "1" if 11 - remainder == 10 else str(11 - remainder)


def test_cle1_fast_sum_is_the_digit_loop():
    rnd = random.Random(11)
    for _ in range(5000):
        cod = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(0, 6)))
        nature = f"{rnd.randint(0, 99):02d}"
        period = rnd.choice(["1", "2", "9", "", "12"])
        debt = str(rnd.randint(1, 10 ** rnd.randint(1, 15) - 1))
        exercise = rnd.randint(2000, 2099)
        zero = rnd.choice(["0", "Z"])
        assert keys.cle1(cod, nature, exercise, period, debt, zero) == \
            _reference_cle1(cod, nature, exercise, period, debt, zero)
    # outside the fast path: a non-ASCII digit (int() reads it), a non-digit, too long
    assert keys.cle1("١٢٣", "00", 2026, "1", "5") == _reference_cle1("123", "00", 2026, "1", "5")
    long_cod = "7" * 70
    assert keys.cle1(long_cod, "00", 2026, "1", "5") == _reference_cle1(long_cod, "00", 2026,
                                                                          "1", "5")
    with pytest.raises(ValueError):
        keys.cle1("12A", "00", 2026, "1", "5")


def test_renumber_is_evolve():
    for title in (TITLE, replace(TITLE, debt_number=None, mandate=None, cle1="3", cle2="K")):
        for number, k1, k2 in ((1, "7", "B"), (99999, None, "Y"), (3, title.cle1, title.cle2)):
            made = renumber(title, number, k1, k2)
            same = evolve(title, number=number, cle1=k1, cle2=k2)
            assert type(made) is Title
            assert made == same
            assert [getattr(made, f.name) for f in fields(Title)] == \
                [getattr(same, f.name) for f in fields(Title)]
            with pytest.raises(AttributeError):
                made.number = 5  # still frozen
