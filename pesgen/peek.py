"""What ``pesgen new-mapping --input`` reads of a school's export: its shape, never a value.

For a CSV file: its encoding (UTF-8, with or without a byte order mark; else
Windows-1252 when the whole file decodes so and shows no sign of another 8-bit
encoding), its delimiter (the one of ``;`` ``,`` tab ``|`` that alone splits the
header and the first rows into the same number of fields, at least two), the header's
line (below a title: lines blank or of far fewer cells than the header, by any
delimiter) and its column names. For a JSON file: the path of its invoices (the top
level's only list of objects, or the file itself when it is one), the key paths of
every invoice and of their lines (their only list of objects), in the order first
seen, each with how many invoices (lines) hold it: the invoices streamed one at a time,
none kept. What cannot be told for sure is left
unsaid (None) with the reason, for the scaffold to leave a TODO. No value of a row or a
record is kept: a header's names and a record's keys only (a line the rows start on
that looks like a row, numbers, dates, e-mails or IBANs, is no header: the file is
refused, as one without a line naming two columns)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ._wide import wide
from .errors import InputDataError, Problem
from .sources import (
    InputSpec,
    SourceInvoice,
    _data_fields,
    _decoded,
    _latin9_line,
    _oem_signs,
    _python_backend,
    _split,
    _syntax,
    _utf8_line,
    read_invoices,
    shown_input,
)

DELIMITERS = (";", ",", "\t", "|")
# how many records after the header the delimiter is checked on
SAMPLE_ROWS = 50
# the lines a header below a title is looked for in (input.header_line's own limit)
MAX_HEADER_LINE = 100
# how many keys a JSON record's listing goes down to (a record nested deeper holds more)
_MAX_DEPTH = 8
# the most key paths of a JSON export's invoices, and of their lines, the scaffold lists
# (those the most records hold): an export whose keys are values (an object by invoice
# number, by student id) holds one path per value, none of which a binding can name
MAX_KEYS = 200
# the most top-level keys, or lists of objects, a question about them names
_MAX_NAMED = 10


def shown_delimiter(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


@dataclass
class ExportShape:
    """What new-mapping --input tells of the export ``shown`` (its name as given)."""

    shown: str
    kind: str  # "csv" | "json"
    encoding: str | None  # None: not sure, ``encoding_why`` says why
    encoding_why: str
    delimiter: str | None = None  # CSV; None: not sure, ``delimiter_why`` says why
    delimiter_why: str = ""
    columns: list[str] = field(default_factory=list)  # CSV header, stripped, as read
    header_why: str = ""  # CSV: why no column is listed, when none is
    header_line: int | None = 1  # CSV: the header's line (below a title); None: not sure
    header_line_why: str = ""  # what the lines above it are, or why it is not sure
    records: str | None = None  # JSON: input.records ("" the file itself); None: not sure
    records_why: str = ""
    # JSON: the key paths of every invoice, first seen first, each with the number of
    # invoices holding it
    keys: list[str] = field(default_factory=list)
    key_counts: dict[str, int] = field(default_factory=dict)
    invoices_read: int = 0
    lines: str | None = None  # JSON: the invoices' only list of objects, its path
    lines_why: str = ""
    line_keys: list[str] = field(default_factory=list)  # those lists' items' keys, so
    line_key_counts: dict[str, int] = field(default_factory=dict)
    lines_read: int = 0
    # the key paths of the invoices (of their lines) not in ``keys`` (``line_keys``): past
    # MAX_KEYS, those the fewest records hold
    keys_left_out: int = 0
    line_keys_left_out: int = 0


def _refused(shown: str, detail: str, rule: str) -> InputDataError:
    """The refusal of the export ``shown``, as the export's reader words its own."""
    return InputDataError(f"{shown}: {detail}; nothing written",
                          [Problem(rule, detail, record=shown)])


def peek(path: Path) -> ExportShape:
    """The shape of the export at ``path``; InputDataError (exit 4) when it cannot be
    read at all: missing, a folder, unreadable, empty, not UTF-8 nor Windows-1252, or
    broken JSON."""
    shown = shown_input(path)
    if path.is_dir():
        raise InputDataError(f"{shown}: is a folder; --input takes the school's export file; "
                             "nothing written")
    try:
        with path.open("rb") as handle:
            head = handle.read(65536)
    except FileNotFoundError:
        raise InputDataError(f"{shown}: input file not found; nothing written") from None
    except OSError as exc:
        raise InputDataError(f"{shown}: cannot be read ({exc.strerror or exc}); nothing "
                             "written") from None
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise _refused(shown, "the file is empty: new-mapping reads the names of its "
                       "columns (or keys) from it", "input.empty")
    encoding, why = _encoding(path, shown, head)
    text_head = head.decode(encoding or "cp1252", "replace").lstrip("\ufeff \t\r\n")
    if text_head[:1] in ("{", "["):
        if encoding is None:
            raise _refused(shown, f"a JSON file {why}", "input.encoding")
        return _peek_json(path, shown, encoding, why)
    if text_head[:1] == "<":
        raise _refused(shown, "looks like XML (it starts with '<'): pesgen reads a CSV or "
                       "JSON export", "input.format")
    return _peek_csv(path, shown, encoding, why)


# ---------------------------------------------------------------- encoding


def _encoding(path: Path, shown: str, head: bytes) -> tuple[str | None, str]:
    """(input.encoding, why) as the scaffold writes them; (None, why) when unsure."""
    found = wide(head)
    if found is not None:
        what, reads = found
        if not _decodes(path, reads[0]):
            raise _refused(shown, f"looks {what}, but does not decode as {reads[0]}",
                           "input.encoding")
        return reads[0], f"the file is {what}"
    bom = head.startswith(codecs.BOM_UTF8)
    if _decodes(path, "utf-8-sig"):
        if bom:
            return "utf-8", ("the whole file reads as UTF-8, with a byte order mark "
                             "(Excel's \"CSV UTF-8\"), which pesgen drops")
        if head.isascii() and _ascii(path):
            return "utf-8", ("the file holds ASCII characters only, which UTF-8 and "
                             "Windows-1252 read alike: utf-8 is a guess; check it on an "
                             "export holding accents")
        return "utf-8", "the whole file reads as UTF-8"
    where = _first_undecodable(path, "utf-8-sig")
    if not _decodes(path, "cp1252"):
        bad = _first_undecodable(path, "cp1252")
        raise _refused(
            shown, f"neither UTF-8 ({where}) nor Windows-1252 ({bad}): new-mapping cannot "
            "tell its encoding; ask the school software's publisher which it is, and run "
            "new-mapping without --input (input.encoding by hand)", "input.encoding")
    mixed = _utf8_line(path)
    if mixed is not None:
        return None, (f"not UTF-8 ({where}), yet line {mixed[0]} holds UTF-8 ({mixed[1]}): "
                      "the file mixes two encodings, which no input.encoding reads; have "
                      "the export corrected")
    latin9 = _latin9_line(path)
    if latin9 is not None:
        return None, (f"not UTF-8 ({where}); line {latin9[0]}'s byte 0x{latin9[1]:02X} "
                      "reads as a sign in Windows-1252, as a letter in ISO-8859-15: "
                      "cp1252 or iso-8859-15? ask the publisher")
    oem = _oem_signs(path)
    if oem is not None:
        return None, (f"not UTF-8 ({where}); line {oem[0]}'s byte 0x{oem[1]:02X} between "
                      f"two letters is a letter in {oem[2]} ({oem[3]}), not in "
                      f"Windows-1252: {oem[2]}? ask the publisher")
    return "cp1252", (f"not UTF-8 ({where}), and the whole file reads as Windows-1252 "
                      "(cp1252, which also reads ISO-8859-1's letters)")


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _ascii(path: Path) -> bool:
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            if not block.isascii():
                return False
    return True


def _first_undecodable(path: Path, encoding: str) -> str:
    """'line 3, byte 0xE9': the first bytes ``encoding`` does not read (no text)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line += block[:exc.start].count(b"\n")
                return f"line {line}, byte 0x{block[exc.start]:02X}"
            line += block.count(b"\n")
    return f"line {line}, at its end"


# ---------------------------------------------------------------- CSV


def _peek_csv(path: Path, shown: str, encoding: str | None, why: str) -> ExportShape:
    shape = ExportShape(shown, "csv", encoding, why)
    with path.open(encoding=encoding or "cp1252", errors="replace", newline="") as handle:
        sample = handle.read(1 << 20)
    sample = sample.removeprefix("\ufeff")
    physical = _physical_lines(sample)
    found: dict[str, _Header] = {}
    for delimiter in DELIMITERS:
        header = _header(_records(sample, delimiter), physical)
        if header is not None:
            found[delimiter] = header
    rows_only = {d: h for d, h in found.items() if _data_fields(h.rows[0])}
    if found and len(rows_only) == len(found):
        raise _no_header(shown, rows_only)
    # a delimiter whose line taken for the header is a row is not the file's
    found = {d: h for d, h in found.items() if d not in rows_only}
    if len(found) != 1:
        shape.header_why = "no delimiter told: the header's columns are not read"
        if found:
            said = " and ".join(
                f"{shown_delimiter(d)} ({len(h.rows[0])} fields"
                + (f", the header at line {h.line})" if h.line > 1 else ")")
                for d, h in found.items())
            shape.delimiter_why = (f"{said} each split the header and the rows after it "
                                   "into the same number of fields: which one? (the "
                                   "publisher's documentation)")
            at = sorted({h.line for h in found.values()})
            if len(at) > 1:
                shape.header_line = None
                shape.header_line_why = (
                    f"the header is line {' or '.join(map(str, at))}, as the delimiter is: "
                    "the lines above it are a title (input.header_line)")
            elif at[0] > 1:
                shape.header_line, shape.header_line_why = at[0], _skipped_why(
                    next(iter(found.values())))
            return shape
        if not any(_named(_split(text, d)) >= 2 for text in physical[:MAX_HEADER_LINE]
                   for d in DELIMITERS):
            raise _refused(shown, f"no header: no line among its first {MAX_HEADER_LINE} "
                           "names two columns or more (split by ; , tab or |), so none is "
                           "the header naming the export's columns; new-mapping reads their "
                           "names from it: export the file with its column names",
                           "input.column")
        shape.delimiter_why = ("none of ; , tab | splits a line and the rows after it into "
                               "the same number of fields (two or more), with nothing but "
                               "blank lines or a title above it: check the file")
        return shape
    [(delimiter, header)] = found.items()
    rows = header.rows
    named = "the header" if header.line == 1 else f"the header (line {header.line})"
    lines = f"{named} and the {len(rows) - 1} row(s) after it" if len(rows) > 1 else \
        f"{named} (no row after it)"
    shape.delimiter = delimiter
    shape.delimiter_why = (f"the only one of ; , tab | that splits {lines} into the same "
                           f"number of fields ({len(rows[0])})")
    columns = [name.strip() for name in rows[0]]
    shape.columns = columns
    if header.line > 1:
        shape.header_line, shape.header_line_why = header.line, _skipped_why(header)
    return shape


def _no_header(shown: str, rows: dict[str, _Header]) -> InputDataError:
    """The refusal of an export whose first line the rows share a number of fields with
    (below a title, if any) is itself a row, by whichever delimiter (the one splitting it
    into the most fields named): a header's values have no place in a mapping, and a
    scaffold reading none of the export's columns is of no use."""
    delimiter, header = max(rows.items(), key=lambda item: len(item[1].rows[0]))
    above = "" if header.line == 1 else \
        f", below {header.line - 1} line(s) blank or a title,"
    return _refused(shown, f"no header: line {header.line}{above} is the first the rows "
                    f"after it share a number of fields with ({len(header.rows[0])}, split "
                    f"by {shown_delimiter(delimiter)}), and it is a row: "
                    f"{_data_fields(header.rows[0])} of its fields look like numbers, dates, "
                    "e-mails or IBANs; pesgen reads a CSV export whose columns a header "
                    "line names: export the file with its column names", "input.column")


@dataclass
class _Header:
    """A CSV header found with one delimiter: its line in the file, the rows from it
    (itself first), and what each line above it is ('one cell', 'blank')."""

    line: int
    rows: list[list[str]]
    above: list[str]


def _skipped_why(header: _Header) -> str:
    said = "; ".join(f"line {n}: {what}" for n, what in enumerate(header.above, 1))
    return (f"{said}; the header is line {header.line}, the first line the rows after it "
            "share a delimiter and a number of fields with (the rows keep their line "
            "numbers in the file)")


def _physical_lines(text: str) -> list[str]:
    """The lines of ``text`` as the CSV reader skips them above input.header_line (a
    line ends with CR, LF or CRLF)."""
    return re.split(r"\r\n|\r|\n", text)


def _named(cells: list[str]) -> int:
    return sum(1 for cell in cells if cell.strip())


def _title(text: str, width: int) -> str | None:
    """What a line above a header of ``width`` named columns is when it is no part of
    the table: 'blank', 'one cell' (a title, or Excel's title row of empty cells), or
    'N cells' far fewer than the header's, split by any delimiter; None when some
    delimiter splits it into as many cells as a header's half or more (a header itself,
    or a row: no title to skip on a guess)."""
    if not text.strip(' \t;,|"'):
        return "blank" if not text.strip() else "blank (delimiters only)"
    cells = max(_named(_split(text, d)) for d in DELIMITERS)
    if cells == 1:
        return "one cell (a title?)"
    if cells * 2 <= width:
        return f"{cells} cells, where the header names {width} (a title?)"
    return None


def _header(records: list[tuple[int, list[str]]], physical: list[str]) -> _Header | None:
    """The header the ``records`` (their first line, their fields) of one delimiter
    give: the first record, on one of the first MAX_HEADER_LINE lines, naming two
    columns or more, that the records after it (SAMPLE_ROWS of them) match in number of
    fields, every line above it blank or a title (``_title``); None when there is none,
    or when a line above it is not plainly a title."""
    for at, (line, cells) in enumerate(records):
        if line > MAX_HEADER_LINE:
            return None
        rows = [r for _, r in records[at:at + SAMPLE_ROWS + 1]]
        if len(cells) < 2 or _named(cells) < 2 or \
                any(len(r) != len(cells) for r in rows[1:]):
            continue
        above = [_title(text, _named(cells)) for text in physical[:line - 1]]
        if any(what is None for what in above):
            return None
        return _Header(line, rows, [what for what in above if what is not None])
    return None


def _records(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """(the line it starts on, its fields) of the CSV records of ``text`` split by
    ``delimiter``, as many as finding a header in the first MAX_HEADER_LINE lines and
    the SAMPLE_ROWS after it takes; blank lines skipped; a malformed record ends them
    (the reader's own error is for the export to name)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    out: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                out.append((line, row))
                if len(out) > MAX_HEADER_LINE + SAMPLE_ROWS:
                    break
            line = reader.line_num + 1
    except csv.Error:
        pass
    return out


# ---------------------------------------------------------------- JSON


def _peek_json(path: Path, shown: str, encoding: str, why: str) -> ExportShape:
    shape = ExportShape(shown, "json", encoding, why)
    spec = InputSpec(format="json", records="", encoding=encoding)
    once = _read_once(path, spec)
    top = _top_level(path, shown, encoding) if once is None else once[0]
    if top is None:  # the file is an array itself
        shape.records, shape.records_why = "", "the file is itself a list of objects"
    else:
        lists = [key for key, kind in top.items() if kind == "objects"]
        if len(lists) == 1 and "." not in lists[0]:
            shape.records = lists[0]
            shape.records_why = "the top level's only list of objects"
        else:
            said = _first_named([f"{key} ({kind})" for key, kind in top.items()]) or "none"
            shape.records_why = ("the top level holds " + (
                f"{len(lists)} lists of objects" if len(lists) > 1 else
                "no list of objects") + f": which holds the invoices? (its keys: {said})")
            return shape
    if once is not None:
        reading = once[1][shape.records or ""]
    else:
        reading = _Reading()
        spec = InputSpec(format="json", records=shape.records or "", encoding=encoding)
        invoices = cast(Generator[SourceInvoice, None, None], read_invoices(path, spec))
        try:
            for invoice in invoices:
                reading.add(invoice.record)
        finally:
            invoices.close()
    keys, item_keys = reading.keys, reading.item_keys
    shape.invoices_read, shape.key_counts = keys.records, keys.counted()
    if not shape.invoices_read:
        shape.records_why += ", empty: no invoice's keys to list"
        return shape
    if len(item_keys) == 1:
        [(shape.lines, tally)] = item_keys.items()
        shape.lines_read, shape.line_key_counts = tally.records, tally.counted()
        shape.lines_why = "the invoices' only list of objects"
        shape.line_keys, shape.line_keys_left_out = _capped(
            _leaves(shape.line_key_counts), shape.line_key_counts)
    else:
        read = "the only invoice holds" if shape.invoices_read == 1 else \
            f"the {shape.invoices_read} invoices hold"
        shape.lines_why = f"{read} " + (
            f"{len(item_keys)} lists of objects ({_first_named(list(item_keys))}): which are its "
            "lines?" if item_keys else "no list of objects: where are its lines?")
    shape.keys, shape.keys_left_out = _capped(_leaves(shape.key_counts), shape.key_counts,
                                              shape.lines)
    return shape


def _capped(paths: list[str], counts: dict[str, int],
            kept: str | None = None) -> tuple[list[str], int]:
    """(at most MAX_KEYS of ``paths``, in their order: those the most records hold, the
    first seen of those held alike, ``kept`` (the lines' path) whatever its count; how
    many are left out)."""
    if len(paths) <= MAX_KEYS:
        return paths, 0
    ranked = sorted(range(len(paths)),
                    key=lambda at: (paths[at] != kept, -counts[paths[at]], at))
    return [paths[at] for at in sorted(ranked[:MAX_KEYS])], len(paths) - MAX_KEYS


def _first_named(names: list[str]) -> str:
    """``names`` joined, the first _MAX_NAMED of them, then how many more."""
    more = len(names) - _MAX_NAMED
    return ", ".join(names[:_MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


class _Reading:
    """The keys of the invoices read (``keys``) and, by the path of each list of objects
    they hold, of its items (``item_keys``): each invoice's counted as it is read, none
    kept; the lines are told once every invoice is read, as the invoices' only list of
    objects."""

    def __init__(self) -> None:
        self.keys = _Tally()
        self.item_keys: dict[str, _Tally] = {}

    def add(self, record: dict[str, Any]) -> None:
        paths: list[str] = []
        objects: list[tuple[str, list[Any]]] = []
        _keys(record, "", paths, objects)
        self.keys.add(paths)
        item_keys = self.item_keys
        for at, items in objects:
            tally = item_keys.get(at) or item_keys.setdefault(at, _Tally())
            for item in items:
                if type(item) is dict:
                    paths = []
                    _keys(item, "", paths, [])
                    tally.add(paths)


def _read_once(path: Path, spec: InputSpec) -> tuple[dict[str, str] | None,
                                                     dict[str, _Reading]] | None:
    """The file read once, as the export's fast reader reads it (pesgen.sources._Text,
    each object decoded whole, one at a time): what each top-level key holds (None: the
    file is an array) as ``_top_level`` says it, and the keys of the items of each
    top-level list of objects (by its key, "" for the file's own array), every one of
    which is read as the invoices would be. None when that reader does not vouch for
    the file (a repeated key, a record near a bound, a syntax error, an item of a list
    of objects that is no object, a lone surrogate...): ``_peek_json`` reads it then as
    before, its top level first, then its invoices with the export's own reader, which
    names what it refuses."""
    from .sources import _JsonRefused, _Slow, _Text, refuse_unreadable

    refuse_unreadable(path, spec)
    top: dict[str, str] | None = None
    readings: dict[str, _Reading] = {}
    with path.open("rb") as handle:
        text = _Text(handle, spec.encoding)
        try:
            if text.take("["):
                readings[""] = _Reading()
                if _list_once(text, 1, (), readings[""]) != "objects":
                    return None  # not a list of objects: _top_level refuses it, naming why
            elif text.take("{"):
                top = {}
                closed = text.take("}")
                while not closed:
                    if text.peek() != '"':
                        raise _Slow
                    key = text.value(1)
                    if key in top or not text.take(":"):
                        raise _Slow
                    if text.take("["):
                        reading = _Reading()
                        top[key] = _list_once(text, 2, (key,), reading)
                        if top[key] == "objects":
                            readings[key] = reading
                    else:
                        text.peek()
                        top[key] = _kind_of(text.value(1))
                    closed = text.take("}")
                    if not closed and not text.take(","):
                        raise _Slow
            else:
                raise _Slow
            if text.peek() != "":  # more after the JSON value
                raise _Slow
        except (_Slow, _JsonRefused):
            return None
    return top, readings


def _list_once(text: Any, depth: int, at: tuple[str, ...], reading: _Reading) -> str:
    """Read the array whose '[' ``text`` just took, ``depth`` levels down: what it holds,
    as ``_top_level`` says it; a list of objects' items (its first item an object, every
    one then) added to ``reading``."""
    from .sources import _refuse_lone_surrogate, _Slow

    if text.take("]"):
        return "an empty list"
    objects = text.peek() == "{"
    index = 0
    while True:
        if objects:
            if text.peek() != "{":
                raise _Slow
            text.surrogates = False
            item = text.value(depth)
            if text.surrogates:
                _refuse_lone_surrogate(item, [*at, index])
            reading.add(item)
        else:
            text.peek()
            text.value(depth)
        index += 1
        if text.take("]"):
            return "objects" if objects else "a list of values"
        if not text.take(","):
            raise _Slow


def _kind_of(value: Any) -> str:
    """What a top-level value other than a list is, as ``_top_level`` says it (in
    ``_KIND``'s words, by the parser event the value would start with)."""
    kind = type(value)
    return _KIND["start_map" if kind is dict else "null" if value is None else
                 "boolean" if kind is bool else "string" if kind is str else "number"]


class _Tally:
    """Key paths counted by the records (invoices, lines) holding them, first seen
    first. A record's paths are counted as a tuple, by the records holding that very
    tuple (most hold the same keys as many others: one dict update a record, not one a
    key), added up into each path's count every _SHAPES tuples (a file whose keys are
    values, ids, holds as many tuples as records) and at the end."""

    _SHAPES = 256

    def __init__(self) -> None:
        self.records = 0
        self._shapes: dict[tuple[str, ...], int] = {}
        self._counts: dict[str, int] = {}

    def add(self, paths: list[str]) -> None:
        self.records += 1
        held = tuple(paths)
        self._shapes[held] = self._shapes.get(held, 0) + 1
        if len(self._shapes) >= self._SHAPES:
            self._fold()

    def _fold(self) -> None:
        # the tuples in the order first seen: a path comes after those of the records
        # before the first one holding it, as when counted a record at a time
        counts = self._counts
        for paths, held in self._shapes.items():
            for key in paths:
                counts[key] = counts.get(key, 0) + held
        self._shapes.clear()

    def counted(self) -> dict[str, int]:
        """{key path: the records holding it}, first seen first."""
        self._fold()
        return self._counts


def _leaves(counts: dict[str, int]) -> list[str]:
    """The key paths of ``counts``, first seen first, but for one an object in another
    record (``mandate``, null in one invoice, ``mandate.rum``… in another): its keys say
    it. Each path's parents gathered once (not each key held to every other)."""
    parents = {key[:at] for key in counts for at, char in enumerate(key) if char == "."}
    return [key for key in counts if key not in parents]


def _top_level(path: Path, shown: str, encoding: str) -> dict[str, str] | None:
    """{key: what it holds ("objects": a list whose first item is an object)} of the
    file's top-level object; None when the file is an array of objects."""
    import ijson

    basic_parse = (ijson.get_backend("python").basic_parse
                   if _python_backend(path, encoding) else ijson.basic_parse)
    found: dict[str, str] = {}
    depth = 0
    key: str | None = None
    pending: str | None = None  # a top-level key whose list's first item is next
    try:
        with path.open("rb") as handle:
            for event, value in basic_parse(_decoded(handle, encoding), use_float=False):
                if depth == 0 and event == "start_array":
                    _array_of_objects(shown, basic_parse, path, encoding)
                    return None
                if pending is not None:
                    found[pending] = "objects" if event == "start_map" else \
                        "an empty list" if event == "end_array" else "a list of values"
                    pending = None
                if event == "map_key" and depth == 1:
                    key = value
                elif depth == 1 and key is not None and event != "map_key":
                    found[key] = _KIND.get(event, "a value")
                    if event == "start_array":
                        pending = key
                    key = None
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
    except ijson.JSONError as exc:
        raise _refused(shown, f"invalid JSON ({_syntax(exc)})", "input.json") from None
    except (ValueError, ArithmeticError):
        raise _refused(shown, "invalid JSON (a number pesgen cannot read)",
                       "input.json") from None
    return found


_KIND = {"start_map": "an object", "start_array": "a list", "string": "a text",
         "number": "a number", "boolean": "true/false", "null": "null"}


def _array_of_objects(shown: str, basic_parse: Any, path: Path, encoding: str) -> None:
    """Check that the file's top-level array's first item is an object."""
    with path.open("rb") as handle:
        events = basic_parse(_decoded(handle, encoding), use_float=False)
        next(events)
        event, _ = next(events)
    if event != "start_map":
        raise _refused(shown, "the file is a list, but not of objects (invoices)",
                       "input.shape")


def _keys(node: dict[str, Any], prefix: str, out: list[str],
          objects: list[tuple[str, list[Any]]], depth: int = 0) -> None:
    """Append to ``out`` the key paths of ``node`` (payer.address.city), objects gone
    into, a list of objects (its first item one) named once and added to ``objects``
    with its items; no value kept. Once per invoice: ``type() is`` (the decoder makes
    plain dicts and lists) and no list made for each object gone into."""
    for key, value in node.items():
        kind = type(value)
        if kind is dict and value and depth < _MAX_DEPTH:
            _keys(value, f"{prefix}{key}.", out, objects, depth + 1)
            continue
        path = f"{prefix}{key}"
        out.append(path)
        if kind is list and value and type(value[0]) is dict:
            objects.append((path, value))
