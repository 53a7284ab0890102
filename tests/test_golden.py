"""Golden files, one folder per case under tests/golden/<case>/.

Each case holds ``case.yaml`` (mapping, input, date, first IdBord) and ``expected/``.
The expected XML files are validated against the official DGFiP XSD first (otherwise
the comparison is moot), then the export must reproduce them byte for byte; a mismatch
prints a unified diff. ``PESGEN_REGEN_GOLDEN=1 pytest tests/test_golden.py`` rewrites
the expected files (review the diff before committing).
"""

from __future__ import annotations

import difflib
import os
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from lxml import etree

from pesgen.export import export
from pesgen.validate import load_xsd, official_xsd_path

from .conftest import OFFICIAL_DIR, OFFICIAL_ENTRY

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.yaml").is_file())
REGEN = os.environ.get("PESGEN_REGEN_GOLDEN") == "1"


def _run(case: Path, out: Path):
    spec = yaml.safe_load((case / "case.yaml").read_text(encoding="utf-8"))
    return export((case / spec["mapping"]).resolve(), (case / spec["input"]).resolve(), out,
                  date.fromisoformat(spec["date"]), first_number=spec.get("first_number", 1))


def _text(data: bytes) -> list[str]:
    return data.decode("latin-1").splitlines(keepends=True)


@pytest.mark.parametrize("name", CASES)
def test_golden(name, tmp_path):
    case = GOLDEN / name
    expected_dir = case / "expected"
    result = _run(case, tmp_path)
    produced = {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir())}
    assert produced, "the export wrote nothing"
    if REGEN:
        shutil.rmtree(expected_dir, ignore_errors=True)
        expected_dir.mkdir()
        for file_name, data in produced.items():
            (expected_dir / file_name).write_bytes(data)
    expected = {p.name: p.read_bytes() for p in sorted(expected_dir.iterdir())}
    # the expected files must be valid themselves
    if OFFICIAL_ENTRY.is_file():
        schema = load_xsd(official_xsd_path(OFFICIAL_DIR))
        for file_name, data in expected.items():
            if file_name.endswith(".xml"):
                doc = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
                assert schema.validate(doc), f"{name}/{file_name}: {schema.error_log}"
    assert sorted(produced) == sorted(expected)
    for file_name in expected:
        if produced[file_name] != expected[file_name]:
            diff = "".join(difflib.unified_diff(
                _text(expected[file_name]), _text(produced[file_name]),
                f"expected/{file_name}", f"produced/{file_name}"))
            pytest.fail(f"{name}/{file_name} differs from its golden file:\n{diff}")
    assert result.titles == 11


def test_csv_and_json_cases_are_identical():
    a = {p.name: p.read_bytes() for p in (GOLDEN / "example-json" / "expected").iterdir()}
    b = {p.name: p.read_bytes() for p in (GOLDEN / "example-csv" / "expected").iterdir()}
    assert a == b


def test_split_case_has_three_bordereaux():
    files = sorted((GOLDEN / "split-bordereaux" / "expected").glob("*.xml"))
    assert [f.name[-11:] for f in files] == ["0000007.xml", "0000008.xml", "0000009.xml"]
    counts = [etree.parse(str(f)).find(".//NbrPce").get("V") for f in files]
    assert counts == ["4", "4", "3"]
