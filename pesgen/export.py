"""The export orchestrator: load input -> apply mapping -> canonical model -> render
-> validate -> write and record. It calls each stage in order and owns nothing else.

Two phases. ``prepare`` reads, maps, checks and renders every title into spool files
(no number is known yet: pieces do not carry IdBord). ``finish`` assembles each
bordereau with its IdBord, validates it and leaves it in a temporary file; ``commit``
renames the files into place. With a state store, ``finish`` and ``commit`` run inside
the transaction that allocates the numbers and records the run, so a failure anywhere
consumes no number and leaves no file.
"""

from __future__ import annotations

import csv
import errno
import gc
import io
import os
import re
import sys
import tempfile
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property, partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import _budget, clock
from ._csv import text_cell
from ._jinja import json_kind
from .across import check_across
from .atomic import commit, discard, name_error, naming, removed_if_refused, stage
from .build import Builder, LeftOut, PolicyNote
from .errors import (
    InputDataError,
    MappingError,
    MappingStopped,
    OutputInvalidError,
    PesgenError,
    Problem,
    TemplateError,
    TemplateStopped,
    UsageError,
)
from .figures import RunInvoices, TitleFigures
from .formats import (
    FileSpec,
    Format,
    encoding_clash,
    mapping_format,
    unvalidated,
    unvalidated_files,
)
from .keys import Held, cle1, cle2
from .layout import validate_file, written_forms
from .mapping import Binding, Mapping, load_mapping
from .model import Bordereau, Document, Emitter, Title, evolve
from .notes import Notes
from .render import FileRenderer, renderers
from .resources import data_dir, inside
from .rules import MAX_AMOUNT, RuleContext, check_title
from .seen import SeenInvoices
from .sources import SourceInvoice, read_invoices
from .streamcheck import StreamValidator
from .text import normalize, pes_text_error
from .validate import (
    XSD_PLACE,
    declares_bordereaux,
    load_xsd,
    official_xsd_path,
    stream_check,
    unpositioned,
    validate_against,
    validate_pes_file,
    xsd_label,
)

if TYPE_CHECKING:
    from .sample import Priced

_ZERO = Decimal(0)

# From this many titles in a bordereau, its XSD validation runs in a second process
# while the rest is rendered (see streamcheck.py); smaller ones are validated at the end,
# and so is a file whose XSD declares no bordereau (a finance package's import, Corail's).
STREAM_VALIDATION_FROM = 2000
# At most this many of those second processes at once: a bordereau's input ends when it
# is full (its process finishes its pass and exits) and its report is read when a later
# one starts. Each kept until ``finish`` made a run of many large bordereaux (a
# trésorerie's ``output.max_pieces_per_bordereau`` of a few thousand) hold a Python
# process per bordereau (docs/performance.md, "Streamed validations at once"). A format
# of more files checked against an XSD holds one per such file: those of the bordereau
# being rendered cannot end before it is full.
STREAMS_ALIVE = 2
ProgressFn = Callable[[int], None]
# The mapping and rendering allocate millions of short-lived objects; with Python's
# default first-generation threshold (700) the cyclic collector runs every few invoices
# and rescans what the run keeps (seen invoice numbers, title figures): 5 to 10 % of a
# 100 000-invoice export. Nothing pesgen builds there is cyclic, so collections are made
# rarer while an export prepares, then the threshold is put back.
_GC_FIRST_GENERATION = 50_000


@dataclass(frozen=True)
class OutputFile:
    path: Path
    sha256: str
    bordereau: int
    titles: int
    total: Decimal


@dataclass
class ExportResult:
    mapping: Mapping
    fmt: Format
    run_date: date
    files: list[OutputFile] = field(default_factory=list)
    references: list[Path] = field(default_factory=list)
    # each references file's name -> its sha256 (recorded with the run, like the files)
    reference_digests: dict[str, str] = field(default_factory=dict)
    titles: int = 0
    total: Decimal = _ZERO
    left_out: list[LeftOut] = field(default_factory=list)
    # packed as they come (some 250 000 for 100 000 invoices): iterate, or .counts()
    notes: Notes = field(default_factory=lambda: Notes(PolicyNote))
    # (invoice, IdBord, IdPce, NumDette, amount) once numbers are allocated
    invoices: RunInvoices = field(default_factory=RunInvoices)
    first_number: int = 0
    run_id: str | None = None
    # files a format marks ``when_empty: skip`` that held nothing in this run
    skipped: list[str] = field(default_factory=list)
    # each written file's name -> the checks it passed (checks_applied), recorded with the run
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Segment:
    """One bordereau's body in the run's spool file of one file of the format, from
    ``start`` to ``end``. The bordereaux fill one after the other (``Exporter._loop``
    opens one only when the one before is full), so each one's pieces follow the last
    one's in a spool file per file of the format for the whole run. A spool file per
    bordereau, all open until ``finish``, made a run of more bordereaux than the open
    files allowed (``ulimit -n``, often 1 024; a small
    ``output.max_pieces_per_bordereau``) fail with "Too many open files"."""

    spool: IO[bytes]
    start: int
    end: int

    def write(self, data: bytes) -> None:
        """Append ``data``: only the last bordereau's segment is written, at the end."""
        self.spool.write(data)
        self.end += len(data)

    def read(self, size: int) -> bytes:
        """The segment's first ``size`` bytes (its first piece)."""
        self.spool.seek(self.start)
        return self.spool.read(min(size, self.end - self.start))

    def chunks(self) -> Iterator[bytes]:
        """The segment, a MiB at a time; the spool's position is set at each read, so
        another segment read meanwhile does not move it."""
        self.spool.flush()
        at = self.start
        while at < self.end:
            self.spool.seek(at)
            chunk = self.spool.read(min(1 << 20, self.end - at))
            if not chunk:  # never cut a bordereau short without saying so
                raise OSError(errno.EIO, f"the spool file ends at byte {at}, within a "
                              f"bordereau's body (bytes {self.start} to {self.end})")
            at += len(chunk)
            yield chunk


@dataclass
class _Spooled:
    """One bordereau's rendered pieces, waiting for its number."""

    # per file of the format, its body in the run's spool file for that file
    segments: list[_Segment]
    count: int = 0
    total: Decimal = _ZERO
    lines: int = 0
    # per file: the validator streaming it (large bordereaux) and its first piece's size
    streams: list[StreamValidator | None] = field(default_factory=list)
    first_piece: list[int] = field(default_factory=list)
    # (invoice, IdPce, NumDette, Per, Cle1, Cle2, amount) of each title, in columns
    titles: TitleFigures = field(default_factory=TitleFigures)
    # per file, each piece's size in bytes: the lines of the body on which each piece's
    # first and last characters lie are counted from them (``_counted_lines``) only when
    # a problem found in the written file is to name the invoice and input record it
    # came from (see attribute); counting them as each piece is spooled cost 1.3 % of an
    # export's instructions (forty-ninth session)
    piece_sizes: list[array[int]] = field(default_factory=list)


@dataclass
class _PieceLines:
    firsts: array[int] = field(default_factory=lambda: array("q"))
    lasts: array[int] = field(default_factory=lambda: array("q"))
    breaks: int = 0

    def piece_of(self, line: int) -> int | None:
        """The index of the piece holding the body's ``line`` (1 the first; of two
        sharing it, the later), None when it is no piece's."""
        k = bisect_right(self.firsts, line) - 1
        return k if k >= 0 and line <= self.lasts[k] else None

    def add(self, data: bytes) -> None:
        base = self.breaks
        breaks = data.count(b"\n")
        end = len(data.rstrip(b"\r\n"))
        if end:
            start = len(data) - len(data.lstrip(b"\r\n"))
            self.firsts.append(base + data.count(b"\n", 0, start) + 1)
            self.lasts.append(base + breaks - data.count(b"\n", end) + 1)
        else:  # nothing but line breaks: no line is this piece's
            self.firsts.append(base + 1)
            self.lasts.append(base)
        self.breaks = base + breaks


def _counted_lines(segment: _Segment, sizes: array[int]) -> _PieceLines:
    """The lines of each piece of ``segment`` (a bordereau's body in its spool file),
    ``sizes`` its pieces' sizes in bytes, read back one piece at a time."""
    lines = _PieceLines()
    segment.spool.flush()
    segment.spool.seek(segment.start)
    at = segment.start
    for size in sizes:
        data = segment.spool.read(size)
        if len(data) != size:  # never attribute a problem from a body cut short
            raise OSError(errno.EIO, f"the spool file ends at byte {at + len(data)}, within "
                          f"a bordereau's body (bytes {segment.start} to {segment.end})")
        at += size
        lines.add(data)
    return lines


@dataclass(frozen=True)
class _Written:
    """A file of a bordereau as written: its head and tail, its body in its spool
    (``segment``, each piece's size in ``sizes``) and where each piece's lines are:
    what a refused file's error path reads again (``Exporter._schema_writers_of``)."""
    head: bytes
    tail: bytes
    segment: _Segment
    sizes: array[int]
    lines: _PieceLines

    def last_byte(self) -> bytes:
        """The last byte before the tail (the body's, or the head's when the body is
        empty); b"" when there is none."""
        if self.segment.end > self.segment.start:
            self.segment.spool.flush()
            self.segment.spool.seek(self.segment.end - 1)
            return self.segment.spool.read(1)
        return self.head[-1:]

    def pieces(self, ks: list[int]) -> Iterator[bytes]:
        """The pieces ``ks`` (their indexes, in order) as written."""
        spool, at, k0 = self.segment.spool, self.segment.start, 0
        spool.flush()
        for k in ks:
            at += sum(self.sizes[k0:k])
            spool.seek(at)
            data = spool.read(self.sizes[k])
            if len(data) != self.sizes[k]:
                raise OSError(errno.EIO, f"the spool file ends at byte {at + len(data)}, "
                              f"within a bordereau's body (bytes {self.segment.start} to "
                              f"{self.segment.end})")
            yield data
            at, k0 = at + self.sizes[k], k + 1


@dataclass
class Prepared:
    result: ExportResult
    bordereaux: list[_Spooled]
    stack: ExitStack
    # invoice -> its input record (the builder's own table, not a copy)
    origins: SeenInvoices | dict[str, str] = field(default_factory=dict)
    # a format numbering its pieces over the exercise: the first title's IdPce, and how
    # many of the result's notes the preparation made (those after are the run's own)
    first_piece: int = 1
    prepared_notes: int = 0
    # per file of the format, the spool file every bordereau's body is written in, one
    # after the other (_Segment); opened with the first bordereau
    spools: list[IO[bytes]] = field(default_factory=list)
    # the streamed validations started and whose report is not read yet, oldest first
    streaming: deque[StreamValidator] = field(default_factory=deque)
    # the input the titles were read from: a refused file's pieces are rendered again
    # from it (``Exporter._schema_writers_of``, its error path only)
    input_path: Path | None = None

    @property
    def titles(self) -> int:
        return sum(b.count for b in self.bordereaux)

    def close(self) -> None:
        self.stack.close()


class Exporter:
    """One export run of one mapping with one format."""

    def __init__(self, mapping: Mapping, fmt: Format, out_dir: Path | None,
                 run_date: date | None,
                 official_xsd: Path | None = None, progress: ProgressFn | None = None,
                 stream_from: int = STREAM_VALIDATION_FROM, vouched: bool = False,
                 references: bool = False, work_dir: Path | None = None,
                 legacy: bool = False, traced: bool = False,
                 street_before: bool = False, previewed: bool = False) -> None:
        """``vouched``: the files are a recorded run's, rebuilt to be compared with their
        recorded sha256 (runs.regenerate). They were checked when the run was recorded,
        and the same bytes are the same file: the title rules and the output checks are
        not run again, so that none added to pesgen since can refuse a recorded run (a
        rebuild that differs is refused by the comparison). ``references``: write the
        payment references CSV even for titles without NumDette, as pesgen did before
        (a recorded run that kept one, rebuilt). ``work_dir``: where the spool and
        temporary files go, instead of ``out_dir`` (a dry run: its files are checked
        against ``out_dir``, or named alone without one, and never put in place).
        ``traced``: the templates record the model fields they read (check-mapping's
        sample titles, ``pesgen.sample``; never an export). ``run_date`` None (no --date):
        today in the collectivity's time zone (``clock.today_in``), said by the run's
        notes (``run_notes``, note run_date). ``previewed``: a preview's, which renders
        and validates no XML file: a PES file without an XSD of its own is not refused
        for want of the DGFiP package (``pesgen.preview`` says it is not validated)."""
        work = work_dir if work_dir is not None else out_dir
        if work is None:
            raise UsageError("an export needs an output folder (--out); only a dry run "
                             "goes without")
        self.work_dir: Path = work
        self.vouched = vouched
        self.references = references
        self.stream_from = sys.maxsize if vouched else stream_from
        self.mapping = mapping
        self.fmt = fmt
        self.out_dir = out_dir
        # the zone whose today dated the run, when no run date was given
        self.dated_in: str | None = None
        if run_date is None:
            self.dated_in = mapping.zone
            run_date = clock.today_in(self.dated_in)
        self.run_date: date = run_date
        if not vouched:  # a recorded run's exercise was accepted when it was recorded
            _refuse_future_exercise(mapping, run_date)
        # the DGFiP package validates PES files; a finance package's import is not one
        self.official_xsd = official_xsd if fmt.is_pes else None
        self.progress = progress
        self.encoding = mapping.output.encoding or fmt.encoding
        # what the checks of a recorded run's mapping that change nothing of what is
        # rendered found, let through: said as warnings by regenerate
        self.waived: list[Problem] = list(mapping.waived)
        # load_format compared the format's own encoding with its layouts: only the
        # mapping's override can clash with them now
        for spec in fmt.files if mapping.output.encoding else ():
            clash = encoding_clash(self.encoding, spec.load_layout().encoding
                                   if spec.layout is not None else None)
            if not clash:
                continue
            problem = Problem("mapping.format", clash, mapping=mapping.where("output",
                                                                             "encoding"))
            if not (vouched and mapping.recorded):
                raise MappingError(f"{mapping.path}: {spec.template}: {clash}", [problem])
            # a recorded run's: it decides how the layout check reads the file, which a
            # rebuild does not run (the rebuilt bytes are compared with the recorded sha256)
            if problem not in self.waived:
                self.waived.append(problem)
        unchecked = [spec.template for _, spec in unvalidated_files(fmt)]
        if unchecked and self.official_xsd is None and not (vouched or previewed):
            # load_format allows this for a PES format only: the DGFiP package checks it
            raise UsageError(f"format {fmt.name}: {', '.join(unchecked)} has no XSD of its "
                             "own; give the DGFiP package to validate it (--official-xsd "
                             "DIR, PESGEN_OFFICIAL_XSD or official_xsd in the config file)",
                             unvalidated(fmt))
        # legacy: a rebuild (vouched) as pesgen rendered before 2026-12-01 (see
        # runs._rebuilt_from): None written as the word, and zero-filled as '0None',
        # code-table civilities through the text policies
        self.renderers: list[FileRenderer] = renderers(fmt, writes_none=legacy and vouched,
                                                       traced=traced, recorded=fmt.recorded)
        if not vouched:  # a recorded run's templates rendered then: compared by sha256
            for renderer in self.renderers:
                renderer.check_literals(self.encoding)
        for renderer in self.renderers:  # the mapping's alone: no cycle back to self
            renderer.explain_none = partial(_none_said, mapping)
        self._legacy = legacy and vouched
        # street_before: a rebuild (vouched) splitting a street cut at a word boundary as
        # pesgen did before 2026-12-06 (Builder.street_before), the rest as today
        self._street_before = street_before and vouched
        self.builder = Builder(mapping, fmt, recorded=vouched, legacy=self._legacy,
                               issue_date=run_date, street_before=self._street_before)
        # policies.already_exported: leave_out: the invoices active runs hold, by key
        # (runs._prepared, from the store; a recorded run rebuilt: those it left out so)
        self.exported: dict[str, Held] | None = None
        self.rule_ctx = RuleContext(fmt=fmt, issue_date=run_date)
        # format parameters (defaults from format.yaml, overridden by the mapping), then
        # pesgen's own settings, which a format option cannot shadow
        self.options: dict[str, object] = {
            **{k: str(v) for k, v in (fmt.defaults.get("options") or {}).items()},
            **mapping.output.options, "tiers_on": mapping.output.tiers_on,
            "encoding": self.encoding, "edition": mapping.output.asap_edition}
        self.asap_date = run_date + timedelta(days=mapping.output.asap_delay_days)
        # the text policies' notes of the bordereau object (run_notes)
        self.object_notes: list[PolicyNote] = []
        self.bordereau_object = self._bordereau_object()
        # the bound fields no template writes (check_fields): said in the run summary,
        # with how many of the run's titles held a value for each (counted in _loop)
        self.unwritten: list[tuple[str, Problem]] = []
        self.unwritten_held: list[int] = []
        self._held: list[tuple[int, Callable[[Title], bool]]] = []
        # why the fields the templates write could not be checked (check_fields)
        self.fields_unchecked: str | None = None
        # the model fields the templates read on the sample titles (check_fields; None:
        # not rendered)
        self.sample_reads: frozenset[str] | None = None
        # the split policies check_fields found the format would refuse (Builder's)
        self._unfit_splits: dict[str, str] = {}
        # {template: where the bound values land in its XML file} (_bindings_of)
        self._places: dict[str, dict[tuple[str, str | None],
                                     str | tuple[str, ...] | Priced]] = {}

    # ------------------------------------------------------------------ helpers

    def check_fields(self) -> None:
        """What check-mapping checks of the fields the templates write, once for the run
        (export, its dry run and preview): the templates rendered on its sample titles
        (``sample.check_templates``, a tenth of a second) and what they read compared with
        what the mapping binds (``coverage.check``). A value a split policy fills that no
        template writes refuses the mapping (MappingError, rule mapping.policy-lost): the
        export would drop that part of every value the policy splits, while its summary
        says it was split. A bound field no template writes (mapping.unwritten) is kept
        for the run summary's notes (``run_notes``), each title holding a value for it
        counted as it is rendered. A template failing on the sample titles is left to the
        export, which renders it on the invoices and names the one it fails on; the
        summary then says the fields were not checked. Unless a call into it was stopped
        past its time limit (TemplateStopped): that refuses the run here, as rendering
        the invoices would hold the command as long again before failing so."""
        from .coverage import held_by
        from .sample import check_coverage, check_templates  # they render through this module

        try:
            sample = check_templates(self.mapping, self.fmt)
        except TemplateStopped as exc:
            raise TemplateStopped(f"{exc} [on check-mapping's sample titles, rendered "
                                  "before the invoices: the invoices were not rendered, "
                                  "which would wait as long again]", exc.problems) from None
        except PesgenError as exc:
            from .coverage import unbound_problem, unbound_written_only

            # a street or a city left out is let through only when no template writes it
            if unbound := unbound_written_only(self.mapping):
                raise MappingError(f"{self.mapping.path}: invalid mapping", [
                    unbound_problem(self.mapping, self.fmt, name, None)
                    for name in unbound]) from None
            self.fields_unchecked = str(exc)
            self._builder_reads()
            return
        self.sample_reads = sample.reads
        # a refusal by invoice does not advise a split the format would refuse
        self.builder.unfit_splits = self._unfit_splits = sample.unfit_splits
        self._builder_reads()
        _, found = check_coverage(
            self.mapping, self.fmt, lambda _warning: None,
            f"{self.mapping.path}: a policy of the mapping fills a value no template of "
            f"format {self.fmt.name} writes: fix the mapping or the template, and check it "
            "with pesgen check-mapping", sample)
        self.unwritten = found.unwritten
        self.unwritten_held = [0] * len(self.unwritten)
        self._held = [(i, test) for i, (name, _) in enumerate(self.unwritten)
                      if (test := held_by(name)) is not None]

    def writes_number(self) -> bool:
        """Whether the format writes the run's number (doc.bordereau.number) anywhere: in
        a file name, or in a file (read by a template on the sample titles). True when
        that is not known (the sample titles not rendered)."""
        if any("number" in spec.name for spec in self.fmt.files):
            return True
        return self._template_reads("doc.bordereau.number")

    def _new_builder(self) -> Builder:
        """A builder of the run's titles as ``self.builder`` was made (none read yet)."""
        builder = Builder(self.mapping, self.fmt, recorded=self.vouched, legacy=self._legacy,
                          issue_date=self.run_date, street_before=self._street_before)
        builder.unfit_splits = self._unfit_splits
        return builder

    def _builder_reads(self, builder: Builder | None = None) -> None:
        """Tell the builder (``self.builder``'s by default) which of the values it takes
        as exported the templates write: an invoice number written as it is is held to
        the format's charset, a line's student then goes through the text policies
        (``_template_reads``); a text field declared not carried that they do not read is
        kept as exported, by the builder and the rules (``coverage.unwritten_texts``)."""
        from .coverage import unwritten_texts

        builder = builder or self.builder
        builder.number_written = self._template_reads("t.invoice_number")
        builder.student_written = self._template_reads("t.lines[i].student")
        builder.unwritten_texts = unwritten = unwritten_texts(self.fmt, self.sample_reads)
        reads = self.sample_reads
        # the foreign_address note's values (CP 99999, Ville, CodPays) no template reads
        builder.unwritten_address = frozenset() if reads is None else frozenset(
            f"{key}.{name}" for key, model in (("address", "t.debtor.address"),
                                               ("joint_payer", "t.joint_debtor.address"))
            for name in ("postal_code", "city", "country_code")
            if f"{model}.{name}" not in reads)
        if unwritten != self.rule_ctx.unwritten:
            self.rule_ctx = replace(self.rule_ctx, unwritten=unwritten)

    def _template_reads(self, name: str) -> bool:
        """Whether the format's templates read the model field ``name`` on the sample
        titles (check_fields); True when that is not known (they were not rendered)."""
        return self.sample_reads is None or name in self.sample_reads

    def count_unwritten(self, title: Title) -> None:
        """Count ``title`` for each bound field no template writes that it holds."""
        for index, holds in self._held:
            if holds(title):
                self.unwritten_held[index] += 1

    def _unwritten_notes(self, origin: str, shown: bool) -> list[PolicyNote]:
        """The run summary's notes of the bound fields no template writes (check_fields);
        ``shown``: a preview's (its counts are of the invoices it shows)."""
        notes = []
        if self.fields_unchecked is not None:
            notes.append(PolicyNote(
                "unwritten", "*", origin, "the fields the templates write were not checked "
                "(rule mapping.unwritten): rendering them on pesgen check-mapping's sample "
                f"titles failed: {self.fields_unchecked}"))
        run = "shown" if shown else "of this run"
        counted = {index for index, _ in self._held}
        for index, (name, warning) in enumerate(self.unwritten):
            if index not in counted:  # the run's bordereau object
                held = (f"this run's bordereau object ({name}): not written"
                        if self.bordereau_object is not None else
                        f"{name} gave no object in this run: nothing lost this time")
            elif count := self.unwritten_held[index]:
                held = f"{count} invoice(s) {run} have a value for {name}: not written"
            else:
                held = f"no invoice {run} has a value for {name}: nothing lost this time"
            notes.append(PolicyNote(
                "unwritten", "*", warning.mapping or origin,
                f"{warning.message} [mapping {warning.mapping}] (rule mapping.unwritten, "
                f"as pesgen check-mapping warns); {held}"))
        return notes

    def _bordereau_object(self) -> str | None:
        binding = self.mapping.output.bordereau_object
        if binding is None:
            return None
        scope = {"collectivity": self.builder.collectivity_scope,
                 "run": {"date": self.run_date, "exercise": self.mapping.collectivity.exercise}}
        # no input record is read: a failure is the mapping's, whatever the input
        try:
            value = _budget.evaluated(binding.where, binding.evaluate, {}, scope)
        except MappingStopped:
            raise
        except Exception as exc:
            raise MappingError(f"{binding.where}: expression failed: {exc}") from None
        # as a title's fields (input.type); a recorded run's is rebuilt as it was written
        if isinstance(value, (bool, list, tuple, dict)) and not (self.vouched and
                                                                  self.mapping.recorded):
            raise MappingError(f"{binding.where}: the bordereau object is {json_kind(value)}, "
                               "not a text: give a text (quoted in YAML) or a number")
        if value is None or str(value).strip() == "":
            return None
        limit = self.fmt.limit("bordereau.object")
        result = normalize(str(value), limit.charset, self.mapping.policies.text)
        if result.error or (limit.max and len(result.value) > limit.max):
            says = result.error or f"longer than {limit.max}"
            raise MappingError(f"{binding.where}: bordereau object {says}", [Problem(
                "text.charset" if result.error else "text.length", f"bordereau.object {says}"
                + ("" if result.error else f" ({len(result.value)} characters)"),
                mapping=binding.where)])
        # the text policies a title's texts are noted for (build._text), said once for the
        # run: the object is written as they made it
        where = binding.where
        if "transliterate" in result.applied:
            self.object_notes.append(PolicyNote("transliterate", "*", where,
                                                f"bordereau.object: {result.changed}",
                                                field="bordereau.object"))
        if "newlines" in result.applied:
            self.object_notes.append(PolicyNote(
                "newlines", "*", where, "bordereau.object: line break or tab replaced by a "
                "space", field="bordereau.object"))
        if "case" in result.applied:
            self.builder.cased["bordereau.object"] += 1
        if (err := pes_text_error(result.value)) and not (self.vouched and
                                                          self.mapping.recorded):
            # an optional text Hélios refuses ('nc' upper-cased 'NC', '0', '.'): left out,
            # as a title's optional placeholder (rule pes.text), and said so; a recorded
            # run's is rebuilt as it was written
            self.object_notes.append(PolicyNote("placeholder", "*", where,
                                                f"bordereau.object: {err}, left out",
                                                field="bordereau.object"))
            return None
        return result.value

    def document(self, number: int, count: int, total: Decimal, file_name: str = "",
                 lines: int = 0) -> Document:
        bordereau = Bordereau(exercise=self.mapping.collectivity.exercise, number=number,
                              issue_date=self.run_date, count=count, total=total,
                              asap_date=self.asap_date, object=self.bordereau_object,
                              lines=lines)
        return Document(collectivity=self.mapping.collectivity,
                        emitter=Emitter(self.mapping.output.sigle, self.mapping.output.adresse),
                        file_name=file_name, structure_date=self.run_date, bordereau=bordereau,
                        options=self.options)

    def numbered(self, title: Title, index: int) -> Title:
        if title.debt_number is None:  # titres and vendor formats: no payment keys
            return evolve(title, number=index)
        pr = self.mapping.payment_reference
        exercise = self.mapping.collectivity.exercise
        key1 = None
        if pr.cle1 == "mod11":
            key1 = cle1(self.mapping.collectivity.cod_col, pr.nature_code, exercise,
                        title.period, title.debt_number, pr.cle1_zero_remainder)
        return evolve(title, number=index, cle1=key1,
                      cle2=cle2(exercise, title.period, title.debt_number))

    def _encode(self, text: str, renderer: FileRenderer, what: str,
                title: Title | None = None) -> bytes:
        if self.fmt.newline != "\n":
            text = text.replace("\n", self.fmt.newline)
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            # the templates' own text, the mapping's texts and options, and the model's
            # text fields are checked before: what is left is a string of an expression
            # (the error path only: the line is looked for in the templates' source)
            char = text[exc.start]
            where = renderer.unwritable_source_line(char) or renderer.name
            message = (f"template {where} produced {char!r}, which "
                       f"{self.encoding} cannot encode ({what})")
            raise TemplateError(message, [Problem(
                "template", f"{char!r} cannot be written in {self.encoding}",
                mapping=where, record=title.origin if title else None,
                invoice=title.invoice_number if title else None)]) from None

    def run_notes(self, input_path: Path, shown: bool = False) -> list[PolicyNote]:
        """The notes said once for the run (export, its dry run and preview alike): the
        run date when none was given (today in the collectivity's time zone), the
        builder's (``Builder.run_notes``), a run date outside the mapping's exercise (an
        exercise after the run date's year is refused: ``_refuse_future_exercise``), and
        the bound fields no template writes (``check_fields``; ``shown``: counted over a
        preview's invoices)."""
        notes = []
        if self.dated_in is not None:
            notes.append(self._run_date_note())
        notes += self.builder.run_notes(str(input_path), shown)
        notes += self.object_notes
        exercise = self.mapping.collectivity.exercise
        if self.run_date.year != exercise:  # a mapping left at last year's exercise?
            notes.append(PolicyNote(
                "exercise", "*", self.mapping.where("collectivity", "exercise"),
                f"the bordereaux are dated {self.run_date.isoformat()} (DteBordEm) for "
                f"exercise {exercise} (Exer): {_past_exercise(exercise, self.run_date)}"))
        notes.extend(self._unwritten_notes(str(input_path), shown))
        return notes

    def _run_date_note(self) -> PolicyNote:
        """The run date taken without --date, and from where."""
        if self.mapping.timezone is None:
            where = self.mapping.where("collectivity")
            whence = "the default of collectivity.timezone"
        else:
            where = whence = self.mapping.where("collectivity", "timezone")
        return PolicyNote("run_date", "*", where,
                          f"run date {self.run_date.isoformat()} (today in {self.dated_in}, "
                          f"{whence}): no --date given")

    # ------------------------------------------------------------------ phase 1

    def prepare(self, input_path: Path, first_piece: int = 1) -> Prepared:
        """Read, map, check and render every title. Raises with every problem found.
        ``first_piece``: the first title's IdPce when the format numbers its pieces over
        the exercise (``Format.pieces_per_exercise``: they follow on across the run's
        bordereaux); else each bordereau numbers its own from 1."""
        result = ExportResult(self.mapping, self.fmt, self.run_date)
        stack = ExitStack()
        # the spool files have no name: an error of the system on one (File too large
        # as a buffer is written out, or one closed) names the folder they are in.
        # Registered first, called last: it sees what closing a spool raised
        spools = self._spools()
        stack.push(lambda _type, exc, _tb: name_error(exc, spools))
        self.builder.exported = self.exported
        prepared = Prepared(result, [], stack, self.builder.seen, first_piece=first_piece,
                            input_path=input_path)
        try:
            with _fewer_collections(), naming(spools):
                self._prepare(input_path, prepared)
        except BaseException:
            stack.close()
            raise
        prepared.prepared_notes = len(result.notes)
        return prepared

    def renumbered(self, prepared: Prepared, input_path: Path, first_piece: int) -> Prepared:
        """The run prepared again, its titles numbered from ``first_piece`` (the pieces
        are rendered with their IdPce: a format numbering them over the exercise whose
        sequence moved since they were rendered, another run of it recorded meanwhile).
        ``prepared`` is closed; the notes added to it since its preparation are kept."""
        later = prepared.result.notes[prepared.prepared_notes:]
        prepared.close()
        self.builder = self._new_builder()
        self._builder_reads()
        again = self.prepare(input_path, first_piece)
        again.result.notes.extend(later)
        return again

    def _prepare(self, input_path: Path, prepared: Prepared) -> None:
        result = prepared.result
        problems: list[Problem] = []
        try:
            try:
                seen = self._loop(input_path, prepared, problems)
            finally:
                # a total refused on an invoice's first rows alone, its rows not
                # contiguous: the duplicate refusal says so
                self.builder.drop_withdrawn(problems)
        except MappingStopped as exc:  # the problems found before it are listed too
            raise MappingStopped(str(exc), problems + exc.problems) from None
        except InputDataError as exc:
            if not problems:
                raise
            # the reader stopped (a broken row, invalid JSON): what was found before it
            # is listed too, not lost
            stop = exc.problems or [Problem("input.shape", str(exc), record=str(input_path))]
            raise InputDataError(f"{len(problems) + len(stop)} problem(s) in the input; "
                                 f"nothing written (reading stopped: {exc})",
                                 problems + stop) from None
        if self.progress:
            self.progress(seen)
        if self.builder.paths is not None:  # JSON path bindings no invoice answered
            found, path_notes = self.builder.paths.findings(str(input_path), problems)
            problems[:0] = found
            result.notes.extend(PolicyNote("path", "*", where, detail)
                                for where, detail in path_notes)
        result.notes.extend(self.run_notes(input_path))
        if problems:
            raise InputDataError(f"{len(problems)} problem(s) in the input; nothing written",
                                 problems)
        if not prepared.bordereaux:
            raise InputDataError("no title to export: every invoice was left out",
                                 [Problem("run.empty", f"{len(result.left_out)} invoice(s) left "
                                          "out, none exported")])

    @cached_property
    def _one_file_per_run(self) -> tuple[FileRenderer, str] | None:
        """A file of the format whose name is the same for two bordereaux (e.magnus'
        WTAMC001.txt), with that name: such a format writes one bordereau per run. Read
        once a run (each title past a bordereau's limit asks)."""
        for renderer in self.renderers:
            name = renderer.file_name(self.document(1, 1, _ZERO))
            if renderer.file_name(self.document(2, 1, _ZERO)) == name:
                return renderer, name
        return None

    def _amount_where(self) -> str | None:
        """The mapping file:line: key of the binding the lines' amounts come from (a
        refusal of an amount the title rules knew no mapping to name)."""
        binding = self.mapping.bindings.get("line", {}).get("amount")
        return None if binding is None else binding.where

    def _loop(self, input_path: Path, prepared: Prepared, problems: list[Problem]) -> int:
        """Read, map, check and render every invoice; returns how many were read."""
        result = prepared.result
        max_pieces = self.mapping.output.max_pieces_per_bordereau
        # the titre number over the exercise (numbering.pieces: per-exercise) follows on
        # from one bordereau to the next; else IdPce is the title's rank in its bordereau
        next_piece = prepared.first_piece if self.fmt.pieces_per_exercise else None
        current: _Spooled | None = None
        doc = self.document(0, 0, _ZERO)
        seen = 0
        # the bound fields no template writes: how many titles hold a value for each
        held = self._held
        self.unwritten_held = [0] * len(self.unwritten)
        for src in read_invoices(input_path, self.mapping.input):
            seen += 1
            if self.progress and seen % 1000 == 0:
                self.progress(seen)
            built = self.builder.build(src)
            result.notes.extend(built.notes)
            problems.extend(built.problems)
            if built.left_out:
                result.left_out.append(built.left_out)
            if built.title is None:
                continue
            if not self.vouched:
                problems.extend(check_title(built.title, self.rule_ctx))
            if problems:
                continue  # keep checking the rest, render nothing more
            if current is not None and current.count >= max_pieces and \
                    (one := self._one_file_per_run) is not None:
                problems.append(Problem(
                    "run.one-file-set", f"this title would open a second bordereau "
                    f"(output.max_pieces_per_bordereau: {max_pieces} titles each), and "
                    f"{self.fmt.name} names its file {one[1]} whatever the bordereau: it "
                    f"writes one per run. Export the input in runs of at most {max_pieces} "
                    "titles", record=built.title.origin, mapping=one[0].name_where(),
                    invoice=built.title.invoice_number))
                continue
            if current is None or current.count >= max_pieces:
                # the only place a bordereau opens, once the one before is full: the
                # bordereaux' bodies follow each other in the spools (_Segment)
                if current is None:
                    prepared.spools = [prepared.stack.enter_context(
                        tempfile.TemporaryFile(dir=self.work_dir)) for _ in self.renderers]
                starts = [s.end for s in current.segments] if current else \
                    [0] * len(prepared.spools)
                current = _Spooled([_Segment(spool, start, start) for spool, start
                                    in zip(prepared.spools, starts, strict=True)])
                prepared.bordereaux.append(current)
            elif current.total + built.title.total > MAX_AMOUNT:
                # MtBordHt is a Base_Montant too (a title alone fits: pes.amounts): refused
                # here, naming the invoice that passes it, rather than by the XSD on the
                # assembled header, which names none
                problems.append(Problem(
                    "pes.bordereau-amount", f"the bordereau's total (MtBordHt) would reach "
                    f"{current.total + built.title.total} with this title, over "
                    f"{MAX_AMOUNT} (Base_Montant: 12 digits before the decimal point); "
                    "check the amounts' unit", record=built.title.origin,
                    mapping=self._amount_where(), invoice=built.title.invoice_number))
                continue
            if next_piece is None:
                title = self.numbered(built.title, current.count + 1)
            else:
                title = self.numbered(built.title, next_piece)
                next_piece += 1
            for index, (renderer, segment) in enumerate(zip(self.renderers, current.segments,
                                                            strict=True)):
                data = self._encode(self.piece(renderer, title, doc, src), renderer,
                                    f"invoice {title.invoice_number}", title)
                segment.write(data)
                if current.count == 0:
                    current.first_piece.append(len(data))
                    current.streams.append(None)
                    current.piece_sizes.append(array("q"))
                current.piece_sizes[index].append(len(data))
                stream = current.streams[index]
                if stream is not None:
                    stream.feed(data)
                elif current.count + 1 == self.stream_from and renderer.spec.xsd is not None \
                        and declares_bordereaux(renderer.spec.xsd):
                    # an XSD without bordereaux (Corail's): its stream counts no piece,
                    # so it could never vouch for the body; the file is validated whole
                    current.streams[index] = self._start_stream(renderer, segment, prepared)
            current.count += 1
            if current.count >= max_pieces:  # full: its validations can end their pass
                self._end_streams(current)
            if held:  # a bound field no template writes (never for the shipped mappings)
                self.count_unwritten(title)
            current.total += title.total
            current.lines += len(title.lines)
            current.titles.append(title.invoice_number, title.number, title.debt_number,
                                  title.period, title.cle1, title.cle2, title.total,
                                  len(title.lines))
        if current is not None and not problems:  # else nothing is written: aborted
            self._end_streams(current)
        return seen

    def _start_stream(self, renderer: FileRenderer, segment: _Segment,
                      prepared: Prepared) -> StreamValidator:
        """Start validating this file's body in a second process: a provisional header
        (placeholder IdBord, NbrPce and MtBordHt), then what is already spooled of this
        bordereau (its segment: the bordereaux before it are in the spool too)."""
        assert renderer.spec.xsd is not None
        # the oldest ended first: a bordereau's validation ends when it is full
        while len(prepared.streaming) >= STREAMS_ALIVE and prepared.streaming[0].ended:
            prepared.streaming.popleft().finish()
        stream = StreamValidator(renderer.spec.xsd, renderer.spec.template)
        prepared.stack.callback(stream.abort)
        prepared.streaming.append(stream)
        stream.feed(self._encode(renderer.head(self._provisional()), renderer, "head"))
        for chunk in segment.chunks():
            stream.feed(chunk)
        segment.spool.seek(0, os.SEEK_END)  # the next pieces are written after it
        return stream

    def _provisional(self) -> Document:
        return self.document(1, 1, Decimal("1.00"), "provisional.xml")

    def _end_streams(self, b: _Spooled) -> None:
        """A full bordereau's streamed validations: the provisional tail, then their
        input closed, so each finishes its pass and exits while the next bordereau is
        rendered (``finish`` reads the report)."""
        for renderer, stream in zip(self.renderers, b.streams, strict=True):
            if stream is not None:
                try:
                    self._end_stream(stream, renderer)
                except PesgenError:
                    # a tail refused is said in finish, as before the streams ended here:
                    # once the input's problems are listed, with the files' refusals
                    pass

    def _end_stream(self, stream: StreamValidator, renderer: FileRenderer) -> None:
        if not stream.ended:
            stream.end(self._encode(renderer.tail(self._provisional()), renderer, "tail"))

    def _validate_streamed(self, stream: StreamValidator, renderer: FileRenderer,
                           b: _Spooled, index: int, doc: Document, tmp: Path,
                           name: str) -> list[Problem]:
        """Finish a streamed validation: the body was checked while rendering; check the
        real header with the first piece and compare the figures. Anything doubtful
        falls back to validating the assembled file as a whole."""
        self._end_stream(stream, renderer)
        report = stream.finish()
        if report is None or not report.ok or report.pieces != b.count or \
                report.total != b.total:
            return self._validate(tmp, renderer, name)
        # the XSD wants a piece in a bordereau: the first, which the stream validated
        # (any of them would do; one cut short fails here and falls back to the whole file)
        first = b.segments[index].read(b.first_piece[index])
        head = self._encode(renderer.head(doc), renderer, "head")
        tail = self._encode(renderer.tail(doc), renderer, "tail")
        assert renderer.spec.xsd is not None
        mini = stream_check(io.BytesIO(head + first + tail), load_xsd(renderer.spec.xsd), name,
                            check_totals=False)
        if mini.problems or mini.schema_error or mini.declared_count != report.pieces or \
                mini.declared_total != report.total:
            return self._validate(tmp, renderer, name)
        if self.official_xsd is not None:
            return _named(validate_against(tmp, official_xsd_path(self.official_xsd),
                                           "dgfip"), tmp, name)
        return []

    # ------------------------------------------------------------------ phase 2

    def finish(self, prepared: Prepared, first_number: int) -> list[tuple[Path, Path]]:
        """Assemble and validate every file with its IdBord, into temporary files.
        Returns (temp, final) pairs; on any problem removes them and raises."""
        result = prepared.result
        result.first_number = first_number
        result.files.clear()
        result.skipped.clear()
        result.references.clear()
        result.reference_digests.clear()
        result.checks.clear()
        result.invoices.clear()
        temps: list[tuple[Path, Path]] = []
        problems: list[Problem] = []
        try:
            with naming(self._spools()):  # a staged file's error names it: stage
                self._assemble(prepared, first_number, temps, problems)
            if problems:
                raise OutputInvalidError(f"{len(problems)} problem(s) in the rendered output; "
                                         "nothing written", problems)
        except BaseException:
            discard(temps, self.work_dir)
            raise
        # per bordereau, not per file: a format may write several files per bordereau
        result.titles = sum(b.count for b in prepared.bordereaux)
        result.total = sum((b.total for b in prepared.bordereaux), _ZERO)
        return temps

    def _spools(self) -> str:
        """What an error of the system on a spool file names: they have no name."""
        return f"{self.work_dir}: the temporary file the rendered titles are spooled in"

    def _assemble(self, prepared: Prepared, first_number: int,
                  temps: list[tuple[Path, Path]], problems: list[Problem]) -> None:
        """``finish``'s files staged in ``temps``, their problems in ``problems``."""
        result = prepared.result
        # the final names staged so far, as a set: each file's name was compared with
        # every one staged before it (``any`` over ``temps``), quadratic in the
        # bordereaux (13 of 36 s exporting 2 000 bordereaux of one title; hours at 50 000)
        taken = {final for _, final in temps}
        for offset, b in enumerate(prepared.bordereaux):
            number = first_number + offset
            names: list[str] = []
            written: dict[str, tuple[Path, str, Path]] = {}  # across_files reads them
            before = len(problems)
            for index, (renderer, segment) in enumerate(zip(self.renderers, b.segments,
                                                            strict=True)):
                doc0 = self.document(number, b.count, b.total, lines=b.lines)
                name = renderer.file_name(doc0)
                final = self._final(name)
                if final in taken:
                    raise _same_name(self.fmt.name, name, renderer,
                                     self.renderers[names.index(name)]
                                     if name in names else None)
                names.append(name)
                self._check_free(final)
                doc = replace(doc0, file_name=name)
                if renderer.spec.when_empty == "skip" and self._empty(renderer, doc, segment):
                    result.skipped.append(name)
                    continue
                tmp, digest = stage(temps, final, self._chunks(renderer, doc, segment),
                                    folder=self.work_dir)
                taken.add(final)
                stream = b.streams[index] if b.streams else None
                if self.vouched:
                    found = []  # compared with the recorded sha256 instead
                elif stream is not None:
                    found = self._validate_streamed(stream, renderer, b, index, doc, tmp,
                                                    name)
                else:
                    found = self._validate(tmp, renderer, name)
                if found:
                    head = self._encode(renderer.head(doc), renderer, "head")
                    tail = self._encode(renderer.tail(doc), renderer, "tail")
                    lines = _counted_lines(segment, b.piece_sizes[index])
                    found = attribute(found, name, head, tail, lines, b.titles,
                                      prepared.origins)
                    found = self._bindings_of(found, renderer, doc, result.notes,
                                              (name, head.count(b"\n"), lines))
                    found = self._writers_of(found, renderer, doc)
                    found = self._schema_writers_of(
                        found, renderer, doc, _Written(head, tail, segment,
                                                       b.piece_sizes[index], lines),
                        b.titles, prepared)
                problems.extend(found)
                if renderer.spec.layout is not None:
                    written[renderer.spec.template] = tmp, name, renderer.spec.layout
                result.files.append(OutputFile(final, digest, number, b.count, b.total))
                if not self.vouched:
                    result.checks[name] = checks_applied(renderer.spec, self.fmt,
                                                         self.official_xsd)
            if self.fmt.across and not self.vouched and len(problems) == before:
                # between the files of the bordereau, each valid against its layout
                problems.extend(check_across(self.fmt.across, written, self.encoding))
            result.invoices.add(number, b.titles)
            if self._references_for(b.titles):
                ref_name = Path(names[0]).stem + ".references.csv"
                self.renderers[0].check_name_length(ref_name, "payment references CSV name")
                final = self._final(ref_name)
                if final in taken:
                    raise _references_taken(self.fmt.name, final.name, names,
                                            self.renderers)
                self._check_free(final)
                rows = _references_csv(self.mapping.collectivity.exercise, number, b.titles,
                                       guard=not self.vouched)
                _tmp, ref_digest = stage(temps, final, (t.encode("utf-8") for t in rows),
                                         folder=self.work_dir)
                taken.add(final)
                result.references.append(final)
                result.reference_digests[final.name] = ref_digest

    def piece(self, renderer: FileRenderer, title: Title, doc: Document,
              src: SourceInvoice | None = None) -> str:
        """``renderer``'s piece of ``title``; a value a filter refused
        (``filters.RefusedValue``: ``fixed``, ``zfill`` over their width…) names the
        binding whose value it is, when one is (``sample.binding_of_value``): the
        template's line alone does not say which of the values it writes it was; a
        template writing None names the binding this invoice leaves empty that it wrote,
        when one is, or the several its line writes, or the field no binding fills
        (``sample.binding_of_none``), an expression binding's with the fields it reads
        in ``src``'s record (the invoice ``title`` was built from, and a line's binding
        in its line's: ``Builder.expression_reads``); a head's or tail's, the setting the run leaves
        empty (``_none_said``)."""
        try:
            return renderer.piece(title, doc)
        except TemplateError as exc:
            if exc.refused is None and not exc.none_written:
                raise
            # it renders through here
            from .sample import binding_of_none, binding_of_value, none_said

            if exc.refused is not None:
                where = binding_of_value(self.mapping, title, exc.refused[0])
                said = None if where is None else f"the value of {where}"
            else:
                said = none_said(binding_of_none(
                    self.mapping, renderer, doc,
                    exc.problems[0].mapping if exc.problems else None, title,
                    reads=None if src is None else partial(self._reads, src)))
            if said is not None:
                exc.problems = [replace(p, message=f"{p.message} ({said})")
                                for p in exc.problems]
            raise

    def _reads(self, src: SourceInvoice, binding: Binding, line: str | None) -> str:
        # sample.binding_of_none's reads: the binding's, on src (and its line)
        return self.builder.expression_reads(binding, src, line)

    def _bindings_of(self, problems: list[Problem], renderer: FileRenderer,
                     doc: Document, notes: Iterable[PolicyNote] = (),
                     pieces: tuple[str, int, _PieceLines] | None = None,
                     unattributed: bool = False) -> list[Problem]:
        """The XSD's (a layout's) refusals of an invoice's value, each given the
        mapping's binding whose value the element (the column) holds
        (``sample.binding_places``, worked out on the error path only, once per file
        kind): JVS_FAC_NumeroFacture over 20 characters (e.magnus' NumeroFacture over
        50) names bindings.invoice.number, as a text field over its format.yaml limit does
        before rendering; one of a value joining several bound fields (Corail's
        RaisonSociale, e.magnus' Designation1 with a name complement) lists them. One
        of a place holding the pricing filter's unit price (``sample.Priced``: Corail's
        ASAPPrixUnitaire) names the amount's binding when the line the place names (its
        XPath's position, its text line in the invoice's piece: ``pieces``, the file's
        name, its head's line breaks and where each piece's lines are) is one the
        filter writes as 1 x its amount (its pricing note's ``line``, ``_unpriced``),
        the unit price's otherwise (``_priced``). A refusal naming no invoice, or at an
        element no bound value fills, is left as it is; but with ``unattributed``
        (preview, which checks its invoices' lines together, naming none), whose
        refusals at a place holding one binding's value name it all the same (not a
        unit price's place, which depends on the invoice's line)."""
        forms: frozenset[str] | None = None

        def concerned(p: Problem) -> bool:
            nonlocal forms
            if not ((p.invoice or unattributed) and p.mapping is None and p.record
                    and p.rule.startswith(("xsd.", "layout."))):
                return False
            if p.rule != "layout.type" or renderer.spec.layout is None:
                return True
            if forms is None:  # a date's format, a decimal's separator: the template's
                forms = written_forms(renderer.spec.load_layout())
            return p.message.split(": ", 1)[0] not in forms

        if not any(concerned(p) for p in problems):
            return problems
        from .sample import Priced, binding_places, sample_titles  # it renders through here

        places = self._places.get(renderer.spec.template)
        if places is None:
            title = self.numbered(sample_titles(self.mapping, self.fmt)[0], 1)
            places = self._places[renderer.spec.template] = binding_places(
                self.mapping, title, renderer, doc, self.encoding)
        out = []
        unpriced: dict[str, frozenset[int]] | None = None  # read once, when needed
        for p in problems:
            if concerned(p):
                assert p.record is not None
                xpath = None
                if p.rule.startswith("xsd."):
                    xpath, key = _xsd_place(p)
                else:  # a layout's: "record 'R', column C (#n): …"
                    key = (p.message.split(": ", 1)[0], None)
                where = places.get(key)
                if isinstance(where, Priced) and not p.invoice:
                    where = None
                if isinstance(where, Priced):
                    if unpriced is None:
                        unpriced = _unpriced(notes)
                    offset = None if pieces is None else _piece_offset(p.record, *pieces)
                    where = _priced(where, unpriced.get(p.invoice or "", frozenset()),
                                    where.line_of(xpath, offset))
                if isinstance(where, tuple):  # a value joining several: each listed
                    head, said, tail = p.message.partition(" (rendered from ")
                    joins = (f" (the value joins {len(where)} bound fields, "
                             f"{'; '.join(where)}: {_joined_advice(p)})")
                    p = replace(p, message=head + joins + said + tail)
                elif where is not None:
                    p = replace(p, mapping=where, source="mapping",
                                message=p.message + self._table_advice(p, where))
            out.append(p)
        return out

    def _table_advice(self, p: Problem, where: str) -> str:
        """What a layout's refusal of a civility not among its values (layout.values)
        adds when the mapping has no codes.civility table: the civility went out as
        exported, and the table is what gives each the one the file takes."""
        if p.rule != "layout.values" or not where.endswith(".civility") \
                or self.mapping.codes.civility is not None:
            return ""
        return (": without a codes.civility table each civility goes out as exported; "
                "add one giving each civility the export holds the one the file takes "
                "(e.g. 'Mme': MME)")

    def _writers_of(self, problems: list[Problem], renderer: FileRenderer,
                    doc: Document) -> list[Problem]:
        """A line too short or too long (layout.columns, which names the template
        only), of no known record type (layout.record-type), or a value of the wrong form
        in a date or decimal column that names no binding (layout.type: ``_bindings_of``
        leaves those to the template), given the template line writing such records,
        found on check-mapping's sample titles rendered again with marks
        (``sample.writers_named``): on the error path only, the export's own rendering
        has none."""
        if not any(p.rule in ("layout.columns", "layout.record-type", "layout.type")
                   and p.mapping is None for p in problems):
            return problems
        from .sample import writers_named  # it renders through here

        return writers_named(problems, self, renderer, doc)

    def _schema_writers_of(self, problems: list[Problem], renderer: FileRenderer,
                           doc: Document, written: _Written, titles: TitleFigures,
                           prepared: Prepared) -> list[Problem]:
        """An XSD's refusal (pesgen's, the bundle's, the DGFiP's) at no place of the
        invoice's bound values (``_bindings_of``'s places: a refusal there names their
        binding, or lists those the value joins, the data's to fix) given the template
        line that wrote the line of the file it names: the part of the file holding
        that line (its head, its tail, or the piece of the invoice the problem names,
        that title built again from the input) rendered again with a mark after each
        value and each line of the templates' text (``sample.line_marks``), on the
        export's error path only: its normal render has no marks. None named for a line
        two parts share, or when a render with marks, its marks taken out, is not the
        file's bytes (a title no longer built alike: the input changed since it was
        read)."""
        from .sample import _unplaced_schema  # it renders through here

        if not any(_unplaced_schema(p) for p in problems):
            return problems
        from .sample import _writer_named, judged_lines, line_marks, unmarked

        head_lines = written.head.count(b"\n")
        before_tail = head_lines + written.lines.breaks  # the line breaks before the tail
        ends_line = written.last_byte() in (b"", b"\n")
        # problem index -> the part holding its line ("head", "tail" or a piece's index)
        # and that line's index in it (a piece's: its body line, made an index below)
        at: dict[int, tuple[str | int, int]] = {}
        # where bound values go (_bindings_of's): a refusal there is of the invoice's
        # values (their bindings named, or listed when the value joins several)
        bound = self._places.get(renderer.spec.template, {})
        for n, p in enumerate(problems):
            # a PES rule's problem (pes.*, sepa.*) at a place of a bound value too: the
            # title rules passed that value, so the template wrote it otherwise
            line = _body_line(p.record or "", f"{doc.file_name}:", 0) \
                if _unplaced_schema(p) and (not p.rule.startswith("xsd.")
                                            or _xsd_place(p)[1] not in bound) else None
            if line is None or line < 1:
                continue
            if line <= head_lines:
                at[n] = ("head", line - 1)
            elif line > before_tail + 1 or (line == before_tail + 1 and ends_line):
                at[n] = ("tail", line - before_tail - 1)
            elif p.invoice is not None:  # the line is that piece's alone (``attribute``)
                k = written.lines.piece_of(line - head_lines)
                if k is not None:
                    at[n] = (k, line - head_lines)
        try:
            marked = FileRenderer(self.fmt, renderer.spec, marked=True)
        except PesgenError:
            return problems
        parts: dict[str | int, list[set[tuple[str, int]]]] = {}
        plain: dict[str | int, list[str]] = {}  # each part's lines, without marks

        def marks_of(part: str | int, out: Callable[[], str], data: bytes) -> None:
            try:
                text = out()
                bare = unmarked(text)
                same = self._encode(bare, renderer, "a render with marks") == data
            except PesgenError:
                return
            if same:
                parts[part] = line_marks(text)
                plain[part] = bare.split("\n")

        wanted = {part for part, _ in at.values()}
        if "head" in wanted:
            marks_of("head", lambda: marked.head(doc), written.head)
        if "tail" in wanted:
            marks_of("tail", lambda: marked.tail(doc), written.tail)
        pieces = sorted(k for k in wanted if isinstance(k, int))
        before: dict[int, int] = {}
        if pieces and prepared.input_path is not None:
            figures = {k: titles[k] for k in pieces}
            again = self._titles_again(prepared.input_path, {
                prepared.origins[figures[k][0]]: (figures[k][0], figures[k][1])
                for k in pieces})
            piece_doc = self.document(0, 0, _ZERO)  # the one _loop renders pieces with
            for k, data in zip(pieces, written.pieces(pieces), strict=True):
                title = again.get(figures[k][0])
                if title is not None:
                    marks_of(k, partial(marked.piece, title, piece_doc), data)
                # the body's lines before the piece's first (its first with text, firsts,
                # after its own leading line breaks)
                leading = len(data) - len(data.lstrip(b"\r\n"))
                before[k] = written.lines.firsts[k] - 1 - data.count(b"\n", 0, leading)
        out = []
        for n, p in enumerate(problems):
            part, i = at.get(n, ("", -1))
            if isinstance(part, int):  # the body's line made an index in the piece
                i -= before.get(part, 0) + 1
            lines = parts.get(part, [])
            if 0 <= i < len(lines):
                # a rule naming a block's line: the lines of the elements it judges
                p = _writer_named(p, self, renderer, {
                    m for j in judged_lines(p, i, plain[part]) for m in lines[j]},
                    "the line written at")
            out.append(p)
        return out

    def _titles_again(self, input_path: Path, wanted: dict[str, tuple[str, int]]
                      ) -> dict[str, Title]:
        """{invoice: its title} of the invoices ``wanted`` ({input record: (invoice,
        IdPce)}), built again from ``input_path`` and numbered as the run built and
        numbered them, by a builder of their own (the run's has seen them): a refused
        file's pieces rendered again, on its error path only. One read of the input,
        stopped once all are found; an invoice no longer built alike is left out."""
        builder = self._new_builder()
        self._builder_reads(builder)
        builder.exported = self.exported
        found: dict[str, Title] = {}
        try:
            for src in read_invoices(input_path, self.mapping.input):
                if src.origin not in wanted:
                    continue
                invoice, number = wanted[src.origin]
                built = builder.build(src)
                if built.title is not None and built.title.invoice_number == invoice:
                    found[invoice] = self.numbered(built.title, number)
                if len(found) == len(wanted):
                    break
        except (PesgenError, OSError):
            # the input unreadable now (moved, changed): the refusal is said as it is,
            # the titles found so far named
            pass
        return found

    def _final(self, name: str) -> Path:
        """Where a file of the run goes: in the output folder; a dry run without one
        names it alone."""
        return Path(name) if self.out_dir is None else self.out_dir / name

    def _check_free(self, final: Path) -> None:
        if self.out_dir is not None and final.exists():
            raise UsageError(f"{final} already exists; pesgen never overwrites an export "
                             "(choose another --out folder)")

    def _references_for(self, titles: TitleFigures) -> bool:
        """Whether a bordereau gets its payment references CSV: when the mapping asks for
        it and its titles carry payment references (a NumDette, hence Per, Cle1, Cle2:
        ORMC). Titres ordinaires and finance-package imports have none: their CSV would
        be empty columns."""
        if not self.mapping.output.payment_references:
            return False
        return self.references or titles.has_debts()

    def _empty(self, renderer: FileRenderer, doc: Document, segment: _Segment) -> bool:
        return segment.end == segment.start and not renderer.head(doc) and \
            not renderer.tail(doc)

    def _chunks(self, renderer: FileRenderer, doc: Document,
                segment: _Segment) -> Iterator[bytes]:
        yield self._encode(renderer.head(doc), renderer, "head")
        yield from segment.chunks()
        yield self._encode(renderer.tail(doc), renderer, "tail")

    def _validate(self, path: Path, renderer: FileRenderer, name: str) -> list[Problem]:
        return check_output(renderer.spec, path, name, self.encoding, self.official_xsd)


def _none_said(mapping: Mapping, renderer: FileRenderer, macro: str, doc: Document,
               where: str | None) -> str | None:
    """What names the empty values ``renderer``'s head or tail (``macro``) wrote as None
    at ``where``: a setting of ``mapping`` the run leaves empty (its bordereau object, a
    collectivity's label, the ASAP edition), when one is (``sample.binding_of_none``);
    None otherwise. Each renderer of an Exporter is given it (``explain_none``)."""
    from .sample import binding_of_none, none_said  # it renders through here

    return none_said(binding_of_none(mapping, renderer, doc, where, macro=macro))


def check_output(spec: FileSpec, path: Path, name: str, encoding: str,
                 official_xsd: Path | None = None) -> list[Problem]:
    """Validate one written file against its spec's XSD (and the DGFiP package when
    given) or its layout; problems name the file as ``name``."""
    if spec.xsd is not None:
        problems = validate_pes_file(path, spec.xsd, official_xsd)
    elif official_xsd is not None:  # a PES bundle without an XSD of its own
        problems = validate_against(path, official_xsd_path(official_xsd), "dgfip")
    elif spec.layout is not None:
        return validate_file(path, spec.load_layout(), name, encoding,
                             spec.template_shown or None)
    else:
        return []
    return _named(problems, path, name)


def checks_applied(spec: FileSpec, fmt: Format, official_xsd: Path | None) -> dict[str, Any]:
    """What ``check_output`` (and the streamed validation, which applies the same)
    checks a file of ``spec`` with, as the run records it: its XSD (``xsd_of``: pesgen's
    own, under schemas/, or the bundle's) with the PES bordereau rules when the XSD has
    bordereaux (``declares_bordereaux``), or its layout, by their names in the bundle or
    under schemas/, and the DGFiP package when given."""
    applied: dict[str, Any] = {"xsd": None, "layout": None, "bordereau_rules": False,
                               "official_xsd": None}
    if spec.xsd is not None:
        applied.update(xsd=_data_name(spec.xsd, fmt), xsd_of=xsd_label(spec.xsd),
                       bordereau_rules=declares_bordereaux(spec.xsd))
    elif official_xsd is None and spec.layout is not None:
        applied["layout"] = _data_name(spec.layout, fmt)
    if official_xsd is not None:
        applied["official_xsd"] = str(official_xsd)
    return applied


def _data_name(path: Path, fmt: Format) -> str:
    """A bundle's XSD or layout by the name format.yaml gives it: under the bundle's
    folder, else under the shipped schemas/."""
    for base in (fmt.folder, data_dir("schemas")):
        if inside(base, path):
            return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    return Path(path).name


def _named(problems: list[Problem], path: Path, name: str) -> list[Problem]:
    """Problems found in the temporary file ``path``, naming the file as ``name``."""
    return [replace(p, record=(p.record or "").replace(path.name, name, 1) or name)
            for p in problems]


_LINE = re.compile(r"(\d+)\b")


def _unpriced(notes: Iterable[PolicyNote]) -> dict[str, frozenset[int]]:
    """{invoice: the positions of its lines the pricing filter writes as 1 x the
    amount}, from the run's pricing notes (their ``line``, never their words)."""
    found: dict[str, set[int]] = {}
    for note in notes:
        if note.policy == "pricing" and note.line.isdigit():
            found.setdefault(note.invoice, set()).add(int(note.line))
    return {invoice: frozenset(lines) for invoice, lines in found.items()}


def _priced(where: Priced, unpriced: frozenset[int], line: int | None) -> str | None:
    """The binding of a value refused at a place holding the pricing filter's unit
    price: the unit price's when none of the invoice's lines is written as 1 x its
    amount (``unpriced``: their positions), else the amount's when the place's ``line``
    is one of them, the unit price's when it is another; None when the place does not
    say which line it is (``Priced.line_of``) and the invoice has such a line."""
    if not unpriced:
        return where.unit_price
    if line is None:
        return None
    return where.amount if line in unpriced else where.unit_price


def _xsd_place(p: Problem) -> tuple[str, tuple[str, str | None]]:
    """An XSD problem's XPath, and its place as ``sample.binding_places`` keys them: the
    XPath without positions, and the attribute the message names (None: the
    element)."""
    xpath = (p.record or "").rsplit(" ", 1)[-1]
    m = XSD_PLACE.match(p.message)
    return xpath, (unpositioned(xpath), m[2] if m else None)


def _piece_offset(record: str, name: str, head_lines: int, lines: _PieceLines) -> int | None:
    """The text line (0 the first) within its invoice's piece of a problem at a line
    of the written file ``name`` (``record``: 'name:LINE …'), ``head_lines`` the line
    breaks of its head, ``lines`` where each piece's lines are (``attribute``'s);
    None when it names no line, or one of no piece."""
    line = _body_line(record, f"{name}:", head_lines)
    k = None if line is None else lines.piece_of(line)
    return None if k is None or line is None else line - lines.firsts[k]


def _body_line(record: str, prefix: str, head_lines: int) -> int | None:
    """The body's line (1 the first) a problem's ``record`` ('name:LINE …', ``prefix``
    'name:') names, ``head_lines`` the line breaks of the file's head; None when it
    names no line of that file."""
    m = _LINE.match(record, len(prefix)) if record.startswith(prefix) else None
    return None if m is None else int(m[1]) - head_lines


def attribute(problems: list[Problem], name: str, head: bytes, tail: bytes,
              lines: _PieceLines, titles: TitleFigures | Sequence[tuple[Any, ...]],
              origins: SeenInvoices | dict[str, str]) -> list[Problem]:
    """Name the invoice and the input record behind each problem found at a line of
    the written file ``name``: the piece that line belongs to alone. A line of the
    header or the tail, a line two pieces share (a template that writes no line break
    between them), or a problem without a line names no invoice."""
    head_lines = head.count(b"\n")
    # the body's first line is the head's last when the head does not end a line
    shared_first = bool(head) and not head.endswith(b"\n")
    # the body's last line goes on into the tail when the tail does not start one
    shared_last = lines.breaks + 1 if tail[:1] not in (b"", b"\n", b"\r") else None
    out = []
    prefix = f"{name}:"
    for p in problems:
        line = _body_line(p.record or "", prefix, head_lines) if p.invoice is None else None
        k = None if line is None else lines.piece_of(line)
        if line is not None and k is not None:
            alone = (not (k > 0 and lines.lasts[k - 1] >= line)
                     and not (shared_first and line == 1) and line != shared_last)
            if alone:
                invoice = titles[k][0]
                p = replace(p, invoice=invoice,
                            message=f"{p.message} (rendered from {origins[invoice]})")
        out.append(p)
    return out


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often for the duration (see above)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], _GC_FIRST_GENERATION), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _refuse_future_exercise(mapping: Mapping, run_date: date) -> None:
    """Refuse a mapping whose exercise is after the run date's year, or two years or
    more before it (rule collectivity.exercise): the comptable rejects a bordereau of an
    exercise not open (DT PES_RecetteRetour, TObsEtat 09 « Exercice Bordereau non
    ouvert »), or closed (22 « Exercice rôle clôturé »), and its Exer goes into Cle1,
    Cle2 and the payment references the families are given."""
    exercise = mapping.collectivity.exercise
    where = mapping.where("collectivity", "exercise")
    if exercise < run_date.year - 1:
        # last year's exercise may still take bordereaux in January (noted); one of two
        # years or more before is closed
        message = (f"exercise {exercise} (Exer) is {run_date.year - exercise} years before "
                   f"the run date {run_date.isoformat()} (DteBordEm): the exercise is closed, "
                   "and the trésorerie rejects a bordereau of a closed exercise (for a rôle: "
                   "« Exercice rôle clôturé »); set collectivity.exercise to "
                   f"{run_date.year}, or check --date")
        raise MappingError(f"{mapping.path}: exercise {exercise} is closed on "
                           f"{run_date.isoformat()}",
                           [Problem("collectivity.exercise", message, mapping=where)])
    if exercise <= run_date.year:
        return
    message = (f"exercise {exercise} (Exer) is after the run date {run_date.isoformat()} "
               f"(DteBordEm, of {run_date.year}): the trésorerie rejects a bordereau of an "
               "exercise not yet open (« Exercice Bordereau non ouvert »), and Cle1, Cle2 "
               f"and the payment references are computed from it; set "
               f"collectivity.exercise to {run_date.year}, or export on a date of {exercise} "
               "(--date) once it is open")
    raise MappingError(f"{mapping.path}: exercise {exercise} is not open on "
                       f"{run_date.isoformat()}",
                       [Problem("collectivity.exercise", message, mapping=where)])


def _past_exercise(exercise: int, run_date: date) -> str:
    """What the run summary says of an exercise before the run date's year."""
    check = "check collectivity.exercise in the mapping"
    if exercise == run_date.year - 1 and run_date.month == 1:
        return (f"titles of last year's exercise issued in January are the usual "
                f"« journée complémentaire » (pesgen's reading: the DGFiP documentation "
                f"does not describe it); check with the trésorerie that exercise "
                f"{exercise} still takes bordereaux, else {check}")
    return (f"exercise {exercise} is past (the « journée complémentaire » for last year's "
            "titles is in January): the trésorerie rejects a bordereau of a closed exercise "
            f"(for a rôle: « Exercice rôle clôturé »); {check}")


def _references_csv(exercise: int, id_bord: int,
                    titles: Iterable[tuple[str, int, str | None, str, str | None, str | None,
                                           Decimal]],
                    guard: bool = True) -> Iterator[str]:
    """The payment references CSV, in pieces of whole rows (written as they come: not
    held whole, 6 MB at 100 000 titles); ``guard``: a text cell never starts as a
    formula (not for a recorded run rebuilt: its file is compared byte for byte with the
    one written)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(["invoice", "exercise", "id_bord", "id_pce", "num_dette", "per", "cle1",
                     "cle2", "amount"])
    for count, (inv, id_pce, debt, per, c1, c2, amount) in enumerate(titles, start=1):
        # the invoice number is the one text from the input (a run recorded before
        # input.invoice-number refused a formula's first character may hold one)
        writer.writerow([text_cell(inv) if guard else inv, exercise, id_bord, id_pce,
                         debt or "", per if debt else "", c1 or "", c2 or "",
                         f"{amount:.2f}"])
        if count % _REFERENCE_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


_REFERENCE_ROWS = 2000  # rows of the payment references CSV written at a time


def open_exporter(mapping_path: Path, out_dir: Path | None, run_date: date | None,
                  official_xsd: Path | None, formats_dirs: list[Path] | None,
                  progress: ProgressFn | None,
                  on_format: Callable[[Format], None] | None = None,
                  work_dir: Path | None = None, lost_policies: bool = True) -> Exporter:
    """The exporter of a mapping; ``on_format`` sees its format bundle before any of
    the bundle's templates is read (the state store records the bundle then). With
    ``work_dir`` (a dry run), ``out_dir`` (if any) is checked as it would be, never
    created. ``lost_policies``: refuse a split policy no template writes, and note the
    bound fields none writes (``Exporter.check_fields``); check-format does it after the
    fixture, in its words."""
    mapping = load_mapping(mapping_path)
    fmt = mapping_format(mapping, formats_dirs)
    if on_format is not None:
        on_format(fmt)
    if out_dir is not None:
        out_dir = Path(out_dir)
        if work_dir is None and not out_dir.exists():  # a dry run's is never created
            out_dir.mkdir(parents=True)
        # the files are spooled and staged in it: a folder it cannot write in is named
        # now, not by the spool file it refused (a read-only file system)
        check_out_dir(out_dir)
    exporter = Exporter(mapping, fmt, out_dir, run_date, official_xsd,
                        progress, work_dir=work_dir)
    if lost_policies:
        exporter.check_fields()
    return exporter


def check_out_dir(out_dir: Path) -> None:
    """Refuse, creating nothing, an output folder an export could not write into: not a
    folder, below a file, or not writable (where the export would create it)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is not a folder")
    folder = out_dir.absolute()
    while not folder.exists():  # the export creates the missing ones, in the first there
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"{out_dir} cannot be created: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{out_dir}: cannot write in {folder} ("
                         + ("read-only file system" if _read_only(folder)
                            else "permission denied") + ")")


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read only (EROFS: no permission
    would let anyone write there)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False


def _joined_advice(problem: Problem) -> str:
    """What the refusal of a value joining several bound fields asks of them: one
    shorter when the value is over its length (a layout's length, an XSD's maxLength);
    else (a pattern, a code, a value too short) none is too long: the one causing it
    corrected."""
    if problem.rule.startswith("xsd."):
        too_long = "[facet 'maxLength']" in problem.message
    else:  # (a reserved column's "holds N character(s)" is no value to shorten)
        too_long = problem.rule == "layout.length" and "the layout allows" in problem.message
    return ("shorten one of them" if too_long
            else "correct whichever of them causes it")


def export(mapping_path: Path, input_path: Path, out_dir: Path, run_date: date | None = None,
           official_xsd: Path | None = None, first_number: int = 1,
           formats_dirs: list[Path] | None = None,
           progress: ProgressFn | None = None) -> ExportResult:
    """Export without a state store: IdBord starts at ``first_number``. The CLI goes
    through ``pesgen.runs.export_recorded`` instead, which allocates numbers. A refused
    export leaves no file, and no output folder it created."""
    with removed_if_refused(out_dir):
        exporter = open_exporter(mapping_path, out_dir, run_date, official_xsd, formats_dirs,
                                 progress)
        prepared = exporter.prepare(Path(input_path))
        try:
            commit(exporter.finish(prepared, first_number))
        finally:
            prepared.close()
        return prepared.result


def _references_taken(fmt: str, name: str, names: list[str],
                      renderers: list[FileRenderer]) -> TemplateError:
    """A file of the run named ``name``, the payment references CSV of the bordereau
    whose files are ``names``: by the format.yaml line giving the file's name (every
    file's when it is an earlier bordereau's)."""
    message = (f"file {name} would take the name of the payment references CSV of "
               f"{names[0]}: give it another name")
    wheres = [r.name_where() for r, n in zip(renderers, names, strict=False) if n == name]
    return TemplateError(f"{fmt}: {message}", [
        Problem("format.file-name", message, mapping=w)
        for w in wheres or [r.name_where() for r in renderers]])


def _same_name(fmt: str, name: str, renderer: FileRenderer,
               other: FileRenderer | None) -> TemplateError:
    """Two output files of a run named ``name``: two files of one bordereau (``other``,
    the earlier one's renderer), or the same file of two bordereaux; each by the
    format.yaml line giving its name."""
    if other is not None:
        message = (f"two files of the same bordereau would be named {name}: give each "
                   "files[] entry a name of its own")
        wheres = [other.name_where(), renderer.name_where()]
    else:
        message = (f"two bordereaux' files would be named {name}: the file name must "
                   "differ per bordereau (doc.bordereau.number)")
        wheres = [renderer.name_where()]
    return TemplateError(f"{fmt}: {message}", [
        Problem("format.file-name", message, mapping=w) for w in wheres])
