"""PayFiP request and result models, and the parameter rules checked before sending.

Every value sent to PayFiP is checked here first, and every problem is reported at
once, naming the invoice and the field. The rules are those PayFiP enforces (see
docs/payfip.md, "Parameter rules"): numcli 6 digits, refdet 6-30 ``[A-Z0-9]``,
montant integer cents >= 100, mel with an ``@`` and 6-80 characters, objet 1 to 100
characters of ``[A-Za-z0-9 ]``, saisie T/X/W.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .._display import shown_repr
from ..errors import Problem
from ..text import ascii_letters
from .errors import PayfipRequestInvalid

# saisie: web service (creerPaiementSecurise) and legacy URL protocol (paiement.web)
# use different letters for production.
SAISIE_WS = {"T": "test", "X": "activation", "W": "production"}
SAISIE_URL = {"T": "test", "X": "activation", "A": "production"}
# Test and activation operations try the integration: a P or V result of one is a test
# payment, never the payment of the invoice (docs/payfip.md, "Test mode").
SAISIE_TEST = ("T", "X")

MIN_CENTS = 100  # 1,00 EUR, confirmed by several implementations
# Maxima are single-source (eopayment): 100 000,00 EUR by web service, 9 999,99 EUR by URL.
MAX_CENTS_WS = 10_000_000
MAX_CENTS_URL = 999_999

NUMCLI_RE = re.compile(r"^[0-9]{6}\Z")
# refdet sent: upper case only, the safe side (whether PayFiP accepts lower case is not
# confirmed, notes payfip.md §6; a client upper-cases defensively); one echoed back is
# read as sent before (any case), so an operation made then is still answered
REFDET_RE = re.compile(r"^[A-Z0-9]{6,30}\Z")
REFDET_ANY_CASE_RE = re.compile(r"^[A-Za-z0-9]{6,30}\Z")
EXER_RE = re.compile(r"^[0-9]{4}\Z")
MEL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
OBJET_RE = re.compile(r"^[A-Za-z0-9 ]*\Z")  # the characters; an empty objet is refused
# an operation identifier (PayFiP issues 36-character UUIDs): letters, digits and '-', the
# first a letter or a digit (never a sign a spreadsheet reads as a formula), at most the
# state store's 64
IDOP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}\Z")
URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*\Z")
OBJET_MAX = 100
URL_MAX = 250

# resultrans -> (status, method)
RESULTS = {
    "P": ("paid", "card"),
    "V": ("paid", "direct_debit"),
    "R": ("refused", "card"),
    "Z": ("refused", "direct_debit"),
    "A": ("abandoned", None),
}
# a payment's method (RESULTS), in words: "paid 187.50 by card"
METHOD_WORDS = {"card": "by card", "direct_debit": "by direct debit"}


def method_said(method: str | None) -> str:
    """A payment's method (``card``, ``direct_debit``) as a sentence says it after the
    amount, with its leading space (" by card"); nothing for none or another."""
    return f" {METHOD_WORDS[method]}" if method in METHOD_WORDS else ""


def paid_by(result_code: str | None) -> str | None:
    """How a paid result (P, V) was paid, in words (``METHOD_WORDS``: "by card"); None for
    any other code (a refusal, an abandon, a code pesgen does not know, none)."""
    status, method = RESULTS.get(result_code or "", (None, None))
    return METHOD_WORDS[method] if status == "paid" and method else None


def to_cents(amount: Decimal | str | int, invoice: str | None = None) -> int:
    """An amount in euros (``Decimal('187.50')`` or ``'187.50'``) as exact integer cents."""
    head = f"invoice {invoice}: " if invoice else ""
    try:
        value = Decimal(str(amount)) * 100
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value != value.to_integral_value():
        problem = Problem("payfip.montant", f"montant: {amount!r} is not an amount in whole "
                          "cents", invoice=invoice)
        raise PayfipRequestInvalid(f"{head}{problem.message}", [problem])
    return int(value)


def cents_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def ascii_label(value: Any, limit: int = OBJET_MAX) -> str:
    """The safe objet subset: accents removed, other letters transliterated as the text
    policies do (``Chœur`` -> ``Choeur``, ``Æ`` -> ``AE``, ``ß`` -> ``ss``, ``Ł`` -> ``L``:
    ``text.ascii_letters``), other signs as spaces, collapsed, cut.

    Offered to mapping expressions as the ``payfip_text`` filter; validation still
    refuses anything else, so a label is never changed silently behind the mapping.
    """
    text = unicodedata.normalize("NFKD", ascii_letters("" if value is None else str(value)))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^A-Za-z0-9 ]", " ", text)
    text = re.sub(r" +", " ", text).strip()
    return text[:limit].rstrip()


def _problem(invoice: str | None, name: str, message: str) -> Problem:
    return Problem(f"payfip.{name}", f"{name}: {message}", invoice=invoice)


def check_numcli(value: str, invoice: str | None = None) -> list[Problem]:
    if not isinstance(value, str) or not NUMCLI_RE.match(value):
        return [_problem(invoice, "numcli", f"{value!r} must be exactly 6 digits (the PayFiP "
                         "client number given by the DGFiP)")]
    return []


def check_exer(value: Any, invoice: str | None = None) -> list[Problem]:
    if not isinstance(value, str) or not EXER_RE.match(value):
        return [_problem(invoice, "exer", f"{value!r} must be a 4-digit year")]
    return []


def check_refdet(value: Any, invoice: str | None = None) -> list[Problem]:
    if not isinstance(value, str) or not REFDET_RE.match(value):
        length = len(value) if isinstance(value, str) else 0
        lower = (" and upper case: no lower-case letter (add '| upper' to the rule)"
                 if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9]{6,30}", value)
                 else "")
        return [_problem(invoice, "refdet", f"{value!r} must be 6 to 30 characters of "
                         f"[A-Z0-9] (got {length} characters; no '-', '/', '_' or space"
                         f"{lower}): check the mapping's payfip.refdet rule")]
    return []


def check_url(name: str, value: str, invoice: str | None = None) -> list[Problem]:
    if not isinstance(value, str) or not URL_RE.match(value):
        return [_problem(invoice, name, f"{value!r} must be an absolute http(s) URL")]
    if len(value) > URL_MAX:
        return [_problem(invoice, name, f"is {len(value)} characters long, PayFiP allows "
                         f"{URL_MAX}")]
    return []


@dataclass(frozen=True)
class PaymentRequest:
    """The arguments of ``creerPaiementSecurise``. ``invoice`` is not sent: it names the
    invoice in every error."""

    invoice: str
    numcli: str
    exer: str
    refdet: str
    montant: int  # euro cents
    mel: str
    objet: str
    saisie: str
    urlnotif: str
    urlredirect: str

    def problems(self) -> list[Problem]:
        inv = self.invoice
        out = check_numcli(self.numcli, inv) + check_exer(self.exer, inv)
        out += check_refdet(self.refdet, inv)
        out += check_montant(self.montant, inv, MAX_CENTS_WS)
        out += check_mel(self.mel, inv)
        out += check_objet(self.objet, inv)
        if self.saisie not in SAISIE_WS:
            out.append(_problem(inv, "saisie", f"{self.saisie!r} must be one of "
                                + ", ".join(f"{k} ({v})" for k, v in SAISIE_WS.items())))
        out += check_url("urlnotif", self.urlnotif, inv)
        out += check_url("urlredirect", self.urlredirect, inv)
        return out

    def validated(self) -> PaymentRequest:
        problems = self.problems()
        if problems:
            raise PayfipRequestInvalid(f"invoice {self.invoice}: the PayFiP request is "
                                       "invalid; nothing was sent", problems)
        return self

    def soap_fields(self) -> list[tuple[str, str]]:
        """The ``arg0`` children in the contract's order."""
        return [("exer", self.exer), ("mel", self.mel), ("montant", str(self.montant)),
                ("numcli", self.numcli), ("objet", self.objet), ("refdet", self.refdet),
                ("saisie", self.saisie), ("urlnotif", self.urlnotif),
                ("urlredirect", self.urlredirect)]


def check_montant(value: Any, invoice: str | None, maximum: int) -> list[Problem]:
    if isinstance(value, bool) or not isinstance(value, int):
        return [_problem(invoice, "montant", f"{value!r} must be an integer number of euro "
                         "cents (1000 = 10,00 EUR)")]
    if value < MIN_CENTS:
        return [_problem(invoice, "montant", f"{value} cents is below PayFiP's minimum of "
                         f"{MIN_CENTS} cents (1,00 EUR)")]
    if value > maximum:
        return [_problem(invoice, "montant", f"{value} cents is above PayFiP's maximum of "
                         f"{maximum} cents")]
    return []


# control (C0, C1, DEL), format (bidi marks, zero-width), surrogate, private-use and
# unassigned characters, and the line and paragraph separators
_NOT_IN_MEL = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def check_mel(value: Any, invoice: str | None) -> list[Problem]:
    if not isinstance(value, str) or not value:
        return [_problem(invoice, "mel", "the payer's e-mail address is missing")]
    bad = sorted({c for c in value if unicodedata.category(c) in _NOT_IN_MEL})
    if bad:
        # a control (C0, C1: ESC, CSI…) or format character (a bidi mark, a zero-width
        # space) is in no address PayFiP would mail to, and a terminal or a mail client
        # would act on it
        return [_problem(invoice, "mel", f"{shown_repr(value, 80)} holds control or format "
                         "character(s) " + ", ".join(f"U+{ord(c):04X}" for c in bad)
                         + ": not an e-mail address PayFiP accepts")]
    if not 6 <= len(value) <= 80 or not MEL_RE.match(value):
        return [_problem(invoice, "mel", f"'{value}' is not an e-mail address PayFiP accepts "
                         "(6 to 80 characters, one '@', no space)")]
    return []


def check_objet(value: Any, invoice: str | None) -> list[Problem]:
    if not isinstance(value, str):
        return [_problem(invoice, "objet", f"{value!r} must be text")]
    if not value.strip():
        # what the family is shown it pays: PayFiP gives no rule for an empty one, so
        # none is sent (the safe side)
        return [_problem(invoice, "objet", "is empty: the mapping's payfip.objet must give "
                         "the label the family is shown (1 to 100 characters)")]
    out = []
    if len(value) > OBJET_MAX:
        out.append(_problem(invoice, "objet", f"is {len(value)} characters long, PayFiP "
                            f"allows {OBJET_MAX}"))
    if not OBJET_RE.match(value):
        bad = sorted({c for c in value if not OBJET_RE.match(c)})
        out.append(_problem(invoice, "objet", "only ASCII letters, digits and spaces are safe "
                            f"(found {' '.join(repr(c) for c in bad)}); use the payfip_text "
                            "filter in the mapping's payfip.objet"))
    return out


# What recupererDetailPaiementSecurise answers, field by field: the format each value
# must have (docs/payfip.md, "What comes back from PayFiP"). A value out of its format
# refuses the whole answer (nothing is recorded: the operation stays open, and
# reconcile asks again); ``required`` ones must be there.
NUMAUTO_MAX = 64  # the state store's column
ANSWER_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "idOp": (IDOP_RE, "an operation identifier (letters, digits and '-', the first a "
             "letter or a digit, at most 64)"),
    "resultrans": (re.compile(r"^[A-Z]\Z"), "one capital letter (P, V, R, Z or A)"),
    "montant": (re.compile(r"^[0-9]{1,10}\Z"), "an integer number of cents"),
    "refdet": (REFDET_ANY_CASE_RE, "6 to 30 characters of [A-Za-z0-9]"),
    "numcli": (NUMCLI_RE, "6 digits"),
    "saisie": (re.compile(r"^[A-Z]\Z"), "one capital letter (T, X or W)"),
    # the echoed exer is known to come back cut ('20' for 2019): digits, not a year
    "exer": (re.compile(r"^[0-9]{1,4}\Z"), "up to 4 digits"),
    "dattrans": (re.compile(r"^[0-9]{8}\Z"), "a date DDMMYYYY"),
    "heurtrans": (re.compile(r"^[0-9]{4}\Z"), "a time HHMM"),
    "mel": (re.compile(r"^(?=.{6,80}\Z)[^@\s]+@[^@\s]+\Z"),
            "an e-mail address (one '@', no space, 6 to 80 characters)"),
    "objet": (re.compile(r"^[A-Za-z0-9 ]{1,100}\Z"),
              "at most 100 ASCII letters, digits and spaces"),
}
ANSWER_REQUIRED = ("resultrans", "montant", "refdet", "numcli")


def answer_problems(values: dict[str, str]) -> list[str]:
    """What is wrong with a recupererDetailPaiementSecurise answer's fields (``values``
    named as the contract names them), one line each, the value escaped and cut; empty
    when every field has its documented format. numauto, whose format PayFiP does not
    document (``A55A``, ``112233445566-tip``), is kept as received when it is printable
    text of at most 64 characters (a payment is not refused over the form of its
    authorisation number), and the CSV files that carry it never let it start a cell a
    spreadsheet would run (``pesgen._csv.text_cell``)."""
    out = [f"{name} is missing" for name in ANSWER_REQUIRED if not values.get(name)]
    for name, value in values.items():
        if name == "numauto":
            if value and not (len(value) <= NUMAUTO_MAX and value.isprintable()):
                out.append(f"numauto {shown_repr(value, NUMAUTO_MAX)} is not printable text "
                           f"of at most {NUMAUTO_MAX} characters")
            continue
        rule = ANSWER_RULES.get(name)
        if rule is None or not value:
            continue  # a field pesgen does not read; an empty one (checked if required)
        pattern, said = rule
        if not (pattern.match(value) and value.isprintable()):
            out.append(f"{name} {shown_repr(value, NUMAUTO_MAX)} is not {said}")
        elif name in ("dattrans", "heurtrans") and not _real_time(name, value):
            out.append(f"{name} {value!r} is not {said}")
    return out


def _real_time(name: str, value: str) -> bool:
    try:
        datetime.strptime(value, "%d%m%Y" if name == "dattrans" else "%H%M")
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PaymentDetail:
    """The trusted result of one operation (``recupererDetailPaiementSecurise``)."""

    idOp: str = ""  # noqa: N815 - the contract's spelling
    resultrans: str = ""
    montant: str = ""
    refdet: str = ""
    numcli: str = ""
    mel: str = ""
    objet: str = ""
    saisie: str = ""
    exer: str = ""
    dattrans: str = ""  # DDMMYYYY, Europe/Paris
    heurtrans: str = ""  # HHMM, Europe/Paris
    numauto: str = ""

    @classmethod
    def from_fields(cls, values: dict[str, str]) -> PaymentDetail:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def status(self) -> str:
        return RESULTS.get(self.resultrans, ("unknown", None))[0]

    @property
    def method(self) -> str | None:
        return RESULTS.get(self.resultrans, ("unknown", None))[1]

    @property
    def transaction_time(self) -> str | None:
        """dattrans + heurtrans as an ISO local time with the Paris offset, or None."""
        if not (re.match(r"^\d{8}$", self.dattrans) and re.match(r"^\d{4}$", self.heurtrans)):
            return None
        try:
            naive = datetime.strptime(self.dattrans + self.heurtrans, "%d%m%Y%H%M")
        except ValueError:
            return None
        try:
            from zoneinfo import ZoneInfo

            return naive.replace(tzinfo=ZoneInfo("Europe/Paris")).isoformat()
        except Exception:  # no tz database: keep the local time, unqualified
            return naive.isoformat()


@dataclass(frozen=True)
class ClientDetail:
    """``recupererDetailClient``: the labels PayFiP holds for a client number."""

    numcli: str = ""
    libelleN1: str = ""  # noqa: N815
    libelleN2: str = ""  # noqa: N815
    libelleN3: str = ""  # noqa: N815
