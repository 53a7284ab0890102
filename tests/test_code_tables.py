"""A code a mapping's table gives (codes.civility, policies.default_civility) is written
for the target by whoever wrote the table: it is sent as written, the text policies
(case, transliterate, newlines) never change it, and one the format's field cannot
hold as it is is refused when the mapping is loaded, naming the table key."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.errors import MappingError

from .conftest import EXAMPLES, MAPPINGS
from .test_rules import _invoice, _mapping, _run, _tiers, _v

RUN = date(2026, 11, 23)
CORAIL = MAPPINGS / "villeneuve-sur-loing-corail.yaml"


def test_corail_civilities_are_sent_as_its_table_writes_them(tmp_path):
    """Corail writes Mr / Mme (its XSD refuses MR / MME); the mapping's case: upper
    upper-cased what codes.civility gave, so the export was refused by the XSD."""
    from pesgen.export import export

    result = export(CORAIL, EXAMPLES / "school-export.json", tmp_path / "out", RUN)
    doc = etree.parse(str(result.files[0].path))
    civilities = [e.get("V") for e in doc.iter("Civilite")]
    assert set(civilities) == {"Mme", "Mr"}
    # the template writes the civility as the model gives it (no capitalize left)
    template = (CORAIL.parents[1] / "templates" / "cosoluce-corail" / "corail.xml.j2")
    assert "{{ d.civility }}" in template.read_text(encoding="utf-8")


def test_the_case_policy_leaves_a_table_code_and_the_default_civility_as_written(tmp_path):
    table = ('    "Mme": MME\n    "M.": M\n    "M": M\n',
             '    "Mme": Mme\n    "M.": Mr\n    "M": M\n')
    mapping = _mapping(tmp_path, {"default_civility": "Mme"}, subs=(table,))
    person = _invoice("FA-2026-00101")  # Mme, case: upper
    nobody = _invoice("FA-2026-00107")  # no civility: default_civility
    result = _run(tmp_path, [person, nobody], mapping)
    doc = etree.parse(str(result.files[0].path))
    assert {_v(t, "InfoTiers/Civilite") for t in doc.getroot().iter("{*}Tiers")} == {"Mme"}
    assert _v(_tiers(result), "InfoTiers/Nom") == "DUPONT-LEFÈVRE"  # the rest upper-cased
    notes = [n.detail for n in result.notes if n.policy in ("civility", "missing_civility")]
    assert "no civility: 'Mme' used" in notes
    case = [n.detail for n in result.notes if n.policy == "case"]
    assert case and "debtor.civility" not in case[0]


def _line(path: Path, start: str) -> int:
    [line] = [i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if text.startswith(start)]
    return line


@pytest.mark.parametrize("code, why", [
    ("MŒ", "holds 'Œ', which charset latin-1 does not allow"),
    ("MADAME  X", "two in a row"),
    ("nc", "is not accepted by Hélios"),
    ("MŒŸ", "holds 'ŒŸ', which charset latin-1 does not allow"),
    ("M\\tX", "holds the control or invisible character U+0009"),
    ("M\\r\\nX", "holds the control or invisible character U+000D"),  # the first
    ("M\\u00a0X", "holds the control or invisible character U+00A0"),
    (" MME", "has a space at its start or end"),
])
def test_a_table_code_the_field_cannot_hold_is_refused_by_check_mapping(tmp_path, code, why):
    """Sent as written, a code the format's charset lacks was transliterated (or
    refused per invoice, naming no table); now check-mapping refuses it, naming the
    table key's line."""
    mapping = _mapping(tmp_path, subs=(('    "Mme": MME\n', f'    "Mme": "{code}"\n'),))
    run = CliRunner().invoke(app, ["check-mapping", str(mapping)])
    assert run.exit_code == 3, run.output
    line = _line(mapping, '    "Mme":')
    assert f"{mapping}:{line}: codes.civility.Mme" in run.output
    assert why in run.output
    assert "(rule codes.civility)" in run.output


def test_a_default_civility_the_charset_lacks_is_refused_naming_its_line(tmp_path):
    from pesgen.export import export

    mapping = _mapping(tmp_path, {"default_civility": "MŒ"})
    with pytest.raises(MappingError) as info:
        export(mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN)
    [problem] = [p for p in info.value.problems if p.rule == "codes.civility"]
    assert problem.mapping == f"{mapping}:{_line(mapping, '  default_civility:')}: " \
                              "policies.default_civility"
    assert re.search(r"'MŒ' holds 'Œ', which charset latin-1 does not allow", problem.message)
    # whose field it does not fit, the format's (another format may take it)
    assert problem.message == (
        "policies.default_civility: the civility 'MŒ' holds 'Œ', which charset latin-1 does "
        "not allow (format pes-ormc, debtor.civility): a code of the mapping is sent as "
        "written, the text policies (case, transliterate) do not change it")


def test_a_code_over_the_field_s_limit_names_whose_limit_it_is(tmp_path):
    """A code over its field's length said 'the target allows 3' where every other
    refusal of a length names whose limit it is: Hélios for a PES format, the format
    for a finance package's. pes-ormc made to take 3 characters of civility says
    Hélios."""
    import shutil

    from pesgen.export import export
    from pesgen.resources import data_dir

    fmts = tmp_path / "fmts"
    shutil.copytree(data_dir("templates") / "pes-ormc", fmts / "pes-ormc")
    spec = fmts / "pes-ormc" / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("debtor.civility: {max: 10}") == 1
    spec.write_text(text.replace("debtor.civility: {max: 10}", "debtor.civility: {max: 3}"),
                    encoding="utf-8")
    mapping = _mapping(tmp_path, {"default_civility": "MADAME"})
    with pytest.raises(MappingError) as info:
        export(mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN,
               formats_dirs=[fmts])
    [problem] = [p for p in info.value.problems if p.rule == "codes.civility"]
    assert problem.message.startswith(
        "policies.default_civility: the civility 'MADAME' is 6 characters, Hélios allows 3 "
        "(format pes-ormc, debtor.civility): "), problem.message


def test_a_code_over_the_field_s_limit_is_refused_as_written():
    """The mapping schema holds a civility to 10 characters, every shipped format's
    field too: a format (--formats-dir) may allow fewer."""
    from pesgen.text import code_error

    assert code_error("MME", "latin-1", 3, "Hélios") is None
    assert code_error("Mlle", "latin-1", 3, "Hélios") == "is 4 characters, Hélios allows 3"
    assert code_error("Mlle", "latin-1", 3, "format acme") == \
        "is 4 characters, format acme allows 3"
    assert code_error("Mademoiselle", "latin-1", None, "Hélios") is None
