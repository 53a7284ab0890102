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
