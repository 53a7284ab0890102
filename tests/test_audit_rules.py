"""Findings of a trésorerie-side audit against the DGFiP documentation (DT v5.19):
an export opening a numbering sequence nobody set says so (note numbering)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
XML = "PESORMC_21450999400015_2026_0000001.xml"


def _input(tmp_path: Path, edit=None, name: str = "in.json") -> Path:
    data = json.loads(INPUT.read_text(encoding="utf-8"))
    if edit is not None:
        edit(data["invoices"])
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _line(fragment: str) -> int:
    lines = MAPPING.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def _export(input_path: Path, out: Path | None, *extra: str, date: str = RUN_DATE):
    args = ["export", "-m", MAPPING, "-i", input_path, "--date", date, *extra]
    if out is not None:
        args += ["-o", out]
    return run_cli(*args)


def _run_id(stdout: str) -> str:
    return stdout.split(", run ", 1)[1].split()[0]


def _regenerated_same(tmp_path: Path, run_id: str, out: Path) -> None:
    regen = tmp_path / "regen"
    r = run_cli("regenerate", run_id, "--out", regen)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in regen.iterdir()) == sorted(p.name for p in out.iterdir())
    for original in out.iterdir():
        assert (regen / original.name).read_bytes() == original.read_bytes(), original.name


def _debit_on(day: str):
    def edit(invoices):
        for inv in invoices:
            if inv.get("payment", {}).get("method") == "direct_debit":
                inv["payment"]["debit_date"] = day
    return edit


# ------------------------------------------------------------------ numbering note


def test_an_export_opening_a_sequence_nobody_set_says_so(tmp_path):
    """A fresh store: the dry run and the export say the sequence is opened at IdBord 1,
    that Hélios rejects a number it knows, and the set-start command; the next export,
    and an export after set-start, say nothing of it."""
    def first_two(invoices):
        del invoices[2:]

    def the_rest(invoices):
        del invoices[:2]

    dry = _export(_input(tmp_path, first_two, "a.json"), None, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "numbering: this run opens the numbering of 21450999400015 budget 00 exercise " \
        "2026 TypBord 06" in dry.stdout
    assert "it would take IdBord 1" in dry.stdout and "(doublon)" in dry.stdout
    assert f"run `pesgen numbering set-start --mapping {MAPPING} --start N`" in dry.stdout
    r = _export(_input(tmp_path, first_two, "a.json"), tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "it took IdBord 1" in r.stdout and "do not send these files" in r.stdout
    again = _export(_input(tmp_path, the_rest, "b.json"), tmp_path / "out2")
    assert again.exit_code == 0, again.output
    assert "IdBord 2" in again.stdout and "numbering:" not in again.stdout


def test_no_numbering_note_once_set_start_was_run(tmp_path):
    s = run_cli("numbering", "set-start", "-m", MAPPING, "--start", "12", "--create-store")
    assert s.exit_code == 0, s.output
    dry = _export(INPUT, None, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "IdBord 12" in dry.stdout and "numbering:" not in dry.stdout
    r = _export(INPUT, tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert "IdBord 12" in r.stdout and "numbering:" not in r.stdout
