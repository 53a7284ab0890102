"""Render canonical objects with a format bundle's templates (sandboxed Jinja).

A template defines three macros: ``head(doc)``, ``piece(t, doc)`` and ``tail(doc)``.
pesgen renders the pieces as the titles stream by, and the head and tail once the
bordereau's totals are known, so memory does not grow with the run.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jinja2

from ._jinja import memoise_escaping, string_environment, template_environment
from .errors import Problem, TemplateError
from .formats import FileSpec, Format
from .model import Document, Title

_MACROS = ("head", "piece", "tail")


def _template_line(exc: BaseException, name: str) -> int | None:
    line = getattr(exc, "lineno", None)
    if line:
        return int(line)
    # Macros called from Python skip Jinja's traceback rewriting: the frames carry the
    # line of the *generated* code, which the template's debug info maps back.
    found = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        template = frame.f_globals.get("__jinja_template__")
        filename = getattr(template, "filename", None) or ""
        if template is not None and filename.replace("\\", "/").endswith(name):
            found = template.get_corresponding_lineno(lineno)
    return found


def template_error(exc: BaseException, name: str, context: str,
                   shown: str | None = None) -> TemplateError:
    line = _template_line(exc, name)
    shown = shown or name
    where = f"{shown}:{line}" if line else shown
    message = getattr(exc, "message", None) or str(exc)
    return TemplateError(f"template {where}: {message} ({context})",
                         [Problem("template", f"{type(exc).__name__}: {message}", mapping=where)])


class FileRenderer:
    """The three macros of one output file's template."""

    def __init__(self, fmt: Format, spec: FileSpec) -> None:
        self.fmt = fmt
        self.spec = spec
        env = template_environment(fmt.folder)
        self.name = f"{fmt.name}/{spec.template}"
        try:
            template = env.get_template(spec.template)
            memoise_escaping(template)
            module = template.make_module()
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"template {self.name}:{exc.lineno}: syntax error: {exc.message}",
                [Problem("template.syntax", exc.message or "syntax error",
                         mapping=f"{self.name}:{exc.lineno}")]) from None
        except jinja2.TemplateError as exc:
            raise template_error(exc, spec.template, "loading", self.name) from None
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
            raise TemplateError(f"{self.fmt.name}: file name template failed: {exc}") from None
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
            raise template_error(exc, self.spec.template, what, self.name) from None
        except (ValueError, TypeError, AttributeError, KeyError, ArithmeticError) as exc:
            raise template_error(exc, self.spec.template, what, self.name) from None


def renderers(fmt: Format) -> list[FileRenderer]:
    return [FileRenderer(fmt, spec) for spec in fmt.files]
