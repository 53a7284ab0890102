"""The invoice number's key, what the duplicate guards compare (keys.invoice_key): one
invoice however its number is written, as long as the outputs write it as one
(docs/state.md, "Nothing twice")."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pesgen.keys import INVOICE_KEY_MAX, INVOICE_NUMBER_MAX, invoice_key, written_otherwise
from pesgen.text import TextPolicy, normalize

# FA-2026-00101 as spreadsheets, word processors and copy-paste write it
LOOKALIKES = {
    "soft hyphen": "FA\u00ad-2026-00101",
    "hyphen": "FA\u20102026\u201000101",
    "non-breaking hyphen": "FA\u20112026\u201100101",
    "en dash": "FA\u20132026\u201300101",
    "full-width": "ＦＡ-２０２６-００１０１",
}
MORE_LOOKALIKES = [
    "FA\u20142026\u201400101",  # em dash
    "FA\u22122026\u221200101",  # minus sign
    "FA\uff0d2026\ufe6300101",  # full-width and small hyphen-minus
    "FA-2026-00101\u200b",  # zero-width space
    "\ufeffFA-2026-00101",  # a byte order mark left at the start of a cell
    "FA-20\u200d26-00101",  # zero-width joiner
    "ｆａ－２０２６－００１０１",
]


@pytest.mark.parametrize("number", [*LOOKALIKES.values(), *MORE_LOOKALIKES],
                         ids=[*LOOKALIKES, *(ascii(n) for n in MORE_LOOKALIKES)])
def test_a_number_written_with_look_alike_characters_has_the_number_s_key(number):
    assert invoice_key(number) == invoice_key("FA-2026-00101") == "fa-2026-00101"


@pytest.mark.parametrize("a, b", [
    ("FA-2026-0101", "FA-2026-00101"),  # another number
    ("FA 2026 00101", "FA-2026-00101"),
    ("FA_2026_00101", "FA-2026-00101"),
    ("FA/2026/00101", "FA-2026-00101"),
    ("FÉ-2026-00101", "FE-2026-00101"),  # an accent is read
    ("F\u0410-2026-00101", "FA-2026-00101"),  # Cyrillic A: no output writes it (refused)
    ("FA 2026", "FA  2026"),  # inner spaces count, as before (ASCII keys are unchanged)
    ("FA\u301c2026", "FA-2026"),  # a wave dash is not a hyphen
    ("FA\u2e402026", "FA-2026"),  # nor a double hyphen
    # Latin-1 compatibility characters: the outputs write them as they are (no NFKC)
    ("N\u00ba12", "NO12"),  # masculine ordinal indicator, not an O
    ("FA-1\u00b2", "FA-12"),  # superscript two
    ("FA-\u00b9", "FA-1"),  # superscript one
    ("FA-\u00aa1", "FA-A1"),  # feminine ordinal indicator
    ("FA-\u00b51", "FA-\u03bc1"),  # micro sign, not the Greek letter
    ("FA-\u00b51", "FA-1"),  # nor nothing: case folding keeps it
])
def test_numbers_a_reader_tells_apart_keep_their_own_keys(a, b):
    assert invoice_key(a) != invoice_key(b)


# dashes, hyphens and minus signs with no transliteration (NFKC leaves them too): the key
# folds them into '-' itself
UNTRANSLITERATED_DASHES = {
    "armenian hyphen": "\u058a", "hebrew maqaf": "\u05be",
    "canadian syllabics hyphen": "\u1400", "mongolian todo soft hyphen": "\u1806",
    "figure dash": "\u2012", "horizontal bar": "\u2015", "two-em dash": "\u2e3a",
    "three-em dash": "\u2e3b", "yezidi hyphenation mark": "\U00010ead",
    "modifier letter minus sign": "\u02d7", "heavy minus sign": "\u2796",
    "hyphen bullet": "\u2043",
}


@pytest.mark.parametrize("dash", UNTRANSLITERATED_DASHES.values(), ids=UNTRANSLITERATED_DASHES)
def test_every_dash_a_reader_takes_for_a_hyphen_keys_as_a_hyphen(dash):
    """A dash no output transliterates (a figure dash, a horizontal bar, an Armenian
    hyphen...) still reads as '-': FA-2026-00101 written with it is the same invoice."""
    assert invoice_key(f"FA{dash}2026{dash}00101") == "fa-2026-00101"


@pytest.mark.parametrize("a, b", [
    ("FA\u20191", "FA'1"),  # right single quotation mark: ' in ISO-8859-1
    ("FA\u01521", "FAOE1"),  # OE ligature
    ("FA\u01531", "FAOE1"),
    ("FA\u20ac1", "FAEUR1"),  # euro sign
    ("FA\u01781", "FAY1"),  # Y with diaeresis (outside ISO-8859-1; its small one is in it)
    ("FA\u01411", "FAL1"),  # L with stroke
    ("FA\u010d1", "FAC1"),  # c with caron: its accent is stripped, as the outputs do
    ("FA\u2026", "FA..."),  # horizontal ellipsis
    ("FA-\u00b5\u00df", "FA-\u00b5SS"),  # sharp s beside the micro sign: folded to ss
])
def test_numbers_the_outputs_transliterate_alike_have_one_key(a, b):
    """Outside ISO-8859-1, a character is keyed as the outputs transliterate it
    (text.transliterate_char): ORMC writes FA\u20191 and FA'1 as one title."""
    assert invoice_key(a) == invoice_key(b)


def test_inner_unicode_spaces_are_spaces_and_ascii_ones_are_kept():
    assert invoice_key("FA\u00a02026") == invoice_key("FA\u202f2026") == "fa 2026"
    assert invoice_key("FA\u20282026") == invoice_key("FA\u30002026") == "fa 2026"
    assert invoice_key("FA\x852026") == "fa 2026"  # next line (NEL), an ISO-8859-1 control
    assert invoice_key("FA\t2026") == "fa\t2026"  # as before: an ASCII number is unchanged


@settings(max_examples=500)
@given(st.text(st.characters(max_codepoint=0x7F), max_size=70))
def test_an_ascii_number_keeps_the_key_it_always_had(number):
    """Stores hold keys of ASCII numbers computed so since migration 5: unchanged, and
    the fast path gives what the general one gives."""
    from pesgen.keys import _unicode_key

    assert invoice_key(number) == _unicode_key(number) == number.strip().casefold()


@settings(max_examples=1000)
@given(st.text(max_size=INVOICE_NUMBER_MAX))
@example("\ufdfa" * INVOICE_NUMBER_MAX)  # the character NFKC makes longest (18)
@example("ǰ\u0345ΐ")
def test_a_key_is_its_own_key_and_fits_the_store(number):
    """``runs find`` may be given a key as the number; the store's column holds the key
    of any number pesgen accepts (at most INVOICE_NUMBER_MAX characters)."""
    key = invoice_key(number)
    assert invoice_key(key) == key
    assert len(key) <= INVOICE_KEY_MAX
    assert unicodedata.is_normalized("NFC", key)
    # beyond ISO-8859-1, what is left is what NFKC leaves (ISO-8859-1 is kept as it is)
    assert all(unicodedata.is_normalized("NFKC", c) for c in key if c > "\xff")


def test_each_character_s_key_is_its_own_key_and_fits_the_store():
    """Over every code point: a character's key is its own key, and at most
    INVOICE_KEY_MAX / INVOICE_NUMBER_MAX characters long."""
    for code in range(0x110000):
        char = chr(code)
        key = invoice_key(char)
        assert invoice_key(key) == key, f"U+{code:04X}"
        assert len(key) <= INVOICE_KEY_MAX // INVOICE_NUMBER_MAX, f"U+{code:04X}"


# Characters the outputs write alike, or refuse: letters and digits in three forms, the
# dashes, a soft hyphen, a ligature. Spaces are left out: the outputs fold their runs,
# the key does not (inner spaces are kept as the input wrote them, docs/state.md).
_RENDERED = ("AaＡａFfＦｆIiＩｉﬁ1１0０-\u2010\u2011\u2013\u2014\u2212\uff0d\ufe63\u00ad"
             # transliterated beyond ISO-8859-1, and what they become; ISO-8859-1
             # compatibility characters, written as they are, and what NFKC makes them
             "\u2019'\u0152\u0153OoEeUuRrN\u20ac\u00aa\u00ba\u00b9\u00b2\u00b3\u00b523"
             "\u03bc\u0178\u00ffYy\u010dCc")
_POLICY = TextPolicy(case="upper", transliterate=True)


def _rendered(number: str) -> str | None:
    done = normalize(number, "latin-1", _POLICY)
    return None if done.error else done.value


@settings(max_examples=2000)
@given(st.text(st.sampled_from(_RENDERED), min_size=1, max_size=6),
       st.text(st.sampled_from(_RENDERED), min_size=1, max_size=6))
@example("FA\u00ad-1", "FA-1")
@example("ﬁ", "FI")
@example("FA\u20191", "FA'1")
@example("FA\u01521", "FAOE1")
@example("FA\u20ac1", "FAEUR1")
@example("N\u00ba12", "NO12")
@example("FA-1\u00b2", "FA-12")
@example("FA-\u00b9", "FA-1")
def test_numbers_have_one_key_exactly_when_the_outputs_write_them_alike(a, b):
    """An output upper-cases and transliterates text (ObjPce: 'FACTURE ' ~ number): two
    numbers it writes alike are one title, so one key; and the key does not merge
    numbers it writes apart."""
    shown_a, shown_b = _rendered(a), _rendered(b)
    if shown_a and shown_b:
        assert (invoice_key(a) == invoice_key(b)) == (shown_a == shown_b), (shown_a, shown_b)


def test_a_look_alike_is_said_with_the_characters_that_differ():
    assert written_otherwise("FA\u00ad-2026-00101", "FA-2026-00101") == (
        "FA<U+00AD>-2026-00101 is FA-2026-00101 written with other characters "
        "(U+00AD SOFT HYPHEN)")
    assert written_otherwise("FA-2026-00101", "FA\u20102026\u201000101") == (
        "FA-2026-00101 is FA\u20102026\u201000101 written with other characters "
        "(U+2010 HYPHEN)")
    assert written_otherwise(LOOKALIKES["full-width"], "FA-2026-00101") == (
        "ＦＡ-２０２６-００１０１ is FA-2026-00101 written with other characters "
        "(U+FF26 FULLWIDTH LATIN CAPITAL LETTER F, U+FF21 FULLWIDTH LATIN CAPITAL LETTER A, "
        "U+FF12 FULLWIDTH DIGIT TWO and 3 more)")
    # an invisible character is shown by its code, a space as a space
    assert written_otherwise("FA 2026\u00ad", "FA 2026") == (
        "FA 2026<U+00AD> is FA 2026 written with other characters (U+00AD SOFT HYPHEN)")
    # differing by case or surrounding spaces only: said as before, elsewhere
    assert written_otherwise(" fa-2026-00101", "FA-2026-00101") is None
    assert written_otherwise("FA-2026-00101", "FA-2026-00101") is None


def test_a_look_alike_names_three_characters_in_full_and_one_without_a_name_by_its_code():
    """Three characters that differ are all named, with no 'and 0 more'; a character
    Unicode gives no name (a private-use one) is named by its code point alone."""
    assert written_otherwise("ＦＡ\u20102026-00101", "FA-2026-00101") == (
        "ＦＡ\u20102026-00101 is FA-2026-00101 written with other characters "
        "(U+FF26 FULLWIDTH LATIN CAPITAL LETTER F, U+FF21 FULLWIDTH LATIN CAPITAL LETTER A, "
        "U+2010 HYPHEN)")
    assert written_otherwise("FA\u00ad-2026-00101\ue000", "FA-2026-00101\ue000") == (
        "FA<U+00AD>-2026-00101<U+E000> is FA-2026-00101<U+E000> written with other "
        "characters (U+00AD SOFT HYPHEN, U+E000)")
