"""The Jinja environments pesgen uses: sandboxed, strict, filters registered.

* Templates: ``SandboxedEnvironment`` + ``StrictUndefined``; XML autoescape for
  ``.xml.j2``/``.xml`` names (Jinja's default list misses ``.xml.j2``); a loader
  confined to the format bundle's folder.
* Mapping expressions: the same sandbox; a missing key in the *input record* yields
  ``None`` instead of an error, since export rows legitimately omit optional fields.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .filters import FILTERS


def _autoescape(name: str | None) -> bool:
    return bool(name) and (name.endswith(".xml.j2") or name.endswith(".xml"))


def template_environment(folder: Path) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(folder), followlinks=False),
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


def expression_environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=_NoneUndefined, autoescape=False)
    env.filters.update(FILTERS)
    return env


def string_environment() -> SandboxedEnvironment:
    """For small strict string templates written in config (file names)."""
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters.update(FILTERS)
    return env
