"""What ``pesgen new-mapping --input`` reads of a school's export: its shape, never a value.

For a CSV file: its encoding (UTF-8, with or without a byte order mark; else
Windows-1252 when the whole file decodes so and shows no sign of another 8-bit
encoding), its delimiter (the one of ``;`` ``,`` tab ``|`` that alone splits the
header and the first rows into the same number of fields, at least two) and its
header's column names. For a JSON file: the path of its invoices (the top level's only
list of objects, or the file itself when it is one), the key paths of its first invoice
and of that invoice's lines (its only list of objects). What cannot be told for sure is
left unsaid (None) with the reason, for the scaffold to leave a TODO. No value of a row
or a record is kept: a header's names and a record's keys only (a first line that looks
like a row, numbers, dates, e-mails or IBANs, is not taken as a header, so never listed).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._wide import wide
from .errors import InputDataError, Problem
from .sources import (
    InputSpec,
    _data_fields,
    _decoded,
    _latin9_line,
    _oem_signs,
    _python_backend,
    _syntax,
    _utf8_line,
    read_invoices,
    shown_input,
)

DELIMITERS = (";", ",", "\t", "|")
# how many records after the header the delimiter is checked on
SAMPLE_ROWS = 50
# how many keys a JSON record's listing goes down to (a record nested deeper holds more)
_MAX_DEPTH = 8


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
    records: str | None = None  # JSON: input.records ("" the file itself); None: not sure
    records_why: str = ""
    keys: list[str] = field(default_factory=list)  # JSON: the first invoice's key paths
    lines: str | None = None  # JSON: the invoice's only list of objects, its path
    lines_why: str = ""
    line_keys: list[str] = field(default_factory=list)  # that list's first item's keys


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
    splits = {}
    for delimiter in DELIMITERS:
        rows = list(itertools.islice(_rows(sample, delimiter), SAMPLE_ROWS + 1))
        if rows and len(rows[0]) >= 2 and all(len(r) == len(rows[0]) for r in rows[1:]):
            splits[delimiter] = rows
    if len(splits) != 1:
        lines = "the header and the rows after it"
        if splits:
            said = " and ".join(f"{shown_delimiter(d)} ({len(rows[0])} fields)"
                                for d, rows in splits.items())
            shape.delimiter_why = (f"{said} each split {lines} into the same number of "
                                   "fields: which one? (the publisher's documentation)")
        else:
            shape.delimiter_why = (f"none of ; , tab | splits {lines} into the same number "
                                   "of fields (two or more): check the file (a title "
                                   "above the header? input.header_line)")
        shape.header_why = "no delimiter told: the header's columns are not read"
        return shape
    [(delimiter, rows)] = splits.items()
    lines = f"the header and the {len(rows) - 1} row(s) after it" if len(rows) > 1 else \
        "the header (no row after it)"
    shape.delimiter = delimiter
    shape.delimiter_why = (f"the only one of ; , tab | that splits {lines} into the same "
                           f"number of fields ({len(rows[0])})")
    header = [name.strip() for name in rows[0]]
    found = _data_fields(header)
    if found:
        # a row, not a header: its values have no place in a mapping
        shape.header_why = (f"line 1 is no header: {found} of its fields look like "
                            "numbers, dates, e-mails or IBANs; pesgen reads a CSV export "
                            "whose first line (input.header_line) names its columns")
        return shape
    shape.columns = header
    return shape


def _rows(text: str, delimiter: str) -> Any:
    """The CSV records of ``text`` split by ``delimiter``, blank lines skipped; a
    malformed one ends them (the reader's own error is for the export to name)."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield row
    except csv.Error:
        return


# ---------------------------------------------------------------- JSON


def _peek_json(path: Path, shown: str, encoding: str, why: str) -> ExportShape:
    shape = ExportShape(shown, "json", encoding, why)
    top = _top_level(path, shown, encoding)
    if top is None:  # the file is an array itself
        shape.records, shape.records_why = "", "the file is itself a list of objects"
    else:
        lists = [key for key, kind in top.items() if kind == "objects"]
        if len(lists) == 1 and "." not in lists[0]:
            shape.records = lists[0]
            shape.records_why = "the top level's only list of objects"
        else:
            said = ", ".join(f"{key} ({kind})" for key, kind in top.items()) or "none"
            shape.records_why = ("the top level holds " + (
                f"{len(lists)} lists of objects" if len(lists) > 1 else
                "no list of objects") + f": which holds the invoices? (its keys: {said})")
            return shape
    spec = InputSpec(format="json", records=shape.records or "", encoding=encoding)
    first = next(iter(read_invoices(path, spec)), None)
    if first is None:
        shape.records_why += ", empty: no invoice's keys to list"
        return shape
    objects: list[str] = []
    shape.keys = _keys(first.record, "", objects)
    if len(objects) == 1:
        shape.lines = objects[0]
        shape.lines_why = "the invoice's only list of objects"
        item = _at(first.record, objects[0])
        shape.line_keys = _keys(item, "", [])
    else:
        shape.lines_why = ("the first invoice holds " + (
            f"{len(objects)} lists of objects ({', '.join(objects)}): which are its lines?"
            if objects else "no list of objects: where are its lines?"))
    return shape


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


def _keys(node: dict[str, Any], prefix: str, objects: list[str], depth: int = 0) -> list[str]:
    """The key paths of ``node`` (payer.address.city), objects gone into, a list of
    objects named once (and added to ``objects``), no value kept."""
    out = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < _MAX_DEPTH:
            out += _keys(value, f"{path}.", objects, depth + 1)
            continue
        out.append(path)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            objects.append(path)
    return out


def _at(node: dict[str, Any], path: str) -> dict[str, Any]:
    for part in path.split("."):
        node = node[part]
    item: dict[str, Any] = node[0]  # type: ignore[index]
    return item
