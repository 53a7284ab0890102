"""A finance package's layout refusing a value of the school's, at preview and export:
the refusal names the mapping's binding whose value the column holds, and what to do
(fmt63's walk-through of a made-up package, ACME Finances, built from the docs only)."""

from __future__ import annotations

from pathlib import Path

from pesgen.errors import ExitCode

from .conftest import EXAMPLES, RUN_DATE, run_cli
from .mapping_support import mapping_copy

COLLECTIVITY = (
    ('siret: "TODO"', 'siret: "21450999400015"'), ('id_post: "TODO"', 'id_post: "045012"'),
    ('cod_col: "TODO"', 'cod_col: "123"'), ('cod_bud: "TODO"', 'cod_bud: "00"'),
    ("exercise: TODO", "exercise: 2026"),
    ('TODO: {category: "01", legal_nature: "01"}', 'person: {category: "01", legal_nature: "01"}'),
    ("    name: TODO ", '    name: {expr: "invoice.payer_last_name or invoice.payer_name"} '),
    ("    amount: TODO", "    amount: amount"),
    ('TODO: {product: "TODO", nature: "TODO"}', "\n    ".join(
        f'{code}: {{product: P1, nature: "7062"}}' for code in (
            "FM-C1", "FM-C2", "INST-PIANO", "INST-VIOLON", "INST-GUIT", "ORCH", "LOC-INST",
            "DANSE-CLASS", "THEA-ADO"))),
    ('    person: {category: "01", legal_nature: "01"}',
     '    person: {category: "01", legal_nature: "01"}\n'
     '    organization: {category: "50", legal_nature: "03"}\n'
     '    association: {category: "50", legal_nature: "06"}'),
    ("  # negative_lines: net ", "  negative_lines: net "),
    ("  # transliterate: true ", "  transliterate: true "),
    ("  # foreign_address: postal_code_in_city ", "  foreign_address: postal_code_in_city "),
    ('  #   BELGIQUE: "131" ', '    BE: "131" '), ("  # countries: ", "  countries: "),
    ("\npolicies:\n", "\npolicies:\n  street_overflow: split\n  zero_total: leave_out\n"
     "  newlines: space\n  name_overflow: split\n"),
    ("  # missing_civility: default ", "  missing_civility: default "),
    ("  # default_civility: MME", "  default_civility: MME"),
)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def _civility_bundle(tmp_path: Path) -> Path:
    """A draft CSV bundle whose layout lists the civilities it takes (Civilite: M, MME)
    and whose format.yaml lists none; and a mapping of the example CSV binding the
    civility without a codes.civility table."""
    assert run_cli("new-format", "acme-compta", "--kind", "csv", "--dir",
                   tmp_path / "formats").exit_code == 0
    bundle = tmp_path / "formats" / "acme-compta"
    _edit(bundle / "acme-compta.csv.j2", '"Montant", "Date"]', '"Montant", "Date", "Civilite"]')
    _edit(bundle / "acme-compta.csv.j2", "doc.bordereau.issue_date | frdate]",
          "doc.bordereau.issue_date | frdate, t.debtor.civility]")
    _edit(bundle / "layout.yaml", "      - {name: Date, type: date, required: true}\n",
          "      - {name: Date, type: date, required: true}\n"
          "      - {name: Civilite, type: code, values: [M, MME]}\n")
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune d'Acme", "--format", "acme-compta", "--formats-dir",
                tmp_path / "formats", "--input", EXAMPLES / "school-export.csv", "--out", out)
    assert r.exit_code == 0, r.output
    path, _ = mapping_copy(tmp_path, out, *COLLECTIVITY)
    text = path.read_text(encoding="utf-8")
    assert "\n    civility: payer_title " in text and "\n  civility:" not in text
    return path


def _export(tmp_path: Path) -> Path:
    """The example CSV, its Mademoiselle (refused by the DGFiP's rule before any file is
    written) made Madame."""
    path = tmp_path / "export.csv"
    path.write_text((EXAMPLES / "school-export.csv").read_text(encoding="utf-8")
                    .replace(",Mlle,", ",Mme,"), encoding="utf-8")
    return path


def test_a_civility_the_layout_refuses_names_its_binding_and_the_table(tmp_path):
    """The layout's Civilite takes M and MME, format.yaml lists none, the mapping has no
    codes.civility: check-mapping passed, then preview failed with "'Mme' is not an
    allowed value (rule layout.values)" naming no binding. Preview and export name
    bindings.payer.civility (file:line) and say a codes.civility table fixes it."""
    mapping = _civility_bundle(tmp_path)
    line = next(i for i, text in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("    civility: payer_title"))
    where = f"[mapping {mapping}:{line}: bindings.payer.civility] (rule layout.values)"
    advice = ("'Mme' is not an allowed value ('M', 'MME'): without a codes.civility table "
              "each civility goes out as exported; add one giving each civility the export "
              "holds the one the file takes (e.g. 'Mme': MME) ")
    formats = tmp_path / "formats"
    source = _export(tmp_path)
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == 0, r.output
    r = run_cli("preview", "--mapping", mapping, "--input", source,
                "--formats-dir", formats, "--limit", "3", "--date", RUN_DATE)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    assert "PROBLEM" not in r.output, r.output
    said = [ln for ln in r.output.splitlines() if "(rule layout.values)" in ln]
    assert said and all(ln.endswith(where) for ln in said), said
    assert any(advice + where in ln for ln in said), said
    r = run_cli("export", "--mapping", mapping, "--input", source,
                "--formats-dir", formats, "--dry-run", "--create-store", "--date", RUN_DATE, "--db",
                f"sqlite:///{tmp_path / 'store.sqlite3'}")
    said = [ln for ln in r.output.splitlines() if "(rule layout.values)" in ln]
    assert said and all(ln.endswith(where) for ln in said), r.output


def test_check_mapping_tells_a_civility_the_layout_refuses_before_any_export(tmp_path):
    """The layout's Civilite takes M and MME: check-mapping passed a mapping without a
    codes.civility table (each civility going out as exported, 'Mme' refused by the
    layout at preview), and one whose table sends 'Madame', which the layout refuses on
    every invoice given it. It now warns of the first, naming the binding's line and the
    layout's column, and refuses the second (mapping.code-fit, exit 3), naming the
    table's line; a table sending M and MME passes without a word of it."""
    mapping = _civility_bundle(tmp_path)
    formats = tmp_path / "formats"
    line = next(i for i, text in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("    civility: payer_title"))
    layout = formats / "acme-compta" / "layout.yaml"
    column = next(i for i, text in enumerate(layout.read_text(encoding="utf-8").splitlines(), 1)
                  if "{name: Civilite," in text)
    place = (f"record 'titre', column Civilite (#8) ({layout}:{column}: "
             "records[0].columns[7])")
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == 0, r.output
    [warned] = [ln for ln in r.stderr.splitlines() if "(rule mapping.civility-values)" in ln]
    assert f", {place}, which takes only 'M', 'MME' (layout.values): without a " \
        "codes.civility table each civility goes out as exported" in warned, warned
    assert warned.startswith("warning: bindings.payer.civility is written as it is into ")
    assert warned.endswith(f"[mapping {mapping}:{line}: bindings.payer.civility] "
                           "(rule mapping.civility-values)"), warned
    _edit(mapping, "\npolicies:\n", '\n  civility:\n    "Mme": Madame\n    "M.": M\n'
          "\npolicies:\n")
    at = mapping.read_text(encoding="utf-8").splitlines().index('    "Mme": Madame') + 1
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert ("codes.civility.Mme 'Madame' is not a value "
            in r.output), r.output
    assert (f"{place} takes ('M', 'MME'; layout.values), where bindings.payer.civility is "
            "written as it is: every invoice given that civility would be refused by the "
            f"layout at export; make it one of those [mapping {mapping}:{at}: "
            "codes.civility.Mme] (rule mapping.code-fit)") in r.output, r.output
    assert "codes.civility.M." not in r.output, r.output
    _edit(mapping, '    "Mme": Madame\n', '    "Mme": MME\n')
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == 0, r.output
    assert "Civilite" not in r.output, r.output


def test_a_misspelt_record_type_names_the_template_line_and_explains_the_totals(tmp_path):
    """A template writing a record type the layout does not know ("03" for "02", fmt63's
    "DEBT"): check-mapping said "column Code (#1): '03' is no record type" without the
    template line, as it names a line too short or too long, and the header's count of
    titles that followed said to "check what the template writes" for
    doc.bordereau.count, which is right. Both now point at the record type: the first
    names the template line writing it, the totals problem says it may follow from it."""
    formats = tmp_path / "formats"
    assert run_cli("new-format", "acme-fixe", "--kind", "fixed", "--dir", formats
                   ).exit_code == 0
    template = formats / "acme-fixe" / "acme-fixe.txt.j2"
    at = next(i for i, text in enumerate(template.read_text(encoding="utf-8").splitlines(), 1)
              if text.startswith('{{ "02" }}{{ t.number'))
    _edit(template, '{{ "02" }}{{ t.number', '{{ "03" }}{{ t.number')
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune d'Acme", "--format", "acme-fixe", "--formats-dir",
                formats, "--input", EXAMPLES / "school-export.csv", "--out", out)
    assert r.exit_code == 0, r.output
    mapping, _ = mapping_copy(tmp_path, out, *COLLECTIVITY)
    r = run_cli("check-mapping", mapping, "--formats-dir", formats)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    said = [ln for ln in r.stderr.splitlines() if "(rule layout.record-type)" in ln]
    assert said and all("column Code (#1): '03' is no record type" in ln and
                        ln.endswith(f"[template {template}:{at}] (rule layout.record-type)")
                        for ln in said), r.stderr
    [totals] = [ln for ln in r.stderr.splitlines() if "(rule layout.totals)" in ln]
    assert ("are 0: this may follow from the line(s) of no known record type, which count "
            "as none (lines ") in totals and (
                ": rule layout.record-type): fix those first; else check what the template "
                "writes there (doc.bordereau.count") in totals, totals
    # preview (as export) names the template line writing such lines on the sample titles
    r = run_cli("preview", "--mapping", mapping, "--input", _export(tmp_path), "--formats-dir",
                formats, "--limit", "2", "--date", RUN_DATE)
    said = [ln for ln in r.output.splitlines()
            if ln.startswith("LAYOUT ") and "(rule layout.record-type)" in ln]
    assert said and all(ln.endswith(f"[template {template}:{at}] (rule layout.record-type)")
                        for ln in said), r.output


def test_a_value_the_layout_refuses_of_another_binding_gives_no_civility_advice(tmp_path):
    """The codes.civility advice is for a civility the layout refuses: a value of another
    binding the layout's column does not list (a first name in a code column) names its
    binding alone."""
    assert run_cli("new-format", "acme-compta", "--kind", "csv", "--dir",
                   tmp_path / "formats").exit_code == 0
    bundle = tmp_path / "formats" / "acme-compta"
    _edit(bundle / "acme-compta.csv.j2", '"Montant", "Date"]', '"Montant", "Date", "PrenomCode"]')
    _edit(bundle / "acme-compta.csv.j2", "doc.bordereau.issue_date | frdate]",
          "doc.bordereau.issue_date | frdate, t.debtor.first_name]")
    _edit(bundle / "layout.yaml", "      - {name: Date, type: date, required: true}\n",
          "      - {name: Date, type: date, required: true}\n"
          "      - {name: PrenomCode, type: code, values: [JEAN]}\n")
    out = tmp_path / "m.yaml"
    r = run_cli("new-mapping", "Commune d'Acme", "--format", "acme-compta", "--formats-dir",
                tmp_path / "formats", "--input", EXAMPLES / "school-export.csv", "--out", out)
    assert r.exit_code == 0, r.output
    mapping, _ = mapping_copy(tmp_path, out, *COLLECTIVITY)
    r = run_cli("preview", "--mapping", mapping, "--input", _export(tmp_path),
                "--formats-dir", tmp_path / "formats", "--limit", "3", "--date", RUN_DATE)
    said = [ln for ln in r.output.splitlines() if "(rule layout.values)" in ln]
    assert said and all(ln.endswith(": bindings.payer.first_name] (rule layout.values)")
                        for ln in said), r.output
    assert not any("codes.civility" in ln for ln in said), said
