"""benchmarks/bench_acquit.py gives docs/performance.md its acquit figures, on SQLite and
on PostgreSQL (--db): each mode runs on its own copy of the store, and mode held times
the duplicate guard's look-up alone. No timing is asserted (the figures are the
machine's), only what the script measured and that it leaves no database behind."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from .conftest import PG_URL, ROOT, require_postgresql

SCRIPT = ROOT / "benchmarks" / "bench_acquit.py"


def _bench(*args: str) -> dict:
    code, out, err, pid = bench_run([sys.executable, str(SCRIPT), "--elements", "2", *args])
    assert code == 0, err
    if "--db" in args:
        assert left_behind("pesgen_bench", pid) == [], err
    return json.loads(out)


def bench_run(command: list[str]) -> tuple[int, str, str, int]:
    """A benchmark script run: its exit code, standard output and error, and its pid,
    which its PostgreSQL databases' names hold (``left_behind``)."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, cwd=ROOT) as proc:
        try:
            out, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        return proc.returncode, out, err, proc.pid


def left_behind(prefix: str, pid: int) -> list[str]:
    """The databases a benchmark run (its pid) created on the test server and left
    there: its own names only (``pg_server``'s ``PREFIX_PID_TIME``), not every database
    of the server, on which the tests of another worker create and drop theirs
    meanwhile."""
    import sqlalchemy as sa

    assert PG_URL is not None
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT datname FROM pg_database").scalars()
            return sorted(n for n in names if re.fullmatch(rf"{prefix}_{pid}_\d+(_.*)?", n))
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_acquit_is_read_and_the_guard_s_look_up_timed_on_either_store(kind):
    """Each mode on its own copy of the store: a --record does not make the next mode's
    reading 'recorded already'. Mode held looks up the run's invoice numbers and
    NumDettes: all held by the run itself (2 titles, 4 numbers), none once it is
    cancelled. On PostgreSQL the store and its copies are databases of the server,
    dropped at the end."""
    db: tuple[str, ...] = ()
    if kind == "postgresql":
        require_postgresql()
        assert PG_URL is not None
        db = ("--db", PG_URL)
    figures = _bench("--modes", "record,read,held", *db)
    assert figures["store"] == kind
    assert figures["record"]["exit"] == figures["read"]["exit"] == 0
    assert figures["held"]["numbers"] == figures["held"]["held"] == 4
    assert figures["held"]["statements"] >= 2  # a query of numbers, one of NumDettes
    cancelled = _bench("--modes", "held", "--cancelled", "yes", *db)
    assert (cancelled["held"]["numbers"], cancelled["held"]["held"]) == (4, 0)


def test_exported_is_refused_with_a_postgresql_store():
    """--exported copies rows with SQLite's own module: refused with --db, before any
    work."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--elements", "4", "--exported",
                           "2", "--db", "postgresql://nobody@127.0.0.1:1/x"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "--exported copies rows in a SQLite store: give no --db" in proc.stderr
