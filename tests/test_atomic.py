# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""Every file pesgen writes for the user is complete or absent: a write that fails
midway (disk full, Ctrl-C, SIGTERM turned into KeyboardInterrupt) leaves the previous
file or none, and no ``.pesgen-*.part`` temporary file. Each writer is made to fail on
its first and on a later file."""

from __future__ import annotations

import csv
import os
import stat
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen import atomic
from pesgen.atomic import commit, filled_folder, write_file, write_folder, write_temp
from pesgen.bundles import regenerate_expected
from pesgen.cli import app
from pesgen.errors import UsageError
from pesgen.export import export
from pesgen.payfip.datamatrix import write_for_run
from pesgen.runs import copy_input
from pesgen.scaffold import new_format
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS
from .payfip_support import exported, store  # noqa: F401 - fixtures

runner = CliRunner()
FAILURES = [OSError(28, "No space left on device"), KeyboardInterrupt("signal 15")]
# the example's billing run: its debits (2026-12-05) are refused from a later date on
RUN = date(2026, 11, 23)


def _fail_on(monkeypatch, call: int, exc: BaseException, name: str = "fsync") -> list[int]:
    """Make the ``call``-th ``os.<name>`` (1-based) raise ``exc``; return the counter."""
    real = getattr(os, name)
    calls = [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, failing)
    return calls


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".pesgen-*"))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- the helper itself


@pytest.mark.parametrize("exc", FAILURES, ids=["disk-full", "sigterm"])
@pytest.mark.parametrize("name", ["fsync", "replace"])
def test_write_file_failing_leaves_no_file_and_no_temporary(tmp_path, monkeypatch, exc, name):
    target = tmp_path / "out.csv"
    _fail_on(monkeypatch, 1, exc, name)
    with pytest.raises(type(exc)):
        write_file(target, "invoice;amount\n" * 1000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["fsync", "replace"])
def test_write_file_failing_keeps_the_previous_content(tmp_path, monkeypatch, name):
    target = tmp_path / "out.csv"
    target.write_text("before\n", encoding="utf-8")
    _fail_on(monkeypatch, 1, OSError(28, "No space left on device"), name)
    with pytest.raises(OSError):
        write_file(target, "after\n")
    assert target.read_text(encoding="utf-8") == "before\n"
    assert _leftovers(tmp_path) == []


def test_write_file_replaces_whole_and_keeps_the_mode(tmp_path):
    target = tmp_path / "payments.csv"
    target.write_text("a much longer previous content\n", encoding="utf-8")
    target.chmod(0o600)
    write_file(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    fresh = write_file(tmp_path / "fresh.csv", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_outputs_follow_the_umask(tmp_path):
    """docs/flow.md: under ``umask 077`` every export file is private (0600)."""
    out = tmp_path / "out"
    before = os.umask(0o077)
    try:
        result = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
                        out, RUN)
    finally:
        os.umask(before)
    written = sorted(out.iterdir())
    assert sorted([f.path for f in result.files] + result.references) == written
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o600}


@pytest.mark.parametrize("links", [True, False])
def test_commit_takes_back_the_renames_done_when_one_fails(tmp_path, monkeypatch, links):
    temps = [(write_temp(tmp_path, [b"%d" % i])[0], tmp_path / f"f{i}") for i in range(3)]
    if links:  # a signal on the second file's link
        _fail_on(monkeypatch, 2, KeyboardInterrupt("signal 15"), "link")
    else:  # a file system without hard links: check, then rename
        monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(
            PermissionError("no hard links here")))
        _fail_on(monkeypatch, 2, OSError("rename refused"), "replace")
    with pytest.raises((OSError, KeyboardInterrupt)):
        commit(temps)
    assert list(tmp_path.iterdir()) == []


def test_write_folder_failing_midway_leaves_no_folder(tmp_path, monkeypatch):
    _fail_on(monkeypatch, 2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_folder(tmp_path / "bundle", {"a.txt": "a", "sub/b.txt": "b", "c.txt": "c"})
    assert list(tmp_path.iterdir()) == []
    write_folder(tmp_path / "bundle", {"a.txt": "a", "sub/b.txt": "b"})
    assert _tree(tmp_path) == {"bundle/a.txt": b"a", "bundle/sub/b.txt": b"b"}



def _fill(staging: Path) -> None:
    write_file(staging / "m.yaml", "m")
    (staging / "input").mkdir()
    write_file(staging / "input" / "x.json", "x")


@pytest.mark.parametrize("exc", FAILURES, ids=["disk-full", "sigterm"])
@pytest.mark.parametrize("there", [False, True], ids=["new", "empty"])
def test_filled_folder_failing_midway_leaves_it_as_it_was(tmp_path, monkeypatch, exc, there):
    """A folder filled whole (``filled_folder``, `runs extract`): a failure on its second
    file leaves no file nor temporary one, the folder and parents it made removed, an
    empty folder that was there kept; then it fills."""
    folder = tmp_path / "a" / "out"
    if there:
        folder.mkdir(parents=True)
    _fail_on(monkeypatch, 2, exc)
    with pytest.raises(type(exc)), filled_folder(folder) as staging:
        _fill(staging)
    assert _tree(tmp_path) == {} and _leftovers(tmp_path) == []
    assert folder.is_dir() is there and (tmp_path / "a").exists() is there
    monkeypatch.undo()
    with filled_folder(folder) as staging:
        _fill(staging)
    assert _tree(tmp_path) == {"a/out/m.yaml": b"m", "a/out/input/x.json": b"x"}
    assert _leftovers(tmp_path) == []


def test_filled_folder_fills_the_working_folder_without_replacing_it(tmp_path, monkeypatch):
    """`--out .` in an empty folder: its entries are renamed into it; the folder itself
    (the working one, or a mount point) is never replaced by another."""
    monkeypatch.chdir(tmp_path)
    inode = os.stat(tmp_path).st_ino
    with filled_folder(Path(".")) as staging:
        _fill(staging)
    assert os.stat(tmp_path).st_ino == inode and Path.cwd() == tmp_path
    assert _tree(tmp_path) == {"m.yaml": b"m", "input/x.json": b"x"}


def test_filled_folder_refuses_a_folder_holding_anything_and_an_entry_made_meanwhile(
        tmp_path):
    held = tmp_path / "held"
    held.mkdir()
    (held / ".keep").write_bytes(b"")
    with pytest.raises(UsageError, match=r"held is not empty \(it holds \.keep\)"), \
            filled_folder(held) as staging:
        raise AssertionError("not reached")
    assert _tree(held) == {".keep": b""}
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="m.yaml appeared meanwhile"), \
            filled_folder(out) as staging:
        _fill(staging)
        (out / "m.yaml").write_bytes(b"theirs")  # another program's, as the block wrote
    # theirs kept; input/, renamed in before it, taken back
    assert _tree(out) == {"m.yaml": b"theirs"} and _leftovers(tmp_path) == []


def test_filled_folder_replaces_no_empty_folder_made_meanwhile(tmp_path):
    """A folder of the block's (input/) is renamed in only if its name is free: an empty
    folder of that name made meanwhile, which a rename would silently replace, is
    refused and kept; a.txt, put in place before it (in name order), is taken back."""
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="input appeared meanwhile"), \
            filled_folder(out) as staging:
        write_file(staging / "a.txt", "a")
        _fill(staging)
        (out / "input").mkdir()  # another program's
    assert sorted(os.listdir(out)) == ["input"] and list((out / "input").iterdir()) == []
    assert _leftovers(tmp_path) == []


def test_filled_folder_replaces_no_file_made_as_it_is_put_in_place(tmp_path, monkeypatch):
    """A file of the block's is put in place by a hard link, which fails on a taken name:
    one made by another program between the check and the placing is kept, and the fill
    refused (a rename would replace it)."""
    out = tmp_path / "out"
    real_link, real_rename = os.link, os.rename

    def theirs_first(real):
        def placing(src, dst):
            if Path(src).is_file() and not Path(dst).exists():
                Path(dst).write_bytes(b"theirs")  # made just now, after any check
            return real(src, dst)
        return placing

    monkeypatch.setattr(os, "link", theirs_first(real_link))
    monkeypatch.setattr(os, "rename", theirs_first(real_rename))
    with pytest.raises(UsageError, match="m.yaml appeared meanwhile"), \
            filled_folder(out) as staging:
        _fill(staging)
    assert _tree(out) == {"m.yaml": b"theirs"} and _leftovers(tmp_path) == []


@pytest.mark.parametrize("count, shown", [
    (5, "a1, a2, a3, a4, a5"),  # five are all named
    (6, "a1, a2, a3, a4, a5, … 1 more"),  # the sixth counted
])
def test_filled_folder_names_five_of_what_a_folder_holds_and_counts_the_others(
        tmp_path, count, shown):
    """The refusal names what the folder holds in name order, the first five only (a
    folder of thousands of files is not listed whole), and counts the others."""
    held = tmp_path / "held"
    held.mkdir()
    for i in reversed(range(1, count + 1)):
        (held / f"a{i}").write_bytes(b"")
    with pytest.raises(UsageError) as info, filled_folder(held):
        raise AssertionError("not reached")
    assert str(info.value) == (f"{held} is not empty (it holds {shown}): give a new or an "
                               "empty folder; nothing written")


# ---------------------------------------------------------------- each writer


def test_export_failing_on_its_second_file_writes_none(tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = _fail_on(monkeypatch, 2, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json", out,
               RUN)
    assert calls[0] == 2  # the first file was written, the second failed
    assert not out.exists()  # nothing written, not even the folder the export made


@pytest.mark.parametrize("exc", FAILURES, ids=["disk-full", "sigterm"])
def test_new_mapping_failing_leaves_no_mapping(tmp_path, monkeypatch, exc):
    out = tmp_path / "m.yaml"
    _fail_on(monkeypatch, 1, exc)
    result = runner.invoke(app, ["new-mapping", "Commune de X", "--format", "pes-ormc",
                                 "--out", str(out)])
    assert isinstance(result.exception, type(exc)) or result.exit_code != 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call", [1, 4])
def test_new_format_failing_midway_leaves_no_bundle(tmp_path, monkeypatch, call):
    _fail_on(monkeypatch, call, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        new_format("acme-csv", "csv", tmp_path / "formats")
    assert list((tmp_path / "formats").iterdir()) == []
    monkeypatch.undo()
    folder = new_format("acme-csv", "csv", tmp_path / "formats")
    assert (folder / "format.yaml").is_file() and _leftovers(tmp_path) == []


def test_payments_output_failing_keeps_the_previous_file(tmp_path, monkeypatch,
                                                        _isolated_state):
    Store(f"sqlite:///{_isolated_state}").engine.dispose()  # a store with no payment yet
    output = tmp_path / "payments.csv"
    assert runner.invoke(app, ["payfip", "payments", "-o", str(output)]).exit_code == 0
    before = output.read_bytes()
    assert before.startswith(b"invoice;collectivity;status")
    output.write_bytes(before + b"previous;row\n")
    _fail_on(monkeypatch, 1, OSError(28, "No space left on device"))
    result = runner.invoke(app, ["payfip", "payments", "-o", str(output)])
    assert isinstance(result.exception, OSError)
    assert output.read_bytes() == before + b"previous;row\n"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", FAILURES, ids=["disk-full", "sigterm"])
def test_datamatrix_failing_midway_writes_nothing(store, exported, tmp_path, monkeypatch, exc):
    target = tmp_path / "dm"
    _fail_on(monkeypatch, 5, exc)  # the fifth image of the first file
    with pytest.raises(type(exc)):
        write_for_run(store, exported.run_id, target, "001", image="svg")
    assert not target.exists()


def test_datamatrix_failing_midway_keeps_the_previous_files(store, exported, tmp_path,
                                                            monkeypatch):
    target = tmp_path / "dm"
    [written] = write_for_run(store, exported.run_id, target, "001", image="svg")
    rows = list(csv.DictReader(written.csv.open(encoding="utf-8"), delimiter=";"))
    assert len(rows) == len(written.images) == 11
    written.csv.chmod(0o600)  # a rewrite keeps it
    before = _tree(target)
    calls = _fail_on(monkeypatch, 12, OSError(28, "No space left on device"))  # the CSV
    with pytest.raises(OSError):
        write_for_run(store, exported.run_id, target, "001", image="png")
    assert calls[0] == 12
    assert _tree(target) == before
    monkeypatch.undo()
    write_for_run(store, exported.run_id, target, "001", image="png")
    assert stat.S_IMODE(written.csv.stat().st_mode) == 0o600
    assert written.csv.read_bytes() != before[written.csv.name]  # the png names now


def test_regenerated_expected_files_are_old_or_new_never_half(tmp_path, monkeypatch):
    produced, expected = tmp_path / "produced", tmp_path / "expected"
    produced.mkdir()
    expected.mkdir()
    for name in ("a.xml", "b.xml"):
        (produced / name).write_text(f"new {name}\n", encoding="utf-8")
        (expected / name).write_text(f"old {name}\n", encoding="utf-8")
    (expected / "stale.xml").write_text("stale\n", encoding="utf-8")
    before = _tree(expected)
    _fail_on(monkeypatch, 2, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        regenerate_expected(produced, expected)
    assert _tree(expected) == before
    monkeypatch.undo()
    regenerate_expected(produced, expected)
    assert sorted(_tree(expected)) == ["README.md", "a.xml", "b.xml"]
    assert (expected / "a.xml").read_text(encoding="utf-8") == "new a.xml\n"


def test_copy_input_failing_leaves_no_file(store, exported, tmp_path, monkeypatch):
    _fail_on(monkeypatch, 1, OSError(28, "No space left on device"))
    with pytest.raises(OSError):
        copy_input(store, exported.run_id, tmp_path / "input.json")
    assert list(tmp_path.glob("input.json")) == [] and _leftovers(tmp_path) == []
    monkeypatch.undo()
    assert copy_input(store, exported.run_id, tmp_path / "input.json").read_bytes() == \
        (EXAMPLES / "school-export.json").read_bytes()


def test_every_writer_uses_the_shared_helper():
    """No module but ``atomic`` writes a file by itself, except the scratch copies that
    pesgen writes in a temporary folder to read them back (preview, regenerate: the
    recorded bundle and input, PayFiP; check-mapping's sample files checked against their
    layout, the scaffold's stand-in mapping that finds what a format requires)."""
    root = Path(atomic.__file__).parent
    found: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        n = sum(text.count(s) for s in (".write_text(", ".write_bytes(", "shutil.copy",
                                        '.open("wb")'))
        if n:
            found[str(path.relative_to(root))] = n
    assert found == {"preview.py": 1, "runs.py": 2, "payfip/service.py": 1, "sample.py": 1,
                     "scaffold.py": 1}, found


def test_a_failed_writer_sweeps_its_own_temporary_files_and_no_one_elses(tmp_path):
    """A signal between mkstemp and the caller recording the name leaves a temporary
    file no staged list holds: discard with the folder removes this process's, never a
    concurrent export's."""
    from pesgen.atomic import discard

    mine, _ = write_temp(tmp_path, [b"x"])
    assert mine.name.startswith(f".pesgen-{os.getpid()}-") and mine.name.endswith(".part")
    other = tmp_path / f".pesgen-{os.getpid() + 1}-abc.part"
    other.write_bytes(b"y")
    # another container's process may have the same id, not the same token
    same_pid = tmp_path / f".pesgen-{os.getpid()}-0000-abc.part"
    same_pid.write_bytes(b"y")
    kept = tmp_path / "kept.xml"
    kept.write_bytes(b"z")
    discard([], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, same_pid.name,
                                                                  "kept.xml"])


def test_invoices_whose_image_names_clash_get_distinct_images():
    from pesgen.payfip.datamatrix import image_name

    used: set[str] = set()
    names = [image_name("FA/1", 1, used), image_name("FA_1", 2, used),
             image_name("fa_1", 3, used), image_name(None, 4, used),
             image_name("FA_1-2", 5, used)]
    assert names == ["FA_1", "FA_1-2", "fa_1-3", "piece-4", "FA_1-2-5"]
    assert len({n.lower() for n in names}) == len(names)


def test_a_name_taken_after_the_check_is_never_overwritten(tmp_path, monkeypatch):
    """The check that a final name is free and the rename are two steps: a file that
    appears between them must survive, and the export refuses (hard link, not rename)."""
    from pesgen.errors import UsageError

    final = tmp_path / "OUT.xml"
    tmp, _ = write_temp(tmp_path, [b"ours"])
    real_check = atomic.check_free

    def late_arrival(temps):
        real_check(temps)
        final.write_bytes(b"theirs")

    monkeypatch.setattr(atomic, "check_free", late_arrival)
    with pytest.raises(UsageError, match="appeared meanwhile"):
        commit([(tmp, final)])
    assert final.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUT.xml"]
    # a new file written with new=True refuses a name taken since
    mapping = tmp_path / "m.yaml"
    mapping.write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="appeared meanwhile"):
        write_file(mapping, "scaffold", new=True)
    assert mapping.read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["OUT.xml", "m.yaml"]
    assert write_file(tmp_path / "n.yaml", "scaffold", new=True).read_text() == "scaffold"


def test_a_write_the_system_refuses_names_the_file(tmp_path, monkeypatch):
    """A write, flush or fsync the system refuses (EFBIG, ENOSPC) raises an OSError
    naming no file: the export said "error: File too large; nothing was written". The
    file it was writing is named."""
    import errno

    def too_large(_fd):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(os, "fsync", too_large)
    final = tmp_path / "PES.xml"
    with pytest.raises(OSError) as info:
        atomic.stage([], final, [b"<PES_Aller/>"], folder=tmp_path)
    assert info.value.errno == errno.EFBIG and info.value.filename == str(final)
    with pytest.raises(OSError) as info:
        write_file(tmp_path / "a.csv", "x")
    assert info.value.filename == str(tmp_path / "a.csv")
    assert os.listdir(tmp_path) == []


def test_an_export_over_the_file_size_limit_names_what_it_was_writing(tmp_path):
    """`ulimit -f 4` (SIGXFSZ ignored, as Python does): the spool file of the rendered
    titles, which has no name, passes the limit first; the error named nothing."""
    import resource
    import subprocess
    import sys

    out = tmp_path / "out"

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = subprocess.run([sys.executable, "-c", "from pesgen.cli import main; main()", "export",
                        "-m", str(MAPPINGS / "villeneuve-sur-loing.yaml"), "-i",
                        str(EXAMPLES / "school-export.json"), "-o", str(out), "--date",
                        "2026-11-23", "--db", str(tmp_path / "s.db"), "--create-store"],
                       capture_output=True, text=True, timeout=120, check=False,
                       preexec_fn=limited)
    assert r.returncode == 2, r.stderr
    assert r.stderr == (f"error: File too large ({out}: the temporary file the rendered "
                        "titles are spooled in); nothing was written\n")
    assert sorted(os.listdir(tmp_path)) == []


def _export_new_store(tmp_path, **kwargs):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", "from pesgen.cli import main; main()",
                           "export", "-m", str(MAPPINGS / "villeneuve-sur-loing.yaml"),
                           "-i", str(EXAMPLES / "school-export.json"),
                           "-o", str(tmp_path / "out"), "--date", "2026-11-23",
                           "--db", str(tmp_path / "s.db"), "--create-store"],
                          capture_output=True, text=True, timeout=120, check=False, **kwargs)


def test_a_store_that_fails_as_it_is_created_says_it_is_removed(tmp_path):
    """`ulimit -f 64`: the spool of the rendered titles fits, the new SQLite store does
    not. The store is removed, as for any refusal, and the export says so: the line was
    missing (the store failed while it was being opened, and the database error went
    past the export's own handling)."""
    import resource

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    r = _export_new_store(tmp_path, preexec_fn=limited)
    assert r.returncode == 7, r.stderr
    assert r.stderr.splitlines() == [
        "error: the state store failed: disk I/O error; nothing was recorded",
        f"removed the state store {tmp_path / 's.db'} this export created: nothing was "
        "recorded in it"]
    assert os.listdir(tmp_path) == []


def disk_full_at_references(monkeypatch) -> None:
    """The disk fills as an export writes its payment references CSV (ENOSPC), after its
    XML file was staged and its store created."""
    import errno

    from pesgen import export as export_module

    real = export_module.stage

    def full(temps, final, chunks, folder=None):
        if final.name.endswith(".references.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(final))
        return real(temps, final, chunks, folder=folder)

    monkeypatch.setattr(export_module, "stage", full)


def test_a_write_that_fails_after_the_store_is_created_says_it_is_removed(
        tmp_path, monkeypatch):
    """The disk fills as the references CSV is written, after the export created its
    store and took its numbers: exit 2 as for any refusal of the machine, nothing
    written, and the new store, with nothing recorded in it, is removed and said so (the
    OSError went past the export's handling: the line was missing)."""
    disk_full_at_references(monkeypatch)
    out = tmp_path / "out"
    r = runner.invoke(app, ["export", "-m", str(MAPPINGS / "villeneuve-sur-loing.yaml"),
                            "-i", str(EXAMPLES / "school-export.json"), "-o", str(out),
                            "--date", "2026-11-23", "--db", str(tmp_path / "s.db"),
                            "--create-store"])
    assert r.exit_code == 2, r.output
    csv_name = "PESORMC_21450999400015_2026_0000001.references.csv"
    assert r.stderr.splitlines() == [
        f"error: No space left on device ({out / csv_name}); nothing was written",
        f"removed the state store {tmp_path / 's.db'} this export created: nothing was "
        "recorded in it"]
    assert os.listdir(tmp_path) == []


def test_write_folder_makes_its_parents_and_a_folder_of_the_umask_s_mode(tmp_path):
    """A new bundle or mapping folder (``write_folder``) is made with its missing parents
    and its sub-folders, with the modes a mkdir gives under the umask (not mkdtemp's
    private 0700), and leaves the process's umask as it found it: a file written after
    it follows the umask too."""
    before = os.umask(0o022)
    try:
        made = write_folder(tmp_path / "a" / "b" / "bundle",
                            {"x.txt": "x", "sub/deeper/y.txt": "y"})
        after = write_file(tmp_path / "after.txt", "z")
        umask_then = os.umask(0o022)
    finally:
        os.umask(before)
    assert umask_then == 0o022
    assert _tree(tmp_path) == {"a/b/bundle/x.txt": b"x", "a/b/bundle/sub/deeper/y.txt": b"y",
                               "after.txt": b"z"}
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode)
             for p in [made, made / "sub", made / "sub" / "deeper", made / "x.txt", after]}
    assert modes == {"a/b/bundle": 0o755, "a/b/bundle/sub": 0o755,
                     "a/b/bundle/sub/deeper": 0o755, "a/b/bundle/x.txt": 0o644,
                     "after.txt": 0o644}


def test_write_folder_refuses_a_folder_that_is_there_even_empty(tmp_path):
    """A rename replaces an empty folder silently: one made since the caller's check
    (another new-format into the same name) is refused, left as it is, and nothing of
    the new one stays beside it."""
    from pesgen.errors import UsageError

    there = tmp_path / "bundle"
    there.mkdir()
    with pytest.raises(UsageError, match="bundle appeared meanwhile; nothing written"):
        write_folder(there, {"a.txt": "a"})
    assert list(there.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_without_hard_links_a_name_taken_is_still_never_overwritten(tmp_path, monkeypatch):
    """A file system without hard links (some network or FAT ones): a new name is checked
    free, then renamed to; a file there (one that appeared since the caller's check) is
    refused and kept, and the temporary file removed."""
    from pesgen.errors import UsageError

    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(
        PermissionError("no hard links here")))
    mapping = tmp_path / "m.yaml"
    mapping.write_text("mine", encoding="utf-8")
    with pytest.raises(UsageError, match="m.yaml appeared meanwhile; pesgen never overwrites"):
        write_file(mapping, "scaffold", new=True)
    assert mapping.read_text(encoding="utf-8") == "mine"
    assert [p.name for p in tmp_path.iterdir()] == ["m.yaml"]
    assert write_file(tmp_path / "n.yaml", "scaffold", new=True).read_text() == "scaffold"


def test_a_leftover_is_named_with_its_process_running_or_not_and_that_process_untouched(
        tmp_path, monkeypatch):
    """``left_by_others`` tells whether the process in a leftover's name runs on this
    machine (a process of another user, which cannot be signalled, runs too), asking
    without signalling it: a run still writing there is never disturbed."""
    import subprocess
    import sys

    from pesgen.atomic import left_by_others

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (gone.pid, alive.pid):
            (tmp_path / f".pesgen-{pid}-0123abcd-x.part").write_bytes(b"<PES_Aller>")
        (tmp_path / ".pesgen-regen-k2x9").mkdir()
        (tmp_path / "PES.xml").write_bytes(b"kept")
        found = dict(left_by_others(tmp_path))
        with pytest.raises(subprocess.TimeoutExpired):
            alive.wait(timeout=0.5)  # still running: asked, not signalled
    finally:
        alive.kill()
        alive.wait()
    assert found == {f".pesgen-{gone.pid}-0123abcd-x.part":
                     f"process {gone.pid}, not running on this machine",
                     f".pesgen-{alive.pid}-0123abcd-x.part":
                     f"process {alive.pid}, running on this machine",
                     ".pesgen-regen-k2x9": "process unknown"}

    # a temporary file pesgen wrote, as another process sees it: named with its process
    ours = os.getpid()
    mine, _ = write_temp(tmp_path, [b"x"])
    monkeypatch.setattr(os, "getpid", lambda: ours + 1)
    assert dict(left_by_others(tmp_path))[mine.name] == f"process {ours}, running on this machine"
    monkeypatch.setattr(os, "getpid", lambda: ours)
    mine.unlink()

    def not_ours(pid, _sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", not_ours)
    (tmp_path / ".pesgen-1-0123abcd-x.part").write_bytes(b"")  # a container's first process
    found = dict(left_by_others(tmp_path))
    assert [found[f".pesgen-{pid}-0123abcd-x.part"] for pid in (gone.pid, 1)] == \
        [f"process {gone.pid}, running on this machine", "process 1, running on this machine"]
    assert left_by_others(tmp_path / "no-such-folder") == []


def test_commit_refusing_a_name_taken_removes_every_temporary_file(tmp_path):
    """A final name taken when the files are put in place (another export into the same
    folder): refused, that file kept, and none of the staged files left behind."""
    from pesgen.errors import UsageError

    temps = [(write_temp(tmp_path, [b"ours %d" % i])[0], tmp_path / f"PES{i}.xml")
             for i in range(2)]
    (tmp_path / "PES1.xml").write_bytes(b"theirs")
    with pytest.raises(UsageError, match="PES1.xml appeared during the export; nothing written"):
        commit(temps)
    assert _tree(tmp_path) == {"PES1.xml": b"theirs"}


def test_a_pipe_or_a_device_is_written_to_not_replaced(tmp_path):
    """`-o /dev/null` or a FIFO: the data goes through it, and it stays what it was. A
    rename onto it replaced the device with a file: run as root, pesgen payfip payments
    -o /dev/null left /dev/null a regular file for every program of the machine (seen
    in this project's own CI). Tested on a FIFO, never on /dev/null."""
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert write_file(fifo, iter([b"invoice;status\n", b"FA-1;paid\n"])) == fifo
    reader.join(10)
    assert got == [b"invoice;status\nFA-1;paid\n"]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary file left
