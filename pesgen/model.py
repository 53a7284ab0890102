"""The canonical model every template sees: frozen dataclasses, Decimal amounts, dates.

Names follow the business (title, debtor, mandate), with the PES element each field
feeds noted beside it. Templates never see raw input, only these objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Collectivity:
    name: str
    siret: str  # IdColl
    id_post: str  # IdPost
    cod_col: str  # CodCol
    cod_bud: str  # CodBud
    exercise: int  # Exer
    budget_label: str | None = None  # LibelleColBud
    poste_label: str | None = None  # LibellePoste
    sepa_creditor_id: str | None = None
    payfip_client: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    street: str  # Adr2
    postal_code: str  # CP (99999 abroad)
    city: str  # Ville
    complement: str | None = None  # Adr1
    locality: str | None = None  # Adr3
    country: str = "FR"  # ISO alpha-2 as exported
    resident: bool = True  # CodRes 0 when True
    country_code: str | None = None  # CodPays (INSEE), only for non-residents


@dataclass(frozen=True, slots=True)
class BankAccount:
    iban: str
    holder: str  # TitCpte
    bic: str | None = None


@dataclass(frozen=True, slots=True)
class Mandate:
    """SEPA direct debit of one title (InfoPrelevementSEPA, NatPrel 01)."""

    rum: str  # RefUniMdt
    signed_on: date  # DateSignMandat
    sequence: str  # SequencePres code 01..04
    debit_date: date  # DtePrel
    account: BankAccount
    label: str | None = None  # LibPrel
    periodicity: str = "07"  # PerPrel: 07 = unique
    holder_differs: bool = False  # TitCpteDiff 1: the account holder is not the debtor


@dataclass(frozen=True, slots=True)
class Debtor:
    category: str  # CatTiers
    legal_nature: str  # NatJur
    name: str  # Nom
    address: Address
    kind: str = ""  # the payer kind as exported (person, organization...)
    ref: str | None = None  # RefTiers
    civility: str | None = None  # Civilite
    first_name: str | None = None  # Prenom
    complement_name: str | None = None  # ComplNom
    national_id: str | None = None  # IdTiers (SIRET or SIREN)
    national_id_kind: str | None = None  # NatIdTiers (01 = SIRET, 02 = SIREN)
    birth_date: date | None = None  # DteNaissance
    email: str | None = None

    @property
    def is_person(self) -> bool:
        return self.category == "01"


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # IdLigne (sous-article)
    product_code: str  # CodProdLoc
    nature: str  # Nature
    amount: Decimal  # MtHT (TTC when no VAT)
    activity: str  # the school's activity code
    label: str | None = None  # ObjLignePce
    fonction: str | None = None  # Fonction
    operation: str | None = None  # Operation
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    student: str | None = None
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Title:
    """One invoice turned into one title (ORMC article): single debtor."""

    invoice_number: str
    debt_number: str | None  # NumDette (ORMC only)
    debtor: Debtor
    lines: tuple[Line, ...]
    total: Decimal
    origin: str
    invoice_date: date | None = None
    due_date: date | None = None
    service_from: date | None = None  # period billed
    service_to: date | None = None
    object: str | None = None  # ObjPce
    asap_date: date | None = None  # piece-level DteAsp
    mandate: Mandate | None = None
    joint_debtor: Debtor | None = None  # tiers solidaire (formats that carry one)
    period: str = "1"  # Per
    # Set when the title is numbered into its bordereau (IdBord itself is allocated
    # at commit time and appears only in the bordereau header):
    number: int = 0  # IdPce (article number)
    cle1: str | None = None
    cle2: str | None = None


@dataclass(frozen=True, slots=True)
class Bordereau:
    """A rôle: its header values. Its titles are streamed, not held here."""

    exercise: int
    number: int  # IdBord (numéro de rôle)
    issue_date: date  # DteBordEm
    count: int  # NbrPce
    total: Decimal  # MtBordHt
    asap_date: date | None = None  # DteAsp
    object: str | None = None  # Objet
    lines: int = 0  # lines of its titles (LigneDePiece): for a flat file's trailer count


@dataclass(frozen=True, slots=True)
class Emitter:
    sigle: str
    adresse: str


class Options(dict[str, object]):
    """``doc.options``: the format's parameters (format.yaml's ``defaults.options``, the
    mapping's ``output.options``) and pesgen's own (``edition``, ``encoding``,
    ``tiers_on``). A plain dict, but a template reading a name it lacks is told the
    names it has (``pesgen._jinja``)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Document:
    """What one output file's header and footer are rendered from."""

    collectivity: Collectivity
    emitter: Emitter
    file_name: str  # NomFic
    structure_date: date  # DteStr
    bordereau: Bordereau
    options: dict[str, object] = field(default_factory=Options)

    def __post_init__(self) -> None:
        if type(self.options) is not Options:
            object.__setattr__(self, "options", Options(self.options))


# evolve copies every title exported when it is numbered, so it is shaped for speed.
# Per class, made once: a function that reads all the fields into a list in one
# compiled expression (each read the interpreter's own slot access: a title's 19 in
# 0.13 µs, where an operator.attrgetter and a list take 0.34 and made numbering 9 %
# slower than the Title-only copy it replaces), the fields' positions, and the class's
# maker. A copy is then that list with the changes written over it, made by the maker
# (each slot set once, no frozen __init__).
_Evolver = tuple[Callable[[Any], list[Any]], dict[str, int], Callable[..., Any] | None]
_evolvers: dict[type, _Evolver] = {}


def _evolver(cls: Any) -> _Evolver:
    names = [f.name for f in fields(cls)]
    namespace: dict[str, Any] = {}
    reads = "".join(f"obj.{name}, " for name in names)
    exec(f"def fields_of_{cls.__name__}(obj):\n    return [{reads}]\n",  # noqa: S102
         namespace)  # field names are identifiers (dataclasses checks them)
    make = maker(cls)
    if make is cls:  # its __init__ does more than set the fields: replace runs it
        make = None
    return (namespace[f"fields_of_{cls.__name__}"],
            {name: index for index, name in enumerate(names)}, make)


def evolve(obj: Any, /, **changes: Any) -> Any:
    """``dataclasses.replace(obj, **changes)`` for the model's frozen, slotted classes,
    without running ``__init__`` again where it only sets the fields (model.maker).
    Unknown names are refused, all of them named."""
    try:
        read, index, make = _evolvers[type(obj)]
    except KeyError:
        read, index, make = _evolvers[type(obj)] = _evolver(type(obj))
    values = read(obj)
    try:
        for name, value in changes.items():
            values[index[name]] = value
    except KeyError:
        unknown = sorted(set(changes).difference(index))
        raise TypeError(f"{type(obj).__name__} has no field(s) {', '.join(unknown)}") from None
    if make is None:
        return replace(obj, **changes)
    return make(*values)


def maker(cls: Any) -> Any:
    """A function that makes an instance of one of the model's frozen, slotted classes
    from its fields, by name or in order, as ``cls(...)`` does, without running its
    ``__init__``: each slot is set through its descriptor once (half the cost of the
    frozen ``__init__``'s ``object.__setattr__`` calls; the mapping stage makes a few
    per invoice). The same defaults; a class with a ``__post_init__`` or a default
    factory is returned as it is (its ``__init__`` does more than set the fields)."""
    if hasattr(cls, "__post_init__") or any(f.default_factory is not MISSING
                                             for f in fields(cls)):
        return cls
    names = [f.name for f in fields(cls)]
    if tuple(names) != tuple(cls.__slots__) or not all(f.init for f in fields(cls)):
        return cls
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    params = []
    for f in fields(cls):
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = "".join(f"    _set_{name}(obj, {name})\n" for name in names)
    source = (f"def make_{cls.__name__}({', '.join(params)}):\n    obj = _new(_cls)\n"
              f"{body}    return obj\n")
    exec(source, namespace)  # noqa: S102 - what dataclasses does for __init__
    made = namespace[f"make_{cls.__name__}"]
    made.__doc__ = f"{cls.__name__}(...) without its __init__ (model.maker)"
    return made


# What a template reads, field by field: docs/template-model.md is generated from this
# (python -m pesgen._docgen, whose --check refuses a public field without a line here,
# or a line for a field the class lacks). (class, where a template finds it, {field:
# one line}), in the order the page shows them.
TEMPLATE_MODEL: tuple[tuple[type, str, dict[str, str]], ...] = (
    (Document, "doc", {
        "collectivity": "the collectivity (Collectivity), from the mapping's collectivity block",
        "emitter": "who made the file (Emitter), from the mapping's output.emitter",
        "file_name": "the name of the file being written (NomFic), from format.yaml files[].name",
        "structure_date": "the run date (DteStr)",
        "bordereau": "the bordereau of the file (Bordereau); in head and tail its final figures",
        "options": "the format's parameters (format.yaml defaults.options, the mapping's "
                   "output.options) and pesgen's own: edition (the ASAP Edition code, "
                   "output.asap_edition, or nothing), encoding (of the file), tiers_on",
    }),
    (Collectivity, "doc.collectivity", {
        "name": "collectivity.name, as the mapping writes it",
        "siret": "SIRET of the collectivity (IdColl)",
        "id_post": "DGFiP accounting post (IdPost)",
        "cod_col": "collectivity code (CodCol)",
        "cod_bud": "budget code (CodBud)",
        "exercise": "budget year (Exer), an integer",
        "budget_label": "label of the budget (LibelleColBud), or nothing",
        "poste_label": "label of the accounting post (LibellePoste), or nothing",
        "sepa_creditor_id": "SEPA creditor identifier (ICS), or nothing",
        "payfip_client": "PayFiP client number, or nothing",
    }),
    (Emitter, "doc.emitter", {
        "sigle": "the emitting software's acronym (output.emitter.sigle, default PESGEN)",
        "adresse": "the emitting software's address (output.emitter.adresse, default "
                   "'pesgen <version>')",
    }),
    (Bordereau, "doc.bordereau", {
        "exercise": "budget year (Exer)",
        "number": "bordereau number (IdBord), allocated by the state store",
        "issue_date": "issue date, the run date (DteBordEm)",
        "count": "how many titles the file holds (NbrPce)",
        "total": "sum of the titles' totals (MtBordHt), a Decimal",
        "asap_date": "ASAP date: the run date plus output.asap_delay_days (DteAsp)",
        "object": "object of the bordereau (output.bordereau_object), or nothing",
        "lines": "how many lines its titles have (for a flat file's trailer)",
    }),
    (Title, "t", {
        "invoice_number": "the invoice number, as exported",
        "debt_number": "NumDette (ORMC formats), or nothing",
        "debtor": "the debtor (Debtor)",
        "lines": "the title's lines (Line), in order, all with an amount > 0",
        "total": "the title's total (MtHT summed), a Decimal",
        "origin": "the input record it was made from (file:$.invoices[3], file:12)",
        "invoice_date": "invoice date, or nothing",
        "due_date": "due date, or nothing",
        "service_from": "first day of the period billed, or nothing",
        "service_to": "last day of the period billed, or nothing",
        "object": "object of the title (ObjPce), or nothing",
        "asap_date": "piece-level ASAP date (DteAsp), or nothing",
        "mandate": "the SEPA direct debit (Mandate), or nothing",
        "joint_debtor": "the joint debtor (tiers solidaire, a Debtor), or nothing",
        "period": "Per of the payment reference (payment_reference.period, default '1')",
        "number": "the title's number in its bordereau (IdPce), from 1",
        "cle1": "payment reference key 1 (Cle1, ORMC), or nothing",
        "cle2": "payment reference key 2 (Cle2, ORMC), or nothing",
    }),
    (Debtor, "t.debtor, t.joint_debtor", {
        "category": "CatTiers code (codes.payer_kinds), e.g. 01 for a person",
        "legal_nature": "NatJur code (codes.payer_kinds)",
        "name": "name (Nom), normalised by the text policies; its end in complement_name "
                "when name_overflow split it",
        "address": "the address (Address)",
        "kind": "the payer kind as exported (person, organization…)",
        "ref": "the debtor's reference in the school software (RefTiers), or nothing",
        "civility": "civility (Civilite): the value codes.civility gives, as written, "
                    "or the one exported (policies.default_civility when none), one of "
                    "format.yaml fields.debtor.civility.values when the format lists "
                    "them; or nothing",
        "first_name": "first name (Prenom), or nothing",
        "complement_name": "name complement (ComplNom), or nothing",
        "national_id": "SIRET or SIREN of an organisation (IdTiers), or nothing",
        "national_id_kind": "kind of national_id (NatIdTiers: 01 = SIRET, 02 = SIREN), or nothing",
        "birth_date": "birth date of a person (DteNaissance), or nothing",
        "email": "e-mail address as exported, or nothing",
        "is_person": "whether category is 01 (a person)",
    }),
    (Address, "t.debtor.address", {
        "street": "street line (Adr2); after a street_overflow split, its second half",
        "postal_code": "postal code (CP); 99999 for an address abroad",
        "city": "city (Ville); abroad, the foreign postal code first",
        "complement": "complement (Adr1), or the first half of a split street, or nothing; "
                      "it reads before the street line (address lines in reading order: "
                      "complement, street, locality)",
        "locality": "locality, lieu-dit (Adr3), or nothing",
        "country": "country, ISO alpha-2 as exported (FR when not bound)",
        "resident": "true for an address in France (CodRes 0), false abroad (CodRes 1)",
        "country_code": "INSEE country code abroad (CodPays, codes.countries), or nothing",
    }),
    (Mandate, "t.mandate", {
        "rum": "unique mandate reference (RefUniMdt)",
        "signed_on": "date the mandate was signed (DateSignMandat)",
        "sequence": "SEPA sequence code 01-04 (SequencePres, codes.sepa_sequences)",
        "debit_date": "debit date (DtePrel)",
        "account": "the debited account (BankAccount)",
        "label": "label of the debit (LibPrel), or nothing",
        "periodicity": "periodicity code (PerPrel): 07, one debit",
        "holder_differs": "true when the account holder is not the debtor (TitCpteDiff 1)",
    }),
    (BankAccount, "t.mandate.account", {
        "iban": "IBAN, compact (IBAN)",
        "holder": "account holder (TitCpte); the debtor's name when the export has none",
        "bic": "BIC (BIC), or nothing",
    }),
    (Line, "t.lines[i]", {
        "number": "the line's number in its title (IdLigne), from 1",
        "product_code": "product code (CodProdLoc, codes.activities)",
        "nature": "budget nature (Nature, codes.activities)",
        "amount": "amount (MtHT), a Decimal > 0; use the amount filter to write it",
        "activity": "the school's activity code, as exported",
        "label": "line label (ObjLignePce), or nothing",
        "fonction": "fonction (Fonction, codes.activities), or nothing",
        "operation": "operation code (Operation, codes.activities), or nothing",
        "quantity": "quantity, a Decimal, or nothing",
        "unit_price": "unit price, a Decimal, or nothing",
        "student": "the student's reference or name, as the text policies make it (a free "
                   "text, as a label), or nothing",
        "origin": "the input record of the line",
    }),
)


def public_names(cls: type) -> list[str]:
    """A model class's fields and properties a template reads, in declaration order."""
    names = [f.name for f in fields(cls)]
    names += sorted(name for name, value in vars(cls).items()
                    if isinstance(value, property) and not name.startswith("_"))
    return names
