"""The values a format takes in a field (format.yaml fields.debtor.civility.values: Corail's
Mr, Mme, its XSD's enumeration): a mapping's civility code outside them is refused when
the mapping is loaded (check-mapping, preview, export), naming its line and key; without
a codes.civility table, an invoice whose civility is not one of them is refused, naming
its record; a format.yaml listing values its own field cannot hold is refused, naming
its line; and each bundle's list is held to its XSD (or layout) by rendering its
fixture with each value, and with one outside the list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pesgen._yaml import load_yaml_file
from pesgen.bundles import fixture_of, render_fixture
from pesgen.cli import app
from pesgen.errors import InputDataError, MappingError, OutputInvalidError
from pesgen.export import export
from pesgen.formats import load_format

from .conftest import EXAMPLES, MAPPINGS, OFFICIAL_DIR, OFFICIAL_ENTRY, ROOT
from .mapping_support import mapping_copy
from .test_vendor_formats import RUN

CORAIL = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
CORAIL_BUNDLE = ROOT / "templates" / "cosoluce-corail"
TEMPLATES = ROOT / "templates"
OFFICIAL = OFFICIAL_DIR if OFFICIAL_ENTRY.is_file() else None


def _corail_values_line() -> int:
    [line] = [i for i, text in enumerate(
        (CORAIL_BUNDLE / "format.yaml").read_text(encoding="utf-8").splitlines(), 1)
        if text.startswith("  debtor.civility:")]
    return line


@pytest.mark.parametrize("command", ["check-mapping", "preview"])
@pytest.mark.parametrize("old, new, key", [
    ('    "Mlle": Mme ', '    "Mlle": MME ', "codes.civility.Mlle"),
    ("  default_civility: Mme", "  default_civility: MME", "policies.default_civility"),
])
def test_a_civility_code_the_format_does_not_take_is_refused_naming_its_line(
        tmp_path, command, old, new, key):
    """Corail's XSD takes Mr and Mme: a mapping giving MME passed check-mapping and
    preview, and only the export's XSD refused it (exit 6), naming no mapping line."""
    mapping, (line,) = mapping_copy(tmp_path, CORAIL, (old, new))
    args = [command, str(mapping)] if command == "check-mapping" else [
        command, "--mapping", str(mapping), "--input", str(EXAMPLES / "school-export.json"),
        "--date", "2026-11-23"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 3, run.output  # the mapping's error
    assert f"[mapping {mapping}:{line}: {key}]" in run.output
    assert (f"{key}: the civility 'MME' is not one format cosoluce-corail takes in "
            "debtor.civility (did you mean 'Mme'? it takes Mr, Mme, case included: "
            f"{CORAIL_BUNDLE / 'format.yaml'}:{_corail_values_line()}: "
            "fields.debtor.civility.values)") in run.output
    assert "(rule codes.civility)" in run.output


def _without_table(tmp_path: Path, *edits: tuple[str, str]) -> tuple[Path, list[int]]:
    """The Corail mapping without its codes.civility table, then ``edits`` made
    (``mapping_copy``)."""
    text = CORAIL.read_text(encoding="utf-8")
    table = text[text.index("  civility:                      # Corail"):
                 text.index("  countries:")]
    return mapping_copy(tmp_path, CORAIL, (table, ""), *edits)


def test_an_invoice_whose_civility_the_format_does_not_take_is_refused_without_a_table(
        tmp_path):
    """Without codes.civility each civility is sent as exported: 'Madame' went into
    Corail's file and only its XSD refused it (exit 6), naming neither the invoice's
    record nor the mapping."""
    mapping, (_, _, line) = _without_table(
        tmp_path, ("  case: upper ", "  case: keep  "),
        ("    civility: payer.title", "    civility: payer.title"))
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    for invoice in data["invoices"]:  # (a person's: pes.civility refuses another's)
        if invoice["payer"]["kind"] == "person":
            invoice["payer"]["title"] = "Mme"
    data["invoices"][1]["payer"]["title"] = "Madame"  # a person's
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError) as info:
        export(mapping, source, tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert problem.rule == "codes.civility"
    assert problem.record == f"{source}:$.invoices[1]"
    assert problem.invoice == data["invoices"][1]["number"]
    assert problem.mapping == f"{mapping}:{line}: bindings.payer.civility"
    assert problem.message.startswith(
        "the civility 'Madame' is not one format cosoluce-corail takes in debtor.civility "
        "(it takes Mr, Mme, case included: ")
    assert "add the table" in problem.message
    assert not (tmp_path / "out").exists()


def test_the_case_policy_s_civility_is_held_to_the_values_too(tmp_path):
    """Under case: upper the exported 'Mme' goes out 'MME': refused, saying so, with
    the table entry that sends it as Corail writes it."""
    mapping, _ = _without_table(tmp_path)
    with pytest.raises(InputDataError) as info:
        export(mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN)
    first = info.value.problems[0]
    assert first.rule == "codes.civility"
    assert first.message.startswith("the civility 'MME' (exported as 'Mme', changed by the "
                                    "text policies) is not one format cosoluce-corail takes")
    assert first.message.endswith("sent as written ('Mme': 'Mme')")


def _bundle_copy(tmp_path: Path, old: str, new: str) -> Path:
    """Corail's bundle in a formats folder of its own, its format.yaml edited."""
    bundle = tmp_path / "formats" / "cosoluce-corail"
    shutil.copytree(CORAIL_BUNDLE, bundle)
    mapping_copy(bundle, bundle / "format.yaml", (old, new))
    return bundle


@pytest.mark.parametrize("values, said", [
    ("[]", "[] should be non-empty"),
    ("[Mr, Mme, Mr]", "['Mr', 'Mme', 'Mr'] has non-unique elements"),
    ("[Mr, Mademoiselle]", "the value 'Mademoiselle' is 12 characters, format cosoluce-corail "
                            "allows 10"),
    ("[Mr, 'M Œ']", "the value 'M Œ' holds 'Œ', which charset latin-1 does not allow"),
])
def test_a_format_listing_values_its_field_cannot_hold_is_refused_naming_its_line(
        tmp_path, values, said):
    bundle = _bundle_copy(tmp_path, "values: [Mr, Mme]", f"values: {values}")
    with pytest.raises(MappingError) as info:
        load_format(bundle)
    [problem] = info.value.problems
    assert problem.rule == "format.schema"
    assert said in problem.message
    at = f"{bundle / 'format.yaml'}:{_corail_values_line()}: fields.debtor.civility.values"
    assert problem.mapping.startswith(at)
    run = CliRunner().invoke(app, ["check-format", "cosoluce-corail", "--formats-dir",
                                   str(bundle.parent)])
    assert run.exit_code == 3, run.output
    assert said in run.output


def test_values_are_for_the_civility_alone(tmp_path):
    """pesgen checks the civility's values only: a list on another field would be
    believed checked and never be."""
    assert load_format(CORAIL_BUNDLE).limit("debtor.civility").values == ("Mr", "Mme")
    bundle = _bundle_copy(tmp_path, "  debtor.name: {max: 38}",
                          "  debtor.name: {max: 38, values: [A]}")
    with pytest.raises(MappingError) as info:
        load_format(bundle)
    [problem] = info.value.problems
    assert "unknown key 'values' (allowed: max, charset)" in problem.message
    assert problem.mapping.endswith(": fields.debtor.name.values")


# ---------------------------------------------------------------- each bundle's XSD

def _listing() -> list[tuple[str, str]]:
    """(bundle, field) of each shipped bundle's format.yaml listing a field's values."""
    return [(folder.name, key)
            for folder in sorted(p for p in TEMPLATES.iterdir() if (p / "format.yaml").is_file())
            for key, limit in load_format(folder).fields.items() if limit.values is not None]


LISTING = _listing()


def test_corail_lists_the_civilities_of_its_xsd():
    assert ("cosoluce-corail", "debtor.civility") in LISTING
    assert load_format(CORAIL_BUNDLE).limit("debtor.civility").values == ("Mr", "Mme")
    # the DGFiP's list is unconfirmed (docs/rules.md, Civility list): the PES bundles
    # list none, nor does JVS's XSD (Texte10) or e.magnus's layout (text 32)
    assert not {name for name, _ in LISTING} & {"pes-ormc", "pes-titres", "jvs-millesime",
                                                 "bl-emagnus"}


def _plain(path: Path) -> dict:
    """A YAML file as plain data (its scalars as pesgen reads them: '01' stays a string)."""
    data, problems, _ = load_yaml_file(path)
    assert not problems, problems
    return json.loads(json.dumps(data))


def _fixture_giving(tmp_path: Path, name: str, civility: str) -> Path:
    """Bundle ``name`` copied with its fixture's mapping giving every debtor
    ``civility`` (a code of its table, sent as written) and its format.yaml listing no
    values (so that only the bundle's XSD or layout judges the civility)."""
    bundle = tmp_path / "formats" / name
    shutil.copytree(TEMPLATES / name, bundle)
    fmt = _plain(bundle / "format.yaml")
    for limit in fmt["fields"].values():
        limit.pop("values", None)
    (bundle / "format.yaml").write_text(yaml.safe_dump(fmt, allow_unicode=True),
                                        encoding="utf-8")
    fixture = fixture_of(load_format(bundle))
    assert fixture is not None
    mapping = _plain(fixture.mapping)
    for group in ("payer", "joint_payer"):
        if group in mapping["bindings"]:
            # a person's (pes.civility refuses one given to a company or an association)
            mapping["bindings"][group]["civility"] = {
                "expr": f"'given' if invoice.{group}.kind == 'person' else ''"}
    mapping["codes"]["civility"] = {"given": civility}
    if "default_civility" in mapping.get("policies", {}):
        mapping["policies"]["default_civility"] = civility
    fixture.mapping.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return bundle


def _render(bundle: Path, out: Path) -> list[Path]:
    fmt = load_format(bundle)
    if fmt.is_pes and OFFICIAL is None:
        pytest.skip("the DGFiP XSD package is not here")
    result, _ = render_fixture(fmt, out, OFFICIAL)
    return [f.path for f in result.files]


@pytest.mark.parametrize("name, field", LISTING)
def test_each_value_a_bundle_lists_passes_its_xsd_and_another_does_not(tmp_path, name, field):
    """format.yaml's list is the XSD's (or layout's): the fixture rendered with each
    value is valid (export validates every file it writes), and with a value outside
    the list (the first one upper-cased) it is refused by the XSD, not by pesgen's
    own check, which the copy lacks."""
    assert field == "debtor.civility"  # the one field that takes values (the schema's)
    values = load_format(TEMPLATES / name).limit(field).values
    assert values
    for value in values:
        bundle = _fixture_giving(tmp_path / value, name, value)
        written = _render(bundle, tmp_path / value / "out")
        assert any(f'"{value}"'.encode() in path.read_bytes() for path in written), value
    outside = values[0].upper() if values[0].upper() not in values else values[0].lower()
    assert outside not in values
    bundle = _fixture_giving(tmp_path / "outside", name, outside)
    with pytest.raises(OutputInvalidError) as info:
        _render(bundle, tmp_path / "outside" / "out")
    rules = {p.rule for p in info.value.problems}
    assert rules and rules <= {"xsd.bundle", "layout.value", "layout.code"}, rules
    assert any(outside in p.message for p in info.value.problems)


def test_check_mapping_warns_of_a_civility_bound_without_the_table_the_format_needs(
        tmp_path):
    """check-mapping reads no export: it cannot know the civilities, but it can say
    that, the format taking a list, each will be held to it as exported (the payer's and
    the joint payer's bindings, each with its line); with the table, no warning."""
    mapping, lines = _without_table(tmp_path, ("    civility: payer.title",
                                                "    civility: payer.title"),
                                    ("    civility: joint_payer.title",
                                     "    civility: joint_payer.title"))
    run = CliRunner().invoke(app, ["check-mapping", str(mapping)])
    assert run.exit_code == 0, run.output
    said = ("warning: format cosoluce-corail takes Mr, Mme in debtor.civility (case "
            "included): without a codes.civility table each civility is sent as exported, "
            "after the text policies, and an invoice whose civility is not one of them is "
            "refused; add the table [mapping {where}] (rule codes.civility)")
    warned = [ln for ln in run.stderr.splitlines() if "codes.civility" in ln]
    assert warned == [
        said.format(where=f"{mapping}:{lines[1]}: bindings.payer.civility"),
        said.format(where=f"{mapping}:{lines[2]}: bindings.joint_payer.civility")]
    table = CliRunner().invoke(app, ["check-mapping", str(CORAIL)])
    assert table.exit_code == 0 and "codes.civility" not in table.stderr
