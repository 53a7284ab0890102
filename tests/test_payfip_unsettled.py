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
    example_102_at,
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
            f"it has, record its answer: `pesgen payfip anomalies resolve {number} --applied "
            "--note TEXT` (the title due is then recorded paid) or `--refunded`")


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


def test_the_datamatrix_as_json_gives_the_unsettled_title_left_out(flow, store, tmp_path):
    """`payfip datamatrix --format json`: the title left out while money paid through its
    cancelled title is unsettled is a field (its anomaly, what happened, what to do), as
    the text says it on stderr; the other titles are written."""
    import json

    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, happened = _said(store, run, old)
    code, out, err = _cli(store, "payfip", "datamatrix", "--run", new.run_id[:8],
                          "--code-etablissement", "001", "--format", "json")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert report["unsettled"] == [{"invoice": "FA-2026-00102", "anomalies": [number],
                                    "happened": happened, "what_to_do": _advice(number)}]
    assert (report["paid_online"], report["skipped_bordereaux"]) == ([], [])
    [written] = report["files"]
    assert "FA-2026-00102" not in written["titles"] and len(written["titles"]) == 10


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
            "would pay twice; a test link, saisie T, collected nothing and holds back none); "
            "resolve it with --applied (the new title is then recorded paid) or --refunded, as "
            "the trésorerie answers") in out
    code, out, err = _cli(store, "payfip", "anomalies", "resolve", str(number), "--note",
                          "trésorerie: refunded on 2026-12-03", "--by", "support")
    assert code == 0, out + err
    # what it releases, and what to do when the trésorerie applied the money (pesgen
    # records no payment for it, and would make the link)
    assert err == (
        "note: invoice FA-2026-00102: no longer held back: `payfip link`, `tipi-url` and "
        "`payfip datamatrix` give it a payment again. The trésorerie's answer was not "
        "recorded (--applied or --refunded): if it applied the money to the title due, that "
        "title is paid: send the family no link nor Datamatrix for it, and record that "
        f"answer (`pesgen payfip anomalies resolve {number} --applied --note TEXT`: the "
        "title is then recorded paid); if it refunded the family, send the new link (and "
        "record it with --refunded) (docs/payfip.md)\n"), err
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


def _two_paid_through_the_cancelled_title(flow, store, tmp_path):
    """Two links of FA-2026-00102's title, its run cancelled, each paid after (by card, by
    direct debit), the input exported again: both links, and the numbers of their
    run-cancelled anomalies, oldest first; the run cancelled first."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    card = flow.link("FA-2026-00102", mode="W")
    debit = flow.link("FA-2026-00102", mode="W", again=True)
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(card, "card")
    flow.pay(debit, "debit")
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    found = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)
             if a["kind"] == "run-cancelled"}
    return run, card, debit, found[card.id_op], found[debit.id_op]


def test_two_payments_through_the_cancelled_title_are_each_said(flow, store, tmp_path):
    """Two links of the cancelled title, each paid after the cancellation (by card, by
    direct debit): the refusal says both payments, oldest first, and asks to resolve each
    anomaly; one resolved, the other still holds the link back, said alone."""
    run, card, debit, first, second = _two_paid_through_the_cancelled_title(flow, store,
                                                                           tmp_path)
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
    assert (f"record its answer: `pesgen payfip anomalies resolve ID --applied --note TEXT` "
            f"or `--refunded` for each (#{first}, #{second})") in said
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


# ------------------------------------------------ the trésorerie's answer, recorded


def _resolve(store, number: int, *flags: str):
    return _cli(store, "payfip", "anomalies", "resolve", str(number), *flags, "--note",
                "trésorerie: answered on 2026-12-03", "--by", "support")


def _payments(store) -> list[dict]:
    import json

    code, out, err = _cli(store, "payfip", "payments", "--format", "json", "--history")
    assert code == 0, out + err
    return [p for p in json.loads(out) if p["invoice"] == "FA-2026-00102"]


def test_applied_money_pays_the_title_due_and_nothing_more_is_sent(flow, store, tmp_path):
    """The trésorerie applied the money paid through the cancelled title to the title
    exported in its place: `resolve --applied` records that title paid (the operation,
    the amount, the method, PayFiP's time) and closes the anomaly; then `link` and
    `tipi-url` refuse it as a paid title (rule payfip.paid), the Datamatrix leaves it out,
    and `payfip payments` lists one row for it: paid, on the new title. Before, pesgen kept
    no notion of the answer and made the link."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    paid_at = ledger.get_operation(store, old.id_op)["transaction_at"]
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    [title] = [t for t in ledger.active_titles(store, ID_COLL)
               if t.invoice == "FA-2026-00102"]
    assert title.run_id == new.run_id
    assert out.startswith(f"anomaly #{number} run-cancelled (invoice FA-2026-00102): resolved ")
    assert out.endswith(
        " by support (applied); invoice FA-2026-00102 recorded paid: 187.50 by card on "
        f"{paid_at} (PayFiP operation {old.id_op}), applied to its title IdBord "
        f"{title.id_bord} of run {new.run_id}\n"), out
    assert err == ("note: invoice FA-2026-00102: paid: `payfip link`, `tipi-url` and `payfip "
                   "datamatrix` refuse it as any paid title, and `payfip payments` lists it "
                   "paid on that title, for the school software\n"), err
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["paid_cents"], pay["amount_cents"], pay["method"],
            pay["paid_at"], pay["id_op"], pay["applied_run"]) == (
        "paid", 18750, 18750, "card", paid_at, old.id_op, new.run_id)
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (anomaly["outcome"], anomaly["resolved_by"], anomaly["invoice_status"],
            anomaly["title_run"]) == ("applied", "support", "paid", new.run_id)

    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    assert (f"error: invoice FA-2026-00102: already paid through PayFiP: 187.50 by card on "
            f"{paid_at} (operation {old.id_op}, through a cancelled title, applied by the "
            f"trésorerie to the title of run {new.run_id}); no new link: the family would pay "
            "twice") in " ".join(err.split())
    assert re.findall(r"\(rule (payfip\.[a-z-]+)\)", err) == ["payfip.paid"], err
    code, out, err = _tipi(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err
    assert len(flow.fake_operations()) == 1  # nothing sent since the old link
    code, out, err = _datamatrix(store, new.run_id)
    assert code == 0, out + err
    [csv_path] = [Path(w.split("  ")[0].removeprefix("wrote ")) for w in out.splitlines()
                  if w.startswith("wrote ")]
    written = [row["invoice"] for row in csv.DictReader(csv_path.open(encoding="utf-8"),
                                                        delimiter=";")]
    assert "FA-2026-00102" not in written and len(written) == 10

    # one row, paid, on the title the money was applied to; its history says so
    [row] = _payments(store)
    assert (row["status"], row["amount_due"], row["amount_paid"], row["method"], row["run"],
            row["id_bord"], row["id_op"], row["cancelled_at"]) == (
        "paid", "187.50", "187.50", "card", new.run_id, title.id_bord, old.id_op, None)
    applied = [e for e in row["history"] if e["source"] == "support"]
    assert [(e["event"], e["status"]) for e in applied] == [
        ("paid", "paid"), ("anomaly-resolved", "paid")]
    assert (applied[0]["detail"]["anomaly"], applied[0]["detail"]["applied_to_run"],
            applied[0]["detail"]["from_run"]) == (number, new.run_id, run)

    # the list says what was decided, and what the invoice is now
    code, out, err = _cli(store, "payfip", "anomalies", "--all")
    assert code == 0, out + err
    assert (f"    invoice FA-2026-00102: paid (IdBord {title.id_bord} IdPce {title.id_pce} "
            f"of run {new.run_id}): "
            "the trésorerie applied this money to it\n") in out, out
    assert " by support (applied): trésorerie: answered on 2026-12-03\n" in out, out


def test_refunded_is_recorded_and_the_title_due_gets_its_link(flow, store, tmp_path):
    """`resolve --refunded`: the outcome recorded with the anomaly, nothing paid, and the
    new title gets its link again (the note says to send it)."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--refunded")
    assert code == 0, out + err
    assert out.endswith(" by support (refunded); no payment was recorded\n"), out
    assert err == ("note: invoice FA-2026-00102: no longer held back: `payfip link`, "
                   "`tipi-url` and `payfip datamatrix` give it a payment again; send the "
                   "family the new link\n"), err
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (anomaly["outcome"], anomaly["invoice_status"]) == ("refunded", "cancelled")
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["applied_run"]) == ("pending", None)
    code, out, err = _link(flow, store)
    assert code == 0, out + err


def _still_open(store, number: int) -> None:
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (anomaly["resolved_at"], anomaly["outcome"]) == (None, None)
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["applied_run"], pay["paid_cents"]) == ("pending", None, None)


def test_applied_is_refused_when_the_amount_collected_is_not_the_amount_due(
        flow, store, tmp_path):
    """50.00 collected (PayFiP reported another amount than the one asked) cannot pay a
    title of 187.50: refused, exit 7, nothing recorded; the anomaly stays open."""
    flow.pay_cancelled("5000")
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _resolve(store, number, "--applied")
    assert code == ExitCode.STATE, out + err
    assert out == ""
    assert (f"error: anomaly #{number}: --applied refused for invoice FA-2026-00102: 50.00 was "
            "collected through the cancelled title, and its title due (IdBord ") in err, err
    assert "is 187.50: pesgen records a payment of the whole amount due only" in err, err
    _still_open(store, number)


def test_applied_is_refused_while_no_active_title_holds_the_invoice(flow, store):
    """Paid through the cancelled title, not exported again: no title to apply it to."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(old, "card")
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--applied")
    assert code == ExitCode.STATE, out + err
    assert (f"error: anomaly #{number}: --applied refused for invoice FA-2026-00102: no active "
            "title holds it, so there is no title to apply the money to: export the invoice "
            "again first") in err, err
    _still_open(store, number)


def test_applied_is_refused_when_the_title_due_was_paid_meanwhile(flow, store, tmp_path):
    """The new title got its link while the cancelled title's was still open, and was paid
    through it; then the family paid the cancelled one too: that money is one payment too
    many (refund), not the title's payment."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    fresh = flow.link("FA-2026-00102", mode="W")
    flow.pay(fresh, "card")
    flow.pay(old, "card")
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _resolve(store, number, "--applied")
    assert code == ExitCode.STATE, out + err
    assert ("--applied refused for invoice FA-2026-00102: it is already paid (187.50 on ")\
        in err, err
    assert f"operation {fresh.id_op}): the money paid through the cancelled title is one " \
        "payment too many, for the trésorerie to refund; resolve with --refunded" in \
        " ".join(err.split()), err
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert anomaly["resolved_at"] is None
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["id_op"] == fresh.id_op


@pytest.mark.parametrize("flags", [["--applied"], ["--refunded"]])
def test_an_outcome_is_refused_for_a_test_link_or_another_kind(flow, store, tmp_path, flags):
    """A test link (saisie T) collected nothing; an amount-mismatch is not money paid
    through a cancelled title: --applied and --refunded are refused as usage (exit 2),
    nothing recorded."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path, mode="T")
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _resolve(store, number, *flags)
    assert code == ExitCode.USAGE, out + err
    assert (f"error: anomaly #{number}: operation {old.id_op} is a test link (saisie T): it "
            "collected nothing") in " ".join(err.split()), err
    assert ledger.list_anomalies(store, open_only=True)[0]["id"] == number
    flow.pay_cancelled("5000", invoice="FA-2026-00101")
    [other] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "amount-mismatch"]
    code, out, err = _resolve(store, other, *flags)
    assert code == ExitCode.USAGE, out + err
    assert (f"error: anomaly #{other} is amount-mismatch: {flags[0]} records what the "
            "trésorerie did with money paid for a cancelled title (a run-cancelled or "
            "paid-cancelled anomaly)") in " ".join(
                err.split()), err


def test_applied_and_refunded_together_are_refused(flow, store, tmp_path):
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--applied", "--refunded")
    assert code == ExitCode.USAGE, out + err
    assert "--applied or --refunded: the trésorerie did one or the other" in err
    _still_open(store, number)


def test_the_title_paid_by_applied_money_is_cancelled_only_despite_payments(
        flow, store, tmp_path):
    """A title paid by money the trésorerie applied to it is a paid title for `runs
    cancel` too: refused without --despite-payments (rule run.cancel-payfip), naming the
    payment and where it came from; cancelled with it, the payment stays with that title
    (`payfip payments`: cancelled, the money shown), as a title paid through its own link."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    paid_at = ledger.get_operation(store, old.id_op)["transaction_at"]
    with pytest.raises(StateError, match="--despite-payments") as info:
        store.cancel(new.run_id, "wrong again", whole=True)
    said = [(p.rule, p.invoice, p.message) for p in info.value.problems
            if p.invoice == "FA-2026-00102"]
    [(rule, _, message)] = said
    assert rule == "run.cancel-payfip"
    assert message.endswith(
        f": paid online 187.50 by card on {paid_at} (PayFiP operation {old.id_op}) through "
        f"the cancelled title of run {run}, applied to this title by the trésorerie (`pesgen "
        "payfip anomalies --all`); the payment stays attached to this title"), message
    done = store.cancel(new.run_id, "wrong again", whole=True, despite_payments=True)
    assert "FA-2026-00102" in [p.invoice for p in done.payments]
    [row] = _payments(store)
    assert (row["status"], row["amount_paid"], row["run"], row["id_op"]) == (
        "cancelled", "187.50", new.run_id, old.id_op)


def test_applied_is_refused_when_the_title_due_writes_the_number_otherwise(
        flow, store, tmp_path):
    """Exported again as `fa-2026-00102` (the same invoice for the guard): the payment
    records follow the number as the cancelled title wrote it, so pesgen cannot record the
    payment on that title; refused, nothing recorded."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(old, "card")
    number, _ = _said(store, run, old)
    lower = tmp_path / "school-export.json"
    lower.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        '"FA-2026-00102"', '"fa-2026-00102"'), encoding="utf-8")
    new = export_recorded(lambda: store, MAPPING, lower, tmp_path / "again",
                          date(2026, 11, 24))
    code, out, err = _resolve(store, number, "--applied")
    assert code == ExitCode.STATE, out + err
    assert (f"--applied refused for invoice FA-2026-00102: the title due writes the number "
            f"otherwise (fa-2026-00102 (run {new.run_id})) than the cancelled title did") \
        in " ".join(err.split()), err
    _still_open(store, number)


def test_applied_is_refused_for_a_title_of_a_rejected_bordereau(flow, store, tmp_path,
                                                                 monkeypatch):
    """The title due is in a bordereau the trésorerie rejected (as `acquit --record`
    recorded it): not in Hélios, nothing can be applied to it; refused."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    [title] = [t for t in ledger.active_titles(store, ID_COLL)
               if t.invoice == "FA-2026-00102"]
    asked = []

    def rejected(store_, run_id, bordereaux=None, conn=None):
        asked.append((run_id, list(bordereaux or [])))
        return {int(title.id_bord): object()}

    monkeypatch.setattr(ledger, "rejected_bordereaux", rejected)
    code, out, err = _resolve(store, number, "--applied")
    assert code == ExitCode.STATE, out + err
    assert asked == [(new.run_id, [int(title.id_bord)])]
    assert (f"its title (IdBord {title.id_bord} of run {new.run_id}) is in a bordereau the "
            "trésorerie rejected: not in Hélios, so nothing can be applied to it") in \
        " ".join(err.split()), err
    _still_open(store, number)


def test_applied_names_a_link_of_the_title_still_open(flow, store, tmp_path):
    """The title due got its link while the cancelled one's was still open, and the family
    paid the cancelled one: once the money is applied, the title's own link is still open
    and a payment through it would pay twice: `resolve --applied` says so."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    fresh = flow.link("FA-2026-00102", mode="W")
    flow.link("FA-2026-00102", mode="T")  # a test link collects nothing: not named
    flow.pay(old, "card")
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    made = ledger.get_operation(store, fresh.id_op)["created_at"]
    assert err.splitlines()[1:] == [
        f"note: invoice FA-2026-00102: its title's link made on {made} (operation "
        f"{fresh.id_op}) is still open (pending): a payment through it would pay the title "
        "twice (a double-payment anomaly, for the trésorerie to refund); tell the family not "
        "to use it"], err
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["id_op"] == old.id_op


def test_anomalies_as_json_say_what_the_text_says(flow, store, tmp_path):
    """`payfip anomalies --format json` (monitoring): the report's head, the counts, and
    each anomaly listed with PayFiP's answer, its invoice's state and what to do while
    open; resolved --applied, its outcome and the title it paid (with --all)."""
    import json

    run, old, new = _cancel_then_pay(flow, store, tmp_path, action="debit")
    number, _ = _said(store, run, old)
    paid_at = ledger.get_operation(store, old.id_op)["transaction_at"]
    code, out, err = _cli(store, "payfip", "anomalies", "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert (report["command"], report["ok"], report["exit_code"], report["error"],
            report["open"], report["resolved"]) == ("payfip anomalies", True, 0, None, 1, 0)
    [listed] = report["anomalies"]
    assert (listed["id"], listed["kind"], listed["id_op"], listed["invoice"], listed["open"],
            listed["invoice_status"], listed["title_run"], listed["again_run"],
            listed["outcome"]) == (number, "run-cancelled", old.id_op, "FA-2026-00102", True,
                                   "cancelled", run, new.run_id, None)
    assert listed["payfip_answer"] == {"result": "V", "saisie": "W", "amount_asked": "187.50",
                                       "amount_paid": "187.50", "method": "direct_debit",
                                       "paid_at": paid_at}
    assert listed["what_to_do"] == ledger.ANOMALY_ADVICE["run-cancelled"]
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    code, out, err = _cli(store, "payfip", "anomalies", "--format", "json")
    assert (code, json.loads(out)["anomalies"], json.loads(out)["resolved"]) == (0, [], 1)
    code, out, err = _cli(store, "payfip", "anomalies", "--all", "--format", "json")
    [listed] = json.loads(out)["anomalies"]
    assert (listed["open"], listed["what_to_do"], listed["outcome"], listed["resolved_by"],
            listed["invoice_status"], listed["title_run"]) == (
        False, None, "applied", "support", "paid", new.run_id)
    code, out, err = _cli(store, "payfip", "anomalies", "--format", "xml")
    assert code == ExitCode.USAGE and "--format must be text or json, got 'xml'" in err


@pytest.mark.parametrize("flags", [["--refunded"], []])
def test_a_second_payment_resolved_after_the_first_was_applied_says_the_invoice_paid(
        flow, store, tmp_path, flags):
    """Two links of the cancelled title paid after the cancellation: the trésorerie
    applies the first payment to the title due and refunds the second. Resolving the
    second, `resolve` says the invoice is paid and gets no link (as `link` refuses it),
    never that it gets a payment again and to send the family the new link. Before, it
    said so (the note of an invoice left unpaid)."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    card = flow.link("FA-2026-00102", mode="W")
    debit = flow.link("FA-2026-00102", mode="W", again=True)
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(card, "card")
    flow.pay(debit, "debit")
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    found = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)
             if a["kind"] == "run-cancelled"}
    code, out, err = _resolve(store, found[card.id_op], "--applied")
    assert code == 0, out + err
    paid_at = ledger.get_operation(store, card.id_op)["transaction_at"]
    code, out, err = _resolve(store, found[debit.id_op], *flags)
    assert code == 0, out + err
    assert out.endswith("; no payment was recorded\n"), out
    assert err == (
        "note: invoice FA-2026-00102: no longer held back, but paid: 187.50 by card on "
        f"{paid_at} (PayFiP operation {card.id_op}): `payfip link`, `tipi-url` and `payfip "
        "datamatrix` refuse it as any paid title; send the family no link for it\n"), err
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err


def test_money_applied_to_the_reinstated_title_it_was_paid_through_is_one_payment_to_cancel(
        flow, store, tmp_path, monkeypatch):
    """The run cancelled by mistake, paid through its link after the cancellation, then
    reinstated by a pesgen that left the run-cancelled anomaly open (before
    ``ledger.settle_reinstated``): the trésorerie applies the money to that same title.
    `runs cancel` of the run again names that payment once, as applied to the title
    (through its own link while it was cancelled), not also as an anomaly that may have
    collected money. Before, the one payment was listed twice, the second time 'through
    the cancelled title of run' the run itself."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(old, "card")
    with monkeypatch.context() as patch:
        patch.setattr(ledger, "settle_reinstated", lambda *args: ([], []))
        store.reinstate(run, "the trésorerie kept the titles")
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["applied_run"] == run
    paid_at = ledger.get_operation(store, old.id_op)["transaction_at"]
    with pytest.raises(StateError, match="--despite-payments") as info:
        store.cancel(run, "wrong again")
    [message] = [p.message for p in info.value.problems if p.invoice == "FA-2026-00102"]
    assert message == (
        f"IdBord 1: paid online 187.50 by card on {paid_at} (PayFiP operation {old.id_op}) "
        "through this title's link while it was cancelled, applied to this title by the "
        "trésorerie (`pesgen payfip anomalies --all`); the payment stays attached to this "
        "title"), message
    done = store.cancel(run, "wrong again", despite_payments=True)
    assert [p.invoice for p in done.payments].count("FA-2026-00102") == 1


def test_the_anomaly_list_says_the_title_the_money_was_applied_to_was_cancelled_since(
        flow, store, tmp_path):
    """Money applied to the title due, that title cancelled since (despite its payment)
    and the invoice exported a third time: `anomalies --all` says the money was applied
    to the title now cancelled, and that nothing is paid on the third. Before, the line
    ran on from the third title to '(IdBord 2 of run …): the trésorerie applied this money
    to it', as though it were the third's."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    before = ledger.invoice_due(store, ID_COLL, "FA-2026-00102")
    store.cancel(new.run_id, "wrong again", whole=True, despite_payments=True)
    third = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "third",
                            date(2026, 11, 25))
    [title] = [t for t in ledger.active_titles(store, ID_COLL)
               if t.invoice == "FA-2026-00102"]
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    code, out, err = _cli(store, "payfip", "anomalies", "--all")
    assert code == 0, out + err
    # (the cancellation of the title it paid recorded a paid-cancelled anomaly beside)
    lines = [w for w in out.splitlines() if w.startswith("    invoice FA-2026-00102: ")]
    assert (
        f"    invoice FA-2026-00102: cancelled (its title, IdBord 2 IdPce {before.id_pce} "
        f"of run {new.run_id}, "
        f"cancelled on {anomaly['cancelled_at']}; PayFiP status paid): nothing is due on "
        f"it; exported again since as IdBord {title.id_bord} IdPce {title.id_pce} of run "
        f"{third.run_id}, on which "
        "nothing is paid; the trésorerie had applied this money to that cancelled title"
    ) in lines, lines
    assert sorted(a["kind"] for a in ledger.list_anomalies(store)) == [
        "paid-cancelled", "run-cancelled"]


def test_a_cancellation_while_the_money_is_applied_sees_the_payment(flow, store, tmp_path,
                                                                      monkeypatch):
    """`runs cancel` of the title due while `resolve --applied` records its payment: the
    cancellation waits for it (the run's row locked, as a link's recording locks it), and
    then refuses without --despite-payments, naming the payment. Before, on PostgreSQL,
    the cancellation went through unseen, and the money was applied to a title it had
    just cancelled (SQLite's transactions were in turn already)."""
    import threading

    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    original, outcome = ledger.rejected_bordereaux, {}

    def cancel() -> None:
        try:
            outcome["done"] = store.cancel(new.run_id, "wrong again", whole=True)
        except StateError as exc:
            outcome["refused"] = exc

    def meanwhile(*args, **kwargs):
        # the cancellation comes while the application's transaction is open
        thread = threading.Thread(target=cancel)
        thread.start()
        thread.join(timeout=2)
        outcome["waited"] = thread.is_alive()
        outcome["thread"] = thread
        return original(*args, **kwargs)

    monkeypatch.setattr(ledger, "rejected_bordereaux", meanwhile)
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    outcome["thread"].join(timeout=30)
    assert outcome["waited"] and "done" not in outcome, outcome
    assert "--despite-payments" in str(outcome["refused"]), outcome
    assert [t.run_id for t in ledger.active_titles(store, ID_COLL)
            if t.invoice == "FA-2026-00102"] == [new.run_id]


def test_applied_names_another_link_of_the_cancelled_title_still_open(flow, store, tmp_path):
    """Two links of the title made before its cancellation, the family paying through one
    after it: once that money is applied to the title due, the other link is still open,
    and a payment through it would be a second payment of the invoice, as through the
    title due's own: `resolve --applied` names it too. Before, only the title due's own
    links were named."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    paid = flow.link("FA-2026-00102", mode="W")
    other = flow.link("FA-2026-00102", mode="W", again=True)
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(paid, "card")
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    made = ledger.get_operation(store, other.id_op)["created_at"]
    assert err.splitlines()[1:] == [
        f"note: invoice FA-2026-00102: the link of its cancelled title (IdBord 1 of run "
        f"{run}) made on {made} (operation {other.id_op}) is still open (pending): a payment "
        "through it would pay the invoice twice (an anomaly, for the trésorerie to refund); "
        "tell the family not to use it"], err
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["applied_run"] == new.run_id


def test_a_paid_invoice_exported_again_written_otherwise_gets_no_link(flow, store, tmp_path):
    """Money applied to the title due, that title cancelled since despite it, and the
    invoice exported a third time written otherwise (`fa-2026-00102`: the same invoice
    for the guard): `link` and `tipi-url` refuse it as paid (rule payfip.paid), as the
    Datamatrix leaves it out. Before, the payment was looked up by the number as the
    third title writes it, found none, and the link was made: the family paid twice."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    store.cancel(new.run_id, "wrong again", whole=True, despite_payments=True)
    lower = tmp_path / "school-export.json"
    lower.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        '"FA-2026-00102"', '"fa-2026-00102"'), encoding="utf-8")
    # a refdet rule that takes the number written in lower case
    mapping = tmp_path / "upper.yaml"
    mapping.write_text(MAPPING.read_text(encoding="utf-8").replace(
        'invoice.number | alnum"}', 'invoice.number | alnum | upper"}'), encoding="utf-8")
    export_recorded(lambda: store, mapping, lower, tmp_path / "third", date(2026, 11, 25))
    code, out, err = _cli(store, "payfip", "link", "-m", str(mapping), "-n", "fa-2026-00102",
                          "--mode", "W", "--endpoint", flow.endpoint, "--notify-url",
                          flow.notify_url, "--timeout", "5")
    assert code == ExitCode.STATE, out + err
    assert re.findall(r"\(rule (payfip\.[a-z-]+)\)", err) == ["payfip.paid"], err
    assert f"(operation {old.id_op}, through a cancelled title, applied by the trésorerie " \
        f"to the title of run {new.run_id})" in " ".join(err.split()), err
    code, out, err = _cli(store, "payfip", "tipi-url", "-m", str(mapping), "-n",
                          "fa-2026-00102", "--urlcl", "https://ecole.example.org/tipi/retour",
                          "--endpoint", flow.endpoint)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err
    assert len(flow.fake_operations()) == 1  # the old link only: nothing sent


def test_applied_is_refused_while_several_active_titles_hold_the_invoice(flow, store,
                                                                          tmp_path):
    """A store migrated from before schema 5 may hold a number in two active titles
    (docs/state.md): which one the money was applied to is for a person to say."""
    import pesgen.store as st

    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    with store.engine.begin() as conn:  # the cancelled title active again, beside,
        # written otherwise (as such a store holds them)
        conn.execute(st.run_invoices.update().where(
            st.run_invoices.c.run_id == run, st.run_invoices.c.invoice == "FA-2026-00102")
            .values(active=True, key_shared=True, debt_number=None, invoice="fa-2026-00102"))
    code, out, err = _resolve(store, number, "--applied")
    assert code == ExitCode.STATE, out + err
    assert (f"--applied refused for invoice FA-2026-00102: several active titles hold it "
            f"(fa-2026-00102 (run {run}), FA-2026-00102 (run {new.run_id})): which one the "
            "trésorerie applied the money to is for a person to say") in " ".join(
                err.split()), err
    _still_open(store, number)


# ---------------------------- a paid title cancelled: the trésorerie's answer recorded


def _paid_then_cancelled(flow, store, tmp_path, action="card"):
    """FA-2026-00102 paid through its link, its run cancelled despite it (a paid-cancelled
    anomaly), the example exported again: the cancelled run, the link, the new run, the
    anomaly's number."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    flow.pay(link, action)
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["status"] == "paid"
    store.cancel(run, "wrong amounts", despite_payments=True)
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["kind"] == "paid-cancelled"]
    assert (anomaly["id_op"], anomaly["invoice"], anomaly["source"], anomaly["resolved_at"],
            anomaly["invoice_status"], anomaly["again_run"]) == (
        link.id_op, "FA-2026-00102", "cancel", None, "cancelled", new.run_id)
    assert anomaly["detail"] == (f"its title, paid 187.50, cancelled (IdBord 1 of run {run}): "
                                 "wrong amounts")
    return run, link, new, anomaly["id"]


def test_a_paid_title_cancelled_is_an_anomaly_and_refunded_gives_the_new_title_its_link(
        flow, store, tmp_path):
    """A title paid online, cancelled despite it: `runs cancel` records a paid-cancelled
    anomaly (the trésorerie applies the money to the title exported in its place or
    refunds it). Until it answers the invoice is paid for pesgen (no link). Resolved
    --refunded: the payment is recorded refunded, the new title gets its link, and the
    refunded payment leaves the row once it does. Before, nothing could record the
    refund: the new title never got a link again."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err
    # the refusal says where to record the trésorerie's answer
    assert ("(`pesgen payfip payments --history` shows the payment); its title was "
            f"cancelled since (anomaly #{number}, paid-cancelled, not resolved): once the "
            "trésorerie has answered, record it: `pesgen payfip anomalies resolve "
            f"{number} --applied --note TEXT` (the money applied to the title due) or "
            "`--refunded` (refunded: the title due then gets its link)") in " ".join(
                err.split()), err
    code, out, err = _cli(store, "payfip", "payments")
    assert ("note: 1 cancelled title(s) were paid online (FA-2026-00102): the money stays "
            "with the cancelled title; the trésorerie refunds it or applies it to the title "
            "exported in its place; record its answer on the title's paid-cancelled anomaly "
            "(`pesgen payfip anomalies`)") in err, err
    code, out, err = _resolve(store, number, "--refunded")
    assert code == 0, out + err
    assert out.endswith(" by support (refunded); its payment is recorded refunded (no longer "
                        "a payment of the invoice)\n"), out
    assert err == ("note: invoice FA-2026-00102: no longer paid, its payment refunded: "
                   "`payfip link`, `tipi-url` and `payfip datamatrix` give it a payment "
                   "again; send the family the new link\n"), err
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["paid_cents"], pay["id_op"]) == ("refunded", 18750, link.id_op)
    [row, due] = _payments(store)
    assert (row["status"], row["payfip_status"], row["amount_paid"], row["run"]) == (
        "cancelled", "refunded", "187.50", run)
    assert [(e["event"], e["source"], e["status"]) for e in row["history"]][-2:] == [
        ("refunded", "support", "refunded"), ("anomaly-resolved", "support", "refunded")]
    assert (due["status"], due["run"], due["amount_paid"]) == ("pending", new.run_id, None)
    code, out, err = _cli(store, "payfip", "payments")
    assert code == 0 and "were paid online" not in err, err  # settled: nothing to do
    code, out, err = _link(flow, store)
    assert code == 0, out + err
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["paid_cents"], pay["method"], pay["paid_at"], pay["id_op"]) == (
        "pending", None, None, None, None)
    [row] = _payments(store)
    assert (row["status"], row["run"], row["amount_paid"]) == ("pending", new.run_id, None)


def test_a_paid_title_cancelled_applied_pays_the_new_title(flow, store, tmp_path):
    """Resolved --applied: the payment follows the title exported in its place (one row,
    paid, on it), which gets no link."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path, action="debit")
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    assert " by support (applied); invoice FA-2026-00102 recorded paid: 187.50 by direct " \
        "debit on " in out, out
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("paid", link.id_op,
                                                                 new.run_id)
    [row] = _payments(store)
    assert (row["status"], row["run"], row["amount_paid"]) == ("paid", new.run_id, "187.50")
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "applied by the trésorerie to the title of run " \
        f"{new.run_id}" in " ".join(err.split()), out + err


def test_a_paid_title_cancelled_resolved_with_a_note_alone_stays_paid(flow, store, tmp_path):
    """Resolved with the note alone: the answer is not recorded, the invoice stays paid
    for pesgen (no link), said on stderr."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number)
    assert code == 0, out + err
    assert "still paid for pesgen, by its cancelled title's payment: 187.50 by card on " \
        in err, err
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["status"] == "paid"
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    assert "paid-cancelled, not resolved" not in err  # resolved: nothing to record


def test_a_paid_title_cancelled_before_schema_15_gets_its_anomaly(flow, store, tmp_path,
                                                                  monkeypatch):
    """Migration 15: a store whose paid title was cancelled before `runs cancel` recorded
    paid-cancelled anomalies gets one for it (source migration), open, so that the
    trésorerie's answer can be recorded (here --refunded, then the new title's link)."""
    import sqlalchemy as sa

    import pesgen.store as st
    from pesgen.payfip.tables import anomalies
    from pesgen.store import Store

    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    with store.engine.begin() as conn:  # as a store of schema 14 held it
        conn.execute(anomalies.delete().where(anomalies.c.id == number))
        conn.execute(st.schema_table.delete().where(st.schema_table.c.version >= 15))
    store.engine.dispose()
    # migrated again up to 15 (the later ones' tables and columns are there already)
    monkeypatch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:15])
    again = Store(store.url)
    [anomaly] = ledger.list_anomalies(again)
    assert (anomaly["kind"], anomaly["id_op"], anomaly["invoice"], anomaly["source"],
            anomaly["resolved_at"]) == ("paid-cancelled", link.id_op, "FA-2026-00102",
                                        "migration", None)
    assert anomaly["detail"] == (f"its title, paid 187.50, cancelled (IdBord 1 of run {run}) "
                                 "before this pesgen recorded such anomalies")
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(st.schema_table.c.version))).scalar() == \
            len(st.MIGRATIONS)
    code, out, err = _resolve(again, anomaly["id"], "--refunded")
    assert code == 0, out + err
    code, out, err = _link(flow, again)
    assert code == 0, out + err
    again.engine.dispose()


# ------------------------------------- `anomalies resolve --format json`: support's tools


def _resolve_json(store, number, *flags: str, note: str = "trésorerie: answered on 2026-12-03"):
    import json

    code, out, err = _cli(store, "payfip", "anomalies", "resolve", str(number), *flags,
                          "--note", note, "--by", "support", "--format", "json")
    assert err == "", err  # nothing on standard error: its notes are fields
    return code, json.loads(out)


def _head(report: dict, number, code: int = 0, error=None) -> None:
    assert (report["command"], report["ok"], report["exit_code"], report["error"],
            report["id"]) == ("payfip anomalies resolve", code == 0, code, error, number)


PAID_ADVICE = ("`payfip link`, `tipi-url` and `payfip datamatrix` refuse it as any paid "
               "title, and `payfip payments` lists it paid on that title, for the school "
               "software")
AGAIN = "`payfip link`, `tipi-url` and `payfip datamatrix` give it a payment again"


def test_resolve_applied_as_json_gives_the_payment_recorded_and_the_links_still_open(
        flow, store, tmp_path):
    """`resolve --applied --format json`: one document, nothing on stderr: the anomaly,
    its resolution, the payment recorded on the title due (amount as decimal text and
    cents, method, PayFiP's time, the operation, that title's run and IdBord), the
    invoice paid, and each link still open with its title (the title due's own, the
    cancelled title's other) as fields, the text's notes beside. Before, a script read
    them in the text's sentences, the notes on standard error."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    other = flow.link("FA-2026-00102", mode="W", again=True)
    store.cancel(run, "wrong amounts", despite_payments=True)
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    fresh = flow.link("FA-2026-00102", mode="W")
    flow.link("FA-2026-00102", mode="T")  # a test link collects nothing: not named
    flow.pay(old, "card")
    number, _ = _said(store, run, old)
    [title] = [t for t in ledger.active_titles(store, ID_COLL) if t.invoice == "FA-2026-00102"]
    paid_at = ledger.get_operation(store, old.id_op)["transaction_at"]
    code, report = _resolve_json(store, number, "--applied")
    assert code == 0, report
    _head(report, number)
    # every field, in the order the report gives them (the head first), and no other
    assert list(report) == [
        "command", "ok", "exit_code", "error", "id", "kind", "invoice", "id_op",
        "resolved_at", "resolved_by", "outcome", "note", "earlier", "corrected", "recorded",
        "applied",
        "still_open", "invoice_state", "held_back_by", "paid", "advice", "notes"], list(report)
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (report["kind"], report["invoice"], report["id_op"], report["resolved_at"],
            report["resolved_by"], report["outcome"], report["note"], report["recorded"]) == (
        "run-cancelled", "FA-2026-00102", old.id_op, anomaly["resolved_at"], "support",
        "applied", "trésorerie: answered on 2026-12-03", "paid")
    payment = {"amount": "187.50", "amount_cents": 18750, "method": "card",
               "paid_at": paid_at, "id_op": old.id_op}
    assert report["applied"] == {**payment, "run": new.run_id, "id_bord": int(title.id_bord)}
    assert (report["invoice_state"], report["held_back_by"], report["paid"],
            report["advice"]) == ("paid", [], payment, PAID_ADVICE)
    made = {link.id_op: ledger.get_operation(store, link.id_op)["created_at"]
            for link in (other, fresh)}
    assert report["still_open"] == [
        {"id_op": other.id_op, "created_at": made[other.id_op], "status": "pending",
         "run": run, "id_bord": 1, "title": "cancelled"},
        {"id_op": fresh.id_op, "created_at": made[fresh.id_op], "status": "pending",
         "run": new.run_id, "id_bord": int(title.id_bord), "title": "due"}]
    assert report["notes"] == [
        f"invoice FA-2026-00102: paid: {PAID_ADVICE}",
        f"invoice FA-2026-00102: the link of its cancelled title (IdBord 1 of run {run}) made "
        f"on {made[other.id_op]} (operation {other.id_op}) is still open (pending): a payment "
        "through it would pay the invoice twice (an anomaly, for the trésorerie to refund); "
        "tell the family not to use it",
        f"invoice FA-2026-00102: its title's link made on {made[fresh.id_op]} (operation "
        f"{fresh.id_op}) is still open (pending): a payment through it would pay the title "
        "twice (a double-payment anomaly, for the trésorerie to refund); tell the family not "
        "to use it"]
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("paid", old.id_op, new.run_id)


def test_resolve_refunded_as_json_says_the_payment_refunded_and_the_title_released(
        flow, store, tmp_path):
    """A paid title cancelled, resolved `--refunded --format json`: its payment recorded
    refunded (`recorded`), no payment applied, the invoice released (the title due gets
    its link: the advice says to send it)."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, report = _resolve_json(store, number, "--refunded", note="refunded by the DGFiP")
    assert code == 0, report
    _head(report, number)
    assert (report["kind"], report["id_op"], report["outcome"], report["note"],
            report["recorded"], report["applied"], report["still_open"]) == (
        "paid-cancelled", link.id_op, "refunded", "refunded by the DGFiP", "refunded", None,
        [])
    assert (report["invoice_state"], report["held_back_by"], report["paid"],
            report["advice"]) == ("released", [], None, f"{AGAIN}; send the family the new "
                                                         "link")
    assert report["notes"] == [f"invoice FA-2026-00102: no longer paid, its payment "
                               f"refunded: {AGAIN}; send the family the new link"]
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["status"] == "refunded"


def test_resolve_with_a_note_alone_as_json_says_what_still_holds_the_invoice_back(
        flow, store, tmp_path):
    """Two payments through the cancelled title; the first resolved with the note alone:
    no payment recorded, the invoice still held back by the second anomaly (its number a
    field); the second resolved so too: released, the answer not recorded (the advice
    says what to do either way)."""
    _, card, debit, first, second = _two_paid_through_the_cancelled_title(flow, store,
                                                                         tmp_path)
    code, report = _resolve_json(store, first)
    assert code == 0, report
    _head(report, first)
    held = "no new link, TIPI link nor Datamatrix until it is resolved"
    assert (report["outcome"], report["recorded"], report["applied"], report["paid"],
            report["invoice_state"], report["held_back_by"], report["advice"]) == (
        None, None, None, None, "held_back", [second], held)
    assert report["notes"] == [f"invoice FA-2026-00102: still held back by anomaly #{second} "
                               f"(run-cancelled, not resolved): {held}"]
    code, report = _resolve_json(store, second)
    assert code == 0, report
    assert (report["id"], report["id_op"], report["invoice_state"], report["held_back_by"],
            report["recorded"]) == (second, debit.id_op, "released_unrecorded", [], None)
    assert report["advice"].startswith(f"{AGAIN}. The trésorerie's answer was not recorded "
                                       "(--applied or --refunded): if it applied the money")
    assert report["notes"] == [f"invoice FA-2026-00102: no longer held back: "
                               f"{report['advice']}"]


def test_resolve_of_a_paid_title_with_a_note_alone_as_json_gives_its_payment(
        flow, store, tmp_path):
    """A paid title cancelled, resolved with the note alone: the invoice stays paid, its
    payment a field (amount, method, time, operation), as the text's note says it."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path, action="debit")
    code, report = _resolve_json(store, number)
    assert code == 0, report
    paid_at = ledger.payment_of(store, ID_COLL, "FA-2026-00102")["paid_at"]
    assert (report["invoice_state"], report["recorded"], report["applied"]) == (
        "paid", None, None)
    assert report["paid"] == {"amount": "187.50", "amount_cents": 18750,
                              "method": "direct_debit", "paid_at": paid_at,
                              "id_op": link.id_op}
    assert report["notes"] == [
        f"invoice FA-2026-00102: still paid for pesgen, by its cancelled title's payment: "
        f"187.50 by direct debit on {paid_at} (PayFiP operation {link.id_op}); the "
        "trésorerie's answer was not recorded (--applied or --refunded): `payfip link`, "
        "`tipi-url` and `payfip datamatrix` refuse it as any paid title; send the family no "
        f"link for it; once it answers, record it: `pesgen payfip anomalies resolve {number} "
        "--applied --note TEXT` or `--refunded`"]


def test_resolve_refused_as_json_gives_the_error_and_the_texts_exit_code(flow, store,
                                                                        tmp_path):
    """A refusal in JSON: ok false, the error as the text says it, its problems, the
    anomaly's number as given (null when it is none), the text's exit code, nothing on
    standard error and nothing recorded: --applied refused (the amount collected is not
    the amount due, exit 7), --applied with --refunded (given as the group's `anomalies
    --format json resolve '#N'`, exit 2), no such anomaly and one resolved already (exit
    7), not a number (exit 2). An amount-mismatch resolved: nothing said of its invoice."""
    import json

    flow.pay_cancelled("5000")
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, report = _resolve_json(store, number, "--applied")
    _head(report, number, ExitCode.STATE, report["error"])
    assert code == ExitCode.STATE, report
    assert report["error"].startswith(f"anomaly #{number}: --applied refused for invoice "
                                      "FA-2026-00102: 50.00 was collected through the "
                                      "cancelled title, and its title due (IdBord "), report
    assert report["problems"] == []
    assert "applied" not in report and "invoice_state" not in report
    _still_open(store, number)
    # the group's --format, before the subcommand, counts (as its --db does)
    code, out, err = _cli(store, "payfip", "anomalies", "--format", "json", "resolve",
                          f"#{number}", "--applied", "--refunded", "--note", "n")
    assert (code, err) == (ExitCode.USAGE, ""), out + err
    _head(json.loads(out), number, ExitCode.USAGE,
          "--applied or --refunded: the trésorerie did one or the other")
    _still_open(store, number)
    code, report = _resolve_json(store, 9999)
    assert code == ExitCode.STATE, report
    _head(report, 9999, ExitCode.STATE, "no anomaly 9999 (`pesgen payfip anomalies --all` "
                                        "lists them)")
    code, report = _resolve_json(store, number)
    assert (code, report["invoice_state"]) == (0, "released_unrecorded"), report
    # the amount-mismatch beside: nothing said of what its invoice gets (the text says none)
    [other] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "amount-mismatch"]
    code, report = _resolve_json(store, other)
    assert (code, report["kind"], report["invoice_state"], report["held_back_by"],
            report["paid"], report["advice"], report["notes"], report["recorded"]) == (
        0, "amount-mismatch", None, [], None, None, [], None), report
    code, report = _resolve_json(store, number, note="again")
    assert code == ExitCode.STATE, report
    _head(report, number, ExitCode.STATE, report["error"])
    assert report["error"].startswith(f"anomaly {number} was already resolved on "), report
    code, report = _resolve_json(store, "x3")
    assert code == ExitCode.USAGE, report
    _head(report, None, ExitCode.USAGE, "anomaly 'x3': not an anomaly's number (3, or '#3' "
                                        "as `pesgen payfip anomalies` lists it)")
    code, out, err = _cli(store, "payfip", "anomalies", "resolve", str(number), "--note", "n",
                          "--format", "xml")
    assert code == ExitCode.USAGE and "--format must be text or json, got 'xml'" in err


def test_reinstating_a_paid_title_cancelled_resolves_its_anomaly(flow, store, tmp_path):
    """A title paid online, cancelled despite it (a paid-cancelled anomaly), then
    reinstated: the title is active and paid again, nothing is left for the trésorerie
    to decide, so the reinstatement resolves the anomaly (outcome reinstated, by the
    login name, the note naming the run, an anomaly-resolved event of source reinstate)
    and says so, text and JSON; `link` refuses the title as paid without naming an
    anomaly to resolve. Cancelled and reinstated a second time: the second anomaly is
    resolved as the first. Before, the anomaly stayed open for support, and `link`'s
    refusal asked for the trésorerie's answer on it."""
    import getpass
    import json

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    flow.pay(link, "card")
    paid_at = ledger.get_operation(store, link.id_op)["transaction_at"]
    for turn, fmt in ((1, "text"), (2, "json")):
        store.cancel(run, "wrong amounts", despite_payments=True)
        [number] = [a["id"] for a in ledger.list_anomalies(store) if a["resolved_at"] is None]
        code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason",
                              f"kept by the trésorerie ({turn})", "--format", fmt)
        assert code == 0, out + err
        said = (f"invoice FA-2026-00102: paid online 187.50 by card on {paid_at} (PayFiP "
                f"operation {link.id_op}): its title is active again and the payment its "
                f"own: anomaly #{number} (paid-cancelled) resolved (reinstated); if the "
                "trésorerie was told of the cancellation, tell it the title stands, paid; "
                "if it refunded the family meanwhile, `pesgen payfip anomalies resolve "
                f"{number} --correct --refunded --note TEXT`")
        if fmt == "text":
            assert f"note: {said}\n" in err, err
        else:
            report = json.loads(out)
            assert err == ""
            assert report["settled"] == [{
                "anomaly": number, "kind": "paid-cancelled", "invoice": "FA-2026-00102",
                "id_op": link.id_op,
                "id_bord": 1, "amount_paid": "187.50", "method": "card",
                "paid_at": paid_at}], report
        [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
        assert (anomaly["kind"], anomaly["outcome"], anomaly["resolved_by"],
                anomaly["invoice_status"]) == (
            "paid-cancelled", "reinstated", getpass.getuser(), "paid")
        assert anomaly["note"] == (f"run {run} reinstated (IdBord 1): kept by the trésorerie "
                                   f"({turn}): its title is active again, paid by this "
                                   "payment")
        code, out, err = _link(flow, store)
        assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err
        assert "anomaly #" not in err, err
    assert all(a["resolved_at"] for a in ledger.list_anomalies(store))
    [row] = _payments(store)
    assert (row["status"], row["run"], row["amount_paid"]) == ("paid", run, "187.50")
    assert [(e["event"], e["source"]) for e in row["history"]][-2:] == [
        ("title-reinstated", "reinstate"), ("anomaly-resolved", "reinstate")]
    assert row["history"][-1]["detail"] == {
        "anomaly": 2, "kind": "paid-cancelled", "by": getpass.getuser(),
        "outcome": "reinstated", "run": run}
    # the event is the payment's: its operation, the invoice paid again
    assert (row["history"][-1]["id_op"], row["history"][-1]["status"]) == (link.id_op, "paid")


def test_runs_reinstate_by_names_who_resolved_the_paid_cancelled_anomaly(flow, store):
    """`runs reinstate --by NAME` records NAME as who resolved the paid-cancelled anomaly
    the reinstatement settles (a support person working under a shared account), as
    `payfip anomalies resolve --by` does; an empty or over-long name is refused (exit 2),
    nothing reinstated."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    for bad in ("  ", "x" * 65):
        code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                              "--by", bad)
        assert code == ExitCode.USAGE, out + err
        assert "error: --by must be 1 to 64 characters" in err, err
        assert store.get_run(run)["status"] == "cancelled"
        assert all(a["resolved_at"] is None for a in ledger.list_anomalies(store))
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--by", "Alice (régie)")
    assert code == 0, out + err
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["outcome"], anomaly["resolved_by"]) == ("reinstated", "Alice (régie)")


def test_runs_reinstate_without_a_login_name_records_the_command(flow, store, monkeypatch):
    """No --by and no login name (a container without one): the paid-cancelled anomaly
    the reinstatement resolves is recorded resolved by `runs reinstate`, the command,
    not refused (a reinstatement is not a person's answer on the anomaly)."""
    import getpass

    def no_login() -> str:
        raise OSError("No username set in the environment")

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    flow.pay(flow.link("FA-2026-00102", mode="W"), "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    monkeypatch.setattr(getpass, "getuser", no_login)
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept")
    assert code == 0, out + err
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["outcome"], anomaly["resolved_by"]) == ("reinstated", "runs reinstate")


def test_reinstating_the_title_paid_leaves_open_the_anomaly_of_the_title_money_was_applied_to(
        flow, store, tmp_path):
    """Paid, cancelled, the money applied by the trésorerie to the title exported in its
    place (--applied), that title cancelled in turn (a second paid-cancelled anomaly,
    the payment following it), then the first run reinstated: the payment follows the
    second title, still cancelled, so its anomaly stays open (the trésorerie applies the
    money to the reinstated title or refunds it), and `link` still names it."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    store.cancel(new.run_id, "wrong again", whole=True, despite_payments=True)
    [second] = [a["id"] for a in ledger.list_anomalies(store) if a["resolved_at"] is None]
    done = store.reinstate(run, "kept by the trésorerie")
    assert done.settled == ()
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == second]
    assert (anomaly["resolved_at"], anomaly["outcome"]) == (None, None)
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    assert f"(anomaly #{second}, paid-cancelled, not resolved)" in " ".join(err.split()), err


def _paid_cancelled_refunded(flow, store):
    """FA-2026-00102 paid by card, its run cancelled despite it, the paid-cancelled
    anomaly resolved --refunded: (the run, the link, the anomaly's number)."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    flow.pay(link, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    [number] = [a["id"] for a in ledger.list_anomalies(store)]
    code, out, err = _resolve(store, number, "--refunded")
    assert code == 0, out + err
    return run, link, number


def test_a_title_reinstated_after_its_payment_was_refunded_is_due_again(flow, store, tmp_path):
    """Paid, cancelled despite it, the payment refunded by the trésorerie (--refunded),
    then the run reinstated: the family got its money back, so the title is due again.
    `runs reinstate` says so; `payfip payments` lists it due (pending, nothing paid, its
    PayFiP status refunded, its history saying paid, cancelled, refunded, reinstated);
    `runs cancel` counts no payment of it (cancelled and reinstated again, it needs no
    --despite-payments); the Datamatrix and `link` give it a payment. Before, `payments`
    listed it `refunded` with 187.50 paid, and `runs cancel` refused it as paid online."""
    import json

    run, link, _ = _paid_cancelled_refunded(flow, store)
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept")
    assert code == 0, out + err
    paid_at = ledger.get_operation(store, link.id_op)["transaction_at"]
    said = (f"invoice FA-2026-00102: paid online 187.50 by card on {paid_at} (PayFiP "
            f"operation {link.id_op}), refunded by the trésorerie while its title was "
            "cancelled: the title is due again; send the family a new link")
    assert f"note: {said}\n" in err, err
    [row] = _payments(store)
    assert (row["status"], row["payfip_status"], row["amount_due"], row["amount_paid"],
            row["method"], row["paid_at"], row["paid_at_source"], row["id_op"], row["numauto"],
            row["run"]) == ("pending", "refunded", "187.50", None, None, None, None, None,
                            None, run)
    assert [e["event"] for e in row["history"]] == [
        "created", "paid", "title-cancelled", "refunded", "anomaly-resolved",
        "title-reinstated"]
    [anomaly] = ledger.list_anomalies(store)
    assert anomaly["invoice_status"] == "pending"
    assert store.cancel(run, "wrong again").payments == ()
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["due_again"] == [{
        "invoice": "FA-2026-00102", "id_op": link.id_op, "id_bord": 1,
        "amount_refunded": "187.50", "method": "card", "paid_at": paid_at}]
    code, out, err = _datamatrix(store, run)
    assert code == 0 and "FA-2026-00102" not in err, out + err
    code, out, err = _link(flow, store)
    assert code == 0, out + err


def test_a_refunded_title_cancelled_again_beside_a_paid_one_gets_no_anomaly(flow, store):
    """The run of a title whose payment was refunded (--refunded) and reinstated is
    cancelled again despite another title's payment: that payment gets its paid-cancelled
    anomaly, the refunded money none (it is no longer a payment)."""
    run, _, number = _paid_cancelled_refunded(flow, store)
    store.reinstate(run, "kept")
    other = flow.link("FA-2026-00101", mode="W")
    flow.pay(other, "card")
    store.cancel(run, "wrong again", despite_payments=True)
    assert [(a["kind"], a["invoice"], a["id_op"]) for a in ledger.list_anomalies(store)
            if a["id"] != number] == [("paid-cancelled", "FA-2026-00101", other.id_op)]


def test_money_through_a_cancelled_title_refunded_is_no_payment_for_runs_cancel(
        flow, store, tmp_path):
    """Paid through the link of the run cancelled by mistake (a run-cancelled anomaly),
    refunded by the trésorerie (--refunded), the run reinstated: cancelling it again
    needs no --despite-payments, the refunded operation is no payment of its titles.
    Before, it was named as money that may have been collected for the title."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(old, "card")
    number, _ = _said(store, run, old)
    code, out, err = _resolve(store, number, "--refunded")
    assert code == 0, out + err
    store.reinstate(run, "the trésorerie kept the titles")
    assert store.cancel(run, "wrong again").payments == ()


def test_a_refused_link_of_a_title_due_again_shows_nothing_paid(flow, store, tmp_path):
    """Two links, the first paid, the run cancelled despite it, the payment refunded
    (--refunded), the run reinstated (due again), then the family refuses the second
    link: `payfip payments` lists the title refused, nothing paid. Before, the row kept
    the refunded payment (187.50 paid, its operation) beside the status refused."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    first = flow.link("FA-2026-00102", mode="W")
    second = flow.link("FA-2026-00102", mode="W", again=True)
    flow.pay(first, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    [number] = [a["id"] for a in ledger.list_anomalies(store)]
    code, out, err = _resolve(store, number, "--refunded")
    assert code == 0, out + err
    store.reinstate(run, "kept by the trésorerie")
    flow.pay(second, "refuse")
    [row] = _payments(store)
    assert (row["status"], row["payfip_status"], row["amount_due"], row["amount_paid"],
            row["method"], row["paid_at"], row["paid_at_source"], row["id_op"],
            row["numauto"]) == (
        "refused", "refused", "187.50", None, None, None, None, None, None), row


def test_resolved_says_paid_an_invoice_paid_under_its_number_written_otherwise(
        flow, store, tmp_path):
    """A link of the cancelled title still open; the invoice exported again written
    otherwise (`fa-2026-00102`, the same invoice for the guard), paid through the new
    title's link, then the old link paid too (a run-cancelled anomaly). Resolved with the
    note alone, the invoice is said paid, by the new link's payment, as `payfip link`
    refuses it (rule payfip.paid). Before, the payment was looked up by the number as the
    cancelled title wrote it, none was found, and the note said the invoice got a payment
    again: support would have sent a link pesgen refuses, or told the family to pay."""
    from pesgen.payfip.service import create_link

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    lower = tmp_path / "school-export.json"
    lower.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        '"FA-2026-00102"', '"fa-2026-00102"'), encoding="utf-8")
    mapping = tmp_path / "upper.yaml"  # a refdet rule that takes the number in lower case
    mapping.write_text(MAPPING.read_text(encoding="utf-8").replace(
        'invoice.number | alnum"}', 'invoice.number | alnum | upper"}'), encoding="utf-8")
    export_recorded(lambda: store, mapping, lower, tmp_path / "again", date(2026, 11, 24))
    new = create_link(store, mapping, "fa-2026-00102", endpoint=flow.endpoint, timeout=5,
                      notify_url=flow.notify_url, mode="W")
    flow.pay(new, "card")
    flow.pay(old, "card")
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, report = _resolve_json(store, number)
    assert code == 0, report
    assert (report["invoice_state"], report["paid"]["id_op"], report["paid"]["amount"]) == (
        "paid", new.id_op, "187.50"), report
    code, out, err = _cli(store, "payfip", "link", "-m", str(mapping), "-n", "fa-2026-00102",
                          "--mode", "W", "--endpoint", flow.endpoint, "--notify-url",
                          flow.notify_url, "--timeout", "5")
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err
    assert f"(operation {new.id_op})" in err, err


# ------------------------------------- pinned by a mutation run (session 40, mut40)


def test_a_paid_title_cancelled_again_after_its_reinstatement_is_refunded_once(
        flow, store, tmp_path):
    """A paid title cancelled, reinstated (its first paid-cancelled anomaly resolved so,
    outcome reinstated: reinst40) and cancelled again: a second anomaly of the same
    payment, open. Resolved --refunded: the payment changes then (`payments --since` lists
    it), the invoice exported again gets its link; paid through it, the new payment is
    the invoice's (the new title gets no link: the family would pay twice), and the
    refund is in the history once, by the second anomaly. The first cannot be resolved
    again."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    flow.pay(link, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    store.reinstate(run, "cancelled by mistake")
    store.cancel(run, "wrong amounts after all", despite_payments=True)
    found = [a for a in ledger.list_anomalies(store)
             if a["kind"] == "paid-cancelled" and a["id_op"] == link.id_op]
    assert [(a["outcome"], a["resolved_at"] is None) for a in found] == [
        ("reinstated", False), (None, True)]
    first, second = (a["id"] for a in found)
    code, out, err = _resolve(store, first, "--refunded")
    assert code == ExitCode.STATE and "was already resolved" in err, out + err
    with pytest.MonkeyPatch.context() as mp:  # resolved later than anything else changed
        mp.setattr(ledger, "utc_now", lambda: "2099-12-09T08:00:00Z")
        code, out, err = _resolve(store, second, "--refunded")
    assert code == 0, out + err
    # the payment changed then: `payfip payments --since` lists it from that day on
    code, out, err = _cli(store, "payfip", "payments", "--since", "2099-12-09")
    assert code == 0, out + err
    [row] = list(csv.DictReader(out.splitlines(), delimiter=";"))
    assert (row["invoice"], row["payfip_status"], row["updated_at"]) == (
        "FA-2026-00102", "refunded", "2099-12-09T08:00:00Z")
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    fresh = flow.link("FA-2026-00102", mode="W")
    flow.pay(fresh, "card")
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"]) == ("paid", fresh.id_op)
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err
    [row] = [r for r in _payments(store) if r["run"] == new.run_id]
    assert row["status"] == "paid"
    refunds = [e for r in _payments(store) for e in r["history"] if e["event"] == "refunded"]
    assert [(e["source"], e["status"], e["detail"]) for e in refunds] == [
        ("support", "refunded", {"anomaly": second, "refunded_by": "support",
                                 "paid_cents": 18750})], refunds


def test_anomalies_as_json_give_every_field_of_each_anomaly(flow, store, tmp_path):
    """`payfip anomalies --format json`, every field a monitoring script reads: PayFiP's
    answer with the amount it reported beside the one asked, the expected and got of a
    mismatch, the cancelled title and the one exported in its place (run and IdBord), the
    invoice's PayFiP status; an anomaly of no operation pesgen issued has no answer, no
    invoice and none of its fields."""
    import json

    link = flow.pay_cancelled("5000")
    run = ledger.get_operation(store, link.id_op)["run_id"]
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    [again] = [t for t in ledger.active_titles(store, ID_COLL) if t.invoice == "FA-2026-00102"]
    [title] = [t for t in store.find_invoice("FA-2026-00102") if t["run_id"] == run]
    unknown = "0d1a5c3e-0000-4000-8000-00000000dead"
    flow.notify(unknown)
    recorded = {a["id"]: a for a in ledger.list_anomalies(store)}
    mismatch, cancelled, forged = sorted(recorded)
    paid_at = ledger.get_operation(store, link.id_op)["transaction_at"]
    code, out, err = _cli(store, "payfip", "anomalies", "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert (report["open"], report["resolved"]) == (3, 0)
    first, _, third = report["anomalies"]
    assert first == {
        "id": mismatch, "at": recorded[mismatch]["at"], "kind": "amount-mismatch",
        "source": "notification", "id_op": link.id_op, "invoice": "FA-2026-00102",
        "detail": "result P not recorded as a payment", "expected": "18750", "got": "5000",
        "payfip_answer": {"result": "P", "saisie": "W", "amount_asked": "187.50",
                          "amount_paid": "50.00", "method": "card", "paid_at": paid_at},
        "invoice_status": "cancelled", "payfip_status": "pending", "title_run": run,
        "title_id_bord": 1, "title_id_pce": title["id_pce"],
        "cancelled_at": recorded[mismatch]["cancelled_at"],
        "again_run": new.run_id, "again_id_bord": again.id_bord,
        "again_id_pce": again.id_pce, "open": True,
        "what_to_do": ledger.ANOMALY_ADVICE["amount-mismatch"], "resolved_at": None,
        "resolved_by": None, "note": None, "outcome": None, "corrections": []}
    assert first["cancelled_at"] is not None and again.id_bord != 1
    assert third == {
        "id": forged, "at": recorded[forged]["at"], "kind": "unknown-idop",
        "source": "notification", "id_op": unknown, "invoice": None,
        "detail": "notification for an operation pesgen never issued; rejected",
        "expected": None, "got": None, "payfip_answer": None, "invoice_status": None,
        "payfip_status": None, "title_run": None, "title_id_bord": None,
        "title_id_pce": None, "cancelled_at": None, "again_run": None, "again_id_bord": None,
        "again_id_pce": None, "open": True,
        "what_to_do": ledger.ANOMALY_ADVICE["unknown-idop"], "resolved_at": None,
        "resolved_by": None, "note": None, "outcome": None, "corrections": []}
    code, out, err = _resolve(store, forged)
    assert code == 0, out + err
    # an amount-mismatch resolved: nothing said of the invoice's links (its run-cancelled
    # anomaly, open, is what holds them back)
    code, out, err = _resolve(store, mismatch)
    assert (code, err) == (0, ""), out + err
    assert out.endswith("; no payment was recorded\n"), out
    code, out, err = _cli(store, "payfip", "anomalies", "--all", "--format", "json")
    report = json.loads(out)
    assert (report["open"], report["resolved"], len(report["anomalies"])) == (1, 2, 3)
    [resolved] = [a for a in report["anomalies"] if a["id"] == forged]
    assert (resolved["open"], resolved["what_to_do"], resolved["resolved_by"],
            resolved["note"], resolved["outcome"]) == (
        False, None, "support", "trésorerie: answered on 2026-12-03", None)
    assert resolved["resolved_at"] is not None


def test_applied_money_is_the_payment_with_its_authorisation_and_change_time(
        flow, store, tmp_path):
    """Once --applied, the invoice's payment row is the collecting operation's in every
    column the school software reads: its authorisation number (numauto), and updated_at,
    the resolution's time, so that `payfip payments --since` lists the title newly paid
    from that day on."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number, _ = _said(store, run, old)
    numauto = ledger.get_operation(store, old.id_op)["numauto"]
    assert numauto
    with pytest.MonkeyPatch.context() as mp:  # resolved later than anything else changed
        mp.setattr(ledger, "utc_now", lambda: "2099-12-09T08:00:00Z")
        code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    code, out, err = _cli(store, "payfip", "payments", "--since", "2099-12-09")
    assert code == 0, out + err
    [row] = list(csv.DictReader(out.splitlines(), delimiter=";"))
    assert (row["invoice"], row["status"], row["run"], row["id_op"], row["numauto"],
            row["updated_at"]) == ("FA-2026-00102", "paid", new.run_id, old.id_op, numauto,
                                   "2099-12-09T08:00:00Z")
    # its history's paid event says who applied it, to which title, from which, and how
    [title] = [t for t in ledger.active_titles(store, ID_COLL) if t.invoice == "FA-2026-00102"]
    [paid] = [e for e in _payments(store)[0]["history"]
              if (e["event"], e["source"]) == ("paid", "support")]
    assert paid["detail"] == {
        "anomaly": number, "applied_by": "support", "applied_to_run": new.run_id,
        "id_bord": title.id_bord, "from_run": run, "method": "card",
        "transaction_at": ledger.get_operation(store, old.id_op)["transaction_at"]}, paid


def test_applied_money_pays_a_title_exported_again_at_another_amount(flow, store, tmp_path):
    """The cancelled title billed 187.50; exported again at 150.00, and the trésorerie
    applied the 150.00 PayFiP collected through the cancelled title's link to it: the
    payment is the new title's, due 150.00 and paid 150.00, not the 187.50 the old link
    asked (what `payfip payments` gives the school software)."""

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    old = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "wrong amounts", despite_payments=True)
    again = example_102_at(tmp_path)
    new = export_recorded(lambda: store, MAPPING, again, tmp_path / "again",
                          date(2026, 11, 24))
    flow.control("tamper", {"idop": old.id_op, "fields": {"montant": "15000"}})
    flow.pay(old, "card")
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _resolve(store, number, "--applied")
    assert code == 0, out + err
    assert " recorded paid: 150.00 by card on " in out, out
    [row] = _payments(store)
    assert (row["status"], row["run"], row["amount_due"], row["amount_paid"]) == (
        "paid", new.run_id, "150.00", "150.00")


# ------------------------------------- pinned by a mutation run (session 41, mut41)


def test_a_paid_cancelled_anomaly_resolved_meanwhile_is_left_to_its_resolution(
        flow, store, tmp_path):
    """PostgreSQL: `payfip anomalies resolve` may resolve the paid-cancelled anomaly
    between the reinstatement's read of it and its update (which changes only an anomaly
    still open): then the reinstatement resolves nothing, records no anomaly-resolved
    event, settles nothing, and succeeds. Simulated on SQLite by a trigger that leaves
    every anomaly's update undone."""
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the race is simulated by a SQLite trigger")
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    flow.pay(link, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER resolved_meanwhile BEFORE UPDATE ON "
                             "payfip_anomalies BEGIN SELECT RAISE(IGNORE); END")
    done = store.reinstate(run, "kept by the trésorerie")
    assert done.settled == () and done.invoices == 11
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["resolved_at"]) == ("paid-cancelled", None)
    [row] = _payments(store)
    assert [e["event"] for e in row["history"]][-2:] == ["title-cancelled",
                                                         "title-reinstated"]


def test_a_test_link_s_run_cancelled_anomaly_resolved_says_nothing_of_its_invoice(
        flow, store, tmp_path):
    """A test link (saisie T) paid after its run was cancelled collected nothing: resolved
    with the note alone, the report gives no state of its invoice, no advice and no note
    (nothing was held back by it)."""
    run, old, new = _cancel_then_pay(flow, store, tmp_path, mode="T")
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, report = _resolve_json(store, number)
    assert code == 0, report
    assert (report["recorded"], report["invoice_state"], report["held_back_by"],
            report["paid"], report["advice"], report["notes"]) == (
        None, None, [], None, None, []), report


def test_an_anomaly_of_no_invoice_resolved_names_none(flow, store):
    """A forged notification (an idop pesgen never made: unknown-idop, no invoice)
    resolved with a note: its line names the anomaly, no invoice, and says no payment was
    recorded; nothing on standard error."""
    import uuid

    flow.link("FA-2026-00102", mode="W")
    forged = str(uuid.uuid4())
    assert flow.notify(forged).status_code == 404
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["invoice"]) == ("unknown-idop", None)
    code, out, err = _resolve(store, anomaly["id"])
    assert code == 0, out + err
    [resolved] = ledger.list_anomalies(store)
    assert out == (f"anomaly #{anomaly['id']} unknown-idop: resolved {resolved['resolved_at']} "
                   "by support; no payment was recorded\n"), out
    assert err == ""


def test_an_invoice_still_held_back_by_two_anomalies_names_both(flow, store, tmp_path):
    """Three links of the cancelled title, each paid after the cancellation: one
    run-cancelled anomaly resolved with a note, the invoice is still held back by the two
    others, both named in the note, oldest first."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    links = [flow.link("FA-2026-00102", mode="W", again=True) for _ in range(3)]
    store.cancel(run, "wrong amounts", despite_payments=True)
    for link in links:
        flow.pay(link, "card")
    found = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)
             if a["kind"] == "run-cancelled"}
    first, second, third = (found[link.id_op] for link in links)
    code, out, err = _resolve(store, first)
    assert code == 0, out + err
    assert (f"note: invoice FA-2026-00102: still held back by anomaly #{second}, anomaly "
            f"#{third} (run-cancelled, not resolved): ") in err, err
