"""The export orchestrator: load input -> apply mapping -> canonical model -> render
-> validate -> write. It calls each stage in order and owns nothing else.

Nothing is written unless everything passed: pieces are rendered to temporary files
in the output folder, validated, and only then renamed into place.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO

from .build import Builder, LeftOut, PolicyNote
from .errors import InputDataError, OutputInvalidError, Problem, TemplateError, UsageError
from .formats import Format, find_format
from .keys import cle1, cle2
from .mapping import Mapping, load_mapping
from .model import Bordereau, Document, Emitter, Title
from .render import FileRenderer, renderers
from .rules import RuleContext, check_title
from .sources import read_invoices
from .validate import validate_pes_file

_ZERO = Decimal(0)


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
    titles: int = 0
    total: Decimal = _ZERO
    left_out: list[LeftOut] = field(default_factory=list)
    notes: list[PolicyNote] = field(default_factory=list)
    invoices: list[tuple[str, int, int]] = field(default_factory=list)  # (invoice, IdBord, IdPce)


@dataclass
class _OpenBordereau:
    number: int
    spools: list[IO[bytes]]
    count: int = 0
    total: Decimal = _ZERO
    refs: list[list[str]] = field(default_factory=list)


ProgressFn = Callable[[int], None]


class Exporter:
    """One export run. ``first_number`` is the IdBord of the first bordereau; further
    bordereaux of the same run take the following numbers."""

    def __init__(self, mapping: Mapping, fmt: Format, out_dir: Path, run_date: date,
                 first_number: int = 1, official_xsd: Path | None = None,
                 progress: ProgressFn | None = None) -> None:
        self.mapping = mapping
        self.fmt = fmt
        self.out_dir = out_dir
        self.run_date = run_date
        self.first_number = first_number
        self.official_xsd = official_xsd
        self.progress = progress
        self.encoding = mapping.output.encoding or fmt.encoding
        self.renderers: list[FileRenderer] = renderers(fmt)
        self.builder = Builder(mapping, fmt)
        self.rule_ctx = RuleContext(fmt=fmt, issue_date=run_date)
        self.options = {"tiers_on": mapping.output.tiers_on, "encoding": self.encoding}
        self.asap_date = run_date + timedelta(days=mapping.output.asap_delay_days)
        self.bordereau_object = self._bordereau_object()

    # ------------------------------------------------------------------ pieces

    def _bordereau_object(self) -> str | None:
        binding = self.mapping.output.bordereau_object
        if binding is None:
            return None
        scope = {"collectivity": self.builder.collectivity_scope,
                 "run": {"date": self.run_date, "exercise": self.mapping.collectivity.exercise}}
        try:
            value = binding.evaluate({}, scope)
        except Exception as exc:
            raise InputDataError(f"{binding.where}: expression failed: {exc}") from None
        if value is None or str(value).strip() == "":
            return None
        from .text import normalize

        limit = self.fmt.limit("bordereau.object")
        result = normalize(str(value), limit.charset, self.mapping.policies.text)
        if result.error or (limit.max and len(result.value) > limit.max):
            raise InputDataError(f"{binding.where}: bordereau object "
                                 f"{result.error or f'longer than {limit.max}'}")
        return result.value

    def _document(self, number: int, count: int, total: Decimal, file_name: str = "") -> Document:
        bordereau = Bordereau(exercise=self.mapping.collectivity.exercise, number=number,
                              issue_date=self.run_date, count=count, total=total,
                              asap_date=self.asap_date, object=self.bordereau_object)
        return Document(collectivity=self.mapping.collectivity,
                        emitter=Emitter(self.mapping.output.sigle, self.mapping.output.adresse),
                        file_name=file_name, structure_date=self.run_date, bordereau=bordereau,
                        options=self.options)

    def _number(self, title: Title, bordereau: int, index: int) -> Title:
        pr = self.mapping.payment_reference
        exercise = self.mapping.collectivity.exercise
        key1 = None
        if pr.cle1 == "mod11":
            key1 = cle1(self.mapping.collectivity.cod_col, pr.nature_code, exercise,
                        title.period, title.debt_number, pr.cle1_zero_remainder)
        return replace(title, number=index, bordereau_number=bordereau, cle1=key1,
                       cle2=cle2(exercise, title.period, title.debt_number))

    # ------------------------------------------------------------------ run

    def run(self, input_path: Path) -> ExportResult:
        result = ExportResult(self.mapping, self.fmt, self.run_date)
        problems: list[Problem] = []
        max_pieces = self.mapping.output.max_pieces_per_bordereau
        closed: list[_OpenBordereau] = []
        with ExitStack() as stack:
            def new_spools() -> list[IO[bytes]]:
                return [stack.enter_context(tempfile.TemporaryFile(dir=self.out_dir))
                        for _ in self.renderers]

            current: _OpenBordereau | None = None
            seen = 0
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
                problems.extend(check_title(built.title, self.rule_ctx))
                if problems:
                    continue  # keep checking the rest, render nothing more
                if current is None or current.count >= max_pieces:
                    if current is not None:
                        closed.append(current)
                    number = self.first_number + len(closed)
                    current = _OpenBordereau(number=number, spools=new_spools())
                title = self._number(built.title, current.number, current.count + 1)
                self._render_piece(title, current)
                result.invoices.append((title.invoice_number, current.number, title.number))
            if self.progress:
                self.progress(seen)
            if problems:
                raise InputDataError(f"{len(problems)} problem(s) in the input; nothing written",
                                     problems)
            if current is None:
                raise InputDataError("no title to export: every invoice was left out",
                                     [Problem("run.empty", f"{len(result.left_out)} invoice(s) left"
                                              " out, none exported")])
            closed.append(current)
            temps = self._assemble_and_validate(closed, result)
            self._commit(temps)
        result.titles = sum(f.titles for f in result.files)
        result.total = sum((f.total for f in result.files), _ZERO)
        return result

    def _render_piece(self, title: Title, bordereau: _OpenBordereau) -> None:
        doc = self._document(bordereau.number, 0, _ZERO)
        for renderer, spool in zip(self.renderers, bordereau.spools, strict=True):
            text = renderer.piece(title, doc)
            spool.write(self._encode(text, renderer, title.invoice_number))
        bordereau.count += 1
        bordereau.total += title.total
        bordereau.refs.append([title.invoice_number, str(self.mapping.collectivity.exercise),
                               str(bordereau.number), str(title.number), title.debt_number,
                               title.period, title.cle1 or "", title.cle2 or "",
                               f"{title.total:.2f}"])

    def _encode(self, text: str, renderer: FileRenderer, what: str) -> bytes:
        if self.fmt.newline != "\n":
            text = text.replace("\n", self.fmt.newline)
        try:
            return text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise TemplateError(
                f"template {renderer.name} produced {text[exc.start]!r}, which "
                f"{self.encoding} cannot encode ({what})") from None

    def _assemble_and_validate(self, bordereaux: list[_OpenBordereau],
                               result: ExportResult) -> list[tuple[Path, Path]]:
        temps: list[tuple[Path, Path]] = []  # (temp, final)
        problems: list[Problem] = []
        try:
            for b in bordereaux:
                names = []
                for renderer, spool in zip(self.renderers, b.spools, strict=True):
                    doc0 = self._document(b.number, b.count, b.total)
                    name = renderer.file_name(doc0)
                    names.append(name)
                    doc = replace(doc0, file_name=name)
                    final = self.out_dir / name
                    if final.exists():
                        raise UsageError(f"{final} already exists; pesgen never overwrites an "
                                         "export (choose another --out folder)")
                    fd, tmp_name = tempfile.mkstemp(dir=self.out_dir, prefix=".pesgen-",
                                                    suffix=".part")
                    tmp = Path(tmp_name)
                    temps.append((tmp, final))
                    digest = hashlib.sha256()
                    with os.fdopen(fd, "wb") as out:
                        for chunk in self._chunks(renderer, doc, spool):
                            digest.update(chunk)
                            out.write(chunk)
                        out.flush()
                        os.fsync(out.fileno())
                    problems.extend(self._validate(tmp, renderer, name))
                    result.files.append(OutputFile(final, digest.hexdigest(), b.number, b.count,
                                                   b.total))
                if self.mapping.output.payment_references:
                    ref_name = Path(names[0]).stem + ".references.csv"
                    final = self.out_dir / ref_name
                    fd, tmp_name = tempfile.mkstemp(dir=self.out_dir, prefix=".pesgen-",
                                                    suffix=".part")
                    temps.append((Path(tmp_name), final))
                    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                        out.write(_references_csv(b.refs))
                    result.references.append(final)
            if problems:
                raise OutputInvalidError(f"{len(problems)} problem(s) in the rendered output; "
                                         "nothing written", problems)
        except BaseException:
            for tmp, _ in temps:
                tmp.unlink(missing_ok=True)
            raise
        return temps

    def _chunks(self, renderer: FileRenderer, doc: Document, spool: IO[bytes]) -> Iterator[bytes]:
        yield self._encode(renderer.head(doc), renderer, "head")
        spool.seek(0)
        while chunk := spool.read(1 << 20):
            yield chunk
        yield self._encode(renderer.tail(doc), renderer, "tail")

    def _validate(self, path: Path, renderer: FileRenderer, name: str) -> list[Problem]:
        spec = renderer.spec
        if spec.xsd is not None:
            problems = validate_pes_file(path, spec.xsd, self.official_xsd)
            return [replace(p, record=(p.record or "").replace(path.name, name, 1) or name)
                    for p in problems]
        return []

    def _commit(self, temps: list[tuple[Path, Path]]) -> None:
        for tmp, final in temps:
            if final.exists():
                for t, _ in temps:
                    t.unlink(missing_ok=True)
                raise UsageError(f"{final} appeared during the export; nothing written")
        for tmp, final in temps:
            os.replace(tmp, final)


def _references_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(["invoice", "exercise", "id_bord", "id_pce", "num_dette", "per", "cle1",
                     "cle2", "amount"])
    writer.writerows(rows)
    return buffer.getvalue()


def export(mapping_path: Path, input_path: Path, out_dir: Path, run_date: date | None = None,
           official_xsd: Path | None = None, first_number: int = 1,
           formats_dirs: list[Path] | None = None,
           progress: ProgressFn | None = None) -> ExportResult:
    """Library entry point of ``pesgen export``."""
    mapping = load_mapping(mapping_path)
    fmt = find_format(mapping.output.format, formats_dirs)
    out_dir = Path(out_dir)
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
    elif not out_dir.is_dir():
        raise UsageError(f"{out_dir} is not a folder")
    exporter = Exporter(mapping, fmt, out_dir, run_date or date.today(), first_number,
                        official_xsd, progress)
    return exporter.run(Path(input_path))
