"""benchmarks/bench_record.py gives docs/performance.md its figures of the recording of
a run ("Recording a run in the store"), on SQLite and on PostgreSQL (--db). No timing is
asserted (the figures are the machine's), only what the script measured and that it
leaves no database behind."""

from __future__ import annotations

import json
import sys

import pytest

from .conftest import PG_URL, ROOT, require_postgresql
from .test_bench_acquit import bench_run, left_behind

SCRIPT = ROOT / "benchmarks" / "bench_record.py"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_recording_of_a_run_is_timed_by_statement_on_either_store(kind):
    """The run's 30 titles reach run_invoices in INSERTs on SQLite (an executemany, one
    statement) and in one COPY on PostgreSQL; each round on a new store (two rounds:
    the second export's invoices are not refused as exported already)."""
    db: tuple[str, ...] = ()
    if kind == "postgresql":
        require_postgresql()
        assert PG_URL is not None
        db = ("--db", PG_URL)
    code, out, err, pid = bench_run([sys.executable, str(SCRIPT), "--invoices", "30",
                                     "--repeat", "2", *db])
    assert code == 0, err
    figures = json.loads(out)
    assert figures["store"] == kind
    assert len(figures["rounds"]) == 2
    assert all(r["record_s"] > 0 for r in figures["rounds"])
    titles = "COPY run_invoices" if kind == "postgresql" else "INSERT run_invoices"
    assert figures["kinds"][titles] == {**figures["kinds"][titles], "statements": 1,
                                        "rows": 30}
    assert figures["kinds"]["INSERT runs"]["rows"] == 1
    assert ("ANALYZE run_invoices" in figures["kinds"]) == (kind == "postgresql")
    if kind == "postgresql":
        assert left_behind("pesgen_bench_rec", pid) == [], err
