# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""What a user relies on in a PayFiP request (``service.build_request`` and the checks it
calls), in the ledger's ``note_check`` and in the receiver (``receiver.create_app``) that
no other test held: each test here was written for a change of the code the rest of the
suite let through (a mutation run, session 38), and fails on it. The requests are built
straight from the store, no PayFiP asked."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pesgen.errors import StateError
from pesgen.mapping import load_mapping
from pesgen.payfip import ledger
from pesgen.payfip.errors import PayfipRequestInvalid
from pesgen.payfip.models import PaymentDetail
from pesgen.payfip.service import PayerEmails, build_request
from pesgen.payfip.settings import load_settings
from pesgen.store import runs

from .mapping_support import mapping_copy
from .payfip_support import MAPPING, exported, store  # noqa: F401 - fixtures

SIRET = "21450999400015"
NOTIFY = "https://ecole.example.org/payfip/notification"
MEL = "famille@example.org"


def _request(store, invoice="FA-2026-00102", mapping_path=MAPPING, **kw):
    mapping = load_mapping(mapping_path)
    kw.setdefault("mel", MEL)
    kw.setdefault("notify_url", NOTIFY)
    kw.setdefault("return_url", None)
    return build_request(mapping, load_settings(mapping), store, invoice, **kw)


def _recorded(store, invoice="FA-2026-00102", id_op="0d1a5c3e-0000-4000-8000-0000000000e1"):
    """An operation (production) for the invoice's active title, recorded as `payfip
    link` records it: its idOp."""
    due = ledger.invoice_due(store, SIRET, invoice)
    ledger.record_operation(store, {
        "id_op": id_op, "id_coll": SIRET, "invoice": due.invoice, "run_id": due.run_id,
        "numcli": "012345", "exer": "2026", "refdet": due.invoice.replace("-", ""),
        "amount_cents": due.amount_cents, "mel": MEL, "objet": "FACTURE", "saisie": "W",
        "endpoint": "http://payfip.invalid/tpa"})
    return id_op


def _paid(store, id_op, resultrans="P", montant="18750"):
    detail = PaymentDetail(idOp=id_op, resultrans=resultrans, montant=montant,
                           refdet="FA202600102", numcli="012345", saisie="W",
                           dattrans="01122026", heurtrans="1000")
    return ledger.apply_detail(store, id_op, detail, "notification")


# ---------------------------------------------------------------------- refuse_paid


def test_a_paid_invoice_s_refusal_names_the_payment_in_its_problem(store, exported):
    """The problem (rule payfip.paid) a listing shows: amount, date, operation, and that
    no link is made for a paid invoice."""
    id_op = _recorded(store)
    _paid(store, id_op)
    paid_at = ledger.payment_of(store, SIRET, "FA-2026-00102")["paid_at"]
    with pytest.raises(StateError) as info:
        _request(store, what="TIPI link")
    [problem] = info.value.problems
    assert (problem.rule, problem.invoice) == ("payfip.paid", "FA-2026-00102")
    assert problem.message == (f"paid 187.50 on {paid_at} through PayFiP operation {id_op}: "
                               "no TIPI link for a paid invoice")
    assert str(info.value) == (
        f"invoice FA-2026-00102: already paid through PayFiP: 187.50 by card on {paid_at} "
        f"(operation {id_op}); no TIPI link: the family would pay twice (`pesgen payfip "
        "payments --history` shows the payment)")


# ---------------------------------------------------------------------- the payer's e-mail


def test_no_mel_and_a_recorded_mapping_this_pesgen_cannot_load_asks_for_one(store, exported):
    """Without --mel the address is read from the run's input with the mapping the run
    recorded; when this pesgen cannot load that mapping, the mel problem says so and
    asks for --mel (no mapping line to name)."""
    run_id = ledger.invoice_due(store, SIRET, "FA-2026-00102").run_id
    with store.engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(
            mapping_text="collectivity: [\n"))
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, mel=None)
    [problem] = info.value.problems
    assert (problem.rule, problem.invoice, problem.mapping) == (
        "payfip.mel", "FA-2026-00102", None)
    assert problem.message == (
        f"mel: the payer's e-mail address is missing: the mapping run {run_id} recorded "
        "cannot be loaded by this pesgen to read the payer's e-mail from its input "
        "(`pesgen regenerate` says why); give one with --mel")
    # given, the address is not read from the input: the run's mapping is not needed
    request, _, _ = _request(store, mel=MEL)
    assert request.mel == MEL


def test_an_e_mail_binding_that_fails_on_a_record_gives_no_address_for_it(store, exported,
                                                                         tmp_path):
    """The payer's e-mail read from a run's input: a record whose payer.email binding
    fails gives none (never another record's), the others theirs; an invoice.number
    binding that fails gives none for any (which record is which is not known)."""
    run_id = ledger.invoice_due(store, SIRET, "FA-2026-00102").run_id
    failing, _ = mapping_copy(tmp_path, MAPPING, (
        "    email: payer.email\n",
        "    email: {expr: \"invoice.payer.email if invoice.number != 'FA-2026-00103' "
        "else invoice.number + 1\"}\n"), name="failing-email.yaml")
    emails = PayerEmails(store, run_id, load_mapping(failing))
    assert emails.email("FA-2026-00102") == "jf.ndiaye@example.org"
    assert emails.email("FA-2026-00103") is None
    assert emails.email("FA-2026-00101") == "helene.dupont@example.org"
    numberless, _ = mapping_copy(tmp_path, MAPPING, (
        "    number: number\n", "    number: {expr: \"invoice.number + 1\"}\n"),
        name="failing-number.yaml")
    emails = PayerEmails(store, run_id, load_mapping(numberless))
    assert [emails.email(n) for n in ("FA-2026-00101", "FA-2026-00102")] == [None, None]
    # the example mapping: every record's address
    emails = PayerEmails(store, run_id, load_mapping(MAPPING))
    assert emails.email("FA-2026-00103") is not None


# ---------------------------------------------------------------------- refdet unique


def test_a_refdet_rule_that_fails_on_another_title_does_not_stop_this_one_s_link(
        store, exported, tmp_path):
    """The refdets the rule gives the other active titles are read to refuse a clash;
    a title the rule fails on is left out there (it is refused when its own link is
    asked), and the link of the invoice asked is made."""
    mapping_path, _ = mapping_copy(tmp_path, MAPPING, (
        'refdet: {expr: "invoice.number | alnum"}',
        "refdet: {expr: \"invoice.number | alnum if invoice.number != 'FA-2026-00103' "
        "else invoice.number + 1\"}"), name="refdet.yaml")
    request, _, _ = _request(store, "FA-2026-00102", mapping_path=mapping_path)
    assert request.refdet == "FA202600102"
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, "FA-2026-00103", mapping_path=mapping_path)
    assert [p.rule for p in info.value.problems] == ["payfip.refdet"]


SLOW = ("(([[1] * 100000] * 100000) | map('map', 'string') | map('join') | map('length') "
        "| sum)")


def test_a_refdet_rule_past_the_time_limit_on_another_title_stops_the_request(
        store, exported, tmp_path, monkeypatch):
    """The rule running past the limit (pesgen._budget.LIMIT; 0.5 s here) on another
    active title, read for the refdet clash check, stops the request naming the rule's
    line (rule mapping.time): not taken for a rule that fails on that title."""
    from pesgen import _budget
    from pesgen.errors import MappingStopped

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    mapping_path, (line,) = mapping_copy(tmp_path, MAPPING, (
        'refdet: {expr: "invoice.number | alnum"}',
        "refdet: {expr: \"invoice.number | alnum if invoice.number == 'FA-2026-00102' "
        f"else {SLOW}\"}}"), name="slow.yaml")
    with pytest.raises(MappingStopped) as info:
        _request(store, "FA-2026-00102", mapping_path=mapping_path)
    assert [(p.rule, p.mapping) for p in info.value.problems] == [
        ("mapping.time", f"{mapping_path}:{line}: payfip.refdet")]


def test_an_invoice_number_binding_past_the_time_limit_stops_the_e_mail_lookup(
        store, exported, tmp_path, monkeypatch):
    """The run's invoice.number binding, read to find the payer's e-mail, running past
    the limit: stopped naming its line (rule mapping.time), not read as "no e-mail"."""
    from pesgen import _budget
    from pesgen.errors import MappingStopped

    run_id = ledger.invoice_due(store, SIRET, "FA-2026-00102").run_id
    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    slow, (line,) = mapping_copy(tmp_path, MAPPING, (
        "    number: number\n", f'    number: {{expr: "invoice.number ~ {SLOW}"}}\n'),
        name="slow-number.yaml")
    with pytest.raises(MappingStopped) as info:
        PayerEmails(store, run_id, load_mapping(slow))
    assert [(p.rule, p.mapping) for p in info.value.problems] == [
        ("mapping.time", f"{slow}:{line - 1}: bindings.invoice.number")]


# ---------------------------------------------------------------------- ledger.note_check


def test_a_check_that_teaches_nothing_final_counts_the_check_and_only_a_notification(
        store, exported):
    """A lookup answered P5 (pending) or failing (PayFiP unreachable: unknown) records the
    check on the operation: its status, one more check, the error (none for P5: an
    earlier one is cleared); only a notification counts as one, not the sweep's nor the
    family's return."""
    id_op = _recorded(store)

    def state():
        op = ledger.get_operation(store, id_op)
        return op["status"], op["checks"], op["notifications"], op["last_error"]

    assert ledger.note_check(store, id_op, "reconcile", "unknown", "PayFiP down") == \
        ledger.Outcome(id_op, "error", "unknown", "FA-2026-00102", "PayFiP down")
    assert state() == ("unknown", 1, 0, "PayFiP down")
    assert ledger.note_check(store, id_op, "return", "pending") == \
        ledger.Outcome(id_op, "pending", "pending", "FA-2026-00102", "")
    assert state() == ("pending", 2, 0, None)
    assert ledger.note_check(store, id_op, "notification", "pending").action == "pending"
    assert state() == ("pending", 3, 1, None)


def test_an_objet_rule_giving_nothing_is_an_empty_objet_not_the_word_none(store, exported,
                                                                          tmp_path):
    """payfip.objet's expression giving nothing (a field the scope does not have) is an
    empty objet, refused naming the rule: never the text 'None' sent as the label the
    family is shown."""
    mapping_path, (line,) = mapping_copy(tmp_path, MAPPING, (
        "objet: {expr: \"('CONSERVATOIRE VSL FACTURE ' ~ invoice.number) | payfip_text\"}",
        'objet: {expr: "invoice.label"}'), name="objet.yaml")
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, mapping_path=mapping_path)
    [problem] = info.value.problems
    assert (problem.rule, problem.mapping) == ("payfip.objet",
                                               f"{mapping_path}:{line}: payfip.objet")
    assert problem.message.startswith("objet: is empty: ")


def test_a_url_given_on_the_command_line_is_refused_without_naming_the_mapping(
        store, exported, tmp_path):
    """A notification or return URL given (--notify-url, --return-url) that PayFiP would
    not take is refused as given: the problem names no mapping line, though the mapping
    sets payfip.notify_url (the return URL made from a given notification URL: none
    either)."""
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, notify_url="/payfip/notification")
    assert [(p.rule, p.mapping) for p in info.value.problems] == [
        ("payfip.urlnotif", None), ("payfip.urlredirect", None)]
    assert info.value.problems[1].message == (
        "urlredirect: '/payfip/retour' must be an absolute http(s) URL")
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, return_url="retour")
    assert [(p.rule, p.mapping) for p in info.value.problems] == [("payfip.urlredirect", None)]
    # as given when the mapping sets payfip.return_url too
    returned, _ = mapping_copy(tmp_path, MAPPING, (
        "  notify_url: http://127.0.0.1:8765/payfip/notification\n",
        "  notify_url: http://127.0.0.1:8765/payfip/notification\n"
        "  return_url: https://ecole.example.org/retour\n"), name="returned.yaml")
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, mapping_path=returned, return_url="retour")
    assert [(p.rule, p.mapping) for p in info.value.problems] == [("payfip.urlredirect", None)]


def test_a_tipi_link_has_the_url_protocol_s_own_maximum(store, tmp_path):
    """The legacy URL protocol (TIPI, urlcl) takes at most 9 999,99 EUR, the web service
    100 000,00: an invoice of 12 000,00 gets a link, and no TIPI link (rule
    payfip.montant, naming the URL protocol's maximum), nothing else said."""
    import json

    from pesgen.runs import export_recorded

    from .payfip_support import INPUT, RUN_DATE

    data = json.loads(INPUT.read_text(encoding="utf-8"))
    [big] = [i for i in data["invoices"] if i["number"] == "FA-2026-00104"]
    [line] = big["lines"]
    line["unit_price"] = line["amount"] = big["total"] = "12000.00"
    source = tmp_path / "big.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    export_recorded(lambda: store, MAPPING, source, tmp_path / "out", RUN_DATE)
    request, _, _ = _request(store, "FA-2026-00104")
    assert request.montant == 1_200_000
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, "FA-2026-00104", what="TIPI link",
                 urlcl="https://ecole.example.org/tipi/retour")
    assert [(p.rule, p.message) for p in info.value.problems] == [
        ("payfip.montant", "montant: 1200000 cents is above PayFiP's maximum of 999999 cents")]


def test_a_tipi_link_s_bad_urlcl_is_said_with_the_request_s_other_problems(store, exported):
    """Every problem at once: a TIPI link's urlcl PayFiP would not take is said beside
    the request's other problems (a bad e-mail here), not after they are fixed."""
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store, mel="no-address", what="TIPI link", urlcl="ftp://x/y")
    assert [p.rule for p in info.value.problems] == ["payfip.mel", "payfip.urlcl"]
    assert info.value.problems[1].message == "urlcl: 'ftp://x/y' must be an absolute http(s) URL"


def test_a_refdet_another_collectivity_of_the_same_payfip_client_used_is_refused(store,
                                                                                exported):
    """refdet unique per PayFiP client (numcli, the régie): an operation another
    collectivity made with the same numcli and refdet makes the refdet ambiguous in
    PayFiP's results (rule payfip.refdet-unique, naming that invoice and operation)."""
    ledger.record_operation(store, {
        "id_op": "0d1a5c3e-0000-4000-8000-0000000000e9", "id_coll": "21450999400099",
        "invoice": "FA/2026/00102", "run_id": None, "numcli": "012345", "exer": "2026",
        "refdet": "FA202600102", "amount_cents": 1000, "mel": MEL, "objet": "FACTURE",
        "saisie": "W", "endpoint": "http://payfip.invalid/tpa"})
    with pytest.raises(PayfipRequestInvalid) as info:
        _request(store)
    [problem] = info.value.problems
    assert problem.rule == "payfip.refdet-unique"
    assert problem.message.startswith(
        "refdet: 'FA202600102' is also invoice FA/2026/00102's (PayFiP operation "
        "0d1a5c3e-0000-4000-8000-0000000000e9 was made for it with it)")


# ---------------------------------------------------------------------- receiver.create_app


def _asgi(app, path: str, body: bytes) -> list[dict]:
    """One POST to the ASGI app as a server that gives no client address (a Unix socket,
    some proxies) calls it: the messages the app sent back."""
    import asyncio

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": None, "server": ("x", 80),
             "headers": [(b"host", b"x"),
                         (b"content-type", b"application/x-www-form-urlencoded")]}
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_notification_without_a_client_address_is_answered(store, exported):
    """A server that gives the receiver no client address: the notification is still
    processed (an unknown idOp: 404, recorded as an anomaly), its flood limit counted
    for an unknown sender, not a server error."""
    from pesgen.payfip.receiver import UnknownLimiter, create_app

    def factory(endpoint):
        raise AssertionError("PayFiP is not asked about an idOp pesgen never issued")

    limiter = UnknownLimiter(limit=1)
    app = create_app(store, factory, limiter)
    forged = "0d1a5c3e-0000-4000-8000-0000000000ee"
    sent = _asgi(app, "/payfip/notification", f"idop={forged}".encode())
    assert sent[0]["status"] == 404
    assert [(a["kind"], a["id_op"]) for a in ledger.list_anomalies(store)] == [
        ("unknown-idop", forged)]
    assert not limiter.allows("?")


def test_the_flood_limit_slides_each_unknown_idop_out_of_its_window_on_its_own():
    """The window slides: an unknown idOp older than the window no longer counts though
    a later one, still within it, does (not all kept until the latest is out)."""
    from pesgen.payfip.receiver import UnknownLimiter

    now = [0.0]
    limiter = UnknownLimiter(limit=2, window=60, clock=lambda: now[0])
    limiter.unknown("203.0.113.9")
    now[0] = 50.0
    limiter.unknown("203.0.113.9")
    assert not limiter.allows("203.0.113.9")  # 2 within the last 60 s
    now[0] = 70.0  # the first is 70 s old: 1 left
    assert limiter.allows("203.0.113.9")
    limiter.unknown("203.0.113.9")
    assert not limiter.allows("203.0.113.9")


# ------------------------------------- JSON reports of a refusal (mutation run, session 40)


def test_anomalies_and_reconcile_as_json_report_their_refusal_as_json(tmp_path):
    """`payfip anomalies --format json` and `payfip reconcile --format json` refused (no
    store there; a --since no calendar has) print the JSON report a monitoring script
    reads, ok false with the error, its problems (json40: none for these) and the text's
    exit code, and nothing on stderr; reconcile's with its counts, anomalies and operations
    empty (nothing was asked)."""
    import json

    from typer.testing import CliRunner

    from pesgen.cli import app
    from pesgen.errors import ExitCode

    missing = f"sqlite:///{tmp_path / 'none.db'}"
    result = CliRunner().invoke(app, ["payfip", "anomalies", "--format", "json",
                                      "--db", missing])
    assert (result.exit_code, result.stderr) == (ExitCode.STATE, ""), result.output
    report = json.loads(result.stdout)
    assert (report["command"], report["ok"], report["exit_code"]) == (
        "payfip anomalies", False, int(ExitCode.STATE))
    assert report["error"].startswith(f"no pesgen store at {tmp_path / 'none.db'} "), report
    assert not (tmp_path / "none.db").exists()
    result = CliRunner().invoke(app, ["payfip", "reconcile", "--format", "json", "--since",
                                      "2026-13-01", "--db", missing])
    assert (result.exit_code, result.stderr) == (ExitCode.USAGE, ""), result.output
    assert json.loads(result.stdout) == {
        "command": "payfip reconcile", "ok": False, "exit_code": int(ExitCode.USAGE),
        "error": "--since: 2026-13-01 is not a day of the calendar (YYYY-MM-DD)",
        "problems": [], "counts": {}, "anomalies": {}, "operations": []}


def test_resolve_without_by_where_no_login_name_is_known_asks_for_by(tmp_path, monkeypatch):
    """`anomalies resolve` records who decided: without --by, the login name; where none
    is known (a container without one), it is refused asking for --by (exit 2), before
    any store is opened, not recorded by nobody."""
    import getpass

    from typer.testing import CliRunner

    from pesgen.cli import app
    from pesgen.errors import ExitCode

    def no_login() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login)
    result = CliRunner().invoke(app, ["payfip", "anomalies", "resolve", "1", "--note",
                                      "refunded", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "error: who resolves it? give --by NAME" in result.stderr, result.stderr
