"""Inputs a user can give pesgen (an export file, a mapping) that fuzzing found to
escape as a Python exception instead of an error of pesgen's hierarchy, each kept as a
regression; then bounded property tests over CSV files, JSON files and mappings: any
of them gives either a result or a ``PesgenError`` naming the place (never another
exception, never a file written)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pesgen.errors import ExitCode, InputDataError
from pesgen.export import export

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli

JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
RUN = date(2026, 11, 23)
_EXAMPLE_JSON = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
_EXAMPLE_JSON["invoices"] = _EXAMPLE_JSON["invoices"][:3]


def _mapping_with(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / source.name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


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
    mapping = _mapping_with(tmp_path, JSON_MAPPING, "encoding: utf-8", "encoding: utf-16")
    out = tmp_path / "out"
    r = _export(mapping, EXAMPLES / "school-export.json", out)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert (f"school-export.json:1: not valid utf-16: UTF-16 stream does not start with "
            f"BOM [mapping {mapping}:27: input.encoding] (rule input.encoding)") in r.output
    assert not out.exists()


@pytest.mark.parametrize("codec", ["idna", "punycode", "undefined"])
def test_a_codec_that_reads_no_file_is_refused_with_the_mapping(tmp_path, codec):
    """Python knows idna, punycode and undefined as text encodings, so a mapping's
    input.encoding naming one passed check-mapping, and the export escaped as a
    UnicodeError ('Unsupported error handling replace', 'undefined encoding') from the
    first look at the file: the mapping is refused at its input.encoding, before any
    input is read."""
    mapping = _mapping_with(tmp_path, JSON_MAPPING, "encoding: utf-8", f"encoding: {codec}")
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
    text = JSON_MAPPING.read_text(encoding="utf-8")
    start = text.index("    direct_debit: {expr:")
    mapping = tmp_path / "flag.yaml"
    mapping.write_text(text[:start] + "    direct_debit: payment.flag\n"
                       + text[text.index("\n", start) + 1:], encoding="utf-8")
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
    """The example mapping's payment.direct_debit looks the payment method up in a
    table (``{...}.get(invoice.payment.method, ...)``); a method exported as a list
    failed as "expression failed: unhashable type: 'list'", Python's words, naming
    neither the value nor where it is. The problem names what the expression reads
    that is a list or an object."""
    data = _one_invoice(tmp_path, ("payment", "method"), method)
    with pytest.raises(InputDataError) as caught:
        export(JSON_MAPPING, data, tmp_path / "out", RUN)
    [problem] = caught.value.problems
    assert problem.rule == "mapping.expr"
    assert problem.mapping == f"{JSON_MAPPING}:55: bindings.payment.direct_debit"
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
