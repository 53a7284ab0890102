"""What a large run costs the commands beside the export's own path (the seventeenth
session's scale review, docs/performance.md "Scale of the other commands"): memory
bounds checked with tracemalloc on an input made large where it matters, not timings."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc
from datetime import date

import pytest

import pesgen.validate as validate
from pesgen.errors import ExitCode, InputDataError, StateError
from pesgen.runs import export_recorded, regenerate
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS
from .mapping_support import mapping_copy

RUN = date(2026, 11, 23)
MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
BULK = 32 * 2**20  # random text the input carries: its compressed copy stays ~24 MiB


def _peak(call):
    """(result, peak of the memory Python allocated during ``call``)."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def bulky(tmp_path_factory):
    """The example export carrying BULK bytes of random text under a key no binding
    reads, exported into a store of its own: (store, run, peak of the export)."""
    tmp = tmp_path_factory.mktemp("bulky")
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    text = base64.b64encode(os.urandom(BULK * 3 // 4)).decode()
    # in strings of 64 KiB: pesgen reads none longer than 100 000 characters
    data["export"]["attachment"] = [text[i:i + 2**16] for i in range(0, len(text), 2**16)]
    source = tmp / "bulky.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    del data, text
    store = Store(f"sqlite:///{tmp / 'store.sqlite3'}")
    done, peak = _peak(lambda: export_recorded(lambda: store, MAPPING, source, tmp / "out",
                                               RUN))
    return store, done, peak


def test_the_export_does_not_hold_its_input_whole_beside_its_copy(bulky):
    """The run records a compressed copy of its input: the export read the input whole
    (110 MiB at 100 000 invoices) to hash and compress it, beside that copy."""
    store, done, peak = bulky
    assert done.titles == 11
    assert len(store.get_run(done.run_id)["input_blob"]) > BULK // 2  # kept, compressed
    assert peak < 2 * BULK, f"the export allocated {peak / 2**20:.1f} MiB at its peak"


def test_runs_list_reads_no_run_s_input(bulky):
    """`runs list` shows a line per run: it read every column, each run's input, bundle
    and policies among them (746 MiB for ten runs of 100 000 titles)."""
    store, done, _peak_of_export = bulky
    listed, peak = _peak(store.list_runs)
    assert [r.id for r in listed] == [done.run_id] and listed[0].titles == 11
    assert peak < 2**20, f"listing one run allocated {peak} bytes"


def test_a_streamed_file_without_bordereaux_keeps_no_piece_it_has_read(monkeypatch):
    """The stream check dropped each piece it had read only inside a bordereau: Corail's
    import, which has none, was held whole (1.6 GB for its 100 MB file of 50 000 titles,
    in `pesgen validate` and in the export's validator)."""
    corail = EXAMPLES.parent / "templates" / "cosoluce-corail"
    [sample] = (corail / "expected").glob("*.xml")
    stream = validate._validating_iterparse
    alive: list[int] = []

    def watched(*args, **kwargs):
        root = None
        for event, el in stream(*args, **kwargs):
            root = el.getroottree().getroot()
            yield event, el
        alive.append(len(root.findall(".//Piece")))

    monkeypatch.setattr(validate, "_validating_iterparse", watched)
    problems = validate.validate_pes_file(sample, corail / "corail.xsd")
    assert problems == []
    assert sample.read_text(encoding="utf-8").count("<Piece>") == 11
    assert alive == [1], f"pieces still in the tree once read: {alive}"


def test_a_format_of_one_file_per_run_refuses_the_title_past_one_bordereau(tmp_path):
    """e.magnus names its file WTAMC001.txt whatever the bordereau: a run of more titles
    than a bordereau holds (99 999 by default) was rendered whole, then refused as a
    template error (exit 5: 'two bordereaux' files would be named WTAMC001.txt'), which
    names neither the cause nor what to do. It is refused at the title that would open a
    second bordereau, naming it."""
    mapping, _ = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing-emagnus.yaml",
                              ("\noutput:\n", "\noutput:\n  max_pieces_per_bordereau: 4\n"),
                              name="emagnus.yaml")
    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with pytest.raises(InputDataError) as info:
        export_recorded(lambda: store, mapping, EXAMPLES / "school-export.json",
                        tmp_path / "out", RUN)
    [problem] = info.value.problems
    assert problem.rule == "run.one-file-set"
    assert problem.invoice == "FA-2026-00105"
    assert problem.record.endswith("school-export.json:$.invoices[4]")
    assert "bl-emagnus names its file WTAMC001.txt whatever the bordereau" in problem.message
    assert "runs of at most 4 titles" in problem.message
    assert problem.mapping.endswith("format.yaml:17: files[0].name")
    assert info.value.exit_code == ExitCode.INPUT
    assert not (tmp_path / "out").exists() and store.list_runs() == []


def test_regenerate_does_not_hold_the_run_s_input_whole(bulky, tmp_path):
    """regenerate writes the recorded input back to a file to export it again: it
    unpacked it whole first (110 MiB at 100 000 invoices), beside its compressed copy."""
    store, done, _peak_of_export = bulky
    run = store.get_run(done.run_id)  # what regenerate reads: the copy is held anyway
    copy, files = len(run["input_blob"]), {f["name"] for f in run["files"]}
    del run
    written, peak = _peak(lambda: regenerate(store, done.run_id, tmp_path / "again"))
    assert {p.name for p in written} >= files
    assert peak < copy + BULK // 2, (  # 101.7 MiB before, with a 24 MiB copy
        f"regenerate allocated {peak / 2**20:.1f} MiB at its peak")


def test_a_run_s_policy_notes_are_recorded_packed_and_read_back(tmp_path):
    """A run's policy notes (some 250 000 for 100 000 invoices, 30 MB of JSON) are
    recorded packed (notes_z), made one note at a time, so that neither their JSON text
    nor a dict per note is held whole as the run is recorded (the CLI's export peaked
    at 417 MiB at 100 000 invoices, 386 MiB of it reached while those were made);
    `runs show` reads them back, and a run recorded before, with a plain list, too."""
    import json
    from dataclasses import dataclass

    from pesgen.store import pack_notes, unpack_notes

    @dataclass(frozen=True)
    class Note:
        policy: str
        invoice: str
        detail: str

    notes = [Note("case", f"FA-{i}", "é ×1") for i in range(3)]
    packed = pack_notes(notes)
    assert json.dumps({"notes_z": packed}).isascii()
    assert unpack_notes({"notes_z": packed}) == [
        {"policy": "case", "invoice": f"FA-{i}", "detail": "é ×1"} for i in range(3)]
    assert unpack_notes({"notes_z": pack_notes([])}) == []
    assert unpack_notes({"notes": [{"policy": "x"}]}) == [{"policy": "x"}]  # older runs
    assert unpack_notes({}) == []


def _bench_input(path, count):
    """``count`` invoices of benchmarks/bench_export.py's input (the example's shape,
    3 lines each, a third paid by direct debit)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_export", EXAMPLES.parent / "benchmarks" / "bench_export.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.generate(path, count, 3)
    return path


def test_what_an_export_keeps_per_invoice_does_not_grow_with_the_run(tmp_path, monkeypatch):
    """The export's peak grew ~1.2 MiB of RSS per 1 000 invoices (docs/performance.md,
    twenty-first session): each title's figures as a tuple of objects, its policy notes
    as objects, its payment references CSV built whole, the duplicate checks' dicts of
    strings. Measured with tracemalloc, the peak of 2 × N invoices against N's, the
    memos (bounded at 50 000 entries, which a run this small would still be filling)
    bounded at 100: 0.79 MiB more per 1 000 invoices before, 0.11 after."""
    import pesgen.memo
    from pesgen.export import export

    monkeypatch.setattr(pesgen.memo, "LIMIT", 100)
    n = 2000
    peaks = []
    for count in (n, 2 * n):
        source = _bench_input(tmp_path / f"in-{count}.json", count)
        done, peak = _peak(lambda: export(MAPPING, source, tmp_path / f"out-{count}", RUN))  # noqa: B023
        assert done.titles == count and len(done.notes) > 2 * count
        peaks.append(peak)
    per_thousand = (peaks[1] - peaks[0]) / n * 1000 / 2**20
    assert per_thousand < 0.4, (
        f"{per_thousand:.2f} MiB more per 1 000 invoices (peaks {peaks[0] / 2**20:.1f} and "
        f"{peaks[1] / 2**20:.1f} MiB)")


def test_the_guard_on_the_store_makes_nothing_per_invoice(tmp_path, monkeypatch):
    """Between the titles prepared and the files rendered, the CLI's export asks the
    store whether active runs hold the run's invoices or NumDettes (``runs._Taken``),
    and whether PayFiP shows any paid through a cancelled title (``paid_online``). That
    made a list of the run's invoice numbers and a dict of its NumDettes, kept for the
    whole export, and for each look-up a dict of its invoice keys (and of its amounts),
    and a statement per 500 values holding them, left in reference cycles: the stage's
    peak over what the prepared run holds grew 0.20 MiB per 1 000 invoices (2 000
    against 4 000; docs/performance.md, "What a run keeps per invoice"). Now the run's
    numbers are read from its titles 500 at a time and only those held are kept: 0.02
    (the input's packed copy, made at that stage, grows with it)."""
    import gc

    import pesgen.memo
    import pesgen.payfip.models  # noqa: F401  (imported by the stage: not counted in it)
    from pesgen.export import Exporter

    monkeypatch.setattr(pesgen.memo, "LIMIT", 100)
    stage: dict[str, int] = {}
    prepare, finish = Exporter.prepare, Exporter.finish

    def prepared(self, *args, **kwargs):
        out = prepare(self, *args, **kwargs)
        stage["from"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        return out

    def finishing(self, *args, **kwargs):
        stage["peak"] = tracemalloc.get_traced_memory()[1]
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(Exporter, "prepare", prepared)
    monkeypatch.setattr(Exporter, "finish", finishing)
    n = 2000
    grew = []
    for count in (n, 2 * n):
        source = _bench_input(tmp_path / f"in-{count}.json", count)
        store = Store(f"sqlite:///{tmp_path / f'store-{count}.db'}")
        gc.collect()
        done, _ = _peak(lambda: export_recorded(  # noqa: B023
            lambda: store, MAPPING, source, tmp_path / f"out-{count}", RUN))  # noqa: B023
        assert done.titles == count and done.run_id
        grew.append(stage["peak"] - stage["from"])
    per_thousand = (grew[1] - grew[0]) / n * 1000 / 2**20
    assert per_thousand < 0.1, (
        f"{per_thousand:.2f} MiB more per 1 000 invoices (the stage's peak over what the "
        f"prepared run held: {grew[0] / 2**20:.2f} and {grew[1] / 2**20:.2f} MiB)")


def test_a_run_of_more_than_a_batch_of_titles_holds_every_invoice(tmp_path):
    """A run's invoices are recorded 5 000 rows a statement: a run of 5 001 holds all of
    them, each once (an export of the same input is refused for every one of them, the
    last of the first batch and the one after it included)."""
    source = _bench_input(tmp_path / "in.json", 5001)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    done = export_recorded(lambda: store, MAPPING, source, tmp_path / "out", RUN)
    assert done.titles == 5001
    numbers = [inv["number"] for inv in json.loads(source.read_text(encoding="utf-8"))[
        "invoices"]]
    with pytest.raises(StateError) as info:
        export_recorded(lambda: store, MAPPING, source, tmp_path / "again", RUN)
    assert str(info.value).startswith(
        f"5001 invoice(s) already exported by run(s) {done.run_id}; nothing written")
    assert [p.invoice for p in info.value.problems] == numbers
