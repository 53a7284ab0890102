"""Load the school's billing export (JSON or CSV) as a stream of source invoices.

Each ``SourceInvoice`` keeps its origin (``file:row`` for CSV, ``file:$.path`` for
JSON) so that any later problem can point back at the record. Both loaders stream:
a 100 000-invoice export is never held in memory at once, and the JSON reader bounds
what one record may hold (nesting depth, string length, bytes), so a hostile or
broken file is refused instead of exhausting the memory.

The JSON reader has two paths. The exact one walks ijson's events one by one and names
any problem (a repeated key, a bound, a syntax error) with its JSON path, at twice the
cost of the fast one in an export (docs/performance.md). The fast one decodes each invoice whole
with the standard library's C decoder and only checks what it cannot miss cheaply (a
repeated key, through the object hook; a possible bound, from the invoice's text); on
anything else it stops, and the exact reader takes over from the invoice it had
reached. tests/test_json_reader.py checks that the pair reads what the exact one reads.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._wide import wide
from .errors import InputDataError, Problem
from .text import PLAUSIBLE_UTF8

# Bounds of the JSON reader: an invoice nested 64 levels deep, holding a 100 000
# character string or weighing 16 MiB is not a school's billing export.
MAX_JSON_DEPTH = 64
MAX_JSON_STRING = 100_000
MAX_JSON_RECORD_BYTES = 16 * 1024 * 1024
# A CSV file's rows refused for their structure are listed up to this many (as the
# validator lists schema violations), the rest counted.
MAX_ROW_PROBLEMS = 1000


@dataclass(slots=True)
class SourceInvoice:
    """One invoice as the school software exported it, before any mapping."""

    record: dict[str, Any]  # invoice-level values (the JSON object, or the first CSV row)
    lines: list[dict[str, Any]] | None  # CSV: one row per line; JSON: found by a binding path
    origin: str
    line_origins: list[str] = field(default_factory=list)
    key: str | None = None  # CSV grouping key value


@dataclass(frozen=True, slots=True)
class InputSpec:
    format: str  # "json" | "csv"
    records: str = "invoices"  # JSON: dotted path of the invoice array
    encoding: str = "utf-8"
    delimiter: str = ","  # CSV; "auto" sniffs it
    quotechar: str = '"'
    group_by: str | None = None  # CSV: column whose value identifies the invoice
    numbers: str = "auto"
    dates: str = "auto"
    header_line: int = 1  # CSV: the header's line; the lines above it are not read
    # where each input.<key> is set: (("encoding", "m.yaml:27: input.encoding"), ...)
    where: tuple[tuple[str, str], ...] = ()

    def at(self, key: str) -> str | None:
        """``mapping.yaml:line: input.<key>``, for a problem the setting can fix."""
        return next((w for name, w in self.where if name == key), None)


def shown_input(path: Path) -> str:
    """The input file as its records' origins name it (``school-export.json:12``):
    relative to the current folder when inside it, else as given."""
    return _display(path)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# how many entries of the folder a missing input is looked for in are named
_NEAR_SHOWN = 12


def _found_near(path: Path) -> str:
    """What the nearest existing folder of a missing ``path`` holds, said after 'input
    file not found': its entries (the first few, folders ending with '/') and the one
    closest to the name typed (``; exports holds school-export.csv, school-export.json:
    did you mean school-export.json?``); a folder of it missing is named, and the entries
    of the nearest one that is there."""
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    try:  # hidden entries (.git/, .venv/) are no export
        entries = sorted(f"{p.name}/" if p.is_dir() else p.name for p in folder.iterdir()
                         if not p.name.startswith("."))
    except OSError:
        return ""
    where = "the current folder" if folder == Path(".") else str(folder)
    if folder != path.parent:
        where = f"{path.parent} does not exist; the nearest folder that does, {where},"
    if not entries:
        return f"; {where} is empty"
    listed = ", ".join(entries[:_NEAR_SHOWN]) + (
        f", … ({len(entries) - _NEAR_SHOWN} more)" if len(entries) > _NEAR_SHOWN else "")
    missing = path.relative_to(folder).parts[0] if folder != path.parent else path.name
    close = difflib.get_close_matches(missing, [e.rstrip("/") for e in entries], n=1)
    return f"; {where} holds {listed}" + (f": did you mean {close[0]}?" if close else "")


def _refuse(message: str, rule: str, detail: str, record: str | None,
            mapping: str | None = None) -> InputDataError:
    return InputDataError(message, [Problem(rule, detail, record=record, mapping=mapping)])


def read_invoices(path: Path, spec: InputSpec) -> Iterator[SourceInvoice]:
    if not path.is_file():
        if path.is_dir():
            raise InputDataError(f"{path}: is a folder; --input takes the billing export file")
        raise InputDataError(f"{path}: input file not found{_found_near(path)}")
    refuse_unreadable(path, spec)
    if spec.format == "json":
        yield from _read_json(path, spec)
    elif spec.format == "csv":
        yield from _read_csv(path, spec)
    else:  # the mapping schema only allows the two
        raise InputDataError(f"unsupported input format {spec.format!r}")


def refuse_unreadable(path: Path, spec: InputSpec) -> None:
    """What ``read_invoices`` refuses of the file at ``path`` before it reads a record:
    a UTF-16 or UTF-32 file first (read in another encoding, its first line is no text
    to judge its kind by); then the file's kind (a JSON file given to a CSV mapping is
    told so, not that its encoding is not the mapping's, which fixing would not make it
    CSV); then, for a single-byte encoding, signs of another encoding."""
    _refuse_wide(path, spec)
    _refuse_other_format(path, spec)
    if _single_byte(spec.encoding):
        _refuse_utf8(path, spec)
        _refuse_latin9(path, spec)
        _refuse_oem(path, spec)


# ---------------------------------------------------------------- encodings


def _single_byte(encoding: str) -> bool:
    """Whether ``encoding`` reads every byte as one character (cp1252, latin-1, …):
    a UTF-8 file read so gives 'Ã©' for 'é', without any decoding error."""
    try:
        return len(b"\xc3\xa9\xe2\x80\x99".decode(encoding, "replace")) == 5
    except LookupError:
        return False


_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}"
                            rb"|[\xf0-\xf4][\x80-\xbf]{3}")


def _breaks(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _chunks(path: Path) -> Iterator[bytes]:
    """The file in blocks of whole physical lines (a line ends with CR, LF or CRLF)."""
    carry = b""
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            data = carry + chunk
            if not chunk:
                if data:
                    yield data
                return
            # a CR as the last byte may be half of a CRLF: cut before it
            cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
            if cut == 0 and len(data) < 1 << 26:
                carry = data
                continue
            cut = cut or len(data)
            yield data[:cut]
            carry = data[cut:]


def _utf8_line(path: Path) -> tuple[int, str] | None:
    """(line, sample) of the first physical line whose non-ASCII bytes are all UTF-8
    sequences of Latin letters or punctuation: a UTF-8 file, whatever the mapping says."""
    line = 1
    for block in _chunks(path):
        checked = 0
        for m in _UTF8_SEQUENCE.finditer(block):
            if m.start() < checked:
                continue
            start = max(block.rfind(b"\n", 0, m.start()), block.rfind(b"\r", 0, m.start())) + 1
            ends = [i for i in (block.find(b"\n", m.end()), block.find(b"\r", m.end())) if i >= 0]
            end = min(ends) if ends else len(block)
            checked = end
            try:
                text = block[start:end].decode("utf-8")
            except UnicodeDecodeError:
                continue  # bytes of a real 8-bit file that happen to look like UTF-8
            if PLAUSIBLE_UTF8.search(text):
                char = m.group(0).decode("utf-8")
                shown = " ".join(f"0x{b:02X}" for b in m.group(0))
                return line + _breaks(block[:start]), f"'{char}' written as {shown}"
        line += _breaks(block)
    return None


def _refuse_utf8(path: Path, spec: InputSpec) -> None:
    found = _utf8_line(path)
    if found is None:
        return
    line, sample = found
    where = f"{_display(path)}:{line}"
    detail = (f"the file is UTF-8 ({sample}), read as {spec.encoding} it would give wrong "
              f"letters ('Ã©' for 'é'); set input.encoding: utf-8")
    raise _refuse(f"{where}: {detail}; nothing written", "input.encoding", detail, where,
                  spec.at("encoding"))


# ISO-8859-15 (Latin-9), common in French exports for its 'œ' and '€', differs from
# ISO-8859-1 and Windows-1252 in eight bytes; read as either, a Latin-9 file decodes
# without an error into wrong signs. Those that do not stand in French text as
# themselves: '¤' anywhere (Latin-9's '€'); '¦ ¨' against a letter (its 'Š š'); '¼ ½ ¾'
# (its 'Œ œ Ÿ') inside a word, between two letters ('C½UR', 'V½U') or before two
# ('¼UVRE'), not a lesson's length ('½h', '1h½', '½ heure'). '´' and '¸' (its 'Ž ž')
# are left alone, '´' being typed as an apostrophe.
_LATIN9_BYTES = {0xA4: "€", 0xA6: "Š", 0xA8: "š", 0xBC: "Œ", 0xBD: "œ", 0xBE: "Ÿ"}
_L = rb"[A-Za-z\xc0-\xd6\xd8-\xf6\xf8-\xff]"
# (each byte first, what is around it after: the engine looks for the bytes alone, 3
# times faster on a file of 27 MB than with lookbehinds first)
_LATIN9_SIGN = re.compile(
    rb"\xa4|[\xa6\xa8](?:(?<=" + _L + rb".)|(?=" + _L + rb"))"
    rb"|[\xbc-\xbe](?:(?=" + _L + _L + rb")|(?<=" + _L + rb".)(?=" + _L + rb"))", re.DOTALL)


def _matches(path: Path, pattern: re.Pattern[bytes]) -> Iterator[tuple[int, re.Match[bytes]]]:
    """Each match of ``pattern`` in the file, read in blocks of whole lines (the match's
    ``string``), with the line its block starts on: the match's own is
    ``_line(start, m)``, counted only for a match a message places."""
    line = 1
    for block in _chunks(path):
        for m in pattern.finditer(block):
            yield line, m
        line += _breaks(block)


def _line(start: int, m: re.Match[bytes]) -> int:
    return start + _breaks(m.string[:m.start()])


def _latin9_line(path: Path) -> tuple[int, int] | None:
    """(line, byte) of the first sign of an ISO-8859-15 file (``_LATIN9_SIGN``)."""
    for start, m in _matches(path, _LATIN9_SIGN):
        return _line(start, m), m.string[m.start()]
    return None


def _refuse_latin9(path: Path, spec: InputSpec) -> None:
    """Refuse a file read as ISO-8859-1 or Windows-1252 that shows the bytes of an
    ISO-8859-15 one: it would give wrong letters without a decoding error."""
    if codecs.lookup(spec.encoding).name not in ("iso8859-1", "cp1252"):
        return
    found = _latin9_line(path)
    if found is None:
        return
    line, byte = found
    where = f"{_display(path)}:{line}"
    read_as = bytes([byte]).decode(spec.encoding)
    where_said = "next to a letter" if byte != 0xA4 else "in the text"
    detail = (f"byte 0x{byte:02X} {where_said} reads '{read_as}' in {spec.encoding}, "
              f"'{_LATIN9_BYTES[byte]}' in ISO-8859-15: the file is ISO-8859-15 (Latin-9)? "
              "set input.encoding: iso-8859-15")
    raise _refuse(f"{where}: {detail}; nothing written", "input.encoding", detail, where,
                  spec.at("encoding"))


# Excel's "CSV (MS-DOS)" save writes cp850, its "CSV (Macintosh)" Mac Roman: both put
# the French small letters (é è à ç ê ô…) in bytes 0x80-0x9F, where Windows-1252 has
# signs ('‚' '‡' 'ˆ' '“'…; five bytes are none of its characters) and ISO-8859-1/15
# control characters. Read as either, such a file gives wrong letters without an error
# ('LefŠvre', 'H‚lŠne'). Its signs: a byte of those between two ASCII letters that
# Windows-1252 reads as no letter, or as a capital (Š Œ Ž Ÿ) between two small ones;
# not the quotes and dashes a word may hold in Windows-1252 (’ ‘ – —: l’école) nor its
# small letters (š œ ž: cœur).
# (the byte first, what is around it after: the engine looks for the byte alone, 2.5
# times faster on a file of 27 MB than with the lookbehind first)
_OEM_SIGN = re.compile(
    rb"[\x80-\x89\x8b\x8d\x8f\x90\x93-\x95\x98\x99\x9b\x9d](?<=[A-Za-z].)(?=[A-Za-z])"
    rb"|[\x8a\x8c\x8e\x9f](?<=[a-z].)(?=[a-z])", re.DOTALL)
_OEM = (("cp850", 'Excel\'s "CSV (MS-DOS)"'), ("mac_roman", 'Excel\'s "CSV (Macintosh)"'))
_FRENCH_LETTERS = frozenset("éèàçêâôîûùëïüÉÈÀÇÊÂÔÎÛÙËÏÜ")


def _oem_signs(path: Path) -> tuple[int, int, str, str] | None:
    """(line, byte, encoding, what writes it) of the first sign (``_OEM_SIGN``) of a
    cp850 or Mac Roman file, the encoding being the one that reads more of the file's
    first 200 signs as French letters of the next letter's case; None without a sign
    that either reads as one."""
    first: tuple[int, int] | None = None
    counts = {name: 0 for name, _ in _OEM}
    for start, m in itertools.islice(_matches(path, _OEM_SIGN), 200):
        byte = m.string[m.start()]
        # a small letter before a small one, a capital before a capital ('Forêt':
        # Mac Roman's 'ê', not cp850's 'É')
        small = chr(m.string[m.end()]).islower()
        letters = [name for name in counts
                   if (char := bytes([byte]).decode(name)) in _FRENCH_LETTERS
                   and char.islower() == small]
        for name in letters:
            counts[name] += 1
        if letters and first is None:
            first = (_line(start, m), byte)
    if first is None:
        return None
    name, said = max(_OEM, key=lambda e: counts[e[0]])  # a tie: cp850, first
    return first[0], first[1], name, said


def _refuse_oem(path: Path, spec: InputSpec) -> None:
    """Refuse a file read as Windows-1252 or ISO-8859-1/15 that shows the bytes of a
    cp850 or Mac Roman one (``_oem_signs``): it would give wrong letters without a
    decoding error, or fail at a byte Windows-1252 leaves undefined, naming no cause."""
    if codecs.lookup(spec.encoding).name not in ("iso8859-1", "iso8859-15", "cp1252"):
        return
    found = _oem_signs(path)
    if found is None:
        return
    line, byte, name, said = found
    where = f"{_display(path)}:{line}"
    detail = (f"byte 0x{byte:02X} between two letters {_read_as(byte, spec.encoding)} in "
              f"{spec.encoding}, '{bytes([byte]).decode(name)}' in {name} ({said}): the file "
              f"is {name}? set input.encoding: {name}")
    raise _refuse(f"{where}: {detail}; nothing written", "input.encoding", detail, where,
                  spec.at("encoding"))


def _read_as(byte: int, encoding: str) -> str:
    """How ``encoding`` reads ``byte``: "reads '‚'", "reads U+0082 (a control
    character)", "is no character"."""
    try:
        char = bytes([byte]).decode(encoding)
    except UnicodeDecodeError:
        return "is no character"
    if 0x80 <= ord(char) <= 0x9F:
        return f"reads U+{ord(char):04X} (a control character)"
    return f"reads '{char}'"


def _refuse_wide(path: Path, spec: InputSpec) -> None:
    """Refuse a UTF-16 or UTF-32 file (``wide``) that the mapping's input.encoding does
    not read as such: read as UTF-8 it is undecodable and as an 8-bit encoding a NUL
    between letters, in either case never the cp1252 or delimiter a later check would
    suggest."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    found = wide(head)
    if found is None or codecs.lookup(spec.encoding).name in found[1]:
        return
    what, reads = found
    where = f"{_display(path)}:1"
    detail = (f"the file is {what}, not {spec.encoding}; set input.encoding: {reads[0]}")
    raise _refuse(f"{where}: {detail}; nothing written", "input.encoding", detail, where,
                  spec.at("encoding"))


def _refuse_other_format(path: Path, spec: InputSpec) -> None:
    """Refuse a file whose first line is plainly not of the mapping's input.format: JSON
    or XML for CSV, a line starting with a letter, a digit or a quote for JSON (a line
    that does not decode, a UTF-16 file, an empty file: left to the readers, which say
    what is wrong with them). A CSV file is judged by its header's line
    (input.header_line: a title above it may read as anything)."""
    line = spec.header_line if spec.format == "csv" else 1
    first = _first_line(path, spec.encoding, line)
    start = first[:1]
    if (spec.format == "csv" and start in ("{", "[", "<")) or (
            spec.format == "json" and (start.isalnum() or start in ("\"", "'", ";", ","))):
        shown = _display(path)
        raise _other_format(shown, first, spec, f"{shown}:{line}", line)


def _other_format(shown: str, first: str, spec: InputSpec, said_at: str,
                  line: int = 1) -> InputDataError:
    """The refusal of a file whose first line (``first``; the header's, ``line``) is not
    of the mapping's input.format: the line described, never quoted (it may be a billing
    row); the problem at that line of the file and the mapping's input.format, the
    message headed by ``said_at``."""
    detail = (f"not {spec.format.upper()}: {_line_named(line)} {describe_first_line(first)}; "
              f"the mapping says input.format: {spec.format}")
    return _refuse(f"{said_at}: {detail}; nothing written", "input.format", detail,
                   f"{shown}:{line}", spec.at("format"))


def _line_named(line: int) -> str:
    """How a message names the header's line: 'the first line', or 'line 3 (input.
    header_line)' below a title."""
    return "the first line" if line == 1 else f"line {line} (input.header_line)"


def _undecodable(path: Path, encoding: str) -> tuple[str, str]:
    """(':line', 'byte 0x92, byte 7 of the line') of the first bytes ``encoding``
    cannot decode; lines end with CR, LF or CRLF."""
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 1
    for block in _chunks(path):
        for raw in block.splitlines(keepends=True):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as exc:
                if exc.reason == "Stream does not start with BOM":
                    # Python 3.13's UTF-16 decoder; 3.11's and 3.12's say it in these
                    # words, as a UnicodeError (below)
                    return f":{number}", f"{exc.encoding.upper()} stream does not start with BOM"
                at = max(0, min(exc.start, len(raw) - 1))
                return f":{number}", f"byte 0x{raw[at]:02X}, byte {at + 1} of the line"
            except UnicodeError as exc:
                return f":{number}", str(exc)
            number += 1
    try:
        decoder.decode(b"", final=True)
    except UnicodeError as exc:
        return f":{number - 1}", f"the file ends inside a character ({exc})"
    return "", "undecodable bytes"


def _reads_as(path: Path, encoding: str) -> bool:
    """Whether the whole file decodes as ``encoding`` (cp1252: every byte a Windows-1252
    character, the five it leaves undefined not; a file read as UTF-8 in error is most
    often one, exported on Windows)."""
    for block in _chunks(path):
        try:
            block.decode(encoding)
        except UnicodeDecodeError:
            return False
    return True


def _encoding_error(path: Path, spec: InputSpec) -> InputDataError:
    """Refuse a file that does not decode as the mapping's encoding, naming the first
    bytes that do not; read as UTF-8, a file that Windows-1252 reads whole says so (a
    hint: the Latin-9 check then runs on it, ``_refuse_latin9``), unless other lines are
    UTF-8 (a file mixing two encodings, which no setting reads: said so, naming no
    mapping key), read as another encoding, one that UTF-8 reads whole (a UTF-8 file
    declared utf-16)."""
    shown = _display(path)
    where, detail = _undecodable(path, spec.encoding)
    mixed: tuple[int, str] | None = None
    if codecs.lookup(spec.encoding).name in ("utf-8", "utf-8-sig"):
        mixed = _utf8_line(path)
        oem = _oem_signs(path) if mixed is None else None
        if mixed is not None:
            # a UTF-8 file with a value written in another encoding: read as cp1252 (or
            # cp850), its UTF-8 letters are refused in turn (_refuse_utf8); no encoding
            # reads it, the export is to correct
            detail += (f"; yet line {mixed[0]} is UTF-8 ({mixed[1]}): the file mixes two "
                       "encodings, which no input.encoding reads; correct this line's "
                       "value in the export")
        elif oem is not None:
            detail += (f"; its bytes between letters read as French letters in {oem[2]} "
                       f"({oem[3]}): input.encoding: {oem[2]}?")
        elif _reads_as(path, "cp1252"):
            detail += ("; the whole file reads as cp1252 (Windows' Western European "
                       "encoding): input.encoding: cp1252?")
    elif _reads_as(path, "utf-8"):
        detail += "; the whole file reads as UTF-8: input.encoding: utf-8?"
    # (a mixed file: no setting of the mapping fixes it, the export is to correct)
    fix = "" if mixed is not None else " set input.encoding;"
    return InputDataError(
        f"{shown}{where}: not valid {spec.encoding} ({detail});{fix} nothing written",
        [Problem("input.encoding", f"not valid {spec.encoding}: {detail}",
                 record=f"{shown}{where}",
                 mapping=spec.at("encoding") if mixed is None else None)])


def _first_line(path: Path, encoding: str = "utf-8", line: int = 1) -> str:
    """The file's first line (of its first 4 KiB), to describe, never to show: it may be
    a billing row (a name, an IBAN). With ``line`` (input.header_line), that line of the
    file (of its first 64 KiB; '' past them)."""
    if line == 1:
        with path.open("rb") as handle:
            head = handle.read(4096)
        text = head.decode(encoding, "replace").lstrip("\ufeff \t\r\n")
        return re.split(r"[\r\n]", text, maxsplit=1)[0]
    lines = _head_lines(path, encoding)
    return lines[line - 1].lstrip(" \t") if len(lines) >= line else ""


def _head_lines(path: Path, encoding: str) -> list[str]:
    """The whole lines of the file's first 64 KiB (a line ends with CR, LF or CRLF), at
    most 101: where a header below a title is looked for."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    lines = re.split(r"\r\n|\r|\n", head.decode(encoding, "replace").removeprefix("\ufeff"))
    if len(head) == 65536:
        lines.pop()  # (it may be cut)
    return lines[:101]


_DELIMITERS = (",", ";", "\t", "|")
# a field no header holds: a number, an amount, a date or a time, an e-mail, an IBAN
_DATA_FIELD = re.compile(r"[\d\s.,/:'+-]*\d[\d\s.,/:'+-]*|[^@\s]+@[^@\s]+\.[^@\s]+"
                         r"|[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}")


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return line.split(delimiter)


def _data_fields(fields: list[str]) -> int:
    """How many of a CSV line's fields look like data (numbers, dates, e-mails, IBANs),
    which a header naming columns does not hold."""
    return sum(1 for f in fields if _DATA_FIELD.fullmatch(f.strip()))


def _header_or_not(fields: list[str]) -> str:
    found = _data_fields(fields)
    if found:
        said = "1 field looks" if found == 1 else f"{found} fields look"
        return f"no header ({said} like numbers, dates, e-mails or IBANs)"
    return "a header (no field looks like a number, a date, an e-mail or an IBAN)"


def describe_first_line(line: str) -> str:
    """What a file's first line looks like ("looks like CSV: 12 fields separated by ';',
    no header (…)"; JSON, XML), without its content: that line may be a billing
    record, which has no place in a message or a log."""
    if not line:
        return "is empty"
    if line[0] in "{[<":
        kind = "XML" if line[0] == "<" else "JSON"
        return f"looks like {kind} (it starts with {line[0]!r})"
    splits = {d: _split(line, d) for d in _DELIMITERS}
    delimiter = max(_DELIMITERS, key=lambda d: len(splits[d]))
    fields = splits[delimiter]
    if len(fields) < 2:
        return f"is one field of {len(line)} characters, with no ',', ';', tab or '|'"
    return (f"looks like CSV: {len(fields)} fields separated by {delimiter!r}, "
            f"{_header_or_not(fields)}")


# ---------------------------------------------------------------- JSON


def _jpath(parts: list[str | int] | tuple[str | int, ...]) -> str:
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out.append(f".{part}")
        else:
            out.append(f"[{part!r}]")
    text = "".join(out)
    return text if len(text) <= 160 else text[:157] + "…"


def json_path(parts: tuple[str | int, ...]) -> str:
    """The JSON path of ``parts`` below a record's own: ``.payer.address``, ``[2]``."""
    return _jpath(parts)[1:]


class _Recoder:
    """A byte stream (``read`` only, what ijson calls) giving UTF-8 for a file in another
    encoding, decoded as it is read."""

    def __init__(self, raw: Any, encoding: str) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._buffer = b""
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = self._raw.read(65536)
            self._done = not chunk
            self._buffer += self._decoder.decode(chunk, final=self._done).encode("utf-8")
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class _Budget:
    """A byte stream that refuses to read more than MAX_JSON_RECORD_BYTES past its mark:
    one record, or one value outside the records, larger than that is refused before the
    parser holds it all."""

    def __init__(self, raw: Any, shown: str) -> None:
        self._raw = raw
        self._shown = shown
        self.pos = 0
        self.mark = 0
        self.where = "$"

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.pos += len(data)
        if self.pos - self.mark > MAX_JSON_RECORD_BYTES + 2 * max(size, 0):
            where = f"{self._shown}:{self.where}"
            detail = (f"more than {MAX_JSON_RECORD_BYTES} bytes in one record (or one value): "
                      "not an invoice; check the file")
            raise _refuse(f"{where}: {detail}; nothing written", "input.json-size", detail,
                          where)
        return data


def _utf8(encoding: str) -> bool:
    """Whether the mapping's encoding is UTF-8: read as is, a byte order mark dropped."""
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _decoded(handle: Any, encoding: str) -> Any:
    """ijson reads bytes as UTF-8; other encodings are re-encoded on the fly."""
    if _utf8(encoding):
        if handle.peek(3)[:3] == codecs.BOM_UTF8:
            handle.read(3)
        return handle
    return _Recoder(handle, encoding)


_YAJL_MESSAGE = re.compile(r"(?:parse|lexical) error: [^\n]{1,120}")


def _syntax(exc: Exception) -> str:
    """What ijson says of a syntax error, without the text of the file it quotes under
    it (an IBAN, a name: billing data has no place in an error message or a log)."""
    first = str(exc).split("\n", 1)[0].strip()
    return first if _YAJL_MESSAGE.fullmatch(first) else "syntax error"


def _json_lines(path: Path, encoding: str) -> bool:
    """Whether the file's first two lines that are not blank are each a JSON object (of
    its first 64 KiB): JSON Lines, a JSON document a line."""
    found = 0
    for text in _head_lines(path, encoding):
        if not text.strip():
            continue
        try:
            if not isinstance(json.loads(text), dict):
                return False
        except ValueError:
            return False
        found += 1
        if found == 2:
            return True
    return False


class _JsonRefused(Exception):
    def __init__(self, rule: str, detail: str, parts: list[str | int]) -> None:
        super().__init__(detail)
        self.rule, self.detail, self.parts = rule, detail, parts

    def error(self, shown: str) -> InputDataError:
        """The refusal, at its JSON path in the file ``shown``."""
        where = f"{shown}:{_jpath(self.parts)}"
        return _refuse(f"{where}: {self.detail}; nothing written", self.rule, self.detail,
                       where)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE_DETAIL = ("an escaped lone surrogate (\\uD800 to \\uDFFF without its pair): half of a "
                "UTF-16 character, not a character; the school software wrote broken text "
                "there")


def _python_backend(path: Path, encoding: str) -> bool:
    """Whether the file holds a JSON escape of a surrogate (``\\uD800`` to ``\\uDFFF``,
    pairs included) or a run of digits longer than int() converts, which the exact reader
    reads with ijson's Python backend; read in blocks."""
    utf8 = _utf8(encoding)
    with path.open("rb") as handle:
        read: Callable[[int], Any] = handle.read if utf8 else codecs.getreader(encoding)(
            handle, "replace").read  # another encoding: decoded as it is read
        tail = b""
        while block := read(_CHUNK):
            tail += block if utf8 else block.encode("utf-8", "surrogatepass")
            if _SURROGATE_BYTES.search(tail) or (
                    _LONG_DIGITS and tail.translate(_DIGITS_AS_ZERO).find(_LONG_DIGITS) >= 0):
                return True
            tail = tail[-max(6, _INT_DIGITS):]
    return False


def _refuse_lone_surrogate(node: Any, base: list[str | int]) -> None:
    """Refuse (_JsonRefused, with its JSON path) the first string or key of ``node`` that
    holds a lone surrogate (the standard library's decoder keeps one as is)."""
    stack: list[tuple[Any, list[str | int]]] = [(node, base)]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, str):
            if _LONE_SURROGATE.search(node):
                raise _JsonRefused("input.json-surrogate", _LONE_DETAIL, parts)
        elif isinstance(node, dict):
            for key, value in reversed(node.items()):
                if _LONE_SURROGATE.search(key):
                    raise _JsonRefused("input.json-surrogate", _LONE_DETAIL, parts)
                stack.append((value, parts + [key]))
        elif isinstance(node, list):
            stack.extend((value, parts + [i]) for i, value in reversed(list(enumerate(node))))


def _build(events: Iterator[tuple[str, Any]], base: list[str | int]) -> dict[str, Any]:
    """The object whose ``start_map`` was just read, built from ijson's basic events;
    refuses a repeated key, nesting past MAX_JSON_DEPTH, a string past MAX_JSON_STRING."""
    root: dict[str, Any] = {}
    stack: list[Any] = [root]
    names: list[str | int] = []  # the key (or index) of each container but the root
    top: Any = root
    is_map = True
    key: Any = None
    room = MAX_JSON_DEPTH - len(base)
    for event, value in events:
        if event == "map_key":
            key = value
            continue
        if event == "string":
            if len(value) > MAX_JSON_STRING:
                raise _JsonRefused("input.json-size", f"a string of {len(value)} characters, "
                                   f"pesgen reads at most {MAX_JSON_STRING}",
                                   base + names + [key if is_map else len(top)])
        elif event == "end_map" or event == "end_array":
            stack.pop()
            if not stack:
                return root
            names.pop()
            top = stack[-1]
            is_map = type(top) is dict
            continue
        elif event == "start_map" or event == "start_array":
            new: Any = {} if event == "start_map" else []
            if is_map:
                if key in top:
                    raise _JsonRefused("input.json-duplicate-key", f"the key '{key}' appears "
                                       "twice in this object", base + names + [key])
                top[key] = new
                names.append(key)
            else:
                names.append(len(top))
                top.append(new)
            stack.append(new)
            if len(stack) > room:
                raise _JsonRefused("input.json-depth", f"nested deeper than {MAX_JSON_DEPTH} "
                                   "levels", base + names)
            top = new
            is_map = event == "start_map"
            continue
        if is_map:
            if key in top:
                raise _JsonRefused("input.json-duplicate-key", f"the key '{key}' appears twice "
                                   "in this object", base + names + [key])
            top[key] = value
        else:
            top.append(value)
    raise _JsonRefused("input.json", "the file ends inside an invoice", base + names)


# a JSON number ijson cannot read: over Python's 4 300 digits for an int, or an exponent
# beyond what Decimal holds
_NUMBER = ("a number too long or too large to read (over 4 300 digits, or an exponent "
           "beyond what a decimal holds): not an amount or a quantity")

_KINDS = {"start_map": "an object", "start_array": "an array", "string": "a string",
          "number": "a number", "boolean": "a boolean", "null": "null"}


def _read_json(path: Path, spec: InputSpec) -> Iterator[SourceInvoice]:
    """The invoices of a JSON export: read by the fast reader, which hands over to the
    exact one (from the invoice it had reached) on anything it does not vouch for."""
    count = 0
    try:
        for item in _read_json_fast(path, spec):
            count += 1
            yield item
    except _Slow:
        yield from _read_json_exact(path, spec, skip=count)


# ------------------------------------------------ JSON, fast reader

_CHUNK = 1 << 20  # characters decoded at a time (tests make it tiny)
_WS = re.compile(r"[ \t\n\r]*")
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_BYTES = re.compile(_SURROGATE.pattern.encode("ascii"))
# ijson's C backend mishandles an integer of more digits than Python's int() converts
# (sys.get_int_max_str_digits(), 4 300): the ValueError is left pending, to come out
# later as another error, a SystemError, or a crash of the interpreter (a segmentation
# fault, with a syntax error further in the file); its Python backend raises it there.
# Such a run of digits is found by bytes.find in a block whose digits are made '0' and
# every other byte 'x' (a regular expression for it is several times slower).
_INT_DIGITS = sys.get_int_max_str_digits()
_LONG_DIGITS = b"0" * (_INT_DIGITS + 1) if _INT_DIGITS else None
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))


class _Slow(Exception):  # noqa: N818 - a hand-over, not an error
    """The fast reader met something only the exact reader judges: a repeated key, a
    record near a bound, a syntax error, an empty or odd shape, a lone surrogate."""


def _constant(name: str) -> Any:  # NaN, Infinity: not JSON, ijson refuses them
    raise _Slow


def _counting_decoder() -> tuple[json.JSONDecoder, Callable[[], int]]:
    """A JSON decoder of its own (one per file read: reads in threads at once keep
    their counts apart), and what gives the objects it made since it was asked last."""
    made = 0

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal made
        made += 1
        out = dict(items)
        if len(out) != len(items):  # a repeated key: the exact reader names it
            raise _Slow
        return out

    def taken() -> int:
        nonlocal made
        count, made = made, 0
        return count

    return json.JSONDecoder(object_pairs_hook=pairs, parse_float=Decimal,
                            parse_constant=_constant), taken


def _long_string(node: Any) -> bool:
    """Whether ``node`` holds a string value longer than MAX_JSON_STRING."""
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if len(node) > MAX_JSON_STRING:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _more_than(text: str, char: str, start: int, end: int, most: int) -> bool:
    """Whether ``text[start:end]`` holds ``char`` more than ``most`` times, found one
    after the other: ``str.find`` skips to the next one faster than ``str.count``
    looks at each character (a JSON value holds few '[')."""
    find = text.find
    at = find(char, start, end)
    while at != -1:
        if most <= 0:
            return True
        most -= 1
        at = find(char, at + 1, end)
    return False


class _Text:
    """The file decoded in chunks, read from ``i`` on with the standard library's JSON
    decoder; each value is decoded whole (``raw_decode``), so only the structure around
    the invoices is walked here."""

    def __init__(self, handle: Any, encoding: str) -> None:
        self._handle = handle
        self._decoder = codecs.getincrementaldecoder(
            "utf-8-sig" if _utf8(encoding) else encoding)()
        self.buf = ""
        self.i = 0
        self.eof = False
        self.surrogates = False  # the last value read held an escaped surrogate
        self._json, self._objects = _counting_decoder()

    def _more(self) -> None:
        data = self._handle.read(_CHUNK)
        self.eof = not data
        try:
            text = self._decoder.decode(data, final=self.eof)
        except UnicodeError:
            raise _Slow from None
        self.buf = self.buf[self.i:] + text
        self.i = 0

    def peek(self) -> str:
        """The next character after any whitespace ('' at the end of the file)."""
        while True:
            self.i = _WS.match(self.buf, self.i).end()  # type: ignore[union-attr]  # * matches
            if self.i < len(self.buf) or self.eof:
                return self.buf[self.i:self.i + 1]
            self._more()

    def take(self, char: str) -> bool:
        if self.peek() == char:
            self.i += 1
            return True
        return False

    def value(self, depth: int) -> Any:
        """The JSON value starting at ``i`` (after ``peek``), which sits ``depth`` levels
        down; _Slow when it breaks or nears a bound of the exact reader."""
        while True:
            self._objects()  # counted from 0
            try:
                value, end = self._json.raw_decode(self.buf, self.i)
            except RecursionError:
                raise _Slow from None
            except (ValueError, ArithmeticError):  # JSONDecodeError, or a number too
                # long (int) or too large (Decimal) to read: the exact reader says which
                end = -1
            if end == -1 or (end == len(self.buf) and not self.eof):
                # cut by the end of the chunk (or broken: the exact reader says where)
                if self.eof or len(self.buf) - self.i > MAX_JSON_RECORD_BYTES // 4:
                    raise _Slow
                self._more()
                continue
            break
        start, self.i = self.i, end
        text = self.buf
        # its depth is at most its objects and its lists (each opened by a '[', those
        # inside strings counted too): its objects counted as the decoder makes them,
        # not by scanning its text for '{'
        objects, room = self._objects(), MAX_JSON_DEPTH - depth
        if end - start >= 2 * room and (
                objects > room or _more_than(text, "[", start, end, room - objects)):
            raise _Slow  # perhaps too deep (brackets in strings count too)
        if text.find("\\u", start, end) != -1 and _SURROGATE.search(text, start, end):
            # an escaped surrogate: the decoder joins a pair into its character and keeps
            # a lone one as is, which the invoice's check refuses (not a character)
            self.surrogates = True
        if end - start > MAX_JSON_STRING and _long_string(value):
            raise _Slow
        if (end - start > MAX_JSON_RECORD_BYTES // 4
                and len(text[start:end].encode("utf-8", "surrogatepass"))
                > MAX_JSON_RECORD_BYTES - (1 << 18)):
            raise _Slow  # near the byte bound, which the exact reader applies
        return value


def _read_json_fast(path: Path, spec: InputSpec) -> Iterator[SourceInvoice]:
    shown = _display(path)
    target = tuple(spec.records.split(".")) if spec.records else ()
    json_path = _jpath(target)
    prefix = f"{shown}:{json_path}"
    exact_origin = len(json_path) > 140  # _jpath shortens long paths: let it
    with path.open("rb") as handle:
        text = _Text(handle, spec.encoding)
        count = 0
        try:
            for count, item in enumerate(_fast_value(text, target, ()), start=1):
                origin = (f"{shown}:{_jpath(target + (count - 1,))}" if exact_origin
                          else f"{prefix}[{count - 1}]")
                yield SourceInvoice(record=item, lines=None, origin=origin)
        except _JsonRefused as exc:
            raise exc.error(shown) from None
        if count == 0 or text.peek() != "":  # no invoice, or more after the JSON value
            raise _Slow


def _fast_value(text: _Text, target: tuple[str, ...],
                here: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The invoices in the value at ``here`` (a level of the records path); a value off
    the path is read and dropped."""
    if here == target:
        if not text.take("["):
            raise _Slow
        if text.take("]"):
            return
        depth = len(target) + 1
        index = 0
        while True:
            if text.peek() != "{":
                raise _Slow
            text.surrogates = False
            item = text.value(depth)
            if text.surrogates:
                _refuse_lone_surrogate(item, list(target) + [index])
            yield item
            index += 1
            if text.take("]"):
                return
            if not text.take(","):
                raise _Slow
    if not text.take("{"):
        raise _Slow
    if text.take("}"):
        return
    keys: set[str] = set()
    while True:
        if text.peek() != '"':
            raise _Slow
        key = text.value(len(here) + 1)
        if key in keys:
            raise _Slow
        keys.add(key)
        if not text.take(":"):
            raise _Slow
        sub = here + (key,)
        if target[:len(sub)] == sub:
            yield from _fast_value(text, target, sub)
        else:
            text.peek()
            text.value(len(sub))
        if text.take("}"):
            return
        if not text.take(","):
            raise _Slow


# ------------------------------------------------ JSON, exact reader


def _read_json_exact(path: Path, spec: InputSpec, skip: int = 0) -> Iterator[SourceInvoice]:
    """ijson's events, checked one by one: names the repeated key, the bound broken, the
    syntax error; the first ``skip`` invoices (read already) are not yielded again."""
    import ijson

    shown = _display(path)
    target = tuple(spec.records.split(".")) if spec.records else ()
    json_path = _jpath(target)
    # ijson's C backend reads a lone surrogate escape as '?', silently: a file with any
    # escaped surrogate is read by its Python backend, which keeps it, to be refused; and
    # one with an integer too long for int() (_INT_DIGITS), which it refuses where it is
    try:
        surrogates = _python_backend(path, spec.encoding)
    except UnicodeError:  # what errors="replace" does not replace: no UTF-16 BOM
        raise _encoding_error(path, spec) from None
    basic_parse = ijson.get_backend("python").basic_parse if surrogates else ijson.basic_parse
    count = 0
    # keys seen in each object along the records path, for a path that matches nothing
    seen: dict[tuple[str, ...], list[str]] = {}
    met: str | None = None  # what the records path holds, when not an array
    # what a level of the records path above it holds when not an object: an array's
    # item count, or another value's kind (a path of keys cannot go through them)
    along: dict[tuple[str, ...], str | int] = {}
    found = False  # the records array was met (empty, then)
    root: str | None = None  # the file's top level: its first event
    reading: str | None = None  # the JSON path of the invoice being read
    last: str | None = None  # the JSON path of the last invoice read
    with path.open("rb") as handle:
        stream = _Budget(_decoded(handle, spec.encoding), shown)
        events = basic_parse(stream, use_float=False)
        # the containers around the reader, outside the records: (path, keys or None,
        # next index, current key)
        frames: list[list[Any]] = []
        try:
            for event, value in events:
                stream.mark = stream.pos
                if event == "map_key":
                    frame = frames[-1]
                    if value in frame[1]:
                        raise _JsonRefused("input.json-duplicate-key", f"the key '{value}' "
                                           "appears twice in this object",
                                           list(frame[0]) + [value])
                    frame[1].add(value)
                    frame[3] = value
                    # a value past the byte bound is named by its key (outside the
                    # invoices, whose keys _build reads, there are few of them)
                    stream.where = _jpath(list(frame[0]) + [value])
                    if frame[0] == target[:len(frame[0])] and len(frame[0]) < len(target):
                        seen.setdefault(frame[0], []).append(value)
                    continue
                if event == "end_map" or event == "end_array":
                    frame = frames.pop()
                    if frame[1] is None and frame[0] in along:
                        along[frame[0]] = frame[2]
                    continue
                if frames:
                    parent = frames[-1]
                    if parent[1] is None:
                        here = parent[0] + (parent[2],)
                        parent[2] += 1
                    else:
                        here = parent[0] + (parent[3],)
                    if parent[1] is None and parent[0] == target:
                        where = f"{shown}:{_jpath(here)}"
                        if event != "start_map":
                            detail = f"an invoice must be a JSON object, not {_KINDS[event]}"
                            raise _refuse(f"{where}: {detail}; nothing written",
                                          "input.shape", detail, where)
                        stream.where = reading = _jpath(here)
                        item = _build(events, list(here))
                        if surrogates:
                            _refuse_lone_surrogate(item, list(here))
                        stream.mark = stream.pos
                        reading, last = None, stream.where
                        stream.where = _jpath(target)  # no longer this invoice
                        count += 1
                        if count > skip:
                            yield SourceInvoice(record=item, lines=None, origin=where)
                        continue
                else:
                    here, root = (), event
                if here == target and event != "start_array":
                    met = _KINDS[event]
                elif event != "start_map" and len(here) < len(target) and \
                        target[:len(here)] == here:
                    along[here] = _KINDS[event]
                if event == "start_map" or event == "start_array":
                    if len(here) >= MAX_JSON_DEPTH:
                        raise _JsonRefused("input.json-depth", f"nested deeper than "
                                           f"{MAX_JSON_DEPTH} levels", list(here))
                    frames.append([here, set() if event == "start_map" else None, 0, None])
                    found = found or (here == target and event == "start_array")
                elif event == "string" and len(value) > MAX_JSON_STRING:
                    raise _JsonRefused("input.json-size", f"a string of {len(value)} "
                                       f"characters, pesgen reads at most {MAX_JSON_STRING}",
                                       list(here))
        except _JsonRefused as exc:
            raise exc.error(shown) from None
        except UnicodeError:
            raise _encoding_error(path, spec) from None
        except ijson.JSONError as exc:
            # the Python backend's refusal of a number its int() or Decimal() refused
            number = isinstance(exc.__context__, (ValueError, ArithmeticError))
            if not number and "UTF8" in str(exc) and _undecodable(path, spec.encoding)[0]:
                raise _encoding_error(path, spec) from None
            if count == 0 and not frames and not number:
                first = _first_line(path, spec.encoding)
                if first[:1] not in ("{", "["):
                    raise _other_format(shown, first, spec, f"{shown}:1") from None
            detail = _NUMBER if number else f"invalid JSON: {_syntax(exc)}"
            if not number and not frames and "trailing garbage" in detail and \
                    _json_lines(path, spec.encoding):
                detail += ("; the file is JSON Lines (one JSON object a line), pesgen reads "
                           "one JSON document: the invoices in an array, the file's own or "
                           "under a key (input.records)")
            if reading is not None:
                where = f"{shown}:{reading}"
                detail += " (in this invoice)"
            else:
                where = shown if last is None else f"{shown}:{last}"
                detail += "" if last is None else " (after this invoice)"
            head = f"{_NUMBER}," if number else "invalid JSON"
            raise _refuse(f"{where}: {head} after {count} invoice(s); nothing written",
                          "input.json", detail, where) from None
        except (ValueError, ArithmeticError):
            # ijson's int() or Decimal() of a number, raised as it reads a block of the
            # file: where exactly is not known (the invalid JSON message says the same)
            raise _refuse(f"{shown}: {_NUMBER}, after {count} invoice(s); nothing written",
                          "input.json", _NUMBER, shown) from None
    if count == 0:
        yield from ()
        # a file that is an array itself, read for an array under a key
        _no_records(shown, json_path, target, seen, met if not found else "", spec,
                    bool(target) and root == "start_array", along)


def _no_records(shown: str, json_path: str, target: tuple[str, ...],
                seen: dict[tuple[str, ...], list[str]], met: str | None,
                spec: InputSpec, root_array: bool,
                along: dict[tuple[str, ...], str | int] | None = None) -> None:
    if met == "":
        detail = f"no invoice in the array at {json_path}"
    elif met is not None:
        detail = f"{json_path} is {met}, not an array of invoices (input.records)"
    else:
        deepest = max((level for level in seen if target[:len(level)] == level),
                      key=len, default=None)
        if deepest is None and root_array:
            detail = (f"no invoice array at {json_path}: the file is an array itself; if it "
                      "is the array of invoices, set input.records to \"\" (the file's "
                      "top level)")
        elif deepest is None:
            detail = f"no invoice array at {json_path}: the file holds no object there"
        else:
            keys = seen[deepest]
            wanted = target[len(deepest)]
            held = (along or {}).get(deepest + (wanted,))
            close = difflib.get_close_matches(wanted, keys, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            shown_keys = ", ".join(keys[:20]) + (", …" if len(keys) > 20 else "")
            detail = f"no invoice array at {json_path}: " + (
                _through(target, deepest, held) if held is not None
                # there, and neither an object with a key nor another value: an empty one
                else f"{_jpath(deepest + (wanted,))} is an empty object" if wanted in keys
                else f"the keys at {_jpath(deepest)} are {shown_keys}{hint}")
    mapping = None if met == "" else spec.at("records")
    raise InputDataError(f"{shown}: {detail}; nothing written",
                         [Problem("input.empty", detail, record=shown, mapping=mapping)])


def _through(target: tuple[str, ...], deepest: tuple[str, ...], held: str | int) -> str:
    """Why a records path stops at a value that is no object (``invoices.lines`` where
    ``$.invoices`` is the array of invoices): input.records reaches the invoices' array
    by keys alone, object to object; it goes into no array's items."""
    level = deepest + (target[len(deepest)],)
    head = (f"{_jpath(level)} is {held if isinstance(held, str) else f'an array of {held} item(s)'}"
            f", not an object holding '{target[len(level)]}'")
    if isinstance(held, str):
        return (f"{head} (input.records reaches the array of invoices by keys alone, from "
                "object to object)")
    return (f"{head}: input.records reaches the array of invoices by keys alone, from object "
            f"to object, never into an array's items; if {_jpath(level)} is the invoices' "
            f"array, set input.records to '{'.'.join(level)}', and bindings.lines to the path "
            "of the lines' array in each invoice")


# ---------------------------------------------------------------- CSV


def _sniff_delimiter(path: Path, spec: InputSpec) -> str:
    with path.open(encoding=spec.encoding, newline="") as handle:
        for _ in range(spec.header_line - 1):
            handle.readline()
        sample = handle.read(65536)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        shown = _display(path)
        detail = "cannot detect the CSV delimiter; set input.delimiter"
        raise _refuse(f"{shown}: {detail}; nothing written", "input.csv", detail,
                      f"{shown}:1",
                      spec.at("delimiter")) from None


def close_column(name: str, header: list[str]) -> str | None:
    """The header column a name missing from it most likely means: one that differs
    only in case ('Bic' for 'BIC', which difflib's ratio alone does not find), else the
    closest one, compared without case (difflib, ratio ≥ 0.6: 'Eleve' for 'Elève')."""
    folded: dict[str, str] = {}
    for column in header:
        if column:
            folded.setdefault(column.casefold(), column)
    key = name.casefold()
    if key in folded:
        return folded[key]
    close = difflib.get_close_matches(key, list(folded), n=1)
    return folded[close[0]] if close else None


def _header_problem(shown: str, path: Path, header: list[str], delimiter: str,
                    spec: InputSpec) -> InputDataError:
    """The group_by column is not in the header: say what was read, and what to fix."""
    line = spec.header_line
    where = f"{shown}:{line}"
    named = _line_named(line)
    below = _header_elsewhere(path, spec, delimiter)
    if below is not None:
        # a title above the header (an export's name, its date): the line that names
        # the group_by column, said by its number only (the others may be billing rows)
        detail = (f"input.group_by reads column '{spec.group_by}', which {named} does not "
                  f"name; line {below} does: it is the header? set input.header_line: "
                  f"{below}{' (the lines above it are not read)' if below > 1 else ''}")
        return _refuse(f"{where}: {detail}; nothing written", "input.column", detail, where,
                       spec.at("header_line") or spec.at("group_by"))
    first = _first_line(path, spec.encoding, line)
    # (a first line opening JSON or XML was refused before: _refuse_other_format)
    if not any(header):
        # a blank line, spaces or delimiters alone: no column named (neither a
        # delimiter to check nor a header of 0 columns to list)
        detail = (f"input.group_by reads column '{spec.group_by}', and {named} of {shown} "
                  "names no column (it is blank, or delimiters alone); the export needs a "
                  "header line there naming its columns (input.header_line: the header's "
                  "line, below a title)")
        return _refuse(f"{where}: {detail}; nothing written", "input.column", detail, where,
                       spec.at("header_line") or spec.at("group_by"))
    if len(header) == 1:
        detail = (f"{named} reads as one column with delimiter {delimiter!r}; it "
                  f"{describe_first_line(first)}; check input.delimiter")
        return _refuse(f"{where}: {detail}; nothing written", "input.column", detail, where,
                       spec.at("delimiter"))
    found = _data_fields(header)
    if found:
        # no header: its columns (and a did-you-mean among them) would be a billing row
        detail = (f"input.group_by reads column '{spec.group_by}', and {named} of "
                  f"{shown} is no header naming it: {len(header)} fields, {found} of them "
                  "look like numbers, dates, e-mails or IBANs; the export needs a header "
                  "line naming its columns")
        return _refuse(f"{where}: {detail}; nothing written", "input.column", detail, where,
                       spec.at("group_by"))
    detail = missing_column("input.group_by", str(spec.group_by), header, shown)
    return _refuse(missing_columns_message(shown, 1, line), "input.column", detail, where,
                   spec.at("group_by"))


def _header_elsewhere(path: Path, spec: InputSpec, delimiter: str) -> int | None:
    """The line, among the file's first 100 and other than input.header_line, that
    names the group_by column as one of its fields, read with ``delimiter``, and looks
    like a header (no field a number, a date, an e-mail or an IBAN: a billing row may
    hold a value spelt as the column, 'invoice'): the header, below a title the mapping
    does not skip (or above the line it names)."""
    for number, text in enumerate(_head_lines(path, spec.encoding), start=1):
        if number == spec.header_line or str(spec.group_by) not in text:
            continue
        fields = [f.strip() for f in _split(text, delimiter)]
        if spec.group_by in fields and not _data_fields(fields):
            return number
    return None


def missing_column(key: str, column: str, header: list[str], shown: str,
                   unread: list[str] | None = None) -> str:
    """What a problem says of a column the mapping reads (``key``: the binding, or
    input.group_by) that the header lacks: the column it most likely means, else the
    header's columns (a header names columns; it holds no billing row). Given
    ``unread``, the header's columns no binding reads, the column meant is one of them
    (a column renamed in the export is read by none): never one another binding reads
    ('invoice_date' for a renamed 'invoice_number'), else they are listed."""
    close = close_column(column, header if unread is None else unread)
    if close:
        hint = f" (did you mean '{close}'?)"
    elif unread:
        hint = (f" (no binding reads the header's column(s) "
                f"{', '.join(unread[:12])}{', …' if len(unread) > 12 else ''}: one of them "
                "renamed?)")
    else:
        hint = (f" (the header has {len(header)} columns: {', '.join(header[:12])}"
                f"{', …' if len(header) > 12 else ''})")
    return f"{key} reads column '{column}', which is not in the header of {shown}{hint}"


def missing_columns_message(shown: str, count: int, line: int = 1) -> str:
    """The message of the error that refuses a file lacking columns the mapping reads:
    the same for input.group_by and for the bindings (exit 4, input), at the header's
    ``line``."""
    return (f"{shown}:{line}: the mapping reads {count} column(s) that the file does not "
            "have; nothing written")


def _read_csv(path: Path, spec: InputSpec) -> Iterator[SourceInvoice]:
    shown = _display(path)
    if not spec.group_by:
        raise InputDataError("CSV input needs input.group_by (the invoice number column)")
    last_line = 0
    faults: _RowFaults | None = None
    try:
        delimiter = spec.delimiter
        if delimiter == "auto":
            delimiter = _sniff_delimiter(path, spec)
        handle = path.open(encoding=spec.encoding, newline="")
        with handle:
            # a byte order mark (Excel's "CSV UTF-8") is no part of the first column's
            # name, and must not hide the quotes around it from the CSV parser
            if handle.read(1) != "\ufeff":
                handle.seek(0)
            # the lines above the header (input.header_line: a title, a date), whole
            # physical lines, not read; a row's line in the file counts them
            skipped = 0
            while skipped < spec.header_line - 1 and handle.readline():
                skipped += 1
            last_line = skipped
            reader = csv.reader(handle, delimiter=delimiter, quotechar=spec.quotechar,
                                strict=True)
            try:
                header = next(reader)
            except StopIteration:
                if spec.header_line > 1:
                    detail = (f"no header: the file has {skipped} line(s), and "
                              f"input.header_line is {spec.header_line}")
                    raise _refuse(f"{shown}: {detail}; nothing written", "input.empty",
                                  detail, shown, spec.at("header_line")) from None
                raise InputDataError(f"{shown}: empty CSV file; nothing written", [
                    Problem("input.empty", "empty CSV file", record=shown)]) from None
            header = [h.strip() for h in header]
            if spec.group_by not in header:
                raise _header_problem(shown, path, header, delimiter, spec)
            positions: dict[str, list[int]] = {}
            for index, name in enumerate(header, start=1):
                if name:
                    positions.setdefault(name, []).append(index)
            dupes = [f"'{name}' at columns {', '.join(map(str, at[:-1]))} and {at[-1]}"
                     for name, at in positions.items() if len(at) > 1]
            if dupes:
                detail = f"duplicate column(s) {'; '.join(dupes)}"
                where = f"{shown}:{spec.header_line}"
                raise _refuse(f"{where}: {detail}; nothing written", "input.column", detail,
                              where)
            # unnamed columns (a trailing separator, Excel's empty columns) are not read:
            # no binding can name them
            named = [(i, h) for i, h in enumerate(header) if h]
            all_named = len(named) == len(header)
            width = len(header)
            key_index = header.index(spec.group_by)
            current: SourceInvoice | None = None
            faults = _RowFaults(shown)
            last_line = skipped + reader.line_num
            while True:
                start = last_line + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    # the reader drops the rest of the line and goes on: the rows after
                    # it are still checked, not read as invoices
                    last_line = skipped + reader.line_num
                    long = _long_field(exc, path, spec, delimiter, start, header)
                    fix: str | None
                    if long is None:
                        detail, fix, record = _csv_error(exc, start), "quotechar", start
                    else:
                        detail, fix, record, end = long
                        # a long quoted field that closes: its lines are no rows
                        while end is not None and last_line < end and handle.readline():
                            skipped += 1
                            last_line += 1
                    faults.add(f"{shown}:{record}: CSV error: {detail}; nothing written",
                               Problem("input.csv", detail, record=f"{shown}:{record}",
                                       mapping=spec.at(fix) if fix else None))
                    continue
                last_line = skipped + reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{shown}:{start}"
                if len(row) != width:
                    faults.add(f"{where}: {len(row)} field(s), the header has {width}; "
                               "nothing written",
                               Problem("input.csv-row", f"{len(row)} fields, header has "
                                       f"{width}", record=where))
                    continue
                if row[key_index].strip() == spec.group_by and \
                        [cell.strip() for cell in row] == header:
                    detail = ("the header line again: two exports joined into one file? "
                              "remove this line (or export once)")
                    faults.add(f"{where}: {detail}; nothing written",
                               Problem("input.csv-row", detail, record=where))
                    continue
                if faults.found:
                    continue  # past a refused row, only the rows' structure is checked
                if all_named:
                    values = dict(zip(header, row, strict=True))
                else:
                    values = {h: row[i] for i, h in named}
                key = row[key_index].strip()
                if current is not None and key == current.key:
                    assert current.lines is not None
                    current.lines.append(values)
                    current.line_origins.append(where)
                    continue
                if current is not None:
                    yield current
                # A key met again later is yielded as a new invoice: the duplicate
                # invoice check downstream reports it (rows must be contiguous).
                current = SourceInvoice(record=values, lines=[values], origin=where,
                                        line_origins=[where], key=key)
            if current is not None and not current.key and not faults.found:
                # a spreadsheet's totals under the rows (a sum under the amounts), not
                # an invoice without its number (a row inside the file: build says so)
                count = len(current.line_origins)
                rows = "row has" if count == 1 else f"{count} rows have"
                detail = (f"the file's last {rows} no value in column '{spec.group_by}' "
                          "(input.group_by): a totals line? an export's rows are invoice "
                          "lines only: remove it from the export")
                faults.add(f"{current.origin}: {detail}; nothing written",
                           Problem("input.csv-row", detail, record=current.origin,
                                   mapping=spec.at("group_by")))
            if faults.found:
                raise faults.error()
            if current is not None:
                yield current
            else:
                raise InputDataError(f"{shown}: no data row; nothing written", [
                    Problem("input.empty", "no data row", record=shown)])
    except UnicodeError:
        error = _encoding_error(path, spec)
        if faults is not None and faults.found:
            # the rows refused before the undecodable byte are listed too
            raise InputDataError(str(error), faults.listed() + error.problems) from None
        raise error from None
    except csv.Error as exc:  # the header's line
        start = last_line + 1
        detail = _csv_error(exc, start)
        fix = "quotechar"
        long = _long_field(exc, path, spec, delimiter, start, None)
        if long is not None:
            detail, fix, start, _ = long
        elif start == spec.header_line:
            misread = _header_delimiter_problem(exc, path, spec)
            if misread:
                detail, fix = misread, "delimiter"
        raise InputDataError(f"{shown}:{start}: CSV error: {detail}; nothing written",
                             [Problem("input.csv", detail, record=f"{shown}:{start}",
                                      mapping=spec.at(fix) if fix else None)]) from None


def _header_delimiter_problem(exc: csv.Error, path: Path, spec: InputSpec) -> str | None:
    """A quoted header the reader stops in because a closing quote is followed by
    another delimiter than input.delimiter ("',' expected after '\"'", a file of
    "a";"b" read with ','): the quotes are right, the delimiter is what to fix. Say what
    the first line looks like (without its content), as a header read as one column
    does; None when it does not look separated by another delimiter."""
    delimiter = spec.delimiter if spec.delimiter != "auto" else None
    if delimiter is None or str(exc) != f"'{delimiter}' expected after '{spec.quotechar}'":
        return None
    looks = describe_first_line(_first_line(path, spec.encoding, spec.header_line))
    if not looks.startswith("looks like CSV") or f"separated by {delimiter!r}" in looks:
        return None
    return (f"{_line_named(spec.header_line)} does not read with delimiter {delimiter!r} "
            f"({exc}); it {looks}; check input.delimiter")


def _long_field(exc: csv.Error, path: Path, spec: InputSpec, delimiter: str, start: int,
                header: list[str] | None) -> tuple[str, str | None, int, int | None] | None:
    """A field past the CSV reader's limit ("field larger than field limit"): a quote
    never closed that swallowed the rows after it, or a field that is long indeed (a
    comment column holding a pasted document). Read again from the record's first line
    ``start``, the field is found: where it starts (line, column), whether it is quoted,
    and the lines inside it that read as rows (as many delimiters as the header). Returns
    (detail, the input key that fixes it or None, the line the field starts on, the line
    its record ends on when a long quoted field closes, else None); None for another
    error. Says none of the field's text (a name or an IBAN)."""
    if not str(exc).startswith("field larger than field limit"):
        return None
    limit = csv.field_size_limit()
    quote = spec.quotechar
    wanted = max(len(header) - 1, 1) if header else 1
    line, column, size = start, 1, 0
    field_line, quoted, in_quote, closed = start, False, False, False
    rows_inside = 0  # whole lines inside the quoted field reading as a row
    found: tuple[int, int, bool] | None = None  # the long field's line, column, quoted
    with path.open(encoding=spec.encoding, newline="") as handle:
        if handle.read(1) != "\ufeff":
            handle.seek(0)
        for _ in range(start - 1):
            handle.readline()
        while text := handle.readline():
            if found is None and in_quote and text.count(delimiter) >= wanted:
                rows_inside += 1  # a line begun inside the quotes
            if in_quote and quote not in text and (found is not None
                                                    or size + len(text) <= limit):
                size += len(text)  # a whole line inside the quotes (a long document's)
                line += 1
                continue
            for char in text:
                if in_quote:
                    if char == quote:
                        in_quote, closed = False, True
                        continue
                elif closed and char == quote:  # a doubled quote: one, inside
                    in_quote, closed = True, False
                elif char in "\r\n":  # the line's end (readline's), the record's
                    if found is not None:  # the long quoted field closed on this line
                        return _long_said(found, header, start, limit, 0, line)
                    column, size, quoted, closed, field_line = 1, 0, False, False, line + 1
                    break
                elif char == delimiter:
                    column, size, quoted, closed, field_line = column + 1, 0, False, False, line
                    continue
                elif size == 0 and not quoted and char == quote:
                    in_quote = quoted = True
                    continue
                size += 1
                if found is None and size > limit:
                    found = (field_line, column, quoted)
                    if not quoted:
                        return _long_said(found, header, start, limit, 0, None)
                    if rows_inside:
                        return _long_said(found, header, start, limit, rows_inside, None)
            line += 1
    if found is None:
        return None
    return _long_said(found, header, start, limit, rows_inside, None)


def _long_said(found: tuple[int, int, bool], header: list[str] | None, start: int,
               limit: int, rows_inside: int,
               end: int | None) -> tuple[str, str | None, int, int | None]:
    """_long_field's answer for the field ``found`` (its line, column, quoted)."""
    field_line, column, quoted = found
    name = header[column - 1] if header and column <= len(header) else None
    where = f"line {field_line}, column {column}" + (f" ('{name}')" if name else "")
    if quoted and rows_inside:
        return (f"a quoted field opened on {where} is never closed: it runs past the CSV "
                f"field limit ({limit} characters) over {rows_inside} line(s) that read as "
                "rows; check the quotes (input.quotechar)", "quotechar", field_line, None)
    record = "" if field_line == start else f" (in the record starting on line {start})"
    return (f"the field starting on {where}{record} is longer than the CSV field limit "
            f"({limit} characters): a document pasted into a cell? shorten it in the "
            "export (no quote is left open)", None, field_line, end)


def _csv_error(exc: csv.Error, start: int) -> str:
    detail = str(exc)
    if "unexpected end of data" in detail or "EOF" in detail:
        detail = (f"a quoted field opened in the record starting on line {start} is never "
                  f"closed ({exc}); check the quotes (input.quotechar)")
    return detail


class _RowFaults:
    """The rows the CSV reader refuses (a field count that is not the header's, the
    header again, quotes it cannot parse). The first one ends the reading of invoices;
    the rest of the file is still read for the others, every one listed up to
    MAX_ROW_PROBLEMS, the rest counted. The error keeps the first one's message."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.first = ""
        self.problems: list[Problem] = []
        self.dropped = 0

    @property
    def found(self) -> bool:
        return bool(self.problems)

    def add(self, message: str, problem: Problem) -> None:
        if not self.problems:
            self.first = message
        if len(self.problems) < MAX_ROW_PROBLEMS:
            self.problems.append(problem)
        else:
            self.dropped += 1

    def listed(self) -> list[Problem]:
        if not self.dropped:
            return list(self.problems)
        return self.problems + [Problem(
            "input.csv-row", f"listing stopped after {MAX_ROW_PROBLEMS} rows refused "
            f"({self.dropped} more): correct these and run again", record=self.shown)]

    def error(self) -> InputDataError:
        count = len(self.problems) + self.dropped
        if count == 1:
            return InputDataError(self.first, self.listed())
        head = self.first.removesuffix("; nothing written")
        return InputDataError(f"{head}; and {count - 1} more row(s) refused; nothing written",
                              self.listed())
