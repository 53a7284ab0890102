# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""Cancelling a run, or a bordereau of it, whose titles have PayFiP operations: paid,
pending; on SQLite and PostgreSQL, over real HTTP on loopback (see test_payfip_flow)."""

from __future__ import annotations

from datetime import date

from pesgen.payfip import ledger
from pesgen.runs import export_recorded

from .payfip_support import (  # noqa: F401 - fixtures
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_cancel import EXAMPLE, split_mapping


def _split_run(store, tmp_path) -> str:
    """The flow's run cancelled (nothing paid yet), the example exported again in
    bordereaux of 4: its run id."""
    first = ledger.invoice_due(store, "21450999400015", "FA-2026-00101").run_id
    store.cancel(first, "exported again in bordereaux of 4")
    return export_recorded(store, split_mapping(tmp_path), EXAMPLE, tmp_path / "split",
                           date(2026, 11, 24)).run_id


def test_a_payment_through_the_link_of_a_title_of_a_cancelled_bordereau_is_an_anomaly(
        flow, store, tmp_path):
    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    rejected = flow.link("FA-2026-00105", mode="W")  # IdBord 3
    taken = flow.link("FA-2026-00101", mode="W")  # IdBord 2
    store.cancel(run, "trésorerie rejected IdBord 3", [3])
    flow.pay(rejected, "card")
    flow.pay(taken, "card")
    assert ledger.get_operation(store, rejected.id_op)["status"] == "anomaly"
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["invoice"], anomaly["got"]) == (
        "run-cancelled", "FA-2026-00105", f"run {run}: IdBord 3 cancelled")
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00105")["status"] != "paid"
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00101")["status"] == "paid"
