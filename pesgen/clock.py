"""Today's date for a run given no --date: today in the collectivity's time zone
(``collectivity.timezone``, default Europe/Paris), never the machine's local date. A
server in UTC exporting in Paris' first hour after midnight would otherwise date the
rôle the day before (on 1 January, in the previous exercise).

``now`` is the one clock a run's date is read from (the tests set it); the state
store's timestamps are instants in UTC (``store.utc_now``), not dates, and PayFiP's
times are its own (Paris: ``payfip.models``).
"""

from __future__ import annotations

import difflib
from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import UsageError

DEFAULT_TIMEZONE = "Europe/Paris"


def now() -> datetime:
    """The current instant, in UTC."""
    return datetime.now(UTC)


def today_in(zone: str) -> date:
    """Today's date in the IANA time zone ``zone`` (checked when the mapping is loaded:
    ``zone_problem``). No time zone database at all (a slim machine without the tzdata
    package pesgen depends on) is refused, never replaced by the machine's date."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"no time zone database knows {zone}: install the tzdata package "
                         "(a dependency of pesgen: pip install tzdata), or give the run "
                         "date with --date") from None
    return now().astimezone(tz).date()


# a system's zone files that name no IANA zone: the machine's own zone, and the rules
# file of POSIX TZ strings (zoneinfo.available_timezones lists what the system holds)
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@cache
def _iana_names() -> frozenset[str]:
    """The IANA zone names, as the tzdata package lists them (the same list on every
    machine: not a system's own entries such as 'localtime', the machine's zone); where
    that package is not installed (a distribution's pesgen, ``--no-deps``), the zones of
    the system's own database, less those entries."""
    from importlib.resources import files

    try:
        text = files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        from zoneinfo import available_timezones

        return frozenset(available_timezones()) - _NOT_ZONES
    return frozenset(text.split())


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone pesgen can date a run in (None when it is): an
    IANA name, written as the tz database writes it (Europe/Paris, America/Guadeloupe),
    that zoneinfo loads."""
    names = _iana_names()
    if not names:
        return (f"time zone {name!r} cannot be checked: no list of IANA time zones (install "
                "the tzdata package, a dependency of pesgen: pip install tzdata)")
    if name in names:
        try:
            ZoneInfo(name)
            return None
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    close = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.85)
    if not close:  # another case (europe/paris): difflib compares characters as written
        close = [n for n in sorted(names) if n.lower() == name.strip().lower()][:1]
    hint = f" (did you mean {close[0]}?)" if close else ""
    return (f"unknown time zone {name!r}{hint}: give the IANA name of the collectivity's "
            "zone, e.g. Europe/Paris, America/Guadeloupe, America/Martinique, "
            "America/Cayenne, Indian/Reunion, Indian/Mayotte, America/Miquelon")
