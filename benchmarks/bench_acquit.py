"""Benchmark: read a large trésorerie acknowledgement (PES_ACQUIT) with `pesgen acquit`.

    python benchmarks/bench_acquit.py --elements 10000 [--pieces 1] [--rejected-every 10]
        [--exported K] [--repeat 1] [--modes read,json,record,run]
        [--cancelled {no,yes,again}] [--db postgresql://…] [--keep] [--outputs DIR]
        [--pesgen CHECKOUT]

1. Generates ``N × --pieces`` invoices (``bench_export.generate``, one line each) and
   exports them with the example mapping split into bordereaux of ``--pieces`` titles
   (``output.max_pieces_per_bordereau``): one run of ``N`` bordereaux (ORMC, TypBord 06),
   recorded in a SQLite store of the work folder (``pesgen export --create-store``, dated
   2026-11-23), or with ``--db URL`` in a new database of that PostgreSQL server
   (``pesgen_bench_…``, created beside the URL's own, which is left alone; dropped at
   the end unless ``--keep``). With ``--exported K``, K bordereaux only are exported, the run's
   others copied from them in the store (``_copied``: their own IdBord, file names,
   invoices and NumDettes, the same IdPce; no file written): an export keeps a spool file open
   per bordereau until it writes them, and 50 000 pass the machine's limit of open
   files (20 000 here). Its time is reported (``setup_s``), not measured further. With
   ``--cancelled yes`` the run is then cancelled (`pesgen runs cancel RUN --all`), so
   that each acceptance is of a bordereau pesgen holds as cancelled (exit 10); with
   ``--cancelled again`` the same input is exported again too, into a second run
   holding every invoice now (what the report names for each acceptance). Mode ``run``
   is then refused (``--run`` ties to an active run only). ``--exported`` copies rows
   in a SQLite store only.
2. Writes the acquit of that run: one ElementACQUIT per bordereau (DomaineAck 7, the
   NumBord and ExerciceBord the run recorded), every ``--rejected-every``-th rejected
   with an Erreur and a DetailPiece naming its first IdPce (1) and a DetailLigne.
3. Runs the CLI in a fresh interpreter for each mode, on a copy of the store each time
   (``--record`` writes; on PostgreSQL a database made from the store's as its
   template): ``read`` (`pesgen acquit FILE`), ``json`` (``--json``), ``record``
   (``--record``), ``run`` (``--record --run RUN``); and ``held`` (not in the default
   modes), the duplicate guard's look-up alone (``Store.holders`` and ``debt_holders``
   of the first run's invoice numbers and NumDettes, in one connection, as an export of
   the same input or the acquit of cancelled bordereaux make it: all held with
   ``--cancelled no`` or ``again``, none with ``yes``), its figures those of the look-up
   (``held``: the numbers found held). Each child counts the SQL statements it sends (a
   SQLAlchemy ``before_cursor_execute`` event, PRAGMA and BEGIN included), and gives its
   wall time, its CPU time (user + system: of the process alone, a PostgreSQL server's
   is not in it) and its peak RSS.

Prints one JSON line with the figures (``--repeat``: each mode's medians, the rounds
under ``rounds``); docs/performance.md ("Reading a large acquit") records them.
``--outputs DIR`` writes each mode's standard output and exit code there (``MODE.out``),
to compare two versions of pesgen's reports (their ``recorded`` dates aside);
``--pesgen CHECKOUT`` runs that checkout's pesgen (another version, on ``PYTHONPATH``)
for the acquit, the run being exported by this one's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "villeneuve-sur-loing.yaml"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import generate, pg_server, work_folder  # noqa: E402

MODES = {"read": [], "json": ["--json"], "record": ["--record"],
         "run": ["--record", "--run", "{run}"], "held": []}
DEFAULT_MODES = "read,json,record,run"

# the CLI in-process, as the console script runs it, counting the statements sent
CHILD = """
import json, resource, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
count = [0]
@event.listens_for(Engine, "before_cursor_execute")
def _counted(*_args):
    count[0] += 1
sys.argv = ["pesgen"] + {args!r}
from pesgen.cli import main
start = time.perf_counter()
code = 0
with open({out!r}, "w", encoding="utf-8") as out:
    sys.stdout = out
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.stdout = sys.__stdout__
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": time.perf_counter() - start, "exit": code,
                  "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_mib": usage.ru_maxrss / 1024, "statements": count[0]}}))
"""

# the duplicate guard's look-up alone (mode held): the run's numbers read first, then
# Store.holders and debt_holders timed in one connection (the CPU of that span)
HELD_CHILD = """
import json, resource, time
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from pesgen.store import Store
store = Store({url!r})
with store.engine.connect() as c:
    rows = c.execute(sa.text("SELECT id_coll, invoice, debt_number FROM run_invoices "
                             "WHERE run_id = :run ORDER BY id"), {{"run": {run!r}}}).all()
(id_coll,) = {{r[0] for r in rows}}
invoices = [r[1] for r in rows]
debts = [r[2] for r in rows if r[2] is not None]
count = [0]
@event.listens_for(Engine, "before_cursor_execute")
def _counted(*_args):
    count[0] += 1
start, cpu = time.perf_counter(), time.process_time()
with store.engine.connect() as c:
    held = len(store.holders(c, id_coll, invoices)) + len(store.debt_holders(c, id_coll, debts))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": seconds, "exit": 0, "cpu_s": cpu,
                  "peak_mib": usage.ru_maxrss / 1024, "statements": count[0],
                  "numbers": len(invoices) + len(debts), "held": held}}))
"""


class Stores:
    """The benchmark's store (``url``) and its copies, one a mode: files of the work
    folder (SQLite), or databases of the ``--db`` PostgreSQL server, made from the
    store's as their template, dropped by ``drop`` and ``close``."""

    def __init__(self, work: Path, server: str | None, keep: bool) -> None:
        self.work, self.keep, self.admin = work, keep, None
        if server is None:
            self.url = f"sqlite:///{work / 'store.sqlite3'}"
            return
        self._url, self.admin, self.prefix = pg_server(server, "pesgen_bench")
        self.url = self._create(self.prefix)

    def _create(self, name: str, template: str | None = None) -> str:
        assert self.admin is not None
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"'
                                 + ("" if template is None else f' TEMPLATE "{template}"'))
        return self._url.set(database=name).render_as_string(hide_password=False)

    def copy(self, mode: str) -> str:
        """A copy of the store for ``mode``, as it is now."""
        if self.admin is None:
            copy = self.work / f"store-{mode}.sqlite3"
            shutil.copyfile(self.work / "store.sqlite3", copy)
            return f"sqlite:///{copy}"
        return self._create(f"{self.prefix}_{mode}", template=self.prefix)

    def drop(self, url: str) -> None:
        if self.admin is None:
            Path(url.removeprefix("sqlite:///")).unlink()
            return
        import sqlalchemy as sa

        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}"'
                                 " WITH (FORCE)")

    def close(self) -> None:
        if self.admin is None:
            return
        if self.keep:
            print(f"store kept: {self.url}", file=sys.stderr)
        else:
            self.drop(self.url)
        self.admin.dispose()


def _setup(work: Path, db: str, elements: int, pieces: int, cancelled: str, exported: int
           ) -> tuple[str, float]:
    """The run of ``elements`` bordereaux of ``pieces`` titles in the store ``db``: its
    id (``cancelled``: ``--cancelled``; ``exported``: ``--exported``)."""
    source = work / "input.json"
    generate(source, exported * pieces, 1)
    mapping = work / "mapping.yaml"
    text = MAPPING.read_text(encoding="utf-8")
    assert "  asap_delay_days: 0\n" in text
    mapping.write_text(text.replace(
        "  asap_delay_days: 0\n",
        f"  asap_delay_days: 0\n  max_pieces_per_bordereau: {pieces}\n"), encoding="utf-8")
    start = time.perf_counter()

    def export(out: str, *create: str) -> None:
        subprocess.run([sys.executable, "-m", "pesgen", "export", "-m", str(mapping), "-i",
                        str(source), "-o", str(work / out), "--date", "2026-11-23", "--db",
                        db, *create, "-q"], check=True, cwd=ROOT)

    export("out", "--create-store")
    seconds = time.perf_counter() - start
    listed = subprocess.run([sys.executable, "-m", "pesgen", "runs", "list", "--db",
                             db, "--format", "json"], check=True,
                            capture_output=True, text=True, cwd=ROOT)
    runs = json.loads(listed.stdout)
    runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
    (run,) = runs
    run_id = run.get("id") or run["run"]
    if exported < elements:
        start = time.perf_counter()
        _copied(Path(db.removeprefix("sqlite:///")), run_id, exported, elements, pieces)
        seconds += time.perf_counter() - start
    if cancelled != "no":
        subprocess.run([sys.executable, "-m", "pesgen", "runs", "cancel", run_id, "--all",
                        "--reason", "benchmark", "--db", db],
                       check=True, cwd=ROOT, capture_output=True)
    if cancelled == "again":
        start = time.perf_counter()
        export("again")
        seconds += time.perf_counter() - start
    return run_id, seconds


def _copied(store: Path, run_id: str, exported: int, elements: int, pieces: int) -> None:
    """The run's records in ``store`` made ``elements`` bordereaux long from the
    ``exported`` ones: bordereau ``b`` past them is a copy of bordereau
    ``(b - 1) % exported + 1``'s files and titles under its own IdBord, file names,
    invoice numbers and NumDettes (those ``generate`` would have given its
    titles); the run's counts and the sequence follow. No file is written: the acquit
    reads the store alone."""
    from decimal import Decimal

    from pesgen.keys import invoice_key

    def shifted(text: str, width: int, by: int, prefix: str = "") -> str:
        assert text.startswith(prefix) and text[len(prefix):].isdigit(), text
        return f"{prefix}{int(text[len(prefix):]) + by:0{width}d}"

    with sqlite3.connect(store) as db:
        db.row_factory = sqlite3.Row
        # each bordereau's files (its references CSV has no IdBord: by its name) and
        # titles, looked up by bordereau (not searched for each copy: quadratic)
        files: dict[int, list[dict]] = {}
        for r in db.execute("SELECT * FROM run_files WHERE run_id = ? ORDER BY id",
                            (run_id,)):
            f = dict(r)
            number = f["id_bord"] or int(f["name"].removesuffix(".references.csv")[-7:])
            files.setdefault(number, []).append(f)
        titles: dict[int, list[dict]] = {}
        for r in db.execute("SELECT * FROM run_invoices WHERE run_id = ? ORDER BY id",
                            (run_id,)):
            titles.setdefault(r["id_bord"], []).append(dict(r))
        new_files, new_titles = [], []
        for b in range(exported + 1, elements + 1):
            source = (b - 1) % exported + 1
            by = b - source  # bordereaux; titles: by * pieces
            for f in files[source]:
                name = f["name"].replace(f"_{source:07d}.", f"_{b:07d}.")
                assert name != f["name"], name
                new_files.append(dict(f, id=None, name=name,
                                      id_bord=None if f["id_bord"] is None else b))
            for t in titles[source]:
                invoice = shifted(t["invoice"], 7, by * pieces, "FB-2026-")
                new_titles.append(dict(
                    t, id=None, id_bord=b,  # IdPce: numbered within its bordereau
                    invoice=invoice, invoice_key=invoice_key(invoice),
                    debt_number=None if t["debt_number"] is None
                    else shifted(t["debt_number"], 7, by * pieces, "2026")))
        for table, rows in (("run_files", new_files), ("run_invoices", new_titles)):
            columns = list(rows[0])
            db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                           f"({', '.join('?' * len(columns))})",
                           [[r[c] for c in columns] for r in rows])
        every = [t for part in titles.values() for t in part] + new_titles
        total = sum((Decimal(t["amount"]) for t in every), Decimal(0))
        db.execute("UPDATE runs SET bordereaux = ?, titles = ?, total = ? WHERE id = ?",
                   (elements, len(every), str(total), run_id))
        db.execute("UPDATE sequences SET next_number = next_number + ? WHERE "
                   "next_number = ?", (elements - exported, exported + 1))


def write_acquit(path: Path, elements: int, pieces: int, rejected_every: int) -> None:
    """The acquit of the run's ``elements`` bordereaux (IdBord 1 to N, exercise 2026, of
    ``pieces`` titles each, IdPce 1 to ``pieces`` in each: an ORMC numbers its pieces
    within their bordereau; until the forty-sixth session the rejections named IdPce
    ``(i - 1) × pieces + 1``, a piece of no title past the first bordereau)."""
    with path.open("w", encoding="iso-8859-1") as out:
        out.write(
            '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
            '<n:PES_ACQUIT xmlns:n="http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2">\n'
            '  <Enveloppe>\n    <Parametres>\n      <Version V="2"/>\n'
            '      <TypFic V="PESALR2"/>\n'
            '      <NomFic V="PESORMC_21450999400015_2026_0000001.xml"/>\n'
            '    </Parametres>\n  </Enveloppe>\n'
            '  <EnTetePES>\n    <DteStr V="2026-11-24"/>\n    <IdPost V="045012"/>\n'
            '    <IdColl V="21450999400015"/>\n    <CodCol V="123"/>\n'
            '    <CodBud V="00"/>\n'
            '    <LibelleColBud V="COMMUNE DE VILLENEUVE SUR LOING"/>\n  </EnTetePES>\n'
            '  <ACQUIT>\n    <EnTeteAcquit>\n      <IdVer V="2"/>\n    </EnTeteAcquit>\n')
        for i in range(1, elements + 1):
            rejected = rejected_every > 0 and i % rejected_every == 0
            out.write('    <ElementACQUIT>\n      <DomaineAck V="7"/>\n'
                      f'      <EtatAck V="{0 if rejected else 1}"/>\n'
                      f'      <NumBord V="{i}"/>\n      <ExerciceBord V="2026"/>\n')
            if rejected:
                out.write(
                    '      <Erreur>\n        <NumAnoAck V="ERREUR_CUMUL_MONTANTS"/>\n'
                    '        <LibelleAnoAck V="Le montant du bordereau ne correspond pas à '
                    'la somme des pièces"/>\n      </Erreur>\n'
                    '      <DetailPiece>\n        <NumPiece V="1"/>\n'
                    '        <Erreur>\n          <NumAnoAck V="ERREUR_CODIFICATION"/>\n'
                    '          <LibelleAnoAck V="Civilité inconnue"/>\n        </Erreur>\n'
                    '        <DetailLigne>\n          <NumLigne V="1"/>\n'
                    '          <Erreur>\n            <NumAnoAck V="ERREUR_AUTRE"/>\n'
                    '          </Erreur>\n        </DetailLigne>\n      </DetailPiece>\n')
            out.write('    </ElementACQUIT>\n')
        out.write('  </ACQUIT>\n</n:PES_ACQUIT>\n')


def _measure(work: Path, stores: Stores, ack: Path, mode: str, run: str,
             outputs: Path | None, checkout: Path) -> dict:
    """One mode, on a copy of the store, in a fresh interpreter running ``checkout``'s
    pesgen (from the work folder, so that no other one comes first on its path)."""
    copy = stores.copy(mode)
    try:
        args = ["acquit", str(ack), "--db", copy] + [a.format(run=run) for a in MODES[mode]]
        out = (outputs or work) / f"{mode}.out"
        code = (HELD_CHILD.format(url=copy, run=run) if mode == "held" else
                CHILD.format(args=args, out=str(out)))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=work, env=dict(os.environ, PYTHONPATH=str(checkout)))
        if proc.returncode:
            raise SystemExit(proc.stderr)
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        if mode != "held":
            with out.open("a", encoding="utf-8") as said:
                said.write(f"[exit {figures['exit']}]\n")
    finally:
        stores.drop(copy)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=10_000,
                        help="ElementACQUIT in the acquit: the run's bordereaux")
    parser.add_argument("--pieces", type=int, default=1,
                        help="titles per bordereau (max_pieces_per_bordereau)")
    parser.add_argument("--rejected-every", type=int, default=10, metavar="K",
                        help="every K-th bordereau rejected, with errors (0: none)")
    parser.add_argument("--modes", default=DEFAULT_MODES,
                        help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--cancelled", choices=("no", "yes", "again"), default="no",
                        help="cancel the run before the acquit (again: and export its "
                        "input again into a second run)")
    parser.add_argument("--exported", type=int, metavar="K",
                        help="export K bordereaux only (default: all), the others copied "
                        "from them in the store (an export keeps a file open per "
                        "bordereau: 50 000 pass the machine's limit of open files)")
    parser.add_argument("--db", metavar="URL",
                        help="a PostgreSQL server (postgresql://…/DB, e.g. "
                        "$PESGEN_TEST_PG_URL): the store is a new database there, DB left "
                        "alone (default: SQLite in the work folder)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folder (and the --db database)")
    parser.add_argument("--outputs", type=Path, metavar="DIR",
                        help="write each mode's standard output there (MODE.out)")
    parser.add_argument("--pesgen", type=Path, default=ROOT, metavar="CHECKOUT",
                        help="the checkout whose pesgen reads the acquit (default: this one)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if args.elements < 1 or args.pieces < 1 or args.repeat < 1:
        parser.error("--elements, --pieces and --repeat are 1 or more")
    exported = args.elements if args.exported is None else args.exported
    if not 1 <= exported <= args.elements:
        parser.error("--exported is 1 to --elements")
    if exported < args.elements and args.db is not None:
        parser.error("--exported copies rows in a SQLite store: give no --db")
    if exported < args.elements and args.cancelled == "again":
        parser.error("--cancelled again exports the input again: give no --exported")
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"unknown mode(s): {', '.join(unknown)}")
    if args.cancelled != "no" and "run" in modes:
        # --run ties an acknowledgement to an active run only
        parser.error("--cancelled yes or again: mode run refuses a cancelled run; leave it "
                     "out of --modes")
    if args.outputs is not None:
        args.outputs.mkdir(parents=True, exist_ok=True)
    with work_folder("pesgen-bench-acquit-", args.keep) as work:
        stores = Stores(work, args.db, args.keep)
        try:
            figures = _run(args, work, stores, modes, exported)
        finally:
            stores.close()
        print(json.dumps(figures))


def _run(args: argparse.Namespace, work: Path, stores: Stores, modes: list[str],
         exported: int) -> dict:
    run, setup_s = _setup(work, stores.url, args.elements, args.pieces, args.cancelled,
                          exported)
    ack = work / "acquit.xml"
    write_acquit(ack, args.elements, args.pieces, args.rejected_every)
    checkout = args.pesgen.resolve()
    rounds = [{mode: _measure(work, stores, ack, mode, run, args.outputs, checkout)
               for mode in modes} for _ in range(args.repeat)]
    figures = {
        "elements": args.elements, "pieces_per_bordereau": args.pieces,
        "rejected_every": args.rejected_every, "cancelled": args.cancelled,
        "exported": exported, "store": "sqlite" if args.db is None else "postgresql",
        "setup_s": round(setup_s, 2),
        "acquit_mib": round(ack.stat().st_size / 2**20, 2),
        **{mode: {key: round(statistics.median(r[mode][key] for r in rounds), 3)
                  for key in ("seconds", "cpu_s", "peak_mib", "statements")}
           | {k: rounds[0][mode][k] for k in ("exit", "numbers", "held")
              if k in rounds[0][mode]} for mode in modes},
        "pesgen": str(checkout), "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    if args.repeat > 1:
        figures["rounds"] = rounds
    return figures


if __name__ == "__main__":
    main()
