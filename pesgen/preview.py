"""Preview an export: render the first titles of an input with a mapping, next to the
source records they come from, without a state store and without writing anything.

Nothing is numbered: the bordereau number (IdBord) is 0, titles are numbered 1..n in
the preview only. Files with a layout are checked against it (head, the previewed
records and tail); XML is only checked by a real export (IdBord 0 is not valid). A PES
file without an XSD of its own, which an export validates against the DGFiP package
alone and refuses to write without it, is previewed all the same, a note saying that
preview does not validate it (rule format.no-xsd).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from .build import LeftOut, PolicyNote
from .errors import ExitCode, Problem
from .export import Exporter
from .formats import FileSpec, Format, mapping_format, unvalidated
from .layout import validate_file
from .mapping import Mapping, load_mapping
from .model import Title
from .paths import unread
from .render import FileRenderer
from .rules import check_title
from .sources import read_invoices

PREVIEW_NUMBER = 0  # IdBord shown: nothing is allocated


@dataclass
class PreviewItem:
    invoice: str | None
    origin: str
    line_origins: list[str]
    records: dict[str, str] = field(default_factory=dict)  # file name -> rendered text
    problems: list[Problem] = field(default_factory=list)
    notes: list[PolicyNote] = field(default_factory=list)
    left_out: LeftOut | None = None


@dataclass
class Preview:
    """What a preview shows. ``exit_code``: what ``pesgen export`` of these invoices
    would end with: input invalid when a title has a problem, else output invalid when
    a rendered record breaks its layout, else OK."""
    mapping: Mapping
    fmt: Format
    heads: dict[str, str]
    tails: dict[str, str]
    items: list[PreviewItem]
    layout_problems: list[Problem]
    # the notes said once for the previewed invoices (Exporter.run_notes: case policy,
    # civilities sent as written, bound fields no template writes)
    notes: list[PolicyNote] = field(default_factory=list)
    # what the first record holds that no binding reads (paths.unread): CSV columns,
    # JSON paths
    unread: list[str] = field(default_factory=list)
    # JSON path bindings none of the previewed invoices answered, refused as export
    # refuses them (rule input.path: a typo of a key seen there, or a required field)
    path_problems: list[Problem] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        if self.path_problems or any(item.problems for item in self.items):
            return ExitCode.INPUT
        return ExitCode.OUTPUT if self.layout_problems else ExitCode.OK


def preview(mapping_path: Path, input_path: Path, limit: int = 3,
            formats_dirs: list[Path] | None = None, run_date: date | None = None) -> Preview:
    """The first ``limit`` invoices of the input, rendered with every file of the format."""
    mapping = load_mapping(mapping_path)
    fmt = mapping_format(mapping, formats_dirs)
    exporter = Exporter(mapping, fmt, Path("."), run_date, previewed=True)
    exporter.check_fields()
    items: list[PreviewItem] = []
    titles: list[Title] = []
    not_read: list[str] = []
    for src in read_invoices(Path(input_path), mapping.input):
        if len(items) >= limit:
            break
        if not items:
            not_read = unread(mapping, src.record)
        built = exporter.builder.build(src)
        item = PreviewItem(invoice=None, origin=src.origin, line_origins=list(src.line_origins),
                           problems=list(built.problems), notes=list(built.notes),
                           left_out=built.left_out)
        items.append(item)
        if built.title is None:
            # refused: its problems know the number, unless the number is what is missing
            item.invoice = built.left_out.invoice if built.left_out else next(
                (p.invoice for p in built.problems if p.invoice), None)
            continue
        item.invoice = built.title.invoice_number
        item.line_origins = [ln.origin for ln in built.title.lines] or item.line_origins
        item.problems += check_title(built.title, exporter.rule_ctx)
        title = exporter.numbered(built.title, len(titles) + 1)
        titles.append(title)
        exporter.count_unwritten(title)
        doc = exporter.document(PREVIEW_NUMBER, 0, Decimal(0))
        for renderer in exporter.renderers:
            name = renderer.file_name(doc)
            item.records[name] = _written(exporter, renderer, exporter.piece(
                renderer, title, replace(doc, file_name=name), src),
                f"invoice {title.invoice_number}", title)
    total = sum((t.total for t in titles), Decimal(0))
    doc = exporter.document(PREVIEW_NUMBER, len(titles), total,
                            lines=sum(len(t.lines) for t in titles))
    heads, tails = {}, {}
    layout_problems: list[Problem] = []
    for renderer in exporter.renderers:
        name = renderer.file_name(doc)
        named = replace(doc, file_name=name)
        heads[name] = _written(exporter, renderer, renderer.head(named), "head")
        tails[name] = _written(exporter, renderer, renderer.tail(named), "tail")
        if renderer.spec.layout is not None:
            text = heads[name] + "".join(i.records.get(name, "") for i in items) + tails[name]
            # a line too short or too long named at the template line writing such
            # records, as export names it (Exporter._writers_of)
            # and a refused value named by the binding whose value its column holds
            # (a civility not among the layout's values: bindings.payer.civility)
            layout_problems += exporter._bindings_of(exporter._writers_of(
                _check_layout(exporter, renderer.spec, name, text), renderer, named),
                renderer, named, unattributed=True)
    path_problems: list[Problem] = []
    if exporter.builder.paths is not None:
        # a path binding with a typo ('payer.adress.street') said by its path and the
        # keys where it stops, as export says it, not only by what it leaves missing;
        # not the notes of an optional key none of them has, which a later invoice may
        path_problems, _notes = exporter.builder.paths.findings(
            str(input_path), [p for item in items for p in item.problems],
            f"none of the {len(items)} invoice(s) previewed has")
    return Preview(mapping, fmt, heads, tails, items, layout_problems,
                   exporter.run_notes(Path(input_path), shown=True) + _unvalidated_notes(fmt),
                   not_read, path_problems)


def _unvalidated_notes(fmt: Format) -> list[PolicyNote]:
    """A note for each file of ``fmt`` without an XSD of its own (``formats.unvalidated``,
    as check-mapping warns of it): preview validates none, and an export refuses to run
    without the DGFiP package that does."""
    return [PolicyNote("no_xsd", "*", problem.mapping or "", str(replace(
        problem, message=f"{problem.message}: preview validates none of its files, and an "
        f"export of format {fmt.name} is refused without the package (exit 2)")))
        for problem in unvalidated(fmt)]


def _written(exporter: Exporter, renderer: FileRenderer, text: str, what: str,
             title: Title | None = None) -> str:
    """``text``, checked as export writes it: a character the file's encoding lacks is
    the template error export gives (exit 5), naming the same part of the file."""
    exporter._encode(text, renderer, what, title)
    return text


def _check_layout(exporter: Exporter, spec: FileSpec, name: str, text: str) -> list[Problem]:
    data = text.replace("\n", exporter.fmt.newline) if exporter.fmt.newline != "\n" else text
    with tempfile.TemporaryDirectory(prefix="pesgen-preview-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data.encode(exporter.encoding))  # each part was _written
        return validate_file(path, spec.load_layout(), name, exporter.encoding,
                             spec.template_shown or None)
