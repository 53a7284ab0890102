"""benchmarks/bench_export.py gives docs/performance.md its figures: with --repeat, the
figures it prints are the rounds' medians, each round kept beside them, and a CPU-time
reading beside the wall time. No timing is asserted here (the figures are the machine's),
only what the script makes of the rounds it measured."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "bench_export.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_export_medians", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _round(export_s, stream_s, cpu, stream_cpu):
    return {"output_mib": 1.0, "export_s": export_s, "export_process_s": export_s + 0.5,
            "export_cpu_s": cpu, "export_peak_mib": 100.0,
            "lxml": {"iterparse": {"seconds": stream_s, "cpu_s": stream_cpu,
                                   "peak_mib": 19.0}},
            "ratio_export_over_lxml": round(export_s / stream_s, 3),
            "ratio_by_baseline": {"iterparse": round(export_s / stream_s, 3)},
            "cpu_ratio_by_baseline": {"iterparse": round(cpu / stream_cpu, 3)}}


def test_the_figures_are_the_medians_of_the_rounds():
    # one slow round (the machine busy) does not make the reading: neither the mean nor
    # the first or last round's figure
    rounds = [_round(30.0, 10.0, 50.0, 10.0), _round(22.0, 11.0, 46.0, 11.5),
              _round(21.0, 10.5, 44.0, 11.0)]
    figures = _bench()._medians(rounds)
    assert figures["export_s"] == 22.0
    assert figures["export_cpu_s"] == 46.0
    assert figures["lxml"]["iterparse"]["seconds"] == 10.5
    assert figures["lxml"]["iterparse"]["cpu_s"] == 11.0
    # the ratios are the rounds' ratios' median (3.0, 2.0, 2.0), not one of the medians'
    assert figures["ratio_by_baseline"] == {"iterparse": 2.0}
    assert figures["ratio_export_over_lxml"] == 2.0
    assert figures["cpu_ratio_by_baseline"] == {"iterparse": 4.0}


def test_repeat_prints_each_round_and_their_medians():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--invoices", "40", "--repeat", "3",
                           "--skip-parse"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    rounds = figures["rounds"]
    assert len(rounds) == 3
    assert sorted(figures["lxml"]) == ["iterparse"]  # --skip-parse
    assert figures["export_s"] == sorted(r["export_s"] for r in rounds)[1]
    for r in rounds:
        assert r["export_cpu_s"] > 0 and r["lxml"]["iterparse"]["cpu_s"] > 0
        assert r["output_mib"] > 0


def test_a_single_run_keeps_no_rounds_and_a_repeat_of_zero_is_refused():
    one = subprocess.run([sys.executable, str(SCRIPT), "--invoices", "20", "--skip-parse"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert one.returncode == 0, one.stderr
    assert "rounds" not in json.loads(one.stdout)
    zero = subprocess.run([sys.executable, str(SCRIPT), "--invoices", "20", "--repeat", "0"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert zero.returncode == 2
    assert "--repeat must be 1 or more" in zero.stderr


def test_max_pieces_exports_in_bordereaux_and_the_tree_s_peak_is_given():
    """--max-pieces exports in bordereaux of N titles (a mapping copy); the export's
    peak is given for its process tree too (its validating processes are not in its own
    ru_maxrss), and a --max-pieces of 0 is refused."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--invoices", "40", "--max-pieces",
                           "10", "--skip-parse"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["max_pieces"] == 10 and figures["files"] == 4
    if sys.platform == "linux":
        assert figures["export_tree_peak_mib"] > 10
    zero = subprocess.run([sys.executable, str(SCRIPT), "--invoices", "20", "--max-pieces",
                           "0"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert zero.returncode == 2
    assert "--max-pieces must be 1 or more" in zero.stderr


def test_the_tree_s_rss_counts_the_children(tmp_path):
    """A process tree's RSS (the export and its validators) is its processes' sum: here
    this process and a child interpreter."""
    bench = _bench()
    if bench._tree_rss_kib(os.getpid()) is None:
        pytest.skip("no /proc here")
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", "import pathlib, sys, time; "
                              f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"])
    try:
        for _ in range(300):
            if ready.exists():
                break
            time.sleep(0.05)
        alone = bench._tree_rss_kib(child.pid)
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as f:
            own = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        both = bench._tree_rss_kib(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert alone > 4 * 1024  # an interpreter
    assert both >= own + alone * 0.9
