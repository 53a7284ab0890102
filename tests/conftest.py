"""Shared fixtures: project paths and the official DGFiP XSD package when present."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MAPPINGS = ROOT / "mappings"
OFFICIAL_DIR = ROOT.parent / "shared" / "reference" / "pes-v2" / "schemas_pes_v5.17"
OFFICIAL_ENTRY = OFFICIAL_DIR / "PES_V2" / "Rev0" / "PES_Aller.xsd"
RUN_DATE = "2026-11-23"


@pytest.fixture
def official_xsd() -> Path:
    if not OFFICIAL_ENTRY.is_file():
        pytest.skip("the DGFiP PES V2 XSD package is not beside the project (../shared)")
    return OFFICIAL_DIR


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Every test gets its own state database: the CLI records runs by default."""
    db = tmp_path_factory.mktemp("state") / "pesgen.sqlite3"
    monkeypatch.setenv("PESGEN_DB", str(db))
    monkeypatch.delenv("PESGEN_OFFICIAL_XSD", raising=False)
    monkeypatch.setenv("PESGEN_CONFIG", str(db.parent / "no-config.yaml"))
    return db
