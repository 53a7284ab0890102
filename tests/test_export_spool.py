"""The rendered titles wait for their bordereau's number in one spool file per file of
the format for the whole run, each bordereau's body a segment of it (export._Segment):
a spool file per bordereau, open until the files were assembled, made a run of more
bordereaux than the open files allowed (``ulimit -n``) fail with "Too many open files"."""

from __future__ import annotations

import errno
import json
import resource
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest

from pesgen.atomic import commit
from pesgen.export import Exporter, _Segment, export
from pesgen.formats import load_format
from pesgen.mapping import load_mapping

from .conftest import EXAMPLES, MAPPINGS, ROOT, generated_input
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
OUTPUT = "\noutput:\n"


def _small_bordereaux(folder: Path, pieces: int, source: str = "villeneuve-sur-loing.yaml",
                      ) -> Path:
    mapping, _ = mapping_copy(folder, MAPPINGS / source,
                              (OUTPUT, f"{OUTPUT}  max_pieces_per_bordereau: {pieces}\n"))
    return mapping


def test_more_bordereaux_than_open_files_allowed_are_exported(tmp_path):
    """A trésorerie asking for small rôles (max_pieces_per_bordereau: 1) and 100
    invoices, under a limit of 64 open files: the export kept a spool file open per
    bordereau and stopped with "Too many open files" (exit 2), nothing written."""
    mapping = _small_bordereaux(tmp_path, 1)
    source = generated_input(tmp_path / "in.json", 100)
    out = tmp_path / "out"

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    r = subprocess.run([sys.executable, "-c", "from pesgen.cli import main; main()",
                        "export", "-m", str(mapping), "-i", str(source), "-o", str(out),
                        "--date", "2026-11-23", "--db", f"sqlite:///{tmp_path / 's.db'}",
                        "--create-store"], capture_output=True, text=True, timeout=300,
                       check=False, preexec_fn=limited)
    assert r.returncode == 0, r.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len([n for n in written if n.endswith(".references.csv")]) == 100
    assert len([n for n in written if n.endswith(".xml")]) == 100
    assert written[0] == "PESORMC_21450999400015_2026_0000001.references.csv"
    assert written[-1] == "PESORMC_21450999400015_2026_0000100.xml"


def test_a_run_opens_one_spool_file_per_file_of_the_format(tmp_path, monkeypatch):
    """Four bordereaux, one spool file (the format writes one file a bordereau)."""
    opened = []
    real = tempfile.TemporaryFile

    def counted(*args, **kwargs):
        opened.append(real(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(tempfile, "TemporaryFile", counted)
    result = export(_small_bordereaux(tmp_path, 3), EXAMPLES / "school-export.json",
                    tmp_path / "out", RUN)
    assert len({f.bordereau for f in result.files}) == 4
    assert len(opened) == 1 and opened[0].closed


def _exported(out: Path, mapping: Path, stream_from: int) -> list[bytes]:
    out.mkdir()
    exporter = Exporter(load_mapping(mapping), load_format(ROOT / "templates" / "pes-ormc"),
                        out, RUN, stream_from=stream_from)
    prepared = exporter.prepare(EXAMPLES / "school-export.json")
    try:
        assert [s is not None for b in prepared.bordereaux for s in b.streams] == \
            [stream_from <= b.count for b in prepared.bordereaux]
        temps = exporter.finish(prepared, 1)
    finally:
        prepared.close()
    return [p.read_bytes() for p in commit(temps) if p.suffix == ".xml"]


def test_a_streamed_validation_is_fed_its_own_bordereau_alone(tmp_path, monkeypatch):
    """Bordereaux of 5, 5 and 1 titles (the example's 11), the first two validated as
    they are rendered:
    the stream of the second starts with what is spooled of it, not of the first (its
    pieces would not be its count: the whole file validated again, in-process)."""
    mapping = _small_bordereaux(tmp_path, 5)
    whole = _exported(tmp_path / "whole", mapping, 10_000)
    calls = []
    original = Exporter._validate
    monkeypatch.setattr(Exporter, "_validate",
                        lambda self, *a: calls.append(a[2]) or original(self, *a))
    streamed = _exported(tmp_path / "streamed", mapping, 4)
    # the third bordereau (1 title) is validated whole, as a small one is
    assert calls == ["PESORMC_21450999400015_2026_0000003.xml"]
    assert streamed == whole
    assert [f.count(b"<Piece>") for f in whole] == [5, 5, 1]


def test_each_bordereau_s_files_hold_its_titles_and_an_empty_one_is_skipped(tmp_path):
    """e.magnus' three files, named by bordereau here, its joint debtors' file skipped
    when empty: each bordereau's files hold its own titles' lines, and the joint debtors'
    file is written for the bordereau whose title has one, skipped for the others."""
    formats = tmp_path / "formats"
    shutil.copytree(ROOT / "templates" / "bl-emagnus", formats / "bl-emagnus")
    spec = formats / "bl-emagnus" / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    for name in ("WTAMC001", "WTAMC001AS", "WTAMC001_TSOL"):
        text = text.replace(f'name: "{name}.txt"',
                            f'name: "{name}_{{{{ doc.bordereau.number }}}}.txt"')
    old = "    layout: wtamc001tsol.layout.yaml\n"
    spec.write_text(text.replace(old, old + "    when_empty: skip\n"), encoding="utf-8")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"][6]["joint_payer"] = {
        "kind": "person", "title": "M.", "last_name": "Lefèvre", "first_name": "Marc",
        "address": {"street": "4 place du Marché", "postal_code": "45200",
                    "city": "Montargis"}}
    source = tmp_path / "export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mapping = _small_bordereaux(tmp_path, 4, "villeneuve-sur-loing-emagnus.yaml")
    out = tmp_path / "out"
    result = export(mapping, source, out, RUN, formats_dirs=[formats])
    assert result.skipped == ["WTAMC001_TSOL_1.txt", "WTAMC001_TSOL_3.txt"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"WTAMC001_{n}.txt" for n in (1, 2, 3)] + [f"WTAMC001AS_{n}.txt" for n in (1, 2, 3)]
        + ["WTAMC001_TSOL_2.txt"])
    left_out = {x.invoice for x in result.left_out}  # the example leaves one out
    numbers = [i["number"] for i in data["invoices"] if i["number"] not in left_out]
    assert len(numbers) == 11
    for n in (1, 2, 3):
        main = (out / f"WTAMC001_{n}.txt").read_bytes().decode("cp1252")
        assert [x for x in numbers if x in main] == numbers[4 * (n - 1):4 * n], n
    assert (out / "WTAMC001_TSOL_2.txt").read_bytes().count(b"\r\n") == 1


def test_the_lines_of_a_bordereau_s_pieces_are_counted_from_the_spool_and_never_from_a_cut():
    """A problem found in a written file names its piece from the lines each piece of
    the bordereau's body takes, counted from the spool file once it is found
    (``_counted_lines``, the pieces' sizes kept as they were spooled): each piece's first
    and last lines; a spool file ending within the body (truncated under pesgen) raises an
    input/output error naming the byte it ends at, never lines counted from what is
    left."""
    from array import array

    from pesgen.export import _counted_lines

    pieces = [b"<P>one</P>\n", b"<P>two\nlines</P>\n", b"<P>three</P>\n"]
    with tempfile.TemporaryFile() as spool:
        spool.write(b"<Head/>\n")
        segment = _Segment(spool, spool.tell(), spool.tell())
        for piece in pieces:
            segment.write(piece)
        sizes = array("q", map(len, pieces))
        lines = _counted_lines(segment, sizes)
        assert (list(lines.firsts), list(lines.lasts)) == ([1, 2, 4], [1, 3, 4])
        assert lines.piece_of(3) == 1 and lines.piece_of(4) == 2
        spool.truncate(segment.start + len(pieces[0]) + 5)
        with pytest.raises(OSError) as info:
            _counted_lines(segment, sizes)
    assert info.value.errno == errno.EIO
    assert info.value.strerror == ("the spool file ends at byte 24, within a bordereau's "
                                   "body (bytes 8 to 49)")


def test_a_spool_file_shorter_than_its_bordereau_s_body_is_an_error_not_a_short_file():
    """A bordereau's segment read back from a spool file that ends before the segment
    does (a spool truncated under pesgen: the disk, another process) raises an
    input/output error naming where it ends and the bordereau's bytes: the file being
    assembled is not written short of its last pieces."""
    with tempfile.TemporaryFile() as spool:
        spool.write(b"<Piece>first bordereau</Piece>")
        segment = _Segment(spool, spool.tell(), spool.tell())
        segment.write(b"<Piece>second</Piece><Piece>third</Piece>")
        assert b"".join(segment.chunks()) == b"<Piece>second</Piece><Piece>third</Piece>"
        spool.truncate(segment.start + 21)
        with pytest.raises(OSError) as info:
            list(segment.chunks())
    assert info.value.errno == errno.EIO
    assert info.value.strerror == ("the spool file ends at byte 51, within a bordereau's "
                                   "body (bytes 30 to 71)")
