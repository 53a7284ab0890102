"""The Jinja environments pesgen uses: sandboxed, strict, filters registered.

* Templates: ``SandboxedEnvironment`` + ``StrictUndefined``; XML autoescape for
  ``.xml.j2``/``.xml`` names (Jinja's default list misses ``.xml.j2``); a loader
  confined to the format bundle's folder (symbolic links included).
* Mapping expressions: the same sandbox; a missing key in the *input record* yields
  ``None`` instead of an error, since export rows legitimately omit optional fields.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from . import model
from .filters import FILTERS
from .resources import inside

# The canonical model's classes are frozen plain data: reading their public fields
# needs none of the sandbox's per-access checks (the hot path of rendering).
_DATA_TYPES = frozenset({
    model.Collectivity, model.Address, model.BankAccount, model.Mandate, model.Debtor,
    model.Line, model.Title, model.Bordereau, model.Emitter, model.Document,
})


# {class: its public fields and properties}: one set lookup per attribute read
_PUBLIC: dict[type, frozenset[str]] = {
    cls: frozenset(name for name in dir(cls) if not name.startswith("_")
                   and (name in getattr(cls, "__dataclass_fields__", {})
                        or isinstance(getattr(cls, name, None), property)))
    for cls in _DATA_TYPES}


# No value a template or an expression makes needs to be larger than this: '*' and '**'
# are checked before they run ('a' * 10**9 or 10**10**7 would stall the export).
MAX_OPERAND_SIZE = 100_000


class _Bounded(SandboxedEnvironment):
    """A sandbox whose repetition and power operators are bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: object,
                   right: object) -> object:
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and \
                right > 0 and left.bit_length() * right > MAX_OPERAND_SIZE:
            raise jinja2.sandbox.SecurityError(f"a power of about {left.bit_length() * right} "
                                               f"bits refused (at most {MAX_OPERAND_SIZE})")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and \
                        len(seq) * count > MAX_OPERAND_SIZE:
                    raise jinja2.sandbox.SecurityError(
                        f"repetition to {len(seq) * count} items refused (at most "
                        f"{MAX_OPERAND_SIZE})")
        return super().call_binop(context, operator, left, right)


class _Sandbox(_Bounded):
    def getattr(self, obj: object, attribute: str) -> object:
        public = _PUBLIC.get(type(obj))
        if public is not None and attribute in public:
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)


def _autoescape(name: str | None) -> bool:
    return bool(name) and (name.endswith(".xml.j2") or name.endswith(".xml"))


class _ConfinedLoader(jinja2.FileSystemLoader):
    """A bundle's templates, and nothing else: Jinja's loader refuses ``..`` and absolute
    names, but it opens a symbolic link wherever it points. A template whose real path
    is outside the bundle's folder is not found."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder), followlinks=False)
        self.folder = folder

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not inside(self.folder, Path(filename)):
            raise jinja2.TemplateNotFound(
                f"{template} (a link to a file outside the format bundle's folder)")
        return source, filename, uptodate


def template_environment(folder: Path) -> SandboxedEnvironment:
    env = _Sandbox(
        loader=_ConfinedLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=50,
    )
    env.filters.update(FILTERS)
    return env


class _NoneUndefined(jinja2.ChainableUndefined):
    """Missing record keys chain to nothing; the binding then yields None."""


class _RecordSandbox(_Bounded):
    """Input records are plain dicts from JSON or CSV: ``invoice.payer`` reads a key.
    Reading a present key is safe; anything else takes the sandbox's checks. A JSON
    ``null`` reads as a missing key: undefined, so ``a ~ " " ~ b`` never spells "None"
    and ``| default(...)`` applies to it."""

    def getattr(self, obj: object, attribute: str) -> object:
        if type(obj) is dict and attribute in obj:
            value = obj[attribute]
            return self.undefined(obj=obj, name=attribute) if value is None else value
        return super().getattr(obj, attribute)

    def getitem(self, obj: object, argument: object) -> object:
        if type(obj) is dict and type(argument) is str and argument in obj:
            value = obj[argument]
            return self.undefined(obj=obj, name=argument) if value is None else value
        return super().getitem(obj, argument)


def expression_environment() -> SandboxedEnvironment:
    env = _RecordSandbox(undefined=_NoneUndefined, autoescape=False)
    env.filters.update(FILTERS)
    return env


def string_environment() -> SandboxedEnvironment:
    """For small strict string templates written in config (file names)."""
    env = _Bounded(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters.update(FILTERS)
    return env
