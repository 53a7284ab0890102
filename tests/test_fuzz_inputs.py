"""Inputs a user can give pesgen (an export file, a mapping) that fuzzing found to
escape as a Python exception instead of an error of pesgen's hierarchy, to crash the
interpreter, or to be refused in words that quote billing data or name no value, each
kept as a regression; then bounded property tests over CSV files, JSON files and
mappings: any of them gives either a result or a ``PesgenError`` naming the place
(never another exception, never a file written)."""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pesgen import sources
from pesgen.build import format_fit
from pesgen.errors import ExitCode, InputDataError, MappingError, PesgenError
from pesgen.export import export
from pesgen.formats import mapping_format
from pesgen.mapping import load_mapping

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .mapping_support import mapping_copy

JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
RUN = date(2026, 11, 23)
_EXAMPLE_JSON = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
_EXAMPLE_JSON["invoices"] = _EXAMPLE_JSON["invoices"][:3]


def _export(mapping: Path, data: Path, out: Path) -> object:
    return run_cli("export", "--mapping", mapping, "--input", data, "--out", out,
                   "--date", RUN_DATE, "--db", out.parent / "state.sqlite3",
                   "--create-store")


# ---------------------------------------------------------------- regressions


def test_a_json_export_not_in_the_utf16_the_mapping_declares_is_refused(tmp_path):
    """A JSON file without the byte order mark UTF-16 needs (the example, in UTF-8)
    declared input.encoding: utf-16 escaped as 'UnicodeError: UTF-16 stream does not
    start with BOM' from the scan for escaped surrogates: refused as not valid utf-16,
    at the file's line 1 and the mapping's input.encoding, as the CSV reader does."""
    mapping, _ = mapping_copy(tmp_path, JSON_MAPPING, ("encoding: utf-8", "encoding: utf-16"))
    out = tmp_path / "out"
    r = _export(mapping, EXAMPLES / "school-export.json", out)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert (f"school-export.json:1: not valid utf-16: UTF-16 stream does not start with "
            "BOM; the whole file reads as UTF-8: input.encoding: utf-8? "
            f"[mapping {mapping}:27: input.encoding] (rule input.encoding)") in r.output
    assert not out.exists()


@pytest.mark.parametrize("codec", ["idna", "punycode", "undefined"])
def test_a_codec_that_reads_no_file_is_refused_with_the_mapping(tmp_path, codec):
    """Python knows idna, punycode and undefined as text encodings, so a mapping's
    input.encoding naming one passed check-mapping, and the export escaped as a
    UnicodeError ('Unsupported error handling replace', 'undefined encoding') from the
    first look at the file: the mapping is refused at its input.encoding, before any
    input is read."""
    mapping, _ = mapping_copy(tmp_path, JSON_MAPPING, ("encoding: utf-8", f"encoding: {codec}"))
    r = run_cli("check-mapping", mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert (f"'{codec}' is not the encoding of a file: Python's {codec} codec reads no "
            "file's bytes as text") in r.output
    assert f"[mapping {mapping}:27: input.encoding] (rule mapping.input)" in r.output
    out = tmp_path / "out"
    r = _export(mapping, EXAMPLES / "school-export.json", out)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert not out.exists()



def _one_invoice(tmp_path: Path, where: tuple[Any, ...], value: Any) -> Path:
    data = copy.deepcopy(_EXAMPLE_JSON)
    data["invoices"] = data["invoices"][:1]
    node = data["invoices"][0]
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(("where", "value", "field", "line", "rule", "record", "message"), [
    (("total",), {"value": "85.00", "payer": "Dupont"}, "invoice.total", 34, "input.amount",
     "", "invoice.total: an object is not an amount"),
    (("lines", 0, "amount"), ["Dupont", "85.00"], "line.amount", 68, "input.amount",
     ".lines[0]", "line.amount: a list is not an amount"),
    (("lines", 0, "quantity"), True, "line.quantity", 69, "input.amount", ".lines[0]",
     "line.quantity: a yes/no value is not an amount"),
    (("date",), {"day": "2026-11-20", "by": "Dupont"}, "invoice.date", 32, "input.date", "",
     "invoice.date: an object is not a date"),
    # read as the direct debit's other values, at its JSON path: it said "not a text"
    (("payment", "debit_date"), ["2026-12-05", "Dupont"], "payment.debit_date", 56,
     "input.type", ".payment.debit_date", "payment.debit_date is a list, not a date: a "
     "field of the title takes a string or a number"),
])
def test_an_amount_or_a_date_that_is_a_json_object_or_list_is_refused_unquoted(
        tmp_path, where, value, field, line, rule, record, message):
    """An amount or a date bound to a JSON object, list or true/false was refused as
    "{'value': '85.00', 'payer': 'Dupont'} is not an amount": the Python text of the
    whole value, billing data in a message and a log (input.amount and input.date quote
    only a short, mostly digit text, and describe any other). Said by its kind."""
    data = _one_invoice(tmp_path, where, value)
    with pytest.raises(InputDataError) as caught:
        export(JSON_MAPPING, data, tmp_path / "out", RUN)
    [problem] = caught.value.problems
    assert (problem.rule, problem.message) == (rule, message)
    assert problem.record == f"{data}:$.invoices[0]{record}"
    assert problem.mapping == f"{JSON_MAPPING}:{line}: bindings.{field}"
    assert "Dupont" not in caught.value.report()
    assert not (tmp_path / "out").exists()


def test_a_direct_debit_flag_that_is_a_json_object_is_refused_unquoted(tmp_path):
    """The yes/no value bound to a JSON object was quoted whole too (input.bool)."""
    mapping, _ = mapping_copy(tmp_path, JSON_MAPPING,
                              ("direct_debit: payment.method", "direct_debit: payment.flag"),
                              ("  payment_methods: {", "  # payment_methods: {"))
    data = _one_invoice(tmp_path, ("payment", "flag"), {"by": "Dupont"})
    with pytest.raises(InputDataError) as caught:
        export(mapping, data, tmp_path / "out", RUN)
    [problem] = caught.value.problems
    assert problem.rule == "input.bool"
    assert problem.message.startswith("payment.direct_debit: an object is not a yes/no value")
    assert "Dupont" not in caught.value.report()


@pytest.mark.parametrize(("method", "kind"), [(["direct_debit"], "a list"),
                                              ({"code": "direct_debit"}, "an object")])
def test_an_expression_failing_on_a_list_or_object_it_reads_names_that_value(
        tmp_path, method, kind):
    """A payment.direct_debit that looks the payment method up in a table written in
    the expression (``{...}.get(invoice.payment.method, ...)``, as the example mapping
    did): a method exported as a list failed as "expression failed: unhashable type:
    'list'", Python's words, naming neither the value nor where it is. The problem names
    what the expression reads that is a list or an object."""
    mapping, _ = mapping_copy(tmp_path, JSON_MAPPING, (
        "direct_debit: payment.method", "direct_debit: {expr: \"{'direct_debit': 'yes', "
        "'invoice': 'no'}.get(invoice.payment.method, invoice.payment.method)\"}"))
    data = _one_invoice(tmp_path, ("payment", "method"), method)
    with pytest.raises(InputDataError) as caught:
        export(mapping, data, tmp_path / "out", RUN)
    [problem] = caught.value.problems
    assert problem.rule == "mapping.expr"
    assert problem.mapping == f"{mapping}:55: bindings.payment.direct_debit"
    assert problem.message.startswith("payment.direct_debit: expression failed: ")
    assert problem.message.endswith(f" (invoice.payment.method is {kind})")



@pytest.mark.parametrize("text", [
    '{"invoices": [{"number": "A", "q": BIG, "r": tru}]}',
    '{"invoices": [{"number": "A", "lines": [{"q": BIG}]}, {"number": "B", "x": tru}]}',
])
def test_a_number_too_long_for_int_before_a_syntax_error_is_refused_not_a_crash(tmp_path,
                                                                                text):
    """ijson's C backend left the ValueError of int() on a 5 000-digit integer pending;
    with a syntax error further in the file ('tru'), the interpreter died of a
    segmentation fault (exit 139, no message). Such a file is read by ijson's Python
    backend, and refused at the invoice holding the number. In a child process: the
    old code kills the process it runs in."""
    data = tmp_path / "export.json"
    data.write_text(text.replace("BIG", "1" * 5000), encoding="utf-8")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "pesgen", "export", "--mapping", str(JSON_MAPPING), "--input",
         str(data), "--out", str(out), "--date", RUN_DATE, "--db",
         str(tmp_path / "state.sqlite3"), "--create-store"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == ExitCode.INPUT, (r.returncode, r.stderr[-2000:])
    assert ("export.json:$.invoices[0]: a number too long or too large to read (over 4 300 "
            "digits") in r.stderr
    assert "(rule input.json)" in r.stderr
    assert not out.exists()


# ---------------------------------------------------------------- properties
#
# Deterministic (derandomize, no example database) and bounded: each under ~20 s. For a
# long hunt, raise PESGEN_FUZZ_EXAMPLES (the count of the reader's; the export-level
# ones run a twelfth of it; the scratch fuzzers that found the regressions above ran
# some 15 000 exports, mappings and bundles).

_SCALE = int(os.environ.get("PESGEN_FUZZ_EXAMPLES", "800"))


def _bounded(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


# amounts, dates and codes as exports get them wrong: French and ISO numbers in odd
# forms, digits of other scripts, spaces of every width, impossible dates, quotes,
# delimiters and line ends inside a field, NUL, a byte order mark, lone surrogates
ODD = st.sampled_from([
    "1 234,50", "1.234,50", "-0,00", "-0", "+0", "1e3", "NaN", "Infinity", "-Infinity", "٣",
    "١٢٣٫٤٥", "１２３", "1\u00a0234,50", "1\u202f234,50", "1'234.50", "12,5O", "", " ", "0.005",
    "9" * 15, "9" * 14 + ".99", "1" * 5000, "-", ".", "1..2", "1,234,567.89", "(1)", "31/02/2026",
    "2026-13-01", "0001-01-01", "2026-02-29", "29/02/2024", "01/01/26", "2026-01-01T00:00",
    "٢٠٢٦-٠١-٠١", "1899-12-31", "2100-01-01", "\x00", '"', "'", "\n", "\r\n", "a,b", "a;b", "\t",
    "\ufeff", "\u2028", "\ud800", "𝟙𝟚𝟛", "²", "Ⅻ", "¼", "true", "oui", "null", "X" * 300,
    "fm-c1", " FM-C1", "rcur", "PERSON", "Mlle", "be", "XX", "GP", "45 200", "2A004", "٤٥٢٠٠",
    "FR76 3000 6000 0112 3456 7890 189", "AGRIFRPP", "{{ 1 }}", "%s", "\\u0041",
])
CELL = st.one_of(ODD, st.text(max_size=12), st.lists(ODD, min_size=2, max_size=3).map("".join))
_CSV_ROWS = (EXAMPLES / "school-export.csv").read_text(encoding="utf-8").splitlines(True)[:9]
_CSV_HEADER = next(csv.reader(_CSV_ROWS[:1]))


def _refusal_names_places(exc: PesgenError) -> None:
    """A refusal's problems are each at a place: the input record (file:row or JSON
    path), the mapping's file:line: key, or the invoice."""
    if isinstance(exc, InputDataError) and exc.problems:
        for problem in exc.problems:
            assert problem.record or problem.mapping or problem.invoice, str(problem)
    assert "Traceback" not in exc.report()


def _exported_or_refused(mapping: Path, data: Path, out: Path) -> str:
    try:
        export(mapping, data, out, RUN)
    except PesgenError as exc:
        assert not out.exists(), f"a refused export left {list(out.iterdir())}"
        _refusal_names_places(exc)
        return f"refused {exc.exit_code.name}"
    return "written"


@st.composite
def _mutated_csv(draw: st.DrawFn) -> bytes:
    """The example's header and first invoices, with a few edits: a cell set to an odd
    value (CSV-quoted or not), a character inserted, a line cut, repeated or dropped,
    a header name repeated or emptied, the whole re-encoded."""
    rows = list(_CSV_ROWS)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(rows) - 1))
        edit = draw(st.sampled_from(["cell", "cell", "char", "cut", "repeat", "drop", "header"]))
        if edit == "cell":
            try:
                cells = next(csv.reader([rows[i]])) if i else list(_CSV_HEADER)
            except (csv.Error, StopIteration):  # a row an earlier edit broke
                cells = rows[i].rstrip("\r\n").split(",")
            cells = cells or [""]  # a blank line
            value = draw(CELL)
            j = draw(st.integers(0, len(cells) - 1))
            cells[j] = value
            quote = csv.QUOTE_MINIMAL if draw(st.booleans()) else csv.QUOTE_NONE
            buf = io.StringIO()
            try:
                csv.writer(buf, lineterminator="\n", quoting=quote, escapechar=None).writerow(cells)
            except csv.Error:  # unquoted, a value that needs quotes: written raw
                buf = io.StringIO(",".join(cells) + "\n")
            rows[i] = buf.getvalue()
        elif edit == "char":
            at = draw(st.integers(0, len(rows[i])))
            rows[i] = rows[i][:at] + draw(st.sampled_from('"\x00,;\r\n\ufeff\t\\')) + rows[i][at:]
        elif edit == "cut":
            rows[i] = rows[i][:draw(st.integers(0, len(rows[i])))]
        elif edit == "repeat":
            rows.insert(i, rows[i])
        elif edit == "drop" and len(rows) > 1:
            del rows[i]
        elif edit == "header":
            names = list(_CSV_HEADER)
            names[draw(st.integers(0, len(names) - 1))] = draw(
                st.sampled_from(["", " ", names[0], names[-1], "\ufeff" + names[0], '"x']))
            rows[0] = ",".join(names) + "\n"
    text = "".join(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


@_bounded(_SCALE)
@given(data=_mutated_csv(), encoding=st.sampled_from(["utf-8", "cp1252"]),
       delimiter=st.sampled_from([",", "auto"]))
def test_any_csv_file_is_read_or_refused_at_its_rows(tmp_path_factory, data, encoding,
                                                     delimiter):
    """The CSV reader alone (fast): every invoice read, or an InputDataError whose
    problems each name the file (and its line, when there is one to name)."""
    path = tmp_path_factory.mktemp("csv") / "export.csv"
    path.write_bytes(data)
    spec = sources.InputSpec(format="csv", encoding=encoding, delimiter=delimiter,
                             group_by="invoice_number")
    try:
        invoices = list(sources.read_invoices(path, spec))
    except InputDataError as exc:
        assert exc.problems or str(path) in str(exc), exc.report()
        for problem in exc.problems:
            assert problem.record and problem.record.startswith(str(path)), str(problem)
        return
    for invoice in invoices:
        assert invoice.origin.startswith(f"{path}:")
        assert all(origin.startswith(f"{path}:") for origin in invoice.line_origins)


@_bounded(max(_SCALE // 12, 10))
@given(column=st.sampled_from(_CSV_HEADER), value=CELL, rows=st.sampled_from([1, 4]),
       mapping=st.sampled_from(["csv", "csv-fr"]))
def test_any_value_in_any_csv_column_exports_or_is_refused(csv_mappings, tmp_path_factory,
                                                          column, value, rows, mapping):
    """An export of the example's first invoices whose first invoice holds an odd value
    in one column (on its first line, or on its four): written, or refused with every
    problem at a place, and nothing written."""
    records = [next(csv.reader([row])) for row in _CSV_ROWS[1:]]
    j = _CSV_HEADER.index(column)
    for record in records[:rows]:
        record[j] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([_CSV_HEADER, *records])
    folder = tmp_path_factory.mktemp("csv-export")
    data = folder / "export.csv"
    data.write_bytes(buf.getvalue().encode("utf-8", "surrogatepass"))
    event(_exported_or_refused(csv_mappings[mapping], data, folder / "out"))




def _leaves(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*at, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*at, i))]
    return [at]


_JSON_LEAVES = _leaves(_EXAMPLE_JSON["invoices"][0])
# a value as JSON text: any JSON value, and what json.dumps does not write (NaN, a number
# past a float or a decimal, a lone surrogate escaped, nesting past the reader's bound, a
# repeated key)
_JSON_TEXT = st.one_of(
    ODD.map(lambda v: json.dumps(v, ensure_ascii=False)),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8)
                 | st.floats(allow_nan=False), lambda inner: st.one_of(
                     st.lists(inner, max_size=3),
                     st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                 max_leaves=6).map(json.dumps),
    st.sampled_from(["NaN", "-Infinity", "1e999999", "1" * 5000, "1E400", "-0",
                     "0." + "0" * 400 + "1", '"\\ud800"', '"\\udc00x"', '"\\u0000"',
                     "[" * 70 + "]" * 70, '{"a": 1, "a": 2}', "123456789012345678901234567890.5"]))


@_bounded(max(_SCALE // 12, 10))
@given(where=st.sampled_from(_JSON_LEAVES), text=_JSON_TEXT, drop=st.booleans())
def test_any_value_at_any_json_path_exports_or_is_refused(tmp_path_factory, where, text,
                                                          drop):
    """An export of the example's first invoices whose first invoice holds any JSON
    value (or none: the key dropped) where the example has a string or a number:
    written, or refused with every problem at a place, and nothing written."""
    invoices = copy.deepcopy(_EXAMPLE_JSON)
    node = invoices["invoices"][0]
    for key in where[:-1]:
        node = node[key]
    if drop and isinstance(node, dict):
        del node[where[-1]]
    else:
        node[where[-1]] = "@@VALUE@@"
    folder = tmp_path_factory.mktemp("json-export")
    data = folder / "export.json"
    data.write_bytes(json.dumps(invoices, ensure_ascii=False).replace('"@@VALUE@@"', text)
                     .encode("utf-8", "surrogatepass"))
    event(_exported_or_refused(JSON_MAPPING, data, folder / "out"))


@pytest.fixture(scope="module")
def csv_mappings(tmp_path_factory) -> dict[str, Path]:
    fr, _ = mapping_copy(tmp_path_factory.mktemp("mappings"), CSV_MAPPING,
                         ("numbers: auto", "numbers: fr"), ("dates: auto", "dates: fr"),
                         name="fr.yaml")
    return {"csv": CSV_MAPPING, "csv-fr": fr}


# YAML a mapping's author can write by mistake or on purpose: aliases multiplying
# (a bomb), Python tags, merge keys, non-string keys, deep nesting, YAML 1.1 line
# breaks, tabs, quotes left open
_YAML_SNIPPETS = st.sampled_from([
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
    "x: !!python/object/apply:os.system ['true']\n", "x: !!binary aGVsbG8=\n",
    "x: !include other.yaml\n", "<<: {pesgen_mapping: 1}\n", "? [a, b]\n: c\n", "1: x\n",
    "null: x\n", "? {a: 1}\n: c\n", "x: " + "[" * 300 + "]" * 300 + "\n",
    "x: " + "{a: " * 200 + "1" + "}" * 200 + "\n", "x: &r [*r]\n", "%YAML 1.2\n---\n",
    "---\nx: 1\n", "x: !!set {a, b}\n", "x: 2026-01-31 12:00\n", "x: .inf\n", "x: 0x1F\n",
    "\t x: 1\n", "x: \"\\ud800\"\n", "x: \"\\x00\"\n", "x: @foo\n", "x: 'open\n", "x: \u2028\n",
    "x: \x85\n", "\ufeffx: 1\n", "x: *nowhere\n", "- a\n- b\n", "", "~\n", "'just a text'\n",
])
_MAPPING_LINES = JSON_MAPPING.read_text(encoding="utf-8").splitlines(True)


def _loaded_or_refused_at_its_keys(path: Path) -> str:
    """Load the mapping at ``path`` and check its fit with its format: 'loaded' (or
    'misfit'), or 'refused' by a MappingError whose problems each name the mapping."""
    try:
        mapping = load_mapping(path)
        misfits = format_fit(mapping, mapping_format(mapping, None))
    except MappingError as exc:
        assert exc.problems or str(path) in str(exc), exc.report()
        for problem in exc.problems:
            assert problem.mapping and problem.mapping.startswith(str(path)), str(problem)
        return "refused"
    return "misfit" if misfits else "loaded"


@_bounded(max(_SCALE // 2, 20))
@given(at=st.integers(0, len(_MAPPING_LINES)), snippet=_YAML_SNIPPETS,
       indent=st.sampled_from(["", "  ", "    "]), cut=st.booleans())
def test_any_yaml_in_a_mapping_is_loaded_or_refused_at_its_line(tmp_path_factory, at, snippet,
                                                                indent, cut):
    """The example mapping with a YAML trap put in at any line (indented as a top-level,
    a section's or a binding's key; or the rest of the file cut there): loaded, or
    refused as a MappingError whose problems each name the mapping (and its line)."""
    lines = _MAPPING_LINES[:at] if cut else list(_MAPPING_LINES)
    lines[at:at] = [indent + line + "\n" for line in snippet.splitlines()]
    path = tmp_path_factory.mktemp("mapping") / "m.yaml"
    path.write_text("".join(lines), encoding="utf-8", errors="surrogatepass")
    event(_loaded_or_refused_at_its_keys(path))


def _tree_places(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    places = [at] if at else []
    if isinstance(node, dict):
        places += [p for k, v in node.items() for p in _tree_places(v, (*at, k))]
    elif isinstance(node, list):
        places += [p for i, v in enumerate(node) for p in _tree_places(v, (*at, i))]
    return places


_MAPPING_TREE = yaml.safe_load("".join(_MAPPING_LINES))
_MAPPING_PLACES = _tree_places(_MAPPING_TREE)
_YAML_VALUES = st.sampled_from([
    None, True, 0, -1, 10**40, "", "TODO", "01234", "x" * 300, [], {}, [1, 2], {"a": 1},
    {"const": "x"}, {"const": None}, {"const": [1]}, {"expr": "invoice.number"},
    {"expr": "1/0"}, {"expr": "{"}, {"expr": "invoice | attr('__class__')"},
    {"path": "x", "default": 3}, {"path": None}, "2026-01-31", "idna", "Europe/Nowhere",
])


@_bounded(max(_SCALE // 4, 20))
@given(edits=st.lists(st.tuples(st.sampled_from(_MAPPING_PLACES),
                                st.sampled_from(["drop", "set", "list", "dict"]), _YAML_VALUES),
                      min_size=1, max_size=3))
def test_a_mapping_with_a_key_dropped_or_of_another_type_is_refused_at_its_key(
        tmp_path_factory, edits):
    """The example mapping with keys dropped, set to values of another type, or put in
    a list or an object where they were not: loaded (and its format's fit checked), or
    refused as a MappingError whose problems each name the mapping's file."""
    tree = copy.deepcopy(_MAPPING_TREE)
    for place, edit, value in edits:
        try:
            parent = tree
            for key in place[:-1]:
                parent = parent[key]
            old = parent[place[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit took it away
        if edit == "drop":
            del parent[place[-1]]
        else:
            parent[place[-1]] = {"set": value, "list": [old], "dict": {"x": old}}[edit]
    path = tmp_path_factory.mktemp("mapping") / "m.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    event(_loaded_or_refused_at_its_keys(path))
