"""Benchmark: the numbers cancelled before sending at scale (``Store.unsent``, and
``Store.numbering_gap``, which every PES export and its dry run read).

    python benchmarks/bench_unsent.py --runs 50000 [--collectivities 50]
        [--exercises 5] [--repeat 20] [--no-sequences] [--db postgresql://…] [--keep]

Builds a store holding ``--runs`` runs: one real export of the example (its run's row,
blobs and all, is the model of every other), then the others in bulk, spread over
``--collectivities`` SIRETs and ``--exercises`` exercises (2026 back), TypBord 06, budget
00, each collectivity-exercise a sequence of runs of one bordereau each (its row in
``sequences``); every run acknowledged accepted (an acquit per sequence) but one in 100,
cancelled whole with no acknowledgement, and one in 250 with a bordereau cancelled on
its own row as well (rejected, acknowledged). The last sequence's last run is cancelled:
the export after it follows it, so ``numbering_gap`` reads the unsent numbers and finds
one. A SQLite file of the work folder, or with ``--db URL`` a new database of that
PostgreSQL server (``pesgen_bench_unsent_…``, dropped at the end unless ``--keep``),
ANALYZEd after the bulk insert (what autovacuum would do meanwhile).

Times, each the median of ``--repeat`` calls on one open connection (as the export
reads them, in its transaction): ``unsent`` of that sequence, ``numbering_gap`` of it
(the largest number taken, then ``unsent``), and ``sequences()`` of the whole store
(`pesgen numbering show` without --mapping: every sequence, with its ``unsent``), once
(not with ``--no-sequences``).
Prints one JSON line with the figures and the database's plan of each statement
``numbering_gap`` sends (SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN
ANALYZE``); docs/performance.md ("numbering_gap and unsent at scale") records them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "villeneuve-sur-loing.yaml"
EXAMPLE = ROOT / "examples" / "school-export.json"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import pg_server, work_folder  # noqa: E402

CANCELLED_EVERY = 100  # one run in 100 cancelled whole, never acknowledged
PART_EVERY = 250  # one in 250 with a bordereau cancelled on its own row (acknowledged)


def _build(db: str, work: Path, runs_: int, colls: int, exercises: int) -> tuple:
    """The store of ``runs_`` runs: (the Store, the key of the last sequence, the number
    its next run takes)."""
    import sqlalchemy as sa

    from pesgen.runs import export_recorded
    from pesgen.store import (
        Store,
        acquit_bordereaux,
        acquits,
        cancelled_bordereaux,
        runs,
        sequences,
    )

    store = Store(db)
    model = export_recorded(lambda: store, MAPPING, EXAMPLE, work / "out", date(2026, 11, 23))
    with store.engine.connect() as conn:
        row = dict(conn.execute(sa.select(runs).where(runs.c.id == model.run_id)).one()
                   ._mapping)
    per = max(runs_ - 1, 1) // (colls * exercises) or 1
    keys = [(f"2199{c:010d}", 2026 - e) for c in range(colls) for e in range(exercises)]
    made, batch, acks, parts = 1, [], [], []
    seq_rows, ack_files = [], []
    at = "2026-11-23T10:00:00Z"

    def flush(conn) -> None:
        for table, rows in ((runs, batch), (acquit_bordereaux, acks),
                            (cancelled_bordereaux, parts)):
            if rows:
                conn.execute(table.insert(), rows)
                rows.clear()

    with store.engine.begin() as conn:
        for k, (id_coll, exercise) in enumerate(keys):
            ack_id = k + 1000
            ack_files.append({"id": ack_id, "sha256": f"{k:064x}", "name": f"ack-{k}.xml",
                              "id_coll": id_coll, "cod_bud": "00", "nom_fic": None,
                              "issued_on": "2026-11-24", "recorded_at": at})
            last = k == len(keys) - 1 or runs_ - made <= per
            count = (runs_ - made) if last else per
            for n in range(1, count + 1):
                run_id = f"bench-{k:05d}-{n:06d}"
                cancelled = n % CANCELLED_EVERY == 0 or (last and n == count)
                batch.append({**row, "id": run_id, "id_coll": id_coll, "exercise": exercise,
                              "first_number": n, "bordereaux": 1,
                              "status": "cancelled" if cancelled else "committed",
                              "cancelled_at": at if cancelled else None,
                              "cancel_reason": "wrong term exported" if cancelled else None})
                if not cancelled:
                    acks.append({"acquit_id": ack_id, "run_id": run_id, "id_bord": n,
                                 "line": n, "domain": "6", "accepted": n % PART_EVERY != 0,
                                 "errors": "[]", "error_count": 0, "superseded_at": None})
                if n % PART_EVERY == 0 and not cancelled:
                    parts.append({"run_id": run_id, "id_bord": n, "cancelled_at": at,
                                  "reason": "trésorerie rejected it"})
                made += 1
                if len(batch) >= 1000:
                    if ack_files:
                        conn.execute(acquits.insert(), ack_files)
                        ack_files.clear()
                    flush(conn)
            seq_rows.append({"id_coll": id_coll, "cod_bud": "00", "exercise": exercise,
                             "typ_bord": "06", "next_number": count + 1, "start_number": 1})
            key, first = (id_coll, "00", exercise, "06"), count + 1
            if last:
                break
        if ack_files:
            conn.execute(acquits.insert(), ack_files)
        flush(conn)
        conn.execute(sequences.insert(), seq_rows)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return store, key, first


def _median(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _plans(store, conn, call) -> list[dict]:
    """Each statement ``call`` sends, with the database's plan of it."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def listen(_conn, _cursor, statement, parameters, _context, _many) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", listen)
    try:
        call()
    finally:
        event.remove(store.engine, "before_cursor_execute", listen)
    plans = []
    for statement, parameters in seen:
        if conn.dialect.name == "sqlite":
            plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                         parameters)]
        else:
            plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN ANALYZE " + statement,
                                                        parameters)]
        plans.append({"statement": " ".join(statement.split())[:120], "plan": plan})
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--collectivities", type=int, default=50)
    parser.add_argument("--exercises", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=20, metavar="N")
    parser.add_argument("--db", metavar="URL",
                        help="a PostgreSQL server's URL: a new database on it")
    parser.add_argument("--no-sequences", action="store_true",
                        help="do not time sequences() (minutes at 50 000 runs without "
                             "the index of migration 20)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (and the database)")
    opts = parser.parse_args()
    admin = name = None
    with work_folder("pesgen-bench-unsent-", opts.keep) as work:
        db = f"sqlite:///{work / 'store.sqlite3'}"
        if opts.db:
            url, admin, name = pg_server(opts.db, "pesgen_bench_unsent")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            db = url.set(database=name).render_as_string(hide_password=False)
        try:
            started = time.perf_counter()
            store, key, first = _build(db, work, opts.runs, opts.collectivities,
                                       opts.exercises)
            built = time.perf_counter() - started
            with store.engine.connect() as conn:
                gap = store.numbering_gap(conn, key, first)
                unsent = store.unsent(conn, key)
                figures = {
                    "unsent_ms": _median(lambda: store.unsent(conn, key), opts.repeat) * 1e3,
                    "numbering_gap_ms": _median(
                        lambda: store.numbering_gap(conn, key, first), opts.repeat) * 1e3,
                    "plans": _plans(store, conn, lambda: store.numbering_gap(conn, key,
                                                                             first))}
            started = time.perf_counter()
            shown = [] if opts.no_sequences else store.sequences()
            figures["sequences_s"] = (None if opts.no_sequences
                                      else round(time.perf_counter() - started, 3))
            store.engine.dispose()
        finally:
            if admin is not None:
                if opts.keep:
                    print(f"database kept: {name}", file=sys.stderr)
                else:
                    with admin.connect() as conn:
                        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    import pesgen.store

    print(json.dumps({
        "pesgen": str(Path(pesgen.store.__file__).parent),
        "schema": len(pesgen.store.MIGRATIONS), "runs": opts.runs,
        "collectivities": opts.collectivities, "exercises": opts.exercises,
        "store": "postgresql" if opts.db else "sqlite",
        "build_s": round(built, 2), "sequences": len(shown), "unsent": len(unsent),
        "gap": [u.id_bord for u in gap],
        "unsent_ms": round(figures["unsent_ms"], 3),
        "numbering_gap_ms": round(figures["numbering_gap_ms"], 3),
        "sequences_s": figures["sequences_s"], "plans": figures["plans"]}))


if __name__ == "__main__":
    main()
