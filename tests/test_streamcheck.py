"""Validation streamed in a second process (large bordereaux) must decide exactly as
validating the assembled file does: same bytes, same refusals, same problems."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from pesgen.atomic import commit
from pesgen.errors import OutputInvalidError
from pesgen.export import Exporter
from pesgen.formats import load_format
from pesgen.mapping import load_mapping
from pesgen.resources import schema_path
from pesgen.streamcheck import StreamValidator

from .conftest import EXAMPLES, MAPPINGS, ROOT, golden_parts
from .test_export_spool import _small_bordereaux

RUN = date(2026, 11, 23)


def _export(out: Path, stream_from: int, fmt_dir: Path | None = None, official=None,
            mapping: Path = MAPPINGS / "villeneuve-sur-loing.yaml"):
    fmt = load_format(fmt_dir or ROOT / "templates" / "pes-ormc")
    out.mkdir()
    exporter = Exporter(load_mapping(mapping), fmt, out, RUN, official,
                        stream_from=stream_from)
    prepared = exporter.prepare(EXAMPLES / "school-export.json")
    try:
        streamed = [s is not None for b in prepared.bordereaux for s in b.streams]
        temps = exporter.finish(prepared, 1)
    finally:
        prepared.close()
    return commit(temps), streamed


def _broken_bundle(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "fmt" / "pes-ormc"
    shutil.copytree(ROOT / "templates" / "pes-ormc", folder,
                    ignore=shutil.ignore_patterns("fixture", "expected"))
    template = folder / "pes-aller.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert old in text
    template.write_text(text.replace(old, new), encoding="utf-8")
    return folder


def test_streamed_and_whole_file_validation_give_the_same_bytes(tmp_path, official_xsd,
                                                                monkeypatch):
    """The stream vouches for the body; the real header is checked with the first piece
    alone (the XSD wants a piece in a bordereau: any the stream validated would do, so a
    read of more, the whole body, would give the same verdict at the cost of a second
    pass over it, and a piece cut short would fall back to the whole file)."""
    import pesgen.export as export_module

    whole, streamed_whole = _export(tmp_path / "whole", stream_from=10_000)
    calls = []
    original = Exporter._validate
    monkeypatch.setattr(Exporter, "_validate",
                        lambda self, *a: calls.append(a) or original(self, *a))
    headers = []
    check = export_module.stream_check
    monkeypatch.setattr(export_module, "stream_check",
                        lambda *a, **k: headers.append(check(*a, **k)) or headers[-1])
    streamed, streamed_flags = _export(tmp_path / "streamed", stream_from=3,
                                       official=official_xsd)
    assert streamed_whole == [False] and streamed_flags == [True]
    assert calls == []  # the stream vouched for the body: no whole-file pass was needed
    assert [(h.pieces, h.declared_count, h.schema_error, h.problems) for h in headers] == \
        [(1, 11, False, [])]
    assert [p.read_bytes() for p in whole] == [p.read_bytes() for p in streamed]


@pytest.mark.parametrize("old,new,rule", [
    # a piece rendered after the stream started breaks the XSD
    ('<Majo V="0"/>', '<Majo V="{{ 1 if t.number == 7 else 0 }}"/>', "xsd.pesgen"),
    # a bordereau rule inside a piece
    ('<TypPce V="15"/>', '<TypPce V="{{ 15 if t.number != 9 else 1 }}"/>', "xsd.pesgen"),
    # a rule on a debtor (pesgen.rules) the XSD cannot express
    ('<Civilite V="{{ d.civility }}"/>',
     '<Civilite V="{{ \'MLLE\' if t.number == 9 else d.civility }}"/>', "pes.civility"),
    # a Cle2 the file's own Exer, Per and NumDette contradict
    ('<Cle2 V="{{ t.cle2 }}"/>',
     '<Cle2 V="{{ t.cle2 if t.number != 9 else (\'B\' if t.cle2 == \'A\' else \'A\') }}"/>',
     "pes.cle2"),
    # the real header is wrong while the provisional one was fine
    ('<NbrPce V="{{ doc.bordereau.count }}"/>',
     '<NbrPce V="{{ doc.bordereau.count + (1 if doc.bordereau.number > 1 or '
     'doc.bordereau.count > 1 else 0) }}"/>', "pes.nbr-pce"),
    ('<MtBordHt V="{{ doc.bordereau.total | amount }}"/>',
     '<MtBordHt V="{{ (doc.bordereau.total if doc.bordereau.count == 1 else 1) | amount }}"/>',
     "pes.mt-bord-ht"),
    # the real header breaks the XSD (NomFic over 100 characters) or a bordereau rule
    # (DteAsp before DteBordEm) where the provisional one was fine: the stream vouched
    # for the body, the header's own check (with the first piece) refuses
    ('<NomFic V="{{ doc.file_name }}"/>',
     '<NomFic V="{{ doc.file_name ~ (\'\' if doc.file_name == \'provisional.xml\' '
     'else \'_\' * 100) }}"/>', "xsd.pesgen"),
    ('<DteAsp V="{{ doc.bordereau.asap_date | isodate }}"/>',
     '<DteAsp V="{{ doc.bordereau.asap_date | isodate if doc.file_name == '
     '\'provisional.xml\' else \'2026-01-02\' }}"/>', "pes.asap-date"),
])
def test_streamed_refusals_match_whole_file_refusals(tmp_path, old, new, rule):
    bundle = _broken_bundle(tmp_path, old, new)
    outcomes = []
    for label, stream_from in (("whole", 10_000), ("streamed", 2)):
        with pytest.raises(OutputInvalidError) as exc:
            _export(tmp_path / label, stream_from, bundle)
        assert list((tmp_path / label).iterdir()) == []
        outcomes.append(sorted(str(p) for p in exc.value.problems))
    assert outcomes[0] == outcomes[1]
    assert any(f"(rule {rule})" in p for p in outcomes[1])


def test_a_validator_that_dies_does_not_stop_the_export():
    """An invalid body is reported as not ok; a validator that dies mid-stream (killed
    here) makes the renderer's next writes fail, which must neither raise nor hang, and
    its report is None, so the exporter validates the whole file itself."""
    head, piece, tail = golden_parts()
    xsd = schema_path("pes-ormc/pes-ormc.xsd")

    invalid = StreamValidator(xsd, "x.xml")
    try:
        invalid.feed(head + piece.replace(b'<TypPce V="15"/>', b'<TypPce V="99"/>') +
                     piece * 50 + tail)
        report = invalid.finish(timeout=60)
    finally:
        invalid.abort()
    assert report is not None and not report.ok and report.pieces == 51

    dying = StreamValidator(xsd, "x.xml")
    try:
        dying.feed(head + piece)
        dying.proc.kill()
        dying.proc.wait()
        for _ in range(8 * 2**20 // len(piece)):  # far more than any pipe holds
            dying.feed(piece)
        assert dying.broken
        assert dying.finish(timeout=60) is None
    finally:
        dying.abort()



def test_an_ended_validation_exits_on_its_own_and_keeps_its_report_for_finish():
    """``end`` feeds the document's last bytes and closes the input: the process finishes
    its pass and exits without anyone waiting for it (a full bordereau's validation
    holds no process while the next is rendered); ``finish`` then reads its report, the
    same each time it is asked, and a second ``end`` feeds nothing more."""
    head, piece, tail = golden_parts()
    stream = StreamValidator(schema_path("pes-ormc/pes-ormc.xsd"), "x.xml")
    try:
        stream.feed(head + piece * 3)
        stream.end(tail)
        assert stream.ended
        assert stream.proc.wait(timeout=60) == 0  # exited with no finish asked
        stream.end(piece)
        first = stream.finish(timeout=60)
        assert first is not None and first.pieces == 3, first
        assert stream.finish(timeout=60) == first
    finally:
        stream.abort()

def test_the_validator_process_does_not_import_from_the_current_folder(tmp_path,
                                                                       monkeypatch):
    """A 'pesgen' folder where the export runs is not what the second process imports."""
    fake = tmp_path / "pesgen"
    fake.mkdir()
    marker = tmp_path / "HIJACKED"
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    (fake / "streamcheck.py").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    head, piece, tail = golden_parts()
    stream = StreamValidator(schema_path("pes-ormc/pes-ormc.xsd"), "x.xml")
    try:
        stream.feed(head + piece * 3 + tail)
        report = stream.finish(timeout=60)
    finally:
        stream.abort()
    assert not marker.exists()
    assert report is not None and report.pieces == 3  # the real validator answered


@pytest.mark.parametrize("stream_from", [10_000, 2])
def test_a_problem_in_a_piece_names_its_invoice_and_input_record(tmp_path, stream_from):
    """An XSD violation inside the 7th piece is traced back to the invoice rendered
    there and its input record, whether the file was validated whole or streamed; a
    violation in the bordereau's header names no invoice."""
    bundle = _broken_bundle(tmp_path, '<Majo V="0"/>',
                            '<Majo V="{{ 1 if t.number == 7 else 0 }}"/>')
    with pytest.raises(OutputInvalidError) as exc:
        _export(tmp_path / "out", stream_from, bundle)
    problems = exc.value.problems
    assert problems and {p.rule for p in problems} == {"xsd.pesgen"}
    for p in problems:
        assert p.invoice == "FA-2026-00108"
        assert p.message.endswith("(rendered from examples/school-export.json:$.invoices[7])")
        assert "invoice FA-2026-00108" in str(p)

    header = _broken_bundle(tmp_path / "h", '<TypBord V="06"/>', '<TypBord V="99"/>')
    with pytest.raises(OutputInvalidError) as exc:
        _export(tmp_path / "out-h", stream_from, header)
    assert exc.value.problems
    assert all(p.invoice is None and "rendered from" not in p.message
               for p in exc.value.problems)


def _traced(head: bytes, pieces: list[bytes], tail: bytes, lines: range) -> list[str | None]:
    from pesgen.errors import Problem
    from pesgen.export import _PieceLines, attribute

    traced = _PieceLines()
    for data in pieces:
        traced.add(data)
    titles = [(f"INV-{k}",) for k in range(len(pieces))]
    origins = {f"INV-{k}": f"in.json:$.invoices[{k}]" for k in range(len(pieces))}
    found = attribute([Problem("layout.x", "bad", record=f"F.csv:{n}") for n in lines],
                      "F.csv", head, tail, traced, titles, origins)
    return [p.invoice for p in found]


def test_problems_are_traced_to_the_piece_whose_line_it_is():
    # the usual style: each piece ends its lines, the head and the tail too
    assert _traced(b"H\n", [b"A1\nA2\n", b"B1\n"], b"T\n", range(1, 6)) == \
        [None, "INV-0", "INV-0", "INV-1", None]
    # line break written before each record, a head that ends no line, no final newline
    assert _traced(b"HEADER", [b"\nA1\nA2", b"\nB1", b"\nC1"], b"", range(1, 6)) == \
        [None, "INV-0", "INV-0", "INV-1", "INV-2"]
    # pieces on one line: the line is no single invoice's
    assert _traced(b"H\n", [b"A;", b"B;"], b"", range(1, 3)) == [None, None]
    # a tail that goes on on the last piece's line
    assert _traced(b"H\n", [b"A1\n", b"B1"], b"END\n", range(1, 4)) == [None, "INV-0", None]
    # a piece with nothing but a line break owns no line
    assert _traced(b"H\n", [b"A1\n", b"\n", b"C1\n"], b"", range(1, 5)) == \
        [None, "INV-0", None, "INV-2"]


def test_a_problem_of_another_file_or_named_already_is_left_as_it_is():
    """Only a problem recorded at a line of the file attributed ('F.csv:N') names the
    piece there: one of another file of the format, whatever its line, names none, and
    one that names its invoice already keeps it and its message."""
    from pesgen.errors import Problem
    from pesgen.export import _PieceLines, attribute

    traced = _PieceLines()
    traced.add(b"A1\n")
    given = [Problem("layout.x", "bad", record=record)
             for record in ("G.csv:2", "F.csvx:2", "F.csv:2")]
    given.append(Problem("layout.x", "bad", record="F.csv:2", invoice="INV-9"))
    found = attribute(given, "F.csv", b"H\n", b"", traced, [("INV-0",)],
                      {"INV-0": "in.json:$[0]"})
    assert [(p.invoice, p.message) for p in found] == [
        (None, "bad"), (None, "bad"), ("INV-0", "bad (rendered from in.json:$[0])"),
        ("INV-9", "bad")]


def _alive_counted(monkeypatch) -> list[int]:
    """How many streamed validations' processes the export holds each time one starts,
    and once the titles are all rendered (``Exporter.finish`` called): running, or ended
    and not waited for (its output pipe open; ``returncode`` is set by the wait, not
    asked here, which would wait for them)."""
    import pesgen.export as export_module

    started: list[StreamValidator] = []
    counts: list[int] = []

    def alive() -> int:
        return sum(s.proc.returncode is None for s in started)

    class Counted(StreamValidator):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            started.append(self)
            counts.append(alive())

    finish = Exporter.finish
    monkeypatch.setattr(export_module, "StreamValidator", Counted)
    monkeypatch.setattr(Exporter, "finish",
                        lambda self, *a: counts.append(alive()) or finish(self, *a))
    return counts


def test_many_streamed_bordereaux_keep_two_validating_processes_at_most(tmp_path,
                                                                        monkeypatch):
    """Six bordereaux of 2 titles (the last of 1), each of the five first validated as
    it is rendered: each bordereau's process was kept until the files were assembled,
    five at once (a Python process each: 10 bordereaux of 2 000 titles held 414 MiB).
    A full bordereau's process ends its pass; at most two run at once, and each still
    vouches for its body (no file validated again whole but the 1-title one), the
    files the same bytes as validated whole."""
    mapping = _small_bordereaux(tmp_path, 2)
    whole = _export(tmp_path / "whole", 10_000, mapping=mapping)[0]
    counts = _alive_counted(monkeypatch)
    calls = _validated_files(monkeypatch)
    streamed, flags = _export(tmp_path / "streamed", 2, mapping=mapping)
    assert flags == [True] * 5 + [False]
    # five started, then finish: the one before each is not waited for as the next
    # starts (it finishes its pass meanwhile), the one before that is
    assert counts == [1, 2, 2, 2, 2, 2], counts
    assert calls == ["PESORMC_21450999400015_2026_0000006.xml"]
    assert [p.read_bytes() for p in streamed] == [p.read_bytes() for p in whole]


def test_a_problem_in_the_third_streamed_bordereau_names_its_line_and_invoice(tmp_path):
    """The third of six bordereaux of 2 titles breaks the XSD in its second title: the
    same problems as the file validated whole, naming the file, its line, the invoice
    and its input record, its process having ended before the files were assembled."""
    mapping = _small_bordereaux(tmp_path, 2)
    bundle = _broken_bundle(tmp_path, '<Majo V="0"/>',
                            '<Majo V="{{ 1 if t.invoice_number == \'FA-2026-00107\' else 0 }}"/>')
    outcomes = []
    for label, stream_from in (("whole", 10_000), ("streamed", 2)):
        with pytest.raises(OutputInvalidError) as exc:
            _export(tmp_path / label, stream_from, bundle, mapping=mapping)
        assert list((tmp_path / label).iterdir()) == []
        outcomes.append(exc.value.problems)
    assert [str(p) for p in outcomes[0]] == [str(p) for p in outcomes[1]]
    problems = outcomes[1]
    assert problems and {p.rule for p in problems} == {"xsd.pesgen"}
    piece = "/n:PES_Aller/PES_RecetteAller/Bordereau/Piece[2]/LigneDePiece[{}]/BlocLignePiece/"
    assert [str(p).split(" invoice ")[0] for p in problems] == [
        f"PESORMC_21450999400015_2026_0000003.xml:{line} {piece.format(n)}InfoLignePiece/Majo"
        for line, n in ((106, 1), (143, 2))]
    for p in problems:
        assert p.invoice == "FA-2026-00107"
        assert p.message.endswith("(rendered from examples/school-export.json:$.invoices[6])")


def test_a_provisional_tail_refused_is_said_when_the_files_are_assembled(tmp_path):
    """The streamed validation's provisional tail is now rendered as its bordereau is
    full, during the preparation: a template refusing it (here for that document
    alone) is still refused where it was, once the input's problems are listed, as the
    file is assembled, with the template's name and line."""
    from pesgen.errors import TemplateError

    bundle = _broken_bundle(tmp_path, "</n:PES_Aller>\n{% endmacro %}",
                            "</n:PES_Aller>\n{{ nowhere if doc.file_name == 'provisional.xml' "
                            "else '' }}{% endmacro %}")
    mapping = _small_bordereaux(tmp_path, 5)
    fmt = load_format(bundle)
    out = tmp_path / "out"
    out.mkdir()
    exporter = Exporter(load_mapping(mapping), fmt, out, RUN, stream_from=2)
    prepared = exporter.prepare(EXAMPLES / "school-export.json")
    try:
        assert [s is not None for b in prepared.bordereaux for s in b.streams] == \
            [True, True, False]
        with pytest.raises(TemplateError) as exc:
            exporter.finish(prepared, 1)
    finally:
        prepared.close()
    message = str(exc.value)
    assert message.startswith(f"template {bundle}/pes-aller.xml.j2:"), message
    assert ": 'nowhere' is undefined: a template reads doc, " in message, message
    assert message.endswith(" (tail)"), message
    assert list(out.iterdir()) == []


# the validator of the tests below: it waits DELAY seconds before reading its input
_SLOW = ("import runpy, sys, time; time.sleep(float(sys.argv[1])); sys.argv = sys.argv[1:]; "
         "runpy.run_module('pesgen.streamcheck', run_name='__main__')")


def _validated_files(monkeypatch) -> list[str]:
    """The names of the files the export validates whole (Exporter._validate), in order."""
    calls: list[str] = []
    original = Exporter._validate
    monkeypatch.setattr(Exporter, "_validate",
                        lambda self, *a: calls.append(a[2]) or original(self, *a))
    return calls


def _slowed(monkeypatch, delay: float) -> tuple[list[StreamValidator], list]:
    """The export's streamed validations made ``delay`` seconds slow to start reading
    (a loaded machine, a slow disk): the validators started and the reports read."""
    import sys

    import pesgen.export as export_module

    started: list[StreamValidator] = []
    reports: list = []

    class Slow(export_module.StreamValidator):  # type: ignore[misc,valid-type]
        def _command(self, xsd: Path, name: str) -> list[str]:
            started.append(self)
            return [sys.executable, "-P", "-c", _SLOW, str(delay), str(xsd), name]

        def _collect(self, timeout: float):
            reports.append(super()._collect(timeout))
            return reports[-1]

    monkeypatch.setattr(export_module, "StreamValidator", Slow)
    return started, reports


def test_a_validation_slower_than_rendering_holds_it_and_its_report_is_read(tmp_path,
                                                                            monkeypatch):
    """Each validator waits a second before reading (slower than rendering two titles):
    a bordereau's stream waits, as it starts, for the report of the oldest (two
    processes at most); every report is read and vouches for its body: no file validated
    again whole but the 1-title one, the same bytes as validated whole."""
    mapping = _small_bordereaux(tmp_path, 2)
    whole = _export(tmp_path / "whole", 10_000, mapping=mapping)[0]
    counts = _alive_counted(monkeypatch)
    started, reports = _slowed(monkeypatch, 1.0)
    calls = _validated_files(monkeypatch)
    streamed, flags = _export(tmp_path / "streamed", 2, mapping=mapping)
    assert flags == [True] * 5 + [False] and len(started) == 5
    assert counts == [1, 2, 2, 2, 2, 2], counts
    assert [r.pieces if r and r.ok else r for r in reports] == [2] * 5
    assert calls == ["PESORMC_21450999400015_2026_0000006.xml"]
    assert [p.read_bytes() for p in streamed] == [p.read_bytes() for p in whole]


def test_a_validation_past_its_wait_is_killed_and_the_file_validated_whole(tmp_path,
                                                                           monkeypatch):
    """Validators slower than the wait for their report (``VALIDATOR_WAIT``, 600 s; half a
    second here, each validator waiting a minute): each is killed when its report is
    waited for, no hang, and its file validated whole instead: the third bordereau's
    schema error is found and named as validated whole, nothing written."""
    import time

    import pesgen.streamcheck as streamcheck_module

    mapping = _small_bordereaux(tmp_path, 2)
    bundle = _broken_bundle(tmp_path, '<Majo V="0"/>',
                            '<Majo V="{{ 1 if t.invoice_number == \'FA-2026-00107\' else 0 }}"/>')
    with pytest.raises(OutputInvalidError) as exc:
        _export(tmp_path / "whole", 10_000, bundle, mapping=mapping)
    expected = [str(p) for p in exc.value.problems]
    assert expected and all("FA-2026-00107" in p for p in expected)
    monkeypatch.setattr(streamcheck_module, "VALIDATOR_WAIT", 0.5)
    started, reports = _slowed(monkeypatch, 60.0)
    calls = _validated_files(monkeypatch)
    running = []  # once the titles are all rendered: the two last, not waited for yet
    finish = Exporter.finish
    monkeypatch.setattr(Exporter, "finish", lambda self, *a: running.append(
        sum(s.proc.poll() is None for s in started)) or finish(self, *a))
    began = time.monotonic()
    with pytest.raises(OutputInvalidError) as exc:
        _export(tmp_path / "streamed", 2, bundle, mapping=mapping)
    assert time.monotonic() - began < 30
    assert [str(p) for p in exc.value.problems] == expected
    assert list((tmp_path / "streamed").iterdir()) == []
    assert len(started) == 5 and reports == [None] * 5 and running == [2]
    assert all(s.proc.poll() is not None for s in started)  # killed, none left running
    assert calls == [f"PESORMC_21450999400015_2026_{n:07d}.xml" for n in range(1, 7)]


def test_a_validator_that_reads_no_more_is_killed_after_the_wait(tmp_path, monkeypatch):
    """A validator alive that reads nothing (sleeping a minute here), its pipe full (a
    bordereau of 2 001 titles: 1.8 MiB spooled when its stream starts, more than the 1
    MiB pipe): a write waited for it to read with no bound (a validator that read no
    more held the export for good); it is now killed after ``VALIDATOR_WAIT`` (half a
    second here) and the file validated whole, the same bytes."""
    import time

    import pesgen.streamcheck as streamcheck_module
    from pesgen.export import STREAM_VALIDATION_FROM

    from .conftest import generated_input

    source = generated_input(tmp_path / "in.json", STREAM_VALIDATION_FROM + 1, lines=1)
    mapping = MAPPINGS / "villeneuve-sur-loing.yaml"
    fmt = load_format(ROOT / "templates" / "pes-ormc")

    def exported(out: Path) -> list[bytes]:
        out.mkdir()
        exporter = Exporter(load_mapping(mapping), fmt, out, RUN)
        prepared = exporter.prepare(source)
        try:
            assert [s is not None for s in prepared.bordereaux[0].streams] == [True]
            temps = exporter.finish(prepared, 1)
        finally:
            prepared.close()
        return [p.read_bytes() for p in commit(temps)]

    monkeypatch.setattr(streamcheck_module, "VALIDATOR_WAIT", 0.5)
    started, reports = _slowed(monkeypatch, 60.0)
    calls = _validated_files(monkeypatch)
    began = time.monotonic()
    written = exported(tmp_path / "slow")
    assert time.monotonic() - began < 30
    assert len(started) == 1 and started[0].broken and reports == [None]
    assert started[0].proc.returncode is not None  # killed as the write waited
    assert calls == ["PESORMC_21450999400015_2026_0000001.xml"]
    monkeypatch.undo()
    assert written == exported(tmp_path / "plain")


def test_a_file_whose_xsd_declares_no_bordereau_is_not_streamed(tmp_path, monkeypatch):
    """Corail's import has pieces and no bordereau: a stream counts none of them, so its
    report could never vouch for the body, and the file was validated whole after a
    second process had made the same pass for nothing (a Corail bordereau of 2 000
    titles or more). No stream is started for it; the file is validated whole, the same
    bytes. JVS's XSD declares bordereaux: its file is still streamed."""
    import pesgen.export as export_module

    started = []
    counted = export_module.StreamValidator

    class Started(counted):  # type: ignore[misc,valid-type]
        def __init__(self, *args) -> None:
            super().__init__(*args)
            started.append(args[1])

    monkeypatch.setattr(export_module, "StreamValidator", Started)
    calls = _validated_files(monkeypatch)
    for fmt, mapping, streamed in (
            ("cosoluce-corail", "villeneuve-sur-loing-corail.yaml", False),
            ("jvs-millesime", "villeneuve-sur-loing-jvs.yaml", True)):
        started.clear()
        calls.clear()
        written, flags = _export(tmp_path / fmt, 2, ROOT / "templates" / fmt,
                                 mapping=MAPPINGS / mapping)
        assert flags == [streamed] and len(started) == streamed, fmt
        assert len(calls) == (not streamed), fmt  # the file validated whole, once
        whole = _export(tmp_path / f"{fmt}-whole", 10_000, ROOT / "templates" / fmt,
                        mapping=MAPPINGS / mapping)[0]
        assert [p.read_bytes() for p in written] == [p.read_bytes() for p in whole], fmt
