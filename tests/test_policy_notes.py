"""The run summary's policy notes, and the length problems of the split policies, name
the canonical fields the template reads (address.street, debtor.complement_name,
address.country_code…); a PES format's name the PES element too (Adr1, ComplNom,
CodPays), a finance package's never (its file has none of them)."""

from __future__ import annotations

import base64
import json
import zlib
from collections import Counter
from datetime import date

import pytest

from pesgen.build import PolicyNote, noted_field
from pesgen.cli import _shown_notes
from pesgen.errors import InputDataError
from pesgen.export import export
from pesgen.notes import pack_json
from pesgen.store import unpack_notes

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
        # corail.xml.j2 writes CP and Ville, no country code: the note names no CodPays
        ("FA-2026-00105", "foreign_address"):
            "BE: address.postal_code 99999, address.city '1040 …'; no template of format "
            "cosoluce-corail writes address.country_code",
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


def _two_joint_debtors(tmp_path):
    """``_joint_export``'s mapping and example, the second invoice (FA-2026-00102) naming
    the first's joint debtor again (its texts' notes then replayed from the text cache),
    living in Belgium, with a civility the codes.civility table changes."""
    mapping, source = _joint_export(tmp_path)
    data = json.loads(source.read_text(encoding="utf-8"))
    data["invoices"][1]["joint_payer"] = {
        **data["invoices"][0]["joint_payer"], "title": "Mme", "address": {
            "street": "Rue Belliard 12", "postal_code": "1040", "city": "Bruxelles",
            "country": "BE"}}
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return mapping, source


def test_a_joint_debtor_s_notes_carry_its_own_field_from_the_start(tmp_path):
    """A note said which field it is about in its words only: the summary parsed the
    detail's head for it ('joint_payer.name: Œ→OE'), and the joint debtor's other notes
    were relabelled after its checks by rewriting their words ('joint_payer: street of
    …'). Each note on a value carries its field (PolicyNote.field): the debtor's, the
    joint debtor's own, made so where the note is made, replayed text notes too; the
    words are as before."""
    mapping, source = _two_joint_debtors(tmp_path)
    result = export(mapping, source, tmp_path / "out", RUN)
    joint = {inv: [(n.policy, n.field, n.detail) for n in result.notes if n.invoice == inv
                   and ("joint_payer" in n.detail or n.field.startswith("joint_payer"))]
             for inv in ("FA-2026-00101", "FA-2026-00102")}
    assert joint["FA-2026-00101"] == [
        ("transliterate", "joint_payer.name", "joint_payer.name: È→E"),
        ("transliterate", "joint_payer.first_name", "joint_payer.first_name: Ë→E"),
        ("missing_civility", "joint_payer.civility", "joint_payer: no civility: 'MME' used"),
        ("transliterate", "joint_payer.ref", "joint_payer.ref: É→E"),
        ("transliterate", "joint_payer.street", "joint_payer.street: É→E"),
        ("street_overflow", "joint_payer.street", "joint_payer: street of 54 characters "
         "split into address.complement (36) + address.street (16)"),
    ]
    assert joint["FA-2026-00102"] == [  # its name's notes replayed (the same texts)
        ("transliterate", "joint_payer.name", "joint_payer.name: È→E"),
        ("transliterate", "joint_payer.first_name", "joint_payer.first_name: Ë→E"),
        ("civility", "joint_payer.civility", "joint_payer: 'Mme' sent as 'MME'"),
        ("transliterate", "joint_payer.ref", "joint_payer.ref: É→E"),
        ("foreign_address", "joint_payer.country", "joint_payer: BE: address.postal_code "
         "99999, address.city '1040 …'; no template of format bl-emagnus writes "
         "joint_payer.country_code"),
    ]
    payer = {(n.invoice, n.field, n.detail) for n in result.notes if n.policy == "civility"}
    assert ("FA-2026-00102", "debtor.civility", "'M.' sent as 'M'") in payer
    # a text policy's note: the field it carries is the one its words open with
    texts = [n for n in result.notes if n.policy in ("transliterate", "newlines")]
    assert len(texts) > 20
    assert [n.field for n in texts] == [n.detail.split(":", 1)[0] for n in texts]


def test_a_note_recorded_without_its_field_reads_back_as_before():
    """A run recorded before notes kept their field has notes_z without it: read back,
    such a note has field "", and the summary takes its field from the detail's head,
    as it did, listing and counting it as before; a note that carries its field is
    counted by it, whatever its words open with."""
    origin = "in.json:$.invoices[0]"
    # the stored form pesgen wrote then (store.pack_notes): each note's fields, sorted
    # keys, in one compressed JSON list, in base64
    old = [{"policy": "transliterate", "invoice": "FA-1", "origin": origin,
            "detail": detail, "line": ""}
           for detail in ("joint_payer.name: È→E", "joint_payer.ref: É→E", "debtor.name: È→E")]
    packer = zlib.compressobj(6)
    packed = base64.b64encode(packer.compress(
        ("[" + ",".join(map(pack_json, old)) + "]").encode("utf-8")) + packer.flush())
    read = [PolicyNote(**d) for d in unpack_notes({"notes_z": packed.decode("ascii")})]
    assert [(n.field, noted_field(n)) for n in read] == [
        ("", "joint_payer.name"), ("", "joint_payer.ref"), ("", "debtor.name")]
    new = PolicyNote("transliterate", "FA-2", origin, "É→E in the reference",
                     field="joint_payer.ref")
    counted: Counter[str] = Counter()
    shown = [n.detail for n in _shown_notes([*read, new], counted)]
    assert shown == ["joint_payer.ref: É→E", "É→E in the reference"]
    assert counted == {"joint_payer.name": 1, "joint_payer.ref": 2, "debtor.name": 1}


def test_the_json_summary_gives_each_listed_note_s_field(tmp_path):
    """export --format json listed a note's invoice, policy, origin and detail: a school
    software reading which field a transliteration changed parsed the words. Each note
    gives its field (null for one on no one value); the other keys are as before."""
    mapping, source = _two_joint_debtors(tmp_path)
    r = run_cli("export", "--mapping", mapping, "--input", source, "--out", tmp_path / "out",
                "--date", "2026-11-23", "--db", f"sqlite:///{tmp_path / 'x.db'}",
                "--create-store", "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    refs = [n for n in report["notes"] if n["policy"] == "transliterate"]
    assert [(n["invoice"], n["field"], n["detail"]) for n in refs] == [
        ("FA-2026-00101", "joint_payer.ref", "joint_payer.ref: É→E"),
        ("FA-2026-00102", "joint_payer.ref", "joint_payer.ref: É→E")]
    assert set(refs[0]) == {"invoice", "policy", "origin", "detail", "field"}
    fields = {n["policy"]: n["field"] for n in report["notes"]
              if n["invoice"] == "FA-2026-00102"}
    assert fields["foreign_address"] == "joint_payer.country"
    assert {n["field"] for n in report["notes"]
            if n["policy"] in ("pricing", "negative_lines")} == {None}
    assert report["transliterated"]["joint_payer.name"] == 2
