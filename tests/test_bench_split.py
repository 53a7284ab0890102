"""benchmarks/split.py gives docs/performance.md its figures of how an export's CPU
splits between its two processes and how long the validating child waits for bytes
(fifty-first session). No timing is asserted (the figures are the machine's), only what
the script measured: one export per round, its validating child timed from its start to
its end, having read the file's bytes."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "split.py"


def test_an_exports_two_processes_are_timed_with_the_childs_wait():
    """2 500 invoices (a bordereau from 2 000 titles is validated by a child), two
    rounds: each one line of figures, one child, which read about what was written."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--invoices", "2500", "--repeat",
                           "2"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rounds = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rounds) == 2
    for figures in rounds:
        assert figures["export_cpu_s"] > 0 and figures["child_cpu_s"] > 0, figures
        assert figures["prepare"]["cpu_s"] > 0 and figures["finish"]["wall_s"] > 0, figures
        [child] = figures["children"]
        assert 0 < child["started_at_s"] < child["ended_at_s"] <= figures["wall_s"], figures
        assert 0 <= child["waiting_for_bytes_s"] < child["ended_at_s"], figures
        assert 0 < child["cpu_s"] <= figures["child_cpu_s"], figures
        # the provisional header and tail it read are the size of the real ones, give
        # or take a few bytes
        assert figures["output_mib"] > 5 and \
            abs(child["read_mib"] - figures["output_mib"]) <= 0.1, figures
