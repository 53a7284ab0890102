"""A text field a format declares not carried (format.yaml not_carried) and no template
reads is in no file: its value is neither held to the format's charset and limits nor
changed by the text policies, and the run summary says nothing those policies would
have changed of it; a field a template reads stays checked, declared or not."""

from __future__ import annotations

from pathlib import Path

from pesgen.errors import ExitCode

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .mapping_support import mapping_copy

NOT_CARRIED = """\
not_carried:
  address.street: "no address column"
  address.postal_code: "no address column"
  address.city: "no address column"
  address.complement: "no address column"
  address.country: "no address column"
  payer.civility: "no civility column"
  line.label: "no line label column"
"""


def _bundle(tmp_path: Path, monkeypatch) -> Path:
    """ACME Compta, as the onboarding rehearsal shaped it: the draft CSV bundle of
    new-format (it writes the debtor's names and the total, no address, civility nor
    line label), in ISO-8859-1 (charset latin-1), declaring what it does not write; the
    example CSV's mapping pointed at it, without transliterate (the example holds '–'
    in line labels and 'Œ' in a street)."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("new-format", "acme-compta", "--kind", "csv", "--dir", "formats"
                   ).exit_code == 0
    folder = tmp_path / "formats" / "acme-compta"
    fmt = (folder / "format.yaml").read_text(encoding="utf-8")
    fmt = fmt.replace("encoding: UTF-8 ", "encoding: ISO-8859-1 ")
    fmt = fmt.replace("  address.street: {max: 38}\n  address.city: {max: 38}\n", "")
    (folder / "format.yaml").write_text(fmt + NOT_CARRIED, encoding="utf-8")
    layout = (folder / "layout.yaml").read_text(encoding="utf-8")
    (folder / "layout.yaml").write_text(layout.replace("encoding: UTF-8 ",
                                                       "encoding: ISO-8859-1 "),
                                        encoding="utf-8")
    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-csv.yaml",
                              ("  format: pes-ormc", "  format: acme-compta"),
                              ("  transliterate: true", "  transliterate: false"),
                              ("  street_overflow: split", "  street_overflow: refuse"))
    return mapping


def _export(mapping: Path):
    return run_cli("export", "-m", mapping, "-i", EXAMPLES / "school-export.csv", "-o", "out",
                   "--date", RUN_DATE, "--formats-dir", "formats", "--dry-run")


def test_a_text_in_no_file_is_not_held_to_the_format_s_charset(tmp_path, monkeypatch):
    """The rehearsal's first export refused every line labelled 'Piano – cours' (text.charset,
    latin-1) and a street holding 'Œ', for a format writing neither; and its summary
    counted streets and cities upper-cased and a street's line break replaced, none of
    them in the file. Now it passes; the summary's case count names the written fields
    only, and the notes of policies that let a title through on a field not written
    (missing_civility) say that no file holds it; foreign_address names no value of the
    address, none written."""
    r = _export(_bundle(tmp_path, monkeypatch))
    assert r.exit_code == 0, r.output
    assert "text.charset" not in r.output
    case = next(ln for ln in r.stdout.splitlines() if ": case: " in ln)
    assert "address." not in case and "line.label" not in case and "debtor.name ×" in case
    assert "newlines: address.street" not in r.stdout
    said = ("(format acme-compta does not write {}, declared not carried: the title is "
            "not refused, no file holds the value)")
    assert "missing_civility: no civility: 'MME' used " + said.format("debtor.civility") \
        in r.stdout
    # the format writes no address: the foreign_address note names none of its values
    assert ("FA-2026-00105: foreign_address: BE: no template of format acme-compta writes "
            "address.postal_code, address.city or address.country_code: the foreign postal "
            "code '1040' is in no file") in r.stdout, r.stdout


def test_a_declared_field_a_template_writes_is_still_checked(tmp_path, monkeypatch):
    """line.label declared not carried, but the template writes the first line's label:
    the label is in the file, so held to latin-1 as before (and check-mapping warns of
    the declaration, format.not-carried)."""
    mapping = _bundle(tmp_path, monkeypatch)
    template = tmp_path / "formats" / "acme-compta" / "acme-compta.csv.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count("t.debtor.first_name,") == 1  # column Prenom, 38 characters
    template.write_text(text.replace("t.debtor.first_name,", "t.lines[0].label,"),
                        encoding="utf-8")
    r = _export(mapping)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "line.label character(s) '–' not allowed in latin-1" in r.stderr
    assert "address.street character(s)" not in r.stderr  # still in no file


def test_the_fields_in_no_file_are_none_when_the_reads_are_not_known(tmp_path, monkeypatch):
    """``coverage.unwritten_texts``: with the templates' reads on the sample titles not
    known (None: they failed there), every text field is checked, declared not carried
    or not; known, a declared field no template reads is in no file (mut56: a mutant
    dropping the None case survived, and failed, TypeError, on such a format)."""
    from pesgen.coverage import unwritten_texts
    from pesgen.formats import load_format

    _bundle(tmp_path, monkeypatch)
    fmt = load_format(tmp_path / "formats" / "acme-compta")
    assert unwritten_texts(fmt, None) == frozenset()
    assert {"address.street", "line.label", "debtor.civility"} <= unwritten_texts(
        fmt, frozenset())


def test_a_field_no_template_reads_but_not_declared_is_still_checked(tmp_path, monkeypatch):
    """line.label read by no template of ACME Compta, but not declared not carried: it is
    held to latin-1 as before (check-mapping warns of it, mapping.unwritten); only a
    field the format declares in no file is kept as exported (mut56: a mutant taking
    every field no template reads as in no file survived)."""
    mapping = _bundle(tmp_path, monkeypatch)
    folder = tmp_path / "formats" / "acme-compta"
    text = (folder / "format.yaml").read_text(encoding="utf-8")
    (folder / "format.yaml").write_text(
        text.replace('  line.label: "no line label column"\n', ""), encoding="utf-8")
    r = _export(mapping)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert "line.label character(s) '–' not allowed in latin-1" in r.stderr
    assert "address.street character(s)" not in r.stderr  # declared: in no file
