"""A mapping binding no payment.direct_debit (the scaffold's payment: block left
commented out) on an export whose invoices hold direct-debit data: export, its dry run
and preview say it once for the run (note unread_debit, rule input.unread-debit), never
refuse; no note where there is nothing to say (rule input.unread-debit)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.debits import DebitWatch, kind_of
from pesgen.mapping import load_mapping

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE

runner = CliRunner()
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_INPUT = EXAMPLES / "school-export.csv"
JSON_INPUT = EXAMPLES / "school-export.json"
_SAID = "bindings.payment.direct_debit is not bound, so no title is a direct debit"


def _run(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    return result


def _without_payment(tmp_path: Path, source: Path, payment: str = "") -> Path:
    """``source`` without its bindings.payment block (``payment`` in its place)."""
    text = source.read_text(encoding="utf-8")
    text, n = re.subn(r"\n  payment:\n(?:    .*\n)+", "\n" + payment, text)
    assert n == 1
    out = tmp_path / source.name
    out.write_text(text, encoding="utf-8")
    return out


def _export(tmp_path: Path, mapping: Path, inp: Path, *more: str):
    return _run("export", "-m", mapping, "-i", inp, "-o", tmp_path / "out", "--date",
                "2026-11-23", "--db", f"sqlite:///{tmp_path / 'store.db'}", "--create-store",
                "--dry-run", *more)


def _said(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if _SAID in ln]


@pytest.mark.parametrize("source, inp, names, first", [
    (CSV_MAPPING, CSV_INPUT, "payment_method, mandate_rum, mandate_signed_on, mandate_iban, "
     "mandate_bic, mandate_holder, …", ":2"),
    (JSON_MAPPING, JSON_INPUT, "payment.method, payment.mandate.rum, "
     "payment.mandate.signed_on, payment.mandate.iban, payment.mandate.bic, "
     "payment.mandate.holder, …", ":$.invoices[0]"),
])
def test_direct_debits_no_binding_reads_are_said_once_for_the_run(tmp_path, source, inp,
                                                                 names, first):
    """The example's 4 direct debits (payment_method direct_debit, a RUM and an IBAN)
    would go as titles to pay: the dry run and the export say so once, naming the
    mapping's bindings, the columns (JSON paths) and the first invoice's record; exit 0."""
    m = _without_payment(tmp_path, source)
    for more in (["--dry-run"], []):
        r = _export(tmp_path, m, inp, *more)
        assert r.exit_code == 0, r.stdout + r.stderr
        said = _said(r.stdout)
        expected = re.escape(
            f"  - *: unread_debit: {m}: {_SAID}, yet 4 invoice(s) of the run hold direct-debit "
            f"data no binding reads ({names}; the first at @{first}): they are "
            "exported as titles to pay, without their SEPA mandate; bind bindings.payment to "
            "those columns or keys (the scaffold's commented payment: block, "
            "docs/mapping-reference.md), or, if the collectivity does not collect them by "
            "direct debit, bind payment.direct_debit: {const: \"invoice\"}"
        ).replace("@", r"\S*" + re.escape(inp.name))  # the input as the run shows it
        assert len(said) == 1 and re.fullmatch(expected, said[0]), r.stdout
    r = _run("preview", "-m", m, "-i", inp, "--limit", "2", "--date", RUN_DATE)
    assert r.exit_code == 0, r.stdout + r.stderr
    said = _said(r.stdout)
    assert len(said) == 1 and said[0].startswith(f"policy unread_debit (run): {m}: {_SAID}, "
                                                 "yet 1 invoice(s) shown hold"), r.stdout


def test_the_json_summary_names_the_bindings_line(tmp_path):
    """The note's origin is the mapping's bindings (payment: when it binds no
    direct_debit there), file:line."""
    import json

    m = _without_payment(tmp_path, CSV_MAPPING)
    line = m.read_text(encoding="utf-8").splitlines().index("bindings:") + 1
    r = _export(tmp_path, m, CSV_INPUT, "--format", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    notes = [n for n in json.loads(r.stdout)["notes"] if n["policy"] == "unread_debit"]
    assert [(n["invoice"], n["origin"]) for n in notes] == [("*", f"{m}:{line}: bindings")]


@pytest.mark.parametrize("source", [CSV_MAPPING, JSON_MAPPING])
def test_a_direct_debit_bound_to_a_constant_no_gives_no_note(tmp_path, source):
    """What the note advises when the collectivity does not collect them by direct
    debit: a method codes.payment_methods says false ("invoice")."""
    m = _without_payment(tmp_path, source, '  payment:\n    direct_debit: {const: "invoice"}\n')
    r = _export(tmp_path, m, CSV_INPUT if source == CSV_MAPPING else JSON_INPUT)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "unread_debit" not in r.stdout and not _said(r.stdout)


def test_without_a_payment_methods_table_the_constant_advised_is_no(tmp_path):
    m = _without_payment(tmp_path, CSV_MAPPING)
    text = m.read_text(encoding="utf-8")
    table = "  payment_methods: {direct_debit: true, invoice: false, online: false}\n"
    assert text.count(table) == 1
    m.write_text(text.replace(table, ""), encoding="utf-8")
    r = _export(tmp_path, m, CSV_INPUT)
    assert r.exit_code == 0, r.stdout + r.stderr
    said = _said(r.stdout)
    assert len(said) == 1 and said[0].endswith(
        'bind payment.direct_debit: {const: "no"}'), r.stdout
    # which, bound, silences it
    m.write_text(m.read_text(encoding="utf-8").replace(
        "  lines: {const: rows}", '  payment:\n    direct_debit: {const: "no"}\n'
        "  lines: {const: rows}"), encoding="utf-8")
    r = _export(tmp_path, m, CSV_INPUT)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "unread_debit" not in r.stdout


@pytest.mark.parametrize("source, inp", [(CSV_MAPPING, CSV_INPUT), (JSON_MAPPING, JSON_INPUT)])
def test_the_shipped_mappings_bind_the_payment_and_get_no_note(tmp_path, source, inp):
    r = _export(tmp_path, source, inp)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "unread_debit" not in r.stdout


def _csv_edited(tmp_path: Path, edit) -> Path:
    """The CSV example, each row (a dict) changed by ``edit``, columns as it leaves them."""
    rows = list(csv.DictReader(io.StringIO(CSV_INPUT.read_text(encoding="utf-8"))))
    rows = [edit(dict(row)) for row in rows]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "export.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _no_debits(row: dict) -> dict:
    """A school whose families pay by cheque or online: the mandate columns empty."""
    if row.get("payment_method") == "direct_debit":
        row["payment_method"] = "cheque"
    for key in list(row):
        if key.startswith("mandate_") or key == "debit_date":
            row[key] = ""
    return row


@pytest.mark.parametrize("edit", [
    _no_debits,
    # the method column alone, naming no direct debit
    lambda row: {k: v for k, v in _no_debits(row).items() if not k.startswith("mandate_")},
    # a yes/no column named for direct debits, all no
    lambda row: {**_no_debits(row), "prelevement": "non"},
    # names holding 'rum' or 'bic' inside a word, a payer type, filled
    lambda row: {**_no_debits(row), "instrument": "piano", "public": "adulte",
                 "payer_type": "famille", "PayerKind": "x"},
], ids=["empty-mandates", "method-only", "prelevement-non", "look-alike-names"])
def test_no_note_without_direct_debit_data(tmp_path, edit):
    m = _without_payment(tmp_path, CSV_MAPPING)
    r = _export(tmp_path, m, _csv_edited(tmp_path, edit))
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "unread_debit" not in r.stdout, r.stdout


def test_a_method_saying_prelevement_in_another_column_is_said(tmp_path):
    """Another software's words: 'Mode de règlement' holding 'Prélèvement SEPA', no
    mandate column at all."""
    def edit(row: dict) -> dict:
        method = row.pop("payment_method")
        row = {k: v for k, v in _no_debits(row).items() if not k.startswith("mandate_")}
        row["Mode de règlement"] = "Prélèvement SEPA" if method == "direct_debit" else "Chèque"
        return row

    m = _without_payment(tmp_path, CSV_MAPPING)
    r = _export(tmp_path, m, _csv_edited(tmp_path, edit))
    assert r.exit_code == 0, r.stdout + r.stderr
    said = _said(r.stdout)
    assert len(said) == 1 and "yet 4 invoice(s) of the run hold direct-debit data no " \
        "binding reads (Mode de règlement; the first at" in said[0], r.stdout


@pytest.mark.parametrize("name, kind", [
    ("mandate_iban", "mandate"), ("IBAN", "mandate"), ("RUM", "mandate"),
    ("Réf. mandat", "mandate"), ("payment.mandate.holder", "mandate"),
    ("mandateIban", "mandate"), ("Date prélèvement", "mandate"), ("code_bic", "mandate"),
    ("compteIban", "mandate"), ("Référence SEPA", "mandate"), ("date_prlv", "mandate"),
    ("IBAN2", "mandate"), ("rum1", "mandate"), ("Bic2Payeur", "mandate"),
    ("payment_method", "method"), ("ModeReglement", "method"), ("mode_paiement", "method"),
    ("payment.method", "method"), ("moyen de paiement", "method"), ("type_paiement", "method"),
    ("instrument", None), ("public", None), ("payer_type", None), ("date_paiement", None),
    ("separateur", None), ("rumeur", None), ("debit_date", None),
])
def test_names_taken_for_direct_debit_data(name, kind):
    assert kind_of(name) == kind


def _watch(tmp_path: Path, source: Path = CSV_MAPPING, payment: str = "",
           edit=lambda text: text) -> DebitWatch:
    """A DebitWatch of ``source`` without its payment block (``payment`` in its place),
    its text changed by ``edit``."""
    m = _without_payment(tmp_path, source, payment)
    m.write_text(edit(m.read_text(encoding="utf-8")), encoding="utf-8")
    return DebitWatch(load_mapping(m))


@pytest.mark.parametrize("value, said", [
    ("direct_debit", True), ("Débit direct", True), ("Prélèvement", True), ("PRLV", True),
    ("SEPA", True), ("chèque", False), ("online", False), ("", False),
])
def test_a_payment_method_is_direct_debit_data_when_its_value_says_one(tmp_path, value, said):
    """Each of the words a method's value may say a direct debit with, alone."""
    watch = _watch(tmp_path)
    watch.see({"payment_method": value}, "export.csv:2")
    assert watch.invoices == int(said)


@pytest.mark.parametrize("payment, said", [
    ({"mandate": {"rum": None, "iban": None}}, 0),  # JSON nulls
    ({"mandate": {}}, 0),
    ({"mandates": []}, 0),
    ({"mandates": ["FR7630001007941234567890185"]}, 1),  # a list of IBANs
    ({"mandate": {"rum": "RUM-1"}}, 1),
])
def test_a_mandate_key_is_direct_debit_data_unless_null_or_empty(tmp_path, payment, said):
    watch = _watch(tmp_path, JSON_MAPPING)
    watch.see({"invoice_number": "FA-1", "payment": payment}, "export.json:$.invoices[0]")
    assert watch.invoices == said


def test_the_note_names_the_columns_of_every_invoice_each_once_six_at_most(tmp_path):
    """The columns found in the run's invoices, in the order first found, the first
    invoice's record; past six columns, '…'."""
    watch = _watch(tmp_path)
    watch.see({"mandate_rum": "RUM-1"}, "export.csv:2")
    watch.see({"mandate_iban": "FR76", "mandate_rum": "RUM-2"}, "export.csv:3")
    watch.see({"mandate_bic": "AGRIFRPP"}, "export.csv:4")
    assert "3 invoice(s) of the run hold direct-debit data no binding reads (mandate_rum, " \
        "mandate_iban, mandate_bic; the first at export.csv:2)" in watch.note()[1]
    six = [f"mandat_{k}" for k in range(6)]
    watch = _watch(tmp_path)
    watch.see(dict.fromkeys(six, "x"), "export.csv:2")
    assert f"({', '.join(six)}; the first" in watch.note()[1]
    watch.see({"mandat_6": "x"}, "export.csv:3")
    assert f"({', '.join(six)}, …; the first" in watch.note()[1]


def test_the_note_is_said_at_the_payment_block_that_binds_no_direct_debit(tmp_path):
    """A payment: block binding the label alone: the note's place is that block's line,
    not bindings'."""
    watch = _watch(tmp_path, payment='  payment:\n    label: {const: "CANTINE"}\n')
    watch.see({"payment_method": "direct_debit"}, "export.csv:2")
    where, _ = watch.note()
    line = watch.mapping.path.read_text(encoding="utf-8").splitlines().index("  payment:") + 1
    assert where == f"{watch.mapping.path}:{line}: bindings.payment"


def test_the_constant_advised_is_the_method_the_table_says_false_as_written(tmp_path):
    table = "  payment_methods: {direct_debit: true, invoice: false, online: false}\n"
    watch = _watch(tmp_path, edit=lambda text: text.replace(
        table, "  payment_methods: {direct_debit: true, chèque: false}\n"))
    watch.see({"payment_method": "direct_debit"}, "export.csv:2")
    assert watch.note()[1].endswith('bind payment.direct_debit: {const: "chèque"}')


def test_the_scaffold_says_when_to_uncomment_its_payment_block():
    r = _run("new-mapping", "X", "--format", "pes-ormc")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    at = lines.index("  # payment:               # SEPA direct debit, see "
                     "docs/mapping-reference.md")
    assert lines[at - 3:at] == [
        "  # Uncomment payment: when the export has direct debits (a payment method, RUM",
        "  # and IBAN columns): left out, each is a title to pay, without its mandate,",
        "  # and export and preview say so (note unread_debit)."]
