"""`pesgen export --dry-run`: every check of a real export on the whole input, the state
store's included, with the numbers the export would take; nothing written, recorded or
created, no number used. On SQLite and on a real PostgreSQL server (see test_store.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import tempfile
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import pesgen.store as st
from pesgen.cli import app
from pesgen.errors import ExitCode, InputDataError, OutputInvalidError, StateError, UsageError
from pesgen.export import Exporter
from pesgen.runs import export_recorded, sequence_key
from pesgen.store import Store

from .conftest import (
    EXAMPLES,
    MAPPINGS,
    ROOT,
    RUN_DATE,
    example_with_two_input_errors,
    record_as_older,
)
from .test_store import _variant

RUN = date.fromisoformat(RUN_DATE)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
INPUT = EXAMPLES / "school-export.json"
XML = "PESORMC_21450999400015_2026_{:07d}.xml"
REFS = "PESORMC_21450999400015_2026_{:07d}.references.csv"
KEY = ("21450999400015", "00", 2026, "06")
DRY_HEAD = "(dry run: nothing written, no number used)"

runner = CliRunner()


def _run(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    return result


def _dry(*args: str | Path, input_path: Path = INPUT, mapping: Path = MAPPING):
    return _run("export", "--dry-run", "-m", mapping, "-i", input_path, "--date", RUN_DATE,
                *args)


def _contents(url: str) -> dict[str, list[tuple]]:
    """Every row of every table of a store (none when it has no table): what a dry run
    must leave as it found it."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        meta = sa.MetaData()
        meta.reflect(bind=engine)
        with engine.connect() as conn:
            return {name: sorted(map(tuple, conn.execute(sa.select(table))), key=repr)
                    for name, table in sorted(meta.tables.items())}
    finally:
        engine.dispose()


def _next_number(url: str) -> int:
    store = Store(url, read_only=True)
    with store.reading() as conn:
        return store.next_number(conn, KEY)


def _sqlite_file(url: str) -> Path | None:
    return Path(url.split("///", 1)[1]) if url.startswith("sqlite") else None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the library


def test_a_dry_run_announces_the_next_export_and_changes_nothing(db_url, tmp_path):
    """The numbers and bytes it announces are the ones the real export then takes and
    writes (same --date); the store is left row for row (and on SQLite byte for byte)
    as it was, its next number too, and no file nor folder appears."""
    Store(db_url).set_start(KEY, 42)
    before = _contents(db_url)
    file = _sqlite_file(db_url)
    file_before = _digest(file) if file else None
    out = tmp_path / "exports" / "nov"
    dry = export_recorded(lambda: Store(db_url, read_only=True), MAPPING, INPUT, out, RUN,
                          dry_run=True)
    assert dry.run_id is None
    assert [(f.path, f.bordereau, f.titles) for f in dry.files] == [(out / XML.format(42), 42,
                                                                      11)]
    assert dry.references == [out / REFS.format(42)]
    assert not (tmp_path / "exports").exists()
    assert _contents(db_url) == before
    if file:
        assert _digest(file) == file_before
    assert _next_number(db_url) == 42
    # the real export takes the number announced and writes the bytes announced
    real = export_recorded(lambda: Store(db_url), MAPPING, INPUT, out, RUN)
    assert real.first_number == 42
    assert [(f.path, f.sha256) for f in real.files] == [(f.path, f.sha256) for f in dry.files]
    assert real.reference_digests == dry.reference_digests
    assert {p.name: _digest(p) for p in out.iterdir()} == {
        **{f.path.name: f.sha256 for f in dry.files}, **dry.reference_digests}
    # the same invoices again: refused as the real export is, naming the run; still nothing
    after = _contents(db_url)
    with pytest.raises(StateError) as refused:
        export_recorded(lambda: Store(db_url, read_only=True), MAPPING, INPUT, tmp_path / "again",
                        RUN, dry_run=True)
    assert refused.value.exit_code == ExitCode.STATE
    assert f"already exported by run(s) {real.run_id}" in str(refused.value)
    assert {p.rule for p in refused.value.problems} == {"run.duplicate"}
    assert not (tmp_path / "again").exists()
    assert _contents(db_url) == after
    # another run's invoices: the next number, still unused
    other = export_recorded(lambda: Store(db_url, read_only=True), MAPPING, _variant(tmp_path, "b"),
                            None, RUN, dry_run=True)
    assert [f.path for f in other.files] == [Path(XML.format(43))]
    assert _next_number(db_url) == 43


def test_a_dry_run_refuses_what_the_store_refuses_by_num_dette(db_url, tmp_path):
    export_recorded(lambda: Store(db_url), MAPPING, INPUT, tmp_path / "a", RUN)
    # other invoice numbers, same NumDettes: the guard on payment references
    data = json.loads(INPUT.read_text(encoding="utf-8"))
    for inv in data["invoices"]:
        inv["number"] = inv["number"].replace("FA-", "FB-")
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(StateError) as refused:
        export_recorded(lambda: Store(db_url, read_only=True), MAPPING, renamed, None, RUN,
                        dry_run=True)
    assert {p.rule for p in refused.value.problems} == {"run.num-dette-taken"}


def test_a_store_that_is_not_there_is_read_as_empty_and_not_created(db_url, tmp_path):
    """A SQLite file that does not exist, or an empty PostgreSQL database: read as an
    empty store (IdBord 1), and left as it was: no file, no folder, no table."""
    url = (f"sqlite:///{tmp_path / 'not' / 'there' / 'store.sqlite3'}"
           if db_url.startswith("sqlite") else db_url)
    store = Store(url, read_only=True)
    assert store.found == ("none" if url.startswith("sqlite") else "empty")
    assert not store.created
    result = export_recorded(lambda: store, MAPPING, INPUT, None, RUN, dry_run=True)
    assert result.files[0].bordereau == 1
    if url.startswith("sqlite"):
        assert not (tmp_path / "not").exists()
    else:
        assert _contents(url) == {}


def test_an_older_store_is_read_as_migrated_and_left_at_its_schema(db_url, tmp_path,
                                                                  monkeypatch):
    """The export migrates a store first; a dry run reads it so (its guards included),
    in a transaction it rolls back: the store stays at its schema, row for row."""
    donor = Store(f"sqlite:///{tmp_path / 'donor.sqlite3'}")
    first = export_recorded(lambda: donor, MAPPING, INPUT, tmp_path / "a", RUN)
    with monkeypatch.context() as patch:
        patch.setattr(st, "MIGRATIONS", st.MIGRATIONS[:4])
        old = Store(db_url)
    record_as_older(donor, old)
    old.engine.dispose()
    before = _contents(db_url)
    with pytest.raises(StateError, match=first.run_id):  # its invoices, keyed by migration 5
        export_recorded(lambda: Store(db_url, read_only=True), MAPPING, INPUT, None, RUN,
                        dry_run=True)
    store = Store(db_url, read_only=True)
    result = export_recorded(lambda: store, MAPPING, _variant(tmp_path, "b"), None, RUN,
                             dry_run=True)
    assert result.files[0].bordereau == 2
    assert store.pending_migrations == len(st.MIGRATIONS) - 4
    assert _contents(db_url) == before
    assert [v for (v, _at) in before["pesgen_schema"]] == [1, 2, 3, 4]


def test_the_store_is_not_held_while_the_files_are_rendered_and_validated(db_url, tmp_path,
                                                                         monkeypatch):
    """The store is read in one short transaction: while the dry run assembles and
    validates its files, an export may take the store's lock and its sequence row."""
    Store(db_url)
    finish = Exporter.finish
    seen = []

    def busy_store(self, prepared, first_number):
        # no wait for a lock: SQLite's write lock, PostgreSQL's row and advisory locks
        url = db_url if db_url.startswith("sqlite") else \
            f"{db_url}?options=-c%20lock_timeout%3D2000"
        store = Store(url, lock_timeout=0)
        with store.transaction() as conn:
            seen.append(store.peek_next(conn, KEY))  # locks the sequence row
            conn.rollback()
        return finish(self, prepared, first_number)

    monkeypatch.setattr(Exporter, "finish", busy_store)
    export_recorded(lambda: Store(db_url, read_only=True), MAPPING, INPUT, None, RUN, dry_run=True)
    assert seen == [1]


def test_files_go_to_a_private_temporary_folder_always_removed(tmp_path, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    finish = Exporter.finish
    staged = []

    def watched(self, prepared, first_number, interrupt=False):
        temps = finish(self, prepared, first_number)
        work = self.work_dir
        staged.append((stat.S_IMODE(work.stat().st_mode), work.parent,
                       sorted(tmp.parent for tmp, _final in temps)))
        if interrupt:
            raise KeyboardInterrupt
        return temps

    monkeypatch.setattr(Exporter, "finish", watched)
    out = tmp_path / "out"
    export_recorded(lambda: Store(read_only=True), MAPPING, INPUT, out, RUN, dry_run=True)
    [(mode, parent, folders)] = staged
    assert mode == 0o700 and parent == temp
    assert len(folders) == 2 and set(folders) == {folders[0]} and folders[0].parent == temp
    assert list(temp.iterdir()) == [] and not out.exists()
    monkeypatch.setattr(Exporter, "finish",
                        lambda self, p, n: watched(self, p, n, interrupt=True))
    with pytest.raises(KeyboardInterrupt):
        export_recorded(lambda: Store(read_only=True), MAPPING, INPUT, out, RUN, dry_run=True)
    assert len(staged) == 2
    assert list(temp.iterdir()) == [] and not out.exists()


def test_the_rendered_files_are_validated(tmp_path, monkeypatch):
    """A template that breaks the XSD: refused as the real export is (exit 6)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "pes-ormc", fmts / "pes-ormc")
    tpl = fmts / "pes-ormc" / "pes-aller.xml.j2"
    tpl.write_text(tpl.read_text(encoding="utf-8").replace('<TypPce V="15"/>',
                                                           '<TypPce V="01"/>'),
                   encoding="utf-8")
    with pytest.raises(OutputInvalidError) as refused:
        export_recorded(lambda: Store(read_only=True), MAPPING, INPUT, tmp_path / "out", RUN,
                        formats_dirs=[fmts], dry_run=True)
    assert "pes.triplet" in {p.rule for p in refused.value.problems}
    assert list(temp.iterdir()) == [] and not (tmp_path / "out").exists()


def test_the_official_xsd_is_applied_when_given(tmp_path, official_xsd):
    result = export_recorded(lambda: Store(read_only=True), MAPPING, INPUT, None, RUN,
                             official_xsd=official_xsd, dry_run=True)
    assert result.checks  # not vacuous: the run's file is there
    assert all(c["official_xsd"] == str(official_xsd) for c in result.checks.values())


def test_a_real_export_needs_an_output_folder_and_a_dry_run_a_read_only_store(tmp_path):
    with pytest.raises(UsageError, match="--out"):
        export_recorded(lambda: Store(), MAPPING, INPUT, None, RUN)
    with pytest.raises(UsageError, match="read only"):
        export_recorded(lambda: Store(), MAPPING, INPUT, None, RUN, dry_run=True)


# ---------------------------------------------------------------- the command


def test_cli_dry_run_then_export_then_dry_run_again(db_url, tmp_path):
    out = tmp_path / "out"
    # a store named on purpose that is not there: the export would refuse it (a typo?)
    # without --create-store, and so does its dry run, creating nothing
    refused = _dry("-o", out, "--db", db_url)
    assert refused.exit_code == 7, refused.output
    assert "--create-store" in refused.stderr and "numbering again at 1" in refused.stderr
    r = _dry("-o", out, "--db", db_url, "--create-store")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0].startswith("pesgen ") and lines[0].endswith(DRY_HEAD)
    if db_url.startswith("sqlite"):
        assert lines[1] == (f"  store: {_sqlite_file(db_url)} (no store there: read as an "
                            "empty one, nothing created; the export would create it)")
        assert not _sqlite_file(db_url).exists()
    else:
        assert lines[1].endswith("(an empty database: read as an empty store; the export "
                                 "would make it one)")
        assert _contents(db_url) == {}
    assert f"  would write {out / XML.format(1)}  (IdBord 1, 11 title(s), total 2527.25, " \
           "sha256 " in r.stdout
    assert f"  would write {out / REFS.format(1)}  (payment references)" in r.stdout
    assert "  wrote " not in r.stdout
    assert "titles: 11, total 2527.25" in lines
    assert "left out: 1" in lines
    assert any(ln.startswith("  - FA-2026-00106 (") and ln.endswith(
        "total is 0.00 (policy zero_total)") for ln in lines)
    assert any(ln.startswith("policies applied: ") for ln in lines)
    assert not out.exists()
    dry_sha = r.stdout.split("sha256 ", 1)[1][:16]
    # the real export: the number and the bytes announced
    real = _run("export", "-m", MAPPING, "-i", INPUT, "-o", out, "--date", RUN_DATE,
                "--db", db_url, "--create-store")
    assert real.exit_code == 0, real.output
    assert f"  wrote {out / XML.format(1)}  (IdBord 1, 11 title(s)" in real.stdout
    assert _digest(out / XML.format(1)).startswith(dry_sha)
    run_id = real.stdout.split("run ", 1)[1].split()[0]
    # again: refused by the store (exit 7), naming the run; nothing written or recorded
    before = _contents(db_url)
    again = _dry("-o", tmp_path / "again", "--db", db_url)
    assert again.exit_code == ExitCode.STATE == 7
    assert again.stdout == ""
    assert f"already exported by run(s) {run_id}" in again.stderr
    assert not (tmp_path / "again").exists()
    assert _contents(db_url) == before
    # once that run is cancelled, its invoices may go again, in a new rôle: the next
    # number (a cancelled run's is never reused), beside the cancelled run's files
    assert _run("runs", "cancel", run_id, "--reason", "test", "--db", db_url).exit_code == 0
    before = _contents(db_url)
    freed = _dry("-o", out, "--db", db_url)
    assert freed.exit_code == 0, freed.output
    assert freed.stdout.splitlines()[1].endswith("(read, not changed)")
    assert f"  would write {out / XML.format(2)}  (IdBord 2, 11 title(s)" in freed.stdout
    assert sorted(p.name for p in out.iterdir()) == [REFS.format(1), XML.format(1)]
    assert _contents(db_url) == before


def test_cli_a_file_already_in_the_output_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / XML.format(1)).write_bytes(b"sent last week\n")
    r = _dry("-o", out)
    assert r.exit_code == ExitCode.USAGE == 2
    assert f"{out / XML.format(1)} already exists" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [XML.format(1)]
    assert (out / XML.format(1)).read_bytes() == b"sent last week\n"
    # the folder the export could not write into
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    for target, says in ((blocker, "is not a folder"), (blocker / "sub", "is not a folder")):
        r = _dry("-o", target)
        assert r.exit_code == ExitCode.USAGE, r.output
        assert says in r.stderr
    assert blocker.read_text(encoding="utf-8") == "x"


def test_cli_dry_run_without_out_writes_nowhere(tmp_path, monkeypatch, _isolated_state):
    monkeypatch.chdir(tmp_path)
    r = _dry()
    assert r.exit_code == 0, r.output
    assert f"  would write {XML.format(1)}  (IdBord 1, 11 title(s)" in r.stdout
    assert list(tmp_path.iterdir()) == []
    assert not _isolated_state.exists()  # PESGEN_DB: not created
    # the real export still needs --out
    real = _run("export", "-m", MAPPING, "-i", INPUT)
    assert real.exit_code == ExitCode.USAGE
    assert "--out is required" in real.stderr


def test_cli_dry_run_of_a_csv_input(tmp_path):
    r = _dry(input_path=EXAMPLES / "school-export.csv", mapping=CSV_MAPPING)
    assert r.exit_code == 0, r.output
    assert "titles: 11, total 2527.25" in r.stdout


def test_cli_a_bad_input_exits_4_and_writes_nothing(tmp_path, _isolated_state):
    bad = example_with_two_input_errors(tmp_path, "bad.json")
    out = tmp_path / "out"
    r = _dry("-o", out, input_path=bad)
    assert r.exit_code == ExitCode.INPUT == 4
    assert r.stdout == ""
    assert r.stderr.splitlines()[0] == "error: 2 problem(s) in the input; nothing written"
    assert "(rule sepa.iban)" in r.stderr and "(rule codes.activity)" in r.stderr
    assert not out.exists()
    assert not _isolated_state.exists()
    with pytest.raises(InputDataError):
        export_recorded(lambda: Store(read_only=True), MAPPING, bad, out, RUN, dry_run=True)


def test_cli_quiet_dry_run_prints_nothing(tmp_path):
    r = _dry("-q", "-o", tmp_path / "out")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert not (tmp_path / "out").exists()


def test_sequence_key_of_the_example_is_the_one_read():
    """KEY above is the example's sequence (the tests read its next number)."""
    from pesgen.formats import find_format
    from pesgen.mapping import load_mapping

    mapping = load_mapping(MAPPING)
    assert sequence_key(mapping, find_format(mapping.output.format)) == KEY
