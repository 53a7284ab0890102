# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""The trésorerie's answer recorded after the anomaly was resolved with a note alone
(`payfip anomalies resolve ID --note "told the trésorerie"`, then, once it answers,
`resolve ID --applied | --refunded --note …`): the outcome and its effects are recorded,
the first resolution kept in the invoice's history (docs/payfip.md, *Anomalies: what
support does*). Before, a resolved anomaly was refused any later answer, and support had
no way to record it."""

from __future__ import annotations

import json

import sqlalchemy as sa

from pesgen.errors import ExitCode
from pesgen.payfip import ledger
from pesgen.payfip.tables import events, operations

from .payfip_support import (  # noqa: F401 - fixtures
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_unsettled import (
    ID_COLL,
    _cancel_then_pay,
    _cli,
    _link,
    _paid_then_cancelled,
)

FIRST = "told the trésorerie on 2026-12-02"


def _resolve(store, number: int, *flags: str, note: str, by: str = "support"):
    return _cli(store, "payfip", "anomalies", "resolve", str(number), *flags, "--note", note,
                "--by", by)


def test_a_paid_cancelled_anomaly_noted_then_refunded_releases_the_new_title(flow, store,
                                                                            tmp_path):
    """Paid, cancelled, exported again; support notes it told the trésorerie (the invoice
    stays paid for pesgen: no link), then the trésorerie says it refunded the family:
    `--refunded` records it (the payment refunded, outcome refunded, who and when the
    answer's), says when it was resolved first, and the new title gets its link. The
    invoice's history keeps both resolutions."""
    _run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, note=FIRST, by="alice")
    assert code == 0, out + err
    [first] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err
    code, out, err = _resolve(store, number, "--refunded", note="refunded on 2026-12-05")
    assert code == 0, out + err
    assert out.startswith(f"anomaly #{number} paid-cancelled (invoice FA-2026-00102): "
                          "resolved "), out
    assert "by support (refunded); its payment is recorded refunded" in out, out
    assert (f"note: anomaly #{number} was resolved on {first['resolved_at']} by alice with "
            f"a note alone ({FIRST}): the trésorerie's answer (refunded) is recorded now, "
            "that resolution kept in the invoice's history\n") in err, err
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (anomaly["outcome"], anomaly["resolved_by"], anomaly["note"]) == (
        "refunded", "support", "refunded on 2026-12-05")
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["status"] == "refunded"
    with store.engine.connect() as conn:
        resolved = [json.loads(e.detail) for e in conn.execute(
            sa.select(events.c.detail).where(events.c.invoice == "FA-2026-00102",
                                             events.c.event == "anomaly-resolved")
            .order_by(events.c.id))]
    assert resolved == [
        {"anomaly": number, "kind": "paid-cancelled", "by": "alice"},
        {"anomaly": number, "kind": "paid-cancelled", "by": "support", "outcome": "refunded",
         "earlier": {"resolved_at": first["resolved_at"], "resolved_by": "alice",
                     "note": FIRST}}], resolved
    code, out, err = _link(flow, store)  # the new title's link, made
    assert code == 0, out + err
    with store.engine.connect() as conn:
        made = conn.execute(sa.select(operations.c.id_op).where(
            operations.c.invoice == "FA-2026-00102", operations.c.run_id == new.run_id)).all()
    assert len(made) == 1 and made[0].id_op != link.id_op


def test_a_run_cancelled_anomaly_noted_then_applied_pays_the_title_due(flow, store, tmp_path):
    """Paid through the cancelled title's link, exported again; support notes it (the
    invoice released, the answer not recorded), then the trésorerie says it applied the
    money to the new title: `--applied` records that title paid, JSON `earlier` giving
    the first resolution; `link` then refuses it as paid."""
    _run, old, new = _cancel_then_pay(flow, store, tmp_path)
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _resolve(store, number, note=FIRST, by="alice")
    assert code == 0, out + err
    [first] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    code, out, err = _cli(store, "payfip", "anomalies", "resolve", str(number), "--applied",
                          "--note", "applied on 2026-12-05", "--by", "support",
                          "--format", "json")
    assert (code, err) == (0, ""), out + err
    report = json.loads(out)
    assert (report["outcome"], report["recorded"], report["earlier"]) == (
        "applied", "paid", {"resolved_at": first["resolved_at"], "resolved_by": "alice",
                            "note": FIRST}), report
    assert (report["applied"]["run"], report["applied"]["id_op"]) == (new.run_id, old.id_op)
    assert report["notes"][0].startswith(f"anomaly #{number} was resolved on "), report
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("paid", old.id_op, new.run_id)
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.paid)" in err, out + err


def test_a_resolution_with_an_outcome_or_without_one_again_is_refused(flow, store, tmp_path):
    """Refused, nothing recorded (exit 7): a second answer on an anomaly whose outcome is
    recorded; a note alone again on one resolved with a note alone (the refusal says its
    outcome can still be recorded); an outcome for an anomaly of another kind."""
    _run, _link_, _new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, note=FIRST)
    assert code == 0, out + err
    code, out, err = _resolve(store, number, note="again")
    assert code == ExitCode.STATE, out + err
    assert (f"error: anomaly {number} was already resolved on ") in err, err
    assert (f"by support: {FIRST} (its outcome can still be recorded: --applied or "
            "--refunded, with the trésorerie's answer)") in err, err
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == 0, out + err
    for flag in ("--refunded", "--applied"):
        code, out, err = _resolve(store, number, flag, note="changed its mind")
        assert code == ExitCode.STATE, out + err
        assert "by support (refunded): refunded\n" in err, err
        assert "can still be recorded" not in err, err
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (anomaly["outcome"], anomaly["note"]) == ("refunded", "refunded")


def test_an_amount_mismatch_resolved_takes_no_outcome_later(flow, store):
    """An anomaly that is not money paid for a cancelled title (an amount-mismatch),
    resolved with a note: --refunded later is refused as resolved already (exit 7),
    naming the first resolution, without saying an outcome can still be recorded."""
    link = flow.link("FA-2026-00102", mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "5000"}})
    flow.pay(link, "card")
    [number] = [a["id"] for a in ledger.list_anomalies(store)
                if a["kind"] == "amount-mismatch"]
    code, out, err = _resolve(store, number, note=FIRST)
    assert code == 0, out + err
    code, out, err = _resolve(store, number, "--refunded", note="refunded")
    assert code == ExitCode.STATE, out + err
    assert f"error: anomaly {number} was already resolved on " in err, err
    assert "can still be recorded" not in err, err
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (anomaly["outcome"], anomaly["note"]) == (None, FIRST)
