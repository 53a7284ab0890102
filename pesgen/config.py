"""Machine-level settings: ``$PESGEN_CONFIG`` or ``$XDG_CONFIG_HOME/pesgen/config.yaml``.

    official_xsd: /srv/dgfip/schemas_pes_v5.17   # like --official-xsd
    db: postgresql://pesgen@dbhost/pesgen          # like --db

Command-line options and environment variables (PESGEN_OFFICIAL_XSD, PESGEN_DB) win
over the file. The file is loaded with pesgen's safe YAML loader.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from ._yaml import load_yaml_file
from .errors import UsageError

KEYS = ("official_xsd", "db")


def config_path() -> Path:
    env = os.environ.get("PESGEN_CONFIG")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "pesgen" / "config.yaml"


@cache
def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data, problems, _ = load_yaml_file(path)
    if problems:
        raise UsageError(f"{path}: {problems[0]}")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the configuration is a YAML mapping (key: value)")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown setting(s) {', '.join(unknown)} "
                         f"(known: {', '.join(KEYS)})")
    return dict(data)


def setting(name: str) -> str | None:
    value = _load(config_path()).get(name)
    return None if value is None else str(value)
