"""DGFiP business rules the XSD does not check, applied to each canonical title.

Each rule has a stable id, a source in the DGFiP documentation, and a function that
returns the problems one title raises. ``docs/rules.md`` is generated from ``RULES``.
The rules on a debtor, an address or a mandate are worked out from plain values by
``pesgen.checks`` (``civility_problem``, ``grid_problem``...): the checks of a rendered
file (``validate._check_piece``) call the same functions on the file's values, so a
rule id means one rule, with one wording, on a title and in a file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any

from stdnum import bic as std_bic
from stdnum import iban as std_iban
from stdnum.exceptions import ValidationError as StdnumError

from .checks import (
    MAX_AMOUNT,
    civility_problem,
    first_name_problem,
    grid_problem,
    id_tiers_problems,
    mandate_date_problem,
    residence_problem,
)
from .errors import Problem
from .formats import Format
from .memo import _BANK_CODES, bank_code
from .model import Title
from .text import _SEPA_BAD, sepa_bad_chars

_BEYOND_LATIN1 = re.compile(r"[^\x00-\xff]")
# the text fields pes.text-length checks
_TEXT_FIELDS = ("title.object", "debtor.name", "debtor.first_name", "debtor.complement_name",
                "debtor.civility", "debtor.ref", "address.street", "address.complement",
                "address.locality", "address.city", "line.label", "mandate.rum",
                "mandate.label", "account.holder")


@dataclass(frozen=True)
class RuleContext:
    fmt: Format
    issue_date: date  # DteBordEm of the bordereau the title goes into
    # the text fields no file of the format holds (coverage.unwritten_texts): not checked
    # by pes.text-length, a value the file never holds
    unwritten: frozenset[str] = frozenset()

    @cached_property
    def active(self) -> tuple[Rule, ...]:
        """The rules of this format's rule sets, in registry order."""
        return tuple(r for r in RULES if any(s in self.fmt.rules for s in r.sets))

    @cached_property
    def cleared(self) -> bool:
        """Whether the active rules are those ``_clear`` tests (pes-ormc's: then a title
        it clears raises no problem; other formats' go through the rules one by one)."""
        return {r.id for r in self.active} == _CLEARED and self.plain_limits is not None

    @cached_property
    def cross_check(self) -> bool:
        """PESGEN_RULES_CROSS_CHECK=1 (the test suite sets it): every title ``_clear``
        clears goes through the rules one by one too (``_cross_check``)."""
        return os.environ.get(CROSS_CHECK_ENV) == "1"

    @cached_property
    def plain_limits(self) -> tuple[tuple[int, ...], int, int, int, int] | None:
        """The length limits ``_clear`` tests (pes-ormc's: the head fields', a line
        label's, the account holder's, the RUM's, LibPrel's; no limit: the largest
        length), when the charsets are latin-1 but the SEPA fields' (else None)."""
        limits = self.text_limits
        if any(limits[key][1] != "latin-1" for key in _PLAIN_LIMITS) or \
                any(limits[key][1] != "sepa" for key in _SEPA_LIMITS):
            return None
        most = {key: sys.maxsize if limit is None else limit
                for key, (limit, _charset) in limits.items()}
        return (tuple(most[key] for key in _HEAD_FIELDS), most["line.label"],
                most["account.holder"], most["mandate.rum"], most["mandate.label"])

    @cached_property
    def text_limits(self) -> dict[str, tuple[int | None, str]]:
        """{text field: (its length limit, its charset)} of the format, looked up once
        (``pes.text-length``)."""
        return {key: (limit.max, limit.charset)
                for key in _TEXT_FIELDS for limit in (self.fmt.limit(key),)}


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    source: str
    check: Callable[[Title, RuleContext], Iterator[str]]
    sets: tuple[str, ...] = ("pes-common",)


RULES: list[Rule] = []


def rule(id: str, summary: str, source: str, sets: tuple[str, ...] = ("pes-common",)):
    def register(fn: Callable[[Title, RuleContext], Iterator[str]]):
        RULES.append(Rule(id, summary, source, fn, sets))
        return fn
    return register


@rule("pes.civility", "A person (CatTiers 01) has a civility, and never 'Mademoiselle'.",
      "DT v5.19 PES_RecetteAller, InfoTiers/Civilite")
def _civility(t: Title, ctx: RuleContext) -> Iterator[str]:
    if message := civility_problem(t.debtor.category, t.debtor.civility):
        yield message


@rule("pes.first-name", "A person (CatTiers 01) has a first name.",
      "DT v5.19 PES_RecetteAller, InfoTiers/Prenom")
def _first_name(t: Title, ctx: RuleContext) -> Iterator[str]:
    if message := first_name_problem(t.debtor.category, t.debtor.first_name):
        yield message


@rule("pes.cat-nat-grid", "CatTiers and NatJur form a pair of the DGFiP grid (Annexe 3's "
      "numbers; its labels of rows 50-74 are shifted against the TCatTiers code list: see "
      "the mapping rule).", "DT v5.19 Annexes, Annexe 3")
def _grid(t: Title, ctx: RuleContext) -> Iterator[str]:
    if message := grid_problem(t.debtor.category, t.debtor.legal_nature):
        yield message


def text_values(t: Title) -> list[tuple[str, str | None]]:
    """(field key, value) of each text of a title ``pes.text-length`` checks."""
    d, a = t.debtor, t.debtor.address
    values = [("title.object", t.object), ("debtor.name", d.name),
              ("debtor.first_name", d.first_name), ("debtor.complement_name", d.complement_name),
              ("debtor.civility", d.civility), ("debtor.ref", d.ref),
              ("address.street", a.street), ("address.complement", a.complement),
              ("address.locality", a.locality), ("address.city", a.city)]
    values += [("line.label", ln.label) for ln in t.lines]
    if t.mandate:
        values += [("mandate.rum", t.mandate.rum), ("mandate.label", t.mandate.label),
                   ("account.holder", t.mandate.account.holder)]
    return values


@rule("pes.text-length", "Every text field fits the target's length and character set.",
      "DT v5.19 DictionnaireDesDonneesAller_simples (Base_TexteX, Base_TexteXSEPA)")
def _lengths(t: Title, ctx: RuleContext) -> Iterator[str]:
    limits = ctx.text_limits
    unwritten = ctx.unwritten
    for key, value in text_values(t):
        if value is None or key in unwritten:
            continue
        most, charset = limits[key]
        if most is not None and len(value) > most:
            yield f"{key} is {len(value)} characters, the limit is {most}"
        if charset == "sepa":
            if bad := sepa_bad_chars(value):
                yield f"{key} has characters outside the SEPA set: {bad!r}"
        elif charset == "latin-1" and not value.isascii() and _BEYOND_LATIN1.search(value):
            yield f"{key} has characters outside ISO-8859-1"


@rule("pes.amounts", "Line amounts are > 0 with 2 decimals; the title total is their sum.",
      "DT v5.19 InfoLignePiece/MtHT (« Pas de valeur à vide ou 0,00 sinon rejet du "
      "bordereau »); XSD v5.17 Base_Montant (minExclusive 0, fractionDigits 2)")
def _amounts(t: Title, ctx: RuleContext) -> Iterator[str]:
    for ln in t.lines:
        if ln.amount <= 0:
            yield f"line {ln.number} amount {ln.amount} is not > 0"
        # a finite amount (read as one): its exponent is an int, not 'n', 'N' or 'F'
        if ln.amount.as_tuple().exponent < -2:  # type: ignore[operator]
            yield f"line {ln.number} amount {ln.amount} has more than 2 decimals"
    if sum((ln.amount for ln in t.lines), Decimal(0)) != t.total:
        yield "the title total is not the sum of its lines"
    if t.total > MAX_AMOUNT:
        yield f"total {t.total} exceeds 14 digits"
    if not t.lines:
        yield "a title needs at least one line"


# IdLigne, a line's number in its title, is a Base_Num6: 1 to 999 999
MAX_LINES = 999_999


@rule("pes.line-count", "A title has at most 999 999 lines: IdLigne, a line's number in its "
      "title (renumbered from 1 after netting), has 6 digits. Without this rule the XSD "
      "would refuse the file at the first line past it, naming no invoice.",
      "DT v5.19 InfoLignePiece/IdLigne; XSD v5.17 Base_Num6", sets=("pes-ormc", "pes-titres"))
def _line_count(t: Title, ctx: RuleContext) -> Iterator[str]:
    if len(t.lines) > MAX_LINES:
        most = f"{MAX_LINES:,}".replace(",", " ")
        yield (f"{len(t.lines)} lines: IdLigne, a line's number in its title, has 6 digits "
               f"(at most {most} lines, after netting): split the invoice in the school "
               "software")


@rule("pes.address", "CP has 5 digits (99999 abroad); a non-resident (CodRes 1) has a "
      "CodPays, a resident (CodRes 0) none or 100 (the DT's rejections); pesgen also refuses "
      "CodRes 1 with CodPays 100, France's INSEE code (its own, stricter check: the DT does "
      "not name that pair).",
      "DT v5.19 DomaineGlobalAller_blocscommuns, Adresse/CP, CodRes, CodPays (« Si CodRes=1 et "
      "CodPays absent = rejet du bordereau »; « obligatoirement non valorisée ou valorisée à "
      "100 si CodRes est à 0, sinon rejet du bordereau »); CodRes 1 with 100: pesgen; notes "
      "pes-v2-recette.md §7")
def _address(t: Title, ctx: RuleContext) -> Iterator[str]:
    a = t.debtor.address
    if not (len(a.postal_code) == 5 and a.postal_code.isascii() and a.postal_code.isdigit()):
        yield f"postal code '{a.postal_code}' is not 5 digits"
    if message := residence_problem(a.resident, a.country_code):
        yield message


@rule("pes.num-dette", "NumDette is 1 to 15 digits and > 0.",
      "DT v5.19 BlocPiece/NumDette (Base_Num15)", sets=("pes-ormc",))
def _num_dette(t: Title, ctx: RuleContext) -> Iterator[str]:
    if t.debt_number is None:
        yield "NumDette is missing: an ORMC article needs one"
        return
    if not (t.debt_number.isascii() and t.debt_number.isdigit()
            and 0 < len(t.debt_number) <= 15 and int(t.debt_number)):
        yield f"NumDette '{t.debt_number}' is not 1-15 digits > 0"
    if t.period and not (len(t.period) == 1 and t.period.isascii() and t.period.isdigit()):
        yield f"Per '{t.period}' is not one digit"


@rule("pes.asap-date", "A title's DteAsp is not before the bordereau's DteBordEm.",
      "DT v5.19 BlocPiece/DteAsp, BlocBordereau/DteAsp")
def _asap(t: Title, ctx: RuleContext) -> Iterator[str]:
    if t.asap_date is not None and t.asap_date < ctx.issue_date:
        yield f"DteAsp {t.asap_date} is before DteBordEm {ctx.issue_date}"


@rule("pes.id-tiers", "A debtor's IdTiers has the length of its NatIdTiers (14 characters "
      "for a SIRET, 01; 9 for a SIREN, 02, or a FINESS, 03; 15 for a NIR, 04) and a valid key "
      "(not the FINESS's, unchecked: no public description of it was found); the other kinds "
      "have the form the DT states (05-08, 10-12; none for 09). A NIR is refused whatever its "
      "key: a hospital's only (M21, M22).",
      "DT v5.19 InfoTiers/IdTiers (« Pour les seuls identifiants de type SIRET, SIREN, FINESS "
      "et NIR [...] La clé de l'identifiant doit être valide, et les longueurs possibles sont "
      "9 pour le Siren et le finess géo, 14 pour le Siret et 15 pour le Nir, sinon, rejet du "
      "bordereau »; « Les longueurs possibles sont [...] sinon rejet du bordereau »; « "
      "l'utilisation du n° de sécurité sociale est réservée au domaine hospitalier.et "
      "seulement en nomenclature M21 M22 sinon rejet du bordereau »); the "
      "NIR's key: python-stdnum fr.nir; DT-AQ lists ERREUR_SIRET (a name only: its link to "
      "this rule is pesgen's reading)")
def _siret(t: Title, ctx: RuleContext) -> Iterator[str]:
    return id_tiers_problems(t.debtor.national_id, t.debtor.national_id_kind)


@rule("sepa.mandate", "A direct debit has a valid upper-case IBAN (and BIC if given), a RUM "
      "and LibPrel in the SEPA character set, a sequence code and a signature date not after "
      "the debit date (that order is pesgen's check: the DT states none).",
      "DT v5.19 InfoPrelevementSEPA; Class_Bancaire (IBAN/BIC upper case); the signature date "
      "before the debit date: pesgen")
def _mandate(t: Title, ctx: RuleContext) -> Iterator[str]:
    m = t.mandate
    if m is None:
        return
    if not _valid(std_iban, m.account.iban) or m.account.iban != m.account.iban.upper():
        yield "IBAN is invalid"
    bic = m.account.bic
    if bic and (not _valid(std_bic, bic) or bic != bic.upper()):
        yield "BIC is invalid"
    if m.sequence not in ("01", "02", "03", "04"):
        yield f"SequencePres '{m.sequence}' is not 01-04"
    if message := mandate_date_problem(m.signed_on, m.debit_date):
        yield message


def _valid(module: Any, value: str) -> bool:
    """stdnum's is_valid, memoised with the mapping stage's checks (``memo.bank_code``)."""
    try:
        bank_code(module, value)
    except StdnumError:
        return False
    return True


# the rules ``_clear`` tests, every one of ``RULES`` today: a format whose active rules
# are others (a rule registered without being added to ``_clear``, a format without
# pes-ormc's) runs every title through the rules one by one
_CLEARED = frozenset({"pes.civility", "pes.first-name", "pes.cat-nat-grid", "pes.text-length",
                      "pes.amounts", "pes.line-count", "pes.address", "pes.num-dette",
                      "pes.asap-date", "pes.id-tiers", "sepa.mandate"})
_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_IBAN, _BIC = std_iban.__name__, std_bic.__name__
# the fields of each length limit ``_clear`` reads from ``plain_limits``
_HEAD_FIELDS = ("title.object", "debtor.name", "debtor.first_name", "debtor.complement_name",
                "debtor.civility", "debtor.ref", "address.street", "address.complement",
                "address.locality", "address.city")
_PLAIN_LIMITS = (*_HEAD_FIELDS, "line.label", "account.holder")
_SEPA_LIMITS = ("mandate.rum", "mandate.label")


def _clear(t: Title, ctx: RuleContext) -> bool:
    """Whether no rule of ``_CLEARED`` finds a problem in ``t``, tested at once in one
    function: True only when none would (the same tests as the rules'), False when one
    might (then the rules say which and how). Eleven generators a title were 5 % of an
    export's instructions (fiftieth session); a title raises no problem nearly always.
    Only for a context whose ``plain_limits`` are known (its texts' charset latin-1, but
    the SEPA ones')."""
    d = t.debtor
    a = d.address
    category = d.category
    if (civility_problem(category, d.civility) or first_name_problem(category, d.first_name)
            or grid_problem(category, d.legal_nature)):
        return False
    # pes.text-length, as _lengths tests a latin-1 text
    head, label_most, holder_most, rum_most, sepa_label_most = ctx.plain_limits  # type: ignore[misc]
    beyond = _BEYOND_LATIN1.search
    for value, most in zip((t.object, d.name, d.first_name, d.complement_name, d.civility,
                            d.ref, a.street, a.complement, a.locality, a.city), head, strict=True):
        if value is not None and (len(value) > most or (not value.isascii()
                                                        and beyond(value))):
            return False
    lines = t.lines
    if not lines or len(lines) > MAX_LINES:
        return False
    for ln in lines:
        amount, label = ln.amount, ln.label
        # an amount of exactly 2 decimals (what the mapping stage makes) has no exponent
        # below -2; any other goes to the rule
        if amount <= _ZERO or not amount.same_quantum(_CENT) or (label is not None and (
                len(label) > label_most or (not label.isascii() and beyond(label)))):
            return False
    total = t.total
    if sum([ln.amount for ln in lines], _ZERO) != total or total > MAX_AMOUNT:
        return False
    postal = a.postal_code
    if not (len(postal) == 5 and postal.isascii() and postal.isdigit()) or \
            residence_problem(a.resident, a.country_code):
        return False
    debt, period = t.debt_number, t.period
    if debt is None or not (debt.isascii() and debt.isdigit() and 0 < len(debt) <= 15
                            and int(debt)):
        return False
    if period and not (len(period) == 1 and period.isascii() and period.isdigit()):
        return False
    if t.asap_date is not None and t.asap_date < ctx.issue_date:
        return False
    if (d.national_id or d.national_id_kind) and \
            next(id_tiers_problems(d.national_id, d.national_id_kind), None) is not None:
        return False
    m = t.mandate
    if m is None:
        return True
    rum, label, account = m.rum, m.label, m.account
    holder, iban, bic = account.holder, account.iban, account.bic
    if (rum is not None and (len(rum) > rum_most or _SEPA_BAD.search(rum))) or \
            (label is not None and (len(label) > sepa_label_most or _SEPA_BAD.search(label))) \
            or (holder is not None and (len(holder) > holder_most or (not holder.isascii()
                                                                   and beyond(holder)))):
        return False
    # _valid's answer, from the memo of valid codes when it holds this one
    if _BANK_CODES.get((_IBAN, iban)) is None and not _valid(std_iban, iban):
        return False
    if bic and _BANK_CODES.get((_BIC, bic)) is None and not _valid(std_bic, bic):
        return False
    return (iban == iban.upper() and not (bic and bic != bic.upper())
            and m.sequence in ("01", "02", "03", "04")
            and not mandate_date_problem(m.signed_on, m.debit_date))


# the environment variable that has every title ``_clear`` clears checked by the rules
# one by one as well (the test suite sets it: conftest.py)
CROSS_CHECK_ENV = "PESGEN_RULES_CROSS_CHECK"


def _cross_check(title: Title, ctx: RuleContext) -> None:
    """A title ``_clear`` cleared, through the rules one by one: one of them finding a
    problem is a bug of ``_clear`` (a rule changed without it), raised as such, never a
    title let through. ``_clear`` restates the rules' tests for speed; every test that
    builds a title checks the two agree."""
    refusing = [r.id for r in ctx.active if next(iter(r.check(title, ctx)), None) is not None]
    if refusing:
        raise RuntimeError(f"rules._clear cleared invoice {title.invoice_number}, which "
                           f"{', '.join(refusing)} refuse(s): rules._clear is behind the "
                           "rules (a bug)")


def check_title(title: Title, ctx: RuleContext) -> list[Problem]:
    if ctx.cleared and _clear(title, ctx):
        if ctx.cross_check:
            _cross_check(title, ctx)
        return []
    problems: list[Problem] = []
    for r in ctx.active:
        for message in r.check(title, ctx):
            problems.append(Problem(r.id, message, record=title.origin,
                                    invoice=title.invoice_number))
    return problems
