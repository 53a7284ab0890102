"""`pesgen acquit` checks each NumLigne of a piece tied to a title against the title's
lines as its run wrote them (rule acquit.line): the store keeps each title's number of
lines from migration 21; a run recorded before has none, and its NumLigne are not
checked, said once. On SQLite and on a real PostgreSQL server (PESGEN_TEST_PG_URL)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from pesgen.errors import ExitCode
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, record_as_older, run_cli
from .test_acquit import _head, _write

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"
# FA-2026-00103, IdPce 3 of IdBord 1, has 2 lines in the example's rôle
WHERE = f"{EXAMPLE.resolve()}:$.invoices[2]"


def _ack(tmp_path: Path, lines: tuple[int | str, ...], accepted: bool = False,
         name: str = "ack.xml") -> Path:
    """An acquit of IdBord 1 of 2026 (a rôle), rejected or accepted, with an error on
    each NumLigne of ``lines`` of its IdPce 3 ('': a NumLigne left empty)."""
    detail = "".join(
        f'        <DetailLigne>\n          <NumLigne V="{n}"/>\n          <Erreur>\n'
        f'            <NumAnoAck V="ERREUR_AUTRE"/>\n            <LibelleAnoAck '
        f'V="Fonction absente de la nomenclature"/>\n          </Erreur>\n'
        "        </DetailLigne>\n" for n in lines)
    element = (f'    <ElementACQUIT>\n      <DomaineAck V="7"/>\n      <EtatAck '
               f'V="{int(accepted)}"/>\n      <NumBord V="1"/>\n      <ExerciceBord '
               'V="2026"/>\n      <DetailPiece>\n        <NumPiece V="3"/>\n'
               f"{detail}      </DetailPiece>\n    </ElementACQUIT>\n")
    return _write(tmp_path, _head(element), name)


def _line_counts(db_url: str) -> dict[str, int | None]:
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT invoice, line_count FROM run_invoices"))
                        .all())
    finally:
        engine.dispose()


def test_each_title_s_line_count_is_recorded_as_its_file_has_them(db_url, tmp_path):
    """The count of LigneDePiece the export wrote for each title, none read again."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    (xml,) = (tmp_path / "out").glob("PESORMC_*.xml")
    counts = _line_counts(db_url)
    assert counts["FA-2026-00103"] == 2 and counts["FA-2026-00108"] == 10, counts
    assert sum(counts.values()) == xml.read_text(encoding="iso-8859-1").count(
        "<LigneDePiece>") == 30
    r = run_cli("runs", "show", run.run_id, "--invoices", "--db", db_url, "--format", "json")
    assert [(t["invoice"], t["line_count"]) for t in json.loads(r.stdout)["run"][
        "invoices"]][2] == ("FA-2026-00103", 2)


def test_a_numligne_beyond_the_title_s_lines_is_said_and_to_check(db_url, tmp_path):
    """NumLigne 7 (and 0) of a title of 2 lines: said beside the line and listed to check
    with the invoice and its record (rule acquit.line); NumLigne 2 is its line: nothing
    said. Rejected, the exit is 9; accepted with those errors, 10, the reason given."""
    export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    r = run_cli("acquit", _ack(tmp_path, (2, 7, 0)), "--db", db_url)
    assert r.exit_code == ExitCode.REJECTED, r.output
    out = r.stdout.splitlines()
    assert "    IdLigne 2:" in out
    assert "    IdLigne 7 (no such line: the title has 2 line(s), IdLigne 1 to 2; rule " \
        "acquit.line):" in out
    assert "    IdLigne 0 (no such line: the title has 2 line(s), IdLigne 1 to 2; rule " \
        "acquit.line):" in out
    [check] = [ln for ln in out if ln.startswith("  - ")]
    assert check.startswith(
        f"  - IdBord 1 exercise 2026 (line 31): IdPce 3 invoice FA-2026-00103 ({WHERE}): no "
        "IdLigne 7, its run wrote the title with 2 line(s) (IdLigne 1 to 2): pesgen cannot "
        "tell which line the acquit's error is about (rule acquit.line); IdPce 3 invoice "
        f"FA-2026-00103 ({WHERE}): no IdLigne 0, "), check
    assert "; next: ask the trésorerie which line of the title its error is about" in check
    assert "line numbers not checked" not in r.stdout

    r = run_cli("acquit", _ack(tmp_path, (2, 7), accepted=True), "--db", db_url, "--json")
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    report = json.loads(r.stdout)
    (piece,) = report["elements"][0]["pieces"]
    assert (piece["invoice"], piece["record"], piece["line_count"]) == (
        "FA-2026-00103", WHERE, 2)
    assert [(ln["line"], ln["no_such_line"]) for ln in piece["lines"]] == [
        (2, None),
        (7, f"IdPce 3 invoice FA-2026-00103 ({WHERE}): no IdLigne 7, its run wrote the title "
            "with 2 line(s) (IdLigne 1 to 2): pesgen cannot tell which line the acquit's "
            "error is about (rule acquit.line)")]
    (check,) = report["to_check"]
    assert check["reasons"] == ["accepted-with-errors", "no-such-line"]
    assert report["lines_unchecked"] is None

    # lines of the title only: nothing to check for them (the rejection's exit alone)
    r = run_cli("acquit", _ack(tmp_path, (1, 2)), "--db", db_url, "--json")
    assert r.exit_code == ExitCode.REJECTED and json.loads(r.stdout)["to_check"] == [], r.output

    # recorded as the acquit gives it, and still to check
    r = run_cli("acquit", _ack(tmp_path, (7,)), "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "recorded on " in r.stdout and "no IdLigne 7" in r.stdout, r.stdout


def test_a_schema_20_store_gets_the_column_and_its_runs_lines_are_not_checked(
        db_url, tmp_path, monkeypatch):
    """A store pesgen left at schema 20 opens with the current code (migration 21): its
    runs' titles have no line count, so their NumLigne are not checked: said once, not
    beside each line (two named here), exit as without the check. The migration applied
    again changes nothing."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:20])
        old = Store(db_url)
    assert old.schema_version() == 20
    assert "line_count" not in {c["name"] for c in sa.inspect(old.engine).get_columns(
        "run_invoices")}
    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    run = export_recorded(lambda: donor, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    record_as_older(donor, old)
    old.engine.dispose()
    store = Store(db_url)
    assert store.schema_version() == len(st.MIGRATIONS) >= 21
    assert set(_line_counts(db_url).values()) == {None}
    with store.engine.begin() as conn:  # idempotent: the column is there already
        st.MIGRATIONS[20](conn)
    assert set(_line_counts(db_url).values()) == {None}

    r = run_cli("acquit", _ack(tmp_path, (7, 9)), "--db", db_url)
    assert r.exit_code == ExitCode.REJECTED, r.output
    said = ("line numbers not checked: 2 NumLigne (IdLigne) of titles of run(s) "
            f"{run.run_id}, recorded before the store kept each title's number of lines "
            "(schema 21): shown as the acquit gives them, without saying whether the title "
            "has such a line")
    assert r.stdout.splitlines()[1] == said and r.stdout.count("not checked") == 1, r.stdout
    assert "no such line" not in r.stdout and "acquit.line" not in r.stdout
    assert "    IdLigne 7:" in r.stdout and "    IdLigne 9:" in r.stdout
    r = run_cli("acquit", _ack(tmp_path, (7, 9), accepted=True), "--db", db_url, "--json")
    report = json.loads(r.stdout)
    assert report["lines_unchecked"] == {"lines": 2, "runs": [run.run_id], "said": said}
    # a NumLigne left empty is no line number to check: not counted
    r = run_cli("acquit", _ack(tmp_path, (7, ""), name="empty.xml"), "--db", db_url, "--json")
    assert json.loads(r.stdout)["lines_unchecked"]["lines"] == 1, r.stdout
    assert [ln["no_such_line"] for ln in report["elements"][0]["pieces"][0]["lines"]] == [
        None, None]
    assert [x["reasons"] for x in report["to_check"]] == [["accepted-with-errors"]]


def _ack_piece(tmp_path: Path, piece: int, accepted: bool) -> Path:
    """An acquit of IdBord 1 of 2026 with an error on its IdPce ``piece``."""
    element = (f'    <ElementACQUIT>\n      <DomaineAck V="7"/>\n      <EtatAck '
               f'V="{int(accepted)}"/>\n      <NumBord V="1"/>\n      <ExerciceBord '
               f'V="2026"/>\n      <DetailPiece>\n        <NumPiece V="{piece}"/>\n'
               '        <Erreur>\n          <NumAnoAck V="ERREUR_AUTRE"/>\n'
               '          <LibelleAnoAck V="Débiteur inconnu"/>\n        </Erreur>\n'
               "      </DetailPiece>\n    </ElementACQUIT>\n")
    return _write(tmp_path, _head(element), f"ack-{piece}-{int(accepted)}.xml")


def test_a_numpiece_no_title_of_the_bordereau_has_is_said_and_to_check(db_url, tmp_path):
    """IdPce 12 of a bordereau of 11 titles: said beside the piece and listed to check
    (rule acquit.piece), next: ask the trésorerie which title, never put on one; accepted
    with that error, exit 10 with the reason; IdPce 3, a title of it: no such reason."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    r = run_cli("acquit", _ack_piece(tmp_path, 12, accepted=True), "--db", db_url)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    out = r.stdout.splitlines()
    assert "  IdPce 12 (no title of the recorded bordereau has this IdPce; rule " \
        "acquit.piece):" in out, r.stdout
    [check] = [ln for ln in out if ln.startswith("  - ")]
    assert (f"IdPce 12: no title of IdBord 1 has this IdPce in the file run {run.run_id} "
            "wrote (rule acquit.piece)") in check, check
    assert "next: " in check and "ask the trésorerie which title its error is about: " \
        f"pesgen does not guess; `pesgen runs show {run.run_id} --invoices --db " in check

    r = run_cli("acquit", _ack_piece(tmp_path, 12, accepted=True), "--db", db_url, "--json")
    (check,) = json.loads(r.stdout)["to_check"]
    assert check["reasons"] == ["accepted-with-errors", "no-such-piece"], check

    r = run_cli("acquit", _ack_piece(tmp_path, 3, accepted=True), "--db", db_url, "--json")
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    (check,) = json.loads(r.stdout)["to_check"]
    assert check["reasons"] == ["accepted-with-errors"], check

    # rejected: exit 9, the piece still to check beside the rejection
    r = run_cli("acquit", _ack_piece(tmp_path, 12, accepted=False), "--db", db_url, "--json")
    assert r.exit_code == ExitCode.REJECTED, r.output
    (check,) = json.loads(r.stdout)["to_check"]
    assert check["reasons"] == ["no-such-piece"], check


def _helios_shown(db_url: str, run_id: str) -> tuple[list[str], dict]:
    """`runs show RUN`'s Hélios lines (text) and its JSON's run."""
    text = run_cli("runs", "show", run_id, "--db", db_url)
    given = run_cli("runs", "show", run_id, "--db", db_url, "--format", "json")
    assert text.exit_code == given.exit_code == 0, text.output + given.output
    return ([ln for ln in text.stdout.splitlines()
             if ln.startswith(("  Hélios ", "                "))],
            json.loads(given.stdout)["run"])


def test_runs_show_says_a_recorded_numligne_beyond_the_title_s_lines_as_acquit_does(
        db_url, tmp_path):
    """`runs show RUN` listed a recorded error on IdLigne 7 of a title of 2 lines as on
    any line: support reading the run could not tell pesgen had found it wanting. Now
    beside it in acquit's words (rule acquit.line), JSON each error's no_such_line in
    acquit's long words; IdLigne 2, a line of the title, nothing said; lines_unchecked
    null. A NumPiece no title has is said in acquit's words too (rule acquit.piece)."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    ack = _ack(tmp_path, (2, 7)).read_text(encoding="iso-8859-1").replace(
        "      </DetailPiece>\n", "      </DetailPiece>\n      <DetailPiece>\n"
        '        <NumPiece V="12"/>\n        <Erreur>\n          <NumAnoAck V="ERREUR_AUTRE"'
        '/>\n          <LibelleAnoAck V="Débiteur inconnu"/>\n        </Erreur>\n'
        "      </DetailPiece>\n", 1)
    r = run_cli("acquit", _write(tmp_path, ack), "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    lines, shown = _helios_shown(db_url, run.run_id)
    assert lines[1:] == [
        "                IdPce 3 invoice FA-2026-00103 IdLigne 2 error ERREUR_AUTRE: "
        "Fonction absente de la nomenclature",
        "                IdPce 3 invoice FA-2026-00103 IdLigne 7 (no such line: the title "
        "has 2 line(s), IdLigne 1 to 2; rule acquit.line) error ERREUR_AUTRE: Fonction "
        "absente de la nomenclature",
        "                IdPce 12 (no title of the recorded bordereau has this IdPce; rule "
        "acquit.piece) error ERREUR_AUTRE: Débiteur inconnu"], lines
    errors = shown["helios"][0]["acknowledgements"][0]["errors"]
    assert [(e["piece"], e["line"], e["invoice"], e["no_such_line"]) for e in errors] == [
        (3, 2, "FA-2026-00103", None),
        (3, 7, "FA-2026-00103",
         f"IdPce 3 invoice FA-2026-00103 ({WHERE}): no IdLigne 7, its run wrote the title "
         "with 2 line(s) (IdLigne 1 to 2): pesgen cannot tell which line the acquit's error "
         "is about (rule acquit.line)"),
        (12, None, None, None)]
    assert shown["lines_unchecked"] is None


def test_runs_show_says_once_that_a_run_recorded_before_schema_21_has_its_lines_unchecked(
        db_url, tmp_path, monkeypatch):
    """A run recorded before the store kept its titles' lines: `runs show` lists the
    recorded IdLigne 7 and 9 as the acquit gives them and says once, in acquit's words,
    that they are not checked (JSON lines_unchecked, as acquit's)."""
    import pesgen.store as st

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:20])
        old = Store(db_url)
    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    run = export_recorded(lambda: donor, MAPPING, EXAMPLE, tmp_path / "a", RUN)
    record_as_older(donor, old)
    old.engine.dispose()
    r = run_cli("acquit", _ack(tmp_path, (7, 9)), "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    said = ("line numbers not checked: 2 NumLigne (IdLigne) of titles of run(s) "
            f"{run.run_id}, recorded before the store kept each title's number of lines "
            "(schema 21): shown as the acquit gives them, without saying whether the title "
            "has such a line")
    lines, shown = _helios_shown(db_url, run.run_id)
    assert lines[1:] == [
        "                IdPce 3 invoice FA-2026-00103 IdLigne 7 error ERREUR_AUTRE: "
        "Fonction absente de la nomenclature",
        "                IdPce 3 invoice FA-2026-00103 IdLigne 9 error ERREUR_AUTRE: "
        "Fonction absente de la nomenclature",
        f"  Hélios      {said}"], lines
    assert shown["lines_unchecked"] == {"lines": 2, "runs": [run.run_id], "said": said}
    assert [e["no_such_line"] for e in shown["helios"][0]["acknowledgements"][0][
        "errors"]] == [None, None]


def _ack_pieces(tmp_path: Path, pieces: dict[int, tuple[int | str, ...]]) -> Path:
    """An accepted acquit of IdBord 1 of 2026 with an error on each IdPce of ``pieces``
    and on each of its NumLigne given ('' : the NumLigne left empty)."""
    def error(indent: str) -> str:
        return (f'{indent}<Erreur>\n{indent}  <NumAnoAck V="ERREUR_AUTRE"/>\n{indent}  '
                f'<LibelleAnoAck V="Débiteur inconnu"/>\n{indent}</Erreur>\n')

    detail = "".join(
        f'      <DetailPiece>\n        <NumPiece V="{piece}"/>\n' + error("        ")
        + "".join(f'        <DetailLigne>\n          <NumLigne V="{n}"/>\n'
                  + error("          ") + "        </DetailLigne>\n" for n in lines)
        + "      </DetailPiece>\n" for piece, lines in pieces.items())
    element = ('    <ElementACQUIT>\n      <DomaineAck V="7"/>\n      <EtatAck V="1"/>\n'
               '      <NumBord V="1"/>\n      <ExerciceBord V="2026"/>\n'
               f"{detail}    </ElementACQUIT>\n")
    return _write(tmp_path, _head(element), "ack-pieces.xml")


def test_every_piece_and_line_no_title_has_is_listed_with_the_titles_to_look_at(
        db_url, tmp_path):
    """Two NumPiece no title has (IdPce 12 and 13) and NumLigne beyond their titles' lines
    on two pieces (IdPce 3 and 4): each is listed to check, not the first alone; the
    next step names `runs show --invoices` for the titles by IdBord and IdPce, and for
    their lines. A NumLigne under a piece no title has is not a line 'not checked' (the
    store keeps every title's lines): none is said."""
    run = export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    r = run_cli("acquit", _ack_pieces(tmp_path, {3: (7,), 4: (99,), 12: (1,), 13: ()}),
                "--db", db_url)
    assert r.exit_code == ExitCode.TO_CHECK, r.output
    assert "not checked" not in r.stdout, r.stdout
    [check] = [ln for ln in r.stdout.splitlines() if ln.startswith("  - ")]
    for said in ("IdPce 12: no title of IdBord 1", "IdPce 13: no title of IdBord 1",
                 "IdPce 3 invoice FA-2026-00103", "no IdLigne 7,", "no IdLigne 99,"):
        assert said in check, (said, check)
    shown = f"`pesgen runs show {run.run_id} --invoices --db {db_url}` lists the run's titles"
    assert (f"ask the trésorerie which title its error is about: pesgen does not guess; "
            f"{shown} by IdBord and IdPce") in check, check
    assert (f"ask the trésorerie which line of the title its error is about: pesgen does "
            f"not guess; {shown} with their lines") in check, check
    r = run_cli("acquit", _ack_pieces(tmp_path, {3: (7,), 4: (99,), 12: (1,), 13: ()}),
                "--db", db_url, "--json")
    report = json.loads(r.stdout)
    assert report["lines_unchecked"] is None
    (check,) = report["to_check"]
    assert check["reasons"] == ["accepted-with-errors", "no-such-piece", "no-such-line"]
    assert check["said"].count("(rule acquit.piece)") == 2, check["said"]
    assert check["said"].count("(rule acquit.line)") == 2, check["said"]


def test_the_line_on_line_numbers_not_checked_names_five_runs_and_counts_the_others():
    """The runs whose titles' NumLigne are not checked: five named, the others counted;
    none, nothing said."""
    from pesgen.acquit import lines_unchecked, unchecked_said

    assert unchecked_said(0, ()) is None
    # each (run, IdBord, IdPce, IdLigne) once, the runs in the order first named
    assert lines_unchecked([("run-b", 1, 3, 7), ("run-a", 2, 3, 7), ("run-b", 1, 3, 7),
                            ("run-b", 2, 3, 7)]) == (3, ("run-b", "run-a"))
    runs = tuple(f"run-{n}" for n in range(1, 8))
    assert "NumLigne (IdLigne) of titles of run(s) run-1, run-2, run-3, run-4, run-5, " \
        "recorded before" in (unchecked_said(5, runs[:5]) or "")
    assert "NumLigne (IdLigne) of titles of run(s) run-1, run-2, run-3, run-4, run-5 and 2 " \
        "more, recorded before" in (unchecked_said(9, runs) or "")


def test_acquit_and_runs_show_count_a_pre_schema_21_run_s_unchecked_lines_alike(
        db_url, tmp_path, monkeypatch):
    """Two elements of one acquit tied to one run recorded before schema 21 (IdBord 1 and
    2 of a run split by 4 titles), IdLigne 7 of IdBord 1's IdPce 3 named twice (an error
    per DetailLigne, as Hélios may write them) and IdLigne 7 of IdBord 2's IdPce 3 (the
    same numbers, another title): `pesgen acquit` counted 3 NumLigne not checked, `runs
    show` of the recorded acquit 2. One function counts each (run, IdBord, IdPce, IdLigne)
    once for both: 2, in the same sentence, text and JSON."""
    import pesgen.store as st

    from .test_cancel import split_mapping

    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:20])
        old = Store(db_url)
    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    run = export_recorded(lambda: donor, split_mapping(tmp_path), EXAMPLE, tmp_path / "a",
                          RUN)
    record_as_older(donor, old)
    old.engine.dispose()

    def line(n: int) -> str:
        return (f'        <DetailLigne>\n          <NumLigne V="{n}"/>\n          <Erreur>\n'
                '            <NumAnoAck V="ERREUR_AUTRE"/>\n            <LibelleAnoAck '
                'V="Fonction absente de la nomenclature"/>\n          </Erreur>\n'
                "        </DetailLigne>\n")

    def element(bordereau: int, piece: int, lines: tuple[int, ...]) -> str:
        return ('    <ElementACQUIT>\n      <DomaineAck V="7"/>\n      <EtatAck V="0"/>\n'
                f'      <NumBord V="{bordereau}"/>\n      <ExerciceBord V="2026"/>\n'
                f'      <DetailPiece>\n        <NumPiece V="{piece}"/>\n'
                + "".join(line(n) for n in lines) + "      </DetailPiece>\n"
                "    </ElementACQUIT>\n")

    ack = _write(tmp_path, _head(element(1, 3, (7, 7)) + element(2, 3, (7,))))
    said = ("line numbers not checked: 2 NumLigne (IdLigne) of titles of run(s) "
            f"{run.run_id}, recorded before the store kept each title's number of lines "
            "(schema 21): shown as the acquit gives them, without saying whether the title "
            "has such a line")
    read = run_cli("acquit", ack, "--db", db_url, "--json")
    assert read.exit_code == ExitCode.REJECTED, read.output
    assert json.loads(read.stdout)["lines_unchecked"] == {
        "lines": 2, "runs": [run.run_id], "said": said}
    r = run_cli("acquit", ack, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert said in r.stdout.splitlines(), r.stdout
    lines, shown = _helios_shown(db_url, run.run_id)
    assert lines[-1] == f"  Hélios      {said}", lines
    assert shown["lines_unchecked"] == {"lines": 2, "runs": [run.run_id], "said": said}


def test_an_empty_numligne_of_a_title_whose_lines_are_kept_is_no_line_to_check(
        db_url, tmp_path):
    """A NumLigne left empty under a title whose line count the store keeps (schema 21):
    no line number, so nothing said of it (acquit.line), the other NumLigne checked as
    ever (mut56: a mutant comparing the empty NumLigne with the title's lines, a
    TypeError, survived: only a schema-20 store's empty NumLigne was tested)."""
    export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    r = run_cli("acquit", _ack(tmp_path, ("", 7)), "--db", db_url, "--json")
    assert r.exit_code == ExitCode.REJECTED, r.output
    report = json.loads(r.stdout)
    (piece,) = report["elements"][0]["pieces"]
    assert [(ln["line"], ln["no_such_line"] is None) for ln in piece["lines"]] == [
        (None, True), (7, False)], piece
    assert report["lines_unchecked"] is None
    r = run_cli("acquit", _ack(tmp_path, ("",), name="empty.xml"), "--db", db_url)
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert "no such line" not in r.stdout and "line numbers not checked" not in r.stdout


def test_a_run_recorded_before_pesgen_kept_its_input_s_path_names_no_record(
        db_url, tmp_path):
    """A run whose policies hold no input_path (recorded before pesgen kept it): its
    titles' positions name no file, so the acquit names each title by its invoice only,
    nothing guessed (mut56: a mutant naming 'None:$.invoices[2]' survived)."""
    export_recorded(lambda: Store(db_url), MAPPING, EXAMPLE, tmp_path / "out", RUN)
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            [(run_id, policies)] = conn.execute(sa.text("SELECT id, policies FROM runs")).all()
            kept = {k: v for k, v in json.loads(policies).items() if k != "input_path"}
            conn.execute(sa.text("UPDATE runs SET policies = :p WHERE id = :id"),
                         {"p": json.dumps(kept), "id": run_id})
    finally:
        engine.dispose()
    r = run_cli("acquit", _ack(tmp_path, (7,)), "--db", db_url, "--json")
    assert r.exit_code == ExitCode.REJECTED, r.output
    (piece,) = json.loads(r.stdout)["elements"][0]["pieces"]
    assert (piece["invoice"], piece["record"]) == ("FA-2026-00103", None), piece
    assert piece["lines"][0]["no_such_line"].startswith(
        "IdPce 3 invoice FA-2026-00103: no IdLigne 7"), piece
