# ruff: noqa: F811 - fixtures imported from test_acquit_record are injected by name
"""`pesgen acquit FILE --record --run RUN`: support ties the acknowledgement to the run it
names where pesgen will not guess (docs/state.md, "Tying by hand"): a rôle acknowledged
with DomaineAck 6 (or titres with 7), and a whole-file rejection (domains 0-2, no
NumBord) of a run of one file, or of the bordereau `--bordereau` names. What names
another bordereau, exercise, collectivity or domain is still not tied; a cancelled run
is refused. On SQLite and on a real PostgreSQL server (PESGEN_TEST_PG_URL)."""

from __future__ import annotations

import json
import shlex

import pytest

from pesgen.acquit import (
    AckElement,
    AckError,
    AckPiece,
    Acquit,
    NamedRun,
    read_acquit,
    record,
    tie,
)
from pesgen.errors import ExitCode, InputDataError, StateError, UsageError
from pesgen.runs import export_recorded
from pesgen.store import Bordereau, Store

from .conftest import package_store, run_cli
from .test_acquit import ACKS, _Store, _write
from .test_acquit_record import (  # noqa: F401 - fixtures
    EXAMPLE,
    ORMC_NAME,
    RUN,
    TITRES_NAME,
    _ack,
    _helios,
    _rows,
    _shown,
    one_run,
    ormc_and_titres,
)
from .test_cancel import split_mapping


def _element(bordereau: int | None, accepted: bool, error: str | None = None,
             domain: str = "7", exercise: int | None = 2026) -> str:
    """An ElementACQUIT; ``bordereau`` None: no NumBord (nor ExerciceBord)."""
    said = "" if error is None else (f'      <Erreur>\n        <NumAnoAck V="{error}"/>\n'
                                     f'        <LibelleAnoAck V="{error.lower()}"/>\n'
                                     "      </Erreur>\n")
    named = "" if bordereau is None else f'      <NumBord V="{bordereau}"/>\n'
    if bordereau is not None and exercise is not None:
        named += f'      <ExerciceBord V="{exercise}"/>\n'
    return (f'    <ElementACQUIT>\n      <DomaineAck V="{domain}"/>\n      <EtatAck '
            f'V="{int(accepted)}"/>\n{named}{said}    </ElementACQUIT>\n')


def _recorded(db_url: str, run_id: str) -> dict[int, tuple[bool, str]]:
    """The run's Hélios status per IdBord: (accepted, DomaineAck recorded)."""
    return {i: (acks[0].accepted, acks[0].domain)
            for i, acks in Store(db_url).acknowledgements().get(run_id, {}).items()}


# ------------------------------------------------------------------ (a) the other domain

def test_a_role_acknowledged_with_domain_6_is_recorded_with_run(one_run, tmp_path):
    """Without --run nothing can be recorded (pesgen ties 6 to titres only); with it, the
    rôle's rejection is recorded, said tied by --run, shown so by runs list and show."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "six.xml", _element(1, False, "ERREUR_AUTRE", domain="6"))
    assert run_cli("acquit", path, "--db", db_url, "--record").exit_code == 9
    assert _rows(db_url) == (0, 0)

    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id[:8])
    assert r.exit_code == ExitCode.REJECTED, r.output
    lines = r.stdout.splitlines()
    assert lines[1] == f"--run: tied to run {run_id} (TypBord 06, IdBord 1) only"
    assert lines[2] == ("IdBord 1 exercise 2026 (DomaineAck 6 Recette, line 31): REJECTED "
                        "(tied by --run: DomaineAck 6 (Recette) for a rôle (TypBord 06))")
    assert lines[3].startswith(f"  run {run_id} (TypBord 06)  file {ORMC_NAME}")
    assert f"next: pesgen runs cancel {run_id} --bordereau 1 --reason" in r.stdout
    assert lines[-1] == (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {run_id} (tied "
                         "by --run: DomaineAck 6 (Recette) for a rôle (TypBord 06)): rejected "
                         "on 2026-11-24 with 1 error(s)")
    assert _rows(db_url) == (1, 1)
    assert _recorded(db_url, run_id) == {1: (False, "6")}
    assert _helios(db_url) == ["  Hélios: IdBord 1 rejected on 2026-11-24 with 1 error(s) "
                               "(tied by --run)"]
    shown = _shown(db_url, run_id)
    assert shown[0].startswith("  Hélios      IdBord 1 rejected on 2026-11-24 with 1 error(s) "
                               "(tied by --run)  (six.xml line 31, ")
    assert shown[1:] == ["                error ERREUR_AUTRE: erreur_autre"]


def test_an_acceptance_tied_by_run_makes_runs_cancel_refuse_the_bordereau(one_run, tmp_path):
    """What the tie is for: the trésorerie took the rôle (DomaineAck 6): cancelling it in
    pesgen would let its invoices out again, and is refused once recorded."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "six.xml", _element(1, True, domain="6"))
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert r.exit_code == 0, r.output
    assert "IdBord 1 exercise 2026 (DomaineAck 6 Recette, line 31): accepted (tied by --run: " \
           "DomaineAck 6 (Recette) for a rôle (TypBord 06))" in r.stdout
    refused = run_cli("runs", "cancel", run_id, "--reason", "x", "--db", db_url)
    assert refused.exit_code == ExitCode.STATE, refused.output
    assert "the trésorerie accepted IdBord 1" in refused.stderr


def test_titres_acknowledged_with_domain_7_are_tied_to_the_run_named_only(ormc_and_titres,
                                                                         tmp_path):
    """An ORMC run and a titres run both hold IdBord 1: DomaineAck 7 ties the ORMC one by
    itself; --run names the titres run, which is the one recorded, and only it."""
    db_url, ormc, titres = ormc_and_titres
    path = _ack(tmp_path, "seven.xml", _element(1, False, "ERREUR_AUTRE", domain="7"),
                nom_fic=TITRES_NAME)
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", titres)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {titres} (tied by --run: "
            "DomaineAck 7 (Rôle) for a titres bordereau (TypBord 01)): rejected on 2026-11-24 "
            "with 1 error(s)") in r.stdout
    assert ormc not in r.stdout
    assert _recorded(db_url, titres) == {1: (False, "7")}
    assert _recorded(db_url, ormc) == {}


def test_a_domain_that_fits_is_tied_to_the_run_named_and_said_tied_by_run(ormc_and_titres,
                                                                         tmp_path):
    """DomaineAck 6 with a NomFic of the ORMC's type ties neither run by itself (each is
    contradicted by one of them); --run names the titres run, whose TypBord the domain
    fits: recorded, "tied by --run", with nothing shown in runs list (the domain fits)."""
    db_url, ormc, titres = ormc_and_titres
    path = _ack(tmp_path, "mixed.xml", _element(1, True, domain="6"), nom_fic="other.xml")
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", titres)
    assert r.exit_code == 0, r.output
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {titres} (tied by --run): "
            "accepted on 2026-11-24") in r.stdout
    assert _recorded(db_url, titres) == {1: (True, "6")}
    assert sorted(_helios(db_url)) == ["  Hélios: IdBord 1 accepted on 2026-11-24",
                                       "  Hélios: IdBord 1 no acknowledgement recorded"]


# ------------------------------------------------------------------ (b) the whole file

def test_a_whole_file_rejection_is_recorded_with_run_on_a_run_of_one_file(one_run):
    db_url, run_id = one_run
    path = ACKS / "file-rejected.xml"
    # without --run: nothing recorded, and the way to record it said
    r = run_cli("acquit", path, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert ("  not recorded: file (line 31): the whole file: the acquit names none of its "
            "bordereaux (to record it as the rejection of the file a run wrote, name that "
            "run: --record --run RUN)") in r.stdout.splitlines()
    assert _rows(db_url) == (0, 0)
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id[:8])
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert ("file (DomaineAck 0 Technique, line 31): REJECTED: the whole file (no bordereau, "
            "PJ nor market named); every bordereau of it is rejected at the guichet XML's "
            f"first step; tied by --run to IdBord 1 of run {run_id}, its file {ORMC_NAME}"
            ) in r.stdout
    assert (f"  next: pesgen runs cancel {run_id} --bordereau 1 --reason 'trésorerie rejected "
            "the file of IdBord 1 (ERREUR_SCHEMA_INCOMPLET)'") in r.stdout
    assert r.stdout.splitlines()[-1] == (
        f"  recorded: file (line 31, DomaineAck 0 Technique) as IdBord 1 of run {run_id} "
        "(tied by --run: the whole file): rejected on 2026-11-24 with 1 error(s)")
    assert _rows(db_url) == (1, 1)
    assert _recorded(db_url, run_id) == {1: (False, "0")}
    assert _helios(db_url) == ["  Hélios: IdBord 1 rejected on 2026-11-24 with 1 error(s) "
                               "(whole file)"]
    shown = _shown(db_url, run_id)
    assert shown[0].startswith("  Hélios      IdBord 1 rejected on 2026-11-24 with 1 error(s) "
                               "(whole file)  (file-rejected.xml line 31, ")
    assert shown[1:] == ["                error ERREUR_SCHEMA_INCOMPLET: Le flux ne respecte "
                         "pas le schéma"]
    # a rejection: the bordereau is cancelled as any rejected one
    assert run_cli("runs", "cancel", run_id, "--reason", "file rejected", "--db",
                   db_url).exit_code == 0


def test_a_whole_file_rejection_of_a_run_of_several_files_needs_bordereau(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN)
    path = ACKS / "file-rejected.xml"
    # read without --run, its next step records it on the file's one bordereau and cancels
    # that one only: never `runs cancel RUN --all`, which would free the invoices of the
    # run's other files, which the trésorerie may have taken (billed twice once exported
    # again)
    db = shlex.quote(db_url)
    read = run_cli("acquit", path, "--db", db_url)
    assert read.exit_code == ExitCode.REJECTED, read.output
    [step] = [x for x in read.stdout.splitlines() if x.startswith("  next: ")]
    assert "--all" not in step
    # (the run's IdBord 1 is the file the acquit's NomFic names: suggested, not tied)
    assert step == (
        "  next: the file sent is rejected whole, and with it its bordereau (pesgen writes "
        "one file per bordereau): record it on the run that wrote it, `pesgen acquit "
        f"{shlex.quote(str(path))} --record --run {run.run_id} --bordereau 1 --db {db}` (run "
        f"{run.run_id} wrote IdBord 1 as the file the acquit's NomFic names, "
        "PESORMC_21450999400015_2026_0000001.xml: if that is the file sent; pesgen does not "
        "tie a rejection by the NomFic alone), then "
        "cancel that bordereau only, as the report then says, fix, export again; not the "
        "whole run: its other files are other bordereaux, which the trésorerie may have "
        "taken")
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run.run_id)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stdout == ""
    assert r.stderr.splitlines()[:2] == [
        f"error: file-rejected.xml: pesgen cannot tell which file of run {run.run_id} its "
        "whole-file rejection answers: give --bordereau IDBORD, the bordereau of the file the "
        "trésorerie rejected; nothing recorded",
        "  - file-rejected.xml:31: the whole file (DomaineAck 0 Technique, no NumBord) answers "
        f"one file; run {run.run_id} (TypBord 06, IdBord 1, 2, 3) wrote 3 file(s) "
        "(PESORMC_21450999400015_2026_0000001.xml (IdBord 1); "
        "PESORMC_21450999400015_2026_0000002.xml (IdBord 2); "
        "PESORMC_21450999400015_2026_0000003.xml (IdBord 3)) (the acquit's NomFic, "
        "PESORMC_21450999400015_2026_0000001.xml, may name it: pesgen does not take it so) "
        "(rule acquit.run)"]
    assert _rows(db_url) == (0, 0)

    done = run_cli("acquit", path, "--db", db_url, "--record", "--run", run.run_id,
                   "--bordereau", "2")
    assert done.exit_code == ExitCode.REJECTED, done.output
    assert f"--run: tied to run {run.run_id} (TypBord 06, IdBord 1, 2, 3) only, IdBord 2 " \
           "only (--bordereau)" in done.stdout
    assert f"as IdBord 2 of run {run.run_id} (tied by --run: the whole file)" in done.stdout
    assert _recorded(db_url, run.run_id) == {2: (False, "0")}
    assert _helios(db_url) == ["  Hélios: IdBord 1, 3 no acknowledgement recorded; IdBord 2 "
                               "rejected on 2026-11-24 with 1 error(s) (whole file)"]
    # read again, without --run: the bordereau it was recorded as is the one to cancel
    again = run_cli("acquit", path, "--db", db_url)
    assert again.exit_code == ExitCode.REJECTED, again.output
    [step] = [x for x in again.stdout.splitlines() if x.startswith("  next: ")]
    cancel = (f"pesgen runs cancel {run.run_id} --bordereau 2 --reason 'trésorerie rejected "
              f"the file of IdBord 2' --db {db}")
    assert step == (
        f"  next: it is recorded as the rejection of IdBord 2 of run {run.run_id}: cancel "
        f"that bordereau only, if not done already (`pesgen runs show {run.run_id} --db "
        f"{db}` says), `{cancel}`, fix, export again")
    # the command given cancels that bordereau, the run's others stay active
    done = run_cli(*shlex.split(cancel)[1:])
    assert done.exit_code == 0, done.output
    assert f"run {run.run_id}: IdBord 2 cancelled: its 4 invoice(s) can be exported again; " \
           "IdBord 1, 3 stay active" in done.output


def test_bordereau_restricts_the_elements_tied_to_that_bordereau(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN)
    path = _ack(tmp_path, "two.xml", _element(1, True, domain="6"),
                _element(2, False, "ERREUR_AUTRE", domain="6"))
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run.run_id,
                "--bordereau", "2")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert ("  not recorded: IdBord 1 exercise 2026 (line 31): not IdBord 2, the bordereau "
            "--bordereau names: not tied") in r.stdout
    assert f"  recorded: IdBord 2 exercise 2026 (line 37) of run {run.run_id} (tied by " \
           "--run: DomaineAck 6 (Recette) for a rôle (TypBord 06))" in r.stdout
    assert _recorded(db_url, run.run_id) == {2: (False, "6")}


def test_a_whole_file_acceptance_is_not_recorded_with_run(one_run, tmp_path):
    """Passing the guichet's first step says nothing of the bordereaux: not recorded."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "ok.xml", _element(None, True, domain="0"))
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert r.exit_code == 0, r.output
    assert ("  not recorded: file (line 31): accepted at the guichet's first step, which says "
            "nothing of its bordereaux (their own elements do): not tied") in r.stdout
    assert r.stdout.splitlines()[-2].endswith(
        f"nothing recorded: no element of it is tied to run {run_id} (--run)")
    assert _rows(db_url) == (0, 0)


# ------------------------------------------------------------------ still not tied

def test_what_names_another_bordereau_exercise_or_domain_is_never_forced(one_run, tmp_path):
    db_url, run_id = one_run
    path = _ack(tmp_path, "others.xml",
                _element(42, False, "ERREUR_AUTRE", domain="6"),   # not the run's IdBord
                _element(1, True, domain="6", exercise=2025),      # another exercise
                _element(1, True, domain="6", exercise=None),      # no exercise
                _element(1, False, "ERREUR_AUTRE", domain="5"),    # a dépense
                _element(1, False, "ERREUR_AUTRE", domain="3"))    # a signature
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert r.exit_code == ExitCode.REJECTED, r.output
    # the acceptances not tied (another exercise, none) are listed last, to check
    lines = r.stdout.splitlines()
    end = lines.index("and 2 to check beside the 3 rejected (exit 9):")
    assert [ln.split(":")[0] for ln in lines[end + 1:]] == [
        "  - IdBord 1 exercise 2025 (line 41)", "  - IdBord 1 (line 47)"]
    said = lines[end - 5:end]
    assert said == [
        "  not recorded: IdBord 42 exercise 2026 (line 31): not a bordereau of run "
        f"{run_id} (TypBord 06, IdBord 1), named with --run: not tied",
        f"  not recorded: IdBord 1 exercise 2025 (line 41): exercise 2025, run {run_id} "
        "(--run) is of exercise 2026: not tied",
        "  not recorded: IdBord 1 (line 47): no ExerciceBord: pesgen cannot tell that it is "
        f"the exercise 2026 of run {run_id} (--run): not tied",
        "  not recorded: IdBord 1 exercise 2026 (line 52): a bordereau of another domain "
        "than a recette: not pesgen's",
        "  not recorded: IdBord 1 exercise 2026 (line 62): the signature of a bordereau, not "
        "tied to a run"]
    assert lines[end - 6].endswith(
        f"nothing recorded: no element of it is tied to run {run_id} (--run)")
    assert _rows(db_url) == (0, 0)


def test_a_nomfic_of_another_file_type_is_not_forced_by_run(one_run, tmp_path):
    db_url, run_id = one_run
    path = _ack(tmp_path, "alr.xml", _element(1, True, domain="6"), nom_fic=TITRES_NAME)
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    # an acceptance recorded on no run: exit 10 (it was 0)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    assert r.stdout.splitlines()[-2] == "not all fine: 1 to check (exit 10):"
    assert (f"  not recorded: IdBord 1 exercise 2026 (line 31): the acquit's NomFic "
            f"{TITRES_NAME} is a PES_Aller file (TypFic PESALR1), run {run_id} wrote an ORMC "
            f"file (TypFic PESORMC) ({ORMC_NAME}) for this bordereau: not tied") in r.stdout
    assert _rows(db_url) == (0, 0)
    # nor the whole file
    whole = _ack(tmp_path, "alr-file.xml", _element(None, False, "ERREUR_PES_PARAM",
                                                    domain="1"), nom_fic=TITRES_NAME)
    r = run_cli("acquit", whole, "--db", db_url, "--record", "--run", run_id)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "  not recorded: file (line 31): the acquit's NomFic" in r.stdout
    assert _rows(db_url) == (0, 0)


# ------------------------------------------------------------------ refused

def test_run_of_a_cancelled_run_is_refused(one_run):
    db_url, run_id = one_run
    assert run_cli("runs", "cancel", run_id, "--reason", "sent again", "--db",
                   db_url).exit_code == 0
    r = run_cli("acquit", ACKS / "file-rejected.xml", "--db", db_url, "--record", "--run",
                run_id)
    assert r.exit_code == ExitCode.STATE, r.output
    assert r.stdout == ""
    assert f"error: run {run_id} is cancelled (" in r.stderr
    assert "--run ties an acknowledgement to an active run only" in r.stderr
    assert _rows(db_url) == (0, 0)


def test_run_of_another_collectivity_or_budget_is_refused(one_run, tmp_path):
    db_url, run_id = one_run
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    for old, new, said in (('<IdColl V="21450999400015"/>', '<IdColl V="21450999400016"/>',
                            "IdColl 21450999400016 budget 00"),
                           ('<CodBud V="00"/>', '<CodBud V="01"/>',
                            "IdColl 21450999400015 budget 01")):
        other = _write(tmp_path, text.replace(old, new), "other.xml")
        r = run_cli("acquit", other, "--db", db_url, "--record", "--run", run_id)
        assert r.exit_code == ExitCode.STATE, r.output
        assert (f"error: other.xml is of {said}, run {run_id} of IdColl 21450999400015 "
                "budget 00: --run ties no acknowledgement to another collectivity's or "
                "budget's run; nothing recorded") in r.stderr
    assert _rows(db_url) == (0, 0)


def test_run_of_a_finance_package_run_or_of_no_run_is_refused(tmp_path):
    db = package_store(tmp_path)
    run_id = run_cli("runs", "list", "--db", db).stdout.split()[0]
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db, "--record", "--run", run_id)
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"run {run_id} is a finance package's run (format" in r.stderr
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db, "--record", "--run", "abcd1234")
    assert r.exit_code == ExitCode.STATE, r.output
    assert "no run abcd1234" in r.stderr
    assert _rows(f"sqlite:///{db}") == (0, 0)


def test_bordereau_of_no_or_a_cancelled_bordereau_is_refused(db_url, tmp_path):
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN)
    path = ACKS / "file-rejected.xml"
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run.run_id,
                "--bordereau", "9")
    # the store does not hold it, as a run it does not hold: exit 7
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"run {run.run_id} has no bordereau 9; its bordereaux are IdBord 1, 2, 3" in r.stderr
    assert run_cli("runs", "cancel", run.run_id, "--bordereau", "2", "--reason", "x", "--db",
                   db_url).exit_code == 0
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run.run_id,
                "--bordereau", "2")
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"IdBord 2 of run {run.run_id} is cancelled (" in r.stderr
    assert _rows(db_url) == (0, 0)


def test_a_run_cancelled_after_it_was_read_refuses_the_recording(one_run):
    """The check is made again in the recording's transaction (runs cancel takes the same
    lock): a cancellation between the reading and the recording records nothing."""
    from pesgen.acquit import named_run

    db_url, run_id = one_run
    store = Store(db_url)
    acquit = read_acquit(ACKS / "file-rejected.xml")
    report = tie(acquit, store, named_run(acquit, store, run_id))
    assert report.elements[0].run is not None
    store.cancel(run_id, "sent again")
    with pytest.raises(StateError, match=f"run {run_id} was cancelled while the "
                                         "acknowledgement was read"):
        record(report, store)
    assert _rows(db_url) == (0, 0)


@pytest.mark.parametrize("args, said", [
    (["--run", "abcd"], "--run goes with --record"),
    (["--record", "--bordereau", "1"], "--bordereau goes with --run"),
    (["--bordereau", "1"], "--bordereau goes with --run"),
])
def test_usage_errors(one_run, args, said):
    db_url, _ = one_run
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, *args)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert said in r.output
    assert _rows(db_url) == (0, 0)


# ------------------------------------------------------------------ once, --replace, JSON

def test_the_same_file_again_with_run_records_nothing(one_run):
    db_url, run_id = one_run
    path = ACKS / "file-rejected.xml"
    first = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert first.exit_code == ExitCode.REJECTED, first.output
    again = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert again.exit_code == ExitCode.REJECTED, again.output
    assert again.stdout.splitlines()[-1].endswith(
        ": nothing recorded (--run ties nothing more of a file recorded before)")
    assert _rows(db_url) == (1, 1)


def test_a_different_answer_tied_by_run_is_refused_unless_replace(one_run, tmp_path):
    db_url, run_id = one_run
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record").exit_code == 9
    later = _ack(tmp_path, "later.xml", _element(1, True, domain="6"), day="2026-11-30")
    refused = run_cli("acquit", later, "--db", db_url, "--record", "--run", run_id)
    assert refused.exit_code == ExitCode.STATE, refused.output
    assert (f"  - later.xml:31: IdBord 1 of run {run_id}: this file says accepted; recorded: "
            "rejected on 2026-11-24 with 3 error(s) (from rejected.xml, line 31") in refused.stderr
    assert _rows(db_url) == (1, 1)
    done = run_cli("acquit", later, "--db", db_url, "--record", "--run", run_id, "--replace")
    assert done.exit_code == 0, done.output
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {run_id} (tied by --run: "
            "DomaineAck 6 (Recette) for a rôle (TypBord 06)): accepted on 2026-11-30, "
            "replacing rejected on 2026-11-24 with 3 error(s) (from rejected.xml") in done.stdout
    shown = _shown(db_url, run_id)
    assert shown[0].startswith("  Hélios      IdBord 1 accepted on 2026-11-30 (tied by --run)  "
                               "(later.xml line 31, ")
    assert shown[1].startswith("              before: rejected on 2026-11-24 with 3 error(s)  "
                               "(rejected.xml line 31, ")


def test_json_says_the_tie_was_made_by_run(one_run, tmp_path):
    db_url, run_id = one_run
    path = _ack(tmp_path, "six.xml", _element(1, False, "ERREUR_AUTRE", domain="6"),
                _element(42, True, domain="6"))
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id, "--json")
    assert r.exit_code == ExitCode.REJECTED, r.output
    data = json.loads(r.stdout)
    assert (data["run"], data["bordereau"]) == (run_id, None)
    first, second = data["elements"]
    assert first["tied_by_run"] == {"run": run_id, "bordereau": 1, "why": "DomaineAck 6 "
                                    "(Recette) for a rôle (TypBord 06)"}
    assert [x["run"] for x in first["runs"]] == [run_id]
    assert (second["tied_by_run"], second["runs"]) == (None, [])
    assert second["verdict"].endswith("named with --run: not tied")
    assert [(x["bordereau"], x["run"], x["outcome"], x["tied_by_run"])
            for x in data["recording"]["elements"]] == [(1, run_id, "recorded", True),
                                                         (42, None, "not recorded", False)]
    whole = json.loads(run_cli("acquit", ACKS / "file-rejected.xml", "--db", db_url, "--json",
                               "--record", "--run", run_id, "--replace").stdout)
    (element,) = whole["elements"]
    assert (element["kind"], element["bordereau"], element["tied_by_run"]) == (
        "file", None, {"run": run_id, "bordereau": 1, "why": "the whole file"})
    (fate,) = whole["recording"]["elements"]
    assert (fate["bordereau"], fate["run"], fate["outcome"], fate["tied_by_run"]) == (
        1, run_id, "replaced", True)
    # without --run: no tie by hand
    plain = json.loads(run_cli("acquit", ACKS / "accepted.xml", "--db", db_url,
                               "--json").stdout)
    assert plain["run"] is None and plain["elements"][0]["tied_by_run"] is None


# ------------------------------------------------------------------ a file recorded in part

def test_the_rest_of_a_file_recorded_in_part_with_run_is_recorded_later(db_url, tmp_path):
    """A split run: the acquit rejects IdBord 1 and accepts IdBord 2. `--run --bordereau 1`
    records 1; `--record` then records 2 (the same file's row, by its lines), saying 1 was
    recorded already; once all is recorded, the same file again records nothing. (Before:
    the second `--record` said "recorded already: nothing recorded", 2 never recorded.)"""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN).run_id
    path = _ack(tmp_path, "split.xml", _element(1, False, "ERREUR_AUTRE"),
                _element(2, True))
    first = run_cli("acquit", path, "--db", db_url, "--record", "--run", run,
                    "--bordereau", "1")
    assert first.exit_code == ExitCode.REJECTED, first.output
    assert _recorded(db_url, run) == {1: (False, "7")}

    rest = run_cli("acquit", path, "--db", db_url, "--record")
    assert rest.exit_code == ExitCode.REJECTED, rest.output
    lines = rest.stdout.splitlines()
    assert "nothing recorded" not in rest.stdout
    assert any(ln.startswith("split.xml (sha256 ") and ": 1 bordereau(x) (recorded in part "
               "before, on " in ln for ln in lines), rest.stdout
    assert lines[-2].startswith(
        f"  recorded already: IdBord 1 exercise 2026 (line 31) of run {run}: rejected on "
        "2026-11-24 with 1 error(s), from this file (line 31, recorded ")
    assert lines[-1] == (f"  recorded: IdBord 2 exercise 2026 (line 41) of run {run}: "
                         "accepted on 2026-11-24")
    assert _recorded(db_url, run) == {1: (False, "7"), 2: (True, "7")}
    assert _rows(db_url) == (1, 2)  # the same file's row
    # the trésorerie accepted IdBord 2: cancelling it is refused now
    refused = run_cli("runs", "cancel", run, "--bordereau", "2", "--reason", "x", "--db",
                      db_url)
    assert refused.exit_code == ExitCode.STATE, refused.output

    again = run_cli("acquit", path, "--db", db_url, "--record")
    assert again.exit_code == ExitCode.REJECTED, again.output
    assert again.stdout.splitlines()[-1].startswith("split.xml (sha256 ")
    assert again.stdout.splitlines()[-1].endswith(": nothing recorded")
    assert "was recorded already on " in again.stdout
    assert _rows(db_url) == (1, 2)


def test_what_only_run_tied_is_said_recorded_already_when_the_rest_is_recorded(db_url,
                                                                              tmp_path):
    """IdBord 1 acknowledged with DomaineAck 6 (a rôle: tied by --run only) is recorded
    with `--run --bordereau 1`; `--record` alone then records IdBord 2 and says IdBord 1
    recorded already from this file, tied by --run, never "not recorded"."""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN).run_id
    path = _ack(tmp_path, "split.xml", _element(1, False, "ERREUR_AUTRE", domain="6"),
                _element(2, True))
    first = run_cli("acquit", path, "--db", db_url, "--record", "--run", run,
                    "--bordereau", "1")
    assert first.exit_code == ExitCode.REJECTED, first.output
    rest = run_cli("acquit", path, "--db", db_url, "--record")
    assert rest.exit_code == ExitCode.REJECTED, rest.output
    lines = rest.stdout.splitlines()
    assert lines[-2].startswith(
        f"  recorded already: IdBord 1 exercise 2026 (line 31) of run {run} (tied by --run): "
        "rejected on 2026-11-24 with 1 error(s), from this file (line 31, recorded ")
    assert lines[-1] == (f"  recorded: IdBord 2 exercise 2026 (line 41) of run {run}: "
                         "accepted on 2026-11-24")
    assert _recorded(db_url, run) == {1: (False, "6"), 2: (True, "7")}


def test_following_the_advice_for_an_element_set_aside_records_it(db_url, tmp_path):
    """`--record` records IdBord 2 (DomaineAck 7) and sets IdBord 1 aside (DomaineAck 6
    for a rôle), saying `record it with --record --run RUN`; doing so records it, IdBord 2
    said recorded already. (Before: "recorded already: nothing recorded".)"""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN).run_id
    path = _ack(tmp_path, "advice.xml", _element(1, True, domain="6"), _element(2, True))
    first = run_cli("acquit", path, "--db", db_url, "--record")
    # IdBord 1's acceptance is recorded on no run: exit 10 (it was 0)
    assert first.exit_code == ExitCode.TO_CHECK, first.output
    advice = f"record it with --record --run {run}"
    assert advice in first.stdout
    assert _recorded(db_url, run) == {2: (True, "7")}

    followed = run_cli("acquit", path, "--db", db_url, "--record", "--run", run)
    assert followed.exit_code == 0, followed.output
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {run} (tied by --run: "
            "DomaineAck 6 (Recette) for a rôle (TypBord 06)): accepted on 2026-11-24"
            ) in followed.stdout.splitlines()
    # said as it was recorded: without --run, its domain fitting the rôle
    assert any(ln.startswith(f"  recorded already: IdBord 2 exercise 2026 (line 37) of run "
                             f"{run}: accepted on 2026-11-24, from this file (line 37, "
                             "recorded ") for ln in followed.stdout.splitlines())
    assert _recorded(db_url, run) == {1: (True, "6"), 2: (True, "7")}
    assert _rows(db_url) == (1, 2)


def test_a_file_recorded_with_run_is_said_recorded_without_run(one_run, tmp_path):
    """Recorded with --run, the element pesgen does not tie by itself is then said recorded
    already (its run, IdBord, how it was tied), by the report and by `--record` again,
    not "not tied … record it with --run" nor "no bordereau of it is one of this store's
    runs"."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "six.xml", _element(1, False, "ERREUR_AUTRE", domain="6"))
    done = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert done.exit_code == ExitCode.REJECTED, done.output

    report = run_cli("acquit", path, "--db", db_url)
    assert report.exit_code == ExitCode.REJECTED, report.output
    lines = report.stdout.splitlines()
    assert lines[1].startswith(
        "IdBord 1 exercise 2026 (DomaineAck 6 Recette, line 31): REJECTED: recorded already "
        f"from this file as IdBord 1 of run {run_id} (tied by --run): rejected on 2026-11-24 "
        "with 1 error(s) (line 31, recorded "), report.stdout
    assert "--run" not in report.stdout.replace("(tied by --run)", "")
    assert "possibly" not in report.stdout
    data = json.loads(run_cli("acquit", path, "--db", db_url, "--json").stdout)
    mine = data["elements"][0]["recorded_from_this_file"]
    assert (mine["run"], mine["bordereau"], mine["accepted"], mine["line"],
            mine["tied"]) == (run_id, 1, False, 31, "tied by --run")

    again = run_cli("acquit", path, "--db", db_url, "--record")
    assert again.exit_code == ExitCode.REJECTED, again.output
    assert "no bordereau of it is one of this store's runs" not in again.stdout
    assert again.stdout.splitlines()[-1].startswith("six.xml (sha256 ")
    assert again.stdout.splitlines()[-1].endswith(": nothing recorded")
    assert "was recorded already on " in again.stdout
    assert _rows(db_url) == (1, 1)


def test_a_file_recorded_with_run_then_replaced_says_since_when(one_run, tmp_path):
    """What was recorded from a file read again is said as it stands: its line's status
    ends at its recording date while it is the bordereau's status, and says when it was
    replaced once another answer took its place (--replace); never a "replaced since"
    of a status still in force."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "six.xml", _element(1, False, "ERREUR_AUTRE", domain="6"))
    assert run_cli("acquit", path, "--db", db_url, "--record", "--run",
                   run_id).exit_code == ExitCode.REJECTED
    said = (f"REJECTED: recorded already from this file as IdBord 1 of run {run_id} (tied "
            "by --run): rejected on 2026-11-24 with 1 error(s) (line 31, recorded ")
    (line,) = [ln for ln in run_cli("acquit", path, "--db", db_url).stdout.splitlines()
               if said in ln]
    assert line.endswith(")") and "replaced since" not in line, line

    later = _ack(tmp_path, "later.xml", _element(1, True, domain="6"), day="2026-11-30")
    done = run_cli("acquit", later, "--db", db_url, "--record", "--run", run_id, "--replace")
    assert done.exit_code == 0, done.output
    (line,) = [ln for ln in run_cli("acquit", path, "--db", db_url).stdout.splitlines()
               if said in ln]
    assert "; replaced since, 20" in line and line.endswith(")"), line


# ------------------------------------------------------------------ another run fits

def test_run_does_not_take_an_element_pesgen_ties_to_another_run(ormc_and_titres, tmp_path):
    """The ORMC and the titres run both hold IdBord 1; DomaineAck 6 fits the titres run,
    which pesgen ties by itself: `--run ORMC` does not take it (before: recorded on the
    ORMC run, forced); without --run it is recorded on the titres run."""
    db_url, ormc, titres = ormc_and_titres
    path = _ack(tmp_path, "fits.xml", _element(1, True, domain="6"), nom_fic="other.xml")
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", ormc)
    # the acceptance is recorded on no run: exit 10 (it was 0)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    said = (f"not tied: run {titres} (TypBord 01) holds IdBord 1 and its DomaineAck 6 fits "
            "it: record it without --run")
    assert f"IdBord 1 exercise 2026 (DomaineAck 6 Recette, line 31): accepted: {said}" \
           in r.stdout.splitlines()
    assert f"  not recorded: IdBord 1 exercise 2026 (line 31): {said}" in r.stdout.splitlines()
    assert r.stdout.splitlines()[-4].endswith(
        f"nothing recorded: no element of it is tied to run {ormc} (--run)")
    assert r.stdout.splitlines()[-1].startswith(
        f"  - IdBord 1 exercise 2026 (line 31): accepted, not tied: {said}; next: ")
    assert _rows(db_url) == (0, 0)
    plain = run_cli("acquit", path, "--db", db_url, "--record")
    assert plain.exit_code == 0, plain.output
    assert _recorded(db_url, titres) == {1: (True, "6")}
    assert _recorded(db_url, ormc) == {}


class _Runs(_Store):
    """_Store (runs ``run-TYPBORD`` holding IdBord 5 of 2026), whose IdPce 3 of it is
    invoice FA-2026-00103."""

    def piece_invoices(self, run_id, id_bord):
        return {3: "FA-2026-00103"}


def _named(typ_bord: str, *numbers: int, files: tuple[tuple[str, int], ...] = (),
           only: int | None = None) -> NamedRun:
    """The run ``run-TYPBORD`` of 2026 named with --run, holding IdBord ``numbers``."""
    return NamedRun(f"run-{typ_bord}", typ_bord, 2026, tuple(
        Bordereau(i, 1, "10.00", f"F{typ_bord}-{i}.xml") for i in numbers), files, only)


def _tie_run(named: NamedRun, store: _Store, *elements: AckElement):
    return tie(Acquit("a.xml", "21450999400015", "00", None, None, elements), store, named)


def test_run_ties_a_number_two_runs_of_its_domain_hold_to_the_run_named():
    """Titres (01) and annulations (02) number apart: DomaineAck 6 fits both, which
    pesgen will not choose between; --run names one: tied to it, nothing to check (the
    other run fitting too is no reason to refuse it)."""
    e = AckElement(1, "6", True, 5, 2026, None, None, (), ())
    report = _tie_run(_named("01", 5), _Store("01", "02"), e)
    (r,) = report.elements
    assert (r.run.run_id, r.untied, r.tie_note) == ("run-01", None, "tied by --run")
    assert report.to_check() == []


def test_run_does_not_take_a_number_two_other_runs_of_its_domain_hold():
    """--run names the rôle, DomaineAck 6 fits the titres and annulations runs holding
    that number: not tied, both said."""
    e = AckElement(1, "6", True, 5, 2026, None, None, (), ())
    (r,) = _tie_run(_named("06", 5), _Store("06", "01", "02"), e).elements
    assert (r.run, r.untied) == (None, "not tied: run run-01 (TypBord 01), run run-02 "
                                 "(TypBord 02) hold IdBord 5 and its DomaineAck 6 fits them")


def test_run_names_the_invoice_of_each_piece_of_the_bordereau_it_ties():
    e = AckElement(1, "7", False, 5, 2026, None, None, (), (
        AckPiece(3, (AckError("ERREUR_CODIFICATION", "x"),), (), 40),))
    (r,) = _tie_run(_named("06", 5), _Runs("06"), e).elements
    assert r.run.run_id == "run-06"
    assert r.errors_named() == ["ERREUR_CODIFICATION (IdPce 3, invoice FA-2026-00103)"]


def test_bordereau_leaves_the_other_bordereaux_out_not_to_check():
    """--bordereau 1: an acceptance of IdBord 2 is left out on purpose (nothing to
    check); one of IdBord 1 of another exercise is not tied, to check."""
    other = AckElement(1, "7", True, 2, 2026, None, None, (), ())
    wrong_year = AckElement(2, "7", True, 1, 2025, None, None, (), ())
    report = _tie_run(_named("06", 1, 2, only=1), _Store("06"), other, wrong_year)
    assert [(r.untied, r.restricted) for r in report.elements] == [
        ("not IdBord 1, the bordereau --bordereau names: not tied", True),
        ("exercise 2025, run run-06 (--run) is of exercise 2026: not tied", False)]
    assert [(x.line, x.reasons) for x in report.to_check()] == [(2, ("untied",))]


def test_a_whole_file_rejection_of_a_file_of_two_bordereaux_needs_bordereau():
    """One file of the run holds IdBord 1 and 2: which one the whole-file rejection
    answers is not guessed (the first one is not taken); --bordereau names it."""
    e = AckElement(1, "0", False, None, None, None, None, (AckError("ERREUR_AUTRE", "x"),),
                   ())
    files = (("F.xml", 1), ("F.xml", 2))
    with pytest.raises(UsageError) as info:
        _tie_run(_named("06", 1, 2, files=files), _Store(), e)
    assert info.value.problems[0].message == (
        "the whole file (DomaineAck 0 Technique, no NumBord) answers one file; run run-06 "
        "(TypBord 06, IdBord 1, 2) wrote 1 file(s) (F.xml (IdBord 1); F.xml (IdBord 2))")
    # a run that recorded no file of a bordereau: none to tie it to, said so
    with pytest.raises(UsageError) as info:
        _tie_run(_named("06", 1), _Store(), e)
    assert info.value.problems[0].message.endswith(
        "run run-06 (TypBord 06, IdBord 1) wrote 0 file(s) (none)")
    (r,) = _tie_run(_named("06", 1, 2, files=files, only=2), _Store(), e).elements
    assert (r.kind, r.run.run_id, r.bordereau) == ("file", "run-06", 2)


def test_two_whole_file_rejections_tied_by_run_to_one_bordereau_are_refused():
    """The technical check and the signature check (DomaineAck 0 and 1) both reject the
    file: tied with --run, both answer the one bordereau of its file, which pesgen
    records once per file: refused, naming the bordereau (no exercise: none is given)."""
    e = [AckElement(line, domain, False, None, None, None, None, (), ())
         for line, domain in ((31, "0"), (40, "1"))]
    report = _tie_run(_named("06", 1, files=(("F.xml", 1),)), _Store(), *e)
    with pytest.raises(InputDataError) as info:
        record(report, None)
    assert [(p.message, p.record) for p in info.value.problems] == [
        ("IdBord 1 (run run-06) is answered at lines 31, 40", "a.xml:40")]


# ------------------------------------------------------------------ a cancelled bordereau

def test_an_acceptance_of_a_bordereau_cancelled_on_its_own_is_recorded_and_told(db_url,
                                                                                tmp_path):
    """Without --bordereau, --run records the acceptance of a bordereau cancelled on its
    own, with the warning to tell the trésorerie (only a cancelled --bordereau or run is
    refused)."""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN).run_id
    assert run_cli("runs", "cancel", run, "--bordereau", "2", "--reason", "sent again",
                   "--db", db_url).exit_code == 0
    path = _ack(tmp_path, "late.xml", _element(2, True, domain="6"))
    r = run_cli("acquit", path, "--db", db_url, "--record", "--run", run)
    assert r.exit_code == 10, r.output  # recorded, and to check (TO_CHECK)
    lines = r.stdout.splitlines()
    assert lines[2].startswith("IdBord 2 exercise 2026 (DomaineAck 6 Recette, line 31): "
                               "accepted, but cancelled in pesgen ")
    assert lines[2].endswith("(sent again): its invoices may be exported again; tell the "
                             "trésorerie, which took it")
    # the summary of what is to check ends the report (docs/state.md, Not all fine)
    (recorded,) = [ln for ln in lines if ln.startswith("  recorded: ")]
    assert lines[-1].startswith("  - IdBord 2 exercise 2026 (line 31): accepted, but "
                                "cancelled in pesgen ")
    assert recorded.startswith(f"  recorded: IdBord 2 exercise 2026 (line 31) of run {run} "
                                "(tied by --run: DomaineAck 6 (Recette) for a rôle (TypBord "
                                "06)): accepted on 2026-11-24; this bordereau is cancelled in "
                                "pesgen (")
    assert _recorded(db_url, run) == {2: (True, "6")}
