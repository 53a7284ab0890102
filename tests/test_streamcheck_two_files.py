"""A format writing two files per bordereau, each checked against an XSD, in bordereaux
large enough to be validated while they are rendered (``STREAM_VALIDATION_FROM``): each
file has its own streamed validation, the run still holds two of their processes at most
(``export.STREAMS_ALIVE``), and a problem in the second file names that file."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from pesgen.atomic import commit
from pesgen.errors import OutputInvalidError
from pesgen.export import STREAM_VALIDATION_FROM, Exporter
from pesgen.formats import load_format
from pesgen.mapping import load_mapping
from pesgen.streamcheck import StreamReport

from .conftest import ROOT, generated_input
from .test_export_spool import _small_bordereaux
from .test_streamcheck import _alive_counted

RUN = date(2026, 11, 23)
PER_BORDEREAU = STREAM_VALIDATION_FROM
# three full bordereaux validated streamed, a fourth of one title validated whole
INVOICES = 3 * PER_BORDEREAU + 1
MAIN = "PESORMC_21450999400015_2026_{:07d}.xml"
SIDE = "COPIE_21450999400015_2026_{:07d}.xml"
# the side file's pieces carry an attribute its own XSD requires (the main file's XSD,
# the shipped one, allows none): a piece of the main file read for the side file's
# checks (its first piece, its segment) is not valid there
SIDE_PIECE = '<Piece Copie="1">'


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    # one line an invoice: small pieces, a fast export of 6 001 titles
    return generated_input(tmp_path_factory.mktemp("in") / "in.json", INVOICES, lines=1)


def _bundle(folder: Path, side_old: str = "", side_new: str = "") -> Path:
    """pes-ormc with a second file, ``COPIE_…``, its template the main one's with an
    attribute on each piece (and ``side_old`` made ``side_new``), checked against the
    main file's XSD requiring that attribute."""
    bundle = folder / "pes-ormc"
    shutil.copytree(ROOT / "templates" / "pes-ormc", bundle,
                    ignore=shutil.ignore_patterns("fixture", "expected"))
    text = (bundle / "pes-aller.xml.j2").read_text(encoding="utf-8")
    assert text.count("<Piece>\n") == 1 and (not side_old or text.count(side_old) == 1)
    side = text.replace("<Piece>\n", SIDE_PIECE + "\n").replace(side_old, side_new)
    (bundle / "copie.xml.j2").write_text(side, encoding="utf-8")
    xsd = (ROOT / "schemas" / "pes-ormc" / "pes-ormc.xsd").read_text(encoding="utf-8")
    piece = ('      <xs:element name="LigneDePiece" type="TLigneDePiece" '
             'maxOccurs="unbounded"/>\n    </xs:sequence>\n')
    assert xsd.count(piece) == 1
    (bundle / "copie.xsd").write_text(xsd.replace(piece, piece + (
        '    <xs:attribute name="Copie" type="xs:string" use="required"/>\n')),
        encoding="utf-8")
    spec = bundle / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    old = "    xsd: pes-ormc/pes-ormc.xsd\n"
    assert text.count(old) == 1
    spec.write_text(text.replace(old, old + (
        "  - template: copie.xml.j2\n"
        "    name: \"COPIE_{{ doc.collectivity.siret }}_{{ doc.bordereau.exercise }}_"
        "{{ doc.bordereau.number | zfill(7) }}.xml\"\n"
        "    xsd: copie.xsd\n")), encoding="utf-8")
    return bundle


def _export(out: Path, bundle: Path, mapping: Path, source: Path) -> list[Path]:
    out.mkdir()
    fmt = load_format(bundle)
    assert [f.xsd is not None for f in fmt.files] == [True, True]
    exporter = Exporter(load_mapping(mapping), fmt, out, RUN)
    prepared = exporter.prepare(source)
    try:
        assert [[s is not None for s in b.streams] for b in prepared.bordereaux] == \
            [[True, True]] * 3 + [[False, False]]
        temps = exporter.finish(prepared, 1)
    finally:
        prepared.close()
    return commit(temps)


def test_both_files_are_validated_streamed_two_processes_at_most(tmp_path, monkeypatch,
                                                                 source):
    """Three bordereaux of 2 000 titles, two files each: six streamed validations, each
    vouching for its own file's 2 000 pieces (no file validated again whole but the last
    bordereau's, of one title), two processes at most at once, the files holding their
    own template's pieces."""
    mapping = _small_bordereaux(tmp_path, PER_BORDEREAU)
    counts = _alive_counted(monkeypatch)
    reports: list[StreamReport | None] = []
    import pesgen.export as export_module

    counted = export_module.StreamValidator

    class Reported(counted):  # type: ignore[misc,valid-type]
        def _collect(self, timeout: float) -> StreamReport | None:
            reports.append(super()._collect(timeout))
            return reports[-1]

    monkeypatch.setattr(export_module, "StreamValidator", Reported)
    calls = []
    original = Exporter._validate
    monkeypatch.setattr(Exporter, "_validate",
                        lambda self, *a: calls.append(a[2]) or original(self, *a))
    written = _export(tmp_path / "out", _bundle(tmp_path / "fmt"), mapping, source)
    # each bordereau's two start as its 2 000th title is rendered: the one before's are
    # read then (ended as it was full), one as each starts
    assert counts == [1, 2, 2, 2, 2, 2, 2], counts
    assert [r.pieces if r and r.ok else r for r in reports] == [PER_BORDEREAU] * 6
    assert calls == [MAIN.format(4), SIDE.format(4)]
    names = sorted(p.name for p in written if p.suffix == ".xml")
    assert names == sorted([MAIN.format(n) for n in range(1, 5)] +
                           [SIDE.format(n) for n in range(1, 5)])
    for n in range(1, 5):
        main = (tmp_path / "out" / MAIN.format(n)).read_bytes()
        side = (tmp_path / "out" / SIDE.format(n)).read_bytes()
        count = PER_BORDEREAU if n < 4 else 1
        assert main.count(b"<Piece>") == side.count(SIDE_PIECE.encode()) == count
        assert b"Copie" not in main


def test_a_schema_error_in_the_second_file_refuses_the_run_naming_it(tmp_path, source):
    """The third bordereau's side file breaks the XSD in one title (its 4 500th
    invoice): the run is refused, nothing written, the problems naming that file, its
    line and XPath, the invoice and its input record, none the main file."""
    mapping = _small_bordereaux(tmp_path, PER_BORDEREAU)
    bundle = _bundle(tmp_path / "fmt", '<Majo V="0"/>',
                     '<Majo V="{{ 1 if t.invoice_number == \'FB-2026-0004500\' else 0 }}"/>')
    with pytest.raises(OutputInvalidError) as exc:
        _export(tmp_path / "out", bundle, mapping, source)
    assert list((tmp_path / "out").iterdir()) == []
    problems = exc.value.problems
    assert problems and {p.rule for p in problems} == {"xsd.bundle"}
    assert [str(p).split(" invoice ")[0] for p in problems] == [
        f"{SIDE.format(3)}:19334 /n:PES_Aller/PES_RecetteAller/Bordereau/Piece[500]/"
        "LigneDePiece/BlocLignePiece/InfoLignePiece/Majo"]
    for p in problems:
        assert p.invoice == "FB-2026-0004500"
        assert p.message.endswith(f"(rendered from {source}:$.invoices[4499])"), p
