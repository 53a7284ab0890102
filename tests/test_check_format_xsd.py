"""check-format validates what the bundle's templates write on check-mapping's sample
titles against the bundle's XSD (``sample.schema_problems``, as check-mapping), and
checks it against the bundle's layouts (``sample.layout_problems``): a branch the
fixture does not take is checked too."""

from __future__ import annotations

import json

from pesgen.errors import ExitCode

from .conftest import bundle_edited, run_cli


def test_a_branch_the_fixture_does_not_take_is_validated_against_the_xsd(tmp_path):
    """pes-ormc's fixture has no account holder other than its debtor: a template
    writing TitCpteDiff 'true' there (pesgen's XSD takes 0 or 1) passed check-format,
    its expected/ files valid and rendered byte for byte. The sample titles' files are
    now validated: exit 6, naming the sample title, XPath and template line."""
    fmts, line = bundle_edited(tmp_path, "pes-ormc", "pes-aller.xml.j2",
                               '<TitCpteDiff V="1"/>', '<TitCpteDiff V="true"/>')
    r = run_cli("check-format", "pes-ormc", "--formats-dir", fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert "rendered on check-mapping's sample titles with the fixture's mapping, are " \
        "refused by their XSD (2 problem(s))" in r.stderr, r.stderr
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert len(said) == 2 and all(
        "/InfoPrelevementSEPA/TitCpteDiff invoice SAMPLE-1: Element 'TitCpteDiff', "
        "attribute 'V': [facet 'enumeration'] The value 'true' is not an element of the "
        "set {'0', '1'}." in ln and ln.endswith(f"pes-aller.xml.j2:{line}] (rule xsd.pesgen)")
        for ln in said), said
    as_json = run_cli("check-format", "pes-ormc", "--formats-dir", fmts, "--format", "json")
    assert as_json.exit_code == ExitCode.OUTPUT
    [bundle] = json.loads(as_json.stdout)["bundles"]
    assert [(p["rule"], p["line"], p["source"], p["invoice"]) for p in bundle["problems"]] \
        == [("xsd.pesgen", line, "template", "SAMPLE-1")] * 2



def test_with_the_dgfip_package_the_sample_files_are_validated_against_it(
        tmp_path, official_xsd):
    """check-format --official-xsd validated the expected files and the fixture's
    against the DGFiP package, not the sample titles' files: a PES bundle without an
    XSD of its own (the package its only check) writing an attribute the package
    refuses in a branch the fixture does not take passed (the package is needed: such a
    bundle is refused without it, exit 2, as at export). Exit 6, rule xsd.dgfip."""
    bundle_edited(tmp_path, "pes-ormc", "format.yaml", "    xsd: pes-ormc/pes-ormc.xsd\n", "")
    fmts, line = bundle_edited(tmp_path, "pes-ormc", "pes-aller.xml.j2",
                               '<TitCpteDiff V="1"/>', '<TitCpteDiff V="1" X="1"/>')
    r = run_cli("check-format", "pes-ormc", "--formats-dir", fmts, "--official-xsd",
                official_xsd)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert len(said) == 2 and all(
        "/TitCpteDiff invoice SAMPLE-1: Element 'TitCpteDiff', attribute 'X': The "
        "attribute 'X' is not allowed." in ln
        and ln.endswith(f"pes-aller.xml.j2:{line}] (rule xsd.dgfip)") for ln in said), said


def test_a_pes_rule_s_problem_on_the_sample_titles_names_the_template_line(tmp_path):
    """The sample titles' files are checked by the PES bordereau rules too: a template
    writing an MtPrel other than the line's MtHT where the holder differs (a branch
    pes-ormc's fixture does not take) is refused (pes.mt-prel), named at the template
    line writing MtPrel, not only at the file's InfoPrelevementSEPA."""
    fmts, line = bundle_edited(
        tmp_path, "pes-ormc", "pes-aller.xml.j2", '<MtPrel V="{{ ln.amount | amount }}"/>',
        "<MtPrel V=\"{{ '0.01' if m.holder_differs else ln.amount | amount }}\"/>")
    r = run_cli("check-format", "pes-ormc", "--formats-dir", fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    said = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert said and all(
        "invoice SAMPLE-1: MtPrel differs from MtHT on line" in ln
        and ln.endswith(f"pes-aller.xml.j2:{line}] (rule pes.mt-prel)") for ln in said), said


def test_a_branch_the_fixture_does_not_take_is_checked_against_the_layout(tmp_path):
    """check-format validated the sample titles' files against an XSD only: a CSV or
    fixed-width template writing, in a branch its fixture does not take, a line its
    layout refuses passed (e.magnus' joint debtor with a third address line, which the
    fixture's mapping never gives, written with a 28th field). Those files are now
    checked against their layout as check-mapping checks them: exit 6, the sample
    title and the template line."""
    fmts, line = bundle_edited(
        tmp_path, "bl-emagnus", "wtamc001tsol.txt.j2",
        '} | csv_record(size=27, quoting="always") }}',
        '} | csv_record(size=27, quoting="always") }}'
        "{{ ';\"X\"' if lines | length > 2 else '' }}")
    r = run_cli("check-format", "bl-emagnus", "--formats-dir", fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert "rendered on check-mapping's sample titles with the fixture's mapping, break " \
        "their layout (1 problem(s))" in r.stderr, r.stderr
    [said] = [ln for ln in r.stderr.splitlines() if ln.startswith("  - ")]
    assert "WTAMC001_TSOL.txt:1 invoice SAMPLE-1: record 'tiers-solidaire' has 28 " \
        "fields, the layout has 27" in said, said
    assert said.endswith(f"wtamc001tsol.txt.j2:{line}] (rule layout.columns)"), said


def test_files_breaking_both_their_layout_and_their_xsd_are_said_so():
    """``SampleRendering.broken``: the problems of the files with a layout, then of those
    with an XSD, and how they break, both said when both do (a bundle writing a CSV and
    an XML file) (mut56: a mutant joining them with ', ' survived)."""
    from pesgen.errors import Problem
    from pesgen.sample import SampleRendering

    layout = Problem("layout.columns", "too short", record="a.csv:2")
    xsd = Problem("xsd.bundle", "not expected", record="b.xml:3")
    both = SampleRendering(1, frozenset(), layout_problems=(layout,), schema_problems=(xsd,))
    assert both.broken() == ([layout, xsd], "break their layout and are refused by their XSD")
    assert SampleRendering(1, frozenset(), layout_problems=(layout,)).broken() == (
        [layout], "break their layout")
    assert SampleRendering(1, frozenset()).broken() == ([], "")
