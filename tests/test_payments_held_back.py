# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""`payfip payments` lists a title due whose family paid through its cancelled title
`held-back`, not `pending`: pesgen gives it no link while the trésorerie has that money
to apply or refund, and the school software is not to ask the family for it. On SQLite
and PostgreSQL, no PayFiP asked (operations recorded as `payfip link` records them)."""

from __future__ import annotations

import csv
import io
from datetime import date

from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.payfip import ledger
from pesgen.runs import export_recorded

from .payfip_support import exported, store  # noqa: F401 - fixtures
from .test_cancel import EXAMPLE, MAPPING
from .test_cancel_payfip import _paid, _recorded_link

ID_COLL = "21450999400015"
INVOICE = "FA-2026-00102"


def _link(store, n: int, saisie: str = "W") -> str:
    """An operation for INVOICE's active title, recorded as `payfip link` records it."""
    return _recorded_link(store, INVOICE, n, saisie)


def _again(store, tmp_path) -> str:
    """The example exported again (after its run was cancelled): the new run's id."""
    return export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                           date(2026, 11, 24)).run_id


def _rows(store) -> list[tuple[str, str, str | None]]:
    """INVOICE's rows in `payfip payments`: (status, amount due, run)."""
    return [(r["status"], r["amount_due"], r["run"]) for r in ledger.list_payments(store)
            if r["invoice"] == INVOICE]


def _anomaly(store, kind: str) -> int:
    [number] = [a["id"] for a in ledger.list_anomalies(store, open_only=True)
                if a["kind"] == kind and a["invoice"] == INVOICE]
    return number


def test_a_title_exported_in_place_of_a_paid_one_is_held_back_until_the_answer(
        store, exported, tmp_path):
    """Paid, then cancelled despite the payment, exported again: the new title is
    `held-back` (the invoice is paid for pesgen: `payfip link` refuses it), through a
    resolution with a note alone too; the trésorerie's refund recorded, it is `pending`."""
    _paid(store, _link(store, 1))
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    new = _again(store, tmp_path)
    assert _rows(store) == [("cancelled", "0.00", exported.run_id),
                            ("held-back", "187.50", new)]
    number = _anomaly(store, "paid-cancelled")
    ledger.resolve_anomaly(store, number, "support", "told the trésorerie")
    assert _rows(store) == [("cancelled", "0.00", exported.run_id),
                            ("held-back", "187.50", new)]
    ledger.resolve_anomaly(store, number, "support", "refunded on 2026-12-04", "refunded")
    assert _rows(store) == [("cancelled", "0.00", exported.run_id),
                            ("pending", "187.50", new)]


def test_a_title_exported_in_place_of_one_paid_since_its_cancellation_is_held_back(
        store, exported, tmp_path):
    """Paid through the cancelled title's link after the cancellation (a run-cancelled
    anomaly, open), exported again: the new title is `held-back`, in the CSV too; the
    anomaly resolved with a note alone lifts the hold: `pending`."""
    id_op = _link(store, 2)
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    _paid(store, id_op)
    new = _again(store, tmp_path)
    assert _rows(store) == [("cancelled", "0.00", exported.run_id),
                            ("held-back", "187.50", new)]
    # what holds the collectivity's invoice back; another collectivity's invoice of the
    # same number is not held back by it
    assert [u.id_op for found in ledger.unsettled_payments(store, ID_COLL).values()
            for u in found] == [id_op]
    assert ledger.unsettled_payments(store, "21450999400023") == {}
    # its result is known (paid): its open anomaly is no unknown result
    assert ledger.unknown_results_of(store, ID_COLL, INVOICE) == []
    # the hold is that invoice's: another of the new run, its link made, stays pending
    _recorded_link(store, "FA-2026-00103", 8)
    assert [r["status"] for r in ledger.list_payments(store)
            if r["invoice"] == "FA-2026-00103"] == ["pending"]
    result = CliRunner().invoke(app, ["payfip", "payments", "--db", store.url])
    assert result.exit_code == 0, result.output
    assert [(r["status"], r["amount_due"], r["amount_paid"], r["run"])
            for r in csv.DictReader(io.StringIO(result.stdout), delimiter=";")
            if r["invoice"] == INVOICE] == [("cancelled", "0.00", "", exported.run_id),
                                            ("held-back", "187.50", "", new)]
    ledger.resolve_anomaly(store, _anomaly(store, "run-cancelled"), "support",
                           "the trésorerie will tell")
    assert _rows(store) == [("cancelled", "0.00", exported.run_id),
                            ("pending", "187.50", new)]


def test_a_test_payment_through_a_cancelled_title_holds_nothing_back(
        store, exported, tmp_path):
    """A test link (saisie T) paid after the cancellation collected nothing: the new
    title is `pending`, as `payfip link` gives it a link."""
    id_op = _link(store, 3, saisie="T")
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    _paid(store, id_op)
    new = _again(store, tmp_path)
    assert [a["kind"] for a in ledger.list_anomalies(store, open_only=True)
            if a["invoice"] == INVOICE] == ["run-cancelled"]
    assert _rows(store) == [("cancelled", "0.00", exported.run_id),
                            ("pending", "187.50", new)]


def test_the_new_titles_own_row_is_held_back_by_a_payment_through_the_old_link(
        store, exported, tmp_path):
    """A link made for the new title (the invoice's one row then follows it), then the
    family pays through the cancelled title's link, still open: the new title's row is
    `held-back` (its link must not be paid too), whatever PayFiP says of its own link."""
    old = _link(store, 4)
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    new = _again(store, tmp_path)
    _link(store, 5)
    assert _rows(store) == [("pending", "187.50", new)]
    _paid(store, old)
    assert _rows(store) == [("held-back", "187.50", new)]
    ledger.resolve_anomaly(store, _anomaly(store, "run-cancelled"), "support", "refunded",
                           "refunded")
    assert _rows(store) == [("pending", "187.50", new)]


def test_payments_since_lists_an_invoice_held_back_or_released_since(
        store, exported, tmp_path):
    """The school software imports `payments --since` its last import: a run-cancelled
    anomaly recorded since holds the new title back, and one resolved since releases it,
    though neither changes the invoice's payment (its updated_at): both list the invoice
    again, with its new status. A day with no such change lists nothing."""
    import sqlalchemy as sa

    from pesgen.payfip.tables import anomalies, payments

    id_op = _link(store, 6)
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    new = _again(store, tmp_path)
    # another invoice's link: the anomaly recorded since is not its change
    _recorded_link(store, "FA-2026-00103", 12)
    with store.engine.begin() as conn:  # all of it long ago, imported since
        conn.execute(sa.update(payments).values(updated_at="2026-01-01T00:00:00Z"))
        conn.execute(sa.text("UPDATE runs SET cancelled_at = '2026-01-02T00:00:00Z' "
                             "WHERE cancelled_at IS NOT NULL"))
        conn.execute(sa.text("UPDATE runs SET created_at = '2026-01-03T00:00:00Z'"))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    _paid(store, id_op)  # through the cancelled title's link: held back
    since = [(r["status"], r["run"]) for r in ledger.list_payments(store, date(2026, 6, 1))]
    assert since == [("cancelled", exported.run_id), ("held-back", new)]
    with store.engine.begin() as conn:
        conn.execute(sa.update(anomalies).values(at="2026-01-04T00:00:00Z"))
    assert ledger.list_payments(store, date(2026, 6, 1)) == []
    ledger.resolve_anomaly(store, _anomaly(store, "run-cancelled"), "support",
                           "the trésorerie will tell")
    since = [(r["status"], r["run"]) for r in ledger.list_payments(store, date(2026, 6, 1))]
    assert since == [("cancelled", exported.run_id), ("pending", new)]


def test_a_held_back_title_paid_through_its_own_link_too_is_paid(store, exported, tmp_path):
    """The family paid through the cancelled title's link, then through the new title's
    own: the new title is paid, not held back (`held-back` is of a title due; the
    run-cancelled anomaly of the old link's money stays open for the trésorerie)."""
    old = _link(store, 9)
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    new = _again(store, tmp_path)
    own = _link(store, 10)
    _paid(store, old)
    assert _rows(store) == [("held-back", "187.50", new)]
    _paid(store, own)
    assert _rows(store) == [("paid", "187.50", new)]


def test_another_collectivitys_invoice_of_the_same_number_is_not_held_back(store, exported):
    """The hold is the collectivity's invoice's: another collectivity's invoice of the
    same number, its link made, stays pending while this one's run-cancelled anomaly is
    open."""
    id_op = _link(store, 13)
    store.cancel(exported.run_id, "wrong amounts", despite_payments=True)
    _paid(store, id_op)
    ledger.record_operation(store, {
        "id_op": "0d1a5c3e-0000-4000-8000-000000000014", "id_coll": "21450999400023",
        "invoice": INVOICE, "run_id": None, "numcli": "012345", "exer": "2026",
        "refdet": INVOICE.replace("-", ""), "amount_cents": 18750,
        "mel": "famille@example.org", "objet": "FACTURE", "saisie": "W",
        "endpoint": "http://payfip.invalid/tpa"})
    assert [r["status"] for r in ledger.list_payments(store)
            if r["collectivity"] == "21450999400023"] == ["pending"]
