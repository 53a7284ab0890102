"""Benchmark: how an export's CPU splits between its two processes, and how long the
validating child waits for bytes.

    python benchmarks/split.py [--invoices 20000] [--lines 3] [--repeat 1]

Generates ``--invoices`` invoices (``bench_export.generate``, the example mapping), then,
in a fresh interpreter per round, runs one ``export()`` with ``getrusage`` around it:
the export's own process (``RUSAGE_SELF``: reading, mapping, rules, rendering, spooling,
feeding the pipe, then ``finish``: assembling, writing, hashing, fsync) and the processes
it waited for (``RUSAGE_CHILDREN``: the validating child, libxml2's parse and XSD pass,
the well-formedness parser, the bordereau checks), ``prepare`` and ``finish`` apart.
The validating child is started as this script's ``--child`` (the same work as
``python -m pesgen.streamcheck``, its standard input timed): when it started and ended
(seconds from the export's start), its CPU, and the seconds it spent waiting in
``read`` on its standard input, i.e. for the export to render the next bytes.

Prints one JSON line per round; on a busy machine read the CPU seconds, not the wall.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MAPPING = HERE.parent / "mappings" / "villeneuve-sur-loing.yaml"


class _TimedInput:
    """A binary input whose ``read`` is timed (the child's wait for the export)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.wait = 0.0
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        start = time.monotonic()
        data = self.raw.read(size)
        self.wait += time.monotonic() - start
        self.bytes += len(data)
        return bytes(data)


def child(xsd: str, name: str, stats: str) -> int:
    """``pesgen.streamcheck.main``, its input timed; its figures written to ``stats``."""
    started = time.monotonic()
    from pesgen.validate import load_xsd, piece_lines, stream_check

    timed = _TimedInput(sys.stdin.buffer)
    result = stream_check(timed, load_xsd(Path(xsd)), name, check_totals=False,
                          lines=piece_lines(Path(xsd)))
    ok = not result.problems and not result.schema_error
    json.dump({"ok": ok, "pieces": result.pieces, "total": str(result.total)}, sys.stdout)
    sys.stdout.flush()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(stats).write_text(json.dumps({
        "started": started, "ended": time.monotonic(), "wait": timed.wait,
        "mib": timed.bytes / 2**20, "cpu": usage.ru_utime + usage.ru_stime}))
    return 0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run(source: Path, out: Path, stats: Path) -> None:
    """One export of ``source`` into ``out``, timed; prints its figures."""
    from datetime import date

    import pesgen.export as export
    import pesgen.streamcheck as streamcheck

    started: list[Path] = []

    def command(self: Any, xsd: Path, name: str) -> list[str]:
        started.append(stats / f"child{len(started)}.json")
        return [sys.executable, "-P", __file__, "--child", str(xsd), name, str(started[-1])]

    streamcheck.StreamValidator._command = command  # type: ignore[method-assign]
    phases: dict[str, dict[str, float]] = {}

    def timed(name: str) -> None:
        method = getattr(export.Exporter, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.monotonic(), _cpu(resource.RUSAGE_SELF)
            try:
                return method(*args, **kwargs)
            finally:
                phases[name] = {"at_s": round(wall - t0, 3),
                                "wall_s": round(time.monotonic() - wall, 3),
                                "cpu_s": round(_cpu(resource.RUSAGE_SELF) - cpu, 3)}
        setattr(export.Exporter, name, wrapper)

    timed("prepare")
    timed("finish")
    own, children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    export.export(MAPPING, source, out, date(2026, 11, 23))
    wall = time.monotonic() - t0
    figures: dict[str, Any] = {
        "wall_s": round(wall, 3), "export_cpu_s": round(_cpu(resource.RUSAGE_SELF) - own, 3),
        "child_cpu_s": round(_cpu(resource.RUSAGE_CHILDREN) - children, 3), **phases,
        "output_mib": round(sum(p.stat().st_size for p in out.glob("*.xml")) / 2**20, 1),
        "children": []}
    for path in started:
        seen = json.loads(path.read_text())
        figures["children"].append({
            "started_at_s": round(seen["started"] - t0, 3),
            "ended_at_s": round(seen["ended"] - t0, 3), "cpu_s": round(seen["cpu"], 3),
            "waiting_for_bytes_s": round(seen["wait"], 3), "read_mib": round(seen["mib"], 1)})
    print(json.dumps(figures))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        raise SystemExit(child(*sys.argv[2:5]))
    if sys.argv[1:2] == ["--run"]:
        run(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1, metavar="N")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench_export import generate

    with tempfile.TemporaryDirectory(prefix="pesgen-split-") as work:
        source = Path(work) / "input.json"
        generate(source, args.invoices, args.lines)
        for round_ in range(args.repeat):
            out, stats = Path(work) / f"out{round_}", Path(work) / f"stats{round_}"
            stats.mkdir()
            subprocess.run([sys.executable, __file__, "--run", str(source), str(out),
                            str(stats)], check=True)


if __name__ == "__main__":
    main()
