"""Benchmark: the instructions an export executes per invoice, for one or more commits.

    python benchmarks/instructions.py [REV ...] [--invoices 5000,15000] [--lines 3] [--keep]

Wall and CPU time of ``bench_export.py`` move by 10 to 20 % from one moment of this
machine to another (docs/performance.md, forty-seventh and forty-eighth sessions), more
than most changes of code cost. The instructions a process executes do not: Valgrind's
cachegrind (``--cache-sim=no``) counts them, the same count for the same code and input
whatever else the machine runs, some 50 times slower than the export itself.

For each REV (a commit, branch or tag of this repository; default ``HEAD``; ``WORKTREE``
for the files as they are, uncommitted changes included), its files (``git archive``,
or a copy of the files git does not ignore) are put in a folder of their own and the export of the
same generated inputs (``bench_export.generate``, the example mapping of that REV) runs
there under cachegrind, with ``PYTHONPATH`` on that folder (checked: ``pesgen.__file__``
must be in it; the validating child inherits it). Two sizes of input, and the difference
of their counts divided by the difference of their sizes, give the instructions **per
invoice**, with the interpreter's start, the imports, the templates' and the schema's
compilation left out; the export's process (``export``) and its validating process
(``validator``) apart. ``PYTHONHASHSEED`` is 0 in every run; what is left to move the
count is how the two processes meet at their pipe (within half a percent: give a REV
twice to see it, e.g. ``HEAD HEAD``). Prints one JSON line: per REV the counts and
per-invoice figures, and each REV's per-invoice total against the first REV's in percent.

Both sizes at or over 2 000 invoices (``export.STREAM_VALIDATION_FROM``: below it the
export validates in its own process). Needs ``valgrind`` on the PATH. At 5 000 and
15 000 invoices, about 10 minutes per REV on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_export  # noqa: E402

from pesgen.export import STREAM_VALIDATION_FROM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXPORT = """
import sys
from datetime import date
from pathlib import Path
import pesgen
tree = Path({tree!r})
assert Path(pesgen.__file__).resolve().is_relative_to(tree), pesgen.__file__
from pesgen.export import export
r = export(tree / "mappings" / "villeneuve-sur-loing.yaml", Path({input!r}), Path({out!r}),
           date(2026, 11, 23))
print("titles", r.titles)
"""
_REFS = re.compile(r"^==\d+== I\s+refs:\s+([\d,]+)", re.MULTILINE)
_COMMAND = re.compile(r"^==\d+== Command: (.*)$", re.MULTILINE)


def _tree(rev: str, work: Path) -> Path:
    """The files of ``rev`` in a new folder of ``work`` (a REV given twice: two)."""
    name = re.sub(r"[^\w.-]", "_", rev)
    folder, n = work / name, 1
    while folder.exists():
        n += 1
        folder = work / f"{name}-{n}"
    folder.mkdir()
    if rev == "WORKTREE":
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached",
                                 "--others", "--exclude-standard"], check=True,
                                capture_output=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            source = ROOT / name
            if source.is_file():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, folder / name)
        return folder
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True)
    if archive.returncode:
        raise SystemExit(f"{rev}: no such commit in {ROOT} "
                         f"({archive.stderr.decode(errors='replace').strip()})")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _count(tree: Path, source: Path, out: Path, logs: Path) -> dict[str, int]:
    """Instructions of one export of ``source``: its process's and its validators'."""
    out.mkdir()
    logs.mkdir()
    # the same hash seed for every run: set and dict orders, and so the work, the same
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=yes",
         f"--cachegrind-out-file={logs}/cachegrind.out.%p",
         f"--log-file={logs}/log.%p", sys.executable, "-c",
         EXPORT.format(tree=str(tree), input=str(source), out=str(out))],
        capture_output=True, text=True, cwd=tree, env=env)
    if proc.returncode:
        raise SystemExit(f"export under valgrind failed in {tree}:\n{proc.stderr[-3000:]}")
    return read_logs(logs)


def read_logs(logs: Path) -> dict[str, int]:
    """The instructions valgrind's logs in ``logs`` count (``log.PID``, one per process):
    the validating processes' (``pesgen.streamcheck``) apart from the export's."""
    counts = {"export": 0, "validator": 0}
    found = sorted(logs.glob("log.*"))
    if not found:
        raise SystemExit(f"{logs}: no valgrind log")
    for log in found:
        text = log.read_text(encoding="utf-8", errors="replace")
        refs, command = _REFS.search(text), _COMMAND.search(text)
        if refs is None or command is None:
            raise SystemExit(f"{log}: no instruction count (valgrind's log cut short?)")
        side = "validator" if "pesgen.streamcheck" in command.group(1) else "export"
        counts[side] += int(refs.group(1).replace(",", ""))
    return counts


def per_invoice(counts: dict[int, dict[str, int]]) -> dict[str, int]:
    """Instructions per invoice from the counts at two sizes (``{size: {side: count}}``):
    their difference over the sizes', what the fixed costs (start, imports, compiling
    the templates and the schema) leave out."""
    small, large = sorted(counts)
    per = {side: round((counts[large][side] - counts[small][side]) / (large - small))
           for side in ("export", "validator")}
    return {**per, "total": per["export"] + per["validator"]}


def against_first(figures: dict[str, dict]) -> None:
    """Each REV's per-invoice figures against the first REV's, in percent."""
    first = next(iter(figures.values()))["per_invoice"]
    for fig in figures.values():
        fig["per_invoice_vs_first_pct"] = {
            side: round(100 * (fig["per_invoice"][side] - first[side]) / first[side], 2)
            for side in ("export", "validator", "total") if first[side]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revs", nargs="*", default=["HEAD"], metavar="REV")
    parser.add_argument("--invoices", default="5000,15000",
                        help="two sizes of input, comma-separated (default 5000,15000)")
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    try:
        small, large = (int(n) for n in args.invoices.split(","))
    except ValueError:
        parser.error("--invoices takes two numbers, comma-separated: 5000,15000")
    if not STREAM_VALIDATION_FROM <= small < large:
        parser.error(f"--invoices: the first size must be {STREAM_VALIDATION_FROM} or more (below "
                     "it the export validates in its own process, not in a validating one) "
                     "and below the second")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on the PATH: this benchmark counts instructions "
                         "with its cachegrind tool (apt install valgrind)")
    with bench_export.work_folder("pesgen-instructions-", args.keep) as work:
        inputs = {}
        for n in (small, large):
            inputs[n] = work / f"input-{n}.json"
            bench_export.generate(inputs[n], n, args.lines)
        figures: dict[str, dict] = {}
        for rev in args.revs:
            tree = _tree(rev, work)
            counts = {n: _count(tree, inputs[n], work / f"out-{tree.name}-{n}",
                                work / f"logs-{tree.name}-{n}") for n in (small, large)}
            figures[rev if rev not in figures else tree.name] = {
                "instructions": {str(n): c for n, c in counts.items()},
                "per_invoice": per_invoice(counts)}
        against_first(figures)
        print(json.dumps({"invoices": [small, large], "lines_per_invoice": args.lines,
                          "python": sys.version.split()[0], "revs": figures}))


if __name__ == "__main__":
    main()
