# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""Corrections of an anomaly's resolution beyond test_payfip_correct's: a resolution
`runs reinstate` recorded (outcome ``reinstated``) corrected to ``--refunded`` (the
trésorerie refunded the family while the title was cancelled), every other correction of
it refused naming what to do; ``--correct --note-only``, the answer taken back and the
anomaly left resolved with the note alone; and two corrections of one anomaly at once,
one recorded, the other refused (docs/payfip.md, *Correcting an answer recorded by
mistake*)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa

from pesgen.errors import ExitCode, StateError
from pesgen.payfip import ledger

from .payfip_support import (  # noqa: F401 - fixtures
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_correct import INVOICE, _anomaly, _events, _run_cancelled
from .test_payfip_unsettled import ID_COLL, _cancel_then_pay, _cli, _link, _paid_then_cancelled
from .test_resolve_later import _resolve


def _paid_through_then_reinstated(flow, store):
    """The invoice's link made, its run cancelled by mistake, the family paying through it
    (a run-cancelled anomaly), the run reinstated (the money recorded as the title's
    payment, the anomaly resolved reinstated): the run, the link, the anomaly's number and
    the invoice's payment row as it was before the reinstatement."""
    run = ledger.invoice_due(store, ID_COLL, INVOICE).run_id
    link = flow.link(INVOICE, mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(link, "card")
    number = _run_cancelled(store)
    before = ledger.payment_of(store, ID_COLL, INVOICE)
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--by", "alice")
    assert code == 0, out + err
    assert _anomaly(store, number)["outcome"] == "reinstated"
    return run, link, number, before


def _paid_then_reinstated(flow, store):
    """The invoice paid through its link, its run cancelled despite it (a paid-cancelled
    anomaly), then reinstated (the anomaly resolved reinstated): the run, the link and
    the anomaly's number."""
    run = ledger.invoice_due(store, ID_COLL, INVOICE).run_id
    link = flow.link(INVOICE, mode="W")
    flow.pay(link, "card")
    store.cancel(run, "by mistake", despite_payments=True)
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "paid-cancelled"]
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--by", "alice")
    assert code == 0, out + err
    assert _anomaly(store, number)["outcome"] == "reinstated"
    return run, link, number


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_money_kept_by_a_reinstatement_corrected_to_refunded_is_taken_back(flow, store, fmt):
    """Paid through the title's link while it was cancelled, the run reinstated (the
    money recorded as the title's payment, outcome reinstated); the trésorerie had in fact
    refunded the family: `--correct --refunded` takes that payment back (the row as
    before the reinstatement, the operation an anomaly again), records refunded, and the
    title, active and unpaid, gets its link again. Before, refused."""
    run, link, number, before = _paid_through_then_reinstated(flow, store)
    first = _anomaly(store, number)
    code, out, err = _resolve(store, number, "--correct", "--refunded", "--format", fmt,
                              note="refunded while cancelled, said the trésorerie")
    assert code == 0, out + err
    taken = ("the payment it recorded (187.50, on its title reinstated) is taken back "
             "(the invoice's payment row: pending)")
    if fmt == "text":
        assert out.startswith(f"anomaly #{number} run-cancelled (invoice {INVOICE}): "
                              "resolved "), out
        assert out.endswith(" by support (refunded); no payment was recorded\n"), out
        assert err == (
            f"note: anomaly #{number} was resolved on {first['resolved_at']} by alice "
            f"(reinstated: {first['note']}): corrected, the trésorerie's answer is refunded "
            f"now; {taken}; that resolution is kept in the invoice's history (`pesgen "
            "payfip payments --history`)\n"
            f"note: invoice {INVOICE}: no longer held back: `payfip link`, `tipi-url` and "
            "`payfip datamatrix` give it a payment again; send the family the new link\n"
        ), err
    else:
        assert err == "", err
        report = json.loads(out)
        fixed = report["corrected"]
        assert (report["outcome"], report["invoice_state"], fixed["from"], fixed["to"],
                fixed["reopened"], fixed["withdrawn"]) == (
            "refunded", "released", "reinstated", "refunded", False,
            {"payment": "paid", "paid_cents": 18750, "applied_to_run": None,
             "status": "pending"}), report
        assert taken in report["notes"][0], report
    after = ledger.payment_of(store, ID_COLL, INVOICE)
    assert {**after, "updated_at": None} == {**before, "updated_at": None}
    assert ledger.get_operation(store, link.id_op)["status"] == "anomaly"
    assert [e[:2] for e in _events(store, "paid", "payment-withdrawn",
                                   "anomaly-corrected")] == [
        ("paid", "paid"), ("payment-withdrawn", "pending"), ("anomaly-corrected", "pending")]
    code, out, err = _link(flow, store)
    assert code == 0, out + err


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_paid_title_reinstated_corrected_to_refunded_is_due_again(flow, store, fmt):
    """Paid, its run cancelled, then reinstated (the paid-cancelled anomaly resolved
    reinstated); the trésorerie had refunded the family meanwhile: `--correct --refunded`
    records the payment refunded (the reinstatement had recorded none, nothing taken
    back): the title, active, gets its link again."""
    _run, link, number = _paid_then_reinstated(flow, store)
    code, out, err = _resolve(store, number, "--correct", "--refunded", "--format", fmt,
                              note="refunded while cancelled")
    assert code == 0, out + err
    if fmt == "text":
        assert out.endswith(" by support (refunded); its payment is recorded refunded (no "
                            "longer a payment of the invoice)\n"), out
        assert ("corrected, the trésorerie's answer is refunded now; that answer had "
                "recorded no payment; ") in err, err
        assert (f"\nnote: invoice {INVOICE}: no longer paid, its payment refunded: ") in err
    else:
        report = json.loads(out)
        assert (report["recorded"], report["invoice_state"], report["corrected"]["from"],
                report["corrected"]["withdrawn"]) == (
            "refunded", "released", "reinstated", None), report
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"]) == ("refunded", link.id_op), pay
    assert _anomaly(store, number)["outcome"] == "refunded"
    code, out, err = _link(flow, store)
    assert code == 0, out + err


def test_a_reinstated_resolution_is_corrected_to_refunded_only(flow, store):
    """A resolution `runs reinstate` recorded: reopened (`--correct`), `--correct
    --applied` and `--correct --note-only` are refused, exit 7, nothing changed, the
    message saying why (the title is active again) and what to do: `--correct
    --refunded`, or `runs cancel` of its bordereau when the reinstatement was the
    mistake; JSON too."""
    run, link, number, _before = _paid_through_then_reinstated(flow, store)
    first = _anomaly(store, number)
    said = (
        f"anomaly #{number} (run-cancelled, invoice {INVOICE}) was resolved on "
        f"{first['resolved_at']} by alice when `runs reinstate` took its title back "
        "(reinstated): that title is active again, paid by this money, so there is no "
        "cancelled title for the anomaly to reopen on nor another one to apply the money "
        "to. If the trésorerie refunded the family while the title was cancelled: `pesgen "
        f"payfip anomalies resolve {number} --correct --refunded --note TEXT`. If the "
        f"reinstatement was a mistake: `pesgen runs cancel {run} --bordereau 1 "
        "--despite-payments --reason TEXT` cancels the title again, its payment then a "
        "paid-cancelled anomaly of its own, to resolve with the trésorerie's answer")
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    for flags in ((), ("--applied",), ("--note-only",)):
        code, out, err = _resolve(store, number, "--correct", *flags, note="x")
        assert (code, out, err) == (ExitCode.STATE, "", f"error: {said}\n"), flags
    code, out, err = _resolve(store, number, "--correct", "--format", "json", note="x")
    assert code == ExitCode.STATE, out + err
    report = json.loads(out)
    assert (report["ok"], report["id"], report["error"]) == (False, number, said), report
    assert _anomaly(store, number) == first
    assert ledger.payment_of(store, ID_COLL, INVOICE) == pay
    assert _events(store, "anomaly-corrected", "payment-withdrawn") == []


def test_a_reinstated_title_cancelled_again_is_not_corrected(flow, store):
    """Reinstated, then cancelled again (its payment a new paid-cancelled anomaly):
    `--correct --refunded` on the reinstated resolution is refused, exit 7, naming the
    title cancelled again; nothing changed."""
    run, link, number = _paid_then_reinstated(flow, store)
    store.cancel(run, "wrong after all", despite_payments=True)
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="x")
    assert code == ExitCode.STATE, out + err
    assert err == (
        f"error: anomaly #{number} (paid-cancelled, invoice {INVOICE}): its title (run "
        f"{run}), reinstated, was cancelled again since: its payment went with it (its own "
        "paid-cancelled anomaly, `pesgen payfip anomalies`); pesgen cannot take it back "
        "safely: settle it with the trésorerie\n"), err
    assert ledger.payment_of(store, ID_COLL, INVOICE) == pay
    assert _anomaly(store, number)["outcome"] == "reinstated"


def test_a_reinstated_payment_refunded_since_is_not_taken_back(flow, store):
    """Reinstated, cancelled again, that paid-cancelled anomaly resolved --refunded: the
    payment the title was reinstated with is no longer the invoice's (refunded);
    `--correct --refunded` on the reinstated resolution is refused, exit 7, saying so."""
    run, link, number = _paid_then_reinstated(flow, store)
    store.cancel(run, "wrong after all", despite_payments=True)
    [later] = [a["id"] for a in ledger.list_anomalies(store)
               if a["kind"] == "paid-cancelled" and a["id"] != number]
    code, out, err = _resolve(store, later, "--refunded", note="refunded")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="x")
    assert code == ExitCode.STATE, out + err
    assert err.startswith(
        f"error: anomaly #{number} (paid-cancelled, invoice {INVOICE}): the payment its "
        f"title was reinstated with (operation {link.id_op}) is no longer the invoice's "
        f"(its payment row is refunded, operation {link.id_op}, "), err
    assert _anomaly(store, number)["outcome"] == "reinstated"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_applied_answer_corrected_to_the_note_alone(flow, store, tmp_path, fmt):
    """Paid through a cancelled title, resolved --applied before the trésorerie answered:
    `--correct --note-only` takes the payment back and leaves the anomaly resolved with
    the note alone (no outcome, who, when, the note): the invoice is no longer held back,
    its answer still to record (without --correct), which `--refunded` then does, that
    resolution kept. `anomalies --all` lists the correction `-> note alone`."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--applied", note="applied?", by="alice")
    assert code == 0, out + err
    first = _anomaly(store, number)
    code, out, err = _resolve(store, number, "--correct", "--note-only", "--format", fmt,
                              note="not answered yet")
    assert code == 0, out + err
    now = ("corrected, it is resolved with the note alone now, the trésorerie's answer not "
           f"recorded; the payment it recorded (187.50, applied to the title of run "
           f"{new.run_id}) is taken back (the invoice's payment row: pending)")
    if fmt == "text":
        assert out.startswith(f"anomaly #{number} run-cancelled (invoice {INVOICE}): "
                              "resolved "), out
        assert out.endswith(" by support; no payment was recorded\n"), out
        assert now in err, err
        assert (f"\nnote: invoice {INVOICE}: no longer held back: `payfip link`, `tipi-url` "
                "and `payfip datamatrix` give it a payment again. The trésorerie's answer "
                "was not recorded") in err, err
    else:
        report = json.loads(out)
        assert (report["outcome"], report["resolved_by"], report["note"],
                report["invoice_state"], report["corrected"]["to"],
                report["corrected"]["reopened"]) == (
            None, "support", "not answered yet", "released_unrecorded", None, False), report
        assert now in report["notes"][0], report
    anomaly = _anomaly(store, number)
    assert (anomaly["outcome"], anomaly["resolved_by"], anomaly["note"]) == (
        None, "support", "not answered yet"), anomaly
    assert anomaly["resolved_at"] is not None and anomaly["resolved_at"] >= first["resolved_at"]
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("pending", None, None), pay
    [(_event, _status, detail)] = _events(store, "anomaly-corrected")
    assert (detail["outcome"], detail["reopened"]) == (None, False), detail
    code, out, err = _cli(store, "payfip", "anomalies", "--all", "--format", fmt)
    assert code == 0, out + err
    if fmt == "text":
        assert (f"    corrected {anomaly['resolved_at']} by support: applied (resolved "
                f"{first['resolved_at']} by alice: applied?) -> note alone: not answered "
                "yet\n") in out, out
    else:
        [listed] = [a for a in json.loads(out)["anomalies"] if a["id"] == number]
        assert [(c["from"], c["to"], c["reopened"]) for c in listed["corrections"]] == [
            ("applied", None, False)], listed
    code, out, err = _resolve(store, number, "--refunded", note="refunded, it says")
    assert code == 0, out + err
    assert (f"note: anomaly #{number} was resolved on {anomaly['resolved_at']} by support "
            "with a note alone (not answered yet): the trésorerie's answer (refunded) is "
            "recorded now") in err, err


def test_a_refunded_answer_corrected_to_the_note_alone_is_paid_again(flow, store, tmp_path):
    """A paid title cancelled since, resolved --refunded by mistake: `--correct
    --note-only --format json`: the refund taken back (paid again, by its cancelled
    title's payment, no link), the anomaly resolved with the note alone."""
    _run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--refunded", note="refunded?")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--note-only", "--format", "json",
                              note="the trésorerie has not answered")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert (report["outcome"], report["note"], report["invoice_state"],
            report["corrected"]["withdrawn"]) == (
        None, "the trésorerie has not answered", "paid",
        {"payment": "refunded", "paid_cents": 18750, "status": "paid"}), report
    assert report["notes"][1].startswith(f"invoice {INVOICE}: still paid for pesgen, by its "
                                         "cancelled title's payment: "), report
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"]) == ("paid", link.id_op), pay
    assert _anomaly(store, number)["resolved_by"] == "support"
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err


def test_note_only_is_refused_out_of_place(flow, store, tmp_path):
    """`--note-only` without `--correct`, or with an answer, is a usage error (exit 2); on
    an anomaly resolved with a note alone already, refused (exit 7: nothing to take
    back), text and JSON; nothing recorded."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--note-only", note="x")
    assert (code, err) == (ExitCode.USAGE, (
        "error: --note-only goes with --correct (an answer recorded by mistake, taken back, "
        "the anomaly left resolved with the note alone); without --correct, a resolution "
        "with --note alone is one already\n")), out + err
    code, out, err = _resolve(store, number, "--correct", "--note-only", "--refunded",
                              "--format", "json", note="x")
    assert code == ExitCode.USAGE, out + err
    assert json.loads(out)["error"] == (
        "--note-only or --refunded: the corrected resolution records the trésorerie's "
        "answer, or none (the note alone)"), out
    assert _anomaly(store, number)["resolved_at"] is None
    code, out, err = _resolve(store, number, note="told the trésorerie", by="alice")
    assert code == 0, out + err
    at = _anomaly(store, number)["resolved_at"]
    said = (f"anomaly #{number} (run-cancelled, invoice {INVOICE}) was resolved on {at} by "
            "alice with a note alone: it has no answer to take back (its answer, once "
            f"known, is recorded without --correct: `pesgen payfip anomalies resolve {number} "
            "--applied` or `--refunded`)")
    code, out, err = _resolve(store, number, "--correct", "--note-only", note="x")
    assert (code, err) == (ExitCode.STATE, f"error: {said}\n"), out + err
    code, out, err = _resolve(store, number, "--correct", "--note-only", "--format", "json",
                              note="x")
    assert code == ExitCode.STATE, out + err
    assert json.loads(out)["error"] == said, out
    assert _anomaly(store, number)["note"] == "told the trésorerie"
    assert _events(store, "anomaly-corrected") == []


@pytest.mark.parametrize(("first_answer", "right", "events"), [
    ("applied", "refunded", [("paid", "paid"), ("payment-withdrawn", "pending"),
                             ("anomaly-corrected", "pending")]),
    ("refunded", "applied", [("paid", "paid"), ("anomaly-corrected", "paid")])])
def test_two_corrections_at_once_one_is_recorded_the_other_refused(
        flow, store, tmp_path, monkeypatch, first_answer, right, events):
    """Two people making the same correction of an answer at once (--applied to
    --refunded: the payment taken back; --refunded to --applied: the title due recorded
    paid): the first, inside its transaction when the second starts, holds the anomaly;
    the second waits for it, then reads the answer corrected and is refused ("… already"):
    the payment is taken back, or recorded, once, one correction recorded. On PostgreSQL
    the second is seen waiting on the first's row lock before the first goes on; on
    SQLite the write transactions are in turn."""
    _run, _old, _new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, f"--{first_answer}", note="first answer")
    assert code == 0, out + err
    inside, go = threading.Event(), threading.Event()
    take_back = ledger._take_back

    def held(*args, **kw):
        if not inside.is_set():  # the first correction: waits for the second to start
            inside.set()
            assert go.wait(30)
        return take_back(*args, **kw)

    monkeypatch.setattr(ledger, "_take_back", held)
    results: dict[str, object] = {}

    def correct(name: str) -> None:
        try:
            results[name] = ledger.resolve_anomaly(store, number, name, f"by {name}",
                                                   right, correct=True)
        except StateError as exc:
            results[name] = exc

    first = threading.Thread(target=correct, args=("first",))
    first.start()
    assert inside.wait(30)
    second = threading.Thread(target=correct, args=("second",))
    second.start()
    if store.engine.dialect.name == "postgresql":
        deadline = time.monotonic() + 30
        with store.engine.connect() as conn:
            while not conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()")).scalar():
                assert time.monotonic() < deadline, "the second correction never waited"
                time.sleep(0.05)
    else:
        time.sleep(0.5)
    go.set()
    first.join(60)
    second.join(60)
    assert isinstance(results["first"], dict), results
    refused = results["second"]
    assert isinstance(refused, StateError), results
    assert str(refused).endswith(f": its recorded answer is {right} already (resolved on "
                                 f"{_anomaly(store, number)['resolved_at']} by first): "
                                 "nothing to correct"), refused
    assert [e[:2] for e in _events(store, "paid", "payment-withdrawn",
                                   "anomaly-corrected")] == events
    anomaly = _anomaly(store, number)
    assert (anomaly["outcome"], anomaly["resolved_by"]) == (right, "first"), anomaly
