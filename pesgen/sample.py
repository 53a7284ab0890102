"""Render a format's templates once on sample titles, for ``pesgen check-mapping``.

A template that reads a field the model does not have (``t.debtor.prenom``) compiles:
only rendering finds it. ``check_templates`` renders every file of the mapping's format
(head, a piece per sample title, tail) with the mapping's own collectivity, options and
code tables, on two made-up titles: one with every optional part the model has (a SEPA
mandate, a joint debtor, an address abroad, dates, object, several lines), one with
none of them (an organisation, one line). Nothing is numbered nor written; an error
names the template file and line, as at export. Asked (check-mapping), the files are
checked against their layouts and XSDs as an export checks its own, but the sample's
made-up values are not held against the place they go (``layout_problems``,
``schema_problems``). The model fields the templates read on the way are recorded
(``SampleRendering.reads``): ``pesgen.coverage`` compares them with what the mapping
binds. The mapping's options are the mapping's own values: one written into a column
of a layout that refuses it is found there (``option_misfits``).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, is_dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

from lxml import etree

from ._jinja import MARK, MARK_LINE, MARK_TEXT
from ._schema import _dotted
from ._yaml import line_of, load_yaml_file
from .across import check_across
from .build import own_text_misfits
from .coverage import CARRIED_BY, SPLITS, Coverage, bound, carried
from .coverage import check as coverage
from .errors import MappingError, PesgenError, Problem, TemplateError, TemplateStopped
from .export import Exporter
from .formats import FileSpec, Format
from .keys import INVOICE_NUMBER_MAX
from .layout import (
    Column,
    Layout,
    RecordType,
    allowed_values,
    check_value,
    line_values,
    record_type,
    record_values,
    split_csv,
)
from .layout import _where as column_said
from .mapping import Binding, Mapping
from .model import Address, BankAccount, Debtor, Document, Line, Mandate, Title
from .render import FileRenderer
from .validate import XSD_PLACE, load_xsd, unpositioned, xsd_label

SAMPLE_ORIGIN = "check-mapping's sample title"


def sample_titles(mapping: Mapping, fmt: Format) -> list[Title]:
    """A title with every optional part, and one with none."""
    exercise = mapping.collectivity.exercise
    day = date(exercise, 11, 23)
    ormc = "pes-ormc" in fmt.rules
    activity, imputation = next(iter(mapping.codes.activities.items()),
                                ("ACT", {"product": "P1", "nature": "7062"}))
    kinds = list(mapping.codes.payer_kinds.values())
    person = next((k for k in kinds if k.get("category") == "01"),
                  {"category": "01", "legal_nature": "01"})
    other = next((k for k in kinds if k.get("category") != "01"),
                 {"category": "50", "legal_nature": "03"})
    # a quantity and a unit price only where the mapping binds them, as the export's
    # lines have them: a template writing one unguarded fails here, not at the export
    priced = mapping.bindings.get("line") or {}

    def line(number: int, amount: str, label: str | None) -> Line:
        return Line(number=number, product_code=imputation.get("product", "P1"),
                    nature=imputation.get("nature", "7062"), amount=Decimal(amount),
                    activity=activity, label=label, fonction=imputation.get("fonction"),
                    operation=imputation.get("operation"),
                    quantity=Decimal(1) if "quantity" in priced else None,
                    unit_price=Decimal(amount) if "unit_price" in priced else None,
                    student="CAMILLE MARTIN", origin=f"{SAMPLE_ORIGIN}, line {number}")

    home = Address(street="12 RUE DES LILAS", postal_code="45200", city="MONTARGIS",
                   complement="BATIMENT B", locality="LE BOURG")
    abroad = Address(street="4 RUE HAUTE", postal_code="99999", city="BRUXELLES",
                     country="BE", resident=False, country_code="131")
    civility, joint_civility = _civilities(mapping, fmt)
    debtor = Debtor(category=person["category"], legal_nature=person["legal_nature"],
                    name="MARTIN", address=abroad, kind="person", ref="FAM-0001",
                    civility=civility, first_name="CAMILLE", complement_name="EPOUSE DURAND",
                    birth_date=date(1984, 3, 12), email="camille.martin@example.org")
    joint = Debtor(category=person["category"], legal_nature=person["legal_nature"],
                   name="DURAND", address=home, kind="person", ref="FAM-0001-2",
                   civility=joint_civility, first_name="PAUL", birth_date=date(1982, 7, 1))
    mandate = Mandate(rum="RUM000001", signed_on=date(exercise - 1, 9, 3), sequence="02",
                      debit_date=date(exercise, 12, 5), label="ECOLE DE MUSIQUE",
                      account=BankAccount(iban="FR7630006000011234567890189",
                                          holder="M OU MME DURAND", bic="AGRIFRPP848"),
                      holder_differs=True)
    lines = (line(1, "120.50", "PIANO - CAMILLE MARTIN"), line(2, "30.25", None))
    full = Title(invoice_number="SAMPLE-1", debt_number="1" if ormc else None, debtor=debtor,
                 lines=lines, total=Decimal("150.75"), origin=f"{SAMPLE_ORIGIN} (every part)",
                 invoice_date=day, due_date=date(exercise, 12, 20),
                 service_from=date(exercise, 9, 1), service_to=date(exercise, 12, 31),
                 object="ECOLE DE MUSIQUE 1ER TRIMESTRE", asap_date=day, mandate=mandate,
                 joint_debtor=joint)
    # an address of its own (equal to the joint debtor's): the fields read are told
    # apart by object (t.debtor.address, t.joint_debtor.address)
    company = Debtor(category=other["category"], legal_nature=other["legal_nature"],
                     name="ASSOCIATION LES AMIS", address=replace(home), kind="organisation")
    bare = Title(invoice_number="SAMPLE-2", debt_number="2" if ormc else None,
                 debtor=company, lines=(line(1, "45.00", None),), total=Decimal("45.00"),
                 origin=f"{SAMPLE_ORIGIN} (no optional part)")
    return [full, bare]


def _civilities(mapping: Mapping, fmt: Format) -> tuple[str, str]:
    """The sample's debtor's and joint debtor's civilities: ones an export of the mapping
    sends (a civility is a code, never made up: Corail's XSD takes Mr and Mme, not MME):
    the first two the mapping's codes.civility gives, else the first two the format
    lists (format.yaml fields.debtor.civility.values, which an export's civility is
    held to without a table), else the mapping's default_civility, else MME and M."""
    table = mapping.codes.civility
    sent = list(dict.fromkeys(table.values())) if table else []
    sent = sent or list(fmt.limit("debtor.civility").values or ())
    default = mapping.policies.default_civility
    sent = sent or ([default] if default else ["MME", "M"])
    return sent[0], sent[1] if len(sent) > 1 else sent[0]


@dataclass(frozen=True)
class SampleRendering:
    files: int  # how many files of the format were rendered
    # the model fields the templates read, as a template finds them: t.debtor.name,
    # t.joint_debtor.address.city, t.lines[i].amount, doc.bordereau.object
    reads: frozenset[str]
    # the mapping's options written as they are into a column of a layout that refuses
    # them (``option_misfits``), its own texts a template writes outside the format's
    # charset (``own_text_misfits``): ``check_coverage`` refuses the mapping
    misfits: tuple[Problem, ...] = ()
    # the split policies the mapping leaves at refuse that the format would refuse set
    # to split, each with why: "fit", the part it fills written joined again where the
    # two do not fit (``split_misfits``: e.magnus' name_overflow); "lost", that part
    # written nowhere (a package's import with no name complement column): a refusal by
    # invoice does not advise them
    unfit_splits: dict[str, str] = field(default_factory=dict)
    # where the format refuses an invoice number as long as pesgen takes, and what it
    # says (``number_refusal``): check-mapping's notice
    number_refused: tuple[str, str, str] | None = None
    # how the files with a layout rendered on the sample titles break it, as an export's
    # would (``layout_problems``; only when check_templates is asked: check-mapping)
    layout_problems: tuple[Problem, ...] = ()
    # how those with an XSD of their own break it, as an export's would
    # (``schema_problems``; only when check_templates is asked: check-mapping)
    schema_problems: tuple[Problem, ...] = ()

    def broken(self) -> tuple[list[Problem], str]:
        """The files' layout and XSD problems, and how they break (``'break their layout
        and are refused by their XSD'``): check-mapping's and check-format's refusal."""
        what = " and ".join(
            said for said, found in (("break their layout", self.layout_problems),
                                     ("are refused by their XSD", self.schema_problems))
            if found)
        return [*self.layout_problems, *self.schema_problems], what


def check_templates(mapping: Mapping, fmt: Format, laid_out: bool = False,
                    validated: bool = False, official_xsd: Path | None = None
                    ) -> SampleRendering:
    """Render every file of ``fmt`` on the sample titles; raise ``TemplateError`` (file
    and line) on the first template error. Returns how many files were rendered and
    the model fields their templates read. ``laid_out`` (check-mapping): each file with
    a layout is checked against it, as an export checks its files
    (``SampleRendering.layout_problems``); ``validated`` (check-mapping): each file with
    an XSD of its own is validated against it (``SampleRendering.schema_problems``), and
    a PES file against the DGFiP package ``official_xsd`` too when given (as the export
    given it: a finance package's import is not checked by it); an export, which checks
    its own files, asks neither."""
    day = date(mapping.collectivity.exercise, 11, 23)
    # vouched: nothing is validated by the Exporter (no DGFiP package needed), only
    # rendered; the sample's files are checked here when asked (laid_out, validated);
    # traced: the templates' reads recorded (an export's renderers record nothing)
    exporter = Exporter(mapping, fmt, Path("."), day, vouched=True, traced=True,
                        official_xsd=official_xsd if validated else None)
    traced = exporter.renderers
    for renderer in traced:  # as an export does (vouched skips it)
        renderer.check_literals(exporter.encoding)
    titles = [exporter.numbered(t, i) for i, t in enumerate(sample_titles(mapping, fmt), 1)]
    total = sum((t.total for t in titles), Decimal(0))
    doc = exporter.document(1, len(titles), total, lines=sum(len(t.lines) for t in titles))
    docs = []
    rendered: list[tuple[FileRenderer, str, str]] = []
    written: list[tuple[FileRenderer, Document, list[bytes], str]] = []
    for renderer in traced:
        named = replace(doc, file_name=renderer.file_name(doc))
        docs.append(named)
        # encoded as an export writes them: a character the output's encoding cannot
        # write is refused here, not at the first export
        parts = [renderer.head(named)]
        encoded = [exporter._encode(parts[-1], renderer, "head")]
        for title in titles:
            # a value refused names its binding, as at export (Exporter.piece)
            parts.append(exporter.piece(renderer, title, named))
            encoded.append(exporter._encode(
                parts[-1], renderer, f"piece of invoice {title.invoice_number}", title))
        parts.append(renderer.tail(named))
        encoded.append(exporter._encode(parts[-1], renderer, "tail"))
        rendered.append((renderer, named.file_name, "".join(parts)))
        written.append((renderer, named, encoded, rendered[-1][2]))
    holders = _holders(titles, docs)
    reads = frozenset(f"{holder}.{name}" for renderer in traced
                      for (key, name) in renderer.reads for holder in holders.get(key, ()))
    pairs = list(zip(traced, docs, strict=True))
    misfits = (option_misfits(mapping, rendered) + own_text_misfits(mapping, fmt, reads)
               + code_misfits(mapping, titles[-1], pairs, exporter.encoding)
               + civility_misfits(mapping, titles[0], pairs)
               + split_misfits(mapping, fmt, titles[0], pairs, exporter.encoding))
    unfit = {policy: "fit" for policy, *_ in SPLITS
             if getattr(mapping.policies, policy) != "split"
             and split_misfits(_split_on(mapping, policy), fmt, titles[0], pairs,
                               exporter.encoding)}
    for policy, _, ((source, filled), _), _ in SPLITS:
        # the debtor's value written, the part a split fills not: mapping.policy-lost
        if getattr(mapping.policies, policy) != "split" and policy not in unfit and \
                carried(source, reads) and not carried(filled, reads):
            unfit[policy] = "lost"
    return SampleRendering(len(traced), reads, tuple(misfits), unfit,
                           number_refusal(titles[0], pairs, exporter.encoding),
                           tuple(layout_problems(exporter, titles, written))
                           if laid_out else (),
                           tuple(schema_problems(exporter, titles, written))
                           if validated else ())


# a mark ``_jinja._Marking`` puts after a value written (MARK_LINE), or after a line of
# a template's own text (MARK_TEXT): (template, kind, line)
_MARK = re.compile(f"{MARK}([^{MARK}{MARK_LINE}{MARK_TEXT}]*)([{MARK_LINE}{MARK_TEXT}])"
                   f"([0-9]+){MARK}")


def written_by(exporter: Exporter, renderer: FileRenderer, doc: Document,
               titles: list[Title], text: str) -> list[set[tuple[str, int]]] | None:
    """For each line of ``text``, the file ``renderer`` rendered on ``titles``, the
    template lines (template, line) whose values it holds, or, for a line no value
    wrote (a record the template's own text writes whole), the lines of that text:
    found by rendering it again in a checking render that marks each value written,
    and each line of the templates' text, with its template line (``_jinja._Marking``;
    the error path of check-mapping only, never an export). None when that render
    fails, or gives another text once its marks are taken out (a value written, then
    read again by a template: its marks would count)."""
    try:
        marked = FileRenderer(exporter.fmt, renderer.spec, marked=True)
        out = (marked.head(doc) + "".join(marked.piece(t, doc) for t in titles)
               + marked.tail(doc))
    except PesgenError:
        return None
    if unmarked(out) != text:
        return None
    return line_marks(out)


def unmarked(out: str) -> str:
    """A checking render's text (``_jinja._Marking``) without its marks."""
    return _MARK.sub("", out)


def line_marks(out: str) -> list[set[tuple[str, int]]]:
    """For each line of ``out``, a checking render's text, the template lines (template,
    line) whose values it holds, or, for a line no value wrote, the lines of the
    templates' text it holds (``written_by``)."""
    found = []
    for line in out.split("\n"):
        marks = _MARK.findall(line)
        found.append({(name, int(at)) for name, kind, at in marks if kind == MARK_LINE}
                     or {(name, int(at)) for name, _, at in marks})
    return found


def _writers_named(problems: list[Problem], exporter: Exporter, renderer: FileRenderer,
                   doc: Document, titles: list[Title], text: str,
                   unplaced: Callable[[Problem], bool]) -> list[Problem]:
    """Each problem of the sample titles' file that ``unplaced`` picks (a line too short
    or too long, layout.columns, which names the template only; an XSD's refusal,
    which names none) given the template line that wrote the values of the line it
    names, or the template's text there (``written_by``)."""
    lines = written_by(exporter, renderer, doc, titles, text)
    if lines is None:
        return problems
    prefix = f"{doc.file_name}:"
    plain = text.split("\n")

    def places(p: Problem) -> set[tuple[str, int]]:
        # 'name:LINE' (a layout's), 'name:LINE /XPath' (an XSD's, a PES rule's)
        number = (p.record or "").removeprefix(prefix).split(" ", 1)[0]
        if not (number.isdigit() and 0 < int(number) <= len(lines)):
            return set()
        return {m for i in judged_lines(p, int(number) - 1, plain) for m in lines[i]}

    return [_writer_named(p, exporter, renderer, places(p), "the line written at")
            if unplaced(p) else p for p in problems]


def _unplaced_columns(p: Problem) -> bool:
    """A line too short or too long (layout.columns), of no known record type
    (layout.record-type: a misspelt 'DEBT'), or holding a value of the wrong form
    (layout.type: a date written frdate where the layout wants YYYYMMDD, an amount
    with a dot; of a bound text, its binding is named), that names no template line."""
    return (p.rule in ("layout.columns", "layout.record-type", "layout.type")
            and p.mapping is None)


def _unplaced_schema(p: Problem) -> bool:
    """An XSD's refusal (xsd.pesgen, xsd.bundle, xsd.dgfip), or a PES bordereau rule's
    problem in a file (``validate``'s: pes.*, sepa.*) at an element one line of a
    template writes (not ``UNWRITTEN``), that names no binding nor template."""
    return p.mapping is None and (p.rule.startswith("xsd.") or (
        p.rule.startswith(("pes.", "sepa.")) and p.rule not in UNWRITTEN))


# The PES bordereau rules on a file (``validate``) whose problem no one line of a
# template writes: a bordereau's count or sum (NbrPce, MtBordHt) compared with its
# pieces, its number of pieces, a piece's lines compared with each other (their SEPA
# data, their debtors), the listing cut short. Their problem names the file's line
# (the Bordereau's, the Piece's), never a template line (docs/rules.md).
UNWRITTEN = frozenset({"pes.nbr-pce", "pes.mt-bord-ht", "pes.max-pieces", "pes.sepa-same",
                       "pes.single-debtor", "pes.listing"})

# The PES bordereau rules whose problem names the line of the block holding what they
# judge (the Piece, an InfoLignePiece, an InfoPrelevementSEPA, the Bordereau), not the
# element's own: the elements they judge, whose lines name the template line
# (``judged_lines``). A rule not here names the element it judges.
JUDGED = {"pes.triplet": ("TypPce", "NatPce"), "pes.edition": ("Edition",),
          "pes.asap-date": ("DteAsp",), "pes.id-pce-unique": ("IdPce",),
          "pes.num-dette-unique": ("NumDette",), "pes.id-ligne-unique": ("IdLigne",),
          "pes.mt-prel": ("MtPrel",)}
# a block another piece or bordereau opens: where the elements of one are looked for no more
_NEXT_BLOCK = re.compile(r"<(?:Piece|Bordereau)[\s/>]")


def judged_lines(p: Problem, i: int, text: list[str]) -> list[int]:
    """The lines (indexes in ``text``, a file's or a part's lines) of the elements a PES
    rule judges (``JUDGED``) when its problem ``p`` names the line ``i`` of the block
    holding them: each looked for from that line on, up to the next Piece or Bordereau;
    ``[i]`` for any other problem, or when none is found there (pes.triplet at a
    TypBord: its own line)."""
    tags = JUDGED.get(p.rule)
    if not tags:
        return [i]
    found: dict[str, int] = {}
    for j in range(i, len(text)):
        if j > i and _NEXT_BLOCK.search(text[j]):
            break
        for tag in tags:
            if tag not in found and re.search(f"<{tag}[\\s/>]", text[j]):
                found[tag] = j
        if len(found) == len(tags):
            break
    return sorted(set(found.values())) or [i]


def _writer_named(p: Problem, exporter: Exporter, renderer: FileRenderer,
                  places: set[tuple[str, int]], said_as: str) -> Problem:
    """``p`` given the template line of ``places`` (template, line) as a template's
    place, 'fmts/acme/acme.txt.j2:9' (the first, when several); the lines of a tag
    spanning several, or the several places, said too, after ``said_as``."""
    if not places:
        return p
    spans = _spans(renderer, places)
    name, (first, last) = spans[0]
    shown = exporter.fmt.shown
    if len(spans) > 1 or last > first:
        p = replace(p, message=f"{p.message} ({said_as} {_spans_said(shown, spans)})")
    return replace(p, mapping=f"{shown}/{name}:{first}", source="template")


def _spans(renderer: FileRenderer, places: set[tuple[str, int]]
           ) -> list[tuple[str, tuple[int, int]]]:
    """The template lines ``places`` (template, line) as the tags they are in, first
    and last line (``FileRenderer.expression_lines``), sorted."""
    return sorted({(name, renderer.expression_lines(name, line)) for name, line in places})


def _spans_said(shown: str, spans: list[tuple[str, tuple[int, int]]]) -> str:
    """``_spans`` in words: 'fmts/acme/acme.txt.j2:9-11, …' (``shown``: the bundle)."""
    return ", ".join(f"{shown}/{n}:{a}" + (f"-{b}" if b > a else "") for n, (a, b) in spans)


def _figures_written(problems: list[Problem], exporter: Exporter, renderer: FileRenderer,
                     doc: Document, titles: list[Title], text: str) -> list[Problem]:
    """A trailer's (a header's) figure the layout's totals refuse (layout.totals, which
    names the layout's entry) said with the template line that wrote its record (walk67:
    a tail writing doc.bordereau.lines where the file holds a record per imputation):
    the figure is the template's, the entry stays named. Found as ``_writers_named``
    finds a line's (``written_by``); nothing said when the marked render differs."""
    lines = written_by(exporter, renderer, doc, titles, text)
    if lines is None:
        return problems
    prefix = f"{doc.file_name}:"
    out = []
    for p in problems:
        number = (p.record or "").removeprefix(prefix)
        if p.rule == "layout.totals" and number.isdigit() and 0 < int(number) <= len(lines) \
                and lines[int(number) - 1]:
            said = _spans_said(exporter.fmt.shown, _spans(renderer, lines[int(number) - 1]))
            # before the layout's entry, which ends the message ('… [layout:51: totals[1]]')
            head, sep, entry = p.message.rpartition(" [")
            message = (f"{head} (the record written at {said}){sep}{entry}" if sep
                       else f"{p.message} (the record written at {said})")
            p = replace(p, message=message)
        out.append(p)
    return out


# the record type a layout problem names ("record 'titre' is 95 characters, …")
_RECORD = re.compile(r"record '([^']*)'")


def writers_named(problems: list[Problem], exporter: Exporter, renderer: FileRenderer,
                  doc: Document) -> list[Problem]:
    """An export's lines too short or too long (layout.columns, which names the
    template only) given the template line that writes such records: the sample titles
    rendered again (``written_by``), on the export's error path only, and the places
    whose values the lines of that record type hold there. None named when the sample
    writes no such record, or the marked render fails or differs."""
    titles = [exporter.numbered(t, i)
              for i, t in enumerate(sample_titles(exporter.mapping, exporter.fmt), 1)]
    try:
        text = (renderer.head(doc) + "".join(renderer.piece(t, doc) for t in titles)
                + renderer.tail(doc))
    except PesgenError:
        return problems
    lines = written_by(exporter, renderer, doc, titles, text)
    if lines is None or renderer.spec.layout is None:
        return problems
    layout = renderer.spec.load_layout()
    by_type: dict[str, set[tuple[str, int]]] = {}
    # a line of no known record type: by what the layout says of it ("column TypeLigne
    # (#1): 'DEBT' is no record type (known: …)"), as the export's problem starts
    unknown: dict[str, set[tuple[str, int]]] = {}
    for number, (line, marks) in enumerate(zip(text.split("\n"), lines, strict=True), 1):
        if number == 1 and layout.header:
            continue
        rec, _ = record_values(layout, line.rstrip("\r"))
        if rec is not None:
            by_type.setdefault(rec.type, set()).update(marks)
        elif said := _unknown_type(layout, line.rstrip("\r")):
            unknown.setdefault(said, set()).update(marks)
    out = []
    for p in problems:
        m = _RECORD.match(p.message)
        if _unplaced_columns(p) and p.rule == "layout.record-type":
            said = next((k for k in unknown if p.message.startswith(k)), None)
            if said is not None:
                p = _writer_named(p, exporter, renderer, unknown[said],
                                  "check-mapping's sample titles write such lines at")
        elif _unplaced_columns(p) and m is not None:
            p = _writer_named(p, exporter, renderer, by_type.get(m[1], set()),
                              "check-mapping's sample titles write such records at")
        out.append(p)
    return out


def _unknown_type(layout: Layout, line: str) -> str | None:
    """What the layout's check says of ``line`` when its record type is none it knows
    (``layout.record_type``'s words), else None."""
    if line == "" or (len(layout.records) == 1 and not layout.type_column):
        return None
    fields: list[str] | None = None
    if layout.kind == "csv":
        pairs, error = split_csv(line, layout.delimiter, layout.quote_char)
        if error:
            return None
        fields = [v for v, _ in pairs]
    return record_type(layout, fields, line)[1]


# a layout's rules that a made-up value of the sample may break where the export's would
# not (a text longer than the column, an optional field left empty, a code or reference
# of the school's own form): not said of a column holding a bound value
_MADE_UP = frozenset({"layout.required", "layout.length", "layout.values", "layout.pattern"})


# the elements an XSD's refusal of the structure names as the ones it wanted there
_EXPECTED = re.compile(r"Expected is (?:one of )?\( ([^()]*) \)")

# a place of a file where a bound value goes (``binding_places``' keys): (XPath without
# positions, attribute or None)
_Places = dict[tuple[str, str | None], Any]


def _made_up_layout(p: Problem, bound: bool, _places: _Places) -> bool:
    """A layout's refusal of a value (``_MADE_UP``) at a column holding a bound value."""
    return bound and p.rule in _MADE_UP


def _made_up_schema(p: Problem, bound: bool, places: _Places) -> bool:
    """An XSD's refusal that the sample's made-up values may cause where the export's
    would not: of a value as it is (its facets: length, pattern, values…; its type) at
    an element or attribute holding a bound value (``bound``); or an element wanted
    where a bound value goes (one of those it expects is such a place, ``places``: a
    template writing the element only when the value is given, the sample giving none:
    its title without optional parts, its line without label). Not one of the
    structure otherwise (an element misspelt, missing, out of order), which a template
    writes whatever the values."""
    _, words = _xsd_said(p.message)
    if words.startswith("[facet ") or " is not a valid value of " in words:
        return bound
    expected = _EXPECTED.search(words)
    at = (p.record or "").split(" ", 1)
    if expected is None or len(at) < 2:
        return False
    path = unpositioned(at[1])
    parent = path if words.startswith("Missing child") else path.rsplit("/", 1)[0]
    wanted = {f"{parent}/{name.strip()}" for name in expected[1].split(",")}
    return any(place in wanted for place, _ in places)


def layout_problems(exporter: Exporter, titles: list[Title],
                    written: list[tuple[FileRenderer, Document, list[bytes], str]]
                    ) -> list[Problem]:
    """Every way the files rendered on the sample titles (``written``: each file's
    renderer, document, its head, pieces and tail as written, and its text) break their
    layouts: the checks of an export's files, by its code (``_checked``; then between
    the files, ``across.check_across``). A line too short or too long (layout.columns)
    is given the template line that wrote it (``written_by``). A file checked by an XSD
    is ``schema_problems``'."""
    problems: list[Problem] = []
    laid_out: dict[str, tuple[Path, str, Path]] = {}
    with tempfile.TemporaryDirectory(prefix="pesgen-sample-") as tmp:
        for renderer, doc, parts, text in written:
            spec = renderer.spec
            if spec.layout is None or spec.xsd is not None or not b"".join(parts):
                # an export writes no empty file (a side file no title fills)
                continue
            path = Path(tmp) / doc.file_name
            problems += _checked(exporter, titles, renderer, doc, parts, text, path,
                                 _made_up_layout, _unplaced_columns)
            laid_out[spec.template] = path, doc.file_name, spec.layout
        if exporter.fmt.across and not problems:
            # between the files of the bordereau, each valid against its layout, as at
            # export
            problems += check_across(exporter.fmt.across, laid_out, exporter.encoding)
    return problems


def schema_problems(exporter: Exporter, titles: list[Title],
                    written: list[tuple[FileRenderer, Document, list[bytes], str]]
                    ) -> list[Problem]:
    """Every way the files rendered on the sample titles (``written``, as
    ``layout_problems``') that have an XSD of their own (pesgen's for PES, a bundle's:
    Corail's, JVS') break it: the export's validation of its files (the XSD, and the PES
    bordereau rules when it has bordereaux), by its code (``_checked``), and the DGFiP
    package's when the exporter was given it (``Exporter.official_xsd``: a PES format's
    files only, a PES bundle without an XSD of its own then too). The XSD's refusal of a
    value at a place holding a bound value (the sample's are made up: a name, an empty
    label), or of an element left out where one goes, is not said (``_made_up_schema``);
    any other is given the template line that wrote the line it names (``written_by``)."""
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory(prefix="pesgen-sample-") as tmp:
        for renderer, doc, parts, text in written:
            if (renderer.spec.xsd is None and exporter.official_xsd is None) \
                    or not b"".join(parts):
                continue
            problems += _checked(exporter, titles, renderer, doc, parts, text,
                                 Path(tmp) / doc.file_name, _made_up_schema, _unplaced_schema)
    return problems


def _checked(exporter: Exporter, titles: list[Title], renderer: FileRenderer,
             doc: Document, parts: list[bytes], text: str, path: Path,
             made_up: Callable[[Problem, bool, _Places], bool],
             unplaced: Callable[[Problem], bool]) -> list[Problem]:
    """The problems of one file rendered on the sample titles (its head, pieces and tail
    as written: ``parts``; its text) written at ``path``, found as an export finds its
    own: its checks (``export.check_output``), each problem given the sample title of
    its line (``export.attribute``) and the binding whose value its place holds
    (``Exporter._bindings_of``). One that ``made_up`` says a made-up value may cause is
    not said (given whether it got a binding, and the places where bound values go):
    the export's values are the export's to check.
    Those ``unplaced`` picks are given the template line (``_writers_named``)."""
    from .export import _PieceLines, attribute, check_output

    head, pieces, tail = parts[0], parts[1:-1], parts[-1]
    path.write_bytes(b"".join(parts))
    found = check_output(renderer.spec, path, doc.file_name, exporter.encoding,
                         exporter.official_xsd)
    if not found:
        return []
    lines = _PieceLines()
    for piece in pieces:
        lines.add(piece)
    found = attribute(found, doc.file_name, head, tail, lines,
                      [(t.invoice_number,) for t in titles],
                      {t.invoice_number: t.origin for t in titles})
    bound = exporter._bindings_of(found, renderer, doc, (),
                                  (doc.file_name, head.count(b"\n"), lines))
    # a place holding a bound value (given its binding) holds a made-up one
    places = exporter._places.get(renderer.spec.template, {})
    found = [q for p, q in zip(found, bound, strict=True)
             if not made_up(q, q is not p, places)]
    if any(unplaced(p) for p in found):
        found = _writers_named(found, exporter, renderer, doc, titles, text, unplaced)
    if any(p.rule == "layout.totals" for p in found):
        found = _figures_written(found, exporter, renderer, doc, titles, text)
    return found


def option_misfits(mapping: Mapping, rendered: list[tuple[FileRenderer, str, str]]
                   ) -> list[Problem]:
    """The mapping's options (output.options) that a template writes as they are into a
    column of a layout that refuses them (over its length, outside its values or
    pattern...): found in the files ``rendered`` on the sample titles ((renderer, file
    name, text)), as the column whose value is the option's, and named by the option's
    key and line, not by the first invoice of an export. Once per option and column."""
    options = {key: str(value) for key, value in mapping.output.options.items()
               if str(value) != ""}
    if not options:
        return []
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for renderer, file_name, text in rendered:
        if renderer.spec.layout is None:
            continue
        layout = renderer.spec.load_layout()
        lines = text.split("\n")
        for line in lines[1:] if layout.header else lines:
            for col, value in line_values(layout, line):
                for key, given in options.items():
                    if value != given or (key, file_name, col.label) in seen:
                        continue
                    for rule, message in check_value(col, value):
                        seen.add((key, file_name, col.label))
                        problems.append(Problem(
                            "mapping.options", f"output.options.{key} {message} ({rule}): "
                            f"written as it is into {file_name}, {col.label} of layout "
                            f"{layout.name}", mapping=mapping.where("output", "options", key)))
    return problems


# the codes of an activity (codes.activities), each marked in a sample line's field
_CODES = ("product", "nature", "fonction", "operation")


def code_misfits(mapping: Mapping, title: Title,
                 rendered: list[tuple[FileRenderer, Document]],
                 encoding: str = "utf-8") -> list[Problem]:
    """The codes of the mapping's activities (codes.activities: product, nature,
    fonction, operation) that a template writes as they are into a column of a layout,
    or an element or attribute of an XML file with an XSD, that refuses them (e.magnus'
    Article takes 10 characters, Corail's Article 10 digits, where the mapping's schema
    lets a nature have the PES' 12): found by rendering ``title``, its line holding a
    mark in each code, in each file with a layout or an XSD (``rendered``: its renderer
    and document), as the columns (the XML values) a mark lands in, and each activity's
    code checked against them (the layout's column rules; the XSD's facets, by
    validating the sample file with the code in the mark's place); named by the code's
    key and line, not by the first invoice of an export using it. A template that does
    not write a code as it is (or fails on a mark) checks nothing. ``encoding``: the
    files' (an XML file is parsed as it is written)."""
    activities = mapping.codes.activities
    if not activities or not title.lines:
        return []
    marks = {key: f"PESGEN{key.upper()}MARK" for key in _CODES}
    line = replace(title.lines[0], product_code=marks["product"], nature=marks["nature"],
                   fonction=marks["fonction"], operation=marks["operation"])
    marked = replace(title, lines=(line,), total=line.amount)
    problems: list[Problem] = []
    for renderer, doc in rendered:
        if renderer.spec.layout is None:
            if renderer.spec.xsd is not None:
                problems += _xsd_code_misfits(mapping, renderer, doc, marked, marks, encoding)
            continue
        layout = renderer.spec.load_layout()
        try:
            text = renderer.piece(marked, doc)
        except TemplateError:
            continue
        columns: dict[str, dict[str, Column]] = {}
        for text_line in text.split("\n"):
            for col, value in line_values(layout, text_line.rstrip("\r")):
                for key, mark in marks.items():
                    if value == mark:
                        columns.setdefault(key, {})[col.label] = col
        for activity, codes in activities.items():
            for key, cols in columns.items():
                code = codes.get(key)
                if code is None:
                    continue
                for col in cols.values():
                    for rule, message in check_value(col, str(code)):
                        problems.append(Problem(
                            "mapping.code-fit", f"codes.activities.{activity}.{key} {message} "
                            f"({rule}): written as it is into {doc.file_name}, {col.label} of "
                            f"layout {layout.name}",
                            mapping=mapping.where("codes", "activities", activity, key)))
    return problems


def civility_columns(mapping: Mapping, title: Title,
                     rendered: list[tuple[FileRenderer, Document]]
                     ) -> list[tuple[str, FileRenderer, Document, Column, str]]:
    """(bound field: payer.civility or joint_payer.civility, renderer, document, the
    layout column) of each column of a file with a layout that takes a list of values
    (``values``: a Civilite of [M, MME]) and that a template fills with the
    civility as it is: found by rendering ``title`` with a mark in each civility the
    mapping binds (``_PLACED_APART``), as the columns holding a mark alone. A template
    writing a civility through a table of its own, or failing on a mark, gives none.
    The column is said with the layout's line: "record 'R', column Civilite (#8)
    (formats/acme/layout.yaml:30: records[0].columns[7])"."""
    fields = bound(mapping)
    marked, marks = _marked_fields(title, fields, _PLACED_APART, "PESGENCIVIL")
    found: list[tuple[str, FileRenderer, Document, Column, str]] = []
    if not marks:
        return found
    for renderer, doc in rendered:
        if renderer.spec.layout is None:
            continue
        layout = renderer.spec.load_layout()
        try:
            text = renderer.piece(marked, doc)
        except TemplateError:
            continue
        seen: set[tuple[str, str]] = set()
        for text_line in text.split("\n"):
            for col, value in line_values(layout, text_line.rstrip("\r")):
                name = marks.get(value.strip())
                if name is not None and col.values is not None \
                        and (name, col.label) not in seen:
                    seen.add((name, col.label))
                    rec = next(r for r in layout.records if col in r.columns)
                    found.append((name, renderer, doc, col, f"{column_said(rec, col)} "
                                  f"({column_where(renderer.spec, rec, col)})"))
    return found


def civility_misfits(mapping: Mapping, title: Title,
                     rendered: list[tuple[FileRenderer, Document]]) -> list[Problem]:
    """The civilities the mapping sends as written (a value of codes.civility,
    policies.default_civility) that a layout's column holding the civility as it is
    does not take (``civility_columns``: its ``values``), rule mapping.code-fit, as a
    code of codes.activities: every invoice given that civility would be refused by
    the layout at export. Each names the table's line (the default's), the file and
    the column."""
    table = mapping.codes.civility or {}
    default = mapping.policies.default_civility
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for name, _renderer, doc, col, where in civility_columns(mapping, title, rendered):
        sent: list[tuple[str, tuple[str, ...], str]] = [
            (str(value), ("codes", "civility", str(key)),
            f"codes.civility.{key}") for key, value in table.items()]
        if default:
            sent.append((default, ("policies", "default_civility"),
                         "policies.default_civility"))
        for value, keys, said in sent:
            if (value, said, where) in seen or col.values is None or value in col.values:
                continue
            seen.add((value, said, where))
            problems.append(Problem(
                "mapping.code-fit", f"{said} {value!r} is not a value {doc.file_name}'s "
                f"{where} takes ({allowed_values(col)}; layout.values), where bindings.{name} "
                "is written as it is: every invoice given that civility would be refused "
                "by the layout at export; make it one of those",
                mapping=mapping.where(*keys)))
    return problems


# civilities as school software writes them, for examples of those a column refuses
_USUAL_CIVILITIES = ("Mme", "M.", "Madame", "Monsieur")


def civility_unlisted(mapping: Mapping, fmt: Format) -> list[Problem]:
    """Warnings (rule mapping.civility-values) of a civility the mapping binds without
    a codes.civility table, written as it is into a layout's column that takes a list
    of values (``civility_columns``, on the sample title with every optional part):
    each civility then goes out as exported (after the case policy), and one the column
    does not list is refused by the layout at export, by invoice, which check-mapping
    cannot see without the export. None when format.yaml lists the civilities it takes
    (fields.debtor.civility.values, which the build holds them to) and the column takes
    them all. Names the binding (file:line), the file and the column."""
    if mapping.codes.civility is not None:
        return []
    exporter = Exporter(mapping, fmt, Path("."), date(mapping.collectivity.exercise, 11, 23),
                        vouched=True)
    title = exporter.numbered(sample_titles(mapping, fmt)[0], 1)
    doc = exporter.document(1, 1, title.total, lines=len(title.lines))
    pairs = [(r, replace(doc, file_name=r.file_name(doc))) for r in exporter.renderers]
    listed = fmt.limit("debtor.civility").values
    fields = bound(mapping)
    problems = []
    for name, _renderer, named, col, where in civility_columns(mapping, title, pairs):
        if col.values is None or (listed and all(v in col.values for v in listed)):
            continue
        # examples of civilities an export may hold that this column refuses
        refused = [v for v in _USUAL_CIVILITIES if v not in col.values][:2]
        such = f" ({', '.join(repr(v) for v in refused)})" if refused else ""
        e_g = (f" (e.g. {refused[0]!r}: MME)" if refused and "MME" in col.values
               else "")
        problems.append(Problem(
            "mapping.civility-values", f"bindings.{name} is written as it is into "
            f"{named.file_name}, {where}, which takes only {allowed_values(col)} "
            "(layout.values): without a codes.civility table each civility goes out as "
            f"exported (after the case policy), so an invoice whose civility is another"
            f"{such} is refused by the layout at export; add a codes.civility table "
            f"giving each civility the export holds one of those{e_g}",
            mapping=fields[name].where))
    return problems


def _rendered(renderer: FileRenderer, doc: Document, title: Title) -> str | None:
    """The whole file ``renderer`` writes of ``title`` alone, None when a template fails
    on it (the sample's marks)."""
    try:
        return renderer.head(doc) + renderer.piece(title, doc) + renderer.tail(doc)
    except TemplateError:
        return None


def _parsed(text: str, encoding: str) -> Any:
    """``text`` parsed as the XML file it is written as (``encoding``; no entity
    resolved), None when it is not one."""
    try:
        return etree.fromstring(text.encode(encoding), etree.XMLParser(resolve_entities=False))
    except (etree.XMLSyntaxError, UnicodeEncodeError, LookupError):
        return None


def _values(root: Any) -> Iterator[tuple[Any, str | None, str | None]]:
    """(element, attribute or None for its text, value) of each value of an XML file."""
    for el in root.iter():
        if isinstance(el.tag, str):
            for attribute, value in [*el.attrib.items(), (None, el.text)]:
                yield el, attribute, value


# a SIRET with a valid key, for a debtor's IdTiers given a value (xsd_problems)
STAND_IN_SIRET = "21450999400015"


def xsd_problems(mapping: Mapping, fmt: Format, stood_in: list[str]
                 ) -> dict[tuple[str, ...], str]:
    """{(XSD file, place, words): the place as said, 'jvs.xsd: /…/JVS_LFAC_Libelle/@V'}
    of the XSD errors of the files of ``fmt`` checked by an XSD, rendered on the sample
    title with no optional part (``sample_titles``) with the fields of ``stood_in``
    (named as a mapping binds them, ``CARRIED_BY``'s paths in the title) given a value
    of their kind where the title leaves them empty (``_stand_in``): the scaffold
    (``scaffold.required_bindings``) compares them to find what a file requires. The
    sample's made-up values break a PES file's rules the same way with or without a
    field (IdBord, dates): only what a field given changes says something. A file that
    does not render or parse gives nothing."""
    exporter = Exporter(mapping, fmt, Path("."), date(mapping.collectivity.exercise, 11, 23),
                        vouched=True)
    title = exporter.numbered(sample_titles(mapping, fmt)[-1], 1)
    for name in stood_in:
        for path in CARRIED_BY.get(name, ()):
            parts = path.split(".")
            if parts[0] == "t" and (filled := _stand_in(title, parts[1:])) is not None:
                title = filled
    if "payer.national_id" in stood_in and title.debtor.national_id_kind is None and \
            title.debtor.national_id is not None:
        # IdTiers goes with its NatIdTiers, which a template writes beside it: a stand-in
        # 'X' alone had the file write None, render nothing, and hide every other error
        title = replace(title, debtor=replace(title.debtor, national_id=STAND_IN_SIRET,
                                              national_id_kind="01"))
    doc = exporter.document(1, 1, title.total, lines=len(title.lines))
    found: dict[tuple[str, ...], str] = {}
    for renderer in exporter.renderers:
        if renderer.spec.xsd is None:
            continue
        named = replace(doc, file_name=renderer.file_name(doc))
        text = _rendered(renderer, named, title)
        root = None if text is None else _parsed(text, exporter.encoding)
        if root is None:
            continue
        schema = load_xsd(renderer.spec.xsd)
        schema.validate(root)
        for error in schema.error_log:
            attribute, words = _xsd_said(error.message)
            place = _where(error.path or "", attribute)
            found[(renderer.spec.xsd.name, place, words)] = f"{renderer.spec.xsd.name}: {place}"
    return found


def _xsd_said(message: str) -> tuple[str | None, str]:
    """(the attribute, or None, and the words) of libxml2's message of an XSD error."""
    m = XSD_PLACE.match(message)
    return (m[2], message[m.end():]) if m else (None, message)


def _where(path: str, attribute: str | None) -> str:
    """An XSD error's place as said: its XPath without positions, /@attribute."""
    shown = unpositioned(path)
    return f"{shown}/@{attribute}" if attribute else shown


def _xsd_code_misfits(mapping: Mapping, renderer: FileRenderer, doc: Document,
                      marked: Title, marks: dict[str, str], encoding: str) -> list[Problem]:
    """``code_misfits`` for a file checked by an XSD: the elements (text) and attributes
    (Corail's and the PES' V) whose value is a mark, in the file rendered on ``marked``
    alone; then, per activity, the file rendered with its codes in the marks' places
    validated, and the XSD's refusals at those places kept (the sample's made-up values
    are not the mapping's: what the XSD says of them elsewhere is not)."""
    assert renderer.spec.xsd is not None
    text = _rendered(renderer, doc, marked)
    root = None if text is None else _parsed(text, encoding)
    if text is None or root is None:
        return []
    tree = root.getroottree()
    # key -> {(XPath of the element, attribute or None for its text)}
    places: dict[str, set[tuple[str, str | None]]] = {}
    for el, name, value in _values(root):
        for key, mark in marks.items():
            if value == mark:
                places.setdefault(key, set()).add((tree.getpath(el), name))
    if not places:
        return []
    schema = load_xsd(renderer.spec.xsd)
    label = xsd_label(renderer.spec.xsd)
    problems: list[Problem] = []
    for activity, codes in mapping.codes.activities.items():
        given = {key: str(codes[key]) for key in places if codes.get(key) is not None}
        if not given:
            continue
        filled = text
        for key, code in given.items():
            filled = filled.replace(marks[key], escape(code, {'"': "&quot;"}))
        try:
            checked = etree.fromstring(filled.encode(encoding),
                                       etree.XMLParser(resolve_entities=False))
        except (etree.XMLSyntaxError, UnicodeEncodeError):
            continue
        schema.validate(checked.getroottree())
        said: set[tuple[str, str]] = set()
        for error in schema.error_log:
            attribute, words = _xsd_said(error.message)
            for key in given:
                if (error.path, attribute) not in places[key] or (key, error.path) in said:
                    continue
                said.add((key, error.path))
                problems.append(Problem(
                    "mapping.code-fit", f"codes.activities.{activity}.{key} {given[key]!r} "
                    f"is refused by {renderer.spec.xsd.name} (xsd.{label}: "
                    f"{words.strip().rstrip('.')}): written as it is into {doc.file_name}, "
                    f"{_where(error.path, attribute)}",
                    mapping=mapping.where("codes", "activities", activity, key)))
    return problems


# the bound fields whose values a file's element (column) may hold as they are, and
# where a title holds them (its attributes, "lines" its first line): what an XSD's (a
# layout's) refusal at an export names (``binding_places``)
_PLACED = (
    ("invoice.number", ("invoice_number",)), ("invoice.object", ("object",)),
    *((f"payer.{k}", ("debtor", k)) for k in ("name", "first_name", "complement_name", "ref")),
    *((f"address.{k}", ("debtor", "address", k))
      for k in ("street", "complement", "locality", "city", "postal_code")),
    *((f"joint_payer.{k}", ("joint_debtor", k))
      for k in ("name", "first_name", "complement_name", "ref")),
    *((f"joint_payer.{k}", ("joint_debtor", "address", k))
      for k in ("street", "complement", "locality", "city", "postal_code")),
    ("payment.rum", ("mandate", "rum")), ("payment.label", ("mandate", "label")),
    ("payment.holder", ("mandate", "account", "holder")),
    ("line.label", ("lines", "label")),
)


# the numbers of a line a file may hold as they are (written by amount, number, pricing),
# each given a value no other field of the sample has; quantity x unit price = amount,
# so that pricing writes them: {binding: value}. The title's total, and its imputation's
# sum, are the amount (a title of that one line): a value equal to it names line.amount
_NUMBERS = {"line.quantity": Decimal("4321"), "line.unit_price": Decimal("0.13"),
            "line.amount": Decimal("561.73")}


# a unit price the sample's quantity does not multiply to its amount (4321 x 0.17 is not
# 561.73): its line is netted, and the pricing filter writes it as 1 x the amount
_UNPRICED = Decimal("0.17")


@dataclass(frozen=True, slots=True)
class Priced:
    """A place holding a line's unit price as the ``pricing`` filter gives it: the unit
    price's binding when the line's quantity x unit price is its amount, else (a line
    netted by a discount: 1 x the amount) the amount's; the export tells which by the
    line the refusal's place names (``line_of``) and the invoice's pricing notes, which
    give the lines written as 1 x the amount (``Exporter._bindings_of``)."""

    unit_price: str  # file:line: key of bindings.line.unit_price
    amount: str  # of bindings.line.amount
    # how the place says which of the title's lines it holds, found on the sample
    # rendered with two lines (``_line_places``): in an XML file, the index of the
    # XPath's step the lines repeat (/…/Piece[3]/ASAPLigneFacturation[2]/…: 4, the
    # line 2); in a flat file, the piece's text line (0 its first) holding the first
    # line's record, and how many text lines each line adds. None: not found
    step: int | None = None
    first: int | None = None
    stride: int | None = None

    def line_of(self, xpath: str | None, offset: int | None) -> int | None:
        """The position (1 the first) of the title's line whose value a refusal at
        ``xpath`` (an XML file's, with its positions) or at the piece's text line
        ``offset`` (a flat file's, 0 its first) is; None when the place does not say."""
        if self.step is not None and xpath is not None:
            steps = xpath.split("/")
            if self.step >= len(steps):
                return None
            m = _POSITION.search(steps[self.step])
            return int(m[1]) if m else 1  # lxml writes no [1] for an element alone
        if self.first is not None and self.stride and offset is not None:
            k, rest = divmod(offset - self.first, self.stride)
            return k + 1 if k >= 0 and not rest else None
        return None


# the position an XPath's step ends with (ASAPLigneFacturation[2])
_POSITION = re.compile(r"\[(\d+)\]$")


def _numbered(title: Title, fields: dict[str, Any], unit_price: Decimal | None = None
              ) -> tuple[Title, dict[Decimal, str]]:
    """``title`` reduced to its first line, whose bound numbers are ``_NUMBERS``' (the
    others as they were; its unit price ``unit_price`` when given), and {value: binding}
    of those set."""
    given = {name: value for name, value in _NUMBERS.items() if name in fields}
    if "line.amount" not in given:
        return title, {}
    if unit_price is not None and "line.unit_price" in given:
        given["line.unit_price"] = unit_price
    first = title.lines[0]
    line = replace(first, amount=given["line.amount"],
                   quantity=given.get("line.quantity", first.quantity),
                   unit_price=given.get("line.unit_price", first.unit_price))
    return (replace(title, lines=(line,), total=line.amount),
            {value: name for name, value in given.items()})


def _number_of(value: str | None) -> Decimal | None:
    """A file's value read as a number ('561,73', '561.7300', '4321'), else None."""
    text = (value or "").strip().replace(",", ".")
    if not text or len(text) > 30 or not text.replace(".", "", 1).isdigit():
        return None
    return Decimal(text)


def _marked(obj: Any, path: tuple[str, ...], value: str) -> Any:
    """``obj`` with the field at ``path`` set to ``value`` ("lines": its first line)."""
    if obj is None:
        return None
    if path[0] == "lines":
        first = _marked(obj.lines[0], path[1:], value)
        return replace(obj, lines=(first, *obj.lines[1:]))
    if len(path) == 1:
        return replace(obj, **{path[0]: value})
    return replace(obj, **{path[0]: _marked(getattr(obj, path[0]), path[1:], value)})


def _held(marks: dict[str, str], value: str | None) -> str | None:
    """The one mark ``value`` holds once (alone, or within the template's own text),
    else None: a value holding two (RaisonSociale: name, complement, first name), or
    one twice (a template writing it twice), is not one binding's."""
    held = [mark for mark in marks if value and mark in value]
    if len(held) != 1 or value is None or value.count(held[0]) != 1:
        return None
    return held[0]


def _joined_marks(marks: dict[str, str], value: str | None, least: int = 2
                  ) -> tuple[str, ...]:
    """The marks ``value`` holds, each once, when it holds ``least`` or more (two:
    Corail's RaisonSociale: name, complement, first name; e.magnus' Designation1: name
    and complement), in the order written; () otherwise."""
    held = tuple(sorted((mark for mark in marks if value and mark in value),
                        key=lambda mark: (value or "").index(mark)))
    if len(held) < least or value is None or any(value.count(mark) != 1 for mark in held):
        return ()
    return held


def _at(title: Title, path: tuple[str, ...]) -> list[Any]:
    """The values at ``path`` in ``title`` ("lines": in each of its lines), None aside."""
    found: list[Any] = [title]
    for part in path:
        found = [x for obj in found for x in (obj.lines if part == "lines"
                                              else (getattr(obj, part),)) if x is not None]
    return found


def binding_of_value(mapping: Mapping, title: Title, value: Any) -> str | None:
    """The binding (file:line: key) whose value in ``title`` is ``value``, which a
    template's filter refused (``fixed``, ``zfill`` over their width): a bound text field
    equal to it (``_PLACED``), or a line's number or the title's total equal to it or to
    its cents (``t.total | cents | fixed(12)``: the total's binding, else the lines'
    amounts'); None when none is, or more than one binding is, or pesgen's own piece
    or line number is too (IdPce 1000 is a total of 10.00 in cents)."""
    fields = bound(mapping)
    text = "" if value is None else str(value)
    number = _number_of(text) if not isinstance(value, bool) else None
    found: set[str] = set()
    for name, path in _PLACED:
        if name in fields and text in (str(x) for x in _at(title, path)):
            found.add(name)
    totals = "invoice.total" if "invoice.total" in fields else "line.amount"
    for name, path in (*((n, ("lines", n.split(".")[1])) for n in _NUMBERS),
                       (totals, ("total",))):
        if number is not None and name in fields and any(
                number in (x, x * 100) for x in _at(title, path) if isinstance(x, Decimal)):
            found.add(name)
    if number is not None and number in {Decimal(x) for x in (
            title.number, *(ln.number for ln in title.lines)) if isinstance(x, int)}:
        return None  # pesgen's own piece or line number too: whose it is is not told
    return fields[found.pop()].where if len(found) == 1 else None


def binding_of_none(mapping: Mapping, renderer: FileRenderer, doc: Document,
                    where: str | None, title: Title | None = None, macro: str = "piece",
                    reads: Callable[[Binding, str | None], str] | None = None
                    ) -> NoneCauses | None:
    """The empty values a template of ``renderer`` wrote as None at ``where`` (the
    refusal's 'bundle/template:line'), each as a refusal names it (``none_said``): a
    bound field ``title`` leaves empty ('…:41: bindings.payer.national_id, empty for
    this invoice'), a setting of the mapping the run's ``doc`` leaves empty (its
    bordereau object, a collectivity's label, the ASAP edition code: '…:19:
    output.bordereau_object, empty for this run', or 'collectivity.poste_label, which
    the mapping does not set: set it under …:6: collectivity'), a field of the title no
    binding fills ('bindings.invoice.service_from, which the mapping does not bind: bind
    it under …:29: bindings.invoice'); a bound field's with what the record holds in the
    fields its expression reads, when ``reads`` says (``_title_blanks``; a line's
    binding with the line whose record it read). ``macro`` is
    the one refused: ``piece`` (of ``title``), ``head`` or ``tail`` (of ``doc`` alone).
    Found by rendering it again with each such value given a value of its kind
    (``_stand_in``), one at a time: the one without which the template renders (a
    stand-in that has another line refused first, a national_id given that has the line
    of its NatIdTiers write None, says nothing of this one: not counted); when none
    alone is, with all of them, then each taken out again (kept when another line is
    refused without it): those the line writes
    (``{{ t.debtor.national_id }}{{ t.object }}``: both). When
    more than one alone is, those (``either``: ``t.a or t.b``, one given would do).
    None when none is, when the line still writes None with all of them (a value none
    of these is), or when a rendering runs past its time limit (``TemplateStopped``:
    each other could wait as long)."""
    blanks = [*_title_blanks(mapping, title, reads), *_doc_blanks(mapping, doc)]

    def none_there(filled: list[_Blank]) -> str:
        """With ``filled`` given a value: 'cleared' when the template renders, 'there'
        when it still writes None at ``where``, 'unknown' when it stops at another
        error first (a stand-in making another line write None: whether ``where``
        would still is not known), 'stopped' past its time limit."""
        t, d = title, doc
        for blank in filled:
            t, d = blank.fill(t, d)
        try:
            renderer.render(macro, d, t)
        except TemplateStopped:
            return "stopped"
        except TemplateError as exc:
            there = exc.none_written and exc.problems and exc.problems[0].mapping == where
            return "there" if there else "unknown"
        return "cleared"

    alone: list[str] = []
    for blank in blanks:
        there = none_there([blank])
        if there == "stopped":
            return None
        if there == "cleared" and blank.said not in alone:
            alone.append(blank.said)
    if alone:
        return NoneCauses(tuple(alone), either=len(alone) > 1)
    kept = list(blanks)
    if len(kept) < 2 or none_there(kept) != "cleared":
        return None
    for blank in blanks:
        rest = [k for k in kept if k is not blank]
        there = none_there(rest)
        if there == "stopped":
            return None
        if there == "cleared":
            kept = rest
    said = tuple(dict.fromkeys(blank.said for blank in kept))
    return NoneCauses(said) if len(said) > 1 else None


class NoneCauses(NamedTuple):
    """The empty values ``binding_of_none`` found a line wrote as None, as a refusal
    names each: all of them (``either`` False), or those of which any one given would
    do (``either``: the line writes ``t.a or t.b``)."""

    said: tuple[str, ...]
    either: bool = False


def none_said(causes: NoneCauses | None) -> str | None:
    """What a refusal writing None adds, in parentheses, of the ``causes``
    ``binding_of_none`` found: 'the value of …' (one), 'the line writes 2 values left
    empty: the value of …; the value of …' (several, all written), 'the line writes None
    unless one of 2 values left empty is given: the value of …; …' (either would do);
    None for none."""
    if causes is None:
        return None
    said = "; ".join(f"the value of {cause}" for cause in causes.said)
    if len(causes.said) == 1:
        return said
    if causes.either:
        return (f"the line writes None unless one of {len(causes.said)} values left empty "
                f"is given: {said}")
    return f"the line writes {len(causes.said)} values left empty: {said}"


@dataclass(frozen=True)
class _Blank:
    """A value left empty that a template may write: how a refusal names it
    (``binding_of_none``), and the title and document with it given a value of its kind
    (either unchanged when it has one already)."""

    said: str
    fill: Callable[[Title | None, Document], tuple[Title | None, Document]]


def _title_blanks(mapping: Mapping, title: Title | None,
                  reads: Callable[[Binding, str | None], str] | None = None) -> list[_Blank]:
    """Each field ``title`` leaves empty (where a title holds it: ``CARRIED_BY``'s 't.'
    paths), by path: a bound one, '…:41: bindings.payer.national_id, empty for this
    invoice', with the fields its expression reads and what the record holds there when
    ``reads`` says (``Builder.expression_reads``, given the line's origin for a line's
    binding, None for an invoice's: a line's named by ``_line_said``); then one no
    binding fills, 'bindings.invoice.service_from, which the mapping does not bind: bind
    it under …:29: bindings.invoice' (a path a bound field carries too is that one's)."""
    if title is None:
        return []
    fields = bound(mapping)
    carried = {path for name in fields for path in CARRIED_BY.get(name, ())}
    found = []
    for name, binding in [*fields.items(),
                          *((n, None) for n in CARRIED_BY if n not in fields)]:
        for path in CARRIED_BY.get(name, ()):
            parts = path.split(".")
            if parts[0] != "t" or (binding is None and path in carried) \
                    or _stand_in(title, parts[1:]) is None:
                continue

            def fill(t: Title | None, d: Document, parts: list[str] = parts
                     ) -> tuple[Title | None, Document]:
                filled = _stand_in(t, parts[1:])
                return (t if filled is None else filled), d

            if binding is None:
                said = _setting_said(mapping, ("bindings", *name.split(".")), "bind")
            elif reads is None:
                said = f"{binding.where}, empty for this invoice"
            elif parts[1] == "lines[i]":
                said = _line_said(binding, title, parts[2], reads)
            else:
                read = reads(binding, None)
                said = f"{binding.where}, empty for this invoice{': ' + read if read else ''}"
            found.append(_Blank(said, fill))
    return found


def _line_said(binding: Binding, title: Title, field: str,
               reads: Callable[[Binding, str | None], str]) -> str:
    """A line's binding ``title`` leaves empty on some of its lines, as a refusal writing
    None names it: with the first such line (the one a template writing each line in
    turn met) and what the fields its expression reads hold in that line's record, when
    it is an expression ('…:79: bindings.line.student, empty for this invoice's line 2
    (export.json:$.invoices[0].lines[1]): its expression reads line.student.ref,
    line.pupil: both absent from this record'), and how many more lines leave it empty
    (' (and for 2 more of its lines)'); a path binding as an invoice's is named ('…,
    empty for this invoice')."""
    empty = [ln for ln in title.lines if getattr(ln, field, None) is None]
    read = reads(binding, empty[0].origin) if empty and empty[0].origin else ""
    if not read:
        return f"{binding.where}, empty for this invoice"
    more = (f" (and for {len(empty) - 1} more of its lines)" if len(empty) > 2 else
            " (and for one more of its lines)" if len(empty) == 2 else "")
    return (f"{binding.where}, empty for this invoice's line {empty[0].number} "
            f"({empty[0].origin}): {read}{more}")


def _doc_blanks(mapping: Mapping, doc: Document) -> list[_Blank]:
    """Each value of the run's ``doc`` a setting of the mapping leaves empty: a
    collectivity's optional field (collectivity.poste_label…), the bordereau object
    (output.bordereau_object), an option (output.asap_edition for doc.options.edition,
    output.options.NAME)."""
    found = []
    for f in dataclass_fields(doc.collectivity):
        if getattr(doc.collectivity, f.name) is None and "str" in re.findall(r"\w+",
                                                                              str(f.type)):
            def collectivity(t: Title | None, d: Document, name: str = f.name
                             ) -> tuple[Title | None, Document]:
                given: dict[str, Any] = {name: "X"}
                return t, replace(d, collectivity=replace(d.collectivity, **given))

            found.append(_Blank(_setting_said(mapping, ("collectivity", f.name)),
                                collectivity))
    if doc.bordereau.object is None:
        def bordereau(t: Title | None, d: Document) -> tuple[Title | None, Document]:
            return t, replace(d, bordereau=replace(d.bordereau, object="X"))

        found.append(_Blank(_setting_said(mapping, ("output", "bordereau_object")),
                            bordereau))
    for key, value in doc.options.items():
        if value is None:
            def option(t: Title | None, d: Document, key: str = key
                       ) -> tuple[Title | None, Document]:
                return t, replace(d, options={**d.options, key: "X"})

            setting = ("output", "asap_edition") if key == "edition" else \
                ("output", "options", key)
            found.append(_Blank(_setting_said(mapping, setting), option))
    return found


def _setting_said(mapping: Mapping, keys: tuple[str, ...], verb: str = "set") -> str:
    """A setting of the mapping as a refusal writing None names it: its file:line: key
    when the mapping sets it ('…:19: output.bordereau_object, empty for this run'), else
    where it would go ('collectivity.poste_label, which the mapping does not set: set it
    under …:6: collectivity'; a binding, ``verb`` 'bind': 'bindings.invoice.service_from,
    which the mapping does not bind: bind it under …:29: bindings.invoice')."""
    node: Any = mapping.data
    for depth, key in enumerate(keys):
        if not isinstance(node, dict) or node.get(key) is None:
            above = mapping.where(*keys[:depth]) if depth else str(mapping.path)
            return (f"{'.'.join(keys)}, which the mapping does not {verb}: {verb} it "
                    f"under {above}")
        node = node[key]
    return f"{mapping.where(*keys)}, empty for this run"


def _stand_in(obj: Any, path: list[str]) -> Any:
    """``obj`` with the field at ``path`` (a ``CARRIED_BY`` path without its 't':
    ['debtor', 'complement_name'], ['lines[i]', 'quantity'], each line's) given a value
    of its kind where it is None (a text 'X', the number 1, a date); None when no value
    there is None, the path goes through a value that is None (no joint debtor), or
    its field is of no such kind (the mandate itself, a property)."""
    if obj is None:
        return None
    head, rest = path[0], path[1:]
    if head == "lines[i]":
        lines = [_stand_in(ln, rest) for ln in obj.lines]
        if all(ln is None for ln in lines):
            return None
        return replace(obj, lines=tuple(new if new is not None else old
                                        for new, old in zip(lines, obj.lines, strict=True)))
    kinds = {f.name: str(f.type) for f in dataclass_fields(obj)} if is_dataclass(obj) else {}
    if head not in kinds:
        return None
    if rest:
        inner = _stand_in(getattr(obj, head), rest)
        return None if inner is None else replace(obj, **{head: inner})
    if getattr(obj, head) is not None:
        return None
    # the field's annotation, by its words ('date | None'; 'Mandate | None' is none)
    kinds_of = set(re.findall(r"\w+", kinds[head]))
    value: Any = (Decimal(1) if "Decimal" in kinds_of else date(2026, 1, 1)
                  if "date" in kinds_of else "X" if "str" in kinds_of else None)
    return None if value is None else replace(obj, **{head: value})


def binding_places(mapping: Mapping, title: Title, renderer: FileRenderer,
                   doc: Document, encoding: str
                   ) -> dict[tuple[str, str | None], str | tuple[str, ...] | Priced]:
    """{(XPath without positions, attribute or None for the element's text): the
    mapping's binding (file:line: key)} of the values of an XML file of ``renderer``
    (of a flat file: {("record 'R', column C (#n)", None): binding}, as a layout's
    problem starts) that hold one bound field alone, as it is or within a text
    (Corail's LibPieceJustificative 'FACTURE <number>'), and of the line's numbers
    (``_NUMBERS``: e.magnus' Quantite, Corail's MontantHT, an amount's cap): found by
    rendering ``title`` with a mark in each (``_PLACED``, ``_NUMBERS``), so that the
    XSD's (the layout's) refusal at an export, by invoice, names the binding whose
    value it refused (JVS_FAC_NumeroFacture, e.magnus' NumeroFacture:
    bindings.invoice.number; Quantite: bindings.line.quantity). A value joining several marks,
    each once (Corail's RaisonSociale: name, complement, first name), gives the tuple of
    their bindings, which the refusal lists (no one of them is the cause); one holding a
    mark twice names none (``_held``); {} when the marked title does not render or
    parse. A place holding the unit price when the line is priced and its amount when
    it is not (a netted line: the ``pricing`` filter's 1 x amount; Corail's
    ASAPPrixUnitaire), found by rendering the title again with a unit price its
    quantity does not multiply to the amount, gives ``Priced``: which of the two it held
    depends on the invoice's line."""
    fields = bound(mapping)
    marked, numbers = _numbered(title, fields)
    marked, marks = _marked_fields(marked, fields, _PLACED, "PESGENPLACE")
    found = _file_values(renderer, doc, marked, encoding) if marks or numbers else None
    if found is None:
        return {}
    places: dict[tuple[str, str | None], str | tuple[str, ...] | Priced] = {}
    for key, value in found:
        held = _held(marks, value)
        if held:
            places[key] = fields[marks[held]].where
        elif joined := _joined_marks(marks, value):
            places[key] = tuple(fields[marks[mark]].where for mark in joined)
        elif (number := _number_of(value)) is not None and number in numbers:
            places[key] = fields[numbers[number]].where
    if renderer.spec.layout is not None:
        # not an XML file's: a civility's element would count among those an XSD
        # expects where a bound value goes (``_made_up_schema``), and hide a misspelt
        # element after it on the sample title without one
        places.update(_apart_places(fields, marked, renderer, doc, encoding, places))
    priced = {key for key, value in found if (number := _number_of(value)) is not None
              and numbers.get(number) == "line.unit_price"}
    if priced and "line.amount" in numbers.values():
        unpriced, _ = _numbered(title, fields, _UNPRICED)
        again = _file_values(renderer, doc, unpriced, encoding) or []
        price, amount = fields["line.unit_price"].where, fields["line.amount"].where
        lines = _line_places(renderer, doc, marked, encoding, priced)
        for key, value in again:
            if key in priced and _number_of(value) == _NUMBERS["line.amount"]:
                places[key] = Priced(price, amount, *lines.get(key, (None, None, None)))
    return places


# bound fields a template may write through a table of its own ({'M': 1, 'MME': 2}[…]),
# which a mark would break: placed by a rendering of their own (``_apart_places``), so
# that the others' places stand whatever it gives
_PLACED_APART = (("payer.civility", ("debtor", "civility")),
                 ("joint_payer.civility", ("joint_debtor", "civility")))


def _apart_places(fields: dict[str, Any], title: Title, renderer: FileRenderer,
                  doc: Document, encoding: str,
                  known: dict[tuple[str, str | None], Any]
                  ) -> dict[tuple[str, str | None], str]:
    """{place: binding} of the fields of ``_PLACED_APART`` the mapping binds, in a flat
    file, each written alone as it is (a civility sent as the export or codes.civility gives it),
    found by rendering ``title`` with a mark in each; none of a place ``known`` holds,
    and {} when the marked title does not render or parse."""
    marked, marks = _marked_fields(title, fields, _PLACED_APART, "PESGENAPART")
    found = _file_values(renderer, doc, marked, encoding) if marks else None
    return {key: fields[marks[held]].where for key, value in found or ()
            if key not in known and (held := _held(marks, value))}


def _marked_fields(title: Title, fields: dict[str, Any],
                   placed: tuple[tuple[str, tuple[str, ...]], ...], prefix: str
                   ) -> tuple[Title, dict[str, str]]:
    """``title`` with a mark (``PREFIXnnMARK``) in the place of each field of ``placed``
    the mapping binds and the title holds, and {mark: field}."""
    marks: dict[str, str] = {}
    marked = title
    for i, (name, path) in enumerate(placed):
        if name in fields:
            mark = f"{prefix}{i:02d}MARK"
            changed = _marked(marked, path, mark)
            if changed is not None and changed is not marked:
                marked, marks[mark] = changed, name
    return marked, marks


def _line_places(renderer: FileRenderer, doc: Document, title: Title, encoding: str,
                 keys: set[tuple[str, str | None]]
                 ) -> dict[tuple[str, str | None], tuple[int | None, int | None, int | None]]:
    """{place of ``keys``: how a refusal there says which line it is (``Priced``'s
    step, first, stride)}, found by rendering ``title`` (of one line) and again with
    that line twice: in an XML file, the one step of the XPath whose position is 1 for
    the first line's value and 2 for the second's; in a flat file, the piece's text
    line holding the place for the first line, and the lines between the two. A place
    the two renderings do not show so (a value written for one line only, twice for a
    line, or at steps differing otherwise) is not in it."""
    second = replace(title.lines[0], number=2)
    twice = replace(title, lines=(title.lines[0], second), total=title.total * 2)
    found: dict[tuple[str, str | None], tuple[int | None, int | None, int | None]] = {}
    if renderer.spec.layout is not None:
        one, two = (_piece_places(renderer, doc, t) for t in (title, twice))
        for key in keys:
            at_one, at_two = one.get(key, []), two.get(key, [])
            if len(at_one) == 1 and len(at_two) == 2 and at_two[0] == at_one[0] \
                    and at_two[1] > at_two[0]:
                found[key] = (None, at_one[0], at_two[1] - at_two[0])
        return found
    text = _rendered(renderer, doc, twice)
    root = None if text is None else _parsed(text, encoding)
    if root is None:
        return found
    tree = root.getroottree()
    paths: dict[tuple[str, str | None], list[str]] = {}
    for el, attribute, _value in _values(root):
        path = tree.getpath(el)
        paths.setdefault((unpositioned(path), attribute), []).append(path)
    for key in keys:
        if len(at := paths.get(key, [])) != 2:
            continue
        first, later = at[0].split("/"), at[1].split("/")
        differ = [i for i, (a, b) in enumerate(zip(first, later, strict=True)) if a != b]
        if len(differ) == 1 and (m1 := _POSITION.search(first[differ[0]])) and \
                (m2 := _POSITION.search(later[differ[0]])) and (m1[1], m2[1]) == ("1", "2"):
            found[key] = (differ[0], None, None)
    return found


def _piece_places(renderer: FileRenderer, doc: Document, title: Title
                  ) -> dict[tuple[str, str | None], list[int]]:
    """{place ("record 'R', column C (#n)", None): the text lines of the piece (0 its
    first line that is not empty, as the export counts them) holding it} of a flat
    file's piece of ``title``; {} when it does not render."""
    try:
        text = renderer.piece(title, doc)
    except TemplateError:
        return {}
    assert renderer.spec.layout is not None
    layout = renderer.spec.load_layout()
    found: dict[tuple[str, str | None], list[int]] = {}
    for i, text_line in enumerate(text.lstrip("\r\n").split("\n")):
        rec, values = record_values(layout, text_line.rstrip("\r"))
        if rec is None:
            continue
        for col, _value in zip(rec.columns, values, strict=False):
            found.setdefault((column_said(rec, col), None), []).append(i)
    return found


def _file_values(renderer: FileRenderer, doc: Document, title: Title, encoding: str
                 ) -> list[tuple[tuple[str, str | None], str | None]] | None:
    """(place, value) of each value of the file ``renderer`` writes of ``title`` alone:
    a flat file's ("record 'R', column C (#n)", None), as a layout's problem starts; an
    XML file's (XPath without positions, attribute or None for the element's text).
    None when it does not render or parse."""
    text = _rendered(renderer, doc, title)
    if text is None:
        return None
    if renderer.spec.layout is not None:
        layout = renderer.spec.load_layout()
        lines = text.split("\n")
        out: list[tuple[tuple[str, str | None], str | None]] = []
        for text_line in lines[1:] if layout.header else lines:
            rec, values = record_values(layout, text_line.rstrip("\r"))
            if rec is None:
                continue
            out.extend(((column_said(rec, col), None), value)
                       for col, value in zip(rec.columns, values, strict=False))
        return out
    root = _parsed(text, encoding)
    if root is None:
        return None
    tree = root.getroottree()
    return [((unpositioned(tree.getpath(el)), attribute), value)
            for el, attribute, value in _values(root)]


def width_columns(mapping: Mapping, fmt: Format,
                  written: list[tuple[str, tuple[str, ...], int]]
                  ) -> dict[tuple[str, tuple[str, ...], int], str]:
    """{(template, path, width): the layout column its value is written in} for each
    ``written`` (a template of ``fmt`` writing the model value at ``path``, ('t',
    'debtor', 'complement_name'), through ``fixed(width)``: ``bundles.narrow_widths``)
    of a file with a layout: "record 'titre', column ComplNom (#4)
    (formats/acme/acme.layout.yaml:27: records[1].columns[3])", the column as the layout
    declares it (``held_columns``)."""
    return {key: f"{column_said(rec, col)} ({column_where(spec, rec, col)})"
            for key, (spec, rec, col) in held_columns(mapping, fmt, written).items()}


def held_columns(mapping: Mapping, fmt: Format,
                 written: list[tuple[str, tuple[str, ...], int]]
                 ) -> dict[tuple[str, tuple[str, ...], int], tuple[FileSpec, RecordType, Column]]:
    """{(template, path, width): (the file, record and layout column its value is written
    in)} for each ``written`` (a template of ``fmt`` and the model value at ``path``,
    ('t', 'debtor', 'complement_name')) of a file with a layout. Found by rendering the
    sample title with every optional part (``sample_titles``, with ``mapping``) with
    that value a mark of ``width`` characters and reading the file as the layout does:
    the one column holding the mark (in one record or in several of one type: a file
    writing a record per line of the title, the debtor's name on each). None said when
    no column, or more than one, holds it (the value written twice on a record, or in
    records of two types), or the marked title does not render."""
    found: dict[tuple[str, tuple[str, ...], int], tuple[FileSpec, RecordType, Column]] = {}
    templates = {w[0] for w in written}
    if not any(spec.layout is not None and spec.template in templates for spec in fmt.files):
        return found
    exporter = Exporter(mapping, fmt, Path("."), date(mapping.collectivity.exercise, 11, 23),
                        vouched=True)
    flat = [r for r in exporter.renderers
            if r.spec.layout is not None and r.spec.template in templates]
    title = exporter.numbered(sample_titles(mapping, fmt)[0], 1)
    doc = exporter.document(1, 1, title.total, lines=len(title.lines))
    for renderer in flat:
        spec = renderer.spec
        layout = spec.load_layout()
        named = replace(doc, file_name=renderer.file_name(doc))
        for key in written:
            template, path, width = key
            if template != spec.template or key in found or width < 1:
                continue
            mark = "Z" * width
            try:
                t, d = (_marked(title, tuple(p for p in path[1:] if p != "*"), mark), named) \
                    if path[0] == "t" else (title, _marked(named, path[1:], mark))
            except (TypeError, AttributeError, IndexError):  # a value of no such field
                continue
            text = _rendered(renderer, d, t)
            if text is None:
                continue
            # {(record type, column number): where}: the same column of each record of a
            # type counts once (a record per line of the title, the debtor's name on each)
            held: dict[tuple[str, int], tuple[RecordType, Column]] = {}
            lines = text.split("\n")
            for text_line in lines[1:] if layout.header else lines:
                rec, values = record_values(layout, text_line.rstrip("\r"))
                if rec is not None:
                    held.update(((rec.type, col.index), (rec, col))
                                for col, value in zip(rec.columns, values, strict=False)
                                if value.strip().upper() == mark)
            if len(held) == 1:
                found[key] = (spec, *next(iter(held.values())))
    return found


class Joined(NamedTuple):
    """A layout column a template fills with several bound fields joined (e.magnus'
    Designation1: the name, a space, the name complement): ``joined_columns``."""

    spec: FileSpec
    rec: RecordType
    col: Column
    fields: tuple[str, ...]  # the bound fields (payer.name), in the order written
    reach: int  # the value's length with each field at its limit


def _unbound_cleared(title: Title, fields: dict[str, Any]) -> Title:
    """``title`` without the sample's values of the text fields of ``_PLACED`` the
    mapping does not bind (a name complement the sample gives, as name_overflow: split
    would): joined to bound ones, they would count as the template's own text."""
    for name, path in _PLACED:
        if name not in fields and name not in ("invoice.number", "line.label") \
                and _at(title, path):
            changed = _marked(title, path, None)  # type: ignore[arg-type]
            title = title if changed is None else changed
    return title


def _joined_sample(mapping: Mapping, fmt: Format
                   ) -> tuple[Exporter, Title, Document, Title, dict[str, str]]:
    """What ``joined_columns`` and ``joined_elements`` render: the exporter, the sample
    title with every optional part (the values of fields ``mapping`` does not bind
    cleared, ``_unbound_cleared``), its document, and that title with a mark in each
    bound field (``_PLACED``) with the marks (mark: field)."""
    fields = bound(mapping)
    exporter = Exporter(mapping, fmt, Path("."), date(mapping.collectivity.exercise, 11, 23),
                        vouched=True)
    title = _unbound_cleared(exporter.numbered(sample_titles(mapping, fmt)[0], 1), fields)
    doc = exporter.document(1, 1, title.total, lines=len(title.lines))
    marked, marks = _marked_fields(title, fields, _PLACED, "PESGENJOIN")
    return exporter, title, doc, marked, marks


def _at_limits(title: Title, joined: list[tuple[str, ...]], limits: dict[str, int]
               ) -> Title:
    """``title`` with each bound field of ``joined`` (the fields of each column or
    element found joined) at its limit (``limits``), 'Z' that many times: what
    ``joined_columns`` and ``joined_elements`` render again to measure them."""
    paths = dict(_PLACED)
    for names in joined:
        for name in names:
            title = _marked(title, paths[name], "Z" * limits[name])
    return title


def joined_columns(mapping: Mapping, fmt: Format, limits: dict[str, int]) -> list[Joined]:
    """Each column of a file with a layout that holds two or more of the fields
    ``mapping`` binds joined (``_joined_marks``), each written once, on the sample title
    with every optional part (``sample_titles``), found with a mark in each bound field
    (``_PLACED``), and how long its value gets with each of them at its limit
    (``limits``: {bound field: the format.yaml limit its value is held to}): the sample
    rendered again with those values, the column's longest value read as the layout
    reads it; for a fixed-width layout, whose reading cuts a value at the column's
    width, the template's own text around the marks plus the limits. A column joining a
    field without a limit is left out (nothing bounds it), and so is a renderer whose
    marked sample does not render."""
    exporter, title, doc, marked, marks = _joined_sample(mapping, fmt)
    found: list[Joined] = []
    for renderer in exporter.renderers:
        spec = renderer.spec
        if spec.layout is None:
            continue
        layout = spec.load_layout()
        named = replace(doc, file_name=renderer.file_name(doc))
        text = _rendered(renderer, named, marked)
        if text is None:
            continue
        # (record, column) -> (the fields, the template's own text's length)
        columns: dict[tuple[int, int], tuple[RecordType, Column, tuple[str, ...], int]] = {}
        lines = text.split("\n")
        for text_line in lines[1:] if layout.header else lines:
            rec, values = record_values(layout, text_line.rstrip("\r"))
            if rec is None:
                continue
            for col, value in zip(rec.columns, values, strict=False):
                joined = _joined_marks(marks, value.strip())
                names = tuple(marks[mark] for mark in joined)
                if joined and all(name in limits for name in names):
                    own = len(value.strip()) - sum(len(mark) for mark in joined)
                    columns.setdefault((layout.records.index(rec), col.index),
                                       (rec, col, names, own))
        if not columns:
            continue
        full = _at_limits(title, [names for *_, names, _own in columns.values()], limits)
        longest: dict[tuple[int, int], int] = {}
        again = _rendered(renderer, named, full) if layout.kind == "csv" else None
        for text_line in (again or "").split("\n"):
            rec, values = record_values(layout, text_line.rstrip("\r"))
            if rec is None:
                continue
            for col, value in zip(rec.columns, values, strict=False):
                key = (layout.records.index(rec), col.index)
                if key in columns:
                    longest[key] = max(longest.get(key, 0), len(value.strip()))
        for key, (rec, col, names, own) in columns.items():
            reach = longest.get(key, own + sum(limits[name] for name in names))
            found.append(Joined(spec, rec, col, names, reach))
    return found


class JoinedElement(NamedTuple):
    """An element (or attribute) of an XML file checked by its bundle's own XSD that a
    template fills with several bound fields joined (Corail's RaisonSociale: name, name
    complement, first name), whose XSD maxLength their limits overflow:
    ``joined_elements``."""

    spec: FileSpec
    place: str  # as an XSD error's is said: /…/RaisonSociale/@V
    declared: str  # the XSD's declaration of the element: 'corail.xsd:280', or the name
    fields: tuple[str, ...]  # the bound fields (payer.name), in the order written
    own: int  # the template's own text's length between them
    reach: int  # the value's length with each field at its limit
    most: int  # the XSD's maxLength there


_MAX_LENGTH = re.compile(r"\[facet 'maxLength'\].*?length of '(\d+)'.*?maximum length of "
                         r"'(\d+)'")


def joined_elements(mapping: Mapping, fmt: Format, limits: dict[str, int]
                    ) -> list[JoinedElement]:
    """``joined_columns`` for the XML files a bundle's own XSD checks (``xsd_label``
    'bundle': a finance package's import, not the PES, whose XSDs pesgen ships): each
    element or attribute holding one or more of the fields ``mapping`` binds (several
    joined, ``_joined_marks``; one alone, walk67's label in an attribute of 30 under a
    format.yaml limit of 60), each written once, on the sample title with every
    optional part, all of them limited (``limits``); the sample rendered again with each
    at its limit and validated by the XSD: those whose maxLength it then refuses, with
    the length reached and the maximum, as the XSD says them. Nothing of a file whose
    marked or filled sample does not render or parse."""
    exporter, title, doc, marked, marks = _joined_sample(mapping, fmt)
    found: list[JoinedElement] = []
    for renderer in exporter.renderers:
        spec = renderer.spec
        if spec.xsd is None or spec.layout is not None or xsd_label(spec.xsd) != "bundle":
            continue
        named = replace(doc, file_name=renderer.file_name(doc))
        text = _rendered(renderer, named, marked)
        root = None if text is None else _parsed(text, exporter.encoding)
        if root is None:
            continue
        tree = root.getroottree()
        # (XPath without positions, attribute) -> (element's name, fields, own text)
        places: dict[tuple[str, str | None], tuple[str, tuple[str, ...], int]] = {}
        for el, attribute, value in _values(root):
            joined = _joined_marks(marks, value, least=1)
            names = tuple(marks[mark] for mark in joined)
            if joined and value is not None and all(name in limits for name in names):
                places.setdefault((unpositioned(tree.getpath(el)), attribute), (
                    etree.QName(el).localname, names,
                    len(value) - sum(len(mark) for mark in joined)))
        if not places:
            continue
        full = _at_limits(title, [names for _tag, names, _own in places.values()], limits)
        again = _rendered(renderer, named, full)
        checked = None if again is None else _parsed(again, exporter.encoding)
        if checked is None:
            continue
        schema = load_xsd(spec.xsd)
        schema.validate(checked.getroottree())
        said: set[tuple[str, str | None]] = set()
        for error in schema.error_log:
            attribute, words = _xsd_said(error.message)
            key = (unpositioned(error.path or ""), attribute)
            m = _MAX_LENGTH.search(words)
            if key not in places or key in said or m is None:
                continue
            said.add(key)
            tag, names, own = places[key]
            found.append(JoinedElement(spec, _where(error.path or "", attribute),
                                       _declared(spec.xsd, tag), names, own,
                                       int(m[1]), int(m[2])))
    return found


def _declared(xsd: Path, tag: str) -> str:
    """Where ``xsd`` declares the element ``tag``: 'corail.xsd:280' (the file as the
    bundle holds it) when it declares one of that name; else its name alone."""
    from .validate import _xsd_document

    root = _xsd_document(xsd)
    lines = [] if root is None else [
        el.sourceline for el in root.iter("{http://www.w3.org/2001/XMLSchema}element")
        if el.get("name") == tag]
    return f"{xsd}:{lines[0]}" if len(lines) == 1 else str(xsd)


def column_where(spec: FileSpec, rec: RecordType, col: Column) -> str:
    """A layout's column as its file declares it: 'acme.layout.yaml:27:
    records[1].columns[3]'."""
    layout = spec.load_layout()
    keys: list[str | int] = ["records", layout.records.index(rec), "columns", col.index - 1]
    assert spec.layout is not None
    data, _, _ = load_yaml_file(spec.layout, "layout")
    return f"{spec.layout_shown or spec.layout}:{line_of(data, keys)}: {_dotted(keys)}"


# what each split policy splits, as the model holds it: (the field it splits, the field
# it fills) -> (where in a title: the debtor or the joint debtor, its address or not;
# the kept part's model field, the filled part's)
_SPLIT_FIELDS = {
    ("payer.name", "payer.complement_name"): ("debtor", False, "name", "complement_name"),
    ("joint_payer.name", "joint_payer.complement_name"):
        ("joint_debtor", False, "name", "complement_name"),
    ("address.street", "address.complement"): ("debtor", True, "street", "complement"),
    ("joint_payer.street", "joint_payer.complement"): ("joint_debtor", True, "street",
                                                       "complement"),
}


def split_misfits(mapping: Mapping, fmt: Format, title: Title,
                  rendered: list[tuple[FileRenderer, Document]],
                  encoding: str = "utf-8") -> list[Problem]:
    """A split policy of the mapping (name_overflow, street_overflow: split) whose two
    parts a template writes joined again into one column of a layout, or one XML value,
    that refuses the shortest value the policy can split (one character over the
    format's limit): every value it splits would be refused there, by invoice, naming
    no binding (e.magnus has no ComplNom column: a name complement follows the name in
    Designation1, 50 characters, the limit the name is split at). Found by rendering
    ``title`` with the split's kept part one character short of the limit and its
    filled part one character, in each file with a layout or an XSD (``rendered``: its
    renderer and document), and checking the value holding both parts, as the layout
    or the XSD does; refused by the policy's line. A format that writes the parts
    apart, or joined where they fit, is not concerned."""
    fields = bound(mapping)
    problems: list[Problem] = []
    for policy, limited, splits, part in SPLITS:
        limit = fmt.limit(limited).max
        if getattr(mapping.policies, policy) != "split" or limit is None or limit < 2:
            continue
        for source, filled in splits:
            holder, in_address, kept_field, filled_field = _SPLIT_FIELDS[(source, filled)]
            debtor = getattr(title, holder)
            if source not in fields or debtor is None:
                continue
            kept, rest = "Q" * (limit - 1), "Z"
            if in_address:
                debtor = replace(debtor, address=replace(
                    debtor.address, **{kept_field: kept, filled_field: rest}))
            else:
                debtor = replace(debtor, **{kept_field: kept, filled_field: rest})
            split = replace(title, **{holder: debtor})
            found = _refusal(split, _joined(kept, rest), rendered, encoding)
            if found is None:
                continue
            file_name, place, said = found
            problems.append(Problem(
                "mapping.policy-fit", f"policies.{policy}: split puts {part.format(limit=limit)} "
                f"into {filled}, which format {fmt.name} writes joined again to {source} in "
                f"{file_name}, {place}: the shortest value the policy splits, joined again "
                f"there, {said}; every value it splits would be refused there, by invoice, "
                f"naming no binding. Set {policy}: refuse (such a value "
                "is then refused by invoice, naming its binding)",
                mapping=mapping.where("policies", policy)))
    return problems


def number_refusal(title: Title, rendered: list[tuple[FileRenderer, Document]],
                   encoding: str) -> tuple[str, str, str] | None:
    """Where the format refuses an invoice number as long as pesgen takes
    (INVOICE_NUMBER_MAX): (file name, where, what is said), found on ``title`` as
    ``split_misfits`` finds a split's refusal; None when it takes one (or writes none).
    Only the export's invoice numbers can break it: check-mapping says it, a notice."""
    number = LONG_INVOICE_NUMBER
    return _refusal(replace(title, invoice_number=number),
                    lambda v: v is not None and number in v, rendered, encoding)


# the invoice number number_refusal tries: made up, as long as pesgen takes
LONG_INVOICE_NUMBER = ("FA-2026-" + "0" * INVOICE_NUMBER_MAX)[:INVOICE_NUMBER_MAX]


def _split_on(mapping: Mapping, policy: str) -> Mapping:
    """``mapping`` with its split ``policy`` (name_overflow, street_overflow) at split."""
    changes: dict[str, Any] = {policy: "split"}
    return replace(mapping, policies=replace(mapping.policies, **changes))


def _joined(kept: str, rest: str) -> Callable[[str | None], bool]:
    """Whether a value holds a split's two parts, ``kept`` and ``rest``, joined again."""
    def joined(value: str | None) -> bool:
        return value is not None and kept in value and rest in value.replace(kept, "")
    return joined


def _refusal(title: Title, joined: Callable[[str | None], bool],
             rendered: list[tuple[FileRenderer, Document]], encoding: str
             ) -> tuple[str, str, str] | None:
    """(file name, where, what is said) of the first refusal of a value ``joined`` says
    is the one looked at, in the files ``rendered`` on ``title``: by a layout's column
    rules, or by the file's XSD at that element or attribute; None when none refuses."""
    for renderer, doc in rendered:
        spec = renderer.spec
        if spec.layout is None and spec.xsd is None:
            continue
        text = _rendered(renderer, doc, title)
        if text is None:
            continue
        if spec.layout is not None:
            layout = spec.load_layout()
            lines = text.split("\n")
            for text_line in lines[1:] if layout.header else lines:
                for col, value in line_values(layout, text_line.rstrip("\r")):
                    if joined(value):
                        for rule, message in check_value(col, value):
                            return (doc.file_name, f"{col.label} of layout {layout.name}",
                                    f"{message} ({rule})")
            continue
        assert spec.xsd is not None
        root = _parsed(text, encoding)
        if root is None:
            continue
        tree = root.getroottree()
        places = {(tree.getpath(el), name) for el, name, value in _values(root)
                  if joined(value)}
        schema = load_xsd(spec.xsd)
        schema.validate(tree)
        for error in schema.error_log:
            attribute, words = _xsd_said(error.message)
            if (error.path, attribute) in places:
                return (doc.file_name, _where(error.path, attribute),
                        f"is refused by {spec.xsd.name} (xsd.{xsd_label(spec.xsd)}: "
                        f"{words.strip().rstrip('.')})")
    return None


def check_coverage(mapping: Mapping, fmt: Format, warn: Callable[[Problem], None],
                   refusal: str, sample: SampleRendering | None = None
                   ) -> tuple[SampleRendering, Coverage]:
    """Render ``fmt``'s templates on the sample titles (``check_templates``; ``sample``
    when rendered already) and compare what they read with what ``mapping`` binds
    (``coverage.check``): ``warn`` is given each warning (a bound field no template
    writes, mapping.unwritten; one declared not carried that a template reads), then a
    value a split policy fills that no template writes refuses the mapping
    (MappingError, ``refusal`` its message)."""
    if sample is None:
        sample = check_templates(mapping, fmt)
    if sample.misfits:
        raise MappingError(f"{mapping.path}: a text of the mapping (an option, a code, its "
                           f"own texts) or a split policy does not fit where format "
                           f"{fmt.name} writes it",
                           list(sample.misfits))
    found = coverage(mapping, fmt, sample.reads)
    for problem in found.warnings:
        warn(problem)
    if found.refused:
        # a binding left out that a template writes (mapping.unbound) is the mapping's
        # own fault, as the schema's refusal of a missing binding is
        unbound = all(p.rule == "mapping.unbound" for p in found.refused)
        raise MappingError(f"{mapping.path}: invalid mapping" if unbound else refusal,
                           found.refused)
    return sample, found


def _holders(titles: list[Title], docs: list[Document]) -> dict[int, set[str]]:
    """{id of a model object of the samples: where a template finds it (t.debtor,
    t.lines[i], doc.bordereau…)}; the sample titles hold no object in two places."""
    found: dict[int, set[str]] = {}

    def add(obj: object, where: str) -> None:
        if obj is not None:
            found.setdefault(id(obj), set()).add(where)

    for t in titles:
        add(t, "t")
        for debtor, where in ((t.debtor, "t.debtor"), (t.joint_debtor, "t.joint_debtor")):
            if debtor is not None:
                add(debtor, where)
                add(debtor.address, f"{where}.address")
        if t.mandate is not None:
            add(t.mandate, "t.mandate")
            add(t.mandate.account, "t.mandate.account")
        for line in t.lines:
            add(line, "t.lines[i]")
    for doc in docs:
        add(doc, "doc")
        add(doc.collectivity, "doc.collectivity")
        add(doc.emitter, "doc.emitter")
        add(doc.bordereau, "doc.bordereau")
    return found
