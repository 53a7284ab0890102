"""A character the output's encoding cannot write is refused before anything is
rendered, naming where it is written: the template's line (its own text, or a string
of an expression), format.yaml's line for an option default, the mapping's line for
an option or a text of its own. check-mapping refuses it too (the export never could
succeed), and none of these checks is made per value on the rendering path."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import MAPPINGS, ROOT, run_cli
from .mapping_support import mapping_copy

CORAIL_MAPPING = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
TRAIN = '<TrainPiece V="{{ doc.options.train }}"/>'


def _bundle(tmp_path: Path, old: str = "", new: str = "", file: str = "corail.xml.j2"
            ) -> tuple[Path, int]:
    """A copy of the Corail bundle with one text replaced: its formats folder, and the
    line of the replacement."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "cosoluce-corail", fmts / "cosoluce-corail")
    # Corail's file is UTF-8 (as its source writes it): the copy is made ISO-8859-1,
    # an encoding that cannot write everything
    fmt = fmts / "cosoluce-corail" / "format.yaml"
    fmt.write_text(fmt.read_text(encoding="utf-8").replace("\nencoding: UTF-8\n",
                                                            "\nencoding: ISO-8859-1\n", 1),
                   encoding="utf-8")
    path = fmts / "cosoluce-corail" / file
    text = path.read_text(encoding="utf-8")
    line = 0
    if old:
        assert text.count(old) == 1, old
        line = text[:text.index(old)].count("\n") + 1
        path.write_text(text.replace(old, new), encoding="utf-8")
    return fmts, line


_run = run_cli


def test_a_literal_the_encoding_cannot_write_names_the_template_line(tmp_path):
    fmts, line = _bundle(tmp_path, TRAIN, TRAIN.replace('}}"', '}} €"'))
    where = f"{fmts}/cosoluce-corail/corail.xml.j2:{line}"
    checked = _run("check-format", "cosoluce-corail", "--formats-dir", fmts)
    assert checked.exit_code == 5, checked.output
    assert f"template {where}: the template's text holds '€' (U+20AC), which ISO-8859-1 " \
           "cannot write" in checked.output
    assert "(rule template.encoding)" in checked.output
    # check-mapping said OK: the export never could succeed
    mapping = _run("check-mapping", CORAIL_MAPPING, "--formats-dir", fmts)
    assert mapping.exit_code == 5, mapping.output
    assert f"template {where}:" in mapping.output


def test_a_literal_in_a_branch_no_title_takes_is_refused_too(tmp_path):
    """Checked in the template's source, once, not in what a title renders."""
    fmts, line = _bundle(tmp_path, "</TiersSolidaire>", "</TiersSolidaire><!-- € -->")
    mapping = _run("check-format", "cosoluce-corail", "--formats-dir", fmts)
    assert mapping.exit_code == 5, mapping.output
    assert f"{fmts}/cosoluce-corail/corail.xml.j2:{line}: the template's text holds '€'" \
        in mapping.output


def test_a_string_of_an_expression_the_encoding_cannot_write_names_its_line(tmp_path):
    fmts, line = _bundle(tmp_path, TRAIN, TRAIN.replace("train }}", 'train ~ " €" }}'))
    run = _run("check-mapping", CORAIL_MAPPING, "--formats-dir", fmts)
    assert run.exit_code == 5, run.output
    assert f"template {fmts}/cosoluce-corail/corail.xml.j2:{line} produced '€', which " \
           "ISO-8859-1 cannot encode (piece of invoice SAMPLE-1)" in run.output


def test_the_line_named_is_the_expression_s_not_a_comment_s(tmp_path):
    """A comment holding the same character on an earlier line is not where it is
    written: the line named is the expression's string."""
    fmts, line = _bundle(tmp_path, TRAIN,
                         '{# never write € #}\n' + TRAIN.replace("train }}", 'train ~ " €" }}'))
    run = _run("check-mapping", CORAIL_MAPPING, "--formats-dir", fmts)
    assert run.exit_code == 5, run.output
    assert f"template {fmts}/cosoluce-corail/corail.xml.j2:{line + 1} produced '€'" in run.output


def test_an_option_default_the_encoding_cannot_write_names_format_yaml(tmp_path):
    fmts, line = _bundle(tmp_path, 'origine: "PESGEN"', 'origine: "PESGŒN"', "format.yaml")
    for run in (_run("check-format", "cosoluce-corail", "--formats-dir", fmts),
                _run("check-mapping", CORAIL_MAPPING, "--formats-dir", fmts)):
        assert run.exit_code == 3, run.output
        assert f"format.yaml:{line}: defaults.options.origine" in run.output
        assert "'Œ' cannot be written in ISO-8859-1" in run.output
        assert "template" not in run.output


def _mapping(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """The Corail mapping writing ISO-8859-1 (output.encoding), ``old`` replaced by
    ``new``, and the line of the replacement's last line."""
    path, (_, line) = mapping_copy(
        tmp_path, CORAIL_MAPPING,
        ("  format: cosoluce-corail\n", "  format: cosoluce-corail\n  encoding: ISO-8859-1\n"),
        (old, new), name="m.yaml")
    return path, line


def test_a_mapping_option_the_encoding_cannot_write_names_the_mapping_key(tmp_path):
    """Not transliterated (an option is written as it is), and not blamed on the
    template: refused by check-mapping and by the export, naming the key's line."""
    mapping, line = _mapping(tmp_path, "  payment_references: false",
                             "  payment_references: false\n  options: {origine: \"A–B\"}")
    for run in (_run("check-mapping", mapping),
                _run("export", "--mapping", mapping, "--input",
                     ROOT / "examples" / "school-export.json", "--dry-run",
                     "--date", "2026-11-23", "--db",
                     f"sqlite:///{tmp_path / 'x.db'}", "--create-store")):
        assert run.exit_code == 3, run.output
        assert f"{mapping}:{line}: output.options.origine" in run.output
        assert "'–' cannot be written in ISO-8859-1" in run.output
        assert "template" not in run.output


def test_the_collectivity_name_the_encoding_cannot_write_names_the_mapping_key(tmp_path):
    mapping, line = _mapping(tmp_path, "  name: Commune de Villeneuve-sur-Loing",
                             "  name: Commune de Villeneuve-sur-Lœing")
    run = _run("check-mapping", mapping)
    assert run.exit_code == 3, run.output
    assert f"{mapping}:{line}: collectivity.name" in run.output
    assert "'œ' cannot be written in ISO-8859-1" in run.output


def test_an_option_default_the_mapping_s_encoding_cannot_write_names_format_yaml(tmp_path):
    """The format's option defaults fit its own encoding and charset (a bundle of
    charset cp1252 written in UTF-8 may default an option to 'Œ'); a mapping that writes
    another encoding (output.encoding) has them checked against that one: refused before
    anything is rendered, naming format.yaml's line, not blamed on the template."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "cosoluce-corail", fmts / "cosoluce-corail")
    fmt = fmts / "cosoluce-corail" / "format.yaml"
    text = fmt.read_text(encoding="utf-8").replace("\ncharset: latin-1\n", "\ncharset: cp1252\n")
    old = 'origine: "PESGEN"'
    line = text[:text.index(old)].count("\n") + 1
    fmt.write_text(text.replace(old, 'origine: "PESGŒN"'), encoding="utf-8")
    mapping, _ = _mapping(tmp_path, "  payment_references: false", "  payment_references: false")
    run = _run("check-mapping", mapping, "--formats-dir", fmts)
    assert run.exit_code == 3, run.output
    assert f"format.yaml:{line}: defaults.options.origine" in run.output
    assert "'Œ' cannot be written in ISO-8859-1" in run.output
    assert "template" not in run.output
