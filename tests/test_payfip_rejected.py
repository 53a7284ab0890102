# ruff: noqa: F811 - the fixture imported from test_ack_cancel is injected by name
"""A title of a bordereau the trésorerie rejected (its Hélios status, `pesgen acquit
--record`), not cancelled yet, is not in Hélios: `payfip link` and `payfip tipi-url`
refuse it before anything is sent (rule payfip.rejected, exit 7); `pesgen acquit
--record` recording a rejection says which PayFiP links are still open on its titles.
On SQLite and on a real PostgreSQL server (PESGEN_TEST_PG_URL, see test_store)."""

from __future__ import annotations

import json
import shlex

import sqlalchemy as sa

from pesgen.errors import ExitCode
from pesgen.payfip import ledger
from pesgen.payfip.tables import operations
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import run_cli
from .test_ack_cancel import EXAMPLE, MAPPING, RUN, acknowledged  # noqa: F401 - fixture
from .test_acquit_record import _ack, _element
from .test_cancel import split_mapping

URLCL = "https://ecole.example.org/tipi/retour"
NOWHERE = "http://127.0.0.1:9/tpa"  # nothing listens: a request sent would fail, exit 8
COLL = "21450999400015"


def _tipi(db_url: str, invoice: str):
    return run_cli("payfip", "tipi-url", "-m", MAPPING, "-n", invoice, "--urlcl", URLCL,
                   "--db", db_url)


def _link(db_url: str, *invoices: str):
    return run_cli("payfip", "link", "-m", MAPPING, *(x for i in invoices for x in ("-n", i)),
                   "--endpoint", NOWHERE, "--notify-url",
                   "http://127.0.0.1:8765/payfip/notification", "--timeout", "2",
                   "--mode", "W", "--db", db_url)


def _operations(db_url: str) -> int:
    with Store(db_url).engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(operations)).scalar()


def test_link_and_tipi_url_refuse_a_title_of_a_rejected_bordereau(acknowledged):
    """IdBord 2 rejected (ack.xml), not cancelled: no link, no TIPI URL for its titles,
    exit 7 as for a paid or cancelled one, naming the rejection, its acquit and the next
    step; nothing sent. IdBord 1 (accepted) and 3 (no acknowledgement) are paid as
    before."""
    db_url, run = acknowledged
    said = (f"error: invoice FA-2026-00105: its title (IdBord 2 of run {run}) is in a "
            "bordereau the trésorerie rejected: rejected on 2026-11-24 with 1 error(s) "
            "(ack.xml), not cancelled yet; no ")
    # its commands name the store --db gave (they named none: sup64)
    db = f" --db {shlex.quote(db_url)}"
    step = ("the trésorerie does not hold the title, a family must not pay it. `pesgen "
            f"acquit ack.xml{db}` gives the command that cancels the bordereau; then export "
            "the invoice again, and make the payment for its new title. If the trésorerie "
            "took the bordereau since, after a fix on its side, record its new "
            f"acknowledgement: `pesgen acquit FILE --record --replace{db}` (FILE: its new "
            "PES_ACQUIT)\n")
    tipi = _tipi(db_url, "fa-2026-00105")
    assert tipi.exit_code == ExitCode.STATE == 7, tipi.output
    assert tipi.stdout == ""  # no URL
    assert f"{said}TIPI link: {step}" in tipi.stderr
    assert (f"  - ack.xml:{_line(db_url, run)} invoice FA-2026-00105: IdBord 2 of run {run} "
            "rejected by the trésorerie: rejected on 2026-11-24 with 1 error(s), not "
            "cancelled yet: no TIPI link for a title the trésorerie does not hold (rule "
            "payfip.rejected)\n") in tipi.stderr
    link = _link(db_url, "FA-2026-00105")
    assert link.exit_code == ExitCode.STATE, link.output
    assert link.stdout == ""
    assert f"{said}new link: {step}" in link.stderr
    assert "(rule payfip.rejected)" in link.stderr
    assert _operations(db_url) == 0  # nothing sent to PayFiP, nothing recorded
    # the accepted bordereau's title and the one without acknowledgement: as before
    for invoice in ("FA-2026-00101", "FA-2026-00111"):
        ok = _tipi(db_url, invoice)
        assert ok.exit_code == 0, ok.output
        assert f"refdet={invoice.replace('-', '')}" in ok.stdout


def test_a_batch_with_a_title_of_a_rejected_bordereau_sends_nothing(acknowledged):
    db_url, run = acknowledged
    r = _link(db_url, "FA-2026-00101", "FA-2026-00107", "FA-2026-00111")
    assert r.exit_code == ExitCode.STATE, r.output  # not 8: nothing was sent
    assert ("error: 1 of 3 invoice(s) refused: FA-2026-00107; nothing was sent, for them "
            "nor for the others (FA-2026-00101, FA-2026-00111: give them again without the "
            "refused ones)") in r.stderr
    assert (f"  invoice FA-2026-00107: its title (IdBord 2 of run {run}) is in a bordereau "
            "the trésorerie rejected") in r.stderr
    assert "(rule payfip.rejected)" in r.stderr
    assert _operations(db_url) == 0


def test_a_rejection_replaced_by_an_acceptance_or_cancelled_ends_the_refusal(
        acknowledged, tmp_path):
    db_url, run = acknowledged
    # accepted after a fix on the trésorerie's side (--replace): paid as any title
    ok = _ack(tmp_path, "ok.xml", _element(2, True))
    assert run_cli("acquit", ok, "--db", db_url, "--record", "--replace").exit_code == 0
    assert _tipi(db_url, "FA-2026-00105").exit_code == 0
    # rejected again, then cancelled: in no active run (its invoice may be exported again)
    no = _ack(tmp_path, "no.xml", _element(2, False, "ERREUR_AUTRE"))
    assert run_cli("acquit", no, "--db", db_url, "--record", "--replace").exit_code == 9
    assert _tipi(db_url, "FA-2026-00105").exit_code == ExitCode.STATE
    Store(db_url).cancel(run, "trésorerie rejected IdBord 2", [2])
    gone = _tipi(db_url, "FA-2026-00105")
    assert gone.exit_code == ExitCode.STATE
    assert "in no active run" in gone.stderr and "payfip.rejected" not in gone.stderr


def _line(db_url: str, run: str) -> int:
    [ack] = Store(db_url).acknowledgements([run])[run][2]
    return ack.line


# ------------------------------------------------------------------ acquit --record


def _op(store: Store, run: str, id_op: str, invoice: str, saisie: str = "W") -> None:
    ledger.record_operation(store, {
        "id_op": id_op, "id_coll": COLL, "invoice": invoice, "run_id": run,
        "numcli": "123456", "exer": "2026", "refdet": invoice.replace("-", ""),
        "amount_cents": 18750, "mel": "famille@example.org", "objet": "Cantine",
        "saisie": saisie, "endpoint": "http://127.0.0.1:1/"})


def test_recording_a_rejection_names_the_payfip_links_open_on_its_titles(db_url, tmp_path):
    """Links made before the rejection came: a family may still pay through them a title
    the trésorerie does not hold. `acquit --record` lists the production ones (not a test
    link, not one of the accepted bordereau) among what is to check, with what to do; the
    exit stays 9 (something is rejected)."""
    store = Store(db_url)
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "o",
                          RUN).run_id
    _op(store, run, "op-105", "FA-2026-00105")
    _op(store, run, "op-107", "FA-2026-00107", saisie="T")  # a test link: no money
    _op(store, run, "op-101", "FA-2026-00101")  # IdBord 1, accepted
    ack = _ack(tmp_path, "ack.xml", _element(1, True), _element(2, False, "ERREUR_AUTRE"))
    r = run_cli("acquit", ack, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    created = ledger.get_operation(store, "op-105")["created_at"]
    assert "1 rejected, 1 to check (listed at the end)" in r.stdout.splitlines()[0]
    listed = r.stdout.split("and 1 to check beside the 1 rejected (exit 9):\n")[1]
    assert listed.startswith(
        "  - IdBord 2 exercise 2026 (line 37): rejected, and 1 PayFiP link(s) of its titles "
        f"still open: FA-2026-00105 (operation op-105, 187.50, saisie W, pending since "
        f"{created}); next: a family paying through one pays a title the trésorerie does "
        "not hold (the money reaches the régie all the same), and one pending may be paid "
        f"already, its notification lost (`pesgen payfip reconcile --db {db_url}` asks "
        "PayFiP): tell the régisseur and do not send these links again; the command that "
        f"cancels the bordereau (`pesgen acquit {ack} --db {db_url}` gives it) then needs "
        "--despite-payments")
    assert "op-107" not in r.stdout and "op-101" not in r.stdout
    # --json: the same, in to_check; reading it again (nothing new recorded) says it again
    data = json.loads(run_cli("acquit", ack, "--db", db_url, "--record", "--json").stdout)
    [entry] = data["to_check"]
    assert (entry["bordereau"], entry["reasons"]) == (2, ["payfip-open"])
    assert "FA-2026-00105 (operation op-105" in entry["said"]
    # without --record, nothing is looked up (the rejection is read, not recorded)
    assert "payfip" not in run_cli("acquit", ack, "--db", db_url).stdout.lower()
    # accepted since (--replace): this file read again lists no link of IdBord 2
    ok = _ack(tmp_path, "ok.xml", _element(2, True))
    assert run_cli("acquit", ok, "--db", db_url, "--record", "--replace").exit_code == 0
    replaced = run_cli("acquit", ack, "--db", db_url, "--record")
    assert replaced.exit_code == ExitCode.REJECTED, replaced.output
    assert "to check" not in replaced.stdout and "op-105" not in replaced.stdout
    # rejected again, then the bordereau cancelled: its links are run-cancelled's
    no = _ack(tmp_path, "no.xml", _element(2, False, "ERREUR_AUTRE"))
    assert "op-105" in run_cli("acquit", no, "--db", db_url, "--record",
                               "--replace").stdout
    store.cancel(run, "trésorerie rejected IdBord 2", [2], despite_payments=True)
    cancelled = run_cli("acquit", no, "--db", db_url, "--record")
    assert cancelled.exit_code == ExitCode.REJECTED, cancelled.output
    assert "op-105" not in cancelled.stdout
    # the link resolved: nothing open, nothing to check beside the rejection
    ledger.expire(store, "op-105", "reconcile", "P1")
    again = run_cli("acquit", ack, "--db", db_url, "--record")
    assert again.exit_code == ExitCode.REJECTED
    assert "to check" not in again.stdout


class _RejectedMeanwhile:
    """A PayFiP client during whose creation of the operation support records the
    trésorerie's rejection of the title's bordereau (`acquit --record --replace`)."""

    endpoint = "http://127.0.0.1:1/tpa"

    def __init__(self, db_url: str, ack) -> None:
        self.db_url, self.ack = db_url, ack

    def creer_paiement_securise(self, request) -> str:
        assert run_cli("acquit", self.ack, "--db", self.db_url, "--record",
                       "--replace").exit_code == ExitCode.REJECTED
        return "op-meanwhile"

    def payment_url(self, id_op: str) -> str:
        return f"{self.endpoint}/paiement.web?idop={id_op}"


def test_a_rejection_recorded_while_payfip_makes_the_operation_refuses_the_link(
        acknowledged, tmp_path, monkeypatch):
    """Found not rejected, then rejected while PayFiP made the operation: the operation
    is recorded (PayFiP issued it), its link refused, exit 7, rule payfip.rejected; and
    `acquit --record` lists it as a link open on the rejected bordereau: the refusal
    gives that command with the acquit's name and the store (it said `acquit FILE
    --record`, FILE "that acquit, named above", and no --db: sup64), run as printed
    where the acquit is."""
    import pytest

    from pesgen.errors import StateError
    from pesgen.payfip.service import create_link

    db_url, run = acknowledged
    store = Store(db_url, chosen_by="--db")
    no = _ack(tmp_path, "no.xml", _element(1, False, "ERREUR_AUTRE"))
    with pytest.raises(StateError) as info:
        create_link(store, MAPPING, "FA-2026-00101", mode="W",
                    notify_url="http://127.0.0.1:8765/payfip/notification",
                    client=_RejectedMeanwhile(db_url, no))
    assert str(info.value).startswith(
        "invoice FA-2026-00101: the trésorerie's rejection of its title's bordereau was "
        "recorded while PayFiP made operation op-meanwhile (IdBord 1 of run "
        f"{run}, rejected by the trésorerie: rejected on 2026-11-24 with 1 error(s) "
        "(no.xml)); the operation is recorded, but do not send its link: no link")
    assert [p.rule for p in info.value.problems] == ["payfip.rejected"]
    assert ledger.get_operation(store, "op-meanwhile")["status"] == "pending"
    command = f"pesgen acquit no.xml --record --db {shlex.quote(db_url)}"
    assert str(info.value).endswith(f"; `{command}` lists the link as open)"), info.value
    monkeypatch.chdir(tmp_path)  # where no.xml is
    again = run_cli(*shlex.split(command)[1:])
    assert "FA-2026-00101 (operation op-meanwhile, " in again.stdout, again.output


def test_every_link_open_on_a_rejected_bordereau_s_titles_is_said_each_bordereau_its_own(
        db_url, tmp_path):
    """The links of the rejected bordereaux are read once for all of them (a query per
    bordereau took minutes for thousands): each rejection still says every link open on
    its own titles, two for IdBord 2, one for IdBord 3, and none of the accepted IdBord
    1's."""
    from pesgen.acquit import payfip_open, read_acquit, record, tie

    store = Store(db_url)
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "o",
                          RUN).run_id
    titles = {n: sorted(store.piece_invoices(run, n).values()) for n in (1, 2, 3)}
    _op(store, run, "op-a", titles[2][0])
    _op(store, run, "op-b", titles[2][1])
    _op(store, run, "op-c", titles[3][0])
    _op(store, run, "op-d", titles[1][0])
    ack = _ack(tmp_path, "ack.xml", _element(1, True), _element(2, False, "ERREUR_AUTRE"),
               _element(3, False, "ERREUR_AUTRE"))
    report = tie(read_acquit(ack), store)
    record(report, store)
    said = {x.bordereau: x.said for x in payfip_open(report, store)}
    assert sorted(said) == [2, 3]
    assert "rejected, and 2 PayFiP link(s) of its titles still open: " in said[2]
    assert said[2].index(f"{titles[2][0]} (operation op-a, ") < said[2].index(
        f"{titles[2][1]} (operation op-b, ")
    assert "rejected, and 1 PayFiP link(s) of its titles still open: " in said[3]
    assert f"{titles[3][0]} (operation op-c, " in said[3]
    assert "op-d" not in said[2] + said[3] and "op-c" not in said[2]
