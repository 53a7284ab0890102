"""The canonical model every template sees: frozen dataclasses, Decimal amounts, dates.

Names follow the business (title, debtor, mandate), with the PES element each field
feeds noted beside it. Templates never see raw input, only these objects.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
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
    national_id: str | None = None  # IdTiers (SIRET)
    national_id_kind: str | None = None  # NatIdTiers (01 = SIRET)
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


_set = object.__setattr__


def evolve(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for the model's frozen, slotted classes, without running
    ``__init__`` again (the hot path of numbering titles). Unknown names are refused."""
    cls = type(obj)
    slots = cls.__slots__
    unknown = set(changes).difference(slots)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    new = object.__new__(cls)
    for name in slots:
        _set(new, name, changes[name] if name in changes else getattr(obj, name))
    return new


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
