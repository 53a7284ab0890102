"""`pesgen acquit --record`: the trésorerie's acknowledgement recorded in the state store
(migration 9), once, in one transaction, and shown by `runs list`, `runs show` and `runs
find`; on SQLite and on a real PostgreSQL server (PESGEN_TEST_PG_URL, see test_store)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pesgen.acquit import Recording, read_acquit, record, tie
from pesgen.errors import ExitCode, StateError
from pesgen.runs import export_recorded
from pesgen.store import Store, copy_store

from .conftest import (
    EXAMPLES,
    MAPPINGS,
    package_store,
    record_as_older,
    run_cli,
    state_database,
)
from .test_acquit import ACKS, _head, _write
from .test_cancel import split_mapping, split_run_in_store_left_at

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"


def _element(bordereau: int, accepted: bool, error: str | None = None, domain: str = "7"
             ) -> str:
    said = "" if error is None else (f'      <Erreur>\n        <NumAnoAck V="{error}"/>\n'
                                     f'        <LibelleAnoAck V="{error.lower()}"/>\n'
                                     "      </Erreur>\n")
    return (f'    <ElementACQUIT>\n      <DomaineAck V="{domain}"/>\n      <EtatAck '
            f'V="{int(accepted)}"/>\n      <NumBord V="{bordereau}"/>\n      <ExerciceBord '
            f'V="2026"/>\n{said}    </ElementACQUIT>\n')


ORMC_NAME = "PESORMC_21450999400015_2026_0000001.xml"
TITRES_NAME = "PESALR1_21450999400015_2026_0000001.xml"


def _ack(tmp_path: Path, name: str, *elements: str, day: str | None = "2026-11-24",
         nom_fic: str = ORMC_NAME) -> Path:
    """An acknowledgement of IdColl 21450999400015 budget 00 holding ``elements``, dated
    ``day`` (None: no DteStr), its Enveloppe's NomFic ``nom_fic``."""
    text = _head("".join(elements))
    assert '<DteStr V="2026-11-24"/>' in text and f'<NomFic V="{ORMC_NAME}"/>' in text
    text = text.replace('    <DteStr V="2026-11-24"/>\n',
                        "" if day is None else f'    <DteStr V="{day}"/>\n')
    return _write(tmp_path, text.replace(ORMC_NAME, nom_fic), name)


def _rows(db_url: str) -> tuple[int, int]:
    """How many acknowledgement files and bordereau rows the store holds."""
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                         for t in ("acquits", "acquit_bordereaux"))
    finally:
        engine.dispose()


def _helios(db_url: str) -> list[str]:
    return [ln for ln in run_cli("runs", "list", "--db", db_url).stdout.splitlines()
            if ln.startswith("  Hélios: ")]


def _shown(db_url: str, run_id: str) -> list[str]:
    lines = run_cli("runs", "show", run_id[:8], "--db", db_url).stdout.splitlines()
    return [ln for ln in lines if ln.startswith(("  Hélios ", "                "))
            or ln.lstrip().startswith("before: ")]


# ------------------------------------------------------------------ migration 9

def test_a_schema_8_store_with_runs_is_migrated_and_records_acknowledgements(
        db_url, tmp_path, monkeypatch):
    """A store pesgen left at schema 8 opens with the current code (migration 9): its
    runs stay, none of their bordereaux has an acknowledgement recorded, and one can be."""
    store, run = split_run_in_store_left_at(8, "acquits", db_url, tmp_path, monkeypatch)
    assert "acquit_bordereaux" in sa.inspect(store.engine).get_table_names()
    assert _helios(db_url) == ["  Hélios: IdBord 1-3 no acknowledgement recorded"]
    path = _ack(tmp_path, "ack.xml", _element(1, True), _element(2, False, "ERREUR_AUTRE"))
    r = run_cli("acquit", path, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert _helios(db_url) == ["  Hélios: IdBord 1 accepted on 2026-11-24; IdBord 2 rejected "
                               "on 2026-11-24 with 1 error(s); IdBord 3 no acknowledgement "
                               "recorded"]
    assert store.acknowledgements()[run.run_id][2][0].errors == (
        {"piece": None, "line": None, "code": "ERREUR_AUTRE", "label": "erreur_autre"},)


def test_migration_9_creates_the_tables_as_frozen(db_url, tmp_path):
    """The index that keeps one status per bordereau is in the database, not only in
    pesgen's code: a second status for a bordereau is refused by it."""
    store = Store(db_url)
    indexes = {i["name"]: i for i in sa.inspect(store.engine).get_indexes("acquit_bordereaux")}
    assert indexes["uq_acquit_bordereau_status"]["unique"]
    import pesgen.store as st

    run = export_recorded(lambda: store, MAPPING, EXAMPLE, tmp_path / "out", RUN)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(st.acquits.insert().values(id=1, sha256="0" * 64, name="a.xml",
                                                id_coll="21450999400015", cod_bud="00",
                                                recorded_at="2026-12-01T00:00:00Z"))
        for _ in range(2):
            conn.execute(st.acquit_bordereaux.insert().values(
                acquit_id=1, run_id=run.run_id, id_bord=1, line=31, domain="7",
                accepted=True, errors="[]", error_count=0))


# ------------------------------------------------------------------ recording

@pytest.fixture
def one_run(db_url, tmp_path) -> tuple[str, str]:
    """A store at ``db_url`` holding the example's run (IdBord 1 of 2026): (url, run)."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    return db_url, run.run_id


def test_a_rejection_is_recorded_and_shown_by_runs_list_and_show(one_run):
    db_url, run_id = one_run
    assert _helios(db_url) == ["  Hélios: IdBord 1 no acknowledgement recorded"]
    # the dry reading records nothing
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url).exit_code == 9
    assert _rows(db_url) == (0, 0)

    r = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED == 9, r.output  # recorded, still rejected
    digest = hashlib.sha256((ACKS / "rejected.xml").read_bytes()).hexdigest()
    lines = r.stdout.splitlines()
    at = lines.index(next(ln for ln in lines if ln.startswith("rejected.xml (sha256 ")))
    assert lines[at].startswith(f"rejected.xml (sha256 {digest[:16]}…) recorded on ")
    assert lines[at].endswith(": 1 bordereau(x)")
    assert lines[at + 1:] == [
        f"  recorded: IdBord 1 exercise 2026 (line 31) of run {run_id}: rejected on "
        "2026-11-24 with 3 error(s)",
        "  not recorded: IdBord 42 exercise 2026 (line 55): no run of this store holds it"]
    assert _rows(db_url) == (1, 1)

    assert _helios(db_url) == ["  Hélios: IdBord 1 rejected on 2026-11-24 with 3 error(s)"]
    shown = _shown(db_url, run_id)
    assert shown[0].startswith(f"  Hélios      IdBord 1 rejected on 2026-11-24 with 3 error(s)"
                               f"  (rejected.xml line 31, sha256 {digest[:16]}…, recorded ")
    assert shown[1:] == [
        "                error ERREUR_CUMUL_MONTANTS: Le montant du bordereau ne correspond "
        "pas à la somme des pièces",
        "                IdPce 3 invoice FA-2026-00103 error ERREUR_CODIFICATION: Civilité "
        "inconnue",
        "                IdPce 3 invoice FA-2026-00103 IdLigne 2 error ERREUR_AUTRE: Fonction "
        "absente de la nomenclature"]
    [[ack]] = Store(db_url).acknowledgements()[run_id].values()
    assert (ack.file, ack.sha256, ack.issued_on, ack.accepted, ack.error_count) == (
        "rejected.xml", digest, "2026-11-24", False, 3)


# `runs find`'s PayFiP line of an invoice no link was made for
PAYFIP_NONE = ("  PayFiP: none (no PayFiP link made for it: pesgen knows of no online "
               "payment; one paid otherwise paid the trésorerie)")


def test_runs_find_gives_the_helios_status_of_the_bordereau_holding_the_invoice(one_run):
    """"Was FA-2026-00103 sent?": `runs find` gave the run, IdBord and `active`, not what
    the trésorerie answered, which `runs list` and `runs show` gave: support needed a second
    command. Its title's line is followed by its bordereau's Hélios status, in text and in
    --format json, from no acknowledgement recorded to the rejection recorded."""
    db_url, run_id = one_run

    def found() -> tuple[list[str], dict]:
        text = run_cli("runs", "find", "FA-2026-00103", "--db", db_url)
        report = run_cli("runs", "find", "FA-2026-00103", "--db", db_url, "--format", "json")
        assert text.exit_code == report.exit_code == 0, text.output
        [title] = json.loads(report.stdout)["titles"]
        # (less the policy notes its run recorded about the invoice)
        return [x for x in text.stdout.splitlines() if not x.startswith("  policy: ")], \
            title["helios"]

    lines, helios = found()
    # the invoice beside its record in the input the run read, as acquit names it
    assert lines[0].startswith(f"FA-2026-00103 ({EXAMPLE}:$.invoices[2]): run {run_id} ") \
        and lines[0].endswith("active"), lines[0]
    assert lines[1:] == ["  Hélios: IdBord 1 no acknowledgement recorded", PAYFIP_NONE]
    assert helios == {"status": "not recorded"}
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record").exit_code == 9
    lines, helios = found()
    assert lines[1:] == ["  Hélios: IdBord 1 rejected on 2026-11-24 with 3 error(s)",
                         PAYFIP_NONE]
    assert helios == {"status": "rejected", "on": "2026-11-24", "error_count": 3,
                      "file": "rejected.xml", "domain": "7"}


def test_runs_show_names_the_invoice_of_each_piece_of_its_own_bordereau(db_url, tmp_path):
    """`runs show` names each piece an error of the acknowledgement names with its
    invoice, as `pesgen acquit` does, so that support reading the run tells the family's
    invoice without the acquit file: the title of that IdPce in that bordereau (IdPce 2
    of IdBord 2 is FA-2026-00107, not IdBord 1's FA-2026-00102), also once the bordereau
    is cancelled; a NumPiece no title of the bordereau has is said so, never another
    bordereau's invoice."""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE,
                          tmp_path / "o", RUN)
    titles = {(t["id_bord"], t["id_pce"]): t["invoice"]
              for t in Store(db_url).run_titles(run.run_id)}
    assert (titles[(1, 2)], titles[(2, 2)], (2, 9) in titles) == (
        "FA-2026-00102", "FA-2026-00107", False)
    piece = ('      <DetailPiece>\n        <NumPiece V="{n}"/>\n        <Erreur>\n'
             '          <NumAnoAck V="ERREUR_CODIFICATION"/>\n'
             '          <LibelleAnoAck V="Civilité inconnue"/>\n        </Erreur>\n'
             '      </DetailPiece>\n')
    element = _element(2, False).replace(
        "    </ElementACQUIT>\n", piece.format(n=2) + piece.format(n=9) + "    </ElementACQUIT>\n")
    r = run_cli("acquit", _ack(tmp_path, "ack.xml", element), "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert f"  IdPce 2 invoice FA-2026-00107 ({EXAMPLE.resolve()}:$.invoices[6]):" \
        in r.stdout.splitlines()
    said = [
        "                IdPce 2 invoice FA-2026-00107 error ERREUR_CODIFICATION: Civilité "
        "inconnue",
        "                IdPce 9 (no title of the recorded bordereau has this IdPce; rule "
        "acquit.piece) error "
        "ERREUR_CODIFICATION: Civilité inconnue"]
    assert _shown(db_url, run.run_id)[2:4] == said
    cancelled = run_cli("runs", "cancel", run.run_id[:8], "--bordereau", "2", "--reason",
                        "trésorerie rejected IdBord 2", "--db", db_url)
    assert cancelled.exit_code == 0, cancelled.output
    assert _shown(db_url, run.run_id)[2:4] == said


def test_the_same_file_again_records_nothing_and_says_so(one_run, tmp_path):
    db_url, _ = one_run
    first = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record")
    assert first.exit_code == 0, first.output
    recorded_at = first.stdout.split(" recorded on ", 1)[1].split()[0]
    again = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record")
    assert again.exit_code == 0, again.output
    digest = hashlib.sha256((ACKS / "accepted.xml").read_bytes()).hexdigest()
    assert again.stdout.splitlines()[-1] == (
        f"accepted.xml (sha256 {digest[:16]}…) was recorded already on {recorded_at}: "
        "nothing recorded")
    # the same bytes under another name are the same file
    copy = _write(tmp_path, (ACKS / "accepted.xml").read_text(encoding="iso-8859-1"),
                  "PES_ACQUIT_copy.xml")
    renamed = run_cli("acquit", copy, "--db", db_url, "--record")
    assert renamed.exit_code == 0
    assert "was recorded already as accepted.xml on" in renamed.stdout
    assert _rows(db_url) == (1, 1)
    # a rejection recorded twice still exits 9: the exit code says what the file says
    run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record", "--replace")
    twice = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record")
    assert twice.exit_code == ExitCode.REJECTED
    assert "was recorded already on" in twice.stdout
    assert _rows(db_url) == (2, 2)


def test_another_file_saying_the_same_is_not_recorded_again(one_run, tmp_path):
    """Another file (another sha256: downloaded again, dated otherwise) that says of a
    bordereau what its status says already records nothing of it."""
    db_url, run_id = one_run
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record").exit_code == 0
    later = _ack(tmp_path, "later.xml", _element(1, True), day="2026-11-30")
    r = run_cli("acquit", later, "--db", db_url, "--record")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-2:] == [
        f"later.xml (sha256 {hashlib.sha256(later.read_bytes()).hexdigest()[:16]}…): nothing "
        "recorded: the store says the same of its bordereaux already",
        f"  already recorded: IdBord 1 exercise 2026 (line 31) of run {run_id}: accepted on "
        "2026-11-24, from accepted.xml (recorded "
        f"{Store(db_url).acknowledgements()[run_id][1][0].recorded_at}): not recorded again"]
    assert _rows(db_url) == (1, 1)
    # beside a bordereau no run holds: the same is still what is said first
    mixed = _ack(tmp_path, "mixed.xml", _element(1, True), _element(9, True),
                 day="2026-11-30")
    r = run_cli("acquit", mixed, "--db", db_url, "--record")
    assert (f"mixed.xml (sha256 {hashlib.sha256(mixed.read_bytes()).hexdigest()[:16]}…): "
            "nothing recorded: the store says the same of its bordereaux already"
            ) in r.stdout.splitlines(), r.output
    assert _rows(db_url) == (1, 1)


def test_a_contradicting_answer_is_refused_unless_replace_which_keeps_the_history(
        one_run, tmp_path):
    db_url, run_id = one_run
    assert run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record").exit_code == 9
    refused = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record")
    assert refused.exit_code == ExitCode.STATE, refused.output
    assert refused.stdout == ""
    assert "error: accepted.xml says otherwise than 1 acknowledgement(s) recorded before; " \
           "nothing recorded" in refused.stderr
    assert "--replace" in refused.stderr
    assert (f"  - accepted.xml:31: IdBord 1 of run {run_id}: this file says accepted; "
            "recorded: rejected on 2026-11-24 with 3 error(s) (from rejected.xml, line 31, "
            "recorded ") in refused.stderr
    assert "(rule acquit.contradicts)" in refused.stderr
    assert _rows(db_url) == (1, 1)
    assert _helios(db_url) == ["  Hélios: IdBord 1 rejected on 2026-11-24 with 3 error(s)"]

    done = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record", "--replace")
    assert done.exit_code == 0, done.output
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {run_id}: accepted on "
            "2026-11-24, replacing rejected on 2026-11-24 with 3 error(s) (from rejected.xml, "
            "recorded ") in done.stdout
    # a status replaced is a bordereau recorded
    assert ": 1 bordereau(x)" in done.stdout
    assert _rows(db_url) == (2, 2)
    assert _helios(db_url) == ["  Hélios: IdBord 1 accepted on 2026-11-24"]
    # record() replaces only when told, as --record does without --replace
    later = _ack(tmp_path, "later.xml", _element(1, False, "ERREUR_AUTRE"))
    store = Store(db_url)
    try:
        with pytest.raises(StateError):
            record(tie(read_acquit(later), store), store)
    finally:
        store.engine.dispose()
    assert _rows(db_url) == (2, 2)
    shown = _shown(db_url, run_id)
    assert shown[0].startswith("  Hélios      IdBord 1 accepted on 2026-11-24  (accepted.xml "
                               "line 31, ")
    assert shown[1].startswith("              before: rejected on 2026-11-24 with 3 error(s)  "
                               "(rejected.xml line 31, ")
    assert len(shown) == 2


def test_replace_goes_with_record(one_run):
    db_url, _ = one_run
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--replace")
    assert r.exit_code == ExitCode.USAGE
    assert "--replace goes with --record" in r.output
    assert _rows(db_url) == (0, 0)


def test_one_contradiction_records_nothing_of_the_file(db_url, tmp_path):
    """One transaction for the file: a bordereau it would record alongside one it
    contradicts is not recorded either."""
    run = export_recorded(lambda: Store(db_url), split_mapping(tmp_path), EXAMPLE, tmp_path / "o",
                          RUN)
    first = _ack(tmp_path, "first.xml", _element(2, True))
    assert run_cli("acquit", first, "--db", db_url, "--record").exit_code == 0
    second = _ack(tmp_path, "second.xml", _element(1, True), _element(2, False, "ERREUR_PJ"),
                  _element(3, True))
    r = run_cli("acquit", second, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"second.xml:37: IdBord 2 of run {run.run_id}: this file says rejected with 1 " \
           "error(s); recorded: accepted on 2026-11-24" in r.stderr
    assert _rows(db_url) == (1, 1)
    # bordereaux of one status together, in the order of their numbers
    assert _helios(db_url) == ["  Hélios: IdBord 1, 3 no acknowledgement recorded; IdBord 2 "
                               "accepted on 2026-11-24"]


def test_a_bordereau_of_a_cancelled_run_is_recorded_and_said_cancelled(one_run):
    db_url, run_id = one_run
    assert run_cli("runs", "cancel", run_id, "--reason", "rejected by phone", "--db",
                   db_url).exit_code == 0
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record")
    assert r.exit_code == 10, r.output  # recorded, and to check (ExitCode.TO_CHECK)
    assert "accepted, but cancelled in pesgen" in r.stdout
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {run_id}: accepted on "
            "2026-11-24; this bordereau is cancelled in pesgen (") in r.stdout
    listed = run_cli("runs", "list", "--db", db_url).stdout.splitlines()
    assert " cancelled " in listed[0]
    assert listed[1] == "  Hélios: IdBord 1 accepted on 2026-11-24"


def test_a_file_no_run_of_the_store_answers_records_nothing(tmp_path):
    """A finance package's run (it sends its own PES) is no bordereau of the acquit: nothing
    is tied, nothing recorded, and its runs have no Hélios line (nor its titles in `runs
    find`, whose JSON says null)."""
    db = package_store(tmp_path)
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db, "--record")
    assert r.exit_code == 0, r.output
    digest = hashlib.sha256((ACKS / "accepted.xml").read_bytes()).hexdigest()
    assert r.stdout.splitlines()[-2:] == [
        f"accepted.xml (sha256 {digest[:16]}…): nothing recorded: no bordereau of it is one "
        "of this store's runs",
        "  not recorded: IdBord 1 exercise 2026 (line 31): no run of this store holds it"]
    assert _rows(f"sqlite:///{db}") == (0, 0)
    assert _helios(f"sqlite:///{db}") == []
    found = run_cli("runs", "find", "FA-2026-00103", "--db", db)
    # no Hélios line (a finance package's run); its PayFiP line
    assert found.exit_code == 0 and [x for x in found.stdout.splitlines()[1:] if not
                                     x.startswith("  policy: ")] == [PAYFIP_NONE], found.output
    report = run_cli("runs", "find", "FA-2026-00103", "--db", db, "--format", "json")
    assert [t["helios"] for t in json.loads(report.stdout)["titles"]] == [None]
    listed = run_cli("runs", "list", "--db", db, "--format", "json")
    [run] = json.loads(listed.stdout)["runs"]
    assert [b["helios"] for b in run["bordereaux"]] == [None], run["bordereaux"]
    shown = run_cli("runs", "show", run["run"], "--db", db, "--format", "json")
    assert json.loads(shown.stdout)["run"]["helios"] is None, shown.stdout


def test_a_whole_file_rejection_names_no_bordereau_and_is_not_recorded(one_run):
    db_url, _ = one_run
    r = run_cli("acquit", ACKS / "file-rejected.xml", "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert ("  not recorded: file (line 31): the whole file: the acquit names none of its "
            "bordereaux") in r.stdout
    assert _rows(db_url) == (0, 0)


def test_a_bordereau_answered_twice_by_the_file_is_refused(one_run, tmp_path):
    db_url, run_id = one_run
    path = _ack(tmp_path, "twice.xml", _element(1, True), _element(1, True))
    r = run_cli("acquit", path, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.INPUT, r.output
    assert (f"twice.xml:37: IdBord 1 exercise 2026 (run {run_id}) is answered at lines 31, "
            "37 (rule acquit.bordereau-twice)") in r.stderr
    assert "twice.xml:31:" not in r.stderr  # the first answer is not the one too many
    assert _rows(db_url) == (0, 0)
    # the dry reading still reads it
    assert run_cli("acquit", path, "--db", db_url).exit_code == 0


def test_the_date_is_the_acquit_s_dtestr(one_run, tmp_path):
    db_url, run_id = one_run
    undated = _ack(tmp_path, "undated.xml", _element(1, True), day=None)
    r = run_cli("acquit", undated, "--db", db_url, "--record")
    assert r.exit_code == 0, r.output
    assert f"of run {run_id}: accepted (the acquit gives no date)" in r.stdout
    [helios] = _helios(db_url)
    assert helios.startswith("  Hélios: IdBord 1 accepted (the acquit gives no date; "
                             "recorded 20")
    # with a time zone (xs:date allows one): the day
    zoned = _ack(tmp_path, "zoned.xml", _element(1, True), day="2026-11-25+01:00")
    data = json.loads(run_cli("acquit", zoned, "--db", db_url, "--json").stdout)
    assert data["issued_on"] == "2026-11-25"
    bad = _ack(tmp_path, "bad.xml", _element(1, True), day="24/11/2026")
    refused = run_cli("acquit", bad, "--db", db_url, "--record")
    assert refused.exit_code == ExitCode.INPUT
    assert "bad.xml:20 /n:PES_ACQUIT/EnTetePES/DteStr: DteStr is '24/11/2026', not a date " \
           "(YYYY-MM-DD) (rule acquit.structure)" in refused.stderr


def test_json_says_what_was_recorded(one_run):
    db_url, run_id = one_run
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record", "--json")
    assert r.exit_code == ExitCode.REJECTED, r.output
    data = json.loads(r.stdout)
    assert data["sha256"] == hashlib.sha256((ACKS / "rejected.xml").read_bytes()).hexdigest()
    assert data["issued_on"] == "2026-11-24"
    recording = data["recording"]
    assert recording["recorded_at"] and recording["already_recorded"] is None
    assert [(e["bordereau"], e["run"], e["outcome"], e["why"]) for e in recording["elements"]] \
        == [(1, run_id, "recorded", None),
            (42, None, "not recorded", "no run of this store holds it")]
    again = json.loads(run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record",
                               "--json").stdout)["recording"]
    assert (again["recorded_at"], again["already_recorded"]["file"], again["elements"]) == (
        None, "rejected.xml", [])
    assert "recording" not in json.loads(run_cli("acquit", ACKS / "rejected.xml", "--db",
                                                 db_url, "--json").stdout)


def test_two_recordings_of_one_file_at_once_record_it_once(one_run):
    db_url, _ = one_run

    def recording(_: int) -> Recording:
        store = Store(db_url)
        try:
            return record(tie(read_acquit(ACKS / "accepted.xml"), store), store)
        finally:
            store.engine.dispose()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(recording, range(4)))
    assert sorted(r.already is None for r in results) == [False, False, False, True]
    assert _rows(db_url) == (1, 1)


def test_store_copy_copies_the_acknowledgements(one_run, tmp_path):
    db_url, run_id = one_run
    run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record")
    with state_database("sqlite", tmp_path / "copy") as target:
        (tmp_path / "copy").mkdir()
        counts = copy_store(db_url, target)
        assert (counts["acquits"], counts["acquit_bordereaux"]) == (1, 1)
        assert _helios(target) == ["  Hélios: IdBord 1 rejected on 2026-11-24 with 3 error(s)"]
        again = run_cli("acquit", ACKS / "rejected.xml", "--db", target, "--record")
        assert "was recorded already on" in again.stdout


# ------------------------------------------------------------------ which run it answers

def test_a_titres_rejection_is_not_recorded_on_the_ormc_bordereau_of_that_number(
        one_run, tmp_path):
    """The reviewer's repro: the town's finance package sends titres on the same budget
    (TypBord 01, numbered apart from the rôles), and the trésorerie rejects its IdBord 1
    (DomaineAck 6, NomFic PESALR1_…). pesgen's one ORMC run holds an IdBord 1 too: it is
    not tied, nothing is recorded, and its Datamatrix are still written."""
    from .test_ack_cancel import _datamatrix

    db_url, run_id = one_run
    path = _ack(tmp_path, "titres.xml", _element(1, False, "ERREUR_CODIFICATION", domain="6"),
                nom_fic=TITRES_NAME)
    r = run_cli("acquit", path, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    lines = r.stdout.splitlines()
    assert lines[1] == (
        "IdBord 1 exercise 2026 (DomaineAck 6 Recette, line 31): REJECTED: DomaineAck 6 "
        f"(Recette) for a rôle (TypBord 06) of run {run_id}: not tied; if the trésorerie "
        "acknowledges this rôle so, check with it which bordereau it answers (`pesgen runs "
        f"show {run_id}`): pesgen ties DomaineAck 7 to a rôle only, 6 to a titres bordereau "
        f"only (docs/state.md); if it does answer this run, record it with --record --run "
        f"{run_id} (rule acquit.domain)")
    assert lines[2] == (f"  possibly run {run_id} (TypBord 06)  file {ORMC_NAME}  11 title(s)  "
                        "total 2527.25: NOT tied, its TypBord 06 contradicts DomaineAck 6")
    assert "pesgen runs cancel" not in r.stdout
    assert "titres.xml (sha256 " in lines[-2] and lines[-2].endswith(
        "nothing recorded: no bordereau of it is one of this store's runs")
    # the rule that kept the run untied, as a problem names its rule (it was named nowhere)
    assert lines[-1].startswith("  not recorded: IdBord 1 exercise 2026 (line 31): DomaineAck "
                                f"6 (Recette) for a rôle (TypBord 06) of run {run_id}: not tied")
    assert lines[-1].endswith(f"--record --run {run_id} (rule acquit.domain)")
    assert _rows(db_url) == (0, 0)
    assert _helios(db_url) == ["  Hélios: IdBord 1 no acknowledgement recorded"]
    made = _datamatrix(db_url, run_id)
    assert made.exit_code == 0, made.output
    assert "rejected by the trésorerie" not in made.stderr
    assert (tmp_path / "out" / ORMC_NAME.replace(".xml", ".datamatrix.csv")).is_file()
    # --json: no run tied, the one holding the number set aside with why
    data = json.loads(run_cli("acquit", path, "--db", db_url, "--json", "--record").stdout)
    (element,) = data["elements"]
    assert (element["kind"], element["runs"], element["next_step"]) == ("bordereau", [], None)
    (aside,) = element["set_aside"]
    assert (aside["run"], aside["typ_bord"], aside["file"]) == (run_id, "06", ORMC_NAME)
    assert aside["why"].startswith("DomaineAck 6 (Recette) for a rôle (TypBord 06)")
    assert aside["why"].endswith(" (rule acquit.domain)")
    (fate,) = data["recording"]["elements"]
    assert (fate["outcome"], fate["run"]) == ("not recorded", None)
    assert fate["why"] == aside["why"]
    assert _rows(db_url) == (0, 0)


def test_a_nomfic_naming_a_pes_aller_file_is_not_tied_to_an_ormc_run(one_run, tmp_path):
    """DomaineAck 7 fits the rôle, but the acquit's NomFic names a PES_Aller file
    (PESALR1_…) where the run wrote a PESORMC_…: not tied, nothing recorded."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "alr.xml", _element(1, False, "ERREUR_AUTRE"), nom_fic=TITRES_NAME)
    r = run_cli("acquit", path, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert (f"REJECTED: the acquit's NomFic {TITRES_NAME} is a PES_Aller file (TypFic "
            f"PESALR1), run {run_id} wrote an ORMC file (TypFic PESORMC) ({ORMC_NAME}) for "
            "this bordereau: not tied (rule acquit.domain)") in r.stdout
    assert "NOT tied, its file is not of the NomFic's kind (PESALR1)" in r.stdout
    assert r.stdout.splitlines()[-1] == (
        f"  not recorded: IdBord 1 exercise 2026 (line 31): the acquit's NomFic {TITRES_NAME} "
        f"is a PES_Aller file (TypFic PESALR1), run {run_id} wrote an ORMC file (TypFic "
        f"PESORMC) ({ORMC_NAME}) for this bordereau: not tied (rule acquit.domain)")
    assert _rows(db_url) == (0, 0)


@pytest.fixture
def ormc_and_titres(db_url, tmp_path) -> tuple[str, str, str]:
    """A store holding an ORMC run (the example's first 6 invoices) and a titres run (the
    other 6), each IdBord 1 of 2026 of its sequence: (url, ORMC run, titres run)."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    halves = []
    for name, invoices in (("a.json", data["invoices"][:6]), ("b.json", data["invoices"][6:])):
        halves.append(tmp_path / name)
        halves[-1].write_text(json.dumps(dict(data, invoices=invoices)), encoding="utf-8")
    store = Store(db_url)
    ormc = export_recorded(lambda: store, MAPPING, halves[0], tmp_path / "ormc", RUN)
    titres = export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-titres.yaml",
                             halves[1], tmp_path / "titres", RUN)
    # (made in one second, the two runs come in either order)
    assert sorted((t, r, b.id_bord, b.file) for r, t, b in store.pes_bordereau(
        "21450999400015", "00", 2026, 1)) == [("01", titres.run_id, 1, TITRES_NAME),
                                              ("06", ormc.run_id, 1, ORMC_NAME)]
    return db_url, ormc.run_id, titres.run_id


def test_the_domain_ties_an_idbord_an_ormc_and_a_titres_run_both_hold(ormc_and_titres,
                                                                      tmp_path):
    """Both runs hold IdBord 1 (rôles and titres number apart): DomaineAck 7 (Rôle) is
    recorded on the ORMC run, 6 (Recette) on the titres run."""
    db_url, ormc, titres = ormc_and_titres
    role = _ack(tmp_path, "role.xml", _element(1, True, domain="7"))
    r = run_cli("acquit", role, "--db", db_url, "--record")
    assert r.exit_code == 0, r.output
    assert f"  recorded: IdBord 1 exercise 2026 (line 31) of run {ormc}: accepted" in r.stdout
    assert "possibly" not in r.stdout
    recette = _ack(tmp_path, "recette.xml", _element(1, False, "ERREUR_AUTRE", domain="6"),
                   nom_fic=TITRES_NAME)
    r = run_cli("acquit", recette, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {titres}: rejected on "
            "2026-11-24 with 1 error(s)") in r.stdout
    status = Store(db_url).acknowledgements()
    assert ({run: acks[1][0].accepted for run, acks in status.items()}
            == {ormc: True, titres: False})


def test_a_domain_and_a_nomfic_that_disagree_tie_neither_run(ormc_and_titres, tmp_path):
    """DomaineAck 6 (the titres) in an acquit whose NomFic names the ORMC file: each
    run is contradicted by one of them, neither is tied (refused rather than wrong)."""
    db_url, ormc, titres = ormc_and_titres
    path = _ack(tmp_path, "mixed.xml", _element(1, True, domain="6"))
    r = run_cli("acquit", path, "--db", db_url, "--record")
    # an acceptance recorded on no run is to check: exit 10 (it was 0)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    last = r.stdout.splitlines()[-1]
    assert last.startswith("  - IdBord 1 exercise 2026 (line 31): accepted, not tied: run ")
    # (the two runs in either order: made in one second)
    assert (f"run {ormc} holds IdBord 1, but its TypBord 06 contradicts DomaineAck 6 (rule "
            "acquit.domain)") in last
    assert (f"run {titres} holds IdBord 1, but its file is not of the NomFic's kind "
            "(PESORMC) (rule acquit.domain)") in last
    assert f"  possibly run {ormc} (TypBord 06)" in r.stdout
    assert f"  possibly run {titres} (TypBord 01)" in r.stdout
    assert _rows(db_url) == (0, 0)


def test_replacing_a_status_supersedes_that_bordereau_s_alone_and_once(
        ormc_and_titres, tmp_path, monkeypatch):
    """--replace supersedes the status it replaces, in one statement for all those of a
    run: the titres run's IdBord 1 (the same number) keeps its own, and a status replaced
    before keeps the time it was replaced at, not that of the next replacement."""
    from pesgen import store as store_module

    db_url, ormc, titres = ormc_and_titres
    store = Store(db_url)
    clock = {"now": ""}  # each file recorded a day after the one before
    monkeypatch.setattr(store_module, "utc_now", lambda: clock["now"])
    try:
        for day, (name, accepted, domain, replace) in enumerate((
                ("role.xml", True, "7", False), ("recette.xml", False, "6", False),
                ("role2.xml", False, "7", True), ("role3.xml", True, "7", True)), start=24):
            clock["now"] = f"2026-11-{day}T10:00:00Z"
            ack = _ack(tmp_path, name, _element(1, accepted, None if accepted else
                                                "ERREUR_AUTRE", domain=domain),
                       day=clock["now"][:10], nom_fic=TITRES_NAME if domain == "6" else ORMC_NAME)
            record(tie(read_acquit(ack), store), store, replace=replace)
        status = store.acknowledgements([ormc, titres], history=True)
    finally:
        store.engine.dispose()
    assert [(a.file, a.superseded_at) for a in status[titres][1]] == [("recette.xml", None)]
    assert [(a.file, a.superseded_at) for a in status[ormc][1]] == [
        ("role3.xml", None), ("role2.xml", "2026-11-27T10:00:00Z"),
        ("role.xml", "2026-11-26T10:00:00Z")]


# ------------------------------------------------------------------ the pieces' records

def _piece_records(db_url: str) -> list[tuple[int, str, str | None]]:
    """The run_invoices rows as (IdPce, invoice, record), by IdPce."""
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT id_pce, invoice, record FROM run_invoices ORDER BY id_pce"))]
    finally:
        engine.dispose()


def test_acquit_names_the_input_record_of_each_piece_s_invoice(one_run):
    """Support corrects the school's data at the record the piece in error came from:
    the run recorded each title's position in its input (migration 19), and `pesgen
    acquit` names it beside the invoice, joined to the input's absolute path (as a
    left-out invoice's record), in the text and in the JSON."""
    db_url, _ = one_run
    rows = _piece_records(db_url)
    assert rows[2] == (3, "FA-2026-00103", "$.invoices[2]")
    numbers = [i["number"] for i in json.loads(EXAMPLE.read_text(encoding="utf-8"))["invoices"]]
    assert [r[2] for r in rows] == [f"$.invoices[{numbers.index(r[1])}]" for r in rows]
    where = f"{EXAMPLE.resolve()}:$.invoices[2]"
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert f"  IdPce 3 invoice FA-2026-00103 ({where}):\n    error ERREUR_CODIFICATION" \
        in r.stdout
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--json")
    (element,) = [e for e in json.loads(r.stdout)["elements"] if e["bordereau"] == 1]
    assert [(p["piece"], p["invoice"], p["record"]) for p in element["pieces"]] == [
        (3, "FA-2026-00103", where)]


def test_a_csv_input_s_record_is_its_row(db_url, tmp_path):
    """A CSV input's title is recorded by its row (the first of its invoice's lines, as
    the export's messages name it), named with the file's absolute path."""
    run = export_recorded(lambda: Store(db_url), MAPPINGS / "villeneuve-sur-loing-csv.yaml",
                          EXAMPLES / "school-export.csv", tmp_path / "out", RUN)
    rows = _piece_records(db_url)
    assert rows[0][2] == "2" and all(r[2] and r[2].isdigit() for r in rows), rows
    assert Store(db_url).bordereaux_titles(run.run_id, [1])[1][1][:2] == (
        "FA-2026-00101", f"{(EXAMPLES / 'school-export.csv').resolve()}:2")


def test_a_schema_18_store_gets_the_column_its_runs_none(db_url, tmp_path, monkeypatch):
    """A store pesgen left at schema 18 opens with the current code (migration 19): its
    runs' titles have no record (nothing guessed: `acquit` names the invoice alone, its
    JSON ``record`` null), a run recorded after has one."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:18])
        old = Store(db_url)
    assert "record" not in {c["name"] for c in sa.inspect(old.engine).get_columns(
        "run_invoices")}
    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    export_recorded(lambda: donor, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    record_as_older(donor, old)
    old.engine.dispose()
    store = Store(db_url)
    assert store.schema_version() == len(st.MIGRATIONS) >= 19
    assert {r[2] for r in _piece_records(db_url)} == {None}
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "  IdPce 3 invoice FA-2026-00103:\n    error ERREUR_CODIFICATION" in r.stdout
    r = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--json")
    (element,) = [e for e in json.loads(r.stdout)["elements"] if e["bordereau"] == 1]
    assert [(p["invoice"], p["record"]) for p in element["pieces"]] == [
        ("FA-2026-00103", None)]


def test_runs_find_names_the_title_s_input_record(one_run):
    """`runs find` says where the invoice is in the input its run read (a family's
    invoice to correct): its text beside the invoice, as acquit names a rejected piece's
    (its JSON gave it, its text did not), its JSON as each title's ``record``; a title
    recorded before schema 19 has none: said so in the text, null in the JSON."""
    db_url, run_id = one_run
    where = f"{EXAMPLE.resolve()}:$.invoices[2]"
    r = run_cli("runs", "find", "FA-2026-00103", "--db", db_url, "--format", "json")
    assert [t["record"] for t in json.loads(r.stdout)["titles"]] == [where]
    r = run_cli("runs", "find", "FA-2026-00103", "--db", db_url)
    assert r.stdout.startswith(f"FA-2026-00103 ({where}): run {run_id}  "), r.stdout
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE run_invoices SET record = NULL"))
    engine.dispose()
    r = run_cli("runs", "find", "FA-2026-00103", "--db", db_url, "--format", "json")
    assert [t["record"] for t in json.loads(r.stdout)["titles"]] == [None]
    r = run_cli("runs", "find", "FA-2026-00103", "--db", db_url)
    assert r.stdout.startswith("FA-2026-00103 (input record not kept: the run was recorded "
                               f"before the store kept it): run {run_id}  "), r.stdout


def test_record_waiting_for_the_acknowledgements_lock_says_so_and_gives_up(
        one_run, monkeypatch):
    """`acquit --record` takes the acknowledgements' lock (PostgreSQL's advisory lock,
    which a `payfip link` recording its operation, `runs cancel` or `runs reinstate`
    hold for their transaction). Held by another session, it waited as long as it was
    held, without a word, whatever store_lock_timeout said; now it says past the grace
    what it waits for, gives up after store_lock_timeout with the store's exit code,
    saying that nothing was recorded; run again once the lock is let go, it records. On
    SQLite the store's lock is waited for and bounded as before; its message now says
    what it left."""
    import time

    from .test_payfip_flow import GAVE_UP, _store_held

    db_url, run_id = one_run
    store = Store(db_url)
    postgresql = store.engine.dialect.name == "postgresql"
    monkeypatch.setenv("PESGEN_STORE_LOCK_TIMEOUT", "3")
    started = time.monotonic()
    with _store_held(store, "SELECT pg_advisory_xact_lock(74657348)"):
        done = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record")
    took = time.monotonic() - started
    assert done.exit_code == ExitCode.STATE, done.output
    assert took < GAVE_UP, took
    what = ("another transaction holds the acknowledgements' lock in the state store (a "
            "`payfip link` recording its operation, `runs cancel` or `runs reinstate`, "
            "another `acquit --record`, or another program's session)" if postgresql
            else "another pesgen run holds its lock")
    waited, error, *rest = done.stderr.splitlines()
    assert waited == f"waiting for the state store: {what} (up to 3 s, store_lock_timeout)…"
    held = ("another transaction held the acknowledgements' lock in the state store (a "
            "`payfip link` recording its operation, `runs cancel` or `runs reinstate`, "
            "another `acquit --record`, or another program's session)" if postgresql
            else "another pesgen run held the state store's lock")
    assert error.startswith(
        f"error: {db_url}: {held} for 3 s (store_lock_timeout): acquit --record stopped "
        "waiting: nothing recorded. Let th"), error
    assert _rows(db_url) == (0, 0)
    again = run_cli("acquit", ACKS / "rejected.xml", "--db", db_url, "--record")
    assert again.exit_code == ExitCode.REJECTED, again.output
    assert _rows(db_url) == (1, 1)
    store.engine.dispose()
