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
import sys
from functools import cache
from pathlib import Path
from typing import Any

from ._display import masked_url
from ._yaml import line_of, load_yaml_file
from .errors import MappingError, UsageError

KEYS = ("official_xsd", "db", "store_lock_timeout")

# How long a command waits for the SQLite store's write lock, held by another pesgen
# run (an export holds it from its numbering to its commit: rendering and validating a
# large run takes minutes), or on PostgreSQL an export for its numbering sequence's row,
# held by another export as long, before it gives up
STORE_LOCK_TIMEOUT = 600.0
STORE_LOCK_TIMEOUT_MAX = 86_400.0


def user_folder(variable: str, under_home: str, what: str, instead: str) -> Path:
    """``$variable`` (XDG_CONFIG_HOME, XDG_DATA_HOME), else ``under_home`` in the home
    folder: where ``what`` (the configuration file, the default state store) lives. A
    relative one would be another file in each working directory (a new store, its
    numbering starting again at IdBord 1), and no home folder (no HOME, a user the
    system does not know) is no place: either is a usage error naming what to set
    (``instead``: what names the file itself)."""
    value = os.environ.get(variable)
    if value:
        if not Path(value).is_absolute():
            raise UsageError(f"{variable} is '{value}', a relative path: {what} would be "
                             "another file in each working directory; set it to an "
                             f"absolute folder, or {instead}")
        return Path(value)
    home = os.environ.get("HOME")
    if home is not None and not Path(home).is_absolute():  # '' too (Python reads '/')
        said = f"HOME is '{home}', not an absolute path"
    else:
        try:
            return Path.home() / under_home
        except RuntimeError:  # no HOME, and the user has no entry in the system's database
            said = "HOME is not set, and the system knows no home folder for this user"
    raise UsageError(f"no home folder for {what} ({said}): set HOME or {variable} to an "
                     f"absolute folder, or {instead}")


def config_path() -> Path:
    env = os.environ.get("PESGEN_CONFIG")
    if env:
        return Path(env).expanduser()
    return user_folder("XDG_CONFIG_HOME", ".config", "the configuration file",
                       "name the file with PESGEN_CONFIG") / "pesgen" / "config.yaml"


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
        if key != "store_lock_timeout" and isinstance(value, str):
            try:
                os.fsencode(value)
            except UnicodeEncodeError:  # an accent when Python names files in ASCII
                raise UsageError(
                    f"{path}:{line_of(data, [key])}: {key}: {_unnamable(value)}, which this "
                    f"locale's encoding ({sys.getfilesystemencoding()}) cannot give a "
                    "file's name in: run pesgen in a UTF-8 locale (LANG=C.UTF-8, or "
                    "PYTHONUTF8=1)") from None
    return dict(data)


def _unnamable(value: str) -> str:
    """What a message says of a setting no file can be named in: the value, a store's
    URL with its password masked, and the characters refused (one in what is masked
    is not shown)."""
    shown = masked_url(value)
    try:
        os.fsencode(shown)
    except UnicodeEncodeError as exc:
        return f"'{shown}' holds '{shown[exc.start:exc.end]}'"
    return f"'{shown}' holds a character of what is masked there"


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
