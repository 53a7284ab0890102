"""Control keys of ORMC payment references (Cle1, Cle2), and the normalised forms the
duplicate guards compare (NumDette, invoice number).

Cle2 follows the legacy rôle format the DGFiP documentation refers to (notes §10.3).
Cle1's inputs are listed by the DGFiP dossier technique but its annex is not public:
pesgen uses the listed inputs in the listed order, and the mapping chooses the key
for a zero remainder (see docs/rules.md, "unconfirmed").
"""

from __future__ import annotations

from operator import mul

_CLE2_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXY"  # 23 letters: no I, O, Z


def cle2(exercise: int, period: str, debt_number: str) -> str:
    """Modulo-23 key over exer(2) + Per + '00' + NumDette padded to 13 digits."""
    digits = f"{exercise % 100:02d}{period}00{int(debt_number):013d}"
    return _CLE2_ALPHABET[int(digits) % 23]


def cle1(cod_col: str, nature_code: str, exercise: int, period: str, debt_number: str,
         zero_remainder: str = "0") -> str:
    """Modulo-11 key, weights 2..7 from the right, over CodCol + code nature +
    exer(2) + Per + NumDette(13). 11 - r, where r = 1 gives 10 -> '1'... see docs."""
    digits = f"{cod_col}{nature_code}{exercise % 100:02d}{period}{int(debt_number):013d}"
    if digits.isascii() and digits.isdigit() and len(digits) <= _MOD11_MAX:
        # the code points, weighted, less the weighted '0's: one pass in C
        total = sum(map(mul, digits[::-1].encode(), _MOD11_WEIGHTS)) - _MOD11_ZEROS[len(digits)]
    else:
        total = _mod11_total(digits)
    remainder = total % 11
    if remainder == 0:
        return zero_remainder
    key = 11 - remainder
    return "1" if key == 10 else str(key)


def _mod11_total(digits: str) -> int:
    """The weighted sum of cle1, digit by digit (weights 2..7 from the right)."""
    total = 0
    weight = 2
    for ch in reversed(digits):
        total += int(ch) * weight
        weight = 2 if weight == 7 else weight + 1
    return total


# cle1's weights from the right, and what '0' * n weighs (its code point is 48)
_MOD11_MAX = 64
_MOD11_WEIGHTS = tuple(2 + i % 6 for i in range(_MOD11_MAX))
_MOD11_ZEROS = tuple(48 * sum(_MOD11_WEIGHTS[:n]) for n in range(_MOD11_MAX + 1))


def debt_key(debt: str) -> str:
    """A NumDette as the number it is (leading zeros dropped): two titles whose NumDettes
    differ only by leading zeros share a payment reference (Cle1, Cle2 read it as a
    number), so uniqueness is checked on this form."""
    return debt.lstrip("0") or "0"



# An invoice number is at most this many characters (refused at mapping time beyond, rule
# input.invoice-number): the store's column holds that many.
INVOICE_NUMBER_MAX = 64
# str.casefold turns one character into at most 3 ('ΐ'): the key column holds this many.
INVOICE_KEY_MAX = 3 * INVOICE_NUMBER_MAX


def invoice_key(number: str) -> str:
    """An invoice number as the guard compares it: surrounding spaces stripped, case
    folded. ``FA-2026-00101`` and `` fa-2026-00101`` are one invoice (the outputs
    upper-case their text, so their titles would be identical)."""
    return number.strip().casefold()
