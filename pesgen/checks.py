"""The DGFiP rules on a debtor, an address and a mandate, worked out from plain values.

The title rules (``pesgen.rules``) call these functions on a canonical title, and the
checks of a rendered file (``pesgen.validate``) on the file's own values: one rule id,
one rule, one wording, whether pesgen wrote the file or not. This module stays light
(no mapping, no template machinery): the validator of a streamed export imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from stdnum import bic as std_bic
from stdnum import iban as std_iban
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidLength
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import nir as std_nir
from stdnum.fr import siren as std_siren
from stdnum.fr import siret as std_siret

from .errors import shown_value
from .memo import bank_code

MAX_AMOUNT = Decimal("999999999999.99")  # Base_Montant: 14 digits, 2 decimals

# CatTiers x NatJur pairs allowed (DGFiP dossier technique, Annexe 3).
CAT_NAT_GRID: dict[str, frozenset[str]] = {
    "01": frozenset({"01", "02"}), "20": frozenset({"07", "08"}),
    **{c: frozenset({"09"}) for c in ("21", "22", "23", "24", "25", "26", "27")},
    "28": frozenset({"08"}), "29": frozenset({"10"}), "50": frozenset({"03", "06"}),
    "60": frozenset({"04"}), "61": frozenset({"04"}), "62": frozenset({"04"}),
    "63": frozenset({"04", "11"}), "64": frozenset({"04"}), "65": frozenset({"04", "05"}),
    "70": frozenset({"05"}), "71": frozenset({"05"}), "72": frozenset({"04"}),
    "73": frozenset({"05"}), "74": frozenset({"04"}),
}

_MADEMOISELLE = re.compile(r"^(mlle|melle|mademoiselle|mle)\.?$", re.IGNORECASE)


def is_mademoiselle(civility: str) -> bool:
    """Whether a civility says Mademoiselle (Mlle, Mlle., Melle, Mle...), which Hélios
    rejects: the file's rule and the mapping's check of its own civilities read it alike."""
    return _MADEMOISELLE.match(civility.strip()) is not None


def civility_problem(category: str | None, civility: str | None) -> str | None:
    """pes.civility on a debtor's CatTiers and Civilite."""
    if category == "01" and not civility:
        return "a person (CatTiers 01) needs a civility"
    if civility and is_mademoiselle(civility):
        return f"civility '{civility}' (Mademoiselle) is rejected by Hélios"
    return None


def first_name_problem(category: str | None, first_name: str | None) -> str | None:
    """pes.first-name on a debtor's CatTiers and Prenom."""
    if category == "01" and not first_name:
        return "a person (CatTiers 01) needs a first name"
    return None


def birth_problem(category: str | None, born: str | None) -> str | None:
    """pes.birth-date on a debtor's CatTiers and the birth element it has (DteNaissance or
    LieuNaissance; None: neither): a person's only (DT v5.19 InfoTiers)."""
    if born is not None and category != "01":
        return f"{born} is for a person (CatTiers 01) only, not CatTiers {category}"
    return None


def grid_problem(category: str | None, legal_nature: str | None) -> str | None:
    """pes.cat-nat-grid on a debtor's CatTiers and NatJur (``CAT_NAT_GRID``)."""
    allowed = CAT_NAT_GRID.get(category or "")
    if allowed is None or legal_nature not in allowed:
        return f"CatTiers {category} / NatJur {legal_nature} is outside the grid"
    return None


def debit_date_problem(debit: Any, issue: Any) -> str | None:
    """sepa.debit-date on DtePrel and the bordereau's DteBordEm (dates, or ISO strings):
    DtePrel is « date de règlement interbancaire » (DT v5.19 InfoPrelevementSEPA), and
    a debit cannot be settled before the rôle is issued (pesgen's reading)."""
    if debit < issue:
        return (f"DtePrel {debit} is before DteBordEm {issue}: a debit cannot be settled "
                "before the rôle is issued")
    return None


def _easter(year: int) -> date:
    """Easter Sunday of ``year`` (Gregorian calendar: the Meeus/Jones/Butcher
    computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return date(year, month, day + 1)


# TARGET2's closing days of a fixed date: (month, day) -> name
_TARGET2_FIXED = {(1, 1): "New Year's Day", (5, 1): "1 May", (12, 25): "Christmas Day",
                  (12, 26): "26 December"}


def target2_closed(day: date) -> str | None:
    """Why no TARGET2 settlement happens on ``day`` (the ECB's closing days: Saturdays,
    Sundays, New Year's Day, Good Friday, Easter Monday, 1 May, 25 and 26 December), or
    None on a business day."""
    if day.weekday() >= 5:
        return "Saturday" if day.weekday() == 5 else "Sunday"
    fixed = _TARGET2_FIXED.get((day.month, day.day))
    if fixed:
        return fixed
    if day.month not in (3, 4):  # Easter falls between 22 March and 25 April
        return None
    easter = _easter(day.year)
    if day == easter - timedelta(days=2):
        return "Good Friday"
    if day == easter + timedelta(days=1):
        return "Easter Monday"
    return None


# CodPays of France (INSEE): "if CodRes = 0, absent or 100" (DT, Adresse/CodPays)
FRANCE_INSEE = "100"


def residence_problem(resident: bool, country_code: str | None) -> str | None:
    """pes.address on CodRes (``resident``: CodRes 0) and CodPays: the DT rejects CodRes 1
    without CodPays, and CodRes 0 with a CodPays other than 100. CodRes 1 with CodPays 100
    says both "abroad" and "France": pesgen refuses it too, its own check (the DT does not
    name that pair)."""
    if not resident:
        if not country_code:
            return "a non-resident address needs CodPays"
        if len(country_code) != 3:
            return (f"CodPays '{country_code}' of a non-resident address is not an INSEE "
                    "country code (3 digits, e.g. 131 for Belgium; pesgen refuses the others)")
        if country_code == FRANCE_INSEE:
            return ("CodRes 1 with CodPays 100 (France): a non-resident address is abroad "
                    "(pesgen refuses this pair)")
    elif country_code not in (None, "100"):
        return "a resident address has CodPays absent or 100"
    return None


# The national identifiers of a debtor pesgen writes (bindings.payer.national_id), told
# apart by their length: "les longueurs possibles sont 9 pour le Siren [...], 14 pour le
# Siret", and "la clé de l'identifiant doit être valide [...] sinon, rejet du bordereau"
# (DT v5.19 InfoTiers/IdTiers). {length: (NatIdTiers, name, python-stdnum module)}
NATIONAL_ID_KINDS = {14: ("01", "SIRET", std_siret), 9: ("02", "SIREN", std_siren)}
# The kinds of IdTiers the DGFiP checks (pes.id-tiers on a file from anywhere): "Pour les
# seuls identifiants de type SIRET, SIREN, FINESS et NIR, des contrôles de validité sont
# effectués. La clé de l'identifiant doit être valide, et les longueurs possibles sont 9
# pour le Siren et le finess géo, 14 pour le Siret et 15 pour le Nir, sinon, rejet du
# bordereau" (DT v5.19 InfoTiers/IdTiers). The NIR's key is INSEE's (97 - the first 13
# characters modulo 97, Corsica's 2A and 2B read as 19 and 18: python-stdnum fr.nir).
# No public description of the FINESS key was found: its length only is checked.
# {NatIdTiers: (name, length, python-stdnum module checking the key, or None)}
_ID_TIERS_CHECKED: dict[str, tuple[str, int, Any]] = {
    **{code: (name, length, module)
       for length, (code, name, module) in NATIONAL_ID_KINDS.items()},
    "03": ("FINESS", 9, None), "04": ("NIR", 15, std_nir)}


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit()


# The forms the DT states for the other kinds: "Les longueurs possibles sont: entre 4 et
# 18 caractères pour TVA intracommunautaire, 9 caractères pour le TAHITI, entre 9 à 10
# chiffres pour le RIDET, au maximum 18 caractères commençant par FRWF pour FRWF, au plus
# 18 caractères pour Hors UE, 13 chiffres pour le NFP, jusqu'à 80 caractères et commençant
# par 5 chiffres pour l'IREP, sinon rejet du bordereau" (DT v5.19 InfoTiers/IdTiers); none
# for 09 (en cours d'immatriculation). {NatIdTiers: (name, the form, its test)}
_ID_TIERS_FORMS: dict[str, tuple[str, str, Callable[[str], bool]]] = {
    "05": ("TVA intracommunautaire", "4 to 18 characters", lambda v: 4 <= len(v) <= 18),
    "06": ("Hors UE", "at most 18 characters", lambda v: len(v) <= 18),
    "07": ("TAHITI", "9 characters", lambda v: len(v) == 9),
    "08": ("RIDET", "9 or 10 digits", lambda v: 9 <= len(v) <= 10 and _digits(v)),
    "10": ("FRWF", "at most 18 characters starting with FRWF",
           lambda v: len(v) <= 18 and v.startswith("FRWF")),
    "11": ("IREP", "at most 80 characters starting with 5 digits",
           lambda v: len(v) <= 80 and len(v) >= 5 and _digits(v[:5])),
    "12": ("NFP", "13 digits", lambda v: len(v) == 13 and _digits(v)),
}
# « l'utilisation du n° de sécurité sociale est réservée au domaine hospitalier.et seulement
# en nomenclature M21 M22 sinon rejet du bordereau » (DT v5.19 InfoTiers/IdTiers). pesgen
# writes no hospital's file, and its XSDs take none: they refuse FinJur, which the DT
# makes mandatory in M21 and M22 (EnTetePES/FinJur), and InfoAssure. So a NIR is refused
# whatever its key.
NIR_HOSPITALS_ONLY = ("a NIR (NatIdTiers 04) is for the budgets of hospitals only "
                      "(nomenclatures M21, M22, whose files have a FinJur): the DGFiP rejects "
                      "the bordereau of any other")
# the kinds the DT reserves to natural persons (« Les identifiants NIR, NFP et IREP sont
# réservés aux débiteurs « Personne physique » »): their value is not repeated in a message
_PERSONAL_ID_KINDS = frozenset({"04", "11", "12"})


# a number as a spreadsheet writes a long one it took for a number: 2,14501E+13
_SCIENTIFIC = re.compile(r"^[0-9]+(?:[.,][0-9]*)?[eE]\+?[0-9]+\Z")
_SCIENTIFIC_HINT = (" (a number in scientific notation, as a spreadsheet writes a long "
                    "number it took for one, its last digits lost: the export should write "
                    "it as text)")


def siret_key_fails(value: str) -> str:
    """Which check key of ``value``, a SIRET (14 digits) or a SIREN (9) python-stdnum
    refuses, fails: a SIRET's SIREN (its first 9 digits) has a key of its own, so a typo
    there is told from one in the last 5 (the establishment's NIC)."""
    if len(value) == 14 and not std_siren.is_valid(value[:9]):
        return (f"the check key of its SIREN (its first 9 digits, {value[:9]}) fails: a "
                "digit mistyped or two swapped?")
    if len(value) == 14:
        return (f"its SIREN ({value[:9]}) is valid but the SIRET's check key fails: a digit "
                "of the last 5 (the establishment's NIC) mistyped?")
    return "its check key fails: a digit mistyped or two swapped?"


def checked_national_id(raw: str) -> tuple[str, str | None, str | None]:
    """pes.siret on a debtor's national identifier as the export gives it: (the value
    without spaces or dots, its NatIdTiers, None) for a SIRET (14 digits, 01) or a SIREN
    (9 digits, 02) with a valid key; else (that value, None, the problem)."""
    value = std_siret.compact(raw)
    known = NATIONAL_ID_KINDS.get(len(value)) if value.isascii() and value.isdigit() \
        else None
    if known is None:
        return value, None, (f"payer national id {shown_value(value)} is neither a SIRET "
                             "(14 digits, NatIdTiers 01) nor a SIREN (9 digits, NatIdTiers 02)"
                             + (_SCIENTIFIC_HINT if _SCIENTIFIC.match(value) else ""))
    code, name, module = known
    if not module.is_valid(value):
        return value, None, (f"payer {name} {shown_value(value)} is invalid: "
                             f"{siret_key_fails(value)} Correct it in the school software "
                             f"(the organisation's avis de situation SIRENE, INSEE, gives "
                             f"its {name})")
    return value, code, None


def id_tiers_problems(national_id: str | None, kind: str | None) -> Iterator[str]:
    """pes.id-tiers on IdTiers and NatIdTiers: the length of a SIRET (NatIdTiers 01, 14
    characters), a SIREN (02, 9), a FINESS (03, 9) or a NIR (04, 15) and the key of each
    but the FINESS; the form the DT states for the other kinds but 09; a NIR at all (a
    hospital's only); the two given together."""
    if national_id and kind and (message := _id_tiers_value_problem(national_id, kind)):
        yield message
    if national_id and kind == "04":
        yield NIR_HOSPITALS_ONLY
    if bool(national_id) != bool(kind):
        yield "IdTiers and NatIdTiers go together"


def _id_tiers_value_problem(national_id: str, kind: str) -> str | None:
    """What the DGFiP refuses in an IdTiers of NatIdTiers ``kind``, or None."""
    if kind in _ID_TIERS_CHECKED:
        name, length, module = _ID_TIERS_CHECKED[kind]
        if len(national_id) != length:
            problem = f"has {len(national_id)} characters, not {length}"
        elif module is not None and not module.is_valid(national_id):
            problem = "is invalid" + (" (characters or key)" if kind == "04" else "")
        else:
            return None
    elif kind in _ID_TIERS_FORMS:
        name, form, test = _ID_TIERS_FORMS[kind]
        if test(national_id):
            return None
        problem = f"is not {form}"
    else:
        return None
    shown = name if kind in _PERSONAL_ID_KINDS else f"{name} '{national_id}'"
    return f"{shown} {problem}: the DGFiP rejects the bordereau"


# IBAN countries of banks in France: a BIC is mandatory for any other (an account
# abroad). The overseas départements and the SEPA-zone collectivités (Saint-Pierre-et-
# Miquelon, Saint-Barthélemy, Saint-Martin) have IBAN codes of their own in the ISO
# registry, though their banks use FR IBANs.
FRENCH_IBAN_COUNTRIES = frozenset({"FR", "GF", "GP", "MQ", "RE", "YT", "PM", "BL", "MF"})


def bic_abroad_problem(iban: str, bic: str | None) -> str | None:
    """sepa.bic-abroad on a CpteBancaire's IBAN and BIC: "La balise [BIC] est obligatoire
    pour toute domiciliation à l'étranger, sinon rejet du bordereau" (DT, CpteBancaire)."""
    country = iban[:2].upper()
    if not bic and country not in FRENCH_IBAN_COUNTRIES:
        return (f"an account abroad (IBAN of {country}) needs its BIC: without it the "
                "DGFiP rejects the bordereau")
    return None


def mandate_date_problem(signed_on: Any, debit_date: Any) -> str | None:
    """sepa.mandate on DateSignMandat and DtePrel (two dates, or two ISO date strings)."""
    if signed_on > debit_date:
        return f"mandate signed {signed_on}, after the debit date {debit_date}"
    return None


# the rule of each bank code, by the PES element that holds it
BANK_RULES = {"IBAN": "sepa.iban", "BIC": "sepa.bic"}
_BANK_MODULES = {"IBAN": std_iban, "BIC": std_bic}


def checked_bank_code(kind: str, raw: str) -> tuple[str | None, str | None]:
    """An IBAN or a BIC (``kind``) checked by python-stdnum (memoised, ``memo.bank_code``):
    (the code compacted, None) when valid, else (None, the message of its rule in
    ``BANK_RULES``)."""
    module = _BANK_MODULES[kind]
    try:
        return bank_code(module, raw), None
    except StdnumError as exc:
        code = module.compact(raw)
        if kind == "IBAN":
            return None, f"IBAN is invalid: {_iban_fails(exc, code[:2])}"
        return None, f"BIC '{code}' is invalid: {_bic_fails(exc, len(code))}"


def _iban_fails(exc: StdnumError, country: str) -> str:
    """What python-stdnum's refusal ``exc`` of an IBAN of ``country`` (its first two
    letters) says, in pesgen's words (its own are a library's, in English)."""
    if isinstance(exc, InvalidChecksum):  # a character off, missing or extra: the same key
        return ("its check digits do not match the rest (a character mistyped, missing or "
                "one too many?)")
    if isinstance(exc, InvalidComponent):
        return (f"it fails the bank or account key of an IBAN of {country} (a character "
                "mistyped?)")
    return (f"its length or characters are not those of an IBAN of {country} (a character "
            "missing, one too many, or a letter where a digit goes?)")


def _bic_fails(exc: StdnumError, length: int) -> str:
    """What python-stdnum's refusal ``exc`` of a BIC of ``length`` characters says."""
    if isinstance(exc, InvalidLength):
        return f"it has {length} characters, a BIC 8 or 11"
    if isinstance(exc, InvalidComponent):
        return "its 5th and 6th characters are no country's code"
    return ("it is not 4 letters (the bank), 2 (the country), 2 letters or digits (the "
            "place) and, in a BIC of 11, 3 more (the branch)")

