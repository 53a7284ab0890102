"""Mapping expressions: the closure path (pesgen.expr) gives what Jinja gives."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pesgen._jinja import expression_environment
from pesgen.expr import compile_fast

ENV = expression_environment()

# Expressions inside the subset: each must compile to a closure.
FAST = [
    "'CONSERVATOIRE FACTURE ' ~ invoice.number",
    "invoice.number | digits",
    "invoice.payer.last_name or invoice.payer.name",
    "invoice.payment.method == 'direct_debit'",
    "invoice.payment.method != 'invoice' and invoice.total",
    "not invoice.payer",
    "line.activity.label ~ ' - ' ~ line.student.first_name ~ ' ' ~ line.student.last_name",
    "invoice['number']",
    "invoice.lines[0].amount",
    "invoice.lines[1]",
    "invoice.payer.name if invoice.payer.kind == 'organization' else invoice.payer.last_name",
    "invoice.payer.name if invoice.payer.kind",
    "invoice.number | zfill(12)",
    "invoice.payer.kind in 'person organization'",
    "invoice.number | default('X')",
    "invoice.payer.kind not in 'person'",
    "1 < invoice.count < 5",
    "invoice.items",  # a dict method name: the sandbox's getattr decides
    "invoice.number.upper",  # a str method: same
    "invoice.__class__",  # unsafe: the sandbox refuses the same way
    "collectivity.siret ~ invoice.number",
    "missing_name",
    "range",
    "none",
    "true or invoice.number",
]

# Outside the subset: the Jinja path keeps them.
SLOW = [
    "invoice.number is defined",
    "invoice.payer | map(attribute='name') | list",  # map takes the context
    "invoice.number ~ (1 + 2)",
    "invoice.number.upper()",
    "[invoice.number]",
    "invoice.number | zfill(width=3)",
    "invoice.lines[0:2]",
]

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 20),
                    st.text(max_size=6),
                    st.sampled_from(["direct_debit", "person", "FA-2026-00102"]))
KEYS = st.sampled_from(["number", "payer", "name", "last_name", "kind", "method", "payment",
                        "total", "lines", "amount", "count", "items", "activity", "label",
                        "student", "first_name"])
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.dictionaries(KEYS, inner, max_size=5), st.lists(inner, max_size=3)), max_leaves=12)
RECORDS = st.dictionaries(KEYS, VALUES, max_size=8)


def _jinja(source: str, scope: dict[str, Any]) -> tuple[str, Any]:
    try:
        value = ENV.compile_expression(source, undefined_to_none=True)(**scope)
    except Exception as exc:
        return "raise", type(exc)
    return "value", value


def _fast(source: str, scope: dict[str, Any]) -> tuple[str, Any]:
    fn = compile_fast(ENV, source)
    assert fn is not None
    try:
        value = fn(scope)
    except Exception as exc:
        return "raise", type(exc)
    return "value", None if isinstance(value, jinja2.Undefined) else value


@pytest.mark.parametrize("source", FAST)
def test_subset_compiles(source: str) -> None:
    assert compile_fast(ENV, source) is not None


@pytest.mark.parametrize("source", SLOW)
def test_outside_subset_keeps_jinja(source: str) -> None:
    assert compile_fast(ENV, source) is None


@settings(max_examples=300, deadline=None)
@given(invoice=RECORDS, line=RECORDS, source=st.sampled_from(FAST))
def test_same_result_as_jinja(invoice: dict[str, Any], line: dict[str, Any],
                              source: str) -> None:
    scope = {"invoice": invoice, "line": line,
             "collectivity": {"siret": "21450999400015", "exercise": 2026}}
    assert _fast(source, scope) == _jinja(source, scope)


def test_example_values() -> None:
    scope = {"invoice": {"number": "FA-2026-00102", "payer": {"name": "Verreries & Co"},
                         "payment": {"method": "direct_debit"}},
             "line": {}, "collectivity": {}}
    assert _fast("invoice.number | digits", scope) == ("value", "202600102")
    assert _fast("invoice.payer.last_name or invoice.payer.name", scope) == \
        ("value", "Verreries & Co")
    assert _fast("invoice.payment.method == 'direct_debit'", scope) == ("value", True)
    # str() of a missing value is '' (undefined), of None is 'None': as in Jinja
    assert _fast("'X' ~ invoice.nothing", scope) == _jinja("'X' ~ invoice.nothing", scope) == \
        ("value", "X")


@pytest.mark.parametrize("source, expected", [
    ("line.activity.label ~ ' - ' ~ line.student.first_name ~ ' ' ~ line.student.last_name",
     "Piano -  Dupont"),
    ("line['student']['first_name'] ~ '|'", "|"),
    ("line.student.first_name | default('?')", "?"),
    ("line.student.first_name or line.student.last_name", "Dupont"),
])
def test_a_json_null_reads_as_a_missing_key_on_both_paths(source: str, expected: str) -> None:
    """JSON null never spells 'None' in a concatenation: it is undefined, like a
    missing key (text normalisation then folds the double space)."""
    scope = {"line": {"activity": {"label": "Piano"},
                      "student": {"first_name": None, "last_name": "Dupont"}}}
    fast = compile_fast(ENV, source)
    assert fast is not None
    jinja = ENV.compile_expression(source, undefined_to_none=False)
    assert str(fast(scope)) == str(jinja(**scope)) == expected


@pytest.mark.parametrize("source", ["'a' * 10**9", "10 * ['x'] * 100000", "10**100000",
                                    "((10**64)**64)**64", "invoice.number | fixed(10**9)",
                                    "invoice.number | zfill(10**9)"])
def test_an_expression_cannot_make_a_huge_value(source: str) -> None:
    """Repetition, powers and pesgen's width filters are bounded in the sandbox."""
    with pytest.raises((jinja2.sandbox.SecurityError, ValueError)):
        ENV.compile_expression(source)(invoice={"number": "FA-1"})


@pytest.mark.parametrize("source, expected", [("'ab' * 3", "ababab"), ("2 ** 10", 1024),
                                              ("invoice.number | fixed(6)", "FA-1  ")])
def test_small_repetitions_and_powers_still_work(source: str, expected: object) -> None:
    assert ENV.compile_expression(source)(invoice={"number": "FA-1"}) == expected
