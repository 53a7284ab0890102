"""The command line: exit codes, messages, summary, and the never-overwrite guarantee."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from pesgen.errors import ExitCode
from pesgen.export import export

from .conftest import (
    EXAMPLES,
    MAPPINGS,
    ROOT,
    RUN_DATE,
    example_with_two_input_errors,
    generated_input,
    run_cli,
)
from .mapping_support import mapping_copy

JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"
JSON_INPUT = EXAMPLES / "school-export.json"
CSV_INPUT = EXAMPLES / "school-export.csv"
XML_NAME = "PESORMC_21450999400015_2026_0000001.xml"
REFS_NAME = "PESORMC_21450999400015_2026_0000001.references.csv"

_run = run_cli


def _export(out: Path, *extra: str | Path, mapping: Path = JSON_MAPPING,
            input_path: Path = JSON_INPUT, run_date: str = RUN_DATE):
    return _run("export", "-m", mapping, "-i", input_path, "-o", out, "--date", run_date,
                *extra)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def example_xml(tmp_path_factory) -> Path:
    """The example run exported once (library, no store) for the validate tests."""
    out = tmp_path_factory.mktemp("example")
    result = export(JSON_MAPPING, JSON_INPUT, out, date.fromisoformat(RUN_DATE))
    return result.files[0].path


# ---------------------------------------------------------------- export


def test_export_ok_prints_the_summary(tmp_path):
    out = tmp_path / "out"
    r = _export(out, "--db", tmp_path / "state.sqlite3", "--create-store")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    stdout = r.stdout
    assert _files(out) == [REFS_NAME, XML_NAME]
    # the store the run is recorded in, which `runs` and `regenerate` then read
    assert stdout.splitlines()[1] == f"  store: {tmp_path / 'state.sqlite3'} (created by this run)"
    assert f"  wrote {out / XML_NAME}  (IdBord 1, 11 title(s), total 2527.25, sha256 " in stdout
    assert f"  wrote {out / REFS_NAME}  (payment references)" in stdout
    assert "titles: 11, total 2527.25" in stdout
    # the zero-total invoice is left out, and the summary says where it was and why
    assert "left out: 1" in stdout
    left = [ln for ln in stdout.splitlines() if "FA-2026-00106" in ln]
    assert len(left) == 1
    assert "school-export.json:$.invoices[5]" in left[0]
    assert left[0].endswith("total is 0.00 (policy zero_total)")
    # every policy applied is counted, the notable ones are detailed per invoice
    applied = re.search(r"^policies applied: (.*)$", stdout, re.M)
    assert applied, stdout
    counts = dict(item.split(" ×") for item in applied[1].split(", "))
    assert counts["negative_lines"] == "1"
    assert counts["street_overflow"] == "2"
    assert counts["foreign_address"] == "1"
    assert counts["missing_civility"] == "1"
    # the civility table's translations are counted only: one line each would bury the
    # notable ones under the whole roll
    assert counts["civility"] == "8"
    assert not [ln for ln in stdout.splitlines() if ": civility: " in ln], stdout
    assert re.search(r"^  - FA-2026-00101: negative_lines: invoice line 4 \(-22\.75, FM-C1; "
                     r"\S*school-export\.json:\$\.invoices\[0\]\.lines\[3\]\), not in "
                     r"the file: netted 22\.75 into invoice line 1 "
                     r"\(line 1 of the title in the file\)$",
                     stdout, re.M), stdout
    assert "  - FA-2026-00105: foreign_address: BE: CP 99999" in stdout
    # the file written is the one announced: its checksum prefix is printed
    import hashlib

    digest = hashlib.sha256((out / XML_NAME).read_bytes()).hexdigest()
    assert f"sha256 {digest[:16]}…" in stdout


def test_the_summary_says_the_dgfip_xsd_it_applied(tmp_path, official_xsd, monkeypatch):
    """A PES export validated against the DGFiP package said nothing of it, though a
    finance package's export says the package was not applied, and the package may
    come from PESGEN_OFFICIAL_XSD or the configuration, which the command line does not
    show: the summary names it, for a dry run too; without it, nothing is said."""
    store = ("--db", tmp_path / "state.sqlite3", "--create-store")
    dry = _export(tmp_path / "dry", *store, "--dry-run", "--official-xsd", official_xsd)
    assert dry.exit_code == 0, dry.output
    assert f"  DGFiP XSD: applied ({official_xsd})\n" in dry.stdout
    monkeypatch.setenv("PESGEN_OFFICIAL_XSD", str(official_xsd))
    r = _export(tmp_path / "out", *store)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[2] == f"  DGFiP XSD: applied ({official_xsd})"  # before the files it wrote
    assert lines[3].startswith(f"  wrote {tmp_path / 'out' / XML_NAME}  (IdBord 1")
    monkeypatch.delenv("PESGEN_OFFICIAL_XSD")
    fresh = _export(tmp_path / "fresh", "--db", tmp_path / "other.sqlite3", "--create-store")
    assert fresh.exit_code == 0, fresh.output
    assert "DGFiP XSD" not in fresh.output


def test_the_summary_counts_transliterations_by_field_and_names_identifiers_changed(
        tmp_path):
    """Transliterations were only counted ('transliterate ×10'): a mandate reference
    written otherwise than the family signed it went unnamed. Each field's count is
    said, and a changed identifier (RUM, debtor reference) by invoice."""
    text = JSON_INPUT.read_text(encoding="utf-8")
    assert text.count('"CRCVSL000042"') == 1
    source = tmp_path / "export.json"
    source.write_text(text.replace('"CRCVSL000042"', '"CRCVSLé42"'), encoding="utf-8")
    r = _export(tmp_path / "out", "--db", f"sqlite:///{tmp_path / 's.db'}",
                "--create-store", input_path=source)
    assert r.exit_code == 0, r.output
    assert "  - FA-2026-00101: transliterate: mandate.rum: É→E\n" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("  - *: transliterate:"))
    assert line == ("  - *: transliterate: 10 value(s) changed to the output's characters: "
                    "address.street ×1, line.label ×8, mandate.rum ×1")
    # the other fields' changes stay counted, not listed by invoice
    assert "transliterate: line.label" not in r.stdout


def test_the_progress_line_returns_to_the_start_of_the_line_on_a_terminal(tmp_path,
                                                                         monkeypatch):
    """The escaping of control characters in errors (text quoted from outside files)
    reached the progress line too: '\\x0d1000 invoice(s) read…' grew along one line
    instead of being rewritten in place."""
    import pesgen.cli

    class _Terminal:  # the sys module, its standard error a terminal
        def __getattr__(self, name: str) -> object:
            if name == "stderr":
                return type("Tty", (), {"isatty": staticmethod(lambda: True)})()
            return getattr(sys, name)

    monkeypatch.setattr(pesgen.cli, "sys", _Terminal())
    r = _export(tmp_path / "out", "--db", f"sqlite:///{tmp_path / 's.db'}", "--create-store")
    assert r.exit_code == 0, r.output
    assert "\r12 invoice(s) read…" in r.stderr  # the 12 of the file, one left out
    assert "\\x0d" not in r.stderr


def test_export_csv_ok(tmp_path):
    out = tmp_path / "out"
    r = _export(out, mapping=CSV_MAPPING, input_path=CSV_INPUT)
    assert r.exit_code == 0, r.output
    assert "titles: 11, total 2527.25" in r.stdout
    assert _files(out) == [REFS_NAME, XML_NAME]


def test_export_quiet_prints_nothing(tmp_path):
    out = tmp_path / "out"
    r = _export(out, "--quiet")
    assert r.exit_code == 0
    assert r.stdout == "" and r.stderr == ""
    assert XML_NAME in _files(out)


def test_same_date_twice_gives_byte_identical_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    # two separate state stores: both runs get IdBord 1 (one store would refuse the
    # second run as a duplicate of the first)
    ra = _export(a, "--db", tmp_path / "a.sqlite3", "--create-store")
    rb = _export(b, "--db", tmp_path / "b.sqlite3", "--create-store")
    assert ra.exit_code == rb.exit_code == 0, (ra.output, rb.output)
    assert _files(a) == _files(b) == [REFS_NAME, XML_NAME]
    for name in (XML_NAME, REFS_NAME):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    raw = (a / XML_NAME).read_bytes()
    assert b'<DteStr V="2026-11-23"/>' in raw and b'<DteBordEm V="2026-11-23"/>' in raw


def test_other_date_other_bytes(tmp_path):
    ra = _export(tmp_path / "a", "--db", tmp_path / "a.sqlite3", "--create-store")
    rb = _export(tmp_path / "b", "--db", tmp_path / "b.sqlite3", "--create-store",
                 run_date="2026-11-24")
    assert ra.exit_code == rb.exit_code == 0
    raw = (tmp_path / "b" / XML_NAME).read_bytes()
    assert raw != (tmp_path / "a" / XML_NAME).read_bytes()
    assert b'<DteStr V="2026-11-24"/>' in raw


@pytest.mark.parametrize("value", ["2026-02-30", "23/11/2026", "hier", "2026-1-5x"])
def test_bad_date_is_a_usage_error(tmp_path, value):
    out = tmp_path / "out"
    r = _export(out, run_date=value)
    assert r.exit_code == ExitCode.USAGE == 2
    if value == "2026-02-30":  # the right shape, a day the calendar does not have
        assert r.stderr.strip() == (f"error: --date: {value} is not a day of the calendar "
                                    "(YYYY-MM-DD)")
    else:
        assert r.stderr.strip() == f"error: --date must be YYYY-MM-DD, got '{value}'"
    assert r.stdout == ""
    assert not out.exists()


def test_input_error_exit_4_lists_the_record_and_writes_nothing(tmp_path):
    inp = example_with_two_input_errors(tmp_path)
    out = tmp_path / "out"
    r = _export(out, input_path=inp)
    assert r.exit_code == ExitCode.INPUT == 4
    assert r.stdout == ""
    err = r.stderr.splitlines()
    assert err[0] == "error: 2 problem(s) in the input; nothing written"
    assert err[-1] == "2 problem(s); nothing was written."
    problems = [ln for ln in err if ln.startswith("  - ")]
    assert len(problems) == 2
    assert problems[0].startswith(f"  - {inp}:$.invoices[0] invoice FA-2026-00101: IBAN is")
    assert problems[0].endswith("(rule sepa.iban)")
    assert f"[mapping {JSON_MAPPING}:" in problems[0]
    assert problems[1].startswith(f"  - {inp}:$.invoices[2].lines[1] invoice FA-2026-00103: ")
    assert problems[1].endswith("(rule codes.activity)")
    assert _files(out) == []


def test_missing_input_file_is_an_input_error(tmp_path):
    r = _export(tmp_path / "out", input_path=tmp_path / "nope.json")
    assert r.exit_code == ExitCode.INPUT
    assert "nope.json: input file not found" in r.stderr


def test_a_mistyped_input_path_says_what_its_nearest_folder_holds(tmp_path, monkeypatch):
    """A mistyped --input was refused as 'input file not found' alone: the technician
    could not tell a typo in the file's name from one in a folder's. It says what the
    nearest folder that exists holds (hidden entries left out, folders ending with '/'),
    the closest name, and which folder of the path does not exist."""
    exports = tmp_path / "exports"
    (exports / "2026").mkdir(parents=True)
    for name in ("school-export.csv", "school-export.json", ".hidden"):
        (exports / name).write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    said = {}
    for typed in ("exports/school-expor.json", "exprts/school-export.json",
                  "exports/2027/school-export.json", "exports/2026/x.json"):
        r = _run("preview", "-m", JSON_MAPPING, "-i", typed, "--date", RUN_DATE)
        assert r.exit_code == ExitCode.INPUT, r.output
        said[typed] = r.stderr.splitlines()[0]
    assert said == {
        "exports/school-expor.json": "error: exports/school-expor.json: input file not found; "
        "exports holds 2026/, school-export.csv, school-export.json: did you mean "
        "school-export.json?",
        "exprts/school-export.json": "error: exprts/school-export.json: input file not found; "
        "exprts does not exist; the nearest folder that does, the current folder, holds "
        "exports/: did you mean exports?",
        "exports/2027/school-export.json": "error: exports/2027/school-export.json: input "
        "file not found; exports/2027 does not exist; the nearest folder that does, exports, "
        "holds 2026/, school-export.csv, school-export.json: did you mean 2026?",
        "exports/2026/x.json": "error: exports/2026/x.json: input file not found; "
        "exports/2026 is empty"}


def test_a_mistyped_input_path_names_twelve_entries_of_the_nearest_folder_up_it(
        tmp_path, monkeypatch):
    """The nearest folder that exists may be several levels up the path typed (two
    folders of it missing); of its entries the first twelve are named, then how many
    more there are."""
    exports = tmp_path / "exports"
    exports.mkdir()
    for i in range(12):
        (exports / f"export-{i:02d}.json").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    typed = "exports/2026/11/school-export.json"
    said = ("error: exports/2026/11/school-export.json: input file not found; exports/2026/11 "
            "does not exist; the nearest folder that does, exports, holds "
            + ", ".join(f"export-{i:02d}.json" for i in range(12)))
    r = _run("preview", "-m", JSON_MAPPING, "-i", typed, "--date", RUN_DATE)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert r.stderr.splitlines()[0] == said
    (exports / "export-12.json").write_text("", encoding="utf-8")
    r = _run("preview", "-m", JSON_MAPPING, "-i", typed, "--date", RUN_DATE)
    assert r.stderr.splitlines()[0] == f"{said}, … (1 more)"


def test_a_folder_as_input_is_said_to_be_a_folder(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    r = _export(tmp_path / "out", input_path=folder)
    assert r.exit_code == ExitCode.INPUT
    assert f"{folder}: is a folder; --input takes the billing export file" in r.stderr
    assert not (tmp_path / "out").exists()


def test_mapping_error_on_export_exit_3(tmp_path):
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("zero_total: leave_out", "zero_totl: leave_out"),
                        name="m.yaml")
    out = tmp_path / "out"
    r = _export(out, mapping=m)
    assert r.exit_code == ExitCode.MAPPING == 3
    assert "did you mean 'zero_total'?" in r.stderr
    assert _files(out) == []


def _broken_bundle(tmp_path: Path, old: str, new: str) -> tuple[Path, Path]:
    fmts = tmp_path / "fmts"
    bundle = fmts / "broken-fmt"
    shutil.copytree(ROOT / "templates" / "pes-ormc", bundle)
    fy = bundle / "format.yaml"
    fy.write_text(fy.read_text(encoding="utf-8").replace("name: pes-ormc", "name: broken-fmt"),
                  encoding="utf-8")
    tpl = bundle / "pes-aller.xml.j2"
    text = tpl.read_text(encoding="utf-8")
    assert text.count(old) == 1
    tpl.write_text(text.replace(old, new), encoding="utf-8")
    m, _ = mapping_copy(tmp_path, JSON_MAPPING, ("format: pes-ormc", "format: broken-fmt"),
                        name="m.yaml")
    return fmts, m


def _line_of(path: Path, needle: str) -> int:
    hits = [i for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if needle in ln]
    assert len(hits) == 1
    return hits[0]


def test_template_error_exit_5(tmp_path):
    fmts, m = _broken_bundle(tmp_path, '<TypBord V="06"/>', '<TypBord V="{{ doc.nope }}"/>')
    line = _line_of(fmts / "broken-fmt" / "pes-aller.xml.j2", "doc.nope")
    out = tmp_path / "out"
    r = _export(out, "--formats-dir", fmts, mapping=m)
    assert r.exit_code == ExitCode.TEMPLATE == 5
    assert r.stderr.startswith(f"error: template {fmts}/broken-fmt/pes-aller.xml.j2:{line}: ")
    assert "(rule template)" in r.stderr
    assert _files(out) == []


def test_a_template_leaving_the_document_unclosed_writes_nothing(tmp_path):
    """A bundle whose template forgets the root's end tag renders a document that is not
    well-formed: refused (exit 6, the file's last line, rule xml.pesgen), no file, no run
    recorded, no number used. lxml's schema-validating iterparse with entities off stops
    silently at an error found at the end of the input: it wrote and recorded it."""
    fmts, m = _broken_bundle(tmp_path, "</n:PES_Aller>", "")
    out = tmp_path / "out"
    db = tmp_path / "state.sqlite3"
    r = _export(out, "--formats-dir", fmts, "--db", str(db), "--create-store", mapping=m)
    assert r.exit_code == ExitCode.OUTPUT == 6, r.stderr
    assert "not well-formed: Premature end of data in tag PES_Aller" in r.stderr
    assert "(rule xml.pesgen)" in r.stderr
    assert _files(out) == []
    if db.exists():
        from pesgen.store import Store

        assert Store(f"sqlite:///{db}").list_runs() == []


def test_export_refuses_to_overwrite_an_existing_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    existing = out / XML_NAME
    existing.write_bytes(b"the file sent to the treasury last week\n")
    before = existing.stat()
    db = tmp_path / "state.sqlite3"
    r = _export(out, "--db", db, "--create-store")
    assert r.exit_code == ExitCode.USAGE == 2
    assert f"{existing} already exists" in r.stderr
    assert "never overwrites" in r.stderr
    assert r.stdout == ""
    assert existing.read_bytes() == b"the file sent to the treasury last week\n"
    assert existing.stat().st_mtime_ns == before.st_mtime_ns
    assert _files(out) == [XML_NAME]  # no references file, no .pesgen-*.part leftover
    # the store it created (refused once it was open) is not left behind, empty
    assert r.stderr.splitlines()[-1] == (f"removed the state store {db} this export "
                                         "created: nothing was recorded in it")
    assert _files(tmp_path) == ["out"]
    # the refused run consumed no number and recorded no invoice
    again = _export(tmp_path / "elsewhere", "--db", db, "--create-store")
    assert again.exit_code == 0, again.output
    assert "(IdBord 1, 11 title(s)" in again.stdout


def test_export_into_a_file_instead_of_a_folder(tmp_path):
    target = tmp_path / "not-a-folder"
    target.write_text("x", encoding="utf-8")
    r = _export(target)
    assert r.exit_code == ExitCode.USAGE
    assert "is not a folder" in r.stderr
    assert target.read_text(encoding="utf-8") == "x"


# ---------------------------------------------------------------- check-mapping


@pytest.mark.parametrize("mapping, kind", [(JSON_MAPPING, "json"), (CSV_MAPPING, "csv")])
def test_check_mapping_ok(mapping, kind):
    r = _run("check-mapping", mapping)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == (f"{mapping}: OK (format pes-ormc, 9 activity code(s), "
                                        f"input {kind}; 1 template(s) rendered on sample titles)")


def test_check_mapping_says_how_to_check_against_an_export(tmp_path):
    """check-mapping reads no input: its success says which commands check the mapping
    against an export (preview, export --dry-run), ready to copy with the mapping and
    the formats folders given (it said only OK: a technician took that for the whole
    check)."""
    fmts = tmp_path / "my formats"
    fmts.mkdir()
    r = _run("check-mapping", JSON_MAPPING, "--formats-dir", fmts)
    assert r.exit_code == 0, r.output
    args = f"--mapping {JSON_MAPPING} --input EXPORT --formats-dir '{fmts}'"
    lines = r.stdout.splitlines()
    assert lines[1] == "It read no input. Against an export of the school software:"
    assert f"  pesgen preview {args}" in lines
    assert f"  pesgen export {args} --dry-run" in lines
    said = " ".join(r.stdout.split())
    assert "what no binding reads: no store, nothing numbered" in said
    assert "(a JSON path no invoice has among them)" in said
    assert "nothing written, no number used" in said
    # the commands aside, it fits a terminal
    assert max(len(ln) for ln in lines[1:] if "pesgen" not in ln) <= 80


def test_check_mapping_broken_exit_3_lists_every_problem(tmp_path):
    m, (typo, delay) = mapping_copy(tmp_path, JSON_MAPPING,
                                    ("zero_total: leave_out", "zero_totl: leave_out"),
                                    ("  asap_delay_days: 0", "  asap_delay_days: -1"),
                                    name="m.yaml")
    r = _run("check-mapping", m)
    assert r.exit_code == ExitCode.MAPPING == 3
    assert r.stdout == ""
    err = r.stderr
    assert err.startswith(f"error: {m}: invalid mapping\n")
    assert (f"  - unknown key 'zero_totl' (did you mean 'zero_total'?) "
            f"[mapping {m}:{typo}: policies.zero_totl] (rule mapping.schema)") in err
    assert f"[mapping {m}:{delay}: output.asap_delay_days]" in err
    # check-mapping writes nothing: it does not say nothing was written
    assert err.rstrip().endswith("\n2 problem(s).")
    # nor do preview, check-layout and check-format (without --regen); export does
    r = _run("preview", "-m", m, "-i", JSON_INPUT)
    assert r.exit_code == ExitCode.MAPPING and r.stderr.rstrip().endswith("\n2 problem(s).")
    layout = tmp_path / "bad.layout.yaml"
    layout.write_text("pesgen_layout: 1\nname: X\nkind: csv\n", encoding="utf-8")
    r = _run("check-layout", layout)
    assert r.exit_code == ExitCode.MAPPING and r.stderr.rstrip().endswith("\n1 problem(s).")
    r = _run("export", "-m", m, "-i", JSON_INPUT, "-o", tmp_path / "out", "--db",
             tmp_path / "s.sqlite3", "--create-store")
    assert r.exit_code == ExitCode.MAPPING
    assert r.stderr.rstrip().endswith("\n2 problem(s); nothing was written.")


def test_check_mapping_missing_file_exit_3(tmp_path):
    r = _run("check-mapping", tmp_path / "absent.yaml")
    assert r.exit_code == ExitCode.MAPPING
    assert "absent.yaml: file not found" in r.stderr


def test_check_mapping_checks_the_template(tmp_path):
    fmts, m = _broken_bundle(tmp_path, '<TypBord V="06"/>', '<TypBord V="06"/>{% if %}')
    line = _line_of(fmts / "broken-fmt" / "pes-aller.xml.j2", "{% if %}")
    r = _run("check-mapping", m, "--formats-dir", fmts)
    assert r.exit_code == ExitCode.TEMPLATE == 5
    assert f"{fmts}/broken-fmt/pes-aller.xml.j2:{line}" in r.stderr
    assert "(rule template.syntax)" in r.stderr


@pytest.mark.parametrize("command", ["check-mapping", "export", "dry-run", "preview",
                                     "set-start"])
def test_a_mapping_s_unknown_format_is_a_mapping_error(tmp_path, command):
    """`format: pes-ormcc` in a mapping was a usage error (exit 2) naming no mapping
    line: it is the mapping's (exit 3), naming file:line: output.format, with the
    closest known format, wherever the mapping's format is looked up."""
    m, (line,) = mapping_copy(tmp_path, JSON_MAPPING, ("format: pes-ormc", "format: pes-ormcc"),
                              name="m.yaml")
    data = ["-i", EXAMPLES / "school-export.json", "--date", RUN_DATE]
    args = {"check-mapping": ["check-mapping", m],
            "export": ["export", "-m", m, *data, "-o", tmp_path / "out"],
            "dry-run": ["export", "-m", m, *data, "--dry-run"],
            "preview": ["preview", "-m", m, *data],
            "set-start": ["numbering", "set-start", "--mapping", m, "--start", "5"]}[command]
    r = _run(*args)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert "unknown output format 'pes-ormcc': did you mean 'pes-ormc'?" in r.stderr
    assert f"[mapping {m}:{line}: output.format] (rule mapping.format)" in r.stderr, r.stderr
    assert "pes-titres" in r.stderr  # the known ones are listed
    assert not (tmp_path / "out").exists()


def test_an_unknown_format_typed_on_the_command_line_stays_a_usage_error(tmp_path):
    r = _run("new-mapping", "Commune de Y", "--format", "pes-ormcc")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "unknown output format 'pes-ormcc': did you mean 'pes-ormc'?" in r.stderr


def test_new_mapping_never_overwrites_a_mapping(tmp_path):
    """A mapping filled by hand, named again by mistake: refused, left as it was."""
    out = tmp_path / "m.yaml"
    out.write_text("# filled by hand\n", encoding="utf-8")
    r = _run("new-mapping", "Commune de Y", "--format", "pes-ormc", "--out", out)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"{out} already exists; pesgen never overwrites a mapping" in r.stderr, r.stderr
    assert out.read_text(encoding="utf-8") == "# filled by hand\n"


def test_check_layout_refuses_a_file_to_validate_that_is_not_there(tmp_path):
    layout = ROOT / "templates" / "bl-emagnus" / "wtamc001.layout.yaml"
    r = _run("check-layout", layout, tmp_path / "absent.txt")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert f"error: {tmp_path / 'absent.txt'}: no such file" in r.stderr, r.stderr


# ---------------------------------------------------------------- validate


def test_validate_good_file(example_xml):
    r = _run("validate", example_xml)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == (f"{example_xml}: valid as pes-ormc (TypFic PESORMC): "
                                "pesgen XSD pes-ormc/pes-ormc.xsd + bordereau rules")


@pytest.mark.parametrize("old, new, rule, says", [
    ('<NbrPce V="11"/>', '<NbrPce V="10"/>', "pes.nbr-pce",
     "NbrPce is 10, the bordereau has 11 pieces"),
    ('<MtBordHt V="2527.25"/>', '<MtBordHt V="2527.26"/>', "pes.mt-bord-ht",
     "MtBordHt is 2527.26"),
    ('<TypBord V="06"/>', '<TypBord V="6"/>', "xsd.pesgen", "TypBord"),
    # its Latin-1 bytes declared UTF-8: not readable as declared (was exit 2, no line)
    ('encoding="ISO-8859-1"', 'encoding="UTF-8"', "xml.pesgen",
     "not well-formed: Invalid bytes in character encoding"),
    # the root never closed (was valid: lxml's validating iterparse said nothing)
    ("</n:PES_Aller>", "", "xml.pesgen", "not well-formed: Premature end of data"),
])
def test_validate_tampered_file_exit_6(tmp_path, example_xml, old, new, rule, says):
    raw = example_xml.read_bytes()
    assert raw.count(old.encode()) == 1
    tampered = tmp_path / XML_NAME
    tampered.write_bytes(raw.replace(old.encode(), new.encode()))
    r = _run("validate", tampered)
    assert r.exit_code == ExitCode.OUTPUT == 6
    assert r.stdout == ""
    problems = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    hits = [ln for ln in problems if ln.endswith(f"(rule {rule})")]
    assert hits, r.stderr
    assert says in hits[0]
    assert XML_NAME in hits[0]  # names the file (and line)


@pytest.mark.parametrize("old, new, says", [
    ("</n:PES_Aller>", "", "not well-formed: Premature end of data"),
    ('<TypBord V="06"/>', '<TypBord V="06>', "not well-formed: "),
])
def test_a_file_not_well_formed_is_said_so_once_with_the_official_xsd(
        tmp_path, example_xml, official_xsd, old, new, says):
    """Both parsers stop at the same byte with the same message: the DGFiP package's
    pass is not run on a file that is not XML (it listed the same problem twice, as
    xml.pesgen and xml.dgfip). Its header does not name the DGFiP package among the
    checks either (it did: '(pesgen XSD … + bordereau rules + DGFiP XSD …)')."""
    raw = example_xml.read_bytes()
    assert raw.count(old.encode()) == 1
    tampered = tmp_path / XML_NAME
    tampered.write_bytes(raw.replace(old.encode(), new.encode()))
    r = _run("validate", tampered, "--official-xsd", official_xsd)
    assert r.exit_code == ExitCode.OUTPUT == 6
    problems = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert len(problems) == 1, r.stderr
    assert says in problems[0] and problems[0].endswith("(rule xml.pesgen)")
    assert r.stderr.splitlines()[-1] == "1 problem(s)."
    assert r.stderr.splitlines()[0] == (
        f"error: {tampered} is invalid against format pes-ormc (not well-formed XML: "
        "checked up to its first fault only, no XSD went through it): 1 problem(s)")


def test_validate_missing_file_exit_2(tmp_path):
    r = _run("validate", tmp_path / "absent.xml")
    assert r.exit_code == ExitCode.USAGE == 2
    assert r.stderr.strip() == f"error: {tmp_path / 'absent.xml'}: no such file"


def test_validate_not_xml_exit_6(tmp_path):
    junk = tmp_path / "junk.xml"
    junk.write_text("<PES_Aller><unclosed>", encoding="utf-8")
    r = _run("validate", junk)
    assert r.exit_code == ExitCode.OUTPUT
    assert "not well-formed" in r.stderr


@pytest.mark.parametrize("head", [b"", b"\xef\xbb\xbf", b"\r\n  "])
def test_validate_a_file_that_is_not_xml_says_so(tmp_path, head):
    """A CSV (a layout format's file) given to validate: not an XML parse error, but
    what it is and the command that checks it; exit 2, as for a file whose format
    pesgen cannot tell."""
    csv = tmp_path / "TITRES.csv"
    csv.write_bytes(head + "N° facture;Nom\r\nFA-1;Dupont\r\n".encode(
        "utf-8" if head else "cp1252"))
    r = _run("validate", csv)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr.strip() == (
        f"error: {csv} is not XML (its first character is 'N', not '<'): pesgen validate checks "
        "XML files; a CSV or fixed-width file is checked against its format's layout: "
        f"pesgen check-layout LAYOUT {csv} (formats with layouts: bl-emagnus; pesgen "
        "validate --format NAME names its layout)")
    assert "facture" not in r.stderr  # the file's first line (a record) is not quoted
    r = _run("validate", csv, "--format", "pes-ormc")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr.strip().endswith("pesgen validate checks XML files; format pes-ormc's "
                                     "files are XML")
    r = _run("validate", csv, "--format", "bl-emagnus")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "format bl-emagnus has no XSD; its files have layouts: pesgen check-layout " \
        in r.stderr


def test_validate_given_the_payment_references_csv_says_what_it_is(tmp_path, example_xml):
    """The references CSV an export writes beside its file is pesgen's own, no format's:
    validate says so and points to the PES file, not to check-layout and formats whose
    layouts have nothing to do with it (the onboard37 helper's walk)."""
    refs = example_xml.parent / REFS_NAME
    assert refs.is_file()
    r = _run("validate", refs)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert r.stderr.strip() == (
        f"error: {refs} is not XML (its first character is 'i', not '<'): pesgen validate "
        "checks XML files; this is the payment references file an export writes beside its "
        "PES file (NumDette, Per, Cle1, Cle2 per title, for the school software), checked by "
        "no layout: validate the PES file beside it")


# ---------------------------------------------------------------- formats, version


def test_formats_lists_pes_ormc():
    r = _run("formats")
    assert r.exit_code == 0
    rows = [ln.split() for ln in r.stdout.splitlines()]
    ormc = [row for row in rows if row and row[0] == "pes-ormc"]
    assert len(ormc) == 1
    assert ormc[0][1:3] == ["stable", "xml"]
    # the name column 16 wide at least, whatever the shipped names' lengths: the status
    # starts at the same column in every listing
    [line] = [ln for ln in r.stdout.splitlines() if ln.startswith("pes-ormc ")]
    assert line.startswith(f"{'pes-ormc':<16} {'stable':<13} {'xml':<5} "), line


def test_formats_shows_a_broken_bundle_and_fails(tmp_path):
    """Every bundle is listed, a broken one too; the command then fails (exit 3), so a
    CI job listing the bundles fails on a broken one (it exited 0)."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "pes-ormc", fmts / "misnamed")
    r = _run("formats", "--formats-dir", fmts)
    assert r.exit_code == ExitCode.MAPPING
    assert "error: 1 format bundle(s) BROKEN: misnamed" in r.stderr
    lines = r.stdout.splitlines()
    broken = [ln for ln in lines if ln.startswith("misnamed")]
    assert len(broken) == 1 and "BROKEN" in broken[0]
    assert any(ln.startswith("pes-ormc ") for ln in lines)


def test_version():
    from pesgen import __version__

    r = _run("version")
    assert r.exit_code == 0 and r.stdout.strip() == __version__


def test_version_option():
    """`pesgen --version`, what a newcomer types first, was a usage error ('No such
    option: --version', exit 2): it prints the version as `pesgen version` does."""
    from pesgen import __version__

    r = _run("--version")
    assert r.exit_code == 0 and r.stdout.strip() == __version__ and r.stderr == ""


# ---------------------------------------------------------------- the real executable


def _pesgen_command() -> list[str]:
    script = Path(sys.executable).with_name("pesgen")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from pesgen.cli import main; main()"]


def test_installed_command_exit_codes(tmp_path):
    env = {**os.environ, "PESGEN_DB": str(tmp_path / "state.sqlite3")}
    out = tmp_path / "out"
    ok = subprocess.run([*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
                         str(JSON_INPUT), "-o", str(out), "--date", RUN_DATE,
                         "--create-store"],
                        capture_output=True, text=True, env=env, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "titles: 11, total 2527.25" in ok.stdout
    assert _files(out) == [REFS_NAME, XML_NAME]
    # the same invoices again, same store: refused by the state store, nothing written
    again = subprocess.run([*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
                            str(JSON_INPUT), "-o", str(tmp_path / "again"), "--date",
                            RUN_DATE], capture_output=True, text=True, env=env, timeout=60,
                           check=False)
    assert again.returncode == ExitCode.STATE == 7, again.stderr
    assert "Traceback" not in again.stderr
    assert _files(tmp_path / "again") == []


def _export_named(folder: Path, cwd: Path, env: dict[str, str]) -> str:
    """The example exported from ``folder``'s m.yaml and x.json into ``folder/out`` (and
    a store there), run from ``cwd`` with ``env``: its standard error, after checking it
    was refused as a usage error and wrote nothing."""
    for name, source in (("m.yaml", JSON_MAPPING), ("x.json", JSON_INPUT)):
        shutil.copy(source, cwd / folder / name)
    r = subprocess.run([*_pesgen_command(), "export", "-m", str(folder / "m.yaml"),
                        "-i", str(folder / "x.json"), "-o", str(folder / "out"), "--date",
                        RUN_DATE, "--db", str(folder / "s.sqlite3"), "--create-store"],
                       cwd=cwd, capture_output=True, env=env, timeout=60, check=False)
    err = r.stderr.decode("utf-8")
    assert r.returncode == ExitCode.USAGE, err
    assert "Traceback" not in err
    assert sorted(p.name for p in (cwd / folder).iterdir()) == ["m.yaml", "x.json"]
    return err


def test_a_name_not_in_the_locale_s_encoding_is_refused_before_anything(tmp_path):
    """A mapping and export named in Latin-1 (from a Windows share) under a UTF-8
    locale, run from there too, or any accent when Python reads names as ASCII
    (LC_ALL=C PYTHONUTF8=0): the export stopped on a traceback as it recorded the run
    (UnicodeEncodeError: surrogates not allowed, exit 1). A usage error naming the
    name's bytes and what to do; nothing written, no store made."""
    utf8 = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}
    latin = tmp_path / os.fsdecode(b"dir\xe9")
    latin.mkdir()
    shown = tmp_path / "dir\\xe9"
    said = ("holds bytes that are not text in this locale's encoding (utf-8), and pesgen "
            "records and prints names as text: rename it (it was named in another "
            "encoding: Latin-1, Windows'); nothing was done")
    err = _export_named(latin, tmp_path, utf8)
    assert err == f"error: the argument '{shown}/m.yaml' {said}\n", err
    err = _export_named(Path("."), latin, utf8)  # relative names, from the folder so named
    assert err == f"error: the working directory '{shown}' {said}\n", err
    accented = tmp_path / "dossier é"
    accented.mkdir()
    ascii_ = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    err = _export_named(accented, tmp_path, ascii_)
    assert err == (f"error: the argument '{accented}/m.yaml' holds bytes that are not text "
                   "in this locale's encoding (ascii), and pesgen records and prints names "
                   "as text: run pesgen in a UTF-8 locale (LANG=C.UTF-8, or PYTHONUTF8=1); "
                   "nothing was done\n"), err
    # a path read from the environment as an option's (the lxml parser stopped on it)
    xsd = os.fsdecode(b"/srv/dgfip/sch\xe9mas")
    err = _export_named(Path("."), tmp_path / "dossier é", {**utf8, "PESGEN_OFFICIAL_XSD": xsd})
    assert err == f"error: PESGEN_OFFICIAL_XSD '/srv/dgfip/sch\\xe9mas' {said}\n", err
    # --help and version read no path: they answer from such a folder, with such a variable
    for args in (["version"], ["--help"], ["export", "--help"]):
        r = subprocess.run([*_pesgen_command(), *args], cwd=latin, capture_output=True,
                           env={**utf8, "PESGEN_OFFICIAL_XSD": xsd}, timeout=60, check=False)
        assert r.returncode == 0 and r.stderr == b"", (args, r.stderr)
        assert r.stdout, args


def test_a_store_url_refused_for_its_bytes_keeps_its_password_masked(tmp_path):
    """A store's URL holding a byte that is not text (a database named in Latin-1) is
    refused as any such word, its password masked, as pesgen's every message shows a
    URL: the refusal echoed ``postgresql://u:secret@h/…`` to the terminal (and a log)."""
    utf8 = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"}
    utf8.pop("PESGEN_DB", None)
    url = os.fsdecode(b"postgresql://u:secret@h/caf\xe9")
    in_password = os.fsdecode(b"postgresql://u:s\xe9cret@h/db")
    said = "holds bytes that are not text in this locale's encoding (utf-8)"
    for args, env, shown in (
            (["runs", "list", "--db", url], utf8, "the argument 'postgresql://u:***@h/caf\\xe9'"),
            (["runs", "list", f"--db={url}"], utf8,
             "the argument '--db=postgresql://u:***@h/caf\\xe9'"),
            (["store", "copy", "--from", "a.sqlite3", "--to", url + "?password=secret"], utf8,
             "the argument 'postgresql://u:***@h/caf\\xe9?password=***'"),
            (["runs", "list"], {**utf8, "PESGEN_DB": url}, "PESGEN_DB 'postgresql://u:***@h/caf\\xe9'"),
            (["runs", "list", "--db", in_password], utf8,
             "the argument 'postgresql://u:***@h/db (in what is masked there)'")):
        r = subprocess.run([*_pesgen_command(), *args], cwd=tmp_path, capture_output=True,
                           env=env, timeout=60, check=False)
        err = r.stderr.decode("utf-8")
        assert r.returncode == ExitCode.USAGE, err
        assert err.startswith(f"error: {shown} {said}"), err
        assert "secret" not in err and "s\\xe9cret" not in err, err
    assert _files(tmp_path) == []


def test_store_copy_takes_sqlite_files_by_their_paths(tmp_path, monkeypatch):
    """--from and --to as --db takes them: a path is a SQLite file (relative to the
    working directory), not a URL to refuse."""
    from pesgen.store import Store

    assert _export(tmp_path / "out", "--db", tmp_path / "a.sqlite3",
                   "--create-store").exit_code == 0
    monkeypatch.chdir(tmp_path)
    r = _run("store", "copy", "--from", "a.sqlite3", "--to", "b.sqlite3")
    assert r.exit_code == 0, r.output
    assert "runs: 1 row(s)" in r.stdout.splitlines(), r.stdout
    [run] = Store(f"sqlite:///{tmp_path / 'b.sqlite3'}").list_runs()
    assert run.titles == 11


def test_a_usage_error_quoting_a_store_url_keeps_its_password_masked():
    """click's usage errors quote the command line: a URL given where no option takes
    it (``--to`` forgotten, a command without ``--db``) kept its password in them."""
    for args in (["version", "postgresql://u:secret@h/db"],
                 ["store", "copy", "--from", "a.sqlite3", "--to", "b",
                  "postgresql://u:s cret@h/db"],
                 ["runs", "list", "--db=x", "postgresql://u:s'cret@h/db?password=secret"]):
        r = _run(*args)
        assert r.exit_code == ExitCode.USAGE, r.output
        assert "unexpected extra argument" in r.output, r.output
        assert "u:***@h/db" in r.output and "cret" not in r.output, r.output


def test_sigterm_while_the_files_are_written_leaves_nothing_and_records_nothing(tmp_path):
    """SIGTERM unwinds like Ctrl-C: the temporary files go, the transaction rolls back."""
    source = generated_input(tmp_path / "in.json", 6000)
    out, db = tmp_path / "out", tmp_path / "store.sqlite3"
    proc = subprocess.Popen([*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
                             str(source), "-o", str(out), "--db", str(db), "--date", RUN_DATE,
                             "--create-store"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if out.is_dir() and any(p.suffix == ".part" for p in out.iterdir()):
            break
        time.sleep(0.002)
    if proc.poll() is not None:
        pytest.skip("the export ended before its files were being written")
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err
    # said, not a silent end (typer turns the interrupt into exit 130 and prints nothing)
    assert err.strip().endswith("interrupted: nothing written, no number used\n"
                                f"removed the state store {db} this export created: nothing "
                                "was recorded in it"), err
    assert not out.exists()  # nothing written, not even the folder the export made
    # nor the store it created: nothing was recorded in it
    assert _files(tmp_path) == ["in.json"]


def test_an_output_folder_the_system_refuses_is_a_clean_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    r = subprocess.run([*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
                        str(EXAMPLES / "school-export.json"), "-o", str(blocker / "out"),
                        "--db", str(tmp_path / "store.sqlite3"), "--create-store"],
                       capture_output=True, text=True)
    assert r.returncode == ExitCode.USAGE, r.stderr
    assert "Traceback" not in r.stderr
    assert f"error: Not a directory ({blocker / 'out'})" in r.stderr


def test_a_reader_that_closes_the_pipe_early_does_not_fail_a_committed_run(tmp_path):
    """`pesgen export … | head -1`: the run is committed before the summary is printed, so
    a closed standard output is not a failure (click alone would exit 1)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write breaks
    db = tmp_path / "store.sqlite3"
    try:
        r = subprocess.run([*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
                            str(EXAMPLES / "school-export.json"), "-o", str(tmp_path / "out"),
                            "--db", str(db), "--date", RUN_DATE, "--create-store"],
                           stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "Broken pipe" not in r.stderr
    listed = subprocess.run([*_pesgen_command(), "runs", "list", "--db", str(db)],
                            capture_output=True, text=True)
    assert listed.returncode == 0
    assert " committed " in listed.stdout and "11 title(s)" in listed.stdout
    # a failing command keeps its own exit code and its message on standard error
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        again = subprocess.run([*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
                                str(EXAMPLES / "school-export.json"), "-o",
                                str(tmp_path / "again"), "--db", str(db), "--date", RUN_DATE],
                               stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert again.returncode == ExitCode.STATE, again.stderr
    assert "error:" in again.stderr and "Traceback" not in again.stderr


def test_a_refused_run_keeps_its_exit_code_when_its_message_cannot_be_read(tmp_path):
    """`pesgen export … 2>&1 | head -1` with the reader gone: the refusal's message
    breaks the pipe on standard error too; the exit code is still the refusal's (7 for
    the store's), not 1, and nothing is left half-printed as a traceback."""
    db = tmp_path / "store.sqlite3"
    args = [*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
            str(EXAMPLES / "school-export.json"), "--db", str(db), "--date", RUN_DATE,
            "--create-store"]
    first = subprocess.run([*args, "-o", str(tmp_path / "out")], capture_output=True,
                           text=True)
    assert first.returncode == 0, first.stderr
    for command, code in ((args + ["-o", str(tmp_path / "again")], ExitCode.STATE),
                          ([*_pesgen_command(), "export", "--nope"], ExitCode.USAGE)):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            r = subprocess.run(command, stdout=write_end, stderr=write_end)
        finally:
            os.close(write_end)
        assert r.returncode == code, command


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_a_terminal_that_cannot_show_a_character_does_not_fail_a_committed_run(tmp_path,
                                                                               encoding):
    """A summary printed to an 8-bit terminal or file (a server's fr_FR.ISO-8859-1, a
    Windows redirection's cp1252): '…' and '×' are outside Latin-1. The run was committed
    before its summary was printed: it ended in a UnicodeEncodeError traceback, exit 1."""
    db = tmp_path / "store.sqlite3"
    r = subprocess.run([*_pesgen_command(), "export", "-m", str(JSON_MAPPING), "-i",
                        str(EXAMPLES / "school-export.json"), "-o", str(tmp_path / "out"),
                        "--db", str(db), "--date", RUN_DATE, "--create-store"],
                       capture_output=True, env={**os.environ, "PYTHONIOENCODING": encoding,
                                                 "PYTHONUTF8": "0"})
    assert r.returncode == 0, r.stderr.decode("latin-1")
    assert b"Traceback" not in r.stderr
    said = r.stdout.decode(encoding)
    assert "titles: 11, total 2527.25" in said
    assert ("sha256 " in said and "\\u2026" in said) if encoding == "latin-1" else True


def _interrupt_as_files_are_put_in_place(monkeypatch) -> None:
    import pesgen.runs as runs_module

    real_commit = runs_module.commit

    def interrupted_commit(temps):
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs at once, in this thread
        return real_commit(temps)

    monkeypatch.setattr(runs_module, "commit", interrupted_commit)


def _interrupt_twice_after_the_database_commit(monkeypatch) -> None:
    """As the store's transaction closes, before the files are put in place: held only
    from the publishing on, the first interrupt ended 7 and threw the files away, and a
    second one ended 130, "nothing written", over a recorded run."""
    from contextlib import contextmanager

    from pesgen.store import Store

    real_transaction, real_record = Store.transaction, Store.record_run
    recording: list[bool] = []  # the run's transaction, not a new store's migrations'

    def record_run(self, *args, **kwargs):
        recording.append(True)
        return real_record(self, *args, **kwargs)

    @contextmanager
    def interrupted_after_commit(self):
        with real_transaction(self) as conn:
            yield conn
        if recording:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Store, "record_run", record_run)
    monkeypatch.setattr(Store, "transaction", interrupted_after_commit)


@pytest.mark.parametrize("interrupt", [_interrupt_as_files_are_put_in_place,
                                       _interrupt_twice_after_the_database_commit])
def test_an_interrupt_once_the_run_is_recorded_does_not_stop_the_command(tmp_path,
                                                                         monkeypatch,
                                                                         interrupt):
    """From just before the commit the run stands: Ctrl-C no longer stops the command,
    which puts the files in place, prints its summary whole and ends 0, as the run did
    (not 130, which says nothing was exported)."""
    interrupt(monkeypatch)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        r = _export(tmp_path / "out")
        # the command puts the handlers back as it ends: Ctrl-C works again after it (in
        # a process that goes on, as this one does)
        assert {sig: signal.getsignal(sig) for sig in saved} == saved
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert r.exit_code == 0, r.output
    assert "titles: 11, total 2527.25" in r.stdout
    assert "interrupt received once the run was recorded: the run stands" in r.stderr
    assert _files(tmp_path / "out") == [REFS_NAME, XML_NAME]


def test_the_interrupts_an_export_holds_belong_to_its_invocation(capsys):
    """What an export holds (the signals received from its commit on, the handlers it
    replaced) belongs to that command's invocation: it puts the handlers back and says
    what it held; another invocation starts with nothing held."""
    from pesgen.cli import _Interrupts

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    first = _Interrupts()
    try:
        first.hold()
        assert signal.getsignal(signal.SIGINT) != saved[signal.SIGINT]
        os.kill(os.getpid(), signal.SIGINT)  # held: no KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGINT)
    finally:
        first.release()
    assert {sig: signal.getsignal(sig) for sig in saved} == saved
    assert first.received == [signal.SIGINT, signal.SIGINT]
    first.say_held()
    assert "interrupt received once the run was recorded" in capsys.readouterr().err
    second = _Interrupts()
    second.say_held()
    assert second.received == [] and capsys.readouterr().err == ""


# pesgen's own process (``main``) whose command sends itself ``sig`` twice right after
# it calls ``where`` (a function of pesgen.cli, or a method of one of its classes), and
# says so on standard output. ``_Interrupts.release``: as it puts the signal handlers
# back, the moment the process has still a few tenths of a second to live (click's
# teardown, the interpreter's shutdown), its run committed, its files in place and its
# summary printed; ``_Interrupts.hold``: as the command starts holding them (an export's
# commit, regenerate's placing); ``_say_left_by_others``: as it prints its summary
_SIGNALLED_CHILD = """
import os, signal, sys
# Ctrl-C as a terminal's foreground process has it (a test run started in the background
# by a shell without job control passes SIGINT on ignored)
signal.signal(signal.SIGINT, signal.default_int_handler)
import pesgen.cli
from pesgen.cli import main

sig, where = int(sys.argv[1]), sys.argv[2].split(".")
owner = pesgen.cli
for name in where[:-1]:
    owner = getattr(owner, name)
real = getattr(owner, where[-1])

def then_signalled(*args, **kwargs):
    done = real(*args, **kwargs)
    print("signals sent", flush=True)
    os.kill(os.getpid(), sig)
    os.kill(os.getpid(), sig)
    return done

setattr(owner, where[-1], then_signalled)
sys.argv = ["pesgen", *sys.argv[3:]]
main()
"""


def _signalled(sig: int, where: str, *args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _SIGNALLED_CHILD, str(int(sig)), where,
                           *map(str, args)], capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_as_a_committed_export_ends_does_not_change_its_exit(tmp_path, sig):
    """The handlers were put back as the export command ended (`finally:
    interrupts.release()`) and the process lived 0.25-0.45 s more: Ctrl-C or SIGTERM
    there ended it 130 (or killed it) though the run was committed, its files in place
    and its summary printed whole. Once held, the signals stay ignored until the process
    exits 0."""
    db = tmp_path / "store.sqlite3"
    out = tmp_path / "out"
    r = _signalled(sig, "_Interrupts.release", "export", "-m", JSON_MAPPING, "-i", JSON_INPUT,
                   "-o", out, "--date", RUN_DATE, "--db", db, "--create-store")
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert "titles: 11, total 2527.25" in r.stdout and "signals sent" in r.stdout
    assert "Traceback" not in r.stderr and "interrupted" not in r.stderr
    assert _files(out) == [REFS_NAME, XML_NAME]
    # a command that held nothing (refused before its commit) is stopped as ever
    again = _signalled(sig, "_Interrupts.release", "export", "-m", JSON_MAPPING, "-i",
                       JSON_INPUT, "-o", tmp_path / "again", "--date", RUN_DATE, "--db", db)
    assert again.returncode in (130, -sig), again.stderr
    assert "already exported" in again.stderr


@pytest.mark.parametrize("when", ["_Interrupts.hold", "_say_left_by_others",
                                  "_Interrupts.release"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_once_regenerate_puts_its_files_in_place_does_not_stop_it(
        tmp_path, sig, when):
    """regenerate interrupted once its files were placed exited 130, silently, with its
    files in place. From their placing on it holds Ctrl-C and SIGTERM as export does
    from its commit: the files are placed, its output printed whole, exit 0."""
    db = tmp_path / "store.sqlite3"
    ok = _run("export", "-m", JSON_MAPPING, "-i", JSON_INPUT, "-o", tmp_path / "out",
              "--date", RUN_DATE, "--db", db, "--create-store")
    assert ok.exit_code == 0, ok.output
    run_id = re.search(r"run ([0-9a-f-]{36})", ok.stdout).group(1)
    regen = tmp_path / "regen"
    r = _signalled(sig, when, "regenerate", run_id, "-o", regen, "--db", db)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert "identical to the recorded files (sha256)" in r.stdout
    assert "signals sent" in r.stdout
    assert _files(regen) == [REFS_NAME, XML_NAME]
    held = ("interrupt received once the files were being put in place: they are in place "
            "(the output above is whole)\n")
    assert r.stderr == ("" if when == "_Interrupts.release" else held), r.stderr


def test_regenerate_interrupted_before_its_files_are_placed_says_so(tmp_path, monkeypatch):
    """Exit 130 as before, but said: nothing written (it was silent)."""
    import pesgen.runs as runs_module

    db = tmp_path / "store.sqlite3"
    ok = _run("export", "-m", JSON_MAPPING, "-i", JSON_INPUT, "-o", tmp_path / "out",
              "--date", RUN_DATE, "--db", db, "--create-store")
    run_id = re.search(r"run ([0-9a-f-]{36})", ok.stdout).group(1)
    real = runs_module._rebuild_files

    def interrupted(*args, **kwargs):
        done = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs at once, in this thread
        return done  # (not reached: the KeyboardInterrupt)

    monkeypatch.setattr(runs_module, "_rebuild_files", interrupted)
    # Ctrl-C as a terminal's foreground process has it (a test run started in the
    # background by a shell without job control inherits SIGINT ignored)
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        r = _run("regenerate", run_id, "-o", tmp_path / "regen", "--db", db)
    finally:
        signal.signal(signal.SIGINT, saved)
    assert r.exit_code == 130
    assert r.stderr == "interrupted: nothing written\n"
    assert not (tmp_path / "regen").exists()


def test_an_interrupt_while_pesgen_loads_is_said(tmp_path, monkeypatch):
    """Ctrl-C in the first second or so (pesgen.runs and what it imports, SQLAlchemy,
    lxml…, loading before the export's handling) exited 130 with no message."""

    class Loading:
        def __getattr__(self, name):
            raise KeyboardInterrupt

    monkeypatch.setitem(sys.modules, "pesgen.runs", Loading())
    r = _export(tmp_path / "out", "--db", tmp_path / "store.sqlite3", "--create-store")
    assert r.exit_code == 130
    assert r.stderr == "interrupted: nothing written, no number used\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "store.sqlite3").exists()


# A KeyboardInterrupt (Ctrl-C) or a SIGTERM raised at a named point of pesgen's start,
# in a process of its own as the console script runs it: typer replaced by a module
# whose first attribute read interrupts (while pesgen.cli is imported), or a function
# of the command line made to (once typer parses the command, before the command's own
# handling). No timing: the point is where the interrupt lands.
_LOADING = """
import os, signal, sys, time, types

class Interrupting(types.ModuleType):
    def __getattr__(self, name):
        if {term}:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        raise KeyboardInterrupt

sys.modules["typer"] = Interrupting("typer")
sys.argv = ["pesgen"] + {args!r}
from pesgen._entry import main
main()
"""
_PARSED = """
import sys
import pesgen.cli, pesgen.formats

def interrupting(*args, **kwargs):
    raise KeyboardInterrupt

pesgen.cli._Interrupts.__init__ = interrupting  # the export's first line
pesgen.formats.list_formats = interrupting  # what `pesgen formats` calls first
sys.argv = ["pesgen"] + {args!r}
pesgen.cli.main()
"""


@pytest.mark.parametrize("term", [False, True])
@pytest.mark.parametrize("args, said", [
    (["export", "-m", "m.yaml", "-i", "in.json", "-o", "out"],
     "interrupted: nothing written, no number used"),
    (["regenerate", "RUN", "--out", "out"], "interrupted: nothing written"),
    (["runs", "list"], "interrupted"),
])
def test_an_interrupt_while_the_command_line_loads_is_said(tmp_path, term, args, said):
    """Ctrl-C while `import pesgen.cli` ran (typer, rich, the commands) printed a
    traceback; SIGTERM then, before main() handled it, ended the process silently by
    the signal. The console script's first code (pesgen._entry) handles both."""
    r = subprocess.run([sys.executable, "-c", _LOADING.format(term=term, args=args)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (r.returncode, r.stderr) == (130, said + "\n"), r.stderr
    assert r.stdout == "" and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stderr", ["closed", "reader gone"])
def test_an_interrupt_while_loading_exits_130_whatever_standard_error_is(tmp_path, stderr):
    """The reviewer's case: with standard error closed (2>&-) or its reader gone, the
    line could not be written and the process ended 1 (AttributeError, BrokenPipeError)."""
    code = _LOADING.format(term=False, args=["export"])
    if stderr == "closed":
        # the child's descriptor 2 closed before it starts: sys.stderr is None
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, timeout=60,
                           preexec_fn=lambda: os.close(2))
    else:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            r = subprocess.run([sys.executable, "-c", code], stderr=write_end, cwd=tmp_path,
                               timeout=60)
        finally:
            os.close(write_end)
    assert r.returncode == 130


@pytest.mark.parametrize("args, said", [
    (["export", "-m", "m.yaml", "-i", "in.json", "-o", "out"],
     "interrupted: nothing written, no number used"),
    (["formats"], "interrupted"),
])
def test_an_interrupt_before_the_command_s_own_handling_is_said(tmp_path, args, said):
    """Ctrl-C once typer had parsed the command line, before the command's own handling
    (or in a command that has none): typer's exit 130, with nothing said."""
    r = subprocess.run([sys.executable, "-c", _PARSED.format(args=args)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert (r.returncode, r.stderr) == (130, said + "\n"), r.stderr
    assert list(tmp_path.iterdir()) == []


def test_python_m_pesgen_and_the_console_script_start_at_the_same_entry():
    import tomllib

    from .conftest import ROOT

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["scripts"]
    assert scripts == {"pesgen": "pesgen._entry:main"}
    assert "from ._entry import main" in (ROOT / "pesgen" / "__main__.py").read_text(
        encoding="utf-8")


def _without_civility_table(folder: Path) -> tuple[Path, Path]:
    """The example mapping without codes.civility, and the example without its Mlle
    (Hélios refuses Mademoiselle, table or not)."""
    text = JSON_MAPPING.read_text(encoding="utf-8")
    block = '  civility:\n    "Mme": MME\n    "M.": M\n    "M": M\n'
    start = text.index(block)
    end = text.index("  countries:", start)
    mapping = folder / "no-civility.yaml"
    mapping.write_text(text[:start] + text[end:], encoding="utf-8")
    data = json.loads(JSON_INPUT.read_text(encoding="utf-8"))
    for inv in data["invoices"]:
        if inv["payer"].get("title") == "Mlle":
            inv["payer"]["title"] = "Mme"
    source = folder / "in.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return mapping, source


def test_civilities_sent_as_written_without_a_table_are_one_note_of_the_run(tmp_path):
    """Without codes.civility the civility goes out as exported (the DGFiP's list is
    unconfirmed): the run says so once, with the values, in the summary."""
    mapping, source = _without_civility_table(tmp_path)
    result = export(mapping, source, tmp_path / "lib", date.fromisoformat(RUN_DATE))
    notes = [n for n in result.notes if n.policy == "civility_table"]
    assert [(n.invoice, n.detail) for n in notes] == [
        ("*", "no codes.civility table: 2 civility value(s) sent as written: Mme, M.")]
    r = _export(tmp_path / "out", "--db", tmp_path / "state.sqlite3", "--create-store",
                mapping=mapping, input_path=source)
    assert r.exit_code == 0, r.output
    assert "  - *: civility_table: no codes.civility table: 2 civility value(s) sent as " \
        "written: Mme, M.\n" in r.stdout
    shown = _run("preview", "-m", mapping, "-i", source, "--date", RUN_DATE)
    assert "\npolicy civility_table (run): no codes.civility table: 2 civility value(s) sent " \
        "as written: Mme, M.\n" in shown.stdout
    # Mademoiselle is refused (pes.civility), so not listed as sent
    refused = _run("preview", "-m", mapping, "-i", JSON_INPUT, "--limit", "5", "--date",
                   RUN_DATE)
    # (said of the civility as exported, naming its binding)
    assert "civility 'Mlle' (Mademoiselle) is rejected by Hélios: send it as Madame, with " \
        "a codes.civility table ('Mlle': MME, and an entry for each civility the export " \
        "holds) [mapping " in refused.stdout
    assert "sent as written: Mme, M.\n" in refused.stdout
    # with the table, no such note
    plain = export(JSON_MAPPING, JSON_INPUT, tmp_path / "plain", date.fromisoformat(RUN_DATE))
    assert not [n for n in plain.notes if n.policy == "civility_table"]


def test_an_export_run_from_another_thread_holds_no_signal(tmp_path):
    """Python runs signal handlers in the main thread only: an export called from a worker
    thread (a service) has none to hold, and must not fail once its run is recorded."""
    import threading

    results = []
    worker = threading.Thread(target=lambda: results.append(_export(tmp_path / "out")))
    worker.start()
    worker.join(120)
    [r] = results
    assert r.exit_code == 0, r.output
    assert _files(tmp_path / "out") == [REFS_NAME, XML_NAME]


@pytest.mark.parametrize("args", [
    ("validate", "postgresql://pesgen:s3cr3t@db.example/pesgen"),
    ("payfip", "payments", "--since", "postgresql://pesgen:s3cr3t@db.example/pesgen"),
])
def test_a_store_url_given_where_a_file_or_a_date_is_expected_keeps_its_password_masked(
        args, tmp_path):
    """An error quoting a URL (a store URL given as the file to validate: pathlib folded
    its '//' into '/'; or as a date) printed its password whole."""
    r = run_cli(*args, "--db", str(tmp_path / "s.sqlite3")) if args[0] == "payfip" else \
        run_cli(*args)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "s3cr3t" not in r.output, r.output
    assert "pesgen:***@db.example" in r.output, r.output


def test_masked_urls_keeps_what_closes_round_a_url():
    """The text's punctuation after a URL (a quote, a colon, a bracket) stays as written;
    only the secrets are masked, with or without the scheme's '//'."""
    from pesgen._display import masked_urls

    assert masked_urls("got 'postgresql://u:pw@h/db'") == "got 'postgresql://u:***@h/db'"
    assert masked_urls("postgresql:/u:pw@h/db: no such file") == \
        "postgresql:/u:***@h/db: no such file"
    assert masked_urls("x?password=***: cannot") == "x?password=***: cannot"
    assert masked_urls("postgresql://h/db?password=k3y: cannot") == \
        "postgresql://h/db?password=***: cannot"
    assert masked_urls("see https://example.org/a (docs).") == \
        "see https://example.org/a (docs)."


_SECRET_URL = "postgresql://pesgen:s3cr3t@db.example/pesgen"


@pytest.mark.parametrize("args, code", [
    (("check-mapping", _SECRET_URL, "--format", "json"), ExitCode.MAPPING),
    (("check-format", _SECRET_URL, "--format", "json"), ExitCode.USAGE),
    (("formats", "--formats-dir", _SECRET_URL, "--format", "json"), ExitCode.USAGE),
])
def test_a_json_report_quoting_a_store_url_keeps_its_password_masked(args, code):
    """A URL given where a mapping, a bundle or a folder was expected: the JSON report
    (its result's name, its error) quoted the password whole, as the text output did
    before its errors were masked."""
    r = run_cli(*args)
    assert r.exit_code == code, r.output
    assert "s3cr3t" not in r.stdout, r.stdout
    assert "pesgen:***@db.example" in r.stdout, r.stdout
    json.loads(r.stdout)  # still one JSON document


def test_masked_json_masks_the_urls_of_every_string_and_changes_nothing_else():
    """Each string of a report, however deep, keys kept; an invoice number, a path, a
    URL without a password, a number or null are as they were."""
    from pesgen._display import masked_json

    kept = {"invoice": "FA-2026-00103", "file": "/srv/exports/PESORMC_2026.xml",
            "url": "https://example.org/a:b", "user": "postgresql://pesgen@db/pesgen",
            "amount": "12.50", "n": 3, "ok": True, "none": None}
    assert masked_json(kept) == kept
    data = {"a": [{"b": ("x", f"see {_SECRET_URL}.")}], "c": f"{_SECRET_URL}?sslpassword=k",
            _SECRET_URL: 1}
    assert masked_json(data) == {
        "a": [{"b": ["x", "see postgresql://pesgen:***@db.example/pesgen."]}],
        "c": "postgresql://pesgen:***@db.example/pesgen?sslpassword=***", _SECRET_URL: 1}


_WRITE_SYSCALL = {"x86_64": 1, "aarch64": 64}.get(os.uname().machine)


@pytest.mark.skipif(_WRITE_SYSCALL is None or not Path("/proc/self/task").is_dir(),
                    reason="needs Linux's /proc to see the write blocked")
# a line (and its newline) of the stream's buffer's size exactly: Python 3.13 writes it
# past the buffer, as a longer one
@pytest.mark.parametrize("xs", [4096 + 100, io.DEFAULT_BUFFER_SIZE - 101, 5 * 4096])
def test_a_line_partly_written_as_a_signal_lands_is_not_written_again(tmp_path, xs):
    """Ctrl-C or SIGTERM (a KeyboardInterrupt) landing once a write to standard output or
    error has written bytes: the stream kept them as unwritten and wrote them again with
    the next line ("interrupted: …" after the line the signal cut, a PayFiP link printed
    twice). Here the pipe has room for a part of the line only: the write blocks after
    that part, and the signal ends it with that part written. A line longer than the
    stream's buffer (8 KiB: a long refusal, a JSON report) went past the buffer, and
    what the signal left of it unwritten was lost: each byte is written once, in order."""
    import fcntl
    import threading

    from pesgen.cli import _pipe_safe_text

    read_end, write_end = os.pipe()
    page = 4096
    fcntl.fcntl(write_end, 1031, page)  # F_SETPIPE_SZ: one page, the least
    size = fcntl.fcntl(write_end, 1032)  # F_GETPIPE_SZ
    os.set_blocking(write_end, False)
    filled = 0
    try:
        while True:
            filled += os.write(write_end, b"f" * page)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    os.read(read_end, page)  # room for one page of the line, not the rest
    filled -= page
    main = threading.get_native_id()
    line = "x" * xs + "y" * 100

    def interrupt_when_blocked() -> None:
        while True:
            state = Path(f"/proc/self/task/{main}/stat").read_text().rsplit(")", 1)[1]
            call = Path(f"/proc/self/task/{main}/syscall").read_text().split()[0]
            if state.split()[0] == "S" and call == str(_WRITE_SYSCALL):
                break
            time.sleep(0.01)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    out = _pipe_safe_text(write_end, "utf-8", "strict", stderr=False)
    sender = threading.Thread(target=interrupt_when_blocked)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        out.write(line + "\n")  # a line and its newline in one write, as click.echo's
    sender.join()
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.extend(iter(
        lambda: os.read(read_end, 65536), b"")))
    reader.start()
    print("interrupted", file=out)
    out.flush()
    os.close(write_end)
    reader.join()
    os.close(read_end)
    said = b"".join(read)[max(filled, 0):]
    assert size == page and said.decode() == line + "\ninterrupted\n", said[:200]


def test_a_line_longer_than_the_buffer_to_a_closed_pipe_goes_to_the_null_device():
    """The reader gone partway through a line longer than the stream's buffer: its rest,
    and all that follows, go to the null device, without an error."""
    import threading

    from pesgen.cli import _pipe_safe_text

    read_end, write_end = os.pipe()
    os.set_blocking(write_end, True)
    reader = threading.Thread(target=lambda: (os.read(read_end, 100), os.close(read_end)))
    reader.start()
    out = _pipe_safe_text(write_end, "utf-8", "strict", stderr=False)
    try:
        out.write("x" * 200_000 + "\n")
        out.write("next\n")
        out.flush()
    finally:
        reader.join()
        os.close(write_end)
    assert out.buffer.closed_by_reader
