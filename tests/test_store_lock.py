"""The SQLite store's write lock: an export that finds it held by another pesgen run
says once that it waits, waits up to ``store_lock_timeout``, and when it gives up says
who held the store, for how long, and what to do (exit 7)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, ROOT, state_database

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
WAITING = "waiting for the state store: another pesgen run holds its lock"


@contextmanager
def _released(held: Any) -> Iterator[Any]:
    """``held``, a connection holding a lock or a transaction open, rolled back and closed
    at the block's end, whatever ends it."""
    try:
        yield held
    finally:
        held.rollback()
        held.close()


@contextmanager
def _pg_held(engine: Any, *statements: str, params: dict[str, Any] | None = None,
             after: float = 3) -> Iterator[Any]:
    """A session of ``engine`` that runs ``statements`` in a transaction and rolls it back
    ``after`` seconds into the block (or at its end, whatever ends it); gives its
    PostgreSQL process id."""
    import sqlalchemy as sa

    holder = engine.connect()
    timer = threading.Timer(after, holder.rollback)
    try:
        holder.begin()
        pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        for statement in statements:
            holder.execute(sa.text(statement), params or {})
        timer.start()
        yield pid
    finally:
        timer.cancel()
        timer.join()
        holder.rollback()
        holder.close()


def _holder(db: Path) -> sqlite3.Connection:
    """Another pesgen run in its finishing step: the store's write lock taken, as
    ``BEGIN IMMEDIATE`` takes it, and kept until the caller lets it go."""
    Store(f"sqlite:///{db}").engine.dispose()  # created and migrated first
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def _pesgen(db: Path, timeout: str, *args: str,
            limit: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m pesgen args`` on the store ``db``, waiting at most ``timeout`` seconds
    for its lock (PESGEN_STORE_LOCK_TIMEOUT), stopped after ``limit`` seconds."""
    env = dict(os.environ, PESGEN_DB=str(db), PESGEN_STORE_LOCK_TIMEOUT=timeout)
    return subprocess.run([sys.executable, "-m", "pesgen", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=limit)


def _export(db: Path, out: Path, timeout: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _pesgen(db, timeout, "export", "-m", str(MAPPING), "-i",
                   str(EXAMPLES / "school-export.json"), "-o", str(out), "--date",
                   "2026-11-23", *extra, limit=120)


def _recorded_run(db: Path, out: Path) -> str:
    """The id of the run the example's export records in a new store ``db``."""
    assert _export(db, out, "20", "--create-store").returncode == 0
    return Store(f"sqlite:///{db}").list_runs()[0].id


def test_an_export_gives_up_after_store_lock_timeout_and_says_why(tmp_path):
    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    with _released(holder):
        started = time.monotonic()
        done = _export(db, tmp_path / "out", "2")
        waited = time.monotonic() - started
    assert done.returncode == 7, done.stderr
    assert done.stderr.count(WAITING) == 1, done.stderr
    assert "another pesgen run held the state store's lock for 2 s" in done.stderr
    assert "store_lock_timeout" in done.stderr and "PESGEN_STORE_LOCK_TIMEOUT" in done.stderr
    assert "database is locked" not in done.stderr
    assert "FA-2026" not in done.stderr  # no billing data
    # its 2 s and its start, which a loaded machine (two test processes on two cores)
    # makes several times slower; a wait for the holder would have hit _export's limit
    assert waited < 60
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert Store(f"sqlite:///{db}").list_runs() == []


def _released_once_waiting(db: Path, *args: str) -> tuple[int, str, str]:
    """``python -m pesgen args`` on the store ``db`` while another run holds its lock,
    let go once the command says it waits (not after a fixed delay, which a busy
    machine's slow start would outlast: the command would then never wait): (exit code,
    standard output, standard error)."""
    holder = _holder(db)
    env = dict(os.environ, PESGEN_DB=str(db), PESGEN_STORE_LOCK_TIMEOUT="60")
    proc = subprocess.Popen([sys.executable, "-m", "pesgen", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        holder.rollback()
        stdout, rest = proc.communicate(timeout=60)
    finally:
        holder.close()
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, stdout, first + rest


def test_an_export_waits_for_the_lock_and_then_records_its_run(tmp_path):
    db = tmp_path / "store.sqlite3"
    code, stdout, stderr = _released_once_waiting(
        db, "export", "-m", str(MAPPING), "-i", str(EXAMPLES / "school-export.json"), "-o",
        str(tmp_path / "out"), "--date", "2026-11-23")
    assert code == 0, stderr
    assert stderr.count(WAITING) == 1, stderr
    assert "wrote" in stdout
    [run] = Store(f"sqlite:///{db}").list_runs()
    assert run.first_number == 1


def test_quiet_export_does_not_announce_the_wait(tmp_path):
    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    release = threading.Timer(3, holder.rollback)
    release.start()
    try:
        done = _export(db, tmp_path / "out", "30", "-q")
    finally:
        release.join()
        holder.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_the_store_tells_its_caller_once_and_gives_up_after_its_timeout(tmp_path):
    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    told: list[float] = []
    with _released(holder):
        # opened without the lock (nothing to migrate); its write transaction waits
        store = Store(f"sqlite:///{db}", lock_timeout=1.5, on_wait=told.append)
        with pytest.raises(Exception) as info, store.transaction():
            pass
    assert info.value.exit_code == 7
    assert "held the state store's lock for 1.5 s" in str(info.value)
    assert told == [1.5]


def test_a_short_wait_is_not_announced(tmp_path):
    """Concurrent exports take the lock in turn all the time: a wait shorter than the
    grace (2 s, or a quarter of the timeout) says nothing."""
    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    release = threading.Timer(0.5, holder.rollback)
    release.start()
    told: list[float] = []
    try:
        store = Store(f"sqlite:///{db}", lock_timeout=30, on_wait=told.append)
    finally:
        release.join()
        holder.close()
    assert store.list_runs() == [] and told == []


def test_the_store_says_it_waits_once_for_all_its_transactions(tmp_path):
    db = tmp_path / "store.sqlite3"
    told: list[float] = []
    store = Store(f"sqlite:///{db}", lock_timeout=2, on_wait=told.append)
    for _ in range(2):
        holder = _holder(db)
        release = threading.Timer(1, holder.rollback)
        release.start()
        try:
            assert store.list_runs() == []
        finally:
            release.join()
            holder.close()
    assert told == [2]


def test_a_waiting_export_stops_at_once_on_sigterm(tmp_path):
    """Waiting minutes for the lock must not make pesgen deaf to Ctrl-C or SIGTERM."""
    import signal

    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    env = dict(os.environ, PESGEN_DB=str(db), PESGEN_STORE_LOCK_TIMEOUT="60")
    with _released(holder):
        proc = subprocess.Popen([sys.executable, "-m", "pesgen", "export", "-m", str(MAPPING),
                                 "-i", str(EXAMPLES / "school-export.json"), "-o",
                                 str(tmp_path / "out"), "--date", "2026-11-23"],
                                stderr=subprocess.PIPE, text=True,
                                env=env, cwd=ROOT)
        assert proc.stderr is not None
        assert WAITING in proc.stderr.readline()
        time.sleep(1)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        stopped = time.monotonic() - sent
    # at once: far within the 60 s it would have waited, with room for a loaded machine
    assert proc.returncode != 0 and stopped < 20, (stopped, err)
    assert Store(f"sqlite:///{db}").list_runs() == []


def test_an_export_waits_for_another_export_in_its_finishing_step(tmp_path):
    """The case met in production: a large run renders and validates its files holding
    the lock (here its commit is held back 4 s, past the timeout's grace); an export of
    other invoices started meanwhile waits for it instead of failing, and numbers next."""
    from datetime import date

    db = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{db}")
    finishing = threading.Event()
    waited = threading.Event()

    def slow_commit() -> None:
        finishing.set()
        # held until the other export says it waits (not a fixed 4 s, which a busy
        # machine's slow start would outlast: it would then never wait)
        waited.wait(60)

    with_lock = threading.Thread(target=export_recorded, args=(
        lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "first",
        date(2026, 11, 23)), kwargs={"before_commit": slow_commit})
    with_lock.start()
    try:
        assert finishing.wait(60)
        data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
        for inv in data["invoices"]:
            inv["number"] += "-2"
        other = tmp_path / "other.json"
        other.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        env = dict(os.environ, PESGEN_DB=str(db), PESGEN_STORE_LOCK_TIMEOUT="60")
        proc = subprocess.Popen([sys.executable, "-m", "pesgen", "export", "-m", str(MAPPING),
                                 "-i", str(other), "-o", str(tmp_path / "second"),
                                 "--date", "2026-11-23"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=ROOT)
        assert proc.stderr is not None
        first = proc.stderr.readline()
        waited.set()
        _out, rest = proc.communicate(timeout=60)
    finally:
        waited.set()
        with_lock.join()
    stderr = first + rest
    assert proc.returncode == 0, stderr
    assert stderr.count(WAITING) == 1, stderr
    assert sorted(r.first_number for r in store.list_runs()) == [1, 2]


# ------------------------------------------------ reads do not take the write lock


def test_a_read_runs_while_another_connection_holds_the_write_lock(tmp_path):
    """runs list, show, find and the payfip listings read through Store.reads: a deferred
    transaction, which an export holding the write lock (rendering, validating) lets
    through. Before, they took the lock as a write does: they waited for the export, up
    to store_lock_timeout, and an export started meanwhile waited for them."""
    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    # the holder has written, uncommitted: readers see the store as committed
    holder.execute("UPDATE pesgen_schema SET applied_at = 'x'")
    told: list[float] = []
    with _released(holder):
        started = time.monotonic()
        # a read waiting for the holder would wait the whole timeout (the holder is let
        # go after the block), then fail; the bound leaves room for a loaded machine
        store = Store(f"sqlite:///{db}", lock_timeout=30, on_wait=told.append)
        with store.reads():
            assert store.list_runs() == [] and store.find_invoice("FA-1") == []
            assert store.acknowledgements(set()) == {}
        assert time.monotonic() - started < 15 and told == []
        assert "x" not in {a for (a,) in sqlite3.connect(db, timeout=5).execute(
            "SELECT applied_at FROM pesgen_schema")}
        # outside reads, a transaction still takes the write lock, and waits for it
        with pytest.raises(Exception) as info:
            Store(f"sqlite:///{db}", lock_timeout=0.5).list_runs()
        assert info.value.exit_code == 7


def test_read_commands_answer_while_an_export_holds_the_lock(tmp_path):
    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    with _released(holder):
        for command in (["runs", "list"], ["runs", "find", "FA-2026-00101"],
                        ["payfip", "anomalies"]):
            started = time.monotonic()
            # a command waiting for the holder would wait the whole 90 s and fail: well
            # past the bound, which leaves room for a loaded machine's slow start
            done = _pesgen(db, "90", *command)
            assert time.monotonic() - started < 60, command
            assert WAITING not in done.stderr, (command, done.stderr)
            assert done.returncode in (0, 1), (command, done.stderr)  # find: in no run
            assert "locked" not in done.stderr, (command, done.stderr)


def test_opening_a_store_takes_the_write_lock_only_to_migrate(tmp_path):
    """Store() reads the schema's version without the lock; a store it must migrate (here
    an empty SQLite file, made a store) it migrates under the write lock, waited for."""
    db = tmp_path / "store.sqlite3"
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    told: list[float] = []
    with _released(holder):
        with pytest.raises(Exception) as info:
            Store(f"sqlite:///{db}", lock_timeout=1, on_wait=told.append)
        assert info.value.exit_code == 7 and told == [1]
    assert Store(f"sqlite:///{db}").list_runs() == []


def test_a_write_within_reads_fails_instead_of_waiting(db_url):
    """reads is for reading: a write in it fails at once, on SQLite (query_only) as on
    PostgreSQL (READ ONLY), rather than a deferred transaction taking the lock midway."""
    import sqlalchemy as sa

    from pesgen.store import sequences

    store = Store(db_url)
    with store.reads(), pytest.raises(sa.exc.DBAPIError), store.transaction() as conn:
        conn.execute(sequences.insert().values(id_coll="21", cod_bud="00", exercise=2026,
                                               typ_bord="06", next_number=1,
                                               start_number=1))
    with store.transaction() as conn:  # the same pooled connection writes again after
        conn.execute(sequences.insert().values(id_coll="21", cod_bud="00", exercise=2026,
                                               typ_bord="06", next_number=1, start_number=1))
    with store.reads(), store.engine.connect() as conn:
        assert store.recorded_next(conn, ("21", "00", 2026, "06")) == 1


def test_a_dry_run_answers_while_an_export_holds_the_lock(tmp_path):
    """export --dry-run reads an up-to-date store in a read-only transaction: it used to
    take the write lock (its transaction, rolled back, could apply migrations), so it
    waited for an export rendering its files, and said so."""
    db = tmp_path / "store.sqlite3"
    holder = _holder(db)
    with _released(holder):
        started = time.monotonic()
        done = _export(db, tmp_path / "out", "90", "--dry-run")
        assert time.monotonic() - started < 60  # not the 90 s a wait would take
        assert done.returncode == 0, done.stderr
        assert WAITING not in done.stderr
        assert "titles: 11" in done.stdout, done.stdout
        assert not (tmp_path / "out").exists()


def test_a_dry_run_of_a_store_to_migrate_still_waits_for_the_lock(tmp_path):
    """A store this pesgen would migrate first: the dry run applies the migrations in its
    transaction, rolled back, under the write lock (waited for, then given up)."""
    db = tmp_path / "store.sqlite3"
    Store(f"sqlite:///{db}").engine.dispose()
    with sqlite3.connect(db) as conn:  # as if made by a pesgen one migration behind
        conn.execute("DELETE FROM pesgen_schema WHERE version = (SELECT max(version) FROM "
                     "pesgen_schema)")
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    with _released(holder):
        done = _export(db, tmp_path / "out", "1", "--dry-run")
        assert done.returncode == 7, (done.stdout, done.stderr)
        assert "lock" in done.stderr, done.stderr


def test_payfip_tipi_url_and_datamatrix_read_without_the_lock(tmp_path):
    """payfip tipi-url and payfip datamatrix record nothing in the store: they answer
    while an export holds its lock, as the other read commands do (they took the write
    lock, and waited for the export up to store_lock_timeout)."""
    db = tmp_path / "store.sqlite3"
    run = _recorded_run(db, tmp_path / "out")
    holder = _holder(db)
    with _released(holder):
        for command in (["tipi-url", "-m", str(MAPPING), "-n", "FA-2026-00101", "--urlcl",
                         "https://ecole.example.org/retour"],
                        ["datamatrix", "--run", run, "--code-etablissement", "123",
                         "--out", str(tmp_path / "dm")]):
            started = time.monotonic()
            done = _pesgen(db, "90", "payfip", *command)
            assert time.monotonic() - started < 60, command  # not the 90 s of a wait
            assert WAITING not in done.stderr, (command, done.stderr)
            assert done.returncode == 0, (command, done.stderr)


# ------------------------------------------- a read meeting an export as it commits


def _committing(db: Path) -> sqlite3.Connection:
    """Another pesgen run at the instant it commits: the file held alone (SQLite's
    exclusive lock, which a commit takes to write the file), so that even a read waits,
    kept until the caller lets it go."""
    Store(f"sqlite:///{db}").engine.dispose()  # created and migrated first
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def test_a_read_waiting_for_a_commit_gives_up_after_the_timeout_as_locked(tmp_path):
    """The same wait in all as before (store_lock_timeout), said once past the grace, then
    the store's locked error (exit 7); before, SQLite's busy handler waited it out in C
    and the read failed as 'the state store failed: database is locked'."""
    db = tmp_path / "store.sqlite3"
    holder = _committing(db)
    told: list[float] = []
    with _released(holder):
        with pytest.raises(Exception) as info:
            store = Store(f"sqlite:///{db}", lock_timeout=1.5, on_wait=told.append)
            with store.reads():
                store.list_runs()
    assert getattr(info.value, "exit_code", None) == 7, info.value
    assert "held the state store's lock for 1.5 s" in str(info.value)
    assert told == [1.5]


def _signalled_once_waiting(proc: subprocess.Popen, signum: int, held: Any
                            ) -> tuple[str, str, str, float]:
    """Send ``signum`` to ``proc`` once it says it waits (its first line on standard
    error), then let go of the connection ``held`` that made it wait: (that first line,
    standard output, the rest of standard error, seconds from the signal to its end)."""
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # said once it waits past the grace
        sent = time.monotonic()
        proc.send_signal(signum)
        out, rest = proc.communicate(timeout=60)
        stopped = time.monotonic() - sent
    finally:
        held.rollback()
        held.close()
        if proc.poll() is None:
            proc.kill()
    return first, out, rest, stopped


class _Interrupting:
    """An ``on_wait`` that sends Ctrl-C to the main thread (``_thread.interrupt_main``)
    from another one, noting when in ``sent``. A Ctrl-C that lands while the main thread
    runs a garbage collector's callback is lost ("Exception ignored in …": Python's, as
    for a real Ctrl-C; a person presses it again), so one not heard within
    ``AGAIN`` s is sent again, once: a wait deaf to Ctrl-C (in SQLite's busy handler, in
    C, for the whole timeout) hears neither. ``stop`` once the main thread has stopped:
    a second Ctrl-C crossing its stop is taken there, not left to a later statement."""

    AGAIN = 5.0

    def __init__(self) -> None:
        self.sent: list[float] = []
        self.heard = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self, _timeout: float) -> None:
        import _thread

        def send() -> None:
            self.sent.append(time.monotonic())
            _thread.interrupt_main()
            if not self.heard.wait(self.AGAIN):
                self.sent.append(time.monotonic())
                _thread.interrupt_main()

        thread = threading.Thread(target=send)
        self.threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self.heard.set()
        try:
            for thread in self.threads:
                thread.join()
            time.sleep(0.05)  # a Ctrl-C sent again as the first was heard lands here
        except KeyboardInterrupt:
            pass


def test_a_read_waiting_for_a_commit_hears_ctrl_c(tmp_path):
    """A read meeting an export as it commits waits in turns: Ctrl-C (here
    _thread.interrupt_main, sent once the read says it waits) stops it at the end of the
    turn under way, long before the timeout; before, it waited in SQLite's busy handler,
    in C, deaf to it, for the whole store_lock_timeout."""
    db = tmp_path / "store.sqlite3"
    holder = _committing(db)
    interrupt = _Interrupting()

    with _released(holder):
        store = None
        with pytest.raises(KeyboardInterrupt):
            store = Store(f"sqlite:///{db}", lock_timeout=30, on_wait=interrupt)
            with store.reads():
                store.list_runs()
        stopped = time.monotonic()
        interrupt.stop()
    sent = interrupt.sent
    assert store is None  # stopped opening it (reading its schema's version)
    assert 1 <= len(sent) <= 2 and stopped - sent[0] < 15, (sent, stopped)
    # nothing left held: the store reads at once
    assert Store(f"sqlite:///{db}", lock_timeout=1).list_runs() == []


def test_a_read_command_waiting_for_a_commit_stops_on_sigint_with_exit_130(tmp_path):
    import signal

    db = tmp_path / "store.sqlite3"
    holder = _committing(db)
    env = dict(os.environ, PESGEN_DB=str(db), PESGEN_STORE_LOCK_TIMEOUT="60")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "pesgen", "runs", "list"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=ROOT)
    except BaseException:
        holder.rollback()
        holder.close()
        raise
    first, out, rest, stopped = _signalled_once_waiting(proc, signal.SIGINT, holder)
    assert WAITING in first, first + rest
    assert proc.returncode == 130, first + rest
    # said once: a signal landing as it was written does not leave it to be written
    # again with the next line (cli._ClosedPipeSafe)
    assert rest == "interrupted\n" and out == "", rest
    assert "locked" not in rest and "error" not in rest, rest
    assert stopped < 15, stopped


# ------------------------------------------- a commit meeting reads under way


def _reader(db: Path) -> sqlite3.Connection:
    """A pesgen read under way (runs show, a dry run…): a read transaction holding
    SQLite's shared lock, which a commit must see end (PENDING, then EXCLUSIVE), kept
    until the caller lets it go."""
    Store(f"sqlite:///{db}").engine.dispose()  # created and migrated first
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM pesgen_schema").fetchall()
    return conn


def _put_sequence(conn) -> None:
    from pesgen.store import sequences

    conn.execute(sequences.insert().values(id_coll="21", cod_bud="00", exercise=2026,
                                           typ_bord="06", next_number=1, start_number=1))


def _sequences_in(db: Path) -> int:
    with sqlite3.connect(db, timeout=5) as conn:
        return conn.execute("SELECT count(*) FROM sequences").fetchone()[0]


def test_a_commit_waiting_for_reads_gives_up_after_the_timeout_as_locked(tmp_path):
    """A commit waits for the reads under way in turns, as a BEGIN does: said once past
    the grace, then the store's locked error (exit 7), nothing committed; before, it
    waited in SQLite's busy handler and failed as 'database is locked'."""
    db = tmp_path / "store.sqlite3"
    reader = _reader(db)
    told: list[float] = []
    with _released(reader):
        store = Store(f"sqlite:///{db}", lock_timeout=1.5, on_wait=told.append)
        with pytest.raises(Exception) as info, store.transaction() as conn:
            _put_sequence(conn)
    assert getattr(info.value, "exit_code", None) == 7, info.value
    assert "held the state store's lock for 1.5 s" in str(info.value)
    assert told == [1.5]
    assert _sequences_in(db) == 0
    with store.transaction() as conn:  # nothing left held: the same store writes at once
        _put_sequence(conn)
    assert _sequences_in(db) == 1


def test_a_commit_waiting_for_reads_commits_once_they_end(tmp_path):
    """Turns of COMMIT refused busy (the transaction stays open, SQLite's documentation
    says), then one that takes: committed once, whole."""
    db = tmp_path / "store.sqlite3"
    reader = _reader(db)
    release = threading.Timer(1.2, reader.rollback)
    told: list[float] = []
    try:
        store = Store(f"sqlite:///{db}", lock_timeout=30, on_wait=told.append)
        release.start()
        with store.transaction() as conn:
            _put_sequence(conn)
            conn.exec_driver_sql("UPDATE sequences SET next_number = 2")
    finally:
        release.join()
        reader.close()
    assert told == []  # within the grace
    with sqlite3.connect(db, timeout=5) as conn:
        assert conn.execute("SELECT next_number FROM sequences").fetchall() == [(2,)]


def test_a_commit_waiting_for_reads_hears_ctrl_c(tmp_path):
    db = tmp_path / "store.sqlite3"
    reader = _reader(db)
    interrupt = _Interrupting()

    with _released(reader):
        store = Store(f"sqlite:///{db}", lock_timeout=30, on_wait=interrupt)
        with pytest.raises(KeyboardInterrupt), store.transaction() as conn:
            _put_sequence(conn)
        stopped = time.monotonic()
        interrupt.stop()
    sent = interrupt.sent
    assert 1 <= len(sent) <= 2 and stopped - sent[0] < 15, (sent, stopped)
    assert _sequences_in(db) == 0


def _exporting(db: Path, out: Path, timeout: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PESGEN_DB=str(db), PESGEN_STORE_LOCK_TIMEOUT=timeout)
    return subprocess.Popen([sys.executable, "-m", "pesgen", "export", "-m", str(MAPPING),
                             "-i", str(EXAMPLES / "school-export.json"), "-o", str(out),
                             "--date", "2026-11-23"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def test_an_export_committing_while_a_read_is_under_way_gives_up_as_locked(tmp_path):
    db = tmp_path / "store.sqlite3"
    reader = _reader(db)
    with _released(reader):
        done = _export(db, tmp_path / "out", "2")
    assert done.returncode == 7, done.stderr
    assert done.stderr.count(WAITING) == 1, done.stderr
    assert "another pesgen run held the state store's lock for 2 s" in done.stderr
    assert "the export stopped waiting for it; nothing written, no number used" in done.stderr
    assert "database is locked" not in done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert Store(f"sqlite:///{db}").list_runs() == []


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_an_export_committing_while_a_read_is_under_way_stops_on_a_signal(tmp_path, signame):
    """Its commit waits for the read in turns: Ctrl-C or SIGTERM, though the run's commit
    holds them (it stands once committed), stop it while nothing is committed: exit 130,
    nothing recorded, no file written. Before, the commit waited in C, deaf to them, and
    the run was committed once the read ended."""
    import signal

    db = tmp_path / "store.sqlite3"
    reader = _reader(db)
    proc = _exporting(db, tmp_path / "out", "20")
    first, out, rest, stopped = _signalled_once_waiting(proc, getattr(signal, signame), reader)
    assert WAITING in first, first + rest
    assert proc.returncode == 130, first + rest
    assert "interrupted" in rest and "recorded" not in rest.replace("nothing", ""), rest
    assert stopped < 15, stopped
    assert Store(f"sqlite:///{db}").list_runs() == []
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_cancellation_committing_while_a_read_is_under_way_gives_up_as_locked(tmp_path):
    """runs cancel (as acquit --record and the payfip recordings) commits through the
    same wait."""
    db = tmp_path / "store.sqlite3"
    run = _recorded_run(db, tmp_path / "out")
    reader = _reader(db)
    with _released(reader):
        done = _pesgen(db, "1", "runs", "cancel", run, "--reason", "test")
    assert done.returncode == 7, done.stderr
    assert "held the state store's lock for 1 s" in done.stderr, done.stderr
    assert "database is locked" not in done.stderr
    assert Store(f"sqlite:///{db}").list_runs()[0].status == "committed"


def test_writes_beyond_the_cache_do_not_wait_for_reads_under_way(tmp_path):
    """A large run's records outgrow SQLite's page cache, whose pages a write spills to
    the file before its commit, for which it needs the file alone: with a read under
    way, each spill waited in SQLite's busy handler, in C, deaf to Ctrl-C, the whole
    store_lock_timeout (here 2 s, a great many times over). Now the pages stay in
    memory; only the commit waits for the read, in turns, and gives up as locked."""
    db = tmp_path / "store.sqlite3"
    reader = _reader(db)
    told: list[float] = []
    with _released(reader):
        store = Store(f"sqlite:///{db}", lock_timeout=2, on_wait=told.append)
        started = time.monotonic()
        with pytest.raises(Exception) as info, store.transaction() as conn:
            conn.exec_driver_sql("PRAGMA cache_size=-64")  # 64 KiB: spilt at once
            conn.exec_driver_sql("CREATE TABLE big (x BLOB)")
            for _ in range(40):
                conn.exec_driver_sql("INSERT INTO big VALUES (randomblob(50000))")
        waited = time.monotonic() - started
    assert getattr(info.value, "exit_code", None) == 7, info.value
    assert told == [2]
    assert waited < 12, waited  # the commit's 2 s; before, 2 s per spill tried
    with sqlite3.connect(db, timeout=5) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'big'").fetchall() == []


def test_numbering_move_waits_for_the_lock_then_moves_or_gives_up_moving_nothing(tmp_path):
    """`numbering move` takes the store's write lock as an export does: held by another
    run (an export in its finishing step), it says once that it waits; past the timeout
    it gives up (exit 7), nothing moved; let go, it moves the sequence."""
    db = tmp_path / "store.sqlite3"
    _recorded_run(db, tmp_path / "out")
    move = ["numbering", "move", "-m", str(MAPPING), "--to", "12", "--reason", "rôles 1-11"]
    holder = _holder(db)
    with _released(holder):
        done = _pesgen(db, "2", *move)
    assert done.returncode == 7, done.stderr
    assert done.stderr.count(WAITING) == 1, done.stderr
    assert "another pesgen run held the state store's lock for 2 s" in done.stderr
    assert Store(f"sqlite:///{db}").sequences()[0].next_number == 2
    code, stdout, stderr = _released_once_waiting(db, *move)
    assert code == 0, stderr
    assert stderr.count(WAITING) == 1, stderr
    assert "next IdBord moved from 2 to 12" in stdout, stdout
    [state] = Store(f"sqlite:///{db}").sequences()
    assert state.next_number == 12 and [m.to_number for m in state.moves] == [12]


def test_runs_reinstate_waits_for_the_lock_then_reinstates_or_gives_up_changing_nothing(
        tmp_path):
    """`runs reinstate` takes the store's write lock as `runs cancel` does: held by another
    run, it says once that it waits; past the timeout it gives up (exit 7), the run still
    cancelled; let go, it reinstates the run."""
    db = tmp_path / "store.sqlite3"
    run = _recorded_run(db, tmp_path / "out")
    Store(f"sqlite:///{db}").cancel(run, "by mistake")
    reinstate = ["runs", "reinstate", run, "--reason", "undone"]
    holder = _holder(db)
    with _released(holder):
        done = _pesgen(db, "2", *reinstate)
    assert done.returncode == 7, done.stderr
    assert done.stderr.count(WAITING) == 1, done.stderr
    assert "another pesgen run held the state store's lock for 2 s" in done.stderr
    assert Store(f"sqlite:///{db}").list_runs()[0].status == "cancelled"
    code, stdout, stderr = _released_once_waiting(db, *reinstate)
    assert code == 0, stderr
    assert stderr.count(WAITING) == 1, stderr
    assert f"run {run} reinstated: its 11 invoice(s) are held again" in stdout, stdout
    assert Store(f"sqlite:///{db}").list_runs()[0].status == "committed"


# ------------------------------------------------ PostgreSQL: an export waiting for another


@contextmanager
def _pg_export_finishing(tmp_path: Path, url: str, start: int | None = None
                         ) -> Iterator[tuple[Store, threading.Event]]:
    """The example's export into the PostgreSQL store ``url``, held in its finishing step
    (its sequence's row locked, its run recorded, not committed) until the block sets the
    event it gives, or ends; the store given too. ``start``: the sequence set to start
    there first (its row committed: the export locks it; else the export inserts it)."""
    from datetime import date

    store = Store(url)
    if start is not None:
        store.set_start(("21450999400015", "00", 2026, "06"), start)
    finishing, release = threading.Event(), threading.Event()

    def slow_commit() -> None:
        finishing.set()
        # (at most 120 s: longer than any export started meanwhile takes to wait for it,
        # on a loaded machine too)
        release.wait(120)

    with_lock = threading.Thread(target=export_recorded, args=(
        lambda: store, MAPPING, EXAMPLES / "school-export.json", tmp_path / "first",
        date(2026, 11, 23)), kwargs={"before_commit": slow_commit})
    with_lock.start()
    try:
        assert finishing.wait(60)
        yield store, release
    finally:
        release.set()
        with_lock.join()
        store.engine.dispose()


def _other_export(tmp_path: Path, url: str, timeout: str) -> subprocess.Popen[str]:
    """``pesgen export`` of the example's invoices under other numbers (same numbering
    sequence) into ``url``, waiting at most ``timeout`` s for the store."""
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    for inv in data["invoices"]:
        inv["number"] += "-2"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, PESGEN_DB=url, PESGEN_STORE_LOCK_TIMEOUT=timeout)
    return subprocess.Popen([sys.executable, "-m", "pesgen", "export", "-m", str(MAPPING),
                             "-i", str(other), "-o", str(tmp_path / "second"),
                             "--date", "2026-11-23"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


@pytest.mark.parametrize("start", [None, 5], ids=["opening", "started"])
def test_a_postgresql_export_says_which_export_it_waits_for(tmp_path, start):
    """On PostgreSQL an export of a numbering sequence another export holds (rendering,
    validating and recording its run: 12 s for 20 000 invoices) waits on the sequence's
    row, the one that export locked or (opening the sequence) inserted. It waited as long
    as it took, without a word; it now says so past the grace, naming the export it
    waits for (its process, the run it will record), then numbers next once that one is
    committed."""
    with state_database("postgresql", tmp_path) as url, \
            _pg_export_finishing(tmp_path, url, start) as (store, release):
        proc = _other_export(tmp_path, url, "60")
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()  # said while the other holds the row
            release.set()
            _out, rest = proc.communicate(timeout=60)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        runs = sorted(store.list_runs(), key=lambda r: r.first_number)
    assert proc.returncode == 0, first + rest
    assert first.startswith("waiting for the state store: another pesgen export holds the "
                            "numbering of 21450999400015 budget 00 exercise 2026 TypBord 06 "
                            "while it renders, validates and records its files: process "
                            f"{os.getpid()}"), first
    assert f"run {runs[0].id} once recorded, its transaction open for " in first, first
    assert first.rstrip().endswith("(up to 60 s, store_lock_timeout)…"), first
    assert (first + rest).count("waiting for the state store") == 1
    assert [r.first_number for r in runs] == [start or 1, (start or 1) + 1]


def test_a_postgresql_export_gives_up_after_store_lock_timeout(tmp_path):
    """The wait is bounded as on SQLite (store_lock_timeout): past it the export stops,
    exit 7, nothing written, no number used; the export it waited for records its run."""
    with state_database("postgresql", tmp_path) as url:
        with _pg_export_finishing(tmp_path, url) as (store, _release):
            started = time.monotonic()
            proc = _other_export(tmp_path, url, "2")
            _out, err = proc.communicate(timeout=100)
            waited = time.monotonic() - started
        runs = store.list_runs()
    assert proc.returncode == 7, err
    assert err.count("waiting for the state store: another pesgen export holds") == 1, err
    assert "another pesgen run held the state store's lock for 2 s (store_lock_timeout): " \
           "the export stopped waiting for it; nothing written, no number used" in err, err
    assert waited < 60  # its 2 s and its start, not the other export's 120 s
    assert not (tmp_path / "second").exists() or not list((tmp_path / "second").iterdir())
    assert [r.first_number for r in runs] == [1]


def test_a_postgresql_export_waiting_for_another_session_names_its_process(tmp_path):
    """What holds the sequence's row is not always an export (another program's session,
    a support person's psql): the waiting export names its PostgreSQL process."""
    import sqlalchemy as sa

    with state_database("postgresql", tmp_path) as url:
        store = Store(url)
        store.set_start(("21450999400015", "00", 2026, "06"), 1)
        with store.engine.connect() as holder:
            holder.begin()
            pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            holder.execute(sa.text("SELECT * FROM sequences FOR UPDATE"))
            proc = _other_export(tmp_path, url, "2")
            _out, err = proc.communicate(timeout=100)
            holder.rollback()
        runs = store.list_runs()
        store.engine.dispose()
    assert proc.returncode == 7, err
    assert err.startswith("waiting for the state store: another session holds the numbering "
                          "of 21450999400015 budget 00 exercise 2026 TypBord 06 (PostgreSQL "
                          f"process {pid} "), err
    assert "another pesgen run held the state store's lock for 2 s" in err
    assert runs == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_runs_cancel_while_an_export_records_its_run(tmp_path, kind):
    """`runs cancel` of an earlier run while an export of the same numbering sequence is
    in its finishing step (numbered, its run recorded, not committed). SQLite: it waits
    for the store's lock, says so once, and past store_lock_timeout gives up (exit 7),
    nothing cancelled; let go, it cancels. PostgreSQL: it cancels while the export still
    holds its sequence's row (it locks the run's row, which the export does not). Either
    way nothing is lost or doubled: the export's run is recorded, IdBord 2, its titles
    active, the earlier run cancelled, its titles freed, and its number not given again."""
    from datetime import date

    import sqlalchemy as sa

    from pesgen.store import run_invoices

    with state_database(kind, tmp_path) as url:
        data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
        for inv in data["invoices"]:
            inv["number"] += "-0"
        earlier_input = tmp_path / "earlier.json"
        earlier_input.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        first = Store(url)
        earlier = export_recorded(lambda: first, MAPPING, earlier_input, tmp_path / "earlier",
                                  date(2026, 11, 23)).run_id
        first.engine.dispose()
        cancel = [sys.executable, "-m", "pesgen", "runs", "cancel", earlier, "--reason",
                  "IdBord 1 rejected"]

        def env(timeout: str) -> dict[str, str]:
            return dict(os.environ, PESGEN_DB=url, PESGEN_STORE_LOCK_TIMEOUT=timeout)

        with _pg_export_finishing(tmp_path, url) as (store, release):
            if kind == "sqlite":
                refused = subprocess.run(cancel, capture_output=True, text=True,
                                         env=env("1"), cwd=ROOT, timeout=60)
                assert refused.returncode == 7, refused.stderr
                assert refused.stderr.count(WAITING) == 1, refused.stderr
                assert "another pesgen run held the state store's lock for 1 s" in \
                    refused.stderr
                proc = subprocess.Popen(cancel, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env("60"),
                                        cwd=ROOT)
                try:
                    assert proc.stderr is not None
                    said = proc.stderr.readline()  # while the export holds the lock
                    release.set()
                    out, rest = proc.communicate(timeout=60)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                assert WAITING in said and WAITING not in rest, said + rest
                done = subprocess.CompletedProcess(cancel, proc.returncode, out, said + rest)
            else:
                done = subprocess.run(cancel, capture_output=True, text=True, env=env("60"),
                                      cwd=ROOT, timeout=60)
                # cancelled while the export's run is not committed yet
                assert [(r.id, r.status) for r in store.list_runs()] == [
                    (earlier, "cancelled")]
                assert "waiting for the state store" not in done.stderr, done.stderr
        assert done.returncode == 0, done.stderr
        assert f"run {earlier} cancelled: its 11 invoice(s) can be exported again" \
            in done.stdout, done.stdout
        after = Store(url)
        runs = sorted(after.list_runs(), key=lambda r: r.first_number)
        with after.engine.connect() as conn:
            active = conn.execute(sa.select(run_invoices.c.run_id, run_invoices.c.active,
                                            sa.func.count()).group_by(
                run_invoices.c.run_id, run_invoices.c.active)).all()
        [sequence] = after.sequences()
        after.engine.dispose()
    assert [(r.first_number, r.status, r.titles) for r in runs] == [
        (1, "cancelled", 11), (2, "committed", 11)]
    assert sorted(active) == sorted([(earlier, False, 11), (runs[1].id, True, 11)])
    assert sequence.next_number == 3


def test_a_bounded_wait_is_this_thread_s_alone_and_says_nothing(tmp_path):
    """``Store.waits_at_most`` (a server's request: ``payfip serve``'s notifications)
    gives up past its bound, without the note on standard error, while another thread's
    transaction on the same store still waits up to ``store_lock_timeout`` and says so."""
    from pesgen.errors import StoreLocked

    db = tmp_path / "store.sqlite3"
    told: list[float] = []
    store = Store(f"sqlite:///{db}", lock_timeout=4, on_wait=told.append)
    other: dict[str, Any] = {}

    def elsewhere() -> None:
        try:
            with store.transaction():
                other["waited"] = time.monotonic() - started
        except Exception as exc:  # noqa: BLE001 - told by the assertion below
            other["error"] = exc

    holder = _holder(db)
    with _released(holder):
        with store.waits_at_most(0.4):
            started = time.monotonic()
            thread = threading.Thread(target=elsewhere)
            thread.start()
            with pytest.raises(StoreLocked) as caught, store.transaction():
                pass
            bounded = time.monotonic() - started
            time.sleep(1.5)  # the other thread past its grace (1 s: a quarter of 4 s)
            holder.rollback()
            thread.join(10)
    assert caught.value.seconds == 0.4 and bounded < 2.0
    assert "error" not in other and other["waited"] > 1.5
    assert told == [4]  # said by the other thread alone
    with store.transaction():  # past the block, this thread waits as before
        pass


def test_a_postgresql_wait_for_two_held_sequences_is_said_once_and_bounded_in_all(
        tmp_path, monkeypatch):
    """A command waiting in turn for two numbering sequences' rows on PostgreSQL (here a
    numbering move of the IdBord and titre sequences, each held by another transaction
    past the grace) says that it waits once, as a SQLite store's wait is said once for
    all its transactions; and past the grace it waits for each row only what is left of
    store_lock_timeout, not the whole timeout again."""
    import sqlalchemy as sa

    from pesgen.store import PIECE_SEQUENCE, _LockWait

    timeouts: list[float] = []
    set_timeout = _LockWait._lock_timeout

    def recorded(conn: Any, seconds: float) -> None:
        timeouts.append(seconds)
        set_timeout(conn, seconds)

    monkeypatch.setattr(_LockWait, "_lock_timeout", staticmethod(recorded))
    bord = ("21450999400015", "00", 2026, "06")
    pieces = (*bord[:3], PIECE_SEQUENCE)
    told: list[tuple[Any, ...]] = []
    with state_database("postgresql", tmp_path) as url:
        store = Store(url, lock_timeout=8, on_wait=lambda *said: told.append(said))
        store.set_start(bord, 1, pieces=(pieces, 1))
        holders = [store.engine.connect() for _ in range(2)]
        timers: list[threading.Timer] = []
        try:
            for conn, key in zip(holders, (bord, pieces), strict=True):
                conn.begin()
                conn.execute(sa.text("SELECT * FROM sequences WHERE typ_bord = :t "
                                     "FOR UPDATE"), {"t": key[3]})
            # the IdBord row let go past the grace (2 s: a quarter of 8 s), the titre
            # numbers' row past the grace of the wait for it
            timers = [threading.Timer(delay, conn.rollback)
                      for conn, delay in zip(holders, (3, 6.5), strict=True)]
            for timer in timers:
                timer.start()
            timeouts.clear()
            moved = store.move([(bord, 5), (pieces, 5)], "numbers issued by hand")
        finally:
            for timer in timers:
                timer.cancel()
                timer.join()
            for conn in holders:
                conn.close()
            store.engine.dispose()
    assert [m.to_number for m in moved] == [5, 5]
    assert len(told) == 1 and told[0][0] == 8, told
    assert len(timeouts) == 4, timeouts  # each row: the grace, then what is left
    assert timeouts[0] == timeouts[2] == 2
    assert 0 < timeouts[1] <= 6 and 0 < timeouts[3] <= 6, timeouts


def test_a_postgresql_sequence_opened_while_several_sessions_write_names_none_of_them(
        tmp_path):
    """A sequence's row not committed yet (another transaction inserted it) is held by a
    session that wrote in the table: when several sessions have, which one holds it
    cannot be told, and the wait is said without naming one (not the first found); the
    row taken once the inserting transaction ends. Then the transaction waits as it did
    before, its lock_timeout back to the server's default."""
    import sqlalchemy as sa

    bord = ("21450999400015", "00", 2026, "06")
    told: list[tuple[Any, ...]] = []
    with state_database("postgresql", tmp_path) as url:
        store = Store(url, lock_timeout=8, on_wait=lambda *said: told.append(said))
        store.set_start((bord[0], "01", 2026, "06"), 1)  # a row another session updates
        holders = [store.engine.connect() for _ in range(2)]
        timer = threading.Timer(3, holders[0].rollback)
        try:
            for conn in holders:
                conn.begin()
            holders[0].execute(sa.text(
                "INSERT INTO sequences (id_coll, cod_bud, exercise, typ_bord, next_number, "
                "start_number) VALUES (:a, :b, :c, :d, 1, 1)"),
                {"a": bord[0], "b": bord[1], "c": bord[2], "d": bord[3]})
            holders[1].execute(sa.text("UPDATE sequences SET next_number = next_number "
                                       "WHERE cod_bud = '01'"))
            timer.start()
            with store.transaction() as conn:
                store._sequence_row(conn, bord)
                after = conn.exec_driver_sql("SHOW lock_timeout").scalar()
        finally:
            timer.cancel()
            timer.join()
            for conn in holders:
                conn.rollback()
                conn.close()
            store.engine.dispose()
    assert told == [(8,)], told
    assert after == "0", after


def test_a_postgresql_row_locked_in_a_savepoint_names_the_process_holding_it(tmp_path):
    """A sequence's row locked in a savepoint then updated (what an export that waited
    for it does: _LockWait.row) has for xmax a MultiXact, not the holding transaction's
    id: the waiting command still names the PostgreSQL process holding it (the
    MultiXact's member), not merely 'another pesgen run'."""

    bord = ("21450999400015", "00", 2026, "06")
    told: list[tuple[Any, ...]] = []
    with state_database("postgresql", tmp_path) as url:
        store = Store(url, lock_timeout=8, on_wait=lambda *said: told.append(said))
        store.set_start(bord, 1)
        try:
            with _pg_held(store.engine, "SAVEPOINT w", "SELECT * FROM sequences FOR UPDATE",
                          "RELEASE SAVEPOINT w",
                          "UPDATE sequences SET next_number = next_number + 1") as pid:
                store.move([(bord, 5)], "numbers issued by hand")
        finally:
            store.engine.dispose()
    assert len(told) == 1 and len(told[0]) == 2, told
    assert told[0][1].startswith("another session holds the numbering of 21450999400015 "
                                 f"budget 00 exercise 2026 TypBord 06 (PostgreSQL process {pid}"
                                 ), told


def test_a_postgresql_command_waiting_after_writing_a_sequence_names_the_other_session(
        tmp_path):
    """A command that has written a sequence's row (set-start: the IdBord sequence's)
    and then waits for another's, inserted by a transaction still open (the titre
    numbers' sequence), names that transaction's session: not its own, which wrote in
    the table too."""

    from pesgen.store import PIECE_SEQUENCE

    bord = ("21450999400015", "00", 2026, "06")
    pieces = (*bord[:3], PIECE_SEQUENCE)
    told: list[tuple[Any, ...]] = []
    with state_database("postgresql", tmp_path) as url:
        store = Store(url, lock_timeout=8, on_wait=lambda *said: told.append(said))
        try:
            with _pg_held(store.engine,
                          "INSERT INTO sequences (id_coll, cod_bud, exercise, typ_bord, "
                          "next_number, start_number) VALUES (:a, :b, :c, :d, 1, 1)",
                          params=dict(zip("abcd", pieces, strict=True))) as pid:
                store.set_start(bord, 1, pieces=(pieces, 1))
        finally:
            store.engine.dispose()
    assert len(told) == 1 and len(told[0]) == 2, told
    assert f"(PostgreSQL process {pid}" in told[0][1], told


def test_a_postgresql_wait_for_a_session_of_another_role_is_said_without_its_details(
        tmp_path):
    """A store's role that may not read another role's sessions (no pg_read_all_stats)
    sees their transactions' start as NULL: the wait for a row such a session holds is
    said without naming it, as when it cannot be told, not stopped by the NULL."""
    import uuid


    bord = ("21450999400015", "00", 2026, "06")
    role = f"pesgen_{uuid.uuid4().hex[:8]}"
    told: list[tuple[Any, ...]] = []
    with state_database("postgresql", tmp_path) as url:
        owner = Store(url)
        owner.set_start(bord, 1)
        with owner.engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            conn.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
            conn.exec_driver_sql(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        rest = url.split("@", 1)[1]
        store = Store(f"postgresql://{role}@{rest}", lock_timeout=8,
                      on_wait=lambda *said: told.append(said))
        try:
            with _pg_held(owner.engine, "SELECT * FROM sequences FOR UPDATE"):
                store.move([(bord, 5)], "numbers issued by hand")
        finally:
            store.engine.dispose()
            with owner.engine.begin() as conn:
                conn.exec_driver_sql(f"DROP OWNED BY {role}")
                conn.exec_driver_sql(f"DROP ROLE {role}")
            owner.engine.dispose()
    assert told == [(8,)], told


def test_a_bounded_wait_within_another_gives_the_outer_bound_back(tmp_path):
    """``Store.waits_at_most`` nests: past an inner block, a transaction waits at most
    the outer block's bound again, not ``store_lock_timeout``."""
    from pesgen.errors import StoreLocked

    db = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{db}", lock_timeout=30)
    holder = _holder(db)
    with _released(holder), store.waits_at_most(0.4):
        with store.waits_at_most(0.2):
            pass
        started = time.monotonic()
        with pytest.raises(StoreLocked) as caught, store.transaction():
            pass
    assert caught.value.seconds == 0.4 and time.monotonic() - started < 10


def test_a_postgresql_start_waiting_for_a_started_sequence_s_row_is_refused_once_free(
        tmp_path):
    """A numbering set-start waiting on PostgreSQL for a sequence's row another
    transaction holds (an export of it) takes the row once free, as it is: a sequence
    started is refused a start, not taken for one it opened itself."""
    import sqlalchemy as sa

    from pesgen.errors import StateError

    bord = ("21450999400015", "00", 2026, "06")
    with state_database("postgresql", tmp_path) as url:
        store = Store(url, lock_timeout=8)
        store.set_start(bord, 5)
        holder = store.engine.connect()
        timer = threading.Timer(3, holder.rollback)
        try:
            holder.begin()
            holder.execute(sa.text("SELECT * FROM sequences FOR UPDATE"))
            timer.start()
            with pytest.raises(StateError, match="has already started at 5"):
                store.set_start(bord, 7)
        finally:
            timer.cancel()
            timer.join()
            holder.rollback()
            holder.close()
        state = store.sequence(bord)
        store.engine.dispose()
    assert state is not None and (state.start, state.next_number) == (5, 5)
