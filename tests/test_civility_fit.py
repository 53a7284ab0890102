"""A civility written as it is into a layout's column listing the values it takes
(fmt65): the cases hand mutation of the fifty-fourth session's checks showed untested
(mut58). mapping.code-fit: a policies.default_civility the column refuses is refused as a
table's value is, and no default is no value. mapping.civility-values: warned when
format.yaml lists civilities the column does not all take, its examples of refused
civilities only those the column lacks, its advice only when the column takes MME."""

from __future__ import annotations

from pesgen.errors import ExitCode

from .conftest import run_cli
from .test_layout_named_bindings import _civility_bundle, _edit


def test_a_default_civility_the_column_refuses_is_refused_and_none_is_no_value(tmp_path):
    mapping = _civility_bundle(tmp_path)
    formats = tmp_path / "formats"
    _edit(mapping, "\npolicies:\n", '\n  civility:\n    "Mme": MME\n    "M.": M\n'
          "\npolicies:\n")
    _edit(mapping, "  default_civility: MME", "  default_civility: Madame")
    at = next(i for i, text in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1)
              if text.startswith("  default_civility: Madame"))
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert "policies.default_civility 'Madame' is not a value " in r.output, r.output
    assert f"[mapping {mapping}:{at}: policies.default_civility] (rule mapping.code-fit)" \
        in r.output, r.output
    # no default civility: nothing of it checked
    _edit(mapping, "  missing_civility: default ", "  # missing_civility: default ")
    _edit(mapping, "  default_civility: Madame", "  # default_civility: Madame")
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == 0, r.output
    assert "policies.default_civility" not in r.output, r.output


def _unlisted(mapping, formats) -> str:
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == 0, r.output
    said = [ln for ln in r.stderr.splitlines() if "(rule mapping.civility-values)" in ln]
    assert len(said) <= 1, said
    return said[0] if said else ""


def test_the_civilities_format_yaml_lists_are_each_looked_for_in_the_column(tmp_path):
    """format.yaml listing the civilities the build holds them to silences the warning
    only when the column takes every one of them."""
    mapping = _civility_bundle(tmp_path)
    formats = tmp_path / "formats"
    source = formats / "acme-compta" / "format.yaml"
    _edit(source, "  # debtor.civility: {max: 10, values: [Mr, Mme]}",
          "  debtor.civility: {max: 10, values: [M, MME, Mme]}")
    assert "which takes only 'M', 'MME' (layout.values)" in _unlisted(mapping, formats)
    _edit(source, "values: [M, MME, Mme]}", "values: [M, MME]}")
    assert _unlisted(mapping, formats) == ""


def test_the_examples_and_the_advice_fit_the_column(tmp_path):
    """The civilities given as refused are those of Mme, M., Madame, Monsieur the column
    lacks, none when it takes all four; the advice (e.g. 'X': MME) only when it takes
    MME."""
    mapping = _civility_bundle(tmp_path)
    formats = tmp_path / "formats"
    layout = formats / "acme-compta" / "layout.yaml"
    _edit(layout, "values: [M, MME]}", "values: [M, Mme]}")
    _edit(mapping, "  default_civility: MME", "  default_civility: Mme")  # one it takes
    said = _unlisted(mapping, formats)
    assert "an invoice whose civility is another ('M.', 'Madame') is refused" in said, said
    assert "e.g." not in said, said
    _edit(layout, "values: [M, Mme]}", 'values: [Mme, "M.", Madame, Monsieur, MME]}')
    said = _unlisted(mapping, formats)
    assert "'Monsieur', 'MME' (layout.values): without a codes.civility table each " \
        "civility goes out as exported (after the case policy), so an invoice whose " \
        "civility is another is refused by the layout at export; add a codes.civility " \
        "table giving each civility the export holds one of those [mapping " in said, said


def test_a_csv_column_joining_fields_is_measured_as_the_template_writes_it(tmp_path):
    """A CSV layout's column joining two bound fields (fmt65's joined columns were tested
    on fixed-width and XML files only): the sample is rendered again with each field at
    its limit and the column read as the layout reads it, so a template that cuts the
    joined value is measured at its cut."""
    mapping = _civility_bundle(tmp_path)
    formats = tmp_path / "formats"
    _edit(formats / "acme-compta" / "format.yaml", "  debtor.complement_name: {max: 38}\n",
          "  debtor.complement_name: {max: 38}\n  debtor.first_name: {max: 38}\n")
    template = formats / "acme-compta" / "acme-compta.csv.j2"
    _edit(template, "t.invoice_number, t.debtor.name,",
          't.invoice_number, t.debtor.name ~ " " ~ (t.debtor.first_name or ""),')
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == 0, r.output
    [said] = [ln for ln in r.stderr.splitlines() if "joined into it" in ln]
    assert "column Nom (#3)" in said and "takes at most 38 characters" in said, said
    assert "at their limits and 1 character(s) of the template's own, the value reaches " \
        "77 characters" in said, said
    _edit(template, 't.debtor.name ~ " " ~ (t.debtor.first_name or ""),',
          '(t.debtor.name ~ " " ~ (t.debtor.first_name or ""))[:60],')
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == 0, r.output
    [said] = [ln for ln in r.stderr.splitlines() if "joined into it" in ln]
    assert "the value reaches 60 characters" in said, said
