"""`pesgen export --format json`: the summary, or the refusal with every problem, as one
JSON document on standard output (for the school software calling pesgen after billing,
or CI), with the text output's exit codes. The JSON says what the text says: the same
files, titles, left-out invoices and policy notes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pesgen.errors import ExitCode

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, example_with_two_input_errors, run_cli
from .mapping_support import mapping_copy

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"


def _export(tmp_path: Path, store: str, *extra: str | Path, mapping: Path = MAPPING,
            input_path: Path = INPUT, out: str = "out"):
    return run_cli("export", "-m", mapping, "-i", input_path, "-o", tmp_path / out,
                   "--date", RUN_DATE, "--db", tmp_path / store, *extra)


def _report(result) -> dict:
    # standard output is the JSON document and nothing else
    return json.loads(result.stdout)


def test_the_summary_as_json_says_what_the_text_says(tmp_path):
    text = _export(tmp_path, "a.sqlite3", "--create-store", out="text")
    r = _export(tmp_path, "b.sqlite3", "--create-store", "--format", "json")
    assert text.exit_code == 0 and r.exit_code == 0, r.output
    assert r.stderr == ""
    report = _report(r)
    assert report["ok"] is True and report["exit_code"] == 0 and report["error"] is None
    assert report["command"] == "export" and report["dry_run"] is False
    assert report["format"] == "pes-ormc" and report["run_date"] == RUN_DATE
    assert report["store"] == {"url": str(tmp_path / "b.sqlite3"), "created": True}
    [f] = report["files"]
    written = Path(f["path"])
    assert written.parent == tmp_path / "out"
    assert f["sha256"] == hashlib.sha256(written.read_bytes()).hexdigest()
    assert (f["id_bord"], f["titles"], f["total"]) == (1, 11, "2527.25")
    # the same bytes as the text export's, into another store
    assert written.read_bytes() == (tmp_path / "text" / written.name).read_bytes()
    assert report["titles"] == 11 and report["total"] == "2527.25"
    assert [Path(p).name for p in report["references"]] == [
        written.name.replace(".xml", ".references.csv")]
    [left] = report["left_out"]
    assert left["origin"].endswith("school-export.json:$.invoices[5]")
    assert {**left, "origin": None} == {"invoice": "FA-2026-00106", "origin": None,
                                        "reason": "total is 0.00", "policy": "zero_total",
                                        "holder": None}
    # the text's run id is another run's: the rest of its summary is the JSON's
    lines = text.stdout.splitlines()
    applied = next(ln for ln in lines if ln.startswith("policies applied: "))
    assert applied == "policies applied: " + ", ".join(
        f"{k} ×{v}" for k, v in report["policies"].items())
    listed = lines[lines.index(applied) + 1:]
    said = [f"  - {n['invoice']}: {n['policy']}: {n['detail']}" for n in report["notes"]]
    fields = report["transliterated"]
    said.append(f"  - *: transliterate: {sum(fields.values())} value(s) changed to the "
                "output's characters: " + ", ".join(f"{k} ×{v}" for k, v in fields.items()))
    # the first run's numbering note names its run and store (to cancel it, pasted):
    # the text's are the other export's
    text_run = next(ln.rsplit(", run ", 1)[1] for ln in lines if ", run " in ln)
    assert text_run != report["run"] and listed == [
        ln.replace(report["run"], text_run).replace("b.sqlite3", "a.sqlite3") for ln in said]
    # a note's origin is its invoice's input record
    netted = next(n for n in report["notes"] if n["policy"] == "negative_lines")
    assert netted["origin"] == left["origin"].replace("[5]", "[0]")
    shown = run_cli("runs", "show", report["run"], "--db", tmp_path / "b.sqlite3")
    assert shown.exit_code == 0 and report["run"] in shown.stdout


def test_a_dry_run_as_json_names_no_run_and_says_what_it_read(tmp_path):
    r = run_cli("export", "-m", MAPPING, "-i", INPUT, "--dry-run", "--date", RUN_DATE,
                "--db", tmp_path / "none.sqlite3", "--create-store", "--format", "json")
    assert r.exit_code == 0, r.output
    report = _report(r)
    assert report["dry_run"] is True and report["run"] is None
    assert report["store"] == {"url": str(tmp_path / "none.sqlite3"), "found": "none",
                               "pending_migrations": None}
    assert report["titles"] == 11 and report["files"][0]["id_bord"] == 1
    assert not (tmp_path / "none.sqlite3").exists()


def test_a_duplicate_run_is_refused_as_json_with_each_invoice(tmp_path):
    assert _export(tmp_path, "s.sqlite3", "--create-store").exit_code == 0
    r = _export(tmp_path, "s.sqlite3", "--format", "json", out="again")
    assert r.exit_code == ExitCode.STATE == 7
    assert r.stderr == ""
    report = _report(r)
    assert report["ok"] is False and report["exit_code"] == 7
    assert report["error"].startswith("11 invoice(s) already exported by run(s) ")
    assert report["outcome"] == "nothing was written." and report["store"] is None
    assert len(report["problems"]) == 11
    first = report["problems"][0]
    assert (first["rule"], first["invoice"]) == ("run.duplicate", "FA-2026-00101")
    assert first["record"].endswith("school-export.json:$.invoices[0]")
    assert first["text"].startswith(f"{first['record']} invoice FA-2026-00101: ")
    assert not (tmp_path / "again").exists() or not any((tmp_path / "again").iterdir())


def test_input_errors_as_json_each_with_its_record_and_binding(tmp_path):
    bad = example_with_two_input_errors(tmp_path)
    r = _export(tmp_path, "s.sqlite3", "--create-store", "--format", "json", input_path=bad)
    assert r.exit_code == ExitCode.INPUT
    report = _report(r)
    rules = {p["rule"]: p for p in report["problems"]}
    assert set(rules) == {"sepa.iban", "codes.activity"}
    assert rules["sepa.iban"]["record"] == f"{bad}:$.invoices[0]"
    assert rules["sepa.iban"]["file"] == str(MAPPING) and rules["sepa.iban"]["line"]
    assert rules["codes.activity"]["invoice"] == "FA-2026-00103"
    # refused before the store --create-store would make was opened: none made
    assert report["store"] is None and not (tmp_path / "s.sqlite3").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_mapping_typo_as_json_names_the_file_line_and_key(tmp_path):
    m, (line,) = mapping_copy(tmp_path / "m", MAPPING,
                              ("zero_total: leave_out", "zero_totl: leave_out"))
    r = _export(tmp_path, "s.sqlite3", "--create-store", "--format", "json", mapping=m)
    assert r.exit_code == ExitCode.MAPPING
    [problem] = [p for p in _report(r)["problems"] if p["key"] == "policies.zero_totl"]
    assert (problem["rule"], problem["file"], problem["line"]) == ("mapping.schema", str(m),
                                                                   line)


def test_a_failure_of_the_machine_as_json_says_what_became_of_the_new_store(
        tmp_path, monkeypatch):
    """The disk fills as the references CSV is written, after the export created its
    store: exit 2, nothing written, and the new store, with nothing recorded in it,
    removed: the JSON says all of it, as the text's two lines do."""
    import os

    from .test_atomic import disk_full_at_references

    disk_full_at_references(monkeypatch)
    r = _export(tmp_path, "s.sqlite3", "--create-store", "--format", "json")
    assert r.exit_code == ExitCode.USAGE == 2
    assert r.stderr == ""
    report = _report(r)
    assert (report["ok"], report["exit_code"], report["problems"]) == (False, 2, [])
    csv_name = "PESORMC_21450999400015_2026_0000001.references.csv"
    assert report["error"] == (f"No space left on device ({tmp_path / 'out' / csv_name}); "
                               "nothing was written")
    assert report["store"] == (f"removed the state store {tmp_path / 's.sqlite3'} this "
                               "export created: nothing was recorded in it")
    assert sorted(os.listdir(tmp_path)) == []


def test_an_invoice_left_out_as_exported_already_names_its_holder(tmp_path):
    from .test_already_exported import TERM2, _leaving, _term2

    first = _export(tmp_path, "s.sqlite3", "--create-store", "--format", "json", out="a")
    holder = _report(first)["run"]
    r = run_cli("export", "-m", _leaving(tmp_path), "-i", _term2(tmp_path), "-o",
                tmp_path / "b", "--date", TERM2.isoformat(), "--db", tmp_path / "s.sqlite3",
                "--format", "json")
    assert r.exit_code == 0, r.output
    report = _report(r)
    assert report["titles"] == 1 and report["files"][0]["id_bord"] == 2
    held = [lo for lo in report["left_out"] if lo["policy"] == "already_exported"]
    assert len(held) == 11 and {lo["holder"] for lo in held} == {holder}
    [zero] = [lo for lo in report["left_out"] if lo["policy"] == "zero_total"]
    assert zero["holder"] is None


def test_temporary_files_another_run_left_are_named_not_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".pesgen-regen-k2x9").mkdir()  # regenerate's folder: no process id in its name
    r = _export(tmp_path, "s.sqlite3", "--create-store", "--format", "json")
    assert r.exit_code == 0, r.output
    assert _report(r)["left_by_others"] == [{"file": ".pesgen-regen-k2x9",
                                             "about": "process unknown"}]
    assert (out / ".pesgen-regen-k2x9").is_dir()


def test_the_dgfip_package_applied_is_said(tmp_path, official_xsd):
    r = _export(tmp_path, "s.sqlite3", "--create-store", "--format", "json",
                "--official-xsd", official_xsd)
    assert r.exit_code == 0, r.output
    assert _report(r)["official_xsd"] == {"folder": str(official_xsd), "applied": True}
    # a finance package's import is no PES file: given, not applied (as the text says)
    r = _export(tmp_path, "corail.sqlite3", "--create-store", "--format", "json",
                "--official-xsd", official_xsd,
                mapping=MAPPINGS / "villeneuve-sur-loing-corail.yaml", out="corail")
    assert r.exit_code == 0, r.output
    assert _report(r)["official_xsd"] == {"folder": str(official_xsd), "applied": False}


def test_an_export_interrupted_before_its_commit_prints_no_document(tmp_path, monkeypatch):
    """docs/flow.md, "The summary as JSON": Ctrl-C or SIGTERM before the run's commit
    ends the export 130 with standard output empty (no document, which a caller would
    read as a refusal with its problems) and the text's line on standard error."""
    import pesgen.runs as runs_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs_module, "export_recorded", interrupted)
    for extra in ((), ("--dry-run",)):
        r = _export(tmp_path, "s.sqlite3", "--create-store", "--format", "json", *extra)
        assert (r.exit_code, r.stdout) == (130, ""), r.output
        assert r.stderr == "interrupted: nothing written, no number used\n"
        assert not (tmp_path / "out").exists()
        assert not (tmp_path / "s.sqlite3").exists()
