# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""What support reads walking docs/payfip.md against pesgen's output (session 41's docs
walk): notes and summaries that contradicted what the store held, or each other. On
SQLite and PostgreSQL, over real HTTP on loopback (test_payfip_flow)."""

from __future__ import annotations

from pesgen.payfip import ledger

from .payfip_support import (  # noqa: F401 - fixtures
    exported,
    fake,
    flow,
    receiver,
    store,
)
from .test_payfip_unsettled import ID_COLL, _cli, _paid_then_cancelled, _resolve


def _payments_once_resolved(store, number: int) -> str:
    """The anomaly resolved with the note alone, then `payfip payments`: its standard
    error, which no longer asks to record the answer on an open anomaly."""
    code, out, err = _resolve(store, number)
    assert code == 0, out + err
    code, out, err = _cli(store, "payfip", "payments")
    assert code == 0, err
    assert "record its answer" not in err, err
    return err


def test_payments_says_a_paid_cancelled_anomaly_resolved_with_a_note_is_recorded(
        flow, store, tmp_path):
    """A paid title cancelled, its paid-cancelled anomaly resolved with the note alone:
    `payfip payments` no longer asks to record the trésorerie's answer on its open
    anomaly, but says the decision is recorded and the invoice still paid for pesgen, as
    it does of a run-cancelled anomaly resolved since, and that the answer can still be
    recorded (an outcome after a note alone)."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _cli(store, "payfip", "payments")
    assert code == 0, err
    assert "record its answer on the title's paid-cancelled anomaly" in err, err
    assert "resolved since" not in err, err
    err = _payments_once_resolved(store, number)
    assert ("note: 1 cancelled title(s) were paid online, their paid-cancelled anomaly "
            "resolved since (FA-2026-00102): the money stays with the cancelled title, and "
            "the invoice paid for pesgen (no link for the title exported in its place); the "
            "decision is recorded (`pesgen payfip anomalies --all`), and the trésorerie's "
            "answer can still be (`pesgen payfip anomalies resolve ID --refunded` or "
            "`--applied`, with `--note TEXT`)\n") in err, err


def test_payments_reads_the_paid_cancelled_anomaly_of_the_payment_not_another_kind(
        flow, store, tmp_path):
    """The paying operation's paid-cancelled anomaly resolved with the note alone, while
    an anomaly of another kind of that operation is still open (a double-payment one, as
    money applied after the first payment's refund leaves it, written here into the
    store): `payfip payments` says the decision recorded, as it reads the paid-cancelled
    anomaly only, not "record its answer"."""
    from pesgen.payfip.tables import anomalies

    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    with store.engine.begin() as conn:
        conn.execute(anomalies.insert().values(
            at="2026-12-01T09:00:00Z", kind="double-payment", id_op=link.id_op,
            invoice="FA-2026-00102", source="notification", expected="another-op",
            got=link.id_op, detail="the invoice was already paid by another operation"))
    err = _payments_once_resolved(store, number)
    assert ("note: 1 cancelled title(s) were paid online, their paid-cancelled anomaly "
            "resolved since (FA-2026-00102)") in err, err


def test_resolve_of_a_paid_cancelled_anomaly_says_paid_not_held_back(flow, store, tmp_path):
    """A paid-cancelled anomaly never held its invoice back (its payment made it paid):
    resolved with the note alone, `resolve` says the invoice is still paid by that
    payment, the answer not recorded; resolved --refunded, that it is no longer paid.
    Neither says "held back", the run-cancelled anomaly's word."""
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number)
    assert code == 0, out + err
    assert "held back" not in err, err
    assert ("note: invoice FA-2026-00102: still paid for pesgen, by its cancelled title's "
            "payment: 187.50 by card on ") in err, err
    assert (f"(PayFiP operation {link.id_op}); the trésorerie's answer was not recorded "
            "(--applied or --refunded): `payfip link`, `tipi-url` and `payfip datamatrix` "
            "refuse it as any paid title; send the family no link for it; once it answers, "
            f"record it: `pesgen payfip anomalies resolve {number} --applied --note TEXT` or "
            "`--refunded`\n") in err, err


def test_resolve_of_a_paid_cancelled_anomaly_refunded_says_no_longer_paid(
        flow, store, tmp_path):
    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    code, out, err = _resolve(store, number, "--refunded")
    assert code == 0, out + err
    assert err == ("note: invoice FA-2026-00102: no longer paid, its payment refunded: "
                   "`payfip link`, `tipi-url` and `payfip datamatrix` give it a payment "
                   "again; send the family the new link\n"), err


def test_resolve_of_a_paid_cancelled_anomaly_names_the_payment_that_pays_the_invoice(
        flow, store, tmp_path):
    """A paid-cancelled anomaly resolved with the note alone while another payment pays
    the invoice (an earlier one of its number written otherwise: a row no link of this
    pesgen wrote, a store from before the numbers' keys): `resolve` says the invoice paid
    by that other payment, as `payfip link` reads it, not "still paid by its cancelled
    title's payment", and gives no answer to record for it."""
    import sqlalchemy as sa

    from pesgen.payfip.tables import payments

    run, link, new, number = _paid_then_cancelled(flow, store, tmp_path)
    with store.engine.begin() as conn:
        conn.execute(payments.insert().values(
            id_coll=ID_COLL, invoice=" fa-2026-00102 ", invoice_key="fa-2026-00102",
            status="paid", amount_cents=18750, paid_cents=18750, method="card",
            paid_at="2026-01-05T10:00:00Z", id_op="op-earlier", last_id_op="op-earlier",
            refdet="R", created_at="2026-01-05T10:00:00Z", updated_at="2026-01-05T10:00:00Z"))
        assert conn.execute(sa.select(sa.func.count()).select_from(payments)).scalar() == 2
    code, out, err = _resolve(store, number)
    assert code == 0, out + err
    assert err == ("note: invoice FA-2026-00102: paid by another payment: 187.50 by card on "
                   "2026-01-05T10:00:00Z (PayFiP operation op-earlier): `payfip link`, "
                   "`tipi-url` and `payfip datamatrix` refuse it as any paid title; send the "
                   "family no link for it\n"), err


def test_formats_sizes_its_name_column_from_the_longest_name(tmp_path):
    """A bundle scaffolded under a name longer than the 16 characters the name column
    had (ciril-civil-multifacturation, 28: docs/onboarding.md's step 1 in a scratch
    folder) pushed its row's status, kind and title out of line with the shipped ones'.
    Each row's status now starts in the same column, one space after the longest name."""
    import re

    from .conftest import run_cli

    name = "ciril-civil-multifacturation"
    made = run_cli("new-format", name, "--kind", "csv", "--dir", tmp_path / "formats")
    assert made.exit_code == 0, made.output
    listed = run_cli("formats", "--formats-dir", tmp_path / "formats")
    assert listed.exit_code == 0, listed.output
    rows = [line for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert any(row.startswith(f"{name} draft ") for row in rows), rows
    assert any(row.startswith("pes-ormc ") for row in rows), rows
    starts = {re.search(r" (draft|stable|reconstructed) ", row).start() for row in rows}
    assert starts == {len(name)}, rows


def test_a_test_link_abandoned_beside_a_new_one_says_no_double_payment(flow, store):
    """An abandoned link stays payable for its 20 minutes, so a new link says so, also
    beside a test link (service._still_open: "an abandoned one always"); but it said
    "if the family pays both, the second is a double-payment anomaly", where a test
    link's payment is recorded as a test: paid both, no anomaly. The note now says
    which of the two pays the invoice."""
    until = ledger.active_until
    test = flow.link(mode="T")
    flow.pay(test, "abandon")
    again = flow.link(mode="W")
    made = ledger.get_operation(store, test.id_op)["created_at"]
    assert again.notes == (
        f"invoice FA-2026-00102: operation {test.id_op} was abandoned but stays payable "
        f"until {until(made)}: it is a test link (saisie T): a payment through it is "
        "recorded as a test (test-paid), never as a payment of the invoice; tell the family "
        "which link to use (docs/payfip.md, abandoned)",)
    # paid both: the test one is a test, the production one pays; nothing is twice
    flow.control("tamper", {"idop": test.id_op, "fields": {"resultrans": "P"}})
    flow.control("notify", {"idop": test.id_op})
    flow.pay(again, "card")
    assert ledger.list_anomalies(store) == []
    assert ledger.get_operation(store, test.id_op)["status"] == "test-paid"
    assert ledger.payment_of(store, ID_COLL, "FA-2026-00102")["id_op"] == again.id_op

    production = flow.link("FA-2026-00103", mode="W")
    flow.pay(production, "abandon")
    made = ledger.get_operation(store, production.id_op)["created_at"]
    assert flow.link("FA-2026-00103", mode="T").notes == (
        f"invoice FA-2026-00103: operation {production.id_op} was abandoned but stays "
        f"payable until {until(made)}: a payment through it pays the invoice, where one "
        "through this link (saisie T) is recorded as a test (test-paid), never as a payment "
        "of the invoice (docs/payfip.md, abandoned)",)
