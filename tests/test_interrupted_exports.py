"""Exports raced, killed or refused part-way: what the store and the output folder
hold afterwards, and what pesgen says of it (the state reviewer's cases)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from pesgen.errors import StateError
from pesgen.runs import export_recorded, regenerate
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, generated_input, run_cli, state_database
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"


def _other_budget(tmp_path: Path) -> Path:
    """The example mapping on budget 01: another numbering sequence, whose exports do
    not wait for budget 00's."""
    return mapping_copy(tmp_path, MAPPING, ('cod_bud: "00"', 'cod_bud: "01"'),
                        name="budget-01.yaml")[0]


def test_an_input_held_whole_by_a_run_committed_during_the_guard_is_not_called_partial(
        tmp_path):
    """PostgreSQL: budget 01's export of the same input commits while budget 00's guard
    reads its invoices (in chunks of 500), under its sequence's lock. The guard said
    "only some of this input's invoices are (100 of 600): remove those from the input",
    of an input the other run holds whole: its refusal is the one of an input held
    whole, made on one consistent read."""
    many = generated_input(tmp_path / "many.json", 600, 1)
    budget_01 = _other_budget(tmp_path)
    with state_database("postgresql", tmp_path) as url:
        store = Store(url)
        rival: list = []
        locked = [False]

        def between_chunks(conn, _cursor, statement, *_args) -> None:
            if "FOR UPDATE" in statement:
                locked[0] = True  # budget 00's sequence row: the guard under the lock
            elif (locked[0] and not rival and "FROM run_invoices" in statement
                  and "invoice_key IN" in statement):
                rival.append(export_recorded(lambda: Store(url), budget_01, many,
                                             tmp_path / "rival", RUN))

        sa.event.listen(store.engine, "after_cursor_execute", between_chunks)
        with pytest.raises(StateError) as info:
            export_recorded(lambda: store, MAPPING, many, tmp_path / "b", RUN)
        [winner] = rival
        assert info.value.exit_code == 7
        message = str(info.value)
        assert message == (f"600 invoice(s) already exported by run(s) {winner.run_id}; "
                           "nothing written"), message[:400]
        assert len(info.value.problems) == 600
        # held whole (not "remove those from the input"), by budget 01's run: named so,
        # and not to be cancelled for it
        assert all(", budget 01, exercise 2026); that run is of another budget" in p.message
                   and p.message.endswith("not a reason to cancel that run")
                   for p in info.value.problems), info.value.problems[0].message
        assert not (tmp_path / "b").exists()
        sa.event.remove(store.engine, "after_cursor_execute", between_chunks)
        assert [r.id for r in store.list_runs()] == [winner.run_id]


class PowerCut(BaseException):
    """The process dies: no handler runs (an exception pesgen catches would not do)."""


def _crash() -> None:
    raise PowerCut("kill -9")


def test_a_run_recorded_whose_files_were_never_put_in_place_is_said_so(tmp_path):
    """kill -9 between the commit and the renames: the run is recorded, its files are
    not in its folder. Exporting the input again is refused (its invoices are taken),
    and the refusal said only "cancel that run first", which would make the
    collectivity skip an IdBord Hélios never received; `runs show` said committed."""
    db = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{db}")
    out = tmp_path / "out"
    with pytest.raises(PowerCut):
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN,
                        before_publish=_crash)
    [run] = store.list_runs()
    names = [f["name"] for f in store.get_run(run.id)["files"]]
    advice = (f"if they were never sent, `pesgen regenerate {run.id} --out DIR` rebuilds "
              "them, the same bytes; do not cancel a run whose bordereau number was not sent")
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "b",
                        RUN)
    message = str(info.value)
    assert message.startswith(f"11 invoice(s) already exported by run(s) {run.id}; "
                              f"nothing written. This input is the file run {run.id} "
                              f"exported on {store.get_run(run.id)['created_at']} (the same "
                              "sha256, "), message
    assert (f"…): it is exported already, nothing to export again (pesgen runs show {run.id})"
            f". Run {run.id}'s recorded file(s) "
                              f"{', '.join(names)} are not in {out.resolve()} (as this "
                              "machine sees it): moved away after sending, which is normal, "
                              "or never put in place") in message, message
    assert message.endswith(advice)
    shown = run_cli("runs", "show", run.id[:8], "--db", db)
    assert shown.exit_code == 0
    assert advice in shown.output
    assert f"{names[0]}  IdBord 1" in shown.output
    assert "not in the output dir" in shown.output

    for part in out.iterdir():  # the run's .part files, never sent
        part.unlink()
    regenerate(store, run.id, out)
    with pytest.raises(StateError) as again:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "c",
                        RUN)
    assert str(again.value).startswith(f"11 invoice(s) already exported by run(s) {run.id}; "
                                       "nothing written. This input is the file run ")
    assert "recorded file(s)" not in str(again.value)
    shown = run_cli("runs", "show", run.id[:8], "--db", db)
    assert "rebuilds them" not in shown.output and "not in the output dir" not in shown.output


def test_a_refusal_looks_for_the_files_of_so_many_holding_runs_at_most(tmp_path, monkeypatch):
    """Looking for a run's files is a few file checks: an input held by more runs than
    runs._MOST_RUNS_LOOKED_AT says of that many runs' files whether they are in place,
    not of every run (the bound made 2 here, three runs holding the input); and of none
    when only some of the input is held."""
    import pesgen.runs as runs_mod

    from .test_store import _invoices

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    numbers = ["FA-2026-00101", "FA-2026-00102", "FA-2026-00103"]
    held = []
    for n in numbers:
        out = tmp_path / f"out-{n}"
        done = export_recorded(lambda: store, MAPPING, _invoices({n: n}, tmp_path, f"{n}.json"),
                               out, RUN)
        for f in done.files:  # sent, then moved away: not in its folder any more
            f.path.unlink()
        held.append(done.run_id)
    monkeypatch.setattr(runs_mod, "_MOST_RUNS_LOOKED_AT", 2)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING,
                        _invoices({n: n for n in numbers}, tmp_path, "all.json"),
                        tmp_path / "again", RUN)
    message = str(info.value)
    assert message.startswith(f"3 invoice(s) already exported by run(s) "
                              f"{', '.join(sorted(held))}; nothing written"), message
    said = [run for run in held if f"Run {run}'s recorded file(s) " in message]
    assert len(said) == 2, message
    assert message.count("are not in ") == 2, message
    # only some of an input held: the advice is to remove them from it, not to cancel a
    # run, so its files are not looked for
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING,
                        _invoices({numbers[0]: numbers[0], "FA-2026-00104": "NEW-1"},
                                  tmp_path, "partial.json"), tmp_path / "partial", RUN)
    assert "Only some of this input's invoices are (1 of 2)" in str(info.value)
    assert "recorded file(s)" not in str(info.value)


# a child process exporting budget 00 while its record_run lets budget 01's export
# record the same invoices first (the race the unique indexes refuse): pytest's own
# logging handlers are not there to hide what a library logs to standard error
_RACED_CHILD = """
import subprocess
import sys
from datetime import date
from pathlib import Path
from pesgen.cli import main
from pesgen.runs import export_recorded
from pesgen.store import Store

url, budget_01, example, rival_out = sys.argv[1:5]
record_run = Store.record_run
done = []

def late_record(self, *args):
    if not done:  # (the rival's own record_run goes straight through)
        done.append(None)
        export_recorded(lambda: Store(url), Path(budget_01), Path(example), Path(rival_out),
                        date(2026, 11, 23))
    return record_run(self, *args)

Store.record_run = late_record
sys.argv = ["pesgen", *sys.argv[5:]]
main()
"""


def test_a_race_refused_by_the_store_s_index_prints_no_raw_database_message(tmp_path):
    """PostgreSQL: the record refused by a unique index is rolled back with psycopg's
    pipeline aborted, and psycopg logged `error ignored terminating <psycopg.Pipeline
    [INERROR, pipeline=ON] (host=… user=… database=…)>: pipeline aborted` to standard
    error before pesgen's refusal (no logging configured: Python's last resort)."""
    import subprocess

    # (the example's 11 invoices are inserted in one statement: no pipeline aborted)
    many = generated_input(tmp_path / "many.json", 600, 1)
    with state_database("postgresql", tmp_path) as url:
        Store(url)
        child = subprocess.run(
            [sys.executable, "-c", _RACED_CHILD, url, str(_other_budget(tmp_path)),
             str(many), str(tmp_path / "rival"),
             "export", "-m", str(MAPPING), "-i", str(many),
             "-o", str(tmp_path / "b"), "--date", "2026-11-23", "--db", url, "-q"],
            capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 7, child.stderr
    lines = child.stderr.splitlines()
    assert lines[0].startswith("error: 600 invoice(s) already exported by run(s) "), lines[:3]
    # the refusals alike (walk65) said once, then a line per record
    assert all(line.startswith(("error: ", "  - ", f"      {many}:$.invoices[", "  … and ",
                                "600 problem(s)"))
               for line in lines), \
        child.stderr[:1000]
    assert "psycopg" not in child.stderr and "pipeline" not in child.stderr


@pytest.mark.parametrize("refused", ["mapping", "out-is-a-file", "input"])
def test_an_export_refused_before_the_store_is_needed_creates_no_store(tmp_path, refused):
    """`--create-store` made the store before the mapping was even read: a mapping with
    a YAML error, `-o afile` or a bad input left a new store behind (139 KB), which
    `runs list --db` then read as "no run recorded" instead of refusing a store that
    is not there."""
    from .conftest import example_with_two_input_errors

    db = tmp_path / "new" / "store.sqlite3"
    mapping, source, out = MAPPING, EXAMPLES / "school-export.json", tmp_path / "out"
    if refused == "mapping":
        mapping = tmp_path / "broken.yaml"
        mapping.write_text(MAPPING.read_text(encoding="utf-8") + "\n  : [unclosed\n",
                           encoding="utf-8")
    elif refused == "out-is-a-file":
        out.write_text("not a folder", encoding="utf-8")
    else:
        source = example_with_two_input_errors(tmp_path)
    result = run_cli("export", "-m", mapping, "-i", source, "-o", out, "--date",
                     "2026-11-23", "--db", db, "--create-store")
    assert result.exit_code in (2, 3, 4), result.output
    assert not db.exists() and not db.parent.exists()
    listed = run_cli("runs", "list", "--db", db)
    assert listed.exit_code == 7 and f"no pesgen store at {db}" in listed.output
    # the same export, fixed, creates it
    ok = run_cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "-o",
                 tmp_path / "ok", "--date", "2026-11-23", "--db", db, "--create-store")
    assert ok.exit_code == 0, ok.output
    assert "(created by this run)" in ok.output


def test_numbering_set_start_refused_creates_no_store(tmp_path):
    """`numbering set-start --start 0 --create-store` was refused (exit 2) after it had
    created the store."""
    db = tmp_path / "store.sqlite3"
    result = run_cli("numbering", "set-start", "-m", MAPPING, "--start", "0", "--db", db,
                     "--create-store")
    assert result.exit_code == 2 and "between 1 and 9999999" in result.output
    assert not db.exists()


class _Mounted:
    f_flag = 0


def _read_only_mount(monkeypatch, folder: Path) -> None:
    """``folder`` as on a file system mounted read only: access(2) says not writable,
    statvfs says ST_RDONLY, and a file created in it fails with EROFS."""
    import errno
    import os
    import tempfile

    access, statvfs, temporary = os.access, os.statvfs, tempfile.TemporaryFile
    inside = lambda p: p is not None and Path(p).absolute().is_relative_to(folder)  # noqa: E731

    def mounted(p):
        if inside(p):
            flags = _Mounted()
            flags.f_flag = os.ST_RDONLY
            return flags
        return statvfs(p)

    def spool(*args, dir=None, **kwargs):
        if inside(dir):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(dir) / "tmpabc123"))
        return temporary(*args, dir=dir, **kwargs)

    monkeypatch.setattr(os, "access", lambda p, m, **k: False if inside(p) and m & os.W_OK
                        else access(p, m, **k))
    monkeypatch.setattr(os, "statvfs", mounted)
    monkeypatch.setattr(tempfile, "TemporaryFile", spool)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_read_only_output_folder_is_named_and_said_read_only(tmp_path, monkeypatch,
                                                               dry_run):
    """The export named its spool file (`Read-only file system
    (/…/rodir/tmp0sox3i3_)`), the dry run said "permission denied"."""
    out = tmp_path / "rodir"
    out.mkdir()
    _read_only_mount(monkeypatch, out)
    result = run_cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json",
                     "-o", out, "--date", "2026-11-23", *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 2
    assert f"error: {out}: cannot write in {out} (read-only file system)" in result.output
    assert "tmpabc123" not in result.output


def test_the_note_of_files_left_names_ten_and_counts_the_others(tmp_path):
    """A folder where many exports were killed: the note names ten files and counts the
    others, one line still."""
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for i in range(11):
        (out / f".pesgen-{gone.pid}-0123abcd-k2x9q{i:02d}.part").write_bytes(b"<PES_Aller>")
    result = run_cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "-o",
                     out, "--date", "2026-11-23", "--db", tmp_path / "store.sqlite3",
                     "--create-store")
    assert result.exit_code == 0, result.output
    [note] = [ln for ln in result.output.splitlines() if ln.startswith(f"note: {out} holds")]
    assert note.startswith(f"note: {out} holds 11 temporary file(s) of another pesgen run: ")
    assert note.count(f"(process {gone.pid}, not running on this machine)") == 10, note
    assert "running on this machine), … 1 more. Files of an export" in note, note


def test_the_next_export_and_regenerate_name_what_a_killed_export_left(tmp_path):
    """kill -9 before the commit leaves `.pesgen-<pid>-<token>-*.part` files (fully
    rendered PES files carrying an IdBord never recorded) in the output folder; the next
    export into it said nothing of them."""
    import subprocess

    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that ran and is no more
    left = f".pesgen-{gone.pid}-0123abcd-k2x9q1.part"
    (out / left).write_bytes(b"<PES_Aller>")
    db = tmp_path / "store.sqlite3"
    result = run_cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "-o",
                     out, "--date", "2026-11-23", "--db", db, "--create-store")
    assert result.exit_code == 0, result.output
    note = (f"note: {out} holds 1 temporary file(s) of another pesgen run: {left} (process "
            f"{gone.pid}, not running on this machine). Files of an export (or regenerate) "
            "stopped by a hard kill or a power cut before it put them in place under their "
            "names: never sent, and safe to delete once no pesgen run writes into this "
            "folder")
    assert note in result.output
    assert (out / left).exists()  # named, not removed
    run_id = Store(f"sqlite:///{db}").list_runs()[0].id
    again = run_cli("regenerate", run_id, "-o", tmp_path / "again", "--db", db)
    assert again.exit_code == 0 and "temporary file" not in again.output
    (tmp_path / "again" / left).write_bytes(b"")
    for f in (tmp_path / "again").glob("PES*"):
        f.unlink()
    again = run_cli("regenerate", run_id, "-o", tmp_path / "again", "--db", db)
    assert again.exit_code == 0 and note.replace(str(out), str(tmp_path / "again")) in \
        again.output


# an edit of pes-ormc's template (a copy, broken-fmt) that makes the export fail once
# its titles are rendered, the store open: (old, new, exit code)
_RENDER_FAILS = {
    "template": ('<TypBord V="06"/>', '<TypBord V="{{ doc.nope }}"/>', 5),
    "xsd": ('<TypBord V="06"/>', '<TypBord V="06"/><Garbage/>', 6),
    "rules": ('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="A"/>', 6),
}


def _refused_once_open(tmp_path: Path, monkeypatch, refused: str, *store: str | Path):
    """The example exported with ``store``'s options, refused after the store was
    opened: by its rendered files (``_RENDER_FAILS``) or an interrupt before the commit.
    The CLI's result and the exit code expected."""
    from .test_bad_input import _broken_bundle

    extra: list[str | Path] = []
    mapping = MAPPING
    if refused == "interrupt":
        from pesgen.export import Exporter

        def interrupted(*_args, **_kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(Exporter, "finish", interrupted)
        code = 130
    else:
        old, new, code = _RENDER_FAILS[refused]
        fmts, mapping, _template = _broken_bundle(tmp_path, old, new)
        extra = ["--formats-dir", fmts]
    result = run_cli("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                     tmp_path / "out", "--date", "2026-11-23", *store, *extra)
    return result, code


@pytest.mark.parametrize("refused", [*_RENDER_FAILS, "interrupt"])
def test_an_export_refused_once_the_store_it_created_is_open_leaves_no_store(
        tmp_path, monkeypatch, refused):
    """`--create-store` made the store, then the rendered file failed its XSD or the
    business rules, a template failed, or Ctrl-C came before the commit: the new store
    stayed behind, migrated and empty (139 KB), which `runs list --db` read as "no run
    recorded" and the next export, without --create-store, took as the collectivity's
    store. Nothing was recorded in it: it is removed, with the folder made for it."""
    db = tmp_path / "new" / "store.sqlite3"
    result, code = _refused_once_open(tmp_path, monkeypatch, refused, "--db", db,
                                      "--create-store")
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    if refused == "interrupt":
        assert lines[-2] == "interrupted: nothing written, no number used"
    else:
        assert lines[0].startswith("error: ") and lines[-2].endswith("nothing was written.")
    assert lines[-1] == (f"removed the state store {db} this export created: nothing was "
                         "recorded in it")
    assert not db.parent.exists()  # nor its side files, nor the folder made for it
    assert not (tmp_path / "out").exists()
    listed = run_cli("runs", "list", "--db", db)
    assert listed.exit_code == 7 and f"no pesgen store at {db}" in listed.output


def test_the_default_store_a_refused_first_export_created_is_not_left_either(
        tmp_path, monkeypatch, _isolated_state):
    result, code = _refused_once_open(tmp_path, monkeypatch, "template")
    assert result.exit_code == code == 5, result.output
    assert result.stderr.splitlines()[-1] == (
        f"removed the state store {_isolated_state} this export created: nothing was "
        "recorded in it")
    assert not _isolated_state.exists() and not _isolated_state.parent.exists()


@pytest.mark.parametrize("refused", ["template", "interrupt"])
@pytest.mark.parametrize("there", ["empty store", "store with a run"])
def test_a_store_that_was_there_stays_as_it_was_when_an_export_into_it_is_refused(
        tmp_path, monkeypatch, refused, there):
    """Even an empty one (numbering set-start's, a run cancelled and purged…), and even
    with --create-store: only a store the export itself created is removed."""
    db = tmp_path / "store.sqlite3"
    if there == "empty store":
        Store(f"sqlite:///{db}").engine.dispose()
    else:  # a run of other invoices
        from .test_store import _variant

        ok = run_cli("export", "-m", MAPPING, "-i", _variant(tmp_path, "a"), "-o",
                     tmp_path / "first", "--date", "2026-11-23", "--db", db, "--create-store")
        assert ok.exit_code == 0, ok.output
    before, stat = db.read_bytes(), db.stat()
    result, code = _refused_once_open(tmp_path, monkeypatch, refused, "--db", db,
                                      "--create-store")
    assert result.exit_code == code, result.output
    assert "state store" not in result.stderr
    assert db.read_bytes() == before and db.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("store")) == \
        ["store.sqlite3"]


def test_an_empty_database_that_was_there_keeps_the_tables_a_refused_export_made(
        tmp_path, monkeypatch):
    """A SQLite file that was there, empty, is made a store and stays one, as a
    PostgreSQL database does (test below): pesgen removes no database it did not
    create, and says so."""
    db = tmp_path / "store.sqlite3"
    db.touch()
    result, code = _refused_once_open(tmp_path, monkeypatch, "template", "--db", db,
                                      "--create-store")
    assert result.exit_code == code, result.output
    assert result.stderr.splitlines()[-1] == (
        f"the state store {db}: the tables this export created in the database, which was "
        "there before, stay, empty (pesgen removes no database it did not create; the "
        "next export uses them)")
    assert db.is_file() and Store(f"sqlite:///{db}", must_exist=True).list_runs() == []


def test_a_postgresql_database_keeps_the_tables_a_refused_export_made(tmp_path, monkeypatch):
    from pesgen.store import is_store, shown_store

    with state_database("postgresql", tmp_path) as url:
        result, code = _refused_once_open(tmp_path, monkeypatch, "template", "--db", url,
                                          "--create-store")
        assert result.exit_code == code, result.output
        assert result.stderr.splitlines()[-1] == (
            f"the state store {shown_store(url)}: the tables this export created in the "
            "database, which was there before, stay, empty (pesgen removes no database it "
            "did not create; the next export uses them)")
        assert is_store(url)
        Store(url).engine.dispose()


def test_a_new_store_another_run_uses_is_not_removed(tmp_path):
    """Store.discard_unused removes a file its opening created only when nothing is
    recorded in it, checked under its lock: another run may have opened it since."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'new' / 's.db'}"
    mine = Store(url)
    assert mine.made_file and mine.created
    Store(url).set_start(("21450999400015", "00", 2026, "06"), 5)  # another run's
    assert mine.discard_unused() == "recorded"
    assert (tmp_path / "new" / "s.db").is_file()
    # its lock held by another run: kept too
    url2 = f"sqlite:///{tmp_path / 'other.db'}"
    mine = Store(url2)
    held = sqlite3.connect(tmp_path / "other.db", isolation_level=None)
    held.execute("BEGIN IMMEDIATE")
    try:
        assert mine.discard_unused() == "kept"
    finally:
        held.close()
    assert (tmp_path / "other.db").is_file()
    # a store opened on a file that was there: never
    assert Store(url2).discard_unused() == "kept"
    assert (tmp_path / "other.db").is_file()


def test_a_store_whose_creation_is_interrupted_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(_self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "migrate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Store(f"sqlite:///{tmp_path / 'a' / 'b' / 's.db'}")
    assert list(tmp_path.iterdir()) == []


# a child process whose store, open already, is removed by the pesgen that made it (its
# export refused with nothing recorded) before this command writes to it
_REMOVED_CHILD = """
import subprocess
import sys
from pesgen.cli import main
from pesgen.store import Store

url = sys.argv[1]
maker = Store(url)  # made here: the refused export's store
set_start = Store.set_start

def removed_first(self, *args, **kwargs):
    assert maker.discard_unused() == "removed"
    return set_start(self, *args, **kwargs)

Store.set_start = removed_first
sys.argv = ["pesgen", *sys.argv[2:]]
main()
"""


def test_a_store_removed_while_a_command_uses_it_is_said_so(tmp_path):
    """A refused export removes the SQLite store it has just created when nothing was
    recorded; a second pesgen that opened that store meanwhile cannot write to it (SQLite:
    SQLITE_READONLY_DBMOVED). It says the store was removed and what to do, not 'attempt
    to write a readonly database'."""
    import subprocess

    db = tmp_path / "new" / "s.db"
    url = f"sqlite:///{db}"
    child = subprocess.run(
        [sys.executable, "-c", _REMOVED_CHILD, url, "numbering", "set-start", "--mapping",
         str(MAPPING), "--start", "5", "--db", str(db)],
        capture_output=True, text=True, timeout=120, check=False)
    assert child.returncode == 7, child.stderr
    assert child.stderr == (
        "error: the state store's file was removed while this command used it (an export "
        "refused with nothing recorded removes the store it has just created: "
        "docs/state.md); nothing was recorded: run the command again (with --create-store "
        "to create the store)\n")
    assert not db.exists()


def _records_a_run(conn) -> bool:
    """Whether ``conn``'s transaction records a run (an export's), not only a new store's
    migrations."""
    from pesgen.store import runs

    return bool(conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar())


def _lost_at_commit(monkeypatch, store: Store | None = None) -> None:
    """The connection lost as the run is committed: the database commits, its answer
    never comes back (a TCP proxy dropping the link after forwarding COMMIT). With
    ``store``: the store cannot be read again either. (Store.commit: on SQLite the
    COMMIT is its own, in turns, before SQLAlchemy's Connection.commit.)"""
    real = Store.commit
    lost = sa.exc.OperationalError(
        "COMMIT", None, Exception("server closed the connection unexpectedly"),
        connection_invalidated=True)

    def commit_then_lost(self, conn, *args, **kwargs):
        recording = _records_a_run(conn)  # not a new store's migrations
        real(self, conn, *args, **kwargs)
        if recording:
            raise lost

    def unreadable(_self, _run_id):
        raise lost

    monkeypatch.setattr(Store, "commit", commit_then_lost)
    if store is not None:
        monkeypatch.setattr(Store, "get_run", unreadable)


def test_a_command_whose_connection_is_lost_says_its_change_may_be_recorded(tmp_path):
    """A command other than export (which reads the store again itself) losing the
    connection as it writes cannot tell whether its change was committed: it says so,
    and what to check, exit 7; not "the state store failed; nothing was recorded"."""
    db = tmp_path / "store.sqlite3"
    done = run_cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "-o",
                   tmp_path / "out", "--date", "2026-11-23", "--db", db, "--create-store")
    assert done.exit_code == 0, done.output
    [run] = Store(f"sqlite:///{db}").list_runs()
    script = f"""
import sqlalchemy as sa
from pesgen.cli import main
from pesgen.store import Store
def cancel_lost(self, *args, **kwargs):
    raise sa.exc.OperationalError("COMMIT", None, Exception("server closed the connection"),
                                  connection_invalidated=True)
Store.cancel = cancel_lost
import sys
sys.argv = ["pesgen", "runs", "cancel", {run.id!r}, "--reason", "test", "--db", {str(db)!r}]
main()
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 7, r.stderr
    assert r.stderr.startswith("error: the connection to the state store was lost: server "
                               "closed the connection"), r.stderr
    assert ("a change this command was committing may be recorded: check (`pesgen runs "
            "list`, `pesgen runs show RUN`) before running it again") in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_commit_that_failed_and_is_read_again_unrecorded_says_nothing_was_recorded(
        tmp_path):
    """The commit failed (rolled back, its answer an error over two lines, as psycopg's)
    and, read again, the run is not there: it said "a change this command was
    committing may be recorded: check (pesgen runs list…)" over two lines, while the
    export had read the store again and removed the store it had created (review)."""
    db = tmp_path / "store.sqlite3"
    script = f"""
import sqlalchemy as sa
from pesgen.cli import main
from pesgen.store import Store, runs
lost = sa.exc.OperationalError("COMMIT", None, Exception(
    "server closed the connection unexpectedly\\n\\tThis probably means the server "
    "terminated abnormally"), connection_invalidated=True)
real_commit = Store.commit
def commit_lost(self, conn, *args, **kwargs):
    if not conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar():
        return real_commit(self, conn, *args, **kwargs)  # a new store's migrations
    conn.rollback()
    raise lost
Store.commit = commit_lost
import subprocess
import sys
sys.argv = ["pesgen", "export", "-m", {str(MAPPING)!r}, "-i",
            {str(EXAMPLES / "school-export.json")!r}, "-o", {str(tmp_path / "out")!r},
            "--date", "2026-11-23", "--db", {str(db)!r}, "--create-store"]
main()
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 7, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0].startswith("error: the state store failed: server closed the connection "
                               "unexpectedly This probably means the server terminated "
                               "abnormally as run "), lines
    assert "the run is not recorded: nothing was recorded, no number used" in lines[0]
    assert "(rule run.commit-failed)" in r.stderr
    assert "may be recorded" not in r.stderr
    assert lines[-2:] == ["1 problem(s); nothing was recorded.",
                          f"removed the state store {db} this export created: nothing was "
                          "recorded in it"]
    assert not db.exists()
    assert not (tmp_path / "out").exists()


def test_a_run_committed_whose_answer_was_lost_is_said_recorded(tmp_path, monkeypatch,
                                                                  db_url):
    """The connection lost at COMMIT, the run committed: pesgen said "the state store
    failed: server closed the connection unexpectedly; nothing was recorded" (exit 7)
    while `runs list` showed the run, its files absent, the input's rerun refused. Read
    again on a new connection, the run is found recorded: said so, with regenerate."""
    store = Store(db_url)
    out = tmp_path / "out"
    _lost_at_commit(monkeypatch)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN)
    monkeypatch.undo()
    [run] = store.list_runs()
    assert str(info.value) == (
        f"run {run.id} is recorded (IdBord 1), but its files could not be put in {out}: the "
        "state store failed: server closed the connection unexpectedly. `pesgen regenerate "
        f"{run.id} --out DIR` writes them again, byte for byte")
    assert [p.rule for p in info.value.problems] == ["run.publish"]
    assert info.value.report().endswith(
        f"1 problem(s); run {run.id} is recorded; its files were not put in place.")
    assert not out.exists() or list(out.iterdir()) == []
    assert regenerate(store, run.id, out)
    store.engine.dispose()


def test_files_failing_after_an_answered_commit_say_the_run_recorded_store_unreachable(
        tmp_path, monkeypatch):
    """The commit answered, then the files could not be put in place and the store went
    away: pesgen knows the run is recorded (it need not ask the store again) and says so,
    never "whether the run is recorded is not known"."""
    import errno

    import pesgen.runs as runs_mod

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    out = tmp_path / "out"

    def disk_full(_temps):
        raise OSError(errno.ENOSPC, "No space left on device")

    def unreachable(_self, _run_id):
        raise sa.exc.OperationalError("SELECT", None, Exception("server closed the connection"))

    monkeypatch.setattr(runs_mod, "commit", disk_full)
    monkeypatch.setattr(Store, "get_run", unreachable)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN)
    monkeypatch.undo()
    [run] = store.list_runs()
    assert str(info.value).startswith(f"run {run.id} is recorded (IdBord 1), but its files "
                                      f"could not be put in {out}: [Errno 28] No space left")
    assert [p.rule for p in info.value.problems] == ["run.publish"]


def test_the_cli_says_a_run_whose_commit_answer_was_lost_is_recorded(tmp_path, monkeypatch):
    """The same through the command: exit 7, the run named, and a last line that says
    it is recorded (it said "1 problem(s); nothing was written.")."""
    db = tmp_path / "store.sqlite3"
    _lost_at_commit(monkeypatch)
    result = run_cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "-o",
                     tmp_path / "out", "--date", "2026-11-23", "--db", db, "--create-store")
    monkeypatch.undo()
    [run] = Store(f"sqlite:///{db}").list_runs()
    assert result.exit_code == 7, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: run {run.id} is recorded (IdBord 1)"), lines
    assert "nothing was recorded" not in result.stderr
    assert lines[-1] == f"1 problem(s); run {run.id} is recorded; its files were not put in place."


def test_the_json_refusal_of_a_run_whose_commit_answer_was_lost_says_it_is_recorded(
        tmp_path, monkeypatch):
    """--format json says what the text's last line says: the run is recorded, not
    "nothing was written." (the school software would export the input again)."""
    import json

    db = tmp_path / "store.sqlite3"
    _lost_at_commit(monkeypatch)
    result = run_cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json", "-o",
                     tmp_path / "out", "--date", "2026-11-23", "--db", db, "--create-store",
                     "--format", "json")
    monkeypatch.undo()
    [run] = Store(f"sqlite:///{db}").list_runs()
    assert result.exit_code == 7, result.output
    report = json.loads(result.stdout)
    assert (report["ok"], report["exit_code"]) == (False, 7)
    assert report["outcome"] == f"run {run.id} is recorded; its files were not put in place."
    assert [p["rule"] for p in report["problems"]] == ["run.publish"]


def test_a_commit_whose_answer_was_lost_and_that_cannot_be_checked_is_said_unknown(
        tmp_path, monkeypatch, db_url):
    """The store cannot be read again either: pesgen cannot know whether the run is
    recorded, and says that (never "nothing was recorded")."""
    store = Store(db_url)
    out = tmp_path / "out"
    _lost_at_commit(monkeypatch, store)
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json", out, RUN)
    monkeypatch.undo()
    [run] = store.list_runs()  # it was: the database committed
    message = str(info.value)
    assert message.startswith(f"the state store failed as run {run.id} was committed: the "
                              "state store failed: server closed the connection "
                              "unexpectedly. Whether the run is recorded is not known"), message
    assert f"check `pesgen runs show {run.id}`" in message
    assert f"`pesgen regenerate {run.id} --out DIR`" in message
    assert [p.rule for p in info.value.problems] == ["run.commit-unknown"]
    assert info.value.report().endswith(
        "1 problem(s); the run may be recorded (not known); no file was put in place.")
    assert not out.exists() or list(out.iterdir()) == []
    store.engine.dispose()
