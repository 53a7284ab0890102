"""Titre numbers (IdPce) of a format numbering its pieces over the exercise (format.yaml
``numbering: {pieces: per-exercise}``, pes-titres): they continue across bordereaux and
runs of one SIRET, budget and exercise, never twice, never a refused or dry run's, never
a cancelled run's again; ``numbering set-start --start-titre`` sets the first, once;
regenerate, runs show/find and acquit work from the numbers a run recorded. ORMC keeps
1…n per bordereau. On SQLite and on a real PostgreSQL server (PESGEN_TEST_PG_URL).
Also ``numbering set-start``'s --exercise and --start 1 (docs/state.md, Numbering)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pesgen.errors import ExitCode, InputDataError, MappingError, StateError, UsageError
from pesgen.export import Exporter, export
from pesgen.formats import load_format
from pesgen.runs import export_recorded, regenerate
from pesgen.store import PIECE_SEQUENCE, Store, is_store

from .conftest import EXAMPLES, MAPPINGS, ROOT, run_cli
from .mapping_support import mapping_copy
from .test_acquit import ACKS
from .test_store import _cli

RUN = date(2026, 11, 23)
TITRES = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
ORMC = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = EXAMPLES / "school-export.json"


def _pieces(folder: Path) -> list[list[int]]:
    """The IdPce of each XML file of a folder, in file name order."""
    return [[int(n) for n in re.findall(rb'<IdPce V="(\d+)"/>', p.read_bytes())]
            for p in sorted(folder.glob("*.xml"))]


def _tagged(tmp_path: Path, tag: str, keep: int | None = None) -> Path:
    """The example with every invoice number suffixed (runs then share no invoice),
    its first ``keep`` invoices only."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["invoices"] = [dict(inv, number=f"{inv['number']}-{tag}")
                        for inv in data["invoices"]][:keep]
    path = tmp_path / f"export-{tag}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _split(tmp_path: Path, source: Path = TITRES) -> Path:
    """A mapping with at most 4 titles per bordereau (11 titles: 3 bordereaux)."""
    return mapping_copy(tmp_path, source, ("  asap_delay_days: 0\n",
                                           "  asap_delay_days: 0\n  max_pieces_per_bordereau: 4\n"),
                        name=f"split-{source.name}")[0]


def _idpce_sequence(db_url: str) -> tuple[int, int] | None:
    """(next, start) of the titre numbers' sequence of the example's collectivity."""
    store = Store(db_url)
    with store.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT next_number, start_number FROM sequences WHERE typ_bord = 'IdPce'")).all()
    return tuple(row[0]) if row else None


def test_two_titres_runs_number_their_titres_on_not_again(db_url, tmp_path):
    """The reviewer's case: IdBord 1 then 2 (right) but IdPce 1-11 twice, which Hélios
    rejects as ERREUR_DOUBLON_PIECE. Now run 2 takes IdPce 12-22."""
    store = Store(db_url)
    first = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    second = export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B"), tmp_path / "o2", RUN)
    assert (first.first_number, second.first_number) == (1, 2)
    assert _pieces(tmp_path / "o1") == [list(range(1, 12))]
    assert _pieces(tmp_path / "o2") == [list(range(12, 23))]
    assert [p for _inv, _b, p, _d, _a in second.invoices] == list(range(12, 23))
    # the first run's file is the golden one: a fresh store's first run keeps its bytes
    golden = ROOT / "templates" / "pes-titres" / "expected"
    [made] = (tmp_path / "o1").glob("*.xml")
    assert made.read_bytes() == (golden / made.name).read_bytes()
    assert _idpce_sequence(db_url) == (23, 1)


def test_a_titres_run_exported_again_is_refused_by_the_guard_taking_no_number(
        db_url, tmp_path):
    """A titre has no NumDette: the guard refuses its invoices held by an active run on
    their own, naming the run (not the store's unique index, after the numbers were
    taken), and the next run takes the numbers that follow."""
    store = Store(db_url)
    first = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o2", RUN)
    assert str(info.value).startswith(
        f"11 invoice(s) already exported by run(s) {first.run_id}; nothing written")
    assert {p.rule for p in info.value.problems} == {"run.duplicate"}
    assert not (tmp_path / "o2").exists()
    second = export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B"), tmp_path / "o3", RUN)
    assert second.first_number == 2 and _pieces(tmp_path / "o3") == [list(range(12, 23))]


def test_a_run_of_several_bordereaux_numbers_on_from_one_to_the_next(db_url, tmp_path):
    store = Store(db_url)
    mapping = _split(tmp_path)
    export_recorded(lambda: store, mapping, EXAMPLE, tmp_path / "o1", RUN)
    assert _pieces(tmp_path / "o1") == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]
    export_recorded(lambda: store, mapping, _tagged(tmp_path, "B"), tmp_path / "o2", RUN)
    assert _pieces(tmp_path / "o2") == [[12, 13, 14, 15], [16, 17, 18, 19], [20, 21, 22]]
    # without a store, a run of several bordereaux numbers on too, from 1
    export(mapping, EXAMPLE, tmp_path / "o3", RUN)
    assert _pieces(tmp_path / "o3") == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]


def test_ormc_still_numbers_its_articles_in_each_bordereau(db_url, tmp_path):
    store = Store(db_url)
    mapping = _split(tmp_path, ORMC)
    export_recorded(lambda: store, mapping, EXAMPLE, tmp_path / "o1", RUN)
    assert _pieces(tmp_path / "o1") == [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3]]
    assert _idpce_sequence(db_url) is None  # no titre numbers taken
    assert load_format(ROOT / "templates" / "pes-ormc").pieces == "per-bordereau"
    assert load_format(ROOT / "templates" / "pes-titres").pieces == "per-exercise"


def test_ormc_and_titres_runs_take_none_of_each_other_s_numbers(db_url, tmp_path):
    """Only the titre numbers continue after older titres runs' IdPce: a TypBord's
    bordereau numbering (here ORMC's, after a titres run took IdPce 1-11) starts at 1,
    and ORMC runs' article numbers are not titre numbers."""
    store = Store(db_url)
    export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    ormc = export_recorded(lambda: store, ORMC, _tagged(tmp_path, "B"), tmp_path / "o2", RUN)
    assert ormc.first_number == 1
    assert [re.findall(rb'<IdBord V="(\d+)"/>', p.read_bytes())
            for p in sorted((tmp_path / "o2").glob("*.xml"))] == [[b"1"]]
    # nor are ORMC's article numbers (IdPce 1-11 of each bordereau) titre numbers: the
    # first titres run of a store holding only ORMC runs numbers its titres from 1
    other = Store(f"sqlite:///{tmp_path / 'ormc-first.db'}")
    export_recorded(lambda: other, ORMC, EXAMPLE, tmp_path / "o3", RUN)
    export_recorded(lambda: other, TITRES, _tagged(tmp_path, "C"), tmp_path / "o4", RUN)
    assert _pieces(tmp_path / "o4") == [list(range(1, 12))]


def test_refused_and_dry_runs_take_no_titre_number_a_cancelled_run_s_are_not_given_again(
        db_url, tmp_path):
    store = Store(db_url)
    export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    # refused: the same invoices again
    with pytest.raises(StateError):
        export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "refused", RUN)
    # refused: an input error
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["invoices"][0]["lines"][0]["amount"] = "x"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError):
        export_recorded(lambda: store, TITRES, bad, tmp_path / "refused2", RUN)
    # a dry run says the numbers the export would take, takes none
    dry = export_recorded(lambda: Store(db_url, read_only=True), TITRES, _tagged(tmp_path, "B"),
                          None, RUN, dry_run=True)
    assert [p for _inv, _b, p, _d, _a in dry.invoices] == list(range(12, 23))
    assert _idpce_sequence(db_url) == (12, 1)
    second = export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B"), tmp_path / "o2", RUN)
    assert _pieces(tmp_path / "o2") == [list(range(12, 23))]
    store.cancel(second.run_id, "rejected by the trésorerie")
    export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B"), tmp_path / "o3", RUN)
    assert _pieces(tmp_path / "o3") == [list(range(23, 34))]


def test_a_run_recorded_meanwhile_renders_the_titres_again_with_the_next_numbers(
        db_url, tmp_path, monkeypatch):
    """The titres are rendered before the sequence is locked, with the number the store
    held then: another run recorded in between moves it, and the export renders them
    again, under the lock, rather than give the same IdPce twice."""
    events = _spy(monkeypatch)
    store = Store(db_url)
    other = _tagged(tmp_path, "B")
    done: list[str] = []

    def meanwhile(_read: int) -> None:
        if not done:  # at the end of the first preparation only
            done.append("x")
            export_recorded(lambda: Store(db_url), TITRES, other, tmp_path / "other", RUN)

    result = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN,
                             progress=meanwhile)
    assert _pieces(tmp_path / "other") == [list(range(1, 12))]
    assert _pieces(tmp_path / "o1") == [list(range(12, 23))]
    assert result.first_number == 2
    # this export read 1 before preparing, the other run took 1-11 meanwhile: its titles
    # are prepared again once the sequence is locked, from the number it holds then
    assert events == [("prepare", 1), ("prepare", 1), ("lock", 1), ("lock", 12),
                      ("prepare", 12)]
    assert _idpce_sequence(db_url) == (23, 1)
    # recorded with the numbers written, and rebuilt from them
    regenerate(store, result.run_id, tmp_path / "again")
    assert _pieces(tmp_path / "again") == [list(range(12, 23))]


def test_titres_rendered_again_hold_the_student_to_the_text_policies_still(
        db_url, tmp_path, monkeypatch):
    """The titres rendered again with the next numbers (a run recorded meanwhile) are
    rendered as the first time: a line's student a template writes still goes through
    the mapping's text policies ('\u00e9lv' upper-cased), not taken as exported."""
    from pesgen.resources import data_dir

    fmts = tmp_path / "fmts"
    shutil.copytree(data_dir("templates") / "pes-titres", fmts / "pes-titres")
    template = fmts / "pes-titres" / "pes-titres.xml.j2"
    text = template.read_text(encoding="iso-8859-1")
    old = '<ObjLignePce V="{{ ln.label }}"/>'
    assert text.count(old) == 1
    template.write_text(text.replace(old, '<ObjLignePce V="{{ ln.student or ln.label }}"/>'),
                        encoding="iso-8859-1")
    spec = fmts / "pes-titres" / "format.yaml"
    spec.write_text("".join(ln for ln in spec.read_text(encoding="utf-8").splitlines(True)
                            if not ln.startswith("  line.student:")), encoding="utf-8")
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["invoices"][0]["lines"][0]["student"]["ref"] = "\u00e9lv-0999"
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    events = _spy(monkeypatch)
    done: list[str] = []

    def meanwhile(_read: int) -> None:
        if not done:  # at the end of the first preparation only
            done.append("x")
            export_recorded(lambda: Store(db_url), TITRES, _tagged(tmp_path, "B"),
                            tmp_path / "other", RUN, formats_dirs=[fmts])

    export_recorded(lambda: Store(db_url), TITRES, source, tmp_path / "o1", RUN,
                    formats_dirs=[fmts], progress=meanwhile)
    assert ("prepare", 12) in events  # rendered again
    written = b"".join(p.read_bytes() for p in (tmp_path / "o1").glob("*.xml"))
    assert '<ObjLignePce V="\u00c9LV-0999"/>'.encode("iso-8859-1") in written
    assert "\u00e9lv".encode("iso-8859-1") not in written


def _spy(monkeypatch) -> list[tuple[str, int]]:
    """Every preparation of titles (Exporter.prepare: its first IdPce), and every lock of
    a titre numbers' sequence at the commit (Store.peek_next of 'IdPce': the number it
    holds), in the order they happen."""
    events: list[tuple[str, int]] = []
    prepare, peek = Exporter.prepare, Store.peek_next

    def preparing(self, input_path, first_piece=1):
        events.append(("prepare", first_piece))
        return prepare(self, input_path, first_piece)

    def locking(self, conn, key):
        number = peek(self, conn, key)
        if key[3] == PIECE_SEQUENCE:
            events.append(("lock", number))
        return number

    monkeypatch.setattr(Exporter, "prepare", preparing)
    monkeypatch.setattr(Store, "peek_next", locking)
    return events


def _notes(result) -> list[tuple[str, str, str, str]]:
    return [(n.policy, n.invoice, n.origin, n.detail) for n in result.notes]


def test_a_titres_export_into_a_store_there_prepares_its_titles_once(
        db_url, tmp_path, monkeypatch):
    """The store is read before the titles are prepared: they are rendered once, with
    the next titre number, not from 1 and then again from it (twice the time of a
    titres export, from its exercise's second on). Same bytes and notes as its dry run."""
    store = Store(db_url)
    export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    second = _tagged(tmp_path, "B")
    dry = export_recorded(lambda: Store(db_url, read_only=True), TITRES, second, None, RUN,
                          dry_run=True)
    events = _spy(monkeypatch)
    result = export_recorded(lambda: store, TITRES, second, tmp_path / "o2", RUN)
    assert events == [("prepare", 12), ("lock", 12)]  # before: prepared from 1, then 12
    assert _pieces(tmp_path / "o2") == [list(range(12, 23))]
    assert [(f.path.name, f.sha256) for f in result.files] == \
        [(f.path.name, f.sha256) for f in dry.files]
    assert [hashlib.sha256(f.path.read_bytes()).hexdigest() for f in result.files] == \
        [f.sha256 for f in dry.files]
    assert _notes(result) == _notes(dry)


def test_the_titles_prepared_once_are_those_prepared_again_from_1(tmp_path, monkeypatch):
    """A store opening creates (``creates_store``) is opened after the input is read:
    its titles are prepared from 1, then again if the store holds another number (here:
    a store that was there, said new). Either way the same files and notes."""
    for name in ("once", "again"):
        store = Store(f"sqlite:///{tmp_path / name}.db")
        export_recorded(lambda store=store: store, TITRES, EXAMPLE, tmp_path / f"{name}1", RUN)
    second = _tagged(tmp_path, "B")
    events = _spy(monkeypatch)
    once = export_recorded(lambda: Store(f"sqlite:///{tmp_path / 'once'}.db"), TITRES, second,
                           tmp_path / "once2", RUN, creates_store=lambda: False)
    assert events == [("prepare", 12), ("lock", 12)]
    events.clear()
    again = export_recorded(lambda: Store(f"sqlite:///{tmp_path / 'again'}.db"), TITRES,
                            second, tmp_path / "again2", RUN, creates_store=lambda: True)
    assert events == [("prepare", 1), ("prepare", 12), ("lock", 12)]
    assert [f.path.name for f in once.files] == [f.path.name for f in again.files]
    for mine, theirs in zip(once.files, again.files, strict=True):
        assert mine.path.read_bytes() == theirs.path.read_bytes()
    assert _notes(once) == _notes(again)


def test_a_titres_export_through_the_cli_prepares_its_titles_once(
        db_url, tmp_path, monkeypatch):
    events = _spy(monkeypatch)
    assert not is_store(db_url)  # read only: no file made (an empty PostgreSQL database)
    assert not (tmp_path / "state.sqlite3").exists()
    r = run_cli("export", "-m", TITRES, "-i", EXAMPLE, "-o", tmp_path / "o1", "--date",
                "2026-11-23", "--db", db_url, "--create-store")
    assert r.exit_code == 0, r.output
    # a store this export creates: opened once the input is read, its next number is 1
    assert events == [("prepare", 1), ("lock", 1)]
    assert is_store(db_url)
    events.clear()
    r = run_cli("export", "-m", TITRES, "-i", _tagged(tmp_path, "B"), "-o", tmp_path / "o2",
                "--date", "2026-11-23", "--db", db_url)
    assert r.exit_code == 0, r.output
    assert events == [("prepare", 12), ("lock", 12)]  # before: ("prepare", 1) first
    assert _pieces(tmp_path / "o2") == [list(range(12, 23))]


def test_regenerate_runs_show_find_and_acquit_work_with_two_titres_runs(db_url, tmp_path):
    store = Store(db_url)
    first = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    second = export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B"), tmp_path / "o2", RUN)
    for run, folder in ((first, "o1"), (second, "o2")):
        regenerate(store, run.run_id, tmp_path / f"re-{folder}")
        [made] = (tmp_path / folder).glob("*.xml")
        assert (tmp_path / f"re-{folder}" / made.name).read_bytes() == made.read_bytes()
    shown = run_cli("runs", "show", second.run_id, "--invoices", "--db", db_url)
    assert shown.exit_code == 0, shown.output
    rows = [ln.split() for ln in shown.output.splitlines() if ln.startswith("    FA-2026-")]
    assert [(r[0], r[1], r[2]) for r in rows][:2] == [("FA-2026-00101-B", "2", "12"),
                                                      ("FA-2026-00102-B", "2", "13")]
    found = run_cli("runs", "find", "FA-2026-00103-B", "--db", db_url)
    assert found.exit_code == 0 and "IdBord 2 IdPce 14 " in found.output, found.output
    # the trésorerie rejects titre 14 of IdBord 2: NumPiece is the titre number
    text = (ACKS / "rejected.xml").read_bytes()
    [element] = re.findall(rb"    <ElementACQUIT>.*?</ElementACQUIT>\n", text, re.S)[1:]
    text = (text.replace(element, b"")
            .replace(b"PESORMC_21450999400015_2026_0000001.xml",
                     b"PESALR1_21450999400015_2026_0000002.xml")
            .replace(b'<NumBord V="1"/>', b'<NumBord V="2"/>')
            .replace(b'<DomaineAck V="7"/>', b'<DomaineAck V="6"/>')  # titres
            .replace(b'<NumPiece V="3"/>', b'<NumPiece V="14"/>'))
    ack = tmp_path / "ack.xml"
    ack.write_bytes(text)
    said = run_cli("acquit", ack, "--db", db_url)
    assert said.exit_code == ExitCode.REJECTED, said.output
    assert f"run {second.run_id}" in said.output
    # named with its record in the second run's input (where to correct it), not the first's
    where = f"{(tmp_path / 'export-B.json').resolve()}:$.invoices[2]"
    assert f"  IdPce 14 invoice FA-2026-00103-B ({where}):" in said.output, said.output


def _old_bundle(tmp_path: Path) -> Path:
    """pes-titres as pesgen shipped it before it numbered titres over the exercise:
    its format.yaml without ``numbering``."""
    formats = tmp_path / "formats"
    shutil.copytree(ROOT / "templates" / "pes-titres", formats / "pes-titres")
    fmt = formats / "pes-titres" / "format.yaml"
    text = fmt.read_text(encoding="utf-8")
    old = re.sub(r"\n(# [^\n]*\n)*numbering:\n  pieces: per-exercise\n", "\n", text)
    assert old != text and "numbering" not in old
    fmt.write_text(old, encoding="utf-8")
    return formats


def test_runs_recorded_before_keep_their_per_bordereau_numbers_when_regenerated(
        db_url, tmp_path):
    store = Store(db_url)
    formats = _old_bundle(tmp_path)
    mapping = _split(tmp_path)
    old = export_recorded(lambda: store, mapping, EXAMPLE, tmp_path / "o1", RUN,
                          formats_dirs=[formats])
    assert _pieces(tmp_path / "o1") == [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3]]
    regenerate(store, old.run_id, tmp_path / "re")
    assert _pieces(tmp_path / "re") == [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3]]
    # the shipped bundle numbers on after the largest titre number those runs sent (4),
    # its titre sequence unset so far: none of theirs is given again
    export_recorded(lambda: store, mapping, _tagged(tmp_path, "B"), tmp_path / "o2", RUN)
    assert _pieces(tmp_path / "o2") == [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15]]


def test_set_start_titre_sets_the_first_titre_number_once(db_url, tmp_path):
    r = run_cli("numbering", "set-start", "--mapping", TITRES, "--start-titre", "342",
                "--db", db_url, "--create-store")
    assert r.exit_code == 0, r.output
    assert "titre numbers (IdPce) of 21450999400015 budget 00 exercise 2026 start at 342" \
        in r.output
    again = run_cli("numbering", "set-start", "--mapping", TITRES, "--start-titre", "400",
                    "--db", db_url)
    assert again.exit_code == ExitCode.STATE and "once" in again.output, again.output
    # IdBord not set yet: settable alone, and the titre numbers stay at 342
    r = run_cli("numbering", "set-start", "--mapping", TITRES, "--start", "5", "--db", db_url)
    assert r.exit_code == 0, r.output
    store = Store(db_url)
    result = export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    assert result.first_number == 5
    assert _pieces(tmp_path / "o1") == [list(range(342, 353))]
    assert not [n for n in result.notes if n.policy == "numbering"]
    after = run_cli("numbering", "set-start", "--mapping", TITRES, "--start-titre", "1",
                    "--db", db_url)
    assert after.exit_code == ExitCode.STATE, after.output
    assert _idpce_sequence(db_url) == (353, 342)


def test_set_start_titre_is_refused_where_it_means_nothing_or_cannot_be(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    ormc = run_cli("numbering", "set-start", "--mapping", ORMC, "--start-titre", "3",
                   "--db", db, "--create-store")
    assert ormc.exit_code == ExitCode.USAGE and "per-bordereau" in ormc.output, ormc.output
    for bad in ("0", "100000000"):
        r = run_cli("numbering", "set-start", "--mapping", TITRES, "--start-titre", bad,
                    "--db", db, "--create-store")
        assert r.exit_code == ExitCode.USAGE and "99999999" in r.output, r.output
    # an IdBord past Base_Num7 is refused as one, before the store is made
    r = run_cli("numbering", "set-start", "--mapping", TITRES, "--start", "10000000", "--db",
                db, "--create-store")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "the starting number must be between 1 and 9999999" in r.output, r.output
    none = run_cli("numbering", "set-start", "--mapping", TITRES, "--db", db,
                   "--create-store")
    assert none.exit_code == ExitCode.USAGE, none.output
    assert not (tmp_path / "s.db").exists()
    # both at once: one refused, neither set
    store = Store(db, must_exist=False)
    store.set_start(("21450999400015", "00", 2026, "01"), 7)
    r = run_cli("numbering", "set-start", "--mapping", TITRES, "--start", "9",
                "--start-titre", "50", "--db", db)
    assert r.exit_code == ExitCode.STATE, r.output
    assert _idpce_sequence(db) is None


def test_titre_numbers_past_base_num8_are_refused_taking_none(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    store.set_start(("21450999400015", "00", 2026, "01"), None,
                    (("21450999400015", "00", 2026, "IdPce"), 99_999_990))
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    assert [p.rule for p in info.value.problems] == ["run.piece-numbers"]
    assert "99999990" in str(info.value) and "100000000" in str(info.value)
    assert not (tmp_path / "o1").exists()
    assert _idpce_sequence(db) == (99_999_990, 99_999_990)
    export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B", keep=11), tmp_path / "o2", RUN)
    assert _pieces(tmp_path / "o2") == [list(range(99_999_990, 100_000_000))]


def test_a_sequence_can_start_at_its_last_number(tmp_path):
    """The largest IdBord (Base_Num7: 9999999) and titre number (Base_Num8: 99999999)
    are starts like any other: a collectivity whose finance package is there gives them
    to its next run's bordereau and titre."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    key, pkey = ("21450999400015", "00", 2026, "01"), ("21450999400015", "00", 2026, "IdPce")
    # one past them is refused by the store itself (not only by the CLI), nothing set
    with pytest.raises(UsageError, match="the starting number must be between 1 and 9999999$"):
        store.set_start(key, 10_000_000)
    with pytest.raises(UsageError, match=r"titre number \(IdPce\) must be between 1 and 99999999$"):
        store.set_start(key, 5, (pkey, 100_000_000))
    assert _sequences(db) == []
    store.set_start(key, 9_999_999, (pkey, 99_999_999))
    result = export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B", keep=1),
                             tmp_path / "o", RUN)
    assert result.first_number == 9_999_999
    assert [re.findall(rb'<IdBord V="(\d+)"/>', p.read_bytes()) for p in
            sorted((tmp_path / "o").glob("*.xml"))] == [[b"9999999"]]
    assert _pieces(tmp_path / "o") == [[99_999_999]]


@pytest.mark.parametrize("dry_run", [False, True])
def test_rôle_numbers_past_base_num7_are_refused_taking_none(tmp_path, dry_run):
    """A run whose bordereaux would take IdBord past 9999999 (Base_Num7) is refused by
    its rule, naming the sequence, nothing written, no number used (its dry run says it
    too): before, the file name's template refused it ('10000000' is longer than 7,
    exit 5, rule template), as if the format were broken."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    key = ("21450999400015", "00", 2026, "06")
    store.set_start(key, 9_999_998)
    split = _split(tmp_path, ORMC)  # 11 titles: 3 bordereaux, IdBord 9999998 to 10000000
    with pytest.raises(StateError) as info:
        export_recorded((lambda: Store(db, read_only=True)) if dry_run else (lambda: store),
                        split, EXAMPLE, tmp_path / "o1", RUN, dry_run=dry_run)
    assert [(p.rule, p.message) for p in info.value.problems] == [(
        "run.bordereau-numbers", "the numbering of 21450999400015 budget 00 exercise 2026 "
        "TypBord 06 would reach 10000000 with this run's 3 bordereau(x) from 9999998, over "
        "9999999 (IdBord, Base_Num7)")]
    assert info.value.exit_code == ExitCode.STATE
    assert not (tmp_path / "o1").exists()
    assert _sequences(db) == [(2026, "06", 9_999_998, 9_999_998)]
    # two bordereaux fit: 9999998 and 9999999
    result = export_recorded(lambda: store, split, _tagged(tmp_path, "B", keep=8),
                             tmp_path / "o2", RUN)
    assert result.first_number == 9_999_998 and len(result.files) == 2


def test_the_first_titres_export_says_it_opens_the_titre_numbers(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("export", "-m", TITRES, "-i", EXAMPLE, "-o", tmp_path / "o1", "--date",
                "2026-11-23", "--db", db, "--create-store")
    assert r.exit_code == 0, r.output
    [note] = [ln for ln in r.output.splitlines() if "numbering:" in ln]
    assert "it took IdBord 1 and IdPce 1" in note
    # the numbers taken: no set-start any more, a move of both (after a cancel)
    assert "`pesgen runs cancel RUN" not in note and \
        re.search(r"`pesgen runs cancel [0-9a-f-]{36} --reason \.\.\. --db ", note) and \
        f"`pesgen numbering move --mapping {TITRES} --to N --to-titre T --reason ... --db " \
        f"{db}` (N: the number after the last bordereau issued, T: after the last titre " \
        "issued" in note, note
    assert "set-start" not in note.split("issued titres this exercise already")[1], note
    # the titre numbers still unset (IdBord set): the note names them alone
    db2 = f"sqlite:///{tmp_path / 's2.db'}"
    Store(db2, must_exist=False).set_start(("21450999400015", "00", 2026, "01"), 3)
    r = run_cli("export", "-m", TITRES, "-i", EXAMPLE, "-o", tmp_path / "o2", "--date",
                "2026-11-23", "--db", db2, "--dry-run")
    assert r.exit_code == 0, r.output
    [note] = [ln for ln in r.output.splitlines() if "numbering:" in ln]
    assert "opens the titre numbers of 21450999400015 budget 00 exercise 2026" in note
    assert "would take IdPce 1" in note and f"--start-titre T --db {db2}`" in note
    assert "numbering move" not in note, note  # a dry run: set-start, nothing started


def test_a_format_s_numbering_is_checked_by_its_schema(tmp_path):
    folder = tmp_path / "pes-titres"
    shutil.copytree(ROOT / "templates" / "pes-titres", folder)
    fmt = folder / "format.yaml"
    text = fmt.read_text(encoding="utf-8")
    fmt.write_text(text.replace("pieces: per-exercise", "pieces: per-year"), encoding="utf-8")
    with pytest.raises(MappingError) as info:
        load_format(folder)
    assert any("numbering.pieces" in (p.mapping or "") + p.message
               for p in info.value.problems), info.value.problems
    # no format's TypBord may be the titre numbers' sequence
    fmt.write_text(text.replace('typ_bord: "01"', 'typ_bord: "IdPce"'), encoding="utf-8")
    with pytest.raises(MappingError):
        load_format(folder)


def test_concurrent_titres_exports_never_share_a_titre_number(db_url, tmp_path):
    Store(db_url)  # schema created once, before the race
    inputs = [_tagged(tmp_path, f"C{i}") for i in range(6)]

    def run(i: int):
        return _cli(["export", "-m", str(TITRES), "-i", str(inputs[i]), "-o",
                     str(tmp_path / f"out{i}"), "--date", "2026-11-23", "-q"], db_url)

    with ThreadPoolExecutor(max_workers=6) as pool:
        done = list(pool.map(run, range(6)))
    assert [p.returncode for p in done] == [0] * 6, [p.stderr for p in done]
    pieces = sorted(n for i in range(6) for f in _pieces(tmp_path / f"out{i}") for n in f)
    assert pieces == list(range(1, 67))
    runs = Store(db_url).list_runs()
    assert sorted(r.first_number for r in runs) == list(range(1, 7))
    assert _idpce_sequence(db_url) == (67, 1)


def _sequences(db: str) -> list[tuple[int, str, int, int]]:
    store = Store(db)
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT exercise, typ_bord, next_number, start_number FROM sequences "
            "ORDER BY exercise, typ_bord"))]


@pytest.mark.parametrize("exercise", ["-5", "99999", "202", "0", "1999", "3000"])
def test_set_start_refuses_an_exercise_the_mapping_schema_refuses(tmp_path, exercise):
    """`--exercise 202` (a typo) set exercise 202's sequence, rc 0, and left 2026's unset
    (to start at IdBord 1, which Hélios knows); `--exercise 0` was taken as not given."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("numbering", "set-start", "--mapping", ORMC, "--start", "12", "--exercise",
                exercise, "--db", db, "--create-store")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"--exercise {exercise}: an exercise is a year from 2000 to 2999" in r.output
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("exercise", [2000, 2999])
def test_set_start_takes_the_first_and_last_exercise_the_mapping_schema_takes(tmp_path,
                                                                             exercise):
    """The bounds of collectivity.exercise are exercises --exercise takes (the refusal's
    comparisons are inclusive, as the schema's minimum and maximum)."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("numbering", "set-start", "--mapping", ORMC, "--start", "12", "--exercise",
                str(exercise), "--db", db, "--create-store")
    assert r.exit_code == 0, r.output
    assert _sequences(db) == [(exercise, "06", 12, 12)]


def test_set_start_sets_the_exercise_given(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("numbering", "set-start", "--mapping", TITRES, "--start", "12",
                "--start-titre", "300", "--exercise", "2027", "--db", db, "--create-store")
    assert r.exit_code == 0, r.output
    assert "exercise 2027 TypBord 01 starts at 12" in r.output
    assert _sequences(db) == [(2027, "01", 12, 12), (2027, "IdPce", 300, 300)]


def test_a_second_start_is_refused_naming_the_sequence_and_where_it_stands(tmp_path):
    """A start is set once: the refusal names the sequence (SIRET, budget, exercise, and
    TypBord or titre numbers) and where it stands, the store unchanged."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("numbering", "set-start", "--mapping", TITRES, "--start", "12",
                "--start-titre", "300", "--db", db, "--create-store")
    assert r.exit_code == 0, r.output
    again = run_cli("numbering", "set-start", "--mapping", TITRES, "--start", "20",
                    "--db", db)
    assert again.exit_code == ExitCode.STATE, again.output
    assert ("the numbering of 21450999400015 budget 00 exercise 2026 TypBord 01 has already "
            "started at 12 (next 12); a start can be set once, before any export") in again.output
    again = run_cli("numbering", "set-start", "--mapping", TITRES, "--start-titre", "400",
                    "--db", db)
    assert again.exit_code == ExitCode.STATE, again.output
    assert ("the titre numbers (IdPce) of 21450999400015 budget 00 exercise 2026 has already "
            "started at 300 (next 300); a start can be set once") in again.output
    assert _sequences(db) == [(2026, "01", 12, 12), (2026, "IdPce", 300, 300)]


def test_an_explicit_start_of_1_counts_as_set(tmp_path):
    """`--start 1` was stored like "never set": `--start 3` after it was accepted,
    though a start is set once per sequence."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    r = run_cli("numbering", "set-start", "--mapping", ORMC, "--start", "1", "--db", db,
                "--create-store")
    assert r.exit_code == 0, r.output
    again = run_cli("numbering", "set-start", "--mapping", ORMC, "--start", "3", "--db", db)
    assert again.exit_code == ExitCode.STATE, again.output
    assert "has already started at 1 (next 1); a start can be set once" in again.output
    assert _sequences(db) == [(2026, "06", 1, 1)]


def test_titres_recorded_before_the_titre_sequence_are_never_numbered_again(db_url,
                                                                            tmp_path):
    """A store upgraded from a pesgen that numbered each bordereau's titres from 1 holds
    titres runs and no titre-number sequence: the next titres run continues after their
    largest IdPce (it took IdPce 1 again, and said no earlier run was in the store); a
    --start-titre below them is refused."""
    store = Store(db_url)
    export_recorded(lambda: store, TITRES, EXAMPLE, tmp_path / "o1", RUN)
    with store.engine.begin() as conn:  # as the older pesgen left it: no such row
        conn.execute(sa.text("DELETE FROM sequences WHERE typ_bord = 'IdPce'"))
    dry = export_recorded(lambda: Store(db_url, read_only=True), TITRES,
                          _tagged(tmp_path, "B"), None, RUN, dry_run=True)
    assert not any("opens the titre numbers" in n.detail for n in dry.notes)
    with pytest.raises(StateError,
                       match="hold titre numbers up to 11; a start must be 12 or more$"):
        store.set_start(("21450999400015", "00", 2026, "01"), None,
                        pieces=(("21450999400015", "00", 2026, "IdPce"), 5))
    # the first number after theirs is a start it takes
    store.set_start(("21450999400015", "00", 2026, "01"), None,
                    pieces=(("21450999400015", "00", 2026, "IdPce"), 12))
    second = export_recorded(lambda: store, TITRES, _tagged(tmp_path, "B"), tmp_path / "o2",
                             RUN)
    assert _pieces(tmp_path / "o2") == [list(range(12, 23))]
    assert not any("opens the titre numbers" in n.detail for n in second.notes)
    assert _idpce_sequence(db_url) == (23, 12)
