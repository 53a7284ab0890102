"""The CSV files pesgen writes for people: a text cell from outside never starts as a
spreadsheet formula (``pesgen._csv.text_cell``); pesgen's own numbers stay as they are."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import sqlalchemy as sa

from pesgen._csv import text_cell
from pesgen.export import _references_csv
from pesgen.store import Store, run_invoices

from .conftest import EXAMPLES, MAPPINGS, run_cli


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_a_text_starting_as_a_formula_gets_an_apostrophe(first):
    assert text_cell(f"{first}HYPERLINK(1)") == f"'{first}HYPERLINK(1)"


@pytest.mark.parametrize("value", ["FA-2026-00102", "A55A", "", None, 18750, "1=1", " =1"])
def test_any_other_value_is_unchanged(value):
    assert text_cell(value) == value


def test_the_payment_references_guard_the_invoice_and_keep_the_amount():
    """A run recorded before input.invoice-number refused a formula's first character
    (regenerate writes it again) may hold such an invoice number."""
    text = "".join(_references_csv(2026, 1, [("=HYPERLINK(1)", 1, "12", "1", "A", "B",
                                              Decimal("-12.50")),
                                             ("FA-2026-00102", 2, None, "1", None, None,
                                              Decimal("187.50"))]))
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[1] == ["'=HYPERLINK(1)", "2026", "1", "1", "12", "1", "A", "B", "-12.50"]
    assert rows[2] == ["FA-2026-00102", "2026", "1", "2", "", "", "", "", "187.50"]


def test_the_datamatrix_csv_guards_the_invoice(tmp_path):
    out = tmp_path / "out"
    result = run_cli("export", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
                     EXAMPLES / "school-export.json", "-o", out, "--date", "2026-11-23", "-q")
    assert result.exit_code == 0, result.output
    store = Store()
    with store.engine.begin() as conn:  # as a run recorded before input.invoice-number
        conn.execute(run_invoices.update().where(run_invoices.c.invoice == "FA-2026-00102")
                     .values(invoice="-FA-2026-00102"))
    run_id = store.list_runs()[0].id
    result = run_cli("payfip", "datamatrix", "--run", run_id, "--code-etablissement", "12")
    assert result.exit_code == 0, result.output
    [written] = out.glob("*.datamatrix.csv")
    rows = list(csv.DictReader(written.open(encoding="utf-8"), delimiter=";"))
    [row] = [r for r in rows if "FA-2026-00102" in r["invoice"]]
    assert row["invoice"] == "'-FA-2026-00102"
    assert row["image"].endswith(".datamatrix/-FA-2026-00102.svg")
    assert all(r["invoice"].startswith("FA-") for r in rows if r is not row)
    with store.engine.connect() as conn:  # the store keeps it as it is
        assert conn.execute(sa.select(sa.func.count()).where(
            run_invoices.c.invoice == "-FA-2026-00102")).scalar() == 1
