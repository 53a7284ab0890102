"""Render canonical objects with a format bundle's templates (sandboxed Jinja).

A template defines three macros: ``head(doc)``, ``piece(t, doc)`` and ``tail(doc)``.
pesgen renders the pieces as the titles stream by, and the head and tail once the
bordereau's totals are known, so memory does not grow with the run.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jinja2
from jinja2 import nodes

from . import _budget
from ._jinja import NONE_WRITTEN, close_filter, string_environment, template_environment
from ._tplline import expression_span, locate, unclosed_tag
from ._yaml import line_of, load_yaml_file
from .errors import Problem, TemplateError, TemplateStopped, exception_message
from .filters import RefusedValue
from .formats import FileSpec, Format, unwritable
from .memo import remember
from .model import Document, Title

_MACROS = ("head", "piece", "tail")
# bytes of one file name in UTF-8 (NAME_MAX of Linux and macOS file systems; NTFS counts
# 255 UTF-16 units, which this never exceeds): a longer name is refused as the
# template's, not as an OSError naming the output folder
MAX_FILE_NAME = 255
# What a template's own code can raise besides Jinja's errors, reported as a template
# error naming its line (exit 5): a value of the wrong type, a missing key, an
# arithmetic error (OverflowError included: 10.0 ** 400), a macro calling itself without
# end (RecursionError), a value too large to be made (MemoryError), a call that runs
# past its time limit (RenderTimeout)
_RENDER_ERRORS = (ValueError, TypeError, AttributeError, LookupError, ArithmeticError,
                  RecursionError, MemoryError, _budget.RenderTimeout)
# the arguments pesgen passes each macro
_ARGUMENTS = {"head": ("doc",), "piece": ("t", "doc"), "tail": ("doc",)}
_CALLS = "head(doc), piece(t, doc), tail(doc)"
# a character no file name holds: NUL (no file system takes it), a line break, a
# terminal's escape (C0, DEL and C1 controls)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# what a file name format.yaml's files[i].name renders is (rule format.file-name)
PLAIN_NAME = ("a plain file name is the name of a file in the output folder: not empty, "
              "no '/' or '\\' (no folder), not starting with '.' (no '..', no hidden "
              "file), no control character")


def _source(env: jinja2.Environment, template: str) -> str:
    try:
        return env.loader.get_source(env, template)[0] if env.loader else ""
    except jinja2.TemplateNotFound:
        return ""


def _macro_line(source: str, name: str) -> int | None:
    """The line of ``{% macro name(`` in a template's source (None: not there, e.g.
    imported from another template)."""
    found = re.search(r"\{%[-+]?\s*macro\s+" + re.escape(name) + r"\s*\(", source)
    return source.count("\n", 0, found.start()) + 1 if found else None


def _check_macros(module: Any, name: str, source: str) -> None:
    """The template defines head, piece and tail, each taking the arguments pesgen
    passes: a misspelt macro is named with the close one it defines, and a macro
    declaring too few arguments (``piece(t)``) by its line, before any rendering (Jinja
    says 'takes not more than 1 argument(s)' when it is called, with no line)."""
    macros = {k: v for k, v in vars(module).items()
              if isinstance(v, jinja2.runtime.Macro) and not k.startswith("_")}
    problems: list[Problem] = []
    for macro in _MACROS:
        if callable(getattr(module, macro, None)):
            continue
        others = [m for m in macros if m not in _MACROS]
        close = difflib.get_close_matches(macro, others, n=1, cutoff=0.6)
        said = f"the macro {macro}({', '.join(_ARGUMENTS[macro])}) is not defined"
        line = _macro_line(source, close[0]) if close else None
        if close:
            said += f": did you mean '{close[0]}' (defined{f' on line {line}' if line else ''})?"
        problems.append(Problem("template", said, mapping=f"{name}:{line}" if line else name))
    for macro in _MACROS:
        found = macros.get(macro)
        if found is None or found.catch_varargs:
            continue
        wanted = _ARGUMENTS[macro]
        if len(found.arguments) < len(wanted):
            line = _macro_line(source, macro)
            problems.append(Problem(
                "template", f"macro {macro}({', '.join(found.arguments)}) takes "
                f"{len(found.arguments)} argument(s); pesgen calls {macro}"
                f"({', '.join(wanted)}): declare {{% macro {macro}({', '.join(wanted)}) %}}",
                mapping=f"{name}:{line}" if line else name))
    if problems:
        first = problems[0]
        raise TemplateError(f"template {first.mapping}: {first.message} (a template defines "
                            f"the macros {_CALLS})", problems)


def template_error(exc: BaseException, bundle: str, name: str, context: str,
                   env: jinja2.Environment | None = None) -> TemplateError:
    """``exc``, raised by template ``name`` of format ``bundle`` (or by a template it
    imports; ``bundle`` as messages name it, ``Format.shown``), as pesgen's error naming
    the template file and line; ``env``, the
    environment that compiled it, tells a syntax error's tag left open, and the filter
    (or test) a misspelt one is close to."""
    place = locate(exc, name)
    where = f"{bundle}/{place.template}:{place.line}" if place else f"{bundle}/{name}"
    message = getattr(exc, "message", None) or exception_message(exc)
    if env is not None:
        message += close_filter(message, env)
    # a tag spanning lines whose faulty line could not be told: the line named is the
    # one it starts on, and the message says so
    note = place.note if place is not None else ""
    if isinstance(exc, jinja2.TemplateSyntaxError):  # the line Jinja lexed
        hint = unclosed_tag(exc, env) if env is not None else ""
        message = f"{message} ({hint})" if hint else message
        return TemplateError(f"template {where}: syntax error: {message}",
                             [Problem("template.syntax", message or "syntax error",
                                      mapping=where)])
    if place is not None and place.given_at is not None:
        # a macro's argument read wrong at the call: the line the value is given on too
        given = f"{bundle}/{place.given_at[0]}:{place.given_at[1]}"
        said = f"the value is given as a macro's argument at {given}"
        note = f"{note}; {said}" if note else said
    context = f"{note}; {context}" if note else context
    detail = f"{message} ({note})" if note else message
    error = _error_of(exc)(f"template {where}: {message} ({context})", [
        Problem("template", f"{type(exc).__name__}: {detail}", mapping=where)])
    if isinstance(exc, RefusedValue):  # the export names the binding whose value it is
        error.refused = (exc.value,)
    elif isinstance(exc, jinja2.TemplateRuntimeError) and NONE_WRITTEN in message:
        error.none_written = True  # the export names the binding left empty, when one is
    return error


def _error_of(exc: BaseException) -> type[TemplateError]:
    """The error a template's ``exc`` is reported as: a call stopped past its time limit
    as TemplateStopped, which no caller renders again (it would wait as long again)."""
    return TemplateStopped if isinstance(exc, _budget.RenderTimeout) else TemplateError


class FileRenderer:
    """The three macros of one output file's template."""

    def __init__(self, fmt: Format, spec: FileSpec, writes_none: bool = False,
                 traced: bool = False, recorded: bool = False, marked: bool = False
                 ) -> None:
        """``traced``: the model fields the templates read are recorded (``reads``);
        check-mapping's sample titles only. ``recorded``: a recorded run's bundle,
        rebuilt as it rendered then (its files are compared with their sha256): what
        was refused since is let through (``changes_allowed``, a control character in
        a file name). ``marked``: each value written is followed by a mark naming the
        template line that wrote it (``_jinja._Marking``): a checking render only."""
        self.fmt = fmt
        self.spec = spec
        self.recorded = recorded
        self._env = env = template_environment(fmt.folder, writes_none, traced, recorded,
                                               marked)
        # as messages name it: a bundle outside pesgen's by its folder (Format.shown)
        self.name = f"{fmt.shown}/{spec.template}"
        # given a head's or tail's refusal writing None (the macro, the document, the
        # refusal's template:line), what names the empty value(s) it wrote, added to
        # its problems in parentheses: the export's, from the mapping
        # (``export._none_said``); None: the refusal as it is
        self.explain_none: Callable[[FileRenderer, str, Document, str | None],
                                    str | None] | None = None
        # {(template, line): the lines of the {{ … }} holding it} (``expression_lines``)
        self._spans: dict[tuple[str, int], tuple[int, int]] = {}
        try:
            # escaping memoised (_Template). Compiling takes time in the text's size, not
            # watched (a loaded machine's compile of the whole text once passed a test's
            # short limit); its top-level code, which may loop, runs watched
            module = _budget.watched(env.get_template(spec.template).make_module)
        except jinja2.TemplateError as exc:
            raise template_error(exc, fmt.shown, spec.template, "loading", env) from None
        except _RENDER_ERRORS as exc:  # the template's own code, run by make_module
            raise template_error(exc, fmt.shown, spec.template, "loading") from None
        _check_macros(module, self.name, _source(env, spec.template))
        # the template's macros, attributes of its module (_check_macros found them)
        self._head: Callable[..., Any] = module.head  # type: ignore[attr-defined]
        self._piece: Callable[..., Any] = module.piece  # type: ignore[attr-defined]
        # what a piece is rendered by: the macro's own function when it takes (t, doc)
        # alone (_direct), for every title of a run
        self._piece_call = _direct(self._piece, len(_ARGUMENTS["piece"])) or self._piece
        self._tail: Callable[..., Any] = module.tail  # type: ignore[attr-defined]
        names = string_environment(writes_none)
        # pesgen's own attribute on the environment, read with getattr: not Jinja's
        names.changes_allowed = recorded  # type: ignore[attr-defined]
        try:
            self._name = names.from_string(spec.name)
        except (jinja2.TemplateSyntaxError, RecursionError) as exc:  # nested too deeply
            message = getattr(exc, "message", None) or exception_message(exc)
            message += close_filter(message, names)
            where = self.name_where()
            raise TemplateError(f"{where}: file name template: {message}", [Problem(
                "template.syntax", f"file name template: {message}", mapping=where)]) from None

    def name_where(self) -> str:
        """Where format.yaml gives this file's name: 'format.yaml:line: files[i].name'."""
        source = self.fmt.folder / "format.yaml"
        index = self.fmt.files.index(self.spec) if self.spec in self.fmt.files else 0
        try:
            data, _, _ = load_yaml_file(source, "format")
            line = line_of(data, ["files", index, "name"])
        except Exception:  # the bundle was loaded from it: only a file changed since
            return f"{source}: files[{index}].name"
        return f"{source}:{line}: files[{index}].name"

    def sources(self) -> list[tuple[str, str]]:
        """(name, source) of this file's template and of the templates it imports or
        includes by a constant name, each once."""
        env, found, todo = self._env, {}, [self.spec.template]
        while todo:
            name = todo.pop()
            if name in found:
                continue
            try:
                # a bundle's environment has its loader (_ConfinedLoader)
                source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
                todo.extend(_imported(env, name, source))
            except jinja2.TemplateError:
                continue  # a missing or broken import is reported when it is loaded
            found[name] = source
        return list(found.items())

    def check_literals(self, encoding: str) -> None:
        """Refuse, naming the template file and line, a character of the templates' own
        text (outside ``{{ }}`` and ``{% %}``) that ``encoding`` cannot write: every file
        would fail when written, blamed on no line. Once per template, when the export is
        set up: nothing on the rendering path."""
        for name, source in self.sources():
            found = _unwritable_literal(self._env, name, source, encoding)
            if found is not None:
                line, char = found
                where = f"{self.fmt.shown}/{name}:{line}"
                message = (f"the template's text holds {char!r} (U+{ord(char):04X}), which "
                           f"{encoding} cannot write: write it as the output's encoding "
                           "can (a character reference in XML, &#8364; for €), or take it "
                           "from the model or an option")
                raise TemplateError(f"template {where}: {message}", [Problem(
                    "template.encoding", message, mapping=where)])

    def unwritable_source_line(self, char: str) -> str | None:
        """Where ``char`` is written in the templates' source (a string of an
        expression, as the text is checked when loaded): 'bundle/name:line', or None."""
        for name, source in self.sources():
            try:  # a string literal of an expression; never a comment's text
                for token in self._env.lexer.tokenize(self._env.preprocess(source, name), name):
                    if token.type == "string" and char in token.value:
                        return f"{self.fmt.shown}/{name}:{token.lineno}"
            except jinja2.TemplateSyntaxError:
                continue
        return None

    def expression_lines(self, name: str, line: int) -> tuple[int, int]:
        """The first and last lines of the ``{{ … }}`` tag of template ``name`` that
        ``line`` is in (Jinja maps a filtered expression's code to its last filter's
        line); (``line``, ``line``) when it is in none. Each found once (it lexes the
        template): a refused export names many lines of one template."""
        span = self._spans.get((name, line))
        if span is None:
            span = self._spans[name, line] = expression_span(self._env, name, line)
        return span

    @property
    def reads(self) -> dict[tuple[int, str], object]:
        """The model fields a traced renderer's templates have read, ``{(id(object),
        field): object}`` (``pesgen._jinja._Tracing``); empty for any other."""
        return getattr(self._env, "reads", {})

    def file_name(self, doc: Document) -> str:
        try:  # a template too: a loop without end is stopped
            name = _budget.watched(self._name.render, {"doc": doc}).strip()
        except Exception as exc:
            message = getattr(exc, "message", None) or exception_message(exc)
            message += close_filter(message, self._name.environment)
            where = self.name_where()
            raise _error_of(exc)(f"{self.fmt.name}: file name template failed: {message} "
                                 f"({where})", [Problem("template", f"file name template: "
                                                        f"{message}", mapping=where)]) from None
        # refused since 2026-12-02: a recorded run that wrote one is rebuilt as it was
        control = None if self.recorded else _CONTROL.search(name)
        if not name or "/" in name or "\\" in name or name.startswith(".") or control:
            # a NUL was found only when the recorded run's files were put
            self._refuse_name(f"file name {name!r} is not a plain file name: " + (
                "it is empty" if not name else
                f"it holds the control character U+{ord(control[0]):04X}" if control else
                f"it holds {'/' if '/' in name else chr(92)!r}" if "/" in name or "\\" in name
                else "it starts with '.'") + "; " + PLAIN_NAME)
        self.check_name_length(name, "file name")
        return name

    def check_name_length(self, name: str, what: str) -> None:
        """Refuse ``name`` (this file's, or one made from it: ``what`` says which) when
        it is longer than file systems take: a template error naming format.yaml's
        files[i].name, not an OSError naming the output folder."""
        size = len(os.fsencode(name))
        if size > MAX_FILE_NAME:
            self._refuse_name(f"{what} '{name[:40]}…' is {size} bytes long: file systems "
                              f"take at most {MAX_FILE_NAME}")

    def _refuse_name(self, message: str) -> None:
        where = self.name_where()
        raise TemplateError(f"{self.fmt.name}: {message} ({where})",
                            [Problem("format.file-name", message, mapping=where)])

    def head(self, doc: Document) -> str:
        return self._explained("head", doc)

    def piece(self, title: Title, doc: Document) -> str:
        try:  # (what is rendered, said only when it fails: the title's piece)
            return self._call(self._piece_call, None, title, doc)
        except TemplateError as exc:  # name the invoice's record too: the data may be why
            exc.problems = [replace(p, record=title.origin, invoice=title.invoice_number)
                            for p in exc.problems]
            raise

    def tail(self, doc: Document) -> str:
        return self._explained("tail", doc)

    def render(self, macro: str, doc: Document, title: Title | None = None) -> str:
        """``macro`` ('head', 'piece' of ``title``, 'tail') rendered, a refusal of head or
        tail left unexplained (``explain_none``: what explains it renders through here)."""
        if macro == "piece":
            assert title is not None
            return self.piece(title, doc)
        return self._call(self._head if macro == "head" else self._tail, macro, doc)

    def _explained(self, macro: str, doc: Document) -> str:
        try:
            return self.render(macro, doc)
        except TemplateError as exc:
            if exc.none_written and self.explain_none is not None:
                where = exc.problems[0].mapping if exc.problems else None
                said = self.explain_none(self, macro, doc, where)
                if said:
                    exc.problems = [replace(p, message=f"{p.message} ({said})")
                                    for p in exc.problems]
            raise

    def _call(self, macro: Callable[..., Any], what: str | None, *args: Any) -> str:
        """``macro(*args)``, its errors said as ``what``'s (None: the piece of the title
        ``args[0]``)."""
        try:  # a call running past _budget.LIMIT is stopped
            return str(_budget.watched(macro, *args))
        except jinja2.TemplateError as exc:
            raise template_error(exc, self.fmt.shown, self.spec.template,
                                 _rendered(what, args), self._env) from None
        except _RENDER_ERRORS as exc:
            raise template_error(exc, self.fmt.shown, self.spec.template,
                                 _rendered(what, args)) from None


def _rendered(what: str | None, args: tuple[Any, ...]) -> str:
    """What ``FileRenderer._call`` rendered, as its errors say it."""
    return f"piece of invoice {args[0].invoice_number}" if what is None else what


def _direct(macro: Callable[..., Any], count: int) -> Callable[..., Any] | None:
    """The function of Jinja's ``macro`` that makes its text, when calling it with
    ``count`` values is all the macro's call does before it: a ``Macro`` taking exactly
    ``count`` arguments, no ``caller``, ``varargs`` or ``kwargs``, not async; its text the
    same (Jinja makes it a ``Markup`` of it, which ``_call`` makes a ``str`` again), its
    errors the same, raised from the template's own code. None otherwise (the macro
    called as it is)."""
    if (type(macro) is not jinja2.runtime.Macro or len(macro.arguments) != count
            or macro.caller or macro.catch_kwargs or macro.catch_varargs
            or macro._environment.is_async):
        return None
    func: Callable[..., Any] = macro._func
    return func


# Per template source (a run, a test suite, sets up many exports of the same bundles):
# the templates it imports or includes, and its first literal character an encoding
# cannot write (line, character)
_IMPORTS: dict[tuple[str, str], tuple[str, ...]] = {}
_LITERALS: dict[tuple[str, str, str], tuple[int, str] | None] = {}


def _imported(env: jinja2.Environment, name: str, source: str) -> tuple[str, ...]:
    key = (name, source)
    known = _IMPORTS.get(key)
    if known is None:
        tree = env.parse(source, name)
        # each node of those three kinds has a template (find_all is typed as giving
        # their common base, Stmt, which has none)
        templates = [node.template for node in tree.find_all(  # type: ignore[attr-defined]
            (nodes.Import, nodes.FromImport, nodes.Include))]
        known = tuple(t.value for t in templates
                      if isinstance(t, nodes.Const) and isinstance(t.value, str))
        remember(_IMPORTS, key, known)
    return known


def _unwritable_literal(env: jinja2.Environment, name: str, source: str,
                        encoding: str) -> tuple[int, str] | None:
    key = (name, source, encoding)
    if key in _LITERALS:
        return _LITERALS[key]
    found = None
    for token in env.lexer.tokenize(env.preprocess(source, name), name):
        char = unwritable(token.value, encoding) if token.type == "data" else None
        if char is not None:
            index = token.value.index(char)
            found = token.lineno + token.value.count("\n", 0, index), char
            break
    remember(_LITERALS, key, found)
    return found


def renderers(fmt: Format, writes_none: bool = False, traced: bool = False,
              recorded: bool = False) -> list[FileRenderer]:
    return [FileRenderer(fmt, spec, writes_none, traced, recorded) for spec in fmt.files]
