# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""PayFiP end to end, over real HTTP on loopback: pesgen's client -> fake PayFiP ->
payment page -> notification -> receiver -> SOAP pull -> state store.

Scenarios of issue 5: paid by card, paid by direct debit, refused, abandoned, pending
then paid (reconcile), notification lost then reconciled, notification replayed,
forged notification (unknown idOp), amount mismatch (an anomaly, not a payment), SOAP
fault; and every request validated before sending. A payment pays the invoice only in
production mode (saisie W, so those tests link with mode="W"); in test or activation
mode (T, X; the example mapping's T) it is a test payment, and stores that recorded
such payments as paid are corrected by migration 4.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa

from pesgen.errors import StateError
from pesgen.payfip import ledger
from pesgen.payfip.errors import PayfipFault, PayfipRequestInvalid
from pesgen.payfip.tables import anomalies, events, operations, payments
from pesgen.store import Store

from .mapping_support import mapping_copy
from .payfip_support import (  # noqa: F401 - fixtures
    TIMEOUT,
    example_102_at,
    exported,
    fake,
    flow,
    receiver,
    store,
)


def _payment(store, invoice="FA-2026-00102"):
    return ledger.payment_of(store, "21450999400015", invoice)


def _events(store, invoice="FA-2026-00102"):
    with store.engine.connect() as conn:
        return [(r.event, r.source, r.status) for r in conn.execute(
            sa.select(events).where(events.c.invoice == invoice).order_by(events.c.id))]


def _count(store, table):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


# ---------------------------------------------------------------------- results


def test_paid_by_card(flow):
    link = flow.link(mode="W")
    assert link.amount_cents == 18750 and link.refdet == "FA202600102"
    assert link.url == f"{flow.endpoint}/paiementws.web?idop={link.id_op}"
    assert _payment(flow.store)["status"] == "pending"

    answer = flow.pay(link, "card")
    assert answer.status_code == 200 and "Retour au site" in answer.text

    pay = _payment(flow.store)
    assert pay["status"] == "paid" and pay["method"] == "card"
    assert pay["paid_cents"] == 18750 and pay["id_op"] == link.id_op
    assert pay["numauto"].startswith("FAKE") and pay["paid_at"]
    op = ledger.get_operation(flow.store, link.id_op)
    assert op["status"] == "paid" and op["result_code"] == "P" and op["notifications"] == 1
    assert _events(flow.store) == [("created", "link", "pending"),
                                   ("paid", "notification", "paid")]
    assert flow.fake_operations()[0]["notifications"] == ["HTTP 200"]


def test_paid_by_direct_debit(flow):
    link = flow.link(mode="W")
    flow.pay(link, "debit")
    pay = _payment(flow.store)
    assert pay["status"] == "paid" and pay["method"] == "direct_debit"
    assert ledger.get_operation(flow.store, link.id_op)["result_code"] == "V"


@pytest.mark.parametrize("action, code, method", [("refuse", "R", "card"),
                                                  ("refuse-debit", "Z", "direct_debit")])
def test_refused(flow, action, code, method):
    link = flow.link()
    flow.pay(link, action)
    pay = _payment(flow.store)
    assert pay["status"] == "refused" and pay["paid_cents"] is None and pay["id_op"] is None
    op = ledger.get_operation(flow.store, link.id_op)
    assert op["status"] == "refused" and op["result_code"] == code
    # the family may try again: a new operation reopens the payment, then pays it
    again = flow.link(mode="W")
    assert again.id_op != link.id_op and _payment(flow.store)["status"] == "pending"
    flow.pay(again, "card")
    assert _payment(flow.store)["status"] == "paid"


def _made_minutes_ago(store, id_op: str, minutes: int) -> None:
    """The operation as if pesgen had recorded it ``minutes`` ago."""
    from datetime import UTC, datetime, timedelta

    when = (datetime.now(UTC) - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.engine.begin() as conn:
        conn.execute(operations.update().where(operations.c.id_op == id_op)
                     .values(created_at=when))


def test_abandoned(flow):
    link = flow.link()
    flow.pay(link, "abandon")
    # within 20 minutes of the operation, an abandon is not final: the idOp is active
    op = ledger.get_operation(flow.store, link.id_op)
    assert (op["status"], op["result_code"]) == ("pending", "A")
    assert "still active" in op["last_error"]
    assert _payment(flow.store)["status"] == "pending"
    # the payment page cannot be used twice
    assert httpx.get(link.url, timeout=TIMEOUT).status_code == 409
    # asked again once the 20 minutes are over, it is: abandoned
    _made_minutes_ago(flow.store, link.id_op, 21)
    [outcome] = flow.reconcile()
    assert (outcome.action, outcome.status) == ("recorded", "abandoned")
    assert _payment(flow.store)["status"] == "abandoned"
    assert ledger.get_operation(flow.store, link.id_op)["result_code"] == "A"
    assert flow.reconcile() == []  # final: no longer asked


def test_an_abandon_is_final_from_the_end_of_its_20_minutes_to_the_second(flow, monkeypatch):
    """The idOp stays payable for 20 minutes after it was made, not through their end:
    A asked again a second before that time is still pending (saying until when), asked
    at that time it is final (abandoned)."""
    from datetime import UTC, datetime, timedelta

    link = flow.link()
    flow.pay(link, "abandon")
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    with flow.store.engine.begin() as conn:
        conn.execute(operations.update().where(operations.c.id_op == link.id_op).values(
            created_at=(until - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")))

    def clock(at):
        monkeypatch.setattr(ledger, "utc_now", lambda: at.strftime("%Y-%m-%dT%H:%M:%SZ"))

    clock(until - timedelta(seconds=1))
    [outcome] = flow.reconcile()
    assert (outcome.action, outcome.status) == ("pending", "pending")
    assert outcome.message.startswith(
        f"result A (abandoned) before {until.strftime('%Y-%m-%dT%H:%M:%SZ')}: ")
    assert _payment(flow.store)["status"] == "pending"
    # each answer asked is counted: the notification's and this one
    assert ledger.get_operation(flow.store, link.id_op)["checks"] == 2
    clock(until)
    [outcome] = flow.reconcile()
    assert (outcome.action, outcome.status) == ("recorded", "abandoned")
    assert _payment(flow.store)["status"] == "abandoned"
    assert ledger.get_operation(flow.store, link.id_op)["checks"] == 3


def test_paid_after_an_abandon_within_20_minutes_is_recorded(flow, store):
    """The family abandons, then goes back and pays through the same idOp (it stays
    active for 20 minutes): the later notification pulls the result again and records
    the payment; a new link made meanwhile says the earlier one may still be paid."""
    link = flow.link(mode="W")
    flow.pay(link, "abandon")
    assert ledger.get_operation(store, link.id_op)["status"] == "pending"
    again = flow.link(mode="W")
    assert [n for n in again.notes if link.id_op in n] == [
        f"invoice FA-2026-00102: operation {link.id_op} was abandoned but stays payable "
        f"until {ledger.active_until(ledger.get_operation(store, link.id_op)['created_at'])}"
        ": if the family pays both, the second is a double-payment anomaly, for the "
        "trésorerie to refund (docs/payfip.md, abandoned)"]
    flow.control("tamper", {"idop": link.id_op, "fields": {
        "resultrans": "P", "numauto": "LATE0001"}})
    flow.control("notify", {"idop": link.id_op})
    op = ledger.get_operation(store, link.id_op)
    assert (op["status"], op["result_code"], op["notifications"]) == ("paid", "P", 2)
    pay = _payment(store)
    assert (pay["status"], pay["id_op"], pay["numauto"]) == ("paid", link.id_op, "LATE0001")
    # the new link paid too: a double payment, never counted
    flow.pay(again, "card")
    [double] = ledger.list_anomalies(store)
    assert double["kind"] == "double-payment"
    assert _payment(store)["id_op"] == link.id_op
    # resolving it notes in the history the invoice's status then (paid), who and what
    ledger.resolve_anomaly(store, double["id"], "bob", "the trésorerie refunds the second")
    assert _events(store)[-1] == ("anomaly-resolved", "support", "paid")
    with store.engine.connect() as conn:
        noted = conn.execute(sa.select(events.c.detail).order_by(events.c.id.desc())).first()
    assert json.loads(noted.detail) == {"anomaly": double["id"], "kind": "double-payment",
                                        "by": "bob"}


def test_a_new_link_beside_a_production_link_still_open_says_so(flow, store):
    """The régisseur sends a second link while the first is not answered (the family
    lost the e-mail): the first stays payable at PayFiP, so the new link's notes say so,
    and both paid, the second is a double-payment anomaly. A test link beside it (saisie
    T), or a production one beside a test one, collects nothing twice: no note."""
    first = flow.link(mode="W")
    made = ledger.get_operation(store, first.id_op)["created_at"]
    again = flow.link(mode="W", again=True)
    assert again.notes == (
        f"invoice FA-2026-00102: operation {first.id_op} (made {made}, saisie W) is still "
        "open (pending): the family may still pay through it; if the family pays both, the "
        "second is a double-payment anomaly, for the trésorerie to refund (docs/payfip.md, "
        "a link still open)",)
    assert flow.link(mode="T").notes == ()  # a test link: nothing collected through it
    flow.pay(first, "card")
    flow.pay(again, "card")
    [double] = ledger.list_anomalies(store)
    assert (double["kind"], double["id_op"]) == ("double-payment", again.id_op)


def test_a_test_link_still_open_beside_a_production_one_is_not_noted(flow):
    flow.link(mode="T")
    assert flow.link(mode="W").notes == ()


@pytest.mark.parametrize("kind", ["lookup-refused", "unknown-result"])
def test_a_new_link_beside_a_link_whose_result_is_not_known_says_so(flow, store, kind):
    """PayFiP would not give an earlier production link's result (P4…), or gave a code
    pesgen does not know: the family may have paid through it, so the new link's notes
    say to ask the trésorerie before sending it. A test link gets no such note (it
    collects nothing), nor a link once the anomaly is resolved."""
    from pesgen.payfip.models import PaymentDetail

    first = flow.link(mode="W")
    op = ledger.get_operation(store, first.id_op)
    if kind == "lookup-refused":
        ledger.refused_lookup(store, first.id_op, "reconcile", "P4")
        why = "PayFiP would not give its result"
    else:
        ledger.apply_detail(store, first.id_op, PaymentDetail(
            idOp=first.id_op, resultrans="Q", montant=str(op["amount_cents"]),
            refdet=op["refdet"], numcli=op["numcli"], saisie="W", dattrans="01122026",
            heurtrans="1000", numauto="A55A"), "reconcile")
        why = "PayFiP answered a result code pesgen does not know"
    [anomaly] = [a for a in ledger.list_anomalies(store, open_only=True) if a["kind"] == kind]
    again = flow.link(mode="W")
    assert again.notes == (
        f"invoice FA-2026-00102: whether the family paid through operation {first.id_op} "
        f"(made {op['created_at']}, saisie W) is not known: {why} (anomaly "
        f"#{anomaly['id']}, {kind}, not resolved); ask the trésorerie before sending this "
        "link: if the family paid, it would pay twice; if not, send it and resolve the "
        "anomaly (docs/payfip.md, a link still open)",)
    assert flow.link(mode="T").notes == ()
    # the invoice is the collectivity's: another's invoice of the same number has no
    # operation whose result is not known
    assert [op["id_op"] for op in ledger.unknown_results_of(
        store, "21450999400015", "FA-2026-00102")] == [first.id_op]
    assert ledger.unknown_results_of(store, "21450999400023", "FA-2026-00102") == []
    assert ledger.unknown_results_of(store, "21450999400015", "FA-2026-00103") == []
    # not known is not paid through a cancelled title: nothing holds the invoice back
    assert ledger.unsettled_payments(store, "21450999400015") == {}
    ledger.resolve_anomaly(store, anomaly["id"], "support", "not paid, says the trésorerie")
    assert [n for n in flow.link(mode="W", again=True).notes if "is not known" in n] == []


def test_a_test_link_whose_result_is_not_known_is_not_noted_beside_a_new_link(flow, store):
    """A test link (saisie T) collects nothing: PayFiP refusing its result lookup leaves
    an anomaly, but the family cannot have paid through it, so a production link made
    after it says nothing of it."""
    first = flow.link(mode="T")
    ledger.refused_lookup(store, first.id_op, "reconcile", "P4")
    assert [a["id_op"] for a in ledger.list_anomalies(store, open_only=True)
            if a["kind"] == "lookup-refused"] == [first.id_op]
    assert [n for n in flow.link(mode="W").notes if "is not known" in n] == []


def test_a_new_link_beside_its_cancelled_titles_link_still_open_says_so(flow, store,
                                                                        tmp_path):
    """The invoice exported again after its run was cancelled: the link of the
    cancelled title stays payable, and a payment through it is a run-cancelled anomaly,
    not a payment of the new title: the new link's notes say that, not a double
    payment."""
    from pesgen.runs import export_recorded

    from .payfip_support import INPUT, MAPPING, RUN_DATE

    first = flow.link(mode="W")
    old_run = ledger.get_operation(store, first.id_op)["run_id"]
    store.cancel(old_run, "wrong amounts", despite_payments=True)
    export_recorded(lambda: store, MAPPING, INPUT, tmp_path / "again", RUN_DATE)
    made = ledger.get_operation(store, first.id_op)["created_at"]
    again = flow.link(mode="W")
    assert again.notes == (
        f"invoice FA-2026-00102: operation {first.id_op} (made {made}, saisie W) is still "
        f"open (pending): the family may still pay through it; its title then (run "
        f"{old_run}) is cancelled: a payment through it is a run-cancelled anomaly, not a "
        "payment of this title, for the trésorerie to refund or apply; tell the family "
        "which link to use (docs/payfip.md, a link still open)",)
    flow.pay(first, "card")
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["id_op"]) == ("run-cancelled", first.id_op)


def test_already_paid_invoice_gets_no_new_link(flow):
    flow.pay(flow.link(mode="W"), "card")
    from pesgen.errors import StateError

    with pytest.raises(StateError, match="already paid"):
        flow.link()
    assert len(flow.fake_operations()) == 1


def test_a_paid_invoice_is_said_paid_the_amount_paid_not_the_amount_due_since(flow, store):
    """The refusal names the amount the family paid: an operation recorded since for
    another amount (a title exported again, a link made while the payment came) changes
    the amount due, not what was paid."""
    from pesgen.errors import StateError

    link = flow.link(mode="W")
    flow.pay(link, "debit")
    due = ledger.invoice_due(store, "21450999400015", "FA-2026-00102")
    ledger.record_operation(store, {
        "id_op": "0d1a5c3e-0000-4000-8000-0000000000a8", "id_coll": "21450999400015",
        "invoice": due.invoice, "run_id": due.run_id, "numcli": "012345", "exer": "2026",
        "refdet": "FA202600102", "amount_cents": 15000, "mel": "famille@example.org",
        "objet": "FACTURE", "saisie": "W", "endpoint": flow.endpoint})
    paid = _payment(store)
    assert (paid["amount_cents"], paid["paid_cents"]) == (15000, 18750)
    with pytest.raises(StateError) as info:
        flow.link(mode="W")
    assert str(info.value).startswith(
        f"invoice FA-2026-00102: already paid through PayFiP: 187.50 by direct debit on "
        f"{paid['paid_at']} (operation {link.id_op}); no new link")
    [problem] = info.value.problems
    assert problem.message.startswith(f"paid 187.50 on {paid['paid_at']} through PayFiP ")


class _PayingMeanwhileClient:
    """A PayFiP client during whose creerPaiementSecurise the family pays the invoice
    through an earlier link, its notification recorded (refuse_paid came before)."""

    endpoint = "http://payfip.invalid/tpa"
    id_op = "0d1a5c3e-0000-4000-8000-0000000000a7"

    def __init__(self, flow, earlier):
        self.flow, self.earlier = flow, earlier

    def creer_paiement_securise(self, request):
        self.flow.pay(self.earlier, "card")
        assert _payment(self.flow.store)["status"] == "paid"
        return self.id_op

    def payment_url(self, id_op):
        return f"{self.endpoint}/paiementws.web?idop={id_op}"

    def close(self):
        pass


def test_a_batch_stopped_by_payfip_keeps_the_links_made_and_names_those_not_sent(
        flow, store):
    """PayFiP stops answering midway through a batch: the links made before stay made
    and recorded (given as they came), and the error says which invoices were not sent;
    its exit code is PayFiP's (8)."""
    from pesgen.payfip.client import PayfipClient
    from pesgen.payfip.errors import PayfipFault, PayfipUnavailable
    from pesgen.payfip.service import create_links

    from .payfip_support import MAPPING

    class FailingSecond(PayfipClient):
        calls = 0

        def creer_paiement_securise(self, req):
            FailingSecond.calls += 1
            if FailingSecond.calls == 2:
                raise PayfipUnavailable("PayFiP creerPaiementSecurise: no answer: timeout",
                                        "timeout")
            return super().creer_paiement_securise(req)

    made = []
    with FailingSecond(flow.endpoint, timeout=5.0) as client, \
            pytest.raises(PayfipFault) as info:
        for link in create_links(store, MAPPING, ["FA-2026-00102", "FA-2026-00103",
                                                  "FA-2026-00105"], mode="W", client=client,
                                 notify_url=flow.notify_url):
            made.append(link.invoice)
    assert made == ["FA-2026-00102"]
    assert info.value.exit_code == 8
    assert str(info.value) == (
        "invoice FA-2026-00103: PayFiP creerPaiementSecurise: no answer: timeout; the batch "
        "stopped there: 1 link(s) made before it (FA-2026-00102), 1 invoice(s) not sent: "
        "FA-2026-00105")
    assert [o["refdet"] for o in flow.fake_operations()] == ["FA202600102"]
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00102")["status"] == "pending"
    assert ledger.payment_of(store, "21450999400015", "FA-2026-00103") is None
    store.engine.dispose()


def test_a_link_made_while_its_invoice_is_paid_is_recorded_not_given(flow, store):
    """The invoice was paid (an earlier link, its notification recorded) while PayFiP
    made the operation: the operation is recorded (a payment through it is a double
    payment), and the link is refused, exit 7, rule payfip.paid."""
    from pesgen.errors import StateError
    from pesgen.payfip.service import create_link

    from .payfip_support import MAPPING

    earlier = flow.link(mode="W")
    client = _PayingMeanwhileClient(flow, earlier)
    with pytest.raises(StateError, match="paid through PayFiP while") as info:
        # the earlier link still open when it is made: a second one, knowingly
        create_link(store, MAPPING, "FA-2026-00102", mode="W", client=client,
                    notify_url=flow.notify_url, again=True)
    assert info.value.exit_code == 7
    assert "do not send its link" in str(info.value)
    assert [(p.rule, p.invoice) for p in info.value.problems] == [
        ("payfip.paid", "FA-2026-00102")]
    op = ledger.get_operation(store, client.id_op)
    assert op["status"] == "pending"
    pay = _payment(store)
    assert (pay["status"], pay["id_op"], pay["last_id_op"]) == (
        "paid", earlier.id_op, client.id_op)


def test_a_link_made_while_its_invoice_is_paid_names_the_amount_paid(flow, store):
    """Paid meanwhile, and an operation for another amount recorded meanwhile too: the
    refusal names what the family paid, not the amount that operation set due."""
    from pesgen.errors import StateError
    from pesgen.payfip.service import create_link

    from .payfip_support import MAPPING

    class AnotherAmountToo(_PayingMeanwhileClient):
        def creer_paiement_securise(self, request):
            id_op = super().creer_paiement_securise(request)
            due = ledger.invoice_due(store, "21450999400015", "FA-2026-00102")
            ledger.record_operation(store, {
                "id_op": "0d1a5c3e-0000-4000-8000-0000000000a8", "id_coll": "21450999400015",
                "invoice": due.invoice, "run_id": due.run_id, "numcli": "012345",
                "exer": "2026", "refdet": "FA202600102", "amount_cents": 15000,
                "mel": "famille@example.org", "objet": "FACTURE", "saisie": "W",
                "endpoint": self.endpoint})
            return id_op

    earlier = flow.link(mode="W")
    client = AnotherAmountToo(flow, earlier)
    with pytest.raises(StateError) as info:
        create_link(store, MAPPING, "FA-2026-00102", mode="W", client=client,
                    notify_url=flow.notify_url, again=True)
    paid = _payment(store)
    assert (paid["amount_cents"], paid["paid_cents"]) == (18750, 18750)  # the link's own
    assert str(info.value).startswith(
        f"invoice FA-2026-00102: paid through PayFiP while PayFiP made operation "
        f"{client.id_op}: 187.50 on {paid['paid_at']} (operation {earlier.id_op})")


def test_an_operation_payfip_made_but_not_recorded_gives_no_link(flow, store, monkeypatch):
    """The store fails as the operation is recorded: PayFiP made it, nothing says so in
    the store, so its link must not go out (exit 7, naming the idOp)."""
    from pesgen.errors import StateError

    def failing(store, op, unless_open=None, claim=None):
        raise OSError("disk full")

    monkeypatch.setattr(ledger, "record_operation", failing)
    with pytest.raises(StateError) as info:
        flow.link(mode="W")
    [made] = flow.fake_operations()
    assert str(info.value) == (
        f"invoice FA-2026-00102: PayFiP issued operation {made['idOp']} but it could not be "
        "recorded (OSError); do not send its link")
    assert info.value.exit_code == 7
    assert _payment(store) is None
    # its claim on the invoice released: the next link is not held back by it
    from pesgen.payfip.tables import claims

    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(claims)).scalar() == 0


# ---------------------------------------------------------------------- lost and late


def test_pending_then_paid_by_reconcile(flow, store):
    # the receiver is down when PayFiP notifies: urlnotif refuses connections
    closed = flow.receiver.url.rsplit(":", 1)[0] + ":9"
    link = flow.link(notify_url=f"{closed}/payfip/notification", mode="W")
    [first] = flow.reconcile()  # the family has not paid yet: P5
    assert (first.action, first.status) == ("pending", "pending")
    assert _payment(store)["status"] == "pending"

    flow.pay(link, "card")
    assert flow.fake_operations()[0]["notifications"][0].startswith("failed")
    assert _payment(store)["status"] == "pending"

    [second] = flow.reconcile()
    assert (second.action, second.status, second.invoice) == ("recorded", "paid",
                                                              "FA-2026-00102")
    assert _payment(store)["status"] == "paid"
    assert flow.reconcile() == []  # nothing open any more
    assert ledger.get_operation(store, link.id_op)["checks"] == 2


def test_notification_lost_then_reconciled(flow, store):
    flow.control("notifications", {"enabled": False})
    link = flow.link(mode="W")
    flow.pay(link, "debit")
    assert flow.fake_operations()[0]["notifications"] == ["not sent"]
    assert _payment(store)["status"] == "pending"
    [outcome] = flow.reconcile()
    assert outcome.action == "recorded" and outcome.status == "paid"
    assert _payment(store)["method"] == "direct_debit"
    assert _events(store)[-1] == ("paid", "reconcile", "paid")


def test_notification_replayed_is_harmless(flow, store):
    link = flow.link(mode="W")
    flow.pay(link, "card")
    assert flow.control("notify", {"idop": link.id_op})["notification"] == "HTTP 200"
    for key in ("idop", "idOp", "IDOP"):  # the key's case differs between sources
        assert flow.notify(link.id_op, key).status_code == 200
    assert _count(store, payments) == 1
    assert [e for e in _events(store) if e[0] == "paid"] == [("paid", "notification", "paid")]
    assert ledger.get_operation(store, link.id_op)["notifications"] == 5
    # a reconcile after the fact changes nothing either
    assert flow.reconcile() == []


def test_forged_notification_unknown_idop_is_rejected(flow, store):
    flow.link()
    forged = str(uuid.uuid4())
    answer = flow.notify(forged)
    assert answer.status_code == 404
    assert httpx.post(flow.notify_url, data={"idop": "<script>"},
                      timeout=TIMEOUT).status_code == 400
    assert httpx.post(flow.notify_url, timeout=TIMEOUT).status_code == 400
    [anomaly] = ledger.list_anomalies(store)
    assert anomaly["kind"] == "unknown-idop" and anomaly["id_op"] == forged
    assert _payment(store)["status"] == "pending"
    # the family's return with a forged idop: no payment either
    assert httpx.get(f"{flow.receiver.url}/payfip/retour?idop={forged}",
                     timeout=TIMEOUT).status_code == 404


def test_forged_notification_of_a_known_unpaid_idop_records_nothing(flow, store):
    link = flow.link()
    assert flow.notify(link.id_op).status_code == 200  # pulled: P5, still pending
    assert _payment(store)["status"] == "pending"
    assert ledger.get_operation(store, link.id_op)["status"] == "pending"


def test_amount_mismatch_is_an_anomaly_not_a_payment(flow, store):
    link = flow.link()
    flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "100"}})
    flow.pay(link, "card")
    pay = _payment(store)
    assert pay["status"] == "pending" and pay["paid_cents"] is None
    op = ledger.get_operation(store, link.id_op)
    assert op["status"] == "anomaly"
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["expected"], anomaly["got"]) == (
        "amount-mismatch", "18750", "100")
    assert _events(store)[-1][0] == "anomaly"
    assert flow.reconcile() == []  # an anomaly is for a person, not for the sweep


def test_resolving_an_anomaly_records_the_decision_and_pays_nothing(flow, store, caplog):
    """After an amount-mismatch (logged as a warning naming its kind) the invoice stays
    pending: resolving the anomaly records who decided what and when, in the anomaly and
    the invoice's history; it records no payment, changes no status, and the invoice can
    still get a link."""
    from pesgen.errors import StateError, UsageError

    link = flow.link(mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "5000"}})
    with caplog.at_level("WARNING", logger="pesgen.payfip"):
        flow.pay(link, "card")
    assert f"payfip notification: operation {link.id_op}: anomaly (amount-mismatch)" in [
        r.getMessage() for r in caplog.records]
    [anomaly] = ledger.list_anomalies(store, open_only=True)
    assert (anomaly["kind"], anomaly["invoice_status"], anomaly["resolved_at"]) == (
        "amount-mismatch", "pending", None)
    before = _payment(store)
    op_before = ledger.get_operation(store, link.id_op)

    with pytest.raises(UsageError, match="needs a note"):
        ledger.resolve_anomaly(store, anomaly["id"], "alice", "  ")
    with pytest.raises(StateError, match="no anomaly 999"):
        ledger.resolve_anomaly(store, 999, "alice", "x")
    with pytest.raises(UsageError, match="--by must be 1 to 64 characters"):
        ledger.resolve_anomaly(store, anomaly["id"], "a" * 65, "x")
    with pytest.raises(UsageError, match="--by must be 1 to 64 characters"):
        ledger.resolve_anomaly(store, anomaly["id"], " \t", "x")  # blank: nobody
    note = "trésorerie: 50,00 EUR collected, 16,00 EUR refunded on 2026-12-02"
    alice = "alice " + "x" * 58  # 64 characters: the most resolved_by holds
    done = ledger.resolve_anomaly(store, anomaly["id"], alice, note)
    assert (done["resolved_by"], done["note"]) == (alice, note) and done["resolved_at"]
    with pytest.raises(StateError, match=f"anomaly {anomaly['id']} was already resolved on "
                       f"{done['resolved_at']} by {alice}"):
        ledger.resolve_anomaly(store, anomaly["id"], "bob", "again")

    assert ledger.list_anomalies(store, open_only=True) == []
    [closed] = ledger.list_anomalies(store)
    assert (closed["resolved_at"], closed["resolved_by"], closed["note"]) == (
        done["resolved_at"], alice, note)
    assert _payment(store) == before and before["status"] == "pending"  # nothing paid
    assert before["paid_cents"] is None
    assert ledger.get_operation(store, link.id_op) == op_before
    assert _events(store)[-2:] == [("anomaly", "notification", "pending"),
                                   ("anomaly-resolved", "support", "pending")]
    assert flow.reconcile() == []
    assert flow.link(mode="W").invoice == "FA-2026-00102"  # a new link can be sent


def test_a_schema_6_store_s_anomalies_are_migrated_open(schema_3_url, monkeypatch):
    """Migration 7 adds who resolved an anomaly, when and the note; the anomalies recorded
    before stay open and can be resolved."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:6])
        old = Store(schema_3_url)
    with old.engine.begin() as conn:
        table = sa.Table("payfip_anomalies", sa.MetaData(), autoload_with=conn)
        assert "resolved_at" not in table.c
        conn.execute(table.insert().values(at="2026-11-23T18:00:00Z", kind="unknown-idop",
                                           id_op="forged-1", source="notification",
                                           detail="notification for an operation pesgen "
                                           "never issued; rejected"))
    old.engine.dispose()

    store = Store(schema_3_url)
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(st.schema_table.c.version)).scalars()) == \
            list(range(1, len(st.MIGRATIONS) + 1))
    [anomaly] = ledger.list_anomalies(store, open_only=True)
    assert (anomaly["kind"], anomaly["resolved_at"], anomaly["invoice_status"]) == (
        "unknown-idop", None, None)
    done = ledger.resolve_anomaly(store, anomaly["id"], "alice", "not ours: ignored")
    assert ledger.list_anomalies(store, open_only=True) == []
    assert ledger.list_anomalies(store)[0]["note"] == done["note"] == "not ours: ignored"
    store.engine.dispose()


def test_a_schema_13_store_keeps_its_resolutions_and_payments_as_they_were(schema_3_url,
                                                                           monkeypatch):
    """Migration 14 adds an anomaly's outcome (what the trésorerie did with money paid
    through a cancelled title) and the run a payment was applied to: an anomaly resolved
    before keeps its note alone (no outcome), a payment the title of its operation."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:13])
        old = Store(schema_3_url)
    with old.engine.begin() as conn:
        found = sa.Table("payfip_anomalies", sa.MetaData(), autoload_with=conn)
        paid = sa.Table("payfip_payments", sa.MetaData(), autoload_with=conn)
        assert "outcome" not in found.c and "applied_run" not in paid.c
        conn.execute(found.insert().values(
            at="2026-11-23T18:00:00Z", kind="unknown-idop", id_op="forged-1",
            source="notification", detail="never issued", resolved_at="2026-11-24T09:00:00Z",
            resolved_by="alice", note="not ours"))
        conn.execute(paid.insert().values(
            id_coll="21450999400015", invoice="FA-2026-00102", status="paid",
            amount_cents=18750, paid_cents=18750, method="card", paid_at="2026-11-23",
            id_op="op-1", last_id_op="op-1", refdet="FA202600102",
            created_at="2026-11-23T18:00:00Z", updated_at="2026-11-23T18:00:00Z"))
    old.engine.dispose()

    store = Store(schema_3_url)
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(st.schema_table.c.version)).scalars()) == \
            list(range(1, len(st.MIGRATIONS) + 1))
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["resolved_by"], anomaly["note"], anomaly["outcome"]) == (
        "alice", "not ours", None)
    pay = ledger.payment_of(store, "21450999400015", "FA-2026-00102")
    assert (pay["status"], pay["id_op"], pay["applied_run"]) == ("paid", "op-1", None)
    store.engine.dispose()


def test_a_schema_16_store_gets_its_payments_keyed(schema_3_url, monkeypatch):
    """Migration 17 keys each payment's invoice (``keys.invoice_key``, as the titles'),
    indexed with its collectivity: `link` then reads the payments of its invoices' keys
    only, and finds one written otherwise (`` fa-2026-00103 `` for FA-2026-00103)."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:16])
        old = Store(schema_3_url)
    with old.engine.begin() as conn:
        paid = sa.Table("payfip_payments", sa.MetaData(), autoload_with=conn)
        assert "invoice_key" not in paid.c
        conn.execute(paid.insert(), [
            {"id_coll": "21450999400015", "invoice": invoice, "status": "paid",
             "amount_cents": 18750, "paid_cents": 18750, "method": "card",
             "paid_at": "2026-11-23", "id_op": f"op-{n}", "last_id_op": f"op-{n}",
             "refdet": f"FA20260010{n}", "created_at": "2026-11-23T18:00:00Z",
             "updated_at": "2026-11-23T18:00:00Z"}
            for n, invoice in enumerate(["FA-2026-00102", " fa-2026-00103 "])])
    old.engine.dispose()

    store = Store(schema_3_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(payments.c.invoice, payments.c.invoice_key)
                            .order_by(payments.c.id)).all() == [
            ("FA-2026-00102", "fa-2026-00102"), (" fa-2026-00103 ", "fa-2026-00103")]
        indexes = {i["name"]: i["column_names"]
                   for i in sa.inspect(conn).get_indexes("payfip_payments")}
    assert indexes["ix_payfip_payment_key"] == ["id_coll", "invoice_key"]
    found = ledger.paid_by_key(store, "21450999400015", ["FA-2026-00103"])
    assert {k: p["id_op"] for k, p in found.items()} == {"fa-2026-00103": "op-1"}
    store.engine.dispose()


def test_a_link_reads_the_payments_of_its_invoices_only(flow, store):
    """`link` (Lookups.paid) reads the payments recorded paid of the invoices it is
    given, by key, through the index (not every paid payment of the collectivity, as it
    did, a query a command): FA-2026-00101 paid, a link for FA-2026-00102 reads no row
    of it, and a link for FA-2026-00101 is refused as paid (rule payfip.paid)."""
    flow.pay(flow.link("FA-2026-00101", mode="W"), "card")
    seen: list[tuple[str, object]] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cu, statement, params, *_: seen.append((statement, params)))
    flow.link("FA-2026-00102", mode="W")
    read = [(st_, p) for st_, p in seen if "FROM payfip_payments" in st_
            and "payfip_payments.status =" in st_]
    # its key's, and any written without a key (none here)
    assert [("payfip_payments.invoice_key IN" in st_, "invoice_key IS NULL" in st_)
            for st_, _ in read] == [(False, True), (True, False)], read
    assert "fa-2026-00101" not in str(read) and "fa-2026-00102" in str(read[1][1]), read
    with pytest.raises(StateError) as info:
        flow.link("FA-2026-00101", mode="W")
    assert [p.rule for p in info.value.problems] == ["payfip.paid"]


def test_refdet_and_numcli_mismatch_are_anomalies(flow, store):
    link = flow.link()
    flow.control("tamper", {"idop": link.id_op,
                            "fields": {"refdet": "OTHER00001", "numcli": "999999"}})
    flow.pay(link, "card")
    kinds = sorted(a["kind"] for a in ledger.list_anomalies(store))
    assert kinds == ["numcli-mismatch", "refdet-mismatch"]
    assert _payment(store)["status"] == "pending"


def _ticking(monkeypatch) -> None:
    """The ledger's clock moves on a second at each reading (a second crossed
    mid-change, as CI once saw)."""
    ticks = iter(range(10, 60))
    monkeypatch.setattr(ledger, "utc_now", lambda: f"2026-12-08T09:00:{next(ticks):02d}Z")


def _times_of(store, id_op: str) -> tuple[str, set[str], set[str]]:
    """An operation's resolved_at, its anomalies' times, the times of its events."""
    with store.engine.connect() as conn:
        found = {r.at for r in conn.execute(sa.select(anomalies.c.at).where(
            anomalies.c.id_op == id_op))}
        told = {r.at for r in conn.execute(sa.select(events.c.at).where(
            events.c.id_op == id_op, events.c.event != "created"))}
    return ledger.get_operation(store, id_op)["resolved_at"], found, told


@pytest.mark.parametrize("how", ["mismatches", "double-payment", "lookup-refused"])
def test_the_anomalies_of_a_result_and_its_history_say_one_time(flow, store, monkeypatch,
                                                                how):
    """The anomalies one result records (two mismatches at once; a second payment;
    PayFiP refusing the lookup) carry the time the result was recorded, the operation's
    ``resolved_at`` and its history's, whatever the clock says meanwhile: the anomaly
    read its own clock, a second later at a second crossed."""
    first = flow.link(mode="W")
    link = flow.link(mode="W", again=True) if how == "double-payment" else first
    _ticking(monkeypatch)
    if how == "mismatches":
        flow.control("tamper", {"idop": link.id_op,
                                "fields": {"refdet": "OTHER00001", "numcli": "999999"}})
    elif how == "double-payment":
        flow.pay(first, "card")
    else:
        flow.control("fault", {"operation": "recupererDetailPaiementSecurise",
                               "kind": "FonctionnelleErreur", "code": "P4"})
    if how == "lookup-refused":
        flow.notify(link.id_op)
    else:
        flow.pay(link, "card")
    kinds = {"mismatches": ["numcli-mismatch", "refdet-mismatch"],
             "double-payment": ["double-payment"], "lookup-refused": ["lookup-refused"]}
    assert sorted(a["kind"] for a in ledger.list_anomalies(store)) == kinds[how]
    resolved_at, found, told = _times_of(store, link.id_op)
    assert resolved_at is not None
    assert (found, told) == ({resolved_at}, {resolved_at}), (resolved_at, found, told)


@pytest.mark.parametrize("mode, said, not_said, status", [
    ("W", "enregistré", "test", "paid"),
    # a test payment (saisie T) is said to be one: nothing was collected
    ("T", "test", "Votre paiement a été enregistré", "test-paid"),
])
def test_return_page_records_and_shows_the_result(flow, store, mode, said, not_said, status):
    flow.control("notifications", {"enabled": False})
    link = flow.link(mode=mode)
    flow.pay(link, "card")
    page = httpx.post(f"{flow.receiver.url}/payfip/retour", data={"idop": link.id_op},
                      timeout=TIMEOUT)
    assert page.status_code == 200 and said in page.text and not_said not in page.text
    assert _payment(store)["status"] == status
    assert "18750" not in page.text and "FA-2026" not in page.text


def test_a_return_page_whose_title_the_store_cannot_tell_now_says_the_result_is_not_known(
        flow, store, monkeypatch):
    """The family's return recorded the payment, but whether its title was cancelled
    since cannot be read now (the store's lock held past --store-wait): the page claims
    neither (not 'paid' for a title perhaps cancelled), it says the result is not known
    yet; the payment stays recorded."""
    import html

    from pesgen.payfip.receiver import STATUS_TEXT
    from pesgen.store import store_locked

    def locked(*_args):
        raise store_locked(str(store.engine.url), 0.5)

    flow.control("notifications", {"enabled": False})
    link = flow.link(mode="W")
    flow.pay(link, "card")
    monkeypatch.setattr(ledger, "title_cancelled", locked)
    page = httpx.post(f"{flow.receiver.url}/payfip/retour", data={"idop": link.id_op},
                      timeout=TIMEOUT)
    assert page.status_code == 200 and html.escape(STATUS_TEXT["pending"]) in page.text
    assert html.escape(STATUS_TEXT["paid"]) not in page.text
    assert _payment(store)["status"] == "paid"


def test_the_receiver_asks_payfip_through_one_client_kept_across_notifications(
        flow, store):
    """`payfip serve` made a client per notification (its certificates loaded each time,
    0.1 s of CPU, and a new connection): one client per endpoint is kept across them
    (``service.KeptClients``), its connection open between notifications."""
    flow.control("notifications", {"enabled": False})
    links = [flow.link(invoice, mode="W") for invoice in ("FA-2026-00102", "FA-2026-00103")]
    for link in links:
        flow.pay(link, "card")
    kept = flow.receiver.clients
    answers = [flow.notify(links[0].id_op)]
    [client] = kept.clients.values()
    http = client._http
    assert http is not None  # not closed after its notification
    answers += [flow.notify(link.id_op) for link in links]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert list(kept.clients.values()) == [client] and client._http is http
    assert [ledger.get_operation(store, link.id_op)["status"] for link in links] == [
        "paid", "paid"]


class _BreakOnce(httpx.BaseTransport):
    """A transport whose first request breaks before an answer comes, as a kept
    connection the server closed meanwhile does."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[str] = []

    def handle_request(self, request):
        self.sent.append(request.content.decode())
        if len(self.sent) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.",
                                            request=request)
        return self.inner.handle_request(request)


def test_a_broken_kept_connection_is_retried_for_a_lookup_never_for_a_creation(flow, store):
    """A result lookup is idempotent: asked once more on a connection that broke before
    an answer. A creation never is (PayFiP may have made the operation: a second would
    be a second link): PayfipUnavailable, nothing recorded."""
    from pesgen.payfip.client import PayfipClient
    from pesgen.payfip.errors import PayfipUnavailable

    link = flow.link(mode="W")
    transport = _BreakOnce()
    with PayfipClient(flow.endpoint, http=httpx.Client(transport=transport)) as client:
        with pytest.raises(PayfipFault) as info:
            client.recuperer_detail_paiement_securise(link.id_op)
        assert info.value.code == "P5"  # PayFiP's answer: not paid yet
    assert len(transport.sent) == 2 and transport.sent[0] == transport.sent[1]

    transport = _BreakOnce()
    with PayfipClient(flow.endpoint, http=httpx.Client(transport=transport)) as client:
        request = build_request_for(store, "FA-2026-00103", flow)
        with pytest.raises(PayfipUnavailable, match="no answer: RemoteProtocolError"):
            client.creer_paiement_securise(request)
    assert len(transport.sent) == 1
    assert len(flow.fake_operations()) == 1  # the first link's only


def build_request_for(store, invoice, flow):
    from pesgen.mapping import load_mapping
    from pesgen.payfip.service import build_request
    from pesgen.payfip.settings import load_settings

    from .payfip_support import MAPPING

    mapping = load_mapping(MAPPING)
    request, _, _ = build_request(mapping, load_settings(mapping), store, invoice, None,
                                  flow.notify_url, None)
    return request


# ---------------------------------------------------------------------- faults


def test_soap_fault_on_create_names_the_invoice_and_records_nothing(flow, store):
    flow.control("fault", {"operation": "creerPaiementSecurise",
                           "kind": "TechIndisponibiliteErreur", "code": "999",
                           "libelle": "Service indisponible"})
    with pytest.raises(PayfipFault) as info:
        flow.link()
    fault = info.value
    assert fault.kind == "TechIndisponibiliteErreur" and fault.code == "999"
    assert fault.technical and "FA-2026-00102" in str(fault)
    assert "Service indisponible" in str(fault)
    assert _count(store, operations) == 0 and _count(store, payments) == 0
    flow.link()  # the fault was injected once: the next call works


def test_functional_fault_unknown_client(flow, store):
    flow.fake.payfip.clients = {"999999": ("X", "Y", "Z")}
    with pytest.raises(PayfipFault) as info:
        flow.link()
    assert (info.value.kind, info.value.code) == ("FonctionnelleErreur", "T2")
    assert not info.value.technical
    assert _count(store, operations) == 0


def test_soap_fault_while_pulling_the_result_is_retried_by_reconcile(flow, store):
    link = flow.link(mode="W")
    flow.control("fault", {"operation": "recupererDetailPaiementSecurise",
                           "kind": "TechDysfonctionnementErreur", "code": "999"})
    answer = flow.pay(link, "card")
    assert answer.status_code == 200
    assert flow.fake_operations()[0]["notifications"] == ["HTTP 503"]
    op = ledger.get_operation(store, link.id_op)
    assert op["status"] == "unknown" and "999" in op["last_error"]
    assert _payment(store)["status"] == "pending"
    [outcome] = flow.reconcile()
    assert outcome.status == "paid" and _payment(store)["status"] == "paid"


def _held_as_a_notification_finds_it(store, invoice):
    """What holds a notification up, held until the block ends. SQLite: the store's write
    lock, as an export recording its run holds it (BEGIN IMMEDIATE). PostgreSQL, where an
    export holds nothing a notification needs: the invoice's PayFiP payment row, locked
    by another session (a pesgen command recording for the same invoice, a session left
    open), which the notification's transaction locks too."""
    import sqlite3
    from contextlib import contextmanager

    @contextmanager
    def held():
        if store.engine.dialect.name == "sqlite":
            export = sqlite3.connect(store.engine.url.database, isolation_level=None)
            export.execute("BEGIN IMMEDIATE")  # the export's transaction, holding the lock
            try:
                yield
            finally:
                export.execute("ROLLBACK")
                export.close()
            return
        with store.engine.connect() as other:
            other.begin()
            other.execute(sa.select(payments.c.id).where(payments.c.invoice == invoice)
                          .with_for_update()).one()
            try:
                yield
            finally:
                other.rollback()
    return held()


def test_a_notification_the_store_s_lock_holds_up_is_answered_in_bounded_time_and_reconciled(
        store, exported, fake, tmp_path, caplog):
    """On SQLite an export holds the store's write lock while it renders, validates and
    records its files (9 s at 100 000 invoices). A notification arriving meanwhile waits
    for it at most ``store_wait`` (not store_lock_timeout's 10 minutes, long past PayFiP's
    HTTP timeout), then is answered 503, nothing recorded, with a warning naming the idOp
    and the command that records it; the family's return says the result is not known
    yet; once the lock is free, ``reconcile`` records the payment. On PostgreSQL the
    bound is on the operation's and its invoice's rows another transaction holds: it
    waited for them as long as they were held (measured: 14.3 s for a row held 15 s)."""
    import html

    from pesgen.payfip.receiver import STATUS_TEXT, create_app
    from pesgen.payfip.server import ServerThread
    from pesgen.payfip.service import KeptClients, default_factory

    from .payfip_support import Flow

    held = ("another pesgen run (an export) held the state store's lock"
            if store.engine.dialect.name == "sqlite" else
            "another transaction held its rows in the state store (a pesgen command "
            "recording for the same invoice, or another program's session)")
    with KeptClients(default_factory(timeout=TIMEOUT)) as clients, \
            ServerThread(create_app(store, clients, store_wait=0.5)) as receiver:
        flow = Flow(store, fake, receiver, tmp_path / "out")
        link = flow.link(mode="W")
        with _held_as_a_notification_finds_it(store, "FA-2026-00102"), \
                caplog.at_level("INFO", logger="pesgen.payfip"):
            assert flow.pay(link, "card").status_code == 200  # PayFiP notifies
            back = httpx.post(f"{receiver.url}/payfip/retour",
                              data={"idop": link.id_op}, timeout=TIMEOUT)
    # answered within the fake's timeout (5 s): 0.5 s waited, not 10 minutes
    assert flow.fake_operations()[0]["notifications"] == ["HTTP 503"]
    assert back.status_code == 200 and html.escape(STATUS_TEXT["pending"]) in back.text
    said = [r.getMessage() for r in caplog.records if r.name == "pesgen.payfip"]
    assert said == [
        f"payfip {source}: operation {link.id_op}: not recorded now: {held} for 0.5 s "
        "(payfip serve --store-wait); the operation stays pending: `pesgen payfip "
        "reconcile` records its result"
        for source in ("notification", "return")]
    assert _payment(store)["status"] == "pending"
    assert ledger.get_operation(store, link.id_op)["status"] == "pending"
    [outcome] = flow.reconcile()
    assert (outcome.action, outcome.status) == ("recorded", "paid")
    assert _payment(store)["status"] == "paid" and _count(store, payments) == 1


# A command given store_lock_timeout 3 s while another session holds what it needs for
# HELD s gives up within GAVE_UP s: its 3 s and its own work, which a loaded machine (two
# test processes on two cores) makes several times slower; a command waiting for the
# holder would take HELD s
HELD, GAVE_UP = 60, 45


def test_reconcile_waiting_for_the_store_says_so_and_gives_up_after_store_lock_timeout(
        flow, store, monkeypatch):
    """`payfip reconcile` records a result in transactions that lock the operation's and
    its invoice's rows (PostgreSQL) or take the store's write lock (SQLite). On
    PostgreSQL, a row another session held kept it waiting as long as it was held, without
    a word, whatever store_lock_timeout said; now, as an export waiting for its sequence
    does, it says past the grace that it waits and for what (the operation's rows; no
    billing data), waits at most store_lock_timeout, then stops with the store's exit
    code, nothing changed; run again once the row is free, it records the payment. On
    SQLite it says the same of the store's lock, and ends the same way."""
    import sqlite3
    import threading
    import time

    from pesgen.errors import ExitCode

    from .conftest import run_cli
    from .test_store_lock import _pg_held

    flow.control("notifications", {"enabled": False})  # left for the sweep
    link = flow.link(mode="W")
    assert flow.pay(link, "card").status_code == 200
    monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", "3")
    postgresql = store.engine.dialect.name == "postgresql"
    # held HELD s, then let go: a reconcile that does not give up records after it
    if postgresql:
        held = _pg_held(store.engine,
                        "SELECT id FROM payfip_payments WHERE invoice = :i FOR UPDATE",
                        params={"i": "FA-2026-00102"}, after=HELD)
    else:
        holder = sqlite3.connect(store.engine.url.database, isolation_level=None,
                                 check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # an export recording its run
        timer = threading.Timer(HELD, lambda: holder.execute("ROLLBACK"))
        timer.start()
    try:
        started = time.monotonic()
        if postgresql:
            with held:
                done = run_cli("payfip", "reconcile", "--db", store.url)
        else:
            done = run_cli("payfip", "reconcile", "--db", store.url)
        took = time.monotonic() - started
    finally:
        if not postgresql:
            timer.cancel()
            timer.join()
            if holder.in_transaction:
                holder.execute("ROLLBACK")
            holder.close()
    assert done.exit_code == ExitCode.STATE, (done.stdout, done.stderr)
    assert took < GAVE_UP, took
    what = (f"another transaction holds the rows of PayFiP operation {link.id_op} in the "
            "state store (a pesgen command recording for the same invoice, or another "
            "program's session)" if postgresql else "another pesgen run holds its lock")
    waited, error = done.stderr.splitlines()
    assert waited == f"waiting for the state store: {what} (up to 3 s, store_lock_timeout)…"
    held_for = (f"another transaction held the rows of PayFiP operation {link.id_op} in the "
                "state store (a pesgen command recording for the same invoice, or another "
                "program's session)" if postgresql else
                "another pesgen run held the state store's lock")
    assert error.startswith(f"error: {store.url}: {held_for} for 3 s (store_lock_timeout): "
                            "payfip reconcile stopped waiting: nothing changed for the "
                            "operation it was recording nor for those after it. Let th"), error
    assert "FA-2026-00102" not in done.stderr and "187" not in done.stderr  # no billing data
    assert done.stdout == ""
    assert _payment(store)["status"] == "pending"
    assert ledger.get_operation(store, link.id_op)["status"] == "pending"
    again = run_cli("payfip", "reconcile", "--db", store.url)
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"{link.id_op}  FA-2026-00102  recorded, now paid")
    assert _payment(store)["status"] == "paid"



def test_reconcile_giving_up_at_the_second_operation_says_the_first_is_done(
        flow, store, monkeypatch):
    """On PostgreSQL a sweep that records the first open operation, then gives up
    waiting for the rows of the second (another session holds its invoice's payment), says
    that the one before it is done, as listed (exit 7): the first is recorded, paid, and
    only the second (paid too) is left as it was."""
    from pesgen.errors import ExitCode

    from .conftest import run_cli

    if store.engine.dialect.name != "postgresql":
        pytest.skip("on SQLite the store's lock holds the first operation up too")
    flow.control("notifications", {"enabled": False})  # left for the sweep
    first = flow.link("FA-2026-00102", mode="W")
    assert flow.pay(first, "card").status_code == 200
    second = flow.link("FA-2026-00103", mode="W")
    assert flow.pay(second, "card").status_code == 200
    monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", "3")
    with _store_held(store, "SELECT id FROM payfip_payments WHERE invoice = :i FOR UPDATE",
                     params={"i": "FA-2026-00103"}):
        done = run_cli("payfip", "reconcile", "--db", store.url)
    assert done.exit_code == ExitCode.STATE, (done.stdout, done.stderr)
    assert done.stdout.startswith(f"{first.id_op}  FA-2026-00102  recorded, now paid")
    error = done.stderr.splitlines()[-1]
    assert ("payfip reconcile stopped waiting: nothing changed for the operation it was "
            "recording nor for those after it; the 1 operation(s) before it are done, as "
            "listed. Let th") in error, error
    assert ledger.get_operation(store, first.id_op)["status"] != "pending"
    assert ledger.get_operation(store, second.id_op)["status"] == "pending"  # as it was


@contextmanager
def _store_held(store, statement: str, params: dict | None = None,
                after: float = HELD) -> Iterator[None]:
    """Another session holding rows (PostgreSQL: ``statement``, a SELECT … FOR UPDATE),
    or another run the store's write lock (SQLite: BEGIN IMMEDIATE, as an export
    recording its run), let go ``after`` seconds into the block (or at its end)."""
    import sqlite3
    import threading

    from .test_store_lock import _pg_held

    if store.engine.dialect.name == "postgresql":
        with _pg_held(store.engine, statement, params=params, after=after):
            yield
        return
    holder = sqlite3.connect(store.engine.url.database, isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(after, lambda: holder.execute("ROLLBACK"))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


def test_link_waiting_for_the_store_says_so_and_gives_up_after_store_lock_timeout(
        flow, store, monkeypatch):
    """`payfip link` asks PayFiP for an operation, then records it in a transaction that
    locks the invoice's run and payment rows (PostgreSQL) or takes the store's write
    lock (SQLite). On PostgreSQL a row another session held kept it waiting as long as it
    was held, without a word, whatever store_lock_timeout said; now it says past the
    grace that it waits and for what (no billing data), waits at most
    store_lock_timeout, then stops with the store's exit code, saying that PayFiP issued
    the operation, which is not recorded (no link printed: not to be sent, and never
    asked about by reconcile), which invoices got a link and which were not sent. On
    SQLite, where it said it waited and stopped already, its message says as much (it
    said the operation "could not be recorded (StoreLocked)")."""
    import time
    from contextlib import ExitStack

    from pesgen.errors import ExitCode
    from pesgen.payfip.client import PayfipClient

    from .conftest import run_cli
    from .payfip_support import MAPPING

    monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", "3")
    postgresql = store.engine.dialect.name == "postgresql"
    create = PayfipClient.creer_paiement_securise
    issued: list[str] = []
    held = ExitStack()

    def creating(client, request):
        # as PayFiP answers for FA-2026-00102, another session takes its run's row (an
        # export cancelling it, another program), or another run the store's lock
        id_op = create(client, request)
        if request.refdet == "FA202600102":
            issued.append(id_op)
            held.enter_context(_store_held(store, "SELECT id FROM runs FOR UPDATE"))
        return id_op

    monkeypatch.setattr(PayfipClient, "creer_paiement_securise", creating)
    started = time.monotonic()
    with held:
        done = run_cli("payfip", "link", "-m", str(MAPPING), "-n", "FA-2026-00101", "-n",
                       "FA-2026-00102", "-n", "FA-2026-00103", "--mode", "W", "--endpoint",
                       flow.endpoint, "--notify-url", flow.notify_url, "--db", store.url)
    took = time.monotonic() - started
    assert done.exit_code == ExitCode.STATE, (done.stdout, done.stderr)
    assert took < GAVE_UP, took
    [id_op] = issued
    what = (f"another transaction holds the rows of the invoice of PayFiP operation {id_op} "
            "(its payment, its run) in the state store (a pesgen command recording for the "
            "same invoice, or another program's session)" if postgresql
            else "another pesgen run holds its lock")
    waited, error = done.stderr.splitlines()
    assert waited == f"waiting for the state store: {what} (up to 3 s, store_lock_timeout)…"
    assert "FA-2026" not in waited and "187" not in waited  # no billing data
    held_for = (f"another transaction held the rows of the invoice of PayFiP operation "
                f"{id_op} (its payment, its run) in the state store (a pesgen command "
                "recording for the same invoice, or another program's session)"
                if postgresql else "another pesgen run held the state store's lock")
    assert error.startswith(
        f"error: {store.url}: {held_for} for 3 s (store_lock_timeout): payfip link stopped "
        f"waiting: invoice FA-2026-00102: PayFiP issued operation {id_op}, not recorded, no "
        "link printed: do not send it (`payfip reconcile` asks only about operations "
        "recorded: it never asks about this one, which nobody can pay without its link); "
        "the batch stopped there: 1 link(s) made before it (FA-2026-00101), 1 invoice(s) "
        "not sent: FA-2026-00103. Let th"), error
    assert error.count("the batch stopped there") == 1, error  # said once, not again after
    assert ledger.get_operation(store, id_op) is None and _payment(store) is None
    assert _payment(store, "FA-2026-00101")["status"] == "pending"
    assert id_op not in done.stdout and done.stdout.count("http") == 1
    assert len(flow.fake_operations()) == 2  # nothing asked for FA-2026-00103



@pytest.mark.parametrize("correct", [False, True])
def test_anomaly_resolve_waiting_for_the_store_says_so_and_gives_up_after_store_lock_timeout(
        flow, store, monkeypatch, correct):
    """`payfip anomalies resolve` records a decision in a transaction that locks the
    anomaly's row (its operation's and payment's too) on PostgreSQL, or takes the
    store's write lock on SQLite. On PostgreSQL a row another session held (another
    resolution of it in a session left open) kept it waiting as long as it was held,
    without a word, whatever store_lock_timeout said; now it says past the grace that it
    waits and for what (the anomaly's number; no billing data), waits at most
    store_lock_timeout, then stops with the store's exit code, nothing recorded; run
    again once the row is free, it resolves it. On SQLite it said it waited and stopped
    already; its message now says what it left. ``correct``: `--correct` of a
    resolution, which waits and stops the same way."""
    import time

    from pesgen.errors import ExitCode

    from .conftest import run_cli

    flow.link()
    assert flow.notify(str(uuid.uuid4())).status_code == 404  # an unknown-idop anomaly
    [anomaly] = ledger.list_anomalies(store)
    number = anomaly["id"]
    args = ["payfip", "anomalies", "resolve", str(number), "--note", "forged, ignored",
            "--by", "support", "--db", store.url]
    if correct:  # resolved already: --correct locks its row as a resolution does
        ledger.resolve_anomaly(store, number, "support", "first")
        args = [*args, "--correct"]
    monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", "3")
    postgresql = store.engine.dialect.name == "postgresql"
    started = time.monotonic()
    with _store_held(store, "SELECT id FROM payfip_anomalies WHERE id = :i FOR UPDATE",
                     {"i": number}):
        done = run_cli(*args)
    took = time.monotonic() - started
    assert done.exit_code == ExitCode.STATE, (done.stdout, done.stderr)
    assert took < GAVE_UP, took
    rows = (f"the rows of anomaly #{number} (its own, its operation's, its payment's) in "
            "the state store (a pesgen command recording for the same invoice, or another "
            "program's session)")
    waited, error = done.stderr.splitlines()
    assert waited == ("waiting for the state store: "
                      + (f"another transaction holds {rows}" if postgresql
                         else "another pesgen run holds its lock")
                      + " (up to 3 s, store_lock_timeout)…")
    held_for = (f"another transaction held {rows}" if postgresql
                else "another pesgen run held the state store's lock")
    left = "its answer not corrected" if correct else "not resolved"
    assert error.startswith(
        f"error: {store.url}: {held_for} for 3 s (store_lock_timeout): payfip anomalies "
        f"resolve stopped waiting: nothing recorded, anomaly #{number} as it was ({left}). "
        "Let th"), error
    assert done.stdout == ""
    [after] = ledger.list_anomalies(store)
    assert after["note"] == ("first" if correct else None), after
    if not correct:
        assert after["resolved_at"] is None
        again = run_cli(*args)
        assert again.exit_code == 0, again.output
        [after] = ledger.list_anomalies(store)
        assert after["note"] == "forged, ignored", after



@pytest.mark.parametrize("command", ["cancel", "reinstate"])
def test_runs_cancel_waiting_for_the_store_says_so_and_gives_up_after_store_lock_timeout(
        flow, store, exported, monkeypatch, command):
    """`runs cancel` and `runs reinstate` lock the run's row on PostgreSQL (FOR UPDATE: a
    PayFiP link being recorded for one of its invoices, another cancellation) and take
    the store's write lock on SQLite. On PostgreSQL a row another session held kept them
    waiting as long as it was held, without a word, whatever store_lock_timeout said;
    now they say past the grace that they wait and for what (the run's id), wait at most
    store_lock_timeout, then stop with the store's exit code, nothing changed. On SQLite
    they said so already."""
    import time

    from pesgen.errors import ExitCode

    from .conftest import run_cli

    run = exported.run_id
    if command == "reinstate":
        store.cancel(run, "wrong amounts", whole=True)
    monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", "3")
    postgresql = store.engine.dialect.name == "postgresql"
    started = time.monotonic()
    with _store_held(store, "SELECT id FROM runs FOR UPDATE"):
        done = run_cli("runs", command, run, "--all", "--reason", "checked", "--db",
                       store.url)
    took = time.monotonic() - started
    assert done.exit_code == ExitCode.STATE, (done.stdout, done.stderr)
    assert took < GAVE_UP, took
    rows = (f"the row of run {run} or the acknowledgements' lock in the state store (a "
            "`payfip link` or payment being recorded for one of its invoices, another `runs "
            "cancel` or `runs reinstate`, an `acquit --record`, or another program's session)")
    waited, error, *rest = done.stderr.splitlines()
    assert waited == ("waiting for the state store: "
                      + (f"another transaction holds {rows}" if postgresql
                         else "another pesgen run holds its lock")
                      + " (up to 3 s, store_lock_timeout)…")
    held_for = (f"another transaction held {rows}" if postgresql
                else "another pesgen run held the state store's lock")
    done_word = "cancelled" if command == "cancel" else "reinstated"
    assert error.startswith(f"error: {store.url}: {held_for} for 3 s (store_lock_timeout): "
                            f"runs {command} stopped waiting: nothing {done_word}. Let th"
                            ), error
    assert rest == [] and done.stdout == ""
    assert store.get_run(run)["status"] == ("committed" if command == "cancel"
                                            else "cancelled")


def test_purged_operation_expires(flow, store):
    link = flow.link()
    flow.fake.payfip.operations.clear()  # the night purge: PayFiP answers P1
    [outcome] = flow.reconcile()
    assert (outcome.action, outcome.status) == ("expired", "expired")
    assert _payment(store)["status"] == "expired"
    assert ledger.get_operation(store, link.id_op)["status"] == "expired"


def test_payfip_down_during_reconcile_keeps_operations_open(flow, store, caplog):
    link = flow.link()
    flow.fake.stop()
    with caplog.at_level("WARNING", logger="pesgen.payfip"):
        [outcome] = flow.reconcile()
    assert outcome.action == "error" and outcome.status == "unknown"
    assert ledger.get_operation(store, link.id_op)["status"] == "unknown"
    # what went wrong has a name (not 'Transport ' with an empty code), and no billing data
    assert [r.getMessage() for r in caplog.records] == [
        f"payfip reconcile: operation {link.id_op}: result not available (no answer: "
        "connection refused)"]
    assert outcome.message == (f"PayFiP recupererDetailPaiementSecurise: {flow.endpoint}/"
                               "services/securite: no answer: connection refused")


# ---------------------------------------------------------------------- validation first


def test_bad_values_are_refused_before_sending(flow, store):
    with pytest.raises(PayfipRequestInvalid) as info:
        flow.link(mel="not-an-address")
    [problem] = info.value.problems
    assert problem.invoice == "FA-2026-00102" and problem.rule == "payfip.mel"
    assert str(problem).startswith("invoice FA-2026-00102: mel: 'not-an-address'")
    assert flow.fake_operations() == [] and _count(store, operations) == 0


def test_bad_mapping_rule_is_refused_before_sending(flow, store, tmp_path):
    from .payfip_support import MAPPING

    bad, _ = mapping_copy(
        tmp_path, MAPPING,
        ('refdet: {expr: "invoice.number | alnum"}', 'refdet: {expr: "invoice.number"}'),
        ("payfip_text\"}", "\"}"),
        ("objet: {expr: \"('CONSERVATOIRE VSL FACTURE ' ~ invoice.number) |",
         "objet: {expr: \"('CONSERVATOIRE VSL FACTURE ' ~ invoice.number)\"}  #"),
        name="bad.yaml")
    from pesgen.payfip.service import create_link

    with pytest.raises(PayfipRequestInvalid) as info:
        create_link(store, bad, "FA-2026-00102", endpoint=flow.endpoint,
                    notify_url=flow.notify_url, timeout=TIMEOUT)
    rules = {p.rule: p for p in info.value.problems}
    assert set(rules) == {"payfip.refdet", "payfip.objet"}
    assert "'FA-2026-00102' must be 6 to 30 characters of [A-Z0-9]" in \
        str(rules["payfip.refdet"])
    assert "bad.yaml:" in rules["payfip.refdet"].mapping
    assert "'-'" in rules["payfip.objet"].message
    assert flow.fake_operations() == []


def test_no_numcli_and_a_refdet_every_invoice_shares_but_out_of_format(flow, store, tmp_path):
    """No PayFiP client number: one problem that says where to set one (the mapping), not
    the empty numcli's format. A refdet out of format is refused for its format only:
    the same bad refdet the rule gives every other invoice is no clash to report too."""
    from pesgen.payfip.service import create_link

    from .payfip_support import MAPPING

    bad, _ = mapping_copy(
        tmp_path, MAPPING, ('  payfip_client: "012345"\n', ""),
        ('refdet: {expr: "invoice.number | alnum"}', 'refdet: {expr: "\'fa-1\'"}'),
        name="bad.yaml")
    with pytest.raises(PayfipRequestInvalid) as info:
        create_link(store, bad, "FA-2026-00102", endpoint=flow.endpoint,
                    notify_url=flow.notify_url, timeout=TIMEOUT)
    problems = {p.rule: p for p in info.value.problems}
    assert sorted(problems) == ["payfip.numcli", "payfip.refdet"]
    assert problems["payfip.numcli"].message == (
        "numcli: no PayFiP client number (set payfip.numcli or collectivity.payfip_client)")
    assert problems["payfip.numcli"].mapping == str(bad)
    assert problems["payfip.refdet"].message.startswith("refdet: 'fa-1' must be 6 to 30 ")
    assert flow.fake_operations() == []


def test_a_link_needs_a_notification_url_and_a_tipi_link_has_only_its_urlcl(flow, store,
                                                                           tmp_path):
    """Without --notify-url nor payfip.notify_url, a link is a configuration error (exit
    2) saying where to set one, nothing sent. A TIPI link's request takes its one URL,
    urlcl, for both URLs, whatever the mapping's notify_url, and needs none."""
    from pesgen.mapping import load_mapping
    from pesgen.payfip.errors import PayfipConfigError
    from pesgen.payfip.service import build_request, create_link
    from pesgen.payfip.settings import load_settings

    from .payfip_support import MAPPING

    bare, _ = mapping_copy(tmp_path, MAPPING, (
        "  notify_url: http://127.0.0.1:8765/payfip/notification\n", ""), name="bare.yaml")
    with pytest.raises(PayfipConfigError) as info:
        create_link(store, bare, "FA-2026-00102", endpoint=flow.endpoint, timeout=TIMEOUT)
    assert str(info.value).startswith("no notification URL: give --notify-url or set "
                                      "payfip.notify_url")
    assert info.value.exit_code == 2
    assert flow.fake_operations() == []
    urlcl = "https://ecole.example.org/tipi/retour"
    for path in (MAPPING, bare):
        mapping = load_mapping(path)
        request, due, _ = build_request(mapping, load_settings(mapping), store,
                                        "FA-2026-00102", "famille@example.org", None, None,
                                        what="TIPI link", urlcl=urlcl)
        assert (request.urlnotif, request.urlredirect) == (urlcl, urlcl)
        assert due.invoice == "FA-2026-00102"


def test_a_refdet_rule_that_fails_is_one_problem_at_its_line(flow, store, tmp_path):
    """payfip.refdet's expression raising on an invoice: one problem, the expression's,
    at the rule's line (not also the empty refdet's format); nothing sent."""
    from pesgen.payfip.service import create_link

    from .payfip_support import MAPPING

    bad, [line] = mapping_copy(
        tmp_path, MAPPING,
        ('refdet: {expr: "invoice.number | alnum"}', 'refdet: {expr: "invoice.number + 1"}'),
        name="bad.yaml")
    with pytest.raises(PayfipRequestInvalid) as info:
        create_link(store, bad, "FA-2026-00102", endpoint=flow.endpoint,
                    notify_url=flow.notify_url, timeout=TIMEOUT)
    [refdet] = info.value.problems
    assert refdet.rule == "payfip.refdet"
    assert refdet.message.startswith("refdet: expression failed: ")
    assert refdet.mapping.startswith(f"{bad}:{line}")
    assert refdet.invoice == "FA-2026-00102"
    assert flow.fake_operations() == []


def test_a_rule_past_the_time_limit_stops_the_batch_before_sending(flow, store, tmp_path,
                                                                   monkeypatch):
    """payfip.refdet's expression running past the limit (pesgen._budget.LIMIT, 60 s;
    0.5 s here) is stopped on the first invoice of a batch: a mapping error naming the
    rule's line (rule mapping.time), the next invoices not evaluated, nothing sent. Each
    invoice's refdet ran for hours; a stopped one would have been refused with the next
    invoice evaluated as long again."""
    from pesgen import _budget
    from pesgen.errors import MappingStopped
    from pesgen.payfip.service import create_links

    from .payfip_support import MAPPING

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    slow = ("(([[1] * 100000] * 100000) | map('map', 'string') | map('join') "
            "| map('length') | sum)")
    path, (line,) = mapping_copy(
        tmp_path, MAPPING,
        ('refdet: {expr: "invoice.number | alnum"}',
         f'refdet: {{expr: "(invoice.number | alnum) ~ {slow}"}}'), name="slow.yaml")
    with pytest.raises(MappingStopped) as info:
        list(create_links(store, path, ["FA-2026-00102", "FA-2026-00103"],
                          endpoint=flow.endpoint, notify_url=flow.notify_url,
                          timeout=TIMEOUT))
    [problem] = info.value.problems
    assert (problem.rule, problem.mapping) == ("mapping.time", f"{path}:{line}: payfip.refdet")
    assert str(info.value) == (f"{path}:{line}: payfip.refdet: the expression ran for more "
                               "than 0.5 seconds and was stopped: a filter over far more "
                               "items than it needs?")
    assert flow.fake_operations() == [] and _count(store, operations) == 0
    assert _budget._started == [0.0]


def test_invoice_not_exported_is_refused(flow):
    from pesgen.errors import StateError

    with pytest.raises(StateError, match="FA-2099-99999: in no active run .*export it "
                       "first"):
        flow.link("FA-2099-99999")  # in no run at all
    assert flow.fake_operations() == []


def test_a_number_typed_in_another_case_is_linked_as_its_run_exported_it(flow, store):
    """Found like `runs find` and the duplicate guard find it (case and surrounding spaces
    aside); the operation, the payment, refdet and the e-mail follow the recorded number."""
    link = flow.link(" fa-2026-00105")
    assert (link.invoice, link.refdet) == ("FA-2026-00105", "FA202600105")
    op = ledger.get_operation(store, link.id_op)
    assert op["invoice"] == "FA-2026-00105" and op["mel"] == "sofie.vdb@example.org"
    assert [p["invoice"] for p in ledger.list_payments(store)] == ["FA-2026-00105"]
    [fake_op] = flow.fake_operations()
    assert fake_op["refdet"] == "FA202600105"
    # with look-alike characters too (an en dash for '-', as a word processor writes
    # it): the same invoice, linked under the number its run recorded
    again = flow.link("FA\u20132026\u201300105")
    assert (again.invoice, again.refdet) == ("FA-2026-00105", "FA202600105")
    assert ledger.get_operation(store, again.id_op)["invoice"] == "FA-2026-00105"

    # a paid invoice gets no new link, however its number is typed
    paid = flow.link("FA-2026-00102", mode="W")
    flow.pay(paid, "card")
    from pesgen.errors import StateError

    with pytest.raises(StateError, match="invoice FA-2026-00102: already paid"):
        flow.link("fa-2026-00102", mode="W")


def test_a_number_two_active_runs_hold_in_two_cases_is_refused_as_ambiguous(flow, store,
                                                                             tmp_path):
    """Two active titles whose numbers differ only by case (a store migrated from
    before schema 5 may hold such, marked key_shared): which one the family pays is
    for a person to say, by typing the number exactly as that run exported it."""
    from pesgen.errors import StateError
    from pesgen.store import run_invoices

    [row] = store.find_invoice("FA-2026-00105")
    with store.engine.begin() as conn:
        conn.execute(run_invoices.insert().values(
            run_id=row["run_id"], id_coll=row["id_coll"], invoice="Fa-2026-00105",
            id_bord=row["id_bord"], id_pce=99, amount=row["amount"], active=True,
            invoice_key=row["invoice_key"], key_shared=True))
    with pytest.raises(StateError) as info:
        flow.link("fa-2026-00105")
    assert str(info.value) == (
        f"invoice fa-2026-00105: ambiguous: active runs hold FA-2026-00105 (run "
        f"{row['run_id']}) and Fa-2026-00105 (run {row['run_id']}); give the number "
        "exactly as the run to pay exported it")
    assert flow.fake_operations() == []
    # typed exactly, it is not ambiguous: its refdet by the default rule (alnum) has a
    # lower-case letter, refused (the safe side); upper-cased, it would be the other
    # title's, refused too: PayFiP could not tell their payments apart
    with pytest.raises(PayfipRequestInvalid) as info:
        flow.link("Fa-2026-00105")
    assert [p.rule for p in info.value.problems] == ["payfip.refdet"]
    assert "add '| upper' to the rule" in info.value.problems[0].message
    from pesgen.payfip.service import create_link

    from .payfip_support import MAPPING

    upper, _ = mapping_copy(tmp_path, MAPPING, ('{expr: "invoice.number | alnum"}',
                                                '{expr: "invoice.number | alnum | upper"}'),
                            name="upper.yaml")
    with pytest.raises(PayfipRequestInvalid) as info:
        create_link(store, upper, "Fa-2026-00105", endpoint=flow.endpoint,
                    notify_url=flow.notify_url, timeout=TIMEOUT)
    assert [p.rule for p in info.value.problems] == ["payfip.refdet-unique"]
    assert "is also invoice FA-2026-00105's" in info.value.problems[0].message
    assert flow.fake_operations() == []


def test_a_left_out_invoice_is_refused_saying_which_run_left_it_out_and_why(flow, store):
    """FA-2026-00106 (total 0.00) was left out of the run: exporting it again leaves it
    out again, so 'export it first' would be wrong advice; what `runs find` knows is said."""
    from pesgen.errors import StateError

    [run] = store.list_runs()
    for typed in ("FA-2026-00106", "fa-2026-00106"):
        with pytest.raises(StateError) as info:
            flow.link(typed)
        message = str(info.value)
        # a committed run is named by its time alone (a cancelled one would add its status)
        assert message.startswith(f"invoice {typed}: not exported: left out by run {run.id} "
                                  f"({run.created_at}) from ")
        assert "school-export.json:$.invoices[5]: total is 0.00 (policy zero_total)" in message
        assert "export it first" not in message and "leaves it out again" in message
    assert flow.fake_operations() == []


def test_notification_return_and_sweep_racing_record_the_payment_once(flow, store):
    from concurrent.futures import ThreadPoolExecutor

    flow.control("notifications", {"enabled": False})
    link = flow.link(mode="W")
    flow.pay(link, "card")

    def notify(_):
        return flow.notify(link.id_op).status_code

    def back(_):
        return httpx.post(f"{flow.receiver.url}/payfip/retour", data={"idop": link.id_op},
                          timeout=TIMEOUT).status_code

    def sweep(_):
        return [o.action for o in flow.reconcile()]

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(fn, i) for i in range(2) for fn in (notify, back, sweep)]
        results = [f.result(timeout=30) for f in futures]
    assert [r for r in results if isinstance(r, int)] == [200] * 4
    assert len([e for e in _events(store) if e[0] == "paid"]) == 1
    assert _payment(store)["status"] == "paid" and _count(store, payments) == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_forged_idops_is_limited_but_known_ones_always_pass(flow, store, caplog):
    from pesgen.payfip.receiver import UnknownLimiter, create_app
    from pesgen.payfip.server import ServerThread
    from pesgen.payfip.service import default_factory

    clock = _Clock()
    limiter = UnknownLimiter(limit=3, window=60, clock=clock)
    link = flow.link()
    with ServerThread(create_app(store, default_factory(timeout=TIMEOUT), limiter)) as server:
        url = f"{server.url}/payfip/notification"

        def post(id_op: str) -> int:
            return httpx.post(url, data={"idop": id_op}, timeout=TIMEOUT).status_code

        forged = [str(uuid.uuid4()) for _ in range(6)]
        assert [post(x) for x in forged[:3]] == [404, 404, 404]
        with caplog.at_level("WARNING", logger="pesgen.payfip"):
            assert [post(x) for x in forged[3:5]] == [429, 429]
        assert sum("unknown idOps from" in r.getMessage() for r in caplog.records) == 1
        # recorded: the first three only
        assert sorted(a["id_op"] for a in ledger.list_anomalies(store)) == sorted(forged[:3])
        # a known operation from the same address is still processed
        assert post(link.id_op) == 200
        assert ledger.get_operation(store, link.id_op)["notifications"] == 1
        # once the window has passed, unknown idOps are recorded again
        clock.now += 61
        assert post(forged[5]) == 404
        assert len(ledger.list_anomalies(store)) == 4


def test_the_flood_limit_is_counted_per_client_address(store, exported):
    """A flood from one address (127.0.0.2, loopback too) leaves another one's unknown
    idOps recorded."""
    from pesgen.payfip.receiver import UnknownLimiter, create_app
    from pesgen.payfip.server import ServerThread
    from pesgen.payfip.service import default_factory

    limiter = UnknownLimiter(limit=1, window=60, clock=_Clock())
    with ServerThread(create_app(store, default_factory(timeout=TIMEOUT), limiter)) as server, \
            httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"),
                         timeout=TIMEOUT) as other:
        url = f"{server.url}/payfip/notification"
        forged = [str(uuid.uuid4()) for _ in range(3)]
        assert [other.post(url, data={"idop": x}).status_code for x in forged[:2]] == [404, 429]
        assert httpx.post(url, data={"idop": forged[2]}, timeout=TIMEOUT).status_code == 404
    assert sorted(a["id_op"] for a in ledger.list_anomalies(store)) == sorted(
        [forged[0], forged[2]])


def test_the_receiver_logs_each_idop_and_its_outcome_where_serve_shows_them(flow, store,
                                                                            caplog):
    """`payfip serve` shows the records of the logger pesgen.payfip at INFO (cli's
    _log_outcomes): the receiver's lines are among them, an idOp and an outcome each."""
    link = flow.link()
    forged = str(uuid.uuid4())
    with caplog.at_level("INFO", logger="pesgen.payfip"):
        assert flow.notify(link.id_op).status_code == 200
        assert flow.notify(forged).status_code == 404
    said = [r.getMessage() for r in caplog.records if r.name == "pesgen.payfip"
            and " -> " in r.getMessage()]
    assert said == [f"payfip notification: {link.id_op} -> pending",
                    f"payfip notification: {forged} -> unknown-idop"]


def test_the_flood_limit_counts_each_address_s_unknown_idops_within_its_window():
    from pesgen.payfip.receiver import UnknownLimiter

    clock = _Clock()
    limiter = UnknownLimiter(limit=2, window=60, clock=clock)
    for _ in range(2):
        assert limiter.allows("192.0.2.1")
        limiter.unknown("192.0.2.1")
    assert not limiter.allows("192.0.2.1")
    assert limiter.allows("192.0.2.2")  # per address
    clock.now += 60  # the window's last second: still in it
    assert not limiter.allows("192.0.2.1")
    clock.now += 0.5
    assert limiter.allows("192.0.2.1")
    # one warning per window for the idOps not recorded, the first of each
    assert [limiter.dropped("192.0.2.1") for _ in range(2)] == [True, False]
    clock.now += 60
    assert not limiter.dropped("192.0.2.1")
    clock.now += 0.5
    assert [limiter.dropped("192.0.2.1"), limiter.dropped("192.0.2.2")] == [True, True]


def test_the_flood_limit_is_by_default_30_unknown_idops_within_60_seconds():
    """docs/payfip.md: more than 30 unknown idOps within 60 s get 429."""
    from pesgen.payfip.receiver import UnknownLimiter

    clock = _Clock()
    limiter = UnknownLimiter(clock=clock)
    for _ in range(30):
        assert limiter.allows("192.0.2.1")
        limiter.unknown("192.0.2.1")
    assert not limiter.allows("192.0.2.1")
    clock.now += 60
    assert not limiter.allows("192.0.2.1")
    clock.now += 0.5
    assert limiter.allows("192.0.2.1")


def test_the_flood_limit_forgets_addresses_out_of_their_window_past_10000():
    """Forged idOps from many addresses: once more than 10 000 are known, those with
    nothing left in their window are forgotten, with their warning's time."""
    from pesgen.payfip.receiver import UnknownLimiter

    clock = _Clock()
    limiter = UnknownLimiter(limit=1, window=60, clock=clock)
    for n in range(10_001):
        limiter.unknown(f"10.0.{n // 256}.{n % 256}")
    limiter.dropped("10.0.0.0")
    clock.now += 30
    limiter.unknown("192.0.2.1")  # within its window when the others are forgotten
    clock.now += 31
    assert limiter.allows("192.0.2.2")
    assert sorted(limiter._seen) == ["192.0.2.1", "192.0.2.2"]
    assert limiter._dropped_since == {}
    assert not limiter.allows("192.0.2.1")


def test_the_flood_limit_forgets_addresses_only_past_10000_known():
    """Addresses are forgotten once more than 10 000 are known, not at 10 000: a
    flood's warning time is kept until then (one warning per window)."""
    from pesgen.payfip.receiver import UnknownLimiter

    clock = _Clock()
    limiter = UnknownLimiter(limit=1, window=60, clock=clock)
    for n in range(10_000):
        limiter.unknown(f"10.0.{n // 256}.{n % 256}")
    assert limiter.dropped("10.0.0.0")
    clock.now += 61  # every address's idOps out of their window
    assert limiter.allows("192.0.2.2")  # 10 000 known: none forgotten
    assert len(limiter._seen) == 10_001 and "10.0.0.0" in limiter._dropped_since
    assert limiter.allows("192.0.2.3")  # 10 001 known: those out of their window go
    assert sorted(limiter._seen) == ["192.0.2.3"] and limiter._dropped_since == {}


def test_the_idop_is_read_once_from_the_query_or_a_form_body_of_at_most_4096_bytes(flow,
                                                                                      store):
    link = flow.link()
    url = flow.notify_url

    def post(body: str = "", **kw) -> int:
        return httpx.post(url, content=body.encode(), timeout=TIMEOUT, headers={
            "Content-Type": "application/x-www-form-urlencoded"}, **kw).status_code

    assert post(params={"IdOp": link.id_op}) == 200  # the query's, any case, on a POST
    assert post(f"idop={link.id_op}", params={"idop": link.id_op}) == 200  # the same: one
    assert post(f"idop={link.id_op}&IDOP={uuid.uuid4()}") == 400  # two: none
    assert post("") == 400
    # a GET's body is not read: urlredirect's idop comes in its query
    assert httpx.request("GET", url, content=f"idop={link.id_op}".encode(),
                         timeout=TIMEOUT).status_code == 400
    whole = f"idop={link.id_op}&x="
    assert post(whole + "a" * (4096 - len(whole))) == 200
    assert post(whole + "a" * (4097 - len(whole))) == 400
    assert ledger.get_operation(store, link.id_op)["notifications"] == 3
    health = httpx.get(f"{flow.receiver.url}/healthz", timeout=TIMEOUT)
    assert (health.status_code, health.text) == (200, "OK")


_SAID = {"paid": "Votre paiement a été enregistré. Merci.",
         "test-paid": "Paiement de test (mode test ou activation)",
         "refused": "Le paiement a été refusé. Vous pouvez réessayer avec un nouveau lien.",
         "abandoned": "Le paiement a été abandonné.",
         "pending": "Le résultat du paiement n&#x27;est pas encore connu",
         "anomaly": "Le paiement n&#x27;a pas été enregistré ; la régie vérifiera"}


@pytest.mark.parametrize("mode, action, said", [
    ("W", "card", "paid"), ("T", "card", "test-paid"), ("W", "refuse", "refused"),
    ("W", "abandon", "abandoned"), ("W", None, "pending"),  # not paid yet: P5
    ("W", "tamper", "anomaly"), ("W", "fault", "pending"),  # PayFiP not answering
])
def test_the_return_page_says_each_outcome_in_its_own_words(flow, store, mode, action, said):
    flow.control("notifications", {"enabled": False})
    link = flow.link(mode=mode)
    if action == "tamper":
        flow.control("tamper", {"idop": link.id_op, "fields": {"montant": "100"}})
    if action == "fault":
        flow.control("fault", {"operation": "recupererDetailPaiementSecurise",
                               "kind": "TechDysfonctionnementErreur", "code": "999"})
    if action is not None:
        flow.pay(link, "card" if action in ("tamper", "fault") else action)
    if action == "abandon":
        _made_minutes_ago(store, link.id_op, 21)  # final only once its 20 minutes are over
    page = httpx.post(f"{flow.receiver.url}/payfip/retour", data={"idop": link.id_op},
                      timeout=TIMEOUT)
    assert page.status_code == 200
    assert [k for k, text in _SAID.items() if text in page.text] == [said]


def test_the_return_page_of_an_idop_refused_says_only_that_it_is_unknown(flow, store):
    from pesgen.payfip.receiver import UnknownLimiter, create_app
    from pesgen.payfip.server import ServerThread
    from pesgen.payfip.service import default_factory

    none_recorded = UnknownLimiter(limit=0)
    with ServerThread(create_app(store, default_factory(timeout=TIMEOUT),
                                 none_recorded)) as server:
        back = f"{server.url}/payfip/retour"
        for query, code in [({}, 400), ({"idop": "<b>"}, 400),
                            ({"idop": str(uuid.uuid4())}, 429)]:
            page = httpx.get(back, params=query, timeout=TIMEOUT)
            assert (page.status_code, page.headers["content-type"]) == (
                code, "text/html; charset=utf-8")
            assert "<p>Opération inconnue.</p>" in page.text
    forged = str(uuid.uuid4())
    page = httpx.get(f"{flow.receiver.url}/payfip/retour", params={"idop": forged},
                     timeout=TIMEOUT)
    assert page.status_code == 404 and "<p>Opération inconnue.</p>" in page.text
    assert [a["id_op"] for a in ledger.list_anomalies(store)] == [forged]


def _reexported(flow, store, tmp_path, total: str | None) -> None:
    """Cancel the example's run; re-export FA-2026-00102 (at another total, if given)."""
    from datetime import date

    from pesgen.runs import export_recorded

    from .payfip_support import MAPPING

    run = ledger.invoice_due(store, "21450999400015", "FA-2026-00102").run_id
    store.cancel(run, "rejected by the trésorerie")
    if total is None:
        return
    again = example_102_at(tmp_path, total)
    export_recorded(lambda: store, MAPPING, again, tmp_path / "again", date(2026, 11, 24))


@pytest.mark.parametrize("total, kinds", [
    (None, ["run-cancelled"]),  # the run was cancelled, nothing exported since
    ("150.00", ["run-cancelled", "amount-due-changed"]),  # re-exported at another amount
])
def test_a_payment_through_the_link_of_a_cancelled_title_is_an_anomaly(flow, store, tmp_path,
                                                                       total, kinds):
    old = flow.link()
    assert old.amount_cents == 18750
    _reexported(flow, store, tmp_path, total)
    if total is not None:
        assert flow.link().amount_cents == 15000  # the title now due
    flow.pay(old, "card")  # the family pays the link it was sent first
    assert ledger.get_operation(store, old.id_op)["status"] == "anomaly"
    pay = _payment(store)
    assert pay["status"] != "paid" and pay["paid_cents"] is None
    assert [a["kind"] for a in ledger.list_anomalies(store)] == kinds


def test_a_wrong_amount_through_the_link_of_a_title_exported_again_is_said_once(flow, store,
                                                                              tmp_path):
    """The title's amount changed since the link (amount-due-changed) is said only of a
    result that is otherwise what pesgen asked for: beside a wrong amount paid, the
    amount-mismatch says it."""
    old = flow.link()
    _reexported(flow, store, tmp_path, "150.00")
    assert flow.link().amount_cents == 15000  # the title now due
    flow.control("tamper", {"idop": old.id_op, "fields": {"montant": "100"}})
    flow.pay(old, "card")
    assert sorted(a["kind"] for a in ledger.list_anomalies(store)) == [
        "amount-mismatch", "run-cancelled"]


def test_a_business_fault_on_the_result_lookup_goes_to_a_person_not_to_every_reconcile(flow,
                                                                                       store):
    """P4 (idOp expired) and other business errors besides P1/P5 get the same answer each
    time: retried forever, they made every reconcile exit with a remote error."""
    link = flow.link()
    flow.control("fault", {"operation": "recupererDetailPaiementSecurise",
                           "kind": "FonctionnelleErreur", "code": "P4"})
    flow.notify(link.id_op)
    op = ledger.get_operation(store, link.id_op)
    assert op["status"] == "anomaly" and op["last_error"].startswith("P4")
    [anomaly] = ledger.list_anomalies(store)
    assert anomaly["kind"] == "lookup-refused" and anomaly["got"].startswith("P4")
    assert _payment(store)["status"] == "pending"  # nothing says the family paid
    assert flow.reconcile() == []  # no longer polled


# ---------------------------------------------------------------------- test mode (saisie T, X)


@pytest.mark.parametrize("mode", ["T", "X"])
def test_a_test_mode_payment_is_not_a_payment_of_the_invoice(flow, store, mode):
    """saisie T (test) or X (activation): a technician's try of the integration. It was
    recorded as the invoice's payment, which then refused the family a production link."""
    link = flow.link(mode=mode)
    assert link.saisie == mode
    flow.pay(link, "card")
    op = ledger.get_operation(store, link.id_op)
    assert (op["status"], op["result_code"]) == ("test-paid", "P")
    assert op["numauto"].startswith("FAKE")  # what PayFiP answered is kept on the operation
    pay = _payment(store)
    assert pay["status"] == "test-paid"
    assert pay["paid_cents"] is None and pay["id_op"] is None and pay["paid_at"] is None
    assert pay["method"] is None and pay["numauto"] is None
    assert _events(store) == [("created", "link", "pending"),
                              ("test-paid", "notification", "test-paid")]
    assert ledger.list_anomalies(store) == []
    assert flow.reconcile() == []  # resolved: no longer polled
    # a replayed notification changes nothing
    assert flow.notify(link.id_op).status_code == 200
    assert _payment(store)["status"] == "test-paid"

    # production afterwards: the link is issued and the payment is the invoice's
    real = flow.link(mode="W")
    assert real.saisie == "W" and _payment(store)["status"] == "pending"
    flow.pay(real, "debit")
    pay = _payment(store)
    assert pay["status"] == "paid" and pay["id_op"] == real.id_op
    assert pay["paid_cents"] == 18750 and pay["method"] == "direct_debit"
    assert ledger.list_anomalies(store) == []  # not a double payment either
    from pesgen.errors import StateError

    with pytest.raises(StateError, match="already paid"):
        flow.link(mode="W")


def test_a_test_payment_found_by_reconcile_is_counted_as_such(flow, store):
    flow.control("notifications", {"enabled": False})
    test = flow.link(mode="T")
    flow.pay(test, "card")
    other = flow.link("FA-2026-00103", mode="W")
    flow.pay(other, "card")
    outcomes = {o.invoice: (o.action, o.status) for o in flow.reconcile()}
    assert outcomes == {"FA-2026-00102": ("recorded", "test-paid"),
                        "FA-2026-00103": ("recorded", "paid")}
    assert _payment(store)["status"] == "test-paid"
    assert _payment(store, "FA-2026-00103")["status"] == "paid"


def test_a_test_payment_through_an_older_link_leaves_the_latest_one_open(flow, store):
    """Like a refusal, a test result speaks for the invoice only when it answers its
    latest link: a production link issued since stays pending."""
    test = flow.link(mode="T")
    real = flow.link(mode="W")
    flow.pay(test, "card")
    assert ledger.get_operation(store, test.id_op)["status"] == "test-paid"
    pay = _payment(store)
    assert pay["status"] == "pending" and pay["last_id_op"] == real.id_op
    flow.pay(real, "card")
    assert _payment(store)["status"] == "paid"


def test_a_result_in_another_mode_than_the_one_sent_is_an_anomaly(flow, store):
    """PayFiP echoes saisie: a production operation answered in test mode (or the reverse)
    is for a person to look at, neither a payment nor a test payment."""
    link = flow.link(mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"saisie": "T"}})
    flow.pay(link, "card")
    assert ledger.get_operation(store, link.id_op)["status"] == "anomaly"
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["expected"], anomaly["got"]) == ("saisie-mismatch", "W",
                                                                      "T")
    assert _payment(store)["status"] == "pending"




@pytest.fixture(params=["sqlite", "postgresql"])
def schema_3_url(request, tmp_path):
    from .conftest import state_database

    with state_database(request.param, tmp_path) as url:
        yield url


def _recorded_before(conn, invoice, amount, ops, paid_by, last):
    """Operations and the invoice's payment row as pesgen recorded them before schema 4:
    ``ops`` is [(id_op, saisie, status, resultrans)]; the invoice is paid by ``paid_by``."""
    at = "2026-11-23T18:00:00Z"
    for id_op, saisie, status, code in ops:
        conn.execute(operations.insert().values(
            id_op=id_op, id_coll="21450999400015", invoice=invoice, run_id=None,
            numcli="012345", exer="2026", refdet=invoice.replace("-", ""), amount_cents=amount,
            mel="x@example.org", objet="TEST", saisie=saisie, endpoint="http://127.0.0.1:9/tpa",
            created_at=at, status=status, result_code=code,
            numauto=f"NA{id_op}" if code in ("P", "V") else None,
            transaction_at="2026-11-23T19:05:00+01:00" if code else None,
            resolved_at=at if code else None, checks=1))
    conn.execute(payments.insert().values(
        id_coll="21450999400015", invoice=invoice, status="paid", amount_cents=amount,
        paid_cents=amount, method="card", paid_at="2026-11-23T19:00:00+01:00", id_op=paid_by,
        last_id_op=last, numauto=f"NA{paid_by}", refdet=invoice.replace("-", ""),
        created_at=at, updated_at=at))


def test_a_store_that_recorded_test_payments_as_paid_is_corrected(schema_3_url, tmp_path,
                                                                    monkeypatch):
    """Schema 4: the test payments the earlier code recorded as the invoices' payments
    no longer pay them, so the families can pay; production payments stay as they were."""
    import pesgen.store as st
    from pesgen.payfip.fake import FakePayfip
    from pesgen.payfip.receiver import create_app
    from pesgen.payfip.server import ServerThread
    from pesgen.payfip.service import default_factory
    from pesgen.runs import export_recorded

    from .conftest import record_as_older
    from .payfip_support import INPUT, MAPPING, RUN_DATE, Flow

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:3])
        old = Store(schema_3_url)
    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    export_recorded(lambda: donor, MAPPING, INPUT, tmp_path / "out", RUN_DATE)
    record_as_older(donor, old)
    with old.engine.begin() as conn:
        # a technician's test paid the invoice
        _recorded_before(conn, "FA-2026-00102", 18750, [("t1", "T", "paid", "P")], "t1", "t1")
        # an activation payment, then the family's real one (then a double payment)
        _recorded_before(conn, "FA-2026-00103", 20100,
                         [("x1", "X", "paid", "P"), ("w1", "W", "paid", "V")], "x1", "w1")
        # a test paid an older link; the latest (production) one is still open
        _recorded_before(conn, "FA-2026-00105", 23750,
                         [("t2", "T", "paid", "P"), ("w2", "W", "pending", None)], "t2", "w2")
        # a production payment: untouched
        _recorded_before(conn, "FA-2026-00101", 28275, [("w3", "W", "paid", "P")], "w3", "w3")
    with old.engine.connect() as conn:
        # the table as it was then (the columns of later migrations are not there yet)
        then = sa.Table("payfip_payments", sa.MetaData(), autoload_with=conn)
        before = dict(conn.execute(sa.select(then).where(
            then.c.invoice == "FA-2026-00101")).one()._mapping)
    old.engine.dispose()

    store = Store(schema_3_url)
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(st.schema_table.c.version)).scalars()) == \
            list(range(1, len(st.MIGRATIONS) + 1))
        ops = dict(conn.execute(sa.select(operations.c.id_op, operations.c.status)).all())
        after = dict(conn.execute(sa.select(payments).where(
            payments.c.invoice == "FA-2026-00101")).one()._mapping)
    assert ops == {"t1": "test-paid", "x1": "test-paid", "w1": "paid", "t2": "test-paid",
                   "w2": "pending", "w3": "paid"}
    assert after == {**before, "applied_run": None, "invoice_key": "fa-2026-00101"}

    pay = _payment(store)
    assert (pay["status"], pay["paid_cents"], pay["id_op"], pay["method"], pay["paid_at"],
            pay["numauto"]) == ("test-paid", None, None, None, None, None)
    assert _events(store) == [("test-paid", "migration", "test-paid")]
    pay = _payment(store, "FA-2026-00103")
    assert (pay["status"], pay["id_op"], pay["paid_cents"], pay["method"], pay["numauto"]) == (
        "paid", "w1", 20100, "direct_debit", "NAw1")
    assert pay["paid_at"] == "2026-11-23T19:05:00+01:00"  # w1's, not x1's 19:00
    assert _events(store, "FA-2026-00103") == [("paid", "migration", "paid")]
    pay = _payment(store, "FA-2026-00105")
    assert (pay["status"], pay["id_op"], pay["last_id_op"]) == ("pending", None, "w2")
    shown = {p["invoice"]: (p["status"], p["saisie"]) for p in ledger.list_payments(store)}
    assert shown == {"FA-2026-00101": ("paid", "W"), "FA-2026-00102": ("test-paid", "T"),
                     "FA-2026-00103": ("paid", "W"), "FA-2026-00105": ("pending", "W")}

    # the family can now pay FA-2026-00102 for real
    with ServerThread(FakePayfip().app) as fake, ServerThread(
            create_app(store, default_factory(timeout=TIMEOUT))) as receiver:
        flow = Flow(store, fake, receiver, tmp_path / "out")
        real = flow.link(mode="W")
        flow.pay(real, "card")
    pay = _payment(store)
    assert (pay["status"], pay["id_op"], pay["paid_cents"]) == ("paid", real.id_op, 18750)
    store.engine.dispose()


def test_a_refdet_another_invoice_has_is_refused_naming_both(flow, store, tmp_path):
    """refdet must name one invoice (notes §12): FA-2026-00103 and FA-202600103 both give
    FA202600103 by the default rule. A title of the other held by an active run, or an
    operation made for it, refuses the link (and the TIPI link) naming both invoices
    and the mapping's rule; nothing is sent."""
    import json

    from typer.testing import CliRunner

    from pesgen.cli import app
    from pesgen.runs import export_recorded

    from .payfip_support import INPUT, MAPPING, MAPPINGS, RUN_DATE

    data = json.loads(INPUT.read_text(encoding="utf-8"))
    [other] = [i for i in data["invoices"] if i["number"] == "FA-2026-00105"]
    other["number"] = "FA-202600103"
    data["invoices"] = [other]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-titres.yaml", path,
                    tmp_path / "titres", RUN_DATE)
    with pytest.raises(PayfipRequestInvalid) as info:
        flow.link("FA-2026-00103", mode="W")
    [problem] = [p for p in info.value.problems if p.rule == "payfip.refdet-unique"]
    assert problem.invoice == "FA-2026-00103"
    assert problem.message.startswith(
        "refdet: 'FA202600103' is also invoice FA-202600103's (the mapping's rule gives it "
        "to its title (run ")
    assert "FA-2026-00103 and FA-202600103 get different ones" in problem.message
    assert problem.mapping.endswith("payfip.refdet")
    assert flow.fake_operations() == []
    tipi = CliRunner().invoke(app, ["payfip", "tipi-url", "-m", str(MAPPING), "-n",
                                    "FA-2026-00103", "--urlcl", "https://ecole.example.org/r",
                                    "--mel", "famille@example.org", "--db", store.url])
    assert tipi.exit_code == 4, tipi.output
    assert "is also invoice FA-202600103's" in tipi.output
    assert "(rule payfip.refdet-unique)" in tipi.output

    # an operation made for the other invoice (its title since cancelled) refuses it too
    titres = ledger.invoice_due(store, "21450999400015", "FA-202600103").run_id
    ledger.record_operation(store, {
        "id_op": "0d1a5c3e-0000-4000-8000-0000000000b1", "id_coll": "21450999400015",
        "invoice": "FA-202600103", "run_id": titres, "numcli": "012345", "exer": "2026",
        "refdet": "FA202600103", "amount_cents": 23750, "mel": "famille@example.org",
        "objet": "FACTURE", "saisie": "W", "endpoint": flow.endpoint})
    store.cancel(titres, "wrong format", despite_payments=True)
    with pytest.raises(PayfipRequestInvalid) as info:
        flow.link("FA-2026-00103", mode="W")
    [problem] = [p for p in info.value.problems if p.rule == "payfip.refdet-unique"]
    assert ("is also invoice FA-202600103's (PayFiP operation "
            "0d1a5c3e-0000-4000-8000-0000000000b1 was made for it with it)") in problem.message
    # the invoice itself, or another invoice with its own refdet, is not refused
    flow.link("FA-2026-00102", mode="W")


def _link_recorded(store, invoice: str = "FA-2026-00102", saisie: str = "W",
                   id_op: str = "0d1a5c3e-0000-4000-8000-0000000000c1") -> str:
    """An operation (production: saisie W) for the invoice's active title, recorded as
    `payfip link` records it (no PayFiP asked): its idOp."""
    due = ledger.invoice_due(store, "21450999400015", invoice)
    ledger.record_operation(store, {
        "id_op": id_op, "id_coll": "21450999400015", "invoice": due.invoice,
        "run_id": due.run_id, "numcli": "012345", "exer": "2026",
        "refdet": due.invoice.replace("-", ""), "amount_cents": due.amount_cents,
        "mel": "famille@example.org", "objet": "FACTURE", "saisie": saisie,
        "endpoint": "http://payfip.invalid/tpa"})
    return id_op


@pytest.mark.parametrize("change, anomaly", [
    ({"idOp": "0d1a5c3e-0000-4000-8000-0000000000c2"},
     ("idop-mismatch", "0d1a5c3e-0000-4000-8000-0000000000c1",
      "0d1a5c3e-0000-4000-8000-0000000000c2")),
    ({"montant": "18751"}, ("amount-mismatch", "18750", "18751")),
    ({"montant": "187.50"}, ("amount-mismatch", "18750", "187.50")),
    ({"saisie": "T"}, ("saisie-mismatch", "W", "T")),
    ({"resultrans": "Q"}, ("unknown-result", "P, V, R, Z or A", "Q")),
    ({"idOp": ""}, None),  # PayFiP need not echo idOp, nor saisie
    ({"saisie": ""}, None),
])
def test_each_difference_from_the_operation_is_an_anomaly(store, exported, change, anomaly):
    """A result is recorded as a payment only when it is what pesgen asked for: another
    idOp, amount (or one that is no number of cents), mode or an unknown result code is
    an anomaly named by its kind, with what pesgen expected and what PayFiP said."""
    from pesgen.payfip.models import PaymentDetail

    id_op = _link_recorded(store)
    detail = {"idOp": id_op, "resultrans": "P", "montant": "18750", "refdet": "FA202600102",
              "numcli": "012345", "saisie": "W", "dattrans": "01122026",
              "heurtrans": "1000", "numauto": "A55A"}
    outcome = ledger.apply_detail(store, id_op, PaymentDetail(**{**detail, **change}),
                                  "reconcile")
    found = [(a["kind"], a["expected"], a["got"]) for a in ledger.list_anomalies(store)]
    op = ledger.get_operation(store, id_op)
    assert (op["checks"], op["notifications"]) == (1, 0)
    [row] = [r for r in ledger.list_payments(store, history=True)
             if r["invoice"] == "FA-2026-00102"]
    last = row["history"][-1]
    if anomaly is None:
        assert (outcome.action, outcome.status, found) == ("recorded", "paid", [])
        assert _payment(store)["status"] == "paid"
        assert (last["event"], last["id_op"]) == ("paid", id_op)
    else:
        assert (outcome.action, outcome.status, found) == ("anomaly", "anomaly", [anomaly])
        assert outcome.message == anomaly[0]
        assert _payment(store)["status"] == "pending"
        result = change.get("resultrans", "P")
        assert [a["detail"] for a in ledger.list_anomalies(store)] == [
            f"result {result} not recorded as a payment"]
        assert (last["event"], last["detail"]) == ("anomaly", {"result": result,
                                                               "kinds": [anomaly[0]]})


def test_a_result_for_an_operation_never_issued_is_an_anomaly(store, exported):
    from pesgen.payfip.models import PaymentDetail

    outcome = ledger.apply_detail(store, "0d1a5c3e-0000-4000-8000-0000000000ff",
                                  PaymentDetail(resultrans="P"), "notification")
    assert outcome.action == "unknown-idop"
    assert [(a["kind"], a["id_op"], a["source"]) for a in ledger.list_anomalies(store)] == [
        ("unknown-idop", "0d1a5c3e-0000-4000-8000-0000000000ff", "notification")]


def test_a_notification_is_counted_on_its_operation(store, exported):
    from pesgen.payfip.models import PaymentDetail

    id_op = _link_recorded(store)
    detail = PaymentDetail(idOp=id_op, resultrans="P", montant="18750", refdet="FA202600102",
                           numcli="012345", saisie="W", dattrans="01122026", heurtrans="1000")
    ledger.apply_detail(store, id_op, detail, "notification")
    ledger.apply_detail(store, id_op, detail, "notification")  # again: already paid
    op = ledger.get_operation(store, id_op)
    assert (op["status"], op["checks"], op["notifications"]) == ("paid", 1, 2)


def test_a_refusal_is_recorded_as_it_came(store, exported):
    """A refusal (R) is the result of the invoice's link, no payment: recorded without
    the note of a payment missing its transaction time."""
    from pesgen.payfip.models import PaymentDetail

    id_op = _link_recorded(store)
    outcome = ledger.apply_detail(store, id_op, PaymentDetail(
        idOp=id_op, resultrans="R", montant="18750", refdet="FA202600102", numcli="012345",
        saisie="W"), "reconcile")
    assert outcome == ledger.Outcome(id_op, "recorded", "refused", "FA-2026-00102")
    # no numauto given: none recorded (NULL, as on the payment), not an empty one
    assert ledger.get_operation(store, id_op)["numauto"] is None
    [row] = [r for r in ledger.list_payments(store, history=True)
             if r["invoice"] == "FA-2026-00102"]
    assert (row["status"], row["history"][-1]["event"]) == ("refused", "refused")
    assert "paid_at_source" not in row["history"][-1]["detail"]


@pytest.mark.parametrize("saisie, status", [("T", "test-paid"), ("W", "paid")])
def test_the_history_of_a_test_payment_says_its_mode(store, exported, saisie, status):
    from pesgen.payfip.models import PaymentDetail

    id_op = _link_recorded(store, saisie=saisie)
    ledger.apply_detail(store, id_op, PaymentDetail(
        idOp=id_op, resultrans="P", montant="18750", refdet="FA202600102", numcli="012345",
        saisie=saisie, dattrans="01122026", heurtrans="1000"), "reconcile")
    [row] = [r for r in ledger.list_payments(store, history=True)
             if r["invoice"] == "FA-2026-00102"]
    last = row["history"][-1]
    assert last["event"] == status
    assert last["detail"].get("saisie") == (saisie if saisie == "T" else None)


# ---------------------------------------------------------------------- handle, one idOp


class _Answering:
    """A PayFiP client whose every result lookup gives one answer (a detail, or raises a
    fault); it counts the lookups and its closings."""

    endpoint = "http://payfip.invalid/tpa"

    def __init__(self, answer):
        self.answer, self.asked, self.closed = answer, [], 0

    def recuperer_detail_paiement_securise(self, id_op):
        self.asked.append(id_op)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def close(self):
        self.closed += 1


def _paid_detail(id_op):
    from pesgen.payfip.models import PaymentDetail

    return PaymentDetail(idOp=id_op, resultrans="P", montant="18750", refdet="FA202600102",
                         numcli="012345", saisie="W", dattrans="01122026", heurtrans="1000")


def test_an_idop_with_a_final_result_is_not_asked_again_and_only_a_notification_counts(
        store, exported):
    """A final operation (paid here) is answered from the store: PayFiP is not asked
    again, and only a notification is counted on it, not the family's return nor the
    sweep."""
    from pesgen.payfip.service import handle

    id_op = _link_recorded(store)
    client = _Answering(_paid_detail(id_op))
    assert handle(store, id_op, "reconcile", lambda endpoint: client).action == "recorded"
    assert (client.asked, client.closed) == ([id_op], 1)
    for source in ("return", "reconcile", "notification"):
        outcome = handle(store, id_op, source, lambda endpoint: client)
        assert outcome == ledger.Outcome(id_op, "already", "paid", "FA-2026-00102")
    assert client.asked == [id_op]  # asked once: for the result, never after
    op = ledger.get_operation(store, id_op)
    assert (op["status"], op["checks"], op["notifications"]) == ("paid", 1, 1)


@pytest.mark.parametrize("kind, code, action, status", [
    ("FonctionnelleErreur", "P5", "pending", "pending"),
    ("FonctionnelleErreur", "P1", "expired", "expired"),
    ("FonctionnelleErreur", "P4", "anomaly", "anomaly"),
    ("TechDysfonctionnementErreur", "P4", "error", "unknown"),
    ("TechIndisponibiliteErreur", "P5", "pending", "pending"),
])
def test_a_fault_on_the_result_lookup_is_read_by_its_code_then_its_kind(
        store, exported, kind, code, action, status):
    """P5: no result yet; P1: PayFiP no longer knows the operation; another business
    (Fonctionnelle) fault goes to a person; a technical one is asked again later. The
    client a plain factory gives is closed after the lookup."""
    from pesgen.payfip.service import handle

    id_op = _link_recorded(store)
    client = _Answering(PayfipFault(kind=kind, code=code, libelle="libellé"))
    outcome = handle(store, id_op, "reconcile", lambda endpoint: client)
    assert (outcome.action, outcome.status) == (action, status)
    assert ledger.get_operation(store, id_op)["status"] == status
    assert client.closed == 1


def test_a_kept_client_stays_open_after_a_lookup_and_is_closed_with_the_keeper(
        store, exported):
    from pesgen.payfip.service import KeptClients, handle

    id_op = _link_recorded(store)
    client = _Answering(PayfipFault(kind="FonctionnelleErreur", code="P5"))
    with KeptClients(lambda endpoint: client) as kept:
        handle(store, id_op, "reconcile", kept)
        handle(store, id_op, "reconcile", kept)
        assert (client.asked, client.closed) == ([id_op, id_op], 0)
    assert client.closed == 1


def test_an_idop_never_issued_is_an_anomaly_unless_the_flood_limit_says_not_to_record_it(
        store, exported):
    from pesgen.payfip.service import handle

    def factory(endpoint):
        raise AssertionError("PayFiP is not asked about an idOp pesgen never issued")

    unknown = "0d1a5c3e-0000-4000-8000-0000000000f0"
    assert handle(store, unknown, "notification", factory, record_unknown=False) == \
        ledger.Outcome(unknown, "unknown-idop", message="not recorded (rate limit)")
    assert ledger.list_anomalies(store) == []
    assert handle(store, unknown, "notification", factory).action == "unknown-idop"
    assert [(a["kind"], a["id_op"]) for a in ledger.list_anomalies(store)] == [
        ("unknown-idop", unknown)]


def test_reconcile_since_a_day_asks_only_the_operations_made_on_or_after_it(
        store, exported):
    """`payfip reconcile --since DAY`: an open operation made the second before that day
    is left for another sweep; one made at its first second is asked, as is every open
    one without --since."""
    from pesgen.payfip.service import reconcile

    before = _link_recorded(store, "FA-2026-00101", id_op="0d1a5c3e-0000-4000-8000-0000000000d1")
    on = _link_recorded(store, "FA-2026-00103", id_op="0d1a5c3e-0000-4000-8000-0000000000d2")
    for id_op, at in ((before, "2026-11-30T23:59:59Z"), (on, "2026-12-01T00:00:00Z")):
        with store.engine.begin() as conn:
            conn.execute(operations.update().where(operations.c.id_op == id_op)
                         .values(created_at=at))
    client = _Answering(PayfipFault(kind="FonctionnelleErreur", code="P5"))
    assert [o.id_op for o in reconcile(store, lambda endpoint: client, "2026-12-01")] == [on]
    assert client.asked == [on]
    assert [o.id_op for o in reconcile(store, lambda endpoint: client)] == [before, on]


@pytest.mark.parametrize("late", ["expire", "refused_lookup"])
def test_a_lookup_fault_coming_after_the_result_was_recorded_changes_nothing(
        store, exported, late):
    """P1 (purged) or another business fault answered to a lookup that raced the
    notification which recorded the payment: the operation is final already, so it is
    neither expired nor sent to the anomalies, and the invoice stays paid."""
    id_op = _link_recorded(store)
    assert ledger.apply_detail(store, id_op, _paid_detail(id_op), "notification").status == "paid"
    outcome = getattr(ledger, late)(store, id_op, "reconcile", "P1 opération inconnue")
    assert outcome == ledger.Outcome(id_op, "already", "paid")
    op = ledger.get_operation(store, id_op)
    assert (op["status"], op["checks"], op["last_error"]) == ("paid", 1, None)
    assert _payment(store)["status"] == "paid"
    assert ledger.list_anomalies(store) == []
    assert [e[0] for e in _events(store)] == ["created", "paid"]



@pytest.mark.parametrize("saisie, resultrans, kinds", [
    ("W", "P", ["amount-mismatch", "double-payment"]),
    ("W", "R", ["amount-mismatch"]),  # a refusal moved no money: no second payment
    ("T", "P", ["amount-mismatch"]),  # nor did a test payment
])
def test_a_wrong_result_on_a_paid_invoice_is_a_double_payment_only_when_money_was_paid(
        store, exported, saisie, resultrans, kinds):
    """The invoice is paid (its first link); a result of a second link for another amount
    is an anomaly, and also a double payment when it says production money was paid:
    not when it is a refusal, nor a payment in test mode."""
    from pesgen.payfip.models import PaymentDetail

    first = _link_recorded(store)
    ledger.apply_detail(store, first, _paid_detail(first), "notification")
    second = _link_recorded(store, saisie=saisie, id_op="0d1a5c3e-0000-4000-8000-0000000000c2")
    outcome = ledger.apply_detail(store, second, PaymentDetail(
        idOp=second, resultrans=resultrans, montant="18751", refdet="FA202600102",
        numcli="012345", saisie=saisie, dattrans="01122026", heurtrans="1000"), "reconcile")
    assert (outcome.action, outcome.message) == ("anomaly", ", ".join(kinds))
    assert [a["kind"] for a in ledger.list_anomalies(store)] == kinds
    pay = _payment(store)
    assert (pay["status"], pay["id_op"], pay["paid_cents"]) == ("paid", first, 18750)


def test_a_double_payment_is_logged_as_an_anomaly(store, exported, caplog):
    """The receiver's log said "operation …: paid" for the second payment of a paid
    invoice, as for a payment: it is an anomaly, logged as a warning naming its kind as
    the others are."""
    first = _link_recorded(store)
    ledger.apply_detail(store, first, _paid_detail(first), "notification")
    second = _link_recorded(store, id_op="0d1a5c3e-0000-4000-8000-0000000000c2")
    with caplog.at_level("INFO", logger="pesgen.payfip"):
        ledger.apply_detail(store, second, _paid_detail(second), "notification")
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [("WARNING", f"payfip notification: operation {second}: paid, anomaly "
                                "(double-payment)")], said
    assert [a["kind"] for a in ledger.list_anomalies(store)] == ["double-payment"]


def test_the_title_of_an_operation_never_issued_is_not_said_cancelled(store, exported):
    """The return page asks whether the title of the idOp it was given is cancelled: an
    idOp pesgen never issued has no title, active or cancelled."""
    assert ledger.title_cancelled(store, "0d1a5c3e-0000-4000-8000-0000000000ff") is None
    assert ledger.title_cancelled(store, _link_recorded(store)) is None  # active


@pytest.mark.parametrize("resultrans, status", [("R", "refused"), ("Z", "refused"),
                                                ("P", "test-paid")])
def test_a_result_of_a_later_link_that_moved_no_money_leaves_the_paid_invoice_paid(
        store, exported, resultrans, status):
    """The invoice is paid (its first link); a link made after it (so the latest), then
    refused, or paid in test mode, is that link's result only: the invoice stays paid."""
    from pesgen.payfip.models import PaymentDetail

    first = _link_recorded(store)
    ledger.apply_detail(store, first, _paid_detail(first), "notification")
    saisie = "T" if status == "test-paid" else "W"
    later = _link_recorded(store, saisie=saisie, id_op="0d1a5c3e-0000-4000-8000-0000000000c2")
    assert _payment(store)["last_id_op"] == later
    outcome = ledger.apply_detail(store, later, PaymentDetail(
        idOp=later, resultrans=resultrans, montant="18750", refdet="FA202600102",
        numcli="012345", saisie=saisie), "reconcile")
    assert (outcome.action, outcome.status) == ("recorded", status)
    pay = _payment(store)
    assert (pay["status"], pay["id_op"], pay["paid_cents"]) == ("paid", first, 18750)
    assert _events(store)[-1] == (status, "reconcile", "paid")
    assert ledger.list_anomalies(store) == []


def test_a_payment_answered_without_numauto_records_none(store, exported):
    """A paid result whose answer has no numauto records the payment without one (NULL,
    as a refusal's), not an empty authorisation number."""
    from pesgen.payfip.models import PaymentDetail

    id_op = _link_recorded(store)
    ledger.apply_detail(store, id_op, PaymentDetail(
        idOp=id_op, resultrans="V", montant="18750", refdet="FA202600102", numcli="012345",
        saisie="W", dattrans="01122026", heurtrans="1000"), "reconcile")
    pay = _payment(store)
    assert (pay["status"], pay["method"], pay["numauto"]) == ("paid", "direct_debit", None)


@pytest.mark.parametrize("resultrans, status", [("R", "pending"), ("P", "paid")])
def test_a_new_link_reopens_an_unpaid_invoice_and_never_a_paid_one(
        store, exported, resultrans, status):
    """A link made after a refusal reopens the invoice's payment (pending, in its history
    too); one made after a payment leaves it paid, and its history says so."""
    from pesgen.payfip.models import PaymentDetail

    first = _link_recorded(store)
    ledger.apply_detail(store, first, PaymentDetail(
        idOp=first, resultrans=resultrans, montant="18750", refdet="FA202600102",
        numcli="012345", saisie="W", dattrans="01122026", heurtrans="1000"), "reconcile")
    _link_recorded(store, id_op="0d1a5c3e-0000-4000-8000-0000000000c2")
    assert _payment(store)["status"] == status
    assert _events(store)[-1] == ("created", "link", status)


@pytest.mark.parametrize("expiring, status", [("latest", "paid"), ("older", "pending")])
def test_an_expired_link_expires_the_invoice_only_when_it_is_its_latest_and_unpaid(
        store, exported, expiring, status):
    """P1 (PayFiP purged the operation) speaks for the invoice only as the result of its
    latest link, and never over a payment: the older link paid, the latest one expiring
    leaves the invoice paid; nothing paid, the older one expiring leaves the latest one
    open (pending)."""
    older = _link_recorded(store)
    if status == "paid":
        ledger.apply_detail(store, older, _paid_detail(older), "notification")
    latest = _link_recorded(store, id_op="0d1a5c3e-0000-4000-8000-0000000000c2")
    id_op = latest if expiring == "latest" else older
    outcome = ledger.expire(store, id_op, "reconcile", "P1 opération inconnue")
    assert (outcome.action, outcome.status) == ("expired", "expired")
    assert ledger.get_operation(store, id_op)["status"] == "expired"
    pay = _payment(store)
    assert (pay["status"], pay["last_id_op"]) == (status, latest)
    assert _events(store)[-1] == ("expired", "reconcile", status)


def test_a_lookup_fault_for_an_idop_the_store_does_not_hold_records_nothing(store, exported):
    unknown = "0d1a5c3e-0000-4000-8000-0000000000ff"
    assert ledger.expire(store, unknown, "reconcile", "P1") == \
        ledger.Outcome(unknown, "already")
    assert ledger.refused_lookup(store, unknown, "reconcile", "P4") == \
        ledger.Outcome(unknown, "already")
    assert ledger.note_check(store, unknown, "reconcile", "unknown", "down") == \
        ledger.Outcome(unknown, "error", message="down")
    assert ledger.note_check(store, unknown, "reconcile", "pending") == \
        ledger.Outcome(unknown, "pending", message="")
    assert ledger.list_anomalies(store) == []
    assert _count(store, operations) == 0 and _count(store, events) == 0


# ---------------------------------------------------------------------- apply_detail, edges


@pytest.mark.parametrize("resultrans", ["P", "A", "R"])
def test_a_result_for_an_operation_recorded_meanwhile_is_already_and_changes_nothing(
        store, exported, resultrans):
    """A result pulled for an operation another path (the notification, the return, the
    sweep) has recorded meanwhile is `already`, with the status recorded: nothing of it
    is recorded, and an abandon (A) within the idOp's 20 minutes does not say a paid
    operation pending."""
    from dataclasses import replace

    id_op = _link_recorded(store)
    ledger.apply_detail(store, id_op, _paid_detail(id_op), "notification")
    before = (_payment(store), _events(store), ledger.get_operation(store, id_op))
    outcome = ledger.apply_detail(store, id_op, replace(_paid_detail(id_op),
                                                        resultrans=resultrans), "reconcile")
    assert outcome == ledger.Outcome(id_op, "already", "paid", "FA-2026-00102")
    assert (_payment(store), _events(store), ledger.get_operation(store, id_op)) == before
    assert ledger.list_anomalies(store) == []


@pytest.mark.parametrize("resultrans, status", [("R", "refused"), ("A", "abandoned")])
def test_a_result_that_moved_no_money_through_a_cancelled_title_s_link_is_as_it_came(
        store, exported, resultrans, status):
    """Only money paid through the link of a cancelled title is for the trésorerie to
    settle (run-cancelled); a refusal or a final abandon through it moved none: recorded
    as it came, no anomaly."""
    from pesgen.payfip.models import PaymentDetail

    id_op = _link_recorded(store)
    store.cancel(ledger.get_operation(store, id_op)["run_id"], "rejected by the trésorerie",
                 despite_payments=True)
    _made_minutes_ago(store, id_op, 21)  # an abandon is final once its 20 minutes are over
    outcome = ledger.apply_detail(store, id_op, PaymentDetail(
        idOp=id_op, resultrans=resultrans, montant="18750", refdet="FA202600102",
        numcli="012345", saisie="W"), "reconcile")
    assert outcome == ledger.Outcome(id_op, "recorded", status, "FA-2026-00102")
    assert ledger.get_operation(store, id_op)["status"] == status
    assert ledger.list_anomalies(store) == []


def test_a_payment_through_an_operation_without_a_recorded_title_is_a_payment(
        store, exported):
    """An operation recorded without its title's run (``run_id`` None: nothing to say its
    title was cancelled) paid is the invoice's payment, not a run-cancelled anomaly."""
    id_op = "0d1a5c3e-0000-4000-8000-0000000000e1"
    due = ledger.invoice_due(store, "21450999400015", "FA-2026-00102")
    ledger.record_operation(store, {
        "id_op": id_op, "id_coll": "21450999400015", "invoice": due.invoice,
        "run_id": None, "numcli": "012345", "exer": "2026", "refdet": "FA202600102",
        "amount_cents": due.amount_cents, "mel": "famille@example.org", "objet": "FACTURE",
        "saisie": "W", "endpoint": "http://payfip.invalid/tpa"})
    outcome = ledger.apply_detail(store, id_op, _paid_detail(id_op), "reconcile")
    assert outcome == ledger.Outcome(id_op, "recorded", "paid", "FA-2026-00102")
    assert ledger.list_anomalies(store) == []
    assert (_payment(store)["status"], _payment(store)["id_op"]) == ("paid", id_op)


def test_a_payment_through_an_operation_whose_run_the_store_lacks_is_an_anomaly(
        store, exported):
    """An operation naming a run the store does not hold: its title cannot be said due,
    so money paid through it is a run-cancelled anomaly saying the run is missing."""
    id_op = _link_recorded(store)
    with store.engine.begin() as conn:
        conn.execute(operations.update().where(operations.c.id_op == id_op).values(
            run_id="00000000-0000-4000-8000-000000000000"))
    outcome = ledger.apply_detail(store, id_op, _paid_detail(id_op), "reconcile")
    assert (outcome.action, outcome.message) == ("anomaly", "run-cancelled")
    assert [(a["kind"], a["expected"], a["got"]) for a in ledger.list_anomalies(store)] == [
        ("run-cancelled", "run 00000000-0000-4000-8000-000000000000 active",
         "run 00000000-0000-4000-8000-000000000000 missing")]
    assert _payment(store)["status"] == "pending"


def test_the_history_of_a_payment_says_its_result_method_and_transaction_time(
        store, exported):
    """The invoice's `paid` event keeps what PayFiP answered: its result code, the method
    it means (P: card) and the transaction's time (dattrans/heurtrans, Europe/Paris)."""
    id_op = _link_recorded(store)
    ledger.apply_detail(store, id_op, _paid_detail(id_op), "notification")
    [row] = [r for r in ledger.list_payments(store, history=True)
             if r["invoice"] == "FA-2026-00102"]
    last = row["history"][-1]
    assert (last["event"], last["source"], last["status"], last["id_op"]) == (
        "paid", "notification", "paid", id_op)
    assert last["detail"] == {"result": "P", "method": "card",
                              "transaction_at": "2026-12-01T10:00:00+01:00"}


def test_a_payment_without_its_time_is_logged_with_its_idop_and_outcome_only(
        store, exported, caplog):
    """docs/payfip.md: a paid answer without dattrans/heurtrans is recorded, and a warning
    says so with the idOp only; the outcome is logged too (idOp and status, no amount)."""
    from dataclasses import replace

    id_op = _link_recorded(store)
    with caplog.at_level("INFO", logger="pesgen.payfip"):
        outcome = ledger.apply_detail(store, id_op, replace(
            _paid_detail(id_op), dattrans="", heurtrans=""), "notification")
    assert (outcome.action, outcome.status) == ("recorded", "paid")
    assert [(r.levelname, r.getMessage()) for r in caplog.records
            if r.name == "pesgen.payfip"] == [
        ("INFO", f"payfip notification: operation {id_op}: paid"),
        ("WARNING", f"payfip notification: operation {id_op}: no dattrans/heurtrans in the "
                    "result")]


def test_paid_by_key_gives_the_earliest_paid_of_each_key_asked_with_its_open_settlement(
        store):
    """``ledger.paid_by_key``: the payments recorded paid of the invoices asked, by key,
    a key's earliest paid (by PayFiP's time, not by the row's number), keyed rows and
    unkeyed ones alike (a row written otherwise than by record_operation has no key), a
    few keys a query (``chunk``); each with the number of its open paid-cancelled anomaly
    (a resolved one, or another kind, is none). Neither a payment of another invoice,
    nor one not paid, nor another collectivity's."""
    coll = "21450999400015"

    def row(invoice: str, key: str | None, at: str, id_op: str, status: str = "paid",
            id_coll: str = coll) -> dict:
        return {"id_coll": id_coll, "invoice": invoice, "invoice_key": key, "status": status,
                "amount_cents": 18750, "paid_cents": 18750, "method": "card",
                "paid_at": at, "id_op": id_op, "last_id_op": id_op, "refdet": "R",
                "created_at": "2026-11-23T18:00:00Z", "updated_at": "2026-11-23T18:00:00Z"}

    def anomaly(id_op: str, kind: str = "paid-cancelled", resolved: str | None = None):
        return {"at": "2026-12-03T08:00:00Z", "kind": kind, "id_op": id_op,
                "invoice": "FA-1", "source": "cancel", "resolved_at": resolved}

    with store.engine.begin() as conn:
        conn.execute(payments.insert(), [
            row("FA-1", "fa-1", "2026-12-02T10:00:00Z", "op-late"),
            row(" fa-1 ", "fa-1", "2026-12-01T10:00:00Z", "op-early"),
            row("FA-2", None, "2026-12-01T11:00:00Z", "op-2"),
            row("FA-3", None, "2026-12-01T12:00:00Z", "op-3"),
            row("FA-4", "fa-4", "2026-12-01T13:00:00Z", "op-4", status="refunded"),
            row("FA-5", "fa-5", "2026-12-01T14:00:00Z", "op-5", id_coll="21450999400099"),
            row("FA-6", "fa-6", "2026-12-01T15:00:00Z", "op-6")])
        conn.execute(anomalies.insert(), [
            anomaly("op-early", resolved="2026-12-04T08:00:00Z"), anomaly("op-early"),
            anomaly("op-early"), anomaly("op-2", kind="run-cancelled"), anomaly("op-6")])
        numbers = conn.execute(sa.select(anomalies.c.id)
                               .order_by(anomalies.c.id)).scalars().all()
    asked = ["FA-1", "fa-2", "FA-4", "FA-5", "FA-6", "FA-7"]
    for chunk in (500, 1):
        found = ledger.paid_by_key(store, coll, asked, chunk=chunk)
        assert {k: (p["id_op"], p["invoice"], p["open_settlement"])
                for k, p in found.items()} == {
            "fa-1": ("op-early", " fa-1 ", numbers[1]), "fa-2": ("op-2", "FA-2", None),
            "fa-6": ("op-6", "FA-6", numbers[4])}, chunk
    assert ledger.paid_by_key(store, coll, []) == {}
