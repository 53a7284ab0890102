"""Tests for pesgen's own PES V2 ORMC schema (schemas/pes-ormc/pes-ormc.xsd).

The schema must compile, accept a realistic ORMC flow (which the official DGFiP
v5.17 schema must accept too, when it is available locally) and refuse a list of
documents that break the DGFiP rules pesgen has to respect.
"""

from pathlib import Path

import pytest
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
OWN_XSD = ROOT / "schemas" / "pes-ormc" / "pes-ormc.xsd"
OFFICIAL_XSD = (
    Path(__file__).resolve().parents[2]
    / "shared/reference/pes-v2/schemas_pes_v5.17/PES_V2/Rev0/PES_Aller.xsd"
)

PARSER = etree.XMLParser(resolve_entities=False, no_network=True)

# A valid ORMC flow, modelled on section 16 of the reference note, without
# PES_PJ / PJRef / Edition: one rôle with 2 articles; article 1 has 2 lines
# (the second with VAT) and a natural-person debtor with a SEPA debit;
# article 2 has one line and a legal-person debtor identified by its SIRET.
VALID_DOC = """<?xml version="1.0" encoding="UTF-8"?>
<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">
  <Enveloppe>
    <Parametres>
      <Version V="2"/><TypFic V="PESORMC"/>
      <NomFic V="PESORMC_21000000000019_2024_0000012.xml"/>
    </Parametres>
    <Emetteur><Sigle V="PESGEN"/><Adresse V="pesgen 0.1"/></Emetteur>
  </Enveloppe>
  <EnTetePES>
    <DteStr V="2024-10-01"/><IdPost V="021000"/><LibellePoste V="SGC DIJON"/>
    <IdColl V="21000000000019"/>
    <CodCol V="123"/><CodBud V="00"/><LibelleColBud V="COMMUNE DE TEST"/>
  </EnTetePES>
  <PES_RecetteAller>
    <EnTeteRecette><IdVer V="2"/><InfoDematerialisee V="0"/></EnTeteRecette>
    <Bordereau>
      <BlocBordereau>
        <Exer V="2024"/><IdBord V="12"/><DteBordEm V="2024-10-01"/><TypBord V="06"/>
        <NbrPce V="2"/><MtBordHt V="170.50"/><MtBordTVA V="4.10"/><DteAsp V="2024-10-05"/>
        <Objet V="ECOLE DE MUSIQUE OCTOBRE 2024"/>
      </BlocBordereau>
      <Piece>
        <BlocPiece>
          <IdPce V="1"/><TypPce V="15"/><NatPce V="01"/><DteAsp V="2024-10-06"/>
          <ObjPce V="ECOLE DE MUSIQUE FACTURE 2024000123"/>
          <NumDette V="2024000123"/><Per V="9"/><Cle1 V="4"/><Cle2 V="M"/>
          <NumeroFacture V="2024000123"/>
        </BlocPiece>
        <LigneDePiece>
          <BlocLignePiece>
            <InfoLignePiece>
              <IdLigne V="1"/><ObjLignePce V="COURS DE PIANO"/><CodProdLoc V="EM01"/>
              <Nature V="588"/><Fonction V="311"/><Majo V="0"/><TvaIntraCom V="0"/>
              <MtHT V="100.00"/>
            </InfoLignePiece>
            <InfoPrelevementSEPA>
              <NatPrel V="01"/><PerPrel V="07"/><DtePrel V="2024-10-15"/><MtPrel V="100.00"/>
              <SequencePres V="02"/><DateSignMandat V="2024-09-01"/><RefUniMdt V="EM-000042"/>
              <LibPrel V="ECOLE DE MUSIQUE OCT 2024"/>
            </InfoPrelevementSEPA>
          </BlocLignePiece>
          <Tiers>
            <InfoTiers>
              <DteNaissance V="1980-05-17"/><RefTiers V="FAM42"/>
              <CatTiers V="01"/><NatJur V="01"/><TypTiers V="01"/>
              <Civilite V="MME"/><Nom V="DUPONT"/><Prenom V="MARIE"/>
            </InfoTiers>
            <Adresse>
              <TypAdr V="1"/><Adr1 V="BATIMENT B"/><Adr2 V="10 RUE DES LILAS"/>
              <CP V="21000"/><Ville V="DIJON"/><CodRes V="0"/>
            </Adresse>
            <CpteBancaire>
              <BIC V="AGRIFRPP878"/><IBAN V="FR7630006000011234567890189"/>
              <TitCpte V="DUPONT MARIE"/>
            </CpteBancaire>
          </Tiers>
        </LigneDePiece>
        <LigneDePiece>
          <BlocLignePiece>
            <InfoLignePiece>
              <IdLigne V="2"/><ObjLignePce V="LOCATION INSTRUMENT"/><CodProdLoc V="EM02"/>
              <Nature V="588"/><Operation V="OP12"/><TxTva V="20.00"/>
              <Majo V="0"/><TvaIntraCom V="0"/>
              <MtHT V="20.50"/><MtTVA V="4.10"/>
            </InfoLignePiece>
            <InfoPrelevementSEPA>
              <NatPrel V="01"/><PerPrel V="07"/><DtePrel V="2024-10-15"/><MtPrel V="24.60"/>
              <SequencePres V="02"/><DateSignMandat V="2024-09-01"/><RefUniMdt V="EM-000042"/>
              <LibPrel V="ECOLE DE MUSIQUE OCT 2024"/>
            </InfoPrelevementSEPA>
          </BlocLignePiece>
        </LigneDePiece>
      </Piece>
      <Piece>
        <BlocPiece>
          <IdPce V="2"/><TypPce V="15"/><NatPce V="01"/>
          <ObjPce V="ECOLE DE MUSIQUE FACTURE 2024000124"/>
          <NumDette V="2024000124"/>
        </BlocPiece>
        <LigneDePiece>
          <BlocLignePiece>
            <InfoLignePiece>
              <IdLigne V="1"/><CodProdLoc V="EM03"/><Nature V="588"/>
              <Majo V="0"/><TvaIntraCom V="0"/><MtHT V="50"/>
            </InfoLignePiece>
          </BlocLignePiece>
          <Tiers>
            <InfoTiers>
              <IdTiers V="10000000200011"/><NatIdTiers V="01"/><RefTiers V="ASSO7"/>
              <CatTiers V="60"/><NatJur V="06"/><TypTiers V="01"/>
              <Nom V="ASSOCIATION LES CHORISTES"/><ComplNom V="SECTION JEUNES"/>
            </InfoTiers>
            <Adresse>
              <TypAdr V="1"/><Adr2 V="2 PLACE DE LA MAIRIE"/><Adr3 V="LIEU-DIT LE BOURG"/>
              <CP V="21121"/><Ville V="FONTAINE-LES-DIJON"/><CodRes V="0"/><CodPays V="100"/>
            </Adresse>
          </Tiers>
        </LigneDePiece>
      </Piece>
    </Bordereau>
  </PES_RecetteAller>
</n:PES_Aller>
"""

NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"


def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path), PARSER))


@pytest.fixture(scope="module")
def own_schema() -> etree.XMLSchema:
    return _schema(OWN_XSD)


@pytest.fixture(scope="module")
def official_schema() -> etree.XMLSchema:
    if not OFFICIAL_XSD.exists():
        pytest.skip(f"official DGFiP schema not available at {OFFICIAL_XSD}")
    return _schema(OFFICIAL_XSD)


def _doc(text: str) -> etree._Element:
    return etree.fromstring(text.encode("utf-8"), PARSER)


def _variant(old: str, new: str) -> str:
    """VALID_DOC with the first occurrence of `old` replaced by `new`.

    `old`/`new` may hold several replacements separated by "||".
    """
    text = VALID_DOC
    for o, n in zip(old.split("||"), new.split("||"), strict=True):
        assert o in text, f"variant anchor not found: {o!r}"
        text = text.replace(o, n, 1)
    return text


def test_own_schema_compiles(own_schema):
    assert isinstance(own_schema, etree.XMLSchema)


def test_own_schema_is_self_contained():
    tree = etree.parse(str(OWN_XSD), PARSER)
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for tag in ("include", "import", "redefine"):
        assert tree.find(f"{xs}{tag}") is None
    root = tree.getroot()
    assert root.get("targetNamespace") == NS
    assert root.get("elementFormDefault") == "unqualified"


def test_valid_document_against_own(own_schema):
    doc = _doc(VALID_DOC)
    assert own_schema.validate(doc), own_schema.error_log


def test_valid_document_against_official(official_schema):
    doc = _doc(VALID_DOC)
    assert official_schema.validate(doc), official_schema.error_log


# Optional parts removed: still valid against both schemas.
POSITIVE_VARIANTS = {
    "no CpteBancaire": ("<CpteBancaire>||</CpteBancaire>", "<!--||-->"),
    "no BIC": ('<BIC V="AGRIFRPP878"/>', ""),
    "BIC 8 chars": ('<BIC V="AGRIFRPP878"/>', '<BIC V="AGRIFRPP"/>'),
    "no BlocBordereau DteAsp and Objet": (
        '<DteAsp V="2024-10-05"/>\n        <Objet V="ECOLE DE MUSIQUE OCTOBRE 2024"/>',
        "",
    ),
    "Edition 06": ('<DteAsp V="2024-10-06"/>', '<DteAsp V="2024-10-06"/><Edition V="06"/>'),
    "no LibPrel": ('<LibPrel V="ECOLE DE MUSIQUE OCT 2024"/>', ""),
    "IdPost 02A": ('<IdPost V="021000"/>', '<IdPost V="02A1234"/>'),
    "text with accents": ('<Nom V="DUPONT"/>', '<Nom V="DUPONT-LÉGER"/>'),
    "non resident": ('<CodRes V="0"/><CodPays V="100"/>', '<CodRes V="1"/><CodPays V="109"/>'),
}


@pytest.mark.parametrize("old,new", list(POSITIVE_VARIANTS.values()), ids=list(POSITIVE_VARIANTS))
def test_positive_variants(own_schema, old, new):
    doc = _doc(_variant(old, new))
    assert own_schema.validate(doc), own_schema.error_log
    if OFFICIAL_XSD.exists():
        official = _schema(OFFICIAL_XSD)
        assert official.validate(doc), official.error_log


# Each variant is one small replacement on VALID_DOC that our schema must refuse.
NEGATIVE_VARIANTS = {
    "CP 4 digits": ('<CP V="21000"/>', '<CP V="2100"/>'),
    "CP with letter": ('<CP V="21000"/>', '<CP V="2A000"/>'),
    "amount 0.00": ('<MtHT V="100.00"/>', '<MtHT V="0.00"/>'),
    "amount 3 decimals": ('<MtHT V="100.00"/>', '<MtHT V="1.234"/>'),
    "amount with comma": ('<MtPrel V="100.00"/>', '<MtPrel V="100,00"/>'),
    "amount negative": ('<MtBordHt V="170.50"/>', '<MtBordHt V="-170.50"/>'),
    "MtBordTVA 0": ('<MtBordTVA V="4.10"/>', '<MtBordTVA V="0"/>'),
    "IBAN all lower case": (
        '<IBAN V="FR7630006000011234567890189"/>',
        '<IBAN V="fr7630006000011234567890189"/>',
    ),
    "IBAN lower-case letter in BBAN": (
        '<IBAN V="FR7630006000011234567890189"/>',
        '<IBAN V="FR76300060000112345678901ab"/>',
    ),
    "BIC lower case": ('<BIC V="AGRIFRPP878"/>', '<BIC V="agrifrpp878"/>'),
    "RUM with underscore": ('<RefUniMdt V="EM-000042"/>', '<RefUniMdt V="EM_000042"/>'),
    "LibPrel with accent": (
        '<LibPrel V="ECOLE DE MUSIQUE OCT 2024"/>',
        '<LibPrel V="ÉCOLE DE MUSIQUE OCT 2024"/>',
    ),
    "TypBord 01": ('<TypBord V="06"/>', '<TypBord V="01"/>'),
    "TypPce 01": ('<TypPce V="15"/>', '<TypPce V="01"/>'),
    "NatPce 02": ('<NatPce V="01"/>', '<NatPce V="02"/>'),
    "Edition 01": ('<DteAsp V="2024-10-06"/>', '<DteAsp V="2024-10-06"/><Edition V="01"/>'),
    "Cle2 I": ('<Cle2 V="M"/>', '<Cle2 V="I"/>'),
    "Per two digits": ('<Per V="9"/>', '<Per V="10"/>'),
    "Exer 2 digits": ('<Exer V="2024"/>', '<Exer V="26"/>'),
    "Nom nc": ('<Nom V="DUPONT"/>', '<Nom V="nc"/>'),
    "Ville all zeros": ('<Ville V="DIJON"/>', '<Ville V="000"/>'),
    "Civilite empty": ('<Civilite V="MME"/>', '<Civilite V=""/>'),
    "missing Adr2": ('<Adr2 V="10 RUE DES LILAS"/>', ""),
    "Majo before Nature": (
        '<Nature V="588"/><Fonction V="311"/><Majo V="0"/>',
        '<Majo V="0"/><Nature V="588"/><Fonction V="311"/>',
    ),
    "Majo 1": ('<Majo V="0"/>', '<Majo V="1"/>'),
    "TvaIntraCom true": ('<TvaIntraCom V="0"/>', '<TvaIntraCom V="true"/>'),
    "default namespace root": (
        '<n:PES_Aller xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">||</n:PES_Aller>',
        '<PES_Aller xmlns="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller">||</PES_Aller>',
    ),
    "TypFic PESALR1": ('<TypFic V="PESORMC"/>', '<TypFic V="PESALR1"/>'),
    "Version 3": ('<Version V="2"/>', '<Version V="3"/>'),
    "IdVer 1": ('<IdVer V="2"/>', '<IdVer V="1"/>'),
    "InfoDematerialisee 1": ('<InfoDematerialisee V="0"/>', '<InfoDematerialisee V="1"/>'),
    "IdColl 13 digits": ('<IdColl V="21000000000019"/>', '<IdColl V="2100000000001"/>'),
    "CodCol 000": ('<CodCol V="123"/>', '<CodCol V="000"/>'),
    "CodBud one char": ('<CodBud V="00"/>', '<CodBud V="0"/>'),
    "IdPost 5 digits": ('<IdPost V="021000"/>', '<IdPost V="02100"/>'),
    "date dd/mm/yyyy": ('<DteBordEm V="2024-10-01"/>', '<DteBordEm V="01/10/2024"/>'),
    "CatTiers 99": ('<CatTiers V="01"/>', '<CatTiers V="99"/>'),
    "NatJur 12": ('<NatJur V="01"/>', '<NatJur V="12"/>'),
    "TypTiers 08": ('<TypTiers V="01"/>', '<TypTiers V="08"/>'),
    "SequencePres 05": ('<SequencePres V="02"/>', '<SequencePres V="05"/>'),
    "NatPrel 02": ('<NatPrel V="01"/>', '<NatPrel V="02"/>'),
    "InfoPce wrapper": (
        '<IdPce V="2"/><TypPce V="15"/><NatPce V="01"/>',
        '<InfoPce><IdPce V="2"/><TypPce V="15"/><NatPce V="01"/></InfoPce>',
    ),
    "Depense spelling MtBordHT": ('<MtBordHt V="170.50"/>', '<MtBordHT V="170.50"/>'),
    "value as text content": ('<Ville V="DIJON"/>', "<Ville>DIJON</Ville>"),
    "PJRef not allowed": (
        '<NumeroFacture V="2024000123"/>',
        '<PJRef><Support V="01"/><IdUnique V="F2024000123A"/></PJRef>'
        '<NumeroFacture V="2024000123"/>',
    ),
}


@pytest.mark.parametrize("old,new", list(NEGATIVE_VARIANTS.values()), ids=list(NEGATIVE_VARIANTS))
def test_negative_variants_rejected_by_own(own_schema, old, new):
    doc = _doc(_variant(old, new))
    assert not own_schema.validate(doc)
