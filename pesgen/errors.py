"""pesgen's one exception hierarchy: every failure a user can meet, with its exit code.

A ``Problem`` is one finding (a rule broken by one record, one mapping key, one
rendered element). Errors that refuse an export carry *all* problems found, never
just the first, and each problem names where it comes from: the input record
(file:row or JSON path), the mapping file:line:key and the rule.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    MAPPING = 3
    INPUT = 4
    TEMPLATE = 5
    OUTPUT = 6
    STATE = 7
    REMOTE = 8
    # not a failure of pesgen: the trésorerie's acknowledgement rejects a bordereau or
    # the file (`pesgen acquit`)
    REJECTED = 9
    # `pesgen acquit`: nothing rejected, but not all fine either: an acceptance with
    # errors, an acceptance pesgen cannot tie to one run of the store (a domain or NomFic
    # contradicting the run, two runs holding the number, another collectivity's or
    # budget's acquit, an IdColl left empty), an identifier the acquit leaves empty or out
    # (docs/state.md, "Not all fine: exit 10")
    TO_CHECK = 10


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``rule`` is a stable identifier documented in docs/rules.md."""

    rule: str
    message: str
    record: str | None = None  # input origin: "examples/x.csv:17" or "x.json:$.invoices[3]"
    mapping: str | None = None  # "mappings/m.yaml:42: bindings.payer.name"
    invoice: str | None = None  # the invoice number, when known
    # what ``mapping`` points into, when the rule does not say it: "layout", "format",
    # "configuration" (a YAML problem of such a file); None: told by the rule
    source: str | None = None

    @property
    def where(self) -> str:
        """The input record and invoice the problem is about, as its line opens with
        (``examples/x.csv:17 invoice FA-2026-00104``); "" for none."""
        parts = []
        if self.record:
            parts.append(self.record)
        if self.invoice:
            from .keys import shown  # its control characters visible: one line

            parts.append(f"invoice {shown(self.invoice)}")
        return " ".join(parts)

    def __str__(self) -> str:
        head = self.where
        text = f"{head}: {self.message}" if head else self.message
        if self.mapping:
            text += f" [{self.label} {self.mapping}]"
        return f"{text} (rule {self.rule})"

    @property
    def label(self) -> str:
        """What the file ``mapping`` points into is: a template, a layout, a format.yaml,
        the mapping..."""
        return self.source or _SOURCE_OF_RULE.get(self.rule.split(".")[0], "mapping")


_SOURCE_OF_RULE = {"template": "template", "layout": "layout", "format": "format"}

# Problem.mapping as its writers spell it: "file:line: key", "file:line", "file: key",
# "file"
_PLACE = re.compile(r"(?P<file>.*?)(?::(?P<line>\d+))?(?:: (?P<key>.*))?", re.DOTALL)


def problem_json(problem: Problem) -> dict[str, Any]:
    """One problem (or warning) as the JSON reports give it (``check-format``,
    ``check-mapping``, ``formats`` with ``--format json``): its rule, the file, line and
    key it points into (``Problem.mapping`` taken apart; None where it says none), what
    that file is (``source``: mapping, format, template, layout, bundle...), the input
    record and invoice when there are some, the message, and the line the text output
    prints (``text``)."""
    place = _PLACE.fullmatch(problem.mapping or "")
    found = place.groupdict() if place is not None and problem.mapping else {}
    line = found.get("line")
    return {
        "rule": problem.rule,
        "file": found.get("file") or None,
        "line": int(line) if line else None,
        "key": found.get("key"),
        "source": problem.label if problem.mapping else None,
        "record": problem.record,
        "invoice": problem.invoice,
        "message": problem.message,
        "text": str(problem),
    }


def says_listing_stopped(problem: Problem) -> bool:
    """Whether ``problem`` says that checking or listing stopped there, the file holding
    more problems than were listed (``layout.too-many``; ``pes.listing``, an XSD's and the
    CSV reader's "listing stopped after …"): a listing cut short shows it all the same."""
    return (problem.rule == "layout.too-many"
            or problem.message.startswith("listing stopped after "))


class PesgenError(Exception):
    """Base of every error pesgen raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL
    default_message = "pesgen failed"

    def __init__(self, message: str | None = None, problems: list[Problem] | None = None,
                 outcome: str | None = None):
        self.problems: list[Problem] = list(problems or [])
        # what the command leaves, said after the count of problems: "nothing was
        # written." unless the error says otherwise (a run recorded, its files not in
        # place); "": its message says it already (PayFiP's "nothing was sent"), the
        # count ends there
        self.outcome = outcome
        super().__init__(message or self.default_message)

    def count_line(self, written: bool = True) -> str:
        """The line after the problems: their count and what the command leaves
        (``written``: a command that would have written files says nothing was)."""
        left = (self.outcome if self.outcome is not None else
                "nothing was written." if written else "")
        return f"{len(self.problems)} problem(s)" + (f"; {left}" if left else ".")

    def report(self) -> str:
        lines = [str(self)]
        lines.extend(f"  - {p}" for p in self.problems)
        if self.problems:
            lines.append(self.count_line())
        return "\n".join(lines)


class UsageError(PesgenError):
    exit_code = ExitCode.USAGE
    default_message = "invalid command usage"


class MappingError(PesgenError):
    exit_code = ExitCode.MAPPING
    default_message = "the mapping file is invalid"


class MappingStopped(MappingError):
    """Building one invoice's title (its bindings' expressions) ran past the time limit
    (``pesgen._budget``) and was stopped: the command stops there, as the next invoices
    would each hold it as long again (rule mapping.time)."""

    default_message = "a mapping expression ran past its time limit"


class InputDataError(PesgenError):
    exit_code = ExitCode.INPUT
    default_message = "the input data is invalid"


class TemplateError(PesgenError):
    exit_code = ExitCode.TEMPLATE
    default_message = "a template failed"
    # (the value,) a filter refused (filters.RefusedValue: over its width…), for an export to
    # name the binding it holds; None: not such a refusal
    refused: tuple[Any] | None = None
    # a template writing None (``_jinja.NONE_WRITTEN``), for an export to name the binding
    # left empty that it wrote (``sample.binding_of_none``)
    none_written: bool = False


class TemplateStopped(TemplateError):
    """A call into a template ran past its time limit (``pesgen._budget``) and was
    stopped: rendering the template again in the same command, on other titles or
    another way, would hold it as long again before failing the same way."""

    default_message = "a template ran past its time limit"


class OutputInvalidError(PesgenError):
    exit_code = ExitCode.OUTPUT
    default_message = "the rendered output is invalid"


class StateError(PesgenError):
    exit_code = ExitCode.STATE
    default_message = "the state store refused the operation"


class RecordConflict(StateError):
    """A unique index of the store refused a run's rows when it was recorded: another
    export recorded the same invoice or NumDette after this one checked."""

    default_message = "the state store refused to record the run"


class StoreLocked(StateError):
    """Another pesgen run held the SQLite store's write lock (on PostgreSQL: the numbering
    sequence's row) longer than this command waits for it (``store_lock_timeout``)."""

    default_message = "another pesgen run held the state store's lock too long"
    url = ""  # the store (its URL), and how long the command waited, in seconds
    seconds = 0.0
    # on PostgreSQL, the rows another transaction held (Store.waits_for_rows); None: the
    # store's lock, or a numbering sequence's row another export held
    rows: str | None = None
    holder: str | None = None  # who may hold those rows (None: store._ROWS_HOLDER)


class RemoteServiceError(PesgenError):
    """A remote service (PayFiP) refused the operation or did not answer."""

    exit_code = ExitCode.REMOTE
    default_message = "a remote service refused the operation or did not answer"


class FormatNotFound(UsageError):
    default_message = "unknown output format"


# What the C decimal module's signals mean: it says only which one it raised
# ("[<class 'decimal.DivisionByZero'>]"), in the order a message is chosen
_DECIMAL_SIGNALS = (
    (decimal.DivisionByZero, "division by zero"),
    (decimal.DivisionUndefined, "division by zero (0 / 0)"),
    (decimal.DivisionImpossible, "division result too large for a decimal"),
    (decimal.ConversionSyntax, "not a decimal number"),
    (decimal.Overflow, "decimal result too large"),
)


def exception_message(exc: BaseException) -> str:
    """``str(exc)``, or words for a decimal signal, whose text is a list of classes."""
    signals = exc.args[0] if isinstance(exc, decimal.DecimalException) and exc.args else None
    if not isinstance(signals, list):
        return str(exc)
    return next((said for signal, said in _DECIMAL_SIGNALS if signal in signals),
                "invalid decimal operation")


# a value a message quotes as written: short, and at most this many letters (an amount,
# a date, with their typos: '12,5O', '31/02/2026')
_QUOTED_MAX, _QUOTED_LETTERS = 16, 2


def shown_value(value: str, code: bool = False) -> str:
    """``value`` as a message may show it: quoted when it is short and mostly digits
    and signs (an amount or a date, typos included), else described by its length and
    the kinds of its characters (``a text of 27 characters (letters, digits)``). A
    value read where an amount or a date was expected may be a name, an address or an
    IBAN (a binding on the wrong column): billing data, which has no place in a
    message or a log. A ``code`` ('FACT', 'RE') is quoted whatever its letters, if short."""
    letters = sum(1 for c in value if c.isalpha())
    if len(value) <= _QUOTED_MAX and (code or letters <= _QUOTED_LETTERS):
        return f"'{value}'"
    kinds = [name for name, present in (
        ("letters", letters), ("digits", any(c.isdigit() for c in value)),
        ("spaces", any(c.isspace() for c in value))) if present]
    signs = sorted({c for c in value if not (c.isalnum() or c.isspace())})
    kinds += [repr(c) for c in signs[:6]] + (["…"] if len(signs) > 6 else [])
    return f"a text of {len(value)} characters ({', '.join(kinds)})"
