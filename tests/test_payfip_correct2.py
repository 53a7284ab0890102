# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""Corrections of an anomaly's resolution beyond test_payfip_correct's:
``--correct --note-only``, the answer taken back and the anomaly left resolved with the
note alone; and two corrections of one anomaly at once,
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
