"""The tests never take today's date by accident: every test runs with "today" far in
the future (conftest's ``_far_future_today``), where the example's exercise (2026) is
closed (collectivity.exercise) and its debits (2026-12-05) would be refused by
sepa.debit-date, so a test exporting or previewing the example without --date/run_date
fails now rather than once the calendar passes 2026-12-05. These tests
check that the guard is in place and moves the clock the code reads."""

from __future__ import annotations

import re

import pytest

from pesgen.errors import ExitCode, MappingError
from pesgen.export import export
from pesgen.preview import preview

from .conftest import DATED_MODULES, EXAMPLES, FAR_FUTURE, MAPPINGS, ROOT, run_cli

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"


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


def test_only_the_modules_the_guard_dates_read_today():
    """A new ``date.today()`` elsewhere in pesgen would escape the guard: add its module
    to conftest.DATED_MODULES."""
    reading = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "pesgen").rglob("*.py")
        if re.search(r"\b(date|datetime)\.today\(", path.read_text(encoding="utf-8")))
    assert reading == sorted(DATED_MODULES)
