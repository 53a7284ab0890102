"""Benchmark: the recording of an export's run in the store (``Store.record_run``).

    python benchmarks/bench_record.py --invoices 20000 [--lines 1] [--repeat 1]
        [--db postgresql://…] [--keep] [--pesgen CHECKOUT]

Generates ``--invoices`` invoices (``bench_export.generate``) and exports them with the
example mapping (``pesgen export --create-store``, dated 2026-11-23) into a new store
each round: a SQLite file of the work folder, or with ``--db URL`` a new database of that
PostgreSQL server (``pesgen_bench_rec_…``, created beside the URL's own, which is left
alone; dropped at the end unless ``--keep``). The CLI runs in a fresh interpreter, its
``Store.record_run`` timed: the run's row, its files and titles, the sequences moved on,
the statistics read again (PostgreSQL) — the time the export holds its sequence's lock
for that, the commit aside. Within it each SQL statement sent is counted and timed by its
kind (its first words and table: a SQLAlchemy ``before/after_cursor_execute`` event; an
executemany counts once), with the rows it carried; PostgreSQL's ``COPY run_invoices``,
sent on the driver's cursor, which the event does not see, is timed around
``store._copy_titles`` (the titles' rows made in it included). ``--pesgen CHECKOUT`` runs that
checkout's pesgen (another version, on ``PYTHONPATH``), to compare two versions
alternately on the same machine.

Prints one JSON line (``--repeat``: the medians of ``record_s`` and ``export_s``, the
rounds under ``rounds``); docs/performance.md ("Recording a run in the store") records
them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "villeneuve-sur-loing.yaml"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import generate, pg_server, work_folder  # noqa: E402

# the CLI in-process, as the console script runs it, Store.record_run timed and the
# statements it sends counted by kind
CHILD = """
import json, re, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
from pesgen import store as store_module
inside = [False]
kinds = {{}}
started = [0.0]
def kind(statement):
    words = re.sub(r"\\s+", " ", statement.strip()).split(" ")
    table = next((w for w in words[1:6] if w.islower() and w.isidentifier()
                  and w not in ("into", "from", "set", "where")), "")
    return " ".join([words[0].upper(), table]).strip()
@event.listens_for(Engine, "before_cursor_execute")
def _before(conn, cursor, statement, parameters, context, executemany):
    started[0] = time.perf_counter()
@event.listens_for(Engine, "after_cursor_execute")
def _after(conn, cursor, statement, parameters, context, executemany):
    if not inside[0]:
        return
    k = kinds.setdefault(kind(statement), {{"statements": 0, "rows": 0, "seconds": 0.0}})
    k["statements"] += 1
    k["rows"] += len(parameters) if executemany else 1
    k["seconds"] += time.perf_counter() - started[0]
copy_titles = getattr(store_module, "_copy_titles", None)
if copy_titles is not None:  # PostgreSQL's COPY of the titles, which the event misses
    def copied(conn, run_id, id_coll, invoices):
        start = time.perf_counter()
        copy_titles(conn, run_id, id_coll, invoices)
        k = kinds.setdefault("COPY run_invoices", {{"statements": 0, "rows": 0, "seconds": 0.0}})
        k["statements"] += 1
        k["rows"] += len(invoices)
        k["seconds"] += time.perf_counter() - start
    store_module._copy_titles = copied
original = store_module.Store.record_run
spent = [0.0]
def timed(*a, **k):
    inside[0] = True
    start = time.perf_counter()
    try:
        return original(*a, **k)
    finally:
        spent[0] += time.perf_counter() - start
        inside[0] = False
store_module.Store.record_run = timed
sys.argv = ["pesgen"] + {args!r}
from pesgen.cli import main
start = time.perf_counter()
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({{"export_s": time.perf_counter() - start, "exit": code,
                  "record_s": spent[0],
                  "statements": sum(k["statements"] for k in kinds.values()),
                  "kinds": {{n: {{**k, "seconds": round(k["seconds"], 3)}}
                            for n, k in sorted(kinds.items())}}}}))
"""


class Stores:
    """A new store per round: a file of the work folder (SQLite), or a database of the
    ``--db`` PostgreSQL server, dropped by ``close`` unless kept."""

    def __init__(self, work: Path, server: str | None, keep: bool) -> None:
        self.work, self.keep, self.admin = work, keep, None
        self.made: list[str] = []
        if server is None:
            return
        self._url, self.admin, self.prefix = pg_server(server, "pesgen_bench_rec")

    def new(self, round_: int) -> str:
        if self.admin is None:
            return f"sqlite:///{self.work / f'store-{round_}.sqlite3'}"
        name = f"{self.prefix}_{round_}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return self._url.set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        if self.admin is None:
            return
        if self.keep:
            print(f"databases kept: {', '.join(self.made)}", file=sys.stderr)
        else:
            with self.admin.connect() as conn:
                for name in self.made:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


def _round(work: Path, source: Path, db: str, round_: int, pesgen: str | None) -> dict:
    out = work / f"out-{round_}"
    args = ["export", "-m", str(MAPPING), "-i", str(source), "-o", str(out),
            "--date", "2026-11-23", "--db", db, "--create-store", "-q"]
    env = dict(os.environ)
    if pesgen is not None:
        env["PYTHONPATH"] = str(Path(pesgen).resolve())
    done = subprocess.run([sys.executable, "-c", CHILD.format(args=args)], cwd=work, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit(f"the export failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["exit"] != 0:
        raise SystemExit(f"the export ended {figures['exit']}:\n{done.stderr[-3000:]}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, metavar="N")
    parser.add_argument("--db", metavar="URL",
                        help="a PostgreSQL server's URL: a new database on it per round")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (and the databases)")
    parser.add_argument("--pesgen", metavar="CHECKOUT",
                        help="run this checkout's pesgen (on PYTHONPATH)")
    opts = parser.parse_args()
    with work_folder("pesgen-bench-record-", opts.keep) as work:
        source = work / "input.json"
        generate(source, opts.invoices, opts.lines)
        stores = Stores(work, opts.db, opts.keep)
        try:
            rounds = [_round(work, source, stores.new(r), r, opts.pesgen)
                      for r in range(opts.repeat)]
        finally:
            stores.close()
    print(json.dumps({
        "invoices": opts.invoices, "lines": opts.lines,
        "store": "postgresql" if opts.db else "sqlite", "pesgen": opts.pesgen or str(ROOT),
        "record_s": round(statistics.median(r["record_s"] for r in rounds), 3),
        "export_s": round(statistics.median(r["export_s"] for r in rounds), 3),
        "statements": rounds[0]["statements"], "kinds": rounds[0]["kinds"],
        **({"rounds": [{k: r[k] for k in ("record_s", "export_s")} for r in rounds]}
           if opts.repeat > 1 else {})}))


if __name__ == "__main__":
    main()
