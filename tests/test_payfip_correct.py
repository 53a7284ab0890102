# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""The trésorerie's answer recorded on a run-cancelled or paid-cancelled anomaly, corrected
(`payfip anomalies resolve ID --correct --refunded | --applied | (neither: reopened)
--note …`): what the wrong answer recorded is taken back (a payment --applied recorded,
a payment recorded refunded), kept in the invoice's history, and the right one recorded;
refused, nothing changed, when something was recorded since that makes it unsafe
(docs/payfip.md, *Anomalies: what support does*). Before, an answer on an anomaly whose
outcome was recorded was refused, and only an edit of the database could undo it."""

from __future__ import annotations

import json
from datetime import date

from pesgen.errors import ExitCode
from pesgen.payfip import ledger
from pesgen.runs import export_recorded

from .payfip_support import (  # noqa: F401 - fixtures
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_unsettled import (
    EXAMPLE,
    ID_COLL,
    MAPPING,
    _cancel_then_pay,
    _cli,
    _link,
    _paid_then_cancelled,
)
from .test_resolve_later import _resolve

INVOICE = "FA-2026-00102"


def _history(store) -> list[dict]:
    code, out, err = _cli(store, "payfip", "payments", "--format", "json", "--history",
                          "-n", INVOICE)
    assert code == 0, out + err
    return [e for row in json.loads(out) for e in row["history"]]


def _anomaly(store, number: int) -> dict:
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    return anomaly


def _run_cancelled(store) -> int:
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    return number


def _events(store, *names: str) -> list[tuple[str, str, dict]]:
    return [(e["event"], e["status"], e.get("detail")) for e in _history(store)
            if e["event"] in names]


def _applied_then_refunded(store, number: int) -> tuple[dict, str, str]:
    """Resolve a run-cancelled anomaly --applied (by alice), then correct it to
    --refunded (by support): the anomaly as the first resolution left it, and what the
    correction printed."""
    code, out, err = _resolve(store, number, "--applied", note="applied, said alice",
                              by="alice")
    assert code == 0, out + err
    first = _anomaly(store, number)
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="it refunded")
    assert code == 0, out + err
    return first, out, err


def test_run_cancelled_applied_corrected_to_refunded_takes_the_payment_back(flow, store,
                                                                            tmp_path):
    """Paid through the cancelled title's link, resolved --applied by mistake (the new
    title recorded paid): `--correct --refunded` takes that payment back (the invoice's
    row unpaid as its link left it, the title due gets its link again), records refunded,
    and the history and `anomalies --all` keep the first answer."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    first, out, err = _applied_then_refunded(store, number)
    assert out.startswith(f"anomaly #{number} run-cancelled (invoice {INVOICE}): resolved "), out
    assert out.endswith(" by support (refunded); no payment was recorded\n"), out
    assert err == (
        f"note: anomaly #{number} was resolved on {first['resolved_at']} by alice (applied: "
        "applied, said alice): corrected, the trésorerie's answer is refunded now; the "
        f"payment it recorded (187.50, applied to the title of run {new.run_id}) is taken "
        "back (the invoice's payment row: pending); that resolution is kept in the "
        "invoice's history (`pesgen payfip payments --history`)\n"
        f"note: invoice {INVOICE}: no longer held back: `payfip link`, `tipi-url` and "
        "`payfip datamatrix` give it a payment again; send the family the new link\n"), err
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"], pay["paid_cents"], pay["applied_run"]) == (
        "pending", None, None, None), pay
    anomaly = _anomaly(store, number)
    assert (anomaly["outcome"], anomaly["resolved_by"], anomaly["note"]) == (
        "refunded", "support", "it refunded")
    withdrawn = {"payment": "paid", "paid_cents": 18750, "applied_to_run": new.run_id,
                 "status": "pending"}
    before = {"resolved_at": first["resolved_at"], "resolved_by": "alice",
              "note": "applied, said alice", "outcome": "applied"}
    assert _events(store, "paid", "payment-withdrawn", "anomaly-corrected")[1:] == [
        ("payment-withdrawn", "pending", {"anomaly": number, "by": "support", **withdrawn}),
        ("anomaly-corrected", "pending",
         {"anomaly": number, "kind": "run-cancelled", "by": "support",
          "note": "it refunded", "outcome": "refunded", "reopened": False,
          "before": before, "withdrawn": withdrawn})]
    code, out, err = _cli(store, "payfip", "anomalies", "--all")
    assert code == 0, out + err
    assert (f"    corrected {anomaly['resolved_at']} by support: applied (resolved "
            f"{first['resolved_at']} by alice: applied, said alice) -> refunded: it "
            "refunded\n    resolved ") in out, out
    code, out, err = _link(flow, store)  # the title due gets its link again
    assert code == 0, out + err


def test_run_cancelled_refunded_corrected_to_applied_in_json(flow, store, tmp_path):
    """Resolved --refunded by mistake (it recorded nothing): `--correct --applied
    --format json` records the title due paid, the report's `corrected` giving the answer
    before and nothing taken back."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--refunded", note="refunded?", by="alice")
    assert code == 0, out + err
    first = _anomaly(store, number)
    code, out, err = _resolve(store, number, "--correct", "--applied", "--format", "json",
                              note="applied in fact")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert (report["outcome"], report["recorded"], report["invoice_state"],
            report["applied"]["run"], report["applied"]["id_op"]) == (
        "applied", "paid", "paid", new.run_id, old.id_op), report
    fixed = report["corrected"]
    assert (fixed["from"], fixed["to"], fixed["by"], fixed["note"], fixed["withdrawn"],
            fixed["before"]) == (
        "refunded", "applied", "support", "applied in fact", None,
        {"resolved_at": first["resolved_at"], "resolved_by": "alice", "note": "refunded?",
         "outcome": "refunded"}), fixed
    assert report["notes"][0].endswith("corrected, the trésorerie's answer is applied now; "
                                       "that answer had recorded no payment; that "
                                       "resolution is kept in the invoice's history "
                                       "(`pesgen payfip payments --history`)"), report
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("paid", old.id_op, new.run_id)
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err


def test_paid_cancelled_applied_corrected_to_refunded(flow, store, tmp_path):
    """A paid title cancelled since, resolved --applied by mistake: `--correct
    --refunded` puts the payment back on its cancelled title, then records it refunded:
    the new title gets its link."""
    _run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--applied", note="applied")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="refunded")
    assert code == 0, out + err
    assert " by support (refunded); its payment is recorded refunded" in out, out
    assert (f"the payment it recorded (187.50, applied to the title of run {new.run_id}) "
            "is taken back (the invoice's payment row: paid)") in err, err
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("refunded", link.id_op, None)
    assert [e[:2] for e in _events(store, "payment-withdrawn", "refunded",
                                   "anomaly-corrected")] == [
        ("payment-withdrawn", "paid"), ("refunded", "refunded"),
        ("anomaly-corrected", "refunded")]
    code, out, err = _link(flow, store)
    assert code == 0, out + err


def test_paid_cancelled_refunded_reopened_is_paid_again(flow, store, tmp_path):
    """A paid title cancelled since, resolved --refunded on the wrong anomaly: `--correct`
    alone reopens it: its payment is a payment again (no link for the new title), the
    anomaly open, `anomalies` listing the correction."""
    _run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", note="wrong anomaly")
    assert code == 0, out + err
    assert out.startswith(f"anomaly #{number} paid-cancelled (invoice {INVOICE}): reopened ")
    assert out.endswith(" by support (its answer refunded taken back); its payment recorded "
                        "refunded (187.50) is a payment again (paid)\n"), out
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"]) == ("paid", link.id_op)
    anomaly = _anomaly(store, number)
    assert (anomaly["resolved_at"], anomaly["outcome"], anomaly["note"]) == (None, None, None)
    assert [(c["from"], c["to"], c["note"]) for c in anomaly["corrections"]] == [
        ("refunded", None, "wrong anomaly")]
    assert [e[:2] for e in _events(store, "refund-withdrawn", "anomaly-corrected")] == [
        ("refund-withdrawn", "paid"), ("anomaly-corrected", "paid")]
    code, out, err = _cli(store, "payfip", "anomalies")
    assert code == 0, out + err
    assert " -> reopened: wrong anomaly\n    what to do: " in out, out
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err


def test_run_cancelled_applied_reopened_holds_the_invoice_back_again(flow, store, tmp_path):
    """Resolved --applied on the wrong anomaly: `--correct --format json` reopens it, the
    payment taken back, the invoice held back again (rule payfip.unsettled), and
    `anomalies --format json` gives the correction."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--applied", note="applied")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--format", "json",
                              note="not this one")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert (report["outcome"], report["resolved_at"], report["invoice_state"],
            report["held_back_by"], report["corrected"]["to"],
            report["corrected"]["withdrawn"]["status"]) == (
        None, None, "held_back", [number], None, "pending"), report
    assert report["notes"][1].startswith(f"invoice {INVOICE}: held back again by anomaly "
                                         f"#{number} (run-cancelled, not resolved)"), report
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("pending", None, None)
    code, out, err = _cli(store, "payfip", "anomalies", "--format", "json")
    assert code == 0, out + err
    [listed] = json.loads(out)["anomalies"]
    assert (listed["id"], listed["open"], [(c["from"], c["to"], c["note"])
                                           for c in listed["corrections"]]) == (
        number, True, [("applied", None, "not this one")]), listed
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.unsettled)" in err, out + err


def test_a_correction_is_refused_when_there_is_no_answer_to_correct(flow, store, tmp_path):
    """Refused, exit 7, nothing recorded: an open anomaly, one resolved with a note alone
    (its answer is recorded without --correct), the answer it has already (text and
    JSON)."""
    _run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="x")
    assert code == ExitCode.STATE, out + err
    assert err == (f"error: anomaly #{number} (paid-cancelled, invoice {INVOICE}) is not "
                   "resolved: there is no answer to correct; resolve it without --correct\n")
    code, out, err = _resolve(store, number, note="told the trésorerie", by="alice")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="x")
    assert code == ExitCode.STATE, out + err
    assert (f"by alice with a note alone: no answer of the trésorerie is recorded on it; "
            "record it without --correct (`pesgen payfip anomalies resolve "
            f"{number} --applied` or `--refunded`)\n") in err, err
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--refunded", "--format", "json",
                              note="x")
    assert code == ExitCode.STATE, out + err
    report = json.loads(out)
    assert (report["ok"], report["id"]) == (False, number), report
    assert report["error"].endswith(": its recorded answer is refunded already (resolved "
                                    f"on {_anomaly(store, number)['resolved_at']} by "
                                    "support): nothing to correct"), report
    assert [e for e in _history(store) if e["event"] == "anomaly-corrected"] == []
    assert ledger.payment_of(store, ID_COLL, INVOICE)["status"] == "refunded"


def test_a_refund_is_not_taken_back_once_a_new_link_was_made(flow, store, tmp_path):
    """Refunded, then the new title's link made (the refunded payment no longer the
    invoice's row): `--correct --applied` and `--correct` are refused, exit 7, naming the
    anomaly, the invoice and the new link; nothing changed."""
    _run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == 0, out + err
    code, out, err = _link(flow, store)
    assert code == 0, out + err
    made = ledger.payment_of(store, ID_COLL, INVOICE)["last_id_op"]
    for flags in (("--applied",), ()):
        code, out, err = _resolve(store, number, "--correct", *flags, note="x")
        assert code == ExitCode.STATE, out + err
        assert err == (
            f"error: anomaly #{number} (paid-cancelled, invoice {INVOICE}): the payment "
            f"recorded refunded (operation {link.id_op}) is no longer the invoice's (its "
            f"payment row is pending, its latest link operation {made}): a new link was "
            "made for it since, the family may pay through it; pesgen cannot take the "
            "refund back safely: settle it with the trésorerie\n"), err
    assert _anomaly(store, number)["outcome"] == "refunded"
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["last_id_op"]) == ("pending", made)


def test_an_applied_payment_is_not_taken_back_once_its_title_was_cancelled(flow, store,
                                                                          tmp_path):
    """Applied to the new title, which was then cancelled despite that payment: the
    correction is refused, exit 7, naming the title's run; nothing changed."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--applied", note="applied")
    assert code == 0, out + err
    store.cancel(new.run_id, "wrong again", despite_payments=True)
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="x")
    assert code == ExitCode.STATE, out + err
    assert err == (
        f"error: anomaly #{number} (run-cancelled, invoice {INVOICE}): the title the money "
        f"was applied to (run {new.run_id}) was cancelled since: its payment went with it "
        "(its own paid-cancelled anomaly, `pesgen payfip anomalies`); pesgen cannot take it "
        "back safely: settle it with the trésorerie\n"), err
    assert _anomaly(store, number)["outcome"] == "applied"
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["applied_run"]) == ("paid", new.run_id)


def test_a_refunded_answer_stays_once_the_title_due_was_paid_through_its_link(
        flow, store, tmp_path):
    """Refunded, then the title due paid through its own new link: `--correct --applied`
    (already paid) and `--correct` (reopened, it would hold a paid invoice back) are
    refused, exit 7, naming the payment; nothing changed."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == 0, out + err
    paid = flow.link(INVOICE, mode="W")
    flow.pay(paid, "card")
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"]) == ("paid", paid.id_op)
    code, out, err = _resolve(store, number, "--correct", "--applied", note="x")
    assert code == ExitCode.STATE, out + err
    assert (f"error: anomaly #{number}: --applied refused for invoice {INVOICE}: it is already "
            f"paid (187.50 on {pay['paid_at']}, operation {paid.id_op}): ") in err, err
    code, out, err = _resolve(store, number, "--correct", note="x")
    assert code == ExitCode.STATE, out + err
    assert err == (
        f"error: anomaly #{number} (run-cancelled, invoice {INVOICE}): the invoice was paid "
        f"since (187.50 on {pay['paid_at']}, operation {paid.id_op}): the money paid through "
        "the cancelled title is one payment too many, for the trésorerie to refund; it is "
        "not reopened (its answer stays refunded)\n"), err
    assert _anomaly(store, number)["outcome"] == "refunded"
    assert ledger.payment_of(store, ID_COLL, INVOICE) == pay


def test_an_anomaly_of_another_kind_has_no_answer_to_correct(flow, store):
    """An amount-mismatch resolved (it takes no answer of the trésorerie): `--correct` is
    refused, exit 7, saying so; its resolution unchanged."""
    link = flow.link(INVOICE, mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "5000"}})
    flow.pay(link, "card")
    [number] = [a["id"] for a in ledger.list_anomalies(store)
                if a["kind"] == "amount-mismatch"]
    code, out, err = _resolve(store, number, note="settled")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", note="x")
    assert code == ExitCode.STATE, out + err
    assert err == (f"error: anomaly #{number} (amount-mismatch, invoice {INVOICE}): --correct "
                   "corrects the trésorerie's answer recorded on a run-cancelled or "
                   "paid-cancelled anomaly (--applied, --refunded); this one takes none\n"), err
    assert _anomaly(store, number)["note"] == "settled"


def test_a_run_cancelled_anomaly_reopened_names_the_link_given_since(flow, store, tmp_path):
    """Resolved --refunded, the title due's link made; the anomaly reopened (`--correct`
    alone): the invoice is held back again, and the link given since, which that does not
    take back, is named (text note; JSON `still_open`), for support to tell the family."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--refunded", note="refunded?")
    assert code == 0, out + err
    code, out, err = _link(flow, store)
    assert code == 0, out + err
    made = ledger.payment_of(store, ID_COLL, INVOICE)["last_id_op"]
    created = ledger.get_operation(store, made)["created_at"]
    code, out, err = _resolve(store, number, "--correct", "--format", "json",
                              note="not answered yet")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert (report["invoice_state"], [(link["id_op"], link["title"], link["run"])
                                      for link in report["still_open"]]) == (
        "held_back", [(made, "due", new.run_id)]), report
    assert report["notes"][-1] == (
        f"invoice {INVOICE}: its title's link made on {created} (operation {made}) is still "
        "open (pending): the anomaly reopened holds back the links to come, not this one: "
        "tell the family not to use it until the trésorerie answers (if it applied the "
        "money, a payment through it would pay twice)"), report
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.unsettled)" in err, out + err


def _two_links_then_cancelled(flow, store, tmp_path, second: str | None):
    """Two links made for the invoice's title, the second refused by the family
    (``second``, a payment page's button) or left open (None); the run cancelled despite
    them, the family paying through the first afterwards (a run-cancelled anomaly), the
    example exported again: the cancelled run, the first link, the second, the new run,
    the anomaly's number."""
    run = ledger.invoice_due(store, ID_COLL, INVOICE).run_id
    first, last = flow.link(INVOICE, mode="W"), flow.link(INVOICE, mode="W", again=True)
    if second is not None:
        flow.pay(last, second)
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(first, "card")
    new = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again",
                          date(2026, 11, 24))
    return run, first, last, new, _run_cancelled(store)


def test_a_payment_taken_back_leaves_the_row_as_its_latest_link_left_it(flow, store,
                                                                       tmp_path):
    """The invoice's latest link refused before the money came through the cancelled
    title's: its payment row is refused, with no payment. Resolved --applied (the row
    paid: amount, method, time, operation, authorisation number, title), then corrected
    --refunded: the row is again what it was, refused, every figure of the payment gone,
    and the correction says so."""
    _run, first, last, new, number = _two_links_then_cancelled(flow, store, tmp_path,
                                                               "refuse")
    before = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (before["status"], before["last_id_op"]) == ("refused", last.id_op), before
    code, out, err = _resolve(store, number, "--applied", note="applied")
    assert code == 0, out + err
    paid = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (paid["status"], paid["id_op"], paid["applied_run"]) == (
        "paid", first.id_op, new.run_id), paid
    assert None not in (paid["method"], paid["paid_at"], paid["numauto"]), paid
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="refunded")
    assert code == 0, out + err
    assert "is taken back (the invoice's payment row: refused)" in err, err
    after = ledger.payment_of(store, ID_COLL, INVOICE)
    assert {**after, "updated_at": None} == {**before, "updated_at": None}


def test_a_run_cancelled_anomaly_reopened_names_its_cancelled_title_s_link_still_open(
        flow, store, tmp_path):
    """A second link of the cancelled title still open when the money came through the
    first: the anomaly resolved --refunded, then reopened (`--correct` alone): that link
    is named as the cancelled title's (its IdBord and run; JSON `still_open`, title
    `cancelled`), and the history's correction says the anomaly was reopened."""
    run, _first, last, new, number = _two_links_then_cancelled(flow, store, tmp_path, None)
    code, out, err = _resolve(store, number, "--refunded", note="refunded?")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--format", "json",
                              note="not answered yet")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert [(link["id_op"], link["title"], link["run"], link["id_bord"])
            for link in report["still_open"]] == [(last.id_op, "cancelled", run, 1)], report
    created = ledger.get_operation(store, last.id_op)["created_at"]
    assert report["notes"][-1] == (
        f"invoice {INVOICE}: the link of its cancelled title (IdBord 1 of run {run}) made on "
        f"{created} (operation {last.id_op}) is still open (pending): the anomaly reopened "
        "holds back the links to come, not this one: tell the family not to use it until "
        "the trésorerie answers (if it applied the money, a payment through it would pay "
        "twice)"), report
    [(_event, _status, detail)] = _events(store, "anomaly-corrected")
    assert (detail["outcome"], detail["reopened"]) == (None, True), detail
    anomaly = _anomaly(store, number)  # open again, as before anyone resolved it
    assert (anomaly["resolved_at"], anomaly["resolved_by"], anomaly["note"],
            anomaly["outcome"]) == (None, None, None, None), anomaly


def test_an_anomaly_corrected_twice_lists_its_corrections_oldest_first(flow, store,
                                                                     tmp_path):
    """--applied, corrected --refunded, the title due's link made, corrected --applied
    again: both corrections listed in their order (`anomalies --all`), and the link made
    in between named as the title's, which a payment through would pay twice (the
    anomaly is not reopened: its links are not the ones it holds back)."""
    _run, _old, _new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    for flags, note in ((("--applied",), "applied"),
                        (("--correct", "--refunded"), "refunded in fact")):
        code, out, err = _resolve(store, number, *flags, note=note)
        assert code == 0, out + err
    code, out, err = _link(flow, store)
    assert code == 0, out + err
    made = ledger.payment_of(store, ID_COLL, INVOICE)["last_id_op"]
    created = ledger.get_operation(store, made)["created_at"]
    code, out, err = _resolve(store, number, "--correct", "--applied", note="applied after all")
    assert code == 0, out + err
    assert (f"note: invoice {INVOICE}: its title's link made on {created} (operation {made}) "
            "is still open (pending): a payment through it would pay the title twice") in err, err
    assert "the anomaly reopened" not in err, err
    assert [(c["from"], c["to"], c["note"]) for c in _anomaly(store, number)["corrections"]] == [
        ("applied", "refunded", "refunded in fact"),
        ("refunded", "applied", "applied after all")]


def test_an_answer_corrected_while_another_anomaly_holds_the_invoice_says_it_still_does(
        flow, store, tmp_path):
    """Two links of the cancelled title both paid after the cancellation: two
    run-cancelled anomalies. The first resolved --applied, then corrected --refunded:
    its payment taken back, the invoice is still held back by the second (not "again":
    the first is resolved, not reopened)."""
    run = ledger.invoice_due(store, ID_COLL, INVOICE).run_id
    first, second = flow.link(INVOICE, mode="W"), flow.link(INVOICE, mode="W", again=True)
    store.cancel(run, "wrong amounts", despite_payments=True)
    flow.pay(first, "card")
    flow.pay(second, "card")
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    numbers = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)
               if a["kind"] == "run-cancelled"}
    mine, other = numbers[first.id_op], numbers[second.id_op]
    code, out, err = _resolve(store, mine, "--applied", note="applied")
    assert code == 0, out + err
    code, out, err = _resolve(store, mine, "--correct", "--refunded", note="refunded")
    assert code == 0, out + err
    assert (f"\nnote: invoice {INVOICE}: still held back by anomaly #{other} (run-cancelled, "
            "not resolved): ") in err, err


def test_a_paid_cancelled_anomaly_reopened_names_no_link_as_held_back(flow, store, tmp_path):
    """A paid title's second link still open when its run was cancelled: the
    paid-cancelled anomaly resolved --refunded, then reopened (`--correct` alone): the
    invoice is paid again, which refuses the links to come; no link is named as one the
    reopened anomaly does not hold back (that is a run-cancelled one's)."""
    run = ledger.invoice_due(store, ID_COLL, INVOICE).run_id
    paid, _open = flow.link(INVOICE, mode="W"), flow.link(INVOICE, mode="W", again=True)
    flow.pay(paid, "card")
    store.cancel(run, "wrong amounts", despite_payments=True)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "again", date(2026, 11, 24))
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "paid-cancelled"]
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--correct", "--format", "json", note="wrong one")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert (report["invoice_state"], report.get("still_open", [])) == ("paid", []), report
    assert not [n for n in report["notes"] if "reopened holds back" in n], report


def test_a_refund_is_not_taken_back_once_the_invoice_s_row_is_another_payment_s_refund(
        flow, store, tmp_path):
    """Paid, cancelled, refunded (anomaly 1); the new title paid through its link, cancelled
    too, refunded (anomaly 2): the invoice's row is refunded again, but of the second
    payment. Correcting anomaly 1 is refused, exit 7, naming the row's operation:
    taking back that refund would make the second payment the first's."""
    _run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == 0, out + err
    again = flow.link(INVOICE, mode="W")
    flow.pay(again, "card")
    store.cancel(new.run_id, "wrong again", despite_payments=True)
    export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "third", date(2026, 11, 25))
    [later] = [a["id"] for a in ledger.list_anomalies(store)
               if a["kind"] == "paid-cancelled" and a["id"] != number]
    code, out, err = _resolve(store, later, "--refunded", note="refunded too")
    assert code == 0, out + err
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"]) == ("refunded", again.id_op), pay
    code, out, err = _resolve(store, number, "--correct", note="x")
    assert code == ExitCode.STATE, out + err
    assert (f"error: anomaly #{number} (paid-cancelled, invoice {INVOICE}): the payment "
            f"recorded refunded (operation {link.id_op}) is no longer the invoice's (its "
            f"payment row is refunded, operation {again.id_op}, its latest link operation "
            f"{again.id_op}): ") in err, err
    assert ledger.payment_of(store, ID_COLL, INVOICE) == pay


def test_an_applied_payment_refunded_since_by_its_own_anomaly_is_not_taken_back(
        flow, store, tmp_path):
    """Applied to the new title, which was then cancelled despite that payment and its
    paid-cancelled anomaly resolved --refunded: the payment --applied recorded is no
    longer the invoice's (its row refunded); correcting the first answer is refused,
    exit 7, saying so, nothing changed."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    code, out, err = _resolve(store, number, "--applied", note="applied")
    assert code == 0, out + err
    store.cancel(new.run_id, "wrong again", despite_payments=True)
    [later] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "paid-cancelled"]
    code, out, err = _resolve(store, later, "--refunded", note="refunded")
    assert code == 0, out + err
    pay = ledger.payment_of(store, ID_COLL, INVOICE)
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == (
        "refunded", old.id_op, new.run_id), pay
    code, out, err = _resolve(store, number, "--correct", "--refunded", note="x")
    assert code == ExitCode.STATE, out + err
    assert err.startswith(
        f"error: anomaly #{number} (run-cancelled, invoice {INVOICE}): the payment --applied "
        f"recorded (operation {old.id_op}) is no longer the invoice's (its payment row is "
        f"refunded, operation {old.id_op}, its latest link operation "), err
    assert ledger.payment_of(store, ID_COLL, INVOICE) == pay


def test_a_correction_and_its_history_say_one_time(flow, store, tmp_path, monkeypatch):
    """The events a resolution or a correction records carry the time it recorded on
    the anomaly (its ``resolved_at``), whatever the clock says meanwhile: a clock that
    moves on at each reading (a second crossed mid-command, as CI once saw) changes
    nothing in what `payfip anomalies --all` shows against the command's own words."""
    _run, _old, _new = _cancel_then_pay(flow, store, tmp_path)
    number = _run_cancelled(store)
    ticks = iter(range(10, 60))
    monkeypatch.setattr(ledger, "utc_now", lambda: f"2026-12-08T09:00:{next(ticks):02d}Z")
    first, out, err = _applied_then_refunded(store, number)
    second = _anomaly(store, number)
    assert first["resolved_at"] < second["resolved_at"], (first, second)
    at = {e["event"]: e["at"] for e in _history(store)
          if e["event"] in ("anomaly-resolved", "paid", "payment-withdrawn",
                            "anomaly-corrected") and (e.get("detail") or {}).get("anomaly")}
    assert at == {"anomaly-resolved": first["resolved_at"], "paid": first["resolved_at"],
                  "payment-withdrawn": second["resolved_at"],
                  "anomaly-corrected": second["resolved_at"]}, (at, first, second)
    code, out, err = _cli(store, "payfip", "anomalies", "--all")
    assert code == 0, out + err
    assert f"    corrected {second['resolved_at']} by support: applied" in out, out
