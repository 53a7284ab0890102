"""What a bundle's template environment makes of a template's text: a block tag on a
line of its own writes nothing there (neither its indent nor its line break), the file's
last line break is kept; and a template is read once (edited while a run renders, the
run goes on with what it read). A file name's template (string_environment) and a
mapping expression escape nothing: a file's template escapes its values once, when it
writes them."""

from __future__ import annotations

import os

import jinja2
import pytest

from pesgen._jinja import expression_environment, string_environment, template_environment


def test_a_block_tag_on_its_own_line_writes_no_line(tmp_path):
    (tmp_path / "t.csv.j2").write_text(
        "A\n"
        "  {% for x in xs %}\n"
        "    {% if x %}\n"
        "{{ x }};\n"
        "    {% endif %}\n"
        "  {% endfor %}\n"
        "Z\n", encoding="utf-8")
    text = template_environment(tmp_path).get_template("t.csv.j2").render(xs=["1", "", "2"])
    assert text == "A\n1;\n2;\nZ\n"


def test_a_template_edited_after_it_was_read_renders_as_it_was_read(tmp_path):
    path = tmp_path / "t.csv.j2"
    path.write_text("old {{ x }}\n", encoding="utf-8")
    env = template_environment(tmp_path)
    assert env.get_template("t.csv.j2").render(x=1) == "old 1\n"
    path.write_text("new {{ x }}\n", encoding="utf-8")
    later = os.stat(path).st_mtime + 10
    os.utime(path, (later, later))  # seen as changed, whatever the clock's resolution
    assert env.get_template("t.csv.j2").render(x=2) == "old 2\n"


def test_a_file_name_template_escapes_nothing_and_refuses_none():
    env = string_environment()
    assert env.from_string("{{ a }}_{{ a | replace('-', '<') }}").render(a="a&b-1") == \
        "a&b-1_a&b<1"
    for source in ("{{ v }}", "{{ v | upper }}", "{{ 'x' ~ v }}"):
        with pytest.raises(jinja2.TemplateRuntimeError, match="writes None"):
            env.from_string(source).render(v=None)


def test_a_file_name_template_rebuilding_an_old_run_writes_none_as_it_did():
    env = string_environment(writes_none=True)
    assert env.from_string("{{ v }}_{{ v | upper }}_{{ v | zfill(5) }}").render(v=None) == \
        "None_NONE_0None"


@pytest.mark.parametrize("source, expected", [
    ("invoice.name | replace('-', '<')", "A&B<1"),
    ("invoice.name ~ ('<' | safe)", "A&B-1<"),  # a text beside a value marked safe
    ("[invoice.name, '<' | safe] | join('/')", "A&B-1/<"),
])
def test_a_mapping_expression_escapes_nothing(source, expected):
    """Its value is written by the file's template, which escapes it: escaped here too,
    '&' would be written '&amp;amp;'."""
    value = expression_environment().compile_expression(source)(invoice={"name": "A&B-1"})
    assert (value, type(value)) == (expected, str)


@pytest.mark.parametrize("as_before, expected", [(False, None), (True, "NONE|0None")])
def test_a_mapping_expression_s_filters_refuse_none_unless_rebuilding(as_before, expected):
    """A None given to a filter making text (a code table's get of a key it lacks) is
    refused; a mapping recorded before that refusal is rebuilt as it ran then."""
    run = expression_environment(as_before=as_before).compile_expression(
        "({'cb': 'carte'}.get(m) | upper) ~ '|' ~ ({'cb': 'carte'}.get(m) | zfill(5))")
    if expected is None:
        with pytest.raises(jinja2.TemplateRuntimeError, match="^filter upper writes None"):
            run(m="zz")
    else:
        assert run(m="zz") == expected


@pytest.mark.parametrize("name", ["amount", "cents", "isodate", "frdate", "compactdate"])
def test_pesgen_s_date_and_amount_filters_refuse_none_as_writing_it(tmp_path, name):
    """A date or an amount filter given None (an optional date unguarded: t.invoice_date
    | compactdate on a title without one) failed with Python's words ('NoneType' object
    has no attribute 'year'), naming no value: it is refused as a {{ }} of None is
    (NONE_WRITTEN), which an export follows to the binding the invoice leaves empty.
    A run recorded before is rebuilt as it rendered (the filter's own failure)."""
    from pesgen._jinja import NONE_WRITTEN

    (tmp_path / "t.txt.j2").write_text(f"{{{{ v | {name} }}}}\n", encoding="utf-8")
    template = template_environment(tmp_path).get_template("t.txt.j2")
    with pytest.raises(jinja2.TemplateRuntimeError) as err:
        template.render(v=None)
    assert str(err.value).startswith(f"filter {name} {NONE_WRITTEN}")
    old = template_environment(tmp_path, writes_none=True).get_template("t.txt.j2")
    with pytest.raises(Exception) as err:
        old.render(v=None)
    assert NONE_WRITTEN not in str(err.value)


def test_a_template_is_compiled_once_for_the_environments_that_compile_it_alike(
        tmp_path, monkeypatch):
    """Each renderer compiled its templates in an environment of its own: new-mapping,
    which sets up the scaffold's stand-ins ten times and more, spent most of its time in
    Jinja's compiler. A template is now compiled once per process for the environments
    that compile it alike (their class and flags), rendering the same; its source
    changed, and for an environment of another kind, it is compiled again."""
    compiled: list[str | None] = []
    compile_ = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, *args, **kwargs):
        compiled.append(name)
        return compile_(self, source, name, filename, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    path = tmp_path / "t.csv.j2"
    path.write_text("{{ x }};{{ '01' }}\n", encoding="utf-8")
    for x in (1, 2):
        assert template_environment(tmp_path).get_template("t.csv.j2").render(x=x) == \
            f"{x};01\n"
    assert compiled == ["t.csv.j2"]
    assert template_environment(tmp_path, writes_none=True).get_template(
        "t.csv.j2").render(x=None) == "None;01\n"
    assert template_environment(tmp_path, marked=True).get_template(
        "t.csv.j2").render(x=3).replace("\x00", "").startswith("3t.csv.j2\x1f1")
    assert compiled == ["t.csv.j2"] * 3
    path.write_text("{{ x }},{{ '01' }}\n", encoding="utf-8")
    assert template_environment(tmp_path).get_template("t.csv.j2").render(x=4) == "4,01\n"
    assert compiled == ["t.csv.j2"] * 4
