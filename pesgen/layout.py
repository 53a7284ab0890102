"""Validate a rendered CSV or fixed-width file against its layout.

One job: a layout (YAML, checked by ``schemas/layout.schema.json``) declares what
every line of a flat file must look like; ``validate_file`` reads a file line by line
(memory stays flat, but for one key per group of lines when the layout checks groups,
and the distinct values a ``totals`` check counts)
and returns every problem as a ``Problem`` naming the file and
line (``record``), the record type and column (in the message) and the rule.

Rules (``layout.*``): encoding, line-ending, final-newline, header, record-type,
columns (count or line width), quoting, required, length, type, values, pattern,
forbidden; group, across consecutive lines (``Group``); and totals, a trailer's or a
header's counts and sums of other records (``Total``).
"""

from __future__ import annotations

import codecs
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, TypedDict

from . import _schema
from ._yaml import line_of, load_yaml_file
from .errors import MappingError, Problem, shown_value

LAYOUT_SCHEMA = "layout.schema.json"
MAX_PROBLEMS = 10_000  # a wholly broken million-line file still gives a readable report
_NUMERIC = ("integer", "decimal")


@dataclass(frozen=True)
class DateFormat:
    text: str  # as written, e.g. DD/MM/YYYY
    regex: re.Pattern[str]

    def parse(self, value: str) -> date | None:
        m = self.regex.fullmatch(value)
        if not m:
            return None
        try:
            return date(int(m["y"]), int(m["m"]), int(m["d"]))
        except ValueError:
            return None


def date_format(text: str) -> DateFormat:
    """``DD/MM/YYYY`` -> a strict matcher (two-digit day and month, four-digit year)."""
    out = ""
    rest = text
    tokens = {"YYYY": r"(?P<y>[0-9]{4})", "MM": r"(?P<m>[0-9]{2})", "DD": r"(?P<d>[0-9]{2})"}
    while rest:
        for token, rx in tokens.items():
            if rest.startswith(token):
                out += rx
                rest = rest[len(token):]
                break
        else:
            out += re.escape(rest[0])
            rest = rest[1:]
    return DateFormat(text, re.compile(out))


@dataclass(frozen=True)
class Column:
    name: str
    index: int  # 1-based position among the record's columns
    type: str
    length: int | None = None
    min_length: int | None = None
    required: bool = False
    values: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None
    signed: bool = False
    decimals: int = 2
    decimal_separator: str = "."
    date: DateFormat | None = None
    quoting: str = "minimal"
    header: str = ""
    start: int = 0  # fixed: 1-based first character
    width: int = 0  # fixed
    align: str = "left"
    pad: str = " "
    # characters no value may hold (forbidden_characters): '' for none
    forbidden: str = ""

    @property
    def label(self) -> str:
        return f"column {self.name} (#{self.index})"

    @cached_property
    def accepts(self) -> Callable[[str], Any]:
        """A quick test of a value: true only when ``check_value`` finds nothing wrong
        with it (false: ask ``check_value``, which says what). Built once per column:
        most values of a file are right, and are then checked by a compiled regex."""
        return _acceptor(self)


@dataclass(frozen=True)
class RecordType:
    type: str
    when: tuple[str, ...]
    columns: tuple[Column, ...]

    @cached_property
    def by_name(self) -> dict[str, Column]:
        """Its columns by name (the groups' and totals' checks read them so), made once
        per record type of a layout."""
        return {c.name: c for c in self.columns}

    @property
    def width(self) -> int:  # fixed: characters per line
        return max(c.start + c.width - 1 for c in self.columns)

    @cached_property
    def quick(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[Callable[[str], Any], ...]]:
        """csv: the positions of the columns quoted always, never, and each column's
        ``accepts``, for ``_clean``."""
        return (tuple(i for i, c in enumerate(self.columns) if c.quoting == "always"),
                tuple(i for i, c in enumerate(self.columns) if c.quoting == "never"),
                tuple(c.accepts for c in self.columns))


@dataclass(frozen=True)
class Group:
    """A check across consecutive lines: those with the same ``key`` value form a
    group, whose lines follow each other; its first line holds the ``first`` values,
    the others the ``rest``; ``number``, if any, counts the lines of a group from 1."""
    key: str
    record: str | None
    first: tuple[tuple[str, str], ...]
    rest: tuple[tuple[str, str], ...]
    number: str | None


@dataclass(frozen=True)
class Total:
    """A figure of a ``record`` line (a trailer's count of lines, its total): its
    ``column`` holds how many ``of`` records there are (``how`` ``count``), how many
    distinct values their ``column`` ``of_column`` holds (``distinct``), or the sum of
    it (``sum``); those since the previous ``record`` line (or the file's start), or,
    ``after``, those up to the next one (or the file's end)."""
    record: str
    column: str
    of: str
    how: str  # count | distinct | sum
    of_column: str | None
    after: bool
    where: str  # the layout's file:line: key, for a problem


@dataclass(frozen=True)
class Layout:
    name: str
    path: Path
    kind: str  # csv | fixed
    encoding: str | None
    newline: str  # "\n" or "\r\n"
    final_newline: bool
    header: bool
    delimiter: str
    quote_char: str
    records: tuple[RecordType, ...]
    type_column: str | None = None
    source: str = ""
    groups: tuple[Group, ...] = ()
    totals: tuple[Total, ...] = ()


# ------------------------------------------------------------------ loading


def load_layout(path: Path, shown: str | None = None) -> Layout:
    """Load and check a layout file; raise ``MappingError`` with every problem found.
    ``shown`` is how its problems name the file (a bundle's layout as the bundle's
    folder was given, ``FileSpec.layout_shown``); default: ``path`` as given."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise MappingError(f"{shown or path}: layout file not found") from None
    return _load_cached(path.resolve(), stat.st_mtime_ns, stat.st_size, shown or str(path))


@lru_cache(maxsize=64)
def _load_cached(path: Path, _mtime: int, _size: int, shown: str) -> Layout:
    data, problems, _ = load_yaml_file(path, "layout", shown)
    if not isinstance(data, dict):
        raise MappingError(f"{shown}: a layout is a YAML mapping (key: value)")
    problems += _schema.check(data, LAYOUT_SCHEMA, shown, "layout.schema")
    if problems:
        raise MappingError(f"{shown}: invalid layout", problems)
    return _compile(path, data, shown)


def _compile(path: Path, data: dict[str, Any], shown: str) -> Layout:
    problems: list[Problem] = []

    def where(*keys: str | int) -> str:
        return f"{shown}:{line_of(data, list(keys))}: {_schema._dotted(list(keys))}"

    def bad(rule: str, message: str, *keys: str | int) -> None:
        problems.append(Problem(rule, message, mapping=where(*keys)))

    kind = data["kind"]
    encoding = data.get("encoding")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
            if "\n;\"".encode(encoding) != b"\n;\"":
                bad("layout.schema", f"encoding '{encoding}' is not ASCII-compatible", "encoding")
        except LookupError:
            bad("layout.schema", f"unknown encoding '{encoding}'", "encoding")
    delimiter = data.get("delimiter", ";")
    quote_char = data.get("quote_char", '"')
    if kind == "csv" and delimiter == quote_char:
        bad("layout.schema", "delimiter and quote_char must differ", "delimiter")
    default_sep = data.get("decimal_separator", ".")
    default_date = date_format(data.get("date_format", "YYYY-MM-DD"))
    default_quoting = data.get("quoting", "minimal")
    default_forbidden = data.get("forbidden_characters", "")
    if kind == "fixed":
        for key in ("delimiter", "quote_char", "quoting", "header"):
            if key in data:
                bad("layout.schema", f"'{key}' is for csv layouts, this one is fixed", key)

    records = []
    for r, rec in enumerate(data["records"]):
        columns = []
        position = 1
        names: set[str] = set()
        for i, col in enumerate(rec["columns"]):
            keys = ("records", r, "columns", i)
            name = col["name"]
            if name in names:
                bad("layout.schema", f"column name '{name}' appears twice in record "
                    f"'{rec['type']}'", *keys, "name")
            names.add(name)
            ctype = col["type"]
            values = tuple(col["values"]) if "values" in col else None
            if ctype == "code" and values is None:
                bad("layout.schema", f"column '{name}' of type code needs `values`", *keys)
            pattern = None
            if "pattern" in col:
                try:
                    pattern = re.compile(col["pattern"])
                except re.error as exc:
                    bad("layout.schema", f"column '{name}': bad pattern ({exc})", *keys,
                        "pattern")
            start = width = 0
            if kind == "fixed":
                if "width" not in col:
                    bad("layout.schema", f"column '{name}' needs a width (fixed layout)", *keys)
                    continue
                width = col["width"]
                start = col.get("start", position)
                if start < position:
                    bad("layout.schema", f"column '{name}' starts at {start}, inside the "
                        f"previous column (which ends at {position - 1})", *keys, "start")
                position = start + width
                if col.get("length", 0) > width:
                    bad("layout.schema", f"column '{name}': length {col['length']} exceeds "
                        f"width {width}", *keys, "length")
            else:
                for key in ("start", "width", "align", "pad"):
                    if key in col:
                        bad("layout.schema", f"column '{name}': '{key}' is for fixed layouts",
                            *keys, key)
            fmt = date_format(col["date_format"]) if "date_format" in col else default_date
            columns.append(Column(
                name=name, index=i + 1, type=ctype,
                length=col.get("length", width or None), min_length=col.get("min_length"),
                required=bool(col.get("required", False)), values=values, pattern=pattern,
                signed=bool(col.get("signed", False)), decimals=col.get("decimals", 2),
                decimal_separator=col.get("decimal_separator", default_sep),
                date=fmt if ctype == "date" else None,
                quoting=col.get("quoting", default_quoting), header=col.get("header", name),
                start=start, width=width,
                align=col.get("align", "right" if ctype in _NUMERIC else "left"),
                pad=col.get("pad", " "),
                forbidden=col.get("forbidden_characters", default_forbidden)))
        when = rec.get("when")
        when_t = (when,) if isinstance(when, str) else tuple(when or ())
        records.append(RecordType(rec["type"], when_t, tuple(columns)))

    type_column = data.get("record_type_column")
    if len(records) > 1 or type_column:
        if not type_column:
            bad("layout.schema", "several record types need record_type_column", "records")
        else:
            spots = set()
            defaults = [rec.type for rec in records if not rec.when]
            if len(defaults) > 1:
                bad("layout.schema", f"records {', '.join(map(repr, defaults))} have no "
                    f"`when`: one record type at most is the default (the lines whose "
                    f"{type_column} selects no other)", "records")
            for r, rec in enumerate(records):
                col = next((c for c in rec.columns if c.name == type_column), None)
                if col is None:
                    if rec.when:  # the default record needs no type column of its own
                        bad("layout.schema", f"record '{rec.type}' has no column "
                            f"'{type_column}' (record_type_column)", "records", r)
                    continue
                spots.add((col.index, col.start, col.width))
            if not spots and not problems:
                bad("layout.schema", f"no record has the column '{type_column}' "
                    "(record_type_column)", "record_type_column")
            if len(spots) > 1:
                bad("layout.schema", f"column '{type_column}' must be at the same position in "
                    "every record type", "record_type_column")
        seen: dict[str, str] = {}
        for rec in records:
            for value in rec.when:
                if value in seen:
                    bad("layout.schema", f"value '{value}' selects both '{seen[value]}' and "
                        f"'{rec.type}'", "records")
                seen[value] = rec.type
    groups = tuple(
        _group(g, records, lambda message, *keys, i=i: bad("layout.schema", message, "groups",
                                                           i, *keys))
        for i, g in enumerate(data.get("groups", ())))
    totals = tuple(
        _total(t, records, where("totals", i),
               lambda message, *keys, i=i: bad("layout.schema", message, "totals", i, *keys))
        for i, t in enumerate(data.get("totals", ())))
    if problems:
        raise MappingError(f"{shown}: invalid layout", problems)
    return Layout(
        name=data["name"], path=path, kind=kind, encoding=encoding,
        newline="\r\n" if data.get("line_ending") == "CRLF" else "\n",
        final_newline=data.get("final_newline", True), header=bool(data.get("header", False)),
        delimiter=delimiter, quote_char=quote_char, records=tuple(records),
        type_column=type_column, source=data.get("source", ""), groups=groups,
        totals=totals)


def _total(data: dict[str, Any], records: list[RecordType], where: str,
           bad: Callable[..., None]) -> Total:
    """One entry of ``totals``, its record types and columns checked (``bad(message,
    *keys)`` for each problem): the figure's column and a summed one are integer or
    decimal columns."""
    given = [how for how in ("count", "distinct", "sum") if how in data]
    if len(given) != 1:
        bad("give one of count: true, distinct: COLUMN or sum: COLUMN (the figure the "
            f"column holds), not {' and '.join(given) or 'none'}")
    how = given[0] if given else "count"
    of_column = data.get(how) if how != "count" else None
    by_type = {r.type: r for r in records}
    for key, column in (("record", data["column"]), ("of", of_column)):
        rec = by_type.get(data[key])
        if rec is None:
            bad(f"no record type '{data[key]}' (known: {', '.join(by_type)})", key)
            continue
        if column is None:
            continue
        col = next((c for c in rec.columns if c.name == column), None)
        said = "column" if key == "record" else how
        if col is None:
            bad(f"record '{rec.type}' has no column '{column}'", said)
        elif (key == "record" or how == "sum") and col.type not in _NUMERIC:
            bad(f"{col.label} of record '{rec.type}' is {col.type}: a "
                + ("count or a sum" if key == "record" else "sum")
                + " is of an integer or decimal column", said)
    return Total(data["record"], data["column"], data["of"], how, of_column,
                 bool(data.get("after", False)), where)


def _group(data: dict[str, Any], records: list[RecordType],
           bad: Callable[..., None]) -> Group:
    """One entry of ``groups``, its columns checked against the record types it
    applies to (``bad(message, *keys)`` for each problem)."""
    record = data.get("record")
    chosen = [r for r in records if record is None or r.type == record]
    if not chosen:
        bad(f"no record type '{record}' (known: {', '.join(r.type for r in records)})",
            "record")
    key = data["key"]
    chosen = [r for r in chosen if any(c.name == key for c in r.columns)]
    if records and not chosen and (record is None or any(r.type == record for r in records)):
        bad(f"no column '{key}' in " + (f"record '{record}'" if record else "any record"),
            "key")

    def column(name: str, *keys: str) -> Column | None:
        for rec in chosen:
            col = next((c for c in rec.columns if c.name == name), None)
            if col is None:
                bad(f"record '{rec.type}' has no column '{name}'", *keys)
                return None
        return next((c for c in chosen[0].columns if c.name == name), None) if chosen else None

    pairs: dict[str, tuple[tuple[str, str], ...]] = {}
    for side in ("first", "rest"):
        for name, value in data.get(side, {}).items():
            col = column(name, side, name)
            if col is not None:
                for _rule, message in check_value(col, value):
                    bad(f"{col.label}: {message}", side, name)
        pairs[side] = tuple(data.get(side, {}).items())
    number = data.get("number")
    if number is not None:
        col = column(number, "number")
        if col is not None and col.type != "integer":
            bad(f"{col.label} numbers the lines of a group: it must be an integer column, "
                f"not {col.type}", "number")
    return Group(key, record, pairs["first"], pairs["rest"], number)


# ------------------------------------------------------------------ reading


def split_csv(line: str, delimiter: str, quote: str) -> tuple[list[tuple[str, bool]], str | None]:
    """One CSV line -> ([(value, was_quoted)], error). A quote inside a quoted value is
    doubled; a line break inside a value is not allowed (the line would be cut)."""
    values, quoted, error = _fields(line, delimiter, quote)
    return list(zip(values, quoted, strict=True)), error


def _fields(line: str, delimiter: str, quote: str) -> tuple[list[str], list[bool], str | None]:
    """``split_csv`` as (values, whether each was quoted, error)."""
    if _plain_fields(delimiter, quote)(line):
        # no delimiter nor quote inside a value: the line splits at each delimiter
        quotes = line.count(quote)
        if not quotes:
            values = line.split(delimiter)
            return values, [False] * len(values), None
        if quotes == 2 * (line.count(delimiter) + 1):  # every value quoted
            values = line[1:-1].split(quote + delimiter + quote)
            return values, [True] * len(values), None
        pieces = line.split(delimiter)
        quoted = [piece[:1] == quote for piece in pieces]
        return ([piece[1:-1] if q else piece for piece, q in zip(pieces, quoted, strict=True)],
                quoted, None)
    pairs, error = _read_csv(line, delimiter, quote)
    return [v for v, _ in pairs], [q for _, q in pairs], error


@lru_cache(maxsize=16)
def _plain_fields(delimiter: str, quote: str) -> Callable[[str], Any]:
    """Whether a line's values, quoted or not, hold neither the delimiter nor the quote
    (a line ``split_csv`` may split at each delimiter): a compiled regex's fullmatch."""
    d, q = re.escape(delimiter), re.escape(quote)
    field = f"(?:{q}[^{d}{q}]*{q}|[^{d}{q}]*)"
    return re.compile(f"{field}(?:{d}{field})*").fullmatch


def _read_csv(line: str, delimiter: str, quote: str
              ) -> tuple[list[tuple[str, bool]], str | None]:
    """``split_csv`` of any line, its quoted delimiters and doubled quotes, and its
    errors."""
    fields: list[tuple[str, bool]] = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == quote:
            i += 1
            buf = []
            while True:
                j = line.find(quote, i)
                if j < 0:
                    return fields, (f"field {len(fields) + 1}: quoted value not closed "
                                    "(a line break inside a value?)")
                buf.append(line[i:j])
                if j + 1 < n and line[j + 1] == quote:
                    buf.append(quote)
                    i = j + 2
                    continue
                i = j + 1
                break
            fields.append(("".join(buf), True))
            if i < n and line[i] != delimiter:
                return fields, (f"field {len(fields)}: characters after the closing quote")
        else:
            j = line.find(delimiter, i)
            end = n if j < 0 else j
            value = line[i:end]
            if quote in value:
                return fields, (f"field {len(fields) + 1}: quote character inside an unquoted "
                                "value")
            fields.append((value, False))
            i = end
        if i >= n:
            return fields, None
        i += 1  # skip the delimiter
        if i == n:  # a trailing delimiter ends with an empty field
            fields.append(("", False))
            return fields, None


def _lines(path: Path) -> Iterator[tuple[int, bytes, bytes]]:
    """(line number, content, terminator) for each line of a file, read in binary."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.endswith(b"\r\n"):
                yield number, raw[:-2], b"\r\n"
            elif raw.endswith(b"\n"):
                yield number, raw[:-1], b"\n"
            else:
                yield number, raw, b""


def charset_misfits(path: Path, layout: Layout, charset: str, where: str,
                    shown: str | None = None, encoding: str | None = None,
                    limit: int = 20) -> tuple[list[Problem], int]:
    """The values of a flat file holding characters outside ``charset``, the format's
    (``where``: its format.yaml:line: key), as ``check-layout`` warns of them (rule
    layout.charset): the first ``limit`` as problems, and how many values hold one. A
    line that does not decode or read is left to ``validate_file``'s problems."""
    from .text import outside_charset

    shown = shown or str(path)
    codec = layout.encoding or encoding or "utf-8"
    found: list[Problem] = []
    count = 0
    for number, raw, _ in _lines(path):
        try:
            text = raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if number == 1 and layout.header:
            continue
        for col, value in line_values(layout, text):
            outside = outside_charset(value, charset)
            if not outside:
                continue
            count += 1
            if len(found) < limit:
                found.append(Problem(
                    "layout.charset", f"{_where_of(layout, text, col)}: holds {outside!r}, "
                    f"outside the format's charset {charset}: pesgen writes no such "
                    "character there (policies.transliterate replaces it, else the invoice "
                    "is refused); a publisher's sample holding one says the package takes "
                    "it: confirm the charset with the publisher",
                    record=f"{shown}:{number}", mapping=where, source="format"))
    return found, count


def _where_of(layout: Layout, text: str, col: Column) -> str:
    rec, _ = record_values(layout, text)
    return f"record '{rec.type}', {col.label}" if rec is not None else col.label


# ------------------------------------------------------------------ checking


class _Report:
    def __init__(self, shown: str, writer: str | None = None) -> None:
        self.shown = shown
        self.writer = writer  # the template that wrote the file (validate_file)
        self.problems: list[Problem] = []
        self.full = False
        # a problem said once for its lines alike: its index, the other lines' numbers
        self._alike: dict[str, tuple[int, list[int]]] = {}

    def add(self, line: int, rule: str, message: str) -> None:
        if self.full:
            return
        if len(self.problems) >= MAX_PROBLEMS:
            self.problems.append(Problem("layout.too-many", f"more than {MAX_PROBLEMS} "
                                         "problems; the rest of the file was not checked",
                                         record=f"{self.shown}:{line}"))
            self.full = True
            return
        self.problems.append(Problem(rule, message, record=f"{self.shown}:{line}"))

    def add_alike(self, line: int, rule: str, message: str) -> None:
        """``add`` a problem once for the lines it is said of alike (a template writing
        every line of a record type too short): the first line's, then on ``finish``
        how many more and which."""
        seen = self._alike.get(message)
        if seen is None:
            if not self.full:
                self._alike[message] = (len(self.problems), [])
            self.add(line, rule, message)
        else:
            seen[1].append(line)

    def finish(self) -> list[Problem]:
        """The problems, each said of lines alike with their count and first lines."""
        for index, more in self._alike.values():
            if more:
                first = ", ".join(map(str, more[:5])) + (", …" if len(more) > 5 else "")
                problem = self.problems[index]
                self.problems[index] = replace(problem, message=(
                    f"{problem.message} (and {len(more)} more line(s) alike: {first})"))
        return self.problems


def allowed_values(col: Column) -> str:
    """The values column ``col`` takes (``values``), as its refusals list them: the
    first twelve quoted, "…" for more."""
    values = col.values or ()
    return ", ".join(repr(v) for v in values[:12]) + (", …" if len(values) > 12 else "")


def check_value(col: Column, value: str) -> list[tuple[str, str]]:
    """Problems of one value against its column: [(rule, message)]."""
    if value == "":
        return [("layout.required", "is empty, the column is required")] if col.required else []
    out: list[tuple[str, str]] = []
    if col.length is not None and len(value) > col.length:
        if col.length == 0:
            out.append(("layout.length", f"holds {len(value)} character(s) in a reserved "
                        "column that must stay empty"))
        else:
            out.append(("layout.length", f"is {len(value)} characters, the "
                        f"layout allows {col.length}"))
    if col.min_length is not None and len(value) < col.min_length:
        out.append(("layout.length", f"is {len(value)} characters, the layout "
                    f"wants at least {col.min_length}"))
    kind_error = _type_error(col, value)
    if kind_error:
        out.append(("layout.type", kind_error))
    if col.values is not None and value not in col.values:
        out.append(("layout.values", f"{_show(value, code=True)} is not an allowed value "
                    f"({allowed_values(col)})"))
    if col.pattern is not None and not col.pattern.fullmatch(value):
        out.append(("layout.pattern", f"{_show(value)} does not match {col.pattern.pattern}"))
    if col.forbidden and any(c in value for c in col.forbidden):
        held = "".join(c for c in col.forbidden if c in value)
        if held:
            out.append(("layout.forbidden", f"{_show(value)} holds {held!r}, which the layout "
                        f"forbids in any value (forbidden_characters {col.forbidden!r})"))
    return out


def forbidden_characters(layout: Layout) -> str:
    """Every character a column of ``layout`` forbids (its forbidden_characters), once."""
    return "".join(dict.fromkeys(c for rec in layout.records for col in rec.columns
                                 for c in col.forbidden))


def _acceptor(col: Column) -> Callable[[str], object]:
    """``Column.accepts``: the checks of ``check_value`` as one compiled regex (length,
    forbidden characters, the syntax of a number), then the column's pattern and date;
    a code column's allowed values that pass its other checks, as a set."""
    if col.values is not None:
        return frozenset(v for v in (*col.values, "") if not check_value(col, v)).__contains__
    shortest = max(1, col.min_length or 0)  # an empty value: `required` alone
    if col.length is not None and col.length < shortest:
        size = "(?!)"  # no value but an empty one
    else:
        char = f"[^{re.escape(col.forbidden)}]" if col.forbidden else "."
        size = f"(?={char}{{{shortest},{'' if col.length is None else col.length}}}\\Z)"
    syntax = _number_syntax(col) if col.type in _NUMERIC else ".*"
    whole = re.compile(f"(?s){size}{syntax}").fullmatch  # a value not empty
    more = tuple(check for check in (col.pattern.fullmatch if col.pattern else None,
                                     col.date.parse if col.type == "date" and col.date
                                     else None) if check is not None)
    empty_ok = not col.required
    if not more:
        return re.compile(f"(?s)(?:{size}{syntax}){'|' if empty_ok else ''}").fullmatch

    if len(more) == 1:
        (check,) = more
        return lambda value: (whole(value) is not None and check(value) is not None
                              if value else empty_ok)

    def accepts(value: str) -> bool:
        if not value:
            return empty_ok
        return whole(value) is not None and all(check(value) is not None for check in more)

    return accepts


def _number_syntax(col: Column) -> str:
    """The regex of an integer or decimal column's values (its sign, its decimals)."""
    sign = "-?" if col.signed else ""
    if col.type == "integer":
        return sign + r"[0-9]+"
    sep = re.escape(col.decimal_separator)
    frac = rf"({sep}[0-9]{{1,{col.decimals}}})?" if col.decimals else ""
    return sign + r"[0-9]+" + frac


def _type_error(col: Column, value: str) -> str | None:
    if not col.signed and col.type in _NUMERIC and value[:1] in "-+" and \
            _type_error(replace(col, signed=True), "-" + value[1:]) is None:
        # a number but for its sign: say the sign is what the column refuses
        negative = "negative " if value[0] == "-" else "signed "
        return (f"{_show(value)} has a sign: the column takes no {negative}number (its "
                "layout does not say signed: true)")
    if col.type == "integer":
        if not re.fullmatch(_number_syntax(col), value):
            return f"{_show(value)} is not an integer" + ("" if col.signed else " (digits only)")
    elif col.type == "decimal":
        if not re.fullmatch(_number_syntax(col), value):
            other = "," if col.decimal_separator == "." else "."
            hint = (f" (decimal separator is '{col.decimal_separator}', not '{other}')"
                    if other in value else f" (at most {col.decimals} decimals)"
                    if col.decimal_separator in value else "")
            return f"{_show(value)} is not a decimal number{hint}"
    elif col.type == "date":
        assert col.date is not None
        if col.date.parse(value) is None:
            return f"{_show(value)} is not a date in the format {col.date.text}"
    return None


# the filter writing a date column's format (docs/onboarding.md, step 3), and the
# strftime codes of the tokens for another format
_DATE_FILTERS = {"YYYYMMDD": "compactdate", "DD/MM/YYYY": "frdate", "YYYY-MM-DD": "isodate"}
_STRFTIME = (("YYYY", "%Y"), ("MM", "%m"), ("DD", "%d"))


def _written_with(col: Column, rule: str, value: str) -> str:
    """For a file a template wrote, a value of the wrong form in a date column, or with
    the other decimal separator in a decimal one (layout.type): what writes the form the
    column wants, the filter (a date's compactdate, frdate, isodate; the amount filter
    with the column's separator) or, for a date format no filter writes, strftime.
    Empty for another problem or column."""
    if rule != "layout.type":
        return ""
    if col.type == "date" and col.date is not None:
        name = _DATE_FILTERS.get(col.date.text)
        if name:
            return f": write it with the {name} filter (a date | {name})"
        code = col.date.text
        for token, directive in _STRFTIME:
            code = code.replace(token, directive)
        return (f": no filter writes {col.date.text}; write it with strftime "
                f"(a date.strftime('{code}'))")
    if col.type == "decimal" and ("," if col.decimal_separator == "." else ".") in value:
        return (f": write it with the amount filter and the column's separator "
                f"(amount({col.decimal_separator!r}))")
    return ""


def written_forms(layout: Layout) -> frozenset[str]:
    """The places (``record 'R', column C (#n)``, as a problem names them) of the date
    and decimal columns of ``layout``: the form of a value there (its date format, its
    decimal separator) is the template's filter's, never the export's, whose dates and
    amounts are typed: a layout.type problem there names the template line, not the
    binding whose value it is (``Exporter._bindings_of``)."""
    return frozenset(_where(rec, col) for rec in layout.records for col in rec.columns
                     if col.type in ("date", "decimal"))


def _show(value: str, code: bool = False) -> str:
    """A value of the file checked, as a problem may show it: quoted when it is short
    and mostly digits (or a short code), else described (its length, the kinds of its
    characters): the file is a billing export, a name or an IBAN stays out of it."""
    return shown_value(value, code)


def _default_record(layout: Layout) -> RecordType | None:
    """The record type without `when`, which takes the lines no other selects."""
    return next((r for r in layout.records if not r.when), None)


def record_type(layout: Layout, fields: list[str] | None, text: str
                ) -> tuple[RecordType | None, str | None]:
    if len(layout.records) == 1 and not layout.type_column:
        return layout.records[0], None
    col = next(c for r in layout.records for c in r.columns if c.name == layout.type_column)
    if layout.kind == "csv":
        assert fields is not None
        value = fields[col.index - 1] if len(fields) >= col.index else ""
    else:
        raw = text[col.start - 1: col.start - 1 + col.width]
        value = raw.rstrip(col.pad) if col.align == "left" else raw.lstrip(col.pad)
    for rec in layout.records:
        if value in rec.when:
            return rec, None
    default = _default_record(layout)
    if default is not None:
        return default, None
    known = ", ".join(f"'{v}' ({r.type})" for r in layout.records for v in r.when)
    return None, f"{col.label}: {_show(value, code=True)} is no record type (known: {known})"


def validate_file(path: Path, layout: Layout, shown: str | None = None,
                  encoding: str | None = None, writer: str | None = None) -> list[Problem]:
    """Every way the file at ``path`` breaks ``layout``. ``shown`` is the file name
    problems carry (default: the path's name); ``encoding`` is used when the layout
    declares none; ``writer``, the template that wrote the file, as messages name it
    (None: a file pesgen did not write, or not known)."""
    report = _Report(shown or Path(path).name, writer)
    enc = layout.encoding or encoding or "utf-8"
    want_nl = layout.newline.encode("ascii")
    last_line = 0
    last_term = b""
    groups = _Groups(layout.groups, report) if layout.groups else None
    totals = _Totals(layout.totals, report) if layout.totals else None
    for number, content, term in _lines(Path(path)):
        if report.full:
            break
        last_line, last_term = number, term
        if term and term != want_nl:
            report.add(number, "layout.line-ending",
                       f"line ends with {_nl_name(term)}, the layout wants "
                       f"{_nl_name(want_nl)}")
        if b"\r" in content:
            report.add(number, "layout.line-ending", "carriage return inside the line")
        try:
            text = content.decode(enc)
        except UnicodeDecodeError as exc:
            report.add(number, "layout.encoding", f"byte 0x{content[exc.start]:02X} at column "
                       f"{exc.start + 1} is not {enc}")
            continue
        if layout.kind == "csv":
            read = _check_csv_line(layout, report, number, text)
        else:
            read = _check_fixed_line(layout, report, number, text)
        if groups is not None and read is not None:
            groups.line(number, *read)
        if totals is not None and read is not None:
            totals.line(number, *read)
    if totals is not None:
        totals.end()
    if not last_line and layout.kind == "csv" and layout.header:
        report.add(1, "layout.header", f"the header line is missing: {report.shown} is empty")
    if last_line and not last_term and layout.final_newline:
        report.add(last_line, "layout.final-newline",
                   f"the last line does not end with {_nl_name(want_nl)}")
    return report.finish()


def _nl_name(term: bytes) -> str:
    return {b"\r\n": "CRLF", b"\n": "LF"}.get(term, repr(term))


def _check_csv_line(layout: Layout, report: _Report, number: int, text: str
                    ) -> tuple[RecordType, list[str]] | None:
    """Check one line; its record type and values (None: a header line, or a line whose
    record type could not be read)."""
    values, quoted, error = _fields(text, layout.delimiter, layout.quote_char)
    if error:
        report.add(number, "layout.quoting", error)
        return None
    if number == 1 and layout.header:
        # a header line names the default record type's columns, else the first's
        expected = [c.header for c in (_default_record(layout) or layout.records[0]).columns]
        if values != expected:
            diff = next((i for i, (a, b) in enumerate(zip(values, expected, strict=False))
                         if a != b), min(len(values), len(expected)))
            got = _show(values[diff], code=True) if diff < len(values) else "nothing"
            want = repr(expected[diff]) if diff < len(expected) else "nothing"
            report.add(number, "layout.header", f"header field {diff + 1} is {got}, the layout "
                       f"wants {want}")
        return None
    if text == "":
        report.add(number, "layout.columns", "empty line")
        return None
    rec, error = record_type(layout, values, text)
    if rec is None:
        report.add(number, "layout.record-type", error or "unknown record type")
        return None
    cols = rec.columns
    if len(values) < len(cols):
        missing = cols[len(values):]
        names = ", ".join(c.name for c in missing[:5]) + (", …" if len(missing) > 5 else "")
        report.add(number, "layout.columns", f"record '{rec.type}' has {len(values)} fields, "
                   f"the layout has {len(cols)}: missing {missing[0].label}"
                   + (f" and after ({names})" if len(missing) > 1 else ""))
    elif len(values) > len(cols):
        report.add(number, "layout.columns", f"record '{rec.type}' has {len(values)} fields, "
                   f"the layout has {len(cols)}: {len(values) - len(cols)} extra field(s) after "
                   f"{cols[-1].label}")
    elif _clean(rec, quoted, values):
        return rec, values
    for col, value, was_quoted in zip(cols, values, quoted, strict=False):
        if col.quoting == "always" and not was_quoted:
            report.add(number, "layout.quoting", f"{_where(rec, col)}: {_show(value)} must "
                       "be quoted")
        elif col.quoting == "never" and was_quoted:
            report.add(number, "layout.quoting", f"{_where(rec, col)}: {_show(value)} must "
                       "not be quoted")
        if not col.accepts(value):
            for rule, message in check_value(col, value):
                report.add(number, rule, f"{_where(rec, col)}: {message}"
                           + (_written_with(col, rule, value) if report.writer else ""))
    return rec, values


def _clean(rec: RecordType, quoted: list[bool], values: list[str]) -> bool:
    """Whether the values of a line (as many as ``rec``'s columns) pass their quoting
    and their columns' checks (their loop in ``_check_csv_line`` would find nothing):
    each column's ``accepts`` called from C, no Python step per value."""
    always, never, accepts = rec.quick
    return (all(map(quoted.__getitem__, always)) and not any(map(quoted.__getitem__, never))
            and all(map(operator.call, accepts, values)))


def _where(rec: RecordType, col: Column) -> str:
    """Where in a line a problem is, for its message (made only for a problem)."""
    return f"record '{rec.type}', {col.label}"


def line_values(layout: Layout, text: str) -> list[tuple[Column, str]]:
    """The (column, value) pairs of one line of a file of ``layout`` (a header line's
    are not asked for), as the checks read them; [] for a line they cannot read (its
    problems are the checks')."""
    rec, values = record_values(layout, text)
    return [] if rec is None else list(zip(rec.columns, values, strict=False))


def record_values(layout: Layout, text: str) -> tuple[RecordType | None, list[str]]:
    """One line's record type and values, as the checks read them; (None, []) for a
    line they cannot read (its problems are the checks')."""
    if text == "":
        return None, []
    if layout.kind == "csv":
        pairs, error = split_csv(text, layout.delimiter, layout.quote_char)
        if error:
            return None, []
        values = [v for v, _ in pairs]
        rec, _ = record_type(layout, values, text)
        return (None, []) if rec is None else (rec, values)
    rec, _ = record_type(layout, None, text)
    if rec is None:
        return None, []
    return rec, [_fixed_value(col, text[col.start - 1: col.start - 1 + col.width])
                 for col in rec.columns]


def _fixed_value(col: Column, raw: str) -> str:
    """The value of a fixed-width field ``raw``: its padding stripped; a zero-padded
    field of zeros only is 0."""
    value = raw.rstrip(col.pad) if col.align == "left" else raw.lstrip(col.pad)
    return "0" if value == "" and col.pad == "0" and raw else value


def _check_fixed_line(layout: Layout, report: _Report, number: int, text: str
                      ) -> tuple[RecordType, list[str]] | None:
    """As ``_check_csv_line``, for a fixed-width line."""
    if text == "":
        report.add(number, "layout.columns", "empty line")
        return None
    rec, error = record_type(layout, None, text)
    if rec is None:
        report.add(number, "layout.record-type", error or "unknown record type")
        return None
    values: list[str] = []
    width = rec.width
    if len(text) > width:
        report.add(number, "layout.columns", f"record '{rec.type}' is {len(text)} characters, "
                   f"the layout has {width}: {len(text) - width} character(s) after "
                   f"{rec.columns[-1].label}")
    elif len(text) < width:  # one problem for the line, said once for its like
        short = [c for c in rec.columns if c.start - 1 + c.width > len(text)]
        names = ", ".join(c.name for c in short[1:6]) + (", …" if len(short) > 6 else "")
        report.add_alike(number, "layout.columns", f"record '{rec.type}' is {len(text)} "
                         f"characters, the layout has {width}: {short[0].label} (characters "
                         f"{short[0].start}-{short[0].start + short[0].width - 1}) is "
                         + ("missing" if short[0].start > len(text) else "cut")
                         + (f", and the {len(short) - 1} column(s) after it ({names})"
                            if len(short) > 1 else "")
                         + (f": check the widths {report.writer} writes on such lines"
                            if report.writer else ""))
    for col in rec.columns:
        if col.start - 1 + col.width > len(text):  # said above
            values.append("")
            continue
        raw = text[col.start - 1: col.start - 1 + col.width]
        value = _fixed_value(col, raw)
        values.append(value)
        if col.pad != " " and value != value.strip(" "):
            report.add(number, "layout.type", f"{_where(rec, col)}: {_show(raw)} has spaces "
                       f"in a field padded with {col.pad!r}")
            continue
        if (col.pad == "0" and col.align != "left" and col.type in _NUMERIC and col.signed
                and value.startswith("-") and len(value) < len(raw)):
            report.add(number, "layout.type", f"{_where(rec, col)}: {_show(raw)} has the padding "
                       f"{col.pad!r} before its sign (the sign comes first: "
                       f"{_show('-' + value[1:].rjust(len(raw) - 1, col.pad))})")
            continue
        if not col.accepts(value):
            for rule, message in check_value(col, value):
                report.add(number, rule, f"{_where(rec, col)}: {message}"
                           + (_written_with(col, rule, value) if report.writer else ""))
    return rec, values


class _Running(TypedDict):
    """A ``groups`` check's group running: its key (None before the first), its lines so
    far, its last line's number."""
    key: str | None
    n: int
    last: int


class _Groups:
    """The ``groups`` checks of a file, fed its lines in order (``line``). Holds, per
    check, the key of each group ended (one entry per group of the file)."""

    def __init__(self, groups: tuple[Group, ...], report: _Report) -> None:
        self.report = report
        # per check: the group running (key, lines so far, its last line), the keys of
        # the groups ended with their last line and their count of lines
        self.checks: list[tuple[Group, _Running, dict[str, tuple[int, int]]]] = [
            (g, {"key": None, "n": 0, "last": 0}, {}) for g in groups]

    def line(self, number: int, rec: RecordType, values: list[str]) -> None:
        index = rec.by_name

        def value(name: str) -> str:
            col = index[name]
            return values[col.index - 1] if col.index <= len(values) else ""

        for group, run, ended in self.checks:
            if (group.record is not None and group.record != rec.type) or \
                    group.key not in index:
                continue
            key = value(group.key)
            if key == "":  # in no group (layout.required says whether it may be empty)
                continue
            where = f"record '{rec.type}'"  # for a problem
            again = False
            if key != run["key"]:
                if run["key"] is not None:
                    ended[run["key"]] = run["last"], run["n"]
                run["key"], run["n"] = key, 0
                if key in ended:  # said once; the lines after it go on from its group
                    last, run["n"] = ended.pop(key)
                    again = True
                    self.report.add(number, "layout.group", (
                        f"{where}, {index[group.key].label}: {_show(key, code=True)} again, "
                        f"after its group ended at line {last}: the lines of a group "
                        "follow each other"))
            run["n"] += 1
            run["last"] = number
            if again:
                continue
            n = run["n"]
            for name, wanted in group.first if n == 1 else group.rest:
                got = value(name)
                if got != wanted:
                    self.report.add(number, "layout.group", (
                        f"{where}, {index[name].label}: {_show(got, code=True)} on "
                        f"{_nth(n, group.key, key)}; the layout wants {wanted!r} on "
                        + ("the first line of a group" if n == 1 else "the lines after "
                           "the first")))
            if group.number is not None:
                got = value(group.number)
                if not (got.isascii() and got.isdigit() and int(got) == n):
                    self.report.add(number, "layout.group", (
                        f"{where}, {index[group.number].label}: {_show(got, code=True)} on "
                        f"{_nth(n, group.key, key)}; the layout wants {n} (the lines of a "
                        "group numbered from 1)"))


def _nth(n: int, column: str, key: str) -> str:
    where = f"group {column} {_show(key, code=True)}"
    return f"the first line of {where}" if n == 1 else f"line {n} of {where}"


class _Totals:
    """The ``totals`` checks of a file, fed its lines in order (``line``), then its end
    (``end``). Holds, per check, what the ``of`` records counted so far make (their
    count, their distinct values, their sum) and, for a figure said before them
    (``after``), the line that said it and its value."""

    def __init__(self, totals: tuple[Total, ...], report: _Report) -> None:
        self.report = report
        self.checks = [(t, _Count()) for t in totals]

    def line(self, number: int, rec: RecordType, values: list[str]) -> None:
        index = rec.by_name
        for total, count in self.checks:
            if rec.type == total.of:
                count.add(total, index, values)
            if rec.type == total.record:
                col = index.get(total.column)
                said = _figure(col, values[col.index - 1]) \
                    if col is not None and col.index <= len(values) else None
                if total.after:
                    self._close(total, count)
                    count.reset()
                    count.said = (number, said, col)
                else:
                    if said is not None and col is not None:
                        self._compare(total, count, number, said, col)
                    count.reset()

    def end(self) -> None:
        for total, count in self.checks:
            if total.after:
                self._close(total, count)

    def _close(self, total: Total, count: _Count) -> None:
        """A header's figure (``after``), once the records it announces are read."""
        if count.said is not None:
            number, said, col = count.said
            if said is not None and col is not None:
                self._compare(total, count, number, said, col)
            count.said = None

    def _compare(self, total: Total, count: _Count, number: int, said: Decimal,
                 col: Column) -> None:
        found = count.figure(total.how)
        if said == found:
            return
        of = (f"the '{total.of}' records after it (up to the next '{total.record}' record "
              "or the end of the file)" if total.after else f"the '{total.of}' records "
              f"before it (since the previous '{total.record}' record or the start of the "
              "file)")
        makes = {"count": f"{of} are {_plain(found, col)}",
                 "distinct": f"{of} hold {_plain(found, col)} distinct {total.of_column}",
                 "sum": f"the {total.of_column} of {of} sum to {_plain(found, col)}"
                 }[total.how]
        # check-layout's file (no writer known) is often the publisher's sample, whose
        # figures are the package's own: the layout's entry is the first suspect there
        writes = ("what the template writes there (doc.bordereau.count: the titles, .lines: "
                  "their lines, .total: their amount)")
        check = (f"check {writes}" if self.report.writer else "check this entry of the "
                 "layout (its record, of, count, sum, distinct, after) against the "
                 f"publisher's documentation, or, for a file pesgen wrote, {writes}")
        # a line of no known record type counts as none: the figure may be right, and
        # the template's record type, said above, what is wrong
        unknown = [q.record.rsplit(":", 1)[-1] for q in self.report.problems
                   if q.rule == "layout.record-type" and q.record]
        if unknown:
            lines = ", ".join(unknown[:5]) + (", …" if len(unknown) > 5 else "")
            check = (f"this may follow from the line(s) of no known record type, which "
                     f"count as none (line{'s' if len(unknown) > 1 else ''} {lines}: rule "
                     f"layout.record-type): fix those first; else {check}")
        self.report.add(number, "layout.totals", (
            f"record '{total.record}', {col.label} says {_plain(said, col)}, but {makes}: "
            f"{check} [{total.where}]"))


def _plain(value: Decimal, col: Column) -> str:
    """A count or a sum as the column writes it: 30, 2527,25."""
    text = format(value, "f")
    return text.replace(".", col.decimal_separator) if col.type == "decimal" else text


def _figure(col: Column | None, value: str) -> Decimal | None:
    """The number a count or sum column holds; None when empty or not a number (its
    own rules say so)."""
    if col is None or value == "":
        return None
    text = value.replace(col.decimal_separator, ".") if col.type == "decimal" else value
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


class _Count:
    """What a ``totals`` check has counted of its ``of`` records."""

    def __init__(self) -> None:
        self.said: tuple[int, Decimal | None, Column | None] | None = None
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.total = Decimal(0)
        self.seen: set[str] = set()

    def add(self, total: Total, index: dict[str, Column], values: list[str]) -> None:
        self.n += 1
        if total.of_column is None:
            return
        col = index.get(total.of_column)
        if col is None or col.index > len(values):
            return
        value = values[col.index - 1]
        if total.how == "distinct":
            if value != "":
                self.seen.add(value)
        else:
            number = _figure(col, value)
            if number is not None:
                self.total += number

    def figure(self, how: str) -> Decimal:
        if how == "count":
            return Decimal(self.n)
        return Decimal(len(self.seen)) if how == "distinct" else self.total
