"""`pesgen runs extract`: what a run recorded (its mapping's text, its input, its format
bundle) written into a new or empty folder for support to read, each checked against the
run's sha256, whole or not at all, and the dry run it prints checking the same input
with them, which runs as printed."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import ExitCode, StateError
from pesgen.runs import _digest, extract_run
from pesgen.store import pack, run_invoices, runs, unpack

from .conftest import ROOT
from .payfip_support import INPUT, MAPPING, exported, store  # noqa: F401 - fixtures

runner = CliRunner()

# the example run's format bundle as pesgen records it: the shipped bundle's files, its
# self-test (fixture/, expected/) left out, and the XSD its format.yaml names, found
# under the shipped schemas/ and recorded under the path format.yaml gives
SHIPPED_BUNDLE = {
    "format.yaml": ROOT / "templates" / "pes-ormc" / "format.yaml",
    "pes-aller.xml.j2": ROOT / "templates" / "pes-ormc" / "pes-aller.xml.j2",
    "pes-ormc/pes-ormc.xsd": ROOT / "schemas" / "pes-ormc" / "pes-ormc.xsd",
}


def _cli(*args: str | Path):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    assert "Traceback" not in result.output
    return result


def _extract(store, run_id: str, out: Path):  # noqa: F811 - the fixture's name
    return _cli("runs", "extract", run_id, "--out", out, "--db", store.url)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".pesgen-*"))


def _recorded_otherwise(store, run_id: str, **values) -> None:  # noqa: F811
    """The run's record with ``values`` instead (a store damaged, or written by hand)."""
    with store.engine.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))


def _bundle(store, run_id: str) -> dict:  # noqa: F811
    with store.engine.connect() as conn:
        return json.loads(unpack(conn.execute(sa.select(runs.c.format_bundle).where(
            runs.c.id == run_id)).scalar_one()))


# ---------------------------------------------------------------- what it writes


def test_the_input_line_names_the_path_the_run_read_or_says_it_was_not_recorded(
        store, exported, tmp_path):  # noqa: F811
    """runs extract said where the run read the mapping, not the input: it names the
    input's absolute path the run recorded (ux51), and for a run recorded before pesgen
    kept it, the name it recorded, saying its folder was not."""
    r = _extract(store, exported.run_id[:8], tmp_path / "a")
    assert r.exit_code == 0, r.output
    [line] = [ln for ln in r.stdout.splitlines() if ln.startswith("  input ")]
    assert line.endswith(f" verified (the run read {INPUT.resolve()})"), line
    policies = json.loads(store.get_run(exported.run_id)["policies"])
    del policies["input_path"]
    _recorded_otherwise(store, exported.run_id, policies=json.dumps(policies, sort_keys=True))
    r = _extract(store, exported.run_id[:8], tmp_path / "b")
    assert r.exit_code == 0, r.output
    [line] = [ln for ln in r.stdout.splitlines() if ln.startswith("  input ")]
    assert line.endswith(" verified (the run read school-export.json: its folder was not "
                         "recorded, a run recorded before pesgen kept it)"), line


def test_the_folder_holds_the_mapping_input_and_bundle_the_run_read(
        store, exported, tmp_path):  # noqa: F811
    """Byte for byte the files the export read: the mapping under its file name, the
    input under input/, the bundle under formats/pes-ormc/; an empty folder is taken, and
    each file is printed with its size and sha256."""
    out = tmp_path / "support"
    out.mkdir()  # an empty folder is taken as a new one
    r = _extract(store, exported.run_id[:8], out)
    assert r.exit_code == 0, r.output
    expected = {"villeneuve-sur-loing.yaml": MAPPING.read_bytes(),
                "input/school-export.json": INPUT.read_bytes(),
                **{f"formats/pes-ormc/{rel}": path.read_bytes()
                   for rel, path in SHIPPED_BUNDLE.items()}}
    assert _tree(out) == expected
    assert _leftovers(tmp_path) == []
    for rel, data in expected.items():
        line = next(line for line in r.stdout.splitlines() if f"{out / rel}  " in line)
        assert f"{len(data)} bytes  sha256 {hashlib.sha256(data).hexdigest()}" in line, line
    recorded = store.get_run(exported.run_id)
    assert f"sha256 {recorded['format_sha256']} verified" in r.stdout
    assert f"(the run read {recorded['mapping_path']})" in r.stdout
    # the input checked by its own sha256, the bundle's three files by the bundle's
    data = INPUT.read_bytes()
    assert (f"  input    {out / 'input' / 'school-export.json'}  {len(data)} bytes  sha256 "
            f"{hashlib.sha256(data).hexdigest()} verified (the run read {INPUT.resolve()})"
            ) in r.stdout.splitlines()
    assert (f"  format   {out / 'formats' / 'pes-ormc'}  3 file(s)  sha256 "
            f"{recorded['format_sha256']} verified (over its files)") in r.stdout.splitlines()
    assert [line for line in r.stdout.splitlines() if line.startswith("  input ")] == [
        f"  input    {out / 'input' / 'school-export.json'}  {len(data)} bytes  sha256 "
        f"{hashlib.sha256(data).hexdigest()} verified (the run read {INPUT.resolve()})"]
    assert "since the run, on this machine:" in r.stdout.splitlines()
    assert "as exported already" not in r.stdout  # it left none out so
    assert r.stderr == (f"note: {out / 'input' / 'school-export.json'} is the school's "
                        "export, billing data (names, addresses, IBANs): keep the folder as "
                        "private as the exports and the state store, and remove it once "
                        "done\n")
    # the mapping and the shipped bundle are as the run read them
    assert f"  mapping  {MAPPING}: unchanged (the same sha256)" in r.stdout
    assert (f"  format   pes-ormc, as found without --formats-dir "
            f"({ROOT / 'templates' / 'pes-ormc'}): unchanged (the same files)") in r.stdout


def test_runs_show_names_the_command_with_the_inputs(store, exported):  # noqa: F811
    r = _cli("runs", "show", exported.run_id[:8], "--db", store.url)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  input "))
    # the store as given (sup62: pasted without it, it would read the default store)
    assert (f"pesgen runs extract {exported.run_id} --db {store.url} --out DIR"
            in lines[at + 1]), lines[at + 1]


def _printed_command(stdout: str) -> list[str]:
    [line] = [line for line in stdout.splitlines() if line.startswith("  pesgen export ")]
    words = shlex.split(line)
    assert words[0] == "pesgen"
    return words[1:]


def test_the_printed_dry_run_runs_on_the_extracted_files(store, exported, tmp_path):  # noqa: F811
    """The command printed is the one that works: run as printed, it checks the input
    with the extracted mapping and bundle, exits 0 and creates nothing; its titles and
    totals are the run's, and here (the run took IdBord 1, as the empty scratch store
    numbers it) its file's bytes too. The same command on the run's own store is
    refused by its duplicate guard: why the scratch store."""
    out = tmp_path / "my dir"  # a space: the printed paths are quoted for the shell
    r = _extract(store, exported.run_id, out)
    assert r.exit_code == 0, r.output
    assert "refuses the invoices an active run holds, this run's among them):" in r.stdout
    command = _printed_command(r.stdout)
    assert command[command.index("--mapping") + 1] == str(out / "villeneuve-sur-loing.yaml")
    assert "--dry-run" in command and "--create-store" in command
    before = _tree(out)
    dry = _cli(*command)
    assert dry.exit_code == 0, dry.output
    assert _tree(out) == before  # nothing created (the scratch store neither)
    recorded = store.get_run(exported.run_id)
    assert recorded["first_number"] == 1
    assert f"titles: {recorded['titles']}, total {recorded['total']}" in dry.stdout
    [xml] = [f for f in recorded["files"] if f["id_bord"] is not None]
    assert (f"would write {xml['name']}  (IdBord 1, {xml['titles']} title(s), total "
            f"{xml['total']}, sha256 {xml['sha256'][:16]}…)") in dry.stdout
    assert f"format pes-ormc, mapping {out / 'villeneuve-sur-loing.yaml'}" in dry.stdout
    same_store = [*command[:command.index("--db")], "--db", store.url]
    refused = _cli(*same_store)
    assert refused.exit_code == ExitCode.STATE, refused.output
    assert "(rule run.duplicate)" in refused.stderr


def test_the_printed_dry_run_reads_the_run_s_bundle_not_today_s(tmp_path):
    """A run made with a bundle changed since (here one of a --formats-dir, named as the
    shipped one, whose template writes a comment more): the printed command renders with
    the recorded bundle, so the dry run's file is the run's, byte for byte, and not what
    the shipped bundle renders today."""
    import shutil
    from datetime import date

    from pesgen.runs import export_recorded
    from pesgen.store import Store

    bundles = tmp_path / "bundles"
    shutil.copytree(ROOT / "templates" / "pes-ormc", bundles / "pes-ormc")
    template = bundles / "pes-ormc" / "pes-aller.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count("</n:PES_Aller>\n") == 1
    template.write_text(text.replace("</n:PES_Aller>\n", "</n:PES_Aller>\n<!-- ours -->\n"),
                        encoding="utf-8")
    spec = b"%PDF-1.4\n\xff\xfe\x00 not UTF-8"  # a file of bytes: recorded in base64
    # named with a colon, which a POSIX file name may hold (no drive here)
    (bundles / "pes-ormc" / "spec:v2.pdf").write_bytes(spec)
    db = Store(f"sqlite:///{tmp_path / 'state.db'}")
    result = export_recorded(lambda: db, MAPPING, INPUT, tmp_path / "out", date(2026, 11, 23),
                             formats_dirs=[bundles])
    shutil.rmtree(bundles)  # gone since, as a bundle edited again would be
    out = tmp_path / "support"
    r = _extract(db, result.run_id, out)
    assert r.exit_code == 0, r.output
    assert (out / "formats" / "pes-ormc" / "pes-aller.xml.j2").read_text(
        encoding="utf-8").endswith("<!-- ours -->\n{% endmacro %}\n")
    assert (out / "formats" / "pes-ormc" / "spec:v2.pdf").read_bytes() == spec
    # today's bundle of that name, the shipped one, differs from the run's by its
    # template, and has no spec:v2.pdf
    assert (f"  format   pes-ormc, as found without --formats-dir "
            f"({ROOT / 'templates' / 'pes-ormc'}): changed pes-aller.xml.j2; not there "
            "spec:v2.pdf\n") in r.stdout
    dry = _cli(*_printed_command(r.stdout))
    assert dry.exit_code == 0, dry.output
    [xml] = [f for f in db.get_run(result.run_id)["files"] if f["id_bord"] is not None]
    assert (out / "formats" / "pes-ormc" / "fixture").exists() is False
    assert f"would write {xml['name']}  (IdBord 1, " in dry.stdout
    assert f"sha256 {xml['sha256'][:16]}…)" in dry.stdout, dry.stdout
    db.engine.dispose()


def test_the_run_s_own_numbers_are_said_beside_the_scratch_store_s(store, exported, tmp_path):  # noqa: F811
    """The scratch store numbers from 1: the run's IdBord are said, to tell why the file
    names and sha256 of the dry run differ from the run's."""
    _recorded_otherwise(store, exported.run_id, first_number=41, bordereaux=2)
    r = _extract(store, exported.run_id, tmp_path / "support")
    assert r.exit_code == 0, r.output
    assert "  the empty store numbers it from 1; the run took IdBord 41-42: where those " \
        "differ, so do the file names and sha256 the dry run shows" in r.stdout
    # a format numbering its titres over the exercise: the run's first titre number (its
    # titles' lowest IdPce) too
    with store.engine.begin() as conn:
        conn.execute(sa.update(run_invoices).where(run_invoices.c.run_id == exported.run_id)
                     .values(id_pce=run_invoices.c.id_pce + 11))
    assert store.get_run(exported.run_id)["first_piece"] == 12
    r = _extract(store, exported.run_id, tmp_path / "pieces")
    assert r.exit_code == 0, r.output
    assert "  the empty store numbers it from 1; the run took IdBord 41-42, titre numbers " \
        "(IdPce) from 12: where those differ" in r.stdout


def test_a_mapping_changed_or_gone_since_the_run_is_said_with_the_diff_to_run(tmp_path):
    """'What changed in the mapping since?': the file at the path the run recorded,
    compared with the recorded text; the diff to run between the two is printed."""
    from datetime import date

    from pesgen.runs import export_recorded
    from pesgen.store import Store

    mapping = tmp_path / "m" / "villeneuve.yaml"
    mapping.parent.mkdir()
    crlf = MAPPING.read_bytes().replace(b"\n", b"\r\n")  # saved on Windows
    mapping.write_bytes(crlf)
    db = Store(f"sqlite:///{tmp_path / 'state.db'}")
    result = export_recorded(lambda: db, mapping, INPUT, tmp_path / "out", date(2026, 11, 23))
    mapping.write_bytes(crlf + b"# edited\r\n")
    r = _extract(db, result.run_id, tmp_path / "one")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "one" / "villeneuve.yaml").read_bytes() == crlf  # line ends kept
    assert (f"  mapping  {mapping}: changed (diff {tmp_path / 'one' / 'villeneuve.yaml'} "
            f"{mapping})") in r.stdout.splitlines()
    mapping.unlink()
    r = _extract(db, result.run_id, tmp_path / "two")
    assert r.exit_code == 0, r.output
    assert f"  mapping  {mapping}: not there on this machine" in r.stdout.splitlines()
    db.engine.dispose()


def test_a_file_today_s_bundle_has_and_the_run_s_had_not_is_said_added(
        store, exported, tmp_path):  # noqa: F811
    """The run's bundle without the XSD (recorded so, its sha256 made to match): the
    shipped bundle found today has it, said added."""
    bundle = _bundle(store, exported.run_id)
    del bundle["pes-ormc/pes-ormc.xsd"]
    _recorded_otherwise(store, exported.run_id, format_sha256=_digest(bundle),
                        format_bundle=pack(json.dumps(bundle).encode("utf-8")))
    r = _extract(store, exported.run_id, tmp_path / "support")
    assert r.exit_code == 0, r.output
    assert (f"  format   pes-ormc, as found without --formats-dir "
            f"({ROOT / 'templates' / 'pes-ormc'}): added pes-ormc/pes-ormc.xsd"
            ) in r.stdout.splitlines()


def test_a_format_this_machine_does_not_find_is_said_so(store, exported, tmp_path):  # noqa: F811
    """A run's format this machine's pesgen does not find by name (one of a --formats-dir
    the run was given, not recorded): said with why, not compared with anything."""
    _recorded_otherwise(store, exported.run_id, format="ours-ormc")
    r = _extract(store, exported.run_id, tmp_path / "support")
    assert r.exit_code == 0, r.output
    [line] = [line for line in r.stdout.splitlines() if line.startswith("  format   ours-")]
    assert line.startswith("  format   ours-ormc, as found without --formats-dir: unknown "
                           "output format 'ours-ormc'"), line


def test_a_recorded_mapping_this_pesgen_refuses_gets_no_command(store, exported, tmp_path):  # noqa: F811
    """A check added since the run (a SIRET's checksum: it renders nothing, regenerate
    lets it through) refuses the mapping in an export: the dry run would fail before
    reading the input, so none is printed; what refuses it is said, with regenerate."""
    recorded = store.get_run(exported.run_id)
    text = recorded["mapping_text"].replace("21450999400015", "21450999400016")
    assert text != recorded["mapping_text"]
    _recorded_otherwise(store, exported.run_id, mapping_text=text,
                        mapping_sha256=hashlib.sha256(text.encode()).hexdigest())
    out = tmp_path / "support"
    r = _extract(store, exported.run_id, out)
    assert r.exit_code == 0, r.output
    assert (out / "villeneuve-sur-loing.yaml").read_text(encoding="utf-8") == text
    assert "pesgen export" not in r.stdout
    assert "not given:" in r.stdout and "(rule collectivity.siret)" in r.stdout
    assert f"pesgen regenerate {exported.run_id} --out NEW_DIR" in r.stdout


def test_a_recorded_mapping_of_another_format_gets_no_command(store, exported, tmp_path):  # noqa: F811
    """A run whose recorded mapping names another format than the run's (a store edited
    by hand): the printed command would check the input with that format, found among
    the shipped bundles, not the run's extracted one; it is not given, and why is said."""
    text = (ROOT / "mappings" / "villeneuve-sur-loing-titres.yaml").read_text(encoding="utf-8")
    _recorded_otherwise(store, exported.run_id, mapping_text=text,
                        mapping_sha256=hashlib.sha256(text.encode()).hexdigest())
    out = tmp_path / "support"
    r = _extract(store, exported.run_id, out)
    assert r.exit_code == 0, r.output
    assert "pesgen export" not in r.stdout and "not given:" in r.stdout
    assert (f"{out / 'villeneuve-sur-loing.yaml'}: its output.format, pes-titres, is not the "
            "run's format (pes-ormc), whose bundle is extracted") in r.stdout


def test_a_cancelled_run_is_extracted_as_any_other(store, exported, tmp_path):  # noqa: F811
    """Support explains a cancelled run too: what it recorded stays in the store."""
    done = _cli("runs", "cancel", exported.run_id, "--reason", "rejected", "--db", store.url)
    assert done.exit_code == 0, done.output
    out = tmp_path / "support"
    r = _extract(store, exported.run_id, out)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"run {exported.run_id} (cancelled), made ")
    assert "refuses the invoices an active run holds):" in r.stdout  # not this one's
    assert _tree(out)["input/school-export.json"] == INPUT.read_bytes()


def test_a_run_checked_against_the_dgfip_xsd_says_so_beside_the_command(
        store, exported, tmp_path):  # noqa: F811
    """The printed command applies the DGFiP package only as this machine is configured:
    a run that applied one (its folder recorded) says which, for --official-xsd."""
    r = _extract(store, exported.run_id, tmp_path / "plain")
    assert "DGFiP XSD" not in r.stdout
    validation = json.loads(store.get_run(exported.run_id)["validation"])
    _recorded_otherwise(store, exported.run_id, validation=json.dumps(
        {**validation, "official_xsd": "/srv/dgfip/schemas_pes_v5.17"}))
    r = _extract(store, exported.run_id, tmp_path / "official")
    assert r.exit_code == 0, r.output
    assert "checked against the DGFiP XSD in /srv/dgfip/schemas_pes_v5.17: add " \
        "--official-xsd" in r.stdout


def test_a_run_made_by_another_pesgen_says_so_beside_the_command(
        store, exported, tmp_path):  # noqa: F811
    from pesgen import __version__

    r = _extract(store, exported.run_id, tmp_path / "same")
    assert "a check added since" not in r.stdout  # made by this pesgen
    _recorded_otherwise(store, exported.run_id, pesgen_version="0.0.1")
    r = _extract(store, exported.run_id, tmp_path / "older")
    assert r.exit_code == 0, r.output
    assert (f"  the run was made by pesgen 0.0.1, this is pesgen {__version__}: a check "
            "added since may refuse what the run passed") in r.stdout.splitlines()


# ---------------------------------------------------------------- what it refuses


@pytest.mark.parametrize("held", ["notes.txt", ".hidden"])
def test_a_folder_holding_anything_is_refused_and_left_as_it_was(
        store, exported, tmp_path, held):  # noqa: F811
    out = tmp_path / "support"
    out.mkdir()
    (out / held).write_text("mine", encoding="utf-8")
    r = _extract(store, exported.run_id, out)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"{out} is not empty (it holds {held})" in r.stderr, r.stderr
    assert _tree(out) == {held: b"mine"} and _leftovers(tmp_path) == []


def test_a_folder_holding_anything_is_refused_before_the_record_is_read(
        store, exported, tmp_path):  # noqa: F811
    """The folder, the user's choice, is refused first (a usage error, exit 2), before
    the run's record is read and checked: a damaged record is not said for it."""
    text = MAPPING.read_text(encoding="utf-8").replace("21450999400015", "21450999400023")
    _recorded_otherwise(store, exported.run_id, mapping_text=text)  # its sha256 not matched
    out = tmp_path / "support"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    r = _extract(store, exported.run_id, out)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"{out} is not empty (it holds notes.txt)" in r.stderr
    assert "sha256" not in r.stderr and _tree(out) == {"notes.txt": b"mine"}


def test_a_file_given_as_the_folder_is_refused(store, exported, tmp_path):  # noqa: F811
    out = tmp_path / "support"
    out.write_text("mine", encoding="utf-8")
    r = _extract(store, exported.run_id, out)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"{out} is not a folder" in r.stderr
    assert out.read_text(encoding="utf-8") == "mine"


def test_an_unknown_run_is_refused_and_nothing_is_made(store, exported, tmp_path):  # noqa: F811
    out = tmp_path / "new" / "support"
    r = _extract(store, "0123abcd", out)
    assert r.exit_code == ExitCode.STATE, r.output
    assert "no run 0123abcd" in r.stderr
    assert not (tmp_path / "new").exists()


def _refused_whole(store, run_id: str, tmp_path: Path, said: str):  # noqa: F811
    """The extraction is refused as the store's error naming ``said``, and leaves nothing:
    not the folder nor its parent (made by it), nor a temporary file."""
    out = tmp_path / "new" / "support"
    before = sorted(os.listdir(tmp_path))  # the run's files and store
    r = _extract(store, run_id, out)
    assert r.exit_code == ExitCode.STATE, r.output
    assert said in r.stderr, r.stderr
    assert "nothing written" in r.stderr
    assert sorted(os.listdir(tmp_path)) == before and _leftovers(tmp_path) == []
    return r


def test_a_tampered_input_is_refused_by_its_sha256(store, exported, tmp_path):  # noqa: F811
    other = b'{"invoices": []}'
    _recorded_otherwise(store, exported.run_id, input_blob=pack(other))
    _refused_whole(store, exported.run_id, tmp_path,
                   "the recorded input (school-export.json) does not match its recorded "
                   f"sha256 {hashlib.sha256(INPUT.read_bytes()).hexdigest()} (its bytes "
                   f"give {hashlib.sha256(other).hexdigest()})")


def test_a_tampered_mapping_is_refused_by_its_sha256(store, exported, tmp_path):  # noqa: F811
    text = MAPPING.read_text(encoding="utf-8").replace("21450999400015", "21450999400023")
    _recorded_otherwise(store, exported.run_id, mapping_text=text)
    _refused_whole(store, exported.run_id, tmp_path, "villeneuve-sur-loing.yaml) does not "
                   "match its recorded sha256")


def test_a_tampered_bundle_is_refused_by_its_sha256(store, exported, tmp_path):  # noqa: F811
    bundle = _bundle(store, exported.run_id)
    bundle["pes-aller.xml.j2"] += "<!-- changed -->"
    _recorded_otherwise(store, exported.run_id,
                        format_bundle=pack(json.dumps(bundle).encode("utf-8")))
    _refused_whole(store, exported.run_id, tmp_path, "the recorded bundle of format "
                   "pes-ormc does not match its recorded sha256")


@pytest.mark.parametrize("rel", ["../../escaped.txt", "/tmp/escaped.txt", "a/../../x.txt",
                                 # out of no folder, but not a path format.yaml writes
                                 "a/../x.txt", "./x.txt", "a\0b.txt"])
def test_a_bundle_path_out_of_its_folder_is_refused(store, exported, tmp_path, rel):  # noqa: F811
    """A recorded bundle naming a file out of formats/<format>/ (its sha256 made to
    match: the path refuses it) is refused before anything is written."""
    bundle = {**_bundle(store, exported.run_id), rel: "escaped"}
    _recorded_otherwise(store, exported.run_id, format_sha256=_digest(bundle),
                        format_bundle=pack(json.dumps(bundle).encode("utf-8")))
    _refused_whole(store, exported.run_id, tmp_path, f"names a path out of its folder: "
                   f"{rel!r}")


@pytest.mark.parametrize("field,value", [("input_name", "../school-export.json"),
                                         ("format", "../pes-ormc"),
                                         # a name that is the folder itself, or its parent
                                         ("input_name", ".."), ("format", "."),
                                         ("format", ".."), ("input_name", "school\0.json")])
def test_a_recorded_name_leading_out_of_its_folder_is_refused(
        store, exported, tmp_path, field, value):  # noqa: F811
    if "\0" in value and store.url.startswith("postgresql"):
        pytest.skip("PostgreSQL's text holds no NUL: no record can name it so there")
    _recorded_otherwise(store, exported.run_id, **{field: value})
    _refused_whole(store, exported.run_id, tmp_path, f"{value!r} is not the name of a")


def test_a_failure_while_writing_leaves_no_folder(store, exported, tmp_path, monkeypatch):  # noqa: F811
    """A full disk on the third file (the bundle's first): no folder, no temporary file;
    the next try writes it all."""
    real, calls = os.fsync, [0]

    def failing(fd):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", failing)
    run = store.get_run(exported.run_id)
    out = tmp_path / "new" / "support"
    with pytest.raises(OSError, match="No space left"):
        extract_run(run, out)
    assert calls[0] == 3
    assert not (tmp_path / "new").exists() and _leftovers(tmp_path) == []
    monkeypatch.undo()
    done = extract_run(run, out)
    assert len(done.files) == 5 and _tree(out)["input/school-export.json"] == \
        INPUT.read_bytes()


def test_an_interrupt_while_writing_leaves_no_folder(store, exported, tmp_path, monkeypatch):  # noqa: F811
    """Ctrl-C or SIGTERM (KeyboardInterrupt) as the input is synced: exit 130, said, and
    neither the folder nor its parent it made, nor a temporary file, is left."""
    real, calls = os.fsync, [0]

    def interrupted(fd):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt("signal 15")
        return real(fd)

    monkeypatch.setattr(os, "fsync", interrupted)
    before = sorted(os.listdir(tmp_path))
    r = _extract(store, exported.run_id, tmp_path / "new" / "support")
    assert r.exit_code == 130, r.output
    assert r.stderr == "interrupted: nothing written\n"
    assert sorted(os.listdir(tmp_path)) == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("column,said", [
    ("input_blob", "recorded input .* cannot be read"),
    ("format_bundle", "recorded bundle of format pes-ormc cannot be read")])
def test_an_unreadable_record_is_the_store_s_error(store, exported, tmp_path,  # noqa: F811
                                                   column, said):
    _recorded_otherwise(store, exported.run_id, **{column: b"not zlib"})
    run = store.get_run(exported.run_id)
    with pytest.raises(StateError, match=said):
        extract_run(run, tmp_path / "support")
    assert not (tmp_path / "support").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("recorded,name", [
    ("/srv/pesgen/villeneuve.yaml", "villeneuve.yaml"),
    ("mappings/villeneuve.yaml", "villeneuve.yaml"),  # recorded as typed, before 0.1
    ("C:\\pesgen\\villeneuve.yaml", "villeneuve.yaml"),  # a Windows machine's run
    ("\\\\server\\share\\villeneuve.yaml", "villeneuve.yaml"),
    ("C:\\Users/compta\\villeneuve.yaml", "villeneuve.yaml"),  # both separators
    ("mappings\\villeneuve.yaml", "villeneuve.yaml"),
    ("/srv/pesgen/back\\slash.yaml", "back\\slash.yaml"),  # a POSIX name may hold one
    ("/srv/pesgen/input", "mapping.yaml"),  # the input's folder takes that name
    ("/srv/pesgen/formats", "mapping.yaml"),
])
def test_the_mapping_is_written_under_the_file_name_the_run_recorded(recorded, name):
    from pesgen.runs import recorded_mapping_name

    assert recorded_mapping_name(recorded) == name
