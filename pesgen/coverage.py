"""Field coverage: the values a mapping binds, or its split policies fill, that no
template of its format writes.

A template that never reads ``t.debtor.email`` drops the e-mail the mapping binds, and
nothing else would say so: the file is valid, and a bundle's expected files, rewritten
by its author, freeze the loss in. ``check-mapping`` (and ``check-format``, with the
fixture's mapping) render the templates on sample titles, recording the model fields
they read (``sample.check_templates``); ``check`` compares them with this table:

* a bound field no template reads is a **warning** naming the mapping file:line:key
  and the format: a format may not carry a field (no e-mail in a finance package's
  file). Its ``format.yaml`` says so with a reason (``not_carried: {payer.email: …}``),
  which silences the warning;
* a field a policy fills while no template reads it is a **refusal** (rule
  ``mapping.policy-lost``): ``street_overflow: split`` puts the start of an over-long
  street into ``address.complement``, ``name_overflow: split`` the end of an over-long
  name into ``payer.complement_name``; a format that writes the street (or the name)
  but not the complement would lose that part of every such address, each time the
  policy applies. ``not_carried`` does not silence it: the mapping's policy (``refuse``
  then refuses such a street, naming it) or the template must change. ``export`` (and
  its dry run) and ``preview`` refuse it too (``Exporter.check_fields``).

Fields are named as the mapping binds them (``payer.email``, ``joint_payer.street``),
plus ``lines`` and ``output.bordereau_object``; ``format.schema.json`` lists the same
names for ``not_carried``. The invoice number and NumDette are not checked: pesgen keeps
them itself, whatever the files hold (``KEPT_BY_PESGEN``).

``export`` (its dry run too) and ``preview`` say each warning in the run summary, as a
note (``Exporter.check_fields``), with how many of the run's titles hold a value for the
field (``held_by``): a technician who never ran check-mapping learns what was dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ._schema import load_schema
from .errors import Problem
from .formats import Format
from .mapping import MAPPING_SCHEMA, Binding, Mapping
from .parse import parse_bool

# {binding of a debtor: the fields of t.debtor (or t.joint_debtor) that carry it, any of
# them}: the payer kind is carried by the codes it translates into
_DEBTOR = {
    "ref": ("ref",), "kind": ("category", "legal_nature", "kind", "is_person"),
    "civility": ("civility",), "name": ("name",), "first_name": ("first_name",),
    "complement_name": ("complement_name",), "national_id": ("national_id",),
    "birth_date": ("birth_date",), "email": ("email",),
}
_ADDRESS = {
    "street": ("street",), "complement": ("complement",), "locality": ("locality",),
    "postal_code": ("postal_code",), "city": ("city",),
    # the country as exported, or the INSEE code abroad (CodPays)
    "country": ("country", "country_code"),
}
# the bindings of joint_payer (mapping.schema.json): its debtor's, then its address's
_JOINT = ("kind", "civility", "name", "first_name", "complement_name", "ref", "birth_date")

# Bound fields pesgen keeps itself, whatever the templates write: not checked
KEPT_BY_PESGEN = {
    "invoice.number": "the state store records every title by it (an invoice is never "
                      "exported twice; runs find), and the payment references file",
    "invoice.debt_number": "the state store records it with the title (runs find, "
                           "PayFiP), and the payment references file",
}

# {field: the model fields, as a template reads them, any one of which carries it}
CARRIED_BY: dict[str, tuple[str, ...]] = {
    "invoice.date": ("t.invoice_date",),
    "invoice.due_date": ("t.due_date",),
    # a declared total is checked against the lines: their amounts carry it as well
    "invoice.total": ("t.total", "t.lines[i].amount"),
    "invoice.object": ("t.object",),
    "invoice.service_from": ("t.service_from",),
    "invoice.service_to": ("t.service_to",),
    "invoice.asap_date": ("t.asap_date",),
    **{f"payer.{k}": tuple(f"t.debtor.{x}" for x in v) for k, v in _DEBTOR.items()},
    **{f"address.{k}": tuple(f"t.debtor.address.{x}" for x in v) for k, v in _ADDRESS.items()},
    **{f"joint_payer.{k}": tuple(f"t.joint_debtor.{x}" for x in _DEBTOR[k]) for k in _JOINT},
    **{f"joint_payer.{k}": tuple(f"t.joint_debtor.address.{x}" for x in v)
       for k, v in _ADDRESS.items()},
    # whether the title is a direct debit: the mandate
    "payment.direct_debit": ("t.mandate",),
    "payment.debit_date": ("t.mandate.debit_date",),
    "payment.rum": ("t.mandate.rum",),
    "payment.mandate_signed_on": ("t.mandate.signed_on",),
    "payment.iban": ("t.mandate.account.iban",),
    "payment.bic": ("t.mandate.account.bic",),
    "payment.holder": ("t.mandate.account.holder",),
    "payment.sequence": ("t.mandate.sequence",),
    "payment.label": ("t.mandate.label",),
    "lines": ("t.lines",),
    # the activity code, or the imputation codes.activities translates it into
    "line.activity": tuple(f"t.lines[i].{x}" for x in (
        "activity", "product_code", "nature", "fonction", "operation")),
    "line.label": ("t.lines[i].label",),
    "line.amount": ("t.lines[i].amount",),
    "line.quantity": ("t.lines[i].quantity",),
    "line.unit_price": ("t.lines[i].unit_price",),
    "line.student": ("t.lines[i].student",),
    "output.bordereau_object": ("doc.bordereau.object",),
}

# What each split policy fills: (policy, the format's field whose limit makes it split,
# [(the field it splits, the field it fills)] for the debtor and the joint debtor, what
# the filled part is)
SPLITS = (
    ("street_overflow", "address.street",
     (("address.street", "address.complement"), ("joint_payer.street", "joint_payer.complement")),
     "the first part of a street longer than {limit} characters"),
    ("name_overflow", "debtor.name",
     (("payer.name", "payer.complement_name"), ("joint_payer.name", "joint_payer.complement_name")),
     "the end of a name longer than {limit} characters"),
)


# {text field, as format.yaml fields names its limit: the binding that fills it}; a joint
# debtor's text fields go by their binding (joint_payer.name), as the builder names them
_TEXTS = {
    "title.object": "invoice.object",
    **{f"debtor.{k}": f"payer.{k}" for k in ("name", "first_name", "complement_name",
                                             "civility", "ref")},
    **{f"address.{k}": f"address.{k}" for k in ("street", "complement", "locality", "city")},
    "line.label": "line.label",
    "mandate.rum": "payment.rum", "mandate.label": "payment.label",
    "account.holder": "payment.holder",
    **{f"joint_payer.{k}": f"joint_payer.{k}" for k in (
        "name", "first_name", "complement_name", "civility", "ref", "street", "complement",
        "locality", "city")},
}


def unwritten_texts(fmt: Format, reads: frozenset[str] | None) -> frozenset[str]:
    """The text fields (``_TEXTS``' keys) no file of ``fmt`` holds: declared in its
    format.yaml ``not_carried`` and read by no template on the sample titles (``reads``).
    The builder keeps their values as exported, neither checked against the format's
    charset and limits nor changed by the text policies, and the rules do not check
    them (pes.text-length): a value the file never holds. A field a template reads stays
    checked, declared or not (check-mapping warns of the declaration, format.not-carried),
    as does every field when the reads are not known (None: the templates failed on the
    sample titles)."""
    if reads is None:
        return frozenset()
    return frozenset(key for key, name in _TEXTS.items()
                     if name in fmt.not_carried and not carried(name, reads))


@dataclass
class Coverage:
    """What ``check`` found: warnings to print, and the problems that refuse."""

    warnings: list[Problem] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)
    # the bound fields no template reads that the format declares not carried
    declared: list[str] = field(default_factory=list)
    # the bound fields no template reads, with their warning (mapping.unwritten)
    unwritten: list[tuple[str, Problem]] = field(default_factory=list)
    # the WRITTEN_ONLY bindings left out that no template reads: nothing to write
    unbound: list[str] = field(default_factory=list)


def bound(mapping: Mapping) -> dict[str, Binding]:
    """{field, named as ``CARRIED_BY`` names it: its binding} for every field the
    mapping binds."""
    found: dict[str, Binding] = {}
    for group, bindings in mapping.bindings.items():
        for name, binding in bindings.items():
            found[f"{group}.{name}"] = binding
    found["lines"] = mapping.lines
    if mapping.output.bordereau_object is not None:
        found["output.bordereau_object"] = mapping.output.bordereau_object
    return found


def carried(name: str, reads: Iterable[str]) -> bool:
    """Whether a template read one of the model fields that carry ``name``."""
    return not set(CARRIED_BY[name]).isdisjoint(reads)


def held_by(name: str) -> Callable[[Any], bool] | None:
    """Whether a title (``pesgen.model.Title``) holds a value for the bound field
    ``name``: one in the first model field that carries it (``CARRIED_BY``; a line's: in
    any of its lines), not None nor empty. None for a field of the run, not of a title
    (``output.bordereau_object``)."""
    path = CARRIED_BY[name][0]
    if not path.startswith("t."):
        return None
    parts = tuple(path[2:].split("."))

    def holds(obj: Any, parts: tuple[str, ...]) -> bool:
        for i, part in enumerate(parts):
            if part == "lines[i]":
                return any(holds(line, parts[i + 1:]) for line in obj.lines)
            obj = getattr(obj, part)
            if obj is None:
                return False
        return not (isinstance(obj, (str, tuple)) and not obj)

    return lambda title: holds(title, parts)


# bound fields pesgen reads beside the templates: `payfip link` takes the payer's e-mail
# (PayFiP's mel) from the run's recorded input
PAYFIP_READS = frozenset({"payer.email"})

# {optional bound field: what pesgen's rules take from it, whatever the templates write}:
# unbound, a format writing no civility still has every person refused (pes.civility,
# unless policies.missing_civility), one writing no country every address taken as French
_CIVILITY = ("a person without civility is refused (rule pes.civility, unless "
             "policies.missing_civility: default)")
_COUNTRY = ("it tells an address abroad (policies.foreign_address; unbound, every address "
            "is taken as French and its postal code held to 5 digits)")
RULES_READ = {"payer.civility": _CIVILITY, "joint_payer.civility": _CIVILITY,
              "address.country": _COUNTRY, "joint_payer.country": _COUNTRY}


# Bindings a mapping must give its address sections (bindings.address, joint_payer) unless
# no template of its format writes them: pesgen reads them only to write them (no rule
# of its reads a street or a city; the postal code it holds to 5 digits in France, the
# payer's kind decides the civility and first name rules, the joint debtor's name
# whether an invoice has one: those the schema requires). Unbound, the value is empty
# (a package taking the debtor's address from its own tiers file writes none)
WRITTEN_ONLY = ("address.street", "address.city", "joint_payer.street", "joint_payer.city")


def unbound_written_only(mapping: Mapping) -> list[str]:
    """The ``WRITTEN_ONLY`` bindings ``mapping`` leaves out: the joint debtor's only
    when it has a joint_payer section."""
    fields = bound(mapping)
    return [name for name in WRITTEN_ONLY if name not in fields and
            name.split(".")[0] in mapping.bindings]


def unbound_problem(mapping: Mapping, fmt: Format, name: str,
                    reads: frozenset[str] | None) -> Problem:
    """The refusal of a ``WRITTEN_ONLY`` binding left out that a template of ``fmt``
    reads (``reads`` None: not known, the templates failed on the sample titles)."""
    section, key = name.split(".")
    why = (f"a template of format {fmt.name} reads "
           f"{' or '.join(x for x in CARRIED_BY[name] if x in reads)}" if reads is not None
           else f"the templates of format {fmt.name} failed on the sample titles, so "
           "whether one writes it is not known")
    return Problem("mapping.unbound", f"bindings.{section} does not bind {key}, and {why}: "
                   f"bind it (a mapping may leave it out only for a format that writes "
                   "it in none of its files)", mapping=mapping.where("bindings", section))


@lru_cache(maxsize=1)
def _required() -> frozenset[str]:
    """The bindings a mapping's schema requires (payer.kind, address.postal_code...), as
    ``bound`` names them; not those of a section a mapping may leave out whole
    (joint_payer)."""
    bindings = load_schema(MAPPING_SCHEMA)["properties"]["bindings"]
    return frozenset(f"{section}.{name}" for section in bindings.get("required", ())
                     for name in bindings["properties"][section].get("required", ()))


def _payfip_used(mapping: Mapping) -> bool:
    """Whether the mapping sets up PayFiP: a payfip section, or the collectivity's PayFiP
    client number (the section's numcli by default)."""
    return bool(mapping.data.get("payfip") or mapping.collectivity.payfip_client)


def no_direct_debit(mapping: Mapping, binding: Binding) -> bool:
    """Whether ``binding`` (payment.direct_debit) makes no title a direct debit: a
    constant ``{const: "no"}``, or a method ``codes.payment_methods`` says false, as the
    note unread_debit advises for a collectivity not collecting by direct debit; or any
    binding translated by a ``codes.payment_methods`` saying false of every method (a
    method it lacks is refused by invoice, codes.payment-method: walk67's mapping
    listing its methods, none a direct debit). It carries no value to a file: a format
    writing no mandate loses nothing by it."""
    methods = mapping.codes.payment_methods
    if binding.kind != "const":
        return methods is not None and bool(methods) and not any(
            value is True for value in methods.values())
    value = binding.evaluate({}, {})
    if methods is not None:
        return isinstance(value, str) and methods.get(value) is False
    try:
        return not parse_bool(value)
    except (ValueError, TypeError):
        return False


def empty_defaults(mapping: Mapping, fmt: Format, reads: frozenset[str]) -> list[Problem]:
    """What the templates of ``fmt`` write empty unless the mapping says otherwise,
    said from the bundle's data, never a format's name: each option (format.yaml
    ``defaults.options``) whose default is empty that the mapping's ``output.options``
    leaves out (its format.yaml line and that line's comment quoted: what empty means
    there), and the collectivity's SEPA creditor identifier, which a template reads,
    left unset by a mapping binding direct debits (rule format.empty-default)."""
    from ._yaml import line_of

    found = []
    source = fmt.folder / "format.yaml"
    options = fmt.defaults.get("options") or {}
    given = mapping.output.options or {}
    if options and "doc.options" in reads:
        try:
            text = source.read_text(encoding="utf-8").splitlines()
        except OSError:
            text = []
        for key, value in options.items():
            if value != "" or key in given:
                continue
            line = line_of(options, [key])
            said = text[line - 1].partition(" #")[2].strip() if 0 < line <= len(text) else ""
            found.append(Problem(
                "format.empty-default", f"output.options.{key} is not set: format "
                f"{fmt.name}'s default is empty" + (f" (its format.yaml says: {said})"
                                                    if said else "")
                + f"; set output.options.{key} in the mapping if the import needs a value",
                mapping=f"{source}:{line}: defaults.options.{key}", source="format"))
    debit = mapping.bindings.get("payment", {}).get("direct_debit")
    if "doc.collectivity.sepa_creditor_id" in reads and \
            mapping.collectivity.sepa_creditor_id is None and debit is not None and \
            not no_direct_debit(mapping, debit):
        found.append(Problem(
            "format.empty-default", f"collectivity.sepa_creditor_id is not set: a template "
            f"of format {fmt.name} writes it for each direct debit, which is written empty; "
            "set it to the collectivity's ICS (docs/mapping-reference.md)",
            mapping=f"{mapping.path}: collectivity", source="mapping"))
    return found


def check(mapping: Mapping, fmt: Format, reads: frozenset[str]) -> Coverage:
    """Compare what ``mapping`` binds and its split policies fill with the model fields
    the templates of ``fmt`` read on the sample titles (``reads``)."""
    result = Coverage()
    fields = bound(mapping)
    for name in unbound_written_only(mapping):
        if carried(name, reads):
            result.refused.append(unbound_problem(mapping, fmt, name, reads))
        else:
            result.unbound.append(name)
    for name, binding in fields.items():
        if name not in CARRIED_BY or carried(name, reads):
            continue
        if name == "payment.direct_debit" and no_direct_debit(mapping, binding):
            continue
        if name in fmt.not_carried:
            result.declared.append(name)
            continue
        shown = " or ".join(CARRIED_BY[name])
        key = binding.where.rsplit(": ", 1)[-1]
        declare = f"declare it in {fmt.folder / 'format.yaml'} (not_carried: {{{name}: why}})"
        if name in PAYFIP_READS and _payfip_used(mapping):
            # unbinding it would leave `payfip link` without the payer's address
            advice = (f"pesgen payfip link reads it from the run's recorded input (the "
                      f"mapping sets up PayFiP): keep it bound. If the format has no place "
                      f"for it, {declare}")
        elif name in RULES_READ:
            advice = (f"pesgen's rules read it beside the templates ({RULES_READ[name]}): "
                      f"keep it bound. If the format has no place for it, {declare}")
        elif name in _required():
            # the mapping's schema refuses it unbound: pesgen reads it beside the
            # templates (a debtor's category for the DGFiP rules, an address)
            advice = (f"A mapping must bind it (its schema requires it): if the format has "
                      f"no place for it, {declare}")
        else:
            advice = f"If the format has no place for it, unbind it, or {declare}"
        warning = Problem(
            "mapping.unwritten", f"{key} is bound, but no template of format {fmt.name} "
            f"reads {shown}: the value is in none of its files. {advice}; else write it in "
            "a template", mapping=binding.where)
        result.warnings.append(warning)
        result.unwritten.append((name, warning))
    result.warnings.extend(empty_defaults(mapping, fmt, reads))
    for name, (_, where) in fmt.not_carried.items():
        if carried(name, reads):
            read = " and ".join(x for x in CARRIED_BY[name] if x in reads)
            result.warnings.append(Problem(
                "format.not-carried", f"{name} is declared not carried, but a template of "
                f"format {fmt.name} reads {read}: remove it from not_carried",
                mapping=where))
    for policy, limited, splits, part in SPLITS:
        limit = fmt.limit(limited).max
        if getattr(mapping.policies, policy) != "split" or limit is None:
            continue  # refuse: an over-long value is refused; no limit: never split
        for source, filled in splits:
            # the debtor's always, the joint debtor's when the mapping binds it; a format
            # that writes no part of it at all loses it whole (the warning above)
            if source not in fields or not carried(source, reads) or carried(filled, reads):
                continue
            declared = fmt.not_carried.get(filled)
            why = (f" ({filled} is declared not carried in its format.yaml: "
                   f"{declared[0]})" if declared else "")
            result.refused.append(Problem(
                "mapping.policy-lost", f"policies.{policy}: split puts "
                f"{part.format(limit=limit)} into {filled}, which no template of format "
                f"{fmt.name} reads ({' or '.join(CARRIED_BY[filled])}){why}: that part would "
                f"be lost from every file, each time the policy applies. Set {policy}: "
                f"refuse (such a value is then refused, by invoice), or write {filled} in "
                "the template", mapping=mapping.where("policies", policy)))
    return result
