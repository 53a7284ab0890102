"""`pesgen acquit`: what is not all fine, a rejection aside, exits 10 (ExitCode.TO_CHECK)
with a summary at the end of the report and `--json`'s `to_check`: an acceptance with
errors, an acceptance pesgen cannot tie to one run, an IdColl left empty; a Latin-1 file
without its XML declaration is refused as `acquit.encoding`; ERREUR_DOUBLON_PIECE's
advice (docs/state.md, "Not all fine: exit 10"). On SQLite and PostgreSQL where the store
is written (db_url)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from pesgen import errors
from pesgen._display import shown
from pesgen.acquit import (
    AckElement,
    AckError,
    AckPiece,
    Acquit,
    ElementReport,
    NamedRun,
    PieceReport,
    as_json,
    read_acquit,
    tie,
)
from pesgen.errors import ExitCode
from pesgen.runs import export_recorded
from pesgen.store import Bordereau, Store

from .conftest import run_cli
from .test_acquit import ACKS, _head, _Store, _write
from .test_acquit_record import EXAMPLE, MAPPING, RUN, _ack, _element, _helios, _rows

INVOICE = "FA-2026-00103"  # IdPce 3 of the example's IdBord 1


@pytest.fixture
def one_run(db_url, tmp_path) -> tuple[str, str]:
    """A store at ``db_url`` holding the example's run (IdBord 1 of 2026): (url, run)."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    return db_url, run.run_id


def _with_errors(accepted: bool, *, bordereau_code: str | None = "ERREUR_AUTRE",
                 piece_code: str | None = "ERREUR_DOUBLON_PIECE", domain: str = "7",
                 number: int = 1) -> str:
    """An ElementACQUIT of IdBord ``number`` of 2026 with an error of its own and one of
    its IdPce 3."""
    own = ("" if bordereau_code is None else
           f'      <Erreur>\n        <NumAnoAck V="{bordereau_code}"/>\n'
           '        <LibelleAnoAck V="Avertissement"/>\n      </Erreur>\n')
    piece = ("" if piece_code is None else
             '      <DetailPiece>\n        <NumPiece V="3"/>\n        <Erreur>\n'
             f'          <NumAnoAck V="{piece_code}"/>\n'
             '          <LibelleAnoAck V="Pièce déjà connue"/>\n        </Erreur>\n'
             "      </DetailPiece>\n")
    return (f'    <ElementACQUIT>\n      <DomaineAck V="{domain}"/>\n      <EtatAck '
            f'V="{int(accepted)}"/>\n      <NumBord V="{number}"/>\n      <ExerciceBord '
            f'V="2026"/>\n{own}{piece}    </ElementACQUIT>\n')


def test_the_exit_code_is_named_to_check():
    assert ExitCode.TO_CHECK == 10
    assert not hasattr(ExitCode, "UNTIED")
    assert "TO_CHECK" in Path(errors.__file__).read_text(encoding="utf-8")


# ------------------------------------------------------------------ accepted, with errors

def test_an_acceptance_with_errors_exits_10_naming_each_with_advice(one_run, tmp_path):
    """The trésorerie took the bordereau and names errors all the same: it was exit 0,
    "accepted", the errors below; a script saw nothing."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "warned.xml", _with_errors(True, piece_code="ERREUR_CODIFICATION"))
    r = run_cli("acquit", path, "--db", db_url)
    assert r.exit_code == ExitCode.TO_CHECK == 10, r.output
    lines = r.stdout.splitlines()
    assert lines[0].endswith(": 1 element(s), all accepted, 1 to check (listed at the end)")
    assert lines[1] == "IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): accepted, with 2 " \
                       "error(s)"
    advice = ("the trésorerie accepted IdBord 1 (its titles are in Hélios) but names 2 "
              "error(s) (above): ask it what they mean for the titles before anything else; "
              "do not cancel the bordereau nor export its invoices again to fix them: the "
              "families would be billed twice")
    assert f"  next: {advice}" in lines
    assert "pesgen runs cancel" not in r.stdout
    assert lines[-2:] == [
        "not all fine: 1 to check (exit 10):",
        "  - IdBord 1 exercise 2026 (line 31): accepted, with 2 error(s): ERREUR_AUTRE, "
        f"ERREUR_CODIFICATION (IdPce 3, invoice {INVOICE}); next: {advice}"]
    data = json.loads(run_cli("acquit", path, "--db", db_url, "--json").stdout)
    assert (data["accepted"], data["rejected"]) == (True, 0)
    (check,) = data["to_check"]
    assert check == {"line": 31, "bordereau": 1, "exercise": 2026,
                     "reasons": ["accepted-with-errors"], "said": lines[-1][4:].split(
                         "; next: ")[0], "next_step": advice}
    assert data["elements"][0]["next_step"] == advice
    # recorded as accepted, with its errors: still exit 10
    done = run_cli("acquit", path, "--db", db_url, "--record")
    assert done.exit_code == ExitCode.TO_CHECK, done.output
    assert (f"  recorded: IdBord 1 exercise 2026 (line 31) of run {run_id}: accepted on "
            "2026-11-24 with 2 error(s)") in done.stdout.splitlines()
    assert _helios(db_url) == ["  Hélios: IdBord 1 accepted on 2026-11-24 with 2 error(s)"]


def test_an_acceptance_without_error_still_exits_0(one_run, tmp_path):
    db_url, _ = one_run
    path = _ack(tmp_path, "ok.xml", _with_errors(True, bordereau_code=None, piece_code=None))
    r = run_cli("acquit", path, "--db", db_url, "--json")
    assert r.exit_code == ExitCode.OK, r.output
    assert json.loads(r.stdout)["to_check"] == []
    plain = run_cli("acquit", path, "--db", db_url)
    assert plain.stdout.splitlines()[0].endswith(": 1 element(s), all accepted")
    assert "to check" not in plain.stdout and "not all fine" not in plain.stdout


def test_errors_of_what_is_not_pesgen_s_do_not_change_the_exit(one_run, tmp_path):
    """A Dépense bordereau, or a recette bordereau no run of this store (of the acquit's
    collectivity) holds (the finance package's), accepted with errors: said, exit 0."""
    db_url, _ = one_run
    path = _ack(tmp_path, "others.xml", _with_errors(True, domain="5"),
                _with_errors(True, domain="6", number=42))
    r = run_cli("acquit", path, "--db", db_url)
    assert r.exit_code == ExitCode.OK, r.output
    assert "accepted, with 2 error(s): a bordereau of domain Dépense" in r.stdout
    assert "accepted, with 2 error(s): no run of this store holds it" in r.stdout


# ------------------------------------------------------------------ ERREUR_DOUBLON_PIECE

def test_a_doublon_piece_says_ask_the_tresorerie_runs_find_and_never_export_again(
        one_run, tmp_path):
    db_url, run_id = one_run
    rejected = _ack(tmp_path, "doublon.xml", _with_errors(False, bordereau_code=None))
    r = run_cli("acquit", rejected, "--db", db_url)
    assert r.exit_code == ExitCode.REJECTED, r.output
    (step,) = [ln for ln in r.stdout.splitlines() if ln.startswith("  next: ")]
    find = f"pesgen runs find {INVOICE} --db {shlex.quote(db_url)}"
    assert step.startswith(
        "  next: Hélios knows a piece of IdBord 1 already (ERREUR_DOUBLON_PIECE: invoice "
        f"{INVOICE}): its title may be at the trésorerie already, from this file sent "
        "before or from another bordereau. Ask the trésorerie which title it holds; "
        f"`{find}` shows which run(s) of this store hold it. Never export it again to clear "
        "the error: the family would be billed twice. Cancel the bordereau (pesgen runs "
        f"cancel {run_id} --bordereau 1 ")
    assert step.endswith("only once the trésorerie has said which titles it holds, and "
                         "export again only the invoices it does not hold")
    # the command it names works and names the run
    found = run_cli(*shlex.split(find)[1:])
    assert found.exit_code == 0, found.output
    assert run_id in found.stdout
    # accepted with the same error: the same advice, and never cancel
    accepted = _ack(tmp_path, "doublon-ok.xml", _with_errors(True, bordereau_code=None))
    r = run_cli("acquit", accepted, "--db", db_url)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    assert r.stdout.splitlines()[-1].endswith(
        "Never export it again to clear the error: the family would be billed twice. The "
        "trésorerie accepted IdBord 1: do not cancel it")
    assert "pesgen runs cancel" not in r.stdout


def test_a_doublon_piece_of_an_unknown_invoice_names_runs_find_by_invoice():
    """No run tied (no invoice known): the advice says which command, by invoice."""
    e = AckElement(1, "6", False, 5, 2026, None, None, (),
                   (AckPiece(3, (AckError("ERREUR_DOUBLON_PIECE", "x"),), (), 40),))
    r = ElementReport(e, "bordereau", pieces=(PieceReport(e.pieces[0], None),))
    assert "`pesgen runs find INVOICE` (the invoice of the piece named)" in \
        r._doublon_piece(None)


def test_a_doublon_piece_of_a_bordereau_whose_number_is_left_empty_says_the_bordereau():
    """The acquit leaves NumBord empty: the advice speaks of "the bordereau", not of an
    IdBord it does not know, and says not to cancel what the trésorerie accepted."""
    e = AckElement(1, "6", True, None, None, None, None, (),
                   (AckPiece(3, (AckError("ERREUR_DOUBLON_PIECE", "x"),), (), 40),),
                   (("NumBord", 35),))
    (r,) = tie(Acquit("a.xml", "21450999400015", "00", None, None, (e,)), _Store()).elements
    assert r.kind == "unnamed"
    step = r.next_step()
    assert step.startswith("Hélios knows a piece of the bordereau already "
                           "(ERREUR_DOUBLON_PIECE): its title may be at the trésorerie")
    assert step.endswith(". The trésorerie accepted the bordereau: do not cancel it")


# ------------------------------------------------------------------ acceptances not tied

def test_an_acceptance_two_runs_could_answer_is_to_check():
    e = AckElement(1, "6", True, 5, 2026, None, None, (), ())
    report = tie(Acquit("a.xml", "21450999400015", "00", None, None, (e,)),
                 _Store("01", "02"))
    (check,) = report.to_check()
    assert check.reasons == ("untied",)
    assert check.said == ("IdBord 5 exercise 2026 (line 1): accepted, not tied: 2 runs of "
                          "this store hold IdBord 5 (TypBord 01, 02): pesgen cannot tell "
                          "which one the trésorerie answers")
    assert check.next_step == (
        "check with the trésorerie which bordereau it answers (`pesgen runs show run-01`, "
        "`pesgen runs show run-02`); if it is a run's, record it on that run (RUN: the one "
        "of those above it answers) with `pesgen acquit FILE --record --run RUN`: until "
        "then `runs cancel` does not know that the trésorerie took it")
    # the acquit's path when known, quoted for a shell
    [check] = report.to_check(file="acquits/l'école.xml")
    assert "with `pesgen acquit 'acquits/l'\"'\"'école.xml' --record --run RUN`: " in \
        (check.next_step or "")
    # as a library caller's JSON report gives it (its to_check made there)
    [listed] = as_json(report, file="acquits/l'école.xml")["to_check"]
    assert listed["next_step"] == check.next_step
    # one run of the domain: tied, nothing to check
    assert tie(Acquit("a.xml", "21450999400015", "00", None, None, (e,)),
               _Store("01")).to_check() == []


def test_an_acceptance_whose_domain_contradicts_the_run_exits_10(one_run, tmp_path):
    """DomaineAck 6 for the rôle: not tied, nothing recorded: it was exit 0."""
    db_url, run_id = one_run
    path = _ack(tmp_path, "six.xml", _element(1, True, domain="6"))
    r = run_cli("acquit", path, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    assert r.stdout.splitlines()[-1] == (
        f"  - IdBord 1 exercise 2026 (line 31): accepted, not tied: run {run_id} holds IdBord "
        "1, but its TypBord 06 contradicts DomaineAck 6 (rule acquit.domain); next: check "
        f"with the trésorerie which bordereau it answers (`pesgen runs show {run_id} --db "
        f"{shlex.quote(db_url)}`); if it is a run's, record it on that run with `pesgen "
        f"acquit {shlex.quote(str(path))} --record --run {run_id} --db {shlex.quote(db_url)}`:"
        " until then `runs cancel` does not know that the trésorerie took it")
    assert _rows(db_url) == (0, 0)
    # the advice followed: tied and recorded, all fine
    followed = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert followed.exit_code == ExitCode.OK, followed.output
    assert "to check" not in followed.stdout


def test_a_rejection_tied_to_no_run_stays_9_and_lists_no_acceptance(one_run, tmp_path):
    db_url, _ = one_run
    path = _ack(tmp_path, "six.xml", _element(1, False, "ERREUR_AUTRE", domain="6"))
    r = run_cli("acquit", path, "--db", db_url, "--json")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert json.loads(r.stdout)["to_check"] == []


def test_an_acquit_read_with_a_store_of_no_run_is_to_check(tmp_path):
    """An empty store (a mistyped --db made with --create-store): exit 10, not 0."""
    db = tmp_path / "empty.sqlite3"
    Store(f"sqlite:///{db}")
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    assert r.stdout.splitlines()[-1].startswith(
        "  - IdBord 1 exercise 2026 (line 31): accepted, not tied: no run of this store "
        "holds it: this store holds no run (see above); next: check that this is the store")


class _Held(_Store):
    """_Store, of runs of the acquit's collectivity and budget, IdPce 3 being INVOICE."""

    def piece_invoices(self, run_id, id_bord):
        return {3: INVOICE}

    def collectivities(self):
        return [("21450999400015", "00", 1, "villeneuve-sur-loing")]


def test_what_is_not_pesgen_s_has_no_identifier_to_check_nor_errors_of_its_own():
    """A market, even under a check domain (0), is not pesgen's: its errors are nothing
    to check; nor is a piece left without its number in a bordereau pesgen ties to no
    run (a Dépense, another software's recette): only a tied bordereau's pieces are
    pesgen's to identify (exit 0 for both)."""
    market = AckElement(1, "0", True, None, None, "M-2026-04", None,
                        (AckError("ERREUR_AUTRE", "x"),), ())
    blank = AckPiece(None, (AckError("ERREUR_CODIFICATION", "x"),), (), 41)
    depense = AckElement(2, "5", True, 5, 2026, None, None, (), (blank,))
    nobody = AckElement(3, "6", True, 5, 2026, None, None, (), (blank,))
    report = tie(Acquit("a.xml", "21450999400015", "00", None, None,
                        (market, depense, nobody)), _Held())
    assert [(r.kind, r.ours, r.unidentified) for r in report.elements] == [
        ("market", False, ()), ("other", False, ()), ("bordereau", False, ())]
    assert report.to_check() == []
    # the same piece in the bordereau one run holds: left empty, never guessed
    (tied,) = tie(Acquit("a.xml", "21450999400015", "00", None, None, (nobody,)),
                  _Held("01")).elements
    assert tied.unidentified == ("NumPiece is empty (line 41)",)


def test_an_acceptance_with_errors_of_a_recette_without_its_exercise_is_ours_to_check():
    """No ExerciceBord: no run is looked up, but the recette bordereau may be pesgen's:
    its errors are to check beside the exercise left out, never dropped as another
    software's."""
    e = AckElement(1, "6", True, 5, None, None, None, (AckError("ERREUR_AUTRE", "x"),), ())
    (r,) = tie(Acquit("a.xml", "21450999400015", "00", None, None, (e,)), _Store()).elements
    assert (r.kind, r.found, r.ours) == ("bordereau", (), True)
    assert r.to_check().reasons == ("accepted-with-errors", "unidentified")


def test_an_acceptance_without_its_exercise_under_run_is_to_check_once_as_unidentified():
    """--run names a run, the accepted element leaves out ExerciceBord: not tied, and
    to check for the identifier left out only, not a second time as an acceptance pesgen
    cannot tie (whose advice, --run, is what was done)."""
    e = AckElement(1, "6", True, 5, None, None, None, (), ())
    named = NamedRun("run-01", "01", 2026, (Bordereau(5, 1, "10.00", "F01.xml"),),
                     (("F01.xml", 5),))
    report = tie(Acquit("a.xml", "21450999400015", "00", None, None, (e,)), _Store("01"),
                 named)
    (r,) = report.elements
    assert (r.run, r.untied) == (None, "no ExerciceBord: pesgen cannot tell that it is the "
                                 "exercise 2026 of run run-01 (--run): not tied")
    (check,) = report.to_check()
    assert check.reasons == ("unidentified",)
    assert check.said == ("IdBord 5 (line 1): left empty or out by the acquit, never "
                          "guessed: no ExerciceBord")


# ------------------------------------------------------------------ IdColl left empty

def _empty_id_coll(tmp_path: Path, element: str | None = None) -> Path:
    text = _head(element) if element is not None else (
        ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    assert text.count('<IdColl V="21450999400015"/>') == 1
    return _write(tmp_path, text.replace('<IdColl V="21450999400015"/>', '<IdColl V=""/>'),
                  "no-coll.xml")


def test_an_empty_idcoll_is_read_as_not_given(tmp_path):
    a = read_acquit(_empty_id_coll(tmp_path))
    assert (a.id_coll, a.id_coll_empty_at, a.cod_bud) == (None, 22, "00")
    assert a.id_coll_said == "IdColl ? (empty, line 22)"


def test_an_empty_idcoll_is_valid_against_the_official_xsd(tmp_path, official_xsd):
    """Base_Num14_Light: « (0 à N) caractères numériques »."""
    assert read_acquit(_empty_id_coll(tmp_path), official_xsd).id_coll is None


def test_an_empty_idcoll_exits_10_ties_nothing_and_refuses_run(one_run, tmp_path):
    """It refused the whole file (exit 4, "IdColl has no value"); it is now read as not
    given: nothing tied (no run of any collectivity guessed), exit 10; --record records
    nothing, --record --run refuses (exit 7): the one check --run rests on is the
    collectivity's."""
    db_url, run_id = one_run
    path = _empty_id_coll(tmp_path)
    r = run_cli("acquit", path, "--db", db_url)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("no-coll.xml: PES_ACQUIT of IdColl ? (empty, line 22) budget 00")
    assert lines[1] == ("IdBord 1 exercise 2026 (DomaineAck 7 Rôle, line 31): accepted: the "
                        "acquit's IdColl is empty (line 22): pesgen cannot tell whose acquit "
                        "it is and does not guess: not tied; ask the trésorerie (rule "
                        "acquit.id-coll)")
    assert run_id not in r.stdout
    assert lines[-3:] == [
        "not all fine: 2 to check (exit 10):",
        "  - the acquit (line 22): its IdColl is empty: pesgen cannot tell whose acquit it "
        "is, and ties none of its bordereaux (rule acquit.id-coll); next: ask the trésorerie "
        "whose acquit it is and for the file again, with its IdColl; pesgen records nothing "
        "of it (--record --run is refused)",
        "  - IdBord 1 exercise 2026 (line 31): accepted, not tied: the acquit's IdColl is "
        "empty (see above)"]
    data = json.loads(run_cli("acquit", path, "--db", db_url, "--json").stdout)
    assert (data["id_coll"], data["id_coll_empty_line"]) == (None, 22)
    assert [x["reasons"] for x in data["to_check"]] == [["id-coll-empty"], ["untied"]]
    assert [x["line"] for x in data["to_check"]] == [22, 31]  # the IdColl's, the element's

    recorded = run_cli("acquit", path, "--db", db_url, "--record")
    assert recorded.exit_code == ExitCode.TO_CHECK, recorded.output
    assert "nothing recorded: its IdColl is empty (line 22): pesgen ties none of its " \
           "bordereaux" in recorded.stdout
    refused = run_cli("acquit", path, "--db", db_url, "--record", "--run", run_id)
    assert refused.exit_code == ExitCode.STATE == 7, refused.output
    assert refused.stderr.startswith(
        f"error: no-coll.xml leaves its IdColl empty: pesgen cannot check that run {run_id} "
        "(of IdColl 21450999400015) is of the acquit's collectivity, and --run records no "
        "tie it cannot check; nothing recorded")
    assert "no-coll.xml:22: IdColl is empty (V=\"\"): whose acquit it is is not given (rule " \
           "acquit.id-coll)" in refused.stderr
    assert _rows(db_url) == (0, 0)
    assert _helios(db_url) == ["  Hélios: IdBord 1 no acknowledgement recorded"]


def test_an_empty_idcoll_with_a_rejection_exits_9(one_run, tmp_path):
    db_url, _ = one_run
    path = _empty_id_coll(tmp_path, _element(1, False, "ERREUR_AUTRE"))
    r = run_cli("acquit", path, "--db", db_url)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert r.stdout.splitlines()[-2] == "and 1 to check beside the 1 rejected (exit 9):"
    assert "pesgen runs cancel" not in r.stdout


# ------------------------------------------------------------------ the file's encoding

def _latin1(tmp_path: Path, declaration: str | None) -> Path:
    """accepted.xml with a Latin-1 'é' in LibelleColBud (line 24 with a declaration), its
    XML declaration replaced by ``declaration`` (None: removed)."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    first, rest = text.split("\n", 1)
    assert first == '<?xml version="1.0" encoding="ISO-8859-1"?>'
    rest = rest.replace("VILLENEUVE SUR LOING", "VILLENEUVE-SUR-LOING é")
    body = rest if declaration is None else f"{declaration}\n{rest}"
    path = tmp_path / "latin1.xml"
    path.write_bytes(body.encode("iso-8859-1"))
    return path


@pytest.mark.parametrize(("declaration", "line", "said"), [
    (None, 24, "it has no XML declaration naming an encoding, so XML reads it as UTF-8"),
    ('<?xml version="1.0"?>', 25,
     "it has no XML declaration naming an encoding, so XML reads it as UTF-8"),
    ('<?xml version="1.0" encoding="UTF-8"?>', 25, "it declares encoding UTF-8"),
], ids=["no-declaration", "no-encoding", "utf-8-declared"])
def test_a_latin1_file_read_as_utf8_is_refused_as_acquit_encoding(tmp_path, declaration,
                                                                   line, said):
    """It was a raw parser error (acquit.xml, "Invalid bytes in character encoding")."""
    r = run_cli("acquit", _latin1(tmp_path, declaration))
    assert r.exit_code == ExitCode.INPUT, r.output
    assert r.stderr.startswith(
        f"error: {tmp_path / 'latin1.xml'} is not UTF-8, the encoding XML reads it in: "
        "refused, nothing read\n")
    (problem,) = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert problem.startswith(
        f"  - latin1.xml:{line}: the file is not UTF-8, and {said}: byte 0xE9 at line {line} "
        "is not UTF-8 (in Latin-1 it is é). The guichet XML writes its acknowledgements in "
        "ISO-8859-1 and says so in their first line, <?xml version=\"1.0\" "
        "encoding=\"ISO-8859-1\"?>")
    assert problem.endswith("pesgen does not guess an encoding (rule acquit.encoding)")
    assert "Invalid bytes" not in r.stderr


def test_a_latin1_file_behind_a_utf8_byte_order_mark_is_refused_as_acquit_encoding(tmp_path):
    """A UTF-8 byte order mark makes XML read the file as UTF-8 whatever its declaration
    says (an editor put one before the guichet's Latin-1 file): its é is refused as
    acquit.encoding, saying so, not the parser's "Invalid bytes in character encoding"
    (acquit.xml) that its ISO-8859-1 declaration made it before."""
    path = _latin1(tmp_path, '<?xml version="1.0" encoding="ISO-8859-1"?>')
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    r = run_cli("acquit", path)
    assert r.exit_code == ExitCode.INPUT, r.output
    (problem,) = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert problem.startswith(
        "  - latin1.xml:25: the file is not UTF-8, and it begins with a UTF-8 byte order mark "
        "(bytes EF BB BF), so XML reads it as UTF-8 whatever its declaration (encoding "
        "ISO-8859-1) says: byte 0xE9 at line 25 is not UTF-8 (in Latin-1 it is é)")
    assert ("a byte order mark was put before its first line after it was downloaded (an "
            "editor saving it)") in problem
    assert problem.endswith("(rule acquit.encoding)") and "Invalid bytes" not in r.stderr
    # the same bytes in UTF-8 behind the mark, its declaration left, are read
    utf8 = tmp_path / "utf8.xml"
    utf8.write_bytes(b"\xef\xbb\xbf" + path.read_bytes()[3:].decode("iso-8859-1")
                     .encode("utf-8"))
    assert read_acquit(utf8).coll_label == "COMMUNE DE VILLENEUVE-SUR-LOING é"


def test_a_file_in_the_encoding_it_declares_is_read(tmp_path):
    """The same text with its Latin-1 declaration, or in UTF-8 without one, is read."""
    path = _latin1(tmp_path, '<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert read_acquit(path).coll_label == "COMMUNE DE VILLENEUVE-SUR-LOING é"
    utf8 = tmp_path / "utf8.xml"
    utf8.write_bytes(path.read_bytes().decode("iso-8859-1").split("\n", 1)[1].encode("utf-8"))
    assert read_acquit(utf8).coll_label == "COMMUNE DE VILLENEUVE-SUR-LOING é"


def test_a_file_not_well_formed_for_another_reason_is_still_acquit_xml(tmp_path):
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    path = _write(tmp_path, text.replace("</EnTetePES>", "</EnTete>"))
    r = run_cli("acquit", path)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "(rule acquit.xml)" in r.stderr and "acquit.encoding" not in r.stderr


def test_a_utf16_file_not_well_formed_is_acquit_xml_not_read_as_utf8(tmp_path):
    """A UTF-16 file (its byte order mark, as XML reads it) is not one "read as UTF-8":
    not well-formed, it is the parser's finding, never "byte 0xFF is not UTF-8"."""
    text = (ACKS / "accepted.xml").read_text(encoding="iso-8859-1")
    path = tmp_path / "utf16.xml"
    path.write_bytes(text.replace('encoding="ISO-8859-1"', 'encoding="UTF-16"', 1)
                     .replace("</EnTetePES>", "</EnTete>").encode("utf-16"))
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    r = run_cli("acquit", path)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "is not a well-formed XML file" in r.stderr and "(rule acquit.xml)" in r.stderr
    assert "not UTF-8" not in r.stderr and "acquit.encoding" not in r.stderr


@pytest.mark.parametrize(("domain", "bordereau", "kind", "step"), [
    ("3", 5, "other", "the guichet passed the signature of a bordereau (IdBord 5) but names "
     "1 error(s) (above): ask the trésorerie what they mean; if it is a recette of yours, "
     "`pesgen runs list` shows its run"),
    ("0", None, "file", "the guichet took the file at its first step but names 1 error(s) "
     "(above): ask the trésorerie what they mean; each bordereau's own element says "
     "whether it is accepted"),
], ids=["signature", "whole-file"])
def test_a_check_or_the_whole_file_accepted_with_errors_is_to_check(domain, bordereau, kind,
                                                                    step):
    """What may answer pesgen's file (a check of a bordereau, the file as a whole) is to
    check too, with advice fit for it (no "its titles are in Hélios")."""
    e = AckElement(1, domain, True, bordereau, 2026 if bordereau else None, None, None,
                   (AckError("ERREUR_AUTRE", "x"),), ())
    check = ElementReport(e, kind).to_check()
    assert (check.reasons, check.next_step) == (("accepted-with-errors",), step)
    # a PJ accepted with errors: not pesgen's
    pj = AckElement(1, "4", True, None, None, None, "PJ1", (AckError("ERREUR_PJ", "x"),), ())
    assert ElementReport(pj, "attachment").to_check() is None


# ------------------------------------------------------------------ accepted, but cancelled

def test_an_acceptance_of_a_bordereau_cancelled_in_pesgen_is_to_check(one_run, tmp_path):
    """The trésorerie took a bordereau pesgen holds as cancelled (its invoices may be
    exported again: billed twice): it was exit 0, "all accepted"; now 10, listed with
    what to do, recorded all the same."""
    db_url, run_id = one_run
    assert run_cli("runs", "cancel", run_id, "--reason", "rejected by phone", "--db",
                   db_url).exit_code == 0
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--json")
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    (check,) = json.loads(r.stdout)["to_check"]
    assert check["reasons"] == ["accepted-cancelled"]
    assert "accepted, but cancelled in pesgen" in check["said"]
    assert "(rejected by phone)" in check["said"]
    assert (f"`pesgen runs cancel {run_id} --db {shlex.quote(db_url)} --bordereau 1 "
            "--annulled-by-tresorerie --reason TEXT`") in check["next_step"]
    assert ("if it keeps them, reinstate them, so that none of their invoices is exported "
            f"again: `pesgen runs reinstate {run_id} --db {shlex.quote(db_url)} --bordereau 1 "
            "--reason TEXT`") in check["next_step"]
    recorded = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url, "--record")
    assert recorded.exit_code == ExitCode.TO_CHECK, recorded.output
    assert recorded.stdout.splitlines()[0].endswith(
        ": 1 element(s), all accepted, 1 to check (listed at the end)")
    assert _rows(db_url) == (1, 1)  # recorded all the same


def test_an_acceptance_with_errors_of_a_cancelled_bordereau_gives_both_reasons():
    """Accepted with an error that has no code, on a bordereau pesgen holds as cancelled:
    one entry to check, each reason said in turn and each one's step, the error named
    '(no code)' at its piece."""
    from pesgen.acquit import Recorded

    e = AckElement(31, "7", True, 1, 2026, None, None, (), (
        AckPiece(3, (AckError(None, "Civilité inconnue"),), ()),))
    run = Recorded("r1", "06", "PESORMC_1.xml", 11, "2527.25", "2026-11-25",
                   "rejected by phone")
    check = ElementReport(e, "bordereau", (run,), (PieceReport(e.pieces[0],
                                                               "FA-2026-00103"),)).to_check()
    assert check.reasons == ("accepted-with-errors", "accepted-cancelled")
    assert check.said == (
        "IdBord 1 exercise 2026 (line 31): accepted, with 1 error(s): (no code) (IdPce 3, "
        "invoice FA-2026-00103); accepted, but cancelled in pesgen 2026-11-25 (rejected "
        "by phone)")
    first, second = check.next_step.split("; tell the trésorerie: ")
    assert first.startswith("the trésorerie accepted IdBord 1 (its titles are in Hélios)")
    assert second.startswith("it took titles pesgen holds as cancelled")


def test_an_acceptance_of_a_bordereau_the_tresorerie_annulled_stays_0(one_run, tmp_path):
    """Cancelled with --annulled-by-tresorerie: what the acceptance says is known and
    settled; nothing to check."""
    db_url, run_id = one_run
    assert run_cli("acquit", ACKS / "accepted.xml", "--db", db_url,
                   "--record").exit_code == 0
    assert run_cli("runs", "cancel", run_id, "--reason", "titres annulés", "--db", db_url,
                   "--annulled-by-tresorerie").exit_code == 0
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url)
    assert r.exit_code == ExitCode.OK, r.output
    assert "to check" not in r.stdout


def test_the_step_of_an_acceptance_of_a_cancelled_bordereau_can_be_followed(one_run):
    """The step acquit gives (`runs cancel RUN --bordereau N --annulled-by-tresorerie`)
    for a bordereau cancelled before the acquit accepted it: the confirmation is recorded
    on the cancelled bordereau, nothing else, and the acquit then exits 0. It was refused
    with exit 7, "already cancelled": the acquit stayed to check, with no way out."""
    db_url, run_id = one_run
    assert run_cli("runs", "cancel", run_id, "--reason", "rejected by phone", "--db",
                   db_url).exit_code == 0
    (check,) = json.loads(run_cli("acquit", ACKS / "accepted.xml", "--db", db_url,
                                  "--json").stdout)["to_check"]
    step = check["next_step"].split("if it annuls them, record it with `")[1].split("`")[0]
    words = shlex.split(step.replace("TEXT", "'annulé par la trésorerie'"))
    assert words[:3] == ["pesgen", "runs", "cancel"]
    done = run_cli(*words[1:])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == (
        f"run {run_id}: IdBord 1 cancelled already: the trésorerie's annulment of its "
        "titles recorded (nothing else changed)")
    assert "rejected by phone (confirmed " in done.stdout
    assert "annulé par la trésorerie [annulled by the trésorerie" in done.stdout
    r = run_cli("acquit", ACKS / "accepted.xml", "--db", db_url)
    assert r.exit_code == ExitCode.OK, r.output
    assert "to check" not in r.stdout and "annulled by the trésorerie" in r.stdout
    # confirmed once: the same command again is refused, as any second cancellation
    again = run_cli(*words[1:])
    assert again.exit_code == 7 and "already cancelled" in again.output, again.output


def test_a_run_cancelled_whole_is_confirmed_annulled_without_naming_its_bordereau(one_run):
    db_url, run_id = one_run
    store = Store(db_url)
    store.cancel(run_id, "rejected by phone")
    done = store.cancel(run_id, "annulé", annulled_by_tresorerie=True)
    assert (done.confirmed, done.bordereaux, done.invoices) == (True, (1,), 0)
    assert done.run.status == "cancelled"
    assert done.run.cancel_reason.startswith("rejected by phone (confirmed ")
    [b] = _bordereaux(store, run_id)
    assert "[annulled by the trésorerie" in b.reason


def _bordereaux(store, run_id):
    with store.engine.connect() as conn:
        return store.bordereaux(conn, run_id)


def test_every_step_masks_the_password_of_the_store_s_url(one_run, tmp_path):
    """The steps acquit's summary gives (a tie to check, a doublon piece, a cancelled
    bordereau accepted) name --db with its password masked, as next: does."""
    db_url, run_id = one_run
    url = "postgresql://pesgen:s3cr%40t@db.example/pesgen?sslpassword=k3y"
    store = Store(db_url)
    doublon = tie(read_acquit(_ack(tmp_path, "d.xml", _with_errors(True,
                                                                bordereau_code=None))), store)
    untied = tie(read_acquit(_ack(tmp_path, "six.xml", _element(1, True, domain="6"))), store)
    assert run_cli("runs", "cancel", run_id, "--reason", "x", "--db", db_url).exit_code == 0
    cancelled = tie(read_acquit(ACKS / "accepted.xml"), Store(db_url))
    steps = [x.next_step for report in (doublon, untied, cancelled)
             for x in report.to_check(url)]
    assert len(steps) == 3 and all(steps), steps
    for step in steps:
        assert "s3cr" not in step and "k3y" not in step, step
        assert "pesgen:***@db.example" in step, step


def test_utf8_bytes_in_a_file_declaring_iso_8859_1_are_read_with_a_warning(tmp_path):
    """A file converted to UTF-8 on its way, its first line still declaring ISO-8859-1:
    XML reads each accented letter as two ("Civilité" as "CivilitÃ©"), which passed
    silently. Read as it declares (nothing refused, the same exit), with a warning for
    each value so read, naming its line and XPath and what its bytes say in UTF-8; on
    standard error, and in --json's warnings. The guichet's own file warns of nothing."""
    store = tmp_path / "store.sqlite3"
    assert run_cli("export", "-m", MAPPING, "-i", EXAMPLE, "-o", tmp_path / "out", "--date",
                   RUN.isoformat(), "--db", store, "--create-store").exit_code == 0
    ack = tmp_path / "converted.xml"
    ack.write_bytes((ACKS / "rejected.xml").read_bytes().decode("iso-8859-1").encode("utf-8"))
    r = run_cli("acquit", ack, "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "error ERREUR_CODIFICATION: CivilitÃ© inconnue" in r.stdout  # as declared
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warned) == 2, r.stderr
    assert warned[0].startswith(
        "warning: converted.xml:38 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/Erreur/LibelleAnoAck: "
        "LibelleAnoAck reads 'Le montant du bordereau ne correspond pas Ã\xa0 la somme des "
        "pi… (65 characters)' as the file declares it (ISO-8859-1), but its bytes are UTF-8: "
        "'Le montant du bordereau ne correspond pas à la somme des piè… (63 characters)'")
    assert warned[1] == (
        "warning: converted.xml:44 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/DetailPiece/Erreur/"
        "LibelleAnoAck: LibelleAnoAck reads 'CivilitÃ© inconnue' as the file declares it "
        "(ISO-8859-1), but its bytes are UTF-8: 'Civilité inconnue'. The file was converted "
        "to UTF-8 after the guichet wrote it and its first line left declaring ISO-8859-1: "
        "read, shown and recorded as declared; take the file again from the guichet as it "
        "came (rule acquit.mojibake)")
    j = run_cli("acquit", ack, "--db", store, "--json")
    assert (j.exit_code, j.stderr) == (ExitCode.REJECTED, "")
    data = json.loads(j.stdout)
    assert [(w["rule"], w["record"]) for w in data["warnings"]] == [
        ("acquit.mojibake", "converted.xml:38 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/Erreur/"
                            "LibelleAnoAck"),
        ("acquit.mojibake", "converted.xml:44 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/"
                            "DetailPiece/Erreur/LibelleAnoAck")]
    # the guichet's file as it wrote it (ISO-8859-1, accented): no warning
    plain = run_cli("acquit", ACKS / "rejected.xml", "--db", store)
    assert plain.exit_code == ExitCode.REJECTED and "warning" not in plain.stderr
    assert json.loads(run_cli("acquit", ACKS / "rejected.xml", "--db", store,
                              "--json").stdout)["warnings"] == []


def test_the_text_names_ten_values_read_as_utf8_then_how_many_more(capsys):
    """A file of many libellés so read (one a rejected element) would fill the terminal:
    the first ten are said, then how many more and where all of them are (--json)."""
    from pesgen.cli import _warn_acquit

    _warn_acquit(tuple(errors.Problem("acquit.mojibake", f"value {n}", record=f"a.xml:{n}")
                       for n in range(1, 13)), "'/srv/acquits/a b.xml' --db sqlite:///s.db")
    said = capsys.readouterr().err.splitlines()
    assert said[:10] == [f"warning: a.xml:{n}: value {n} (rule acquit.mojibake)"
                         for n in range(1, 11)]
    assert said[10:] == ["warning: 2 more value(s) read so (rule acquit.mojibake): "
                         "`pesgen acquit '/srv/acquits/a b.xml' --db sqlite:///s.db --json` "
                         "lists them all"]


# real names and libellés, with what looks like a pair of a twice-converted text and is
# not one: « ÉTÉ» » (É then »), « CAFÉ… » (C9 85 is UTF-8, of U+0245), « PÂTÉ : », « JOÃO »
_REAL = ("Civilité inconnue", "Hélène Françoise d’Hérouville", "Maëlle Noël", "Anaïs Zoé",
         "«ÉCOLE DE MUSIQUE»", "N° de pièce", "CŒUR DE LOIRE", "À l’école", "ÉTÉ»",
         "CAFÉ…", "PÂTÉ\u00a0:", "JOÃO SÃO PAULO", "Mme ÇA", "MÉLANIE – 5 €")


def _libelles(tmp_path: Path, name: str, libelles: tuple[str, ...], declaration: str) -> Path:
    """An acknowledgement in UTF-8 rejecting a bordereau for each of ``libelles``
    (LibelleAnoAck), its first line ``declaration`` (empty: none)."""
    text = _head("".join(
        f'    <ElementACQUIT>\n      <DomaineAck V="7"/>\n      <EtatAck V="0"/>\n'
        f'      <NumBord V="{n}"/>\n      <ExerciceBord V="2026"/>\n      <Erreur>\n'
        f'        <NumAnoAck V="ERREUR_AUTRE"/>\n        <LibelleAnoAck V="{libelle}"/>\n'
        "      </Erreur>\n    </ElementACQUIT>\n" for n, libelle in enumerate(libelles, 1)))
    first = '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    assert text.startswith(first)
    path = tmp_path / name
    path.write_bytes((declaration + text.removeprefix(first)).encode("utf-8"))
    return path


@pytest.mark.parametrize("declaration", ['<?xml version="1.0" encoding="UTF-8"?>\n', ""])
def test_a_text_converted_to_utf8_twice_is_read_with_a_warning(tmp_path, declaration):
    """A file in UTF-8 converted again as if it were ISO-8859-1 (its declaration saying
    UTF-8, or nothing, as it then should): XML reads « Civilité » as « CivilitÃ© », which
    passed silently. Each value so read is warned of (the Latin-1 and the Windows-1252
    readings alike: « É » is « Ã\\x89 » or « Ã‰ », « ’ » « â\\x80\\x99 » or « â€™ »), with
    its line and XPath and what it was; the same names as written, and a real name whose
    letters happen to look like such a pair, never are."""
    real = read_acquit(_libelles(tmp_path, "real.xml", _REAL, declaration))
    assert len(real.elements) == len(_REAL) and real.warnings == ()
    latin1 = tuple(x.encode("utf-8").decode("latin-1") for x in _REAL)
    windows = tuple(x.encode("utf-8").decode("cp1252", errors="ignore") for x in _REAL)
    assert latin1[0] == windows[0] == "CivilitÃ© inconnue"
    assert "Ã\x89" in latin1[8] and "Ã‰" in windows[8] and "â€™" in windows[1]
    for twice in (latin1, windows):
        read = read_acquit(_libelles(tmp_path, "twice.xml", twice, declaration))
        assert [e.errors[0].label for e in read.elements] == list(twice)  # as it is
        assert [w.rule for w in read.warnings] == ["acquit.mojibake"] * len(_REAL)
        for n, (w, was, meant) in enumerate(zip(read.warnings, twice, _REAL, strict=True)):
            assert w.record == (f"twice.xml:{38 + 10 * n - (not declaration)} /n:PES_ACQUIT/"
                                f"ACQUIT/ElementACQUIT[{n + 1}]/Erreur/LibelleAnoAck"), w
            assert f"LibelleAnoAck reads '{shown(was, 60)}': the characters of " \
                   f"'{shown(meant, 60)}' written in UTF-8" in w.message, w.message
    assert read.warnings[0].message == (
        "LibelleAnoAck reads 'CivilitÃ© inconnue': the characters of 'Civilité inconnue' "
        "written in UTF-8 and read back as Latin-1 (Windows-1252), each accented letter "
        "two. The file was converted to UTF-8 once more than it should after the guichet "
        "wrote it (converted again as if it were ISO-8859-1, when it was UTF-8 already): "
        "read, shown and recorded as it is; take the file again from the guichet as it came")
    # the guichet's own file (ISO-8859-1, declared, « é » one byte) whose libellé quotes
    # such a text: the trésorerie's words, read as written
    said = ("Civilité inconnue", "Nom inconnu : MÃ©LANIE")
    guichet = _libelles(tmp_path, "guichet.xml", said, "")
    guichet.write_bytes(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + guichet.read_bytes()
                        .decode("utf-8").encode("iso-8859-1"))
    quoted = read_acquit(guichet)
    assert tuple(e.errors[0].label for e in quoted.elements) == said
    assert quoted.warnings == ()
    # converted three times: what it was at first, and how many times too many
    thrice = read_acquit(_libelles(tmp_path, "thrice.xml", tuple(
        x.encode("utf-8").decode("latin-1") for x in latin1[:1]), declaration))
    assert [e.errors[0].label for e in thrice.elements] == ["CivilitÃ\x83Â© inconnue"]
    [w] = thrice.warnings
    assert "the characters of 'Civilité inconnue'" in w.message, w.message
    assert "converted to UTF-8 2 times more than it should" in w.message, w.message


def test_a_file_converted_twice_is_warned_of_in_text_and_json(tmp_path):
    """The example's rejection converted to UTF-8 twice, its first line made to say
    UTF-8: the report shows the libellés as read, standard error warns of each, --json
    lists them as warnings; the exit is the rejection's, as before."""
    store = tmp_path / "store.sqlite3"
    assert run_cli("export", "-m", MAPPING, "-i", EXAMPLE, "-o", tmp_path / "out", "--date",
                   RUN.isoformat(), "--db", store, "--create-store").exit_code == 0
    text = (ACKS / "rejected.xml").read_bytes().decode("iso-8859-1")
    first = '<?xml version="1.0" encoding="ISO-8859-1"?>'
    assert text.startswith(first)
    ack = tmp_path / "twice.xml"
    ack.write_bytes(text.replace(first, '<?xml version="1.0" encoding="UTF-8"?>', 1)
                    .encode("utf-8").decode("latin-1").encode("utf-8"))
    r = run_cli("acquit", ack, "--db", store)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "error ERREUR_CODIFICATION: CivilitÃ© inconnue" in r.stdout  # as it is
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert warned == [
        "warning: twice.xml:38 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/Erreur/LibelleAnoAck: "
        "LibelleAnoAck reads 'Le montant du bordereau ne correspond pas Ã\xa0 la somme des "
        "pi… (65 characters)': the characters of 'Le montant du bordereau ne correspond pas "
        "à la somme des piè… (63 characters)' written in UTF-8 and read back as Latin-1 "
        "(Windows-1252), each accented letter two. The file was converted to UTF-8 once "
        "more than it should after the guichet wrote it (converted again as if it were "
        "ISO-8859-1, when it was UTF-8 already): read, shown and recorded as it is; take the "
        "file again from the guichet as it came (rule acquit.mojibake)",
        "warning: twice.xml:44 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/DetailPiece/Erreur/"
        "LibelleAnoAck: LibelleAnoAck reads 'CivilitÃ© inconnue': the characters of "
        "'Civilité inconnue' written in UTF-8 and read back as Latin-1 (Windows-1252), each "
        "accented letter two. The file was converted to UTF-8 once more than it should "
        "after the guichet wrote it (converted again as if it were ISO-8859-1, when it was "
        "UTF-8 already): read, shown and recorded as it is; take the file again from the "
        "guichet as it came (rule acquit.mojibake)"], r.stderr
    j = run_cli("acquit", ack, "--db", store, "--json")
    assert (j.exit_code, j.stderr) == (ExitCode.REJECTED, "")
    assert [(w["rule"], w["record"]) for w in json.loads(j.stdout)["warnings"]] == [
        ("acquit.mojibake", "twice.xml:38 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/Erreur/"
                            "LibelleAnoAck"),
        ("acquit.mojibake", "twice.xml:44 /n:PES_ACQUIT/ACQUIT/ElementACQUIT[1]/"
                            "DetailPiece/Erreur/LibelleAnoAck")]
    # converted once, as it should be (UTF-8, declared): nothing to warn of
    once = tmp_path / "once.xml"
    once.write_bytes(text.replace(first, '<?xml version="1.0" encoding="UTF-8"?>', 1)
                     .encode("utf-8"))
    plain = run_cli("acquit", once, "--db", store)
    assert plain.exit_code == ExitCode.REJECTED and "warning" not in plain.stderr, plain.stderr
    assert "error ERREUR_CODIFICATION: Civilité inconnue" in plain.stdout


def test_the_command_listing_every_value_read_as_utf8_names_the_file_read(tmp_path):
    """Past ten values read so, the command that lists them all is given with the acquit
    read (its path quoted for a shell) and the --db given, as the next steps give them."""
    from pesgen.store import Store

    db = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    Store(db).engine.dispose()
    folder = tmp_path / "acquits de l'école"
    folder.mkdir()
    ack = _libelles(folder, "a.xml", tuple(f"Libellé {n}" for n in range(1, 13)),
                    '<?xml version="1.0" encoding="ISO-8859-1"?>\n')
    r = run_cli("acquit", ack, "--db", db)
    assert len([ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]) == 11
    assert ("warning: 2 more value(s) read so (rule acquit.mojibake): `pesgen acquit "
            f"{shlex.quote(str(ack))} --db {shlex.quote(db)} --json` lists them all"
            ) in r.stderr.splitlines(), r.stderr
