"""A template error names the template file and the line of the faulty token, also in a
``{{ … }}`` or ``{% … %}`` spanning several lines, whether Jinja finds it compiling or
rendering: through the commands a technician runs (check-format, preview, export) and
through the library. Where the line cannot be told, the message says which tag it is.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pesgen import model
from pesgen.cli import app
from pesgen.errors import ExitCode, MappingError, TemplateError
from pesgen.export import export
from pesgen.formats import find_format
from pesgen.mapping import load_mapping
from pesgen.render import FileRenderer
from pesgen.sample import sample_titles

from .conftest import EXAMPLES, MAPPINGS, ROOT, RUN_DATE

# a bundle of --formats-dir is named by that folder as given (each test runs from its
# tmp_path, giving "fmts"), so that the technician opens the template from where they
# stand; a shipped bundle's by its name (the golden tests pin those)
TEMPLATE = "fmts/pes-ormc/pes-aller.xml.j2"
NOM = '<Nom V="{{ d.name }}"/>'


def _bundle(tmp_path: Path, old: str, new: str, **extra: str) -> tuple[Path, Path]:
    """A copy of pes-ormc (same name: --formats-dir comes first) with ``old`` made
    ``new`` in its template, and ``extra`` files added to the bundle."""
    shutil.copytree(ROOT / "templates" / "pes-ormc", tmp_path / "fmts" / "pes-ormc")
    template = tmp_path / "fmts" / "pes-ormc" / "pes-aller.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    template.write_text(text.replace(old, new), encoding="utf-8")
    for name, content in extra.items():
        (tmp_path / "fmts" / "pes-ormc" / name).write_text(content, encoding="utf-8")
    return Path("fmts"), template  # as typed in tmp_path (_in_tmp_path)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """Each test runs from its tmp_path, where the bundle's folder is "fmts"."""
    monkeypatch.chdir(tmp_path)


def _line(path: Path, text: str) -> int:
    hits = [i for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if text in ln]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def _cli(command: str, fmts: Path, tmp_path: Path):
    if command == "check-format":
        args = ["check-format", "pes-ormc"]
    elif command == "preview":
        args = ["preview", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
                EXAMPLES / "school-export.json", "--limit", "1", "--date", RUN_DATE]
    else:
        args = ["export", "-m", MAPPINGS / "villeneuve-sur-loing.yaml", "-i",
                EXAMPLES / "school-export.json", "-o", tmp_path / "out", "--date", RUN_DATE,
                "--db", tmp_path / "state.sqlite3", "--create-store"]
    result = CliRunner().invoke(app, [str(a) for a in [*args, "--formats-dir", fmts]])
    assert isinstance(result.exception, SystemExit), (result.exception, result.output)
    return result


# (old, new, the text on the line named, what the message says after file:line)
CASES = {
    # Jinja refuses an unknown filter when it compiles, on the filter's line
    "unknown filter, compiling": (
        NOM, '<Nom V="{{ d.name\n     | upper\n     | no_such_filter }}"/>',
        "| no_such_filter", "syntax error: No filter named 'no_such_filter'."),
    # in an {% if %}, only when it is called, from a stub before any template line
    "unknown filter in an if, rendering": (
        NOM, '{% if d.name %}<Nom V="{{ d.name\n     | upper\n     | no_such_filter }}"/>'
        '{% endif %}', "| no_such_filter", "No filter named 'no_such_filter' found."),
    "unknown test in an if": (
        NOM, '{% if d.name\n     is string\n     and d.name is no_such_test %}' + NOM +
        '{% endif %}', "is no_such_test", "No test named 'no_such_test' found."),
    "undefined attribute on the third line": (
        NOM, '<Nom V="{{ d.name\n     ~ " "\n     ~ d.no_such_attr }}"/>',
        "d.no_such_attr", "'pesgen.model.Debtor object' has no attribute 'no_such_attr'"),
    "undefined variable on the third line": (
        NOM, '<Nom V="{{ d.name\n     ~ " "\n     ~ no_such_var }}"/>',
        "no_such_var", "'no_such_var' is undefined"),
    # Jinja's debug info names the last filter's line for a filtered expression
    "undefined attribute on the first line of a filtered expression": (
        NOM, '<Nom V="{{ d.no_such_attr\n     | upper\n     | trim }}"/>',
        "d.no_such_attr", "'pesgen.model.Debtor object' has no attribute 'no_such_attr'"),
    "undefined attribute in a statement": (
        NOM, '{% if d.name\n     and d.name\n     and d.no_such_attr %}' + NOM + '{% endif %}',
        "d.no_such_attr", "'pesgen.model.Debtor object' has no attribute 'no_such_attr'"),
    "unsafe attribute refused by the sandbox": (
        NOM, '<Nom V="{{ d.name\n     ~ " "\n     ~ d.__class__ }}"/>',
        "d.__class__", "access to attribute '__class__' of 'Debtor' object is unsafe."),
    "huge value refused by the sandbox": (
        NOM, '<Nom V="{{ d.name\n     ~ " "\n     ~ d.name.ljust(1000000000) }}"/>',
        "ljust(", "str.ljust: a result of about 1000000000 characters refused"),
    "a filter failing": (
        NOM, '<Nom V="{{ d.name\n     ~ " "\n     ~ d.name | zfill(1000000000) }}"/>',
        "zfill(", "width 1000000000 is not between 0 and 10000"),
}


@pytest.mark.parametrize("command", ["check-format", "preview", "export"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_cli_names_the_line_of_the_faulty_token(tmp_path, command, case):
    old, new, on_line, says = CASES[case]
    fmts, template = _bundle(tmp_path, old, new)
    line = _line(template, on_line)
    r = _cli(command, fmts, tmp_path)
    assert r.exit_code == ExitCode.TEMPLATE == 5, r.output
    assert r.stderr.startswith(f"error: template {TEMPLATE}:{line}: {says}"), r.stderr
    assert f"[template {TEMPLATE}:{line}]" in r.stderr
    assert "in the expression on lines" not in r.stderr
    if command == "export":
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(("name", "says"), [
    ("numligne", "'numligne' is undefined: a template reads doc, t (one title, in piece), "
     "its macros' arguments, its loops' variables and what it sets "
     "(docs/template-model.md)"),
    ("invoice.number", "'invoice' is undefined: a template never sees the export (invoice "
     "is a mapping expression's); it reads the model: doc, and t, one title, in piece "
     "(t.invoice_number, t.lines; docs/template-model.md)"),
    ("line.label", "'line' is undefined: a template never sees the export (line is a "
     "mapping expression's); it reads the model: doc, and t, one title, in piece "
     "(t.invoice_number, t.lines; docs/template-model.md)"),
    # an item a defined value lacks: said as Jinja says it, the names a template reads
    # are not what is missing
    ("t.lines[99]", "tuple object has no element 99"),
])
def test_an_undefined_name_says_what_a_template_sees(tmp_path, name, says):
    """A name nothing defines was said in Jinja's words alone ("'numligne' is
    undefined"); an author who also writes the mapping's expressions reads invoice and
    line there. The message says what a template reads, and that the export is not."""
    fmts, template = _bundle(tmp_path, NOM, '<Nom V="{{ ' + name + ' }}"/>')
    line = _line(template, '<Nom V="{{ ' + name)
    r = _cli("check-format", fmts, tmp_path)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert r.stderr.startswith(f"error: template {TEMPLATE}:{line}: {says} ("), r.stderr


@pytest.mark.parametrize("command", ["check-format", "preview", "export"])
def test_a_line_that_cannot_be_told_is_named_as_the_tag_it_is_in(tmp_path, command):
    """The same attribute on two lines of one expression: which one failed is not known,
    so the message names the line the expression starts on and says so."""
    fmts, template = _bundle(
        tmp_path, NOM, '<Nom V="{{ d.no_such_attr\n     ~ " "\n     ~ d.no_such_attr }}"/>')
    first = _line(template, '<Nom V="{{ d.no_such_attr')
    r = _cli(command, fmts, tmp_path)
    assert r.exit_code == ExitCode.TEMPLATE
    # (the fields a Debtor has, named since the message tells a typo its closest field)
    assert r.stderr.startswith(
        f"error: template {TEMPLATE}:{first}: 'pesgen.model.Debtor object' has no attribute "
        "'no_such_attr' (Debtor fields: address, birth_date, category, civility, "
        "complement_name, email, first_name, is_person, kind, legal_nature, name, "
        f"national_id, national_id_kind, ref) (in the expression on lines {first}-"
        f"{first + 2}; piece of invoice FA-2026-00101)"), r.stderr
    assert f"[template {TEMPLATE}:{first}]" in r.stderr


def test_a_statement_whose_line_cannot_be_told_says_so(tmp_path):
    fmts, template = _bundle(
        tmp_path, NOM, '{% if d.name\n     and 1 / 0\n     and 2 / 0 %}' + NOM + '{% endif %}')
    first = _line(template, "{% if d.name")
    with pytest.raises(TemplateError) as info:
        export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
               tmp_path / "out", date.fromisoformat(RUN_DATE), formats_dirs=[fmts])
    assert str(info.value) == (f"template {TEMPLATE}:{first}: division by zero (in the "
                               f"statement on lines {first}-{first + 2}; piece of invoice "
                               "FA-2026-00101)")
    (problem,) = info.value.problems
    assert problem.mapping == f"{TEMPLATE}:{first}"
    assert problem.message == (f"ZeroDivisionError: division by zero (in the statement on "
                               f"lines {first}-{first + 2})")


@pytest.mark.parametrize("expression, says", [
    ("t.total / 0", "division by zero"), ("(t.total - t.total) / 0", "division by zero (0 / 0)"),
    ("t.total % 0", "invalid decimal operation")])
def test_a_decimal_operation_failing_is_said_in_words(tmp_path, expression, says):
    """The decimal module's signal is a list of classes ([<class 'decimal.DivisionByZero'>]):
    the message says what it means, as onboarding.md shows it."""
    fmts, template = _bundle(tmp_path, NOM, '<Nom V="{{ d.name ~ (' + expression + ') }}"/>')
    line = _line(template, expression)
    with pytest.raises(TemplateError) as info:
        export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
               tmp_path / "out", date.fromisoformat(RUN_DATE), formats_dirs=[fmts])
    assert str(info.value) == (f"template {TEMPLATE}:{line}: {says} (piece of invoice "
                               "FA-2026-00101)")
    (problem,) = info.value.problems
    assert problem.message.endswith(f": {says}") and "<class" not in problem.message


# (old, new, the line the faulty tag opens on, Jinja's line past it, the hint)
LEFT_OPEN = {
    # '%' without '}': the tag runs into the next one; the parser stops a line later
    "a for missing its '}'": (
        NOM, '{% for x in [1] %\n' + NOM + '{% endfor %}', "{% for x in [1] %", 1,
        "the tag opened on line {0} is not closed: no '%}}' before the tag on line {1}"),
    "an if missing its '%}', plain text after it": (
        NOM, '{% if d.name\n<Nom/>\n{% endif %}' + NOM, "{% if d.name", 1,
        "the tag opened on line {0} is not closed: no '%}}' before the tag on line {2}"),
    "a tag running to the end of the template": (
        "</n:PES_Aller>\n{% endmacro %}", "</n:PES_Aller>\n{% endmacro  \n   %\n", "{% endmacro  ",
        1, "the tag opened on line {0} is not closed: no '%}}' before the end of the template"),
    # a tag spanning lines with a slip inside it: it is closed, Jinja's line is right
    "a slip inside a closed tag": (
        NOM, '{% set x = [1,\n   2 3] %}' + NOM, "{% set x = [1,", 1, ""),
    # Jinja's line is the tag's own: nothing to add
    "a '}' missing on the tag's own line": (NOM, '<Nom V="{{ d.name }"/>', '{{ d.name }"', 0, ""),
}


@pytest.mark.parametrize("case", list(LEFT_OPEN))
def test_a_tag_left_open_names_the_line_it_opened_on(tmp_path, case):
    """A tag left open swallows what follows: Jinja names where the parser gave up,
    past the slip; the message adds the line the tag opened on, when the template shows
    the tag is not closed (another tag's '{{' or '{%' inside it, or the end of the
    template)."""
    old, new, opens, after, hint = LEFT_OPEN[case]
    fmts, template = _bundle(tmp_path, old, new)
    first = _line(template, opens)
    r = _cli("check-format", fmts, tmp_path)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    head = f"error: template {TEMPLATE}:{first + after}: syntax error: "
    assert r.stderr.startswith(head), r.stderr
    said = r.stderr.splitlines()[0]
    if hint:
        assert said.endswith(f" ({hint.format(first, first + 1, first + 2)})"), said
        assert f"{hint.format(first, first + 1, first + 2)}) [template " in r.stderr
    else:
        assert "is not closed" not in r.stderr


IMPORTED = ('{% macro nom(d) -%}\n<Nom V="{{ d.name\n     ~ " "\n     ~ d.no_such_attr }}"/>\n'
            '{%- endmacro %}\n')


@pytest.mark.parametrize("imported, line, says", [
    (IMPORTED, 4, "'pesgen.model.Debtor object' has no attribute 'no_such_attr'"),
    (IMPORTED.replace("d.no_such_attr", "d.name | no_such_filter"), 4,
     "syntax error: No filter named 'no_such_filter'."),
])
def test_an_error_in_an_imported_template_names_that_template(tmp_path, imported, line, says):
    fmts, _ = _bundle(tmp_path, NOM, '{% import "nom.xml.j2" as lib %}{{ lib.nom(d) }}',
                      **{"nom.xml.j2": imported})
    with pytest.raises(TemplateError) as info:
        export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
               tmp_path / "out", date.fromisoformat(RUN_DATE), formats_dirs=[fmts])
    assert str(info.value).startswith(f"template fmts/pes-ormc/nom.xml.j2:{line}: {says}")
    assert [p.mapping for p in info.value.problems] == [f"fmts/pes-ormc/nom.xml.j2:{line}"]


USES = '{% macro nom(n) -%}\n<Nom V="{{ n.upper() }}"/>\n{%- endmacro %}\n'


@pytest.mark.parametrize("call, given", [
    # the typo is in the argument, at the call: both lines are named
    ('{% import "nom.xml.j2" as lib %}{{ lib.nom(d.no_such_attr) }}', True),
    # a call over several lines: the argument's line
    ('{% import "nom.xml.j2" as lib %}{{ lib.nom(\n     d.no_such_attr\n     ) }}', True),
    # made by a {% set %} before the call: no line of the call reads it, none is claimed
    ('{% import "nom.xml.j2" as lib %}{% set x = d.no_such_attr %}\n{{ lib.nom(x) }}',
     False),
])
def test_a_macro_argument_read_wrong_names_the_call_too(tmp_path, call, given):
    """A typo in a macro's argument at the call site was named only by the line inside
    the macro where the argument is used (corail persona finding 5): the call's line,
    where the StrictUndefined was made, is named too when its tokens read the missing
    attribute; when it cannot be told (a {% set %} made it), nothing more is said."""
    fmts, template = _bundle(tmp_path, NOM, call, **{"nom.xml.j2": USES})
    with pytest.raises(TemplateError) as info:
        export(MAPPINGS / "villeneuve-sur-loing.yaml", EXAMPLES / "school-export.json",
               tmp_path / "out", date.fromisoformat(RUN_DATE), formats_dirs=[fmts])
    said = str(info.value)
    assert said.startswith("template fmts/pes-ormc/nom.xml.j2:2: 'pesgen.model.Debtor object' "
                           "has no attribute 'no_such_attr'"), said
    assert [p.mapping for p in info.value.problems] == ["fmts/pes-ormc/nom.xml.j2:2"]
    if given:
        line = _line(template, "d.no_such_attr")
        note = f"the value is given as a macro's argument at {TEMPLATE}:{line}"
        assert f"({note}; piece of invoice FA-2026-00101)" in said, said
        assert f"({note})" in info.value.problems[0].message
    else:
        assert "macro's argument" not in said


def test_the_corail_joint_debtor_typo_names_the_call_line(tmp_path):
    """The case of the finding: `address(t.joint_debtor.adress, …)` on line 71 of the
    Corail template, used on line 40 inside the macro: check-mapping names both."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "cosoluce-corail", fmts / "cosoluce-corail")
    template = fmts / "cosoluce-corail" / "corail.xml.j2"
    text = template.read_text(encoding="iso-8859-1")
    call = '{{ address(t.joint_debtor.address, "TiersSolidaire") }}'
    assert text.splitlines()[70] == call
    template.write_text(text.replace(call, call.replace(".address", ".adress")),
                        encoding="iso-8859-1")
    r = CliRunner().invoke(app, ["check-mapping", str(MAPPINGS / "villeneuve-sur-loing-corail"
                                                      ".yaml"), "--formats-dir", "fmts"])
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert r.stderr.startswith("error: template fmts/cosoluce-corail/corail.xml.j2:40: "), \
        r.stderr
    assert ("(the value is given as a macro's argument at fmts/cosoluce-corail/corail.xml.j2:71; "
            "piece of invoice SAMPLE-1)") in r.stderr


def test_a_shipped_bundle_is_named_by_its_name_another_by_its_folder_as_given(tmp_path):
    """Format.shown, what a template's place starts with: the shipped bundle's name (the
    golden files and docs pin its messages), a --formats-dir bundle's folder as given,
    and a recorded bundle's name (regenerate rebuilds it from a folder of its own)."""
    from pesgen.formats import find_format, load_format

    assert find_format("pes-ormc").shown == "pes-ormc"
    fmts, _ = _bundle(tmp_path, NOM, NOM)
    assert find_format("pes-ormc", [fmts]).shown == "fmts/pes-ormc"
    assert find_format("pes-ormc", [tmp_path / "fmts"]).shown == f"{tmp_path}/fmts/pes-ormc"
    assert load_format(fmts / "pes-ormc", recorded=True).shown == "pes-ormc"


def test_a_recorded_bundle_names_its_templates_and_layouts_by_the_format_name(tmp_path):
    """A bundle as a run recorded it, written out to a folder of its own outside the
    shipped templates (regenerate's temporary one, which means nothing to the user):
    each file's template and layout is named by the format's name followed by the file,
    as Format.shown names the bundle, also in a refusal of its layout; the same folder
    loaded as a --formats-dir bundle is named by the folder as given."""
    from pesgen.formats import load_format

    shutil.copytree(ROOT / "templates" / "bl-emagnus", tmp_path / "kept" / "bl-emagnus")
    folder = Path("kept") / "bl-emagnus"
    files = ("wtamc001", "wtamc001as", "wtamc001tsol")
    assert [(f.template_shown, f.layout_shown)
            for f in load_format(folder, recorded=True).files] == [
        (f"bl-emagnus/{name}.txt.j2", f"bl-emagnus/{name}.layout.yaml") for name in files]
    assert [(f.template_shown, f.layout_shown) for f in load_format(folder).files] == [
        (f"kept/bl-emagnus/{name}.txt.j2", f"kept/bl-emagnus/{name}.layout.yaml")
        for name in files]
    layout = folder / "wtamc001.layout.yaml"
    layout.write_text(layout.read_text(encoding="utf-8") + "columns: [\n", encoding="utf-8")
    with pytest.raises(MappingError) as raised:
        load_format(folder, recorded=True)
    assert str(raised.value).startswith("bl-emagnus/wtamc001.layout.yaml:"), raised.value
    assert "YAML syntax error" in str(raised.value), raised.value


def _piece_renderer(fmts: Path | None = None) -> FileRenderer:
    fmt = find_format("pes-ormc", [fmts] if fmts else None)
    return FileRenderer(fmt, fmt.files[0])


def _piece_of_sample() -> tuple[model.Title, model.Document]:
    mapping = load_mapping(MAPPINGS / "villeneuve-sur-loing.yaml")
    title = sample_titles(mapping, find_format("pes-ormc"))[0]
    title = model.evolve(title, number=1, cle1="1", cle2="A",
                         debt_number=title.debt_number or "101")
    day = date.fromisoformat(RUN_DATE)
    doc = model.Document(
        collectivity=mapping.collectivity, emitter=model.Emitter("PESGEN", "pesgen"),
        file_name="f.xml", structure_date=day,
        bordereau=model.Bordereau(day.year, 1, day, 1, title.total),
        options={"encoding": "UTF-8", "tiers_on": "first", "edition": None})
    return title, doc


def test_a_piece_is_rendered_by_its_macros_function_as_by_the_macro(tmp_path):
    """A piece(t, doc) taking nothing else is rendered by the macro's own function (no
    Jinja Macro call per title); one declaring more arguments through the Macro: the
    same text, and an error said alike."""
    title, doc = _piece_of_sample()
    shipped = _piece_renderer()
    assert shipped._piece_call is shipped._piece._func
    text = shipped.piece(title, doc)
    assert type(text) is str and text == str(shipped._piece(title, doc))
    assert '<IdPce V="1"/>' in text
    fmts, _ = _bundle(tmp_path, "{% macro piece(t, doc) -%}",
                      "{% macro piece(t, doc, extra=1) -%}")
    other = _piece_renderer(fmts)
    assert other._piece_call is other._piece
    assert other.piece(title, doc) == text
    said = []
    for i, declared in enumerate(("{% macro piece(t, doc) -%}",
                                  "{% macro piece(t, doc, extra=1) -%}")):
        _, template = _bundle(tmp_path / str(i), NOM, '<Nom V="{{ d.name ~ (t.total / 0) }}"/>')
        template = tmp_path / str(i) / template
        template.write_text(template.read_text(encoding="utf-8").replace(
            "{% macro piece(t, doc) -%}", declared), encoding="utf-8")
        renderer = _piece_renderer(tmp_path / str(i) / "fmts")
        assert (renderer._piece_call is renderer._piece) == bool(i)
        with pytest.raises(TemplateError) as info:
            renderer.piece(title, doc)
        said.append((str(info.value).split(": ", 1)[1], info.value.problems[0].message,
                     info.value.problems[0].mapping.rsplit("/", 1)[1]))
    assert said[0] == said[1]
    assert said[0][0] == f"division by zero (piece of invoice {title.invoice_number})"
