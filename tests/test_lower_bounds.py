"""benchmarks/lower_bounds.py times hand-written code against pesgen's mapping and
rendering; its figures (docs/performance.md) mean something only while that code gives
pesgen's titles, notes and bytes. These tests keep it so, and check that it refuses to
print figures when it does not."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "lower_bounds.py"


def _run(*code: str) -> subprocess.CompletedProcess[str]:
    # the script's own module, run as `python benchmarks/lower_bounds.py` would run it
    prelude = (f"import sys; sys.path.insert(0, {str(SCRIPT.parent)!r}); "
               f"sys.argv = ['lower_bounds.py', '--invoices', '60', '--repeat', '1']; "
               "import lower_bounds as L; ")
    return subprocess.run([sys.executable, "-c", prelude + "".join(code)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_hand_written_code_gives_what_pesgen_gives():
    proc = _run("sys.exit(L.main())")
    assert proc.returncode == 0, proc.stderr
    for key in ("map_pesgen_us", "map_by_hand_us", "render_pesgen_us", "render_by_hand_us"):
        assert key in proc.stdout


def test_no_figures_when_the_hand_written_piece_differs():
    proc = _run("real = L.hand_piece\n"
                "L.hand_piece = lambda: (lambda t, doc:\n"
                "    real()(t, doc).replace('<Per ', '<Per  '))\n"  # one space too many
                "sys.exit(L.main())")
    assert proc.returncode == 1
    assert "differ from pesgen's" in proc.stderr
    assert "map_by_hand_us" not in proc.stdout


def test_no_figures_when_the_hand_written_mapping_differs():
    proc = _run("real = L.hand_mapper\n"
                "def wrong(b):\n"
                "    build = real(b)\n"
                "    return lambda src: (build(src)[0], [])\n"  # the notes forgotten
                "L.hand_mapper = wrong\n"
                "sys.exit(L.main())")
    assert proc.returncode == 1
    assert "differ from pesgen's" in proc.stderr
