"""Finance-package formats (layouts reconstructed from public integrations): the example
run as Berger-Levrault e.magnus WTAMC001 v19 files, as a JVS Millésime Online XML and as a
Cosoluce Corail ImportCosoluce XML, valid against their layout / XSD; and a rendered file
that breaks its layout is refused with file:line, column and rule, nothing written."""

from __future__ import annotations

import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from typer.testing import CliRunner

from pesgen.bundles import narrow_widths
from pesgen.cli import app
from pesgen.errors import (
    InputDataError,
    OutputInvalidError,
    Problem,
    TemplateError,
    UsageError,
)
from pesgen.export import export
from pesgen.formats import find_format
from pesgen.layout import load_layout, split_csv, validate_file
from pesgen.mapping import load_mapping
from pesgen.resources import data_dir
from pesgen.validate import load_xsd, official_xsd_path

from .conftest import EXAMPLES, MAPPINGS, ROOT
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
EMAGNUS = MAPPINGS / "villeneuve-sur-loing-emagnus.yaml"
JVS = MAPPINGS / "villeneuve-sur-loing-jvs.yaml"
CORAIL = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
BUNDLE = ROOT / "templates" / "bl-emagnus"


@pytest.fixture(scope="module")
def emagnus(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("emagnus")
    result = export(EMAGNUS, EXAMPLES / "school-export.json", out, RUN)
    assert result.titles == 11
    assert result.references == []  # payment_references: false
    return {f.path.name: f.path for f in result.files}


def test_emagnus_writes_the_main_and_side_files_valid_against_their_layouts(emagnus):
    assert sorted(emagnus) == ["WTAMC001.txt", "WTAMC001AS.txt", "WTAMC001_TSOL.txt"]
    for name, layout in (("WTAMC001.txt", "wtamc001"), ("WTAMC001AS.txt", "wtamc001as"),
                         ("WTAMC001_TSOL.txt", "wtamc001tsol")):
        assert validate_file(emagnus[name], load_layout(BUNDLE / f"{layout}.layout.yaml")) == []
    assert emagnus["WTAMC001_TSOL.txt"].read_bytes() == b""  # no joint debtor in the example
    raw = emagnus["WTAMC001.txt"].read_bytes()
    assert raw.endswith(b"\r\n") and b"\r\n" in raw[:-2] and b"\n" not in raw.replace(b"\r\n", b"")
    raw.decode("cp1252")


def _records(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("cp1252")
    rows = []
    for line in text.split("\r\n")[:-1]:
        fields, error = split_csv(line, ";", '"')
        assert error is None
        rows.append([v for v, _ in fields])
    return rows


def test_emagnus_one_record_per_imputation_and_one_detail_per_line(emagnus):
    main = _records(emagnus["WTAMC001.txt"])
    detail = _records(emagnus["WTAMC001AS.txt"])
    assert {len(r) for r in main} == {125} and {len(r) for r in detail} == {17}
    first = [r for r in main if r[0] == "1"]
    # invoice 101: FM-C1 (netted by the sibling discount), piano, dance: 3 imputations
    assert [(r[6], r[53], r[25], r[28], r[29]) for r in first] == [
        ("M", "FMC1", "7062", "311", "62,25"), ("S", "INST", "7062", "311", "142,50"),
        ("S", "DANS", "7062", "312", "78,00")]
    r = first[0]
    assert (r[1], r[2], r[3], r[4], r[5], r[23], r[24]) == (
        "T", "O", "VSL", "00", "2026", "R", "23/11/2026")
    # AdrLig1-3: the address lines in reading order (complement, street, locality)
    assert (r[9], r[10], r[11], r[12], r[14], r[15]) == (
        "DUPONT-LEFEVRE", "HELENE", "BATIMENT B", "12 RUE DES LILAS", "45200", "MONTARGIS")
    # SEPA columns 64-80, PES tiers 90-98, ASAP 108-112
    assert (r[63], r[64], r[70], r[71], r[73], r[74], r[78]) == (
        "DUPONT-LEFEVRE HELENE", "FR7630006000011234567890189", "O", "05/12/2026",
        "FR72ZZZ123456", "CRCVSL000042", "03")
    assert (r[89], r[90], r[91], r[92], r[97]) == ("19", "01", "01", "MME", "01")
    assert (r[107], r[110], r[111]) == ("O", "FA-2026-00101", "01")
    # amounts of the imputations add up to the invoice: 282.75
    assert sum(float(x[29].replace(",", ".")) for x in first) == pytest.approx(282.75)
    # the detail file: one record per line, quantity x unit price = amount
    d = [x for x in detail if x[1] == "1"]
    assert [(x[4][:10], x[5], x[9], x[12], x[16]) for x in d] == [
        ("FORMATION ", "1", "62,25", "62,25", "1"), ("PIANO - CO", "1", "142,50", "142,50", "2"),
        ("DANSE CLAS", "1", "78,00", "78,00", "3")]


def test_emagnus_joint_debtor_side_file(tmp_path):
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["joint_payer"] = {
        "kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
        "birth_date": "1982-06-01",
        "address": {"street": "4 place du Marché", "postal_code": "45200", "city": "Montargis"}}
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(EMAGNUS, source, tmp_path / "out", RUN)
    tsol = next(f.path for f in result.files if f.path.name == "WTAMC001_TSOL.txt")
    assert validate_file(tsol, load_layout(BUNDLE / "wtamc001tsol.layout.yaml")) == []
    [row] = _records(tsol)
    assert len(row) == 27
    assert row[:10] == ["19", "1", "FAM-0042", "LEFEVRE", "MARC", "4 PLACE DU MARCHE", "", "",
                        "45200", "MONTARGIS"]
    assert (row[18], row[19], row[20], row[26]) == ("01", "01", "M", "01/06/1982")
    # a joint debtor is checked like the debtor: a person needs a first name
    del data["invoices"][0]["joint_payer"]["first_name"]
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError) as info:
        export(EMAGNUS, source, tmp_path / "out2", RUN)
    [p] = info.value.problems
    assert p.rule == "pes.first-name" and p.invoice == "FA-2026-00101"
    assert p.mapping.endswith(": bindings.joint_payer.first_name")


@pytest.mark.parametrize(("field", "path", "said"), [
    ("name", ("last_name",), "joint_payer.name (format field debtor.name) is 60 characters, "
     "format bl-emagnus allows 50"),
    ("first_name", ("first_name",), "joint_payer.first_name (format field debtor.first_name) "
     "is 60 characters"),
    ("street", ("address", "street"), "joint_payer.street (format field address.street) is "
     "60 characters and cannot be split into two lines of 50"),
    ("city", ("address", "city"), "joint_payer.city (format field address.city) is 60 "
     "characters"),
])
def test_a_joint_debtor_value_refused_names_the_joint_payer_field(tmp_path, field, path, said):
    """The joint debtor's values are held to the debtor's fields (format.yaml's
    debtor.name, address.city…): a joint debtor's name of 60 characters was refused as
    'debtor.name is 60 characters', the payer's own field, only the binding in brackets
    telling it was the joint debtor's. The message names joint_payer.<field> now, with
    the format field whose limit applies; the payer's still says debtor.name."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    joint = {"kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
             "birth_date": "1982-06-01",
             "address": {"street": "4 place du Marché", "postal_code": "45200",
                         "city": "Montargis"}}
    place = joint
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = "L" * 60
    data["invoices"][0]["joint_payer"] = joint
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError) as info:
        export(EMAGNUS, source, tmp_path / "out", RUN)
    [p] = info.value.problems
    assert p.rule == "text.length" and p.message.startswith(said), p
    assert p.mapping.endswith(f": bindings.joint_payer.{field}"), p
    if field == "name":  # the payer's own: as before
        del data["invoices"][0]["joint_payer"]
        data["invoices"][0]["payer"]["last_name"] = "L" * 60
        source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        with pytest.raises(InputDataError) as info:
            export(EMAGNUS, source, tmp_path / "out2", RUN)
        [p] = info.value.problems
        assert p.message.startswith("debtor.name is 60 characters, format bl-emagnus "
                                    "allows 50"), p
        assert p.mapping.endswith(": bindings.payer.name"), p


def test_emagnus_joint_debtor_abroad_is_written_as_the_pes_writes_one(tmp_path):
    """The e.magnus mapping binds joint_payer.country: a joint debtor in Brussels was
    refused, its postal code 1000 read as a French one (the mapping bound the debtor's
    country only). WTAMC001_TSOL has no country column: its Codepostal is 99999 and its
    Ville the postal code and city (foreign_address: postal_code_in_city)."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["joint_payer"] = {
        "kind": "person", "title": "M.", "last_name": "Peeters", "first_name": "Jan",
        "address": {"street": "Rue de la Loi 16", "postal_code": "1000", "city": "Bruxelles",
                    "country": "BE"}}
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(EMAGNUS, source, tmp_path / "out", RUN)
    tsol = next(f.path for f in result.files if f.path.name == "WTAMC001_TSOL.txt")
    [row] = _records(tsol)
    assert row[3:10] == ["PEETERS", "JAN", "RUE DE LA LOI 16", "", "", "99999",
                         "1000 BRUXELLES"]


def test_emagnus_joint_debtor_keeps_its_name_complement(tmp_path):
    """WTAMC001_TSOL wrote the joint debtor's name alone: the name complement the mapping
    binds, or the end of a long name name_overflow: split moved there, was lost (found
    by check-mapping's field coverage). As in WTAMC001, it follows the name in
    Designation1; a name too long for it with its complement is refused by the layout,
    never cut."""
    old = "    name: joint_payer.last_name\n"
    mapping, _ = mapping_copy(tmp_path, EMAGNUS,
                              (old, old + "    complement_name: joint_payer.complement\n"),
                              name="emagnus.yaml")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["joint_payer"] = {
        "kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
        "complement": "époux Dupont",
        "address": {"street": "4 place du Marché", "postal_code": "45200", "city": "Montargis"}}
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    r = CliRunner().invoke(app, ["check-mapping", str(mapping)])
    # the one warning: the name and its complement, 50 each, joined in Designation1 (50)
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert r.exit_code == 0 and len(warned) == 1, r.stderr
    assert warned[0].startswith("warning: record 'tiers-solidaire', column Designation1 (#4) ")
    assert "the value reaches 101 characters" in warned[0], warned
    result = export(mapping, source, tmp_path / "out", RUN)
    tsol = next(f.path for f in result.files if f.path.name == "WTAMC001_TSOL.txt")
    [row] = _records(tsol)
    assert row[3:5] == ["LEFEVRE EPOUX DUPONT", "MARC"]
    # a joint debtor's name over 50 characters: split, its end would be written after it
    # and the layout would refuse the record (Designation1 holds 50), naming no binding;
    # so the shipped mapping refuses such a name (name_overflow: refuse; split is
    # refused by check-mapping, mapping.policy-fit), by invoice, naming its binding
    long_name = "Lefèvre de la Tour d'Auvergne et de Montmorency-Laval"
    assert len(long_name) > 50
    data["invoices"][0]["joint_payer"]["last_name"] = long_name
    del data["invoices"][0]["joint_payer"]["complement"]
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError) as info:
        export(EMAGNUS, source, tmp_path / "out2", RUN)
    [problem] = info.value.problems
    assert problem.rule == "text.length" and problem.invoice == "FA-2026-00101"
    assert problem.mapping is not None
    assert problem.mapping.endswith(": bindings.joint_payer.name"), problem


def test_a_jvs_invoice_number_its_xsd_refuses_names_the_binding(tmp_path):
    """JVS_FAC_NumeroFacture takes 20 characters (jvs-millesime.xsd Texte20), pesgen's
    invoice numbers 64: a longer one is only the invoice's, refused by the XSD at the
    export, by invoice and line, which named no key of the mapping (support had to know
    which binding fills JVS_FAC_NumeroFacture). It names bindings.invoice.number now; a
    Corail refusal at RaisonSociale, which joins three bound values, names none."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["number"] = "FA-2026-00101-ABCDEFGHIJ"
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    line = next(i for i, text in enumerate(JVS.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip() == "number: number")
    with pytest.raises(OutputInvalidError) as info:
        export(JVS, source, tmp_path / "out", RUN)
    problems = info.value.problems
    assert len(problems) == 3  # one per LigneDePiece (its discount netted into a line)
    for problem in problems:
        assert problem.rule == "xsd.bundle" and problem.invoice == data["invoices"][0]["number"]
        assert "JVS_FAC_NumeroFacture" in problem.record and "maxLength" in problem.message
        assert problem.mapping == f"{JVS}:{line}: bindings.invoice.number", problem
    # a value joining several bound values names none of them
    corail = MAPPINGS / "villeneuve-sur-loing-corail.yaml"
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payer"]["first_name"] = "Marie-Christine-Alexandra-Josephine"
    data["invoices"][0]["payer"]["last_name"] = "de la Rochefoucauld-Montmorency de Saint-Aubin"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(OutputInvalidError) as info:
        export(corail, source, tmp_path / "out2", RUN)
    [problem] = info.value.problems
    assert "RaisonSociale" in problem.record and problem.mapping is None, problem
    # but lists them: the refusal said which value, not which fields make it
    lines = {text.strip(): i for i, text in enumerate(
        corail.read_text(encoding="utf-8").splitlines(), 1)}
    name = lines['name: {expr: "invoice.payer.last_name or invoice.payer.name"}']
    first = lines["first_name: payer.first_name"]
    assert (f"(the value joins 2 bound fields, {corail}:{name}: bindings.payer.name; "
            f"{corail}:{first}: bindings.payer.first_name: shorten one of them) (rendered "
            "from ") in str(problem), problem


def test_an_emagnus_name_and_complement_over_designation1_list_their_bindings(tmp_path):
    """e.magnus writes a name complement after the name in Designation1 (50): a name of
    30 and a complement of 25 bound from the export were refused by the layout, by
    invoice, naming no binding nor saying the column joins two. It lists both now."""
    mapping, (line,) = mapping_copy(tmp_path, EMAGNUS, (
        "    first_name: payer.first_name",
        "    first_name: payer.first_name\n    complement_name: payer.complement"))
    name = next(i for i, text in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip().startswith("name: {expr:"))
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payer"].update(last_name="A" * 30, complement="B" * 25)
    source, problems = _wtamc001_refused(tmp_path, mapping, data)
    for problem in problems:
        assert problem.mapping is None and str(problem).endswith(
            "record 'ecriture', column Designation1 (#10): is 56 characters, the layout "
            f"allows 50 (the value joins 2 bound fields, {mapping}:{name}: "
            f"bindings.payer.name; {mapping}:{line}: bindings.payer.complement_name: "
            f"shorten one of them) (rendered from {source}:$.invoices[0]) (rule "
            "layout.length)"), problem


def _wtamc001_refused(tmp_path: Path, mapping: Path, data: dict[str, Any]
                      ) -> tuple[Path, list[Problem]]:
    """``data`` written as the school's export and exported with the e.magnus ``mapping``:
    its path and the refusal's problems, one per imputation line of WTAMC001 (three)."""
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(OutputInvalidError) as info:
        export(mapping, source, tmp_path / "out", RUN)
    assert len(info.value.problems) == 3
    return source, info.value.problems


def test_check_mapping_warns_of_accents_a_format_s_charset_refuses_untransliterated(tmp_path):
    """e.magnus holds its text to ascii: a mapping with policies.transliterate false (or
    not set, the default) passed check-mapping silently, and every invoice whose name,
    street or label held an 'é' was refused at every run (text.charset). check-mapping
    warns of it now (exit 0), naming the setting's line (the policies section's when it
    is not set) and the bindings concerned, in its JSON too; a latin-1 format (JVS),
    which holds accented letters, or a mapping that transliterates, gets no warning."""
    said = ("format bl-emagnus holds its text to charset ascii (its format.yaml), which has "
            "no accented letter, and policies.transliterate is false: every invoice whose "
            "bindings.payer.name, bindings.payer.first_name, ")
    mapping, (line,) = mapping_copy(tmp_path, EMAGNUS, (
        "  transliterate: true            # œ -> OE, – -> -, ’ -> '", "  transliterate: false"))
    r = CliRunner().invoke(app, ["check-mapping", str(mapping)])
    assert r.exit_code == 0, r.output
    warning = " ".join(r.stderr.split())
    assert f"warning: {said}" in warning, warning
    assert ("bindings.line.label, bindings.invoice.object holds one (é, è, à, ç…, as French "
            "names and streets do) would be refused at every run; set policies.transliterate: "
            "true to write them without their accents (é -> e), or make sure the school's "
            f"export holds none [mapping {mapping}:{line}: policies.transliterate] (rule "
            "text.charset)") in warning, warning
    r = CliRunner().invoke(app, ["check-mapping", str(mapping), "--format", "json"])
    [report] = json.loads(r.stdout)["mappings"]
    [found] = [w for w in report["warnings"] if w["rule"] == "text.charset"]
    assert (found["line"], found["key"]) == (line, "policies.transliterate")
    # not set: the default, named at the policies section
    absent, (at,) = mapping_copy(tmp_path / "absent", EMAGNUS, (
        "  transliterate: true            # œ -> OE, – -> -, ’ -> '\n", ""))
    section = absent.read_text(encoding="utf-8").splitlines().index("policies:") + 1
    r = CliRunner().invoke(app, ["check-mapping", str(absent)])
    assert r.exit_code == 0 and "policies.transliterate is not set (false: the default): " \
        "every invoice whose bindings.payer.name" in " ".join(r.stderr.split()), r.output
    assert f"[mapping {absent}:{section}: policies] (rule text.charset)" in r.stderr
    for quiet in (EMAGNUS, mapping_copy(tmp_path / "jvs", JVS, (
            "  transliterate: true            # œ -> OE, – -> -, ’ -> '",
            "  transliterate: false"))[0]):
        r = CliRunner().invoke(app, ["check-mapping", str(quiet)])
        assert r.exit_code == 0 and "accented" not in r.stderr, r.output


def test_an_emagnus_invoice_number_its_layout_refuses_names_the_binding(tmp_path):
    """e.magnus' NumeroFacture (column 111) takes 50 characters, pesgen's invoice
    numbers 64: a longer one was refused by the layout, by invoice and line, naming no
    key of the mapping. It names bindings.invoice.number now; check-mapping, which reads
    no invoice, says beforehand where the format refuses an invoice number pesgen takes
    (a notice, not a warning: only the export's numbers can break it), in its JSON
    too; a format that takes one (PES titres) says nothing."""
    mapping, (line,) = mapping_copy(tmp_path, EMAGNUS, (
        "    object: {expr: \"'CONSERVATOIRE FACTURE ' ~ invoice.number\"}",
        "    object: {expr: \"'CONSERVATOIRE'\"}"))
    number_line = next(i for i, text in enumerate(
        mapping.read_text(encoding="utf-8").splitlines(), 1) if text.strip() == "number: number")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["number"] = "FA-2026-00101-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd"
    source, problems = _wtamc001_refused(tmp_path, mapping, data)
    for problem in problems:
        assert str(problem).endswith(
            "record 'ecriture', column NumeroFacture (#111): is 54 characters, the layout "
            f"allows 50 (rendered from {source}:$.invoices[0]) [mapping {mapping}:"
            f"{number_line}: bindings.invoice.number] (rule layout.length)"), problem
    r = CliRunner().invoke(app, ["check-mapping", str(mapping)])
    assert r.exit_code == 0, r.output
    said = " ".join(r.stdout.split())
    assert (f"Invoice numbers: format bl-emagnus writes the invoice number ({mapping}:"
            f"{number_line}: bindings.invoice.number) into WTAMC001.txt, column NumeroFacture "
            "(#111) of layout WTAMC001, which takes at most 50 characters (layout.length), "
            "where pesgen takes 64 (found on a number made up for a sample title, not the "
            "school's): an invoice of the export whose number is longer is refused at the "
            "billing run, by invoice, naming the binding; check how long the school's numbers "
            "get") in said
    # said once: the made-up number's length is not said again as the layout's words
    assert said.split("Invoice numbers:")[1].split("Bound, but")[0].count("64") == 1
    assert "warning" not in r.stderr
    r = CliRunner().invoke(app, ["check-mapping", str(JVS), "--format", "json"])
    [report] = json.loads(r.stdout)["mappings"]
    # the XSD's maxLength, said once, without its words quoting the made-up number
    assert report["invoice_number"].endswith(
        "JVS_FAC_NumeroFacture/@V, which takes at most 20 characters (xsd.bundle), where "
        "pesgen takes 64 (found on a number made up for a sample title, not the school's): "
        "an invoice of the export whose number is longer is refused at the billing run, by "
        "invoice, naming the binding; check how long the school's numbers get")
    assert "FA-2026-0000" not in report["invoice_number"]
    titres = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
    r = CliRunner().invoke(app, ["check-mapping", str(titres)])
    assert r.exit_code == 0 and "Invoice numbers" not in r.stdout, r.output


def _line_one(quantity: int, unit_price: str) -> dict[str, Any]:
    """The example export with its first invoice's second line (not netted) priced
    ``quantity`` x ``unit_price``, the invoice's total following."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    invoice = data["invoices"][0]
    amount = Decimal(unit_price) * quantity
    invoice["lines"][1].update(quantity=quantity, unit_price=unit_price, amount=str(amount))
    invoice["total"] = str(sum(Decimal(str(ln["amount"])) for ln in invoice["lines"]))
    return data


def _binding_line(mapping: Path, text: str) -> int:
    return next(i for i, line in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1)
                if line.strip() == text)


def test_a_number_over_its_column_or_cap_names_its_binding(tmp_path):
    """e.magnus' Quantite takes 8 characters (wtamc001as.layout.yaml), Corail's amounts
    at most 9999999999.99 (corail.xsd Montant): a quantity of 123456789, an amount of
    99 999 999 999 were refused by invoice and record, naming no binding (the bindings a
    refusal names were found for text fields only). They name bindings.line.quantity,
    bindings.line.amount (the imputation's MontantHT, the detail's ASAPMontantHT) and
    bindings.line.unit_price now."""
    source = tmp_path / "export.json"
    source.write_text(json.dumps(_line_one(123456789, "1.00"), ensure_ascii=False),
                      encoding="utf-8")
    with pytest.raises(OutputInvalidError) as info:
        export(EMAGNUS, source, tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert str(problem) == (
        f"WTAMC001AS.txt:2 invoice FA-2026-00101: record 'detail', column Quantite (#6): is 9 "
        f"characters, the layout allows 8 (rendered from {source}:$.invoices[0]) [mapping "
        f"{EMAGNUS}:{_binding_line(EMAGNUS, 'quantity: quantity')}: bindings.line.quantity] "
        "(rule layout.length)")
    source.write_text(json.dumps(_line_one(1, "99999999999.00"), ensure_ascii=False),
                      encoding="utf-8")
    with pytest.raises(OutputInvalidError) as info:
        export(CORAIL, source, tmp_path / "out2", RUN)
    named = {p.record.rsplit("/", 1)[-1]: p.mapping for p in info.value.problems
             if "maxInclusive" in p.message and p.invoice == "FA-2026-00101"}
    amount = f"{CORAIL}:{_binding_line(CORAIL, 'amount: amount')}: bindings.line.amount"
    assert named == {
        "MontantHT": amount, "ASAPMontantHT": amount,
        "ASAPPrixUnitaire": f"{CORAIL}:{_binding_line(CORAIL, 'unit_price: unit_price')}: "
                            "bindings.line.unit_price"}, info.value.problems


@pytest.mark.parametrize(("quantity", "unit_price", "amount", "named"), [
    # 2 x 1.00 is not its amount: the pricing filter writes 1 x 99999999999.00
    (2, "1.00", "99999999999.00", {"MontantHT": "amount", "ASAPMontantHT": "amount",
                                   "ASAPPrixUnitaire": "amount"}),
    # priced (0.5 x 19999999999.98), in an invoice whose first line is netted (1 x 62.25)
    ("0.5", "19999999999.98", "9999999999.99", {"ASAPPrixUnitaire": "unit_price"}),
    # a quantity without a unit price: written 1 x 99999999999.00 as well
    (2, None, "99999999999.00", {"MontantHT": "amount", "ASAPMontantHT": "amount",
                                 "ASAPPrixUnitaire": "amount"}),
], ids=["netted", "priced", "unpriced"])
def test_a_unit_price_over_its_cap_names_the_binding_it_came_from(tmp_path, quantity,
                                                                  unit_price, amount, named):
    """Corail's ASAPPrixUnitaire writes the pricing filter's unit price: the line's own
    when quantity x unit price is its amount, else (a line netted by a discount, or whose
    figures do not multiply) its amount, as 1 x amount. Its refusal over the cap
    (9999999999.99) always named bindings.line.unit_price, found on a priced sample
    line: for a line written as 1 x its amount it names bindings.line.amount now, the
    binding the value came from; a priced line's still names the unit price's, in an
    invoice holding a netted line too. A line exported with a quantity and no unit price
    is written 1 x its amount too: its refusal names the amount's binding (it named the
    unit price's, no pricing note telling the export otherwise)."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    invoice = data["invoices"][0]
    invoice["lines"][1].update(quantity=quantity, unit_price=unit_price, amount=amount)
    if unit_price is None:
        del invoice["lines"][1]["unit_price"]
    invoice["total"] = str(sum(Decimal(str(ln["amount"])) for ln in invoice["lines"]))
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(OutputInvalidError) as info:
        export(CORAIL, source, tmp_path / "out", RUN)
    found = {p.record.rsplit("/", 1)[-1]: p.mapping for p in info.value.problems
             if "maxInclusive" in p.message and p.invoice == "FA-2026-00101"}
    assert found == {
        element: f"{CORAIL}:{_binding_line(CORAIL, f'{key}: {key}')}: bindings.line.{key}"
        for element, key in named.items()}, info.value.problems


def _netted_and_priced_at(unit_price: str) -> dict[str, Any]:
    """The example export with its first invoice's first line (into which its discount
    of 22.75 is netted: written as 1 x its amount) of ``unit_price`` + 22.75, and its
    second line priced 2 x ``unit_price``: both lines write ``unit_price`` as their unit
    price, the first from its amount, the second from its unit price."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    invoice = data["invoices"][0]
    first = str(Decimal(unit_price) + Decimal("22.75"))
    invoice["lines"][0].update(quantity=1, unit_price=first, amount=first)
    invoice["lines"][1].update(quantity=2, unit_price=unit_price,
                               amount=str(Decimal(unit_price) * 2))
    invoice["total"] = str(sum(Decimal(str(ln["amount"])) for ln in invoice["lines"]))
    return data


def test_a_unit_price_refused_names_the_binding_of_its_own_line(tmp_path):
    """A netted line (1 x its amount) and a priced line whose unit price is that amount
    write the same ASAPPrixUnitaire: told apart by the refused value, which was the
    netted line's amount, both named bindings.line.amount. The refusal's XPath says
    which line it is (ASAPLigneFacturation[2]), and the pricing note which lines are
    written as 1 x their amount: the second names bindings.line.unit_price now."""
    source = tmp_path / "export.json"
    source.write_text(json.dumps(_netted_and_priced_at("99999999976.25"), ensure_ascii=False),
                      encoding="utf-8")
    with pytest.raises(OutputInvalidError) as info:
        export(CORAIL, source, tmp_path / "out", RUN)
    found = {p.record.split("/", 4)[-1]: p.mapping for p in info.value.problems
             if "ASAPPrixUnitaire" in (p.record or "")}
    key = f"{CORAIL}:{{}}: bindings.line.{{}}"
    assert found == {
        "ASAPLigneFacturation[1]/ASAPPrixUnitaire": key.format(
            _binding_line(CORAIL, "amount: amount"), "amount"),
        "ASAPLigneFacturation[2]/ASAPPrixUnitaire": key.format(
            _binding_line(CORAIL, "unit_price: unit_price"), "unit_price")}, found


def test_the_lines_written_as_their_amount_are_read_from_the_notes_line_not_its_words():
    """The export found the lines the pricing filter writes as 1 x their amount by
    parsing the pricing note's words ('…: the pricing filter gives 1 × 62.25'):
    rewording the note broke the attribution. It reads the note's line now."""
    from pesgen.build import PolicyNote
    from pesgen.export import _unpriced

    notes = [PolicyNote("pricing", "F1", "o", "worded otherwise", "2"),
             PolicyNote("pricing", "F1", "o", "the pricing filter gives 1 × 62.25", "3"),
             PolicyNote("transliterate", "F2", "o", "the pricing filter gives 1 × 5", "1")]
    assert _unpriced(notes) == {"F1": frozenset({2, 3})}


def test_a_unit_price_a_layout_refuses_names_the_binding_of_its_own_record(tmp_path):
    """e.magnus' MtUnitaire made 8 characters long: a layout's refusal quotes no value,
    so a unit price refused in an invoice holding a netted line (1 x its amount) named
    no binding. The record's line in the invoice's piece says which line it is: the
    netted line's names bindings.line.amount, the priced line's
    bindings.line.unit_price."""
    fmts = tmp_path / "fmts"
    shutil.copytree(BUNDLE, fmts / "bl-emagnus")
    layout = fmts / "bl-emagnus" / "wtamc001as.layout.yaml"
    text = layout.read_text(encoding="utf-8")
    old = "{name: MtUnitaire, type: decimal, decimals: 2, required: true, quoting: never}"
    assert text.count(old) == 1
    layout.write_text(text.replace(old, old[:-1] + ", length: 8}"), encoding="utf-8")
    source = tmp_path / "export.json"
    source.write_text(json.dumps(_netted_and_priced_at("123456.78"), ensure_ascii=False),
                      encoding="utf-8")
    with pytest.raises(OutputInvalidError) as info:
        export(EMAGNUS, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    found = {p.record: p.mapping for p in info.value.problems if "MtUnitaire" in p.message}
    key = f"{EMAGNUS}:{{}}: bindings.line.{{}}"
    assert found == {
        "WTAMC001AS.txt:1": key.format(_binding_line(EMAGNUS, "amount: amount"), "amount"),
        "WTAMC001AS.txt:2": key.format(_binding_line(EMAGNUS, "unit_price: unit_price"),
                                       "unit_price")}, info.value.problems


def test_a_width_filter_on_a_macro_s_parameter_follows_the_calls(tmp_path):
    """check-format's format.field-width read `v | fixed(10)` in `{% macro f(v) %}` as
    the name v, which is no field: a macro called with a bound field escaped the check.
    A parameter of a macro the template calls is followed to what each call gives it
    (by position or by name, through another macro of the template too), the call's
    line said; a call giving it no field, or a macro the template does not call (the
    renderer's piece(t, doc)), adds nothing."""
    fmts = tmp_path / "fmts"
    folder = fmts / "cosoluce-corail"
    shutil.copytree(data_dir("templates") / "cosoluce-corail", folder)
    template = folder / "corail.xml.j2"
    text = template.read_text(encoding="utf-8")
    macros = ("{% macro f(v) %}{{ v | fixed(10) }}{% endmacro %}\n"
              "{% macro g(w, n=1) %}{{ f(w) }}{{ n }}{% endmacro %}\n"
              "{% macro unused(u) %}{{ u | fixed(5) }}{% endmacro %}\n")
    calls = ('<!--{{ f(t.debtor.name) }}{{ g(n=2, w=d.first_name) }}{{ f("x") }}-->'
             '<TypeSerieBordereau V="N"/>')
    assert text.count("{% macro piece(t, doc) -%}") == 1
    assert text.count('<TypeSerieBordereau V="N"/>') == 1
    text = text.replace("{% macro piece(t, doc) -%}", macros + "{% macro piece(t, doc) -%}")
    text = text.replace('<TypeSerieBordereau V="N"/>', calls)
    template.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    at_f = lines.index(macros.splitlines()[0]) + 1
    at_g, at_call = at_f + 1, next(i for i, ln in enumerate(lines, 1) if ln.startswith(calls))
    said = sorted(p.message.split(": a value", 1)[0]
                  for p in narrow_widths(find_format("cosoluce-corail", [fmts])))
    tpl = fmts / "cosoluce-corail" / "corail.xml.j2"
    assert said == [
        f"{tpl}:{at_f}: t.debtor.first_name | fixed(10) (macro f's parameter v, "
        f"called at line {at_g}) writes debtor.first_name, which format.yaml limits to 38 "
        "characters",
        f"{tpl}:{at_f}: t.debtor.name | fixed(10) (macro f's parameter v, called at "
        f"line {at_call}) writes debtor.name, which format.yaml limits to 38 characters",
    ], said


def test_a_width_filter_follows_a_value_filtered_before_where_it_cannot_grow(tmp_path):
    """check-format's format.field-width did not follow a value filtered before its
    fixed(N) (`t.debtor.name | trim | fixed(10)`): a field format.yaml limits to more
    than N passed unsaid. It follows now the filters that write no value of the field's
    charset longer: trim, striptags, string; lower; upper, title, capitalize where the
    charset holds nothing they lengthen (Corail's mandate.rum, sepa; not its latin-1
    debtor.name, whose 'ß' upper writes 'SS'); default with a text that fits the width;
    through a name set to such a value and a macro's parameter too, the filters said
    in the order applied. Another filter (replace), a default longer than the width, are
    not followed; a field limited to the width or fewer is not warned of."""
    written = ("{{ t.debtor.name | trim | fixed(10) }}"
               "{{ t.debtor.name | lower | striptags | fixed(10) }}"
               "{{ t.debtor.first_name | default('', true) | fixed(10) }}"
               "{{ t.mandate.rum | upper | fixed(10) if t.mandate else '' }}"
               "{% set n = t.debtor.complement_name | string %}{{ n | title | fixed(10) }}"
               # not followed: upper, capitalize of a latin-1 field; replace; a default
               # longer than the width; a field limited to the width (38)
               "{{ t.debtor.name | upper | fixed(10) }}"
               "{{ t.debtor.name | trim | capitalize | fixed(10) }}"
               "{{ t.debtor.name | replace('A', 'AA') | fixed(10) }}"
               "{{ t.debtor.name | default('SANS NOM CONNU', true) | fixed(10) }}"
               "{{ t.debtor.name | d(default_value='SANS NOM CONNU') | fixed(10) }}"
               "{{ t.debtor.name | trim | fixed(38) }}")
    fmts, line = _corail_writing(tmp_path, written)
    said = sorted(p.message.split(", which format.yaml", 1)[0]
                  for p in narrow_widths(find_format("cosoluce-corail", [fmts])))
    at = f"{fmts}/cosoluce-corail/corail.xml.j2:{line}: "
    assert said == sorted([
        f"{at}t.debtor.name | trim | fixed(10) writes debtor.name",
        f"{at}t.debtor.name | lower | striptags | fixed(10) writes debtor.name",
        f"{at}t.debtor.first_name | default('', true) | fixed(10) writes debtor.first_name",
        f"{at}t.mandate.rum | upper | fixed(10) writes mandate.rum",
    ]), said


def test_a_width_filter_does_not_follow_lower_in_a_utf8_field(tmp_path):
    """lower writes 'İ' as two characters: in a bundle whose charset is utf-8, a value
    through lower is not followed (trim still is)."""
    fmts, line = _corail_writing(tmp_path, "{{ t.debtor.name | lower | fixed(10) }}"
                                           "{{ t.debtor.name | trim | fixed(10) }}")
    spec = fmts / "cosoluce-corail" / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("\ncharset: latin-1\n") == 1
    spec.write_text(text.replace("\ncharset: latin-1\n", "\ncharset: utf-8\n"),
                    encoding="utf-8")
    said = [p.message.split(" writes", 1)[0]
            for p in narrow_widths(find_format("cosoluce-corail", [fmts]))]
    tpl = fmts / "cosoluce-corail" / "corail.xml.j2"
    assert said == [f"{tpl}:{line}: t.debtor.name | trim | fixed(10)"], said


def test_a_width_filter_follows_a_filtered_macro_argument(tmp_path):
    """A value filtered before it is given to a macro (`f(t.debtor.name | trim)`), then
    filtered again there (`v | lower | fixed(10)`), is followed through both, said in
    the order applied; a case filter of a latin-1 field given so is not."""
    fmts = tmp_path / "fmts"
    folder = fmts / "cosoluce-corail"
    shutil.copytree(data_dir("templates") / "cosoluce-corail", folder)
    template = folder / "corail.xml.j2"
    text = template.read_text(encoding="utf-8")
    macro = "{% macro f(v) %}{{ v | lower | fixed(10) }}{% endmacro %}\n"
    calls = ("<!--{{ f(t.debtor.name | trim) }}{{ f(t.debtor.first_name | upper) }}-->"
             '<TypeSerieBordereau V="N"/>')
    text = text.replace("{% macro piece(t, doc) -%}", macro + "{% macro piece(t, doc) -%}")
    text = text.replace('<TypeSerieBordereau V="N"/>', calls)
    template.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    at_f = lines.index(macro.strip()) + 1
    at_call = next(i for i, ln in enumerate(lines, 1) if ln.startswith(calls))
    said = [p.message.split(": a value", 1)[0]
            for p in narrow_widths(find_format("cosoluce-corail", [fmts]))]
    tpl = folder / "corail.xml.j2"
    assert said == [
        f"{tpl}:{at_f}: t.debtor.name | trim | lower | fixed(10) (macro f's "
        f"parameter v, called at line {at_call}) writes debtor.name, which format.yaml "
        "limits to 38 characters"], said


def _corail_writing(tmp_path: Path, written: str) -> tuple[Path, int]:
    """A copy of Corail's bundle whose piece writes ``written`` (in a comment) on the
    line of TypeSerieBordereau: its formats folder and that line."""
    fmts = tmp_path / "fmts"
    shutil.copytree(data_dir("templates") / "cosoluce-corail", fmts / "cosoluce-corail")
    template = fmts / "cosoluce-corail" / "corail.xml.j2"
    text = template.read_text(encoding="utf-8")
    old = '<TypeSerieBordereau V="N"/>'
    assert text.count(old) == 1
    template.write_text(text.replace(old, f"<!--{written}-->{old}"), encoding="utf-8")
    return fmts, text[:text.index(old)].count("\n") + 1


@pytest.mark.parametrize(("written", "named"), [
    ("{{ t.debtor.national_id }}", "bound"),
    ("{{ (d.national_id ~ '') | upper }}", "bound"),  # '~' writes it, through an alias
    ("{{ t.service_from }}", "unbound"),  # no binding of the mapping fills it
    # an invoice paid otherwise (no mandate): payment.direct_debit, the mandate itself, is
    # given no value in its place (a Mandate is no date); t.service_from is
    ("{{ '' if t.mandate else t.service_from }}", "unbound"),
    # two on the line, neither alone (both named: test_none_named)
    ("{{ t.debtor.national_id }}{{ t.service_from }}", None),
], ids=["field", "joined", "unbound", "no-mandate", "two"])
def test_a_template_writing_none_names_the_binding_left_empty(tmp_path, written, named):
    """A template writing None ('writes None: a value left unset…') named the
    template's line alone, which may write a dozen values. It names the binding this
    invoice leaves empty now, when one alone is why (the piece rendered again with
    each empty bound field given a value), or the field no binding fills and where to
    bind it, at export and preview; else not one value alone."""
    fmts, line = _corail_writing(tmp_path, written)
    value = {"bound": f"{CORAIL}:{_binding_line(CORAIL, 'national_id: payer.siret')}: "
                      "bindings.payer.national_id, empty for this invoice",
             "unbound": "bindings.invoice.service_from, which the mapping does not bind: "
                        f"bind it under {CORAIL}:{_binding_line(CORAIL, 'invoice:')}: "
                        "bindings.invoice", None: ""}[named]
    said = (f"(the value of {value}) "
            f"[template {fmts}/cosoluce-corail/corail.xml.j2:{line}] (rule template)")
    with pytest.raises(TemplateError) as info:
        export(CORAIL, EXAMPLES / "school-export.json", tmp_path / "out", RUN,
               formats_dirs=[fmts])
    [problem] = info.value.problems
    assert "writes None: a value left unset" in problem.message
    assert str(problem).endswith(said) is bool(named), problem
    assert ("(the value of" in problem.message) is bool(named), problem
    r = CliRunner().invoke(app, ["preview", "-m", str(CORAIL), "-i",
                                 str(EXAMPLES / "school-export.json"), "--date", "2026-11-23",
                                 "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    assert (said in " ".join(r.output.split())) is bool(named), r.output


def test_two_empty_values_on_one_line_are_both_named(tmp_path):
    """Two bound fields this invoice leaves empty on one template line
    (`{{ t.debtor.national_id }}{{ t.debtor.email }}`): given a value one at a time,
    neither stops the line writing None (the other does), so the refusal named no
    binding. Both given a value, then each taken out again, tell the two the line
    writes: the refusal names them both, at export and preview."""
    fmts, line = _corail_writing(tmp_path, "{{ t.debtor.national_id }}{{ t.debtor.email }}")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    del data["invoices"][0]["payer"]["email"]
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    said = ("(the line writes 2 values left empty: the value of "
            f"{CORAIL}:{_binding_line(CORAIL, 'national_id: payer.siret')}: "
            "bindings.payer.national_id, empty for this invoice; the value of "
            f"{CORAIL}:{_binding_line(CORAIL, 'email: payer.email')}: bindings.payer.email, "
            f"empty for this invoice) [template {fmts}/cosoluce-corail/corail.xml.j2:{line}] "
            "(rule template)")
    with pytest.raises(TemplateError) as info:
        export(CORAIL, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert problem.invoice == "FA-2026-00101" and str(problem).endswith(said), problem
    r = CliRunner().invoke(app, ["preview", "-m", str(CORAIL), "-i", str(source), "--date",
                                 "2026-11-23", "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    assert said in " ".join(r.output.split()), r.output


def _corail_head_tail(tmp_path: Path, head: str, tail: str) -> tuple[Path, int, int]:
    """A copy of Corail's bundle whose head writes ``head`` and whose tail ``tail`` (each
    in a comment on a line of its own): its formats folder, the head's line and the
    tail's."""
    fmts = tmp_path / "fmts"
    shutil.copytree(data_dir("templates") / "cosoluce-corail", fmts / "cosoluce-corail")
    template = fmts / "cosoluce-corail" / "corail.xml.j2"
    text = template.read_text(encoding="utf-8")
    for old, written in (("<Information>\n", head), ("</TypePieceImport>\n", tail)):
        assert text.count(old) == 1
        text = text.replace(old, f"{old}<!--{written}-->\n")
    template.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    return (fmts, lines.index(f"<!--{head}-->") + 1, lines.index(f"<!--{tail}-->") + 1)


@pytest.mark.parametrize("case", ["unset", "empty", "both"])
def test_a_head_or_tail_writing_none_names_the_setting_left_empty(tmp_path, case):
    """A head or tail writing None named the template's line alone (only a piece's
    refusal named the binding left empty): their values are the run's, from the
    mapping's settings. The refusal names the setting now: one the mapping does not set
    (collectivity.poste_label, with where to set it), one it sets that the run leaves
    empty (output.bordereau_object giving nothing), both when the line writes both; at
    export, preview and, the same values, check-mapping."""
    object_line = _binding_line(CORAIL, 'bordereau_object: {const: "CONSERVATOIRE - '
                                'TRIMESTRE 1 2026-2027"}')
    mapping, _ = mapping_copy(tmp_path, CORAIL, (
        'bordereau_object: {const: "CONSERVATOIRE - TRIMESTRE 1 2026-2027"}',
        'bordereau_object: {const: ""}'), name="m.yaml")
    unset = ("the value of collectivity.poste_label, which the mapping does not set: set it "
             f"under {mapping}:{_binding_line(mapping, 'collectivity:')}: collectivity")
    empty = f"the value of {mapping}:{object_line}: output.bordereau_object, empty for this run"
    written = {"unset": ("{{ doc.collectivity.poste_label }}", ""),
               "empty": ("", "{{ doc.bordereau.object }}"),
               "both": ("", "{{ doc.bordereau.object }}{{ doc.collectivity.poste_label }}")}
    fmts, head, tail = _corail_head_tail(tmp_path, *written[case])
    said = {"unset": f"({unset}) [template {fmts}/cosoluce-corail/corail.xml.j2:{head}]",
            "empty": f"({empty}) [template {fmts}/cosoluce-corail/corail.xml.j2:{tail}]",
            "both": f"(the line writes 2 values left empty: {unset}; {empty}) "
                    f"[template {fmts}/cosoluce-corail/corail.xml.j2:{tail}]"}[case]
    with pytest.raises(TemplateError) as info:
        export(mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN,
               formats_dirs=[fmts])
    [problem] = info.value.problems
    assert "writes None: a value left unset" in problem.message
    assert str(problem).endswith(f"{said} (rule template)"), problem
    r = CliRunner().invoke(app, ["check-mapping", str(mapping), "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    assert said in " ".join(r.output.split()), r.output
    r = CliRunner().invoke(app, ["preview", "-m", str(mapping), "-i",
                                 str(EXAMPLES / "school-export.json"), "--date", "2026-11-23",
                                 "--formats-dir", str(fmts)])
    assert r.exit_code == 5, r.output
    assert said in " ".join(r.output.split()), r.output


def test_a_piece_writing_an_option_the_mapping_does_not_set_names_the_setting(tmp_path):
    """A piece writing `doc.options.edition` for a mapping without output.asap_edition
    named no setting (the values searched were the title's bound fields only): it names
    output.asap_edition now, and where to set it, at export."""
    fmts, mapping = _fixed_bundle(tmp_path)
    template = fmts / "acme-fixe" / "acme-fixe.txt.j2"
    text = template.read_text(encoding="utf-8")
    old = '{{ "02" }}'
    assert text.count(old) == 1
    template.write_text(text.replace(old, '{{ "02" }}{{ doc.options.edition }}'),
                        encoding="utf-8")
    line = text[:text.index(old)].count("\n") + 1
    output = _binding_line(mapping, "output:")
    with pytest.raises(TemplateError) as info:
        export(mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN,
               formats_dirs=[fmts])
    [problem] = info.value.problems
    assert str(problem).endswith(
        "(the value of output.asap_edition, which the mapping does not set: set it under "
        f"{mapping}:{output}: output) [template {fmts}/acme-fixe/acme-fixe.txt.j2:{line}] "
        "(rule template)"), problem


def test_a_rendering_past_its_time_limit_stops_the_search_for_the_binding(tmp_path,
                                                                          monkeypatch):
    """Rendering the piece again with a value in an empty bound field may take another
    branch, one running past the time limit: that was taken for the field without which
    the template writes no None (bindings.payer.national_id named for t.service_from),
    and each other field could wait as long. The search stops there, naming none."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    fmts, _line = _corail_writing(
        tmp_path, "{% if t.debtor.national_id %}{% for i in range(100000) %}"
        "{% for j in range(100000) %}{% endfor %}{% endfor %}{% endif %}{{ t.service_from }}")
    with pytest.raises(TemplateError) as info:
        export(CORAIL, EXAMPLES / "school-export.json", tmp_path / "out", RUN,
               formats_dirs=[fmts])
    [problem] = info.value.problems
    assert "writes None" in problem.message and "(the value of" not in problem.message, \
        problem


_COMPLEMENT_LIMIT = "  debtor.complement_name: {max: 38}"


def _fixed_bundle(tmp_path: Path, unlimited: bool = False) -> tuple[Path, Path]:
    """``pesgen new-format acme-fixe --kind fixed`` (its TODOs filled) and the titres
    mapping made to write it, binding payer.complement_name too: the formats folder and
    the mapping. The scaffold's template writes t.debtor.complement_name | fixed(38),
    which its format.yaml limits to 38 (``unlimited``: that limit taken out, as the
    scaffold had none before), and t.total | cents | fixed(12, "right", "0"), an amount
    format.yaml cannot limit."""
    fmts = tmp_path / "fmts"
    assert CliRunner().invoke(app, ["new-format", "acme-fixe", "--kind", "fixed", "--dir",
                                    str(fmts)]).exit_code == 0
    spec = fmts / "acme-fixe" / "format.yaml"
    text = spec.read_text(encoding="utf-8").splitlines()
    assert _COMPLEMENT_LIMIT in text
    text = [('title: "Acme"' if ln.startswith("title:") else 'source: "a test"'
             if ln.startswith("source:") else ln) for ln in text
            if not (unlimited and ln == _COMPLEMENT_LIMIT)]
    spec.write_text("\n".join(text) + "\n", encoding="utf-8")
    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-titres.yaml",
                              ("format: pes-titres", "format: acme-fixe"),
                              ('  asap_edition: "04"', ""),
                              ("    first_name: payer.first_name\n",
                               "    first_name: payer.first_name\n"
                               "    complement_name: payer.complement\n"), name="m.yaml")
    return fmts, mapping


def test_a_narrow_width_of_a_flat_file_names_its_layout_column(tmp_path, monkeypatch):
    """check-format's format.field-width of a fixed-width file named the template line
    and the field (t.debtor.complement_name | fixed(38) writes debtor.complement_name),
    not the column of the layout it is written in, which the publisher's document the
    technician compares it with names: it names the record type and the column as the
    layout declares them, and where (layout.yaml:line: records[1].columns[3]). A value
    written in two columns (the name's place too) is no one column's: none is named."""
    fmts, mapping = _fixed_bundle(tmp_path, unlimited=True)
    folder = fmts / "acme-fixe"
    shutil.copyfile(mapping, folder / "fixture" / "mapping.yaml")
    shutil.copyfile(EXAMPLES / "school-export.json", folder / "fixture" / "input.json")
    column = _binding_line(folder / "layout.yaml", "- {name: ComplNom, type: text, width: 38}")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["check-format", "acme-fixe", "--formats-dir", "fmts",
                                 "--regen"])
    assert r.exit_code == 0, r.output
    [said] = [" ".join(line.split()) for line in r.output.splitlines()
              if "(rule format.field-width)" in line]
    assert said.startswith(
        "warning: fmts/acme-fixe/acme-fixe.txt.j2:9: t.debtor.complement_name | fixed(38) "
        "writes debtor.complement_name into record 'titre', column ComplNom (#4) "
        f"(fmts/acme-fixe/layout.yaml:{column}: records[1].columns[3]), which format.yaml "
        "does not limit: a value of more than 38 characters"), said
    # the complement written in the name's column too: in two columns, neither named
    template = folder / "acme-fixe.txt.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count("{{ t.debtor.name | fixed(38) }}") == 1
    template.write_text(text.replace("{{ t.debtor.name | fixed(38) }}",
                                     "{{ t.debtor.complement_name | fixed(38) }}"),
                        encoding="utf-8")
    warned = narrow_widths(find_format("acme-fixe", [fmts]), load_mapping(mapping))
    assert len(warned) == 2 and not any(" into " in w.message for w in warned), warned


def test_a_narrow_width_after_lower_names_the_column_it_writes_in_lower_case(tmp_path):
    """A value written lowered (t.debtor.complement_name | lower | fixed(38), followed in
    a latin-1 charset) is in the file in lower case: its column is found all the same, the
    layout's column named as for the value written as it is."""
    fmts, mapping = _fixed_bundle(tmp_path, unlimited=True)
    folder = fmts / "acme-fixe"
    spec = folder / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    assert text.count("# charset: utf-8 ") == 1
    spec.write_text(text.replace("# charset: utf-8 ", "charset: latin-1 "), encoding="utf-8")
    template = folder / "acme-fixe.txt.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count("{{ t.debtor.complement_name | fixed(38) }}") == 1
    template.write_text(text.replace("{{ t.debtor.complement_name | fixed(38) }}",
                                     "{{ t.debtor.complement_name | lower | fixed(38) }}"),
                        encoding="utf-8")
    column = _binding_line(folder / "layout.yaml", "- {name: ComplNom, type: text, width: 38}")
    [warned] = narrow_widths(find_format("acme-fixe", [fmts]), load_mapping(mapping))
    assert ("t.debtor.complement_name | lower | fixed(38) writes debtor.complement_name into "
            "record 'titre', column ComplNom (#4) "
            f"({folder}/layout.yaml:{column}: records[1].columns[3])") in warned.message, warned


def test_a_narrow_width_said_beside_a_sample_title_s_refusal_names_its_column(
        tmp_path, monkeypatch):
    """A bundle whose fixture renders and a sample title does not (a branch of a title
    with no object) is refused with its narrow widths said beside the refusal: the
    column of the layout is named there too, from the fixture's mapping, as when the
    bundle passes."""
    fmts, mapping = _fixed_bundle(tmp_path, unlimited=True)
    folder = fmts / "acme-fixe"
    shutil.copyfile(mapping, folder / "fixture" / "mapping.yaml")
    shutil.copyfile(EXAMPLES / "school-export.json", folder / "fixture" / "input.json")
    template = folder / "acme-fixe.txt.j2"
    text = template.read_text(encoding="utf-8")
    old = "{{ t.debtor.complement_name | fixed(38) }}"
    assert text.count(old) == 1
    template.write_text(text.replace(old, "{% if not t.object %}{{ t.nope }}{% endif %}" + old),
                        encoding="utf-8")
    column = _binding_line(folder / "layout.yaml", "- {name: ComplNom, type: text, width: 38}")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["check-format", "acme-fixe", "--formats-dir", "fmts",
                                 "--regen"])
    assert r.exit_code == 5 and "check-mapping's sample title (no optional part)" in r.output
    [said] = [" ".join(line.split()) for line in r.output.splitlines()
              if "(rule format.field-width)" in line]
    assert ("t.debtor.complement_name | fixed(38) writes debtor.complement_name into record "
            "'titre', column ComplNom (#4) "
            f"(fmts/acme-fixe/layout.yaml:{column}: records[1].columns[3])") in said, said


def test_a_value_a_width_filter_refuses_names_its_binding(tmp_path):
    """A fixed-width template's `fixed(38)` (`zfill`) refuses a longer value, which
    check-mapping's sample titles cannot foresee: the refusal named the template's line
    and the invoice, and the line writes several values (the scaffold's: the title
    number, name, complement and total), so support could not tell which binding to
    look at. It names the binding whose value was refused now, when one is (a text
    field equal to it, or a number, or its cents: the total), at export and preview.
    (A text reaches the filter only when format.yaml does not limit it to the column's
    width: the scaffold's does now, test_a_text_the_fixed_scaffold_writes_...)"""
    fmts, mapping = _fixed_bundle(tmp_path, unlimited=True)
    [warned] = narrow_widths(find_format("acme-fixe", [fmts]))  # check-format's warning
    assert warned.rule == "format.field-width" and warned.message.startswith(
        f"{fmts}/acme-fixe/acme-fixe.txt.j2:9: t.debtor.complement_name | fixed(38) writes "
        "debtor.complement_name, which format.yaml does not limit"), warned
    lines = mapping.read_text(encoding="utf-8").splitlines()
    complement = lines.index("    complement_name: payer.complement") + 1
    total = lines.index("    total: total") + 1
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payer"]["complement"] = "C" * 45
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    said = (f"(the value of {mapping}:{complement}: bindings.payer.complement_name) "
            f"[template {fmts}/acme-fixe/acme-fixe.txt.j2:9] (rule template)")
    for command in ("export", "preview"):
        args = [command, "-m", str(mapping), "-i", str(source), "--date", "2026-11-23",
                "--formats-dir", str(fmts)]
        if command == "export":
            args += ["-o", str(tmp_path / "out"), "--db",
                     f"sqlite:///{tmp_path / 'store.sqlite3'}", "--create-store"]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 5, r.output
        assert f"a text of 45 characters is longer than 38 characters {said}" in r.output, \
            r.output
        assert "C" * 45 not in r.output  # a family's text is not quoted: its binding is
    data["invoices"][0]["payer"]["complement"] = None
    line = data["invoices"][0]["lines"][1]
    line.update(quantity=1, unit_price="99999999999.00", amount="99999999999.00")
    data["invoices"][0]["total"] = str(sum(Decimal(str(ln["amount"]))
                                           for ln in data["invoices"][0]["lines"]))
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        export(mapping, source, tmp_path / "out2", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert problem.message.endswith(
        f"'10000000013925' is longer than 12 characters (the value of {mapping}:{total}: "
        "bindings.invoice.total)"), problem


def test_a_refused_value_equal_to_pesgen_s_own_number_names_no_binding():
    """A width filter's refusal of 1000 is IdPce 1000 (t.number | zfill(3)) as well as
    a total of 10.00 in cents: binding_of_value named bindings.invoice.total for it. It
    names none when the value is the title's or a line's own number too; a value only
    the total gives still names it, a text its binding."""
    from dataclasses import replace

    from pesgen.formats import mapping_format
    from pesgen.mapping import load_mapping
    from pesgen.sample import binding_of_value, sample_titles

    titres = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
    mapping = load_mapping(titres)
    title = replace(sample_titles(mapping, mapping_format(mapping, None))[0],
                    total=Decimal("10.00"))
    assert binding_of_value(mapping, replace(title, number=1000), 1000) is None
    assert binding_of_value(mapping, replace(title, number=7), 1000) == (
        f"{titres}:{_binding_line(titres, 'total: total')}: bindings.invoice.total")
    assert binding_of_value(mapping, title, "MARTIN").endswith(": bindings.payer.name")


@pytest.mark.parametrize("overflow", ["refuse", "truncate"])
def test_a_text_the_fixed_scaffold_writes_is_limited_by_its_format(tmp_path, overflow):
    """The fixed-width scaffold writes t.debtor.complement_name | fixed(38), and its
    format.yaml had no limit for it: a complement of 44 characters passed the build's
    length rule and its policies and was refused at render time by the template, a
    template error (exit 5) whatever text_overflow said. format.yaml gives it the
    column's width now: the build refuses it (text.length, exit 4, naming the record
    and the binding), or text_overflow: truncate shortens it, reported, and the file is
    written."""
    fmts, mapping = _fixed_bundle(tmp_path)
    assert narrow_widths(find_format("acme-fixe", [fmts])) == []
    text = mapping.read_text(encoding="utf-8")
    assert text.count("  text_overflow: refuse") == 1
    mapping.write_text(text.replace("  text_overflow: refuse", f"  text_overflow: {overflow}"),
                       encoding="utf-8")
    complement = _binding_line(mapping, "complement_name: payer.complement")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payer"]["complement"] = "Résidence des Tilleuls bâtiment C escalier 4"
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    r = CliRunner().invoke(app, [
        "export", "-m", str(mapping), "-i", str(source), "--date", "2026-11-23",
        "--formats-dir", str(fmts), "-o", str(tmp_path / "out"), "--db",
        f"sqlite:///{tmp_path / 'store.sqlite3'}", "--create-store"])
    if overflow == "refuse":
        assert r.exit_code == 4, r.output
        assert (f"{source}:$.invoices[0] invoice FA-2026-00101: debtor.complement_name is 44 "
                "characters, format acme-fixe allows 38 (policy text_overflow: refuse") \
            in r.output, r.output
        assert f"[mapping {mapping}:{complement}: bindings.payer.complement_name]" in r.output
    else:
        assert r.exit_code == 0, r.output
        assert "debtor.complement_name: 44 characters truncated to" in r.output, r.output


def test_a_value_csv_record_may_not_quote_names_its_binding(tmp_path):
    """A CSV template that never quotes (csv_record(quoting="never")) refuses a value
    holding its delimiter, naming the template line and the invoice: which binding's
    value it was is named now too (filters.RefusedValue, as fixed and zfill)."""
    fmts = tmp_path / "fmts"
    assert CliRunner().invoke(app, ["new-format", "acme-csv", "--kind", "csv", "--dir",
                                    str(fmts)]).exit_code == 0
    bundle = fmts / "acme-csv"
    spec = bundle / "format.yaml"
    spec.write_text("\n".join(
        'title: "Acme"' if ln.startswith("title:") else 'source: "a test"'
        if ln.startswith("source:") else ln
        for ln in spec.read_text(encoding="utf-8").splitlines()) + "\n", encoding="utf-8")
    template = bundle / "acme-csv.csv.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count('| csv_record(delimiter=";") }}') == 2
    template.write_text(text.replace('| csv_record(delimiter=";") }}',
                                     '| csv_record(delimiter=";", quoting="never") }}'),
                        encoding="utf-8")
    mapping = _titres_on(tmp_path, "acme-csv")
    first = _binding_line(mapping, "first_name: payer.first_name")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payer"]["first_name"] = "Hélène;Marie"
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        export(mapping, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert problem.message.endswith(
        "csv_record: the value at position 4 (a text of 12 characters) holds the delimiter "
        f"';' and may not be quoted (the value of {mapping}:{first}: "
        "bindings.payer.first_name)"), problem
    assert "HÉLÈNE" not in str(problem)  # a family's name is not quoted: its binding is


def _titres_on(tmp_path: Path, fmt: str) -> Path:
    """The shipped titres mapping written by format ``fmt`` (no Edition)."""
    return mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-titres.yaml",
                        ("format: pes-titres", f"format: {fmt}"), ('  asap_edition: "04"', ""),
                        name="m.yaml")[0]


@pytest.mark.parametrize(("mapping", "number", "said"), [
    (EMAGNUS, "FA-Été-101", "'Éé' is outside the format's charset ascii"),
    (EMAGNUS, "FA-ł-101", "'ł' cannot be written in cp1252"),
    (CORAIL, "FA-Œ-101", "'Œ' is outside the format's charset latin-1"),
    (JVS, "FA-ł-101", "'ł' is outside the format's charset latin-1"),
    # (a line break or a tab: refused whatever the format, test_bad_input)
    (EMAGNUS, "FA\u00a0101", "holds the control or invisible character U+00A0 NO-BREAK SPACE"),
    (CORAIL, "FA\u00ad101", "holds the control or invisible character U+00AD SOFT HYPHEN"),
], ids=["emagnus-ascii", "emagnus-cp1252", "corail-latin1", "jvs-latin1", "emagnus-nbsp",
        "corail-soft-hyphen"])
def test_an_invoice_number_a_format_writes_as_it_is_is_held_to_its_charset(
        tmp_path, mapping, number, said):
    """The finance packages' files carry the invoice number as it is (e.magnus'
    NumeroFacture, Corail's LibPieceJustificative, JVS_FAC_NumeroFacture), through no
    text policy: 'FA-Été-101' went into e.magnus's ascii file as bytes 0xC9 and 0xE9, an
    'Œ' or 'ł' into Corail's and JVS's latin-1 text, a line break or a tab into an XML
    attribute (read back as a space: another number) without a word, and an 'ł' e.magnus's
    cp1252 cannot write failed as the template's error (exit 5). Such a number is refused
    by invoice, naming its binding (input.invoice-number): an identifier is never
    transliterated."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["number"] = number
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    line = next(i for i, text in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip() == "number: number")
    fmt = {EMAGNUS: "bl-emagnus", CORAIL: "cosoluce-corail", JVS: "jvs-millesime"}[mapping]
    with pytest.raises(InputDataError) as info:
        export(mapping, source, tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert (problem.rule, problem.invoice, problem.record) == (
        "input.invoice-number", number, f"{source}:$.invoices[0]")
    assert problem.message == (
        f"invoice number {number!r}: {said}; format {fmt} writes it into its files as it "
        "is, never transliterated nor replaced (an identifier): correct it in the school "
        "software"), problem.message
    assert problem.mapping == f"{mapping}:{line}: bindings.invoice.number"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("postal", "city", "said"), [
    ("B;1000", "Bruxelles", "address.city holds ';', which format bl-emagnus forbids in its "
     "values (its layouts' forbidden_characters)"),
    ("B-1000", "C" * 45, "address.city is 52 characters, format bl-emagnus allows 50"),
], ids=["forbidden", "length"])
def test_a_foreign_city_refused_for_its_postal_code_says_so(tmp_path, postal, city, said):
    """Abroad (foreign_address: postal_code_in_city) the postal code is written before
    the city: a ';' of the postal code (e.magnus forbids it) or the length they make
    together was refused as the city's, 'address.city holds ';'' of a city 'Bruxelles',
    naming the city's binding and not why. The refusal says the postal code is in it."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payer"]["address"].update(country="BE", postal_code=postal,
                                                  city=city)
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    line = next(i for i, text in enumerate(EMAGNUS.read_text(encoding="utf-8").splitlines(), 1)
                if text.strip() == "city: payer.address.city")
    with pytest.raises(InputDataError) as info:
        export(EMAGNUS, source, tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert problem.message.startswith(said), problem.message
    assert problem.message.endswith(
        f"(address.city is written with the foreign postal code {postal!r} before it: "
        "policy foreign_address: postal_code_in_city)"), problem.message
    assert problem.mapping == f"{EMAGNUS}:{line}: bindings.address.city"


def test_an_invoice_number_a_format_does_not_write_is_not_held_to_its_charset(tmp_path):
    """PES titres writes no invoice number (its titres are numbered by IdPce), and a
    latin-1 format takes an 'É' the ascii e.magnus refuses: both export it."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["number"] = "FA-Œ-101"
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    export(MAPPINGS / "villeneuve-sur-loing-titres.yaml", source, tmp_path / "titres", RUN)
    data["invoices"][0]["number"] = "FA-Été-101"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    export(CORAIL, source, tmp_path / "corail", RUN)
    written = next((tmp_path / "corail").glob("CORAIL_*.xml")).read_text(encoding="utf-8")
    assert '<LibPieceJustificative V="FACTURE FA-Été-101"/>' in written


def test_a_jvs_mapping_text_its_xsd_refuses_is_refused_when_the_mapping_meets_the_format(
        tmp_path):
    """JVS Millésime's file is PES-like XML: its own XSD takes LibelleColBud and Sigle as
    Base_TexteX, refusing 'nc', '.' or a space, and the package turns it into PES titles
    (rules: pes-common). check-mapping said OK to budget_label 'nc' and every export was
    refused by the XSD (exit 6, an output problem); now the mapping is refused at the
    text's line (exit 3), as for a PES format, and nothing is written."""
    from pesgen.errors import ExitCode, MappingError

    mapping, [line] = mapping_copy(
        tmp_path, JVS, ("  budget_label: COMMUNE DE VILLENEUVE SUR LOING",
                        '  budget_label: "nc"'))
    r = CliRunner().invoke(app, ["check-mapping", str(mapping)])
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert f"[mapping {mapping}:{line}: collectivity.budget_label] (rule mapping.format)" \
        in r.stderr, r.stderr
    assert "'nc' is not accepted by Hélios" in r.stderr
    with pytest.raises(MappingError):
        export(mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_jvs_is_valid_against_its_own_xsd_and_carries_invoice_lines(tmp_path, official_xsd):
    result = export(JVS, EXAMPLES / "school-export.json", tmp_path, RUN)
    [f] = result.files
    assert f.path.name == "JVS_21450999400015_2026_0000001.xml"
    doc = etree.parse(str(f.path))
    own = load_xsd(ROOT / "templates" / "jvs-millesime" / "jvs-millesime.xsd")
    assert own.validate(doc), own.error_log
    # not a DGFiP flow: the JVS_* elements and Numo are the package's own
    assert not load_xsd(official_xsd_path(official_xsd)).validate(doc)
    lines = doc.findall(".//LigneDePiece")
    assert len(lines) == len(doc.findall(".//JVS_LFAC_Ordre")) == len(doc.findall(".//Tiers"))
    assert doc.find(".//EnTetePES/IdPost") is None
    assert doc.find(".//TypFic").get("V") == "PESALR2"
    assert doc.find(".//Numo").get("V") == "FAM-0042"
    assert f.path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_corail_is_valid_against_its_own_xsd_and_carries_every_amount(tmp_path):
    result = export(CORAIL, EXAMPLES / "school-export.json", tmp_path, RUN)
    [f] = result.files
    assert f.path.name == "CORAIL_21450999400015_2026_0000001.xml"
    # UTF-8, as the source writes it (toprettyxml(encoding="UTF-8"))
    raw = f.path.read_bytes()
    assert raw.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert '<TypePiece V="Pièce EnCours"/>'.encode() in raw
    doc = etree.parse(str(f.path))
    own = load_xsd(ROOT / "templates" / "cosoluce-corail" / "corail.xsd")
    assert own.validate(doc), own.error_log
    root = doc.getroot()
    assert root.tag == "ImportCosoluce" and root.find("Information/Exercice").get("V") == "2026"
    assert root.find("TypePieceImport/TypePiece").get("V") == "Pièce EnCours"
    pieces = root.findall("TypePieceImport/Piece")
    assert len(pieces) == result.titles == 11
    total = 0
    for piece in pieces:
        imputations = sum(Decimal(e.get("V")) for e in piece.iterfind("LignePiece/MontantHT"))
        detail = sum(Decimal(e.get("V"))
                     for e in piece.iterfind("ASAPLigneFacturation/ASAPMontantHT"))
        assert imputations == detail > 0
        total += imputations
    assert total == Decimal("2527.25")
    # Corail's civilities, written in its case after the mapping's case: upper policy
    assert {e.get("V") for e in root.iter("Civilite")} == {"Mr", "Mme"}
    # no part of an address is lost: the street split in two keeps both parts
    [rousseau] = [p for p in pieces if p.find(".//Nom").get("V") == "ROUSSEAU"]
    assert rousseau.find(".//Complement").get("V") == "RÉSIDENCE LES JARDINS DE LA ROSERAIE"
    assert rousseau.find(".//Rue").get("V") == "APPARTEMENT 1204"
    # a direct debit carries the account and the mandate; the others an empty RefBancaire
    debits = [p for p in pieces if p.find("Prelevement") is not None]
    assert len(debits) == len(root.findall(".//RefBancaire/IBAN")) == 4
    assert [p.find("InfoPiece/LibPieceJustificative").get("V") for p in debits] == [
        "FACTURE FA-2026-00101", "FACTURE FA-2026-00107", "FACTURE FA-2026-00110",
        "FACTURE FA-2026-00112"]
    assert {p.find("Prelevement/SequencePrelevement").get("V") for p in debits} <= {
        "01", "02", "03", "04"}


def _tags(element) -> list[str]:
    return [e.tag for e in element]


def test_corail_has_the_structure_of_its_source(tmp_path):
    """The layout of the one public integration (Noethys UTILS_Corail.py, read whole):
    the imputation in LignePiece (Article, Fonction, MontantHT, CodeProduit), the detail
    in ASAPLigneFacturation (ASAPLibelleLigne … ASAPMontantTVA), RefBancaire a sibling
    of Tiers in InfoPiece, written empty without a direct debit, the old-mandate
    elements of Prelevement. pesgen wrote LigneImputation, ASAPLibelle/ASAPMontant/
    ASAPOrdre and RefBancaire inside Tiers, only with a mandate."""
    [f] = export(CORAIL, EXAMPLES / "school-export.json", tmp_path, RUN).files
    root = etree.parse(str(f.path)).getroot()
    pieces = root.findall("TypePieceImport/Piece")
    for piece in pieces:
        debit = piece.find("Prelevement") is not None
        tags = _tags(piece)
        lines = tags.count("ASAPLigneFacturation")
        assert tags == ["InfoPiece", *(["Prelevement"] if debit else []),
                        *["LignePiece"] * tags.count("LignePiece"),
                        *["ASAPLigneFacturation"] * lines], tags
        assert tags.count("LignePiece") >= 1 and lines >= 1
        info = piece.find("InfoPiece")
        assert _tags(info) == [
            "TypeSerieBordereau", "TypeEcriture", "TrainPiece", "Tiers", "RefBancaire",
            "DatePiece", "Objet", "LibPieceJustificative", "TypePiecePES", "NaturePiecePES",
            "PesASAP", "ASAPEnteteFacturation"]
        assert _tags(info.find("Tiers")) == ["InfoTiers", "Adresse"]
        bank = info.find("RefBancaire")
        assert _tags(bank) == (["Titulaire", "IBAN", "BIC"] if debit else [])
        for imputation in piece.iterfind("LignePiece"):
            assert _tags(imputation) == ["Article", "Fonction", "MontantHT", "CodeProduit"]
            assert imputation.find("Article").get("V") == "7062"
        for line in piece.iterfind("ASAPLigneFacturation"):
            assert _tags(line) == ["ASAPLibelleLigne", "ASAPUnite", "ASAPQuantite",
                                   "ASAPPrixUnitaire", "ASAPMontantHT", "ASAPTauxTVA",
                                   "ASAPMontantTVA"]
            assert [line.find(x).get("V") for x in ("ASAPUnite", "ASAPTauxTVA",
                                                     "ASAPMontantTVA")] == ["", "0.00", "0.00"]
            assert Decimal(line.find("ASAPQuantite").get("V")) * \
                Decimal(line.find("ASAPPrixUnitaire").get("V")) == \
                Decimal(line.find("ASAPMontantHT").get("V"))
        if debit:
            assert _tags(piece.find("Prelevement")) == [
                "NaturePrelevement", "PeriodicitePrelevement", "DatePrelevement",
                "SequencePrelevement", "RUM", "DateRUM", "LibPrelevement", "AncienRUM",
                "AncienICS", "AncienCreancier", "ChangementBanque", "AncienIBAN",
                "TitulaireDifferent"]
    assert sum(p.find("Prelevement") is not None for p in pieces) == 4
    # one LignePiece per imputation: FA-2026-00101 bills music (311) and dance (312)
    [first] = [p for p in pieces
               if p.find("InfoPiece/LibPieceJustificative").get("V") == "FACTURE FA-2026-00101"]
    assert [(e.find("CodeProduit").get("V"), e.find("Fonction").get("V"),
             e.find("MontantHT").get("V")) for e in first.iterfind("LignePiece")] == [
        ("FMC1", "311", "62.25"), ("INST", "311", "142.50"), ("DANS", "312", "78.00")]


def _corail_source(tmp_path: Path, **payers: dict) -> Path:
    """The example export with the first invoice's payer (``payer``) and joint payer
    (``joint_payer``) changed or given."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    invoice = data["invoices"][0]
    for key, changes in payers.items():
        invoice.setdefault(key, {"kind": "person", "title": "M.", "address": {
            "street": "4 place du Marché", "postal_code": "45200", "city": "Montargis"}})
        invoice[key].update(changes)
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return source


def test_corail_joint_debtor_is_nested_as_in_its_source_and_valid(tmp_path):
    """TiersSolidaire holds InfoTiersSolidaire and AdresseTiersSolidaire, as Noethys
    writes it; pesgen wrote their elements flat in TiersSolidaire."""
    source = _corail_source(tmp_path, joint_payer={
        "kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
        "address": {"street": "4 place du Marché", "complement": "Bât. C",
                    "postal_code": "1040", "city": "Etterbeek", "country": "BE"}})
    [f] = export(CORAIL, source, tmp_path / "out", RUN).files
    doc = etree.parse(str(f.path))
    own = load_xsd(ROOT / "templates" / "cosoluce-corail" / "corail.xsd")
    assert own.validate(doc), own.error_log
    [joint] = doc.findall(".//TiersSolidaire")
    assert _tags(joint) == ["InfoTiersSolidaire", "AdresseTiersSolidaire"]
    assert {e.tag: e.get("V") for e in joint.find("InfoTiersSolidaire")} == {
        "CatTiersTiersSolidaire": "01", "NatJurTiersSolidaire": "01",
        "TypeTiersTiersSolidaire": "D", "CiviliteTiersSolidaire": "Mr",
        "RaisonSocialeTiersSolidaire": "LEFÈVRE MARC", "NomTiersSolidaire": "LEFÈVRE",
        "PrenomTiersSolidaire": "MARC"}
    assert {e.tag: e.get("V") for e in joint.find("AdresseTiersSolidaire")} == {
        "AdresseEtrangerTiersSolidaire": "O", "ComplementTiersSolidaire": "BÂT. C",
        "RueTiersSolidaire": "4 PLACE DU MARCHÉ", "CPTiersSolidaire": "99999",
        "VilleTiersSolidaire": "1040 ETTERBEEK"}
    info = joint.getparent()
    assert _tags(info)[3:6] == ["Tiers", "RefBancaire", "TiersSolidaire"]
    assert info.find("LibPieceJustificative").get("V") == "FACTURE FA-2026-00101"


def test_corail_raison_sociale_loses_no_part_of_a_split_name(tmp_path):
    """A person's name split by name_overflow (Nom 38 + ComplNom) lost its second part
    in RaisonSociale when the person had a first name: 'ASSOCIATION SPORTIVE ET
    CULTURELLE DES JEAN'. RaisonSociale is now the name, its complement and the first
    name, the joint debtor's too."""
    name = {"last_name": "Association Sportive et Culturelle des Familles Rurales",
            "first_name": "Jean"}
    source = _corail_source(tmp_path, payer=name, joint_payer=name)
    [f] = export(CORAIL, source, tmp_path / "out", RUN).files
    doc = etree.parse(str(f.path))
    own = load_xsd(ROOT / "templates" / "cosoluce-corail" / "corail.xsd")
    assert own.validate(doc), own.error_log
    for suffix, info in (("", doc.findall(".//InfoTiers")[0]),
                         ("TiersSolidaire", doc.find(".//InfoTiersSolidaire"))):
        got = {e.tag.removesuffix(suffix) if suffix else e.tag: e.get("V") for e in info}
        assert got["Nom"] == "ASSOCIATION SPORTIVE ET CULTURELLE DES"
        assert got["ComplNom"] == "FAMILLES RURALES" and got["Prenom"] == "JEAN"
        assert got["RaisonSociale"] == \
            "ASSOCIATION SPORTIVE ET CULTURELLE DES FAMILLES RURALES JEAN"


def test_corail_raison_sociale_over_its_limit_is_refused(tmp_path):
    """Name, complement and first name over RaisonSociale's 77 characters: refused by
    corail.xsd, each debtor named by its invoice and input record, nothing written (the
    complement is never dropped to make it fit)."""
    long = {"last_name": "De La Rochefoucauld-Montmorency Saint-Aubin",
            "first_name": "Marie-Christine Anne-Sophie Éléonore"}
    source = _corail_source(tmp_path, payer=long, joint_payer=long)
    out = tmp_path / "out"
    with pytest.raises(OutputInvalidError) as info:
        export(CORAIL, source, out, RUN)
    assert "nothing written" in str(info.value)
    assert not out.exists()
    said = [str(p) for p in info.value.problems]
    assert len(said) == 2, said
    elements = ("InfoTiers/RaisonSociale", "InfoTiersSolidaire/RaisonSocialeTiersSolidaire")
    for problem, element in zip(said, elements, strict=True):
        assert element in problem and "invoice FA-2026-00101" in problem, problem
        assert "length of '80'" in problem and "maximum length of '77'" in problem
        assert "$.invoices[0]" in problem and "(rule xsd.bundle)" in problem


def test_vendor_formats_are_marked_reconstructed():
    r = CliRunner().invoke(app, ["formats"])
    assert r.exit_code == 0
    rows = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.strip()}
    for name in ("bl-emagnus", "jvs-millesime", "cosoluce-corail"):
        assert "reconstructed" in rows[name]
        assert "layout reconstructed from public integrations" in rows[name]
        assert find_format(name).status == "reconstructed"
        readme = (ROOT / "templates" / name / "README.md").read_text(encoding="utf-8")
        assert "to confirm with the publisher's documentation during the feasibility " \
               "study" in readme
    assert "stable" in rows["pes-titres"] and "reconstructed" not in rows["pes-titres"]
    for absent in ("ciril", "odyssee", "afi", "sedit"):
        assert not any(absent in name for name in rows)


# ------------------------------------------------------- a rendered file breaks its layout


def _broken_emagnus(tmp_path: Path, old: str, new: str,
                    template: str = "wtamc001.txt.j2") -> tuple[Path, Path]:
    """A copy of bl-emagnus whose ``template`` has ``old`` made ``new``."""
    fmts = tmp_path / "fmts"
    shutil.copytree(BUNDLE, fmts / "bl-emagnus")
    tpl = fmts / "bl-emagnus" / template
    text = tpl.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    tpl.write_text(text.replace(old, new), encoding="utf-8")
    return fmts, tmp_path / "out"


def _refused_output(fmts: Path, out: Path) -> OutputInvalidError:
    """The example exported to e.magnus with the bundle in ``fmts``, refused for what it
    rendered: nothing written in ``out``, no file, no temporary, not even the folder."""
    with pytest.raises(OutputInvalidError) as info:
        export(EMAGNUS, EXAMPLES / "school-export.json", out, RUN, formats_dirs=[fmts])
    assert not out.exists()
    return info.value


@pytest.mark.parametrize(("old", "new", "rule", "column", "words"), [
    # too long: the whole object where Libelle1 allows 50
    ("  18: t.object,", "  18: t.object ~ ' - ' ~ t.object,", "layout.length",
     "record 'ecriture', column Libelle1 (#18)", "the layout allows 50"),
    # wrong type: a French amount written with a dot
    ('  30: imp.amount | amount(","),', "  30: imp.amount | amount,", "layout.type",
     "record 'ecriture', column MontantHT (#30)", "decimal separator is ','"),
    # missing column: the record is one column short
    ("csv_record(size=125,", "csv_record(size=124,", "layout.columns",
     "missing column col125 (#125)", "record 'ecriture' has 124 fields, the layout has 125"),
])
def test_a_file_breaking_its_layout_is_refused_and_nothing_is_written(
        tmp_path, old, new, rule, column, words):
    fmts, out = _broken_emagnus(tmp_path, old, new)
    refused = _refused_output(fmts, out)
    assert "nothing written" in str(refused)
    problems = refused.problems
    assert len(problems) == 21  # every record of the file, not the first
    p = problems[0]
    assert p.rule == rule
    assert p.record == "WTAMC001.txt:1"
    assert column in p.message and words in p.message
    assert [q.record for q in problems] == [f"WTAMC001.txt:{i}" for i in range(1, 22)]


def test_a_piece_whose_imputations_break_their_group_is_refused(tmp_path):
    """The layout's groups (layout.group) hold at export too: a template marking every
    imputation M (a piece's first) is refused, naming each line of a piece after its
    first, and nothing is written."""
    fmts, out = _broken_emagnus(tmp_path, '  7: "M" if loop.first else "S",', '  7: "M",')
    problems = _refused_output(fmts, out).problems
    assert {p.rule for p in problems} == {"layout.group"}
    assert problems[0].record == "WTAMC001.txt:2"
    assert problems[0].message.startswith("record 'ecriture', column Multiple (#7): 'M' on "
                                          "line 2 of group IDEcriture '1'; the layout wants "
                                          "'S' on the lines after the first")
    # one per line that is not its piece's first: every line but one per piece
    lines = (BUNDLE / "expected" / "WTAMC001.txt").read_bytes().split(b"\r\n")
    pieces = {line.split(b";")[0] for line in lines if line}
    assert len(problems) == sum(1 for line in lines if line) - len(pieces)


def _emagnus_detail(tmp_path: Path, old: str, new: str) -> tuple[Path, Path]:
    """A copy of bl-emagnus whose detail template (WTAMC001AS) has ``old`` made ``new``."""
    return _broken_emagnus(tmp_path, old, new, "wtamc001as.txt.j2")


def test_detail_lines_that_do_not_sum_to_their_piece_are_refused(tmp_path):
    """format.yaml across_files (layout.across): each file valid against its layout,
    a detail line whose MtHTaxe is the unit price where the quantity is 2 no longer
    sums to its piece's imputations; a detail line naming a piece the main file does
    not have is refused too. Nothing is written."""
    fmts, out = _emagnus_detail(tmp_path, '    ln.amount | amount(","), "", "", ln.amount',
                                '    (ln.amount + 1) | amount(","), "", "", ln.amount')
    problems = _refused_output(fmts, out).problems
    assert {p.rule for p in problems} == {"layout.across"}
    assert problems[0].record == "WTAMC001.txt:1"
    assert problems[0].message == ("IDEcriture '1': its MontantHT sum to 282.75, the "
                                   "MtHTaxe of its lines in WTAMC001AS.txt to 285.75")
    assert len(problems) == 11  # one per piece

    fmts, out = _emagnus_detail(tmp_path / "2", '["19", t.number,', '["19", t.number + 100,')
    problems = _refused_output(fmts, out).problems
    assert problems[0].record == "WTAMC001AS.txt:1"
    assert problems[0].message == "column RefIdEcriture: '101' is no IDEcriture of WTAMC001.txt"


@pytest.mark.parametrize("entry, key, says", [
    ("{file: nope.j2, key: RefIdEcriture, in: wtamc001.txt.j2, in_key: IDEcriture}",
     "across_files[0].file", "'nope.j2' is no file of the bundle with a layout"),
    ("{file: wtamc001as.txt.j2, key: Ref, in: wtamc001.txt.j2, in_key: IDEcriture}",
     "across_files[0].key", "layout WTAMC001AS has no column 'Ref'"),
    ("{file: wtamc001as.txt.j2, key: RefIdEcriture, sum: Libelle, in: wtamc001.txt.j2, "
     "in_key: IDEcriture, in_sum: MontantHT}", "across_files[0].sum",
     "column 'Libelle' of layout WTAMC001AS is summed: it must be an integer or decimal"),
])
def test_an_across_files_check_naming_what_the_layouts_lack_breaks_the_bundle(
        tmp_path, entry, key, says):
    fmts = tmp_path / "fmts"
    shutil.copytree(BUNDLE, fmts / "bl-emagnus")
    spec = fmts / "bl-emagnus" / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    start = text.index("across_files:\n")
    end = text.index("\n", text.index("in_key: IDEcriture}\n", text.index(
        "wtamc001tsol.txt.j2, key", start))) + 1
    text = text[:start] + f"across_files:\n  - {entry}\n" + text[end:]
    spec.write_text(text, encoding="utf-8")
    line = text[:text.index(f"  - {entry}")].count("\n") + 1
    r = CliRunner().invoke(app, ["check-format", "bl-emagnus", "--formats-dir", str(fmts)])
    assert r.exit_code == 3, r.output
    assert f"format.yaml:{line}: {key}" in r.stderr and says in r.stderr, r.stderr
    assert "(rule format.across)" in r.stderr


def test_the_cli_lists_the_layout_problems_and_exits_6(tmp_path):
    fmts, out = _broken_emagnus(tmp_path, "  18: t.object,", "  18: t.object ~ t.object,")
    r = CliRunner().invoke(app, ["export", "-m", str(EMAGNUS), "-i",
                                 str(EXAMPLES / "school-export.json"), "-o", str(out),
                                 "--date", "2026-11-23", "--formats-dir", str(fmts)])
    assert r.exit_code == 6
    assert ("  - WTAMC001.txt:1 invoice FA-2026-00101: record 'ecriture', column Libelle1 "
            "(#18): ") in r.stderr
    assert ("is 70 characters, the layout allows 50 (rendered from "
            "examples/school-export.json:$.invoices[0]) (rule layout.length)") in r.stderr
    assert "nothing was written" in r.stderr
    assert not out.exists()  # nothing written, not even the folder it made


def _bundle_skipping_empty_tsol(tmp_path: Path) -> Path:
    formats = tmp_path / "formats"
    shutil.copytree(BUNDLE, formats / "bl-emagnus")
    spec = formats / "bl-emagnus" / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    old = '    layout: wtamc001tsol.layout.yaml\n'
    assert old in text
    spec.write_text(text.replace(old, old + "    when_empty: skip\n"), encoding="utf-8")
    return formats


def test_a_side_file_marked_when_empty_skip_is_not_written_when_it_holds_nothing(tmp_path):
    formats = _bundle_skipping_empty_tsol(tmp_path)
    out = tmp_path / "out"
    result = export(EMAGNUS, EXAMPLES / "school-export.json", out, RUN, formats_dirs=[formats])
    assert [f.path.name for f in result.files] == ["WTAMC001.txt", "WTAMC001AS.txt"]
    assert result.skipped == ["WTAMC001_TSOL.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["WTAMC001.txt", "WTAMC001AS.txt"]
    # with a joint debtor the same bundle writes the file
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["joint_payer"] = {
        "kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
        "address": {"street": "4 place du Marché", "postal_code": "45200", "city": "Montargis"}}
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(EMAGNUS, source, tmp_path / "out2", RUN, formats_dirs=[formats])
    assert result.skipped == []
    assert "WTAMC001_TSOL.txt" in [f.path.name for f in result.files]


def test_the_cli_names_a_skipped_empty_file(tmp_path):
    formats = _bundle_skipping_empty_tsol(tmp_path)
    res = CliRunner().invoke(app, ["export", "--mapping", str(EMAGNUS), "--input",
                                   str(EXAMPLES / "school-export.json"), "--out",
                                   str(tmp_path / "out"), "--date", "2026-11-23",
                                   "--formats-dir", str(formats)])
    assert res.exit_code == 0, res.output
    assert "not written: WTAMC001_TSOL.txt (empty; the format says when_empty: skip)" in \
        res.output
    run_id = res.output.split(" run ", 1)[1].split()[0]
    shown = CliRunner().invoke(app, ["runs", "show", run_id])
    assert shown.exit_code == 0, shown.output
    assert "not written WTAMC001_TSOL.txt: empty (when_empty: skip)" in shown.output


def test_the_dgfip_xsd_is_not_applied_to_a_finance_package_import(tmp_path, official_xsd):
    """--official-xsd (often set once in the config) validates PES files; a JVS import
    is not one: it is exported, and the summary says the DGFiP XSD was not applied."""
    r = CliRunner().invoke(app, ["export", "-m", str(JVS), "-i",
                                 str(EXAMPLES / "school-export.json"), "-o",
                                 str(tmp_path / "out"), "--db", str(tmp_path / "s.sqlite3"),
                                 "--create-store", "--date", RUN.isoformat(),
                                 "--official-xsd", str(official_xsd)])
    assert r.exit_code == 0, r.output
    assert "DGFiP XSD: not applied (jvs-millesime is a finance package's import" in r.stdout


def _export_in_one_store(tmp_path: Path, mapping: Path, out: str,
                         input_path: Path = EXAMPLES / "school-export.json"):
    """``pesgen export`` into tmp_path/out, every call of a test with the same store."""
    return CliRunner().invoke(app, ["export", "-m", str(mapping), "-i", str(input_path),
                                    "-o", str(tmp_path / out), "--db",
                                    str(tmp_path / "s.sqlite3"), "--create-store",
                                    "--date", RUN.isoformat()])


def test_another_formats_duplicate_points_at_a_throw_away_store(tmp_path):
    """A technician trying a finance package's import on invoices the collectivity
    exported as a rôle was refused (exit 7) with 'exported from this same input already:
    nothing to export again', which is no answer to a trial: the refusal now says the
    runs holding them are of another format and how to try one (a throw-away store,
    docs/onboarding.md step 7). A duplicate of the same format does not say it."""
    def run(mapping: Path, out: str):
        return _export_in_one_store(tmp_path, mapping, out)

    assert run(MAPPINGS / "villeneuve-sur-loing.yaml", "ormc").exit_code == 0
    trial = run(CORAIL, "corail")
    assert trial.exit_code == 7, trial.output
    [first] = trial.stderr.splitlines()[:1]
    assert first.endswith(". That run is of format pes-ormc, this export of cosoluce-corail: "
                          "to try another format on the same invoices (files for a package's "
                          "test environment), export into a throw-away store, --db "
                          "/tmp/trial.sqlite3 --create-store (docs/onboarding.md, step 7)"), first
    again = run(MAPPINGS / "villeneuve-sur-loing.yaml", "ormc2")
    assert again.exit_code == 7, again.output
    assert "nothing to export again" in again.stderr and "throw-away" not in again.stderr


def test_invoices_two_runs_of_another_format_hold_name_those_runs(tmp_path):
    """The example exported as a rôle in two runs, then tried as a finance package's
    import: the refusal says it of both runs, "Those runs are"."""
    from .test_cancel import BORDEREAUX, only

    def run(mapping: Path, input_path: Path, out: str):
        return _export_in_one_store(tmp_path, mapping, out, input_path)

    first = only(tmp_path, BORDEREAUX[1], "first.json")
    rest = only(tmp_path, BORDEREAUX[2] + BORDEREAUX[3], "rest.json")
    assert run(MAPPINGS / "villeneuve-sur-loing.yaml", first, "ormc1").exit_code == 0
    assert run(MAPPINGS / "villeneuve-sur-loing.yaml", rest, "ormc2").exit_code == 0
    trial = run(CORAIL, EXAMPLES / "school-export.json", "corail")
    assert trial.exit_code == 7, trial.output
    [said] = trial.stderr.splitlines()[:1]
    assert ". Those runs are of format pes-ormc, this export of cosoluce-corail: to try " \
        "another format on the same invoices" in said, said


def test_validate_applies_the_dgfip_xsd_as_export_does(official_xsd):
    """validate --official-xsd applied the DGFiP package to a finance package's import
    (61 problems for JVS's own expected file, exit 6; Corail's refused the same way),
    where export skips it for such formats and says so: validate now does the same, and
    still applies it to a PES format's file."""
    for name in ("jvs-millesime", "cosoluce-corail"):
        [file] = (data_dir("templates") / name / "expected").glob("*.xml")
        r = CliRunner().invoke(app, ["validate", str(file), "--format", name,
                                     "--official-xsd", str(official_xsd)])
        assert r.exit_code == 0, r.output
        assert r.stdout.rstrip().endswith(
            f"; DGFiP XSD: not applied ({name} is a finance package's import, not a PES "
            "file)"), r.stdout
        assert "+ DGFiP XSD" not in r.stdout
    [ormc] = (data_dir("templates") / "pes-ormc" / "expected").glob("*.xml")
    r = CliRunner().invoke(app, ["validate", str(ormc), "--official-xsd", str(official_xsd)])
    assert r.exit_code == 0, r.output
    assert r.stdout.rstrip().endswith(f"+ DGFiP XSD {official_xsd}"), r.stdout
    assert "not applied" not in r.stdout


def test_emagnus_says_when_the_account_holder_is_not_the_debtor(tmp_path):
    """Column 80 (TitCpteDiff O/N) follows the mandate: O when the holder is not the
    debtor, N when it is (the example's first invoice)."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payment"]["mandate"]["holder"] = "Martin Paul"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(EMAGNUS, source, tmp_path / "out", RUN)
    main = _records({f.path.name: f.path for f in result.files}["WTAMC001.txt"])
    flags = {(r[110], r[79]) for r in main if r[70] == "O"}  # direct debits only
    assert ("FA-2026-00101", "O") in flags
    assert {flag for inv, flag in flags if inv != "FA-2026-00101"} == {"N"}


@pytest.mark.parametrize("mapping", [EMAGNUS, CORAIL, JVS], ids=["emagnus", "corail", "jvs"])
def test_a_quantity_and_price_not_giving_the_amount_are_noted(tmp_path, mapping):
    """The pricing filter writes 1 x amount for a line whose quantity and unit price do
    not multiply to its amount: before, a quantity of -3 went into e.magnus's file as 1
    without a word. Each such line is noted (a netted line, its amount changed, too);
    PES, which carries no quantity, notes none."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    invoice = next(i for i in data["invoices"] if i["number"] == "FA-2026-00102")
    invoice["lines"][0]["quantity"] = -3
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result = export(mapping, source, tmp_path / "out", date(2026, 11, 23))
    notes = sorted((n.invoice, n.detail) for n in result.notes if n.policy == "pricing")
    assert notes == [
        ("FA-2026-00101", "line 1: quantity × unit price (1.00 × 85.00) is not its amount "
                          "(62.25): the pricing filter gives 1 × 62.25"),
        ("FA-2026-00102", "line 1: quantity × unit price (-3.00 × 142.50) is not its "
                          "amount (142.50): the pricing filter gives 1 × 142.50")]
    pes = export(MAPPINGS / "villeneuve-sur-loing.yaml", source, tmp_path / "pes",
                 date(2026, 11, 23))
    assert not [n for n in pes.notes if n.policy == "pricing"]


@pytest.mark.parametrize(("mapping", "drop", "said"), [
    (EMAGNUS, "unit_price", "a quantity (2.00) without a unit price"),
    (CORAIL, "quantity", "a unit price (71.25) without a quantity"),
], ids=["no-unit-price", "no-quantity"])
def test_a_quantity_or_price_given_alone_is_noted(tmp_path, mapping, drop, said):
    """A line exported with a quantity and no unit price (or the other way round) is
    written 1 x its amount, the figure given dropped: it was written so without a word,
    a line priced otherwise being noted. Noted now; a line with neither is not (nothing
    exported is dropped), nor is any in a PES export, which carries no quantity."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    invoice = next(i for i in data["invoices"] if i["number"] == "FA-2026-00102")
    invoice["lines"][0].update(quantity=2, unit_price="71.25")
    del invoice["lines"][0][drop]
    other = next(i for i in data["invoices"] if i["number"] == "FA-2026-00103")
    for line in other["lines"]:
        line.pop("quantity", None)
        line.pop("unit_price", None)
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result = export(mapping, source, tmp_path / "out", date(2026, 11, 23))
    notes = sorted((n.invoice, n.detail, n.line) for n in result.notes
                   if n.policy == "pricing" and n.invoice != "FA-2026-00101")
    assert notes == [("FA-2026-00102", f"line 1: {said}: the pricing filter gives "
                      "1 × 142.50", "1")]
    pes = export(MAPPINGS / "villeneuve-sur-loing.yaml", source, tmp_path / "pes",
                 date(2026, 11, 23))
    assert not [n for n in pes.notes if n.policy == "pricing"]


def test_a_negative_quantity_and_price_giving_the_amount_are_noted(tmp_path):
    """A quantity below 0 is no quantity the pricing filter writes, even when the unit
    price's sign makes the product the amount (-0.5 x -285.00 = 142.50): noted, saying
    so (the note said the product was not the amount)."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    invoice = next(i for i in data["invoices"] if i["number"] == "FA-2026-00102")
    invoice["lines"][0].update(quantity="-0.5", unit_price="-285.00")
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    result = export(EMAGNUS, source, tmp_path / "out", date(2026, 11, 23))
    assert ("FA-2026-00102", "line 1: quantity × unit price (-0.50 × -285.00) gives its "
            "amount, but a quantity of -0.50 is not above 0: the pricing filter gives "
            "1 × 142.50") in [
        (n.invoice, n.detail) for n in result.notes if n.policy == "pricing"]


def _corail_including(tmp_path: Path, location: str) -> Path:
    """A copy of the corail bundle whose XSD includes ``location``."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "cosoluce-corail", fmts / "cosoluce-corail")
    xsd = fmts / "cosoluce-corail" / "corail.xsd"
    text = xsd.read_text(encoding="utf-8")
    head = ('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
            'elementFormDefault="unqualified">')
    assert text.count(head) == 1
    xsd.write_text(text.replace(head, f'{head}\n<xs:include schemaLocation="{location}"/>'),
                   encoding="utf-8")
    (tmp_path / "outside.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n', encoding="utf-8")
    return fmts


@pytest.mark.parametrize("location", ["../../outside.xsd", "file:///etc/passwd",
                                      "file:///no/such/file.xsd",
                                      "http://127.0.0.1:1/remote.xsd"])
def test_a_bundle_xsd_reads_nothing_outside_its_bundle(tmp_path, location):
    # an include outside the bundle was read (export exit 0, check-format: identical);
    # file:///etc/passwd was read too, its errors telling whether a file exists
    fmts = _corail_including(tmp_path, location)
    xsd = (fmts / "cosoluce-corail" / "corail.xsd").resolve()
    runner = CliRunner()
    result = runner.invoke(app, ["check-format", "cosoluce-corail", "--formats-dir", str(fmts)])
    assert result.exit_code == 3, result.output
    said = f"{xsd}: cannot load XML schema: it includes or imports '"
    assert said in result.output
    assert f"outside {(fmts / 'cosoluce-corail').resolve()}" in result.output
    assert "passwd" not in location or "root:" not in result.output
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "--mapping", str(CORAIL), "--input",
                                 str(EXAMPLES / "school-export.json"), "--out", str(out),
                                 "--date", "2026-11-23", "--db",
                                 f"sqlite:///{tmp_path / 'x.db'}", "--create-store",
                                 "--formats-dir", str(fmts)])
    assert result.exit_code != 0, result.output
    assert said in result.output
    assert not out.exists() or not any(out.iterdir())


def test_an_include_beside_the_xsd_in_its_bundle_still_loads(tmp_path):
    fmts = _corail_including(tmp_path, "extra/inside.xsd")
    (fmts / "cosoluce-corail" / "extra").mkdir()
    (fmts / "cosoluce-corail" / "extra" / "inside.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["check-format", "cosoluce-corail", "--formats-dir",
                                      str(fmts)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("host", ["", "localhost"])
def test_an_include_inside_the_bundle_written_as_a_file_url_still_loads(tmp_path, host):
    """file:///… (or file://localhost/…) naming a file inside the bundle is read as that
    file; only a file URL elsewhere, or on another host, is refused."""
    inside = tmp_path / "fmts" / "cosoluce-corail" / "extra" / "inside.xsd"
    fmts = _corail_including(tmp_path, f"file://{host}{inside.resolve().as_uri()[7:]}")
    inside.parent.mkdir()
    inside.write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n',
                      encoding="utf-8")
    result = CliRunner().invoke(app, ["check-format", "cosoluce-corail", "--formats-dir",
                                      str(fmts)])
    assert result.exit_code == 0, result.output


def test_an_xsd_in_a_folder_whose_name_holds_a_percent_escape_loads(tmp_path):
    """A folder named 'schemas%20v5' is read as named (libxml2 gives its path as it is),
    not as 'schemas v5', which is not there."""
    empty = '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n'
    folder = tmp_path / "schemas%20v5"
    folder.mkdir()
    (folder / "inside.xsd").write_text(empty, encoding="utf-8")
    entry = folder / "entry.xsd"
    entry.write_text(empty.replace("/>", '><xs:include schemaLocation="inside.xsd"/>'
                                         "</xs:schema>"), encoding="utf-8")
    load_xsd(entry)


def test_an_include_whose_location_is_no_uri_is_named_with_its_line(tmp_path):
    """libxml2 refuses a schemaLocation with a space ('could not build an URI'), naming
    neither the file nor the include: pesgen names each, with the URI to write, in the
    XSD itself or in one it includes."""
    empty = '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n'
    (tmp_path / "extra dir").mkdir()
    (tmp_path / "extra dir" / "inside.xsd").write_text(empty, encoding="utf-8")
    entry = tmp_path / "entry.xsd"
    entry.write_text(empty.replace("/>", '>\n<xs:include schemaLocation="extra dir/inside.xsd"/>'
                                         "</xs:schema>"), encoding="utf-8")
    with pytest.raises(UsageError) as info:
        load_xsd(entry)
    assert str(info.value) == (
        f"{entry}: cannot load XML schema: {entry}:2: schemaLocation 'extra dir/inside.xsd' "
        "is not a URI (write 'extra%20dir/inside.xsd')")
    # written so, it loads; a bad one further down is named in its own file
    entry.write_text(empty.replace("/>", '><xs:include schemaLocation="middle.xsd"/>'
                                         "</xs:schema>"), encoding="utf-8")
    middle = tmp_path / "middle.xsd"
    middle.write_text(empty.replace("/>", '><xs:include '
                                          'schemaLocation="extra%20dir/inside.xsd"/>'
                                          "</xs:schema>"), encoding="utf-8")
    load_xsd(entry)
    middle.write_text(empty.replace("/>", '>\n\n<xs:include '
                                          'schemaLocation="extra dir\\inside.xsd"/>'
                                          "</xs:schema>"), encoding="utf-8")
    again = tmp_path / "again.xsd"  # (load_xsd remembers entry.xsd's schema)
    again.write_bytes(entry.read_bytes())
    with pytest.raises(UsageError) as info:
        load_xsd(again)
    assert str(info.value) == (
        f"{again}: cannot load XML schema: {middle}:3: schemaLocation "
        "'extra dir\\\\inside.xsd' is not a URI (write 'extra%20dir%5Cinside.xsd')")


def test_a_lone_xsd_reads_nothing_outside_its_own_folder(tmp_path):
    """An XSD in no bundle, not pesgen's and not laid out as the DGFiP package's entry
    (PES_V2/Rev0/, whose includes sit beside Rev0) is read from its own folder only."""
    empty = '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>\n'
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "outside.xsd").write_text(empty, encoding="utf-8")
    entry = tmp_path / "a" / "b" / "entry.xsd"
    entry.write_text(empty.replace("/>", '><xs:include schemaLocation="../outside.xsd"/>'
                                         "</xs:schema>"), encoding="utf-8")
    with pytest.raises(UsageError, match="it includes or imports '.*outside.xsd', outside "):
        load_xsd(entry)


def test_the_dgfip_package_is_found_from_each_folder_of_it(tmp_path):
    """--official-xsd takes the entry file, the package folder (the one holding
    PES_V2/), its PES_V2 folder, or the folder holding one schemas_pes_* package: each
    leads to PES_V2/Rev0/PES_Aller.xsd (a layout alone: no DGFiP schema is copied)."""
    entry = tmp_path / "schemas_pes_v5.17" / "PES_V2" / "Rev0" / "PES_Aller.xsd"
    entry.parent.mkdir(parents=True)
    entry.write_text("<layout-only/>", encoding="utf-8")
    for given in (entry, entry.parents[2], entry.parents[1], tmp_path):
        assert official_xsd_path(given) == entry, given


def test_the_dgfip_package_and_the_shipped_schemas_load_confined(official_xsd):
    from pesgen.validate import xsd_root

    entry = official_xsd_path(official_xsd)
    assert xsd_root(entry.resolve()) == entry.resolve().parents[2]
    load_xsd(entry)
    load_xsd(entry.parent / "PES_V2_Acquit_Autonome_V2.xsd")
    for xsd in sorted(data_dir("schemas").rglob("*.xsd")):
        load_xsd(xsd)


@pytest.mark.parametrize("layout", ["renamed", "linked"])
def test_the_dgfip_package_loads_with_its_pes_v2_folder_renamed_or_linked(
        tmp_path, official_xsd, layout):
    """The confinement recognised the package only by a folder named PES_V2 after links
    were resolved: a package whose PES_V2 was a link to another name, or renamed (given
    as its entry file), had every ../NS_* include refused (exit 2)."""
    from pesgen.validate import xsd_root

    package = tmp_path / "pkg"
    shutil.copytree(official_xsd, package)  # xmldsig/ and the rest beside PES_V2
    real = package / ("PES_V2_v5.17" if layout == "renamed" else "pes_v2_real")
    (package / "PES_V2").rename(real)
    if layout == "linked":
        (package / "PES_V2").symlink_to(real.name)
        entry = official_xsd_path(package)
    else:
        entry = official_xsd_path(real / "Rev0" / "PES_Aller.xsd")
    assert xsd_root(entry.resolve()) == package
    load_xsd.cache_clear()
    load_xsd(entry)
    load_xsd(entry.parent / "PES_V2_Acquit_Autonome_V2.xsd")
    ormc = next((ROOT / "tests" / "golden" / "example-json").rglob("*.xml"))
    r = CliRunner().invoke(app, ["validate", str(ormc), "--official-xsd", str(entry)])
    assert r.exit_code == 0 and "cannot load XML schema" not in r.output, r.output


def test_check_format_holds_the_expected_files_to_across_files(tmp_path):
    """A bundle's expected files are checked between them too: a detail amount of
    WTAMC001AS changed (still a valid amount) breaks layout.across, exit 6."""
    fmts = tmp_path / "fmts"
    shutil.copytree(BUNDLE, fmts / "bl-emagnus")
    detail = fmts / "bl-emagnus" / "expected" / "WTAMC001AS.txt"
    raw = detail.read_bytes()
    first = raw.split(b"\r\n", 1)[0]
    fields = first.split(b";")
    assert fields[12] == b"62,25"
    fields[12] = b"62,26"
    detail.write_bytes(raw.replace(first, b";".join(fields), 1))
    r = CliRunner().invoke(app, ["check-format", "bl-emagnus", "--formats-dir", str(fmts)])
    assert r.exit_code == 6, r.output
    assert ("WTAMC001.txt:1: IDEcriture '1': its MontantHT sum to 282.75, the MtHTaxe of its "
            "lines in WTAMC001AS.txt to 282.76 (rule layout.across)") in r.stderr, r.stderr


def test_check_format_holds_each_bordereau_of_a_fixture_to_across_files(tmp_path):
    """A fixture of several bordereaux (the file names numbered, six titles a
    bordereau): its expected files are checked between the files of each
    bordereau, as the export checks them; a detail amount changed in the second
    bordereau's WTAMC001AS breaks layout.across, exit 6. They were not checked at all
    (a template's file twice in expected/: skipped, saying nothing)."""
    fmts = tmp_path / "fmts"
    bundle = fmts / "bl-emagnus"
    shutil.copytree(BUNDLE, bundle)
    spec = bundle / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    for name in ("WTAMC001", "WTAMC001AS", "WTAMC001_TSOL"):
        old = f'name: "{name}.txt"'
        assert text.count(old) == 1, old
        text = text.replace(old, f'name: "{name}-{{{{ doc.bordereau.number }}}}.txt"')
    spec.write_text(text, encoding="utf-8")
    mapping_copy(bundle / "fixture", bundle / "fixture" / "mapping.yaml",
                 ("  format: bl-emagnus\n", "  format: bl-emagnus\n"
                  "  max_pieces_per_bordereau: 6\n"))
    for old in (bundle / "expected").glob("*.txt"):
        old.unlink()
    r = CliRunner().invoke(app, ["check-format", "bl-emagnus", "--formats-dir", str(fmts),
                                 "--regen"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (bundle / "expected").glob("*.txt")) == [
        f"{name}-{number}.txt" for name in ("WTAMC001", "WTAMC001AS", "WTAMC001_TSOL")
        for number in (1, 2)]
    detail = bundle / "expected" / "WTAMC001AS-2.txt"
    raw = detail.read_bytes()
    first = raw.split(b"\r\n", 1)[0]
    fields = first.split(b";")
    assert fields[12] == b"85,00"
    fields[12] = b"85,01"
    detail.write_bytes(raw.replace(first, b";".join(fields), 1))
    r = CliRunner().invoke(app, ["check-format", "bl-emagnus", "--formats-dir", str(fmts)])
    assert r.exit_code == 6, r.output
    assert ("WTAMC001-2.txt:1: IDEcriture '1': its MontantHT sum to 575.00, the MtHTaxe of "
            "its lines in WTAMC001AS-2.txt to 575.01 (rule layout.across)") in r.stderr, r.stderr


# ------------------------------------------------------- a line's student, written


def _student_written(tmp_path: Path, ref: str) -> tuple[Path, Path]:
    """A copy of bl-emagnus whose detail line (WTAMC001AS) writes the line's student in
    Libelle (line.student no longer declared not carried), and the example with its first
    line's student reference ``ref``."""
    fmts, _ = _broken_emagnus(tmp_path, "ln.label or t.object,",
                              "ln.student or ln.label or t.object,", "wtamc001as.txt.j2")
    spec = fmts / "bl-emagnus" / "format.yaml"
    lines = spec.read_text(encoding="utf-8").splitlines(keepends=True)
    spec.write_text("".join(ln for ln in lines if not ln.startswith("  line.student:")),
                    encoding="utf-8")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["lines"][0]["student"]["ref"] = ref
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return fmts, source


def test_a_student_a_template_writes_is_held_to_the_text_policies(tmp_path):
    """line.student was taken as exported, whatever it held: a vendor template writing it
    wrote 'élv-0101' as it was, where every other free text is upper-cased and
    transliterated by the mapping's policies (e.magnus: case upper, transliterate)."""
    fmts, source = _student_written(tmp_path, "élv-0101")
    result = export(EMAGNUS, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    first = _records(tmp_path / "out" / "WTAMC001AS.txt")[0]
    assert first[4] == "ELV-0101", first
    assert ("FA-2026-00101", "transliterate", "line.student: É→E") in [
        (n.invoice, n.policy, n.detail) for n in result.notes]


def test_a_student_no_template_writes_is_taken_as_exported(tmp_path):
    """The stock bl-emagnus writes the invoice number but not the line's student: the
    student is kept as exported, the text policies not applied to it (no note) and a
    format character in it not refused; what the templates read is told apart by field."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["lines"][0]["student"]["ref"] = "\u00e9lv-\u202e0101"
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(EMAGNUS, source, tmp_path / "out", RUN)
    assert not [n for n in result.notes if n.detail.startswith("line.student")]
    assert (tmp_path / "out" / "WTAMC001AS.txt").exists()


def test_a_student_a_template_writes_holding_a_format_character_is_refused(tmp_path):
    """A right-to-left override in a student's reference went into the files as it was
    (shown, the text after it reversed), where any other free text refuses it."""
    fmts, source = _student_written(tmp_path, "ELV-\u202e0101")
    line = _binding_line(EMAGNUS, "student: student.ref")
    with pytest.raises(InputDataError) as info:
        export(EMAGNUS, source, tmp_path / "out", RUN, formats_dirs=[fmts])
    [problem] = info.value.problems
    assert problem.rule == "text.charset"
    assert problem.message == ("line.student contains the invisible format character U+202E "
                               "RIGHT-TO-LEFT OVERRIDE: it shows as nothing, or reorders the "
                               "text around it; no policy replaces it, whatever the charset")
    assert problem.record == f"{source}:$.invoices[0].lines[0]"
    assert problem.mapping == f"{EMAGNUS}:{line}: bindings.line.student"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("path", "value", "rule", "said"), [
    (("last_name",), ".", "pes.text", "joint_payer.name (format field debtor.name) '.' is "
     "not accepted by Hélios"),
    (("last_name",), "Lef\u03a9vre", "text.charset", "joint_payer.name (format field "
     "debtor.name) character 'Ω' (U+03A9) has no transliteration in ascii"),
    (("last_name",), "Lef;vre", "text.forbidden", "joint_payer.name (format field "
     "debtor.name) holds ';', which format bl-emagnus forbids"),
    (("address", "city"), "", "input.required", "joint_payer.city (format field "
     "address.city) is missing"),
    (("address", "postal_code"), "", "input.required", "joint_payer.postal_code (format "
     "field address.postal_code) is missing"),
    (("address", "street"), "L" * 60, "text.length", "joint_payer.street (format field "
     "address.street) is 60 characters, format bl-emagnus allows 50 (address.complement "
     "already holds the complement: shorten it in the school software"),
    (("title",), "Monseigneur", "text.length", "joint_payer.civility (format field "
     "debtor.civility) is 11 characters, format bl-emagnus allows 10: a code is never "
     "truncated"),
], ids=["placeholder", "charset", "forbidden", "city", "postal-code", "street", "civility"])
def test_every_refusal_of_a_joint_debtor_value_names_the_joint_payer_field(
        tmp_path, path, value, rule, said):
    """Not only its length: a joint debtor's value refused by any text rule (a
    placeholder, a character outside the charset or forbidden by the layouts, a value
    missing, a street too long with a complement, a civility sent as exported longer
    than the format takes) names joint_payer.<field> with the format field whose rule
    applies, and its binding."""
    mapping, _ = mapping_copy(tmp_path, EMAGNUS, (  # civilities sent as exported
        '  civility:\n    "Mme": MME\n    "M.": M\n    "M": M\n'
        '    "Mlle": MME    # Hélios rejects Mademoiselle\n', ""))
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    joint = {"kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
             "birth_date": "1982-06-01",
             "address": {"street": "4 place du Marché", "complement": "Bâtiment C",
                         "postal_code": "45200", "city": "Montargis"}}
    place = joint
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = value
    data["invoices"] = [{**data["invoices"][0], "joint_payer": joint}]
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputDataError) as info:
        export(mapping, source, tmp_path / "out", RUN)
    [p] = info.value.problems
    assert p.rule == rule and p.message.startswith(said), p
    assert p.mapping.endswith(f": bindings.joint_payer.{p.message.split()[0][12:]}"), p
