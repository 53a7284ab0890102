"""Control keys of ORMC payment references (Cle1, Cle2), and the normalised forms the
duplicate guards compare (NumDette, invoice number).

Cle2 follows the legacy rôle format the DGFiP documentation refers to (notes §10.3).
Cle1's inputs are listed by the DGFiP dossier technique but the annex it refers to was
not found:
pesgen uses the listed inputs in the listed order, and the mapping chooses the key
for a zero remainder (see docs/rules.md, "unconfirmed").
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from functools import cache
from operator import mul
from typing import NamedTuple

from .text import char_named, transliterate_char

_CLE2_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXY"  # 23 letters: no I, O, Z
# Cle1 and Cle2 read NumDette on 13 digits (the legacy rôle format, notes §10.3), though
# NumDette is a Base_Num15: an export refuses a NumDette whose value needs more (rule
# pes.num-dette-keys), whose keys no known formula gives. cle1 and cle2 still compute
# them over the longer number (a run recorded before the rule is rebuilt as it was).
DEBT_KEYED_DIGITS = 13
DEBT_KEYED_MAX = 10 ** DEBT_KEYED_DIGITS - 1


class Held(NamedTuple):
    """An invoice an active run holds (``Store.held_in_scope``): as that run wrote it,
    the run, its IdBord, the bordereau's first file, the title's amount (None: not
    compared, a recorded run rebuilt)."""
    invoice: str
    run: str
    id_bord: int
    file: str
    amount: Decimal | None


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
# The key of one character is at most 18 characters (NFKC spells U+FDFA out, which has
# no transliteration, and case folding lengthens none of it; transliterations are at most
# 3 characters): the key column holds this many (192, 3 per character,
# before migration 6).
INVOICE_KEY_MAX = 18 * INVOICE_NUMBER_MAX

# Dashes, hyphens and minus signs a reader takes for '-': Unicode's dash punctuation
# (category Pd) but its double and wavy ones (U+2E17, U+2E1A, U+2E40, U+2E5D, U+301C,
# U+3030, U+30A0), and the minus signs and the hyphen bullet. NFKC already turns U+2011,
# U+FE58, U+FE63, U+FF0D, U+207B and U+208B into one of them. Listed rather than read
# from the Unicode database: a key recorded today is computed alike by a later Python.
_DASHES = ("\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2e3a\u2e3b"
           "\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead"  # Pd
           "\u2212\u207b\u208b\u02d7\u2796\u2043")  # minus signs, hyphen bullet
# Spaces NFKC leaves (next line, ogham, line and paragraph separators) and those it makes
# spaces already: each one a space. ASCII whitespace is kept as it is (str.strip drops it
# around the number; inside it, it counts, as it always did).
_SPACES = "\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
          "\u200a\u2028\u2029\u202f\u205f\u3000"
_FOLD = str.maketrans({**dict.fromkeys(_DASHES, "-"), **dict.fromkeys(_SPACES, " ")})


def invoice_key(number: str) -> str:
    """An invoice number as the guards compare it: the number as the outputs write it, so
    that two numbers an output writes alike are one invoice. ``FA-2026-00101``,
    `` fa-2026-00101``, ``FA\u00ad-2026-00101`` (soft hyphen), ``FA\u20132026\u201300101``
    (en dash) and ``ＦＡ-２０２６-００１０１`` (full width) have one key, and so have
    ``FA\u20191`` and ``FA'1``, ``FA\u01521`` and ``FAOE1``, ``FA\u20ac1`` and ``FAEUR1``:
    the outputs upper-case and transliterate their text, so their titles would be
    identical. ``N\u00ba12`` and ``NO12``, ``FA-1\u00b2`` and ``FA-12`` keep their own
    keys: ISO-8859-1 outputs write them apart.

    Format characters (category Cf: soft hyphen, zero-width space and joiners, byte order
    mark) removed; every character outside ISO-8859-1 as the ISO-8859-1 outputs
    transliterate it (``text.transliterate_char``: its table, else its compatibility
    decomposition without accents: ``\u2019`` is ``'``, ``\u0152`` is ``OE``, ``\u20ac``
    is ``EUR``, ``Ａ`` is ``A``, ``\u010d`` is ``c``), one it has no transliteration for
    in NFKC; ISO-8859-1 characters as they are (no NFKC: ``\u00aa \u00ba \u00b9 \u00b2
    \u00b3 \u00b5`` stay); every dash, hyphen and minus sign of ``_DASHES`` made '-',
    every Unicode space a space; surrounding whitespace stripped; case folded (but the
    micro sign, which stays ``\u00b5``); NFC. Repeated until nothing changes (NFC can
    compose a letter and a combining accent into a letter that is transliterated in
    turn), so a key is its own key. An ASCII number's key is what it always was:
    ``number.strip().casefold()`` (stores hold such keys: run_invoices.invoice_key, and
    payfip_payments.invoice_key from schema 17; a change here keys both again, as
    migration 6 did the titles)."""
    if number.isascii():  # nearly every number: what the general path gives, faster
        return number.strip().casefold()
    return _unicode_key(number)


_NOT_LATIN1 = re.compile(r"[^\x00-\xff]")


@cache
def _char_key(char: str) -> str:
    """A character outside ISO-8859-1 as the key reads it: as the ISO-8859-1 outputs
    transliterate it, else (they refuse it) in NFKC."""
    return transliterate_char(char, "latin-1") or unicodedata.normalize("NFKC", char)


def _casefold(text: str) -> str:
    """Case folding, but for the micro sign (ISO-8859-1), which it would make the Greek
    mu: the outputs write U+00B5 as it is (its capital is not ISO-8859-1 either)."""
    if "\u00b5" in text:
        return "\u00b5".join(part.casefold() for part in text.split("\u00b5"))
    return text.casefold()


def _key_pass(text: str) -> str:
    """One pass of the key's folds over a number without format characters."""
    text = _NOT_LATIN1.sub(lambda m: _char_key(m.group()), text)
    text = _casefold(text.translate(_FOLD).strip())
    return unicodedata.normalize("NFC", text)


def _unicode_key(number: str) -> str:
    """``invoice_key`` without its ASCII fast path."""
    text = number
    if not text.isprintable():  # a format character is not printable
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    # a pass leaves a key but where case folding or NFC makes a character the pass folds
    # ('ǰ' folds to 'j' and a caron; 'c' and a combining caron compose to 'č', then 'c'):
    # each pass more only removes such a character, so this ends in a few passes
    while (folded := _key_pass(text)) != text:
        text = folded
    return text


def shown(number: str) -> str:
    """A number in a message: its invisible characters (soft hyphen, zero-width space,
    controls) as <U+00AD>, the rest as written."""
    if number.isprintable():
        return number
    return "".join(c if c.isprintable() else f"<U+{ord(c):04X}>" for c in number)


def named(number: str, most: int = 3) -> str:
    """The non-ASCII characters of a number, each once, by code point and name:
    ``U+00AD SOFT HYPHEN``; past ``most``, how many more."""
    chars = [c for c in dict.fromkeys(number) if not c.isascii()]
    names = [char_named(c) for c in chars[:most]]
    more = f" and {len(chars) - most} more" if len(chars) > most else ""
    return ", ".join(names) + more


def written_otherwise(number: str, other: str) -> str | None:
    """How two numbers of one key differ when it is more than case and surrounding
    spaces (a guard's message then says which characters): ``FA\u2010… is FA-… written
    with other characters (U+2010 HYPHEN)``; None when they differ by no more than that."""
    if number.strip().casefold() == other.strip().casefold():
        return None
    return (f"{shown(number)} is {shown(other)} written with other characters "
            f"({named(number + other)})")
