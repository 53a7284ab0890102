"""Mapping expressions as Python closures: the same result as Jinja, without its context.

A binding such as ``invoice.number | digits`` or ``'FACTURE ' ~ invoice.number`` runs
for every invoice (and every line): evaluating it through a compiled Jinja template
costs a fresh render context per call, most of the mapping stage's time. This module
turns the expression's Jinja syntax tree into nested closures for a small, common
subset of the language, and leaves everything else to Jinja.

Exactness, not approximation: every closure does what Jinja's generated code does for
that node, through the *same* environment calls, so the sandbox and the undefined
handling stay in force.

* a name reads the scope, then the environment's globals, else ``env.undefined``;
* ``a.b`` is ``env.getattr(a, "b")`` and ``a['b']`` / ``a[0]`` is ``env.getitem``;
* ``~`` joins ``str()`` of its operands (``str_join``, autoescape off), a None
  operand refused first as the environment's ``str_concat`` refuses it;
* ``and``, ``or``, ``not``, comparisons and ``x if c else y`` are Python's own
  operators, as in Jinja's generated code;
* ``x | f(const, ...)`` calls the registered filter when it takes no context,
  environment or eval-context argument;
* ``{k: v, ...}`` builds a new dict, keys and values evaluated in order, as Jinja's
  generated code does;
* ``x.get(a, ...)`` (a code table: ``{'direct_debit': 'yes', ...}.get(invoice.method,
  invoice.method)``) is ``env.call(context, env.getattr(x, "get"), a, ...)``: the
  sandbox's call, with a context that holds the scope when the callee takes one.

Anything else (other calls, tests, arithmetic, list literals, keyword arguments...)
returns ``None`` from :func:`compile_fast`, and the binding keeps the Jinja path.
``tests/test_expr.py`` checks both paths agree on generated records.
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # CPython's, behind string.Formatter
import operator
import string
from collections.abc import Callable
from types import BuiltinMethodType
from typing import Any

from jinja2 import nodes
from jinja2.environment import Environment
from jinja2.exceptions import TemplateSyntaxError
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import new_context, str_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg

from ._jinja import MAX_RESULT_SIZE, _Bounded, _RecordSandbox

Scope = dict[str, Any]
Fn = Callable[[Scope], Any]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "lteq": operator.le,
    "gt": operator.gt, "gteq": operator.ge,
    "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}

# the environments' ``call``s that call a builtin dict method as it is (after the safety
# check): Jinja's sandbox, and pesgen's, which only looks at str methods
_PLAIN_CALLS = (SandboxedEnvironment.call, _Bounded.call)


def expression_reads(env: Environment, source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What an expression reads, from its syntax tree: the record keys it reads directly
    from ``invoice`` or ``line`` (a CSV mapping's columns), and any attribute or key
    starting with ``_`` (which the sandbox would refuse at run time). ``source`` must
    already compile with Jinja."""
    try:
        parser = Parser(env, source, state="variable")
        tree = parser.parse_expression()
    except TemplateSyntaxError:
        return (), ()
    columns: list[str] = []
    private: list[str] = []
    for n in (tree, *tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Const))):
        if isinstance(n, nodes.Const):
            # a format string ('{0.__class__}'.format(x), or through |attr('format')) reads
            # its fields' attributes through the sandbox: one starting with '_' is refused
            # at run time, said here before any record is read
            private += _format_private(n.value)
            continue
        if isinstance(n, nodes.Getattr):
            name: object = n.attr
        elif isinstance(n, nodes.Getitem):
            name = n.arg.value if isinstance(n.arg, nodes.Const) else None
        else:
            continue
        if not isinstance(name, str):
            continue
        if name.startswith("_"):
            private.append(name)
        elif isinstance(n.node, nodes.Name) and n.node.name in ("invoice", "line"):
            columns.append(name)
    return tuple(dict.fromkeys(columns)), tuple(dict.fromkeys(private))


def expression_paths(env: Environment, source: str) -> tuple[tuple[str, tuple[str | int, ...]],
                                                              ...]:
    """The record paths an expression reads, from its syntax tree: each chain of
    attributes and constant subscripts from ``invoice`` or ``line``, whole
    (``invoice.payer.last_name`` -> ``('invoice', ('payer', 'last_name'))``, not also
    its ``payer``); a chain stops before a subscript that is not a constant, and a bare
    ``invoice`` reads it all (``()``). ``source`` must already compile with Jinja."""
    try:
        tree = Parser(env, source, state="variable").parse_expression()
    except TemplateSyntaxError:
        return ()
    steps = (nodes.Getattr, nodes.Getitem)
    # the steps of a longer chain
    inner = {id(n.node) for n in (tree, *tree.find_all(steps)) if isinstance(n, steps)}
    found: list[tuple[str, tuple[str | int, ...]]] = []
    for n in (tree, *tree.find_all((nodes.Name, *steps))):
        if id(n) in inner or not isinstance(n, (nodes.Name, *steps)):
            continue
        parts: list[str | int] = []
        while isinstance(n, steps):
            if isinstance(n, nodes.Getattr):
                parts.append(n.attr)
            elif isinstance(n.arg, nodes.Const) and isinstance(n.arg.value, (str, int)):
                parts.append(n.arg.value)
            else:  # invoice[some_name]: what it reads is the part before
                parts.clear()
            n = n.node
        if isinstance(n, nodes.Name) and n.name in ("invoice", "line"):
            found.append((n.name, tuple(reversed(parts))))
    return tuple(dict.fromkeys(found))


def _format_private(value: object) -> list[str]:
    """The attributes and keys starting with '_' that the replacement fields of
    ``value`` read, were it used as a str.format string: ``'{0.__class__}'`` ->
    ``['__class__']``; none for a string that is no valid format."""
    if not isinstance(value, str) or "{" not in value:
        return []
    found: list[str] = []
    try:
        for _, field_name, spec, _ in _FORMATTER.parse(value):
            if field_name:
                _, parts = _split_field(field_name)
                found += [part for _, part in parts
                          if isinstance(part, str) and part.startswith("_")]
            if spec:
                found += _format_private(spec)  # a nested field: '{0:{1.__class__}}'
    except ValueError:
        return []
    return found


_FORMATTER = string.Formatter()
_split_field = _string.formatter_field_name_split
_MISSING = object()


class _Unsupported(Exception):
    """This node is outside the subset: keep the Jinja path for the expression."""


def compile_fast(env: SandboxedEnvironment, source: str) -> Fn | None:
    """A closure ``scope -> value`` equivalent to ``env.compile_expression(source)``
    (before its undefined-to-None step), or None when the expression is outside the
    subset. ``source`` must already compile with Jinja (syntax errors come from there)."""
    try:
        parser = Parser(env, source, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            return None
        return _Compiler(env).node(tree)
    except (_Unsupported, TemplateSyntaxError, RecursionError):  # Jinja then
        return None


class _Compiler:
    def __init__(self, env: SandboxedEnvironment) -> None:
        self.env = env
        self.globals = dict(env.globals)

    def node(self, n: nodes.Node) -> Fn:
        method = getattr(self, "_" + type(n).__name__, None)
        if method is None:
            raise _Unsupported(type(n).__name__)
        return method(n)

    def _Const(self, n: nodes.Const) -> Fn:
        value = n.value
        if not isinstance(value, (str, int, float, bool, type(None))):
            raise _Unsupported("constant")
        return lambda scope: value

    def _Name(self, n: nodes.Name) -> Fn:
        if n.ctx != "load":
            raise _Unsupported("store")
        name = n.name
        missing = object()
        found = self.globals.get(name, missing)
        undefined = self.env.undefined

        def name_fn(scope: Scope) -> Any:
            value = scope.get(name, missing)
            if value is not missing:
                return value
            if found is not missing:
                return found
            return undefined(name=name)

        return name_fn

    def _Getattr(self, n: nodes.Getattr) -> Fn:
        inner = self.node(n.node)
        attr = n.attr
        getattr_ = self.env.getattr
        if type(self.env).getattr is not _RecordSandbox.getattr:
            return lambda scope: getattr_(inner(scope), attr)
        # the record sandbox's own first test, made here: a present key of a plain dict
        # (a JSON object) is read without a method call; a JSON null in it is undefined,
        # as there; anything else goes to its getattr
        undefined = self.env.undefined
        if isinstance(n.node, nodes.Name) and n.node.ctx == "load" and \
                n.node.name not in self.globals:
            # ``line.label``: the scope's value read here too (what _Name does, for a name
            # that is not a global)
            name = n.node.name

            def name_getattr(scope: Scope) -> Any:
                obj = scope.get(name, _MISSING)
                if obj is _MISSING:
                    obj = undefined(name=name)
                elif type(obj) is dict and attr in obj:
                    value = obj[attr]
                    return undefined(obj=obj, name=attr) if value is None else value
                return getattr_(obj, attr)

            return name_getattr

        def record_getattr(scope: Scope) -> Any:
            obj = inner(scope)
            if type(obj) is dict and attr in obj:
                value = obj[attr]
                return undefined(obj=obj, name=attr) if value is None else value
            return getattr_(obj, attr)

        return record_getattr

    def _Getitem(self, n: nodes.Getitem) -> Fn:
        if isinstance(n.arg, nodes.Slice):
            raise _Unsupported("slice")
        inner, arg = self.node(n.node), self.node(n.arg)
        getitem = self.env.getitem
        return lambda scope: getitem(inner(scope), arg(scope))

    def _Concat(self, n: nodes.Concat) -> Fn:
        parts = [self.node(x) for x in n.nodes]
        try:  # constants joined when compiled, as Jinja's optimizer does ('X ' ~ none too)
            value = n.as_const(EvalContext(self.env))
            return lambda scope: value
        except nodes.Impossible:
            pass
        concat = getattr(self.env, "str_concat", None)
        # str_concat found: its class has it and concat_result (a _Bounded's, or its
        # own); mypy knows a SandboxedEnvironment's attributes only
        if (concat is None
                or type(self.env).str_concat is not _Bounded.str_concat  # type: ignore[attr-defined]
                or type(self.env).concat_result is not _Bounded.concat_result):  # type: ignore[attr-defined]
            # Jinja's str_join, or an environment's own join: called as the generated
            # code calls it, every operand evaluated first
            join = str_join if concat is None else concat
            return lambda scope: join(tuple([p(scope) for p in parts]))
        # the environment is a _Bounded from here (its str_concat found above)
        refuse = self.env.refuse_none  # type: ignore[attr-defined]
        # a result over MAX_RESULT_SIZE is refused by concat_result (it raises)
        too_long = self.env.concat_result  # type: ignore[attr-defined]
        # str() of an operand, a container's text bounded before it is made
        text_of = self.env.text_of  # type: ignore[attr-defined]
        limit = MAX_RESULT_SIZE
        # _Bounded.str_concat, inline: operands evaluated in order, then None refused,
        # then str() of each joined (text_of of any but a text), then the result
        # bounded; the common lengths unrolled
        # (no comprehension frame per call): 'X ' ~ a, a ~ ' ' ~ b, the shipped line label
        # a ~ ' - ' ~ b ~ ' ' ~ c
        if len(parts) == 2:
            p1, p2 = parts

            def concat2(scope: Scope) -> str:
                a, b = p1(scope), p2(scope)
                if a is None or b is None:
                    refuse("'~'")
                text = "".join((a if type(a) is str else text_of(a),
                                b if type(b) is str else text_of(b)))
                return too_long(text) if len(text) > limit else text

            return concat2
        if len(parts) == 3:
            p1, p2, p3 = parts

            def concat3(scope: Scope) -> str:
                a, b, c = p1(scope), p2(scope), p3(scope)
                if a is None or b is None or c is None:
                    refuse("'~'")
                text = "".join((a if type(a) is str else text_of(a),
                                b if type(b) is str else text_of(b),
                                c if type(c) is str else text_of(c)))
                return too_long(text) if len(text) > limit else text

            return concat3
        if len(parts) == 5:
            p1, p2, p3, p4, p5 = parts

            def concat5(scope: Scope) -> str:
                a, b, c, d, e = p1(scope), p2(scope), p3(scope), p4(scope), p5(scope)
                if a is None or b is None or c is None or d is None or e is None:
                    refuse("'~'")
                text = "".join((a if type(a) is str else text_of(a),
                                b if type(b) is str else text_of(b),
                                c if type(c) is str else text_of(c),
                                d if type(d) is str else text_of(d),
                                e if type(e) is str else text_of(e)))
                return too_long(text) if len(text) > limit else text

            return concat5

        def concat_n(scope: Scope) -> str:
            values = [p(scope) for p in parts]
            if None in values:
                refuse("'~'")
            text = "".join([x if type(x) is str else text_of(x) for x in values])
            return too_long(text) if len(text) > limit else text

        return concat_n

    def _And(self, n: nodes.And) -> Fn:
        left, right = self.node(n.left), self.node(n.right)
        return lambda scope: left(scope) and right(scope)

    def _Or(self, n: nodes.Or) -> Fn:
        left, right = self.node(n.left), self.node(n.right)
        return lambda scope: left(scope) or right(scope)

    def _Not(self, n: nodes.Not) -> Fn:
        inner = self.node(n.node)
        return lambda scope: not inner(scope)

    def _CondExpr(self, n: nodes.CondExpr) -> Fn:
        test, yes = self.node(n.test), self.node(n.expr1)
        if n.expr2 is not None:
            no = self.node(n.expr2)
        else:
            undefined = self.env.undefined
            no = lambda scope: undefined("the inline if-expression evaluated to false "  # noqa: E731
                                         "and no else section was defined.")
        return lambda scope: yes(scope) if test(scope) else no(scope)

    def _Compare(self, n: nodes.Compare) -> Fn:
        first = self.node(n.expr)
        ops = []
        for operand in n.ops:
            if operand.op not in _COMPARE:
                raise _Unsupported(operand.op)
            ops.append((_COMPARE[operand.op], self.node(operand.expr)))

        def compare(scope: Scope) -> Any:
            # Python's chained comparison: a < b < c is (a < b) and (b < c), b once
            left = first(scope)
            result: Any = True
            for op, right_fn in ops:
                right = right_fn(scope)
                result = op(left, right)
                if not result:
                    return result
                left = right
            return result

        return compare

    def _Filter(self, n: nodes.Filter) -> Fn:
        if n.kwargs or n.dyn_args is not None or n.dyn_kwargs is not None or n.node is None:
            raise _Unsupported("filter arguments")
        func = self.env.filters.get(n.name)
        # pass_context / pass_environment / pass_eval_context mark a filter with this
        # attribute (Jinja >= 3.0); such filters take an argument we do not build
        if func is None or getattr(func, "jinja_pass_arg", None) is not None:
            raise _Unsupported(f"filter {n.name}")
        inner = self.node(n.node)
        args = [self.node(a) for a in n.args]
        if not args:
            return lambda scope: func(inner(scope))
        return lambda scope: func(inner(scope), *[a(scope) for a in args])

    def _Dict(self, n: nodes.Dict) -> Fn:
        pairs = [(self.node(p.key), self.node(p.value)) for p in n.items]
        if all(isinstance(x, nodes.Const) for p in n.items for x in (p.key, p.value)):
            table = {key({}): value({}) for key, value in pairs}  # a new copy per call
            return lambda scope: table.copy()
        # every key and value first, then the dict, as a Python dict display does (an
        # unhashable key fails after the values, as in Jinja's generated code)
        return lambda scope: dict([(key(scope), value(scope)) for key, value in pairs])

    def _Call(self, n: nodes.Call) -> Fn:
        if n.kwargs or n.dyn_args is not None or n.dyn_kwargs is not None or \
                not isinstance(n.node, nodes.Getattr) or n.node.attr != "get":
            raise _Unsupported("call")
        callee, args = self.node(n.node), [self.node(a) for a in n.args]
        table_get = self._const_table_get(n)
        if table_get is not None:
            return table_get
        env, env_globals = self.env, self.globals
        call = env.call
        # what Context.call reads of its context for a callee without jinja_pass_arg
        # (a dict's get): the environment only; a callee with one gets the context Jinja
        # would make for the expression (its vars: the globals, then the scope)
        plain = new_context(env, None, {}, {}, True, env.make_globals(None))

        def call_fn(scope: Scope) -> Any:
            fn = callee(scope)
            values = [a(scope) for a in args]
            # Context.call looks at the callee and at its __call__
            if hasattr(fn, "jinja_pass_arg") or \
                    hasattr(getattr(fn, "__call__", None), "jinja_pass_arg"):  # noqa: B004
                context = new_context(env, None, {}, {**env_globals, **scope}, True,
                                      env.make_globals(None))
                return call(context, fn, *values)
            return call(plain, fn, *values)

        return call_fn

    def _const_table_get(self, n: nodes.Call) -> Fn | None:
        """``{'a': 'x', ...}.get(key[, default])`` with constant keys and values (a code
        table), as a direct ``table.get(key, default)`` when that is what the sandbox's
        getattr and call make of it: checked here, once, on a copy of the table (its
        ``get`` is a safe attribute, a builtin method that takes no context, and the
        environment's ``call`` is the sandbox's, which calls it as it is). The table is
        not copied per call: ``dict.get`` cannot change it. None otherwise (the general
        path)."""
        target = n.node.node  # type: ignore[attr-defined]  # n.node: _Call's Getattr
        if not isinstance(target, nodes.Dict) or not 1 <= len(n.args) <= 2 or \
                type(self.env).call not in _PLAIN_CALLS or \
                type(self.env).is_safe_callable is not SandboxedEnvironment.is_safe_callable:
            return None
        items = [(p.key, p.value) for p in target.items
                 if isinstance(p.key, nodes.Const) and isinstance(p.value, nodes.Const)]
        if len(items) != len(target.items):  # a key or value not a constant
            return None
        try:
            table = {key.value: value.value for key, value in items}
        except TypeError:  # an unhashable constant key: the general path raises it
            return None
        probe = dict(table)
        try:
            method = self.env.getattr(probe, "get")
        except Exception:
            return None
        if type(method) is not BuiltinMethodType or getattr(method, "__self__", None) is not \
                probe or method.__name__ != "get" or not self.env.is_safe_callable(method) or \
                _PassArg.from_obj(method) is not None:
            return None
        get = table.get
        key = self.node(n.args[0])
        if len(n.args) == 1:
            return lambda scope: get(key(scope))
        default = self.node(n.args[1])
        return lambda scope: get(key(scope), default(scope))
