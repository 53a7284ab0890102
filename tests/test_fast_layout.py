"""The shortcuts of the flat-file path give what the general paths give: ``split_csv``
as a reader of every character, ``Column.accepts`` as ``check_value`` finding nothing,
``validate_file`` as with those shortcuts and its check of a whole line off, and
``csv_record`` as the filter that quoted one value at a time. The general paths are
kept here, as they were before the shortcuts (docs/performance.md: e.magnus' export),
so that a change to pesgen's cannot hide a change to its shortcut."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pesgen import layout as layout_module
from pesgen.filters import csv_record
from pesgen.layout import Column, check_value, date_format, load_layout, split_csv, validate_file
from pesgen.resources import data_dir

from .test_layout import CSV_LAYOUT, FIXED_LAYOUT

EXAMPLES = settings(max_examples=300, deadline=None)


def _reference_split(line: str, delimiter: str, quote: str
                     ) -> tuple[list[tuple[str, bool]], str | None]:
    """split_csv before its shortcut: the general reader, character by character, that
    every line not taken by a shortcut still goes to (tests/test_layout.py pins it)."""
    return layout_module._read_csv(line, delimiter, quote)


def _reference_fields(line: str, delimiter: str, quote: str
                      ) -> tuple[list[str], list[bool], str | None]:
    pairs, error = _reference_split(line, delimiter, quote)
    return [v for v, _ in pairs], [q for _, q in pairs], error


def _reference_record(values, delimiter=";", quoting="minimal", quote='"', size=None,
                      unquoted=()):
    """csv_record before its shortcuts (its checks of ``values`` and ``size`` left out:
    the shortcuts are after them)."""
    cells = ([values.get(i) for i in range(1, size + 1)] if isinstance(values, dict)
             else list(values))
    skip = set(unquoted)
    out = []
    for position, cell in enumerate(cells, start=1):
        text = "" if cell is None else str(cell)
        special = any(ch in text for ch in (delimiter, quote, "\n", "\r"))
        mode = "never" if position in skip else quoting
        if mode == "always" or (mode == "minimal" and special):
            out.append(quote + text.replace(quote, quote * 2) + quote)
        elif special:
            said = repr(text) if type(cell) is int else f"a text of {len(text)} characters"
            held = [x for x in (f"the delimiter {delimiter!r}" if delimiter in text else "",
                                f"the quote {quote!r}" if quote in text else "",
                                "a line break" if "\n" in text or "\r" in text else "") if x]
            what = " and ".join((", ".join(held[:-1]), held[-1])) if len(held) > 1 else held[0]
            raise ValueError(f"csv_record: the value at position {position} ({said}) holds "
                             f"{what} and may not be quoted")
        else:
            out.append(text)
    return delimiter.join(out)


# (delimiter, quote): the usual ones, and characters a regex would read otherwise
PAIRS = [(";", '"'), (",", "'"), ("|", '"'), ("\t", '"'), (".", "*"), ("]", "^"), ("\\", "-")]


@st.composite
def _lines(draw):
    delimiter, quote = draw(st.sampled_from(PAIRS))
    chars = "ab " + delimiter + quote
    field = st.one_of(
        st.text(chars, max_size=4),  # anything, unquoted
        st.text(chars, max_size=4).map(lambda t: quote + t.replace(quote, quote * 2) + quote),
        st.text(chars, max_size=4).map(lambda t: quote + t + quote))  # a quote not doubled
    line = draw(st.one_of(st.lists(field, min_size=1, max_size=6).map(delimiter.join),
                          st.text(chars, max_size=12)))
    return line, delimiter, quote


@EXAMPLES
@given(_lines())
def test_split_csv_is_the_reader_of_every_character(case):
    line, delimiter, quote = case
    assert split_csv(line, delimiter, quote) == _reference_split(line, delimiter, quote)


@pytest.mark.parametrize("line", [
    "", ";", '""', '";"', '"";""', '"a;b";c', '"a""b";c', 'a;"b";', '"a"x;b', 'a"b', '"a',
    '"', '"a";"b', '"1";"T";"";"DUPONT"', "1;2;3,50;"])
def test_split_csv_shapes(line):
    assert split_csv(line, ";", '"') == _reference_split(line, ";", '"')


# values of every kind a column checks: numbers, signs, separators, dates, characters
# a layout forbids, a regex's own characters, a line break
VALUE = st.one_of(
    st.text("0123456789-+.,/ aAxé;\"]^\\\n", max_size=12),
    st.sampled_from(["12", "-3,50", "3.5", "+1", "007", "0,123", "01/02/2026", "31/02/2026",
                     "2026-01-31", "R", "D", "ABC-12", "abc-12", "x", "1" * 40]))


@st.composite
def _columns(draw):
    kind = draw(st.sampled_from(["text", "integer", "decimal", "date", "code"]))
    some = st.lists(VALUE, min_size=1, max_size=4).map(tuple)  # a code's allowed values
    return Column(
        name="C", index=1, type=kind,
        length=draw(st.one_of(st.none(), st.integers(0, 8))),
        min_length=draw(st.one_of(st.none(), st.integers(0, 4))),
        required=draw(st.booleans()),
        values=draw(some if kind == "code" else st.one_of(st.none(), some)),
        pattern=draw(st.one_of(st.none(), st.sampled_from(
            ["[0-9]+", "[A-Z]{3}-[0-9]+", "(?i)a.*", "x|y", ".*"]).map(re.compile))),
        signed=draw(st.booleans()), decimals=draw(st.integers(0, 3)),
        decimal_separator=draw(st.sampled_from([".", ","])),
        date=date_format(draw(st.sampled_from(["DD/MM/YYYY", "YYYY-MM-DD"])))
        if kind == "date" else None,
        forbidden=draw(st.sampled_from(["", ';"', "]^-\\", "a", "\n"])))


@EXAMPLES
@given(_columns(), st.lists(VALUE, min_size=1, max_size=8))
def test_accepts_is_check_value_finding_nothing(col, values):
    # and values right but for one character the column forbids, or one too many
    near = [v[:i] + c + v[i:] for v in ("1", "ab", "01/02/2026", *(col.values or ()))
            for c in col.forbidden for i in (0, len(v))]
    near += ["1" * n for bound in (col.length, col.min_length) if bound is not None
             for n in (bound - 1, bound, bound + 1) if n >= 0]
    for value in (*values, *(col.values or ()), *near):
        assert bool(col.accepts(value)) == (check_value(col, value) == []), (col, value)


def _general_paths():
    """validate_file as before its shortcuts: every line through the reader of every
    character, every value through its quoting's check and check_value."""
    return (mock.patch.object(layout_module, "_fields", _reference_fields),
            mock.patch.object(layout_module, "_clean", lambda rec, pairs, values: False),
            mock.patch.object(Column, "accepts", property(lambda self: lambda value: False)))


def _layouts():
    bundle = data_dir("templates") / "bl-emagnus"
    out = []
    for name, expected in (("wtamc001.layout.yaml", "WTAMC001.txt"),
                           ("wtamc001as.layout.yaml", "WTAMC001AS.txt"),
                           ("wtamc001tsol.layout.yaml", "WTAMC001_TSOL.txt")):
        lines = (bundle / "expected" / expected).read_bytes().decode("cp1252").split("\r\n")
        out.append((load_layout(bundle / name), [line for line in lines if line]))
    with tempfile.TemporaryDirectory() as folder:
        for text, lines in ((CSV_LAYOUT, ['1;"R";"DUPONT";"20/11/2026";85,00;"";"FAM-42"',
                                          '2;"D";"NEE";"";0,5;"";""']),
                            (FIXED_LAYOUT, ["012026    ", "02000150DUPONT  "])):
            path = Path(folder) / "layout.yaml"
            path.write_text(text, encoding="utf-8")
            out.append((load_layout(path), lines))
    return out


LAYOUTS = _layouts()
TOKEN = st.text('0123456789-+,./ AZaé;"\r', max_size=6)
EDIT = st.tuples(st.integers(0, 10_000), st.sampled_from(["field", "quoting", "insert", "cut"]),
                 st.integers(0, 10_000), TOKEN)


def _edited(line: str, edit: tuple[int, str, int, str], delimiter: str) -> str:
    _, how, at, token = edit
    if how in ("field", "quoting"):  # a value replaced, or quoted if it was not and not
        fields = line.split(delimiter)
        value = fields[at % len(fields)]
        fields[at % len(fields)] = token if how == "field" else value[1:-1] \
            if value[:1] == '"' else f'"{value}"'
        return delimiter.join(fields)
    at %= len(line) + 1
    return line[:at] + token + line[at:] if how == "insert" else line[:at] + line[at + 2:]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(LAYOUTS) - 1), st.lists(EDIT, max_size=6), st.integers(1, 6))
# WTAMC001AS: a number quoted (column 6, quoting never), a code not quoted (column 1)
@example(1, [(0, "quoting", 5, "")], 1)
@example(1, [(0, "quoting", 0, "")], 1)
def test_validate_file_is_the_general_paths(which, edits, count):
    layout, seeds = LAYOUTS[which]
    lines = [seeds[i % len(seeds)] for i in range(count)]
    for edit in edits:
        i = edit[0] % len(lines)
        lines[i] = _edited(lines[i], edit, layout.delimiter if layout.kind == "csv" else " ")
    content = "".join(line + layout.newline for line in lines).encode(layout.encoding
                                                                      or "utf-8")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "OUT.txt"
        path.write_bytes(content)
        fast = validate_file(path, layout)
        reader, lines, values = _general_paths()
        with reader, lines, values:
            general = validate_file(path, layout)
    assert fast == general
    if not edits:
        assert fast == []  # the seeds are right: the shortcuts are taken


CELL = st.one_of(st.none(), st.integers(-5, 5), st.text('ab;"\n\r,|', max_size=4))


@EXAMPLES
@given(st.lists(CELL, max_size=6), st.sampled_from(PAIRS[:3]),
       st.sampled_from(["always", "minimal", "never"]), st.sets(st.integers(1, 6)),
       st.booleans())
def test_csv_record_is_the_filter_quoting_each_value(cells, pair, quoting, unquoted, by_position):
    delimiter, quote = pair
    by_position = by_position and bool(cells)
    values = {i: c for i, c in enumerate(cells, start=1) if c is not None} if by_position \
        else cells
    size = len(cells) if by_position else None
    try:
        expected = _reference_record(values, delimiter, quoting, quote, size, unquoted)
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            csv_record(values, delimiter, quoting, quote, size, unquoted)
        assert str(raised.value) == str(exc)
    else:
        assert csv_record(values, delimiter, quoting, quote, size, unquoted) == expected
