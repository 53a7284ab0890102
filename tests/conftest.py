"""Shared fixtures: project paths and the official DGFiP XSD package when present."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

# every title the rules' fast path (rules._clear) clears is checked by the rules one by
# one too, in this process and the CLI's subprocesses: the two must agree
os.environ["PESGEN_RULES_CROSS_CHECK"] = "1"

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MAPPINGS = ROOT / "mappings"
OFFICIAL_DIR = ROOT.parent / "shared" / "reference" / "pes-v2" / "schemas_pes_v5.17"
OFFICIAL_ENTRY = OFFICIAL_DIR / "PES_V2" / "Rev0" / "PES_Aller.xsd"
RUN_DATE = "2026-11-23"
PG_URL = os.environ.get("PESGEN_TEST_PG_URL")
GOLDEN_ORMC = (ROOT / "tests" / "golden" / "example-json" / "expected" /
               "PESORMC_21450999400015_2026_0000001.xml")


def golden_parts() -> tuple[bytes, bytes, bytes]:
    """The example's ORMC file cut in three: everything before the first piece, the
    first piece, and everything from ``</Bordereau>`` on (to build documents from)."""
    golden = GOLDEN_ORMC.read_bytes()
    head, rest = golden.split(b"<Piece>", 1)
    piece = b"<Piece>" + rest.split(b"</Piece>", 1)[0] + b"</Piece>\n"
    tail = b"</Bordereau>" + golden.split(b"</Bordereau>", 1)[1]
    return head, piece, tail


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C as an interactive shell gives it, whoever started the suite: a shell
    running a command in the background without job control (``nohup pytest … &`` from
    a script) starts it with SIGINT ignored, and the children it starts inherit that.
    The tests that send SIGINT (to themselves, or to a ``pesgen`` they started) then
    waited for an interruption that never came: a write blocked on a full pipe hung the
    suite. Python's own handler is put back, which its children reset to the default at
    exec."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def require_postgresql() -> None:
    """Skip the test when no PostgreSQL server is given (PESGEN_TEST_PG_URL); under CI a
    missing server is a failure, not a skip."""
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("PESGEN_TEST_PG_URL is not set: .ci/run must start PostgreSQL")
        pytest.skip("no PostgreSQL server (set PESGEN_TEST_PG_URL)")


@contextmanager
def state_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty state-store URL: a SQLite file, or a new database on the
    PostgreSQL server of PESGEN_TEST_PG_URL (dropped afterwards). Under CI a missing
    server is a failure, not a skip."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite3'}"
        return
    require_postgresql()
    import sqlalchemy as sa

    name = f"pesgen_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh state-store URL, once on SQLite and once on PostgreSQL (state_database)."""
    with state_database(request.param, tmp_path) as url:
        yield url


def record_as_older(donor, old) -> None:
    """Copy the runs of ``donor`` (a current Store) into ``old``, a Store left at an
    earlier schema, as the pesgen of that schema recorded them: only the columns its
    tables have (ids left to the target, but the runs'). The current code records
    columns an older store does not have, and the sequence of the titre numbers
    (typ_bord 'IdPce', pes-titres' IdPce over the exercise), which no older pesgen kept
    (on a PostgreSQL store before migration 5, typ_bord holds 2 characters)."""
    import sqlalchemy as sa

    import pesgen.store as st

    present = {t: {c["name"] for c in sa.inspect(old.engine).get_columns(t.name)}
               for t in (st.sequences, st.runs, st.run_files, st.run_invoices)}
    with donor.engine.connect() as src, old.engine.begin() as dst:
        for table, columns in present.items():
            keep = columns - ({"id"} if table is not st.runs else set())
            query = sa.select(table)
            if table is st.sequences:
                query = query.where(table.c.typ_bord != st.PIECE_SEQUENCE)
            rows = [{k: v for k, v in r._mapping.items() if k in keep}
                    for r in src.execute(query)]
            if rows:
                dst.execute(sa.Table(table.name, sa.MetaData(), autoload_with=dst).insert(),
                            rows)


@pytest.fixture
def official_xsd() -> Path:
    if not OFFICIAL_ENTRY.is_file():
        pytest.skip("the DGFiP PES V2 XSD package is not beside the project (../shared)")
    return OFFICIAL_DIR


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Every test gets its own state database: the CLI records runs by default. It is
    the default store (no PESGEN_DB), under a data folder of the test's own: the one an
    export creates by itself (a store named on purpose needs --create-store)."""
    data = tmp_path_factory.mktemp("state")
    db = data / "pesgen" / "pesgen.sqlite3"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("PESGEN_DB", raising=False)
    monkeypatch.delenv("PESGEN_OFFICIAL_XSD", raising=False)
    monkeypatch.delenv("PESGEN_STORE_LOCK_TIMEOUT", raising=False)
    monkeypatch.setenv("PESGEN_CONFIG", str(data / "no-config.yaml"))
    return db


# "Today" for every export and preview run in-process by the tests: far past the
# example's dates (its debits fall on 2026-12-05, and sepa.debit-date refuses a debit
# dated before the bordereau). A test that exports or previews without --date/run_date
# then fails at once, not on the day the calendar passes the example's dates.
FAR_FUTURE = date(2099, 12, 31)
# the instant the clock gives: FAR_FUTURE in every time zone a collectivity is in
# (UTC-3 to UTC+4)
FAR_FUTURE_NOW = datetime(2099, 12, 31, 12, 0, tzinfo=UTC)
# the module whose clock (``now``) gives a run's date when none is given: today in the
# collectivity's time zone (test_run_date.py checks that no other module reads the
# clock for a date)
CLOCK_MODULE = "pesgen.clock"


@pytest.fixture(autouse=True)
def _far_future_today(monkeypatch):
    """Every test runs as if now were FAR_FUTURE_NOW (see above). A test about the
    default date sets its own instant over this one (``set_clock``). Subprocesses
    (``python -m pesgen``) keep the real clock: give them --date."""
    set_clock(monkeypatch, FAR_FUTURE_NOW)


def set_clock(monkeypatch, instant: datetime) -> None:
    """pesgen's clock (``pesgen.clock.now``) gives ``instant`` (an aware datetime)."""
    import importlib

    assert instant.tzinfo is not None, "an instant: give its time zone"
    monkeypatch.setattr(importlib.import_module(CLOCK_MODULE), "now", lambda: instant)


def package_store(tmp_path: Path) -> Path:
    """A new SQLite store holding one run: the example exported for BL e.magnus (a
    finance package's run: the package sends its own PES), by the CLI: its path."""
    db = tmp_path / "store.sqlite3"
    made = run_cli("export", "-m", MAPPINGS / "villeneuve-sur-loing-emagnus.yaml", "-i",
                   EXAMPLES / "school-export.json", "-o", tmp_path / "out", "--date",
                   RUN_DATE, "--db", db, "--create-store")
    assert made.exit_code == 0, made.output
    return db


def run_cli(*args: str | Path):
    """Run pesgen's CLI in-process: every failure must be a clean exit with a code,
    never an escaped exception nor a traceback in its output."""
    from typer.testing import CliRunner

    from pesgen.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception, result.output)
    assert "Traceback" not in result.output
    return result


def bundle_edited(tmp_path: Path, fmt: str, file: str, old: str, new: str
                  ) -> tuple[Path, int]:
    """The shipped bundle ``fmt`` copied into tmp_path/fmts (once: a second edit of the
    same bundle edits the copy) with ``old`` (once in its ``file``) made ``new``: the
    folder, and the line of ``file`` edited."""
    import shutil

    from pesgen.formats import find_format

    fmts = tmp_path / "fmts"
    if not (fmts / fmt).exists():
        shutil.copytree(Path(find_format(fmt).folder), fmts / fmt)
    path = fmts / fmt / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return fmts, text[:text.index(old)].count("\n") + 1


def example_with_two_input_errors(folder: Path, name: str = "school-export.json") -> Path:
    """The example export with two input errors, written as ``folder/name``: the first
    invoice's IBAN fails its checksum (sepa.iban), the third's second line has an
    unknown activity code, BASSON (codes.activity)."""
    import json

    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][0]["payment"]["mandate"]["iban"] = "FR7630006000011234567890188"
    data["invoices"][2]["lines"][1]["activity"]["code"] = "BASSON"
    path = folder / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def generated_input(path: Path, invoices: int, lines: int = 3) -> Path:
    """A JSON export of ``invoices`` invoices of ``lines`` lines in the example's shape,
    written to ``path`` by the benchmark's generator."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_export import generate
    finally:
        sys.path.pop(0)
    generate(path, invoices, lines)
    return path
