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

from .conftest import EXAMPLES, MAPPINGS
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
