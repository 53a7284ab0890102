"""``pesgen numbering move`` and ``numbering show`` (docs/state.md, Numbering): a started
sequence moved to the number after those the collectivity issued outside pesgen, never
to a number a recorded run took (a cancelled run's included), all or none, recorded
with its reason; and the export's first-run note pointing to it."""

from __future__ import annotations

import re
import shlex
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pesgen.errors import ExitCode, StateError, UsageError
from pesgen.runs import export_recorded
from pesgen.store import PIECE_SEQUENCE, Store

from .conftest import EXAMPLES, MAPPINGS, run_cli

RUN = date(2026, 11, 23)
ORMC = MAPPINGS / "villeneuve-sur-loing.yaml"
TITRES = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
EXAMPLE = EXAMPLES / "school-export.json"
SIRET = "21450999400015"
ORMC_KEY = (SIRET, "00", 2026, "06")
TITRES_KEY = (SIRET, "00", 2026, "01")
PIECES_KEY = (SIRET, "00", 2026, PIECE_SEQUENCE)
LABEL = f"the numbering of {SIRET} budget 00 exercise 2026 TypBord 06"


def _sequences(db: str) -> list[tuple[str, int, int]]:
    """(typ_bord, start, next) of every sequence of the store, and the moves' rows."""
    with Store(db).engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT typ_bord, start_number, next_number FROM sequences ORDER BY typ_bord"))]


def _moves(db: str) -> list[tuple[str, int, int, str]]:
    with Store(db).engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT typ_bord, from_number, to_number, reason FROM sequence_moves ORDER BY id"))]


def _ormc_run(db: str, out: Path):
    return export_recorded(lambda: Store(db), ORMC, EXAMPLE, out, RUN)


def _move(db: str, *args: object, mapping: Path = ORMC):
    return run_cli("numbering", "move", "--mapping", mapping, "--db", db, *args)


@pytest.mark.parametrize("mapping, args, label, move", [
    (ORMC, ("--start", "12"), LABEL, "--to N"),
    (TITRES, ("--start-titre", "300"),
     f"the titre numbers (IdPce) of {SIRET} budget 00 exercise 2026", "--to-titre T"),
])
def test_set_start_after_an_export_names_numbering_move(db_url, tmp_path, mapping, args,
                                                       label, move):
    """A technician learns of the rôles (or titres) issued this exercise after the first
    export and runs set-start, as the onboarding steps say to before it: the refusal
    said 'a start can be set once, before any export' and nothing of what to do now; it
    names numbering move, with the option for that sequence, and where the docs tell
    it. The command it names then moves the sequence."""
    first = export_recorded(lambda: Store(db_url), mapping, EXAMPLE, tmp_path / "o1", RUN)
    r = run_cli("numbering", "set-start", "--mapping", mapping, *args, "--db", db_url)
    assert r.exit_code == ExitCode.STATE, r.output
    after = 2 if move == "--to N" else first.titles + 1  # one rôle, or its titres
    assert (f"{label} has already started at 1 (next {after}); a start can be set once, "
            "before any export: a started sequence is moved "
            f"past the numbers issued outside pesgen with pesgen numbering move {move} "
            "--reason TEXT (docs/state.md, \"Moving a started sequence\")") in " ".join(
                r.stderr.split()), r.stderr
    Store(db_url).cancel(first.run_id, "numbers issued by the finance package")
    to = "--to" if move == "--to N" else "--to-titre"
    assert _move(db_url, to, "400", "--reason", "issued outside", mapping=mapping).exit_code \
        == 0


def test_a_started_numbering_moved_past_the_collectivity_s_rôles_exports_on_from_there(
        db_url, tmp_path):
    """The first run took IdBord 1 where the collectivity had issued rôles 1 to 11: the
    run cancelled, the sequence moved to 12, the export again is rôle 12; the move is
    recorded with its reason and `numbering show` lists it."""
    first = _ormc_run(db_url, tmp_path / "o1")
    assert first.first_number == 1
    Store(db_url).cancel(first.run_id, "IdBord 1 is the finance package's")
    reason = "rôles 1-11 issued by the finance package (the comptable, 2026-12-04)"
    r = _move(db_url, "--to", "12", "--reason", reason)
    assert r.exit_code == 0, r.output
    assert re.match(rf"{LABEL}: next IdBord moved from 2 to 12 \(recorded "
                    rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ: {re.escape(reason)}\)\n  pesgen will "
                    r"not give IdBord 2 to 11: they are left to the numbers issued outside "
                    r"pesgen\n$", r.stdout), r.stdout
    assert _sequences(db_url) == [("06", 1, 12)]
    assert _moves(db_url) == [("06", 2, 12, reason)]

    again = _ormc_run(db_url, tmp_path / "o2")
    assert again.first_number == 12 and again.titles == 11
    (xml,) = (tmp_path / "o2").glob("*.xml")
    assert '<IdBord V="12"/>' in xml.read_text(encoding="iso-8859-1")
    assert _sequences(db_url) == [("06", 1, 13)]

    shown = run_cli("numbering", "show", "--mapping", ORMC, "--db", db_url)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == (f"{LABEL}: started at 1, next IdBord 13; runs of this store took up "
                        "to 12"), lines
    assert re.fullmatch(rf"  moved \S+Z: next 2 -> 12 \({re.escape(reason)}\)", lines[1]), lines
    # the cancelled run's IdBord 1, no acknowledgement recorded, listed as moved past:
    # the numbers issued outside pesgen follow it, not pesgen's IdBord 12 (nothing to
    # tell the trésorerie of it as a gap of pesgen's; tests/test_unsent_numbers.py)
    assert lines[2].startswith("  cancelled, no acknowledgement recorded, then moved past "
                               "(pesgen numbering move): "), lines
    assert lines[3].startswith(f"    IdBord 1  run {first.run_id}  cancelled "), lines
    assert lines[3].endswith(" (whole run): IdBord 1 is the finance package's; followed by "
                             f"IdBord 2, issued outside pesgen (moved {lines[1].split()[1][:-1]}: "
                             "next 2 -> 12)"), lines
    assert len(lines) == 4, lines


def test_a_move_never_gives_a_number_a_recorded_run_took(db_url, tmp_path):
    """Below or at the largest IdBord a run took, a cancelled run's included (Hélios may
    know it), at the next number already, on a sequence not started, without a reason:
    refused, and nothing moved nor recorded."""
    first = _ormc_run(db_url, tmp_path / "o1")
    Store(db_url).cancel(first.run_id, "test")
    before = _sequences(db_url)
    for to in ("1", "0", "10000000"):
        r = _move(db_url, "--to", to, "--reason", "why")
        if to != "1":
            assert r.exit_code == ExitCode.USAGE, r.output
            assert "the next number must be between 1 and 9999999" in r.stderr, r.stderr
            continue
        assert r.exit_code == ExitCode.STATE, r.output
        assert (f"{LABEL}: runs recorded in this store took IdBords up to 1 (cancelled ones "
                "included: Hélios may know them), and a number is never given twice; the "
                "next IdBord can be 2 or more; nothing moved") in r.stderr, r.stderr
    same = _move(db_url, "--to", "2", "--reason", "why")
    assert same.exit_code == ExitCode.STATE, same.output
    assert f"{LABEL}: the next IdBord is 2 already; nothing moved" in same.stderr
    blank = _move(db_url, "--to", "12", "--reason", "  ")
    assert blank.exit_code == ExitCode.USAGE and "--reason" in blank.stderr, blank.output
    other = _move(db_url, "--to", "12", "--reason", "why", "--exercise", "2027")
    assert other.exit_code == ExitCode.STATE, other.output
    assert ("exercise 2027 TypBord 06 has not started (no run, no set-start in this "
            "store): set its first number with `pesgen numbering set-start`") in other.stderr
    neither = _move(db_url, "--reason", "why")
    assert neither.exit_code == ExitCode.USAGE and "--to N" in neither.stderr, neither.output
    titre = _move(db_url, "--to-titre", "5", "--reason", "why")
    assert titre.exit_code == ExitCode.USAGE and "per-bordereau" in titre.stderr, titre.output
    assert _sequences(db_url) == before and _moves(db_url) == []


def test_a_sequence_only_set_may_move_back_as_no_number_was_given(tmp_path):
    """A start set too high (set-start 21 where 12 was meant), no export since: no number
    of it was given, so the move may go back; the next export takes 12."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("numbering", "set-start", "--mapping", ORMC, "--start", "21", "--db", db,
                "--create-store")
    assert r.exit_code == 0, r.output
    r = _move(db, "--to", "12", "--reason", "set-start 21 was a typo for 12")
    assert r.exit_code == 0, r.output
    assert "next IdBord moved from 21 to 12" in r.stdout
    assert "will not give" not in r.stdout  # backwards: nothing skipped
    assert _ormc_run(db, tmp_path / "o").first_number == 12
    # forward by one: the one number skipped is said
    r = _move(db, "--to", "14", "--reason", "rôle 13 issued by the finance package")
    assert r.exit_code == 0, r.output
    assert "next IdBord moved from 13 to 14 (recorded " in r.stdout, r.stdout
    assert r.stdout.endswith("\n  pesgen will not give IdBord 13: it is left to the numbers "
                             "issued outside pesgen\n"), r.stdout


def test_titre_numbers_move_with_the_bordereaux_all_or_none(db_url, tmp_path):
    """pes-titres: --to and --to-titre move both sequences; one of them refused, neither
    moves. The next titres run takes IdBord 5 and IdPce 342 on."""
    store = Store(db_url)
    first = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    assert first.first_number == 1
    before = _sequences(db_url)
    assert before == [("01", 1, 2), (PIECE_SEQUENCE, 1, 12)]
    r = _move(db_url, "--to", "5", "--to-titre", "11", "--reason", "why", mapping=TITRES)
    assert r.exit_code == ExitCode.STATE, r.output
    assert "took titre numbers up to 11" in r.stderr and "can be 12 or more" in r.stderr
    assert _sequences(db_url) == before and _moves(db_url) == []

    store.cancel(first.run_id, "the finance package's numbers go on")
    r = _move(db_url, "--to", "5", "--to-titre", "342", "--reason", "finance package",
              mapping=TITRES)
    assert r.exit_code == 0, r.output
    assert "titre numbers (IdPce) of 21450999400015 budget 00 exercise 2026: next titre " \
        "number (IdPce) moved from 12 to 342" in r.stdout
    assert _moves(db_url) == [("01", 2, 5, "finance package"),
                              (PIECE_SEQUENCE, 12, 342, "finance package")]
    again = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o2", RUN)
    assert again.first_number == 5
    (xml,) = (tmp_path / "o2").glob("*.xml")
    text = xml.read_text(encoding="iso-8859-1")
    assert re.findall(r'<IdPce V="(\d+)"/>', text) == [str(n) for n in range(342, 353)]
    shown = run_cli("numbering", "show", "--mapping", TITRES, "--db", db_url)
    assert shown.exit_code == 0, shown.output
    assert ("the titre numbers (IdPce) of 21450999400015 budget 00 exercise 2026: started "
            "at 1, next titre number (IdPce) 353; runs of this store took up to 352") \
        in shown.stdout, shown.stdout


def test_the_moves_of_one_command_say_one_time(db_url, tmp_path, monkeypatch):
    """--to and --to-titre in one command are one change: both moves are recorded at one
    time, the one the command prints, whatever the clock says meanwhile (each move read
    its own: a second crossed between them gave them two)."""
    import json

    import pesgen.store as store_module

    store = Store(db_url)
    first = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    store.cancel(first.run_id, "the finance package's numbers go on")
    ticks = iter(range(10, 60))
    monkeypatch.setattr(store_module, "utc_now",
                        lambda: f"2026-12-08T09:00:{next(ticks):02d}Z")
    r = _move(db_url, "--to", "5", "--to-titre", "342", "--reason", "finance package",
              "--format", "json", mapping=TITRES)
    assert r.exit_code == 0, r.output
    said = {m["moved_at"] for m in json.loads(r.stdout)["moved"]}
    with store.engine.connect() as conn:
        recorded = set(conn.execute(sa.text("SELECT moved_at FROM sequence_moves")).scalars())
    assert len(said) == 1 and recorded == said, (said, recorded)


def test_the_store_refuses_a_move_before_touching_anything():
    """Store.move checks every number before its transaction, as set_start."""
    store = Store("sqlite://")
    with pytest.raises(UsageError, match="^the next number must be between 1 and 9999999$"):
        store.move([(ORMC_KEY, 10_000_000)], "why")
    with pytest.raises(UsageError, match=r"^the next titre number \(IdPce\) must be between 1 "
                       "and 99999999$"):
        store.move([(PIECES_KEY, 0)], "why")
    with pytest.raises(StateError, match="has not started"):
        store.move([(TITRES_KEY, 3)], "why")
    assert store.sequence(TITRES_KEY) is None


def test_numbering_show_on_a_sequence_not_started(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    Store(db).migrate()
    r = run_cli("numbering", "show", "--mapping", ORMC, "--db", db)
    assert r.exit_code == 0, r.output
    assert r.stdout == (f"{LABEL}: not started in this store (no run, no set-start): its "
                        "first export takes IdBord 1, unless set-start sets it\n")
    missing = run_cli("numbering", "show", "--mapping", ORMC, "--db",
                      f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.exit_code == ExitCode.STATE, missing.output
    assert not (tmp_path / "none.db").exists()


def test_the_first_run_s_note_says_to_cancel_and_move(tmp_path):
    """The note of a run opening a sequence nobody set says, if the collectivity had
    issued rôles, not to send its files but to cancel the run and move the numbering
    (before: set-start, which refuses a started sequence)."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = export_recorded(lambda: Store(db), ORMC, EXAMPLE, tmp_path / "o", RUN)
    (note,) = [n.detail for n in result.notes if n.policy == "numbering"]
    assert (f"do not send these files: the sequence has started with this run, so cancel it "
            f"(`pesgen runs cancel {result.run_id} --reason ...`), move the "
            f"sequence (`pesgen numbering move --mapping {ORMC} --to N --reason ...` (N: the "
            "number after the last rôle issued)) and export again") in note, note


def test_the_first_run_s_note_s_commands_run_as_printed(tmp_path):
    """The first run's note said `pesgen runs cancel RUN …` ("RUN as this summary names
    it") and "same --db" in words: pasted, neither command ran. It now names the run
    and the store given by --db; pasted (with a reason and a number), the run is
    cancelled and the sequence moved."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("export", "--mapping", ORMC, "--input", EXAMPLE, "--out", tmp_path / "o",
                "--date", RUN.isoformat(), "--db", db, "--create-store")
    assert r.exit_code == 0, r.output
    (note,) = [ln for ln in r.output.splitlines() if ln.startswith("  - *: numbering: ")]
    assert "same --db" not in note and "RUN" not in note, note
    cancel, move = re.findall(r"`(pesgen runs cancel [^`]*|pesgen numbering move [^`]*)`",
                              note)
    assert cancel.endswith(f" --reason ... --db {db}") and move.endswith(f" --db {db}"), note
    done = run_cli(*shlex.split(cancel.replace("...", "'rôles issued before pesgen'"))[1:])
    assert done.exit_code == 0, done.output
    moved = run_cli(*shlex.split(move.replace("...", "'rôles issued before pesgen'")
                                 .replace("--to N", "--to 41"))[1:])
    assert moved.exit_code == 0, moved.output
    shown = run_cli("numbering", "show", "--mapping", ORMC, "--db", db)
    assert "IdBord 41" in shown.stdout, shown.output


def _other_run(tmp_path: Path) -> Path:
    """The example export with other invoice numbers, so other NumDettes (another
    billing run)."""
    text = EXAMPLE.read_text(encoding="utf-8").replace('"FA-2026-00', '"FA-2026-50')
    assert text != EXAMPLE.read_text(encoding="utf-8")
    path = tmp_path / "other-run.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("mapping", [ORMC, TITRES], ids=["ormc", "titres"])
def test_a_move_while_an_export_prepares_is_the_numbering_it_records(db_url, tmp_path,
                                                                      mapping):
    """The sequence moved while an export reads and renders (before it locks the
    sequence): the export numbers its bordereau, and its titres, from where the move put
    them, as after another run recorded meanwhile; nothing taken twice."""
    first = export_recorded(lambda: Store(db_url), mapping, EXAMPLE, tmp_path / "o1", RUN)
    titres = mapping == TITRES
    moved: list[int] = []

    def meanwhile(_read: int) -> None:
        if not moved:
            moved.append(1)
            wanted = [((TITRES_KEY if titres else ORMC_KEY), 12)]
            if titres:
                wanted.append((PIECES_KEY, 342))
            Store(db_url).move(wanted, "the finance package's numbers")

    second = export_recorded(lambda: Store(db_url), mapping, _other_run(tmp_path),
                             tmp_path / "o2", RUN, progress=meanwhile)
    assert moved and first.first_number == 1 and second.first_number == 12
    (xml,) = (tmp_path / "o2").glob("*.xml")
    text = xml.read_text(encoding="iso-8859-1")
    assert re.findall(r'<IdBord V="(\d+)"/>', text) == ["12"]
    if titres:
        assert re.findall(r'<IdPce V="(\d+)"/>', text) == [str(n) for n in range(342, 353)]
    assert xml.name.endswith("_2026_0000012.xml"), xml.name  # its name says it too


def test_numbering_show_without_a_mapping_lists_every_sequence_of_the_store(tmp_path):
    """Support may not know which mapping: without --mapping, every sequence of the
    store, by SIRET, budget, exercise and TypBord, the titre numbers after their
    budget's bordereaux; --exercise keeps one exercise."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o", RUN)
    store.set_start(ORMC_KEY, 7)
    store.set_start((SIRET, "00", 2027, "06"), 3)
    store.move([(PIECES_KEY, 40)], "titres 12-39 issued by the finance package")
    r = run_cli("numbering", "show", "--db", db)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [ln.split(":")[0] for ln in lines if not ln.startswith("  ")] == [
        f"the numbering of {SIRET} budget 00 exercise 2026 TypBord 01",
        f"the numbering of {SIRET} budget 00 exercise 2026 TypBord 06",
        f"the titre numbers (IdPce) of {SIRET} budget 00 exercise 2026",
        f"the numbering of {SIRET} budget 00 exercise 2027 TypBord 06"], lines
    assert lines[1].endswith("started at 7, next IdBord 7; no run of this store took a "
                             "number from it"), lines
    assert lines[2].endswith("started at 1, next titre number (IdPce) 40; runs of this "
                             "store took up to 11"), lines
    assert re.fullmatch(r"  moved \S+Z: next 12 -> 40 \(titres 12-39 issued by the finance "
                        r"package\)", lines[3]), lines
    one = run_cli("numbering", "show", "--db", db, "--exercise", "2027")
    assert one.exit_code == 0 and one.stdout == (
        f"the numbering of {SIRET} budget 00 exercise 2027 TypBord 06: started at 3, next "
        "IdBord 3; no run of this store took a number from it\n"), one.output
    none = run_cli("numbering", "show", "--db", db, "--exercise", "2025")
    assert none.exit_code == 0 and none.stdout == (
        "no numbering sequence in this store for exercise 2025 (no run, no set-start)\n")
    bad = run_cli("numbering", "show", "--db", db, "--exercise", "202")
    assert bad.exit_code == ExitCode.USAGE, bad.output


def test_store_copy_keeps_the_moves_and_a_move_after_it(db_url, tmp_path):
    """`pesgen store copy` (SQLite into the target) copies the moves with the sequences;
    on the copy, numbering show lists them, and a move after it is recorded after them
    (PostgreSQL: the moves' id sequence set past the copied rows)."""
    from pesgen.store import copy_store

    source = f"sqlite:///{tmp_path / 'source.sqlite3'}"
    _ormc_run(source, tmp_path / "o1")
    Store(source).move([(ORMC_KEY, 12)], "rôles 1-11 issued elsewhere")
    counts = copy_store(source, db_url)
    assert counts["sequence_moves"] == 1 and counts["sequences"] == 1
    target = Store(db_url)
    [state] = target.sequences()
    assert (state.start, state.next_number, state.given_up_to) == (1, 12, 1)
    assert [(m.from_number, m.to_number, m.reason) for m in state.moves] == [
        (2, 12, "rôles 1-11 issued elsewhere")]
    target.move([(ORMC_KEY, 20)], "again")
    assert [(m.from_number, m.to_number) for m in target.sequence(ORMC_KEY).moves] == [
        (2, 12), (12, 20)]


def test_move_and_show_refuse_what_they_can_before_the_store(tmp_path):
    """A number out of range, or an exercise no mapping can have, is a usage error (exit
    2) before the store is opened (none is made); a mapping refused lists its problems
    and says nothing moved (show: nothing of a write)."""
    missing = tmp_path / "none.db"
    r = _move(f"sqlite:///{missing}", "--to", "0", "--reason", "why")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr == "error: the next number must be between 1 and 9999999\n", r.stderr
    for args in (["numbering", "move", "--to", "12", "--reason", "why"],
                 ["numbering", "show"]):
        r = run_cli(*args, "--mapping", ORMC, "--exercise", "202", "--db",
                    f"sqlite:///{missing}")
        assert r.exit_code == ExitCode.USAGE and "2000" in r.stderr, r.output
    assert not missing.exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text(ORMC.read_text(encoding="utf-8").replace("bindings:", "bindngs:", 1),
                      encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.db'}"
    Store(db).migrate()
    moved = _move(db, "--to", "12", "--reason", "why", mapping=broken)
    assert moved.exit_code == ExitCode.MAPPING, moved.output
    assert re.search(r"\n\d+ problem\(s\); nothing moved\.\n$", moved.stderr), moved.stderr
    shown = run_cli("numbering", "show", "--mapping", broken, "--db", db)
    assert shown.exit_code == ExitCode.MAPPING, shown.output
    assert re.search(r"\n\d+ problem\(s\)\.\n$", shown.stderr), shown.stderr


@pytest.mark.parametrize("which", [ORMC_KEY, PIECES_KEY, (SIRET, "00", 2027, "06")])
def test_one_sequence_is_read_with_its_own_moves_only(tmp_path, which):
    """`Store.sequence(key)` (what move and an export's numbering read) gives that
    sequence's moves, whatever the other sequences of the store moved: each of the three
    sequences here differs from the others by one part of its key."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o", RUN)
    store.set_start(ORMC_KEY, 7)
    store.set_start((SIRET, "00", 2027, "06"), 3)
    for key, to in [(ORMC_KEY, 9), (PIECES_KEY, 40), ((SIRET, "00", 2027, "06"), 5)]:
        store.move([(key, to)], f"moved to {to}")
    state = store.sequence(which)
    assert state is not None and state.key == which
    assert [m.key for m in state.moves] == [which]
    assert [m.reason for m in state.moves] == [
        f"moved to {state.next_number}"]
