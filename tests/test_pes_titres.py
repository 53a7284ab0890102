"""pes-titres: the example run as PES V2 titres ordinaires (TypBord 01 / TypPce 01 /
NatPce 01) with the ASAP Edition choice, valid for the DGFiP; the mapping/format fit
(NumDette only for ORMC, Edition codes the format supports, format options)."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from pesgen.errors import MappingError
from pesgen.export import export
from pesgen.validate import load_xsd, official_xsd_path, validate_pes_file

from .conftest import EXAMPLES, MAPPINGS, ROOT
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
TITRES = MAPPINGS / "villeneuve-sur-loing-titres.yaml"
OWN_XSD = ROOT / "schemas" / "pes-titres" / "pes-titres.xsd"
NAME = "PESALR1_21450999400015_2026_0000001.xml"


@pytest.fixture(scope="module")
def titres_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("titres")
    result = export(TITRES, EXAMPLES / "school-export.json", out, RUN)
    assert [f.path.name for f in result.files] == [NAME]
    assert result.titles == 11 and result.total == Decimal("2527.25")
    return result.files[0].path


def test_example_run_as_titres_is_valid_against_the_official_xsd(titres_file, official_xsd):
    doc = etree.parse(str(titres_file))
    schema = load_xsd(official_xsd_path(official_xsd))
    assert schema.validate(doc), schema.error_log
    assert load_xsd(OWN_XSD).validate(doc)
    assert validate_pes_file(titres_file, OWN_XSD, official_xsd) == []


def test_titres_have_the_titre_ordinaire_triplet_and_no_ormc_fields(titres_file):
    doc = etree.parse(str(titres_file))
    assert doc.find(".//TypFic").get("V") == "PESALR1"
    assert doc.find(".//NomFic").get("V") == NAME
    bloc = doc.find(".//BlocBordereau")
    assert bloc.find("TypBord").get("V") == "01"
    assert bloc.find("Objet") is None  # ORMC only
    pieces = doc.findall(".//Piece/BlocPiece")
    assert len(pieces) == 11
    for p in pieces:
        assert (p.find("TypPce").get("V"), p.find("NatPce").get("V")) == ("01", "01")
        assert p.find("Edition").get("V") == "04"
        for tag in ("NumDette", "Per", "Cle1", "Cle2"):
            assert p.find(tag) is None
    # SEPA direct debit and tiers are carried as in the ORMC
    sepa = doc.findall(".//InfoPrelevementSEPA")
    assert sepa and {s.find("NatPrel").get("V") for s in sepa} == {"01"}
    assert doc.find(".//Tiers/CpteBancaire/IBAN") is not None
    assert doc.find(".//Tiers/InfoTiers/IdTiers") is not None  # an organisation's SIRET


def test_titres_have_no_payment_references_file(titres_file):
    """No NumDette, Per nor Cle on a titre: no references CSV of empty columns."""
    assert sorted(p.name for p in titres_file.parent.iterdir()) == [NAME]


def test_titres_number_in_their_own_sequence(tmp_path):
    from pesgen.export import open_exporter
    from pesgen.runs import sequence_key

    exporter = open_exporter(TITRES, tmp_path, RUN, None, None, None)
    assert sequence_key(exporter.mapping, exporter.fmt)[3] == "01"
    ormc = open_exporter(MAPPINGS / "villeneuve-sur-loing.yaml", tmp_path, RUN, None, None, None)
    assert sequence_key(ormc.mapping, ormc.fmt)[3] == "06"


def _refused(mapping: Path, tmp_path: Path) -> MappingError:
    out = tmp_path / "out"
    with pytest.raises(MappingError) as info:
        export(mapping, EXAMPLES / "school-export.json", out, RUN)
    assert not out.exists() or list(out.iterdir()) == []
    return info.value


def test_ormc_needs_a_debt_number_titres_refuse_one(tmp_path):
    ormc, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml",
                           ('    debt_number: {expr: "invoice.number | digits"}\n', ""))
    err = _refused(ormc, tmp_path)
    [p] = err.problems
    assert p.rule == "mapping.format"
    assert "needs bindings.invoice.debt_number" in p.message
    assert p.mapping.endswith(": bindings.invoice")
    titres, _ = mapping_copy(tmp_path, TITRES, (
        "    number: number\n",
        '    number: number\n    debt_number: {expr: "invoice.number | digits"}\n'))
    [p] = _refused(titres, tmp_path).problems
    assert p.rule == "mapping.format" and "carries no NumDette" in p.message
    assert p.mapping.endswith(": bindings.invoice.debt_number")


@pytest.mark.parametrize("code", ["01", "02", "03", "06"])
def test_an_edition_the_format_cannot_carry_is_refused(tmp_path, code):
    m, _ = mapping_copy(tmp_path, TITRES, ('asap_edition: "04"', f'asap_edition: "{code}"'))
    [p] = _refused(m, tmp_path).problems
    assert p.rule == "mapping.asap-edition"
    assert f"cannot carry Edition {code} (it supports 04 or none)" in p.message
    assert ": output.asap_edition" in p.mapping


def test_no_edition_means_the_collectivity_sends_the_asap(tmp_path, official_xsd):
    m, _ = mapping_copy(tmp_path, TITRES, ('  asap_edition: "04"', ""))
    result = export(m, EXAMPLES / "school-export.json", tmp_path / "out", RUN,
                    official_xsd=official_xsd)
    doc = etree.parse(str(result.files[0].path))
    assert doc.find(".//Edition") is None
    dates = [p.find("DteAsp").get("V") for p in doc.iterfind(".//Piece/BlocPiece")]
    assert dates == ["2026-11-23"] * 11


def test_every_titre_carries_its_asap_date_not_the_bordereau(tmp_path, official_xsd):
    """BlocBordereau/DteAsp is read for ORMC rôles only (DT v5.19 TBlocBordereau): a
    titre ordinaire carries its ASAP date in BlocPiece/DteAsp, the invoice's
    asap_date when it has one, else the run date + output.asap_delay_days."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][1]["asap"] = "2026-12-01"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    m, _ = mapping_copy(
        tmp_path, TITRES, ("  asap_delay_days: 0\n", "  asap_delay_days: 5\n"),
        ("    due_date: due_date\n", "    due_date: due_date\n    asap_date: asap\n"))
    result = export(m, source, tmp_path / "out", RUN, official_xsd=official_xsd)
    path = result.files[0].path
    doc = etree.parse(str(path))
    assert doc.find(".//BlocBordereau/DteAsp") is None
    dates = [p.find("DteAsp").get("V") for p in doc.iterfind(".//Piece/BlocPiece")]
    assert dates == ["2026-11-28", "2026-12-01"] + ["2026-11-28"] * 9
    assert validate_pes_file(path, OWN_XSD, official_xsd) == []


def test_edition_04_says_no_asap_is_attached(tmp_path):
    """Edition 04: the DT says the comptable may consult the titre's ASAP, a PES_Facture
    attached as PES_PJ, which pesgen does not produce: each run says so (format.yaml
    defaults.asap_edition_notes), once, naming the mapping's output.asap_edition."""
    result = export(TITRES, EXAMPLES / "school-export.json", tmp_path / "out", RUN)
    [note] = [n for n in result.notes if n.policy == "asap_edition"]
    assert note.invoice == "*" and note.origin.endswith(": output.asap_edition")
    assert note.detail.startswith("Edition 04: ") and "attaches none" in note.detail
    without, _ = mapping_copy(tmp_path, TITRES, ('  asap_edition: "04"', ""))
    result = export(without, EXAMPLES / "school-export.json", tmp_path / "out2", RUN)
    assert not [n for n in result.notes if n.policy == "asap_edition"]


def test_unknown_format_option_is_named(tmp_path):
    m, _ = mapping_copy(tmp_path, TITRES, ("  asap_delay_days: 0\n",
                                           "  asap_delay_days: 0\n  options: {service: X}\n"))
    [p] = _refused(m, tmp_path).problems
    assert p.rule == "mapping.options" and "has no option 'service' (it has none)" in p.message
    # at the option's own line (the one after asap_delay_days)
    line = m.read_text(encoding="utf-8").splitlines().index("  asap_delay_days: 0") + 2
    assert p.mapping == f"{m}:{line}: output.options.service"


def _doc(piece: str, typ_bord: str = "01") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">
<Enveloppe><Parametres><Version V="2"/><TypFic V="PESALR1"/><NomFic V="X.xml"/></Parametres>
<Emetteur><Sigle V="PESGEN"/><Adresse V="pesgen"/></Emetteur></Enveloppe>
<EnTetePES><DteStr V="2026-11-23"/><IdPost V="045012"/><IdColl V="21450999400015"/>
<CodCol V="123"/><CodBud V="00"/></EnTetePES>
<PES_RecetteAller><EnTeteRecette><IdVer V="2"/><InfoDematerialisee V="0"/></EnTeteRecette>
<Bordereau><BlocBordereau><Exer V="2026"/><IdBord V="1"/><DteBordEm V="2026-11-23"/>
<TypBord V="{typ_bord}"/><NbrPce V="1"/><MtBordHt V="10.00"/></BlocBordereau>
<Piece><BlocPiece>{piece}</BlocPiece>
<LigneDePiece><BlocLignePiece><InfoLignePiece><IdLigne V="1"/><CodProdLoc V="INST"/>
<Nature V="7062"/><Majo V="0"/><TvaIntraCom V="0"/><MtHT V="10.00"/></InfoLignePiece>
</BlocLignePiece><Tiers><InfoTiers><CatTiers V="50"/><NatJur V="03"/><TypTiers V="01"/>
<Nom V="ACME"/></InfoTiers><Adresse><TypAdr V="1"/><Adr2 V="1 RUE X"/><CP V="45200"/>
<Ville V="MONTARGIS"/><CodRes V="0"/></Adresse></Tiers></LigneDePiece></Piece>
</Bordereau></PES_RecetteAller></n:PES_Aller>""".encode()


def test_own_xsd_accepts_a_minimal_titre_and_refuses_ormc_fields(tmp_path, official_xsd):
    schema = load_xsd(OWN_XSD)
    official = load_xsd(official_xsd_path(official_xsd))
    good = etree.fromstring(_doc('<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/>'))
    assert schema.validate(good), schema.error_log
    assert official.validate(good), official.error_log
    for piece, typ_bord in [
        ('<IdPce V="1"/><TypPce V="15"/><NatPce V="01"/>', "01"),
        ('<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/>', "06"),
        ('<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/><Edition V="06"/>', "01"),
        ('<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/><Edition V="01"/>', "01"),
        ('<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/><NumDette V="1"/>', "01"),
        ('<IdPce V="0"/><TypPce V="01"/><NatPce V="01"/>', "01"),
    ]:
        assert not schema.validate(etree.fromstring(_doc(piece, typ_bord))), piece


def test_rendered_file_checks_triplet_and_edition(tmp_path):
    path = tmp_path / "X.xml"
    lax = ROOT / "schemas" / "pes-ormc" / "pes-ormc.xsd"  # any schema: only rules matter here
    path.write_bytes(_doc('<IdPce V="1"/><TypPce V="01"/><NatPce V="06"/><Edition V="06"/>'))
    rules = {p.rule: p for p in validate_pes_file(path, lax)}
    # the NatPce a titre ordinaire 01/01 allows (DT Annexe 2, notes section 9.2)
    assert rules["pes.triplet"].message == ("TypBord/TypPce/NatPce 01/01/06 is not allowed "
                                            "(titre ordinaire 01/01: NatPce 01, 02, 03, 04, "
                                            "05, 11, 18)")
    assert "pes.edition" in rules
    assert "allowed only on ORMC titles" in rules["pes.edition"].message
    assert rules["pes.edition"].record.startswith("X.xml:")


def test_a_titre_of_another_type_is_not_held_to_the_ordinaire_natpce(tmp_path, official_xsd):
    """In a bordereau de titres (TypBord 01) each TypPce has its own NatPce column (DT
    Annexe 2, notes section 9.2): a titre correctif 02 / complémentaire 07 is allowed,
    though NatPce 07 is not one of the titre ordinaire's (01/01/07, refused)."""
    official = official_xsd_path(official_xsd)
    path = tmp_path / "X.xml"
    path.write_bytes(_doc('<IdPce V="1"/><TypPce V="02"/><NatPce V="07"/>'))
    assert validate_pes_file(path, official) == []
    path.write_bytes(_doc('<IdPce V="1"/><TypPce V="01"/><NatPce V="07"/>'))
    assert [(p.rule, p.record) for p in validate_pes_file(path, official)] == [
        ("pes.triplet", "X.xml:10")]


@pytest.mark.parametrize("edition", ["03", "06"])
def test_an_ormc_edition_on_a_titre_ordinaire_is_refused(tmp_path, edition):
    """Edition 03 and 06 are allowed only on TypPce 15 (notes section 11, DT-RA)."""
    path = tmp_path / "X.xml"
    lax = ROOT / "schemas" / "pes-ormc" / "pes-ormc.xsd"  # any schema: only rules matter here
    path.write_bytes(_doc(f'<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/>'
                          f'<Edition V="{edition}"/>'))
    rules = {p.rule: p for p in validate_pes_file(path, lax)}
    assert rules["pes.edition"].message == (f"Edition {edition}: allowed only on ORMC titles "
                                            "(TypPce 15), not on TypPce 01")


def test_a_holder_other_than_the_debtor_is_flagged_in_titres_too(tmp_path, official_xsd):
    """TitCpteDiff 1 when the account holder is not the debtor (DT, InfoPrelevementSEPA),
    as in the ORMC; the file stays valid for both XSDs."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payment"]["mandate"]["holder"] = "Dupont Marc"
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(TITRES, source, tmp_path / "out", RUN)
    doc = etree.parse(str(result.files[0].path))
    flagged = {p.find("BlocPiece/IdPce").get("V") for p in doc.iterfind(".//Piece")
               if p.find(".//InfoPrelevementSEPA/TitCpteDiff") is not None}
    assert flagged == {"1"}
    assert validate_pes_file(result.files[0].path, OWN_XSD, official_xsd) == []


# ------------------------------------- the TypBord/TypPce/NatPce grid (DT Annexe 2)

ANNEXES = ROOT.parent / "shared" / "reference" / "pes-v2" / "dostech-v5.19-text" / "Annexes.txt"
# the annex's footnotes 1 to 4 name the TypBord a cross stands for
_FOOTNOTE_TYP_BORD = {"1": "01", "2": "02", "3": "03", "4": "06"}


def _annex_2_grid() -> set[tuple[str, str, str]]:
    """The triplets the DGFiP's Annexe 2 (Recette) allows, read from the documentation's
    text beside the project (not from pesgen): a row per TypPce, a column per NatPce,
    each cross with the footnote naming its TypBord."""
    if not ANNEXES.is_file():
        pytest.skip("the DGFiP documentation is not beside the project (../shared)")
    text = ANNEXES.read_text(encoding="utf-8")
    section = text[text.index("Annexe 2 - "):text.index("Annexe 3 - ")]
    lines = section.splitlines()
    header = next(line for line in lines if line.startswith("TypPce |"))
    # 'TypPce', then 'Fonctionnement 01', … 'Marché 11'
    nat_pces = [cell.strip().rsplit(" ", 1)[1] for cell in header.split("|")[1:]
                if cell.strip()]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in lines if line.startswith("|  ") and not line.startswith("|  NatPce")]
    grid = set()
    for row in rows:
        typ_pce = row[0].rsplit(" ", 1)[1]
        for nat_pce, cell in zip(nat_pces, row[1:], strict=False):
            for note in re.findall(r"\((\d)\)", cell):
                if note in _FOOTNOTE_TYP_BORD:
                    grid.add((_FOOTNOTE_TYP_BORD[note], typ_pce, nat_pce))
    return grid


def test_the_triplet_rule_is_the_dgfip_grid():
    """Every TypBord/TypPce/NatPce of the XSD's lists: pes.triplet refuses exactly what
    the documentation's Annexe 2 does not allow (its 41 crosses, counted by hand)."""
    from pesgen.validate import _triplet_problem

    grid = _annex_2_grid()
    assert len(grid) == 41 and ("01", "02", "07") in grid and ("02", "02", "06") in grid
    typ_pces = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12",
                "13", "14", "15"]
    nat_pces = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "18"]
    wrong = [(b, p, n) for b in ("01", "02", "03", "06") for p in typ_pces for n in nat_pces
             if (_triplet_problem(b, p, n) is None) != ((b, p, n) in grid)]
    assert wrong == []


@pytest.mark.parametrize("typ_bord, piece, message", [
    ("01", '<TypPce V="02"/><NatPce V="06"/>',
     "TypBord/TypPce/NatPce 01/02/06 is not allowed (01/02: NatPce 07, 08, 09; DT Annexe 2)"),
    ("01", '<TypPce V="12"/><NatPce V="01"/>',
     "TypBord/TypPce/NatPce 01/12/01 is not allowed (TypBord 01 takes TypPce 01, 02, 03, "
     "04, 05, 06, 07, 10, 11, 14; DT Annexe 2)"),
    ("02", '<TypPce V="01"/><NatPce V="01"/>',
     "TypBord/TypPce/NatPce 02/01/01 is not allowed (TypBord 02 takes TypPce 02, 04, 06, "
     "14; DT Annexe 2)"),
    ("03", '<TypPce V="12"/><NatPce V="03"/>',
     "TypBord/TypPce/NatPce 03/12/03 is not allowed (03/12: NatPce 01, 02, 11; DT Annexe 2)"),
])
def test_a_triplet_outside_the_grid_is_refused_naming_what_it_allows(tmp_path, typ_bord,
                                                                     piece, message):
    path = tmp_path / "X.xml"
    lax = ROOT / "schemas" / "pes-ormc" / "pes-ormc.xsd"  # any schema: only rules matter here
    path.write_bytes(_doc(f'<IdPce V="1"/>{piece}', typ_bord))
    assert [(p.rule, p.message, p.record) for p in validate_pes_file(path, lax)
            if p.rule.startswith("pes.")] == [("pes.triplet", message, "X.xml:10")]


@pytest.mark.parametrize("typ_bord, piece", [
    ("02", '<TypPce V="02"/><NatPce V="06"/>'),   # an annulation
    ("02", '<TypPce V="14"/><NatPce V="06"/>'),
    ("03", '<TypPce V="12"/><NatPce V="11"/>'),   # an ordre de recette ordonnateur
    ("01", '<TypPce V="11"/><NatPce V="04"/>'),   # a titre de rattachement
])
def test_a_triplet_of_the_grid_passes_the_rules_and_the_dgfip_xsd(tmp_path, official_xsd,
                                                                   typ_bord, piece):
    path = tmp_path / "X.xml"
    path.write_bytes(_doc(f'<IdPce V="1"/>{piece}', typ_bord))
    assert validate_pes_file(path, official_xsd_path(official_xsd)) == []


@pytest.mark.parametrize("typ_bord", ["04", "05"])
def test_a_typbord_helios_rejects_is_said_once_for_the_bordereau(tmp_path, official_xsd,
                                                                typ_bord):
    """The XSD lists TypBord 04 and 05; Hélios rejects 04 (DT TTypBordAller) and the
    grid has no triplet for either: one problem, at the BlocBordereau, not one a piece."""
    path = tmp_path / "X.xml"
    path.write_bytes(_doc('<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/>', typ_bord))
    assert [(p.rule, p.message, p.record)
            for p in validate_pes_file(path, official_xsd_path(official_xsd))] == [
        ("pes.triplet", f"TypBord {typ_bord} is not a Recette bordereau Hélios takes (01, "
         "02, 03 or 06: DT Annexe 2; 04 is rejected: DT TTypBordAller)", "X.xml:9")]


def test_a_mapping_text_helios_refuses_is_refused_when_the_mapping_meets_the_format(
        tmp_path):
    """LibelleColBud, LibellePoste, Sigle and Adresse are Base_TexteX: « ne peut pas
    contenir la valeur « nc », « 0 », « n fois 0 » » (DT v5.19 Dictionnaire des données),
    nor be '.' or a space (V_BaseString). The mapping's own texts are written as they are:
    check-mapping said OK to them and every export was refused by the XSD; now the
    mapping is refused at each one's line, before any input is read."""
    m, lines = mapping_copy(
        tmp_path, TITRES,
        ("  budget_label: COMMUNE DE VILLENEUVE SUR LOING",
         '  budget_label: "nc"\n  poste_label: "."'),
        ("    sigle: PESGEN", '    sigle: "000"'))
    err = _refused(m, tmp_path)
    text = m.read_text(encoding="utf-8").splitlines()
    at = {key: text.index(line) + 1 for key, line in (
        ("collectivity.budget_label", '  budget_label: "nc"'),
        ("collectivity.poste_label", '  poste_label: "."'),
        ("output.emitter.sigle", '    sigle: "000"'))}
    assert sorted((p.rule, p.mapping) for p in err.problems) == sorted(
        ("mapping.format", f"{m}:{line}: {key}") for key, line in at.items())
    [said] = [p.message for p in err.problems if p.mapping.endswith("sigle")]
    assert said.startswith("output.emitter.sigle: '000' is not accepted by Hélios")
    # zeros and more is a text: '00 PESGEN' is written
    ok, _ = mapping_copy(tmp_path, TITRES, ("    sigle: PESGEN", '    sigle: "00 PESGEN"'),
                         name="ok.yaml")
    result = export(ok, EXAMPLES / "school-export.json", tmp_path / "ok", RUN)
    assert b'<Sigle V="00 PESGEN"/>' in result.files[0].path.read_bytes()


@pytest.mark.parametrize("born, category, rejected", [
    ('<DteNaissance V="1984-03-12"/>', "50", True),
    ('<DteNaissance V="1984-03-12"/>', "01", False),
])
def test_a_birth_date_is_for_a_person_only(tmp_path, official_xsd, born, category, rejected):
    """DT v5.19 InfoTiers/DteNaissance: « A ne renseigner que pour les tiers « personne
    physique » CatTiers = 01 [...], toute autre catégorie de tiers aboutira au rejet du
    bordereau ». Both XSDs take it on any CatTiers: the bordereau rules refuse it, for a
    file pesgen did not write (pesgen writes a birth date for a person only)."""
    person = ('<Civilite V="MME"/>' if category == "01" else "")
    doc = _doc('<IdPce V="1"/><TypPce V="01"/><NatPce V="01"/>').decode()
    doc = doc.replace('<InfoTiers><CatTiers V="50"/><NatJur V="03"/><TypTiers V="01"/>\n'
                      '<Nom V="ACME"/>',
                      f'<InfoTiers>{born}<CatTiers V="{category}"/><NatJur V="'
                      f'{"01" if category == "01" else "03"}"/><TypTiers V="01"/>\n'
                      f'{person}<Nom V="ACME"/>' + ('<Prenom V="ANNE"/>' if person else ""))
    assert born in doc
    path = tmp_path / "X.xml"
    path.write_bytes(doc.encode())
    problems = [(p.rule, p.message) for p in validate_pes_file(path, OWN_XSD, official_xsd)]
    assert problems == ([("pes.birth-date", "DteNaissance is for a person (CatTiers 01) "
                          "only, not CatTiers 50")] if rejected else [])
