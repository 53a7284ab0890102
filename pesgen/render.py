"""Render canonical objects with a format bundle's templates (sandboxed Jinja).

A template defines three macros: ``head(doc)``, ``piece(t, doc)`` and ``tail(doc)``.
pesgen renders the pieces as the titles stream by, and the head and tail once the
bordereau's totals are known, so memory does not grow with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jinja2

from ._jinja import string_environment, template_environment
from ._tplline import locate, unclosed_tag
from .errors import Problem, TemplateError, exception_message
from .formats import FileSpec, Format
from .model import Document, Title

_MACROS = ("head", "piece", "tail")


def template_error(exc: BaseException, bundle: str, name: str, context: str,
                   env: jinja2.Environment | None = None) -> TemplateError:
    """``exc``, raised by template ``name`` of format ``bundle`` (or by a template it
    imports), as pesgen's error naming the template file and line; ``env``, the
    environment that compiled it, tells a syntax error's tag left open."""
    place = locate(exc, name)
    where = f"{bundle}/{place.template}:{place.line}" if place else f"{bundle}/{name}"
    message = getattr(exc, "message", None) or exception_message(exc)
    # a tag spanning lines whose faulty line could not be told: the line named is the
    # one it starts on, and the message says so
    note = place.note if place is not None else ""
    if isinstance(exc, jinja2.TemplateSyntaxError):  # the line Jinja lexed
        hint = unclosed_tag(exc, env) if env is not None else ""
        message = f"{message} ({hint})" if hint else message
        return TemplateError(f"template {where}: syntax error: {message}",
                             [Problem("template.syntax", message or "syntax error",
                                      mapping=where)])
    context = f"{note}; {context}" if note else context
    detail = f"{message} ({note})" if note else message
    return TemplateError(f"template {where}: {message} ({context})",
                         [Problem("template", f"{type(exc).__name__}: {detail}", mapping=where)])


class FileRenderer:
    """The three macros of one output file's template."""

    def __init__(self, fmt: Format, spec: FileSpec) -> None:
        self.fmt = fmt
        self.spec = spec
        self._env = env = template_environment(fmt.folder)
        self.name = f"{fmt.name}/{spec.template}"
        try:
            template = env.get_template(spec.template)  # escaping memoised (_Template)
            module = template.make_module()
        except jinja2.TemplateError as exc:
            raise template_error(exc, fmt.name, spec.template, "loading", env) from None
        missing = [m for m in _MACROS if not callable(getattr(module, m, None))]
        if missing:
            raise TemplateError(f"template {self.name} must define the macro(s) "
                                f"{', '.join(missing)}: head(doc), piece(t, doc), tail(doc)")
        self._head: Callable[..., Any] = module.head
        self._piece: Callable[..., Any] = module.piece
        self._tail: Callable[..., Any] = module.tail
        try:
            self._name = string_environment().from_string(spec.name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{fmt.folder}/format.yaml: file name template: {exc.message}"
                                ) from None

    def file_name(self, doc: Document) -> str:
        try:
            name = self._name.render(doc=doc).strip()
        except Exception as exc:
            raise TemplateError(f"{self.fmt.name}: file name template failed: "
                                f"{exception_message(exc)}") from None
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise TemplateError(f"{self.fmt.name}: file name '{name}' is not a plain file name")
        return name

    def head(self, doc: Document) -> str:
        return self._call(self._head, "head", doc)

    def piece(self, title: Title, doc: Document) -> str:
        try:
            return self._call(self._piece, f"piece of invoice {title.invoice_number}", title,
                              doc)
        except TemplateError as exc:  # name the invoice's record too: the data may be why
            exc.problems = [replace(p, record=title.origin, invoice=title.invoice_number)
                            for p in exc.problems]
            raise

    def tail(self, doc: Document) -> str:
        return self._call(self._tail, "tail", doc)

    def _call(self, macro: Callable[..., Any], what: str, *args: Any) -> str:
        try:
            return str(macro(*args))
        except jinja2.TemplateError as exc:
            raise template_error(exc, self.fmt.name, self.spec.template, what,
                                 self._env) from None
        except (ValueError, TypeError, AttributeError, KeyError, ArithmeticError) as exc:
            raise template_error(exc, self.fmt.name, self.spec.template, what) from None


def renderers(fmt: Format) -> list[FileRenderer]:
    return [FileRenderer(fmt, spec) for spec in fmt.files]
