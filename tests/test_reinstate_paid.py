# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""A run reinstated after a family paid through its title's own link while it was
cancelled (a `run-cancelled` anomaly): the trésorerie kept the title, so the money is
its payment (``ledger.settle_reinstated``), recorded so and the anomaly resolved, unless
a check says a person must decide (docs/payfip.md, *Cancelled titles*)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from pesgen.errors import ExitCode, StateError
from pesgen.payfip import ledger
from pesgen.payfip.tables import payments

from .payfip_support import (  # noqa: F401 - fixtures
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_unsettled import ID_COLL, _cli, _link, _payments


def _cancel_then_pay(flow, store):
    """FA-2026-00102's link made, its run cancelled by mistake, then paid through it."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(link, "card")
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["resolved_at"]) == ("run-cancelled", None)
    return run, link, anomaly["id"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_paid_through_its_link_while_cancelled_the_reinstated_title_is_paid(flow, store, fmt):
    """The reinstatement records the money as the title's payment (paid, on its own
    title: no applied_run), resolves the anomaly (outcome reinstated, who, a note naming
    the run and the reason), writes a `paid` and an `anomaly-resolved` event (source
    reinstate), and says so, text and JSON. `link` then refuses the invoice as paid (rule
    payfip.paid), no longer as held back by the anomaly. Before, the anomaly stayed open
    and `link` told support to ask the trésorerie about money paid 'through its cancelled
    title' of a run active again."""
    run, link, number = _cancel_then_pay(flow, store)
    paid_at = ledger.get_operation(store, link.id_op)["transaction_at"]
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--by", "alice", "--format", fmt)
    assert code == 0, out + err
    if fmt == "text":
        assert (f"note: invoice FA-2026-00102: paid online 187.50 by card on {paid_at} "
                f"through its link while it was cancelled (PayFiP operation {link.id_op}): "
                f"its title is active again and the payment its own: anomaly #{number} "
                "(run-cancelled) resolved (reinstated); if the trésorerie was told of the "
                "cancellation, tell it the title stands, paid; if it refunded the family "
                f"meanwhile, `pesgen payfip anomalies resolve {number} --correct --refunded "
                "--note TEXT`\n") in err, err
        assert "warning" not in err, err
    else:
        assert err == ""
        report = json.loads(out)
        assert report["settled"] == [{
            "anomaly": number, "kind": "run-cancelled", "invoice": "FA-2026-00102",
            "id_op": link.id_op, "id_bord": 1, "amount_paid": "187.50", "method": "card",
            "paid_at": paid_at}], report
        assert report["left_open"] == [], report
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["outcome"], anomaly["resolved_by"], anomaly["note"]) == (
        "reinstated", "alice", f"run {run} reinstated (IdBord 1): kept: its title is active "
        "again, paid by this payment (made through its link while it was cancelled)")
    assert ledger.get_operation(store, link.id_op)["status"] == "paid"
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"], pay["paid_cents"], pay["amount_cents"],
            pay["method"], pay["paid_at"], pay["applied_run"]) == (
        "paid", link.id_op, 18750, 18750, "card", paid_at, None)
    [row] = _payments(store)
    assert (row["status"], row["run"], row["id_bord"]) == ("paid", run, 1)
    assert [(e["event"], e["source"]) for e in row["history"]][-2:] == [
        ("paid", "reinstate"), ("anomaly-resolved", "reinstate")]
    assert row["history"][-1]["detail"] == {
        "anomaly": number, "kind": "run-cancelled", "by": "alice", "outcome": "reinstated",
        "run": run}
    assert row["history"][-2]["detail"] == {
        "anomaly": number, "run": run, "id_bord": 1, "method": "card",
        "transaction_at": paid_at}
    assert [e["status"] for e in row["history"]][-2:] == ["paid", "paid"]
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE, out + err
    assert "(rule payfip.paid)" in err and "payfip.unsettled" not in err, err
    # cancelled again: the payment is the title's, named as any paid title's
    with pytest.raises(StateError, match="--despite-payments") as info:
        store.cancel(run, "wrong again")
    [said] = [p.message for p in info.value.problems if p.invoice == "FA-2026-00102"]
    assert said.startswith(f"IdBord 1: paid online 187.50 by card on {paid_at} (PayFiP "
                           f"operation {link.id_op})"), said
    assert "while it was cancelled" not in said and "trésorerie" not in said, said


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_another_amount_collected_leaves_the_anomaly_open_and_says_why(flow, store, fmt):
    """PayFiP reported 50.00 collected of the 187.50 due: pesgen records a payment of the
    whole amount only, so the reinstatement leaves the anomaly open, nothing recorded,
    and says why and what to do (a warning; JSON `left_open`); `link` still refuses the
    invoice as held back (rule payfip.unsettled)."""
    link = flow.pay_cancelled("5000")
    run = ledger.get_operation(store, link.id_op)["run_id"]
    paid_at = ledger.get_operation(store, link.id_op)["transaction_at"]
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--format", fmt)
    assert code == 0, out + err
    why = (f"anomaly #{number} (run-cancelled) left open: 50.00 was collected through the "
           f"cancelled title, and its title due (IdBord 1 of run {run}) is 187.50: pesgen "
           "records a payment of the whole amount due only; resolve with --note alone, "
           "settle the difference with the trésorerie and enter what was applied in the "
           "school software by hand")
    if fmt == "text":
        assert (f"warning: invoice FA-2026-00102: paid through its link while its title was "
                f"cancelled (PayFiP operation {link.id_op}): {why}; the invoice gets no new "
                "link until the anomaly is resolved (`pesgen payfip anomalies resolve "
                f"{number} --note TEXT`, with --applied or --refunded as the trésorerie "
                "answers)\n") in err, err
    else:
        report = json.loads(out)
        assert (report["settled"], report["left_open"]) == ([], [{
            "anomaly": number, "kind": "run-cancelled", "invoice": "FA-2026-00102",
            "id_op": link.id_op, "id_bord": 1, "why": why}]), report
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert anomaly["resolved_at"] is None
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["status"] != "paid"
    code, out, err = _link(flow, store)
    assert code == ExitCode.STATE and "(rule payfip.unsettled)" in err, out + err
    # its title active again: not said 'cancelled' any more
    assert (f"paid online 50.00 by card on {paid_at} through its title (IdBord 1 of run "
            f"{run}) while it was cancelled (reinstated since) (PayFiP operation "
            f"{link.id_op}; anomaly #{number}, run-cancelled, not resolved)") in err, err
    assert "through its cancelled title" not in err, err


def test_paid_before_the_cancellation_and_again_through_it_the_second_stays_open(flow, store):
    """Paid through a first link before the cancellation (paid-cancelled), then again
    through a second link made before it, after it (run-cancelled): the reinstatement
    gives the title its first payment back (that anomaly resolved) and leaves the second
    payment's anomaly open, one payment too many for the trésorerie to refund."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    first = flow.link("FA-2026-00102", mode="W")
    second = flow.link("FA-2026-00102", mode="W", again=True)
    flow.pay(first, "card")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(second, "card")
    kinds = {a["kind"]: a["id"] for a in ledger.list_anomalies(store)}
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert [(s["anomaly"], s["kind"], s["id_op"]) for s in report["settled"]] == [
        (kinds["paid-cancelled"], "paid-cancelled", first.id_op)], report
    [left] = report["left_open"]
    assert (left["anomaly"], left["id_op"]) == (kinds["run-cancelled"], second.id_op), left
    assert "it is already paid (187.50 on " in left["why"], left
    assert f"operation {first.id_op}): the money paid through the cancelled title is one " \
        "payment too many, for the trésorerie to refund; resolve with --refunded" in \
        left["why"], left
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"]) == ("paid", first.id_op)
    assert ledger.get_operation(store, second.id_op)["status"] == "anomaly"
    # and the double payment PayFiP's notification saw, for support
    still = [a for a in ledger.list_anomalies(store) if a["resolved_at"] is None]
    assert [a["id"] for a in still] == [kinds["run-cancelled"], kinds["double-payment"]]


def test_a_test_link_s_payment_while_cancelled_is_left_as_it_is(flow, store):
    """A test link (saisie T) collects nothing: its run-cancelled anomaly holds nothing
    back and the reinstatement records no payment for it, nor resolves it."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="T")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(link, "card")
    before = [(a["id"], a["kind"], a["resolved_at"]) for a in ledger.list_anomalies(store)
              if a["id_op"] == link.id_op]
    assert [kind for _, kind, _ in before] == ["run-cancelled"], before
    code, out, err = _cli(store, "runs", "reinstate", run[:8], "--reason", "kept",
                          "--format", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert (report["settled"], report["left_open"]) == ([], []), report
    assert [(a["id"], a["kind"], a["resolved_at"]) for a in ledger.list_anomalies(store)
            if a["id_op"] == link.id_op] == before
    with store.engine.connect() as conn:
        status = conn.execute(sa.select(payments.c.status).where(
            payments.c.invoice == "FA-2026-00102")).scalar()
    assert status != "paid"


def test_only_the_bordereaux_reinstated_have_their_money_recorded(flow, store, tmp_path):
    """Paid through their links while their bordereaux (IdBord 2 and 3 of a run) were
    cancelled, IdBord 2 alone reinstated: its title's money is recorded, the anomaly of
    IdBord 3's title (still cancelled) stays open."""
    from .test_cancel_payfip import _split_run

    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    kept, other = flow.link("FA-2026-00101", mode="W"), flow.link("FA-2026-00105", mode="W")
    store.cancel(run, "by mistake", [2, 3], despite_payments=True)
    flow.pay(kept, "card")
    flow.pay(other, "card")
    number = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)}
    done = store.reinstate(run, "the trésorerie took IdBord 2", [2])
    assert [(s["anomaly"], s["invoice"], s["id_bord"]) for s in done.settled] == [
        (number[kept.id_op], "FA-2026-00101", 2)]
    assert done.left_open == ()
    still = [a["id_op"] for a in ledger.list_anomalies(store) if a["resolved_at"] is None]
    assert still == [other.id_op]
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00105")["status"] != "paid"
    # recording IdBord 2's payment marks its own operation paid, no other
    assert [ledger.get_operation(store, link.id_op)["status"] for link in (kept, other)] == [
        "paid", "anomaly"]


def test_an_anomaly_resolved_before_the_reinstatement_is_left_as_resolved(flow, store):
    """Another amount collected, the anomaly resolved already (--note, the difference
    settled with the trésorerie): the reinstatement neither records the money nor says
    the anomaly is left open."""
    link = flow.pay_cancelled("5000")
    run = ledger.get_operation(store, link.id_op)["run_id"]
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    ledger.resolve_anomaly(store, number, "bob", "50.00 applied by hand")
    done = store.reinstate(run, "kept")
    assert (done.settled, done.left_open) == ((), ())
    [anomaly] = [a for a in ledger.list_anomalies(store) if a["id"] == number]
    assert (anomaly["resolved_by"], anomaly["outcome"]) == ("bob", None)


def test_a_reinstatement_resolves_its_payment_s_anomaly_not_another_of_the_number(flow,
                                                                                  store):
    """Paid, cancelled (a paid-cancelled anomaly of that operation), then reinstated: the
    reinstatement resolves that anomaly only, not another open one of the same invoice
    number and another operation (another collectivité's, on the same state database):
    the anomaly is read by its operation and its invoice together."""
    from pesgen.payfip.tables import anomalies

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    flow.pay(link, "card")
    store.cancel(run, "by mistake", despite_payments=True)
    with store.engine.begin() as conn:
        other = conn.execute(anomalies.insert().values(
            at="2026-12-01T09:00:00Z", kind="paid-cancelled", id_op="another-op",
            invoice="FA-2026-00102", source="cancel", expected=None, got=None,
            detail="its title, paid 10.00, cancelled (another collectivité)")
        ).inserted_primary_key[0]
    done = store.reinstate(run, "kept")
    assert [(s["kind"], s["id_op"]) for s in done.settled] == [("paid-cancelled", link.id_op)]
    still = [a["id"] for a in ledger.list_anomalies(store) if a["resolved_at"] is None]
    assert still == [other]


def test_a_run_cancelled_anomaly_resolved_meanwhile_is_left_to_its_resolution(flow, store,
                                                                            monkeypatch):
    """PostgreSQL: `payfip anomalies resolve` may resolve the run-cancelled anomaly
    between the reinstatement's read of it and its update (which changes only an anomaly
    still open): then the reinstatement keeps that resolution, records no payment for it
    (the operation stays an anomaly, no `paid` nor `anomaly-resolved` event), settles
    nothing, leaves nothing said open, and succeeds. Simulated by resolving the anomaly
    (a note alone, by bob) in the reinstatement's transaction just before its check."""
    from pesgen.payfip.tables import anomalies

    run, link, number = _cancel_then_pay(flow, store)
    check = ledger._applicable

    def resolved_meanwhile(store_, conn, row, op, why):
        conn.execute(anomalies.update().where(anomalies.c.id == row.id).values(
            resolved_at="2026-12-01T09:00:00Z", resolved_by="bob", note="told by phone"))
        return check(store_, conn, row, op, why)

    monkeypatch.setattr(ledger, "_applicable", resolved_meanwhile)
    done = store.reinstate(run, "kept", by="alice")
    assert (done.settled, done.left_open) == ((), ())
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["id"], anomaly["resolved_at"], anomaly["resolved_by"], anomaly["outcome"],
            anomaly["note"]) == (number, "2026-12-01T09:00:00Z", "bob", None, "told by phone")
    assert ledger.get_operation(store, link.id_op)["status"] == "anomaly"
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["status"] != "paid"
    [row] = _payments(store)
    assert [e["event"] for e in row["history"]][-1] == "title-reinstated", row["history"]


def test_a_title_paid_before_and_another_paid_while_cancelled_are_both_settled(flow, store):
    """One reinstatement settles a paid-cancelled anomaly (FA-2026-00101, paid before the
    cancellation) and a run-cancelled one (FA-2026-00102, paid through its link while
    cancelled): both in ``settled``, by anomaly number, each its kind, nothing left
    open."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    before = flow.link("FA-2026-00101", mode="W")
    flow.pay(before, "card")
    during = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(during, "card")
    number = {a["kind"]: a["id"] for a in ledger.list_anomalies(store)}
    done = store.reinstate(run, "kept")
    assert [(s["anomaly"], s["kind"], s["invoice"], s["id_op"]) for s in done.settled] == [
        (number["paid-cancelled"], "paid-cancelled", "FA-2026-00101", before.id_op),
        (number["run-cancelled"], "run-cancelled", "FA-2026-00102", during.id_op)]
    assert number["paid-cancelled"] < number["run-cancelled"]
    assert done.left_open == ()
    assert [a["resolved_at"] is not None for a in ledger.list_anomalies(store)] == [True, True]
    # each invoice's payment row its own operation's: recording FA-2026-00102's leaves
    # FA-2026-00101's as it was
    assert [(p["invoice"], p["id_op"], p["status"]) for p in (
        ledger.payment_of(store, ID_COLL, n) for n in ("FA-2026-00101", "FA-2026-00102"))
    ] == [("FA-2026-00101", before.id_op, "paid"), ("FA-2026-00102", during.id_op, "paid")]


def test_money_paid_while_cancelled_without_payfip_s_time_is_dated_when_it_was_recorded(
        flow, store):
    """PayFiP answered P without dattrans/heurtrans for the payment made through the link
    of the cancelled title: the reinstatement records it (as any payment without them)
    at the time pesgen recorded the result, the operation's resolved_at, in the payment
    row, ``settled`` and the `paid` event."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    flow.control("tamper", {"idop": link.id_op, "fields": {"dattrans": "", "heurtrans": ""}})
    flow.pay(link, "card")
    op = ledger.get_operation(store, link.id_op)
    assert op["transaction_at"] is None and op["resolved_at"], op
    done = store.reinstate(run, "kept")
    assert [(s["id_op"], s["paid_at"]) for s in done.settled] == [
        (link.id_op, op["resolved_at"])]
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"], pay["paid_at"]) == (
        "paid", link.id_op, op["resolved_at"])


def test_titles_paid_while_cancelled_are_left_open_in_bordereau_and_piece_order(
        flow, store, tmp_path):
    """Three titles of two bordereaux (IdBord 2 and 3 of a run, each numbering its
    pieces from 1) paid through their links while cancelled, each another amount than
    its title's, in another order than theirs: the reinstatement leaves the three
    anomalies open, said by IdBord, then IdPce, whatever the order of the payments
    (their anomalies' numbers)."""
    from .test_cancel_payfip import _split_run

    run = _split_run(store, tmp_path)  # IdBord 2, 3, 4 (1 was the flow's run)
    links = {n: flow.link(n, mode="W") for n in ("FA-2026-00105", "FA-2026-00102",
                                                  "FA-2026-00101")}
    store.cancel(run, "by mistake", [2, 3], despite_payments=True)
    for link in links.values():  # IdBord 3 IdPce 1, IdBord 2 IdPce 2, IdBord 2 IdPce 1
        flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "5000"}})
        flow.pay(link, "card")
    done = store.reinstate(run, "the trésorerie took them", [2, 3])
    assert done.settled == ()
    assert [(s["id_bord"], s["invoice"], s["id_op"]) for s in done.left_open] == [
        (2, "FA-2026-00101", links["FA-2026-00101"].id_op),
        (2, "FA-2026-00102", links["FA-2026-00102"].id_op),
        (3, "FA-2026-00105", links["FA-2026-00105"].id_op)]


def test_of_two_links_paid_while_cancelled_the_first_paid_is_the_title_s_payment(flow, store):
    """Two links of FA-2026-00102 made before the cancellation, both paid through after
    it (two run-cancelled anomalies): the reinstatement records the first paid (the
    earlier anomaly) as the title's payment and leaves the second open, one payment too
    many for the trésorerie to refund."""
    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    first = flow.link("FA-2026-00102", mode="W")
    second = flow.link("FA-2026-00102", mode="W", again=True)
    store.cancel(run, "by mistake", despite_payments=True)
    flow.pay(first, "card")
    flow.pay(second, "card")
    number = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)
              if a["kind"] == "run-cancelled"}
    assert number[first.id_op] < number[second.id_op]
    done = store.reinstate(run, "kept")
    assert [(s["anomaly"], s["id_op"]) for s in done.settled] == [
        (number[first.id_op], first.id_op)]
    [left] = done.left_open
    assert (left["anomaly"], left["id_op"]) == (number[second.id_op], second.id_op), left
    assert "payment too many" in left["why"], left
    pay = ledger.payment_of(store, ID_COLL, "FA-2026-00102")
    assert (pay["status"], pay["id_op"]) == ("paid", first.id_op)


def test_a_reinstatement_settles_its_run_s_money_not_another_collectivite_s(flow, store,
                                                                           tmp_path):
    """Two collectivités on one state database, each with the example in its IdBord 1,
    both runs cancelled and both FA-2026-00102 titles paid through their links while
    cancelled: reinstating the first settles its own anomaly only; the other's, its
    title still cancelled, stays open and is not said left open by this run."""
    from pesgen.payfip.service import create_link

    from .collectivity_support import INPUT, export, other_collectivity
    from .payfip_support import TIMEOUT

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    theirs_mapping = other_collectivity(tmp_path / "b")
    other = export(store, theirs_mapping, INPUT, tmp_path / "out-b")
    mine = flow.link("FA-2026-00102", mode="W")
    theirs = create_link(store, theirs_mapping, "FA-2026-00102", endpoint=flow.endpoint,
                         timeout=TIMEOUT, notify_url=flow.notify_url, mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    store.cancel(other, "by mistake", despite_payments=True)
    flow.pay(mine, "card")
    flow.pay(theirs, "card")
    number = {a["id_op"]: a["id"] for a in ledger.list_anomalies(store)}
    done = store.reinstate(run, "kept")
    assert [(s["anomaly"], s["id_op"]) for s in done.settled] == [
        (number[mine.id_op], mine.id_op)]
    assert done.left_open == ()
    still = [a["id_op"] for a in ledger.list_anomalies(store) if a["resolved_at"] is None]
    assert still == [theirs.id_op]


def test_money_paid_while_cancelled_is_said_once_beside_another_budget_s_title(
        flow, store, tmp_path):
    """FA-2026-00102's run cancelled after its link was made; the example exported again
    for another budget of the collectivité (its own IdBord sequence: IdBord 1 too, the
    same invoice of the same SIRET) and that run cancelled; then the family pays through
    the link, PayFiP reporting another amount: reinstating the first run leaves the
    anomaly open and says so once (the other run's title of the same number and IdBord
    is not the operation's)."""
    from .collectivity_support import INPUT, export, other_budget

    run = ledger.invoice_due(store, ID_COLL, "FA-2026-00102").run_id
    link = flow.link("FA-2026-00102", mode="W")
    store.cancel(run, "by mistake", despite_payments=True)
    other = export(store, other_budget(tmp_path), INPUT, tmp_path / "b01")
    assert [b.id_bord for b in store.run_bordereaux(other)] == [1]
    store.cancel(other, "wrong budget")
    flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "5000"}})
    flow.pay(link, "card")
    [number] = [a["id"] for a in ledger.list_anomalies(store) if a["kind"] == "run-cancelled"]
    done = store.reinstate(run, "kept")
    assert done.settled == ()
    assert [(s["anomaly"], s["id_op"], s["id_bord"]) for s in done.left_open] == [
        (number, link.id_op, 1)]
