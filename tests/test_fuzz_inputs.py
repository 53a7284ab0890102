"""Inputs a user can give pesgen (an export file, a mapping) that fuzzing found to
escape as a Python exception instead of an error of pesgen's hierarchy, each kept as a
regression; then bounded property tests over CSV files, JSON files and mappings: any
of them gives either a result or a ``PesgenError`` naming the place (never another
exception, never a file written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pesgen.errors import ExitCode

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, run_cli

JSON_MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
CSV_MAPPING = MAPPINGS / "villeneuve-sur-loing-csv.yaml"


def _mapping_with(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / source.name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def _export(mapping: Path, data: Path, out: Path) -> object:
    return run_cli("export", "--mapping", mapping, "--input", data, "--out", out,
                   "--date", RUN_DATE, "--db", out.parent / "state.sqlite3",
                   "--create-store")


# ---------------------------------------------------------------- regressions


def test_a_json_export_not_in_the_utf16_the_mapping_declares_is_refused(tmp_path):
    """A JSON file without the byte order mark UTF-16 needs (the example, in UTF-8)
    declared input.encoding: utf-16 escaped as 'UnicodeError: UTF-16 stream does not
    start with BOM' from the scan for escaped surrogates: refused as not valid utf-16,
    at the file's line 1 and the mapping's input.encoding, as the CSV reader does."""
    mapping = _mapping_with(tmp_path, JSON_MAPPING, "encoding: utf-8", "encoding: utf-16")
    out = tmp_path / "out"
    r = _export(mapping, EXAMPLES / "school-export.json", out)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert (f"school-export.json:1: not valid utf-16: UTF-16 stream does not start with "
            f"BOM [mapping {mapping}:27: input.encoding] (rule input.encoding)") in r.output
    assert not out.exists()


@pytest.mark.parametrize("codec", ["idna", "punycode", "undefined"])
def test_a_codec_that_reads_no_file_is_refused_with_the_mapping(tmp_path, codec):
    """Python knows idna, punycode and undefined as text encodings, so a mapping's
    input.encoding naming one passed check-mapping, and the export escaped as a
    UnicodeError ('Unsupported error handling replace', 'undefined encoding') from the
    first look at the file: the mapping is refused at its input.encoding, before any
    input is read."""
    mapping = _mapping_with(tmp_path, JSON_MAPPING, "encoding: utf-8", f"encoding: {codec}")
    r = run_cli("check-mapping", mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert (f"'{codec}' is not the encoding of a file: Python's {codec} codec reads no "
            "file's bytes as text") in r.output
    assert f"[mapping {mapping}:27: input.encoding] (rule mapping.input)" in r.output
    out = tmp_path / "out"
    r = _export(mapping, EXAMPLES / "school-export.json", out)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert not out.exists()
