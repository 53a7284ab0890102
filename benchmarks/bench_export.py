"""Benchmark: export N invoices in the example's shape and compare with lxml alone.

    python benchmarks/bench_export.py --invoices 100000 [--lines 3] [--repeat 3] [--stages] [--keep]
                                      [--max-pieces N]

1. Generates ``N`` invoices (JSON, the example's nested shape; ``--lines`` lines each,
   a third of them paid by SEPA direct debit) with the example mapping.
2. Runs the end-to-end export (read, map, rules, render, validate against pesgen's
   XSD and the bordereau rules, write) in a child process, measuring wall time and
   peak memory (max RSS of that process, ``export_peak_mib``, and of its process tree:
   the export and its validating processes, sampled from ``/proc`` every 20 ms on Linux,
   ``export_tree_peak_mib``). ``--max-pieces N`` exports in bordereaux of N titles
   (``output.max_pieces_per_bordereau`` in a copy of the mapping): from 2 000, each
   bordereau's validation runs in a process of its own.
3. Measures what lxml alone needs to parse and schema-validate the same output files
   (best of: streaming ``iterparse`` with the schema, and ``parse`` + ``validate``),
   in a child process too.

Prints one JSON line with the figures; docs/performance.md records them. Each child's
CPU time (the whole child's, interpreter start and imports included, and its children's:
the export's validating process) is given beside its wall time (``export_cpu_s``,
``lxml.*.cpu_s``, their ratio ``cpu_ratio_by_baseline``): a figure other work on the
machine moves less than wall time, and the one to read against two cores' worth.

``--repeat N`` runs the export and the lxml baselines N times, alternately, on the same
input: each round's figures are under ``rounds``, and the top-level figures are the
medians of the rounds (the ratios: of the rounds' ratios), so that one slow moment of the
machine does not make the reading.
``ratio_export_over_lxml`` divides by the *fastest* lxml figure; ``ratio_by_baseline``
gives the ratio to each (``iterparse``: streaming validation; ``parse``: ``parse`` then
``XMLSchema.validate``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "mappings" / "villeneuve-sur-loing.yaml"

ACTIVITIES = [("FM-C1", "Formation musicale cycle 1", "85.00"),
              ("FM-C2", "Formation musicale cycle 2", "95.00"),
              ("INST-PIANO", "Piano – cours individuel 30 min", "142.50"),
              ("INST-VIOLON", "Violon – cours individuel 30 min", "142.50"),
              ("ORCH", "Orchestre d'harmonie", "30.00"),
              ("DANSE-CLASS", "Danse classique – initiation", "78.00"),
              ("THEA-ADO", "Théâtre adolescents", "66.00")]
NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "N'Diaye"]
FIRST = ["Julie", "Thomas", "Inès", "Hélène", "Jean-François", "Sarah", "Lucas", "Emma"]
STREETS = ["rue des Lilas", "avenue du Général Leclerc", "place de la République",
           "chemin des Vignes", "boulevard Durzy", "impasse des Tilleuls", "allée du Cœur-Volant"]
IBANS = ["FR7630006000011234567890189", "FR7620041010050500013026052",
         "FR7630004008200000012345651"]


def generate(path: Path, count: int, lines: int, seed: int = 2026) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write('{"export": {"software": "bench"}, "invoices": [\n')
        for i in range(count):
            items = []
            total = 0
            for j in range(lines):
                code, label, amount = ACTIVITIES[(i + j) % len(ACTIVITIES)]
                total += int(amount.replace(".", ""))
                items.append({"student": {"ref": f"ELV-{i}-{j}", "first_name": rnd.choice(FIRST),
                                          "last_name": rnd.choice(NAMES)},
                              "activity": {"code": code, "label": label},
                              "quantity": 1, "unit_price": amount, "amount": amount})
            invoice = {
                "number": f"FB-2026-{i + 1:07d}", "date": "2026-11-20", "due_date": "2026-12-20",
                "payer": {"ref": f"FAM-{i}", "kind": "person", "title": rnd.choice(["Mme", "M."]),
                          "last_name": rnd.choice(NAMES), "first_name": rnd.choice(FIRST),
                          "address": {"street": f"{rnd.randint(1, 200)} {rnd.choice(STREETS)}",
                                      "complement": "", "postal_code": "45200",
                                      "city": "Montargis", "country": "FR"}},
                "payment": {"method": "invoice"}, "lines": items,
                "total": f"{total // 100}.{total % 100:02d}"}
            if i % 3 == 0:
                invoice["payment"] = {"method": "direct_debit", "debit_date": "2026-12-05",
                                      "mandate": {"rum": f"CRCVSL{i:08d}",
                                                  "signed_on": "2025-09-03",
                                                  "iban": rnd.choice(IBANS), "bic": "AGRIFRPP848",
                                                  "holder": "Titulaire Compte", "sequence": "RCUR"}}
            out.write(("," if i else "") + json.dumps(invoice, ensure_ascii=False) + "\n")
        out.write("]}\n")


def _max_pieces(work: Path, pieces: int) -> Path:
    """A copy of the mapping (in ``work``) with bordereaux of ``pieces`` titles at most."""
    text = MAPPING.read_text(encoding="utf-8")
    if text.count("\noutput:\n") != 1:
        raise SystemExit(f"{MAPPING}: no single 'output:' section to set "
                         "max_pieces_per_bordereau in")
    copy = work / MAPPING.name
    copy.write_text(text.replace("\noutput:\n", f"\noutput:\n  max_pieces_per_bordereau: "
                                 f"{pieces}\n"), encoding="utf-8")
    return copy


def _cpu() -> float:
    """CPU seconds (user + system) of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_rss_kib(pid: int) -> int | None:
    """The RSS of ``pid`` and of its descendants in KiB (Linux ``/proc``); None where
    ``/proc`` does not say (another system, or the process gone)."""
    total, stack, known = 0, [pid], False
    while stack:
        at = stack.pop()
        try:
            with open(f"/proc/{at}/status", encoding="ascii", errors="replace") as f:
                total += next((int(line.split()[1]) for line in f
                               if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{at}/task/{at}/children", encoding="ascii") as f:
                stack.extend(int(c) for c in f.read().split())
            known = True
        except (OSError, ValueError):
            continue  # ended meanwhile
    return total if known else None


class _TreePeak(threading.Thread):
    """Samples a process tree's RSS until the process ends: ``/usr/bin/time`` and
    ``ru_maxrss`` give the largest process alone, not the export with its validators."""

    def __init__(self, proc: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.peak_kib: int | None = None

    def run(self) -> None:
        while self.proc.poll() is None:
            now = _tree_rss_kib(self.proc.pid)
            if now is not None:
                self.peak_kib = max(self.peak_kib or 0, now)
            time.sleep(0.02)


def _child(code: str) -> tuple[float, float, str, float, float | None]:
    """Run code in a fresh interpreter; return (seconds, peak RSS MiB, stdout, CPU
    seconds of that interpreter and of the processes it waited for, peak RSS MiB of its
    process tree or None where /proc does not say)."""
    cpu = _cpu()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    sampler = _TreePeak(proc)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if proc.returncode:
        raise SystemExit(err)
    peak = float(out.strip().splitlines()[-1])
    tree = None if sampler.peak_kib is None else sampler.peak_kib / 1024
    return seconds, peak, out, _cpu() - cpu, tree


EXPORT = """
import resource, sys, time
from datetime import date
from pathlib import Path
from pesgen.export import export
t = time.perf_counter()
r = export(Path({mapping!r}), Path({input!r}), Path({out!r}), date(2026, 11, 23))
print("titles", r.titles, "files", len(r.files), "seconds", time.perf_counter() - t)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

# The same export with wall-clock timers around each stage (for docs/performance.md's
# "where the time goes"); the timers themselves add about a second at 100 000 invoices.
STAGES = """
import json, resource, sys, time
from collections import defaultdict
from datetime import date
from pathlib import Path
import pesgen.build, pesgen.export as E, pesgen.streamcheck
acc = defaultdict(float)
def timed(owner, name, label):
    fn = getattr(owner, name)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[label] += time.perf_counter() - t
    setattr(owner, name, wrapper)
timed(pesgen.build.Builder, "build", "map (bindings, code tables, policies)")
timed(E, "check_title", "business rules")
timed(E.Exporter, "numbered", "number (IdPce, Cle1, Cle2)")
timed(pesgen.streamcheck.StreamValidator, "feed", "feed the validator")
timed(E.Exporter, "finish", "assemble, validate the header, write, fsync")
read = E.read_invoices
def read_timed(*a, **k):
    it = read(*a, **k)
    while True:
        t = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            acc["read the input"] += time.perf_counter() - t
            return
        acc["read the input"] += time.perf_counter() - t
        yield item
E.read_invoices = read_timed
open_exporter = E.open_exporter
def open_timed(*a, **k):
    ex = open_exporter(*a, **k)
    for r in ex.renderers:
        timed(r, "piece", "render the pieces")
    return ex
E.open_exporter = open_timed
t = time.perf_counter()
r = E.export(Path({mapping!r}), Path({input!r}), Path({out!r}), date(2026, 11, 23))
total = time.perf_counter() - t
acc["the loop and the rest"] = total - sum(acc.values())
print(json.dumps({{"total_s": round(total, 2),
                  "stages_s": {{k: round(v, 2) for k, v in acc.items()}}}}))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

LXML = """
import resource, time
from pathlib import Path
from lxml import etree
from pesgen.resources import schema_path
schema = etree.XMLSchema(etree.parse(str(schema_path("pes-ormc/pes-ormc.xsd"))))
files = sorted(Path({out!r}).glob("*.xml"))
t = time.perf_counter()
for f in files:
    if {mode!r} == "iterparse":
        for _e, el in etree.iterparse(str(f), events=("end",), tag="Piece", schema=schema,
                                      huge_tree=True):
            el.clear(keep_tail=True)
            while el.getprevious() is not None:
                del el.getparent()[0]
    else:
        doc = etree.parse(str(f), etree.XMLParser(huge_tree=True))
        assert schema.validate(doc)
print("seconds", time.perf_counter() - t)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def _round(out: Path, source: Path, skip_parse: bool, mapping: Path = MAPPING) -> dict:
    """One export of ``source`` into ``out``, then lxml's baselines on what it wrote."""
    out.mkdir()
    export_s, export_mb, log, export_cpu, tree_mb = _child(EXPORT.format(
        mapping=str(mapping), input=str(source), out=str(out)))
    inner = float(log.split("seconds", 1)[1].split()[0])
    baselines = {}
    for mode in ("iterparse",) + (() if skip_parse else ("parse",)):
        _s, mb, text, cpu, _t = _child(LXML.format(out=str(out), mode=mode))
        baselines[mode] = {"seconds": float(text.split("seconds", 1)[1].split()[0]),
                           "cpu_s": round(cpu, 2), "peak_mib": round(mb, 1)}
    best = min(b["seconds"] for b in baselines.values())
    return {
        "output_mib": round(sum(p.stat().st_size for p in out.glob("*.xml")) / 2**20, 1),
        "export_s": round(inner, 2), "export_process_s": round(export_s, 2),
        "export_cpu_s": round(export_cpu, 2), "export_peak_mib": round(export_mb, 1),
        "export_tree_peak_mib": None if tree_mb is None else round(tree_mb, 1),
        "files": int(log.split(" files ", 1)[1].split()[0]),
        "lxml": baselines, "ratio_export_over_lxml": round(inner / best, 3),
        "ratio_by_baseline": {mode: round(inner / b["seconds"], 3)
                              for mode, b in baselines.items()},
        "cpu_ratio_by_baseline": {mode: round(export_cpu / b["cpu_s"], 3)
                                  for mode, b in baselines.items() if b["cpu_s"]},
    }


def _medians(rounds: list[dict]) -> dict:
    """The rounds' figures, each the median of the rounds' (one round: its own)."""
    def median(get):
        return round(statistics.median(get(r) for r in rounds), 3)
    first = rounds[0]
    sampled = all(r.get("export_tree_peak_mib") is not None for r in rounds)
    return {
        **{key: median(lambda r, key=key: r[key]) for key in (
            "export_s", "export_process_s", "export_cpu_s", "export_peak_mib",
            "ratio_export_over_lxml")},
        # the process tree's peak, where /proc gave it in every round
        **({"export_tree_peak_mib": median(lambda r: r["export_tree_peak_mib"])}
           if sampled else {}),
        "lxml": {mode: {key: median(lambda r, mode=mode, key=key: r["lxml"][mode][key])
                        for key in values} for mode, values in first["lxml"].items()},
        **{ratios: {mode: median(lambda r, mode=mode, ratios=ratios: r[ratios][mode])
                    for mode in first[ratios]}
           for ratios in ("ratio_by_baseline", "cpu_ratio_by_baseline")},
    }


def pg_server(server: str, prefix: str) -> tuple:
    """The benchmarks' ``--db URL`` (bench_acquit, bench_record): the URL checked to be a
    PostgreSQL server's, an AUTOCOMMIT engine on it that creates and drops their
    databases, and a name prefix for those databases unique to this process."""
    import sqlalchemy as sa

    url = sa.engine.make_url(server)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"--db {server}: a postgresql:// URL (SQLite is the default)")
    admin = sa.create_engine(url.set(drivername="postgresql+psycopg"),
                             isolation_level="AUTOCOMMIT")
    return url, admin, f"{prefix}_{os.getpid()}_{int(time.time())}"


@contextlib.contextmanager
def work_folder(prefix: str, keep: bool) -> Iterator[Path]:
    """A benchmark's work folder (under $TMPDIR when set): removed at the end, failed
    or not, unless ``keep`` (--keep), when its path is said on standard error."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TMPDIR")))
    try:
        yield work
    finally:
        if keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--skip-parse", action="store_true",
                        help="skip the parse+validate baseline (the slowest, most memory)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run the export and the baselines N times, alternately; the "
                        "figures are the rounds' medians, each round under 'rounds'")
    parser.add_argument("--stages", action="store_true",
                        help="also time each stage of the export (a second, instrumented run)")
    parser.add_argument("--max-pieces", type=int, metavar="N",
                        help="bordereaux of N titles at most (output.max_pieces_per_bordereau "
                        "in a copy of the mapping); else the mapping's")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    if args.max_pieces is not None and args.max_pieces < 1:
        parser.error("--max-pieces must be 1 or more")
    with work_folder("pesgen-bench-", args.keep) as work:
        source = work / "input.json"
        mapping = MAPPING if args.max_pieces is None else _max_pieces(work, args.max_pieces)
        t = time.perf_counter()
        generate(source, args.invoices, args.lines)
        gen_s = time.perf_counter() - t
        rounds = []
        for n in range(1, args.repeat + 1):
            out = work / f"out-{n}"
            rounds.append(_round(out, source, args.skip_parse, mapping))
            if not args.keep:  # a round's files are ~230 MiB at 100 000 invoices
                shutil.rmtree(out)
        figures = {
            "invoices": args.invoices, "lines_per_invoice": args.lines,
            "input_mib": round(source.stat().st_size / 2**20, 1),
            "output_mib": rounds[0]["output_mib"], "generate_s": round(gen_s, 2),
            "max_pieces": args.max_pieces, "files": rounds[0]["files"],
            **_medians(rounds),
            "cpus": os.cpu_count(), "python": sys.version.split()[0],
            "peak_rss_children_mib": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        }
        if args.repeat > 1:
            figures["rounds"] = rounds
        if args.stages:
            staged = work / "out-stages"
            staged.mkdir()
            _s, _mb, text, _c, _t = _child(STAGES.format(
                mapping=str(mapping), input=str(source), out=str(staged)))
            figures["stages"] = json.loads(text.strip().splitlines()[-2])
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
