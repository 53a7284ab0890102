"""Text normalisation for a target character set, as explicit, reported policies.

``normalize`` never changes a value silently: each transformation it makes
(line breaks and tabs to spaces, upper-casing, transliteration) is returned with the
value so the run summary can list it; anything it may not change is a refusal.
Only runs of ordinary spaces are collapsed and trimmed without report.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

# Characters outside ISO-8859-1 that French billing data commonly holds.
_TRANSLIT = {
    "œ": "oe", "Œ": "OE", "’": "'", "‘": "'", "‚": ",", "“": '"', "”": '"', "„": '"',
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-", "…": "...", "€": "EUR",
    "Ÿ": "Y", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "ß": "ss", "ẞ": "SS",
    "\u2009": " ", "\u202f": " ", "\u00a0": " ", "\u2007": " ", "•": "-", "‹": "<", "›": ">",
}
# Latin-1 letters are fine in PES text fields but not in SEPA fields: strip to ASCII.
_LATIN1_TO_ASCII = {"æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ð": "d", "Ð": "D", "þ": "th",
                    "Þ": "TH", "«": '"', "»": '"', "°": "o", "×": "x", "÷": "/"}

# Line breaks and tabs: the newlines policy turns them into a space (or refuses them).
_CONTROL = re.compile(r"[\t\n\x0b\x0c\r\x1c-\x1e\u2028\u2029]+")  # str.splitlines' set
# (and the tab), without U+0085
# Other control characters are never text: refused whatever the policy. U+0080-U+009F
# in particular are Windows-1252 letters and signs (œ, ’, €, …) decoded with another
# encoding: replacing them would hide a wrong input.encoding.
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x9f]")
_SPACES = re.compile(r" {2,}")
# Invisible characters inside ISO-8859-1, so no charset check sees them: a no-break
# space becomes a space, a soft hyphen (a hyphenation hint) is removed, under the
# transliterate policy, with a note; refused without it. Invisible characters outside
# ISO-8859-1 (zero-width space, joiners, BOM) have no transliteration: refused.
_INVISIBLE = re.compile(r"[\u00a0\u00ad]")
_INVISIBLE_SUB = {"\u00a0": " ", "\u00ad": ""}
_INVISIBLE_NAME = {"\u00a0": "no-break space", "\u00ad": "soft hyphen"}
_SEPA_OK = re.compile(r"^[0-9a-zA-Z/?:()., \-+']*$")
_SEPA_BAD = re.compile(r"[^0-9a-zA-Z/?:()., \-+']")
_ALNUM_OK = re.compile(r"^[0-9A-Za-z]+$")
# PES Base_Texte forbids values that are only zeros, 'nc', '.' or ' '.
_PES_EMPTYISH = re.compile(r"^(0+|nc|NC|Nc|nC|\.| )$")

_NOT_LATIN1 = re.compile(r"[^\x00-\xff]")

CHARSETS = ("latin-1", "cp1252", "sepa", "ascii", "utf-8", "alnum")
# What Windows-1252 writes beyond ISO-8859-1, in place of the C1 controls (which
# normalize refuses whatever the charset): Œ œ Š š Ž ž Ÿ ƒ ˆ ˜ – — ‘ ’ ‚ “ ” „ † ‡ • … ‰ ‹ › € ™
_CP1252_EXTRA = bytes(range(0x80, 0xA0)).decode("cp1252", errors="ignore")
# First character a charset does not allow (C-speed scan of the common, clean case).
_DISALLOWED = {
    "latin-1": re.compile(r"[^\x00-\xff]"),
    "cp1252": re.compile(f"[^\\x00-\\xff{_CP1252_EXTRA}]"),
    "ascii": re.compile(r"[^\x00-\x7f]"),
    "sepa": _SEPA_BAD,
    "alnum": re.compile(r"[^0-9A-Za-z]"),
    "utf-8": re.compile(r"(?!)"),
}


@cache
def charset_chars(charset: str) -> str:
    """The characters text normalised for ``charset`` can hold (line breaks, tabs and
    invisible characters are replaced or refused), for a format to check that its
    encoding writes them all. Every charset but utf-8 lies below U+2200; for utf-8, one
    character of each plane a text may use, which only a Unicode encoding writes."""
    if charset == "utf-8":
        return "\u00e9\u0152\u4e2d\U0001f600"
    disallowed = _DISALLOWED[charset]
    return "".join(c for c in map(chr, range(0x2200))
                   if c.isprintable() and not disallowed.match(c))


@dataclass(frozen=True, slots=True)
class TextPolicy:
    case: str = "keep"  # keep | upper
    newlines: str = "refuse"  # refuse | space
    transliterate: bool = False
    # a recorded run rebuilt (Builder recorded): a Unicode format character is taken, as
    # before 2026-12-06 a charset holding it (utf-8) took it; no mapping sets it
    format_chars: bool = False


@dataclass(frozen=True, slots=True)
class Normalized:
    value: str
    applied: tuple[str, ...]  # policy names applied, e.g. ("newlines", "transliterate")
    changed: str = ""  # a short note of what transliteration changed: "œ→oe"
    error: str | None = None


def _encodable(char: str, charset: str) -> bool:
    if charset == "utf-8":
        return True
    if charset == "sepa":
        return bool(_SEPA_OK.match(char))
    if charset == "alnum":
        return bool(_ALNUM_OK.match(char))
    if charset == "cp1252":
        return ord(char) <= 0xFF or char in _CP1252_EXTRA
    limit = 0x7F if charset == "ascii" else 0xFF
    return ord(char) <= limit


def without_marks(text: str) -> str:
    """``text`` decomposed (NFKD), its combining marks left out: 'Prélèvement' ->
    'Prelevement', 'ﬁ' -> 'fi'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _fallback(char: str) -> str | None:
    stripped = without_marks(char)
    return stripped if stripped and stripped != char else None


def transliterate_char(char: str, charset: str) -> str | None:
    """A replacement for ``char`` in ``charset``, or None if there is none."""
    candidate = _TRANSLIT.get(char)
    if candidate is None and charset in ("sepa", "ascii", "alnum"):
        candidate = _LATIN1_TO_ASCII.get(char)
    if candidate is None:
        candidate = _fallback(char)
    if candidate is None:
        return None
    # e.g. 'Œ' -> 'OE', 'é' -> 'e' for SEPA. No second try on a character of the
    # candidate: a table's replacements are ASCII and _fallback's are decomposed already
    # (NFKD is idempotent), so _fallback has nothing more to give for either.
    return candidate if all(_encodable(c, charset) for c in candidate) else None


def ascii_letters(text: str) -> str:
    """``text`` with each letter outside ASCII that has an ASCII transliteration written
    so (``œ`` -> ``oe``, ``Æ`` -> ``AE``, ``é`` -> ``e``, ``ß`` -> ``ss``); anything else,
    signs included (``°``, ``’``), as it is. For comparing and labelling, not a policy:
    the text policies' own path is ``normalize``."""
    if text.isascii():
        return text
    return "".join(c if c.isascii() or not unicodedata.category(c).startswith("L")
                   else transliterate_char(c, "ascii") or c for c in text)


def _c1_hint(value: str) -> str:
    """What a U+0080-U+009F character says about the file's encoding: UTF-8 read as
    latin-1 ('’' as 'â\x80\x99') or Windows-1252 read as latin-1 ('’' as '\x92')."""
    try:
        value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return (": a Windows-1252 character read with another encoding? (check "
                "input.encoding, e.g. cp1252)")
    return ": UTF-8 text read with another encoding? (check input.encoding: utf-8)"


# A UTF-8 text read once as Windows-1252 and saved as UTF-8 again (a spreadsheet opening
# the export in the wrong encoding, a database column converted twice) reads 'Ã©' for
# 'é', 'Ã¨' for 'è', 'Â«' for '«', 'Å“' for 'œ', 'â€™' for '’': valid text, every such
# character Latin-1 but for a few, that went into the files as the export wrote it. Its
# sign: the lead byte of a 2- or 3-byte UTF-8 character read as 'Â', 'Ã', 'Ä', 'Å' or
# 'â', followed by a character Windows-1252 writes as a byte 0x80-0xBF (the second byte
# of a UTF-8 character); the match undone (_twice_utf8) must give one character of a
# Latin text or its punctuation. 'Ã' is no French letter, 'Â' is no capital before a sign.
_TWICE_UTF8 = re.compile("[\u00c2-\u00c5\u00e2][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178"
                         "\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a"
                         "\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]")
# what a UTF-8 sequence in a French export decodes to: Latin letters and signs,
# typographic punctuation (’ « – …), the euro sign, a byte order mark (sources reads a
# file's bytes with it; _twice_utf8 a text's, where a mark cannot arise: its lead, 'ï',
# is none of _TWICE_UTF8's)
PLAUSIBLE_UTF8 = re.compile("[\u00a0-\u024f\u2010-\u20cf\ufeff]")


def _twice_utf8(value: str) -> str | None:
    """The error of a text holding UTF-8 encoded twice (``_TWICE_UTF8``), else None."""
    for m in _TWICE_UTF8.finditer(value):
        for size in (3, 2):
            read = value[m.start():m.start() + size]
            try:
                char = read.encode("cp1252").decode("utf-8")
            except UnicodeError:
                continue
            if len(char) == 1 and PLAUSIBLE_UTF8.fullmatch(char):
                shown = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in read)
                return (f"holds '{shown}', which is '{char}' encoded in UTF-8 twice (a UTF-8 "
                        "text read as Windows-1252 and saved as UTF-8 again, by a "
                        "spreadsheet or a conversion): the export's text is wrong as it is, "
                        "and no input.encoding reads it right; correct it in the export")
    return None


# the charsets that allow all of ASCII, and all of ISO-8859-1: normalize's fast paths
_FAST_CHARSETS = ("latin-1", "cp1252", "ascii", "utf-8")
_LATIN1_FAST_CHARSETS = ("latin-1", "cp1252", "utf-8")


def normalize(value: str, charset: str, policy: TextPolicy) -> Normalized:
    if value.isascii() and value.isprintable() and charset in _FAST_CHARSETS \
            and "  " not in value and value[:1] != " " and value[-1:] != " ":
        # the common case: plain ASCII text, nothing to refuse or transliterate
        if policy.case == "upper":
            upper = value.upper()
            if upper != value:
                return Normalized(upper, ("case",))
        return Normalized(value, ())
    if charset in _LATIN1_FAST_CHARSETS and value.isprintable() and "  " not in value and \
            value[:1] != " " and value[-1:] != " " and not _NOT_LATIN1.search(value) and \
            not _TWICE_UTF8.search(value):
        # the next common case: Latin-1 text ('Hélène', 'Léa'). Printable, so no control
        # character, line break, tab, no-break space or soft hyphen; within the charset,
        # so nothing to transliterate: only the case policy can change it, as below,
        # unless a capital falls outside the charset ('ÿ', 'µ'), left to the general path
        if policy.case != "upper":
            return Normalized(value, ())
        upper = value.upper()
        if not _DISALLOWED[charset].search(upper):
            return Normalized(upper, ("case",)) if upper != value else Normalized(value, ())
    return _normalize(value, charset, policy)


def _normalize(value: str, charset: str, policy: TextPolicy) -> Normalized:
    """``normalize`` without its fast paths (which give what this gives)."""
    applied: list[str] = []
    text = value
    bad = _BAD_CONTROL.search(text)
    if bad:
        code = ord(bad.group(0))
        hint = _c1_hint(value) if 0x80 <= code <= 0x9F else ""
        return Normalized(value, (), error=f"contains the control character U+{code:04X}{hint}")
    # (after the control characters: UTF-8 read as Latin-1, 'â\x80\x99' for '’', is said
    # so by its U+0080-U+009F)
    if _TWICE_UTF8.search(text) and (twice := _twice_utf8(text)) is not None:
        return Normalized(value, (), error=twice)
    if _CONTROL.search(text):
        if policy.newlines != "space":
            return Normalized(value, (), error="contains a line break or a tab "
                              "(policy newlines: refuse: set policies.newlines: space to "
                              "write a space in its place)")
        text = _CONTROL.sub(" ", text)
        applied.append("newlines")
    if not unicodedata.is_normalized("NFC", text):
        # a letter and its combining accent, as macOS and some exports write 'é' (e +
        # U+0301): the same text as the composed letter, which the charsets hold
        text = unicodedata.normalize("NFC", text)
    notes: dict[str, str] = {}
    invisible = _INVISIBLE.findall(text)
    if invisible:
        found = ", ".join(f"U+{ord(c):04X} ({_INVISIBLE_NAME[c]})"
                          for c in dict.fromkeys(invisible))
        if not policy.transliterate:
            return Normalized(value, tuple(applied), error=f"contains the invisible "
                              f"character(s) {found} (policy transliterate: false: set "
                              "policies.transliterate: true to write a space for a no-break "
                              "one and drop a soft hyphen)")
        text = _INVISIBLE.sub(lambda m: _INVISIBLE_SUB[m.group(0)], text)
        notes.update((c, _INVISIBLE_SUB[c]) for c in invisible)
    fmt_char = None if policy.format_chars else format_char_in(text)
    if fmt_char is not None:
        # outside ISO-8859-1, a charset's check would refuse it too, but utf-8's (a
        # format's charset: utf-8) takes every character
        return Normalized(value, tuple(applied), error=(
            f"contains the invisible format character {char_named(fmt_char)}: it shows as "
            "nothing, or reorders the text around it; no policy replaces it, whatever the "
            "charset"))
    text = _SPACES.sub(" ", text.strip(" "))
    if policy.case == "upper":
        upper = text.upper()
        disallowed = _DISALLOWED[charset]
        if not upper.isascii() and disallowed.search(upper) and \
                len(disallowed.findall(upper)) != len(disallowed.findall(text)):
            # e.g. 'µ'.upper() is Greek 'Μ': keep a letter whose capital the target lacks
            upper = "".join(c.upper() if not disallowed.search(c.upper()) else c
                            for c in text)
        if upper != text:
            text = upper
            applied.append("case")
    disallowed = _DISALLOWED[charset]
    if disallowed.search(text):
        if not policy.transliterate:
            chars = "".join(dict.fromkeys(disallowed.findall(text)))
            # the setting that exports it, shown on a character it would replace (none
            # when no character has a transliteration: it would refuse them all the same)
            subs = ((c, transliterate_char(c, charset)) for c in chars)
            example = next(((c, sub) for c, sub in subs if sub is not None), None)
            how = "" if example is None else (
                f": set policies.transliterate: true to replace it ({example[0]!r} -> "
                f"{example[1]!r})")
            return Normalized(value, tuple(applied),
                              error=f"character(s) {chars!r} not allowed in {charset} "
                                    f"(policy transliterate: false{how})")
        failed: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            c = match.group(0)
            sub = transliterate_char(c, charset)
            if sub is None:
                failed.append(c)
                return c
            if policy.case == "upper":
                sub = sub.upper()
            notes[c] = sub
            return sub

        text = disallowed.sub(substitute, text)
        if failed:
            c = failed[0]
            return Normalized(value, tuple(applied),
                              error=f"character {c!r} (U+{ord(c):04X}) has no "
                                    f"transliteration in {charset}")
        text = _SPACES.sub(" ", text.strip(" "))
    changed = ""
    if notes:
        applied.append("transliterate")
        changed = ", ".join(f"{_shown(k)}→{_shown(v)}" for k, v in notes.items())
    return Normalized(text, tuple(applied), changed)


def _shown(text: str) -> str:
    """A transliteration note's side, readable: an invisible character by its code point,
    a space as 'space', nothing as 'removed'."""
    if text == "":
        return "removed"
    if text == " ":
        return "space"
    if len(text) == 1 and (text.isspace() or unicodedata.category(text) == "Cf"):
        return f"U+{ord(text):04X}"
    return text


def outside_charset(value: str, charset: str) -> str:
    """The characters of ``value`` that ``charset`` does not allow, each once, in order
    ('' when none): a text written as it is (a mapping's own text or option, which no
    text policy changes) must hold none."""
    return "".join(dict.fromkeys(_DISALLOWED[charset].findall(value)))


def control_in(value: str, invisible: bool = True) -> str | None:
    """The first line break, tab, control or (``invisible``) invisible character of
    ``value`` (never text: a value written as it is, which no text policy changes, must
    hold none), or None."""
    bad = (_BAD_CONTROL.search(value) or _CONTROL.search(value)
           or (_INVISIBLE.search(value) if invisible else None))
    return bad.group(0)[0] if bad else None


def char_named(char: str) -> str:
    """A character by code point and Unicode name, ``U+202E RIGHT-TO-LEFT OVERRIDE`` (the
    code point alone for a character Unicode names not)."""
    return f"U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()


def format_char_in(value: str) -> str | None:
    """The first Unicode format character (category Cf) of ``value``, or None: a
    bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE, U+200E/U+200F marks,
    isolates), a zero-width space, joiner or word joiner, a byte order mark, a soft
    hyphen. None shows: an identifier holding one looks like another (a right-to-left
    override reorders what follows it) or as itself without it."""
    if value.isprintable():  # (no Cf character is printable): the common case
        return None
    return next((c for c in value if unicodedata.category(c) == "Cf"), None)


def code_error(value: str, charset: str, limit: int | None, owner: str) -> str | None:
    """What keeps a code a mapping's table gives (codes.civility, default_civility) from
    being sent as written, or None. A code is written for the target by whoever wrote
    the table: the text policies (case, transliterate, newlines) never change it, so a
    character the field's charset lacks, a space at its start or end, a length over the
    field's limit or a PES placeholder is refused, not transformed. ``owner`` is whose
    limit it is, as the other refusals of a length say it ('Hélios', 'format
    bl-emagnus': ``formats.limits_owner``)."""
    bad = control_in(value)
    if bad:
        return f"holds the control or invisible character U+{ord(bad):04X}"
    chars = "".join(dict.fromkeys(_DISALLOWED[charset].findall(value)))
    if chars:
        return f"holds {chars!r}, which charset {charset} does not allow"
    if value != value.strip(" ") or "  " in value:
        return "has a space at its start or end, or two in a row"
    if limit is not None and len(value) > limit:
        return f"is {len(value)} characters, {owner} allows {limit}"
    return pes_text_error(value)


def pes_text_error(value: str) -> str | None:
    """PES Base_Texte values may not be empty, only zeros, 'nc', '.' or a space."""
    if value == "":
        return "is empty"
    if _PES_EMPTYISH.match(value):
        return f"'{value}' is not accepted by Hélios (only zeros, 'nc', '.' or space)"
    return None


def sepa_bad_chars(value: str) -> str:
    return "".join(dict.fromkeys(_SEPA_BAD.findall(value)))


def wrap_words(text: str, width: int) -> list[str]:
    """Split text at spaces into chunks of at most ``width``; a word longer than
    ``width`` makes it impossible (returns [])."""
    words = text.split(" ")
    lines: list[str] = []
    current = ""
    for word in words:
        if len(word) > width:
            return []
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def truncate_words(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    cut = text[:width]
    space = cut.rfind(" ")
    return (cut[:space] if space > width // 2 else cut).rstrip()
