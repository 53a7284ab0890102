# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""Money paid through the link of a cancelled title, after the cancellation (a
`run-cancelled` anomaly), not settled yet: no new payment for the invoice's title due
until the trésorerie answers and the anomaly is resolved (docs/payfip.md, *Cancelled
titles*; its anomaly table says "send no new link for the new title until it
answers"). On SQLite and PostgreSQL, over real HTTP on loopback (test_payfip_flow)."""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode, StateError
from pesgen.payfip import ledger
from pesgen.payfip.tables import operations
from pesgen.runs import export_recorded

from .payfip_support import (  # noqa: F401 - fixtures
    MAPPING,
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_cancel import EXAMPLE

ID_COLL = "21450999400015"


def _cancel_then_pay(flow, store, tmp_path, invoice="FA-2026-00102", mode="W",
                     action="card"):
    """A link made for the invoice (saisie ``mode``), its run cancelled despite it, the
    family paying through it afterwards (``action``), the example exported again: the
    cancelled run, the old link, the new run."""
    run = ledger.invoice_due(store, ID_COLL, invoice).run_id
    old = flow.link(invoice, mode=mode)
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(old, action)
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    return run, old, new


def _cli(store, *args: str):
    result = CliRunner().invoke(app, [*args, "--db", store.url])
    return result.exit_code, result.stdout, result.stderr


def _link(flow, store, invoice="FA-2026-00102"):
    return _cli(store, "payfip", "link", "-m", str(MAPPING), "-n", invoice, "--mode", "W",
                "--endpoint", flow.endpoint, "--notify-url", flow.notify_url,
                "--timeout", "5")


def _tipi(flow, store, invoice="FA-2026-00102"):
    return _cli(store, "payfip", "tipi-url", "-m", str(MAPPING), "-n", invoice,
                "--urlcl", "https://ecole.example.org/tipi/retour",
                "--endpoint", flow.endpoint)


def _datamatrix(store, run: str):
    return _cli(store, "payfip", "datamatrix", "--run", run[:8], "--code-etablissement", "001")


def _said(store, run: str, old) -> tuple[int, str]:
    """The anomaly's number, and what the refusals say happened."""
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    op = ledger.get_operation(store, old.id_op)
    assert (anomaly["id_op"], anomaly["resolved_at"], op["status"]) == (
        old.id_op, None, "anomaly")
    return anomaly["id"], (
        f"paid online 187.50 by card on {op['transaction_at']} through its cancelled title "
        f"(IdBord 1 of run {run}), after the cancellation (PayFiP operation {old.id_op}; "
        f"anomaly #{anomaly['id']}, run-cancelled, not resolved)")


def _advice(number: int) -> str:
    return ("tell the trésorerie, which applies that money to the title due or refunds it, "
            "and send the family no new payment until it answers (it would pay twice); once "
            f"it has, record its answer: `pesgen payfip anomalies resolve {number} --note "
            "TEXT`")


def test_no_link_nor_tipi_url_while_money_paid_through_the_cancelled_title_is_unsettled(
        flow, store, tmp_path):
    """The walkthrough's case: paid by card through the cancelled title's link, the
    invoice exported again. `link` and `tipi-url` refuse its new title (exit 7, rule
    payfip.unsettled), naming the operation, the amount, the cancelled title, the anomaly
    and what to do; nothing is sent to PayFiP. Before, the link was made, exit 0."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, happened = _said(store, run, old)
    assert ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id == new.run_id
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    assert out == ""
    assert f"error: invoice FA-2026-00102: {happened}; no new link: {_advice(number)}" \
        in " ".join(err.split())
    assert re.findall(r"\(rule (payfip\.[a-z-]+)\)", err) == ["payfip.unsettled"], err
    # what the refusal leaves: nothing sent (a link writes no file)
    assert err.endswith("\n1 problem(s); nothing was sent.\n"), err
    assert len(flow.fake_operations()) == 1  # the old link only: nothing sent
    code, out, err = _tipi(flow, store, "fa-2026-00102")
    assert code == ExitCode.STATE, out + err
    assert out == ""  # no URL printed
    assert f"error: invoice FA-2026-00102: {happened}; no TIPI link: {_advice(number)}" \
        in " ".join(err.split())
    assert "(rule payfip.unsettled)" in err


def test_the_export_summary_and_the_datamatrix_say_it_too(flow, store, tmp_path):
    """The export of the invoice again notes it (policy payfip, recorded with the run),
    and the new run's Datamatrix leaves its title out, said on stderr in the same words;
    the other titles are written."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, happened = _said(store, run, old)
    [note] = [n for n in new.notes if n.policy == "payfip"]
    assert note.invoice == "FA-2026-00102"
    assert note.detail == f"{happened}; this title bills 187.50 again: {_advice(number)}"
    code, out, err = _datamatrix(store, new.run_id)
    assert code == 0, out + err
    assert (f"skipped FA-2026-00102 of run {new.run_id}: {happened}; no Datamatrix: "
            f"{_advice(number)}") in " ".join(err.split())
    [csv_path] = [Path(w.split("  ")[0].removeprefix("wrote ")) for w in out.splitlines()
                  if w.startswith("wrote ")]
    written = [row["invoice"] for row in csv.DictReader(csv_path.open(encoding="utf-8"),
                                                        delimiter=";")]
    assert "FA-2026-00102" not in written and len(written) == 10
    # a caller told of nothing (no on_unsettled) gets the same CSV all the same
    from pesgen.payfip.datamatrix import write_for_run

    [quiet] = write_for_run(store, new.run_id, tmp_path / "quiet", "001", image="svg")
    assert quiet.csv.read_text(encoding="utf-8") == csv_path.read_text(encoding="utf-8")


def test_once_the_anomaly_is_resolved_the_link_is_made_again(flow, store, tmp_path):
    """Resolving the anomaly records the trésorerie's answer (no payment, no status: the
    invoice stays pending) and lifts the refusal: the link, the TIPI URL and the
    Datamatrix are made as before."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path, action="debit")
    number, _ = _said(store, run, old)
    code, out, err = _cli(store, "payfip", "anomalies")
    assert code == 0, out + err
    # what PayFiP answered collected, for support to tell the trésorerie
    paid_at = ledger.get_operation(store, old.id_op)["transaction_at"]
    assert (f"\n    PayFiP answered V: 187.50 paid by direct debit on {paid_at} (saisie W)\n"
            "    invoice FA-2026-00102: cancelled (") in out, out
    assert ("    what to do: paid through the link of a cancelled title: tell the trésorerie, "
            "which applies the money to the new title or refunds it; until this anomaly is "
            "resolved, the invoice gets no new link, TIPI link nor Datamatrix (the family "
            "would pay twice; a test link, saisie T, collected nothing and holds back none)"
            ) in out
    code, out, err = _cli(store, "payfip", "anomalies", "resolve", str(number), "--note",
                          "trésorerie: refunded on 2026-12-03", "--by", "support")
    assert code == 0, out + err
    # what it releases, and what to do when the trésorerie applied the money (pesgen
    # records no payment for it, and would make the link)
    assert err == (
        "note: invoice FA-2026-00102: no longer held back: `payfip link`, `tipi-url` and "
        "`payfip datamatrix` give it a payment again. If the trésorerie applied the money to "
        "the title due, that title is paid: enter the payment in the school software by "
        "hand, and send the family no link nor Datamatrix for it; if it refunded the "
        "family, send the new link (docs/payfip.md)\n"), err
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["status"] == "pending"
    code, out, err = _link(flow, store)
    assert code == 0, out + err
    assert out.startswith("invoice FA-2026-00102: PayFiP operation ")
    [op] = [o for o in flow.fake_operations() if o["idOp"] != old.id_op]
    assert ledger.get_operation(store, op["idOp"])["run_id"] == new.run_id
    code, out, err = _tipi(flow, store)
    assert code == 0, out + err
    code, out, err = _datamatrix(store, new.run_id)
    assert code == 0, out + err
    assert "FA-2026-00102" not in err
    [csv_path] = [Path(w.split("  ")[0].removeprefix("wrote ")) for w in out.splitlines()
                  if w.startswith("wrote ")]
    assert "FA-2026-00102" in csv_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("mode, action", [("T", "card"), ("W", "refuse")])
def test_a_test_payment_or_a_refusal_through_the_cancelled_title_blocks_nothing(
        flow, store, tmp_path, mode, action):
    """A test link (saisie T) paid, or a production link refused: no money was collected
    through the cancelled title, so the new title gets its link, and the export and the
    Datamatrix say nothing of it."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path, mode=mode, action=action)
    assert ledger.get_operation(store, old.id_op)["status"] in ("anomaly", "refused")
    assert not [n for n in new.notes if n.policy == "payfip"]
    code, out, err = _link(flow, store)
    assert code == 0, out + err
    code, out, err = _datamatrix(store, new.run_id)
    assert code == 0, out + err
    assert "FA-2026-00102" not in err


def test_an_activation_payment_through_the_cancelled_title_blocks_the_link(flow, store,
                                                                          tmp_path):
    """An activation payment (saisie X): whether it debits the family is not confirmed,
    so it counts as money paid, and says so."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path, mode="X")
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    said = " ".join(err.split())
    assert ("paid in activation mode (saisie X: whether it debits the family is not "
            "confirmed) 187.50 by card on ") in said
    assert f"anomaly #{anomaly['id']}, run-cancelled, not resolved" in said


def test_another_invoice_is_not_blocked(flow, store, tmp_path):
    """The anomaly is FA-2026-00102's: FA-2026-00101, exported again too, gets its link,
    and a batch of both refuses FA-2026-00102 only, sending nothing."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    with pytest.raises(StateError) as info:
        flow.link("FA-2026-00102", mode="W")
    assert [(p.rule, p.invoice) for p in info.value.problems] == [
        ("payfip.unsettled", "FA-2026-00102")]
    code, out, err = _cli(store, "payfip", "link", "-m", str(MAPPING), "-n", "FA-2026-00101",
                          "-n", "FA-2026-00102", "--mode", "W", "--endpoint", flow.endpoint,
                          "--notify-url", flow.notify_url, "--timeout", "5")
    assert code == ExitCode.STATE, out + err
    assert "(rule payfip.unsettled)" in err and out == ""
    assert len(flow.fake_operations()) == 1
    made = flow.link("FA-2026-00101", mode="W")
    assert ledger.get_operation(store, made.id_op)["run_id"] == new.run_id


class _PayingMeanwhile:
    """A PayFiP client during whose creerPaiementSecurise the family pays through the
    cancelled title's link (its result recorded: a run-cancelled anomaly)."""

    def __init__(self, flow, old):
        from pesgen.payfip.client import PayfipClient

        self.flow, self.old = flow, old
        self.client = PayfipClient(flow.endpoint, timeout=5.0)
        self.endpoint = self.client.endpoint

    def creer_paiement_securise(self, request):
        self.flow.pay(self.old, "card")
        return self.client.creer_paiement_securise(request)

    def payment_url(self, id_op):
        return self.client.payment_url(id_op)

    def close(self):
        self.client.close()


def test_a_payment_through_the_cancelled_title_while_the_link_is_made_withholds_it(
        flow, store, tmp_path):
    """The family pays through the cancelled title's link while PayFiP makes the new
    title's operation: the operation is recorded, its link not given (exit 7, as for a
    payment or a cancellation meanwhile)."""
    from pesgen.payfip.service import create_link

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    client = _PayingMeanwhile(flow, old)
    try:
        with pytest.raises(StateError) as info:
            create_link(store, MAPPING, "FA-2026-00102", mode="W", client=client,
                        notify_url=flow.notify_url)
    finally:
        client.close()
    assert info.value.exit_code == ExitCode.STATE
    assert [p.rule for p in info.value.problems] == ["payfip.unsettled"]
    assert "the operation is recorded, but do not send its link" in str(info.value)
    [made] = [o for o in flow.fake_operations() if o["idOp"] != old.id_op]
    assert ledger.get_operation(store, made["idOp"])["run_id"] == new.run_id


def test_the_amount_said_is_the_one_payfip_reported(flow, store, tmp_path):
    """Paid through the cancelled title at another amount than the one asked (an
    amount-mismatch beside the run-cancelled anomaly): the refusal says what PayFiP
    reported collected, 50.00, not the 187.50 asked."""
    flow.pay_cancelled("5000")
    assert sorted(a["kind"] for a in ledger.list_anomalies(store)) == [
        "amount-mismatch", "run-cancelled"]
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    with pytest.raises(StateError) as info:
        flow.link("FA-2026-00102", mode="W")
    assert str(info.value).startswith("invoice FA-2026-00102: paid online 50.00 by card on ")
    assert [p.rule for p in info.value.problems] == ["payfip.unsettled"]


def test_a_payment_at_another_collectivite_holds_back_nothing_here(flow, store, tmp_path):
    """An anomaly is its operation's collectivité's: the same invoice number paid through
    a cancelled title at another one (its SIRET, on the same state database) does not
    hold back this one's link."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    with store.engine.begin() as conn:
        conn.execute(operations.update().where(operations.c.id_op == old.id_op)
                     .values(id_coll="21450999400023"))
    made = flow.link("FA-2026-00102", mode="W")
    assert ledger.get_operation(store, made.id_op)["run_id"] == new.run_id


def test_two_payments_through_the_cancelled_title_are_each_said(flow, store, tmp_path):
    """Two links of the cancelled title, each paid after the cancellation (by card, by
    direct debit): the refusal says both payments, oldest first, and asks to resolve each
    anomaly; one resolved, the other still holds the link back, said alone."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    card, debit = flow.link("FA-2026-00102", mode="W"), flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(card, "card")
    flow.pay(debit, "debit")
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    found = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)
             if a["kind"] == "run-cancelled"}
    first, second = found[card.id_op], found[debit.id_op]
    assert first < second

    def paid(link, how: str, number: int) -> str:
        op = ledger.get_operation(store, link.id_op)
        return (f"paid online 187.50 {how} on {op['transaction_at']} through its cancelled "
                f"title (IdBord 1 of run {run}), after the cancellation (PayFiP operation "
                f"{link.id_op}; anomaly #{number}, run-cancelled, not resolved)")

    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    said = " ".join(err.split())
    assert (f"error: invoice FA-2026-00102: {paid(card, 'by card', first)}; "
            f"{paid(debit, 'by direct debit', second)}; no new link: ") in said
    assert (f"record its answer: `pesgen payfip anomalies resolve ID --note TEXT` for each "
            f"(#{first}, #{second})") in said
    assert re.findall(r"\(rule (payfip\.[a-z-]+)\)", err) == ["payfip.unsettled"] * 2, err
    code, out, err = _cli(store, "payfip", "anomalies", "resolve", str(first), "--note",
                          "trésorerie: applied to the new title", "--by", "support")
    assert code == 0, out + err
    assert err == (f"note: invoice FA-2026-00102: still held back by anomaly #{second} "
                   "(run-cancelled, not resolved): no new link, TIPI link nor Datamatrix "
                   "until it is resolved\n"), err
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    said = " ".join(err.split())
    assert (f"error: invoice FA-2026-00102: {paid(debit, 'by direct debit', second)}; no new "
            f"link: {_advice(second)}") in said
    assert card.id_op not in said


def test_a_payment_whose_title_is_not_found_names_its_run_only():
    """An operation whose title its run does not hold (no IdBord found: the outer join of
    unsettled_payments) is said through its run; a result code pesgen does not map to a
    means of payment says none."""
    found = ledger.Unsettled(anomaly=4, invoice="FA-2026-00102", id_op="OP-4", cents=1200,
                             result_code=None, paid_at="2026-12-01 10:00:00", run_id="RUN",
                             id_bord=None, saisie="W")
    assert found.happened() == (
        "paid online 12.00 on 2026-12-01 10:00:00 through its cancelled title (run RUN), "
        "after the cancellation (PayFiP operation OP-4; anomaly #4, run-cancelled, not "
        "resolved)")
