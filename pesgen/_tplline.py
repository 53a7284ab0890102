"""The template line a Jinja error belongs to, worked out when the error is reported.

Jinja compiles each ``{{ … }}`` or ``{% … %}`` tag to one line of Python, and its debug
info maps that line back to a single template line: the line of the node that began
it (the first line of a concatenation, but the *last* filter's line of a filtered
expression), not the line of the faulty name. An unknown filter or test inside an
``{% if %}`` is only refused when it is called, by a stub Jinja puts before the first
mapped line (it read as line 1). So, on the error path only: the traceback says which
template frame failed and what it was doing (reading an undefined name or attribute,
calling a filter or a test, an operator the sandbox refused), and the template's tokens
say on which line of that tag this is. When the tag spans several lines and the faulty
token cannot be told apart, the place says so: the line the tag starts on, and its span.
"""

from __future__ import annotations

import itertools
import re
import traceback
from dataclasses import dataclass, replace
from types import FrameType, ModuleType
from typing import Any

import jinja2
from jinja2.lexer import Token
from jinja2.runtime import Macro
from jinja2.utils import missing


@dataclass(frozen=True)
class Place:
    template: str  # the template's name in its bundle, e.g. 'pes-aller.xml.j2'
    line: int
    # a tag spanning several lines whose faulty line could not be told: (first, last)
    span: tuple[int, int] | None = None
    kind: str = "expression"  # expression {{ … }} or statement {% … %}
    # an undefined value made elsewhere and passed in (a macro's argument): the
    # template and line of the caller that reads it, when its tokens show it
    given_at: tuple[str, int] | None = None

    @property
    def note(self) -> str:
        if self.span is None:
            return ""
        return f"in the {self.kind} on lines {self.span[0]}-{self.span[1]}"


@dataclass
class _Tag:
    kind: str
    first: int
    last: int
    tokens: list[Token]


# what the failing code was doing: (what, names): a name, an attribute, an item, a
# filter, a test or an operator, and the names it could be spelled with in the tag
_Fault = tuple[str, frozenset[Any]]

_UNKNOWN = re.compile(r"No (filter|test) named '(.+)' found\.")
_DEFINING = ("is", "macro", "set", "for", "as", "block", "import")
_OPERATOR_TOKENS = {"*": "mul", "**": "pow", "%": "mod", "/": "div", "//": "floordiv",
                    "+": "add", "-": "sub"}


def locate(exc: BaseException, name: str) -> Place | None:
    """Where ``exc``, raised compiling or running template ``name`` (or a template it
    imports), comes from; None when no template frame is found."""
    line = getattr(exc, "lineno", None)
    if line:  # a compile-time error: the line of the faulty token, as Jinja lexed it
        return Place(getattr(exc, "name", None) or name, int(line))
    frames = list(traceback.walk_tb(exc.__traceback__))
    found = None
    for i, (frame, code_line) in enumerate(frames):
        template = frame.f_globals.get("__jinja_template__")
        if template is None or template.name is None or not template.debug_info:
            continue
        if code_line < template.debug_info[0][1]:
            continue  # the module's preamble (an unknown filter's stub): no template line
        found = i, template, template.get_corresponding_lineno(code_line)
    if found is None:
        return None
    i, template, line = found
    env = template.environment
    if env.loader is None:
        return Place(template.name, line)
    try:
        fault = _fault(exc, [f for f, _ in frames[i + 1:]], env)
        # the template is lexed once: the lines of the failing tag(s) reading the fault
        # place the error, and say whether the value was given from elsewhere
        tags = _tags_at(env, template.name, line)
        reading = set() if fault is None else _holding(tags, fault)
        place = _narrow(template.name, line, tags, reading)
    except Exception:  # finding the line must never hide the error itself
        return Place(template.name, line)
    try:
        given = None if reading else _given_at(env, fault, frames[:i])
    except Exception:  # a hint only: never at the cost of the error
        given = None
    return replace(place, given_at=given) if given else place


def _given_at(env: jinja2.Environment, fault: _Fault | None,
              callers: list[tuple[FrameType, int]]) -> tuple[str, int] | None:
    """For an undefined value the failing tag does not read by its name (``a.resident``
    failing on ``a``, a macro's argument given as ``t.joint_debtor.adress``): the
    template and line of the nearest calling template frame whose tag on its current
    line reads that name (the call site), when exactly one line of it does; else None
    (the value came from a {% set %} or from pesgen, and no line can be told)."""
    if fault is None or fault[0] not in ("name", "attr", "item"):
        return None
    for frame, code_line in reversed(callers):
        caller = frame.f_globals.get("__jinja_template__")
        if caller is None or caller.name is None or not caller.debug_info or \
                code_line < caller.debug_info[0][1]:
            continue
        lines = _holding(_tags_at(env, caller.name,
                                  caller.get_corresponding_lineno(code_line)), fault)
        if lines:
            return (caller.name, lines.pop()) if len(lines) == 1 else None
    return None


def _tags_at(env: jinja2.Environment, name: str, line: int) -> list[_Tag]:
    """The tag(s) of template ``name`` (its environment has a loader) on ``line``."""
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    return [t for t in _tags(env, source, name) if t.first <= line <= t.last]


def expression_span(env: jinja2.Environment, name: str, line: int) -> tuple[int, int]:
    """(first, last) line of the ``{{ … }}`` tag of template ``name`` (its environment
    has a loader) on ``line``; (``line``, ``line``) when there is none, or the template
    cannot be read again."""
    try:
        spans = [(t.first, t.last) for t in _tags_at(env, name, line) if t.kind == "expression"]
    except Exception:  # a place to name only: never at the cost of the problem said
        return line, line
    return spans[0] if len(spans) == 1 else (line, line)


def _holding(tags: list[_Tag], fault: _Fault) -> set[int]:
    """The lines of ``tags`` holding the token ``fault`` names."""
    return {tok.lineno for tag in tags for prev, tok in itertools.pairwise(tag.tokens)
            if _is(fault, prev, tok)}


def _narrow(name: str, line: int, tags: list[_Tag], reading: set[int]) -> Place:
    """The line of the faulty token (``reading``: the lines of ``tags`` holding it) in
    the tag(s) on ``line``, the line the code of the failing frame maps to."""
    if len(reading) == 1:
        return Place(name, next(iter(reading)))
    spread = [t for t in tags if t.last > t.first]
    if not spread:
        return Place(name, line)
    first, last = min(t.first for t in spread), max(t.last for t in spread)
    kinds = {t.kind for t in spread}
    return Place(name, first, (first, last), kinds.pop() if len(kinds) == 1 else "tags")


def _tags(env: jinja2.Environment, source: str, name: str) -> list[_Tag]:
    tags: list[_Tag] = []
    current: _Tag | None = None
    for tok in env.lexer.tokenize(env.preprocess(source, name), name):
        if tok.type in ("variable_begin", "block_begin"):
            current = _Tag("expression" if tok.type == "variable_begin" else "statement",
                           tok.lineno, tok.lineno, [tok])
        elif current is not None:
            current.tokens.append(tok)
            if tok.type in ("variable_end", "block_end"):
                current.last = tok.lineno
                tags.append(current)
                current = None
    return tags


def _fault(exc: BaseException, callees: list[FrameType],
           env: jinja2.Environment) -> _Fault | None:
    """What the template frame was doing when it failed, from the frames it called."""
    for frame in callees:
        undefined = frame.f_locals.get("self")
        if isinstance(undefined, jinja2.Undefined) and \
                frame.f_code.co_name == "_fail_with_undefined_error":
            # reading it, not making it, failed: it names what the template read
            obj = getattr(undefined, "_undefined_obj", missing)
            key = getattr(undefined, "_undefined_name", None)
            if key is None:
                return None
            what = "name" if obj is missing else "attr" if isinstance(key, str) else "item"
            return what, frozenset([key])
    unknown = _UNKNOWN.fullmatch(str(exc))
    if unknown:
        return unknown[1], frozenset([unknown[2]])
    if not callees:
        return None
    frame = callees[0]
    for what, table in (("filter", env.filters), ("test", env.tests)):
        names = frozenset(n for n, f in table.items() if _runs(frame, f))
        if names:
            return what, names
    if frame.f_code.co_name == "call_binop":
        token = _OPERATOR_TOKENS.get(frame.f_locals.get("operator", ""))
        return ("operator", frozenset([token])) if token else None
    if frame.f_code.co_name in ("str_concat", "markup_concat"):  # a ~ b (_ConcatChecked)
        return "operator", frozenset(["tilde"])
    if frame.f_code.co_name == "call":
        # the sandbox's environment.call(context, obj, …) (Context.call(obj, …) outside
        # one): a method is called as an attribute, a function or a macro by its name
        params = frame.f_code.co_varnames[:frame.f_code.co_argcount]
        at = 2 if isinstance(frame.f_locals.get(params[0]) if params else None,
                             jinja2.Environment) else 1
        called = frame.f_locals.get(params[at]) if len(params) > at else None
        # str.format comes wrapped by the sandbox, the method it wraps kept
        owner = getattr(getattr(called, "__wrapped__", called), "__self__", None)
        if owner is not None and not isinstance(owner, ModuleType):
            return "attr", frozenset([getattr(called, "__name__", None)])
        # a global (lipsum) by the name it is registered under, a macro by its own
        spelled: set[str | None] = {n for n, v in env.globals.items() if v is called}
        spelled.add(getattr(called, "name", None) if isinstance(called, Macro) else
                    getattr(called, "__name__", None))
        return "name", frozenset(n for n in spelled if n is not None)
    for frame in callees:  # an attribute the sandbox refuses (_Bounded.unsafe_undefined)
        if frame.f_code.co_name == "unsafe_undefined" and \
                isinstance(frame.f_locals.get("self"), jinja2.Environment):
            return "attr", frozenset([frame.f_locals.get("attribute")])
    return None


def _runs(frame: FrameType, func: Any) -> bool:
    """Whether ``frame`` runs ``func``: its code and, for a closure (filters made by one
    factory share their code: pesgen._jinja._refusing_none), the same free values."""
    if getattr(func, "__code__", None) is not frame.f_code:
        return False
    cells = getattr(func, "__closure__", None) or ()
    values = frame.f_locals
    return all(values.get(name, missing) is cell.cell_contents
               for name, cell in zip(frame.f_code.co_freevars, cells, strict=False))


def _is(fault: _Fault, prev: Token, tok: Token) -> bool:
    """Whether ``tok`` (after ``prev``) is the token ``fault`` names."""
    what, names = fault
    if what == "operator":
        return tok.type in names
    if what == "item":
        return prev.type == "lbracket" and tok.type in ("integer", "float", "string") \
            and tok.value in names
    if what == "attr" and tok.type == "string":
        return prev.type == "lbracket" and tok.value in names
    if tok.type != "name" or tok.value not in names:
        return False
    if what == "attr":
        return prev.type == "dot"
    if what == "filter":
        return prev.type == "pipe" or prev.test("name:filter")
    if what == "test":
        return prev.test("name:is") or prev.test("name:not")
    # a name read, not one defined or a filter's or a test's
    return prev.type not in ("dot", "pipe") and not any(
        prev.test(f"name:{word}") for word in _DEFINING)


_CLOSERS = {"variable_begin": "}}", "block_begin": "%}"}


def unclosed_tag(exc: jinja2.TemplateSyntaxError, env: jinja2.Environment) -> str:
    """A note for a syntax error Jinja found past the line a tag opened on, when that tag
    is not closed: it runs into the next tag's ``{{`` or ``{%`` (which no expression
    holds) or to the end of the template. Jinja's line is then where the parser gave up
    on what the tag swallowed, not the slip. "" when the source does not show this."""
    source, line = getattr(exc, "source", None), exc.lineno
    if source is None or not line:
        return ""
    opened: tuple[str, int] | None = None  # the open tag's kind and line
    into: int | None = None  # the line of a tag opening inside it
    prev = ("", "")
    ended = False
    try:
        for lineno, kind, value in env.lexer.tokeniter(source, exc.name):
            if kind in _CLOSERS:
                opened, into = (kind, lineno), None
            elif kind in ("variable_end", "block_end"):
                if opened and into and opened[1] < line <= lineno:
                    break
                opened = None
            elif opened and into is None and prev == ("operator", "{") and \
                    kind == "operator" and value in ("{", "%"):
                into = lineno
            prev = (kind, value)
        else:
            ended = True
    except jinja2.TemplateSyntaxError:
        pass  # the tokens up to there tell
    if opened is None or opened[1] >= line or not (into or ended):
        return ""
    close = _CLOSERS[opened[0]]
    after = f"before the tag on line {into}" if into else "before the end of the template"
    return f"the tag opened on line {opened[1]} is not closed: no '{close}' {after}"
