"""The tests never take today's date by accident: every test runs with "today" far in
the future (conftest's ``_far_future_today``), where the example's debits (2026-12-05)
are refused by sepa.debit-date, so a test exporting or previewing the example without
--date/run_date fails now rather than once the calendar passes 2026-12-05. These tests
check that the guard is in place and moves the clock the code reads."""

from __future__ import annotations

import re

import pytest

from pesgen.errors import ExitCode, InputDataError
from pesgen.export import export
from pesgen.preview import preview

from .conftest import DATED_MODULES, EXAMPLES, FAR_FUTURE, MAPPINGS, ROOT, run_cli

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"


def test_an_undated_export_of_the_example_is_dated_far_in_the_future_and_refused(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputDataError) as exc:
        export(MAPPING, INPUT, out)
    rules = {p.rule for p in exc.value.problems}
    assert rules == {"sepa.debit-date"}, rules
    assert f"is before DteBordEm {FAR_FUTURE.isoformat()}" in str(exc.value.problems[0])
    assert not out.exists()


def test_an_undated_preview_and_cli_export_of_the_example_are_refused(tmp_path):
    shown = preview(MAPPING, INPUT, limit=1)
    assert [p.rule for item in shown.items for p in item.problems] == ["sepa.debit-date"]
    assert shown.exit_code == ExitCode.INPUT
    r = run_cli("export", "-m", MAPPING, "-i", INPUT, "-o", tmp_path / "out")
    assert r.exit_code == ExitCode.INPUT and "(rule sepa.debit-date)" in r.stderr, r.output


def test_only_the_modules_the_guard_dates_read_today():
    """A new ``date.today()`` elsewhere in pesgen would escape the guard: add its module
    to conftest.DATED_MODULES."""
    reading = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "pesgen").rglob("*.py")
        if re.search(r"\b(date|datetime)\.today\(", path.read_text(encoding="utf-8")))
    assert reading == sorted(DATED_MODULES)
