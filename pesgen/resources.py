"""The one place that knows where pesgen's data files live.

Templates and JSON/XML schemas sit at the top of a checkout (``templates/``,
``schemas/``) and inside an installed wheel as package data (``pesgen/_data/``).
Everything else asks this module by logical name.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from .errors import UsageError

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def data_dir(kind: str) -> Path:
    """Folder of the shipped ``templates`` or ``schemas``, from a wheel or a checkout."""
    if kind not in ("templates", "schemas"):
        raise ValueError(kind)
    installed = _PACKAGE_DIR / "_data" / kind
    if installed.is_dir():
        return installed
    checkout = _PACKAGE_DIR.parent / kind
    if checkout.is_dir():
        return checkout
    raise UsageError(f"pesgen data folder '{kind}' not found (broken installation?)")


def installed_data(path: Path) -> bool:
    """Whether ``path`` lies inside the data an installed pesgen carries (a wheel's
    ``pesgen/_data/``: its shipped bundles and schemas), which pesgen must not rewrite.
    A checkout's ``templates/`` is the project's own source, not installed data."""
    return inside(_PACKAGE_DIR / "_data", path)


def inside(folder: Path, path: Path) -> bool:
    """Whether ``path``, with ``..`` and symbolic links resolved, lies inside ``folder``:
    the one test of every place that confines a name to a folder."""
    return Path(folder).resolve() in Path(path).resolve().parents


def schema_path(name: str) -> Path:
    """A shipped schema by its path under ``schemas/`` (e.g. ``mapping.schema.json``)."""
    path = (data_dir("schemas") / name).resolve()
    if not inside(data_dir("schemas"), path):
        raise UsageError(f"schema name escapes the schemas folder: {name}")
    if not path.is_file():
        raise UsageError(f"shipped schema not found: {name}")
    return path


def format_sources(extra: list[Path] | None = None) -> list[tuple[Path, str]]:
    """Folders searched for format bundles, each with where it came from: extra ones
    (``--formats-dir``) first, then $PESGEN_FORMATS_PATH, then the shipped
    ``templates/``. A bundle found earlier hides a later one of the same name, so a
    collectivity can override a shipped format. A folder the user named that is not
    there is a usage error, never skipped: the bundles it was meant to hold would be
    silently replaced by the shipped ones, or reported unknown."""
    dirs: list[tuple[Path, str]] = [(Path(d), "--formats-dir") for d in extra or []]
    env = os.environ.get("PESGEN_FORMATS_PATH")
    if env:
        dirs.extend((Path(p), "PESGEN_FORMATS_PATH") for p in env.split(os.pathsep) if p)
    for folder, source in dirs:
        if not folder.is_dir():
            what = "not a folder" if folder.exists() else "no such folder"
            raise UsageError(f"{source} {folder}: {what} (a folder of format bundles, each "
                             "a folder with its format.yaml)")
    dirs.append((data_dir("templates"), "shipped"))
    return dirs


def format_dirs(extra: list[Path] | None = None) -> list[Path]:
    """The folders of ``format_sources``, in search order."""
    return [folder for folder, _source in format_sources(extra)]
