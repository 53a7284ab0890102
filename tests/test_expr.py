"""Mapping expressions: the closure path (pesgen.expr) gives what Jinja gives."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.sandbox import SecurityError

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
    "invoice.count >= 1 and invoice.count <= 5 and invoice.count > 0",
    "invoice.items",  # a dict method name: the sandbox's getattr decides
    "invoice.number.upper",  # a str method: same
    "invoice.__class__",  # unsafe: the sandbox refuses the same way
    "collectivity.siret ~ invoice.number",
    "missing_name",
    "range",
    "none",
    "true or invoice.number",
    # a code table: the shipped mapping's payment methods
    "{'direct_debit': 'yes', 'invoice': 'no'}.get(invoice.payment.method, "
    "invoice.payment.method)",
    "{'a': invoice.number, invoice.kind: 1}.get('a')",
    "{'direct_debit': 'yes', 'invoice': 'no'}[invoice.payment.method]",  # constants only
    "{'a': 1, 'b': 'x'}",
    "invoice.payer.get('name', 'X')",
    "invoice.payer.first_name ~ ' ' ~ invoice.payer.last_name",
    "invoice.number ~ '-' ~ line.amount ~ line.count",
    "invoice.number ~ '/' ~ invoice.count ~ '/' ~ line.label ~ '/' ~ invoice.lines",
    "range.items ~ none.x ~ missing_name.label",  # a global, a constant, a missing name
    # a None in '~' (a JSON null read from a list, a dict's get): refused on both paths
    "invoice.lines[0] ~ '/' ~ invoice.get('name')",
    "'X' ~ none",  # constants joined when compiled, on both paths
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


@pytest.mark.parametrize("count, expected", [(0, False), (1, False), (3, True), (5, False),
                                             (10, False)])
def test_a_chained_comparison_is_each_comparison_on_both_paths(count, expected):
    """``1 < x < 5`` is ``1 < x and x < 5``: the closure goes on past a true first
    comparison and stops at a false one, as Python and Jinja do."""
    scope = {"invoice": {"count": count}}
    assert _fast("1 < invoice.count < 5", scope) == _jinja("1 < invoice.count < 5", scope) == \
        ("value", expected)


@pytest.mark.parametrize("source", [
    "{'direct_debit': 'yes', 'invoice': 'no'}.get(invoice.method, invoice.method)",
    "invoice.get('method')",
    "invoice.payer.get('name', 'X')",
    "{'a': invoice.method}.get('a', 'b')",
    "{}.get(invoice.payer)",
    "{'direct_debit': 'yes', 'invoice': 'no'}.get(invoice.method)",
    "{'get': 'x', 'direct_debit': 'yes'}.get(invoice.method)",
    "{1: 'one', none: 'nothing', 'online': none}.get(invoice.method, 'z')",
    # a code table's get with no argument or three: dict.get's own TypeError on both
    "{'direct_debit': 'yes'}.get()",
    "{'direct_debit': 'yes'}.get(invoice.method, 'no', 'extra')",
])
@pytest.mark.parametrize("invoice", [
    {"method": "direct_debit"}, {"method": "online"}, {"method": None}, {},
    {"method": ["direct_debit"]}, {"method": {"a": 1}}, {"get": "x", "method": "invoice"},
    {"payer": {"get": "y", "name": "N"}}, {"payer": {"name": None}}, {"payer": "text"},
    {"payer": ["a"]}, {"payer": {"get": None}},
])
def test_a_get_call_gives_what_jinja_gives(source: str, invoice: dict[str, Any]) -> None:
    """``x.get(...)`` goes through the sandbox's getattr and call on both paths: a key
    named 'get', an unhashable or undefined key, a value without a get."""
    scope = {"invoice": invoice, "line": {}, "collectivity": {}}
    assert _fast(source, scope) == _jinja(source, scope)


def test_a_get_taking_the_context_sees_the_scope_on_both_paths() -> None:
    class Table:
        @jinja2.pass_context
        def get(self, context: Any, key: str) -> tuple[str, list[str], bool]:
            names = sorted(k for k in context.get_all() if k in ("invoice", "line", "range"))
            return key, names, context.environment is ENV

    scope = {"invoice": Table(), "line": {}}
    assert _fast("invoice.get('k')", scope) == _jinja("invoice.get('k')", scope) == \
        ("value", ("k", ["invoice", "line", "range"], True))


def test_a_callable_get_whose_call_takes_the_context_sees_the_scope_on_both_paths() -> None:
    """Context.call looks at the callee's __call__ too: the closure path as well."""
    class Get:
        @jinja2.pass_context
        def __call__(self, context: Any, key: str) -> tuple[str, bool]:
            return key, "invoice" in context.get_all()

    class Table:
        get = Get()

    scope = {"invoice": Table(), "line": {}}
    assert _fast("invoice.get('k')", scope) == _jinja("invoice.get('k')", scope) == \
        ("value", ("k", True))


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


@pytest.mark.parametrize("source, expected", [
    ("invoice['number']", "FA-1"),
    ("invoice['payer']['name'] ~ '|' ~ invoice['payer'].kind", "Dupont|person"),
    ("invoice['lines'][1]", "b"),
    ("invoice['note'] | default('-')", "-"),  # a JSON null: undefined, as invoice.note is
    ("invoice['missing'] | default('-')", "-"),  # a key the record lacks: the same
])
def test_a_key_read_by_subscript_is_read_as_by_dot_on_both_paths(source: str,
                                                                   expected: str) -> None:
    scope = {"invoice": {"number": "FA-1", "note": None, "lines": ["a", "b"],
                         "payer": {"name": "Dupont", "kind": "person"}}}
    fast = compile_fast(ENV, source)
    assert fast is not None
    assert fast(scope) == ENV.compile_expression(source)(**scope) == expected


@pytest.mark.parametrize("source", ["invoice['lines']['x']", "invoice['number']['x']"])
def test_a_key_read_by_subscript_of_a_list_or_a_text_is_a_wrong_shape(source: str) -> None:
    from pesgen._jinja import WrongShape

    scope = {"invoice": {"number": "FA-1", "lines": ["a", "b"]}}
    kind = "a list" if "lines" in source else "a text"
    for run in (compile_fast(ENV, source), lambda s: ENV.compile_expression(source)(**s)):
        assert run is not None
        with pytest.raises(WrongShape, match=f"^reads 'x' of {kind}, where an object is "
                                             "expected$"):
            run(scope)


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


# Jinja's own filters, '%' and str.format, and the string methods that grow a value
# from a width or a count: (expression, what the refusal names). ``n`` is "FA-1".
HUGE = [
    ("n | center(1000000000)", "filter center"),
    ("'a\nb' | indent(10**9)", "filter indent"),
    ("('\n' * 100000) | indent(10000)", "filter indent"),
    ("'a b c' | wordwrap(1, wrapstring='x' * 100000)", "filter wordwrap"),
    ("'%999999999d' | format(1)", "filter format"),
    ("'%999999999d' % 1", "'%' formatting"),
    ("'%-0 999999999d' % 1", "'%' formatting"),  # the width after its flags
    ("'%.999999999f' % 1", "'%' formatting"),
    ("'%*d' % (999999999, 1)", "'%' formatting"),
    ("'%(a)999999999s' % {'a': n}", "'%' formatting"),
    ("('%9999d' * 14000) % ((1,) * 14000)", "'%' formatting"),
    ("'{:>999999999}'.format(n)", "str.format"),
    ("'{:>{w}}'.format(n, w=999999999)", "str.format"),
    ("('{0:>99999}' * 1000).format(n)", "str.format"),
    ("'{a:^999999999}'.format_map({'a': n})", "str.format"),
    # a long argument named again and again
    ("('{0}' * 1000).format('x' * 100000)", "str.format"),
    ("('%s' * 1000) % (('x' * 100000,) * 1000)", "'%' formatting"),
    ("('%(a)s' * 1000) % {'a': 'x' * 100000}", "'%' formatting"),
    ("('%((a))s' * 1000) % {'(a)': 'x' * 100000}", "'%' formatting"),  # a key's parentheses
    ("('%s' * 1000) | format(*(('x' * 100000,) * 1000))", "filter format"),
    ("(['x' * 100000] * 100000) | join", "filter join"),
    ("range(100000) | join('x' * 100000)", "filter join"),
    ("n | replace('', 'x' * 100000)", "filter replace"),
    ("('a' * 100000) | replace('a', 'b' * 1000)", "filter replace"),
    ("range(10) | batch(10**9, 0) | list", "filter batch"),
    ("range(10) | slice(10**9) | list", "filter slice"),
    ("([['x'] * 100000] * 100000) | sum(start=[])", "filter sum"),
    ("n.ljust(10**9)", "str.ljust"),
    ("n.rjust(10**9)", "str.rjust"),
    ("n.center(10**9)", "str.center"),
    ("n.center(10**9, '-')", "str.center"),  # the width, not the fill character
    ("n.zfill(10**9)", "str.zfill"),
    ("('\t' * 100000).expandtabs(100000)", "str.expandtabs"),
    ("('\t' * 100000).expandtabs(tabsize=100000)", "str.expandtabs"),
    ("('x' * 100000).replace('x', 'y' * 100000)", "str.replace"),
    ("('x' * 100000).join(['a'] * 100000)", "str.join"),
    ("('a' * 100000).translate({97: 'x' * 100000})", "str.translate"),
    ("lipsum(10**7)", "lipsum"),
]

# What still works, widths up to 10 000 included
NORMAL = [
    ("n | center(8)", "  FA-1  "),
    ("(n | center(10000)) | length", 10000),
    ("'a\nb\n\nc' | indent(2)", "a\n  b\n\n  c"),
    ("'a\nb' | indent('> ', first=true)", "> a\n> b"),
    ("(('line of text ' * 4 ~ '\n') * 1800) | indent(4) | length", 102596),
    ("'a b c' | wordwrap(1, wrapstring='|')", "a|b|c"),
    ("'aaa bb' | wordwrap(3)", "aaa\nbb"),
    ("'aaa bbb' | wordwrap(3, wrapstring='')", "aaabbb"),  # an empty separator joins them
    ("'%05d' | format(42)", "00042"),
    ("'%(x)s!' | format(x=n)", "FA-1!"),
    ("'%5d|%-3s|%.2f|%d%%' % (42, 'a', 1.5, 5)", "   42|a  |1.50|5%"),
    ("('%10000d' % 1) | length", 10000),
    ("7 % 3", 1),
    ("'{:>6}'.format(n)", "  FA-1"),
    ("'{:0>{w}}'.format(7, w=3)", "007"),
    ("'{a}-{b:.1f}'.format_map({'a': n, 'b': 2})", "FA-1-2.0"),
    ("('{:>10000}'.format(n)) | length", 10000),
    ("('{0}{0}'.format('y' * 50000)) | length", 100000),
    ("(('%s %s' % ('y' * 50000, n)) | length)", 50005),
    ("'%(a)s %(a)s' % {'a': n}", "FA-1 FA-1"),
    ("[1, 2, 3] | join(', ')", "1, 2, 3"),
    ("(range(100000) | join(', ')) | length", 688888),
    ("n | replace('-', '/')", "FA/1"),
    ("'aaa' | replace('a', 'b', 2)", "bba"),
    ("range(5) | batch(2, 0) | list", [[0, 1], [2, 3], [4, 0]]),
    ("(range(10**9 // 10**4) | batch(10**9) | list) | length", 1),
    ("range(5) | slice(2) | list", [[0, 1, 2], [3, 4]]),
    ("[[1], [2]] | sum(start=[])", [1, 2]),
    ("[1, 2] | sum", 3),
    ("[{'a': 1}, {'a': 2}] | sum(attribute='a')", 3),
    ("'foo bar baz' | truncate(10**9)", "foo bar baz"),
    ("'foo bar baz' | truncate(9, leeway=0)", "foo..."),
    ("n.ljust(6, '.')", "FA-1.."),
    ("n.rjust(10000) | length", 10000),
    ("'1'.zfill(3)", "001"),
    ("'a\tb'.expandtabs(4)", "a   b"),
    ("(('x' * 10000 ~ '\t').expandtabs(100)) | length", 10100),  # one tab: one tab's width
    ("', '.join(['a', 'b'])", "a, b"),
    ("'abc'.translate({97: 'xy'})", "xybc"),
    ("n.replace('A', 'AA')", "FAA-1"),
    ("(('x' * 100000).replace('x', 'y' * 100000, 1)) | length", 199999),  # once, as asked
    ("(('x' * 100000).replace('x', 'y' * 100000, 0)) | length", 100000),  # never
    ("(lipsum(1, false, 5, 6) | length) > 0", True),
]


def _environments() -> dict[str, Any]:
    from pathlib import Path

    from pesgen._jinja import string_environment, template_environment

    return {"template": template_environment(Path(__file__).parent),
            "expression": ENV, "string": string_environment()}


ENVS = _environments()


def _evaluate(env_name: str, source: str) -> Any:
    """The expression in a mapping expression, or printed by a template."""
    env = ENVS[env_name]
    if env_name == "template":
        return env.from_string("{{ " + source + " }}").render(n="FA-1")
    return env.compile_expression(source)(n="FA-1")


@pytest.mark.parametrize("env_name", sorted(ENVS))
@pytest.mark.parametrize("source, what", HUGE)
def test_jinja_builtins_cannot_make_a_huge_value(env_name: str, source: str, what: str) -> None:
    with pytest.raises(jinja2.sandbox.SecurityError) as info:
        _evaluate(env_name, source)
    assert str(info.value).startswith(f"{what}: a result of about ")
    assert " refused (at most " in str(info.value)


@pytest.mark.parametrize("env_name", sorted(ENVS))
@pytest.mark.parametrize("source, expected", NORMAL)
def test_jinja_builtins_still_work_within_the_bounds(env_name: str, source: str,
                                                     expected: Any) -> None:
    got = _evaluate(env_name, source)
    assert got == (str(expected) if env_name == "template" else expected)


@pytest.mark.parametrize("source, huge", [
    ("invoice.number | center(12)", "invoice.number | center(1000000000)"),
    ("invoice.number | indent(2, true)", "invoice.number | indent(1000000000, true)"),
    ("'%08d' | format(invoice.count)", "'%999999999d' | format(invoice.count)"),
    ("invoice.items | batch(2, 0)", "invoice.items | batch(1000000000, 0)"),
    ("invoice.items | slice(2)", "invoice.items | slice(1000000000)"),
])
def test_the_closure_path_calls_the_bounded_filters(source: str, huge: str) -> None:
    """expr.py calls the environment's filters directly: the bounded ones."""
    scope = {"invoice": {"number": "FA-1", "count": 7, "items": [1, 2, 3]}}
    fast = compile_fast(ENV, source)
    assert fast is not None
    assert list(fast(scope)) == list(ENV.compile_expression(source)(**scope))
    refused = compile_fast(ENV, huge)
    assert refused is not None
    with pytest.raises(jinja2.sandbox.SecurityError, match="refused"):
        list(refused(scope))


@pytest.mark.parametrize("source", [
    "{invoice.payer: 1, 'k': invoice.lines.get('x')}",  # unhashable key, then a failure
    "{invoice.payer: invoice.lines.get('x')}",
    "{'k': invoice.lines.get('x'), invoice.payer: 1}",
    "{invoice.payer: 1}",
])
def test_a_dict_literal_fails_as_jinja_s_dict_display_does(source: str) -> None:
    """Every key and value is evaluated before the dict is made, as in Jinja's generated
    code: the same error, and the same message, on both paths."""
    scope = {"invoice": {"payer": {"name": "N"}, "lines": [1]}}
    fast = compile_fast(ENV, source)
    assert fast is not None
    jinja = ENV.compile_expression(source, undefined_to_none=False)
    outcomes = []
    for run in (lambda: fast(scope), lambda: jinja(**scope)):
        try:
            outcomes.append(("ok", run()))
        except Exception as exc:  # noqa: BLE001 - the same failure is the point
            outcomes.append((type(exc).__name__, str(exc)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] != "ok"


@pytest.mark.parametrize("source, paths", [
    ("invoice.payer.last_name or invoice.payer.name",
     (("invoice", ("payer", "last_name")), ("invoice", ("payer", "name")))),
    ("invoice['N° facture'] | digits", (("invoice", ("N° facture",)),)),
    ("invoice.lines[0].amount", (("invoice", ("lines", 0, "amount")),)),
    ("invoice.payer[key].name", (("invoice", ("payer",)),)),
    ("invoice | tojson", (("invoice", ()),)),
    ("line.activity.label ~ collectivity.name", (("line", ("activity", "label")),)),
    ("{'a': 'yes'}.get(invoice.payment.method, 'no')", (("invoice", ("payment", "method")),)),
])
def test_expression_paths_are_whole_chains_from_invoice_or_line(source, paths):
    from pesgen._jinja import expression_environment
    from pesgen.expr import expression_paths

    assert expression_paths(expression_environment(), source) == paths


@pytest.mark.parametrize("source, columns, private", [
    # a constant int and a computed subscript name no column (and do not stop the walk)
    ("invoice.lines[0].label ~ invoice[line.key]", ("lines", "key"), ()),
    ("invoice.payer.__class__ ~ line['_x'] ~ invoice['N° facture']",
     ("payer", "N° facture"), ("__class__", "_x")),
    # columns read from invoice or line only, each once, in order
    ("invoice.number ~ invoice.number ~ collectivity.siret ~ line.label",
     ("number", "label"), ()),
    ("'{0._y}'.format(invoice.number)", ("number",), ("_y",)),
    ("invoice._a ~ invoice._a", (), ("_a",)),
    ("invoice.(", (), ()),  # not an expression: its syntax error comes from Jinja
])
def test_expression_reads_names_columns_and_private_names(source, columns, private):
    """What the mapping loader learns from an expression before any record: the CSV
    columns it reads and the names starting with '_' it refuses at load."""
    from pesgen.expr import expression_reads

    assert expression_reads(ENV, source) == (columns, private)


def _python_says(call: Any) -> str:
    """The message of the TypeError ``call`` raises."""
    try:
        call()
    except TypeError as exc:
        return str(exc)
    raise AssertionError("no TypeError")


@pytest.mark.parametrize("source, says", [
    # Python's own words, which 3.13 changed ("replace() takes at least 2 positional
    # arguments (1 given)")
    ("n.replace('A')", _python_says(lambda: "FA-1".replace("A"))),  # type: ignore[call-arg]
    ("n.replace('A', 1)", "replace() argument 2 must be str, not int"),
    ("n.replace(1, 'A')", "replace() argument 1 must be str, not int"),
    ("'%(a' % {'a': 1}", "incomplete format key"),  # a key's parenthesis left open
    ("'%-' % 1", "incomplete format"),  # a conversion ending on its flags
    ("'%5' % 1", "incomplete format"),  # ... on its width
    ("'%*d' % ()", "not enough arguments for format string"),  # a '*' without its number
    ("'%s %s' % ('a',)", "not enough arguments for format string"),  # a value missing
    # '%%' writes '%' and takes no value: none is not written, Python refuses it
    ("'%%' % none", "not all arguments converted during string formatting"),
    ("'%%s' % none", "not all arguments converted during string formatting"),
    # a length modifier (h, l, L) is no conversion: the '%' after it is one, unknown
    ("'%l%' % none", "unsupported format character '%' (0x25) at index 2"),
])
def test_a_string_method_or_format_used_wrong_fails_as_python_says(source: str, says: str) -> None:
    with pytest.raises((TypeError, ValueError), match=f"^{re.escape(says)}$"):
        ENV.compile_expression(source)(n="FA-1")


# A result may be exactly its bound, 100 000 plus ten times what it is made from
# (docs/onboarding.md), one character more is refused: the lengths are those Python's
# and Jinja's own make.
# - ``s.replace('', t)`` writes ``t`` at each of the len(s) + 1 places: a text of 99 990
#   characters gets 99 991 tens, 1 099 900 characters;
# - ``'\n' | indent(w, true, true)`` writes 2 w + 1 characters (the line before the break
#   and the empty one after it, each indented, and the break), from one character;
# - n one-letter words wrapped at 1 with a separator of l characters are n + (n - 1) l
#   characters, from a text of 2 n - 1.
@pytest.mark.parametrize("source, fits, length, over, what, size", [
    ("(('x' * size).replace('', 'y' * 10)) | length", {"size": 99990}, 1099900,
     {"size": 99991}, "str.replace", 1099911),
    ("('\n' | indent(width, true, true)) | length", {"width": 50004}, 100009,
     {"width": 50005}, "filter indent", 100011),
    ("(text | wordwrap(1, wrapstring=sep)) | length",
     {"text": " ".join(["x"] * 638), "sep": "-" * 176}, 112750,  # 100 000 + 10 * 1275
     {"text": " ".join(["x"] * 731), "sep": "-" * 156}, "filter wordwrap", 114611),
], ids=["str.replace", "indent", "wordwrap"])
def test_a_result_may_be_exactly_its_bound(source: str, fits: dict[str, Any], length: int,
                                           over: dict[str, Any], what: str, size: int) -> None:
    run = ENV.compile_expression(source)
    assert run(**fits) == length
    with pytest.raises(SecurityError, match=f"^{re.escape(what)}: a result of about {size} "
                                            f"characters refused \\(at most {size - 1}\\)$"):
        run(**over)


@pytest.mark.parametrize("count, size, sep, length", [
    (193, 556, "-", 107500),  # 100 000 + 10 * (193 items + 556 + 1): exactly the bound
    (53, 2335, "---", 123911),  # one more than 100 000 + 10 * (53 + 2335 + 3)
    (34, 4777, "-", 162451),  # 31 items and their separators are exactly the bound
])
def test_a_join_may_make_exactly_its_bound(count: int, size: int, sep: str, length: int) -> None:
    """A list repeating one text joins to count * size + (count - 1) * len(sep)
    characters; it is made from its items, the one text they hold and the separator."""
    run = ENV.compile_expression("(items | join(sep)) | length")
    items = ["x" * size] * count
    bound = 100000 + 10 * (count + size + len(sep))
    if length <= bound:
        assert run(items=items, sep=sep) == length
        return
    with pytest.raises(SecurityError, match=r"^filter join: a result of about \d+ characters "
                                            rf"refused \(at most {bound}\)$"):
        run(items=items, sep=sep)


@pytest.mark.parametrize("source, what", [
    ("[1] | batch(10**9, 0)", "filter batch"),
    ("[1] | slice(10**9)", "filter slice"),
    ("([[1] * 100000] * 100) | sum(start=[])", "filter sum"),
])
def test_a_filter_making_a_list_is_refused_counting_its_items(source: str, what: str) -> None:
    """The bound of a list is counted in items, and its refusal says so."""
    with pytest.raises(SecurityError, match=f"^{what}: a result of about \\d+ items refused "
                                            "\\(at most \\d+\\)$"):
        ENV.compile_expression(source)()


@pytest.mark.parametrize("source, size", [
    ("'%-0 999999999d' % 1", 1000000013),  # the format's 14 characters and the width
    ("'%.999999999f' % 1", 1000000011),
    ("'%*.*f' % (1, 999999999, 1.5)", 1000000005),  # each '*' takes the next argument
])
def test_a_printf_width_is_refused_with_its_size(source: str, size: int) -> None:
    with pytest.raises(SecurityError, match=f"^'%' formatting: a result of about {size} "
                                            "characters refused"):
        ENV.compile_expression(source)()


# What the closures compute, checked value by value against Jinja's path (the Hypothesis
# test above draws few records that reach each of these)

@pytest.mark.parametrize("source, invoice, expected", [
    ("invoice.payer.kind in 'person organization'", {"payer": {"kind": "person"}}, True),
    ("invoice.payer.kind in 'person organization'", {"payer": {"kind": "school"}}, False),
    ("invoice.payer.kind not in 'person'", {"payer": {"kind": "person"}}, False),
    ("invoice.payer.kind not in 'person'", {"payer": {"kind": "organization"}}, True),
    # 'and' gives its last operand, not a yes/no
    ("invoice.payment.method != 'invoice' and invoice.total",
     {"payment": {"method": "cheque"}, "total": 12}, 12),
    ("not invoice.payer", {"payer": {}}, True),
    ("not invoice.payer", {"payer": {"name": "N"}}, False),
    ("invoice.payer.name if invoice.payer.kind == 'organization' else invoice.payer.last_name",
     {"payer": {"kind": "person", "name": "Verreries", "last_name": "Dupont"}}, "Dupont"),
    ("invoice.payer.name if invoice.payer.kind == 'organization' else invoice.payer.last_name",
     {"payer": {"kind": "organization", "name": "Verreries", "last_name": "Dupont"}},
     "Verreries"),
])
def test_membership_and_logic_give_what_jinja_gives(source: str, invoice: dict[str, Any],
                                                    expected: object) -> None:
    scope = {"invoice": invoice, "line": {}, "collectivity": {}}
    fast, jinja = _fast(source, scope), _jinja(source, scope)
    assert fast == jinja == ("value", expected)
    assert type(fast[1]) is type(expected)


@pytest.mark.parametrize("source, expected", [
    # three and five operands (the unrolled joins), none of them a text
    ("line.count ~ line.amount ~ line.count", "23.502"),
    ("line.count ~ '-' ~ line.amount ~ line.count ~ line.amount", "2-3.5023.50"),
    ("line.nothing ~ '-' ~ line.count ~ line.nothing ~ line.count", "-22"),  # undefined: ''
    # a name neither in the scope nor a global is undefined: '' in a text, as in Jinja
    ("'X' ~ missing_name", "X"),
    ("missing_name ~ line.count ~ '/'", "2/"),
])
def test_a_concatenation_of_numbers_or_undefined_values_gives_what_jinja_gives(
        source: str, expected: str) -> None:
    scope = {"invoice": {}, "line": {"count": 2, "amount": Decimal("3.50")}}
    assert _fast(source, scope) == _jinja(source, scope) == ("value", expected)


def test_a_global_s_attribute_is_read_from_the_global_on_both_paths() -> None:
    """``dict`` is one of Jinja's globals, not a record: its attribute is the sandbox's
    getattr of it, on the closure path as on Jinja's."""
    scope = {"invoice": {}, "line": {}}
    source = "dict.fromkeys and 'read'"
    assert _fast(source, scope) == _jinja(source, scope) == ("value", "read")


@pytest.mark.parametrize("payer", ["a name", 5, ["name"]])
def test_a_key_read_of_a_text_a_number_or_a_list_is_a_wrong_shape_on_both_paths(
        payer: object) -> None:
    """``invoice.payer.name`` where the payer is no object: WrongShape on both paths, also
    for a text or a list that holds the key's name."""
    from pesgen._jinja import WrongShape

    scope = {"invoice": {"payer": payer}, "line": {}}
    assert _fast("invoice.payer.name", scope) == _jinja("invoice.payer.name", scope) == \
        ("raise", WrongShape)


@pytest.mark.parametrize("source", ["invoice.items", "invoice.payer.items",
                                    "invoice.payer.name ~ '-' ~ invoice.number",
                                    "invoice.number ~ invoice.payer.name"])
def test_an_environment_of_jinja_s_own_gets_what_it_computes(source: str) -> None:
    """compile_fast in an environment that is not pesgen's record sandbox calls that
    environment's getattr and Jinja's join, not the record sandbox's shortcuts: a dict's
    method is the method, not the key of that name."""
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.ChainableUndefined)
    scope = {"invoice": {"items": "key", "number": 7,
                         "payer": {"items": "key", "name": "Dupont"}}}
    fast = compile_fast(env, source)
    assert fast is not None
    value = fast(scope)
    assert value == env.compile_expression(source, undefined_to_none=False)(**scope)
    assert value != "key"
