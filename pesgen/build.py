"""Apply a mapping to source invoices: bindings, code tables and policies -> titles.

One job: turn each ``SourceInvoice`` into a canonical ``Title`` (or a left-out
invoice, or problems). Every policy applied is recorded as a ``PolicyNote``;
every problem names the record, the mapping key and the rule.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import lru_cache, partial
from operator import is_not
from typing import Any

from . import _budget
from ._csv import FORMULA_START
from ._display import shown_repr
from ._jinja import WrongShape, expression_environment, json_kind
from .checks import (
    BANK_RULES,
    FRANCE_INSEE,
    MAX_AMOUNT,
    bic_abroad_problem,
    checked_bank_code,
    checked_national_id,
    civility_problem,
    debit_date_problem,
    is_mademoiselle,
    mandate_date_problem,
    target2_closed,
)
from .coverage import no_direct_debit
from .debits import DebitWatch
from .errors import InputDataError, MappingError, MappingStopped, Problem
from .expr import expression_paths
from .formats import Format, forbidden_in, option_problems, text_misfit
from .keys import (
    DEBT_KEYED_DIGITS,
    DEBT_KEYED_MAX,
    INVOICE_NUMBER_MAX,
    Held,
    debt_key,
    invoice_key,
    named,
    written_otherwise,
)
from .keys import shown as shown_number
from .mapping import Binding, Mapping
from .memo import remember
from .model import Address, BankAccount, Debtor, Line, Mandate, Title, maker
from .parse import (
    AmountWithCurrency,
    DateOtherSeparator,
    DateWithTime,
    parse_amount,
    parse_bool,
    parse_date,
)
from .paths import PathWatch
from .seen import SeenInvoices
from .sources import SourceInvoice, json_path, missing_column, missing_columns_message
from .text import (
    Normalized,
    ascii_letters,
    char_named,
    code_error,
    control_in,
    format_char_in,
    normalize,
    outside_charset,
    pes_text_error,
    truncate_words,
    without_marks,
    wrap_words,
)

_ZERO = Decimal(0)
_CENT = Decimal("0.01")




@dataclass(frozen=True, slots=True)
class PolicyNote:
    policy: str  # e.g. "negative_lines", "transliterate"
    invoice: str
    origin: str
    detail: str
    # the title's line the note is about, its position (1 the first) as a text (the
    # run's record keeps a note's fields as texts, notes.Notes), when it is one line's
    # and a reader needs which (the pricing note: export._unpriced); "" otherwise. The
    # detail's words are for people: nothing reads them
    line: str = ""
    # the field the note is about, when it is one value's (a text policy's, a split, a
    # civility, an address abroad): the format's field (debtor.name, address.street,
    # line.label) or the joint debtor's own (joint_payer.name), which the summary counts
    # by (noted_field); "" otherwise, and in a run recorded before it was kept
    field: str = ""


@dataclass(frozen=True, slots=True)
class LeftOut:
    invoice: str
    origin: str
    reason: str
    policy: str
    # policy already_exported: the run holding the invoice (its record is read by
    # ``Store.left_out_as_held``, not the reason's words)
    holder: str | None = None


def _as_is(number: str) -> str:
    """A recorded run's invoice number is its own key (it was checked as written)."""
    return number


def noted_field(note: PolicyNote) -> str:
    """The field a note on a value is about (``PolicyNote.field``): the debtor's or the
    joint debtor's own field, a title's, the bordereau's. A note recorded before notes
    kept it has none: a text policy's (transliterate, newlines, text_overflow,
    placeholder) said it at the start of its detail, as ``Builder._text`` wrote it
    (``joint_payer.name: Œ→OE``), read from there."""
    return note.field or note.detail.split(":", 1)[0]


# the model's classes (and PolicyNote) made without their frozen __init__ (model.maker):
# the same objects, a few per invoice
_make_note = maker(PolicyNote)
_make_line, _make_title, _make_debtor = maker(Line), maker(Title), maker(Debtor)
_make_address, _make_mandate, _make_account = maker(Address), maker(Mandate), maker(BankAccount)


# the rules on an invoice's lines taken together (its total, its discounts netted): an
# invoice whose CSV rows are split has them broken on its first rows alone
_SPLIT_RULES = frozenset({"pes.netting", "pes.negative-total", "pes.zero-total"})


@dataclass
class BuildResult:
    title: Title | None = None
    left_out: LeftOut | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[PolicyNote] = field(default_factory=list)


class _Ctx:
    """Per-invoice working state: where we are, what went wrong, what was applied."""

    __slots__ = ("origin", "invoice", "problems", "notes", "shapes", "scope")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.invoice: str | None = None
        self.problems: list[Problem] = []
        self.notes: list[PolicyNote] = []
        # the values of another kind than the bindings reading through them need, met
        # (rarely): see _wrong_shape
        self.shapes: list[_Shaped] | None = None
        # the invoice's expression scope: what a refusal of an empty expression's value
        # reads its fields from (_reads_said)
        self.scope: dict[str, Any] | None = None

    def problem(self, rule: str, message: str, mapping: str | None = None,
                record: str | None = None) -> None:
        self.problems.append(Problem(rule, message, record=record or self.origin,
                                     mapping=mapping, invoice=self.invoice))

    def note(self, policy: str, detail: str, line: str = "", field: str = "") -> None:
        self.notes.append(_make_note(policy, self.invoice or "?", self.origin, detail, line,
                                     field))


# what a street no policy can fit leaves to do: pesgen truncates no address
_SHORTEN_STREET = ("shorten it in the school software (the usual abbreviations: bd for "
                   "boulevard, av. for avenue, chem. for chemin)")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _text_kind(value: Any) -> str:
    """'a text' or 'a number', for a value ``_shape`` lets through."""
    return "a text" if isinstance(value, str) else "a number"


def _shape(value: Any) -> str | None:
    """What a bound value is when it cannot be a text: a JSON list, object or boolean
    (``str()`` would write ``['3 allee', 'Bat B']`` or ``True``); None for a string or a
    number (a boolean is not a number here)."""
    kind = type(value)
    if kind is str or value is None or kind is Decimal or kind is int:  # the common cases
        return None
    if isinstance(value, (str, int, Decimal, float)) and not isinstance(value, bool):
        return None
    return json_kind(value)


def _refuse_kind(value: Any, what: str, allowed: type | tuple[type, ...] = ()) -> None:
    """The ``ValueError`` a field's parse gives ``value`` when it is a JSON list, object
    or true/false (``_shape``) but of ``allowed``: said by its kind, 'an object is not an
    amount', never by its Python text (the billing data it holds)."""
    if not isinstance(value, allowed) and (shape := _shape(value)) is not None:
        raise ValueError(f"{shape} is not {what}")


def _stripped(node: Any) -> Any:
    """``node`` with every string in it stripped, as a path binding reads it: the record
    an expression sees, so that ``invoice.payment_method == 'direct_debit'`` and
    ``invoice.last_name or invoice.name`` read ``'direct_debit '`` and ``'  '`` as a path
    would. The same object when nothing changes (the common case: no copy)."""
    kind = type(node)
    if kind is dict:
        return _stripped_dict(node)
    if kind is str:
        return node.strip()  # the same str object when there is nothing to strip
    if kind is list:
        return _stripped_list(node)
    if isinstance(node, str):
        return node.strip()
    if isinstance(node, dict):
        return _stripped_dict(node)
    if isinstance(node, list):
        return _stripped_list(node)
    return node


def _stripped_dict(node: dict[Any, Any]) -> dict[Any, Any]:
    # the type tests inline what _stripped does for each value: a record holds ~50 of
    # them, mostly strings that need nothing, and this runs for every invoice (a value
    # left as it is goes on to the next at once: ~8 % fewer instructions than testing
    # every value's outcome at the end)
    changed: dict[Any, Any] | None = None
    for key, value in node.items():
        kind = type(value)
        if kind is str:
            new = value.strip()
            if new is value:
                continue
        elif kind is dict:
            new = _stripped_dict(value)
            if new is value:
                continue
        elif kind is list:
            new = _stripped_list(value)
            if new is value:
                continue
        elif value is None or kind is int or kind is bool or kind is Decimal or kind is float:
            continue
        else:
            new = _stripped(value)
            if new is value:
                continue
        if changed is None:
            changed = dict(node)
        changed[key] = new
    return node if changed is None else changed


def _stripped_list(node: list[Any]) -> list[Any]:
    items = [_stripped(x) for x in node]
    return items if any(map(is_not, items, node)) else node


def _evaluate(ctx: _Ctx, record: dict[str, Any], scope: dict[str, Any],
              origin: str | None, binding: Binding | None) -> Any:
    """A binding's value on ``record``: None when unbound, blank, or when the binding's
    expression fails (a ``mapping.expr`` problem); strings stripped (``record`` and
    the scope hold stripped values too: see ``_stripped``)."""
    if binding is None:
        return None
    try:
        keys = binding.keys
        if keys is not None:
            # a path of the stripped record: its value is stripped already (what the
            # binding's reader does, without its frame; anything but an object on the
            # way goes to the reader below, which says so)
            first, second, third = keys
            node = record.get(first)
            if second is None or node is None:
                return (node or None) if type(node) is str else node
            if type(node) is dict:
                node = node.get(second)
                if third is None or node is None:
                    return (node or None) if type(node) is str else node
                if type(node) is dict:
                    node = node.get(third)
                    return (node or None) if type(node) is str else node
        value = binding.evaluate(record, scope)
    except WrongShape as exc:  # said once per value, when the invoice is built
        _wrong_shape(ctx, exc, binding, origin or ctx.origin, scope)
        return None
    except _budget.RenderTimeout:
        raise _stopped(ctx, f"{binding.key}: the expression", origin,
                       binding.where) from None
    except Exception as exc:  # a Jinja error inside a user expression
        said = _shapes_read(binding.text, scope) if isinstance(exc, TypeError) else ""
        ctx.problem("mapping.expr", f"{binding.key}: expression failed: {exc}{said}",
                    mapping=binding.where, record=origin)
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _line_origin(base: str, lines: str, index: int) -> str:
    """A JSON invoice's line as problems name it: its invoice's origin, the
    bindings.lines text and its index ('export.json:$.invoices[0].lines[1]')."""
    return f"{base}.{lines}[{index}]"


def _stopped(ctx: _Ctx, what: str, origin: str | None = None,
             where: str | None = None) -> MappingStopped:
    """The command stopped: ``what`` (a binding's expression, or building the title)
    ran past ``_budget.LIMIT`` on the invoice ``ctx`` builds (rule mapping.time)."""
    message = (f"{what} ran for more than {_budget.LIMIT:g} seconds on this invoice "
               "and was stopped: a filter over far more items than an invoice holds, or "
               "a loop that does not end? The next invoices would each hold the "
               "command as long again")
    record = origin or ctx.origin
    problem = Problem("mapping.time", message, record=record, mapping=where,
                      invoice=ctx.invoice)
    return MappingStopped(f"{where.split(': ', 1)[0] + ': ' if where else ''}{what} ran for "
                          f"more than {_budget.LIMIT:g} seconds on {record} and was "
                          "stopped", [problem])


@dataclass(frozen=True, slots=True)
class _Shaped:
    """A binding read through a value of another kind than it needs (WrongShape)."""

    binding: Binding
    origin: str  # the record its problems name (the invoice's, or its line's)
    base: str  # the record the value is in (the line's, or the invoice's for `invoice.`)
    parts: tuple[str | int, ...] | None  # the value's path in it (None: not found)
    reads: str  # what the binding reads through it: payer.address.city, invoice.payer.name
    value: Any
    expected: str


def _wrong_shape(ctx: _Ctx, exc: WrongShape, binding: Binding, origin: str,
                 scope: dict[str, Any]) -> None:
    base, parts = origin, exc.parts
    reads = binding.text
    if parts is None:  # an expression met it: the chain of its reads that did
        found = _expression_place(binding.text, exc, scope)
        if found is not None:
            root, parts = found
            base = ctx.origin if root == "invoice" else origin
            reads = ".".join([root, *map(str, parts), str(exc.key)])
        else:
            reads = f"{exc.key!r} of a value made in `{binding.text}`"
    if ctx.shapes is None:
        ctx.shapes = []
    ctx.shapes.append(_Shaped(binding, origin, base, parts, reads, exc.value, exc.expected))


def _line_of(where: str) -> int:
    """42, of 'mappings/m.yaml:42: bindings.payer.name'."""
    head = where.rsplit(": ", 1)[0].rsplit(":", 1)[-1]
    return int(head) if head.isdigit() else 0


@lru_cache(maxsize=256)
def _expression_chains(source: str) -> tuple[tuple[str, tuple[str | int, ...]], ...]:
    return expression_paths(expression_environment(), source)


def _shapes_read(source: str, scope: dict[str, Any]) -> str:
    """The values an expression that failed on a type reads that are a JSON list or
    object, which Python's words do not name ("unhashable type: 'list'", for
    ``{...}.get(invoice.payment.method)`` where the export's method is a list):
    ' (invoice.payment.method is a list)'; empty when it reads none."""
    found = []
    for root, chain in _expression_chains(source):
        nodes = list(_along(scope.get(root), chain))
        if chain and len(nodes) > len(chain) and isinstance(nodes[-1], (list, dict)):
            found.append(f"{'.'.join([root, *map(str, chain)])} is {json_kind(nodes[-1])}")
    return f" ({'; '.join(found)})" if found else ""


def _reads_said(binding: Binding | None, scope: dict[str, Any] | None, csv: bool) -> str:
    """For a required field whose expression gave nothing, the record fields the
    expression reads and what this record holds there, so that the technician knows
    which input field to fill: ' (its expression reads nom, prenom: both empty in this
    record)'. Empty for a path or constant binding (the message names its path), and for
    an expression that reads no field of the record."""
    said = expression_reads(binding, scope, csv)
    return f" ({said})" if said else ""


def expression_reads(binding: Binding | None, scope: dict[str, Any] | None, csv: bool
                     ) -> str:
    """What ``_reads_said`` says, without its parentheses: 'its expression reads nom,
    prenom: both empty in this record'; also a template writing None names so the
    fields an expression binding left empty reads (``sample.binding_of_none``). Empty
    for a path or constant binding, and for an expression that reads no field of the
    record. Called only when a refusal is made: the expression's reads are parsed once
    per expression (_expression_chains)."""
    if binding is None or binding.kind != "expr" or scope is None:
        return ""
    reads: list[tuple[str, str]] = []
    for root, chain in _expression_chains(binding.text):
        if not chain:  # the whole record (invoice | tojson...): no one field to name
            continue
        name = ".".join(map(str, chain)) if csv else root + json_path(chain)
        reads.append((name, _read_state(scope.get(root), chain)))
    if not reads:
        return ""
    more = len(reads) - _READS_SHOWN
    reads = reads[:_READS_SHOWN]
    names = ", ".join(name for name, _ in reads) + (f" and {more} more" if more > 0 else "")
    states = {state for _, state in reads}
    if len(states) == 1:
        state = states.pop()
        said = {"empty": "empty in this record", "absent": "absent from this record",
                "given": "given in this record, and the expression made nothing of "
                         + ("it" if len(reads) == 1 else "them")}[state]
        if len(reads) > 1:
            said = ("both " if len(reads) == 2 else "all ") + said
    else:
        groups = []
        for state in ("empty", "absent", "given"):
            group = [name for name, s in reads if s == state]
            if group:
                groups.append(f"{' and '.join(group)} {'is' if len(group) == 1 else 'are'} "
                              f"{state}")
        said = "in this record " + ", ".join(groups)
    return f"its expression reads {names}: {said}"


_READS_SHOWN = 8


def _read_state(node: Any, chain: tuple[str | int, ...]) -> str:
    """'absent' when the record has no value along ``chain`` (a key it lacks, an index
    past its list's end), 'empty' when the value is blank or null, else 'given'."""
    for part in chain:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            node = node[part]
        else:
            return "absent"
    return "empty" if _blank(node) else "given"


def _along(node: Any, chain: tuple[str | int, ...]) -> Iterator[Any]:
    """The values a chain of reads (``payer``, ``address``, ``0``…) passes through in a
    record: ``node``, then each value read, as far as the chain reaches (a key of an
    object, an index of a list)."""
    yield node
    for part in chain:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return
        yield node


def _expression_place(source: str, exc: WrongShape,
                      scope: dict[str, Any]) -> tuple[str, tuple[str | int, ...]] | None:
    """(root, path) of the value ``exc`` met, following the expression's chains of reads
    (``invoice.payer.name``) in ``scope``; None when no chain reaches it (a value made
    by the expression, a filter's)."""
    for root, chain in _expression_chains(source):
        # the value before each read (_along gives one more, the last one read)
        reads = zip(_along(scope.get(root), chain), chain, strict=False)
        for depth, (node, part) in enumerate(reads):
            if node is exc.value and part == exc.key:
                return root, chain[:depth]
    return None


def _evaluator(ctx: _Ctx, record: dict[str, Any], scope: dict[str, Any],
               origin: str | None = None) -> Callable[[Binding | None], Any]:
    """``_evaluate`` on one record: a binding -> its value (a partial, which adds no
    Python frame per call)."""
    return partial(_evaluate, ctx, record, scope, origin)


class Builder:
    """Builds titles from source invoices for one mapping and one output format."""

    def __init__(self, mapping: Mapping, fmt: Format, recorded: bool = False,
                 legacy: bool = False, issue_date: date | None = None,
                 street_before: bool = False) -> None:
        """``recorded``: the input of a recorded run, rebuilt by ``regenerate`` (its files'
        sha256 vouch for it): the input checks pesgen added since it can have been
        recorded (invoice numbers over INVOICE_NUMBER_MAX, numbers differing only by
        case, an account abroad without BIC, a debit date before DteBordEm, a NumDette
        over 13 digits) do not refuse it again, nor a CSV binding of a column the file
        lacks (it read nothing then too: in ``waived``). ``issue_date``: DteBordEm of
        the run (the debit dates are checked against it; None: not checked)."""
        self.mapping = mapping
        self.recorded = recorded
        self.issue_date = issue_date
        # debit dates (DtePrel) falling on a day TARGET2 is closed (a Saturday, Sunday or
        # TARGET2 holiday) -> how many titles: one note for the run (see run_notes)
        self.closed_debits: Counter[date] = Counter()
        # direct-debit data in what a mapping binding no payment.direct_debit leaves
        # unread: one note for the run (run_notes, rule input.unread-debit)
        self.debits = DebitWatch(mapping)
        # a recorded run rebuilt as pesgen built it before 2026-12-01: a code table's
        # civility went through the text policies (case: upper) then, and an expression
        # wrote a None it made into text as the word (a code table's .get() of a key it
        # lacks, in a '~'), as Jinja does; and a holder's words were compared with the
        # debtor's letters outside ASCII as they are, before 2026-12-05 (_words)
        self.legacy = legacy
        # a recorded run rebuilt as pesgen split a street cut at a word boundary before
        # 2026-12-06, its part starting with a digit in Adr2 (_street_order): with the
        # rest as before 2026-12-01 (legacy), or as today (street_before alone: a run
        # recorded between the two, whose code-table civilities today's rules send)
        self.street_before = legacy or street_before
        # of a recorded run: what a check of the mapping that changes nothing of what is
        # rendered found, let through (check_columns), said as a warning by regenerate
        self.waived: list[Problem] = []
        self.fmt = fmt
        # the format carries a line's quantity (not declared not carried), and the
        # mapping binds it and the unit price: a pair that does not give the amount is noted
        self._priced = "line.quantity" not in fmt.not_carried and all(
            key in (mapping.bindings.get("line") or {}) for key in ("quantity", "unit_price"))
        self.policies = mapping.policies
        # the split policies the format would refuse (the exporter's check_fields,
        # mapping.policy-fit): a value over its limit is refused without advising them
        self.unfit_splits: dict[str, str] = {}  # sample.SampleRendering's
        # whether the format's templates write the invoice number (the exporter's
        # check_fields: read on the sample titles; e.magnus' NumeroFacture, Corail's
        # LibPieceJustificative, JVS_FAC_NumeroFacture): written as it is, it is held to
        # the output's encoding, the format's charset and forbidden characters (_number)
        self.number_written = False
        # whether they write a line's student (t.lines[i].student, which no shipped
        # template does): a free text then, held to the text policies as a label (_lines);
        # else it is not written, and kept as exported
        self.student_written = False
        # the text fields no file of the format holds (the exporter's check_fields,
        # coverage.unwritten_texts): kept as exported, as an unwritten student is
        self.unwritten_texts: frozenset[str] = frozenset()
        # the address values a foreign_address note names (address.postal_code,
        # address.city, address.country_code; joint_payer's the same) no template reads
        # on the sample titles, declared not carried or not: the note names none of them
        self.unwritten_address: frozenset[str] = frozenset()
        self._encoding = mapping.output.encoding or fmt.encoding
        # (a recorded run: its texts taken as pesgen took them when it was recorded)
        self.text_policy = replace(mapping.policies.text, format_chars=True) if recorded \
            else mapping.policies.text
        # the invoice numbers read, as written, with their input records, found by key
        # (invoice_key: 'FA-1' and 'fa-1' are one invoice) and by NumDette (debt_key);
        # as a mapping, invoice number -> its input record
        self.seen = SeenInvoices(_as_is if recorded else invoice_key, debt_key)
        # policies.already_exported: leave_out: the invoices active runs of the budget,
        # exercise and format hold, by the key ``seen`` gives (runs._prepared sets it from
        # the store; a recorded run rebuilt, from the invoices it left out so)
        self.exported: dict[str, Held] | None = None
        # values the case policy changed, per field: one note for the whole run, not one
        # per value (millions on a large run)
        self.cased: Counter[str] = Counter()
        # policies.zero_total: leave_out (an invoice whose lines add up to 0.00 is left out
        # once its lines are read)
        self._zero_left_out = self.policies.zero_total == "leave_out"
        # civilities sent as exported for want of a codes.civility table, in the order
        # first seen: one note for the run too (see run_notes)
        self.uncoded_civilities: dict[str, None] = {}
        # a NumDette is one title's (seen.debt_holder): with Per (one per mapping) it is
        # the payment reference a family pays with
        self.collectivity_scope = {
            "name": mapping.collectivity.name, "siret": mapping.collectivity.siret,
            "exercise": mapping.collectivity.exercise, "cod_col": mapping.collectivity.cod_col,
            "cod_bud": mapping.collectivity.cod_bud, "id_post": mapping.collectivity.id_post}
        b = mapping.bindings
        self.inv = b.get("invoice", {})
        self.payer = b.get("payer", {})
        self.addr = b.get("address", {})
        self.joint = b.get("joint_payer", {})
        self.pay = b.get("payment", {})
        self.line = b.get("line", {})
        self._invoice_dates = tuple((f"invoice.{name}", self.inv.get(name)) for name in (
            "date", "due_date", "service_from", "service_to", "asap_date"))
        self._line_bindings = tuple(self.line.get(name) for name in (
            "activity", "amount", "label", "quantity", "unit_price", "student"))
        self.csv = mapping.input.format == "csv"
        # CSV: the problems of an invoice's total and netting (_SPLIT_RULES) by its
        # number: its rows met again further down (not contiguous), those were its first
        # rows' alone, a consequence: withdrawn (``withdrawn``), the duplicate refusal
        # saying so. Refusals only: nothing is kept for an invoice without them.
        self._sums_refused: dict[str, list[Problem]] = {}
        self.withdrawn: list[Problem] = []
        # invoice-level CSV columns must hold the same value on every row of an invoice
        # {column an invoice-level binding reads: the first binding reading it}, by name
        readers: dict[str, Binding] = {}
        for group in (self.inv, self.payer, self.addr, self.pay, self.joint):
            for bnd in group.values():
                for column in bnd.columns:
                    readers.setdefault(column, bnd)
        self.invoice_columns = sorted(readers)
        self._invoice_readers = readers
        # every CSV column a binding reads, with the first binding that reads it: checked
        # against the file's header on its first invoice
        self._columns_to_check: dict[str, Binding] | None = None
        if self.csv:
            self._columns_to_check = {}
            for group in (self.inv, self.payer, self.addr, self.pay, self.joint, self.line):
                for bnd in group.values():
                    for column in bnd.columns:
                        self._columns_to_check.setdefault(column, bnd)
        # JSON path bindings are watched until an invoice holds their key (pesgen/paths.py)
        self.paths: PathWatch | None = None
        if not self.csv and not recorded:
            self.paths = PathWatch(
                mapping.input.records, (bnd for group in (self.inv, self.payer, self.addr,
                                                          self.pay, self.joint)
                                        for bnd in group.values()),
                mapping.lines, self.line.values(),
                lambda record: mapping.lines.evaluate(
                    record, {"invoice": record, "collectivity": self.collectivity_scope}))
        # codes.countries by the country as _address reads it (stripped, upper case);
        # the countries in France, each with the ISO code its addresses keep: FR, the
        # overseas départements, and any country the table gives INSEE 100 (France:
        # 'FRANCE', 'France'), which is no foreign address (CodRes 1 with CodPays 100
        # is a rejection)
        self._countries = {str(k).strip().upper(): v for k, v in mapping.codes.countries.items()}
        # a key written so wins over others that are the same country by case: they
        # differ only in a mapping a run recorded before codes.country refused them,
        # and the pesgen of that run read the table by this key alone
        self._countries.update({str(k): v for k, v in mapping.codes.countries.items()
                                if str(k) == str(k).strip().upper()})
        self._in_france = {**{k: "FR" for k, v in self._countries.items() if v == FRANCE_INSEE},
                           **{k: k for k in _FRANCE}}
        # (line.student: a field format.yaml cannot limit, held to the format's charset)
        self._limits = {key: fmt.limit(key) for key in (*_TEXT_FIELDS, "line.student")}
        # the characters the format's layouts forbid in a value (';' and '"' for
        # e.magnus): a text holding one is refused, never written quoted or replaced (a
        # recorded run is rebuilt as it was written)
        self._forbidden = (re.compile(f"[{re.escape(fmt.forbidden)}]")
                           if fmt.forbidden and not recorded else None)
        self._pes = fmt.is_pes
        self._target = fmt.limits_owner  # whose limits are said (formats.limits_owner)
        # Values repeat across invoices (cities, labels, amounts, dates): the pure
        # functions of a value (normalize, parse) are memoised, bounded; notes and
        # problems are still produced per invoice from the cached result.
        self._normalized: dict[tuple[str, str], Normalized] = {}
        self._amounts: dict[str, Decimal] = {}
        self._int_amounts: dict[int, Decimal] = {}  # apart: 1 == True == Decimal(1)
        self._dates: dict[str, date] = {}
        # (field, text as given) -> (text, whether the case policy changed it, the notes
        # of the other text policies as (policy, detail), in order), for the texts that
        # gave no problem and no note of their own (truncation, placeholder)
        self._texts: dict[tuple[str, str], tuple[str, bool, tuple[tuple[str, str], ...]]] = {}
        misfits = format_fit(mapping, fmt, recorded)
        if misfits:
            raise MappingError(f"{mapping.path}: the mapping does not fit format {fmt.name}",
                               misfits)

    # ------------------------------------------------------------ helpers

    def _scalar(self, ctx: _Ctx, key: str, value: Any, binding: Binding | None,
                origin: str | None = None, expected: str = "a text") -> bool:
        """Whether ``value`` is a string, a number or nothing; else an ``input.type``
        problem naming the JSON path the binding read (or its expression), and what the
        field is (``expected``: a text, a date)."""
        if value is None or type(value) is str:
            return True
        shape = _shape(value)
        if shape is None:
            return True
        record = origin or ctx.origin
        if binding is not None and binding.kind == "path" and not self.csv:
            record = f"{record}.{binding.text}"
            source = ""
        else:
            source = f" (from {binding.kind} {binding.text!r})" if binding is not None else ""
        ctx.problem("input.type", f"{key} is {shape}{source}, not {expected}: a field of the "
                    "title takes a string or a number", mapping=binding.where if binding
                    else None, record=record)
        return False

    def _number_fits(self, ctx: _Ctx, number: str) -> bool:
        """Whether ``number``, which the format writes as it is (an identifier: no text
        policy changes it, a transliterated one would not be the school's), fits its
        files: no invisible character (a no-break space, a soft hyphen: a control one was
        refused before, whatever the format), only characters
        the output's encoding writes and the format's charset allows (e.magnus: ascii),
        none its layouts forbid (e.magnus: ';' and '"'). Else refused (input.invoice-number)."""
        if number.isascii() and number.isprintable() and not self._forbidden:
            return True
        bad = control_in(number)
        said = (f"holds the control or invisible character {char_named(bad)}" if bad
                else text_misfit(number, self._encoding, self.fmt.charset, self.fmt.forbidden))
        if said is None:
            return True
        ctx.problem("input.invoice-number", f"invoice number {shown_repr(number)}: {said}; "
                    f"format {self.fmt.name} writes it into its files as it is, never "
                    "transliterated nor replaced (an identifier): correct it in the school "
                    "software", mapping=self.inv["number"].where)
        return False

    def _text(self, ctx: _Ctx, key: str, value: Any, binding: Binding | None,
              required: bool = False, origin: str | None = None) -> str | None:
        # the field the policy notes and the case count name: the joint debtor's own
        # (joint_payer.name), not the format field its value is held to (debtor.name)
        field = key if binding is None or not binding.key.startswith("joint_payer.") \
            else binding.key
        if type(value) is str:
            # the whole outcome for a text seen before that gave no problem (school
            # exports repeat cities, labels, names): its policy notes are made again, as
            # the loop below makes them, and the case count is kept
            known = self._texts.get((field, value))
            if known is not None:
                for policy, detail in known[2]:
                    ctx.note(policy, detail, "", field)
                if known[1]:
                    self.cased[field] += 1
                return known[0]
        elif value is None and not required:
            return None
        where = binding.where if binding else None
        said = _said(key, binding)
        if _blank(value):
            if required:
                ctx.problem("input.required", f"{said} is missing"
                            f"{_reads_said(binding, ctx.scope, self.csv)}",
                            mapping=where, record=origin)
            return None
        if not self._scalar(ctx, key, value, binding, origin):
            return None
        if field in self.unwritten_texts:
            # in no file: neither held to the format's charset and limits nor changed by
            # the text policies (nothing they would say changed a file)
            return str(value)
        limit = self._limits[key]
        text_in = str(value)
        cache_key = (text_in, limit.charset)
        result = self._normalized.get(cache_key)
        if result is None:
            result = normalize(text_in, limit.charset, self.text_policy)
            remember(self._normalized, cache_key, result)
        if result.error:
            ctx.problem("text.charset", f"{said} {result.error}", mapping=where, record=origin)
            return None
        if self._forbidden is not None and self._forbidden.search(result.value):
            held = forbidden_in(result.value, self.fmt.forbidden)
            ctx.problem("text.forbidden", f"{said} holds {held!r}, which format "
                        f"{self.fmt.name} forbids in its values (its layouts' "
                        "forbidden_characters)" + (
                            ", after the transliterate policy (which writes « » “ ” „ "
                            "as '\"')" if "transliterate" in result.applied
                            and not forbidden_in(text_in, held) else "")
                        + "; the binding's expression may replace them (Jinja's replace "
                        "filter), or the school software's export drop them",
                        mapping=where, record=origin)
            return None
        notes: list[tuple[str, str]] = []
        for applied in result.applied:
            if applied == "transliterate":
                notes.append(("transliterate", f"{field}: {result.changed}"))
                ctx.note(*notes[-1], "", field)
            elif applied == "newlines":
                notes.append(("newlines", f"{field}: line break or tab replaced by a space"))
                ctx.note(*notes[-1], "", field)
            elif applied == "case":
                self.cased[field] += 1  # counted, one note for the run (see case_note)
        text = result.value
        if limit.max is not None and len(text) > limit.max and key not in _SPLITTABLE:
            if (kind := _NEVER_TRUNCATED.get(key)) is not None and not self.recorded:
                # (a recorded run is rebuilt as it was written, its sha256 says so)
                ctx.problem("text.length", f"{said} is {len(text)} characters"
                            f"{_case_grown(text_in, self.text_policy.case)}, {self._target} allows "
                            f"{limit.max}: {kind} is never truncated (policy "
                            "text_overflow: truncate shortens labels and names only)",
                            mapping=where, record=origin)
                return None
            if self.policies.text_overflow == "truncate":
                short = truncate_words(text, limit.max)
                ctx.note("text_overflow", f"{field}: {len(text)} characters truncated to "
                         f"{len(short)} (limit {limit.max})", field=field)
                text = short
            else:
                ctx.problem("text.length", f"{said} is {len(text)} characters"
                            f"{_case_grown(text_in, self.text_policy.case)}, {self._target} allows "
                            f"{limit.max} (policy text_overflow: refuse: set "
                            "policies.text_overflow: truncate to shorten it at a word "
                            "boundary, reported)", mapping=where, record=origin)
                return None
        err = pes_text_error(text)
        if err:
            if required:
                ctx.problem("pes.text", f"{said} {err}", mapping=where, record=origin)
            else:  # an optional placeholder ('.', 'nc', '0'): left out, and said so
                ctx.note("placeholder", f"{field}: {err}, left out", field=field)
            return None
        if type(value) is str and text is result.value:  # not truncated
            remember(self._texts, (field, value), (text, "case" in result.applied, tuple(notes)))
        return text

    def _date(self, ctx: _Ctx, key: str, value: Any, binding: Binding | None,
              required: bool = False, origin: str | None = None) -> date | None:
        if type(value) is str:  # a blank one is never memoised
            known = self._dates.get(value)
            if known is not None:
                return known
        if _blank(value):
            if required:
                ctx.problem("input.required", f"{key} is missing"
                            f"{_reads_said(binding, ctx.scope, self.csv)}",
                            mapping=binding.where if binding else None, record=origin)
            return None
        try:
            _refuse_kind(value, "a date", date)
            parsed = parse_date(value, self.mapping.input.dates)
        except ValueError as exc:
            hint = _date_alone(binding, exc) if isinstance(exc, DateWithTime) else \
                _separator_replaced(binding, exc) \
                if isinstance(exc, DateOtherSeparator) else ""
            if isinstance(exc, DateWithTime) and exc.reads:
                hint += (f", and set input.dates to {exc.reads} (or auto, which reads both) "
                         f"at {self.mapping.where('input', 'dates')}")
            ctx.problem("input.date", f"{key}: {exc}{hint}",
                        mapping=binding.where if binding else None, record=origin)
            return None
        if type(value) is str:
            remember(self._dates, value, parsed)
        return parsed

    def _amount(self, ctx: _Ctx, key: str, value: Any, binding: Binding | None,
                origin: str | None = None) -> Decimal | None:
        kind = type(value)
        if kind is str:  # a blank one is never memoised
            known = self._amounts.get(value)
            if known is not None:
                return known
        elif kind is int:  # a JSON quantity: 1 on most lines
            known = self._int_amounts.get(value)
            if known is not None:
                return known
        if _blank(value):
            return None
        try:
            _refuse_kind(value, "an amount")
            amount = parse_amount(value, self.mapping.input.numbers)
        except ValueError as exc:
            hint = _without_currency(binding, exc.currency) \
                if isinstance(exc, AmountWithCurrency) else ""
            ctx.problem("input.amount", f"{key}: {exc}{hint}",
                        mapping=binding.where if binding else None, record=origin)
            return None
        if amount != amount.quantize(_CENT):
            ctx.problem("pes.amount-decimals", f"{key}: {value} has more than 2 decimals"
                        f"{_float_noise(amount)}",
                        mapping=binding.where if binding else None, record=origin)
            return None
        amount = amount.quantize(_CENT)
        if kind is str:
            remember(self._amounts, value, amount)
        elif kind is int:
            remember(self._int_amounts, value, amount)
        return amount

    # ------------------------------------------------------------ build

    def case_note(self, origin: str) -> PolicyNote | None:
        """The run's note for the case policy: how many values it upper-cased, by field."""
        if not self.cased:
            return None
        fields = ", ".join(f"{key} ×{n}" for key, n in sorted(self.cased.items()))
        return PolicyNote("case", "*", origin, f"{sum(self.cased.values())} value(s) "
                          f"upper-cased: {fields}")

    def run_notes(self, origin: str, preview: bool = False) -> list[PolicyNote]:
        """The notes said once for the whole run, not per invoice: the case policy's
        count (``case_note``), an address.country left unbound (every debtor then
        French), invoices holding direct-debit data a mapping binding no
        payment.direct_debit does not read (``debits``; ``preview``: counted over
        a preview's invoices), an ASAP Edition the format's notes qualify (format.yaml
        defaults.asap_edition_notes), and the civilities sent as exported because the
        mapping has no codes.civility table (a few of them named)."""
        notes = [note for note in (self.case_note(origin),) if note is not None]
        if "country" not in self.addr:
            # every debtor's address is then French: a family abroad is sent with CodRes
            # France, its postal code checked as a French one (a 5-digit German one passes)
            where = self.mapping.where("bindings", "address") if self.addr else \
                self.mapping.where("bindings")
            notes.append(PolicyNote("country", "*", where, f"{self.mapping.path}: "
                                    "bindings.address.country is not bound: every debtor is "
                                    "written as living in France; bind it to the export's "
                                    "country column or key (codes.countries for its values), "
                                    "or, for an export that has none, to {const: FR}"))
        unread_debit = self.debits.note(preview)
        if unread_debit is not None:
            notes.append(PolicyNote("unread_debit", "*", *unread_debit))
        # Mademoiselle is refused by pes.civility, table or not: not sent
        # an Edition whose promise the format's files do not keep (format.yaml
        # defaults.asap_edition_notes): pes-titres' 04 names an ASAP it does not attach
        edition = self.mapping.output.asap_edition
        said = (self.fmt.defaults.get("asap_edition_notes") or {}).get(edition)
        if said:
            notes.append(PolicyNote("asap_edition", "*",
                                    self.mapping.where("output", "asap_edition"),
                                    f"Edition {edition}: {said}"))
        values = [v for v in self.uncoded_civilities if civility_problem(None, v) is None]
        if values:
            shown = ", ".join(values[:_NOTE_VALUES]) + (", …" if len(values) > _NOTE_VALUES
                                                       else "")
            notes.append(PolicyNote("civility_table", "*", origin, "no codes.civility table: "
                                    f"{len(values)} civility value(s) sent as written: {shown}"))
        for debit, count in sorted(self.closed_debits.items()):
            day = target2_closed(debit)
            day = f"a {day}" if day in ("Saturday", "Sunday") else f"{day}, a TARGET2 holiday"
            notes.append(PolicyNote(
                "debit_date", "*", self.pay["debit_date"].where,
                f"debit date (DtePrel) {debit.isoformat()} is {day} ({count} title(s)): "
                "DtePrel is the interbank settlement date, and settlement happens on TARGET2 "
                "business days only (pesgen's reading of the DT): the debit may be taken on "
                "the next business day; check the date with the trésorerie"))
        return notes

    def check_columns(self, src: SourceInvoice) -> None:
        """A CSV binding naming a column the file does not have would read nothing on
        every row: refuse the run on its first invoice, naming each such binding."""
        wanted, self._columns_to_check = self._columns_to_check, None
        if not wanted:
            return
        header = list(src.record)
        shown = src.origin.rsplit(":", 1)[0]
        problems = []
        # a column renamed in the export is one no binding reads (nor input.group_by)
        unread = [c for c in header
                  if c and c not in wanted and c != self.mapping.input.group_by]
        for column, bnd in wanted.items():
            if column in src.record:
                continue
            text = missing_column(bnd.key, column, header, shown, unread)
            if bnd.kind == "expr":
                text += self._expression_hint(bnd)
            problems.append(Problem("input.column", text,
                                    record=f"{shown}:{self.mapping.input.header_line}",
                                    mapping=bnd.where))
        if problems and self.recorded:
            # before this check such a binding read nothing, as it does still
            self.waived += problems
        elif problems:
            # the input's (exit 4), as for input.group_by and a JSON path no invoice has:
            # the mapping is valid (check-mapping passes it), this file is not the one
            # it reads
            raise InputDataError(missing_columns_message(
                shown, len(problems), self.mapping.input.header_line), problems)

    def _expression_hint(self, bnd: Binding) -> str:
        """What an expression reading a column the header lacks may have missed: its
        names are the input's, not the canonical fields ('invoice.number' reads a column
        'number', not the invoice number)."""
        number = self.inv.get("number")
        example = (f": invoice[{number.text!r}] is the invoice number (bindings.invoice."
                   "number)" if number is not None and number.kind == "path" else
                   ": invoice['<column>']")
        if bnd.key.startswith("line."):
            return (f"; in an expression, invoice and line are the input's rows, their "
                    f"columns read by name{example}")
        return f"; in an expression, invoice is the input record, its columns read by name{example}"

    def expression_reads(self, binding: Binding, src: SourceInvoice,
                         line: str | None = None) -> str:
        """The fields of ``src``'s record ``binding``'s expression reads and what the
        record holds there ('its expression reads …: both empty in this record',
        ``expression_reads``), as the binding read it (strings stripped): what a template
        writing the binding's value left empty names (``sample.binding_of_none``). A
        line's binding reads the line whose origin is ``line`` (``Line.origin``: its CSV
        row, its JSON path) as well, as ``_lines`` gave it. Empty for a path or constant
        binding, and for a line this invoice does not have."""
        record = _stripped(src.record)
        scope = {"invoice": record, "collectivity": self.collectivity_scope}
        if line is not None:
            row = self._line_row(src, record, line)
            if row is None:
                return ""
            scope["line"] = row
        return expression_reads(binding, scope, self.csv)

    def _line_row(self, src: SourceInvoice, record: dict[str, Any], origin: str
                  ) -> dict[str, Any] | None:
        """The line of ``src`` whose origin is ``origin``, as a line's binding reads it
        (stripped); None when none is (or the lines no longer read as a list)."""
        if self.csv:
            for row, at in zip(src.lines or [], src.line_origins, strict=True):
                if at == origin:
                    return record if row is src.record else _stripped(row)
            return None
        raw = _evaluate(_Ctx(src.origin), record, {"invoice": record, "collectivity":
                                                   self.collectivity_scope}, None,
                        self.mapping.lines)
        if not isinstance(raw, list):
            return None
        for i, row in enumerate(raw):
            if _line_origin(src.origin, self.mapping.lines.text, i) == origin:
                row = row if self.mapping.lines.kind == "path" else _stripped(row)
                return row if isinstance(row, dict) else None
        return None

    def build(self, src: SourceInvoice) -> BuildResult:
        """The invoice's title, or why not; the building stopped past the time limit
        (``_budget``: an expression's filter over millions of items) is MappingStopped."""
        ctx = _Ctx(src.origin)
        watching = _budget.start()
        try:
            result = self._build(src, ctx)
        except _budget.RenderTimeout:  # it came between two expressions
            raise _stopped(ctx, "building the title") from None
        finally:
            if watching:
                _budget.stop()
        if ctx.shapes is not None:
            self._shapes_said(ctx, result)
        if self.csv and result.problems and ctx.invoice:
            said = [p for p in result.problems if p.rule in _SPLIT_RULES]
            if said:
                self._sums_refused[ctx.invoice] = said
        return result

    def drop_withdrawn(self, problems: list[Problem]) -> None:
        """Remove from ``problems`` those of an invoice's first rows alone whose rows
        are not contiguous (``withdrawn``): the duplicate refusal says the cause."""
        if self.withdrawn:
            gone = {id(p) for p in self.withdrawn}
            problems[:] = [p for p in problems if id(p) not in gone]

    @staticmethod
    def _left_as_held(src: SourceInvoice, number: str, held: Held) -> BuildResult:
        """An invoice an active run holds at the same amount, left out of this one
        (policies.already_exported: leave_out), with no problem or note of its own."""
        if held.amount is None:
            reason = "exported already by another run, left out by this one"
        else:
            reason = (f"exported already by run {held.run} in {held.file} (IdBord "
                      f"{held.id_bord}), at the same amount {held.amount:.2f}")
        return BuildResult(left_out=LeftOut(number, src.origin, reason, "already_exported",
                                            held.run or None))

    def _shapes_said(self, ctx: _Ctx, result: BuildResult) -> None:
        """One ``input.type`` problem per value of another kind than the bindings reading
        through it need (a list or a text where an object is expected), at its JSON path,
        naming every binding that read through it; in place of what those bindings'
        None made (``payer.kind is missing``...): the invoice is refused for it."""
        found: dict[tuple[str, tuple[str | int, ...] | str], list[_Shaped]] = {}
        for shaped in ctx.shapes or ():
            key = (shaped.base, shaped.parts if shaped.parts is not None
                   else shaped.binding.where)
            found.setdefault(key, []).append(shaped)
        said = {(s.binding.where, s.origin) for s in ctx.shapes or ()}
        problems = []
        for (base, _), readers in found.items():
            first = readers[0]
            record = base
            if first.parts is not None and not self.csv:
                record = base + json_path(first.parts)
            elif first.parts is not None:  # a column an expression reads a key of
                record = f"{base} column '{first.parts[0]}'"
            readers = sorted({(r.binding.where, r.reads): r for r in readers}.values(),
                             key=lambda r: _line_of(r.binding.where))
            listed = [f"{r.binding.where.rsplit(': ', 1)[-1]} (line "
                      f"{_line_of(r.binding.where)}) reads {r.reads}" for r in readers[:8]]
            if len(readers) > 8:
                listed.append(f"and {len(readers) - 8} more")
            said_by = (f"{len(readers)} bindings read through it: " if len(readers) > 1
                       else "")
            if first.parts is None:  # a step of an expression: no path of the input's
                said_by = "the expression of "
            problems.append(Problem(
                "input.type", f"{json_kind(first.value)} where {first.expected} is expected: "
                f"{said_by}{', '.join(listed)}", record=record,
                mapping=readers[0].binding.where, invoice=ctx.invoice))
        result.problems[:] = problems + [p for p in result.problems
                                         if (p.mapping, p.record) not in said]
        result.title = result.left_out = None

    def _build(self, src: SourceInvoice, ctx: _Ctx) -> BuildResult:
        if self._columns_to_check is not None:
            self.check_columns(src)
        if self.paths is not None and self.paths.pending:
            try:  # it evaluates bindings.lines, when an expression
                self.paths.see(src.record)
            except _budget.RenderTimeout:
                lines_binding = self.mapping.lines
                raise _stopped(ctx, f"{lines_binding.key}: the expression", None,
                               lines_binding.where) from None
        if self.debits.active:
            self.debits.see(src.record, src.origin)
        record = _stripped(src.record)
        scope = {"invoice": record, "collectivity": self.collectivity_scope}
        ev = _evaluator(ctx, record, scope)
        ctx.scope = scope

        number = ev(self.inv.get("number"))
        if _blank(number):
            ctx.problem("input.required", "invoice.number is missing"
                        f"{_reads_said(self.inv['number'], scope, self.csv)}",
                        mapping=self.inv["number"].where)
            return BuildResult(problems=ctx.problems)
        if not self._scalar(ctx, "invoice.number", number, self.inv["number"]):
            return BuildResult(problems=ctx.problems)
        number = str(number)
        ctx.invoice = number
        if len(number) > INVOICE_NUMBER_MAX and not self.recorded:
            # the store records it (and refuses it twice): it holds this many characters
            ctx.problem("input.invoice-number", f"invoice number is {len(number)} characters, "
                        f"pesgen allows {INVOICE_NUMBER_MAX}", mapping=self.inv["number"].where)
            return BuildResult(problems=ctx.problems)
        if number[:1] in FORMULA_START and not self.recorded:
            # the payment references CSV beside the file carries it: a spreadsheet opening
            # it would run the cell as a formula (=HYPERLINK(...) sends data away)
            ctx.problem("input.invoice-number", f"invoice number starts with "
                        f"{number[:1]!r}, which a spreadsheet opening the payment references "
                        "CSV would take for a formula", mapping=self.inv["number"].where)
            return BuildResult(problems=ctx.problems)
        if not number.isprintable() and not self.recorded and (
                bad := control_in(number, invisible=False)):
            # never part of a number: the state store, the payment references CSV and
            # every message carry the number as it is (a line break splits their lines)
            ctx.problem("input.invoice-number", f"invoice number {shown_repr(number)} holds "
                        f"the control character U+{ord(bad):04X} (a line break, a tab…): "
                        "correct it in the school software", mapping=self.inv["number"].where)
            return BuildResult(problems=ctx.problems)
        if self.number_written and not self.recorded and not self._number_fits(ctx, number):
            return BuildResult(problems=ctx.problems)
        if not self.recorded and (bad := format_char_in(number)):
            # (after _number_fits: a format writing the number refuses it for its charset
            # first) nothing shows it, in a listing, a spreadsheet or a search: the state
            # store, the payment references CSV and the school would each hold another
            # number than the one support staff read and type
            shows = ("an invisible bidirectional control: a listing shows the number "
                     "without it, or its characters reordered (another number), and a "
                     "search by what it shows misses it" if bad in _BIDI_CONTROLS else
                     "an invisible format character: a listing shows the number without "
                     "it (a search by what it shows misses it)")
            # a text's soft hyphen policies.transliterate drops: not the number's
            why = ("policies.transliterate drops a soft hyphen from a text, never from "
                   "an identifier" if bad == "\u00ad" else
                   "an identifier is never transliterated nor replaced")
            ctx.problem("input.invoice-number", f"invoice number '{shown_number(number)}' holds "
                        f"{named(bad)}, {shows}; no policy removes it ({why}): correct it in "
                        "the school software", mapping=self.inv["number"].where)
            return BuildResult(problems=ctx.problems)
        key = self.seen.key_of(number)  # (invoice_key; a recorded run's: as written)
        other = self.seen.find(key)
        if other is not None:
            lookalike = written_otherwise(number, other)
            if lookalike:
                text = f"invoice number {lookalike}, which already appears at {self.seen[other]}"
            else:
                if other != number:
                    hint = f" as {other} (invoice numbers are compared ignoring case and spaces)"
                else:
                    withdrawn = self._sums_refused.pop(number, None) if self.csv else None
                    also = ""
                    if withdrawn:
                        # its total and netting, checked on its first rows alone: checked
                        # again on all its rows once sorted
                        self.withdrawn += withdrawn
                        rules = " and ".join(dict.fromkeys(p.rule for p in withdrawn))
                        also = (f"; {rules}, said of its rows above alone, is left out: "
                                "checked on all its rows once sorted")
                    hint = (" (rows of one invoice must be contiguous: sort the export by "
                            f"its column '{self.mapping.input.group_by}', input.group_by"
                            f"{also})" if self.csv else "")
                text = f"invoice number {number} already appears at {self.seen[other]}{hint}"
            ctx.problem("input.duplicate-invoice", text, mapping=self.inv["number"].where)
            return BuildResult(problems=ctx.problems)
        index = self.seen.add(key, number, src.origin)

        if self.csv and src.lines and len(src.lines) > 1:
            self._check_csv_consistency(ctx, src)

        held = None if self.exported is None else self.exported.get(key)
        if held is not None and held.amount is None:  # a recorded run left it out so
            return self._left_as_held(src, number, held)
        # the values the case policy changes are counted for the run: not those of an
        # invoice left out (held already, or of a zero total), whose lines are read first
        cased = dict(self.cased) if held is not None or self._zero_left_out else None
        lines = self._lines(ctx, src, record)
        # the lines' sum, once: the invoice's total (lines netted later keep it)
        total = None if lines is None else sum((ln.amount for ln in lines), _ZERO)
        if held is not None and total == held.amount:
            # its own problems (a direct debit date passed since it was billed) do not
            # count: it is not exported; at another amount it is refused (run.duplicate)
            self.cased = Counter(cased)
            return self._left_as_held(src, number, held)
        if self._zero_left_out and total == 0 and not ctx.problems:
            # policy zero_total: leave_out, its lines read and adding up to 0.00: left out
            # before its debtor, payment and dates are checked (none of them is written:
            # a family's missing civility does not refuse the run), with no note of its
            # own; its total as the export gives it is still checked (input.total)
            declared = self._amount(ctx, "invoice.total", ev(self.inv.get("total")),
                                    self.inv.get("total"))
            if ctx.problems:
                return BuildResult(problems=ctx.problems)
            if declared is None or declared == 0:
                self.cased = Counter(cased)
                return BuildResult(left_out=LeftOut(number, src.origin, "total is 0.00",
                                                    "zero_total"))
        debtor = self._debtor(ctx, ev)
        mandate = self._mandate(ctx, ev, debtor)
        joint = self._joint_debtor(ctx, ev)

        debt_number = ev(self.inv.get("debt_number"))
        debt = None
        if "debt_number" not in self.inv:
            pass  # formats without NumDette (format_fit requires it for pes-ormc)
        elif _blank(debt_number):
            binding = self.inv["debt_number"]
            # an expression that gives nothing ('invoice.number | digits' of a number
            # written in full-width digits) is there: say what it gave
            text = (f"is empty: its expression `{binding.text}` gave an empty value"
                    if binding.kind == "expr" else "is missing")
            ctx.problem("input.required", f"invoice.debt_number {text}", mapping=binding.where)
        elif self._scalar(ctx, "invoice.debt_number", debt_number, self.inv["debt_number"]):
            debt = str(debt_number)
            # ASCII digits only: '²'.isdigit() and '٤'.isdigit() are True too
            if not (debt.isascii() and debt.isdigit()) or len(debt) > 15 or int(debt) == 0:
                ctx.problem("pes.num-dette", f"NumDette '{debt}' must be 1 to 15 digits, > 0",
                            mapping=self.inv["debt_number"].where)
                debt = None
            elif int(debt) > DEBT_KEYED_MAX and not self.recorded:
                ctx.problem("pes.num-dette-keys", f"NumDette '{debt}' has {len(debt_key(debt))} "
                            f"significant digits: Cle1 and Cle2 are known over NumDette on "
                            f"{DEBT_KEYED_DIGITS} digits only (the legacy rôle format); over "
                            "more, the payment reference's keys would be pesgen's guess. "
                            f"Bind a NumDette of at most {DEBT_KEYED_DIGITS} digits",
                            mapping=self.inv["debt_number"].where)
                debt = None

        # the invoice's dates in this order; an unbound one is None (what _date gives for
        # an unbound binding, without a problem)
        invoice_date, due_date, service_from, service_to, asap_date = [
            None if binding is None else self._date(ctx, key, ev(binding), binding)
            for key, binding in self._invoice_dates]
        if asap_date is not None and self.issue_date is not None and not self.recorded and \
                asap_date < self.issue_date:
            # the title rule (pes.asap-date) says so too, but knows no mapping
            ctx.problem("pes.asap-date", f"DteAsp {asap_date} is before DteBordEm "
                        f"{self.issue_date}", mapping=self.inv["asap_date"].where)
        obj = self._text(ctx, "title.object", ev(self.inv.get("object")), self.inv.get("object"))
        declared_total = self._amount(ctx, "invoice.total", ev(self.inv.get("total")),
                                      self.inv.get("total"))

        if lines is None or ctx.problems:
            return BuildResult(problems=ctx.problems, notes=ctx.notes)

        if declared_total is not None and declared_total != total:
            ctx.problem("input.total", f"the lines add up to {total}, the invoice total is "
                        f"{declared_total}", mapping=self.inv["total"].where)
            return BuildResult(problems=ctx.problems, notes=ctx.notes)
        if total == 0:  # policy refuse (leave_out left it out once its lines were read)
            ctx.problem("pes.zero-total", "total is 0.00: a title must be > 0 "
                        "(policy zero_total: refuse): to leave it out of the export and "
                        "report it, set policies.zero_total: leave_out",
                        mapping=self.mapping.where("policies"))
            return BuildResult(problems=ctx.problems, notes=ctx.notes)
        # total is None only when lines is, returned above (no check per invoice for mypy)
        if total < 0:  # type: ignore[operator]
            # the total is the lines' sum: named by the binding their amounts come from
            amount_binding = self._line_bindings[1]
            assert amount_binding is not None  # required: the lines were read with it
            ctx.problem("pes.negative-total", f"total is {total}: a credit cannot be a title",
                        mapping=amount_binding.where)
            return BuildResult(problems=ctx.problems, notes=ctx.notes)
        if total > MAX_AMOUNT:  # type: ignore[operator]
            # MtHT and MtBordHt are Base_Montant: the title rule (pes.amounts) says so too,
            # but knows no mapping; named here by the binding the amounts come from
            amount_binding = self._line_bindings[1]
            assert amount_binding is not None
            ctx.problem("pes.amounts", f"total {total} exceeds {MAX_AMOUNT} (Base_Montant: "
                        "14 digits, 12 before the decimal point); check the amounts' unit",
                        mapping=amount_binding.where)
            return BuildResult(problems=ctx.problems, notes=ctx.notes)

        lines = self._net(ctx, lines)
        if lines is None or debtor is None:
            return BuildResult(problems=ctx.problems, notes=ctx.notes)
        if self._priced:
            self._note_pricing(ctx, lines)
        if debt is not None:
            # '0202600101' and '202600101' are one NumDette (a number: Cle1, Cle2 and the
            # payment reference read it as one), whatever zeros the file carries
            debt_keyed = debt_key(debt)
            holder = self.seen.debt_holder(debt_keyed)
            if holder is not None:
                ctx.problem("pes.num-dette-unique", f"NumDette {debt} is already the debt "
                            f"number of invoice {holder[0]} ({holder[1]}): two titles would "
                            "share one payment reference",
                            mapping=self.inv["debt_number"].where)
                return BuildResult(problems=ctx.problems, notes=ctx.notes)
            self.seen.add_debt(index, debt_keyed, debt)

        title = _make_title(
            invoice_number=number, debt_number=debt, debtor=debtor, lines=tuple(lines),
            total=total, origin=src.origin, invoice_date=invoice_date, due_date=due_date,
            service_from=service_from, service_to=service_to,
            object=obj, asap_date=asap_date, mandate=mandate, joint_debtor=joint,
            period=self.mapping.payment_reference.period)
        return BuildResult(title=title, problems=ctx.problems, notes=ctx.notes)

    # ------------------------------------------------------------ parts

    def _check_csv_consistency(self, ctx: _Ctx, src: SourceInvoice) -> None:
        assert src.lines is not None
        first = src.lines[0]
        for row, origin in zip(src.lines[1:], src.line_origins[1:], strict=True):
            for col in self.invoice_columns:
                if row.get(col, "").strip() != first.get(col, "").strip():
                    ctx.problem("input.single-debtor", f"column '{col}' differs from the "
                                f"invoice's first row ({src.origin}): an invoice has one debtor "
                                "and one set of invoice values", record=origin,
                                mapping=self._invoice_readers[col].where)

    def _lines(self, ctx: _Ctx, src: SourceInvoice, record: dict[str, Any]) -> list[Line] | None:
        if self.csv:
            # stripped as the record is (its first row is the record, stripped already)
            rows = [record if row is src.record else _stripped(row) for row in src.lines or []]
            origins = src.line_origins
        else:
            raw = _evaluate(ctx, record, {"invoice": record, "collectivity":
                                          self.collectivity_scope}, None, self.mapping.lines)
            if not isinstance(raw, list) or not raw:
                what = f"lines that are {_shape(raw) or _text_kind(raw)}, not a list" \
                    if isinstance(raw, (str, int, float, Decimal, dict)) else "no lines"
                ctx.problem("input.lines", f"the invoice has {what} (bindings.lines must "
                            "give a non-empty list)", mapping=self.mapping.lines.where)
                return None
            # a path's list is the stripped record's own; an expression's is stripped here
            rows = raw if self.mapping.lines.kind == "path" else [_stripped(r) for r in raw]
            origins = [_line_origin(src.origin, self.mapping.lines.text, i)
                       for i in range(len(raw))]
        out: list[Line] = []
        ok = True
        acts = self.mapping.codes.activities
        b_activity, b_amount, b_label, b_quantity, b_unit_price, b_student = self._line_bindings
        collectivity, evaluate = self.collectivity_scope, _evaluate
        for index, (row, origin) in enumerate(zip(rows, origins, strict=True), start=1):
            if not isinstance(row, dict):
                what = "null" if row is None else _shape(row) or _text_kind(row)  # JSON null
                ctx.problem("input.lines", f"a line must be an object, not {what}",
                            record=origin, mapping=self.mapping.lines.where)
                ok = False
                continue
            scope = {"invoice": record, "line": row, "collectivity": collectivity}
            before = len(ctx.problems)
            code = evaluate(ctx, row, scope, origin, b_activity)
            activity = None
            if not self._scalar(ctx, "line.activity", code, b_activity, origin):
                pass
            elif _blank(code):
                ctx.problem("input.required", "line.activity is missing"
                            f"{_reads_said(b_activity, scope, self.csv)}",
                            mapping=self.line["activity"].where, record=origin)
            else:
                activity = acts.get(str(code))
                if activity is None:
                    ctx.problem("codes.activity", f"unknown activity code '{code}' (add it to "
                                "codes.activities)"
                                + (other_case(str(code), acts, "codes.activities")
                                   or close_codes(str(code), acts, "codes.activities")),
                                mapping=self.mapping.where("codes", "activities"),
                                record=origin)
            raw_amount = evaluate(ctx, row, scope, origin, b_amount)
            amount = self._amount(ctx, "line.amount", raw_amount, b_amount, origin)
            if amount is None and _blank(raw_amount):
                ctx.problem("input.required", "line.amount is missing"
                            f"{_reads_said(b_amount, scope, self.csv)}",
                            mapping=self.line["amount"].where, record=origin)
            label_value = evaluate(ctx, row, scope, origin, b_label)
            if _blank(label_value) and activity is not None:
                label_value = activity.get("label")
            label = self._text(ctx, "line.label", label_value, b_label, origin=origin)
            quantity = self._amount(ctx, "line.quantity",
                                    evaluate(ctx, row, scope, origin, b_quantity), b_quantity,
                                    origin)
            unit_price = self._amount(ctx, "line.unit_price",
                                      evaluate(ctx, row, scope, origin, b_unit_price),
                                      b_unit_price, origin)
            student = evaluate(ctx, row, scope, origin, b_student)
            if self.student_written and not self.recorded:
                # a text as a label is, the case, transliterate and newlines policies
                # applied, a control or format character refused (a recorded run's was
                # written as exported)
                student = self._text(ctx, "line.student", student, b_student, origin=origin)
            elif self._scalar(ctx, "line.student", student, b_student, origin) and \
                    student is not None:
                student = str(student)
            if len(ctx.problems) > before or activity is None or amount is None:
                ok = False
                continue
            out.append(_make_line(
                number=index, product_code=activity["product"], nature=activity["nature"],
                amount=amount, activity=str(code), label=label,
                fonction=activity.get("fonction"), operation=activity.get("operation"),
                quantity=quantity, unit_price=unit_price,
                student=student, origin=origin))
        return out if ok else None

    def _note_pricing(self, ctx: _Ctx, lines: list[Line]) -> None:
        """A line whose exported quantity and unit price do not multiply to its amount
        (as netted), or that has one of them without the other, is noted: a format
        carrying them writes it, through the ``pricing`` filter, as 1 x its amount (what
        was exported dropped); the note gives the line's position (``PolicyNote.line``),
        which the export reads to name the binding of a value refused there."""
        for k, ln in enumerate(lines, 1):
            q, u = ln.quantity, ln.unit_price
            if (q is None) != (u is None):
                # one exported without the other: the file's 1 x amount drops the one
                # given (a line with neither has nothing to drop, and is not noted)
                given = (f"a quantity ({q}) without a unit price" if u is None
                         else f"a unit price ({u}) without a quantity")
                ctx.note("pricing", f"line {ln.number}: {given}: the pricing filter "
                         f"gives 1 × {ln.amount}", str(k))
            elif q is not None and u is not None and not (q > 0 and q * u == ln.amount):
                # a quantity of 0 or less is none the filter writes, though its price's
                # sign may make the product the amount (-0.5 x -285.00): said as such
                why = (f"is not its amount ({ln.amount})" if q * u != ln.amount
                       else f"gives its amount, but a quantity of {q} is not above 0")
                ctx.note("pricing", f"line {ln.number}: quantity × unit price ({q} × {u}) "
                         f"{why}: the pricing filter gives 1 × {ln.amount}", str(k))

    def _net(self, ctx: _Ctx, lines: list[Line]) -> list[Line] | None:
        """Apply the negative_lines policy; return lines all > 0, renumbered."""
        if all(ln.amount > 0 for ln in lines):
            return lines
        if self.policies.negative_lines != "net":
            for ln in lines:
                if ln.amount <= 0:
                    ctx.problem("pes.line-amount", f"line {ln.number} amount is {ln.amount}: "
                                "PES amounts must be > 0 (policy negative_lines: refuse): to "
                                "net a discount into the positive lines of the same "
                                "imputation, and leave a line of 0 out of the file, set "
                                "policies.negative_lines: net",
                                record=ln.origin, mapping=self.mapping.where("policies"))
            return None
        amounts = [ln.amount for ln in lines]
        taken = [_ZERO] * len(lines)  # what the negative lines netted into each line
        # each negative line's (index of the line netted into, amount), noted once the
        # file's numbering is known
        netted_into: dict[int, list[tuple[int, Decimal]]] = {}
        key = [(ln.product_code, ln.nature, ln.fonction, ln.operation) for ln in lines]
        for i, ln in enumerate(lines):
            if ln.amount >= 0:
                continue
            due = -ln.amount
            amounts[i] = _ZERO
            targets = [j for j in range(len(lines)) if key[j] == key[i] and amounts[j] > 0]
            for j in targets:
                take = min(due, amounts[j])
                amounts[j] -= take
                taken[j] += take
                due -= take
                netted_into.setdefault(i, []).append((j, take))
                if due == 0:
                    break
            if due > 0:
                ctx.problem("pes.netting", f"line {ln.number} ({ln.amount}) exceeds the "
                            f"positive lines of the same imputation ({ln.activity}) by {due}",
                            record=ln.origin,
                            mapping=self.mapping.where("policies", "negative_lines"))
                return None
        out: list[Line] = []
        ok = True
        in_file: dict[int, int] = {}  # a line's index -> its number in the file
        for i, (ln, amount, netted) in enumerate(zip(lines, amounts, taken, strict=True)):
            if amount > 0:
                label = ln.label
                if netted and self.policies.netted_label == "append" and label is not None:
                    label = self._netted_label(ctx, ln, netted)
                    ok = ok and label is not None
                out.append(Line(**{**_fields(ln), "amount": amount, "number": len(out) + 1,
                                   "label": label}))
                in_file[i] = len(out)
            elif ln.amount == 0:
                at = f" ({ln.origin})" if ln.origin else ""
                ctx.note("negative_lines", f"invoice line {ln.number} of amount 0{at}: not "
                         "in the file")
        # one note a negative line: the lines are renumbered in the file (IdLigne), so
        # each line is named by the invoice's numbering and by the file's, and a line
        # left out by its input record (a CSV's row: "line 4" of an invoice is not the
        # file's fourth row)
        for i, into in netted_into.items():
            ln = lines[i]
            parts = [f"{take} into invoice line {lines[j].number} "
                     + (f"(line {in_file[j]} of the title in the file)" if j in in_file else
                        "(netted to 0: not in the file)") for j, take in into]
            at = f"; {ln.origin}" if ln.origin else ""
            ctx.note("negative_lines", f"invoice line {ln.number} ({ln.amount}, "
                     f"{ln.activity}{at}), not in the file: netted {'; '.join(parts)}")
        return out if ok else None

    def _netted_label(self, ctx: _Ctx, ln: Line, netted: Decimal) -> str | None:
        """policies.netted_label: append: the label of a line the negative lines netted
        into says so (its amount is no longer what the label's activity costs: DT v5.19
        InfoLignePiece, "ObjLignePce correspondra à l'ObjetPiece du sous-article"). An
        over-long result follows text_overflow: truncate shortens the label's own text,
        never the suffix; refuse refuses it. None when refused."""
        assert ln.label is not None
        limit = self._limits["line.label"]
        where = self.mapping.where("policies", "netted_label")
        suffix = NETTED_SUFFIX.format(amount=f"{netted:.2f}".replace(".", ","))
        checked = normalize(suffix, limit.charset, self.text_policy)
        if checked.error:  # pesgen's own text: a charset without ',' or spaces
            ctx.problem("text.charset", f"line.label: the netted suffix '{suffix}' "
                        f"{checked.error}", mapping=where, record=ln.origin)
            return None
        suffix = checked.value
        label = f"{ln.label} - {suffix}"
        if limit.max is not None and len(label) > limit.max:
            room = limit.max - len(suffix) - len(" - ")
            if self.policies.text_overflow != "truncate" or room < 1:
                ctx.problem("text.length", f"line.label of line {ln.number} with its netted "
                            f"suffix ('{suffix}') is {len(label)} characters, "
                            f"{self._target} allows {limit.max} (policies netted_label: "
                            f"append, text_overflow: {self.policies.text_overflow})",
                            mapping=where, record=ln.origin)
                return None
            short = truncate_words(ln.label, room)
            ctx.note("text_overflow", f"line.label: {len(label)} characters with the netted "
                     f"suffix: the label shortened to {len(short)} before ' - {suffix}' "
                     f"(limit {limit.max})", field="line.label")
            label = f"{short} - {suffix}"
        ctx.note("netted_label", f"line {ln.number} ({ln.activity}): label ends '{suffix}' "
                 f"(policy netted_label: append)", field="line.label")
        return label

    def _joint_debtor(self, ctx: _Ctx, ev: Callable[[Binding | None], Any]) -> Debtor | None:
        """The joint debtor (tiers solidaire) when the mapping binds one and the invoice
        names one; checked like the debtor."""
        j = self.joint
        if not j or _blank(ev(j.get("name"))):
            return None
        payer = {k: v for k, v in j.items() if k not in _ADDRESS_KEYS}
        address = {k: v for k, v in j.items() if k in _ADDRESS_KEYS}
        return self._debtor(ctx, ev, payer, address)

    def _debtor(self, ctx: _Ctx, ev: Callable[[Binding | None], Any],
                payer: dict[str, Binding] | None = None,
                addr: dict[str, Binding] | None = None) -> Debtor | None:
        p = self.payer if payer is None else payer
        # the joint debtor's (_joint_debtor gives its bindings): its notes name its own
        # fields (joint_payer.name), and say whose they are
        joint = payer is not None
        before = len(ctx.problems)
        kind = ev(p.get("kind"))
        entry = None
        if not self._scalar(ctx, "payer.kind", kind, p.get("kind")):
            pass
        elif _blank(kind):
            ctx.problem("input.required", "payer.kind is missing"
                        f"{_reads_said(p['kind'], ctx.scope, self.csv)}", mapping=p["kind"].where)
        else:
            entry = self.mapping.codes.payer_kinds.get(str(kind))
            if entry is None:
                ctx.problem("codes.payer-kind", f"unknown payer kind '{kind}' (add it to "
                            "codes.payer_kinds)" + other_case(
                                str(kind), self.mapping.codes.payer_kinds, "codes.payer_kinds"),
                            mapping=self.mapping.where("codes", "payer_kinds"))
        is_person = entry is not None and entry["category"] == "01"
        name = self._text(ctx, "debtor.name", ev(p.get("name")), p.get("name"), required=True)
        said = len(ctx.problems)
        first_name = self._text(ctx, "debtor.first_name", ev(p.get("first_name")),
                                p.get("first_name"))
        # a first name refused for its own value (its length, charset, kind) is that one
        # problem, not a missing one too; the name's problems say nothing of it
        if is_person and first_name is None and len(ctx.problems) == said:
            ctx.problem("pes.first-name", "a person (CatTiers 01) needs a first name (Prenom)",
                        mapping=p["first_name"].where if "first_name" in p else None)
        raw_civility = ev(p.get("civility"))
        civility = None
        if self._scalar(ctx, "debtor.civility", raw_civility, p.get("civility")):
            if entry is not None and not is_person and not _blank(raw_civility) and \
                    not self.recorded:
                # Civilite is a person's: the DT asks one for a person (CatTiers 01), from
                # a closed list of persons' civilities, and has none for a legal person
                ctx.problem("pes.civility", f"civility {shown_repr(str(raw_civility))} given "
                            f"to a debtor that is no person (payer kind {str(kind)!r}, "
                            f"CatTiers {entry['category']}): a civility is a person's; the "
                            "export should leave it empty for this kind, or the mapping bind "
                            "the civility by an expression giving none for it",
                            mapping=p["civility"].where)
            else:
                civility = self._civility(ctx, raw_civility, p.get("civility"), is_person,
                                          joint)
        b_complement = p.get("complement_name")
        complement = None if b_complement is None else \
            self._text(ctx, "debtor.complement_name", ev(b_complement), b_complement)
        if name is not None:
            name, complement = self._split_name(ctx, name, complement, p.get("name"), ev,
                                                joint)
        ref = self._text(ctx, "debtor.ref", ev(p.get("ref")), p.get("ref"))
        national_id = ev(p.get("national_id"))
        id_kind = None  # NatIdTiers: told by the identifier's length
        if not self._scalar(ctx, "payer.national_id", national_id, p.get("national_id")):
            national_id = None
        elif not _blank(national_id):
            national_id, id_kind, id_problem = checked_national_id(str(national_id))
            if id_problem:
                ctx.problem("pes.siret", id_problem, mapping=p["national_id"].where)
        else:
            national_id = None
        b_birth = p.get("birth_date")
        birth = None if b_birth is None else \
            self._date(ctx, "payer.birth_date", ev(b_birth), b_birth)
        if birth is not None and is_person and self.issue_date is not None and \
                birth > self.issue_date and not self.recorded:
            assert b_birth is not None
            # a typo (a year, a day and month swapped), written as DteNaissance (the
            # finance packages' birth date) for the trésorerie to find a person by
            ctx.problem("input.birth-date", f"payer.birth_date {birth} is after the rôle's "
                        f"date (DteBordEm {self.issue_date}): no debtor is born after the "
                        "title is issued; correct it in the school software",
                        mapping=b_birth.where)
        address = self._address(ctx, ev, addr)
        email = ev(p.get("email"))
        self._scalar(ctx, "payer.email", email, p.get("email"))
        if len(ctx.problems) > before or entry is None or name is None or address is None:
            return None
        return _make_debtor(
            category=entry["category"], legal_nature=entry["legal_nature"], name=name,
            address=address, kind=str(kind), ref=ref, civility=civility, first_name=first_name,
            complement_name=complement, national_id=national_id,
            national_id_kind=id_kind,
            birth_date=birth if is_person else None,
            email=None if email is None else str(email))

    def _naming(self, pes: str, other: str) -> str:
        """What notes and problems call the fields and whose limits they are: ``pes``
        (the PES element beside the canonical field, Hélios) for a PES format, ``other``
        (the field alone, the format) for a finance package's, whose file has no Adr1,
        ComplNom or CodPays."""
        return pes if self._pes else other

    def _unfit(self, policy: str, filled: str, what: str) -> str:
        """Why a value over its limit is refused when splitting it would not help: the
        format writes ``filled`` joined again to ``what`` (mapping.policy-fit), or writes
        no ``filled`` at all (mapping.policy-lost)."""
        if self.unfit_splits.get(policy) == "lost":
            return (f"policy {policy}: refuse; split would not help: format "
                    f"{self.fmt.name} writes no {filled} (rule mapping.policy-lost): "
                    "shorten it in the school software")
        return (f"policy {policy}: refuse; split would not help: format {self.fmt.name} "
                f"writes {filled} joined again to {what}, where the two do not fit either "
                "(rule mapping.policy-fit): shorten it in the school software")

    def _split_name(self, ctx: _Ctx, name: str, complement: str | None,
                    binding: Binding | None, ev: Callable[[Binding | None], Any] | None = None,
                    joint: bool = False) -> tuple[str | None, str | None]:
        """``name`` split by policy name_overflow, or refused; ``ev`` reads the name as
        exported (``binding``), for a refusal to say what upper-casing made of its
        length; ``joint``: the joint debtor's name."""
        limit = self._limits["debtor.name"].max
        if limit is None or len(name) <= limit:
            return name, complement
        if self.policies.name_overflow == "split" and complement is None:
            parts = wrap_words(name, limit)
            # each half must itself be an acceptable Base_Texte (not '0', '.', 'nc')
            if len(parts) == 2 and not any(pes_text_error(x) for x in parts):
                ctx.note("name_overflow", f"{_whose(joint)}name of {len(name)} characters "
                         "split into " +
                         self._naming(f"Nom ({len(parts[0])}) + ComplNom ({len(parts[1])}): "
                                      "debtor.name + debtor.complement_name",
                                      f"debtor.name ({len(parts[0])}) + "
                                      f"debtor.complement_name ({len(parts[1])})"),
                         field=_own("debtor.name", joint))
                return parts[0], parts[1]
        why = (f"{self._naming('ComplNom', 'debtor.complement_name')} already used"
               if complement is not None and
               self.policies.name_overflow == "split" else
               self._unfit("name_overflow", "debtor.complement_name", "the name")
               if "name_overflow" in self.unfit_splits else
               "policy name_overflow: refuse: set policies.name_overflow: split to put its "
               f"end into {self._naming('ComplNom', 'debtor.complement_name')} when that is "
               "empty" if self.policies.name_overflow != "split" else
               "no split into two lines fits")
        grown = _case_grown(ev and ev(binding), self.text_policy.case)
        ctx.problem("text.length", f"{_said('debtor.name', binding)} is {len(name)} "
                    f"characters{grown}, "
                    f"{self._target} allows {limit} ({why})",
                    mapping=binding.where if binding else None)
        return None, complement

    def _civility(self, ctx: _Ctx, raw: Any, binding: Binding | None,
                  is_person: bool, joint: bool = False) -> str | None:
        """The civility sent (codes.civility, policy missing_civility), or None; refused
        as ``ctx`` says. ``joint``: the joint debtor's, whose notes say so."""
        table = self.mapping.codes.civility
        value: str | None = None
        if not _blank(raw):
            raw = str(raw)
            if table is not None:
                if raw not in table:
                    # a table entry would give every couple one civility, whoever the
                    # payer named is
                    couple = ("; a couple's civility names two persons, and a title has one "
                              "debtor: the export should give the civility of the payer it "
                              "names (first name included)" if _COUPLE.search(raw) else "")
                    add = (f"add it to codes.civility as Madame: '{raw}': "
                           f"{_madame(table)}, since Hélios rejects Mademoiselle"
                           if is_mademoiselle(raw) else
                           f"add it to codes.civility: '{raw}': the civility to send, as "
                           "the table's other entries")
                    ctx.problem("codes.civility", f"civility '{raw}' is not in codes.civility "
                                f"({add}){couple}"
                                + other_case(raw, table, "codes.civility"),
                                mapping=self.mapping.where("codes", "civility"))
                    return None
                value = table[raw]
                if value != raw:
                    ctx.note("civility", f"{_whose(joint)}'{raw}' sent as '{value}'",
                             field=_own("debtor.civility", joint))
            else:
                value = raw
                if (message := civility_problem(None, raw)) is not None:
                    # said of the civility as exported, before a text policy (a length
                    # one included) could make it another value; what sends it
                    ctx.problem("pes.civility", f"{message}: send it as Madame, with a "
                                f"codes.civility table ('{raw}': MME, and an entry for "
                                "each civility the export holds)",
                                mapping=binding.where if binding else None)
                    return None
        if value is None and is_person:
            if self.policies.missing_civility == "default":
                value = self.policies.default_civility
                field = _own("debtor.civility", joint)
                ctx.note("missing_civility", f"{_whose(joint)}no civility: '{value}' used"
                         f"{self._unwritten_said(field)}", field=field)
            else:
                ctx.problem("pes.civility", "a person (CatTiers 01) needs a civility "
                            "(policy missing_civility: refuse): to send a civility of your "
                            "choice for a person without one, set policies.missing_civility: "
                            "default and policies.default_civility",
                            mapping=binding.where if binding else None)
                return None
        if value is None:
            return None
        coded = table is not None or value is not raw
        if coded and not self.legacy:
            # a code of codes.civility or policies.default_civility: written for the
            # target, sent as written (no case, transliterate or newlines policy);
            # format_fit checked it against the field's charset and limit
            return value
        sent = self._text(ctx, "debtor.civility", value, binding)
        if sent is not None and not coded:
            error = None if self.recorded else not_taken(sent, self.fmt, "debtor.civility")
            if error:  # (a recorded run is rebuilt as it was: its XSD passed it)
                same = same_but_case(sent, self.fmt.limit("debtor.civility").values or ())
                changed = f" (exported as {raw!r}, changed by the text policies)" \
                    if sent != raw else ""
                ctx.problem("codes.civility", f"the civility {sent!r}{changed} {error}: "
                            "without a codes.civility table each civility is sent as "
                            "exported; add the table, giving each civility of the export "
                            "one the format takes, sent as written"
                            + (f" ({raw!r}: {same!r})" if same else ""),
                            mapping=binding.where if binding else None)
                return None
            self.uncoded_civilities[raw] = None
        return sent

    def _address(self, ctx: _Ctx, ev: Callable[[Binding | None], Any],
                 addr: dict[str, Binding] | None = None) -> Address | None:
        a = self.addr if addr is None else addr
        joint = addr is not None  # the joint debtor's address (bindings.joint_payer)
        before = len(ctx.problems)
        b_complement, b_locality = a.get("complement"), a.get("locality")
        complement = None if b_complement is None else \
            self._text(ctx, "address.complement", ev(b_complement), b_complement)
        locality = None if b_locality is None else \
            self._text(ctx, "address.locality", ev(b_locality), b_locality)
        # a street or a city left unbound is empty: the mapping may leave them out only
        # when no template of its format writes them (coverage.WRITTEN_ONLY)
        b_street, b_city = a.get("street"), a.get("city")
        street = "" if b_street is None else \
            self._text(ctx, "address.street", ev(b_street), b_street, required=True)
        city = "" if b_city is None else \
            self._text(ctx, "address.city", ev(b_city), b_city, required=True)
        postal = ev(a.get("postal_code"))
        if not self._scalar(ctx, "address.postal_code", postal, a.get("postal_code")):
            return None
        postal = None if _blank(postal) else str(postal).strip()
        country = ev(a.get("country"))
        if not self._scalar(ctx, "address.country", country, a.get("country")):
            return None
        country = "FR" if _blank(country) else str(country).strip().upper()
        home = self._in_france.get(country)
        in_france = home is not None
        if postal is None and in_france:  # abroad, Ville takes the postal code if any
            ctx.problem("input.required", f"{_said('address.postal_code', a.get('postal_code'))} "
                        f"is missing{_reads_said(a['postal_code'], ctx.scope, self.csv)}",
                        mapping=a["postal_code"].where)
        if len(ctx.problems) > before or street is None or city is None or \
                (postal is None and in_france):
            return None
        limit = self._limits["address.street"].max
        if limit is not None and len(street) > limit:
            if self.policies.street_overflow == "split" and complement is None:
                parts = self._split_street(ev(a.get("street")), street, limit)
                if not parts:
                    ctx.problem("text.length", f"{_said('address.street', a.get('street'))} "
                                f"is {len(street)} characters and cannot be split into two "
                                f"lines of {limit}: {_SHORTEN_STREET}",
                                mapping=a["street"].where)
                    return None
                full_length = len(street)
                complement, street = parts
                ctx.note("street_overflow", f"{_whose(joint)}street of {full_length} "
                         "characters split into " +
                         self._naming(f"Adr1 ({len(complement)}) + Adr2 ({len(street)}): "
                                      "address.complement + address.street",
                                      f"address.complement ({len(complement)}) + "
                                      f"address.street ({len(street)})"),
                         field=_own("address.street", joint))
            else:
                why = (f"{self._naming('Adr1', 'address.complement')} already holds the "
                       f"complement: {_SHORTEN_STREET}" if complement is not None and
                       self.policies.street_overflow == "split"
                       else self._unfit("street_overflow", "address.complement", "the street")
                       if "street_overflow" in self.unfit_splits
                       else "policy street_overflow: refuse: set policies.street_overflow: "
                       "split to put its start into "
                       f"{self._naming('Adr1', 'address.complement')} when that is empty")
                grown = _case_grown(ev(a.get("street")), self.text_policy.case)
                ctx.problem("text.length", f"{_said('address.street', a.get('street'))} is "
                            f"{len(street)} characters"
                            f"{grown}, {self._target} allows {limit} ({why})",
                            mapping=a["street"].where)
                return None
        if in_france:
            assert postal is not None
            if not (len(postal) == 5 and postal.isascii() and postal.isdigit()):
                # the joint debtor's address is bound under bindings.joint_payer
                country_key = _own("address.country", joint)
                unbound = "" if "country" in a else (
                    f" (bindings.{country_key} is not bound: every address is taken as "
                    "French)")
                ctx.problem("pes.postal-code", f"postal code '{postal}' must be 5 digits in "
                            f"France{unbound or _postal_hint(postal)}",
                            mapping=a["postal_code"].where)
                return None
            return _make_address(street=street, postal_code=postal, city=city,
                                 complement=complement, locality=locality, country=home)
        if self.policies.foreign_address != "postal_code_in_city":
            written = self._naming(
                "CP 99999, the postal code before the city, CodRes 1, CodPays from "
                "codes.countries", "address.postal_code 99999, the postal code before "
                "address.city, address.country_code from codes.countries")
            # France written out ('France', 'FRANCE METROPOLITAINE', 'FRA') is no foreign
            # address: the policy would be the wrong advice, codes.countries the fix
            how = (f"{_france_written_out(country)}, not policies.foreign_address, which "
                   f"writes an address abroad ({written})" if _spells_france(country) else
                   f"to write it as an address abroad ({written}), set "
                   "policies.foreign_address: postal_code_in_city")
            ctx.problem("pes.foreign-address", f"address in '{country}' (policy foreign_address: "
                        f"refuse): {how}",
                        mapping=a["country"].where if "country" in a else None)
            return None
        insee = self._countries.get(country)
        if insee is None:
            add = (f": {_france_written_out(country)}" if _spells_france(country) else
                   f" (add it to codes.countries: {country}: its INSEE country code, 3 digits: "
                   "the last three of the 5-digit code the INSEE gives a country abroad, "
                   'Belgium 99131: "131")')
            ctx.problem("codes.country", f"no INSEE country code for '{country}' in "
                        f"codes.countries{add}",
                        mapping=self.mapping.where("codes", "countries"))
            return None
        said = len(ctx.problems)
        foreign_city = "" if b_city is None else self._text(
            ctx, "address.city", f"{postal} {city}" if postal else city, b_city)
        if foreign_city is None:
            if postal:  # the city's length, charset or forbidden character: the postal
                # code's part said, which the city as exported lacks (e.magnus's ';')
                ctx.problems[said:] = [replace(p, message=(
                    f"{p.message} (address.city is written with the foreign postal code "
                    f"{shown_repr(postal)} before it: policy foreign_address: "
                    "postal_code_in_city)")) for p in ctx.problems[said:]]
            return None
        shown = f"'{postal} …'" if postal else "without postal code"
        # only the values a file holds: the CP, Ville and CodPays no template reads (a
        # package writing no country code, or no address) are said not written, unnamed;
        # the city unbound (WRITTEN_ONLY left out) as well
        unbound_city = b_city is None
        unread = [key for key in ("postal_code", "country_code")
                  if _own(f"address.{key}", joint) in self.unwritten_address]
        city_key = _own("address.city", joint)
        if not unbound_city and (city_key in self.unwritten_address or
                                 city_key in self.unwritten_texts):
            unread.insert(1, "city")
        named = [(key, pes, other) for key, pes, other in (
            ("postal_code", "CP 99999", "address.postal_code 99999"),
            ("city", f"Ville {shown}", f"address.city {shown}"),
            ("country_code", f"CodPays {insee}", f"address.country_code {insee}"))
            if key not in unread and not (key == "city" and unbound_city)]
        said_parts = [self._naming(
            ", ".join(pes for _, pes, _ in named) + " (" +
            ", ".join(f"address.{key}" for key, _, _ in named) + ")",
            ", ".join(other for _, _, other in named))] if named else []
        if unread:
            names = [_own(f"address.{key}", joint) for key in unread]
            said_parts.append(f"no template of format {self.fmt.name} writes " + (
                names[0] if len(names) == 1 else
                f"{', '.join(names[:-1])} or {names[-1]}"))
        if unbound_city:
            said_parts.append(f"no city written (bindings.{city_key} is not bound)")
        how = "; ".join(said_parts)
        if postal and (unbound_city or "city" in unread):
            # no file holds the city: the foreign postal code it would hold went nowhere
            how += f": the foreign postal code {shown_repr(postal)} is in no file"
        ctx.note("foreign_address", f"{_whose(joint)}{country}: {how}",
                 field=_own("address.country", joint))
        return _make_address(street=street, postal_code="99999", city=foreign_city,
                             complement=complement, locality=locality, country=country,
                             resident=False, country_code=insee)

    def _unwritten_said(self, field: str) -> str:
        """What a policy note on ``field`` adds when no file of the format holds it: the
        policy let the title through (it is not refused), but changed no file."""
        if field not in self.unwritten_texts:
            return ""
        return (f" (format {self.fmt.name} does not write {field}, declared not carried: "
                "the title is not refused, no file holds the value)")

    def _split_street(self, raw: Any, street: str, limit: int) -> tuple[str, str] | None:
        """(Adr1, Adr2) for an over-long street: split where the export had a line break,
        else after a comma, else at a word boundary. Split at a line break or a comma, the
        street is two parts of an address: the one that starts with the street number
        goes to Adr2 (postal norm: number and street), the other to Adr1. Cut at a word
        boundary, it is one street too long for a line: its start goes to Adr1 and the
        rest to Adr2, so that the lines read in order ('123 AVENUE DU MARECHAL DE LATTRE
        DE' then 'TASSIGNY PROLONGEE', never the end of the street's name first)."""
        def fits(part: str) -> bool:  # each half is a valid Base_Texte38 on its own
            return 0 < len(part) <= limit and pes_text_error(part) is None

        parts: list[str] = []
        raw_lines = [x for x in re.split(r"[\r\n]+", str(raw or "")) if x.strip()]
        if len(raw_lines) == 2:
            halves = [normalize(x, self._limits["address.street"].charset, self.text_policy)
                      for x in raw_lines]
            if all(h.error is None and fits(h.value) for h in halves):
                parts = [h.value for h in halves]
        if not parts:
            for m in reversed(list(re.finditer(r", ", street))):
                head, tail = street[: m.start()].rstrip(), street[m.end():]
                if fits(head) and fits(tail):
                    parts = [head, tail]
                    break
        if not parts:
            parts = wrap_words(street, limit)
            if len(parts) != 2 or not all(fits(x) for x in parts):
                return None
            return _street_order(parts[0], parts[1], cut=True, before=self.street_before)
        return _street_order(parts[0], parts[1], cut=False, before=self.street_before)

    def _mandate(self, ctx: _Ctx, ev: Callable[[Binding | None], Any],
                 debtor: Debtor | None) -> Mandate | None:
        p = self.pay
        flag = ev(p.get("direct_debit"))
        if _blank(flag):
            return None
        methods = self.mapping.codes.payment_methods
        if methods is not None:
            # the export's payment method, which only the table turns into yes or no: a
            # JSON true, 1 or 'oui' is no method of it, never read as a yes/no value
            if not isinstance(flag, str):
                ctx.problem("codes.payment-method", f"payment.direct_debit: the payment method "
                            f"is {json_kind(flag)}, not a text of codes.payment_methods",
                            mapping=p["direct_debit"].where)
                return None
            if flag not in methods:
                ctx.problem("codes.payment-method", f"payment.direct_debit: unknown payment "
                            f"method '{flag}' (add it to codes.payment_methods: true for a "
                            "direct debit, false otherwise)"
                            + other_case(flag, methods, "codes.payment_methods"),
                            mapping=self.mapping.where("codes", "payment_methods"))
                return None
            if not methods[flag]:
                return None
        else:
            try:
                _refuse_kind(flag, "a yes/no value", bool)
                if not parse_bool(flag):
                    return None
            except ValueError as exc:
                ctx.problem("input.bool", f"payment.direct_debit: {exc} (yes/no, true/false, "
                            "oui/non, o/n, y/n, 1/0; empty: no): a binding reading the "
                            "export's payment method says which methods are direct debits in "
                            "codes.payment_methods (docs/mapping-reference.md, "
                            "bindings.payment.direct_debit)", mapping=p["direct_debit"].where)
                return None
        before = len(ctx.problems)

        def need(name: str, expected: str = "a text") -> Any:
            value = ev(p.get(name))
            if not self._scalar(ctx, f"payment.{name}", value, p.get(name), expected=expected):
                return None
            if _blank(value):
                # a value the mapping does not bind is no value the export lacks: say so
                unbound = "" if name in p else (
                    f": bindings.payment.{name} is not bound (bind it to the export's column "
                    "or key, or give it as {const: ...})")
                ctx.problem("input.required",
                            f"payment.{name} is missing for a direct debit{unbound}"
                            f"{_reads_said(p.get(name), ctx.scope, self.csv)}",
                            mapping=p[name].where if name in p else self.mapping.where("bindings",
                                                                                      "payment"))
                return None
            return value

        # a RUM need() found missing is said once, as payment.rum (required: a '.' given
        # as one is refused, not left out as an optional placeholder)
        raw_rum = need("rum")
        rum = None if raw_rum is None else self._text(ctx, "mandate.rum", raw_rum, p.get("rum"),
                                                      required=True)
        signed = self._date(ctx, "payment.mandate_signed_on",
                            need("mandate_signed_on", "a date"), p.get("mandate_signed_on"))
        debit = self._date(ctx, "payment.debit_date", need("debit_date", "a date"),
                           p.get("debit_date"))
        if debit is not None and not self.recorded:
            self._check_debit_date(ctx, debit, p["debit_date"])
        if signed is not None and debit is not None and not self.recorded and \
                (message := mandate_date_problem(signed, debit)) is not None:
            # the title rule (sepa.mandate) says so too, but knows no mapping
            ctx.problem("sepa.mandate", message, mapping=p["mandate_signed_on"].where)
        raw_seq = need("sequence")
        sequence = None
        if raw_seq is not None:
            sequence = self.mapping.codes.sepa_sequences.get(str(raw_seq))
            if sequence is None:
                known = (" (add it to codes.sepa_sequences, with its SequencePres: 01 "
                         "OOFF, 02 FRST, 03 RCUR, 04 FNAL)") if self.mapping.data["codes"].get(
                    "sepa_sequences") else (
                    " (no codes.sepa_sequences: pesgen knows "
                    f"{', '.join(self.mapping.codes.sepa_sequences)}; add the table)")
                ctx.problem("codes.sepa-sequence", f"unknown SEPA sequence '{raw_seq}'{known}"
                            + other_case(str(raw_seq), self.mapping.codes.sepa_sequences,
                                         "codes.sepa_sequences"),
                            mapping=self.mapping.where("codes", "sepa_sequences"))
        iban = need("iban")
        if iban is not None:
            iban = self._bank_code(ctx, "IBAN", str(iban), p["iban"])
        raw_bic = ev(p.get("bic"))
        if not self._scalar(ctx, "payment.bic", raw_bic, p.get("bic")):
            raw_bic = None
        bic = None if _blank(raw_bic) else self._bank_code(ctx, "BIC", str(raw_bic), p["bic"])
        if iban is not None and _blank(raw_bic) and not self.recorded and \
                (message := bic_abroad_problem(iban, None)):
            ctx.problem("sepa.bic-abroad", message, mapping=p["bic"].where if "bic" in p
                        else p["iban"].where)
        holder_raw = ev(p.get("holder"))
        defaulted = _blank(holder_raw) and debtor is not None
        if defaulted:
            assert debtor is not None
            holder_raw = " ".join(x for x in (debtor.name, debtor.first_name) if x)
            ctx.note("account_holder", "account.holder: empty, the debtor's name is used" +
                     self._naming(" (TitCpte)", ""), field="account.holder")
        if debtor is None and _blank(holder_raw):
            # the holder would be the debtor's name, and the debtor is refused (its
            # problem is reported): no second, false 'account.holder is missing'
            holder = None
        else:
            holder = self._text(ctx, "account.holder", holder_raw, p.get("holder"),
                                required=True)
        label = self._text(ctx, "mandate.label", ev(p.get("label")), p.get("label"))
        if len(ctx.problems) > before or None in (rum, signed, debit, sequence, iban, holder):
            return None
        # TitCpteDiff: the holder as the export gives it, normalised like any text but
        # before a length policy (a truncated holder is still the debtor; _text has just
        # normalised it, memoised); one filled from the debtor is the debtor
        differs = False
        if not defaulted and debtor is not None:
            text_in, charset = str(holder_raw), self._limits["account.holder"].charset
            as_exported = self._normalized.get((text_in, charset)) or \
                normalize(text_in, charset, self.text_policy)
            differs = not _holder_is_debtor(as_exported.value, debtor, self.legacy)
        return _make_mandate(rum=rum, signed_on=signed, sequence=sequence, debit_date=debit,
                             account=_make_account(iban=iban, holder=holder, bic=bic),
                             label=label, holder_differs=differs)

    def _check_debit_date(self, ctx: _Ctx, debit: date, binding: Binding) -> None:
        """DtePrel is "la date de règlement interbancaire" (DT v5.19 InfoPrelevementSEPA):
        a debit settled before the rôle is issued (DteBordEm) cannot be (pesgen's reading,
        rule sepa.debit-date); one on a Saturday, Sunday or TARGET2 holiday is noted for
        the run (no TARGET2 settlement on those days: pesgen's reading too)."""
        if self.issue_date is not None and \
                (message := debit_date_problem(debit, self.issue_date)) is not None:
            ctx.problem("sepa.debit-date", f"{message}: give a later debit date (or export "
                        "with an earlier --date)", mapping=binding.where)
        elif target2_closed(debit):
            self.closed_debits[debit] += 1

    def _bank_code(self, ctx: _Ctx, kind: str, raw: str, binding: Binding) -> str | None:
        """An IBAN or BIC (``kind``) compacted and checked by python-stdnum; None with a
        problem when invalid."""
        code, message = checked_bank_code(kind, raw)
        if message is not None:
            ctx.problem(BANK_RULES[kind], f"{message}: correct it in the school software "
                        "(the debtor's RIB gives it)", mapping=binding.where)
        return code


def same_but_case(value: str, values: tuple[str, ...]) -> str | None:
    """The first of ``values`` that differs from ``value`` by case alone, or None."""
    return next((v for v in values if v.casefold() == value.casefold()), None)


def other_case(value: str, table: Iterable[str], name: str) -> str:
    """What a refusal of ``value``, a code the mapping's table ``name`` lacks, adds when
    the table has it in another case only ('fm-c1' for FM-C1): a code is looked up as
    written (two keys may differ by case alone: 'M.' and 'm.' two civilities), never
    matched in another case; '' otherwise."""
    same = same_but_case(value, tuple(table))
    return (f"; {name} has {same!r}: a code is compared as written, case included "
            "(correct it in the school software, or add this spelling too)" if same else "")


def close_codes(value: str, table: Iterable[str], name: str) -> str:
    """What a refusal of ``value``, a code the mapping's table ``name`` lacks, adds when
    the table has codes close to it ('FM-C3' beside FM-C1, FM-C2): a new code or one
    mistyped in the school's data, which the technician tells apart; '' when none is."""
    close = difflib.get_close_matches(value, list(table), n=3, cutoff=0.75)
    if not close:
        return ""
    return (f"; {name} has {', '.join(map(repr, sorted(close)))}, close to it: if it is "
            "one of them mistyped, correct it in the school software")


def not_taken(value: str, fmt: Format, key: str) -> str | None:
    """What to say of ``value`` when it is not one of the values ``fmt`` takes in its
    field ``key`` (format.yaml fields.<key>.values, as written, case included), or None
    (it is, or the format lists none)."""
    limit = fmt.limit(key)
    if limit.values is None or value in limit.values:
        return None
    same = same_but_case(value, limit.values)
    hint = f"did you mean {same!r}? " if same else ""
    return (f"is not one format {fmt.name} takes in {key} ({hint}it takes "
            f"{', '.join(limit.values)}, case included: {limit.values_at})")


# what a direct debit needs bound beside payment.direct_debit (Builder._mandate refuses
# each invoice paid so without one of them: input.required)
DIRECT_DEBIT_NEEDS = ("rum", "mandate_signed_on", "debit_date", "iban", "sequence")


def format_warnings(mapping: Mapping, fmt: Format) -> list[Problem]:
    """What check-mapping warns of, the mapping fitting its format: a civility bound
    without a codes.civility table when the format takes a list of civilities (each is
    then sent as exported, and an invoice whose civility is not one of them refused);
    payment.direct_debit bound without the values a direct debit needs (each invoice
    paid so would be refused); text refused for its accents at every run (the format's
    charset has none, the mapping does not transliterate)."""
    return (_unbound_mandate(mapping) + _civility_warnings(mapping, fmt)
            + _accent_warnings(mapping, fmt))


def _unbound_mandate(mapping: Mapping) -> list[Problem]:
    payment = mapping.bindings.get("payment", {})
    flag = payment.get("direct_debit")
    if flag is None:
        return []
    if no_direct_debit(mapping, flag):
        # a constant "no", or a method codes.payment_methods says is no direct debit (one
        # it lacks is refused when the mapping loads: mapping.const-code)
        return []
    missing = [f"payment.{name}" for name in DIRECT_DEBIT_NEEDS if name not in payment]
    if not missing:
        return []
    return [Problem("input.required", f"payment.direct_debit is bound but {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not: every invoice paid by direct "
                    "debit would be refused (a direct debit needs its RUM, mandate date, debit "
                    "date, IBAN and sequence); bind them to the export's columns or keys, or "
                    "give them as {const: ...}", mapping=flag.where)]


# {binding: the format's field it is held to} of the texts a school's export fills with
# names and words, which hold accented letters in French
_ACCENTED_TEXTS = {
    **{f"{group}.{k}": f"debtor.{k}" for group in ("payer", "joint_payer")
       for k in ("name", "first_name", "complement_name")},
    **{f"{group}.{k}": f"address.{k}" for group in ("address", "joint_payer")
       for k in ("street", "complement", "locality", "city")},
    "payment.holder": "account.holder", "payment.label": "mandate.label",
    "line.label": "line.label", "invoice.object": "title.object",
}
_ACCENTS = "éèêàâçôîùûëïÉÈÀÇ"


def _accent_warnings(mapping: Mapping, fmt: Format) -> list[Problem]:
    """A format whose charset has no accented letter (e.magnus: ascii) with a mapping
    that does not transliterate (policies.transliterate false, the default): every
    invoice whose name, street or label holds an 'é' would be refused (text.charset) at
    every run; said once, at policies.transliterate, naming the bindings concerned."""
    if mapping.policies.transliterate or not outside_charset(_ACCENTS, fmt.charset):
        return []
    groups = mapping.bindings
    concerned = [binding.where.rsplit(": ", 1)[-1] for name, held in _ACCENTED_TEXTS.items()
                 if (binding := groups.get(name.split(".")[0], {}).get(name.split(".")[1]))
                 is not None and outside_charset(_ACCENTS, fmt.limit(held).charset)]
    if not concerned:
        return []
    policies = mapping.data.get("policies") or {}
    # the setting's line, else the section's (where to add it)
    where = (mapping.where("policies", "transliterate") if "transliterate" in policies
             else mapping.where("policies"))
    set_so = ("policies.transliterate is false" if "transliterate" in policies else
              "policies.transliterate is not set (false: the default)")
    return [Problem("text.charset", f"format {fmt.name} holds its text to charset "
                    f"{fmt.charset} (its format.yaml), which has no accented letter, and "
                    f"{set_so}: every invoice whose {', '.join(concerned)} holds one (é, è, "
                    "à, ç…, as French names and streets do) would be refused at every run; "
                    "set policies.transliterate: true to write them without their accents "
                    "(é -> e), or make sure the school's export holds none", mapping=where)]


def _civility_warnings(mapping: Mapping, fmt: Format) -> list[Problem]:
    values = fmt.limit("debtor.civility").values
    if not values or mapping.codes.civility is not None:
        return []
    return [Problem("codes.civility", f"format {fmt.name} takes {', '.join(values)} in "
                    "debtor.civility (case included): without a codes.civility table each "
                    "civility is sent as exported, after the text policies, and an invoice "
                    "whose civility is not one of them is refused; add the table",
                    mapping=binding.where)
            for group in ("payer", "joint_payer")
            if (binding := mapping.bindings.get(group, {}).get("civility")) is not None]


def format_fit(mapping: Mapping, fmt: Format, recorded: bool = False) -> list[Problem]:
    """What a mapping asks that its format cannot give, or lacks that the format needs:
    NumDette for ORMC, the ASAP Edition code, format options, its own texts written as
    they are. ``recorded``: a recorded run's mapping, rebuilt (its texts are not held
    to the format's charset, checked since: the rebuilt bytes are compared with the
    recorded sha256)."""
    problems: list[Problem] = []
    invoice = mapping.bindings.get("invoice", {})
    if "pes-ormc" in fmt.rules and "debt_number" not in invoice:
        problems.append(Problem(
            "mapping.format", f"format {fmt.name} needs bindings.invoice.debt_number (NumDette "
            "of each ORMC article, 1-15 digits), e.g. {expr: \"invoice['N° facture'] | "
            "digits\"} with the column or key bindings.invoice.number reads",
            mapping=mapping.where("bindings", "invoice")))
    if "pes-titres" in fmt.rules and "debt_number" in invoice:
        problems.append(Problem(
            "mapping.format", f"format {fmt.name} carries no NumDette (titres ordinaires have "
            "no NumDette/Per/Cle, which are ORMC only): remove bindings.invoice.debt_number",
            mapping=mapping.where("bindings", "invoice", "debt_number")))
    edition = mapping.output.asap_edition
    allowed = [str(x) for x in fmt.defaults.get("asap_editions") or ()]
    if edition is None and fmt.defaults.get("asap_edition_required"):
        problems.append(Problem(
            "mapping.asap-edition", f"format {fmt.name} writes an Edition in every file: set "
            f"output.asap_edition ({' or '.join(allowed) or 'see the format'}; see the "
            "format's README)", mapping=mapping.where("output")))
    elif edition is not None and edition not in allowed:
        supported = (f"it supports {', '.join(allowed)} or none" if allowed else
                     "it has no Edition choice")
        problems.append(Problem(
            "mapping.asap-edition", f"format {fmt.name} cannot carry Edition {edition} "
            f"({supported}); see the format's README", mapping=mapping.where("output",
                                                                              "asap_edition")))
    declared = fmt.defaults.get("options") or {}
    for key in mapping.output.options:
        if key not in declared:
            hint = difflib.get_close_matches(key, list(declared), n=1)
            known = (f"did you mean '{hint[0]}'?" if hint else
                     f"known: {', '.join(declared)}" if declared else "it has none")
            problems.append(Problem("mapping.options", f"format {fmt.name} has no option "
                                    f"'{key}' ({known})",
                                    mapping=mapping.where("output", "options", key)))
    # the codes the mapping's tables give are sent as written (no text policy changes
    # them): each must fit the field as it is, checked here once, not per invoice
    limit = fmt.limit("debtor.civility")
    codes: list[tuple[tuple[str, ...], str]] = [
        (("codes", "civility", key), value)
        for key, value in (mapping.codes.civility or {}).items()]
    if mapping.policies.default_civility is not None:
        codes.append((("policies", "default_civility"), mapping.policies.default_civility))
    for keys, value in codes:
        error = code_error(str(value), limit.charset, limit.max, fmt.limits_owner)
        if error:
            error += f" (format {fmt.name}, debtor.civility)"
        elif not recorded:  # a recorded run is rebuilt as it was (its XSD passed it)
            error = not_taken(str(value), fmt, "debtor.civility")
        if error:
            problems.append(Problem(
                "codes.civility", f"{'.'.join(map(str, keys))}: the civility {str(value)!r} "
                f"{error}: a code of the mapping is sent as written, the text policies "
                "(case, transliterate) do not change it", mapping=mapping.where(*keys)))
    # the mapping's options go into every file as they are (no text policy
    # transliterates them): they must be writable, and within the format's charset
    # (the characters its text is held to: e.magnus's ascii in cp1252 files, JVS's
    # latin-1 in UTF-8), as a text of the export is after its policies. A run recorded
    # before the charset was checked is rebuilt as it was (its sha256 vouch)
    encoding = mapping.output.encoding or fmt.encoding
    charset = None if recorded else fmt.charset
    forbidden = "" if recorded else fmt.forbidden
    o = mapping.output
    if mapping.output.encoding:  # the format's defaults were checked for its own encoding
        problems += option_problems(fmt.defaults, encoding, fmt.folder / "format.yaml",
                                    frozenset(o.options))
    for key, value in o.options.items():
        said = text_misfit(str(value), encoding, charset, forbidden)
        if said is not None:
            problems.append(Problem(
                "mapping.options", f"output.options.{key}: {said} (format {fmt.name}; an "
                "option is written as it is: no text policy (case, transliterate) changes "
                "it)", mapping=mapping.where("output", "options", key)))
    # the texts below go into the files only where a template writes them (e.magnus
    # writes no collectivity name): here, that the encoding can write them; the charset
    # and forbidden characters of those a template reads, by ``own_text_misfits`` on
    # the sample titles' rendering
    for keys, text in own_texts(mapping):
        said = text_misfit(text, encoding, None) if text else None
        if said is not None:
            problems.append(Problem(
                "mapping.format", f"{'.'.join(keys)}: {said} (format {fmt.name}; the "
                "mapping's own text is written as it is: no text policy (case, "
                "transliterate) changes it)", mapping=mapping.where(*keys)))
    return problems


# the mapping's own texts, written as they are: (their keys in the mapping, where a
# template finds them in the document)
OWN_TEXTS = ((("collectivity", "name"), "doc.collectivity.name"),
             (("collectivity", "budget_label"), "doc.collectivity.budget_label"),
             (("collectivity", "poste_label"), "doc.collectivity.poste_label"),
             (("output", "emitter", "sigle"), "doc.emitter.sigle"),
             (("output", "emitter", "adresse"), "doc.emitter.adresse"))


def own_texts(mapping: Mapping) -> list[tuple[tuple[str, ...], str | None]]:
    """(keys, value) of the mapping's own texts (OWN_TEXTS); None where one is not set."""
    c, o = mapping.collectivity, mapping.output
    values = (c.name, c.budget_label, c.poste_label, o.sigle, o.adresse)
    return [(keys, value) for (keys, _), value in zip(OWN_TEXTS, values, strict=True)]


def own_text_misfits(mapping: Mapping, fmt: Format, reads: frozenset[str]) -> list[Problem]:
    """The mapping's own texts that a template of ``fmt`` writes (``reads``: what the
    templates read on the sample titles) holding a character outside the format's
    charset or one its layouts forbid (e.magnus: ascii, no ';' nor '"'), or, in a PES
    file or one a finance package turns into PES titles (rules: pes-common, as the
    invoices' texts are), a value no Base_TexteX takes (only zeros, 'nc', '.' or a
    space: Hélios' XSD refuses the file, JVS Millésime's own XSD 'nc', '.' and ' '):
    written as they are, no text policy changes them. One a template does not write is
    not held to it."""
    encoding = mapping.output.encoding or fmt.encoding
    problems = []
    for (keys, value), (_, read_as) in zip(own_texts(mapping), OWN_TEXTS, strict=True):
        if not value or read_as not in reads:
            continue
        said = text_misfit(value, encoding, fmt.charset, fmt.forbidden)
        if said is None and (fmt.is_pes or "pes-common" in fmt.rules):
            said = pes_text_error(value)
        if said is not None:
            problems.append(Problem(
                "mapping.format", f"{'.'.join(keys)}: {said} (format {fmt.name}, whose "
                f"templates write it as {read_as}; the mapping's own text is written as it "
                "is: no text policy (case, transliterate) changes it)",
                mapping=mapping.where(*keys)))
    return problems


# policies.netted_label: append: what ends the label of a line discounts were netted
# into (French, as the debtor reads it; the amount with a decimal comma)
NETTED_SUFFIX = "NET REMISE {amount}"


def _postal_hint(postal: str) -> str:
    """What a French postal code refused most likely went through: a spreadsheet that
    read it as a number (01000 as 1000: the départements 01 to 09), a space between its
    digits. Said, never mended: the same mending would change a code abroad."""
    if len(postal) == 4 and postal.isascii() and postal.isdigit():
        return (f" (0{postal} with its leading zero dropped, as a spreadsheet reading it as "
                "a number does? the export should write postal codes as text)")
    digits = postal.replace(" ", "").replace("\u00a0", "")
    if digits != postal and len(digits) == 5 and digits.isascii() and digits.isdigit():
        return " (written with a space: the export should write its 5 digits alone)"
    return ""


# a civility of two persons: 'M. et Mme', 'M et Mme', 'Mr & Mme', 'M./Mme'
_COUPLE = re.compile(r"\w\.?\s*(?:\bet\b|&|/)\s*\w", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# what an expression cannot write after a '.': Jinja's keywords and constants
_NOT_NAMES = frozenset({"and", "or", "not", "in", "is", "if", "else", "true", "false", "none",
                        "True", "False", "None"})


def _case_grown(raw: Any, case: str) -> str:
    """What a text's length said by a problem owes to the case policy: ' once
    upper-cased (policy case: upper: 'ß' is 'SS')' for a text holding a letter whose
    capital is longer (ß, ŉ, the ligatures ﬁ ﬂ), else ''. Said on a problem's path only."""
    if case != "upper" or not isinstance(raw, str) or raw.isascii():
        return ""
    grown = [c for c in dict.fromkeys(raw) if len(c.upper()) > 1]
    if not grown:
        return ""
    said = ", ".join(f"'{c}' is '{c.upper()}'" for c in grown)
    return f" once upper-cased (policy case: upper: {said})"


def _named(key: str) -> bool:
    """Whether an expression can read ``key`` as ``.key`` (else ``['key']``)."""
    return _NAME.match(key) is not None and key not in _NOT_NAMES


def _bound_so(binding: Binding | None, tail: str, otherwise: str) -> str:
    """How to bind a value's useful part (a refusal's hint): the binding's own path in an
    expression ending with ``tail`` when the binding is a plain path, else ``otherwise``."""
    ref = None
    if binding is not None and binding.kind == "path":
        record = "line" if binding.key.startswith("line.") else "invoice"
        if binding.columns:  # a CSV column, whatever its name holds: one key
            [column] = binding.columns
            if _named(column):
                ref = f"{record}.{column}"
            elif not any(c in column for c in "'\"\\"):
                ref = f"{record}['{column}']"
        elif all(_named(part) for part in binding.text.split(".")):
            ref = f"{record}.{binding.text}"
    if ref is None:
        return f", e.g. {otherwise}"
    return f', e.g. {{expr: "{ref}{tail}"}}'


# further from a cent than this, an amount is not a binary floating-point sum's noise
_NOISE = Decimal("1e-9")


def _float_noise(amount: Decimal) -> str:
    """What an amount a hair from a cent most likely is (85.00000000000001: a sum made in
    binary floating point, 0.1 + 0.2), said beside its refusal; pesgen rounds nothing."""
    cents = amount.quantize(_CENT)
    if abs(amount - cents) >= _NOISE:
        return ""
    return (f" (a binary floating-point artefact of {cents}? the school software should "
            "write amounts with 2 decimals; pesgen does not round them)")


def _date_alone(binding: Binding | None, exc: DateWithTime | DateOtherSeparator,
                then: str = "") -> str:
    """How to bind the date of a date and time (``2026-11-20T08:15:00``): its first 10
    characters; of a date of fewer ('1/2/2026 08:15', which [:10] would read with the
    time's first digit, and [:8] not '20/11/2026'), what comes before the time
    (``.split(' ')[0]``); ``then`` (a replace()) after it."""
    if exc.date_length == 10:
        return _bound_so(binding, f"[:10]{then}", "an expression taking its first 10 "
                         "characters ([:10])" + (f" and ending with{then}" if then else ""))
    before = f".split('{exc.time_mark}')[0]"
    return _bound_so(binding, f"{before}{then}", "an expression taking what comes before "
                     f"the time ({before})" + (f" and ending with{then}" if then else ""))


def _separator_replaced(binding: Binding | None, exc: DateOtherSeparator) -> str:
    """How to bind a date written with another separator (``20-11-2026``); followed by a
    time of day (``20-11-2026 08:15``), its date alone (``_date_alone``) first."""
    replaced = f" | replace('{exc.separator}', '{exc.wanted}')"
    if exc.date_length is not None:
        return _date_alone(binding, exc, replaced)
    return _bound_so(binding, replaced, f"an expression ending with{replaced}")


def _without_currency(binding: Binding | None, currency: str) -> str:
    """How to bind an amount written with its currency sign (``85,00 €``)."""
    return _bound_so(binding, f" | replace('{currency}', '')",
                     f"an expression ending with | replace('{currency}', '')")


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


# Countries (ISO alpha-2, as exported) whose addresses are in France: CodRes 0, a
# French postal code. The overseas départements have ISO codes of their own; the other
# overseas collectivités are left to codes.countries (the mapping decides).
_FRANCE = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT"})


def _madame(table: dict[str, str]) -> str:
    """What codes.civility sends for Madame ('Mme': MME, 'Madame': Mme…), MME when
    it has no such entry: the civility a Mademoiselle of the export is sent as."""
    return next((sent for exported, sent in table.items()
                 if re.fullmatch(r"(?i)(mme|madame)\.?", exported.strip())), "MME")


def _spells_france(country: str) -> bool:
    """Whether an export's country (upper-cased) is France written otherwise than its
    ISO code FR: 'FRANCE', 'FRANCE METROPOLITAINE', 'FRA' (ISO alpha-3), accents
    and punctuation aside. pesgen reads none of them as France by itself (a table says what a word
    means); the refusal of such an address says how, not the foreign-address policy."""
    plain = unicodedata.normalize("NFKD", country).encode("ascii", "ignore").decode()
    words = re.sub(r"[^A-Z]+", " ", plain.upper()).split()
    return words == ["FRA"] or (bool(words) and words[0] == "FRANCE")


def _france_written_out(country: str) -> str:
    """What makes ``country``, France written out, read as France: its entry in
    codes.countries, France's INSEE code."""
    return (f"'{country}' is most likely France written out (pesgen takes only FR as "
            f"France by itself): give it France's INSEE code in codes.countries, "
            f'{country}: "{FRANCE_INSEE}", and its addresses are written as in France '
            "(CodRes 0, a 5-digit postal code)")


def _words(text: str | None, before: bool = False) -> tuple[str, ...]:
    """The words of ``text``, sorted, without case, accents or punctuation, letters
    outside ASCII as ASCII (``Sæther`` as a PES name keeps, ``SAETHER`` as a bank writes
    it: the same words); memoised (names and holders repeat across a run's invoices).
    ``before``: as pesgen compared them before 2026-12-05, those letters as they are
    (a rebuild of a run recorded then, Builder.legacy)."""
    if not text:
        return ()
    memo = _WORDS_BEFORE if before else _WORDS
    known = memo.get(text)
    if known is None:
        bare = without_marks((text if before else ascii_letters(text)).casefold())
        known = tuple(sorted(w for w in re.split(r"[\W_]+", bare) if w))
        remember(memo, text, known)
    return known


_WORDS: dict[str, tuple[str, ...]] = {}
_WORDS_BEFORE: dict[str, tuple[str, ...]] = {}


def _holder_is_debtor(holder: str, debtor: Debtor, before: bool = False) -> bool:
    """TitCpte names the debtor: the words of its name (with or without its complement,
    ComplNom), with or without its first name, in any order ('DUPONT-LEFEVRE HELENE',
    'Hélène Dupont Lefèvre'). Anything else (another person, 'M OU MME DUPONT') is
    another holder: TitCpteDiff 1 (DT, InfoPrelevementSEPA). ``before``: the words as
    compared before 2026-12-05 (``_words``)."""
    words = _words(holder, before)
    d = debtor
    name, complement, first = (_words(d.name, before), _words(d.complement_name, before),
                               _words(d.first_name, before))
    return any(words == tuple(sorted(variant)) for variant in (
        name + complement + first, name + complement, name + first, name))


# how many values a note of the run names (run_notes)
_NOTE_VALUES = 5

# Unicode's Bidi_Control characters: the marks (U+061C, U+200E, U+200F), embeddings,
# overrides and isolates, which reorder the text around them
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")

_ADDRESS_KEYS = ("street", "complement", "locality", "postal_code", "city", "country")

# Fields whose overflow has its own split policy (street_overflow, name_overflow).
_SPLITTABLE = ("address.street", "debtor.name")
# what text_overflow: truncate never shortens: the RUM cut is another mandate's
# reference (the debtor's bank matches the debit against the mandate's RUM); a civility
# sent as exported cut is another value of a closed list ('MADEMOISEL')
# text policy text_overflow: truncate leaves alone: cut, the RUM is another mandate's,
# RefTiers another debtor's (Hélios groups a debtor's debts by it: two long references
# sharing their start would merge two families), a civility another code
_NEVER_TRUNCATED = {"mandate.rum": "an identifier", "debtor.ref": "an identifier",
                    "debtor.civility": "a code"}


def _own(key: str, joint: bool) -> str:
    """The field a note on a debtor's value names (``PolicyNote.field``): ``key``, the
    debtor's (debtor.name, address.street), or the joint debtor's own binding
    (joint_payer.name, joint_payer.street: bindings.joint_payer holds its address's keys
    beside its name's) when ``joint``."""
    return "joint_payer." + key.partition(".")[2] if joint else key


def _whose(joint: bool) -> str:
    """How a note on the joint debtor's value that names no field of its own in its
    words (a split, a civility, an address abroad) opens: ``joint_payer: ``."""
    return "joint_payer: " if joint else ""


def _said(key: str, binding: Binding | None) -> str:
    """What a problem calls a text field: ``key``, the format's field whose limit and
    charset apply (debtor.name), or for the joint debtor's value its binding's own key
    beside it (joint_payer.name (format field debtor.name)): both debtors' values are
    held to the same field, and the message says which one is refused."""
    if binding is None or not binding.key.startswith("joint_payer."):
        return key
    return f"{binding.key} (format field {key})"


# Canonical text fields a format may limit (format.yaml `fields:`).
_TEXT_FIELDS = (
    "title.object", "line.label", "debtor.name", "debtor.first_name", "debtor.complement_name",
    "debtor.civility", "debtor.ref", "address.street", "address.complement", "address.locality",
    "address.city", "account.holder", "mandate.rum", "mandate.label", "bordereau.object",
)


def _street_order(first: str, second: str, cut: bool, before: bool = False
                  ) -> tuple[str, str]:
    """(Adr1, Adr2) of a street split in two, ``first`` and ``second`` in the export's
    order: two parts of an address (``cut`` false: split at a line break or a comma), the
    one starting with the street number is Adr2 unless both do; one street cut at a word
    boundary (``cut``), in its order. ``before``: as pesgen split before 2026-12-06, the
    part starting with a digit in Adr2 however it was split (a rebuild of a run recorded
    then, Builder.street_before)."""
    if cut and not before:
        return first, second
    if first[:1].isdigit() and not second[:1].isdigit():
        return second, first
    return first, second
