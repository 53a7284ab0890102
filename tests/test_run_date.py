"""The run date without --date: today in the collectivity's time zone
(collectivity.timezone, default Europe/Paris), read from pesgen's one clock
(``pesgen.clock.now``), never the machine's local date.

The tests never take today's date by accident: every test runs with "now" far in the
future (conftest's ``_far_future_today``), where the example's exercise (2026) is closed
(collectivity.exercise) and its debits (2026-12-05) would be refused by sepa.debit-date,
so a test exporting or previewing the example without --date/run_date fails now rather
than once the calendar passes 2026-12-05. These tests check that the guard is in place
and moves the clock the code reads."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pesgen.errors import ExitCode, MappingError
from pesgen.export import export
from pesgen.mapping import load_mapping
from pesgen.preview import preview

from .conftest import CLOCK_MODULE, EXAMPLES, FAR_FUTURE, MAPPINGS, ROOT, run_cli, set_clock
from .mapping_support import mapping_copy

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
# 23:30 in UTC on 31 December: already 1 January in Paris (UTC+1), still 31 December in
# Guadeloupe (UTC-4)
NEW_YEAR_S_EVE = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
EXERCISE_LINE = "  exercise: 2026\n"


def test_an_undated_export_of_the_example_is_dated_far_in_the_future_and_refused(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(MappingError) as exc:
        export(MAPPING, INPUT, out)
    assert [p.rule for p in exc.value.problems] == ["collectivity.exercise"]
    assert f"exercise 2026 is closed on {FAR_FUTURE.isoformat()}" in str(exc.value)
    assert not out.exists()


def test_an_undated_preview_and_cli_export_of_the_example_are_refused(tmp_path):
    with pytest.raises(MappingError) as exc:
        preview(MAPPING, INPUT, limit=1)
    assert [p.rule for p in exc.value.problems] == ["collectivity.exercise"]
    r = run_cli("export", "-m", MAPPING, "-i", INPUT, "-o", tmp_path / "out")
    assert r.exit_code == ExitCode.MAPPING and "(rule collectivity.exercise)" in r.stderr, \
        r.output


# modules that read the clock for something other than a run's date: the state store's
# timestamps are instants in UTC; the fake PayFiP server is PayFiP's own clock (Paris)
NOT_A_RUN_DATE = {"pesgen.store", "pesgen.payfip.fake"}


def test_only_the_clock_module_reads_today():
    """A new ``date.today()`` or ``datetime.now()`` elsewhere in pesgen would date a run
    on the machine's clock, and escape the guard: read ``pesgen.clock`` instead."""
    reading = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "pesgen").rglob("*.py")
        if re.search(r"\b(date|datetime)\.(today|now|utcnow)\(|\btime\.(time|localtime)\(",
                     path.read_text(encoding="utf-8")))
    assert reading == sorted({CLOCK_MODULE, *NOT_A_RUN_DATE})


# ------------------------------------------------- today in the collectivity's zone


def _with_zone(folder: Path, zone: str | None, exercise: int = 2026) -> Path:
    """The example's mapping copied into ``folder``, with ``collectivity.timezone: zone``
    (None: without the key) and ``exercise``."""
    line = f"  exercise: {exercise}\n"
    if zone is not None:
        line += f'  timezone: "{zone}"\n'
    return mapping_copy(folder, MAPPING, (EXERCISE_LINE, line), name="mapping.yaml")[0]


def _zone_line(mapping: Path) -> int:
    lines = mapping.read_text(encoding="utf-8").splitlines()
    return next(i for i, ln in enumerate(lines, 1) if ln.startswith("  timezone:"))


def _january_debits(tmp_path: Path) -> Path:
    """The example export with its direct debits on 2027-01-15 (a Friday), so that a run
    dated on the first of January does not refuse them (sepa.debit-date)."""
    text = INPUT.read_text(encoding="utf-8")
    assert '"debit_date": "2026-12-05"' in text
    path = tmp_path / "january.json"
    path.write_text(text.replace('"debit_date": "2026-12-05"', '"debit_date": "2027-01-15"'),
                    encoding="utf-8")
    return path


def _dte_bord_em(out: Path) -> str:
    [xml] = out.glob("*.xml")
    return re.search(rb'<DteBordEm V="([0-9-]+)"', xml.read_bytes()).group(1).decode()


@pytest.mark.parametrize("zone, expected", [
    (None, "2027-01-01"),  # the default: Europe/Paris
    ("Europe/Paris", "2027-01-01"),
    ("America/Guadeloupe", "2026-12-31"),
    ("Indian/Reunion", "2027-01-01"),
])
def test_an_undated_export_is_dated_today_in_the_collectivity_s_time_zone(
        tmp_path, monkeypatch, zone, expected):
    """At 23:30 UTC on 31 December, a server in UTC dated the rôle 2026-12-31 (the
    machine's date): in Paris it is 1 January already."""
    set_clock(monkeypatch, NEW_YEAR_S_EVE)
    mapping = _with_zone(tmp_path, zone)
    result = export(mapping, _january_debits(tmp_path), tmp_path / "out")
    assert result.run_date == date.fromisoformat(expected)
    assert _dte_bord_em(tmp_path / "out") == expected
    notes = [n.detail for n in result.notes if n.policy == "run_date"]
    assert notes == [f"run date {expected} (today in {zone or 'Europe/Paris'}, "
                     + (f"{mapping}:{_zone_line(mapping)}: collectivity.timezone"
                        if zone else "the default of collectivity.timezone")
                     + "): no --date given"]
    # 1 January in Paris: the rôle of exercise 2026 is last year's (journée complémentaire)
    assert any(n.policy == "exercise" for n in result.notes) == (expected == "2027-01-01")


def test_an_undated_preview_is_dated_today_in_the_collectivity_s_time_zone(tmp_path,
                                                                           monkeypatch):
    set_clock(monkeypatch, NEW_YEAR_S_EVE)
    guadeloupe = _with_zone(tmp_path, "America/Guadeloupe")
    shown = preview(guadeloupe, _january_debits(tmp_path), limit=1)
    [head] = [h for name, h in shown.heads.items() if name.endswith(".xml")]
    assert '<DteBordEm V="2026-12-31"/>' in head
    assert [n.detail.split(" (")[0] for n in shown.notes if n.policy == "run_date"] == \
        ["run date 2026-12-31"]
    # exercise 2027 is not open yet on 31 December in Guadeloupe; it is in Paris
    with pytest.raises(MappingError) as exc:
        preview(_with_zone(tmp_path / "g27", "America/Guadeloupe", 2027),
                _january_debits(tmp_path), limit=1)
    assert "exercise 2027 is not open on 2026-12-31" in str(exc.value)
    shown = preview(_with_zone(tmp_path / "p27", None, 2027), _january_debits(tmp_path),
                    limit=1)
    assert [n.detail.split(" (")[0] for n in shown.notes if n.policy == "run_date"] == \
        ["run date 2027-01-01"]


def test_the_summary_says_the_run_date_it_took_and_from_where(tmp_path, monkeypatch):
    set_clock(monkeypatch, NEW_YEAR_S_EVE)
    january = _january_debits(tmp_path)
    guadeloupe = _with_zone(tmp_path, "America/Guadeloupe")
    said = (f"  - *: run_date: run date 2026-12-31 (today in America/Guadeloupe, "
            f"{guadeloupe}:{_zone_line(guadeloupe)}: collectivity.timezone): no --date given\n")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    dry = run_cli("export", "-m", guadeloupe, "-i", january, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert said in dry.stdout and "run_date ×1" in dry.stdout
    done = run_cli("export", "-m", guadeloupe, "-i", january, "-o", tmp_path / "out",
                   "--db", db, "--create-store")
    assert done.exit_code == 0, done.output
    assert said in done.stdout
    assert _dte_bord_em(tmp_path / "out") == "2026-12-31"
    # the default zone
    paris = run_cli("export", "-m", MAPPING, "-i", january, "--dry-run")
    assert paris.exit_code == 0, paris.output
    assert "  - *: run_date: run date 2027-01-01 (today in Europe/Paris, the default of " \
        "collectivity.timezone): no --date given\n" in paris.stdout
    shown = run_cli("preview", "-m", guadeloupe, "-i", january, "-n", "1")
    assert shown.exit_code == 0, shown.output
    assert "policy run_date (run): run date 2026-12-31 (today in America/Guadeloupe" \
        in shown.stdout


def test_a_dated_run_says_nothing_of_its_date(tmp_path, monkeypatch):
    """With --date, the summary is as before: no run_date note."""
    set_clock(monkeypatch, NEW_YEAR_S_EVE)
    r = run_cli("export", "-m", _with_zone(tmp_path, "America/Guadeloupe"), "-i", INPUT,
                "--dry-run", "--date", "2026-11-23")
    assert r.exit_code == 0, r.output
    assert "run_date" not in r.stdout and "2026-12-31" not in r.stdout


@pytest.mark.parametrize("zone, hint", [
    ("Europe/Pari", " (did you mean Europe/Paris?)"),
    ("europe/paris", " (did you mean Europe/Paris?)"),  # refused alike on every system
    ("America", ""),  # a folder of the database, not a zone
    ("localtime", ""),  # the machine's zone, the one pesgen does not date by
    ("../../etc/passwd", ""),
    ("", ""),
])
def test_a_time_zone_zoneinfo_does_not_know_is_refused_at_its_line(tmp_path, zone, hint):
    mapping = _with_zone(tmp_path, zone)
    where = f"{mapping}:{_zone_line(mapping)}: collectivity.timezone"
    with pytest.raises(MappingError) as exc:
        load_mapping(mapping)
    [problem] = exc.value.problems
    assert (problem.rule, problem.mapping) == ("collectivity.timezone", where)
    assert problem.message.startswith(f"unknown time zone {zone!r}{hint}: give the IANA "
                                      "name of the collectivity's zone, e.g. Europe/Paris")
    checked = run_cli("check-mapping", mapping)
    assert checked.exit_code == ExitCode.MAPPING, checked.output
    assert where in checked.stderr and "(rule collectivity.timezone)" in checked.stderr
    # refused by an export too, even one given its date
    r = run_cli("export", "-m", mapping, "-i", INPUT, "--dry-run", "--date", "2026-11-23")
    assert r.exit_code == ExitCode.MAPPING and where in r.stderr, r.output


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Guadeloupe", "America/Martinique",
                                  "America/Cayenne", "Indian/Reunion", "Indian/Mayotte",
                                  "America/Miquelon", "Pacific/Noumea", "UTC"])
def test_the_collectivities_time_zones_are_taken(tmp_path, zone):
    mapping = _with_zone(tmp_path, zone)
    assert load_mapping(mapping).zone == zone
    r = run_cli("check-mapping", mapping)
    assert r.exit_code == 0, r.output


def test_without_a_time_zone_database_an_undated_run_is_refused(tmp_path, monkeypatch):
    """Never the machine's date instead: a usage error that says what to do."""
    from zoneinfo import ZoneInfoNotFoundError

    import pesgen.clock

    def no_database(key):
        raise ZoneInfoNotFoundError(f"No time zone found with key {key}")

    monkeypatch.setattr(pesgen.clock, "ZoneInfo", no_database)
    r = run_cli("export", "-m", MAPPING, "-i", INPUT, "--dry-run")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "no time zone database knows Europe/Paris: install the tzdata package" in r.stderr
    dated = run_cli("export", "-m", MAPPING, "-i", INPUT, "--dry-run", "--date",
                    "2026-11-23")
    assert dated.exit_code == 0, dated.output


def test_without_the_list_of_time_zones_a_mapping_naming_one_is_refused(tmp_path,
                                                                         monkeypatch):
    """tzdata missing (installed without its dependencies): said, not guessed."""
    import pesgen.clock

    monkeypatch.setattr(pesgen.clock, "_iana_names", lambda: frozenset())
    mapping = _with_zone(tmp_path, "Europe/Paris")
    with pytest.raises(MappingError) as exc:
        load_mapping(mapping)
    [problem] = exc.value.problems
    assert problem.rule == "collectivity.timezone"
    assert problem.message == ("time zone 'Europe/Paris' cannot be checked: no list of IANA "
                               "time zones (install the tzdata package, a dependency of "
                               "pesgen: pip install tzdata)")
    assert load_mapping(MAPPING).zone == "Europe/Paris"  # the default needs no list


def test_without_the_tzdata_package_the_system_s_zones_are_the_list(tmp_path, monkeypatch):
    """pesgen installed without its dependencies on a system holding its own time zone
    database: a mapping naming Europe/Paris is checked against the system's zones (the
    run is dated with them anyway), not refused; the machine's 'localtime' is still no
    zone."""
    import importlib.resources
    import zoneinfo

    import pesgen.clock

    real_files = importlib.resources.files

    def files(package):
        if package == "tzdata":
            raise ModuleNotFoundError("No module named 'tzdata'")
        return real_files(package)

    monkeypatch.setattr(importlib.resources, "files", files)
    monkeypatch.setattr(zoneinfo, "available_timezones",
                        lambda: {"Europe/Paris", "America/Guadeloupe", "localtime"})
    pesgen.clock._iana_names.cache_clear()
    try:
        assert load_mapping(_with_zone(tmp_path, "Europe/Paris")).zone == "Europe/Paris"
        with pytest.raises(MappingError) as exc:
            load_mapping(_with_zone(tmp_path, "localtime"))
        assert exc.value.problems[0].rule == "collectivity.timezone"
    finally:
        pesgen.clock._iana_names.cache_clear()


def test_tzdata_is_a_dependency():
    """zoneinfo needs a time zone database: a fresh Windows machine or a slim container
    has none, and the tzdata package is it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(re.match(r"tzdata\b", dep) for dep in project["dependencies"])


def test_a_recorded_run_whose_time_zone_this_machine_does_not_know_is_rebuilt(tmp_path,
                                                                              monkeypatch):
    """The zone dates a run given no --date; a recorded run keeps its recorded date, so
    a zone unknown where it is rebuilt (an older time zone database: Europe/Kyiv came
    in 2022) changes nothing of its files: rebuilt, with a warning."""
    import pesgen.clock

    mapping = _with_zone(tmp_path, "America/Guadeloupe")
    out = tmp_path / "out"
    first = run_cli("export", "-m", mapping, "-i", INPUT, "-o", out, "--date", "2026-11-23")
    assert first.exit_code == 0, first.output
    run_id = first.stdout.split(", run ", 1)[1].split()[0]
    monkeypatch.setattr(pesgen.clock, "_iana_names", lambda: frozenset({"Europe/Paris"}))
    r = run_cli("regenerate", run_id, "--out", tmp_path / "regen")
    assert r.exit_code == 0, r.output
    assert sorted(p.read_bytes() for p in (tmp_path / "regen").iterdir()) == \
        sorted(p.read_bytes() for p in out.iterdir())
    where = f"{mapping}:{_zone_line(mapping)}: collectivity.timezone"
    assert f"[mapping {where}] (rule collectivity.timezone)" in r.stderr, r.stderr
    assert "not refused: it changes nothing of what is rendered" in r.stderr
    again = run_cli("export", "-m", mapping, "-i", INPUT, "-o", tmp_path / "again", "--date",
                    "2026-11-23")
    assert again.exit_code == ExitCode.MAPPING and where in again.stderr, again.output


def test_the_scaffold_shows_the_time_zone_key(tmp_path):
    """An overseas collectivity's new mapping shows where its zone goes: the line,
    uncommented, is taken."""
    from .test_onboarding_kit import FILL

    out = tmp_path / "m.yaml"
    assert run_cli("new-mapping", "Commune X", "--format", "pes-ormc", "--out",
                   out).exit_code == 0
    mapping_copy(out.parent, out, *FILL.items(),
                 ("\n  # timezone: Europe/Paris ", "\n  timezone: America/Guadeloupe "))
    assert load_mapping(out).zone == "America/Guadeloupe"
