"""An export refusing a file for its XSD (pesgen's, a bundle's, the DGFiP's) names the
template line that wrote the refused element, as a layout's problem does: the part of
the file holding that line (head, tail, the invoice's piece) rendered again with marks,
on the error path only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pesgen.errors import ExitCode
from pesgen.export import Exporter
from pesgen.formats import find_format

from .conftest import EXAMPLES, MAPPINGS, RUN_DATE, bundle_edited, run_cli


def _dry_run(tmp_path: Path, mapping: str, fmts: Path, *more: str | Path):
    return run_cli("export", "-m", MAPPINGS / mapping, "-i", EXAMPLES / "school-export.json",
                   "-o", tmp_path / "out", "--date", RUN_DATE, "--formats-dir", fmts,
                   "--dry-run", "--db", f"sqlite:///{tmp_path / 'store.sqlite3'}",
                   "--create-store", *more)


CASES = [
    # a value the template writes itself, in a piece (the bundle's own XSD)
    ("cosoluce-corail", "corail.xml.j2", "villeneuve-sur-loing-corail.yaml",
     '<TypePiecePES V="01"/>', '<TypePiecePES V="1"/>',
     "/InfoPiece/TypePiecePES invoice FA-2026-00101: Element 'TypePiecePES', attribute "
     "'V': [facet 'enumeration'] The value '1' is not an element of the set {'01'}."),
    # two elements out of order in a piece (pesgen's PES XSD)
    ("pes-ormc", "pes-aller.xml.j2", "villeneuve-sur-loing.yaml",
     '<IdPce V="{{ t.number }}"/><TypPce V="15"/>', '<TypPce V="15"/><IdPce V="{{ t.number }}"/>',
     "/Piece[1]/BlocPiece/TypPce invoice FA-2026-00101: Element 'TypPce': This element is "
     "not expected. Expected is ( IdPce )."),
    # an element misspelt where a bound value goes, written through a {% set %} block
    ("pes-ormc", "pes-aller.xml.j2", "villeneuve-sur-loing.yaml",
     '<Nom V="{{ d.name }}"/>', '<Name V="{{ d.name }}"/>',
     "/Piece[1]/LigneDePiece[1]/Tiers/InfoTiers/Name invoice FA-2026-00101: Element 'Name': "
     "This element is not expected. Expected is ( Nom )."),
    # a bad value in the head, an element the tail writes
    ("pes-ormc", "pes-aller.xml.j2", "villeneuve-sur-loing.yaml",
     '<TypBord V="06"/>', '<TypBord V="6"/>',
     "/BlocBordereau/TypBord: Element 'TypBord', attribute 'V': [facet 'enumeration'] The "
     "value '6' is not an element of the set {'06'}."),
    ("pes-ormc", "pes-aller.xml.j2", "villeneuve-sur-loing.yaml",
     "</Bordereau>\n</PES_RecetteAller>", '<Foo V="1"/></Bordereau>\n</PES_RecetteAller>',
     "/Bordereau/Foo: Element 'Foo': This element is not expected. Expected is ( Piece )."),
]


@pytest.mark.parametrize("fmt, template, mapping, old, new, words", CASES)
def test_an_export_refused_by_its_xsd_names_the_template_line(
        tmp_path, fmt, template, mapping, old, new, words):
    """The export said the file's line and XPath of an XSD's refusal, never which line
    of the template wrote it (a layout's problem names it): a technician writing a
    template looked for it by hand. Each refusal now names it, in text and JSON."""
    fmts, line = bundle_edited(tmp_path, fmt, template, old, new)
    r = _dry_run(tmp_path, mapping, fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.stderr
    said = [ln for ln in r.stderr.splitlines() if words in ln]
    assert said, r.stderr
    where = f"[template {fmts}/{fmt}/{template}:{line}] (rule xsd."
    assert all(where in ln for ln in said), said
    as_json = _dry_run(tmp_path, mapping, fmts, "--format", "json")
    assert as_json.exit_code == ExitCode.OUTPUT
    found = [p for p in json.loads(as_json.stdout)["problems"]
             if words.split(": ", 1)[1] in p["message"]]
    assert found and all(
        (p["file"], p["line"], p["source"]) == (f"{fmts}/{fmt}/{template}", line, "template")
        for p in found), found


def test_the_dgfip_xsd_s_refusal_names_the_template_line(tmp_path, official_xsd):
    """--official-xsd: the DGFiP package's refusals (xsd.dgfip) name it too."""
    fmt, template, mapping, old, new, _ = CASES[1]
    fmts, line = bundle_edited(tmp_path, fmt, template, old, new)
    r = _dry_run(tmp_path, mapping, fmts, "--official-xsd", official_xsd)
    assert r.exit_code == ExitCode.OUTPUT, r.stderr
    said = [ln for ln in r.stderr.splitlines() if ln.endswith("(rule xsd.dgfip)")]
    assert said and all(f"{template}:{line}] (rule xsd.dgfip)" in ln for ln in said), said


def test_a_piece_rendered_otherwise_again_names_no_template_line(tmp_path, monkeypatch):
    """The template line is read from the piece rendered again with marks: when that
    render, its marks taken out, is not the file's piece (a title built otherwise: the
    input changed since), nothing is named rather than another title's line."""
    fmt, template, mapping, old, new, words = CASES[1]
    fmts, line = bundle_edited(tmp_path, fmt, template, old, new)
    again = Exporter._titles_again

    def shifted(self, input_path, wanted):
        titles = again(self, input_path, wanted)
        # each invoice's title given its IdPce + 1: rendered, another piece
        return {k: self.numbered(t, t.number + 1) for k, t in titles.items()}

    monkeypatch.setattr(Exporter, "_titles_again", shifted)
    r = _dry_run(tmp_path, mapping, fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.stderr
    said = [ln for ln in r.stderr.splitlines() if words in ln]
    assert said and not any("[template " in ln for ln in said), said


def test_an_input_unreadable_again_leaves_the_refusal_as_it_is(tmp_path, monkeypatch):
    """The refused pieces' titles are built again from the input: when it can no
    longer be read (moved, a disk error), the refusal is said as it is, without a
    template line, not replaced by that error."""
    import pesgen.export

    fmt, template, mapping, old, new, words = CASES[1]
    fmts, _ = bundle_edited(tmp_path, fmt, template, old, new)
    reads = []
    first = pesgen.export.read_invoices

    def read_once(path, spec):
        reads.append(path)
        if len(reads) > 1:
            raise OSError(5, "Input/output error", str(path))
        return first(path, spec)

    monkeypatch.setattr(pesgen.export, "read_invoices", read_once)
    r = _dry_run(tmp_path, mapping, fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.output
    said = [ln for ln in r.stderr.splitlines() if words in ln]
    assert len(reads) == 2 and said and not any("[template " in ln for ln in said), said


def test_a_template_line_s_span_is_found_once_per_renderer(monkeypatch):
    """A refused export names the same few template lines for up to a thousand
    problems: each span was found again by lexing the template (20 ms a problem, 20 s
    for a thousand). A renderer finds each once."""
    import pesgen.render
    from pesgen.render import FileRenderer

    fmt = find_format("pes-ormc")
    renderer = FileRenderer(fmt, fmt.files[0])
    calls = []
    span = pesgen.render.expression_span

    def counted(env, name, line):
        calls.append((name, line))
        return span(env, name, line)

    monkeypatch.setattr(pesgen.render, "expression_span", counted)
    template = fmt.files[0].template
    assert [renderer.expression_lines(template, 58) for _ in range(3)] == [(58, 58)] * 3
    assert renderer.expression_lines(template, 87) == (87, 87)
    assert calls == [(template, 58), (template, 87)]


# A PES bordereau rule's problem in the file (pesgen.validate: the rules the XSD cannot
# express), of what the template writes itself: (old, new, the rule, words of its message)
PES_CASES = [
    # named at its InfoPrelevementSEPA's line: the template line is MtPrel's
    ('<MtPrel V="{{ ln.amount | amount }}"/>', '<MtPrel V="1.00"/>', "pes.mt-prel",
     "invoice FA-2026-00101: MtPrel differs from MtHT on line 1 of piece 1"),
    # named at the element itself (its XPath)
    ('<Cle2 V="{{ t.cle2 }}"/>', '<Cle2 V="{{ \'B\' if t.cle2 == \'A\' else \'A\' }}"/>',
     "pes.cle2", "/BlocPiece/Cle2 invoice FA-2026-00101: Cle2 is A, Exer 2026"),
    # in the head: named at the Bordereau's line, the template line is DteAsp's
    ('{% if doc.bordereau.asap_date %}<DteAsp V="{{ doc.bordereau.asap_date | isodate }}"/>',
     '{% if doc.bordereau.asap_date or true %}<DteAsp V="2020-01-01"/>', "pes.asap-date",
     ": DteAsp 2020-01-01 is before DteBordEm 2026-11-23"),
]


@pytest.mark.parametrize("old, new, rule, words", PES_CASES)
def test_a_pes_rule_s_problem_names_the_template_line(tmp_path, old, new, rule, words):
    """A PES bordereau rule (pes.*, sepa.*) refusing what the template wrote (the
    title rules passed the invoice's values) named the file's line, the invoice and
    the rule, not the template line that wrote the element, where an XSD's refusal
    names it: a rule naming a block's line (the piece's, an InfoPrelevementSEPA's, the
    Bordereau's) names the line of the element it judges."""
    fmts, line = bundle_edited(tmp_path, "pes-ormc", "pes-aller.xml.j2", old, new)
    r = _dry_run(tmp_path, "villeneuve-sur-loing.yaml", fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.stderr
    said = [ln for ln in r.stderr.splitlines() if ln.endswith(f"(rule {rule})")]
    assert said and any(words in ln for ln in said), r.stderr
    where = f"[template {fmts}/pes-ormc/pes-aller.xml.j2:{line}] (rule {rule})"
    assert all(ln.endswith(where) for ln in said), said
    as_json = _dry_run(tmp_path, "villeneuve-sur-loing.yaml", fmts, "--format", "json")
    found = [p for p in json.loads(as_json.stdout)["problems"] if p["rule"] == rule]
    assert found and all(
        (p["file"], p["line"], p["source"])
        == (f"{fmts}/pes-ormc/pes-aller.xml.j2", line, "template") for p in found), found


def test_a_bordereau_count_names_no_template_line(tmp_path):
    """pes.nbr-pce compares the head's NbrPce with the pieces that follow: no one
    template line writes what it refuses, none is named (docs/rules.md says so), where
    the same file's pes.mt-prel names its line."""
    bundle_edited(tmp_path, "pes-ormc", "pes-aller.xml.j2",
                  '<NbrPce V="{{ doc.bordereau.count }}"/>',
                  '<NbrPce V="{{ doc.bordereau.count + 1 }}"/>')
    fmts, line = bundle_edited(tmp_path, "pes-ormc", "pes-aller.xml.j2", *PES_CASES[0][:2])
    r = _dry_run(tmp_path, "villeneuve-sur-loing.yaml", fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.stderr
    said = [ln for ln in r.stderr.splitlines() if ln.endswith("(rule pes.nbr-pce)")]
    assert len(said) == 1 and "[template " not in said[0], r.stderr
    assert f"pes-aller.xml.j2:{line}] (rule pes.mt-prel)" in r.stderr


# a piece's rule whose problem names the Piece's line, the two titles writing what it
# refuses the same (the example's invoices): (old, new, the rule, words of its message)
PIECE_CASES = [
    ('<IdPce V="{{ t.number }}"/>', '<IdPce V="1"/>', "pes.id-pce-unique",
     "invoice FA-2026-00102: IdPce 1 appears twice"),
    ('<NumDette V="{{ t.debt_number }}"/>', '<NumDette V="1"/>', "pes.num-dette-unique",
     "NumDette 1 (Per 1) appears twice"),
    # named at the line's InfoLignePiece
    ('<IdLigne V="{{ ln.number }}"/>', '<IdLigne V="1"/>', "pes.id-ligne-unique",
     "IdLigne 1 twice in piece 1"),
]


@pytest.mark.parametrize("old, new, rule, words", PIECE_CASES)
def test_a_piece_s_rule_names_the_template_line_of_what_it_judges(tmp_path, old, new, rule,
                                                                   words):
    """pes.id-pce-unique, pes.num-dette-unique (at the Piece) and pes.id-ligne-unique (at
    its InfoLignePiece) name the template line writing IdPce, NumDette, IdLigne, not the
    one writing the block that holds it (mut56: a rule left out of sample.JUDGED named
    the <Piece> or <InfoLignePiece> line of the template)."""
    fmts, line = bundle_edited(tmp_path, "pes-ormc", "pes-aller.xml.j2", old, new)
    r = _dry_run(tmp_path, "villeneuve-sur-loing.yaml", fmts)
    assert r.exit_code == ExitCode.OUTPUT, r.stderr
    said = [ln for ln in r.stderr.splitlines() if ln.endswith(f"(rule {rule})")]
    assert said and any(words in ln for ln in said), r.stderr
    where = f"[template {fmts}/pes-ormc/pes-aller.xml.j2:{line}] (rule {rule})"
    assert all(ln.endswith(where) for ln in said), said


# a PES file's lines as a template writes them (one element a line, as a bundle may)
PES_LINES = ['<Bordereau>', '<BlocBordereau>', '<TypBord V="04"/>', '<DteAsp V="2026-01-01"/>',
             '</BlocBordereau>', '<Piece>', '<BlocPiece>', '<IdPce V="1"/>', '<TypPce V="15"/>',
             '<NatPce V="02"/>', '<Edition V="01"/>', '<NumDette V="1"/>', '</BlocPiece>',
             '<LigneDePiece>', '<BlocLignePiece>', '<InfoLignePiece>', '<IdLigne V="1"/>',
             '</InfoLignePiece>', '<InfoPrelevementSEPA>', '<MtPrel V="1.00"/>',
             '</InfoPrelevementSEPA>', '</BlocLignePiece>', '</LigneDePiece>', '</Piece>',
             '<Piece>', '<BlocPiece>', '<IdPce V="2"/>', '<TypPce V="15"/>', '<NatPce V="01"/>']


@pytest.mark.parametrize("rule, at, judged", [
    # at the Piece: the elements it judges, each on its line
    ("pes.triplet", 5, [8, 9]), ("pes.edition", 5, [10]), ("pes.id-pce-unique", 5, [7]),
    ("pes.num-dette-unique", 5, [11]), ("pes.asap-date", 0, [3]),
    ("pes.id-ligne-unique", 15, [16]), ("pes.mt-prel", 18, [19]),
    # pes.triplet at the bordereau's TypBord: no TypPce before the next Piece, its own
    # line (not the first piece's TypPce and NatPce)
    ("pes.triplet", 2, [2]),
    # a rule naming its own element
    ("pes.cle2", 11, [11]),
])
def test_judged_lines_are_the_elements_a_block_s_rule_judges(rule, at, judged):
    """``sample.judged_lines``: the lines of the elements a PES rule naming a block's
    line judges, looked for in that block only (up to the next Piece or Bordereau), the
    block's own line when none is there (mut56: mutants looking past the next Piece,
    returning no line when none is found, or leaving a rule's elements out survived)."""
    from pesgen.errors import Problem
    from pesgen.sample import judged_lines

    problem = Problem(rule, "refused", record=f"pes.xml:{at + 1}")
    assert judged_lines(problem, at, PES_LINES) == judged


@pytest.mark.parametrize("rule", ["pes.nbr-pce", "pes.mt-bord-ht", "pes.max-pieces",
                                  "pes.sepa-same", "pes.single-debtor", "pes.listing"])
def test_a_rule_comparing_several_elements_is_named_at_no_template_line(rule):
    """The PES rules comparing a bordereau's count or sum with its pieces, its number of
    pieces, a piece's lines with each other, or the listing cut short are written by no
    one template line (docs/rules.md): their problem is given none, where a rule on one
    element (pes.mt-prel, pes.cle2, sepa.mandate) is (mut56: mutants taking any of them
    out of sample.UNWRITTEN survived)."""
    from pesgen.errors import Problem
    from pesgen.sample import _unplaced_schema

    assert not _unplaced_schema(Problem(rule, "refused", record="pes.xml:3"))
    for placed in ("pes.mt-prel", "pes.cle2", "sepa.mandate"):
        assert _unplaced_schema(Problem(placed, "refused", record="pes.xml:3"))
