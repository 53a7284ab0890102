"""The Jinja environments pesgen uses: sandboxed, strict, filters registered.

* Templates: ``SandboxedEnvironment`` + ``StrictUndefined``; XML autoescape for
  ``.xml.j2``/``.xml`` names (Jinja's default list misses ``.xml.j2``); a loader
  confined to the format bundle's folder (symbolic links included).
* Mapping expressions: the same sandbox; a missing key in the *input record* yields
  ``None`` instead of an error, since export rows legitimately omit optional fields.
* All three (templates, expressions, file-name strings) are bounded: no operator,
  built-in filter or string method makes a huge value from a width or a count
  (``_Bounded``), nor text of a container whose text is huge (a list holding one list
  twice, doubled in a loop: ``_Bounded.check_text``).
* Templates and expressions never write a None value as text (``{{ x }}``, ``~``,
  ``%``, ``str.format``, a filter such as ``upper``): ``_Bounded.refuse_none``. Not
  checked: a literal ``none`` Jinja joins at compile time, and containers or model
  objects written whole (``[None]``).
"""

from __future__ import annotations

import builtins
import difflib
import keyword
import os
import pprint
import re
import sys
from collections import Counter
from collections.abc import Callable, ItemsView, Iterable, Mapping, Sequence, Sized
from decimal import Decimal
from functools import update_wrapper
from pathlib import Path
from types import BuiltinMethodType, CodeType, MethodType
from typing import Any

import jinja2
from jinja2 import filters as jinja_filters
from jinja2 import nodes
from jinja2.bccache import Bucket
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.nodes import EvalContext
from jinja2.runtime import LoopContext, markup_join, str_join
from jinja2.sandbox import (
    SandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
    SecurityError,
    modifies_known_mutable,
)
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum, object_type_repr
from markupsafe import Markup, soft_str

from . import model
from ._wide import wide
from ._yaml import byte_position
from .errors import UsageError
from .filters import FILTERS, Imputation, Pricing, zfill_as_before
from .memo import remember
from .resources import inside

# The canonical model's classes are frozen plain data: reading their public fields
# needs none of the sandbox's per-access checks (the hot path of rendering).
_DATA_TYPES = frozenset({
    model.Collectivity, model.Address, model.BankAccount, model.Mandate, model.Debtor,
    model.Line, model.Title, model.Bordereau, model.Emitter, model.Document,
})


# {class: its public fields and properties}: one set lookup per attribute read; the same
# names the template-model reference documents (model.public_names)
_PUBLIC: dict[type, frozenset[str]] = {
    cls: frozenset(model.public_names(cls)) for cls in _DATA_TYPES}

# What pesgen's filters give a template to read (``by_imputation``'s items, ``pricing``'s
# result): their fields, so that a name they lack is said with the closest one and
# those they have, as a model object's (``imp.label``: Imputation has none). Read by
# the sandbox's own path otherwise (not model data: no read recorded, none inlined).
_FILTER_RESULTS: dict[type, frozenset[str]] = {
    cls: frozenset(model.public_names(cls)) for cls in (Imputation, Pricing)}


# The oldest Jinja whose sandbox pesgen trusts: 3.1.5 fixed CVE-2024-56326 (str.format
# reached through an indirect call) and 3.1.6 CVE-2025-27516 (through the attr filter),
# both escapes to arbitrary Python; ``_Bounded.wrap_str_format``, which bounds
# str.format, is only called from 3.1.5 on. An older Jinja is refused where a sandbox is
# made (``check_jinja``), whatever pyproject.toml let pip install.
MIN_JINJA = (3, 1, 6)


def check_jinja(version: str | None = None) -> None:
    """Refuse to make a sandbox with a Jinja older than ``MIN_JINJA`` (``version``:
    the installed ``jinja2.__version__``)."""
    version = jinja2.__version__ if version is None else version
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    parts = tuple(int(x or 0) for x in found.groups()) if found else (0, 0, 0)
    if parts < MIN_JINJA:
        wanted = ".".join(map(str, MIN_JINJA))
        raise UsageError(
            f"jinja2 {version} is installed: pesgen's sandbox needs jinja2 >= {wanted} "
            "(older versions have known sandbox escapes: CVE-2024-56326, CVE-2025-27516); "
            f"upgrade it (pip install 'jinja2>={wanted}')")


# No value a template or an expression makes needs to be larger than this: '*' and '**'
# are checked before they run ('a' * 10**9 or 10**10**7 would stall the export).
MAX_OPERAND_SIZE = 100_000
# What Jinja's own filters, '%' and str.format, and the string methods that take a
# width or a count may make: MAX_OPERAND_SIZE characters or items, plus this many times
# the size of what they are made from (indenting or wrapping a long text is normal;
# a width of 10**9, or a short text joined a million times, is not).
_GROWTH = 10
# ... and never more than this, whatever they are made from: without it each call of a
# chain could make ten times the one before ('x'.center(10**5).center(11 * 10**5)...,
# 11 GB in six calls). 4 Mi characters (or items) is far above any value of a file pesgen
# writes (a PES field holds at most a few thousand characters, a piece a few dozen
# kilobytes); in a mapping expression, '~' is held to it too.
MAX_RESULT_SIZE = 4 * 1024 * 1024


def _limit(made_from: int) -> int:
    """The largest result a bounded operation may make from ``made_from``."""
    return min(MAX_OPERAND_SIZE + _GROWTH * made_from, MAX_RESULT_SIZE)


def _bound(what: str, size: int, made_from: int = 0, unit: str = "characters") -> None:
    """Refuse, before it is made, a result of about ``size`` from ``made_from``."""
    limit = _limit(made_from)
    if size > limit:
        raise SecurityError(f"{what}: a result of about {size} {unit} refused (at most "
                            f"{limit})")


def _int(value: object) -> int:
    """The size an int argument asks for (its absolute value); anything else counts 0
    (the call itself refuses it)."""
    return abs(value) if isinstance(value, int) else 0


def _own_size(items: list[Any]) -> int:
    """What a list of values holds by itself: one per item, plus the length of each
    distinct string or sequence (``[s] * 1000`` holds ``s`` once, not 1000 times)."""
    return len(items) + _distinct_size(items, (str, list, tuple))


def _distinct_size(items: Iterable[Any],
                   kinds: type[Sized] | tuple[type[Sized], ...]) -> int:
    """The lengths of the distinct objects of ``kinds`` among ``items``, each once."""
    return sum({id(x): len(x) for x in items if isinstance(x, kinds)}.values())


# What holds other values and writes their text in its own (``str()`` of a list is the
# ``repr`` of each item): a list holding one list twice, doubled in a loop, is tiny, but
# its text doubles at each level (``_text_size``).
_ITEMS: type[ItemsView[Any, Any]] = type({}.items())
_CONTAINERS: tuple[type, ...] = (list, tuple, dict, set, frozenset, Namespace,
                                 type({}.keys()), type({}.values()), _ITEMS)


class _Kinds(dict[type, bool]):
    """{type: whether it is one of ``_CONTAINERS`` or a subclass}, filled as types are
    met: one dict lookup, where ``isinstance(value, _CONTAINERS)`` of a number reads its
    ``__class__`` once per container type (0.2 µs of each value written)."""

    def __missing__(self, kind: type) -> bool:
        self[kind] = found = issubclass(kind, _CONTAINERS)
        return found


_IS_CONTAINER = _Kinds()
# what a container writes around its items ('[' and ']'); the others write their name
# too ('frozenset({' and '})', 'dict_keys([' and '])')
_BRACKETS: dict[type, int] = {list: 2, tuple: 2, set: 2, dict: 2}


def _text_size(value: object, cap: int) -> int:
    """How long ``str(value)`` is (exactly for the built-in containers; about, a few
    characters off, for a subclass with its own ``repr``), counted without making it:
    a container is walked once, however many times it is held (``[x, x]`` counts
    ``x``'s size twice, by addition), and the count stops once past ``cap`` (what it
    gives then is over ``cap``, not the whole size). Anything that holds nothing counts
    its ``repr``, as a container writes it."""
    sizes: dict[int, int] = {}

    def size(x: object) -> int:
        if not _IS_CONTAINER[type(x)]:
            return len(repr(x))
        known = sizes.get(id(x))  # every container walked is held by ``value``: its
        if known is not None:     # id is its own for the whole count
            return known
        sizes[id(x)] = 5  # held by itself: written '[...]'
        kind = type(x)
        if kind is Namespace:  # '<Namespace {...}>'
            sizes[id(x)] = total = 12 + size(object.__getattribute__(x, "_Namespace__attrs"))
            return total
        # x is a container (_IS_CONTAINER), sized and iterable: mypy sees an object
        n = len(x)  # type: ignore[arg-type]
        total = _BRACKETS.get(kind, len(kind.__name__) + 4) + 2 * max(n - 1, 0)
        if not n:  # 'set()', 'frozenset()'
            total += 3 if kind is set else -2 if kind is frozenset else 0
        elif n == 1 and kind is tuple:  # '(x,)'
            total += 1
        if isinstance(x, dict):
            for key, item in x.items():
                total += size(key) + size(item) + 2  # ': '
                if total > cap:
                    break
        elif isinstance(x, _ITEMS):  # its pairs are made as it is read: not kept
            for key, item in x:
                total += size(key) + size(item) + 4  # '(', ', ', ')'
                if total > cap:
                    break
        else:
            for item in x:  # type: ignore[attr-defined]
                total += size(item)
                if total > cap:
                    break
        sizes[id(x)] = total
        return total

    return size(value)


def _printf_padding(fmt: str, values: object) -> tuple[int, bool]:
    """The sum of the widths and precisions in a printf-style format (``%5d``,
    ``%.3f``, ``%*d`` with its argument), parsed as Python's ``%`` operator does; and
    whether a conversion takes None (``'%s' % none`` writes the word)."""
    args = values if isinstance(values, tuple) else (values,)
    total, arg, i, end = 0, 0, fmt.find("%"), len(fmt)
    takes_none = False
    while i != -1:
        j = i + 1
        key = None
        if fmt.startswith("(", j):  # a mapping key: parentheses nest, as in Python
            depth, j = 1, j + 1
            while j < end and depth:
                depth += {"(": 1, ")": -1}.get(fmt[j], 0)
                j += 1
            key = fmt[i + 2:j - 1]
        while j < end and fmt[j] in "#0- +":
            j += 1
        for part in ("width", "precision"):
            if part == "precision":
                if not fmt.startswith(".", j):
                    break
                j += 1
            if fmt.startswith("*", j):
                total += _int(args[arg]) if arg < len(args) else 0
                arg, j = arg + 1, j + 1
                continue
            start = j
            while j < end and "0" <= fmt[j] <= "9":
                j += 1
            digits = fmt[start:j]
            if digits:
                total += int(digits) if len(digits) <= 9 else 10 ** 9
        while j < end and fmt[j] in "hlL":
            j += 1
        if j < end and fmt[j] != "%":
            # the value goes into the result as many times as the format names it
            if key is not None:
                value = values.get(key, _NO_VALUE) if isinstance(values, Mapping) else \
                    _NO_VALUE
            else:
                value = args[arg] if arg < len(args) else _NO_VALUE
                arg += 1
            total += len(value) if isinstance(value, (str, bytes)) else \
                _text_size(value, MAX_RESULT_SIZE) if _IS_CONTAINER[type(value)] else 0
            takes_none = takes_none or value is None
        i = fmt.find("%", j + 1)
    return total, takes_none


_NO_VALUE = object()  # a conversion without its value: Python's '%' says so


def _check_printf(what: str, fmt: str | bytes, values: object) -> bool:
    """Refuse a huge result of ``fmt % values`` (``fmt`` a text, or bytes: ``%`` is
    the same for both); whether a conversion takes None."""
    padding, takes_none = _printf_padding(
        fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt, values)
    _bound(what, len(fmt) + padding, len(fmt) + _args_size(values))
    return takes_none


def _args_size(values: object) -> int:
    """What the arguments of a format bring by themselves: each distinct string once."""
    items = (values.values() if isinstance(values, Mapping) else
             values if isinstance(values, (tuple, list)) else [values])
    return _distinct_size(items, (str, bytes))


# [[fill]align][sign][z][#][0][width][grouping][.precision][type]
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?[a-zA-Z%]?", re.S)


class _BoundedFormatter(SandboxedFormatter):
    """str.format in the sandbox, its widths and precisions counted before each field
    is formatted (``'{:>{w}}'`` is resolved to a plain spec by then)."""

    padding = 0

    def vformat(self, format_string: str, args: Sequence[Any],
                kwargs: Mapping[str, Any]) -> str:
        self.padding = 0
        self.source = len(format_string) + _args_size(tuple(args) + tuple(kwargs.values()))
        return super().vformat(format_string, args, kwargs)

    def convert_field(self, value: object, conversion: str | None) -> Any:
        if value is None:  # '{}', '{!s}' and '{!r}' write the word
            _refuse_none(self._env, "str.format")
        if _IS_CONTAINER[type(value)]:  # its text, counted before it is made
            _bound("str.format", self.padding + _text_size(value, MAX_RESULT_SIZE),
                   self.source)
        return super().convert_field(value, conversion)

    def format_field(self, value: object, format_spec: str) -> Any:
        spec = _FORMAT_SPEC.fullmatch(format_spec)
        if spec is not None:
            for digits in spec.groups():
                if digits:
                    self.padding += int(digits) if len(digits) <= 9 else 10 ** 9
            _bound("str.format", self.padding, self.source)
        result = super().format_field(value, format_spec)
        # each field's text goes into the result: '{0}' * 1000 of a long text is counted
        self.padding += len(result) if isinstance(result, str) else 0
        _bound("str.format", self.padding, self.source)
        return result


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


def _check_str_call(name: str, text: str | bytes, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call of a string method (of a text, or of bytes: ``'x'.encode()``)
    whose result would be huge; return its arguments (an iterable to join is read
    here, once)."""
    size, made_from = 0, len(text)
    if name in ("center", "ljust", "rjust", "zfill") and args:
        size = _int(args[0])
    elif name == "expandtabs":
        tabs = text.count("\t") if isinstance(text, str) else text.count(b"\t")
        size = len(text) + tabs * _int(args[0] if args else kwargs.get("tabsize", 8))
    elif name == "replace" and len(args) >= 2:
        size = _replaced_size(text, args[0], args[1],
                              args[2] if len(args) > 2 else kwargs.get("count", -1))
    elif name == "join" and len(args) == 1:
        args = (list(args[0]),)
        made_from = _own_size(args[0]) + len(text)
        size = _joined_size(args[0], text, made_from)
    elif name == "translate" and len(args) == 1:
        for char, n in Counter(text).items():
            try:  # a byte of bytes is an int: ord refuses it (TypeError), as meant
                to = args[0][ord(char)]  # type: ignore[arg-type]
            except (LookupError, TypeError):
                to = char
            size += n * (len(to) if isinstance(to, str) else 1)
    _bound(f"{'str' if isinstance(text, str) else 'bytes'}.{name}", size, made_from)
    return args


def _replaced_size(text: str | bytes, old: object, new: object, count: object) -> int:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        found = text.count(old) if old else len(text) + 1
    elif isinstance(text, bytes) and isinstance(old, bytes) and isinstance(new, bytes):
        found = text.count(old) if old else len(text) + 1
    else:  # not of the text's kind: replace refuses it
        return 0
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _joined_size(items: list[Any], sep: str | bytes, made_from: int) -> int:
    """The length of ``sep.join(items)``, counted up to just past the limit (the items
    beyond are not converted; a text or bytes item is its length, another its ``str``'s,
    a container's text counted without making it)."""
    limit = _limit(made_from)
    size = len(sep) * max(len(items) - 1, 0)
    for x in items:
        if size > limit:
            break
        size += len(x) if isinstance(x, (str, bytes)) else \
            _text_size(x, limit) if _IS_CONTAINER[type(x)] else len(str(x))
    return size


# Jinja's built-in filters that take a width or a count, bounded; their behaviour is
# otherwise Jinja's (they call it). Those that take an environment or an evaluation
# context keep the marker, so ``expr.py`` leaves them to Jinja as before.

def _center(value: Any, width: int = 80) -> str:
    _bound("filter center", _int(width), len(soft_str(value)))
    return jinja_filters.do_center(value, width)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = soft_str(s)
    step = len(width) if isinstance(width, str) else _int(width)
    _bound("filter indent", len(text) + (len(text.splitlines()) + 1) * step, len(text))
    return jinja_filters.do_indent(s, width, first, blank)


@jinja2.pass_environment
def _wordwrap(env: jinja2.Environment, s: str, width: int = 79,
              break_long_words: bool = True, wrapstring: str | None = None,
              break_on_hyphens: bool = True) -> str:
    sep = env.newline_sequence if wrapstring is None else wrapstring
    # wrapped with "\n" first (the lines hold no line break then): the size is known
    # before the real separator is put in
    text = jinja_filters.do_wordwrap(env, s, width, break_long_words, "\n",
                                     break_on_hyphens)
    _bound("filter wordwrap", len(text) + text.count("\n") * (len(sep) - 1), len(s))
    return text if sep == "\n" else sep.join(text.split("\n"))


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_printf("filter format", soft_str(value), kwargs or args)
    return jinja_filters.do_format(value, *args, **kwargs)


@jinja2.pass_eval_context
def _join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "",
          attribute: str | int | None = None) -> str:
    if attribute is not None:
        value = map(jinja_filters.make_attrgetter(eval_ctx.environment, attribute), value)
    items = list(value)
    if d is None or any(x is None for x in items):  # each written as str() writes it
        _refuse_none(eval_ctx.environment, "filter join")
    made_from = _own_size(items) + len(soft_str(d))
    _bound("filter join", _joined_size(items, soft_str(d), made_from), made_from)
    return jinja_filters.sync_do_join(eval_ctx, items, d)


@jinja2.pass_eval_context
def _replace(eval_ctx: EvalContext, s: str, old: str, new: str,
             count: int | None = None) -> str:
    text = soft_str(s)
    _bound("filter replace", _replaced_size(text, soft_str(old), soft_str(new), count),
           len(text))
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Any:
    if fill_with is not None:
        _bound("filter batch", _int(linecount), unit="items")
    return jinja_filters.do_batch(value, linecount, fill_with)


def _slice(value: Iterable[Any], slices: int, fill_with: Any = None) -> Any:
    items = list(value)
    _bound("filter slice", _int(slices), len(items), unit="items")
    return jinja_filters.sync_do_slice(items, slices, fill_with)


@jinja2.pass_environment
def _sum(env: jinja2.Environment, iterable: Iterable[Any], attribute: str | int | None = None,
         start: Any = 0) -> Any:
    if attribute is not None:
        iterable = map(jinja_filters.make_attrgetter(env, attribute), iterable)
    items = list(iterable)
    if isinstance(start, (list, tuple)):
        size = len(start) + sum(len(x) for x in items if isinstance(x, (list, tuple)))
        _bound("filter sum", size, _own_size(items) + len(start), unit="items")
    return jinja_filters.sync_do_sum(env, items, start=start)


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    _bound("lipsum", _int(n) * builtins.max(_int(min), _int(max)) * 12)
    return generate_lorem_ipsum(n, html, min, max)


class _Written:
    """A stream ``pprint`` writes to, refusing (SecurityError) what would take it past
    ``bound`` characters before it is kept."""

    def __init__(self, bound: int) -> None:
        self.bound, self.size = bound, 0
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > self.bound + 1:  # pprint ends with a line break, left out
            raise SecurityError(f"filter pprint: a result of more than {self.bound} "
                                f"characters refused (at most {self.bound})")
        self.parts.append(text)


@jinja2.pass_environment
def _pprint(env: jinja2.Environment, value: Any) -> str:
    """Jinja's ``pprint`` (``pformat``), held to the environment's bound as it is
    written: its indentation (a level's, a dict key's width) is not in the value's text
    (``check_text``), and a list nested a few hundred deep wrote each of its items on a
    line of its own indented as deep, a hundred times its text."""
    bound = getattr(env, "sum_bound", lambda: None)()
    if bound is None:
        return jinja_filters.do_pprint(value)
    out = _Written(bound)
    # pprint only writes to its stream: _Written has what it calls, not all of IO[str]
    pprint.PrettyPrinter(stream=out).pprint(value)  # type: ignore[arg-type]
    return "".join(out.parts)[:-1]


_BOUNDED_FILTERS = {"center": _center, "indent": _indent, "wordwrap": _wordwrap,
                    "format": _format, "join": _join, "replace": _replace, "batch": _batch,
                    "slice": _slice, "sum": _sum, "pprint": _pprint}


def _refuse_none(env: jinja2.Environment, what: str) -> None:
    """``what`` (an operator, a filter) is about to write None as text: refused when
    ``env`` refuses it (``_Bounded.refuse_none``)."""
    refuse = getattr(env, "refuse_none", None)
    if refuse is not None:
        refuse(what)


# Jinja's built-in filters that make text of the value they filter, None included
# ('None', 'NONE', 'none', a Markup 'None', 'None' centred, 1 word...), and the
# arguments some of them write too: None there is refused (``_refusing_none``). The
# others fail on None (abs, first, length, round...), leave it out (xmlattr, select),
# or are a guard (default); ``join`` checks its items and separator itself (``_join``);
# ``int`` and ``float`` give their default (0), ``tojson`` JSON's null.
_TEXT_FILTERS: dict[str, Callable[..., bool] | None] = {
    "capitalize": None, "center": None, "e": None, "escape": None, "forceescape": None,
    "indent": None, "lower": None, "pprint": None, "safe": None, "string": None,
    "striptags": None, "title": None, "trim": None, "truncate": None, "upper": None,
    "urlencode": None, "urlize": None, "wordcount": None, "wordwrap": None,
    # '%s' | format(none), and the format itself
    "format": lambda value, *args, **kwargs: _printf_padding(soft_str(value),
                                                             kwargs or args)[1],
    # str(old) and str(new): 'x' | replace('x', none) writes it
    "replace": lambda s, old=0, new=0, *rest, **kwargs: old is None or new is None,
}
# pesgen's own filters that format a date or an amount, which None made fail with
# Python's words ('NoneType' object has no attribute 'year'), naming no value: refused
# as a {{ }} of None is, so a refusal names the binding left empty, as zfill's did not
_MODEL_FILTERS = ("amount", "cents", "isodate", "frdate", "compactdate")
# ... and those that make text of a container but not of None (JSON's null; an
# attribute left out)
_CONTAINER_TEXT_FILTERS = ("tojson", "xmlattr")


def _refusing_none(env: _Bounded, name: str, func: Callable[..., Any],
                   also: Callable[..., bool] | None, none: bool = True) -> Callable[..., Any]:
    """Filter ``func`` registered as ``name``, refusing a None value (and what ``also``
    finds in its arguments; not when ``none`` is false) before Jinja writes it as text,
    and a container (its value or an argument) whose text is over the environment's
    bound (``_Bounded.check_text``) before it is made. Its Jinja markers (the context,
    environment or evaluation context it takes) are kept."""
    skip = 1 if _PassArg.from_obj(func) is not None else 0
    what = f"filter {name}"
    check = env.check_text

    def refuses_none(*args: Any, **kwargs: Any) -> Any:
        if len(args) > skip:
            value = args[skip]
            if none and (value is None or (
                    also is not None and also(*args[skip:], **kwargs))):
                _refuse_none(env, what)
            if _IS_CONTAINER[type(value)]:
                check(what, value)
            if len(args) > skip + 1 or kwargs:  # 'x' | replace('x', a_list)
                for arg in (*args[skip + 1:], *kwargs.values()):
                    if _IS_CONTAINER[type(arg)]:
                        check(what, arg)
        return func(*args, **kwargs)

    return update_wrapper(refuses_none, func)


def _none_refused(env: _Bounded, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Filter ``func`` (one of ``_MODEL_FILTERS``, which makes no text of a container
    and takes no context) registered as ``name``, refusing a None value as
    ``_refusing_none`` does, and nothing else: it runs for each amount of an export."""
    what = f"filter {name}"

    def refuses_none(value: Any, *args: Any, **kwargs: Any) -> Any:
        if value is None:
            env.refuse_none(what)
        return func(value, *args, **kwargs)

    return update_wrapper(refuses_none, func)


# what '*' repeats and '+' joins: bounded by their length
_SEQUENCES = (str, bytes, list, tuple)


class _Bounded(SandboxedEnvironment):
    """A sandbox whose operators, built-in filters and string methods cannot make a
    huge value: repetition, sum, product and power, and what can grow from a width or a
    count (``center``, ``indent``, ``wordwrap``, ``format`` and ``%``, ``str.format``,
    ``join``, ``replace``, ``batch``, ``slice``, ``sum``, ``lipsum``, the string
    methods ``center``, ``ljust``, ``rjust``, ``zfill``, ``expandtabs``, ``replace``,
    ``join``, ``translate``, of a text or of bytes (``'x'.encode()``), and
    ``int.to_bytes``); in a template, ``~`` too (``_Sandbox.concat_result``).
    ``truncate`` only ever shortens. The text of a list, a tuple, a dict, a set or a
    namespace (which may be exponentially longer than the container: ``[x, x]``
    doubled) is sized before it is made wherever it would be: a template's output,
    ``~``, ``%``, ``str.format``, ``join`` and the filters that make text
    (``check_text``). A refusal is a ``SecurityError``: a template error
    naming the template and line, or a mapping problem naming the binding.

    A None that ``~``, ``%``, ``str.format`` or a filter would write as text is refused
    (``refuse_none``) in a bundle's templates and in mapping expressions."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    # what a None written as text is refused with (``refuse_none``), or None: Jinja's
    # 'None' written as it is (file-name strings)
    none_message: str | None = None
    # True only to rebuild a run recorded before None was refused (``regenerate``, whose
    # check is the sha256 of what that pesgen wrote, the word None included)
    writes_none = False
    # True only to rebuild a recorded run (``regenerate``, its check the sha256 of the
    # files): the methods that change a list, a dict or a set, refused since 2026-12-02
    # (``is_safe_attribute``), are let through as they were when it was rendered
    changes_allowed = False

    @property
    def none_refusal(self) -> str | None:
        return None if self.writes_none else self.none_message

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_jinja()
        super().__init__(*args, **kwargs)
        self.filters.update(_BOUNDED_FILTERS)
        self.globals["lipsum"] = _lipsum

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Jinja's checks, and no method that changes a list, a dict, a set or a deque
        (``append``, ``update``, ``pop``, ``clear``...: the rule of Jinja's
        ImmutableSandboxedEnvironment). Data flows one way: an expression never changes
        the record it reads (what the next binding reads, what the run records), nor a
        template what the next piece renders."""
        return super().is_safe_attribute(obj, attr, value) and \
            (self.changes_allowed or not modifies_known_mutable(obj, attr))

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        """An attribute the sandbox does not let a template or an expression read
        (``__class__``, ``__globals__``..., by ``x|attr(...)``, ``x[...]`` or a format
        string such as ``'{0.__class__}'.format(x)``) is refused where it is read, a
        ``SecurityError``. Jinja's own returns an undefined value that raises only when
        used: with a mapping expression's undefined (``_NoneUndefined``, which chains
        and writes nothing) the field came out empty, the refusal lost."""
        raise SecurityError(f"access to attribute {attribute!r} of "
                            f"{type(obj).__name__!r} object is unsafe.")

    def refuse_none(self, what: str) -> None:
        """``what`` (``'~'``, ``'%'``, ``str.format``, a filter) is about to write None
        as text (the word 'None', or 'NONE', 'none'...): refused with ``none_refusal``,
        the same exception as a ``{{ value }}`` of None (``_Sandbox.written``)."""
        if self.none_refusal is not None:
            raise jinja2.TemplateRuntimeError(f"{what} {self.none_refusal}")

    def refuse_none_in_filters(self) -> None:
        """Jinja's filters that make text of None (``_TEXT_FILTERS``) refuse it, and
        they and those that make text of a container (``_CONTAINER_TEXT_FILTERS``)
        refuse one whose text is over the bound (``check_text``); call once the
        environment's filters are registered (not to rebuild a template's run recorded
        before these bounds, ``writes_none``: as pesgen rendered then)."""
        for name, also in _TEXT_FILTERS.items():
            func = self.filters.get(name)
            if func is not None:
                self.filters[name] = _refusing_none(self, name, func, also)
        for name in _MODEL_FILTERS:
            func = self.filters.get(name)
            if func is not None:
                self.filters[name] = _none_refused(self, name, func)
        for name in _CONTAINER_TEXT_FILTERS:
            func = self.filters.get(name)
            if func is not None:
                self.filters[name] = _refusing_none(self, name, func, None, none=False)

    def check_text(self, what: str, value: object) -> None:
        """Refuse, before it is made, the text of ``value`` (a list, a tuple, a dict, a
        set, a namespace: ``_CONTAINERS``) when it would be over the bound of ``~``
        (``sum_bound``): a list holding one list twice, doubled twenty times, is a few
        dozen objects, but its text is 40 million characters, made in one ``str()``
        (in a template's output, ``~``, ``%``, ``str.format``, ``join`` or a filter)
        which no time limit stops. Sized by ``_text_size``, which walks each container
        once."""
        bound = self.sum_bound()
        if bound is not None:
            size = _text_size(value, bound)
            if size > bound:
                raise SecurityError(
                    f"{what}: the text of a {type(value).__name__} of about {size} "
                    f"characters or more refused (at most {bound})")

    def text_of(self, value: object) -> str:
        """``str(value)``, a container's text bounded first (``check_text``): what
        ``~`` joins."""
        if _IS_CONTAINER[type(value)]:
            self.check_text("'~'", value)
        return str(value)

    def _check_parts(self, parts: tuple[Any, ...]) -> None:
        """What ``~`` refuses of its operands before joining them: None, and a container
        whose text is over the bound (``check_text``)."""
        if None in parts:
            self.refuse_none("'~'")
        for part in parts:
            if _IS_CONTAINER[type(part)]:
                self.check_text("'~'", part)

    def str_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b`` where nothing is escaped: Jinja's ``str_join``, None refused."""
        self._check_parts(parts)
        return self.concat_result(str_join(parts))

    def markup_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b`` in an escaped template: Jinja's ``markup_join``, None refused."""
        self._check_parts(parts)
        return self.concat_result(markup_join(parts))

    def concat_result(self, text: str) -> str:
        """What ``~`` made, at most MAX_RESULT_SIZE characters (a template's is bounded
        tighter: ``_Sandbox``)."""
        if len(text) > MAX_RESULT_SIZE:
            raise SecurityError(f"'~': a result of {len(text)} characters refused (at "
                                f"most {MAX_RESULT_SIZE})")
        return text

    def sum_bound(self) -> int | None:
        """The longest text, bytes, list or tuple ``+`` may make: as ``~``
        (``concat_result``), MAX_RESULT_SIZE."""
        return MAX_RESULT_SIZE

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: object,
                   right: object) -> object:
        if operator == "+" and isinstance(left, _SEQUENCES) and \
                isinstance(right, _SEQUENCES):
            # counted before it is made: a loop doubling a list or a text with '+'
            # ({% set ns.s = ns.s + ns.s %}) would grow it past any memory
            size, limit = len(left) + len(right), self.sum_bound()
            if limit is not None and size > limit:
                raise SecurityError(f"'+': a result of {size} items refused (at most "
                                    f"{limit})")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and \
                right > 0 and left.bit_length() * right > MAX_OPERAND_SIZE:
            raise SecurityError(f"a power of about {left.bit_length() * right} "
                                f"bits refused (at most {MAX_OPERAND_SIZE})")
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int) and \
                    left.bit_length() + right.bit_length() > MAX_OPERAND_SIZE:
                # a product has at most the bits of its factors: x * x doubles them, so
                # a loop squaring a number would grow it past any memory
                raise SecurityError(f"a product of about {left.bit_length() + right.bit_length()}"
                                    f" bits refused (at most {MAX_OPERAND_SIZE})")
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, _SEQUENCES) and isinstance(count, int) and \
                        len(seq) * count > MAX_OPERAND_SIZE:
                    raise SecurityError(
                        f"repetition to {len(seq) * count} items refused (at most "
                        f"{MAX_OPERAND_SIZE})")
        if operator == "%" and isinstance(left, (str, bytes)) and \
                _check_printf("'%' formatting", left, right):
            self.refuse_none("'%' formatting")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any,
             *args: Any, **kwargs: Any) -> Any:
        text = getattr(__obj, "__self__", None)
        if isinstance(text, (str, bytes)) and isinstance(__obj, (MethodType, BuiltinMethodType)):
            args = _check_str_call(__obj.__name__, text, args, kwargs)
        elif isinstance(text, int) and isinstance(__obj, BuiltinMethodType) and \
                __obj.__name__ == "to_bytes":  # (1).to_bytes(10**9, 'big'): a gigabyte
            _bound("int.to_bytes", _int(args[0] if args else kwargs.get("length", 1)),
                   unit="bytes")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's own, with formatters that count widths (see ``_BoundedFormatter``)."""
        if not isinstance(value, (MethodType, BuiltinMethodType)) or \
                value.__name__ not in ("format", "format_map"):
            return None
        f_self = value.__self__
        if not isinstance(f_self, str):
            return None
        str_type = type(f_self)
        is_format_map = value.__name__ == "format_map"
        formatter: SandboxedFormatter = (
            _BoundedEscapeFormatter(self, escape=f_self.escape) if isinstance(f_self, Markup)
            else _BoundedFormatter(self))

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(
                        f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            return str_type(formatter.vformat(f_self, args, kwargs))

        return update_wrapper(wrapper, value)


class _ConcatChecked(CodeGenerator):
    """Jinja's code generator, except that ``a ~ b`` joins through the environment's
    ``str_concat`` or ``markup_concat`` (``_Bounded``): Jinja's own joins, after the
    check that no operand is None, the result bounded in a template (``_Sandbox``).
    Constant operands are still joined when compiled, as Jinja does."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            self.write("(environment.markup_concat if context.eval_ctx.volatile else "
                       "environment.str_concat)((")
        elif frame.eval_ctx.autoescape:
            self.write("environment.markup_concat((")
        else:
            self.write("environment.str_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _InlineReads(_ConcatChecked):
    """Jinja's code generator, except that ``x.name`` makes in the template's own code the
    test ``_Sandbox.getattr`` makes first: ``x.name if type(x) is one whose public
    fields hold 'name' else environment.getattr(x, 'name')``, the classes having it a
    set of the template's module, ``_pesgen_in_name`` (``_reads_inlined``, from the
    environment's ``public_fields`` when the template is made). So the canonical model's
    fields are read without a method call (a piece reads about a hundred: 39 -> 36 µs
    per piece); anything else, and every name that is not a plain ASCII identifier,
    still goes through the sandbox's ``getattr``. And a value an escaped template writes
    (``{{ … }}``) is looked up in the escaping memo by the template's own code when it is
    an exact ``str`` (``_pesgen_memo``: the memo's ``get``, ``memoise_escaping``), with
    no call of the memoised ``escape``; a value the memo lacks, or of another type,
    goes to that ``escape`` as before: the same ``Markup``, the same refusals."""

    @optimizeconst
    def visit_Getattr(self, node: nodes.Getattr, frame: Frame) -> None:
        name = node.attr
        if (self.environment.is_async or name.startswith("_") or not name.isascii()
                or not name.isidentifier() or keyword.iskeyword(name)):
            super().visit_Getattr(node, frame)
            return
        self.write(f"(_pesgen_obj.{name} if type(_pesgen_obj := ")
        self.visit(node.node, frame)
        self.write(f") in {_READS_PREFIX}{name} else environment.getattr(_pesgen_obj, "
                   f"{name!r}))")

    @staticmethod
    def _memo_looked_up(frame: Frame, finalize: Any) -> bool:
        """Whether a value written is escaped, looked up in the memo by the code itself."""
        return (not frame.eval_ctx.volatile and bool(frame.eval_ctx.autoescape)
                and finalize.src is None)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        # a template that is not escaped (a flat file) writes str(value) as Jinja does,
        # but refuses None (_Sandbox.written); an escaped one does in its memoised
        # escape (memoise_escaping), an exact str found in its memo without the call
        if self._memo_looked_up(frame, finalize):
            self.write("(_pesgen_escaped if type(_pesgen_value := ")
            return
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super()._output_child_pre(node, frame, finalize)
            return
        self.write("environment.written(")
        if finalize.src is not None:
            self.write(finalize.src)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        if self._memo_looked_up(frame, finalize):
            self.write(") is str and (_pesgen_escaped := _pesgen_memo(_pesgen_value)) "
                       "is not None else escape(_pesgen_value))")
            return
        super()._output_child_post(node, frame, finalize)


# The module global of a template's code holding the classes whose public fields hold a
# name it reads (_InlineReads, _reads_inlined)
_READS_PREFIX = "_pesgen_in_"


def _reads_inlined(template: jinja2.Template, code: CodeType) -> None:
    """Give ``template``'s module the sets its inlined reads test (``_InlineReads``):
    for each ``_pesgen_in_<name>`` its code reads, the classes of the environment's
    ``public_fields`` that hold ``name`` (none: every read of it through ``getattr``)."""
    namespace = template.root_render_func.__globals__
    public: dict[type, frozenset[str]] = getattr(template.environment, "public_fields", {})
    codes = [code]
    while codes:
        current = codes.pop()
        codes.extend(c for c in current.co_consts if type(c) is CodeType)
        for global_name in current.co_names:
            if global_name.startswith(_READS_PREFIX) and global_name not in namespace:
                name = global_name[len(_READS_PREFIX):]
                namespace[global_name] = frozenset(
                    cls for cls, names in public.items() if name in names)


# A for loop's ``loop.first``, ``loop.index``...: always a bool or an int, which the
# sandbox's getattr returns as it reads it (no format method, a public name)
_LOOP_READS = frozenset({"first", "last", "index", "index0", "revindex", "revindex0",
                         "length", "depth", "depth0"})
# {class: the names a template reads as getattr reads them}: the model's public fields,
# and a loop's counters
_TEMPLATE_READS: dict[type, frozenset[str]] = {**_PUBLIC, LoopContext: _LOOP_READS}
# what ``getattr`` finds on a plain dict: any other name is read as a key by the sandbox
_DICT_NAMES = frozenset(dir(dict))
_DICTS = (dict, model.Options)


def close_filter(message: str, env: jinja2.Environment) -> str:
    """' Did you mean 'digits'?' for Jinja's "No filter named 'digit'." (a test too),
    from the filters (tests) ``env`` offers: a mapping expression's, a template's or
    a file name's."""
    m = re.match(r"No (filter|test) named '([^']+)'", message)
    if m is None:
        return ""
    names = env.filters if m.group(1) == "filter" else env.tests
    close = difflib.get_close_matches(m.group(2), [str(n) for n in names], n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _no_option(options: object, name: object) -> str | None:
    """What to say of ``doc.options`` lacking ``name``: the names it has."""
    if type(options) is not model.Options:
        return None
    have = sorted(str(k) for k in options)
    close = difflib.get_close_matches(str(name), have, n=1)
    return (f"doc.options has no '{name}'" + (f": did you mean '{close[0]}'?" if close else "")
            + f" (options: {', '.join(have) or 'none'})")


# (model class, attribute it lacks) -> what to say: computed once per pair, so a
# template testing `x.name is defined` over many titles pays a lookup, not difflib
_NO_FIELD: dict[tuple[type, str], str] = {}


# French words a template author may try for a field, and the model's name for it
_FRENCH = {"nom": "name", "prenom": "first_name", "adresse": "address", "rue": "street",
           "ville": "city", "cp": "postal_code", "code_postal": "postal_code",
           "civilite": "civility", "pays": "country", "montant": "amount",
           "libelle": "label", "objet": "object", "numero": "number", "titulaire": "holder",
           "debiteur": "debtor", "lignes": "lines", "quantite": "quantity",
           "exercice": "exercise", "date_naissance": "birth_date", "complement_nom":
           "complement_name", "lieu_dit": "locality", "collectivite": "collectivity"}


def _no_field(obj: object, name: str) -> str:
    """What to say of a model object (or a filter's result: by_imputation's, pricing's)
    lacking ``name``: Jinja's own words, the closest field (did you mean) and the fields
    it has (docs/template-model.md); of an imputation, a field of the lines it groups
    (``imp.label``) said to be read on them."""
    key = (type(obj), name)
    known = _NO_FIELD.get(key)
    if known is None:
        have = sorted(_PUBLIC.get(type(obj)) or _FILTER_RESULTS[type(obj)])
        close = difflib.get_close_matches(name, have, n=1)
        french = _FRENCH.get(name.lower().replace("é", "e").replace("è", "e"))
        if french in have:  # the model's names are English: 'nom' is name
            close = [french]
        known = (f"{object_type_repr(obj)!r} has no attribute {name!r}"
                 + (f": did you mean '{close[0]}'?" if close else "")
                 + f" ({type(obj).__name__} fields: {', '.join(have)})")
        if type(obj) is Imputation and not close:
            # the lines' own fields (label, quantity...) are read on the lines it groups
            line_fields = sorted(_PUBLIC[model.Line])
            of_line = ([french] if french in line_fields
                       else difflib.get_close_matches(name, line_fields, n=1))
            if of_line:
                known += (f": {of_line[0]} is a field of the lines it groups: read it on "
                          f"them (.lines[0].{of_line[0]}, the first line's)")
        remember(_NO_FIELD, key, known)
    return known


# A template that outputs None: Jinja writes the word "None" into the file, which a
# schema may or may not catch (an XML attribute of free text, a CSV column)
NONE_WRITTEN = ("writes None: a value left unset (an optional field, an option the mapping "
                "does not give) would be written as the word 'None'; guard it "
                "({% if value %}…{% endif %}) or give it a default (value | default('', true))")


# The same in a mapping expression: a None that is no record's missing key (those are
# undefined and write nothing) would be written into the field as the word 'None'
NONE_IN_EXPRESSION = ("writes None: a value that is not set (a code table's .get() of a "
                      "key it lacks, a JSON null read from a list, none) would be written "
                      "as the word 'None'; give it a default (x | default('', true), "
                      "table.get(key, default))")


class _Template(jinja2.Template):
    """A bundle's template, or one it imports: its output's escaping memoised, None
    refused (``memoise_escaping``)."""

    @classmethod
    def from_code(cls, environment: jinja2.Environment, code: Any,
                  globals: Any, uptodate: Callable[[], bool] | None = None) -> Any:
        template = super().from_code(environment, code, globals, uptodate)
        _reads_inlined(template, code)
        memoise_escaping(template)
        return template


class _Sandbox(_Bounded):
    code_generator_class = _InlineReads
    template_class = _Template
    public_fields = _TEMPLATE_READS  # read by the code _InlineReads generates

    none_message = NONE_WRITTEN

    def concat_result(self, text: str) -> str:
        """``~`` is bounded as ``*`` is: a loop doubling a string (``{% set s = s ~ s
        %}``) is stopped at the first result over MAX_OPERAND_SIZE characters. Not to
        rebuild a run recorded before the bound (``writes_none``: as pesgen rendered
        then, when ``~`` had none)."""
        if len(text) > MAX_OPERAND_SIZE and not self.writes_none:
            raise SecurityError(f"'~': a result of {len(text)} characters refused (at "
                                f"most {MAX_OPERAND_SIZE})")
        return text

    def sum_bound(self) -> int | None:
        """``+`` of texts, bytes, lists or tuples, as ``~`` (``concat_result``)."""
        return None if self.writes_none else MAX_OPERAND_SIZE

    def written(self, value: object) -> str:
        """What a template that is not escaped writes for ``{{ value }}``: ``str(value)``,
        as Jinja's own code, but never the word None."""
        if value is None and not self.writes_none:
            raise jinja2.TemplateRuntimeError(NONE_WRITTEN)
        if _IS_CONTAINER[type(value)]:
            self.check_text("output", value)  # bounded before str() makes it
        return str(value)

    def getattr(self, obj: object, attribute: str) -> object:
        public = _TEMPLATE_READS.get(type(obj))
        if public is not None:
            if attribute in public:
                return getattr(obj, attribute)
            if type(obj) in _DATA_TYPES and not attribute.startswith("_"):
                # a model object has only its fields and properties: a typo, said with
                # the closest field (the sandbox's own path would say only the name)
                return self.undefined(obj=obj, name=attribute,
                                      hint=_no_field(obj, attribute))
        results = _FILTER_RESULTS.get(type(obj))
        if results is not None and attribute not in results and not attribute.startswith("_"):
            # by_imputation's items, pricing's result: a typo said as a model object's
            return self.undefined(obj=obj, name=attribute, hint=_no_field(obj, attribute))
        if type(obj) in _DICTS and attribute not in _DICT_NAMES:
            # what the sandbox does, without the AttributeError it raises and catches
            # first: the key's value, or undefined (obj is a dict: its type in _DICTS)
            if attribute in obj:  # type: ignore[operator]
                return obj[attribute]  # type: ignore[index]
            return self.undefined(obj=obj, name=attribute, hint=_no_option(obj, attribute))
        return super().getattr(obj, attribute)

    def getitem(self, obj: object, argument: object) -> object:
        value = super().getitem(obj, argument)
        if type(obj) is model.Options and isinstance(value, jinja2.Undefined):
            # any key, as Jinja's own getitem names it (its annotation says a str only)
            return self.undefined(obj=obj, name=argument,  # type: ignore[arg-type]
                                  hint=_no_option(obj, argument))
        return value


def _autoescape(name: str | None) -> bool:
    return name is not None and (name.endswith(".xml.j2") or name.endswith(".xml"))


class _ConfinedLoader(jinja2.FileSystemLoader):
    """A bundle's templates, and nothing else: Jinja's loader refuses ``..`` and absolute
    names, but it opens a symbolic link wherever it points. A template whose real path
    is outside the bundle's folder is not found, nor a hidden file, a backup ending in
    ``~`` or a file of the self-test's fixture/ and expected/ (a run does not record them
    with its bundle). Each refusal says which it is."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder), followlinks=False)
        self.folder = folder

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        refused = refusal(self.folder, template)
        if refused:
            raise jinja2.TemplateNotFound(f"{template} ({refused})")
        try:
            source, filename, uptodate = super().get_source(environment, template)
        except jinja2.TemplateNotFound:  # Jinja's words name its search path, no file
            raise jinja2.TemplateNotFound(f"{template} ({self.missing(template)})") from None
        except UnicodeDecodeError as exc:  # at its line, as a YAML file's (_yaml._not_utf8)
            data = bytes(exc.object)
            self._refuse_wide(data, template)
            line, column = byte_position(data, exc.start)
            raise jinja2.TemplateSyntaxError(
                f"not UTF-8: byte 0x{data[exc.start]:02X} at line {line}, column {column} "
                f"({exc.reason}); a template is read as UTF-8: save it so (the template "
                "was likely saved in Windows' ANSI, cp1252)", line, template) from None
        if not inside(self.folder, Path(filename)):
            raise jinja2.TemplateNotFound(
                f"{template} (a link to a file outside the format bundle's folder)")
        if "\x00" in source:  # UTF-16 without a byte order mark reads as UTF-8
            self._refuse_wide(source[:4096].encode("utf-8"), template)  # (its bytes again)
        return source, filename, uptodate

    def missing(self, template: str) -> str:
        """What to say of an include's or an import's ``template`` that is no file of the
        bundle: the bundle's template whose name is closest, or those it has."""
        have = []
        for root, dirs, files in os.walk(self.folder):
            dirs[:] = sorted(d for d in dirs if refusal(self.folder, d + "/x") is None)
            rel = Path(root).relative_to(self.folder)
            have += [(rel / f).as_posix() for f in sorted(files)
                     if f.endswith(".j2") and refusal(self.folder, (rel / f).as_posix()) is None]
        have.sort()
        said = "no such file in the format bundle's folder"
        if template.startswith("/"):
            said += ", where every name is read from: a leading '/' does not leave it"
        name = "/".join(x for x in template.split("/") if x not in ("", "."))
        close = difflib.get_close_matches(name, have, n=1, cutoff=0.6)
        if close:
            return f"{said}: did you mean '{close[0]}'?"
        return f"{said}; its templates: {', '.join(have)}" if have else said

    @staticmethod
    def _refuse_wide(head: bytes, template: str) -> None:
        """Refuse a template saved as UTF-16 or UTF-32 (``_wide.wide``), at its line 1:
        read as UTF-8 its bytes have no line or column to name."""
        found = wide(head)
        if found:
            raise jinja2.TemplateSyntaxError(
                f"not UTF-8: the template is {found[0]}; a template is read as UTF-8: "
                "save it so", 1, template)


def refusal(folder: Path, template: str) -> str | None:
    """Why the name ``template`` (as an include or an import gives it) is no template of
    the bundle in ``folder``, or None. A name is relative to the bundle's folder, so
    ``..`` is refused wherever it leads: out of the folder (the confinement), and even
    back into it (``../<bundle>/x.j2`` reads the folder's own name, which a bundle
    copied, renamed or recorded with a run does not keep; ``x.j2`` is the same file).
    Hidden files, backups ending in ``~``, ``__pycache__`` folders and the self-test's
    ``fixture/`` and ``expected/`` are not recorded with a run's bundle
    (pesgen.runs.bundle_snapshot): a template reading one could not be regenerated."""
    pieces = [x for x in template.split("/") if x not in ("", ".")]
    if ".." in pieces:
        root = os.path.realpath(folder)
        target = os.path.normpath(os.path.join(root, *pieces))
        if target != root and not target.startswith(root + os.sep):
            return ("outside the format bundle's folder: a template reads only the files "
                    "of its bundle, named from the bundle's folder, without '..'")
        return ("'..' is not allowed in a template name, even when it leads back into the "
                "bundle: name the file from the bundle's folder "
                f"('{Path(os.path.relpath(target, root)).as_posix()}')")
    if any(x.startswith(".") for x in pieces):
        return ("a hidden file is not a template: a run records its bundle without hidden "
                "files")
    if pieces and pieces[0] in ("fixture", "expected"):
        return ("the bundle's self-test (fixture/, expected/) is not a template: a run "
                "records its bundle without it")
    if "__pycache__" in pieces:
        return ("a __pycache__ folder is not a template's: a run records its bundle "
                "without it")
    if template.endswith("~"):
        return ("a backup ending in ~ is not a template: a run records its bundle without "
                "them")
    return None


class _Recorder:
    """A model object as one of pesgen's filters sees it while the sample titles are
    traced (``_Tracing``): each field the filter reads is recorded (``pricing`` reads a
    line's quantity, unit price and amount; ``by_imputation`` its imputation). A
    template reading it goes through ``_Tracing.getattr``, which reads the object."""

    __slots__ = ("_target", "_record")

    def __init__(self, target: object, record: Callable[[object, str], None]) -> None:
        self._target = target
        self._record = record

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        self._record(self._target, name)
        return _recorded(value, self._record)


def _recorded(value: Any, record: Callable[[object, str], None]) -> Any:
    """``value`` with its model objects (itself, or the items of a tuple or a list, a
    title's lines) seen through a ``_Recorder``."""
    kind = type(value)
    if kind in _DATA_TYPES:
        return _Recorder(value, record)
    if (kind is tuple or kind is list) and any(type(x) in _DATA_TYPES for x in value):
        return kind(_recorded(x, record) for x in value)
    return value


def _recording_filter(function: Callable[..., Any],
                      record: Callable[[object, str], None]) -> Callable[..., Any]:
    def recording(*args: Any, **kwargs: Any) -> Any:
        return function(*[_recorded(a, record) for a in args],
                        **{k: _recorded(v, record) for k, v in kwargs.items()})

    return update_wrapper(recording, function)


class _Tracing(_Sandbox):
    """The sandbox of ``check-mapping``'s sample titles only (``pesgen.sample``): the
    same templates, rendered the same way, but every field of a model object they read
    is recorded in ``reads`` (``{(id(object), field): object}``), through a template's
    own reads (none is inlined: ``public_fields`` is empty, so each goes through
    ``getattr``), Jinja's filters (``map(attribute=…)`` reads with ``getitem``) and
    pesgen's (their model arguments seen through a ``_Recorder``). The export renders
    with ``_Sandbox``: it pays nothing for this."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.public_fields: dict[type, frozenset[str]] = {}
        self.reads: dict[tuple[int, str], object] = {}

    def record(self, obj: object, name: str) -> None:
        self.reads.setdefault((id(obj), name), obj)  # the object kept: its id stays its

    def getattr(self, obj: object, attribute: str) -> object:
        if type(obj) is _Recorder:
            obj = obj._target
        if type(obj) in _DATA_TYPES:
            self.record(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: object, argument: object) -> object:
        if type(obj) is _Recorder:
            obj = obj._target
        if type(obj) in _DATA_TYPES and isinstance(argument, str):
            self.record(obj, argument)
        return super().getitem(obj, argument)


# a checking render's mark after each value a flat-file template writes (``_Marking``):
# MARK, the template's name, MARK_LINE, its line, MARK; no file pesgen writes holds NUL.
# After each line of a template's own text (outside {{ }} and {% %}; a constant {{ "02" }}
# too), MARK_TEXT in MARK_LINE's place (``_MarkingCode``)
MARK = "\x00"
MARK_LINE = "\x1f"
MARK_TEXT = "\x1e"


class _MarkingCode(_InlineReads):
    """The code generator of a checking render's templates (``_Marking``): each line of
    a template's own text, which Jinja makes a constant of the compiled code, is
    followed by a mark naming the template and the line it is on, before its line
    break (the constant's words, the line of a tag's constant): a line of the output
    that no value wrote is still told from which template line it came. Compiled for
    the checking render only: the export's templates are compiled by ``_InlineReads``."""

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame,
                               finalize: Any) -> str:
        const: str = super()._output_child_to_const(node, frame, finalize)
        if self.name is None or node.lineno is None:
            return const
        data = isinstance(node, nodes.TemplateData)  # its lines are the template's
        parts = const.split("\n")
        for i, part in enumerate(parts):
            if i == len(parts) - 1 and not part:
                break  # the text ends a line: the next one is not started
            body = part.rstrip("\r")
            line = node.lineno + i if data else node.lineno
            parts[i] = f"{body}{MARK}{self.name}{MARK_TEXT}{line}{MARK}{part[len(body):]}"
        return "\n".join(parts)


class _Marking(_Sandbox):
    """The sandbox of a checking render only (``pesgen.sample.written_by``, on the error
    path of check-mapping's sample titles): the same templates, rendered the same way,
    but each value a flat-file template writes (``{{ … }}``, ``written``) is followed by
    a mark naming the template and the line Jinja's debug info maps the writing code
    to, before the line break the value ends with, if any; each line of the templates'
    own text, of any template, by a mark of its own (``_MarkingCode``). The caller takes
    the marks out again and compares the text with what it rendered without them. The
    export renders with ``_Sandbox``: it pays nothing for this."""

    code_generator_class = _MarkingCode

    def written(self, value: object) -> str:
        text = super().written(value)
        frame = sys._getframe(1)  # the template's code writing the value
        template = frame.f_globals.get("__jinja_template__")
        if template is None or template.name is None:
            return text
        mark = (f"{MARK}{template.name}{MARK_LINE}"
                f"{template.get_corresponding_lineno(frame.f_lineno)}{MARK}")
        body = text.rstrip("\r\n")
        return body + mark + text[len(body):]


# the names a mapping expression reads, which a template does not see
_EXPORT_NAMES = frozenset({"invoice", "line", "record", "row", "rows"})


class _TemplateUndefined(jinja2.StrictUndefined):
    """A name a template reads that nothing defines ('numligne' is undefined) is said
    with what a template does see: Jinja's words alone left an author, who writes
    mapping expressions over ``invoice`` and ``line`` too, to guess."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        message = super()._undefined_message
        if self._undefined_hint or self._undefined_obj is not jinja2.utils.missing:
            return message
        if self._undefined_name in _EXPORT_NAMES:
            return (f"{message}: a template never sees the export ({self._undefined_name} "
                    "is a mapping expression's); it reads the model: doc, and t, one "
                    "title, in piece (t.invoice_number, t.lines; docs/template-model.md)")
        return (f"{message}: a template reads doc, t (one title, in piece), its macros' "
                "arguments, its loops' variables and what it sets (docs/template-model.md)")


class _Compiled(jinja2.BytecodeCache):
    """The code each template of a kind of environment compiled to in this process, by
    the template's name and file and the checksum of its source (Jinja's bytecode cache,
    kept in memory: ``load_bytecode`` gives the code object itself). Every renderer
    compiled its templates again: a command setting up several exports of one bundle
    (``new-mapping`` renders the scaffold's stand-ins ten times and more, check-mapping
    and check-format a few) spent most of its time in Jinja's compiler. The same source
    compiles to the same code in environments of one kind (``template_environment``:
    their class, which chooses the code generator, and the flags that change their
    filters, which Jinja calls on constants when it compiles); a source changed is
    compiled again. At most ``_COMPILED_MAX`` templates, then it starts afresh."""

    def __init__(self) -> None:
        self._codes: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        known = self._codes.get(bucket.key)
        if known is not None and known[0] == bucket.checksum:
            bucket.code = known[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is None:
            return
        if len(self._codes) >= _COMPILED_MAX:
            self._codes.clear()
        self._codes[bucket.key] = (bucket.checksum, bucket.code)


_COMPILED_MAX = 256
# {(environment class, writes_none, recorded): its templates' code} (``_Compiled``)
_COMPILED: dict[tuple[type, bool, bool], _Compiled] = {}


def template_environment(folder: Path, writes_none: bool = False,
                         traced: bool = False, recorded: bool = False,
                         marked: bool = False) -> SandboxedEnvironment:
    """A bundle's templates; ``writes_none`` only to rebuild a run recorded before a
    ``None`` output was refused: the word None written, and zero-filled by ``zfill`` as
    it was then (``'0None'``); ``traced``: the model fields they read are recorded
    (``_Tracing``: check-mapping's sample titles, never an export); ``recorded``: a
    recorded run's bundle, rebuilt (``changes_allowed``); ``marked``: each value written
    followed by the template line that wrote it (``_Marking``: a checking render of
    check-mapping's sample titles, never an export)."""
    kind = _Tracing if traced else _Marking if marked else _Sandbox
    env = kind(
        loader=_ConfinedLoader(folder),
        bytecode_cache=_COMPILED.setdefault((kind, writes_none, recorded), _Compiled()),
        undefined=_TemplateUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=50,
    )
    env.writes_none = writes_none
    env.changes_allowed = recorded
    env.filters.update(FILTERS)
    if writes_none:  # Jinja's own filters, and zfill as it was, which write the word None
        env.filters["zfill"] = zfill_as_before
    else:
        env.refuse_none_in_filters()
    if isinstance(env, _Tracing):  # traced
        env.filters.update({name: _recording_filter(env.filters[name], env.record)
                            for name in FILTERS})
    return env


class _NoneUndefined(jinja2.ChainableUndefined):
    """Missing record keys chain to nothing; the binding then yields None."""


def json_kind(value: object) -> str:
    """What a JSON value is, in a problem's words: 'a list', 'a text'..."""
    if isinstance(value, bool):
        return "a yes/no value"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


class WrongShape(Exception):  # noqa: N818 - a hand-over to the build, said as a problem there
    """A binding reads a key of a JSON value that is no object (``payer.name`` where the
    invoice's payer is a list or a text), or an index of one that is no list. Raised
    where it is met, so that the build says it once per value (its JSON path, what it
    is, what the mapping needs) rather than a missing field per binding reading below
    it. ``parts``: the value's path in the record a path binding read (None when an
    expression met it: the build finds it); ``key``: what was read of it."""

    def __init__(self, value: object, expected: str, key: str | int,
                 parts: tuple[str | int, ...] | None = None) -> None:
        self.value, self.expected, self.key, self.parts = value, expected, key, parts
        super().__init__(f"reads {key!r} of {json_kind(value)}, where {expected} is expected")


# the JSON values an expression may read no key of: reading one (neither a method nor
# an item of it) is a WrongShape, not an undefined value
_NOT_OBJECTS = frozenset({list, str, int, float, Decimal, bool})


class _RecordSandbox(_Bounded):
    """Input records are plain dicts from JSON or CSV: ``invoice.payer`` reads a key.
    Reading a present key is safe; anything else takes the sandbox's checks. A JSON
    ``null`` reads as a missing key: undefined, so ``a ~ " " ~ b`` never spells "None"
    and ``| default(...)`` applies to it. A None from elsewhere (a code table's
    ``.get()`` of a key it lacks, a JSON null read from a list, ``none``) is refused
    where it would be written as text (``~``, ``%``, ``str.format``, the filters that
    make text): a ``mapping.expr`` problem naming the binding and the record."""

    code_generator_class = _ConcatChecked
    # a mapping's bindings are compiled once, in this environment; ``writes_none`` (a
    # mapping loaded to rebuild a run recorded before 2026-12-01: expression_environment's
    # ``as_before``) is read by every route when it meets a None
    none_message = NONE_IN_EXPRESSION

    # a key read of a list, a text, a number (``invoice.payer.name`` where the payer is a
    # list) raises WrongShape; False for a mapping a run recorded, rebuilt as it was read
    wrong_shapes = True

    def getattr(self, obj: object, attribute: str) -> object:
        if type(obj) is dict and attribute in obj:
            value = obj[attribute]
            return self.undefined(obj=obj, name=attribute) if value is None else value
        value = super().getattr(obj, attribute)
        if type(obj) in _NOT_OBJECTS and self.wrong_shapes and \
                isinstance(value, jinja2.Undefined):
            raise WrongShape(obj, "an object", attribute)
        return value

    def getitem(self, obj: object, argument: object) -> object:
        if type(obj) is dict and type(argument) is str and argument in obj:
            value = obj[argument]
            return self.undefined(obj=obj, name=argument) if value is None else value
        value = super().getitem(obj, argument)
        if type(argument) is str and type(obj) in _NOT_OBJECTS and self.wrong_shapes and \
                isinstance(value, jinja2.Undefined):
            raise WrongShape(obj, "an object", argument)
        return value


def expression_environment(as_before: bool = False) -> SandboxedEnvironment:
    """For a mapping's expressions; ``as_before`` only to rebuild a run recorded before
    None was refused (2026-12-01): a None it makes is written as the word, and ``zfill``
    zero-fills the word, as they were then."""
    env = _RecordSandbox(undefined=_NoneUndefined, autoescape=False)
    env.writes_none = as_before
    env.filters.update(FILTERS)
    if as_before:
        env.filters["zfill"] = zfill_as_before
    env.refuse_none_in_filters()
    return env


def string_environment(writes_none: bool = False) -> SandboxedEnvironment:
    """For small strict string templates written in config (a bundle's file names): the
    templates' sandbox (a model field misspelt is named with the close one), which
    refuses to write None as templates do; ``writes_none`` only to rebuild a run recorded
    before a None was refused there (the word None written, as it was then)."""
    env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False)
    env.writes_none = writes_none
    env.filters.update(FILTERS)
    if writes_none:
        env.filters["zfill"] = zfill_as_before
    else:
        env.refuse_none_in_filters()
    return env


def memoise_escaping(template: jinja2.Template) -> None:
    """Make the XML escaping of ``template``'s output remember what it escaped.

    Jinja's generated code calls the name ``escape`` of the template's own module (one
    per compiled template) on every value it outputs: markupsafe's, which builds a new
    ``Markup`` each time. Billing runs output the same few thousand strings again and
    again (codes, amounts, dates, cities), so for an exact ``str`` the ``Markup`` is
    looked up in a bounded memo instead: the same result, from the same function, made
    once (a fifth of the rendering time); an exact ``int`` (IdPce, IdLigne) too. An
    exact ``Markup`` (a macro's or a ``set`` block's output) is its own escaping, as
    markupsafe's ``Markup(value.__html__())`` is a copy of it. Anything else (bools,
    other numbers, ``Markup`` subclasses, objects with ``__html__``, undefined values)
    still goes to markupsafe every time; None is refused (``NONE_WRITTEN``): the word
    "None" is no value of a file; a container (a list...) whose text is over the bound
    is refused before markupsafe makes it (``_Bounded.check_text``). Every template of
    a bundle's environment gets this as it is compiled (``_Template``), the templates it
    imports included."""
    namespace = template.root_render_func.__globals__
    env = template.environment
    escape = namespace.get("escape")
    check = getattr(env, "check_text", None)
    if escape is None or getattr(escape, "memoised", False):
        namespace.setdefault("_pesgen_memo", {}.get)  # finds nothing: escape is called
        return  # not Jinja's usual module (nothing to memoise), or done already
    memo: dict[str | int, Markup] = {}
    get = memo.get
    # what the template's own code looks an exact str up with (_InlineReads), then
    # calls the memoised escape below when it is not there
    namespace["_pesgen_memo"] = get

    # value's type is tested once, as ``kind``, which mypy does not narrow ``value`` by
    def memoised(value: object) -> Markup:
        kind = type(value)
        if kind is str or kind is int:  # never equal to each other: one memo
            known = get(value)  # type: ignore[call-overload]
            if known is None:
                known = escape(value)
                remember(memo, value, known)
            return known
        if kind is Markup:  # markupsafe makes Markup(value.__html__()): the same text
            return value  # type: ignore[return-value]
        if value is None and not getattr(env, "writes_none", False):
            raise jinja2.TemplateRuntimeError(NONE_WRITTEN)  # markupsafe writes 'None'
        if _IS_CONTAINER[type(value)] and check is not None:
            check("output", value)  # its text bounded before markupsafe makes it
        return escape(value)

    memoised.memoised = True  # type: ignore[attr-defined]  # a mark, read with getattr
    namespace["escape"] = memoised

