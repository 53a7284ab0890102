"""benchmarks/instructions.py counts the instructions an export executes per invoice
(valgrind's cachegrind), a figure the machine's moments do not move. Valgrind is too slow
for the suite: what is tested is what the script makes of valgrind's logs and of its
arguments."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "instructions.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_instructions", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _log(folder, pid, command, refs):
    (folder / f"log.{pid}").write_text(
        f"=={pid}== Cachegrind, a cache and branch-prediction profiler\n"
        f"=={pid}== Command: {command}\n=={pid}== Parent PID: 1\n=={pid}== \n"
        + (f"=={pid}== I   refs:      {refs}\n" if refs else ""), encoding="utf-8")


def test_the_logs_give_the_export_and_its_validators_apart(tmp_path):
    _log(tmp_path, 10, "/venv/bin/python -c _import\\ sys_from\\ pesgen.export", "6,601,675,136")
    _log(tmp_path, 11, "/venv/bin/python -P -m pesgen.streamcheck x.xsd pes.xml.j2", "4,021,132")
    _log(tmp_path, 12, "/venv/bin/python -P -m pesgen.streamcheck x.xsd pes.xml.j2", "1,000")
    assert _script().read_logs(tmp_path) == {"export": 6_601_675_136, "validator": 4_022_132}


def test_a_log_cut_short_is_said_not_counted_as_nothing(tmp_path):
    _log(tmp_path, 10, "/venv/bin/python -c x", "1,000")
    _log(tmp_path, 11, "/venv/bin/python -P -m pesgen.streamcheck x.xsd t", None)
    with pytest.raises(SystemExit, match=r"log\.11: no instruction count"):
        _script().read_logs(tmp_path)


def test_per_invoice_leaves_the_fixed_costs_out_and_compares_with_the_first_rev():
    module = _script()
    old = module.per_invoice({5000: {"export": 10_000_000_000, "validator": 9_000_000_000},
                              15000: {"export": 25_000_000_000, "validator": 26_000_000_000}})
    assert old == {"export": 1_500_000, "validator": 1_700_000, "total": 3_200_000}
    new = module.per_invoice({15000: {"export": 25_500_000_000, "validator": 26_000_000_000},
                              5000: {"export": 10_100_000_000, "validator": 9_000_000_000}})
    assert new == {"export": 1_540_000, "validator": 1_700_000, "total": 3_240_000}
    figures = {"a": {"per_invoice": old}, "b": {"per_invoice": new}}
    module.against_first(figures)
    assert figures["a"]["per_invoice_vs_first_pct"] == {"export": 0.0, "validator": 0.0,
                                                        "total": 0.0}
    assert figures["b"]["per_invoice_vs_first_pct"] == {"export": 2.67, "validator": 0.0,
                                                        "total": 1.25}


@pytest.mark.parametrize("sizes, said", [
    ("1000,3000", "2000 or more"), ("5000,5000", "below the second"),
    ("5000", "two numbers")])
def test_sizes_the_export_would_not_stream_are_refused(sizes, said):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--invoices", sizes],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert said in proc.stderr


def test_an_unknown_rev_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no-such-rev: no such commit"):
        _script()._tree("no-such-rev", tmp_path)


def test_a_rev_given_twice_gets_two_trees_of_its_files(tmp_path):
    module = _script()
    first, second = module._tree("HEAD", tmp_path), module._tree("HEAD", tmp_path)
    assert (first.name, second.name) == ("HEAD", "HEAD-2")
    for tree in (first, second):
        assert (tree / "pesgen" / "export.py").is_file()
        assert (tree / "mappings" / "villeneuve-sur-loing.yaml").is_file()
