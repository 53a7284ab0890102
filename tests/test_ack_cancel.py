"""`runs cancel` reads the trésorerie's acknowledgements (`pesgen acquit --record`): a
bordereau it accepted is cancelled only once it annulled the titles on its side
(--annulled-by-tresorerie, recorded with the reason); `pesgen acquit` without --record
says what is recorded already. On SQLite and on a real PostgreSQL server
(PESGEN_TEST_PG_URL, see test_store)."""

from __future__ import annotations

import hashlib
import json
import shlex
from datetime import date

import pytest

from pesgen.errors import ExitCode, StateError
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, package_store, run_cli
from .test_acquit import ACKS
from .test_acquit_record import _ack, _element
from .test_cancel import BORDEREAUX, split_mapping

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"


@pytest.fixture
def acknowledged(db_url, tmp_path) -> tuple[str, str]:
    """The example in bordereaux of 4 (IdBord 1-3): 1 accepted, 2 rejected, 3 without
    acknowledgement, recorded from ack.xml (IdBord 1 at its line 31): (url, run)."""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE, tmp_path / "o",
                          RUN).run_id
    ack = _ack(tmp_path, "ack.xml", _element(1, True), _element(2, False, "ERREUR_AUTRE"))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    return db_url, run


def _active(db_url: str, id_bord: int) -> set[bool]:
    store = Store(db_url)
    return {f["active"] for inv in BORDEREAUX[id_bord] for f in store.find_invoice(inv)}


def test_a_bordereau_the_tresorerie_accepted_is_not_cancelled(acknowledged):
    """Its titles exist at the trésorerie: cancelling it would let its invoices be billed
    again. Refused, exit 7, naming the bordereau, its acquit and what to do."""
    db_url, run = acknowledged
    r = run_cli("runs", "cancel", run[:8], "--bordereau", "1", "--reason", "wrong amounts",
                "--db", db_url)
    assert r.exit_code == ExitCode.STATE == 7, r.output
    assert (f"error: run {run}: the trésorerie accepted IdBord 1; nothing cancelled. Their "
            "titles exist at the trésorerie: exported again, their invoices would bill the "
            "families twice.") in r.stderr
    assert "bordereau d'annulation/réduction" in r.stderr
    assert "--annulled-by-tresorerie" in r.stderr
    assert ("  - ack.xml:31: IdBord 1 accepted on 2026-11-24 by the trésorerie (recorded "
            in r.stderr)
    assert "from ack.xml): its titles exist at the trésorerie (rule run.cancel-accepted)" \
        in r.stderr
    assert _active(db_url, 1) == {True}
    assert Store(db_url).get_run(run)["cancelled_bordereaux"] == {}


def test_a_whole_run_with_an_accepted_bordereau_is_refused_naming_only_that_one(
        acknowledged):
    db_url, run = acknowledged
    with pytest.raises(StateError) as info:
        Store(db_url).cancel(run, "all of it", whole=True)
    assert str(info.value).startswith(f"run {run}: the trésorerie accepted IdBord 1; "
                                      "nothing cancelled")
    assert [(p.rule, p.record) for p in info.value.problems] == [
        ("run.cancel-accepted", "ack.xml:31")]
    assert "IdBord 2" not in str(info.value) and "IdBord 3" not in str(info.value)
    assert _active(db_url, 1) == _active(db_url, 2) == _active(db_url, 3) == {True}
    assert Store(db_url).get_run(run)["status"] == "committed"


def test_a_rejected_bordereau_cancels_as_before_and_one_without_answer_says_to_check(
        acknowledged):
    db_url, run = acknowledged
    rejected = run_cli("runs", "cancel", run, "--bordereau", "2", "--reason",
                       "trésorerie rejected IdBord 2", "--db", db_url)
    assert rejected.exit_code == 0, rejected.output
    # support's "how do we send them again without sending the others twice?": the next
    # step says which invoices, and what refuses the school's whole file
    assert rejected.stdout == (
        f"run {run}: IdBord 2 cancelled: its 4 invoice(s) can be exported again; IdBord 1, "
        f"3 stay active\nnext: export again only the invoices of IdBord 2 (`pesgen runs show "
        f"{run} --invoices --db {shlex.quote(db_url)}` lists them); an export of the "
        "school's whole file is refused for "
        "the invoices IdBord 1, 3 still hold, unless the mapping's "
        "policies.already_exported: leave_out leaves them out (docs/state.md, A rejected "
        "bordereau)\n")
    # no acknowledgement note: only the files of IdBord 2 left in the folder are named
    assert rejected.stderr.startswith("note: cancelled, still in ") and \
        rejected.stderr.count("\n") == 1 and "_0000002.xml" in rejected.stderr, rejected.stderr
    assert _active(db_url, 2) == {False}
    silent = run_cli("runs", "cancel", run, "--bordereau", "3", "--reason", "no answer",
                     "--db", db_url)
    assert silent.exit_code == 0, silent.output
    assert silent.stdout.startswith(f"run {run}: IdBord 3 cancelled: its 3 invoice(s) can "
                                    "be exported again; IdBord 1 stays active\nnext: ")
    assert "for the invoices IdBord 1 still holds, unless" in silent.stdout
    ack, files = silent.stderr.splitlines()
    # a number is never given again: one whose file was never sent leaves a gap in the
    # numbers the trésorerie receives, said so (support's "we exported the wrong file")
    assert ack == (
        "note: no acknowledgement recorded for IdBord 3: check that none came from the "
        f"trésorerie (`pesgen acquit FILE --record --db {shlex.quote(db_url)}` records it; "
        "FILE: the PES_ACQUIT the trésorerie's guichet XML returned for it). If it accepted "
        "it, the "
        "titles exist at the trésorerie: exporting their invoices again bills the families "
        "twice. If its file was never sent, IdBord 3 is not given again all the same: the "
        "trésorerie will receive the next number without it, and Hélios checks that "
        "bordereau numbers follow each other (whether it accepts a gap is not confirmed): "
        "tell the trésorerie that IdBord 3 was cancelled before sending (docs/state.md, "
        "Numbering)")
    assert files.startswith("note: cancelled, still in ") and "_0000003.xml" in files, files
    assert _active(db_url, 3) == {False}


def test_annulled_by_the_tresorerie_cancels_and_is_recorded_and_shown(acknowledged):
    db_url, run = acknowledged
    r = run_cli("runs", "cancel", run, "--all", "--annulled-by-tresorerie", "--reason",
                "titres annulés par la trésorerie (bordereau d'annulation 7)", "--db", db_url)
    assert r.exit_code == 0, r.output
    reason = ("titres annulés par la trésorerie (bordereau d'annulation 7) [annulled by the "
              "trésorerie, confirmed with --annulled-by-tresorerie: IdBord 1 accepted on "
              "2026-11-24 (ack.xml)]")
    head, step, said = r.stdout.splitlines()
    assert head == f"run {run} cancelled (IdBord 1, 2, 3): its 11 invoice(s) can be exported again"
    # the titles annulled, their invoices to bill again: the export to run (test_cancel)
    assert step.startswith("next: correct the input (or take the right file), then "), step
    assert said == f"recorded reason: {reason}"
    # IdBord 3 has no acknowledgement recorded: said, as for any cancellation
    assert r.stderr.startswith("note: no acknowledgement recorded for IdBord 3: ")
    record = Store(db_url).get_run(run)
    assert (record["status"], record["cancel_reason"]) == ("cancelled", reason)
    shown = run_cli("runs", "show", run, "--db", db_url).stdout
    assert f"  cancelled   {record['cancelled_at']}: {reason}\n" in shown
    assert _active(db_url, 1) == {False}


def test_annulled_by_the_tresorerie_on_one_bordereau_is_recorded_with_it(acknowledged):
    db_url, run = acknowledged
    done = Store(db_url).cancel(run, "annulled", [1], annulled_by_tresorerie=True)
    assert done.reason == ("annulled [annulled by the trésorerie, confirmed with "
                           "--annulled-by-tresorerie: IdBord 1 accepted on 2026-11-24 "
                           "(ack.xml)]")
    assert (done.bordereaux, done.still_active) == ((1,), (2, 3))
    assert done.acknowledgements[1].accepted
    assert Store(db_url).get_run(run)["cancelled_bordereaux"][1]["reason"] == done.reason
    shown = run_cli("runs", "show", run, "--db", db_url).stdout
    assert f": {done.reason}\n" in shown
    # given for a bordereau without acceptance recorded, the confirmation says so
    other = Store(db_url).cancel(run, "by phone", [3], annulled_by_tresorerie=True)
    assert other.reason == ("by phone [annulled by the trésorerie, confirmed with "
                            "--annulled-by-tresorerie; no acceptance recorded]")


def test_an_accepted_bordereau_later_rejected_with_replace_cancels_as_rejected(
        db_url, tmp_path):
    """The bordereau's status decides, not its history."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record").exit_code == 0
    with pytest.raises(StateError, match="the trésorerie accepted IdBord 1"):
        Store(db_url).cancel(run, "x")
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record",
                   "--replace").exit_code == 9
    assert Store(db_url).cancel(run, "rejected after all").run.status == "cancelled"


def test_a_finance_package_run_is_cancelled_without_acknowledgement_note(tmp_path):
    """A finance package sends its own PES: pesgen records no acknowledgement of its
    runs, and does not ask for one."""
    db = package_store(tmp_path)
    [run] = Store(f"sqlite:///{db}").list_runs()
    r = run_cli("runs", "cancel", run.id, "--reason", "again", "--db", db)
    assert r.exit_code == 0, r.output
    # no acknowledgement note: only its files left in the folder are named
    assert r.stderr == (f"note: cancelled, still in {(tmp_path / 'out').resolve()}: "
                        "WTAMC001.txt, WTAMC001AS.txt, WTAMC001_TSOL.txt: do not send or "
                        "import them; move them aside\n"), r.stderr


# ------------------------------------------------------------------ acquit, read only

def _said(stdout: str) -> list[str]:
    return [ln for ln in stdout.splitlines() if ln.startswith("  recorded already")]


def test_acquit_without_record_says_what_is_recorded_already(db_url, tmp_path):
    """The same answer (from this file, or another), or another one, with what --record
    would then do; the command for a rejection is unchanged."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
    before = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url)
    assert _said(before.stdout) == []
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url,
                   "--record").exit_code == 9
    [ack] = Store(db_url).acknowledgements()[run][1]
    again = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url)
    assert again.exit_code == 9
    assert _said(again.stdout) == [
        "  recorded already: rejected on 2026-11-24 with 3 error(s), from this file (line 31, "
        f"recorded {ack.recorded_at}): the same answer"]
    # the rest of the report is as before, the command to cancel the rejection included,
    # but for the last line read before recording it, which said it was not recorded
    assert before.stdout.splitlines()[-1].startswith("not recorded: the rejection of IdBord 1")
    assert [ln for ln in again.stdout.splitlines() if not ln.startswith("  recorded")] == \
        before.stdout.splitlines()[:-1]
    other = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url)
    # an answer other than the status recorded is not "all accepted": which stands is to
    # be asked (it was exit 0, the report's line alone saying it)
    assert other.exit_code == ExitCode.TO_CHECK, other.output
    assert other.stdout.splitlines()[-2:] == [
        "not all fine: 1 to check (exit 10):",
        "  - IdBord 1 exercise 2026 (line 31): accepted by this file, where its status "
        "recorded is rejected on 2026-11-24 with 3 error(s) (from rejected.xml); next: ask "
        "the trésorerie which answer stands; if this file's, `pesgen acquit "
        f"{shlex.quote(str(ACKS / 'accepted.xml'))} --db {shlex.quote(db_url)} --record "
        "--replace` makes it the bordereau's status (the one recorded stays in its history)"]
    assert _said(other.stdout) == [
        "  recorded already otherwise: rejected on 2026-11-24 with 3 error(s), from "
        f"rejected.xml (line 31, recorded {ack.recorded_at}): `--record` refuses this file "
        "unless --replace, which makes this answer its status (the one recorded stays in its "
        "history)"]
    copy = tmp_path / "PES_ACQUIT_copy.xml"
    copy.write_bytes((ACKS / "rejected.xml").read_bytes().replace(
        b'<DteStr V="2026-11-24"/>', b'<DteStr V="2026-11-25"/>'))
    assert _said(run_cli("acquit", copy, "--db", db_url).stdout) == [
        "  recorded already: rejected on 2026-11-24 with 3 error(s), from rejected.xml (line "
        f"31, recorded {ack.recorded_at}): the same answer"]
    # with --record, the recording says it instead, once
    recorded = run_cli("acquit", copy, "--db", db_url, "--record")
    assert _said(recorded.stdout) == []
    assert "  already recorded: IdBord 1 exercise 2026 (line 31)" in recorded.stdout


def test_a_rejection_with_other_errors_than_the_one_recorded_says_its_own(db_url, tmp_path):
    """Read without --record, a rejection of a bordereau recorded rejected with other
    errors was 'rejected by this file, where its status recorded is rejected on … with 3
    error(s)': what differs was not said. This file's errors are counted, and the same
    verdict with other errors said so."""
    export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "o", RUN)
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url,
                   "--record").exit_code == 9
    text = (ACKS / "rejected.xml").read_bytes()
    start = text.index(b"      <Erreur>")  # the bordereau's own error, its first
    end = text.index(b"</Erreur>", start) + len(b"</Erreur>\n")
    other = tmp_path / "rejected-again.xml"
    other.write_bytes(text[:start] + text[end:])
    r = run_cli("acquit", other, "--db", db_url)
    assert r.exit_code == 9, r.output
    assert ("  - IdBord 1 exercise 2026 (line 31): rejected with 2 error(s) by this file, "
            "where its status recorded is rejected on 2026-11-24 with 3 error(s) (from "
            "rejected.xml): the same verdict, other errors; next: ask the trésorerie which "
            "answer stands") in r.stdout, r.stdout


def test_acquit_json_gives_what_is_recorded_already(db_url, tmp_path):
    import json

    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
    fresh = json.loads(run_cli("acquit", ACKS / "accepted.xml", "--db", db_url,
                               "--json").stdout)
    assert fresh["elements"][0]["recorded"] is None
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record").exit_code == 9
    [ack] = Store(db_url).acknowledgements()[run][1]
    data = json.loads(run_cli("acquit", ACKS / "accepted.xml", "--db", db_url,
                              "--json").stdout)
    assert data["elements"][0]["recorded"] == {
        "accepted": False, "issued_on": "2026-11-24", "errors": 3, "file": "rejected.xml",
        "sha256": ack.sha256, "line": 31, "recorded_at": ack.recorded_at,
        "same_answer": False, "same_file": False}
    assert [(x["bordereau"], x["reasons"]) for x in data["to_check"]] == [
        (1, ["recorded-otherwise"])]
    # an element tied to no run of the store has none
    rejected = json.loads(run_cli("acquit", ACKS / "rejected.xml", "--db", db_url,
                                  "--json").stdout)
    assert rejected["elements"][0]["recorded"]["same_file"] is True
    assert rejected["to_check"] == []  # the same answer as recorded: nothing to check
    assert rejected["elements"][1]["recorded"] is None


def test_acquit_of_an_accepted_bordereau_annulled_then_cancelled_says_so(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record").exit_code == 0
    done = Store(db_url).cancel(run, "titres annulés", annulled_by_tresorerie=True)
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url)
    at = Store(db_url).get_run(run)["cancelled_at"]
    assert (f"IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): accepted; cancelled in "
            f"pesgen {at}, its titles annulled by the trésorerie ({done.reason})\n"
            ) in r.stdout
    assert "tell the trésorerie, which took it" not in r.stdout


def test_annulment_confirmed_for_one_bordereau_of_a_run_cancelled_whole_is_that_one_s(
        db_url, tmp_path):
    """A run cancelled whole before the acquit came, which accepted IdBord 1 and 3: the
    annulment of IdBord 1 confirmed is IdBord 1's only. Recorded in the run's reason
    (every bordereau cancelled with the run reads it), IdBord 3 read as annulled too:
    its acceptance said annulled (exit 0), and its reinstatement was refused
    (run.reinstate-annulled), though the trésorerie holds its titles."""
    store = Store(db_url)
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "o",
                          RUN).run_id
    store.cancel(run, "before the acquit", whole=True)
    ack = _ack(tmp_path, "ack.xml", _element(1, True), _element(2, False, "ERREUR_AUTRE"),
               _element(3, True))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    done = store.cancel(run, "titres annulés", [1], annulled_by_tresorerie=True)
    assert done.confirmed and done.bordereaux == (1,)
    reasons = {b.id_bord: b.reason for b in store.run_bordereaux(run)}
    assert reasons[1] == done.reason and "titres annulés" in done.reason
    assert reasons[2] == reasons[3] == "before the acquit"
    # the acquit of IdBord 3's acceptance still asks what the trésorerie does of it
    again = run_cli("acquit", ack, "--db", db_url)
    assert again.exit_code == 9, again.output
    [said] = [line for line in again.stdout.splitlines()
              if line.startswith("IdBord 3 exercise 2026 (DomaineAck 7 Rôle, line ")]
    assert ": accepted, but cancelled in pesgen " in said
    assert "annulled" not in said
    assert store.get_run(run)["status"] == "cancelled"
    with pytest.raises(StateError) as refused:
        store.reinstate(run, "the trésorerie keeps IdBord 1", [1])
    assert [p.rule for p in refused.value.problems] == ["run.reinstate-annulled"]
    assert store.reinstate(run, "the trésorerie keeps IdBord 3", [3]).bordereaux == (3,)
    assert _active(db_url, 3) == {True} and _active(db_url, 1) == {False}


def test_an_accepted_bordereau_with_a_payfip_link_open_names_both_in_one_refusal(
        acknowledged):
    """Every problem found, not the first: the acceptance and the PayFiP link; each needs
    its own option."""
    from pesgen.payfip import ledger

    db_url, run = acknowledged
    store = Store(db_url)
    ledger.record_operation(store, {
        "id_op": "op-1", "id_coll": "21450999400015", "invoice": "FA-2026-00101",
        "run_id": run, "numcli": "123456", "exer": "2026", "refdet": "FA202600101",
        "amount_cents": 18750, "mel": "famille@example.org", "objet": "Cantine",
        "saisie": "W", "endpoint": "http://127.0.0.1:1/"})
    with pytest.raises(StateError) as info:
        store.cancel(run, "wrong", [1])
    assert [(p.rule, p.invoice) for p in info.value.problems] == [
        ("run.cancel-accepted", None), ("run.cancel-payfip", "FA-2026-00101")]
    assert str(info.value).endswith(
        "Also, 1 invoice(s) have PayFiP payments, made or pending (below): tell the "
        "trésorerie, and add --despite-payments")
    with pytest.raises(StateError, match="have PayFiP payments") as only_payments:
        store.cancel(run, "wrong", [1], annulled_by_tresorerie=True)
    assert [p.rule for p in only_payments.value.problems] == ["run.cancel-payfip"]
    with pytest.raises(StateError, match="the trésorerie accepted IdBord 1") as only_accepted:
        store.cancel(run, "wrong", [1], despite_payments=True)
    assert [p.rule for p in only_accepted.value.problems] == ["run.cancel-accepted"]
    assert _active(db_url, 1) == {True}
    done = store.cancel(run, "annulled", [1], despite_payments=True,
                        annulled_by_tresorerie=True)
    assert [p.invoice for p in done.payments] == ["FA-2026-00101"]
    assert _active(db_url, 1) == {False}


# ------------------------------------------------------------------ payfip datamatrix

def _datamatrix(db_url: str, run: str):
    return run_cli("payfip", "datamatrix", "--run", run[:8], "--code-etablissement", "001",
                   "--db", db_url)


def test_no_datamatrix_for_the_titles_of_a_bordereau_the_tresorerie_rejected(
        acknowledged, tmp_path):
    """A Datamatrix pays a debt the trésorerie holds: a title of a rejected bordereau is
    not in Hélios, even before the bordereau is cancelled. Its file is skipped and said
    so; the accepted one and the one without acknowledgement are written."""
    import csv

    db_url, run = acknowledged
    out = tmp_path / "o"
    stems = [f"PESORMC_21450999400015_2026_000000{i}" for i in (1, 2, 3)]
    result = _datamatrix(db_url, run)
    assert result.exit_code == 0, result.output
    assert [f"{s}.datamatrix.csv" in result.stdout for s in stems] == [True, False, True]
    assert (f"skipped IdBord 2 of run {run}, rejected by the trésorerie: rejected on "
            "2026-11-24 with 1 error(s) (ack.xml), not cancelled yet: no Datamatrix for its "
            "4 title(s): FA-2026-00105, FA-2026-00107, FA-2026-00108, FA-2026-00110 (a family "
            f"must not pay a title the trésorerie does not hold; `pesgen acquit ack.xml --db "
            f"{shlex.quote(db_url)}` gives the command that cancels the bordereau, then export "
            "its invoices again)\n"
            ) in result.stderr
    assert not (out / f"{stems[1]}.datamatrix.csv").exists()
    written = [row["invoice"] for s in (stems[0], stems[2]) for row in csv.DictReader(
        (out / f"{s}.datamatrix.csv").open(encoding="utf-8"), delimiter=";")]
    assert written == BORDEREAUX[1] + BORDEREAUX[3]
    # cancelled, it is skipped as a cancelled bordereau
    Store(db_url).cancel(run, "trésorerie rejected IdBord 2", [2])
    again = _datamatrix(db_url, run)
    assert again.exit_code == 0, again.output
    assert f"skipped IdBord 2 of run {run}, cancelled on " in again.stderr
    assert "rejected by the trésorerie" not in again.stderr


def test_a_datamatrix_written_before_the_rejection_is_said_not_to_print(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
    first = _datamatrix(db_url, run)
    assert first.exit_code == 0, first.output
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record").exit_code == 9
    # its only bordereau rejected: nothing the trésorerie holds, refused, nothing written
    csv_path = tmp_path / "o" / "PESORMC_21450999400015_2026_0000001.datamatrix.csv"
    earlier = csv_path.read_bytes()
    refused = _datamatrix(db_url, run)
    assert refused.exit_code == ExitCode.STATE, refused.output
    assert (f"error: run {run}: no title the trésorerie holds: every one is cancelled or in "
            "a bordereau it rejected; no Datamatrix written") in refused.stderr
    assert ("IdBord 1 rejected by the trésorerie: rejected on 2026-11-24 with 3 error(s) "
            "(rejected.xml), not cancelled yet: 11 title(s) (rule payfip.rejected)"
            ) in refused.stderr
    assert csv_path.read_bytes() == earlier
    # accepted after a fix on the trésorerie's side (--replace): written again
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record",
                   "--replace").exit_code == 0
    assert _datamatrix(db_url, run).exit_code == 0


def test_the_earlier_datamatrix_of_a_rejected_bordereau_is_named(acknowledged, tmp_path):
    """A Datamatrix CSV written while IdBord 2 was accepted, then the trésorerie's
    rejection recorded (--replace): left as it is, named, not to be printed."""
    db_url, run = acknowledged
    store = Store(db_url)
    out = tmp_path / "o"
    stem = "PESORMC_21450999400015_2026_0000002"
    ok = _ack(tmp_path, "ok.xml", _element(2, True))
    assert run_cli("acquit", ok, "--db", db_url, "--record", "--replace").exit_code == 0
    assert _datamatrix(db_url, run).exit_code == 0
    assert (out / f"{stem}.datamatrix.csv").is_file()
    no = _ack(tmp_path, "no.xml", _element(2, False, "ERREUR_PJ"))
    assert run_cli("acquit", no, "--db", db_url, "--record", "--replace").exit_code == 9
    result = _datamatrix(db_url, run)
    assert result.exit_code == 0, result.output
    assert (f"warning: {out / stem}.datamatrix.csv (and its images in {stem}.datamatrix/) "
            "was written before the trésorerie rejected IdBord 2: do not print its "
            "Datamatrix") in result.stderr
    assert store.get_run(run)["cancelled_bordereaux"] == {}


def test_skipped_bordereaux_are_said_in_their_order_cancelled_or_rejected(db_url, tmp_path):
    """IdBord 2 rejected, IdBord 3 cancelled: payfip datamatrix names the skipped
    bordereaux in IdBord order, whichever way each is skipped, and no Datamatrix written
    before (there is none) is said not to print. IdBord 1 cancelled too: the run has no
    title the trésorerie holds, each bordereau named, in order, by its own rule."""
    store = Store(db_url)
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "o",
                          RUN).run_id
    ack = _ack(tmp_path, "ack.xml", _element(2, False, "ERREUR_AUTRE"))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    store.cancel(run, "wrong amounts", [3])
    result = _datamatrix(db_url, run)
    assert result.exit_code == 0, result.output
    said = [line.split(",")[0] for line in result.stderr.splitlines()]
    assert said == [f"skipped IdBord 2 of run {run}", f"skipped IdBord 3 of run {run}"]
    store.cancel(run, "wrong amounts", [1])
    refused = _datamatrix(db_url, run)
    assert refused.exit_code == ExitCode.STATE, refused.output
    problems = [line for line in refused.stderr.splitlines() if line.startswith("  - ")]
    assert [(p.split()[2], p.rsplit("(rule ", 1)[1]) for p in problems] == [
        ("1", "payfip.cancelled)"), ("2", "payfip.rejected)"), ("3", "payfip.cancelled)")]


def test_an_export_again_of_invoices_of_an_accepted_bordereau_is_not_told_to_cancel(
        db_url, tmp_path):
    """The same input exported again (by accident, or for a corrected invoice) once the
    trésorerie accepted its rôle: the refusal said 'cancel that run first to export it
    again', a command `runs cancel` refuses (run.cancel-accepted) and that would bill the
    families twice. It says the bordereau was accepted and to remove the invoice."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    ack = _ack(tmp_path, "ack.xml", _element(1, True))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 0
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "b", RUN)
    problem = info.value.problems[0]
    assert (problem.rule, problem.invoice) == ("run.duplicate", "FA-2026-00101")
    assert problem.message == (
        f"already exported by run {run} in PESORMC_21450999400015_2026_0000001.xml (IdBord 1); "
        "IdBord 1 was accepted on 2026-11-24 by the trésorerie (ack.xml): its title exists "
        "there, the invoice is billed already; remove it from this input (to correct that "
        "title, the trésorerie annuls or reduces it first: docs/state.md, Cancelling a "
        "bordereau the trésorerie accepted)")
    assert not any("cancel that run" in p.message for p in info.value.problems)
    # the file the run recorded, accepted: nothing to export again, said as before
    assert f"; nothing written. This input is the file run {run} exported on " \
        in str(info.value), str(info.value)
    # a new invoice number for the same debt: its NumDette is the accepted title's
    renamed = tmp_path / "renamed.json"
    renamed.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        '"FA-2026-00101"', '"FA-2026-00101-B"'), encoding="utf-8")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, renamed, tmp_path / "c", RUN)
    [debt] = [p for p in info.value.problems if p.rule == "run.num-dette-taken"]
    assert debt.message.endswith("two active titles would share one payment reference; "
                                 "IdBord 1 was accepted on 2026-11-24 by the trésorerie: "
                                 "give this invoice another NumDette"), debt.message


def test_the_same_input_exported_twice_by_accident_is_said_so(db_url, tmp_path):
    """The file a run recorded, exported again (the same sha256): the refusal told to
    'cancel that run first to export it again', eleven times, for a rôle maybe on its
    way to the trésorerie. It says the input was exported already, nothing to do; once
    the trésorerie rejected the bordereau, cancelling it is the next step again."""
    store = Store(db_url)
    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "a", RUN).run_id
    at = store.get_run(run)["created_at"]
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "b", RUN)
    assert str(info.value) == (
        f"11 invoice(s) already exported by run(s) {run}; nothing written. This input is "
        f"the file run {run} exported on {at} (the same sha256, {digest[:16]}…): it is "
        f"exported already, nothing to export again (pesgen runs show {run})")
    assert info.value.problems[0].message == (
        f"already exported by run {run} in PESORMC_21450999400015_2026_0000001.xml (IdBord 1); "
        "exported from this same input already: nothing to export again (cancel that run only "
        "if its files are rejected: by the trésorerie, or the finance package they went to)")
    # rejected by the trésorerie: cancelling it comes next, as before
    ack = _ack(tmp_path, "ack.xml", _element(1, False, "ERREUR_AUTRE"))
    assert run_cli("acquit", ack, "--db", db_url, "--record").exit_code == 9
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "c", RUN)
    assert "This input is the file" not in str(info.value)
    assert info.value.problems[0].message.endswith(
        "(IdBord 1); cancel that run first to export it again (IdBord 1 was rejected on "
        "2026-11-24 with 1 error(s) by the trésorerie)")


def test_acquit_s_next_steps_name_the_file_read_and_paste_as_said(db_url, tmp_path):
    """`pesgen acquit`'s suggested commands said `pesgen acquit FILE … --replace` (and
    `--record --run RUN`) with the placeholder FILE while reading that very file: support
    copying them had to put the path back. Now the path as given, shell-quoted (a folder
    with a space and an apostrophe here), and the run when one run holds the bordereau;
    the command pasted (split as a shell does) records what it says, text and --json."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "o", RUN).run_id
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url,
                   "--record").exit_code == 9
    folder = tmp_path / "acquits de l'école"
    folder.mkdir()
    path = folder / "accepted.xml"
    path.write_bytes((ACKS / "accepted.xml").read_bytes())
    other = run_cli("acquit", path, "--db", db_url)
    assert other.exit_code == ExitCode.TO_CHECK, other.output
    [step] = [ln.split("; next: ", 1)[1] for ln in other.stdout.splitlines()
              if "; next: " in ln]
    command = (f"pesgen acquit {shlex.quote(str(path))} --db {shlex.quote(db_url)} --record "
               "--replace")
    assert f"`{command}`" in step, step
    as_json = json.loads(run_cli("acquit", path, "--db", db_url, "--json").stdout)
    assert f"`{command}`" in as_json["to_check"][0]["next_step"]
    pasted = run_cli(*shlex.split(command)[1:])
    assert pasted.exit_code == 0, pasted.output
    [ack] = Store(db_url).acknowledgements()[run][1]
    assert (ack.accepted, ack.file) == (True, "accepted.xml")
    # an acceptance whose DomaineAck contradicts the one run holding it: the command that
    # records it on that run names the file and the run
    six = folder / "six.xml"
    six.write_text((ACKS / "accepted.xml").read_text(encoding="iso-8859-1").replace(
        '<DomaineAck V="7"/>', '<DomaineAck V="6"/>', 1), encoding="iso-8859-1")
    untied = run_cli("acquit", six, "--db", db_url)
    assert (f"`pesgen acquit {shlex.quote(str(six))} --record --run {run} --db "
            f"{shlex.quote(db_url)}`") in untied.stdout, untied.stdout
    # --run without --record: refused, saying what reads the acquit, this one
    refused = run_cli("acquit", six, "--db", db_url, "--run", run)
    assert refused.exit_code == ExitCode.USAGE, refused.output
    assert (f"`pesgen acquit {shlex.quote(str(six))} --db {shlex.quote(db_url)}` reads the "
            "acquit as pesgen ties it") in refused.output, refused.output
