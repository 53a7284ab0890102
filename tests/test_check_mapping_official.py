"""check-mapping --official-xsd: the sample titles' PES files validated against the
DGFiP package too, taken as export takes it (the option, PESGEN_OFFICIAL_XSD, the
configuration file's official_xsd), said as export says it."""

from __future__ import annotations

import json
from pathlib import Path

from pesgen.config import _load
from pesgen.errors import ExitCode

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, bundle_edited, run_cli


def _own_xsd_dropped(tmp_path: Path) -> tuple[Path, int]:
    """pes-ormc copied with no XSD of its own (a PES bundle the DGFiP package alone
    checks) and its piece writing TypPce before IdPce: the folder, the template line."""
    bundle_edited(tmp_path, "pes-ormc", "format.yaml", "    xsd: pes-ormc/pes-ormc.xsd\n", "")
    return bundle_edited(tmp_path, "pes-ormc", "pes-aller.xml.j2",
                         '<IdPce V="{{ t.number }}"/><TypPce V="15"/>',
                         '<TypPce V="15"/><IdPce V="{{ t.number }}"/>')


def test_check_mapping_validates_against_the_dgfip_package(tmp_path, official_xsd):
    """A PES bundle without an XSD of its own was not validated by check-mapping (it
    took no --official-xsd): a technician learnt of a template the DGFiP package
    refuses at the billing run's export. With --official-xsd (exit 2 before), the
    sample files are validated against it: exit 6, rule xsd.dgfip, the template line;
    as export --dry-run refuses them."""
    fmts, line = _own_xsd_dropped(tmp_path)
    mapping = MAPPINGS / "villeneuve-sur-loing.yaml"
    assert run_cli("check-mapping", mapping, "--formats-dir", fmts).exit_code == 0
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts, "--official-xsd",
                official_xsd)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert len(said) == 2 and all(
        "/BlocPiece/TypPce invoice SAMPLE-" in ln and "Element 'TypPce': This "
        "element is not expected. Expected is one of ( CodServ, Affect, IdPce )." in ln
        and ln.endswith(f"pes-aller.xml.j2:{line}] (rule xsd.dgfip)") for ln in said), said
    dry = run_cli("export", "-m", mapping, "-i", EXAMPLES / "school-export.json", "-o",
                  tmp_path / "out", "--date", RUN_DATE, "--formats-dir", fmts, "--dry-run",
                  "--db", f"sqlite:///{tmp_path / 's.sqlite3'}", "--create-store",
                  "--official-xsd", official_xsd)
    assert dry.exit_code == ExitCode.OUTPUT and "(rule xsd.dgfip)" in dry.stderr
    as_json = run_cli("check-mapping", mapping, "--formats-dir", fmts, "--official-xsd",
                      official_xsd, "--format", "json")
    [result] = json.loads(as_json.stdout)["mappings"]
    assert result["official_xsd"] == {"folder": str(official_xsd), "applied": True}
    assert {(p["rule"], p["line"], p["source"]) for p in result["problems"]} == {
        ("xsd.dgfip", line, "template")}


def test_check_mapping_takes_the_dgfip_package_as_export_does(tmp_path, monkeypatch,
                                                              official_xsd):
    """The configuration file's official_xsd (and PESGEN_OFFICIAL_XSD) apply as for
    export, the option first; the summary says whether it applied, as export's does
    (a finance package's import: not applied); a folder without the package is a usage
    error in export's words."""
    config = tmp_path / "config.yaml"
    config.write_text(f"official_xsd: {official_xsd}\n", encoding="utf-8")
    monkeypatch.setenv("PESGEN_CONFIG", str(config))
    _load.cache_clear()
    try:
        r = run_cli("check-mapping", MAPPINGS / "villeneuve-sur-loing.yaml")
        assert r.exit_code == 0, r.output
        assert f"  DGFiP XSD: applied ({official_xsd})\n" in r.stdout, r.stdout
        r = run_cli("check-mapping", MAPPINGS / "villeneuve-sur-loing-corail.yaml")
        assert r.exit_code == 0, r.output
        assert "  DGFiP XSD: not applied (cosoluce-corail is a finance package's import, " \
            "not a PES file)\n" in r.stdout, r.stdout
        empty = tmp_path / "empty"
        empty.mkdir()
        r = run_cli("check-mapping", MAPPINGS / "villeneuve-sur-loing.yaml",
                    "--official-xsd", empty)
        assert r.exit_code == ExitCode.USAGE, r.output
        assert f"{empty}: no PES_V2/Rev0/PES_Aller.xsd in this folder" in r.stderr
        monkeypatch.setenv("PESGEN_OFFICIAL_XSD", str(empty))
        r = run_cli("check-mapping", MAPPINGS / "villeneuve-sur-loing.yaml")
        assert r.exit_code == ExitCode.USAGE, r.output
    finally:
        _load.cache_clear()


def test_without_the_package_a_bundle_without_its_own_xsd_is_warned_of(tmp_path):
    """check-mapping without --official-xsd said OK of a mapping whose PES bundle ships
    no XSD of its own, its sample files validated by nothing (an export refuses to run
    without the package). It now warns (rule format.no-xsd, naming format.yaml:line:
    files[0], saying --official-xsd checks it), in text and JSON, exit 0 still: the
    mapping is not at fault. check-format, which refuses such a bundle without the
    package (exit 2, as export), names that line too."""
    fmts, _ = bundle_edited(tmp_path, "pes-ormc", "format.yaml",
                            "    xsd: pes-ormc/pes-ormc.xsd\n", "")
    text = (fmts / "pes-ormc" / "format.yaml").read_text(encoding="utf-8")
    line = text[:text.index("  - template: pes-aller.xml.j2")].count("\n") + 1
    where = f"[format {fmts}/pes-ormc/format.yaml:{line}: files[0]] (rule format.no-xsd)"
    mapping = MAPPINGS / "villeneuve-sur-loing.yaml"
    r = run_cli("check-mapping", mapping, "--formats-dir", fmts)
    assert r.exit_code == 0, r.output
    [said] = [ln for ln in r.stderr.splitlines() if ln.endswith(where)]
    assert said.startswith("warning: pes-aller.xml.j2 has no XSD of its own") and \
        "(--official-xsd DIR, PESGEN_OFFICIAL_XSD or official_xsd in the config file): " \
        "check-mapping validated none of the files it rendered on its sample titles" in said
    as_json = run_cli("check-mapping", mapping, "--formats-dir", fmts, "--format", "json")
    [result] = json.loads(as_json.stdout)["mappings"]
    assert as_json.exit_code == 0 and [
        (w["rule"], w["file"], w["line"], w["key"]) for w in result["warnings"]
        if w["rule"] == "format.no-xsd"] == [
        ("format.no-xsd", f"{fmts}/pes-ormc/format.yaml", line, "files[0]")]
    refused = run_cli("check-format", "pes-ormc", "--formats-dir", fmts)
    assert refused.exit_code == ExitCode.USAGE and where in refused.stderr, refused.output
    shipped = run_cli("check-mapping", mapping)
    assert shipped.exit_code == 0 and "format.no-xsd" not in shipped.output


def test_preview_runs_on_a_bundle_without_its_own_xsd_and_says_it_validates_none(
        tmp_path):
    """preview of a PES bundle without an XSD of its own was refused without
    --official-xsd (exit 2, the export's words), though preview validates no XML and
    takes no such option. It now previews the invoices, a note saying it validated none
    of that file's files (rule format.no-xsd, format.yaml:line: files[0]) and that the
    export needs the package, which its last line gives; the shipped bundle, none."""
    fmts, _ = bundle_edited(tmp_path, "pes-ormc", "format.yaml",
                            "    xsd: pes-ormc/pes-ormc.xsd\n", "")
    text = (fmts / "pes-ormc" / "format.yaml").read_text(encoding="utf-8")
    line = text[:text.index("  - template: pes-aller.xml.j2")].count("\n") + 1
    args = ("preview", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
            EXAMPLES / "school-export.json", "--date", RUN_DATE, "-n", "1")
    r = run_cli(*args, "--formats-dir", fmts)
    assert r.exit_code == 0, r.output
    assert "-- invoice FA-2026-00101" in r.stdout and '<TypPce V="15"/>' in r.stdout
    [said] = [ln for ln in r.stdout.splitlines() if ln.startswith("policy no_xsd (run): ")]
    assert said == (
        "policy no_xsd (run): pes-aller.xml.j2 has no XSD of its own (format.yaml gives it "
        "no xsd): only the DGFiP package validates its files (--official-xsd DIR, "
        "PESGEN_OFFICIAL_XSD or official_xsd in the config file): preview validates none "
        "of its files, and an export of format pes-ormc is refused without the package "
        f"(exit 2) [format {fmts}/pes-ormc/format.yaml:{line}: files[0]] "
        "(rule format.no-xsd)")
    assert r.stdout.endswith("1 invoice(s) shown; 0 problem(s); run pesgen export "
                             "--official-xsd DIR to validate and number the whole file\n")
    shipped = run_cli(*args)
    assert shipped.exit_code == 0 and "no_xsd" not in shipped.output
    assert shipped.stdout.endswith("; run pesgen export to validate and number the whole "
                                   "file\n")


def test_a_file_checked_by_its_layout_is_no_file_without_an_xsd():
    """format.no-xsd is of a PES file with neither an XSD of its own nor a layout: e.magnus'
    files, each checked against its layout, are not warned of (mut56: a mutant warning of
    every file without an XSD survived: only a PES bundle was checked)."""
    from pesgen.formats import find_format, unvalidated

    fmt = find_format("bl-emagnus")
    assert fmt.files and all(spec.xsd is None and spec.layout for spec in fmt.files)
    assert unvalidated(fmt) == []
