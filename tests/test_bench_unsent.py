"""benchmarks/bench_unsent.py gives docs/performance.md its figures of the numbers
cancelled before sending at scale ("numbering_gap and unsent at scale"), on SQLite and on
PostgreSQL (--db). No timing is asserted (the figures are the machine's), only what the
script built and measured, the plans it read and that it leaves no database behind."""

from __future__ import annotations

import json
import sys

import pytest

from .conftest import PG_URL, ROOT, require_postgresql
from .test_bench_acquit import bench_run, left_behind

SCRIPT = ROOT / "benchmarks" / "bench_unsent.py"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_unsent_numbers_of_a_store_of_many_runs_are_timed_with_their_plans(kind):
    """30 runs over two sequences (the example's run aside): the last one's last run
    cancelled, so the export after it follows it (numbering_gap finds it); the two
    statements numbering_gap sends to the runs search them by their numbering (SQLite;
    PostgreSQL's planner scans so few)."""
    db: tuple[str, ...] = ()
    if kind == "postgresql":
        require_postgresql()
        assert PG_URL is not None
        db = ("--db", PG_URL)
    code, out, err, pid = bench_run([sys.executable, str(SCRIPT), "--runs", "30",
                                     "--collectivities", "2", "--exercises", "1",
                                     "--repeat", "2", *db])
    assert code == 0, err
    figures = json.loads(out)
    assert figures["store"] == kind and figures["runs"] == 30
    assert figures["sequences"] == 3  # the two built, the example's run's
    assert figures["gap"] == [15] and figures["unsent"] == 1, figures
    assert figures["unsent_ms"] > 0 and figures["numbering_gap_ms"] > 0
    # the largest number given, the unsent numbers; then the sequence's moves (a few
    # rows a store: support's moves), which say which numbers follow them
    of_runs = [p for p in figures["plans"] if "sequence_moves" not in p["statement"]]
    assert len(of_runs) == 2 == len(figures["plans"]) - 1, figures["plans"]
    for plan in of_runs:  # (PostgreSQL scans a table of 31 runs: test_store_plans)
        assert plan["plan"] and (kind == "postgresql" or any(
            "ix_runs_sequence" in line for line in plan["plan"])), plan
    if kind == "postgresql":
        assert left_behind("pesgen_bench_unsent", pid) == [], err
