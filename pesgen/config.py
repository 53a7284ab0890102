"""Machine-level settings: ``$PESGEN_CONFIG`` or ``$XDG_CONFIG_HOME/pesgen/config.yaml``.

    official_xsd: /srv/dgfip/schemas_pes_v5.17   # like --official-xsd
    db: postgresql://pesgen@dbhost/pesgen          # like --db
    store_lock_timeout: 600                        # seconds, like PESGEN_STORE_LOCK_TIMEOUT

Command-line options and environment variables (PESGEN_OFFICIAL_XSD, PESGEN_DB,
PESGEN_STORE_LOCK_TIMEOUT) win over the file. The file is loaded with pesgen's safe
YAML loader.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from ._yaml import line_of, load_yaml_file
from .errors import MappingError, UsageError

KEYS = ("official_xsd", "db", "store_lock_timeout")

# How long a command waits for the SQLite store's write lock, held by another pesgen
# run (an export holds it from its numbering to its commit: rendering and validating a
# large run takes minutes), before it gives up
STORE_LOCK_TIMEOUT = 600.0
STORE_LOCK_TIMEOUT_MAX = 86_400.0


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
    try:
        data, problems, _ = load_yaml_file(path, "configuration")
    except MappingError as exc:  # the machine's settings, not a mapping: a usage error
        raise UsageError(str(exc), exc.problems) from None
    if problems:
        raise UsageError(f"{path}: {problems[0]}")
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the configuration is a YAML mapping (key: value)")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown setting(s) {', '.join(unknown)} "
                         f"(known: {', '.join(KEYS)})")
    for key, value in data.items():
        # a list or a yes/no value read as text would be a path named "['…']" or "True"
        if isinstance(value, (bool, list, dict)):
            kind = "a yes/no value" if isinstance(value, bool) else \
                "a list" if isinstance(value, list) else "a YAML mapping"
            raise UsageError(f"{path}:{line_of(data, [key])}: {key}: {kind}, not a "
                             f"{'number' if key == 'store_lock_timeout' else 'path'}: give "
                             "one value (key: value)")
    return dict(data)


def setting(name: str) -> str | None:
    value = _load(config_path()).get(name)
    return None if value is None else str(value)


def store_lock_timeout() -> float:
    """Seconds to wait for the store's write lock: PESGEN_STORE_LOCK_TIMEOUT, else the
    file's ``store_lock_timeout``, else 600 (10 minutes). 0 gives up at once."""
    env = os.environ.get("PESGEN_STORE_LOCK_TIMEOUT")
    where, value = ("PESGEN_STORE_LOCK_TIMEOUT", env) if env else (
        f"{config_path()}: store_lock_timeout", setting("store_lock_timeout"))
    if value is None:
        return STORE_LOCK_TIMEOUT
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= STORE_LOCK_TIMEOUT_MAX:  # (NaN too)
        raise UsageError(f"{where} is '{value}': give a number of seconds from 0 to "
                         f"{STORE_LOCK_TIMEOUT_MAX:g} (default {STORE_LOCK_TIMEOUT:g})")
    return seconds
