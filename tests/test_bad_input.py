"""Bad input, bad mappings, broken templates: each gets a clear error that names the
record (file:row or JSON path), the mapping file:line:key and the rule, carries the
right exception class / exit code, lists every problem found, and writes nothing.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import unicodedata
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import pytest

from pesgen import sources
from pesgen._jinja import template_environment
from pesgen.errors import (
    ExitCode,
    InputDataError,
    MappingError,
    OutputInvalidError,
    PesgenError,
    Problem,
    TemplateError,
    UsageError,
)
from pesgen.export import export

from .conftest import EXAMPLES, MAPPINGS, ROOT, run_cli
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
_EXAMPLE_JSON = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------- helpers


def _example() -> dict[str, Any]:
    return copy.deepcopy(_EXAMPLE_JSON)


def _index(data: dict[str, Any], number: str) -> int:
    numbers = [inv["number"] for inv in data["invoices"]]
    assert numbers.count(number) == 1, number
    return numbers.index(number)


def _write_json(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "school-export.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _csv_rows() -> list[list[str]]:
    text = (EXAMPLES / "school-export.csv").read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def _write_csv(tmp_path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path = tmp_path / "school-export.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _csv_dated(tmp_path: Path, written: str) -> Path:
    """The example CSV export with every invoice_date (2026-11-20) written ``written``."""
    rows = _csv_rows()
    at = rows[0].index("invoice_date")
    for row in rows[1:]:
        assert row[at] == "2026-11-20"
        row[at] = written
    return _write_csv(tmp_path, rows)


def _csv_line(path: Path, invoice: str) -> int:
    """Physical line (1-based) of the first row of ``invoice`` in a CSV file."""
    text = path.read_text(encoding="utf-8")
    return text[: text.index(f"\n{invoice},")].count("\n") + 2


def _mapping_line(path: Path, text: str) -> int:
    """1-based line of the only line of ``path`` that contains ``text``."""
    hits = [i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def _assert_nothing_written(out: Path) -> None:
    if out.exists():
        assert list(out.glob(".pesgen-*.part")) == []
        assert sorted(p.name for p in out.iterdir()) == []


def _refused(tmp_path: Path, mapping: Path, input_path: Path,
             error: type[PesgenError] = InputDataError, **kwargs: Any) -> PesgenError:
    out = tmp_path / "out"
    with pytest.raises(error) as info:
        export(mapping, input_path, out, RUN, **kwargs)
    exc = info.value
    assert type(exc) is error
    _assert_nothing_written(out)
    if error is InputDataError:
        # the run got past the folder set-up (the refusal is the input's), and removed
        # the folder it had made, nothing being written in it
        assert not out.exists()
        assert "nothing written" in str(exc)
    assert exc.problems, "a refusal always lists its problems"
    assert exc.report().endswith(f"{len(exc.problems)} problem(s); nothing was written.")
    return exc


def _only(exc: PesgenError, rule: str) -> Problem:
    found = [p for p in exc.problems if p.rule == rule]
    assert len(found) == 1, exc.report()
    return found[0]


def _where(mapping: Path, line_text: str, key: str) -> str:
    return f"{mapping}:{_mapping_line(mapping, line_text)}: {key}"


# ---------------------------------------------------------------- input records


def test_a_bordereau_total_past_base_montant_names_the_invoice_that_passes_it(tmp_path):
    """Each title fits Base_Montant, their sum does not: MtBordHt would be refused by the
    XSD on the header, naming no invoice; pesgen names the invoice that passes it."""
    data = _example()
    big = "600000000000.00"
    for number in ("FA-2026-00101", "FA-2026-00102"):
        invoice = data["invoices"][_index(data, number)]
        invoice["lines"] = invoice["lines"][:1]
        invoice["lines"][0].update(unit_price=big, amount=big)
        invoice["total"] = big
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    problem = _only(exc, "pes.bordereau-amount")
    assert problem.invoice == "FA-2026-00102"
    second = _index(data, "FA-2026-00102")
    assert problem.record == f"{tmp_path / 'school-export.json'}:$.invoices[{second}]"
    assert "over 999999999999.99" in problem.message
    # and the binding the amounts come from, as pes.amounts and pes.negative-total do
    assert problem.mapping == _where(JSON_MAPPING, "    amount: amount", "bindings.line.amount")
    assert exc.exit_code == ExitCode.INPUT
    # a title that opens a new bordereau (the last one is full) is not held to its total
    split, _ = mapping_copy(tmp_path, JSON_MAPPING, (
        "  asap_delay_days: 0\n", "  asap_delay_days: 0\n  max_pieces_per_bordereau: 1\n"),
        name="one-piece-per-bordereau.yaml")
    assert "max_pieces_per_bordereau: 1" in split.read_text(encoding="utf-8")
    result = export(split, tmp_path / "school-export.json", tmp_path / "split", RUN)
    assert len(result.files) == result.titles == 11
    assert max(f.total for f in result.files) == Decimal(big)


def test_invalid_iban_checksum(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00101")
    mandate = data["invoices"][i]["payment"]["mandate"]
    assert mandate["iban"] == "FR7630006000011234567890189"
    mandate["iban"] = "FR7630006000011234567890188"  # last digit off: checksum fails
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert exc.exit_code == ExitCode.INPUT == 4
    assert len(exc.problems) == 1
    p = _only(exc, "sepa.iban")
    assert p.record == f"{inp}:$.invoices[{i}]"
    assert p.invoice == "FA-2026-00101"
    assert p.mapping == _where(JSON_MAPPING, "iban: payment.mandate.iban",
                               "bindings.payment.iban")
    # pesgen's words, not python-stdnum's ("The number's checksum or check digit is
    # invalid."), and what to do
    assert p.message == ("IBAN is invalid: its check digits do not match the rest (a "
                         "character mistyped, missing or one too many?): correct it in the "
                         "school software (the debtor's RIB gives it)")
    text = str(p)
    assert text.startswith(f"{inp}:$.invoices[{i}] invoice FA-2026-00101: ")
    assert text.endswith("(rule sepa.iban)")
    assert f"[mapping {p.mapping}]" in text


def test_invalid_bic(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00101")
    mandate = data["invoices"][i]["payment"]["mandate"]
    mandate["bic"] = "AGRIFRPP8"  # 9 characters: neither 8 nor 11
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "sepa.bic")
    assert p.record == f"{inp}:$.invoices[{i}]" and p.invoice == "FA-2026-00101"
    assert p.mapping == _where(JSON_MAPPING, "bic: payment.mandate.bic", "bindings.payment.bic")
    assert p.message == ("BIC 'AGRIFRPP8' is invalid: it has 9 characters, a BIC 8 or 11: "
                         "correct it in the school software (the debtor's RIB gives it)")


def test_an_iban_as_printed_on_a_rib_is_read_compact_and_a_wrong_one_said_plainly(tmp_path):
    """An IBAN with spaces and in lower case (as a RIB prints it, as typed) is read
    compact, as mapping-reference.md now says; one of the wrong form, or with a bank key
    its country's check refuses, is said in pesgen's words, not python-stdnum's."""
    data = _example()
    i = _index(data, "FA-2026-00101")
    mandate = data["invoices"][i]["payment"]["mandate"]
    mandate["iban"] = "fr76 3000 6000 0112 3456 7890 189"
    inp = _write_json(tmp_path, data)
    result = export(JSON_MAPPING, inp, tmp_path / "out", RUN)
    assert b"FR7630006000011234567890189" in result.files[0].path.read_bytes()
    said = {}
    for iban in ("FR76 3000 6000 0112 3456 7890 189 0", "BE68539007547034"):
        mandate["iban"] = iban
        exc = _refused(tmp_path / iban[:2], JSON_MAPPING, _write_json(tmp_path, data))
        said[iban[:2]] = _only(exc, "sepa.iban").message
    assert said == {
        "FR": "IBAN is invalid: its length or characters are not those of an IBAN of FR (a "
              "character missing, one too many, or a letter where a digit goes?): correct it "
              "in the school software (the debtor's RIB gives it)",
        "BE": "IBAN is invalid: it fails the bank or account key of an IBAN of BE (a "
              "character mistyped?): correct it in the school software (the debtor's RIB "
              "gives it)"}


def test_duplicate_invoice_number_json_names_both_places(tmp_path):
    data = _example()
    first = _index(data, "FA-2026-00101")
    second = _index(data, "FA-2026-00104")
    data["invoices"][second]["number"] = "FA-2026-00101"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.duplicate-invoice")
    assert p.record == f"{inp}:$.invoices[{second}]"
    assert p.invoice == "FA-2026-00101"
    assert f"already appears at {inp}:$.invoices[{first}]" in p.message
    assert p.mapping == _where(JSON_MAPPING, "number: number", "bindings.invoice.number")


def test_two_invoices_with_one_debt_number_are_refused(tmp_path):
    """FA-2026-00101 and FB-2026-00101 both give NumDette 202600101: one payment
    reference for two titles."""
    data = _example()
    first = _index(data, "FA-2026-00101")
    second = _index(data, "FA-2026-00104")
    data["invoices"][second]["number"] = "FB-2026-00101"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "pes.num-dette-unique")
    assert p.record == f"{inp}:$.invoices[{second}]"
    assert p.invoice == "FB-2026-00101"
    assert (f"NumDette 202600101 is already the debt number of invoice FA-2026-00101 "
            f"({inp}:$.invoices[{first}])") in p.message
    assert p.mapping == _where(JSON_MAPPING, "debt_number:", "bindings.invoice.debt_number")


def test_a_csv_header_repeated_inside_the_file_is_refused_at_its_line(tmp_path):
    """Two exports joined into one file: the second header was read as an invoice named
    'invoice_number', with a dozen problems about its made-up values."""
    rows = _csv_rows()
    rows.insert(5, list(rows[0]))
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    assert [(p.rule, p.record) for p in exc.problems] == [("input.csv-row", f"{inp}:6")]
    assert exc.problems[0].message.startswith("the header line again")


def test_csv_rows_of_one_invoice_not_contiguous(tmp_path):
    rows = _csv_rows()
    header = rows[0]
    col = header.index("invoice_number")
    assert rows[1][col] == rows[2][col] == "FA-2026-00101"
    moved = rows.pop(2)  # FA-2026-00101's second line goes to the end of the file
    rows.append(moved)
    inp = _write_csv(tmp_path, rows)
    last_line = inp.read_text(encoding="utf-8").count("\n")
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.duplicate-invoice")
    assert p.record == f"{inp}:{last_line}"
    assert p.invoice == "FA-2026-00101"
    assert p.message == (f"invoice number FA-2026-00101 already appears at {inp}:2 (rows of "
                         "one invoice must be contiguous: sort the export by its column "
                         "'invoice_number', input.group_by)")
    assert p.mapping == _where(CSV_MAPPING, "number: invoice_number", "bindings.invoice.number")


@pytest.mark.parametrize(("order", "rule"), [
    ((2, 4, 5, 6, 1, 3), "pes.netting"),  # the piano line and the FM-C1 discount first
    ((4, 5, 6, 1, 2, 3), "pes.negative-total"),  # the discount alone first
])
def test_csv_rows_not_contiguous_are_refused_once_not_for_their_first_rows_total(
        tmp_path, order, rule):
    """An invoice's rows split by another's were refused as a duplicate, and its first
    rows, read alone, for their total too (a discount with no positive line of its
    imputation before it: pes.netting; alone: pes.negative-total), a consequence beside
    the cause: now the duplicate alone, saying it leaves that out. Another invoice's own
    problem is still said."""
    rows = _csv_rows()
    col = rows[0].index("invoice_number")
    assert [rows[i][col] for i in range(1, 7)] == ["FA-2026-00101"] * 4 + [
        "FA-2026-00102"] * 2
    assert rows[4][rows[0].index("amount")] == "-22.75"
    rows = rows[:1] + [rows[i] for i in order] + rows[7:]
    for row in rows:
        if row[col] == "FA-2026-00103":
            row[rows[0].index("postal_code")] = ""
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    assert [p.rule for p in exc.problems] == ["input.duplicate-invoice", "input.required"]
    p = _only(exc, "input.duplicate-invoice")
    # its rows after FA-2026-00102's two, the header on line 1
    assert p.record == f"{inp}:{order.index(5) + 4}"
    assert p.message == (f"invoice number FA-2026-00101 already appears at {inp}:2 (rows of "
                         "one invoice must be contiguous: sort the export by its column "
                         f"'invoice_number', input.group_by; {rule}, said of its rows above "
                         "alone, is left out: checked on all its rows once sorted)")


def test_missing_postal_code(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00104")
    del data["invoices"][i]["payer"]["address"]["postal_code"]
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert len(exc.problems) == 1
    p = _only(exc, "input.required")
    assert p.record == f"{inp}:$.invoices[{i}]"
    assert p.invoice == "FA-2026-00104"
    assert p.message == "address.postal_code is missing"
    assert p.mapping == _where(JSON_MAPPING, "postal_code: payer.address.postal_code",
                               "bindings.address.postal_code")


def test_missing_invoice_number(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00104")
    del data["invoices"][i]["number"]
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert len(exc.problems) == 1
    p = _only(exc, "input.required")
    assert p.record == f"{inp}:$.invoices[{i}]"
    assert p.invoice is None
    assert p.message == "invoice.number is missing"
    assert p.mapping == _where(JSON_MAPPING, "number: number", "bindings.invoice.number")


@pytest.mark.parametrize("number", ['=HYPERLINK("http://example.org/?x="&A2;"FA")',
                                    "+FA-2026-00104", "-FA-2026-00104", "@FA-2026-00104"])
def test_an_invoice_number_a_spreadsheet_would_run_as_a_formula_is_refused(tmp_path, number):
    """The payment references CSV beside the PES file carries the invoice number as is:
    '=HYPERLINK(...)' in it was a formula for the spreadsheet the school opens it in."""
    p = _number_refused(tmp_path, number)
    assert p.message == (f"invoice number starts with {number[0]!r}, which a spreadsheet "
                         "opening the payment references CSV would take for a formula")


def _number_refused(tmp_path: Path, number: str) -> Problem:
    """The example with FA-2026-00104's number made ``number``: the one problem of its
    export, input.invoice-number at that invoice and at the binding."""
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["number"] = number
    inp = _write_json(tmp_path, data)
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.invoice-number")
    assert p.record == f"{inp}:$.invoices[{i}]"
    assert p.mapping == _where(JSON_MAPPING, "number: number", "bindings.invoice.number")
    return p


@pytest.mark.parametrize("number, code", [("FA-2026-\n00104", "000A"),
                                          ("FA-2026\t00104", "0009"),
                                          ("FA-2026\r00104", "000D"),
                                          ("FA-2026-\x8500104", "0085"),
                                          ("FA-2026-\u202800104", "2028")])
def test_an_invoice_number_holding_a_control_character_is_refused(tmp_path, number, code):
    """A line break or a tab inside an invoice number went into the state store and the
    payment references CSV as it was (the ORMC does not write the number, so no charset
    check saw it), and split every message naming the invoice over two lines. Refused
    now, by every format; the refusal names the invoice on one line (<U+000A>)."""
    p = _number_refused(tmp_path, number)
    assert p.message == (f"invoice number {number!r} holds the control character "
                         f"U+{code} (a line break, a tab…): correct it in the school software")
    assert "\n" not in str(p) and "\t" not in str(p) and f"<U+{code}>" in str(p)


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u200e", "\u200f", "\u2060", "\ufeff",
                                  "\u00ad", "\u2066", "\U000e0001"])
@pytest.mark.parametrize("mapping", [JSON_MAPPING, MAPPINGS / "villeneuve-sur-loing-titres.yaml"],
                         ids=["ormc", "titres"])
def test_an_invoice_number_holding_a_format_character_is_refused(tmp_path, char, mapping):
    """A Unicode format character (category Cf: a bidirectional control, a zero-width
    space or joiner, a byte order mark, a soft hyphen) shows as nothing: FA-2026-00104
    with a right-to-left override before 00104 reads FA-2026-40100 in a listing, and one
    with a zero-width space is not found by the number typed. The PES formats, which do
    not write the number as it is, took it into the state store and the payment
    references CSV (a soft hyphen, or any of them with an object not naming the number),
    or refused it for the object that names it (text.charset, not the number's
    problem). Refused now as the number's, shown visibly (<U+202E>) and named."""
    mapping, _ = mapping_copy(tmp_path / "mapping", mapping, (
        "{expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number\"}", "{const: CONSERVATOIRE}"))
    data = _example()
    i = _index(data, "FA-2026-00104")
    number = data["invoices"][i]["number"] = f"FA-2026-{char}00104"
    inp = _write_json(tmp_path, data)
    [p] = _refused(tmp_path, mapping, inp).problems
    assert (p.rule, p.record, p.invoice) == ("input.invoice-number", f"{inp}:$.invoices[{i}]",
                                             number)
    assert p.mapping == _where(mapping, "number: number", "bindings.invoice.number")
    code = f"U+{ord(char):04X}"
    shows = ("an invisible bidirectional control: a listing shows the number without it, "
             "or its characters reordered (another number), and a search by what it shows "
             "misses it" if char in "\u202e\u200e\u200f\u2066" else
             "an invisible format character: a listing shows the number without it (a "
             "search by what it shows misses it)")
    # a soft hyphen, which policies.transliterate drops from a text: said to stay
    why = ("policies.transliterate drops a soft hyphen from a text, never from an "
           "identifier" if char == "\u00ad" else
           "an identifier is never transliterated nor replaced")
    assert p.message == (
        f"invoice number 'FA-2026-<{code}>00104' holds {code} {unicodedata.name(char)}, "
        f"{shows}; no policy removes it ({why}): correct it in the school software")
    assert char not in str(p)


def test_an_invoice_number_with_a_no_break_space_is_not_a_control_character(tmp_path):
    """A no-break space is no control character: an ORMC export takes the number as
    before (the invoice key compares it with a space)."""
    data = _example()
    data["invoices"][_index(data, "FA-2026-00104")]["number"] = "FA-2026\u00a000104"
    result = export(JSON_MAPPING, _write_json(tmp_path, data), tmp_path / "out", RUN)
    assert len(result.files) == 1


def test_lines_that_are_not_a_list_say_what_they_are(tmp_path):
    """'"lines": "oops"' was "the invoice has no lines": it has some, of the wrong kind.
    A line that is null is said so (it was 'not a number')."""
    data = _example()
    data["invoices"][0]["lines"] = "oops"
    data["invoices"][1]["lines"] = {"a": 1}
    data["invoices"][2]["lines"] = [3]
    data["invoices"][3]["lines"] = [None, ["FM-C1"], True, "FM-C1"]
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    said = sorted((p.record, p.message) for p in exc.problems if p.rule == "input.lines")
    must = "(bindings.lines must give a non-empty list)"
    assert said == [
        (f"{inp}:$.invoices[0]", f"the invoice has lines that are a text, not a list {must}"),
        (f"{inp}:$.invoices[1]", f"the invoice has lines that are an object, not a list {must}"),
        (f"{inp}:$.invoices[2].lines[0]", "a line must be an object, not a number"),
        (f"{inp}:$.invoices[3].lines[0]", "a line must be an object, not null"),
        (f"{inp}:$.invoices[3].lines[1]", "a line must be an object, not a list"),
        (f"{inp}:$.invoices[3].lines[2]", "a line must be an object, not a yes/no value"),
        (f"{inp}:$.invoices[3].lines[3]", "a line must be an object, not a text")]
    # a line that is no object is that one problem: its bindings are not read in it
    assert [p.rule for p in exc.problems] == ["input.lines"] * 7
    # each names the binding that gives the lines
    assert {p.mapping for p in exc.problems} == {
        _where(JSON_MAPPING, "  lines: lines", "bindings.lines")}


def test_a_declared_total_other_than_its_lines_is_refused_naming_the_invoice(tmp_path):
    """input.total: FA-2026-00102's lines add up to 187.50; the export says 190.00.
    `pesgen export` refuses the run (exit 4), naming the invoice, its record and the
    total's binding, and writes nothing: neither figure is taken silently."""
    data = _example()
    i = _index(data, "FA-2026-00102")
    assert data["invoices"][i]["total"] == "187.50"
    data["invoices"][i]["total"] = "190.00"
    inp = _write_json(tmp_path, data)
    out = tmp_path / "out"
    r = run_cli("export", "-m", JSON_MAPPING, "-i", inp, "-o", out, "--date", "2026-11-23")
    assert r.exit_code == ExitCode.INPUT == 4, r.output
    where = _where(JSON_MAPPING, "total: total", "bindings.invoice.total")
    assert r.stderr.splitlines() == [
        "error: 1 problem(s) in the input; nothing written",
        f"  - {inp}:$.invoices[{i}] invoice FA-2026-00102: the lines add up to 187.50, the "
        f"invoice total is 190.00 [mapping {where}] (rule input.total)",
        "1 problem(s); nothing was written."]
    assert not out.exists()
    # the same total as its lines passes
    data["invoices"][i]["total"] = "187.5"
    r = run_cli("export", "-m", JSON_MAPPING, "-i", _write_json(tmp_path, data), "-o", out,
                "--date", "2026-11-23", "-q")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(("value", "kind"), [(["x"], "a list"), ("Dupont", "a text")])
def test_a_payer_that_is_no_object_is_one_problem_at_its_path(tmp_path, value, kind):
    """'"payer": ["x"]' gave five problems (payer.kind, debtor.name, address.street...
    is missing), none naming the payer: one now, at its JSON path, naming the bindings
    that read through it (an expression's `invoice.payer.last_name` among them)."""
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["payer"] = value
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    [p] = exc.problems
    assert p.rule == "input.type"
    assert p.record == f"{inp}:$.invoices[{i}].payer"
    assert p.invoice == "FA-2026-00104"
    assert p.mapping == _where(JSON_MAPPING, "ref: payer.ref", "bindings.payer.ref")
    kind_line = _mapping_line(JSON_MAPPING, "kind: payer.kind")
    name_line = _mapping_line(JSON_MAPPING, "name: {expr:")
    assert p.message.startswith(
        f"{kind} where an object is expected: 12 bindings read through it: "
        f"bindings.payer.ref (line {kind_line - 1}) reads payer.ref, bindings.payer.kind "
        f"(line {kind_line}) reads payer.kind, ")
    assert f"bindings.payer.name (line {name_line}) reads invoice.payer.last_name" in p.message
    # the first eight named, then how many more
    assert p.message.count(") reads ") == 8 and p.message.endswith(", and 4 more")


@pytest.mark.parametrize(("dropped", "last", "more"), [
    # 8 bindings: all named, the last by line the country
    (("email", "national_id", "first_name", "civility"), "country", ""),
    # 9: eight named (by line: to the city), the ninth counted
    (("email", "national_id", "first_name"), "city", ", and 1 more"),
])
def test_a_payer_that_is_no_object_names_eight_bindings_then_counts(tmp_path, dropped, last,
                                                                    more):
    """The bindings reading through a value of the wrong kind are named up to eight, in
    the mapping's order; a ninth and more are counted ('and 1 more'), never 'and 0
    more'."""
    reads = {"email": "payer.email", "national_id": "payer.siret",
             "first_name": "payer.first_name", "civility": "payer.title"}
    m, _ = mapping_copy(tmp_path, JSON_MAPPING,
                        *((f"    {key}: {reads[key]}\n", "") for key in dropped))
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["payer"] = ["x"]
    inp = _write_json(tmp_path, data)
    # (the other invoices' persons have no first name now: refused for it)
    p = _only(_refused(tmp_path, m, inp), "input.type")
    assert p.record == f"{inp}:$.invoices[{i}].payer"
    assert p.message.startswith(f"a list where an object is expected: {12 - len(dropped)} "
                                "bindings read through it: bindings.payer.ref (line ")
    assert p.message.count(") reads ") == 8
    assert p.message.endswith(f"bindings.address.{last} (line {_mapping_line(m, f'    {last}:')})"
                              f" reads payer.address.{last}{more}")


def test_an_expression_reading_a_key_of_a_value_it_made_names_the_expression(tmp_path):
    """A key read of a value the expression made itself (no path of the input's holds
    it): one problem at the invoice, naming the expression, what it read and of what."""
    m, (line,) = mapping_copy(tmp_path, JSON_MAPPING, (
        "    email: payer.email", "    email: {expr: \"(invoice.payer.email ~ '').domain\"}"))
    inp = _write_json(tmp_path, _example())
    exc = _refused(tmp_path, m, inp)
    said = [p for p in exc.problems if p.invoice == "FA-2026-00101"]
    assert [(p.rule, p.record, p.mapping, p.message) for p in said] == [(
        "input.type", f"{inp}:$.invoices[0]",
        _where(m, "    email: {expr:", "bindings.payer.email"),
        f"a text where an object is expected: the expression of bindings.payer.email (line "
        f"{line}) reads 'domain' of a value made in `(invoice.payer.email ~ '').domain`")]


def test_an_expression_s_value_of_the_wrong_kind_is_found_by_the_read_that_met_it(tmp_path):
    """Of an expression's reads, the one that met the text is named (invoice.payment.method,
    at $.invoices[i].payment), not an earlier read of a key of the same name
    (invoice.method, which the invoice does not have)."""
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["payment"] = "invoice"
    inp = _write_json(tmp_path, data)
    m, (line,) = mapping_copy(tmp_path, JSON_MAPPING, (
        "direct_debit: payment.method",
        'direct_debit: {expr: "invoice.method or invoice.payment.method"}'))
    [p] = _refused(tmp_path, m, inp).problems
    assert (p.rule, p.record, p.message) == (
        "input.type", f"{inp}:$.invoices[{i}].payment",
        f"a text where an object is expected: bindings.payment.direct_debit (line {line}) "
        "reads invoice.payment.method")


def test_a_line_value_that_is_no_object_is_one_problem_at_its_path(tmp_path):
    """A line's activity written as its code: one problem at lines[0].activity, for the
    path binding (activity.code) and the expression (line.activity.label) reading it."""
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["lines"][0]["activity"] = "THEA-ADO"
    data["invoices"][i]["payer"]["address"] = {"street": ["12 rue"]}  # a leaf: as before
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    [p] = [q for q in exc.problems if q.record == f"{inp}:$.invoices[{i}].lines[0].activity"]
    assert p.rule == "input.type"
    activity = _mapping_line(JSON_MAPPING, "activity: activity.code")
    label = _mapping_line(JSON_MAPPING, 'label: {expr: "line.activity')
    assert p.message == (
        "a text where an object is expected: 2 bindings read through it: "
        f"bindings.line.activity (line {activity}) reads activity.code, "
        f"bindings.line.label (line {label}) reads line.activity.label")
    # the street is a list (a value the title takes, not one read through): its own
    # problem, and the city and postal code simply missing, as before
    assert sorted((q.rule, q.record) for q in exc.problems if q is not p) == [
        ("input.required", f"{inp}:$.invoices[{i}]"), ("input.required", f"{inp}:$.invoices[{i}]"),
        ("input.type", f"{inp}:$.invoices[{i}].payer.address.street")]


def test_an_expression_reading_a_key_of_a_text_is_one_problem_at_its_path(tmp_path):
    """'"payment": "invoice"': direct_debit's expression reads invoice.payment.method,
    which was undefined, so None, so 'not a direct debit' without a word."""
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["payment"] = "invoice"
    inp = _write_json(tmp_path, data)
    m, (line,) = mapping_copy(tmp_path, JSON_MAPPING, (
        "direct_debit: payment.method", 'direct_debit: {expr: "invoice.payment.method"}'))
    [p] = _refused(tmp_path, m, inp).problems
    assert (p.rule, p.record, p.message) == (
        "input.type", f"{inp}:$.invoices[{i}].payment",
        f"a text where an object is expected: bindings.payment.direct_debit (line {line}) "
        "reads invoice.payment.method")
    assert p.mapping == _where(m, "direct_debit: {expr:", "bindings.payment.direct_debit")


# a method the example mappings' codes.payment_methods does not list: the JSON true, 1
# and 'oui' were read as a direct debit when the table was an expression's .get(m, m)
_UNKNOWN_METHODS = [
    (True, "the payment method is a yes/no value, not a text of codes.payment_methods"),
    (1, "the payment method is a number, not a text of codes.payment_methods"),
    (["direct_debit"], "the payment method is a list, not a text of codes.payment_methods"),
    ({"code": "direct_debit"},
     "the payment method is an object, not a text of codes.payment_methods"),
    ("oui", "unknown payment method 'oui' (add it to codes.payment_methods: true for a "
     "direct debit, false otherwise)"),
    ("DIRECT_DEBIT", "unknown payment method 'DIRECT_DEBIT' (add it to "
     "codes.payment_methods: true for a direct debit, false otherwise); "
     "codes.payment_methods has 'direct_debit': a code is compared as written, case "
     "included (correct it in the school software, or add this spelling too)"),
]


def _payment_method_refused(tmp_path: Path, mapping: Path, inp: Path) -> Problem:
    """The one problem of an export of ``inp`` whose FA-2026-00101 has a payment method
    ``mapping``'s codes.payment_methods does not list."""
    exc = _refused(tmp_path, mapping, inp)
    assert exc.exit_code == ExitCode.INPUT
    [p] = exc.problems
    assert (p.rule, p.invoice) == ("codes.payment-method", "FA-2026-00101")
    return p


@pytest.mark.parametrize("method, says", _UNKNOWN_METHODS)
def test_a_json_payment_method_not_in_the_table_is_refused(tmp_path, method, says):
    """FA-2026-00101 is paid by direct debit, its mandate given: a method the table does
    not list is refused, naming the invoice, the binding or the table, and the rule; the
    JSON true, 1 and 'oui' were exported as a direct debit."""
    data = _example()
    i = _index(data, "FA-2026-00101")
    data["invoices"][i]["payment"]["method"] = method
    inp = _write_json(tmp_path, data)
    p = _payment_method_refused(tmp_path, JSON_MAPPING, inp)
    assert (p.record, p.message) == (f"{inp}:$.invoices[{i}]", f"payment.direct_debit: {says}")
    assert p.mapping == (_where(JSON_MAPPING, "direct_debit: payment.method",
                                "bindings.payment.direct_debit")
                         if "not a text" in says else
                         _where(JSON_MAPPING, "  payment_methods: {", "codes.payment_methods"))


@pytest.mark.parametrize("method", ["true", "1", "oui", "DIRECT_DEBIT"])
def test_a_csv_payment_method_not_in_the_table_is_refused(tmp_path, method):
    rows = _csv_rows()
    header = rows[0]
    for row in rows[1:]:
        if row[header.index("invoice_number")] == "FA-2026-00101":
            row[header.index("payment_method")] = method
    inp = _write_csv(tmp_path, rows)
    p = _payment_method_refused(tmp_path, CSV_MAPPING, inp)
    cased = ("; codes.payment_methods has 'direct_debit': a code is compared as written, "
             "case included (correct it in the school software, or add this spelling "
             "too)") if method == "DIRECT_DEBIT" else ""
    assert (p.record, p.message) == (
        f"{inp}:{_csv_line(inp, 'FA-2026-00101')}",
        f"payment.direct_debit: unknown payment method '{method}' (add it to "
        f"codes.payment_methods: true for a direct debit, false otherwise){cased}")
    assert p.mapping == _where(CSV_MAPPING, "  payment_methods: {", "codes.payment_methods")


@pytest.mark.parametrize("field, value, rule, said", [
    ("activity", "fm-c1", "codes.activity",
     "unknown activity code 'fm-c1' (add it to codes.activities); codes.activities has "
     "'FM-C1'"),
    ("kind", "PERSON", "codes.payer-kind",
     "unknown payer kind 'PERSON' (add it to codes.payer_kinds); codes.payer_kinds has "
     "'person'"),
    ("sequence", "rcur", "codes.sepa-sequence",
     "unknown SEPA sequence 'rcur' (add it to codes.sepa_sequences, with its SequencePres: "
     "01 OOFF, 02 FRST, 03 RCUR, 04 FNAL); codes.sepa_sequences has 'RCUR'"),
    ("civility", "mme", "codes.civility",
     "civility 'mme' is not in codes.civility (add it to codes.civility: 'mme': the "
     "civility to send, as the table's other entries); codes.civility has 'Mme'"),
])
def test_a_code_its_table_has_in_another_case_is_refused_saying_so(tmp_path, field, value,
                                                                   rule, said):
    """A code is looked up as written: 'fm-c1' for the activity FM-C1, 'PERSON' for the
    payer kind person were refused as unknown, the table's 'add it' advice alone, as
    though nothing were near. Still refused (a table may hold two keys differing by
    case alone, 'M.' and 'm.', two civilities: no case is guessed), the refusal now
    names the key of the table the code differs from by case alone."""
    data = _example()
    inv = data["invoices"][_index(data, "FA-2026-00101")]
    {"activity": lambda: inv["lines"][0]["activity"].update(code=value),
     "kind": lambda: inv["payer"].update(kind=value),
     "sequence": lambda: inv["payment"]["mandate"].update(sequence=value),
     "civility": lambda: inv["payer"].update(title=value)}[field]()
    [p] = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data)).problems
    assert (p.rule, p.invoice) == (rule, "FA-2026-00101")
    assert p.message == said + (": a code is compared as written, case included (correct "
                                "it in the school software, or add this spelling too)")


def test_a_missing_or_null_object_is_still_missing_fields(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["payer"]["address"] = None
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert sorted(p.message for p in exc.problems) == [
        "address.city is missing", "address.postal_code is missing",
        "address.street is missing"]


def test_missing_line_amount(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00104")
    del data["invoices"][i]["lines"][0]["amount"]
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert len(exc.problems) == 1
    p = _only(exc, "input.required")
    assert p.record == f"{inp}:$.invoices[{i}].lines[0]"
    assert p.invoice == "FA-2026-00104"
    assert p.message == "line.amount is missing"
    assert p.mapping == _where(JSON_MAPPING, "amount: amount", "bindings.line.amount")


def test_missing_postal_code_csv_names_the_row(tmp_path):
    rows = _csv_rows()
    header = rows[0]
    hits = [r for r in rows if r[header.index("invoice_number")] == "FA-2026-00104"]
    assert len(hits) == 1
    hits[0][header.index("postal_code")] = ""
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.required")
    assert p.record == f"{inp}:{_csv_line(inp, 'FA-2026-00104')}"
    assert p.invoice == "FA-2026-00104"
    assert p.message == "address.postal_code is missing"
    assert p.mapping == _where(CSV_MAPPING, "postal_code: postal_code",
                               "bindings.address.postal_code")


def test_missing_name_of_an_expression_names_the_columns_it_reads(tmp_path):
    """debtor.name bound by an expression over two columns: 'debtor.name is missing'
    alone did not say which of the export's columns to fill; the refusal names them and
    what the record holds there."""
    rows = _csv_rows()
    header = rows[0]
    hits = [r for r in rows if r[header.index("invoice_number")] == "FA-2026-00104"]
    for column in ("payer_last_name", "payer_name"):
        hits[0][header.index(column)] = "  "
    inp = _write_csv(tmp_path, rows)
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.required")
    assert p.record == f"{inp}:{_csv_line(inp, 'FA-2026-00104')}"
    assert p.message == ("debtor.name is missing (its expression reads payer_last_name, "
                         "payer_name: both empty in this record)")
    assert p.mapping == _where(CSV_MAPPING, 'name: {expr: "invoice.payer_last_name or',
                               "bindings.payer.name")


def test_missing_name_of_an_expression_says_which_keys_are_absent(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00104")
    payer = data["invoices"][i]["payer"]
    del payer["last_name"]
    payer["name"] = None
    inp = _write_json(tmp_path, data)
    p = _only(_refused(tmp_path, JSON_MAPPING, inp), "input.required")
    assert p.record == f"{inp}:$.invoices[{i}]"
    assert p.message == ("debtor.name is missing (its expression reads "
                         "invoice.payer.last_name, invoice.payer.name: in this record "
                         "invoice.payer.name is empty, invoice.payer.last_name is absent)")


def test_missing_line_activity_of_an_expression_names_the_line_keys(tmp_path):
    """A line binding's expression: what the line holds (and the invoice, read beside)."""
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["lines"][0]["activity"]["code"] = ""
    m, _ = mapping_copy(tmp_path / "m", JSON_MAPPING, (
        "activity: activity.code",
        "activity: {expr: \"line.activity.code or invoice.activity\"}"))
    inp = _write_json(tmp_path, data)
    p = _only(_refused(tmp_path, m, inp), "input.required")
    assert p.record == f"{inp}:$.invoices[{i}].lines[0]"
    assert p.message == ("line.activity is missing (its expression reads "
                         "line.activity.code, invoice.activity: in this record "
                         "line.activity.code is empty, invoice.activity is absent)")


def test_missing_postal_code_of_an_expression_says_what_it_made_nothing_of(tmp_path):
    """The key the expression reads is there, and the expression made nothing of it (a
    postal code with no digit, through `digits`): said so, the key named."""
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["payer"]["address"]["postal_code"] = "CEDEX"
    m, _ = mapping_copy(tmp_path / "m", JSON_MAPPING, (
        "postal_code: payer.address.postal_code",
        "postal_code: {expr: \"invoice.payer.address.postal_code | digits\"}"))
    p = _only(_refused(tmp_path, m, _write_json(tmp_path, data)), "input.required")
    assert p.message == ("address.postal_code is missing (its expression reads "
                         "invoice.payer.address.postal_code: given in this record, and the "
                         "expression made nothing of it)")


def test_unknown_activity_code_names_the_code_table(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00103")
    data["invoices"][i]["lines"][1]["activity"]["code"] = "BASSON"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert len(exc.problems) == 1
    p = _only(exc, "codes.activity")
    assert p.record == f"{inp}:$.invoices[{i}].lines[1]"
    assert p.invoice == "FA-2026-00103"
    assert "'BASSON'" in p.message and "codes.activities" in p.message
    assert p.mapping == _where(JSON_MAPPING, "  activities:", "codes.activities")


@pytest.mark.parametrize("code, said", [
    ("FM-C3", "unknown activity code 'FM-C3' (add it to codes.activities); codes.activities "
              "has 'FM-C1', 'FM-C2', close to it: if it is one of them mistyped, correct it in "
              "the school software"),
    ("INST-PIAN0", "unknown activity code 'INST-PIAN0' (add it to codes.activities); "
                   "codes.activities has 'INST-PIANO', close to it: if it is one of them "
                   "mistyped, correct it in the school software"),
    ("BASSON", "unknown activity code 'BASSON' (add it to codes.activities)"),
])
def test_an_unknown_activity_code_names_the_known_codes_close_to_it(tmp_path, code, said):
    """'unknown activity code 'FM-C3' (add it to codes.activities)' sent the technician
    to the mapping for what is as often a code mistyped in the school's data: the codes
    of codes.activities close to it are named, to correct it there if it is one of them;
    a code close to none is refused as before."""
    data = _example()
    i = _index(data, "FA-2026-00103")
    data["invoices"][i]["lines"][1]["activity"]["code"] = code
    exc = _refused(tmp_path, JSON_MAPPING, _write_json(tmp_path, data))
    assert _only(exc, "codes.activity").message == said


@pytest.mark.parametrize("value, says", [
    ("31/02/2026", "is not a valid calendar date"),
    ("2026-13-01", "is not a valid calendar date"),
    ("hier", "is not a date"),
])
def test_malformed_debit_date(tmp_path, value, says):
    data = _example()
    i = _index(data, "FA-2026-00101")
    assert data["invoices"][i]["payment"]["method"] == "direct_debit"
    data["invoices"][i]["payment"]["debit_date"] = value
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert len(exc.problems) == 1
    p = _only(exc, "input.date")
    assert p.record == f"{inp}:$.invoices[{i}]"
    assert p.invoice == "FA-2026-00101"
    shown = f"'{value}'" if value != "hier" else "a text of 4 characters (letters)"
    assert p.message.startswith(f"payment.debit_date: {shown} {says}")
    assert p.mapping == _where(JSON_MAPPING, "debit_date: payment.debit_date",
                               "bindings.payment.debit_date")


def test_a_date_with_a_time_says_the_expression_that_binds_its_date(tmp_path):
    """Databases export a date as a date and time ('2026-11-20T00:00:00',
    '2026-12-05 08:30:00'): refused (pesgen does not drop a time on its own), saying the
    expression that binds the date alone, from the binding's own path; the mapping
    edited as it says exports."""
    data = _example()
    i, j = _index(data, "FA-2026-00101"), _index(data, "FA-2026-00102")
    data["invoices"][i]["date"] = "2026-11-20T00:00:00"
    data["invoices"][j]["date"] = "20/11/2026 00:00"
    data["invoices"][i]["payment"]["debit_date"] = "2026-12-05 08:30:00"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    said = sorted((p.invoice, p.message.split(": ", 1)[0], p.message.rsplit("; ", 1)[-1])
                  for p in exc.problems if p.rule == "input.date")
    assert said == [
        ("FA-2026-00101", "invoice.date", "it is a date followed by a time of day: bind the "
         'date alone, e.g. {expr: "invoice.date[:10]"}'),
        ("FA-2026-00101", "payment.debit_date", "it is a date followed by a time of day: "
         'bind the date alone, e.g. {expr: "invoice.payment.debit_date[:10]"}'),
        ("FA-2026-00102", "invoice.date", "it is a date followed by a time of day: bind the "
         'date alone, e.g. {expr: "invoice.date[:10]"}')] and len(exc.problems) == 3
    m, _ = mapping_copy(tmp_path / "m", JSON_MAPPING,
                        ("    date: date\n", '    date: {expr: "invoice.date[:10]"}\n'),
                        ("debit_date: payment.debit_date",
                         'debit_date: {expr: "invoice.payment.debit_date[:10]"}'))
    result = export(m, inp, tmp_path / "out", RUN)
    assert result.files[0].titles == 11


@pytest.mark.parametrize("column, expr", [
    ("invoice_date", "invoice.invoice_date[:10]"),
    ("Date facture", "invoice['Date facture'][:10]"),  # not a name: a key
    ("facture.date", "invoice['facture.date'][:10]"),  # a CSV column: one key, dots or not
    ("if", "invoice['if'][:10]"),  # a keyword of the expressions, no name after a '.'
])
def test_a_csv_date_with_a_time_says_the_expression_of_its_column(tmp_path, column, expr):
    rows = _csv_rows()
    header = rows[0]
    at = header.index("invoice_date")
    header[at] = column
    for row in rows[1:]:
        row[at] = f"{row[at]} 00:00:00"
    inp = _write_csv(tmp_path, rows)
    m, _ = mapping_copy(tmp_path / "m", CSV_MAPPING,
                        ("    date: invoice_date\n", f'    date: "{column}"\n'))
    exc = _refused(tmp_path, m, inp)
    assert {p.message.rsplit("; ", 1)[-1] for p in exc.problems} == {
        f'it is a date followed by a time of day: bind the date alone, e.g. {{expr: "{expr}"}}'}
    fixed, _ = mapping_copy(tmp_path / "fixed", CSV_MAPPING,
                            ("    date: invoice_date\n", f'    date: {{expr: "{expr}"}}\n'))
    assert export(fixed, inp, tmp_path / "out", RUN).files[0].titles == 11


@pytest.mark.parametrize("written, date", [
    ("20/11/2026 08:15", "[:10]"), ("1/2/2026 08:15", ".split(' ')[0]"),
    ("1/12/2026T08:15", ".split('T')[0]")])
def test_a_short_date_with_a_time_says_what_comes_before_the_time(tmp_path, written, date):
    """'1/2/2026 08:15' was told {expr: "invoice.invoice_date[:10]"}, which reads
    '1/2/2026 0' (the time's first digit), refused again: a date of fewer than 10
    characters is told what comes before the time, which reads any date of the export;
    the mapping edited so exports."""
    inp = _csv_dated(tmp_path, written)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    expr = f"invoice.invoice_date{date}"
    assert {p.message for p in exc.problems} == {
        f"invoice.date: '{written}' is not a date (YYYY-MM-DD or DD/MM/YYYY); it is a date "
        f'followed by a time of day: bind the date alone, e.g. {{expr: "{expr}"}}'}
    fixed, _ = mapping_copy(tmp_path / "fixed", CSV_MAPPING,
                            ("    date: invoice_date\n", f'    date: {{expr: "{expr}"}}\n'))
    assert export(fixed, inp, tmp_path / "out", RUN).files[0].titles == 11


@pytest.mark.parametrize("style, written, syntax, reads", [
    ("iso", "20/11/2026 08:15", "DD/MM/YYYY", "fr"),
    ("fr", "2026-11-20 08:15", "YYYY-MM-DD", "iso")])
def test_a_date_and_time_the_style_does_not_read_says_the_style_too(
        tmp_path, style, written, syntax, reads):
    """With input.dates iso, '20/11/2026 08:15' was told [:10], which gives '20/11/2026',
    which iso refuses again: the date alone is said with its syntax, which the style does
    not read, and the style that reads it (or auto) with where the mapping sets it; the
    mapping edited so exports."""
    inp = _csv_dated(tmp_path, written)
    m, _ = mapping_copy(tmp_path / "m", CSV_MAPPING,
                        ("  dates: auto\n", f"  dates: {style}\n"))
    exc = _refused(tmp_path, m, inp)
    expected = {"iso": "YYYY-MM-DD", "fr": "DD/MM/YYYY"}[style]
    # the export's other dates are YYYY-MM-DD: fr refuses them too (auto reads both)
    assert {(p.message, p.mapping) for p in exc.problems
            if p.message.startswith("invoice.date")} == {(
        f"invoice.date: '{written}' is not a date ({expected}); it is a date followed by a "
        f"time of day, {syntax}, which input.dates {style} does not read: bind the date "
        'alone, e.g. {expr: "invoice.invoice_date[:10]"}, and set input.dates to '
        f"{reads} (or auto, which reads both) at "
        f"{_where(m, f'  dates: {style}', 'input.dates')}",
        _where(m, "    date: invoice_date", "bindings.invoice.date"))}
    fixed, _ = mapping_copy(tmp_path / "fixed", CSV_MAPPING, (
        "    date: invoice_date\n", '    date: {expr: "invoice.invoice_date[:10]"}\n'))
    assert export(fixed, inp, tmp_path / "out", RUN).files[0].titles == 11


def test_the_time_hint_of_an_expression_s_date_names_no_path(tmp_path):
    m, _ = mapping_copy(tmp_path / "m", JSON_MAPPING,
                        ("    date: date\n", '    date: {expr: "invoice.date ~ \' 10:00\'"}\n'))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json")
    assert {p.message.rsplit("; ", 1)[-1] for p in exc.problems} == {
        "it is a date followed by a time of day: bind the date alone, e.g. an expression "
        "taking its first 10 characters ([:10])"}


def test_the_separator_and_time_hint_of_an_expression_s_date_says_both_steps(tmp_path):
    """An expression's date written with other separators and a time ('2026.11.20
    10:00') is told the expression's two steps, as a path binding's is told both in its
    expression: its first 10 characters, then the replace() of its separators."""
    m, _ = mapping_copy(tmp_path / "m", JSON_MAPPING, (
        "    date: date\n",
        '    date: {expr: "invoice.date | replace(\'-\', \'.\') ~ \' 10:00\'"}\n'))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json")
    assert {p.message.rsplit(": ", 1)[-1] for p in exc.problems} == {
        "bind the date alone with '-', e.g. an expression taking its first 10 characters "
        "([:10]) and ending with | replace('.', '-')"}


@pytest.mark.parametrize("born, refused", [("2026-11-24", True), ("2062-03-12", True),
                                           ("2026-11-23", False), ("1984-03-12", False)])
def test_a_birth_date_after_the_role_s_date_is_refused(tmp_path, born, refused):
    """A birth date after the rôle's date (DteBordEm, the run date) was written as
    DteNaissance as given: a typo (2062 for 1962) the trésorerie finds a person by. Refused
    now (input.birth-date), naming the binding; on the rôle's date or before it passes."""
    mapping, (line,) = mapping_copy(tmp_path / "m", JSON_MAPPING, (
        "    email: payer.email", "    email: payer.email\n    birth_date: payer.birth_date"))
    data = _example()
    i = _index(data, "FA-2026-00101")
    data["invoices"][i]["payer"]["birth_date"] = born
    inp = _write_json(tmp_path, data)
    if not refused:
        [written] = export(mapping, inp, tmp_path / "out", RUN).files
        assert f'<DteNaissance V="{born}"/>' in written.path.read_text(encoding="iso-8859-1")
        return
    [p] = _refused(tmp_path, mapping, inp).problems
    assert (p.rule, p.record, p.invoice) == ("input.birth-date", f"{inp}:$.invoices[{i}]",
                                             "FA-2026-00101")
    assert p.mapping == f"{mapping}:{line}: bindings.payer.birth_date"
    assert p.message == (f"payer.birth_date {born} is after the rôle's date (DteBordEm "
                         "2026-11-23): no debtor is born after the title is issued; correct "
                         "it in the school software")


def test_a_birth_date_of_a_debtor_that_is_no_person_is_not_written_nor_checked(tmp_path):
    """A company (CatTiers other than 01) has no DteNaissance (the DT rejects one): its
    birth date, even a later one, is neither written nor refused."""
    mapping, _ = mapping_copy(tmp_path / "m", JSON_MAPPING, (
        "    email: payer.email", "    email: payer.email\n    birth_date: payer.birth_date"))
    data = _example()
    company = next(inv for inv in data["invoices"] if inv["payer"]["kind"] != "person")
    company["payer"]["birth_date"] = "2062-03-12"
    [written] = export(mapping, _write_json(tmp_path, data), tmp_path / "out", RUN).files
    assert "2062-03-12" not in written.path.read_text(encoding="iso-8859-1")


def test_a_civility_given_to_a_debtor_that_is_no_person_is_refused(tmp_path):
    """A company's or an association's title (CatTiers 50) carried the civility the
    export gave it ('M.' sent as Civilite M): a civility is a person's, the DT's list
    is of persons' civilities. Refused now (pes.civility) naming the binding; the
    organisation's title passes without one, as before."""
    data = _example()
    i = _index(data, "FA-2026-00103")
    assert data["invoices"][i]["payer"]["kind"] == "organization"
    data["invoices"][i]["payer"]["title"] = "M."
    inp = _write_json(tmp_path, data)
    [p] = _refused(tmp_path, JSON_MAPPING, inp).problems
    assert (p.rule, p.record, p.invoice) == ("pes.civility", f"{inp}:$.invoices[{i}]",
                                             "FA-2026-00103")
    assert p.mapping == _where(JSON_MAPPING, "civility: payer.title", "bindings.payer.civility")
    assert p.message == (
        "civility 'M.' given to a debtor that is no person (payer kind 'organization', "
        "CatTiers 50): a civility is a person's; the export should leave it empty for this "
        "kind, or the mapping bind the civility by an expression giving none for it")


def test_malformed_mandate_signature_date(tmp_path):
    data = _example()
    i = _index(data, "FA-2026-00107")
    data["invoices"][i]["payment"]["mandate"]["signed_on"] = "2026-02-30"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.date")
    assert p.record == f"{inp}:$.invoices[{i}]"
    assert "payment.mandate_signed_on: '2026-02-30'" in p.message
    assert p.mapping == _where(JSON_MAPPING, "mandate_signed_on:",
                               "bindings.payment.mandate_signed_on")


@pytest.mark.parametrize("value, rule, says", [
    ("12,3,4", "input.amount", "'12,3,4' is not an amount (input.numbers auto: decimal "
     "separator '.' or ','; a thousands separator, a space, or the other of '.' and ',', "
     "only between groups of 3 digits)"),
    ("abc", "input.amount", "a text of 3 characters (letters) is not an amount"),
    ("12,5O", "input.amount", "'12,5O' is not an amount (input.numbers auto: decimal "
     "separator '.' or ','; a thousands separator, a space, or the other of '.' and ',', "
     "only between groups of 3 digits)"),
    ("1234.567", "pes.amount-decimals", "1234.567 has more than 2 decimals"),
    ("1.500", "input.amount", "'1.500' is ambiguous: a decimal separator or a thousands "
     "separator? (set input.numbers to iso or fr)"),
])
def test_malformed_amount(tmp_path, value, rule, says):
    data = _example()
    i = _index(data, "FA-2026-00104")
    data["invoices"][i]["lines"][0]["amount"] = value
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert len(exc.problems) == 1
    p = _only(exc, rule)
    assert p.record == f"{inp}:$.invoices[{i}].lines[0]"
    assert p.invoice == "FA-2026-00104"
    assert p.message == f"line.amount: {says}"
    assert p.mapping == _where(JSON_MAPPING, "amount: amount", "bindings.line.amount")


@pytest.mark.parametrize("value, cents", [
    ("85.00000000000001", "85.00"), ("142.49999999999997", "142.50"),
    ("-22.749999999999996", "-22.75"), ('"85.00000000000001"', "85.00"),
])
def test_an_amount_a_hair_from_a_cent_is_refused_naming_its_likely_cause(tmp_path, value,
                                                                          cents):
    """A JSON number as a binary floating-point sum leaves it (0.1 + 0.2): still refused
    (pesgen rounds nothing), saying what it most likely is."""
    data = _example()
    i = _index(data, "FA-2026-00101")
    data["invoices"][i]["lines"][0]["amount"] = "@@"
    inp = tmp_path / "school-export.json"
    inp.write_text(json.dumps(data, ensure_ascii=False).replace('"@@"', value),
                   encoding="utf-8")
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "pes.amount-decimals")
    assert p.message == (f"line.amount: {value.strip(chr(34))} has more than 2 decimals (a "
                         f"binary floating-point artefact of {cents}? the school software "
                         "should write amounts with 2 decimals; pesgen does not round them)")


@pytest.mark.parametrize("binding, old, new", [
    ("line.amount", "amount: amount", "amount: mandate_iban"),
    ("invoice.date", "date: invoice_date", "date: payer_last_name"),
])
def test_a_binding_on_the_wrong_column_quotes_none_of_its_values(tmp_path, binding, old, new):
    """An amount or a date bound to the IBAN or the name column: the refusal says what
    the value is like (its length, its kinds of characters), never the IBAN or the name
    (it quoted them, on every invoice); a short amount or date with a typo ('12,5O',
    '31/02/2026') is still quoted."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, (old, new))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    report = exc.report()
    assert "FR76" not in report and "Dupont" not in report and "DUPONT" not in report
    said = [p.message for p in exc.problems if p.message.startswith(f"{binding}: ")]
    assert said, report
    if binding == "line.amount":
        assert f"{binding}: a text of 27 characters (letters, digits) is not an amount" in said
    else:
        assert f"{binding}: a text of 14 characters (letters, '-') is not a date " \
            "(YYYY-MM-DD or DD/MM/YYYY)" in said


def test_an_amount_with_its_currency_sign_says_the_expression_that_binds_it(tmp_path):
    """'85,00 €' as a spreadsheet writes it: refused, naming the expression that drops the
    sign from the binding's own path; the mapping edited as it says exports."""
    data = _example()
    i = _index(data, "FA-2026-00101")
    data["invoices"][i]["lines"][0]["amount"] = "85,00 €"
    data["invoices"][i]["lines"][0]["unit_price"] = "85,00 €"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    assert sorted(p.message for p in exc.problems) == [
        f"line.{key}: '85,00 €' is not an amount: it holds the currency sign '€'; bind the "
        f"amount without it, e.g. {{expr: \"line.{key} | replace('€', '')\"}}"
        for key in ("amount", "unit_price")]
    m, _ = mapping_copy(tmp_path / "m", JSON_MAPPING,
                        ("    amount: amount\n",
                         "    amount: {expr: \"line.amount | replace('€', '')\"}\n"),
                        ("    unit_price: unit_price\n",
                         "    unit_price: {expr: \"line.unit_price | replace('€', '')\"}\n"))
    result = export(m, inp, tmp_path / "out", RUN)
    assert result.files[0].titles == 11 and result.files[0].total == Decimal("2527.25")


def test_malformed_amount_csv_names_the_row(tmp_path):
    rows = _csv_rows()
    header = rows[0]
    hits = [r for r in rows if r[header.index("invoice_number")] == "FA-2026-00104"]
    hits[0][header.index("amount")] = "abc"
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.amount")
    assert p.record == f"{inp}:{_csv_line(inp, 'FA-2026-00104')}"
    assert p.message == "line.amount: a text of 3 characters (letters) is not an amount"


def test_several_bad_records_are_all_listed(tmp_path):
    data = _example()
    a = _index(data, "FA-2026-00102")
    b = _index(data, "FA-2026-00111")
    c = _index(data, "FA-2026-00112")
    data["invoices"][a]["lines"][0]["activity"]["code"] = "XYZ"
    data["invoices"][b]["payer"]["address"]["postal_code"] = ""
    # two problems in one record, after the others: the run does not stop at the first
    data["invoices"][c]["payment"]["mandate"]["iban"] = "FR00"
    data["invoices"][c]["payment"]["debit_date"] = "hier"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    got = sorted((p.record, p.rule) for p in exc.problems)
    assert got == sorted([
        (f"{inp}:$.invoices[{a}].lines[0]", "codes.activity"),
        (f"{inp}:$.invoices[{b}]", "input.required"),
        (f"{inp}:$.invoices[{c}]", "input.date"),
        (f"{inp}:$.invoices[{c}]", "sepa.iban"),
    ])
    assert str(exc).startswith("4 problem(s) in the input")
    report = exc.report()
    for p in exc.problems:
        assert f"  - {p}" in report


def test_every_record_with_a_problem_is_listed_in_csv_too(tmp_path):
    rows = _csv_rows()
    header = rows[0]
    num, act = header.index("invoice_number"), header.index("activity_code")
    for r in rows[1:]:
        if r[num] in ("FA-2026-00103", "FA-2026-00113"):
            r[act] = "NOPE"
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    invoices = sorted({p.invoice for p in exc.problems})
    assert invoices == ["FA-2026-00103", "FA-2026-00113"]
    assert {p.rule for p in exc.problems} == {"codes.activity"}
    assert len(exc.problems) == 4  # two lines each


# ---------------------------------------------------------------- mappings


@pytest.mark.parametrize("old, new, key, hint", [
    ("    name: {expr", "    nmae: {expr", "bindings.payer.nmae", "name"),
    ("  zero_total: leave_out", "  zero_totl: leave_out", "policies.zero_totl", "zero_total"),
])
def test_mapping_key_typo_says_did_you_mean(tmp_path, old, new, key, hint):
    m, (line,) = mapping_copy(tmp_path, JSON_MAPPING, (old, new))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", MappingError)
    assert exc.exit_code == ExitCode.MAPPING == 3
    unknown = [p for p in exc.problems if "unknown key" in p.message]
    assert len(unknown) == 1, exc.report()
    p = unknown[0]
    assert p.rule == "mapping.schema"
    assert p.mapping == f"{m}:{line}: {key}"
    assert f"did you mean '{hint}'?" in p.message
    assert f"[mapping {m}:{line}: {key}]" in exc.report()


def test_mapping_typo_of_a_required_binding_also_says_it_is_missing(tmp_path):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("    name: {expr", "    nmae: {expr"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", MappingError)
    required = [p for p in exc.problems if p.message == "'name' is required"]
    assert len(required) == 1
    assert required[0].mapping == f"{m}:{_mapping_line(m, '  payer:')}: bindings.payer"


def test_duplicate_yaml_key_reported_with_both_lines(tmp_path):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, (
        "  asap_delay_days: 0\n", "  asap_delay_days: 0\n  asap_delay_days: 3\n"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", MappingError)
    first = _mapping_line(m, "asap_delay_days: 0")
    second = _mapping_line(m, "asap_delay_days: 3")
    assert second == first + 1
    p = _only(exc, "mapping.duplicate-key")
    assert p.mapping == f"{m}:{second}: output.asap_delay_days"
    assert f"first at line {first}" in p.message


@pytest.mark.parametrize("old, new, key", [
    ('cod_col: "123"', "cod_col: 123", "collectivity.cod_col"),
    ('cod_bud: "00"', "cod_bud: 10", "collectivity.cod_bud"),
])
def test_unquoted_numeric_code_must_be_a_string(tmp_path, old, new, key):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, (old, new))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", MappingError)
    assert len(exc.problems) == 1, exc.report()
    p = exc.problems[0]
    assert p.rule == "mapping.schema"
    assert p.mapping == f"{m}:{_mapping_line(m, new)}: {key}"
    assert "must be a string" in p.message and "quote it" in p.message


def test_unquoted_code_with_leading_zero_stays_the_string_written(tmp_path):
    # YAML 1.1 would read 00 as the integer 0; pesgen's loader keeps the text.
    from pesgen.mapping import load_mapping

    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ('cod_bud: "00"', "cod_bud: 00"))
    assert load_mapping(m).collectivity.cod_bud == "00"


# ---------------------------------------------------------------- templates


def _broken_bundle(tmp_path: Path, old: str, new: str) -> tuple[Path, Path, Path]:
    """A copy of pes-ormc named broken-fmt with one template edit; returns
    (formats dir, mapping using it, template file)."""
    fmts = tmp_path / "fmts"
    bundle = fmts / "broken-fmt"
    shutil.copytree(ROOT / "templates" / "pes-ormc", bundle)
    fmt_yaml = bundle / "format.yaml"
    text = fmt_yaml.read_text(encoding="utf-8")
    assert text.count("name: pes-ormc") == 1
    fmt_yaml.write_text(text.replace("name: pes-ormc", "name: broken-fmt"), encoding="utf-8")
    template = bundle / "pes-aller.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    template.write_text(text.replace(old, new), encoding="utf-8")
    mapping, _ = mapping_copy(tmp_path, JSON_MAPPING, ("format: pes-ormc", "format: broken-fmt"))
    return fmts, mapping, template


def _bundle_named(tmp_path: Path, prefix: str) -> tuple[Path, Path, str]:
    """broken-fmt (a copy of pes-ormc) whose file name starts with ``prefix``; returns
    (formats dir, mapping using it, format.yaml:line: files[0].name)."""
    fmts, mapping, template = _broken_bundle(tmp_path, '<TypBord V="06"/>',
                                             '<TypBord V="06"/>')
    fmt_yaml = template.parent / "format.yaml"
    text = fmt_yaml.read_text(encoding="utf-8")
    assert text.count('name: "PESORMC_') == 1
    fmt_yaml.write_text(text.replace('name: "PESORMC_', f'name: "{prefix}PESORMC_'),
                        encoding="utf-8")
    line = _mapping_line(fmt_yaml, f'name: "{prefix}PESORMC_')
    return fmts, mapping, f"{fmt_yaml}:{line}: files[0].name"


@pytest.mark.parametrize("prefix, says", [
    ("sub/", "is not a plain file name: it holds '/'; a plain file name is the name of a "
             "file in the output folder: not empty, no '/' or '\\' (no folder), not starting "
             "with '.'"),
    ("../", "is not a plain file name: it holds '/'; a plain file name is"),
    (".", "is not a plain file name: it starts with '.'; a plain file name is"),
    # PESORMC_21450999400015_2026_0000001.xml is 39 bytes: 217 more make 256
    ("X" * 217, "is 256 bytes long: file systems take at most 255"),
    # the same in UTF-8 bytes, not characters: 108 'é' are 216 bytes
    ("é" * 108 + "X", "is 256 bytes long: file systems take at most 255"),
    # the xml's name fits (254 bytes); its references CSV's, stem + .references.csv, not
    ("X" * 215, "payment references CSV name 'XXXX"),
])
def test_a_file_name_the_system_cannot_take_is_the_format_s_error(tmp_path, prefix, says):
    """A file name too long for the file system was an OSError naming the output
    folder's path (exit 2, no format.yaml line); now a template error naming format.yaml's
    files[0].name, as a name that is not a plain file name is (which said what a plain
    name is not, under rule template: rule format.file-name, format.yaml's line)."""
    fmts, m, where = _bundle_named(tmp_path, prefix)
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    assert exc.exit_code == ExitCode.TEMPLATE
    p = _only(exc, "format.file-name")
    assert p.mapping == where
    assert says in p.message
    assert str(exc) == f"broken-fmt: {p.message} ({where})"


def test_a_file_name_rendered_empty_is_said_to_be_empty(tmp_path):
    """A files[i].name rendering no text at all (a value the run leaves empty) is
    refused saying that it is empty, at format.yaml's line (rule format.file-name)."""
    fmts, m, where = _bundle_named(tmp_path, "")
    fmt_yaml = Path(where.split(":", 1)[0])
    text = fmt_yaml.read_text(encoding="utf-8")
    line = text.splitlines()[int(where.split(":")[1]) - 1]
    fmt_yaml.write_text(text.replace(line, line.split("name:")[0] + "name: \"{{ '' }}\""),
                        encoding="utf-8")
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    p = _only(exc, "format.file-name")
    assert p.mapping == where
    assert p.message == ("file name '' is not a plain file name: it is empty; a plain file "
                         "name is the name of a file in the output folder: not empty, no '/' "
                         "or '\\' (no folder), not starting with '.' (no '..', no hidden "
                         "file), no control character"), p.message


@pytest.mark.parametrize("complement, rule, advice", [
    ("Bat 2", "layout.pattern", "correct whichever of them causes it"),
    ("B" * 45, "layout.length", "shorten one of them"),
], ids=["pattern", "length"])
def test_a_joined_value_s_refusal_advises_by_its_cause(tmp_path, complement, rule, advice):
    """A value joining several bound fields (e.magnus' Designation1: the name and its
    complement) refused by its layout lists the bindings, with advice: 'shorten one of
    them', which fitted a length alone, was given for a pattern the value fails too
    (here a Designation1 taking no digit: a shorter field still holds its digit)."""
    fmts = tmp_path / "fmts"
    bundle = fmts / "pattern-fmt"
    shutil.copytree(ROOT / "templates" / "bl-emagnus", bundle)
    for name, old, new in (
            ("format.yaml", "name: bl-emagnus", "name: pattern-fmt"),
            ("wtamc001.layout.yaml", "{name: Designation1, type: text, length: 50, ",
             '{name: Designation1, type: text, length: 50, pattern: "[^0-9]*", ')):
        text = (bundle / name).read_text(encoding="utf-8")
        assert text.count(old) == 1, old
        (bundle / name).write_text(text.replace(old, new), encoding="utf-8")
    mapping, (_, line) = mapping_copy(
        tmp_path, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
        ("format: bl-emagnus", "format: pattern-fmt"),
        ("    first_name: payer.first_name",
         "    first_name: payer.first_name\n    complement_name: payer.complement"))
    name = _mapping_line(mapping, "name: {expr:")
    data = _example()
    data["invoices"][0]["payer"]["complement"] = complement
    exc = _refused(tmp_path, mapping, _write_json(tmp_path, data), OutputInvalidError,
                   formats_dirs=[fmts])
    assert len(exc.problems) == 3  # one per imputation line of WTAMC001
    for p in exc.problems:
        assert p.rule == rule and "column Designation1 (#10): " in p.message
        assert (f"(the value joins 2 bound fields, {mapping}:{name}: bindings.payer.name; "
                f"{mapping}:{line}: bindings.payer.complement_name: {advice}) (rendered "
                "from ") in p.message, p.message


def test_a_file_name_of_255_bytes_is_the_system_s_bound():
    """The bound is the system's, in bytes: 255 pass, 256 are the format's error (a PES
    file's NomFic is shorter still: the XSD refuses it, another rule)."""
    from pesgen.formats import find_format
    from pesgen.render import renderers

    renderer = renderers(find_format("pes-ormc"))[0]
    renderer.check_name_length("X" * 253 + "é", "file name")  # 255 bytes
    with pytest.raises(TemplateError, match=r"file name 'X{40}…' is 256 bytes long"):
        renderer.check_name_length("X" * 254 + "é", "file name")


def test_template_syntax_error_names_file_and_line(tmp_path):
    fmts, m, template = _broken_bundle(tmp_path, '<TypBord V="06"/>',
                                       '<TypBord V="06"/>{% if %}')
    line = _mapping_line(template, "{% if %}")
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    assert exc.exit_code == ExitCode.TEMPLATE == 5
    p = _only(exc, "template.syntax")
    assert p.mapping == f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}"
    assert f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}: syntax error" in str(exc)


def test_template_undefined_variable_in_head_names_file_and_line(tmp_path):
    fmts, m, template = _broken_bundle(tmp_path, '<TypBord V="06"/>',
                                       '<TypBord V="{{ doc.nope }}"/>')
    line = _mapping_line(template, "doc.nope")
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    p = _only(exc, "template")
    assert p.mapping == f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}"
    assert "UndefinedError" in p.message and "'nope'" in p.message
    assert str(exc).startswith(f"template {fmts}/broken-fmt/pes-aller.xml.j2:{line}: ")
    assert str(exc).endswith("(head)")


def test_a_template_writing_none_is_refused_naming_its_line_and_the_invoice(tmp_path):
    """An optional value output without a guard: Jinja would write the word None into
    the file (here an attribute of free text, which an XSD may well accept); the export
    is refused, naming the template line, the invoice and what to do."""
    fmts, m, template = _broken_bundle(tmp_path, '<Cle2 V="{{ t.cle2 }}"/>',
                                       '<Cle2 V="{{ t.cle2 }}"/><!-- {{ t.joint_debtor }} -->')
    line = _mapping_line(template, "t.joint_debtor")
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    assert exc.exit_code == ExitCode.TEMPLATE
    p = exc.problems[0]
    assert p.mapping == f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}"
    assert "writes None" in p.message and "default('', true)" in p.message
    assert p.invoice == "FA-2026-00101" and p.record.endswith("$.invoices[0]")


@pytest.mark.parametrize("written", ["{{ 'TIERS ' ~ t.joint_debtor }}",
                                     "{{ t.joint_debtor | string | upper }}",
                                     "{{ '%s' % t.joint_debtor }}"])
def test_a_template_making_text_of_none_is_refused_as_writing_it(tmp_path, written):
    """The same refusal when a route turns None into text before it is output ('~',
    a filter, '%'): Jinja would write 'TIERS None', 'NONE', 'None'."""
    fmts, m, template = _broken_bundle(tmp_path, '<Cle2 V="{{ t.cle2 }}"/>',
                                       f'<Cle2 V="{{{{ t.cle2 }}}}"/>\n<!-- {written} -->')
    line = _mapping_line(template, written)
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    assert exc.exit_code == ExitCode.TEMPLATE
    p = exc.problems[0]
    assert p.mapping == f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}"
    assert "writes None" in p.message and "default('', true)" in p.message
    assert p.invoice == "FA-2026-00101" and p.record.endswith("$.invoices[0]")


def test_a_mapping_expression_writing_none_into_a_field_names_the_binding(tmp_path):
    """A code table's .get() of a method it lacks gives None, which '~' would write
    into the title's object ('CONSERVATOIRE None FA-…'): a mapping.expr problem naming
    the binding and the record."""
    expr = ("'CONSERVATOIRE ' ~ {'direct_debit': 'PRELEVEMENT', 'invoice': 'FACTURE'}"
            ".get(invoice.payment.method) ~ ' ' ~ invoice.number")
    shipped = "'CONSERVATOIRE FACTURE ' ~ invoice.number"
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, (f'object: {{expr: "{shipped}"}}',
                                                 f'object: {{expr: "{expr}"}}'))
    online = [i for i, inv in enumerate(_example()["invoices"])
              if inv["payment"]["method"] == "online"]
    assert online
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", InputDataError)
    found = [p for p in exc.problems if p.rule == "mapping.expr"]
    assert [p.record.rsplit(":", 1)[1] for p in found] == [f"$.invoices[{i}]" for i in online]
    p = found[0]
    assert p.mapping == _where(m, f'object: {{expr: "{expr}"}}', "bindings.invoice.object")
    assert p.message.startswith("invoice.object: expression failed: '~' writes None: ")


def test_a_flat_file_template_writing_none_is_refused(tmp_path):
    """The same for a template that is not XML-escaped (CSV, fixed width): Jinja's
    str(None) is refused too, in the template and in one it imports; other values are
    written as str() writes them."""
    (tmp_path / "cells.csv.j2").write_text("{% macro cell(x) %}{{ x }}{% endmacro %}",
                                           encoding="utf-8")
    (tmp_path / "f.csv.j2").write_text(
        '{% from "cells.csv.j2" import cell %}{% macro piece(a, b) %}{{ a }};{{ cell(b) }}'
        "{% endmacro %}", encoding="utf-8")
    module = template_environment(tmp_path).get_template("f.csv.j2").make_module()
    assert str(module.piece(Decimal("1.50"), "a&b")) == "1.50;a&b"
    for a, b in ((None, "x"), ("x", None)):
        with pytest.raises(jinja2.TemplateRuntimeError, match="writes None"):
            module.piece(a, b)


def test_zfill_refuses_none_rather_than_writing_0none(tmp_path):
    """pesgen's zfill would write '0None' for an unset value (Jinja's own filters that
    turn None into text: tests/test_none_as_text.py)."""
    (tmp_path / "f.csv.j2").write_text("{% macro piece(a) %}{{ a | zfill(5) }}{% endmacro %}",
                                       encoding="utf-8")
    module = template_environment(tmp_path).get_template("f.csv.j2").make_module()
    assert str(module.piece(42)) == "00042"
    with pytest.raises(ValueError, match="zfill of None"):
        module.piece(None)


def test_template_undefined_variable_in_piece_names_the_invoice(tmp_path):
    fmts, m, template = _broken_bundle(tmp_path, '<Cle2 V="{{ t.cle2 }}"/>',
                                       '<Cle2 V="{{ t.cle2 }}{{ t.nope }}"/>')
    line = _mapping_line(template, "t.nope")
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    p = _only(exc, "template")
    assert p.mapping == f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}"
    assert "'nope'" in p.message
    assert "piece of invoice FA-2026-00101" in str(exc)
    # the record the piece comes from, since its data may be the cause
    assert p.invoice == "FA-2026-00101"
    assert p.record.endswith("school-export.json:$.invoices[0]")


def test_a_template_writing_what_the_encoding_cannot_names_the_record(tmp_path):
    fmts, m, template = _broken_bundle(tmp_path, '<Cle2 V="{{ t.cle2 }}"/>',
                                       '<Cle2 V="{{ t.cle2 }}{{ \'€\' if t.number == 2 }}"/>')
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    p = _only(exc, "template")
    assert p.message == "'€' cannot be written in ISO-8859-1"
    assert p.invoice == "FA-2026-00102"
    assert p.record.endswith("school-export.json:$.invoices[1]")


def test_csv_binding_naming_a_column_the_file_lacks_is_refused(tmp_path):
    """A typo in a CSV column name would read nothing on every row: refused at the
    first invoice, naming the binding, the header and the column it probably meant."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, ("complement: complement", "complement: complemnt"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    assert exc.exit_code == ExitCode.INPUT
    p = _only(exc, "input.column")
    assert "address.complement reads column 'complemnt', which is not in the header" in p.message
    assert "(did you mean 'complement'?)" in p.message
    assert p.record.endswith("school-export.csv:1")
    assert p.mapping == _where(m, "complement: complemnt", "bindings.address.complement")


def test_a_csv_expression_reading_a_key_of_a_column_names_the_row_and_column(tmp_path):
    """A CSV cell is a text: an expression reading a key of it is one problem at the
    row and the column, naming the binding and what it read."""
    m, (line,) = mapping_copy(tmp_path, CSV_MAPPING, (
        '{expr: "invoice.payer_last_name or invoice.payer_name"}',
        '{expr: "invoice.payer_last_name.upper_name or invoice.payer_name"}'))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    first = exc.problems[0]
    assert first.record.endswith("school-export.csv:2 column 'payer_last_name'")
    assert (first.rule, first.message) == (
        "input.type", "a text where an object is expected: bindings.payer.name (line "
        f"{line}) reads invoice.payer_last_name.upper_name")


def test_a_missing_csv_column_names_a_file_whose_name_holds_a_colon(tmp_path):
    """The header's record is the file's line 1, named by the whole file name, a ':' in
    it included ('export 12:30.csv')."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, ("complement: complement", "complement: complemnt"))
    inp = tmp_path / "export 12:30.csv"
    shutil.copyfile(EXAMPLES / "school-export.csv", inp)
    p = _only(_refused(tmp_path, m, inp), "input.column")
    assert p.record == f"{inp}:1"


def test_an_expression_reading_a_missing_csv_column_says_what_invoice_is(tmp_path):
    """'invoice.number | digits' (the JSON example's) on a CSV export reads a column
    'number': the message says that in an expression `invoice` is the input record,
    read by column name, with the invoice number's own column as the example."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, ('{expr: "invoice.invoice_number | digits"}',
                                                '{expr: "invoice.number | digits"}'))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    p = _only(exc, "input.column")
    assert p.message.startswith("invoice.debt_number reads column 'number', which is not in "
                                "the header of ")
    assert p.message.endswith("; in an expression, invoice is the input record, its columns "
                              "read by name: invoice['invoice_number'] is the invoice number "
                              "(bindings.invoice.number)")


@pytest.mark.parametrize(("edit", "key", "column", "hint"), [
    # a line's expression: invoice and line are the rows
    (("~ ' - ' ~ line.student_first_name", "~ ' - ' ~ line.student_firstname"),
     "line.label", "student_firstname", "; in an expression, invoice and line are the "
     "input's rows, their columns read by name: invoice['invoice_number'] is the invoice "
     "number (bindings.invoice.number)"),
    # the invoice number itself an expression: no column of it to show
    (("    number: invoice_number\n", "    number: {expr: \"invoice.invoice_number\"}\n"
      "    service_from: {expr: \"invoice.period_start\"}\n"),
     "invoice.service_from", "period_start", "; in an expression, invoice is the input "
     "record, its columns read by name: invoice['<column>']"),
])
def test_an_expression_reading_a_missing_csv_column_says_what_its_names_are(
        tmp_path, edit, key, column, hint):
    """The hint after a CSV expression's missing column: a line's binding is told that
    invoice and line are the input's rows; with an invoice number bound by an
    expression, the example is invoice['<column>'] (no column of the number to name)."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, edit)
    p = _only(_refused(tmp_path, m, EXAMPLES / "school-export.csv"), "input.column")
    assert p.message.startswith(f"{key} reads column '{column}', which is not in the header")
    assert p.message.endswith(hint)


def test_a_csv_column_named_in_another_case_gets_a_did_you_mean(tmp_path):
    """'MANDATE_BIC' for 'mandate_bic' (a technician's 'Bic' for the export's 'BIC'):
    difflib's ratio alone finds nothing, the column is named all the same."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, ("bic: mandate_bic", "bic: MANDATE_BIC"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    p = _only(exc, "input.column")
    assert "payment.bic reads column 'MANDATE_BIC', which is not in the header" in p.message
    assert "(did you mean 'mandate_bic'?)" in p.message


def test_a_group_by_column_named_in_another_case_gets_a_did_you_mean(tmp_path):
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, ("group_by: invoice_number",
                                                "group_by: INVOICE_NUMBER"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    p = _only(exc, "input.column")
    assert f"input.group_by reads column 'INVOICE_NUMBER', which is not in the header of " \
        f"{p.record.removesuffix(':1')} (did you mean 'invoice_number'?)" in p.message


@pytest.mark.parametrize("key, old, new", [
    ("input.group_by", "group_by: invoice_number", "group_by: invoice_numbr"),
    ("bindings.address.city", "    city: city", "    city: citty"),
])
def test_a_column_the_file_lacks_is_one_input_error_for_group_by_and_bindings(
        tmp_path, key, old, new):
    """The mapping names a column the file does not have: the same exit code (4, the
    input's, as for a JSON path no invoice has: the mapping passes check-mapping) and
    the same message, naming the mapping file:line:key and the closest column, whether
    input.group_by or a binding names it (group_by exited 4, a binding 3)."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, (old, new))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    assert exc.exit_code == ExitCode.INPUT
    p = _only(exc, "input.column")
    inp = p.record.removesuffix(":1")  # the file as the messages show it
    assert inp.endswith("school-export.csv") and p.record == f"{inp}:1"
    assert str(exc) == (f"{inp}:1: the mapping reads 1 column(s) that the file does not "
                        "have; nothing written")
    column, close = new.split(": ")[1], old.split(": ")[1]
    field = "input.group_by" if key == "input.group_by" else key.removeprefix("bindings.")
    assert p.message == (f"{field} reads column '{column}', which is not in the header of "
                         f"{inp} (did you mean '{close}'?)")
    assert p.mapping == _where(m, new, key)


def test_a_column_nothing_in_the_header_is_close_to_lists_the_columns_no_binding_reads(
        tmp_path):
    """A column renamed is one no binding reads: those are listed (they were the
    header's first 12 columns, most of them read, 'city' not among them)."""
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, ("    city: city", "    city: commune"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv")
    assert _only(exc, "input.column").message.endswith(
        "(no binding reads the header's column(s) payer_birth_date, city: one of them "
        "renamed?)")


def test_a_column_renamed_is_never_said_to_be_one_another_binding_reads(tmp_path):
    """mandate_iban renamed 'IBAN' in the export: the closest header column,
    mandate_bic, was suggested ('did you mean'), though bindings.payment.bic reads it;
    the columns no binding reads are listed instead, the renamed one among them."""
    rows = _csv_rows()
    rows[0][rows[0].index("mandate_iban")] = "IBAN"
    inp = _write_csv(tmp_path, rows)
    p = _only(_refused(tmp_path, CSV_MAPPING, inp), "input.column")
    assert p.message == (
        f"payment.iban reads column 'mandate_iban', which is not in the header of "
        f"{p.record.removesuffix(':1')} (no binding reads the header's column(s) "
        "payer_birth_date, IBAN: one of them renamed?)")


@pytest.mark.parametrize("invoice", ["FA-2026-00101", "FA-2026-00102"])  # 4 rows, 2 rows
def test_csv_expression_columns_must_agree_on_every_row_of_an_invoice(tmp_path, invoice):
    """payer_last_name is read through an expression (name: {expr: ...}); a second row
    naming another payer is one invoice with two debtors, whatever its number of rows."""
    rows = _csv_rows()
    header = rows[0]
    number, last = header.index("invoice_number"), header.index("payer_last_name")
    second = [i for i, r in enumerate(rows) if r[number] == invoice][1]
    rows[second][last] = "MARTIN"
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.single-debtor")
    assert "column 'payer_last_name' differs from the invoice's first row" in p.message
    assert p.record == f"{inp}:{second + 1}"
    # the binding reading the column is named (it had no [mapping ...] at all)
    assert p.mapping == _where(CSV_MAPPING, "payer_last_name", "bindings.payer.name")


@pytest.mark.parametrize("expression", ["''.__class__.__mro__", "invoice.__class__.__name__",
                                        "invoice['_secret']"])
def test_expression_reading_private_names_is_refused_when_the_mapping_loads(tmp_path,
                                                                            expression):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, (
        'name: {expr: "invoice.payer.last_name or invoice.payer.name"}',
        f'name: {{expr: "{expression}"}}'))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", MappingError)
    p = _only(exc, "mapping.expr")
    assert "names starting with '_' are not readable in a mapping expression" in p.message
    assert p.mapping == _where(m, f'name: {{expr: "{expression}"}}', "bindings.payer.name")


@pytest.mark.parametrize("old, new, key, says", [
    ("  delimiter: \",\"", "  delimiter: '\\t'", "input.delimiter",
     "delimiter must be one character or auto, not '\\\\t'"),
    ("  encoding: utf-8", "  encoding: base64", "input.encoding",
     "'base64' is not a text encoding"),
    ("  encoding: utf-8", "  encoding: windows1252", "input.encoding",
     "unknown encoding 'windows1252'; did you mean 'cp1252'?"),
])
def test_csv_input_settings_are_checked_when_the_mapping_loads(tmp_path, old, new, key, says):
    m, _ = mapping_copy(tmp_path, CSV_MAPPING, (old, new))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.csv", MappingError)
    p = _only(exc, "mapping.input")
    assert says in p.message
    assert p.mapping == _where(m, new.strip(), key)


def test_a_mapping_text_the_format_cannot_write_is_a_mapping_error(tmp_path):
    """Written into every file as it is: checked when the mapping meets its format."""
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, (
        "budget_label: COMMUNE DE VILLENEUVE SUR LOING", "budget_label: CŒUR DE VILLENEUVE"))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", MappingError)
    p = _only(exc, "mapping.format")
    assert p.message == ("collectivity.budget_label: 'Œ' cannot be written in ISO-8859-1 "
                         "(format pes-ormc; the mapping's own text is written as it is: "
                         "no text policy (case, transliterate) changes it)")
    assert p.mapping == _where(m, "budget_label:", "collectivity.budget_label")


def test_the_dgfip_xsd_applies_to_a_pes_bundle_without_an_xsd_of_its_own(tmp_path,
                                                                          official_xsd):
    fmts, m, template = _broken_bundle(tmp_path, '<TypBord V="06"/>',
                                       '<TypBord V="06"/><Garbage/>')
    fmt_yaml = fmts / "broken-fmt" / "format.yaml"
    text = fmt_yaml.read_text(encoding="utf-8")
    assert text.count("    xsd: pes-ormc/pes-ormc.xsd\n") == 1
    fmt_yaml.write_text(text.replace("    xsd: pes-ormc/pes-ormc.xsd\n", ""), encoding="utf-8")
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", OutputInvalidError,
                   formats_dirs=[fmts], official_xsd=official_xsd)
    assert {p.rule for p in exc.problems} == {"xsd.dgfip"}
    assert any("Garbage" in p.message for p in exc.problems)
    # without the DGFiP package nothing would validate the file: refused before reading
    out = tmp_path / "unchecked"
    with pytest.raises(UsageError) as info:
        export(m, EXAMPLES / "school-export.json", out, RUN, formats_dirs=[fmts])
    assert str(info.value) == ("format broken-fmt: pes-aller.xml.j2 has no XSD of its own; "
                               "give the DGFiP package to validate it (--official-xsd DIR, "
                               "PESGEN_OFFICIAL_XSD or official_xsd in the config file)")
    _assert_nothing_written(out)


ORMC_NAME = "PESORMC_21450999400015_2026_0000001.xml"


def test_a_file_the_dgfip_package_alone_checks_that_is_not_well_formed(tmp_path,
                                                                       official_xsd):
    """xml.dgfip: a PES bundle without an XSD of its own is validated by the DGFiP
    package alone; its template writing a file that is not well-formed refuses the
    export (exit 6), naming the file it would have written and the line (not the
    temporary file parsed: '(.pesgen-….part, line 22)' was in the message), and nothing
    is written."""
    fmts, m, template = _broken_bundle(tmp_path, '<TypBord V="06"/>',
                                       '<TypBord V="06"/></Oops>')
    line = _mapping_line(template, "</Oops>")
    fmt_yaml = fmts / "broken-fmt" / "format.yaml"
    text = fmt_yaml.read_text(encoding="utf-8")
    fmt_yaml.write_text(text.replace("    xsd: pes-ormc/pes-ormc.xsd\n", ""), encoding="utf-8")
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", OutputInvalidError,
                   formats_dirs=[fmts], official_xsd=official_xsd)
    assert exc.exit_code == ExitCode.OUTPUT
    [p] = exc.problems
    assert p.rule == "xml.dgfip"
    written = 22  # the template's line, in the file (its head renders fewer lines)
    assert line > written and p.record == f"{ORMC_NAME}:{written}"
    assert p.message == ("not well-formed: Opening and ending tag mismatch: BlocBordereau "
                         f"line 18 and Oops, line {written}, column 25")


def test_problems_found_before_a_broken_row_are_listed_with_it(tmp_path):
    """A row the CSV reader cannot go past stops the reading; the invalid IBAN met
    before it is listed too, not lost."""
    rows = _csv_rows()
    header = rows[0]
    number, iban = header.index("invoice_number"), header.index("mandate_iban")
    for row in rows:
        if row[number] == "FA-2026-00101":
            row[iban] = "FR7630006000011234567890180"
    rows.append(rows[-1] + ["one field too many"])
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    assert [p.rule for p in exc.problems] == ["sepa.iban", "input.csv-row"]
    assert "reading stopped" in str(exc)


def test_every_csv_row_the_reader_refuses_is_listed(tmp_path):
    """Three rows whose field count is not the header's, a stray quote and the header
    again: each is listed at its line, not only the first; the first keeps its wording."""
    rows = _csv_rows()
    width = len(rows[0])
    rows[2] = rows[2] + ["one field too many"]  # line 3
    rows[4] = rows[4][:-2]  # line 5
    rows.insert(6, list(rows[0]))  # line 7: the header again
    rows.append(rows[-1] + ["x", "y"])  # the last line
    inp = _write_csv(tmp_path, rows)
    text = inp.read_text(encoding="utf-8").splitlines(keepends=True)
    text.insert(8, '"FA"x,1\n')  # line 9: a quote the reader cannot parse
    inp.write_text("".join(text), encoding="utf-8")
    last = len(text)  # the last row, on one line
    out = tmp_path / "out"
    with pytest.raises(InputDataError) as info:
        export(CSV_MAPPING, inp, out, RUN)
    exc = info.value
    assert [(p.rule, p.record) for p in exc.problems] == [
        ("input.csv-row", f"{inp}:3"), ("input.csv-row", f"{inp}:5"),
        ("input.csv-row", f"{inp}:7"), ("input.csv", f"{inp}:9"),
        ("input.csv-row", f"{inp}:{last}")]
    assert exc.problems[0].message == f"{width + 1} fields, header has {width}"
    assert exc.problems[1].message == f"{width - 2} fields, header has {width}"
    assert exc.problems[2].message.startswith("the header line again")
    assert str(exc) == (f"{inp}:3: {width + 1} field(s), the header has {width}; and 4 more "
                        "row(s) refused; nothing written")
    assert not out.exists()


def test_one_csv_row_refused_is_told_alone(tmp_path):
    rows = _csv_rows()
    rows.insert(6, list(rows[0]))  # line 7: the header again
    inp = _write_csv(tmp_path, rows)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    assert str(exc) == (f"{inp}:7: the header line again: two exports joined into one file? "
                        "remove this line (or export once); nothing written")
    # one row of the wrong width said nothing of what was written
    rows = _csv_rows()
    rows[2] = rows[2] + ["one field too many"]  # line 3
    exc = _refused(tmp_path, CSV_MAPPING, _write_csv(tmp_path, rows))
    assert str(exc) == (f"{tmp_path / 'school-export.csv'}:3: {len(rows[0]) + 1} field(s), "
                        f"the header has {len(rows[0])}; nothing written")


@pytest.mark.parametrize("cap", [40, 1000])
def test_a_listing_of_csv_rows_stops_after_its_maximum(tmp_path, monkeypatch, cap):
    """Past the cap (1 000, as the validator's listings) the rows refused are counted."""
    if cap != 1000:
        monkeypatch.setattr(sources, "MAX_ROW_PROBLEMS", cap, raising=False)
    MAX_ROW_PROBLEMS = cap  # noqa: N806
    rows = _csv_rows()
    bad = rows[1] + ["extra"]
    rows[1:] = [bad] * (MAX_ROW_PROBLEMS + 7)
    inp = _write_csv(tmp_path, rows)
    with pytest.raises(InputDataError) as info:
        export(CSV_MAPPING, inp, tmp_path / "out", RUN)
    exc = info.value
    assert len(exc.problems) == MAX_ROW_PROBLEMS + 1
    assert exc.problems[-2].record == f"{inp}:{MAX_ROW_PROBLEMS + 1}"
    assert exc.problems[-1] == Problem(
        "input.csv-row", f"listing stopped after {MAX_ROW_PROBLEMS} rows refused (7 more): "
        "correct these and run again", record=str(inp))
    assert f"; and {MAX_ROW_PROBLEMS + 6} more row(s) refused; nothing written" in str(exc)


def test_a_byte_the_declared_encoding_cannot_read_is_named_with_its_line(tmp_path):
    """A Windows-1252 file declared UTF-8: the line of the first bad byte, not an offset
    inside the decoder's buffer."""
    rows = _csv_rows()
    header = rows[0]
    street = header.index("street")
    target = 40 if len(rows) > 40 else len(rows) - 1
    rows[target][street] = "3 allee du C\u0153ur"
    text = []
    for row in rows:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(row)
        text.append(buffer.getvalue())
    inp = tmp_path / "school-export.csv"
    # every line UTF-8 but one, written by software using Windows-1252
    inp.write_bytes(b"".join(t.encode("cp1252" if i == target else "utf-8")
                             for i, t in enumerate(text)))
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    p = _only(exc, "input.encoding")
    line = "".join(text[:target]).count("\n") + 1  # quoted fields hold line breaks
    assert p.record == f"{inp}:{line}"
    assert "byte 0x9C" in p.message  # the 'œ', in Windows-1252


@pytest.mark.parametrize("old, new, says", [
    ('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="{{ t.cle2 | center(1000000000) }}"/>',
     "filter center: a result of about 1000000000 characters refused (at most 100010)"),
    ('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="{{ \'%999999999d\' % t.number }}"/>',
     "'%' formatting: a result of about 1000000010 characters refused (at most 100110)"),
    ('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="{{ \'{:>999999999}\'.format(t.cle2) }}"/>',
     "str.format: a result of about 999999999 characters refused"),
    ('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="{{ (\'x\' * 60000) + (\'y\' * 60000) }}"/>',
     "'+': a result of 120000 items refused (at most 100000)"),
    ('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="{{ ((2 ** 50000) * (2 ** 50000)) % 7 }}"/>',
     "a product of about 100002 bits refused (at most 100000)"),
])
def test_a_template_making_a_huge_value_is_refused_with_its_line(tmp_path, old, new, says):
    fmts, m, template = _broken_bundle(tmp_path, old, new)
    line = _mapping_line(template, new)
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", TemplateError,
                   formats_dirs=[fmts])
    assert exc.exit_code == ExitCode.TEMPLATE
    p = _only(exc, "template")
    assert p.mapping == f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}"
    assert p.message.startswith(f"SecurityError: {says}")
    assert "piece of invoice FA-2026-00101" in str(exc)


@pytest.mark.parametrize("expression, says", [
    ("invoice.payer.last_name | center(1000000000)", "filter center"),  # the closure path
    ("'%999999999s' % invoice.payer.last_name", "'%' formatting"),  # the Jinja path
    ("invoice.payer.last_name.ljust(1000000000)", "str.ljust"),
    ("([invoice.payer.last_name] * 100000) | join('x' * 100000)", "filter join"),
])
def test_a_mapping_expression_making_a_huge_value_names_the_binding(tmp_path, expression,
                                                                    says):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, (
        'name: {expr: "invoice.payer.last_name or invoice.payer.name"}',
        f'name: {{expr: "{expression}"}}'))
    exc = _refused(tmp_path, m, EXAMPLES / "school-export.json", InputDataError)
    found = [p for p in exc.problems if p.rule == "mapping.expr"]
    assert found, exc.report()
    p = found[0]
    assert p.mapping == _where(m, f'name: {{expr: "{expression}"}}', "bindings.payer.name")
    assert p.message.startswith(f"payer.name: expression failed: {says}: a result of about ")
    assert " refused (at most " in p.message


@pytest.mark.parametrize("written, separator, wanted", [
    ("20-11-2026", "-", "/"), ("20.11.2026", ".", "/"), ("2026/11/20", "/", "-")])
def test_a_date_with_other_separators_says_the_replace_that_binds_it(
        tmp_path, written, separator, wanted):
    """A date of DD/MM/YYYY or YYYY-MM-DD with other separators ('20-11-2026', as a
    spreadsheet set up for another country writes it) was refused as 'not a date
    (YYYY-MM-DD or DD/MM/YYYY)' alone: it now says which syntax it is close to and the
    expression of its binding that replaces them; the mapping edited so exports."""
    inp = _csv_dated(tmp_path, written)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    expr = f"invoice.invoice_date | replace('{separator}', '{wanted}')"
    syntax = "YYYY-MM-DD" if wanted == "-" else "DD/MM/YYYY"
    assert {p.message for p in exc.problems} == {
        f"invoice.date: '{written}' is not a date (YYYY-MM-DD or DD/MM/YYYY); it is {syntax} "
        f"with '{separator}' in place of '{wanted}': bind it with '{wanted}', e.g. "
        f'{{expr: "{expr}"}}'}
    fixed, _ = mapping_copy(tmp_path / "fixed", CSV_MAPPING,
                            ("    date: invoice_date\n", f'    date: {{expr: "{expr}"}}\n'))
    assert export(fixed, inp, tmp_path / "out", RUN).files[0].titles == 11


@pytest.mark.parametrize("written, syntax, separator, wanted, date", [
    ("20-11-2026 08:15", "DD/MM/YYYY", "-", "/", "[:10]"),
    ("2026.11.20 08:15", "YYYY-MM-DD", ".", "-", "[:10]"),
    # [:10] would keep the time's first digit: what comes before the time
    ("1-2-2026 08:15", "DD/MM/YYYY", "-", "/", ".split(' ')[0]")])
def test_a_date_of_other_separators_and_a_time_says_how_to_bind_the_date(
        tmp_path, written, syntax, separator, wanted, date):
    """'20-11-2026 08:15' was refused as 'not a date' alone, where the date alone says
    the replace() that binds it and a date and time of a syntax read says [:10]: it says
    both, with the expression of its binding doing both; the mapping edited so exports."""
    inp = _csv_dated(tmp_path, written)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    expr = f"invoice.invoice_date{date} | replace('{separator}', '{wanted}')"
    assert {(p.rule, p.message, p.mapping) for p in exc.problems} == {(
        "input.date",
        f"invoice.date: '{written}' is not a date (YYYY-MM-DD or DD/MM/YYYY); it is a date "
        f"followed by a time of day, {syntax} with '{separator}' in place of '{wanted}': "
        f'bind the date alone with \'{wanted}\', e.g. {{expr: "{expr}"}}',
        _where(CSV_MAPPING, "    date: invoice_date", "bindings.invoice.date"))}
    assert all(p.record and p.record.startswith(f"{inp}:") for p in exc.problems)
    fixed, _ = mapping_copy(tmp_path / "fixed", CSV_MAPPING,
                            ("    date: invoice_date\n", f'    date: {{expr: "{expr}"}}\n'))
    assert export(fixed, inp, tmp_path / "out", RUN).files[0].titles == 11


def test_a_date_written_month_first_is_refused_saying_so(tmp_path):
    """'11/20/2026' (MM/DD/YYYY, as English-language software writes dates) was refused
    as 'not a valid calendar date' alone, which says nothing of the export's other dates
    ('11/05/2026', read as 11 May): it now says the day it would be month first and that
    the export must write the day first."""
    data = _example()
    i = _index(data, "FA-2026-00101")
    data["invoices"][i]["date"] = "11/20/2026"
    inp = _write_json(tmp_path, data)
    exc = _refused(tmp_path, JSON_MAPPING, inp)
    p = _only(exc, "input.date")
    assert p.invoice == "FA-2026-00101"
    assert p.message == (
        "invoice.date: '11/20/2026' is not a valid calendar date (DD/MM/YYYY has no month "
        "20); month first (MM/DD/YYYY, as English-language software writes dates) it would "
        "be 2026-11-20: the export must write the day first (DD/MM/YYYY) or YYYY-MM-DD, or "
        "every date of it whose day is 12 or less is read the wrong way round")


_TWO_DIGITS = ("its year has two digits: the export must write the year with four (pesgen "
               "never guesses the century)")


@pytest.mark.parametrize("written, said", [
    ("20/11/26", _TWO_DIGITS), ("26-11-20", _TWO_DIGITS),
    ("20/11/26 08:15", f"it is a date followed by a time of day, and {_TWO_DIGITS}; then bind "
                       "the date alone"),
    ("26-11-20T08:15", f"it is a date followed by a time of day, and {_TWO_DIGITS}; then bind "
                       "the date alone")])
def test_a_date_with_a_two_digit_year_is_refused_saying_the_year_needs_four(
        tmp_path, written, said):
    """'20/11/26' (or 2026-11-20 written '26-11-20') was refused as 'not a date' alone,
    as any text: it says the year must have four digits; no century is ever guessed. A
    time after it ('20/11/26 08:15') is said too, and no [:10] (which would not read it
    either)."""
    inp = _csv_dated(tmp_path, written)
    exc = _refused(tmp_path, CSV_MAPPING, inp)
    assert {(p.rule, p.message) for p in exc.problems} == {
        ("input.date", f"invoice.date: '{written}' is not a date (YYYY-MM-DD or DD/MM/YYYY); "
         f"{said}")}
    p = exc.problems[0]
    assert p.record and p.record.startswith(f"{inp}:") and p.mapping
