"""The run summary's policy notes, and the length problems of the split policies, name
the canonical fields the template reads (address.street, debtor.complement_name,
address.country_code…); a PES format's name the PES element too (Adr1, ComplNom,
CodPays), a finance package's never (its file has none of them)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from pesgen.errors import InputDataError
from pesgen.export import export

from .conftest import EXAMPLES, MAPPINGS, run_cli
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
ORMC = MAPPINGS / "villeneuve-sur-loing.yaml"
CORAIL = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
PES_NAMES = ("Adr1", "Adr2", "ComplNom", "Nom (", "CodPays", "Ville", "CP 99999", "Hélios",
             "TitCpte")


def _notes(mapping, tmp_path) -> dict[tuple[str, str], str]:
    result = export(mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN)
    return {(n.invoice, n.policy): n.detail for n in result.notes
            if n.policy in ("street_overflow", "name_overflow", "foreign_address")}


def test_a_finance_package_s_notes_name_the_canonical_fields_only(tmp_path):
    notes = _notes(CORAIL, tmp_path)
    assert notes == {
        ("FA-2026-00104", "street_overflow"):
            "street of 54 characters split into address.complement (36) + address.street (16)",
        ("FA-2026-00105", "foreign_address"):
            "BE: address.postal_code 99999, address.city '1040 …', address.country_code 131",
        ("FA-2026-00107", "street_overflow"):
            "street of 39 characters split into address.complement (10) + address.street (28)",
        ("FA-2026-00108", "name_overflow"):
            "name of 40 characters split into debtor.name (31) + debtor.complement_name (8)",
    }
    for detail in notes.values():
        assert not any(name in detail for name in PES_NAMES), detail


def test_a_pes_format_s_notes_name_the_pes_element_and_the_field(tmp_path):
    notes = _notes(ORMC, tmp_path)
    assert notes[("FA-2026-00104", "street_overflow")] == (
        "street of 54 characters split into Adr1 (36) + Adr2 (16): address.complement + "
        "address.street")
    assert notes[("FA-2026-00105", "foreign_address")] == (
        "BE: CP 99999, Ville '1040 …', CodPays 131 (address.postal_code, address.city, "
        "address.country_code)")
    assert notes[("FA-2026-00108", "name_overflow")] == (
        "name of 40 characters split into Nom (31) + ComplNom (8): debtor.name + "
        "debtor.complement_name")


@pytest.mark.parametrize("policy, number, expected", [
    ("street_overflow: split", "FA-2026-00104",
     "address.street is 54 characters, format cosoluce-corail allows 38 (policy "
     "street_overflow: refuse: set policies.street_overflow: split to put its start into "
     "address.complement when that is empty)"),
    ("name_overflow: split", "FA-2026-00108",
     "debtor.name is 40 characters, format cosoluce-corail allows 38 (policy "
     "name_overflow: refuse: set policies.name_overflow: split to put its end into "
     "debtor.complement_name when that is empty)"),
])
def test_a_finance_package_s_length_problem_names_its_format_not_helios(
        tmp_path, policy, number, expected):
    mapping, _ = mapping_copy(tmp_path, CORAIL, (policy, policy.replace("split", "refuse")),
                              name="m.yaml")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"] = [i for i in data["invoices"] if i["number"] == number]
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError) as info:
        export(mapping, source, tmp_path / "out", RUN)
    assert [p.message for p in info.value.problems] == [expected]


# ------------------------------------------------------------ the joint debtor's notes

EMAGNUS = MAPPINGS / "villeneuve-sur-loing-emagnus.yaml"


def _joint_export(tmp_path):
    """The e.magnus mapping, binding the joint debtor's reference too, and the example
    whose first invoice (FA-2026-00101, payer Dupont-Lefèvre) names a joint debtor of the
    same name, with a first name, a reference and a street the text policies change and no
    civility."""
    mapping, _ = mapping_copy(tmp_path, EMAGNUS, (
        "    name: joint_payer.last_name\n",
        "    name: joint_payer.last_name\n    ref: joint_payer.ref\n"), name="m.yaml")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["joint_payer"] = {
        "kind": "person", "title": "", "last_name": "Dupont-Lefèvre", "first_name": "Zoë",
        "ref": "FAM-é42", "address": {
            "street": "Résidence les Jardins de la Roseraie, appartement 1204",
            "postal_code": "45200", "city": "Montargis"}}
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return mapping, source


def test_a_joint_debtor_s_notes_name_its_own_fields(tmp_path):
    """The joint debtor's text notes said 'debtor.name: è→e' as the debtor's do (the
    field whose limit its value is held to), and its name, the payer's too, was counted
    under debtor.name: support could not tell whose name the policies changed. They name
    joint_payer.name; its street split and default civility say they are the joint
    debtor's."""
    mapping, source = _joint_export(tmp_path)
    result = export(mapping, source, tmp_path / "out", RUN)
    first = [(n.policy, n.detail) for n in result.notes if n.invoice == "FA-2026-00101"]
    translit = [d for p, d in first if p == "transliterate"]
    assert translit.count("debtor.name: È→E") == 1, translit
    assert "joint_payer.name: È→E" in translit
    assert "joint_payer.first_name: Ë→E" in translit
    assert "joint_payer.ref: É→E" in translit
    assert ("missing_civility", "joint_payer: no civility: 'MME' used") in first
    assert ("street_overflow", "joint_payer: street of 54 characters split into "
            "address.complement (36) + address.street (16)") in first
    [case] = [n.detail for n in result.notes if n.policy == "case"]
    assert "debtor.name ×11" in case and "joint_payer.name ×1" in case, case
    assert "joint_payer.street ×1" in case and "joint_payer.ref ×1" in case, case


def test_the_summary_counts_a_joint_debtor_s_changes_under_its_fields(tmp_path):
    """The summary's per-field count of transliterations said debtor.name ×3 for two
    payers and a joint debtor, and a joint debtor's reference changed (an identifier, as
    the debtor's) was only counted: it is listed by invoice, and counted under
    joint_payer.ref."""
    mapping, source = _joint_export(tmp_path)
    r = run_cli("export", "--mapping", mapping, "--input", source, "--out", tmp_path / "out",
                "--date", "2026-11-23", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                "--create-store")
    assert r.exit_code == 0, r.output
    assert "  - FA-2026-00101: transliterate: joint_payer.ref: É→E\n" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("  - *: transliterate:"))
    assert "debtor.name ×2, joint_payer.first_name ×1, joint_payer.name ×1, " \
        "joint_payer.ref ×1, joint_payer.street ×1" in line, line
