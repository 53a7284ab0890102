"""Direct debits an export holds that the mapping does not read (rule input.unread-debit).

A mapping that binds no ``payment.direct_debit`` (the scaffold's ``payment:`` block left
commented out) exports every invoice as an ordinary title, without its SEPA mandate: an
invoice the school software marks for direct debit is then sent to the family to pay,
and nothing is refused. So, for such a mapping, the invoices of the run are watched for
direct-debit data in values no binding reads, and the run says how many had some (one
note, ``unread_debit``: export, its dry run and preview). Direct-debit data is a value
named like a mandate (``IBAN``, ``RUM``, ``BIC``, ``mandat…``, ``SEPA``,
``prélèvement``/``PRLV``: any value but an empty or a "no" one), or a payment method
(``payment_method``, ``mode_reglement``…) whose value says a direct debit
(``direct_debit``, ``Prélèvement``, ``PRLV``, ``SEPA``): a method column alone, holding
``chèque`` or ``online``, says nothing. A mapping that binds ``payment.direct_debit``,
even to a constant no (``{const: "no"}``, or a method ``codes.payment_methods`` says
false), is not watched.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from .mapping import Mapping
from .parse import parse_bool
from .paths import Unread
from .text import without_marks

# words (of a column or JSON path, accents and case aside) naming mandate data
_MANDATE_WORDS = frozenset({"iban", "rum", "bic", "sepa", "prlv"})
_MANDATE_STARTS = ("mandat", "prelev")  # mandate(s), mandat, prélèvement(s)
# a payment method: one word of each, in a name run together or not (ModeReglement)
_PAYMENT = ("payment", "paiement", "reglement")
_METHOD = ("method", "mode", "moyen", "type")
# a method's value saying a direct debit, letters and digits only, lower case
_DEBIT_VALUES = ("directdebit", "debitdirect", "prelev", "prlv", "sepa")
_SHOWN = 6  # columns named in the note


def _plain(text: str) -> str:
    """``text`` lower case, without accents: 'Prélèvement' -> 'prelevement'."""
    return without_marks(text).lower()


@lru_cache(maxsize=1024)
def kind_of(name: str) -> str | None:
    """'mandate' for a name of mandate data, 'method' for a payment method's, else None.
    Words are split at anything not a letter or digit, between letters and digits (IBAN2,
    the second payer's) and at a capital after a small letter (mandateIban), so
    'instrument' holds no 'rum' and 'public' no 'bic'."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    words = re.findall(r"[a-z]+|[0-9]+", _plain(spaced))
    if any(w in _MANDATE_WORDS or w.startswith(_MANDATE_STARTS) for w in words):
        return "mandate"
    joined = "".join(words)
    if any(p in joined for p in _PAYMENT) and any(m in joined for m in _METHOD):
        return "method"
    return None


def _says_debit(kind: str, value: Any) -> bool:
    if value is None or isinstance(value, (dict, list)) and not value:
        return False
    if kind == "method":
        text = re.sub(r"[^a-z0-9]", "", _plain(str(value)))
        return any(word in text for word in _DEBIT_VALUES)
    try:  # a mandate column holding a yes/no value ('prelevement: non'), or nothing
        return parse_bool(value)
    except ValueError:
        return True


class DebitWatch:
    """Watches the invoices of a run for direct-debit data the mapping does not read."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        # bound (even to a constant no): the mapping has said what a direct debit is
        self.active = "direct_debit" not in (mapping.bindings.get("payment") or {})
        self._unread: Unread | None = None  # made at the first invoice seen
        self.invoices = 0  # invoices with direct-debit data
        self.first = ""  # the first one's record
        self.names: dict[str, None] = {}  # the columns (JSON paths) it was found in

    def see(self, record: dict[str, Any], origin: str) -> None:
        """Count ``record`` (an invoice's record) when it holds direct-debit data."""
        if not self.active:
            return
        if self._unread is None:
            self._unread = Unread(self.mapping)
        found = [name for name, value in self._unread.values(record)
                 if (kind := kind_of(name)) is not None and _says_debit(kind, value)]
        if found:
            self.invoices += 1
            self.first = self.first or origin
            self.names.update(dict.fromkeys(found))

    def note(self, shown: bool = False) -> tuple[str, str] | None:
        """The run's note (where, detail: the mapping's payment bindings, the words),
        when an invoice held direct-debit data (``shown``: counted over a preview's
        invoices)."""
        if not self.invoices:
            return None
        names = list(self.names)
        listed = ", ".join(names[:_SHOWN]) + (", …" if len(names) > _SHOWN else "")
        bindings = self.mapping.bindings
        where = (self.mapping.where("bindings", "payment") if "payment" in bindings
                 else self.mapping.where("bindings"))
        counted = "shown" if shown else "of the run"
        # a constant the mapping takes for "no direct debit": a method its table says is
        # none, when it has codes.payment_methods (a yes/no value is refused then)
        methods = self.mapping.codes.payment_methods
        no = "no" if methods is None else next((k for k, v in methods.items() if not v), None)
        const = (f"payment.direct_debit: {{const: {json.dumps(no, ensure_ascii=False)}}}"
                 if no is not None else "payment.direct_debit to a constant method "
                 "codes.payment_methods says false")
        return where, (
            f"{self.mapping.path}: bindings.payment.direct_debit is not bound, so no title "
            f"is a direct debit, yet {self.invoices} invoice(s) {counted} hold direct-debit "
            f"data no binding reads ({listed}; the first at {self.first}): they are "
            "exported as titles to pay, without their SEPA mandate; bind bindings.payment "
            "to those columns or keys (the scaffold's commented payment: block, "
            "docs/mapping-reference.md), or, if the collectivity does not collect them by "
            f"direct debit, bind {const}")
