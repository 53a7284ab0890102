"""A collectivity with two budgets, and the change of exercise (a reviewer's December
run through both): the budgets' files get names of their own, a duplicate held by
another budget's or exercise's run is never answered "cancel that run", support sees
each run's budget and exercise, a debit on a TARGET2 holiday is noted like one on a
weekend, and a --date the calendar does not have is said so."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from pesgen.checks import target2_closed
from pesgen.errors import ExitCode

from .collectivity_support import renumbered
from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli
from .mapping_support import mapping_copy
from .test_audit_rules import _input

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
NAME_00 = "PESORMC_21450999400015_2026_0000001.xml"
NAME_01 = "PESORMC_21450999400015_B01_2026_0000001.xml"


def _mapping(tmp_path: Path, cod_bud: str = "00", exercise: int = 2026,
             titres: bool = False, split: bool = False) -> Path:
    """The example mapping with another budget or exercise (``split``: in bordereaux of
    4 titles)."""
    source = MAPPINGS / ("villeneuve-sur-loing-titres.yaml" if titres
                         else "villeneuve-sur-loing.yaml")
    edits = [('cod_bud: "00"', f'cod_bud: "{cod_bud}"'),
             ("  exercise: 2026\n", f"  exercise: {exercise}\n")]
    if split:
        edits.append(("  asap_delay_days: 0\n",
                      "  asap_delay_days: 0\n  max_pieces_per_bordereau: 4\n"))
    return mapping_copy(tmp_path, source, *edits,
                        name=f"m-{cod_bud}-{exercise}-{split}-{source.name}")[0]


@pytest.fixture
def mappings(tmp_path):
    return lambda **kw: _mapping(tmp_path, **kw)


def _export(mapping: Path, input_path: Path, out: Path | None, *extra: str,
            date_: str = RUN_DATE):
    args = ["export", "-m", mapping, "-i", input_path, "--date", date_, *extra]
    if out is not None:
        args += ["-o", out]
    return run_cli(*args)


# ------------------------------------------------------------------ file names


@pytest.mark.parametrize("titres", [False, True])
def test_two_budgets_files_have_names_of_their_own_in_one_folder(tmp_path, mappings,
                                                                 titres):
    """IdBord runs per budget: both budgets' first rôle is IdBord 1, and a name of
    SIRET, exercise and IdBord alone was the same for both (the second export into
    the same folder was refused, and NomFic was the same)."""
    out = tmp_path / "out"
    first = _export(mappings(titres=titres), _input(tmp_path), out)
    assert first.exit_code == 0, first.output
    second = _export(mappings(cod_bud="01", titres=titres),
                     _input(tmp_path, renumbered("CO-"), "b01.json"), out)
    assert second.exit_code == 0, second.output
    prefix = "PESALR1" if titres else "PESORMC"
    names = sorted(p.name for p in out.iterdir() if p.suffix == ".xml")
    assert names == [NAME_00.replace("PESORMC", prefix), NAME_01.replace("PESORMC", prefix)]
    for name in names:
        text = (out / name).read_text("iso-8859-1")
        assert f'<NomFic V="{name}"/>' in text  # NomFic is the file's name


# ------------------------------------------------------------------ duplicates


@pytest.mark.parametrize("split", [False, True])
def test_a_duplicate_held_by_another_budget_never_advises_cancelling_that_run(
        tmp_path, mappings, split):
    """Nor one of its bordereaux, when that run has several."""
    data = _input(tmp_path)
    first = _export(mappings(split=split), data, tmp_path / "a")
    assert first.exit_code == 0, first.output
    r = _export(mappings(cod_bud="01", split=split), data, tmp_path / "b")
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"in {NAME_00} (IdBord 1, budget 00, exercise 2026)" in r.output
    assert "that run is of another budget" in r.output
    assert "bindings.invoice.number" in r.output
    assert "cancel that run first" not in r.output
    assert "pesgen runs cancel" not in r.output
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_duplicate_held_by_another_exercise_says_so(tmp_path, mappings):
    assert _export(mappings(), _input(tmp_path), tmp_path / "a").exit_code == 0

    def january(invoices):
        for inv in invoices:
            if inv.get("payment", {}).get("method") == "direct_debit":
                inv["payment"]["debit_date"] = "2027-01-15"
    r = _export(mappings(exercise=2027), _input(tmp_path, january, "jan.json"),
                tmp_path / "b", date_="2027-01-04")
    assert r.exit_code == ExitCode.STATE, r.output
    assert "(IdBord 1, budget 00, exercise 2026)" in r.output
    assert "that run is of another exercise" in r.output
    assert "cancel that run first" not in r.output


def test_a_duplicate_of_the_same_budget_and_exercise_keeps_its_advice(tmp_path):
    assert _export(MAPPING, _input(tmp_path), tmp_path / "a").exit_code == 0
    # another file holding the same invoices (the same file is said exported already)
    r = _export(MAPPING, _input(tmp_path, lambda invoices: invoices.reverse(), "again.json"),
                tmp_path / "b")
    assert r.exit_code == ExitCode.STATE, r.output
    assert "cancel that run first to export it again" in r.output
    assert "budget 00, exercise" not in r.output  # the same scope: not named


def test_partial_duplicates_are_listed_in_the_input_s_order(tmp_path):
    data = json.loads(INPUT.read_text(encoding="utf-8"))
    sent = {**data, "invoices": data["invoices"][:3]}
    first = tmp_path / "first.json"
    first.write_text(json.dumps(sent, ensure_ascii=False), encoding="utf-8")
    assert _export(MAPPING, first, tmp_path / "a").exit_code == 0
    # the held invoices come in the input in another order than their numbers'
    again = {**data, "invoices": [data["invoices"][2], data["invoices"][0],
                                  *data["invoices"][3:], data["invoices"][1]]}
    second = tmp_path / "second.json"
    second.write_text(json.dumps(again, ensure_ascii=False), encoding="utf-8")
    r = _export(MAPPING, second, tmp_path / "b")
    assert r.exit_code == ExitCode.STATE, r.output
    listed = [line for line in r.output.splitlines() if "(rule run.duplicate)" in line]
    held = [data["invoices"][i]["number"] for i in (2, 0, 1)]
    assert [next(n for n in held if n in line) for line in listed] == held


# ------------------------------------------------------------------ support output


def test_runs_list_and_find_name_each_run_s_budget_and_exercise(tmp_path, mappings):
    assert _export(mappings(), _input(tmp_path), tmp_path / "a").exit_code == 0
    assert _export(mappings(cod_bud="01"), _input(tmp_path, renumbered("CO-"), "b.json"),
                   tmp_path / "b").exit_code == 0
    listed = run_cli("runs", "list")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if "pes-ormc" in line]
    assert len(lines) == 2
    assert "budget 00  exer 2026" in lines[0] and "budget 01  exer 2026" in lines[1]
    found = run_cli("runs", "find", "CO-2026-50101")
    assert found.exit_code == 0, found.output
    assert f"{NAME_01}  SIRET 21450999400015 budget 01 exer 2026  IdBord 1" in found.stdout


# ------------------------------------------------------------------ TARGET2 holidays


@pytest.mark.parametrize("day, why", [
    ("2027-01-01", "New Year's Day"), ("2026-04-03", "Good Friday"),
    ("2026-04-06", "Easter Monday"), ("2027-03-26", "Good Friday"),
    ("2027-03-29", "Easter Monday"), ("2028-04-14", "Good Friday"),
    ("2026-05-01", "1 May"), ("2026-12-25", "Christmas Day"), ("2028-12-26", "26 December"),
    ("2026-12-05", "Saturday"), ("2026-12-06", "Sunday"),
    ("2026-12-28", None), ("2026-04-07", None), ("2027-03-25", None), ("2026-12-24", None),
])
def test_target2_closing_days(day, why):
    assert target2_closed(date.fromisoformat(day)) == why


# Easter Sundays (Gregorian): the years around now, the earliest (22 March, 2285) and
# latest (25 April, 2038) possible, the computus's exceptions (2049, 2076, 2106: 18 or 19
# April where the plain rule gives a week later), the next century (2100, 2116), and every
# other Easter on 22 March (1598, 1693, 1761, 1818) or 25 April (1666, 1734, 1886, 1943)
# of the Gregorian calendar: the computus's century terms show there
@pytest.mark.parametrize("sunday", [
    "1598-03-22", "1693-03-22", "1761-03-22", "1818-03-22",
    "1666-04-25", "1734-04-25", "1886-04-25", "1943-04-25",
    "2008-03-23", "2011-04-24", "2019-04-21", "2020-04-12", "2021-04-04", "2022-04-17",
    "2023-04-09", "2024-03-31", "2025-04-20", "2029-04-01", "2030-04-21", "2031-04-13",
    "2032-03-28", "2033-04-17", "2034-04-09", "2035-03-25", "2038-04-25", "2049-04-18",
    "2076-04-19", "2100-03-28", "2106-04-18", "2116-03-29", "2285-03-22",
])
def test_target2_closes_on_good_friday_and_easter_monday_of_each_year(sunday):
    easter = date.fromisoformat(sunday)
    assert target2_closed(easter - timedelta(days=2)) == "Good Friday"
    assert target2_closed(easter + timedelta(days=1)) == "Easter Monday"
    # the Thursday before and the Tuesday after are business days
    assert target2_closed(easter - timedelta(days=3)) is None
    assert target2_closed(easter + timedelta(days=2)) is None


def test_a_debit_on_a_target2_holiday_is_noted(tmp_path):
    def edit(invoices):
        for inv in invoices:
            if inv.get("payment", {}).get("method") == "direct_debit":
                inv["payment"]["debit_date"] = "2027-01-01"
    r = _export(MAPPING, _input(tmp_path, edit), None, "--dry-run", date_="2026-12-21")
    assert r.exit_code == 0, r.output
    assert ("debit date (DtePrel) 2027-01-01 is New Year's Day, a TARGET2 holiday "
            "(4 title(s))") in r.stdout


# ------------------------------------------------------------------ --date


def test_a_date_the_calendar_does_not_have_is_said_so():
    r = run_cli("export", "-m", MAPPING, "-i", INPUT, "--dry-run", "--date", "2027-02-29")
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "--date: 2027-02-29 is not a day of the calendar" in r.output
    bad = run_cli("export", "-m", MAPPING, "-i", INPUT, "--dry-run", "--date", "29/02/2028")
    assert bad.exit_code == ExitCode.USAGE
    assert "--date must be YYYY-MM-DD, got '29/02/2028'" in bad.output


# ------------------------------------------------------------------ a closed exercise


@pytest.mark.parametrize("command", ["export", "preview"])
def test_an_exercise_two_years_past_is_refused(tmp_path, mappings, command):
    """Exer 2026 on 2028-01-10: closed (the journée complémentaire is for last year's
    exercise, in January): refused, naming the mapping line, nothing written; last
    year's exercise is still only noted (test_audit_rules)."""
    def later(invoices):
        for inv in invoices:
            if inv.get("payment", {}).get("method") == "direct_debit":
                inv["payment"]["debit_date"] = "2028-01-20"
    mapping = mappings()
    args = [command, "-m", mapping, "-i", _input(tmp_path, later), "--date", "2028-01-10"]
    out = tmp_path / "out"
    r = run_cli(*args, *(["-o", out] if command == "export" else []))
    assert r.exit_code == ExitCode.MAPPING, r.output
    line = next(i for i, text in enumerate(mapping.read_text().splitlines(), 1)
                if text.startswith("  exercise:"))
    assert f"{mapping}:{line}: collectivity.exercise" in r.output
    assert "exercise 2026 (Exer) is 2 years before the run date 2028-01-10" in r.output
    assert "(rule collectivity.exercise)" in r.output
    assert not out.exists()
