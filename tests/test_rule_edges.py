"""The DGFiP rules and keys at their edges: each test pins a rule where a small change to
its code (a ``<`` for a ``<=``, a dropped condition, a constant off by one) would go
unnoticed by the other tests. Found by mutation testing of ``pesgen.keys``,
``pesgen.checks``, ``pesgen.rules`` and the file checks of ``pesgen.validate``; each test
is named after the rule it pins."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from pesgen.build import Builder
from pesgen.checks import (
    NIR_HOSPITALS_ONLY,
    bic_abroad_problem,
    checked_national_id,
    grid_problem,
    id_tiers_problems,
)
from pesgen.export import export
from pesgen.formats import find_format
from pesgen.mapping import load_mapping
from pesgen.rules import check_title
from pesgen.sources import read_invoices
from pesgen.validate import validate_pes_file

from .conftest import EXAMPLES, GOLDEN_ORMC, MAPPINGS
from .test_rules import CTX, LAX_XSD, TITLE

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
EXAMPLE = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
ORMC = find_format("pes-ormc")


def _built(tmp_path: Path, edit) -> list:
    """The first invoice of the example, edited (``edit(invoice)``), built by the
    mapping's Builder: its problems as (rule, message)."""
    data = copy.deepcopy(EXAMPLE)
    edit(data["invoices"][0])
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = load_mapping(MAPPING)
    src = next(iter(read_invoices(path, mapping.input)))
    return [(p.rule, p.message) for p in Builder(mapping, ORMC).build(src).problems]


# ------------------------------------------------------------------ pes.cat-nat-grid

# DT v5.19 Annexes, Annexe 3 "Correspondance catégorie de tiers et nature juridique des
# tiers", transcribed from its table: CatTiers -> the NatJur marked 'x' ("association
# cat/nat possible"); every other pair is "non prévue".
ANNEXE_3 = {
    "01": {"01", "02"},
    "20": {"07", "08"},
    "21": {"09"}, "22": {"09"}, "23": {"09"}, "24": {"09"}, "25": {"09"}, "26": {"09"},
    "27": {"09"},
    "28": {"08"},
    "29": {"10"},
    "74": {"04"},
    "50": {"03", "06"},
    "60": {"04"}, "61": {"04"}, "62": {"04"},
    "63": {"04", "11"},
    "64": {"04"},
    "65": {"04", "05"},
    "70": {"05"}, "71": {"05"},
    "72": {"04"},
    "73": {"05"},
}
NAT_JUR = [f"{n:02d}" for n in range(1, 12)]  # 01 Particuliers .. 11 CAF


@pytest.mark.parametrize("category", sorted(ANNEXE_3))
def test_cat_nat_grid_is_annexe_3(category):
    """Every pair of Annexe 3 passes, every pair it leaves out is refused, row by row."""
    for legal_nature in NAT_JUR:
        problem = grid_problem(category, legal_nature)
        if legal_nature in ANNEXE_3[category]:
            assert problem is None, (category, legal_nature)
        else:
            assert problem == (f"CatTiers {category} / NatJur {legal_nature} is outside "
                               "the grid"), (category, legal_nature)


@pytest.mark.parametrize("category", [None, "", "02", "30", "51", "75", "99", "1"])
def test_cat_nat_grid_refuses_a_cattiers_outside_annexe_3(category):
    for legal_nature in [*NAT_JUR, None]:
        assert grid_problem(category, legal_nature) is not None


# ------------------------------------------------------------------ pes.siret


@pytest.mark.parametrize("value", ["7752216580001A", "\u0667\u0667\u0665\u0662\u0662\u0661"
                                   "\u0666\u0665\u0668\u0660\u0660\u0660\u0661\u0663",
                                   "77522165\u00b2"])
def test_siret_is_14_ascii_digits_else_neither_siret_nor_siren(value):
    """A payer id of 14 (or 9) characters that are not all ASCII digits (a letter typed
    in, Arabic-Indic or superscript digits) is neither a SIRET nor a SIREN: it is not
    called a SIRET whose key is wrong."""
    compact, kind, problem = checked_national_id(value)
    assert kind is None
    assert problem.startswith("payer national id ") and "is neither a SIRET (14 digits, " \
        "NatIdTiers 01) nor a SIREN (9 digits, NatIdTiers 02)" in problem


@pytest.mark.parametrize("value, kind", [("77522165800013", "01"), ("775 221 658 00013", "01"),
                                         ("775221658", "02"), ("775.221.658", "02")])
def test_siret_and_siren_of_valid_keys_pass(value, kind):
    assert checked_national_id(value) == (value.replace(" ", "").replace(".", ""), kind, None)


@pytest.mark.parametrize("national_id, kind", [(None, "01"), (None, "02"), ("", "01"),
                                               ("77522165800013", None), (None, "04")])
def test_id_tiers_one_without_the_other_is_that_problem_only(national_id, kind):
    """pes.id-tiers: an IdTiers without its NatIdTiers, or the other way round, is the one
    problem 'go together', no key is checked on a missing IdTiers."""
    assert list(id_tiers_problems(national_id, kind)) == ["IdTiers and NatIdTiers go together"]


# ------------------------------------------------------------------ pes.id-tiers


def _nir(body: str) -> str:
    """A NIR of 13 characters ``body`` with its key, computed here as INSEE states it
    (97 minus the 13-digit number modulo 97; Corsica's départements 2A and 2B, the 6th
    and 7th characters, counted as 19 and 18), not by the code under test."""
    number = body[:5] + {"2A": "19", "2B": "18"}.get(body[5:7], body[5:7]) + body[7:]
    return f"{body}{97 - int(number) % 97:02d}"


NIR = _nir("1850775123456")
INVALID_NIR = "NIR is invalid (characters or key): the DGFiP rejects the bordereau"


def _wrong_key(nir: str) -> str:
    return nir[:13] + f"{(int(nir[13:]) % 97) + 1:02d}"


# (NIR's key is 08: two digits, the first a 0)
@pytest.mark.parametrize("nir", [NIR, _nir("2951099126111"), _nir("253072A073004"),
                                 _nir("253072B073004")])
def test_id_tiers_a_nir_of_15_characters_and_its_key_is_refused_as_a_nir_only(nir):
    """A NIR's key and length pass; it is refused as a NIR, a hospital's only."""
    assert len(nir) == 15
    assert list(id_tiers_problems(nir, "04")) == [NIR_HOSPITALS_ONLY]


def test_id_tiers_a_nir_is_a_hospitals_only():
    """« l'utilisation du n° de sécurité sociale est réservée au domaine hospitalier.et
    seulement en nomenclature M21 M22 sinon rejet du bordereau » (DT v5.19
    InfoTiers/IdTiers); the other kinds are not refused as such."""
    assert NIR_HOSPITALS_ONLY.startswith("a NIR (NatIdTiers 04) is for the budgets of "
                                         "hospitals only (nomenclatures M21, M22")
    assert NIR_HOSPITALS_ONLY.endswith(": the DGFiP rejects the bordereau of any other")
    for kind, value in (("01", "77522165800013"), ("02", "775221658"), ("03", "750100232"),
                        ("12", "1234567890123")):
        assert list(id_tiers_problems(value, kind)) == []


def test_id_tiers_the_corsican_keys_differ():
    """2A and 2B are counted as 19 and 18: the same number in the other Corsican
    département has another key (a check reading both as 20, or the letters as 0, passes
    one of them)."""
    south, north = _nir("253072A073004"), _nir("253072B073004")
    assert south[13:] != north[13:]
    for swapped in (south[:13] + north[13:], north[:13] + south[13:]):
        assert list(id_tiers_problems(swapped, "04")) == [INVALID_NIR, NIR_HOSPITALS_ONLY]


@pytest.mark.parametrize("nir, problem", [
    (_wrong_key(NIR), "NIR is invalid (characters or key)"),
    (_wrong_key(_nir("253072A073004")), "NIR is invalid (characters or key)"),
    # 2C is no département: a letter there is no NIR whatever the key
    (_nir("253072B073004").replace("2B", "2C"), "NIR is invalid (characters or key)"),
    (NIR[:14], "NIR has 14 characters, not 15"),
    (NIR + "0", "NIR has 16 characters, not 15"),
    # python-stdnum would read it without its spaces: the DGFiP counts 17 characters
    (f"{NIR[:1]} {NIR[1:5]} {NIR[5:]}", "NIR has 17 characters, not 15"),
])
def test_id_tiers_a_nir_of_another_length_or_key_is_refused(nir, problem):
    """The DGFiP checks a NIR's (NatIdTiers 04) length, 15, and its key (DT v5.19
    InfoTiers/IdTiers); the message does not repeat the person's number."""
    problems = list(id_tiers_problems(nir, "04"))
    assert len(problems) == 2 and problems[0].startswith(problem), problems
    assert problems[1] == NIR_HOSPITALS_ONLY
    assert nir not in problems[0] and nir[:13] not in problems[0]


@pytest.mark.parametrize("finess", ["750100232", "2A0000012", "2B0000013", "970000010",
                                    "750100233"])
def test_id_tiers_a_finess_of_9_characters_passes_its_key_unchecked(finess):
    """A FINESS (NatIdTiers 03) is 9 characters (the DT: « 9 pour [...] le finess géo »;
    Corsica's start with 2A or 2B). Its key is not checked: no public description of it
    was found, so any last character passes (750100232 and 750100233 alike)."""
    assert list(id_tiers_problems(finess, "03")) == []


@pytest.mark.parametrize("finess", ["75010023", "7501002320", "2A000001", "75 0100 232"])
def test_id_tiers_a_finess_of_another_length_is_refused(finess):
    assert list(id_tiers_problems(finess, "03")) == [
        f"FINESS '{finess}' has {len(finess)} characters, not 9: the DGFiP rejects the "
        "bordereau"]


@pytest.mark.parametrize("national_id, kind, length", [
    ("775 221 658 00013", "01", 14), ("775.221.658.00013", "01", 14),
    ("7752216580001", "01", 14), ("775 221 658", "02", 9), ("7752216580", "02", 9)])
def test_id_tiers_a_siret_or_siren_is_counted_as_written(national_id, kind, length):
    """A SIRET or SIREN with spaces or dots has a valid key for python-stdnum, which
    removes them; the DGFiP counts the characters as written (14 for a SIRET, 9 for a
    SIREN, « sinon, rejet du bordereau »)."""
    name = {"01": "SIRET", "02": "SIREN"}[kind]
    assert list(id_tiers_problems(national_id, kind)) == [
        f"{name} '{national_id}' has {len(national_id)} characters, not {length}: the DGFiP "
        "rejects the bordereau"]


@pytest.mark.parametrize("national_id, kind", [("77522165800014", "01"), ("775221659", "02")])
def test_id_tiers_a_siret_or_siren_of_a_wrong_key_is_said_with_its_number(national_id, kind):
    """A SIRET or SIREN of its length whose key is wrong (77522165800013 and 775221658
    are valid, the last digit changed here): the number is repeated (a company's, not a
    person's), and the message is the key's, not the NIR's 'characters or key'."""
    name = {"01": "SIRET", "02": "SIREN"}[kind]
    assert list(id_tiers_problems(national_id, kind)) == [
        f"{name} '{national_id}' is invalid: the DGFiP rejects the bordereau"]


# (NatIdTiers, the shortest and longest values of the form the DT states, a value just
# outside it); 09, en cours d'immatriculation, has none
OTHER_KINDS = [
    ("05", ["FR12", "DE" + "1" * 16], ["FR1", "DE" + "1" * 17]),  # TVA intra: 4 to 18
    ("06", ["X1234", "A" * 18], ["A" * 19]),  # Hors UE: at most 18
    ("07", ["A12345678"], ["A1234567", "A123456789"]),  # TAHITI: 9 characters
    ("08", ["123456789", "1234567890"], ["12345678", "12345678901", "12345678A"]),  # RIDET
    ("10", ["FRWF", "FRWF" + "1" * 14], ["FRWF" + "1" * 15, "FRWX12345", "frwf12345"]),
    ("11", ["12345", "12345" + "A" * 75], ["1234", "1234A6789", "12345" + "A" * 76]),  # IREP
    ("12", ["1234567890123"], ["123456789012", "12345678901234", "123456789012A"]),  # NFP
    # digits are ASCII ones: not a superscript, an Arabic-Indic or a fullwidth digit
    ("08", [], ["12345678\u00b2", "12345678\u0669"]),
    ("11", [], ["1234\uff15ABC"]),
    ("12", [], ["123456789012\u00b2"]),
]


@pytest.mark.parametrize("kind, good, bad", OTHER_KINDS,
                         ids=[f"{k[0]}-{i}" for i, k in enumerate(OTHER_KINDS)])
def test_id_tiers_the_other_kinds_have_the_form_the_dt_states(kind, good, bad):
    """DT v5.19 InfoTiers/IdTiers: « entre 4 et 18 caractères pour TVA intracommunautaire,
    9 caractères pour le TAHITI, entre 9 à 10 chiffres pour le RIDET, au maximum 18
    caractères commençant par FRWF pour FRWF, au plus 18 caractères pour Hors UE, 13
    chiffres pour le NFP, jusqu'à 80 caractères et commençant par 5 chiffres pour l'IREP,
    sinon rejet du bordereau »."""
    for value in good:
        assert list(id_tiers_problems(value, kind)) == [], value
    for value in bad:
        problems = list(id_tiers_problems(value, kind))
        assert len(problems) == 1 and problems[0].endswith(
            ": the DGFiP rejects the bordereau"), (value, problems)
        # an NFP or IREP (a natural person's, as a NIR) is not repeated in the message
        assert (value in problems[0]) == (kind not in ("11", "12")), (value, problems)


def test_id_tiers_the_forms_messages():
    assert list(id_tiers_problems("A" * 19, "06")) == [
        f"Hors UE '{'A' * 19}' is not at most 18 characters: the DGFiP rejects the bordereau"]
    assert list(id_tiers_problems("12345678901", "08")) == [
        "RIDET '12345678901' is not 9 or 10 digits: the DGFiP rejects the bordereau"]
    assert list(id_tiers_problems("123456789012", "12")) == [
        "NFP is not 13 digits: the DGFiP rejects the bordereau"]
    # each kind by the name the DT gives it
    assert list(id_tiers_problems("FR1", "05")) == [
        "TVA intracommunautaire 'FR1' is not 4 to 18 characters: the DGFiP rejects the "
        "bordereau"]
    assert list(id_tiers_problems("A1234567", "07")) == [
        "TAHITI 'A1234567' is not 9 characters: the DGFiP rejects the bordereau"]
    assert list(id_tiers_problems("FRWX12345", "10")) == [
        "FRWF 'FRWX12345' is not at most 18 characters starting with FRWF: the DGFiP "
        "rejects the bordereau"]
    assert list(id_tiers_problems("1234A6789", "11")) == [
        "IREP is not at most 80 characters starting with 5 digits: the DGFiP rejects the "
        "bordereau"]


def test_id_tiers_09_has_no_form():
    for value in ("1234", "A" * 80):
        assert list(id_tiers_problems(value, "09")) == []


# ------------------------------------------------------------------ sepa.bic-abroad


@pytest.mark.parametrize("country", ["FR", "GF", "GP", "MQ", "RE", "YT", "PM", "BL", "MF"])
def test_sepa_bic_abroad_not_for_an_iban_of_a_bank_in_france(country):
    """France, the overseas départements and the SEPA-zone collectivités (IBAN country
    codes of their own in the ISO registry): an account there is no « domiciliation à
    l'étranger », its BIC may be left out, whatever the case the IBAN is written in."""
    iban = f"{country}7630006000011234567890189"
    assert bic_abroad_problem(iban, None) is None
    assert bic_abroad_problem(iban.lower(), "") is None


@pytest.mark.parametrize("iban", ["DE89370400440532013000", "MC5811222000010123456789030"])
def test_sepa_bic_abroad_an_account_abroad_without_its_bic(iban):
    assert bic_abroad_problem(iban, None) == (
        f"an account abroad (IBAN of {iban[:2]}) needs its BIC: without it the DGFiP "
        "rejects the bordereau")
    assert bic_abroad_problem(iban, "COBADEFFXXX") is None


# ------------------------------------------------------------------ pes.num-dette-keys


@pytest.mark.parametrize("number, refused", [
    ("FA-999999999-9999", False),  # NumDette 9999999999999: 13 digits, the most keyed
    ("FA-1000000000-0000", True),  # 10000000000000: 14 digits
    ("FA-1000000000-0001", True),
    ("FA-00-9999999999999", False),  # 15 characters, 13 significant digits
])
def test_num_dette_keys_allow_13_significant_digits_and_no_more(tmp_path, number, refused):
    """Cle1 and Cle2 are known over NumDette on 13 digits: the largest 13-digit NumDette
    passes, the smallest of 14 is refused (the mapping binds NumDette to the invoice
    number's digits)."""
    def renumber(invoice):
        invoice["number"] = number
    rules = [rule for rule, _message in _built(tmp_path, renumber)]
    assert rules == (["pes.num-dette-keys"] if refused else [])




def test_num_dette_keys_a_file_of_the_largest_13_digit_num_dette_is_valid(tmp_path):
    """The file check (pes.num-dette-keys in validate) lets the largest 13-digit NumDette
    through too: exported, its Cle2 computed over it, the file is valid."""
    data = copy.deepcopy(EXAMPLE)
    data["invoices"][0]["number"] = "FA-999999999-9999"
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(MAPPING, path, tmp_path / "out", date(2026, 11, 23))
    xml = result.files[0].path
    assert '<NumDette V="9999999999999"/>' in xml.read_text(encoding="iso-8859-1")
    assert validate_pes_file(xml, ORMC.files[0].xsd) == []


# ------------------------------------------------------------------ title rules at their edges


def _rules_of(title) -> list[tuple[str, str]]:
    return [(p.rule, p.message) for p in check_title(title, CTX)]


def test_title_of_the_edges_is_valid():
    assert _rules_of(TITLE) == []


def test_amounts_allow_the_largest_base_montant():
    """Base_Montant is 14 digits with 2 decimals: 999 999 999 999.99 is a valid total, one
    cent more is not."""
    most = Decimal("999999999999.99")
    largest = replace(TITLE, lines=(replace(TITLE.lines[0], amount=most),), total=most)
    assert _rules_of(largest) == []
    over = replace(TITLE, lines=(replace(TITLE.lines[0], amount=most),
                                 replace(TITLE.lines[1], amount=Decimal("0.01"))),
                   total=most + Decimal("0.01"))
    assert _rules_of(over) == [("pes.amounts", "total 1000000000000.00 exceeds 14 digits")]


def test_amounts_allow_one_cent():
    cent = replace(TITLE, lines=(replace(TITLE.lines[0], amount=Decimal("0.01")),),
                   total=Decimal("0.01"))
    assert _rules_of(cent) == []


@pytest.mark.parametrize("debt", ["1", "9" * 13, "9" * 15, "0" * 14 + "1"])
def test_num_dette_is_1_to_15_digits(debt):
    """NumDette is a Base_Num15: 1 to 15 digits, > 0 (the keys' 13 are pes.num-dette-keys,
    checked at mapping time)."""
    assert _rules_of(replace(TITLE, debt_number=debt)) == []


@pytest.mark.parametrize("period", [None, "0", "1", "9"])
def test_num_dette_period_is_one_digit_or_none(period):
    assert _rules_of(replace(TITLE, period=period)) == []


@pytest.mark.parametrize("sequence", ["01", "02", "03", "04"])
def test_sepa_mandate_sequence_01_to_04(sequence):
    """SequencePres: 01 OOFF, 02 FRST, 03 RCUR, 04 FNAL (DT, TSequencePres): each passes."""
    assert _rules_of(replace(TITLE, mandate=replace(TITLE.mandate, sequence=sequence))) == []


def test_sepa_mandate_signed_on_the_debit_date():
    """A mandate signed on the debit date is not signed after it: it passes."""
    on_the_day = replace(TITLE.mandate, signed_on=TITLE.mandate.debit_date)
    assert _rules_of(replace(TITLE, mandate=on_the_day)) == []
    day_after = replace(TITLE.mandate, signed_on=date(2026, 12, 6))
    assert [rule for rule, _m in _rules_of(replace(TITLE, mandate=day_after))] == \
        ["sepa.mandate"]


# ------------------------------------------------------------------ pes.edition


def _with_edition(tmp_path: Path, code: str, typ_pce: str | None = None,
                  nat_pce: str | None = None) -> list[tuple[str, str]]:
    """The example's ORMC file with an Edition in its first piece (and, given a TypPce,
    made a bordereau of titres ordinaires, TypBord 01, of that TypPce and NatPce),
    checked by the file rules alone (a schema accepting anything: the XSD is not what
    is tested)."""
    lax = tmp_path / "lax.xsd"
    lax.write_text(LAX_XSD)
    doc = etree.parse(str(GOLDEN_ORMC))
    root = doc.getroot()
    if typ_pce is not None:
        root.xpath("//BlocBordereau/TypBord")[0].set("V", "01")
        for tag, value in (("TypPce", typ_pce), ("NatPce", nat_pce)):
            for el in root.xpath(f"//BlocPiece/{tag}"):
                el.set("V", value)
    root.xpath("(//Piece)[1]/BlocPiece/Cle2")[0].addnext(etree.Element("Edition", V=code))
    path = tmp_path / "edition.xml"
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    return [(p.rule, p.message) for p in validate_pes_file(path, lax)]


@pytest.mark.parametrize("code, problems", [
    ("03", []),
    ("06", []),
    ("01", [("pes.edition", "Edition 01: not allowed on an ORMC title (TypPce 15 takes 03 "
                            "or 06)")]),
    ("05", [("pes.edition", "Edition 05: not allowed on an ORMC title (TypPce 15 takes 03 "
                            "or 06)")]),
])
def test_edition_of_an_ormc_title_is_03_or_06(tmp_path, code, problems):
    """DT BlocPiece/Edition: an ORMC title (TypPce 15) takes Edition 03 or 06 only."""
    assert _with_edition(tmp_path, code) == problems


@pytest.mark.parametrize("code, typ_pce, nat_pce, problem", [
    ("01", "01", "01", None),
    ("01", "01", "18", None),
    ("01", "01", "05", "Edition 01: not allowed on TypPce 01 / NatPce 05"),
    ("01", "10", "01", None),
    ("01", "10", "02", None),
    ("01", "10", "03", "Edition 01: not allowed on TypPce 10 / NatPce 03"),
    ("05", "01", "01", None),
    ("05", "01", "02", "Edition 05: allowed only on TypPce 01 / NatPce 01"),
    ("05", "10", "01", "Edition 05: allowed only on TypPce 01 / NatPce 01"),
    ("06", "01", "01", "Edition 06: allowed only on ORMC titles (TypPce 15), not on TypPce 01"),
])
def test_edition_of_a_titre_follows_its_typpce_and_natpce(tmp_path, code, typ_pce, nat_pce,
                                                          problem):
    """DT BlocPiece/Edition and Annexe 2: Edition 01 on a titre (TypPce 01) of NatPce 01,
    02, 03, 04, 11 or 18, or on TypPce 10 of NatPce 01 or 02; 05 on TypPce 01 / NatPce 01
    only; 03 and 06 on ORMC titles only. (TypPce 10 with NatPce 03 is outside Annexe 2's
    grid too: each of the file's 11 pieces is also a pes.triplet problem.)"""
    found = _with_edition(tmp_path, code, typ_pce, nat_pce)
    assert [p for p in found if p[0] == "pes.edition"] == \
        ([("pes.edition", problem)] if problem else [])
    outside = (typ_pce, nat_pce) == ("10", "03")
    assert [p for p in found if p[0] != "pes.edition"] == (11 * [(
        "pes.triplet", "TypBord/TypPce/NatPce 01/10/03 is not allowed (01/10: NatPce 01, 02; "
        "DT Annexe 2)")] if outside else [])


# ------------------------------------------------------------------ pes.max-pieces


def test_max_pieces_allows_a_bordereau_of_exactly_the_most(monkeypatch):
    """At most MAX_PIECES pieces a bordereau: the example's bordereau of 11 pieces passes
    when 11 is the most, and is refused when the most is 10."""
    monkeypatch.setattr("pesgen.validate.MAX_PIECES", 11)
    assert validate_pes_file(GOLDEN_ORMC, ORMC.files[0].xsd) == []
    monkeypatch.setattr("pesgen.validate.MAX_PIECES", 10)
    assert [p.rule for p in validate_pes_file(GOLDEN_ORMC, ORMC.files[0].xsd)] == \
        ["pes.max-pieces"]


def test_bordereau_problems_name_the_line_of_their_bordereau(tmp_path):
    """pes.nbr-pce and pes.mt-bord-ht are the bordereau's: their record is the file and
    the line of its <Bordereau> (line 17 of the example's file)."""
    doc = etree.parse(str(GOLDEN_ORMC))
    doc.getroot().xpath("//BlocBordereau/NbrPce")[0].set("V", "10")
    doc.getroot().xpath("//BlocBordereau/MtBordHt")[0].set("V", "1.00")
    path = tmp_path / "bordereau.xml"
    doc.write(str(path), xml_declaration=True, encoding="ISO-8859-1")
    assert [(p.rule, p.record) for p in validate_pes_file(path, ORMC.files[0].xsd)] == [
        ("pes.nbr-pce", "bordereau.xml:17"), ("pes.mt-bord-ht", "bordereau.xml:17")]
