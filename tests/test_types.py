"""pesgen type-checks clean: mypy, with pyproject.toml's [tool.mypy] (the files, the
modules without types, warn_unused_ignores), run from the checkout's root."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[test]' installs it)")
def test_mypy_finds_no_error():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, (
        f"mypy exited {done.returncode}:\n{done.stdout}{done.stderr}")
    assert "Success: no issues found" in done.stdout, done.stdout + done.stderr
