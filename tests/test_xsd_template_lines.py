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
