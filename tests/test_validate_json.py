"""`pesgen validate FILE --json`: the verdict as one JSON document (for CI checking the
files it produced or received), with the text's exit codes, each problem with its rule
and where it is in the file (the XML line and the XPath, taken apart from its record)."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from pesgen.errors import ExitCode
from pesgen.export import export

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli


@pytest.fixture(scope="module")
def example_xml(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("example")
    result = export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
                    out, date.fromisoformat(RUN_DATE))
    return result.files[0].path


def _validate(*args: str | Path) -> tuple[int, dict, str]:
    r = run_cli("validate", *args, "--json")
    assert r.stderr == ""
    return r.exit_code, json.loads(r.stdout), run_cli("validate", *args).stderr


def test_a_valid_file_says_its_format_and_the_checks(example_xml, official_xsd):
    code, report, _text = _validate(example_xml, "--official-xsd", official_xsd)
    assert code == 0 and report["ok"] and report["command"] == "validate"
    [f] = report["files"]
    assert (f["file"], f["format"], f["problems"]) == (str(example_xml), "pes-ormc", [])
    assert f["checks"] == ("pesgen XSD pes-ormc/pes-ormc.xsd + bordereau rules + DGFiP XSD "
                           f"{official_xsd}")


def test_each_problem_has_its_line_and_xpath_as_the_text_says_them(tmp_path, example_xml):
    bad = tmp_path / "bad.xml"
    text = example_xml.read_bytes()
    assert text.count(b'<NbrPce V="11"/>') == 1
    # the first debtor's name emptied, and the bordereau's count wrong
    bad.write_bytes(re.sub(rb'<Nom V="[^"]*"/>', b'<Nom V=""/>', text, count=1)
                    .replace(b'<NbrPce V="11"/>', b'<NbrPce V="10"/>'))
    code, report, said = _validate(bad)
    assert code == ExitCode.OUTPUT == 6 == report["exit_code"]
    [f] = report["files"]
    assert f["error"] == report["error"] and f["error"] in said
    assert f["format"] == "pes-ormc"  # found from its TypFic, refused all the same
    rules = {p["rule"] for p in f["problems"]}
    assert "xsd.pesgen" in rules
    for p in f["problems"]:
        assert p["text"] in said  # the text output's line, word for word
        assert p["record"] == f"bad.xml:{p['xml_line']}" + (
            f" {p['xpath']}" if p["xpath"] else "")
    nom = next(p for p in f["problems"] if p["xpath"] and p["xpath"].endswith("/Nom"))
    lines = bad.read_text(encoding="iso-8859-1").splitlines()
    assert '<Nom V=""/>' in lines[nom["xml_line"] - 1]


def test_a_bordereau_rule_has_its_line(tmp_path, example_xml):
    bad = tmp_path / "count.xml"
    bad.write_bytes(example_xml.read_bytes().replace(b'<NbrPce V="11"/>', b'<NbrPce V="10"/>'))
    code, report, _said = _validate(bad)
    assert code == 6
    [problem] = report["files"][0]["problems"]
    assert problem["rule"] == "pes.nbr-pce"
    # the bordereau's line (the rule is the bordereau's), no XPath in its record
    lines = bad.read_text(encoding="iso-8859-1").splitlines()
    assert lines[problem["xml_line"] - 1] == "<Bordereau>" and problem["xpath"] is None


def test_a_file_that_is_not_there_is_a_usage_error_as_json(tmp_path):
    code, report, said = _validate(tmp_path / "none.xml")
    assert code == ExitCode.USAGE == 2
    [f] = report["files"]
    assert f["format"] is None and f["error"] == f"{tmp_path / 'none.xml'}: no such file"
    assert said.startswith(f"error: {tmp_path / 'none.xml'}: no such file")
