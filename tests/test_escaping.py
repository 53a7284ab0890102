"""The XML escaping of template output, memoised per template (render.FileRenderer):
the same bytes as markupsafe's escaping, for any value, and each distinct string
escaped once."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from pesgen._jinja import memoise_escaping, template_environment

TEMPLATE = '<A V="{{ a }}"/><B V="{{ b }}"/>{{ c }}\n'
# each example writes a template and compiles it twice: tens of milliseconds, several
# times that on a loaded machine (two test processes on two cores), past Hypothesis's
# default deadline of 200 ms outside CI (its "ci" profile has none)
UNTIMED = settings(deadline=None)


def _pair(tmp_path):
    (tmp_path / "t.xml.j2").write_text(TEMPLATE, encoding="utf-8")
    plain = template_environment(tmp_path).get_template("t.xml.j2")
    memo = template_environment(tmp_path).get_template("t.xml.j2")
    memoise_escaping(memo)
    memoise_escaping(memo)  # a second call changes nothing
    return plain, memo


def test_memoised_escaping_writes_what_markupsafe_writes(tmp_path):
    plain, memo = _pair(tmp_path)
    values = [("Verreries & Cristalleries", "<b>\"l'été\"</b>", Markup("<X/>")),
              (Decimal("85.00"), 7, "&amp;"),
              ("Verreries & Cristalleries", "<b>\"l'été\"</b>", "&amp;")]
    for a, b, c in values * 2:
        assert memo.render(a=a, b=b, c=c) == plain.render(a=a, b=b, c=c)
    assert memo.render(a="&", b="<", c=Markup("<ok/>")) == \
        '<A V="&amp;"/><B V="&lt;"/><ok/>\n'


@UNTIMED
@given(st.lists(st.text(max_size=40), min_size=3, max_size=3))
def test_memoised_escaping_matches_for_any_text(tmp_path_factory, texts):
    plain, memo = _pair(tmp_path_factory.mktemp("t"))
    a, b, c = texts
    assert memo.render(a=a, b=b, c=c) == plain.render(a=a, b=b, c=c)
    assert memo.render(a=a, b=b, c=c) == plain.render(a=a, b=b, c=c)


def test_each_distinct_string_is_escaped_once(tmp_path):
    (tmp_path / "t.xml.j2").write_text(TEMPLATE, encoding="utf-8")
    template = template_environment(tmp_path).get_template("t.xml.j2")
    namespace = template.root_render_func.__globals__
    original, calls = namespace["escape"], []
    namespace["escape"] = lambda value: calls.append(value) or original(value)
    memoise_escaping(template)
    for _ in range(3):
        template.render(a="45200", b="MONTARGIS", c=Decimal("1.00"))
    assert calls == ["45200", "MONTARGIS", Decimal("1.00"), Decimal("1.00"),
                     Decimal("1.00")]


class _Html(Markup):
    """A Markup subclass: markupsafe's escaping, not the shortcut, applies."""


def test_memoised_ints_and_markup_write_what_markupsafe_writes(tmp_path):
    plain, memo = _pair(tmp_path)
    values = [(1, "1", True), (True, 1, "1"), (1.0, False, 0), (-12, 10**30, Markup("a&amp;")),
              (Markup("<x/>"), _Html("<y/>"), Markup("")), (Markup("<x/>"), 1, _Html("1"))]
    for a, b, c in values * 2:
        assert memo.render(a=a, b=b, c=c) == plain.render(a=a, b=b, c=c)
    namespace = memo.root_render_func.__globals__
    for value in (1, -12, "1", True, 1.0, Markup("<x/>"), _Html("&lt;"), "<&>"):
        got, want = namespace["escape"](value), plain.root_render_func.__globals__[
            "escape"](value)
        assert type(got) is type(want) is Markup
        assert got == want


@UNTIMED
@given(st.lists(st.integers() | st.booleans() | st.text(max_size=10).map(Markup),
                min_size=3, max_size=3))
def test_memoised_escaping_matches_for_any_int_or_markup(tmp_path_factory, values):
    plain, memo = _pair(tmp_path_factory.mktemp("t"))
    a, b, c = values
    assert memo.render(a=a, b=b, c=c) == plain.render(a=a, b=b, c=c)
    assert memo.render(a=a, b=b, c=c) == plain.render(a=a, b=b, c=c)


def test_only_an_xml_template_is_escaped(tmp_path):
    """A .xml.j2 or .xml template writes '&' and '<' escaped; a flat file's template
    (.csv.j2, .txt.j2, .j2) writes them as they are: 'Chœur & Harmonie' in a CSV
    column, never 'Chœur &amp; Harmonie'."""
    env = template_environment(tmp_path)
    for name in ("t.xml.j2", "t.xml", "t.csv.j2", "t.txt.j2", "t.j2", "t.xml.j2.csv.j2"):
        (tmp_path / name).write_text("{{ a }}\n", encoding="utf-8")
    value = "Chœur & Harmonie <3"
    for name in ("t.xml.j2", "t.xml"):
        assert env.get_template(name).render(a=value) == "Chœur &amp; Harmonie &lt;3\n"
    for name in ("t.csv.j2", "t.txt.j2", "t.j2", "t.xml.j2.csv.j2"):
        assert env.get_template(name).render(a=value) == "Chœur & Harmonie <3\n"


def test_memoising_twice_keeps_the_one_memo(tmp_path):
    """A template compiled by a bundle's environment is memoised already (``_Template``):
    memoise_escaping again leaves its escape as it is, not a memo wrapped in another
    (each layer one more call and one more copy of every string written)."""
    (tmp_path / "t.xml.j2").write_text(TEMPLATE, encoding="utf-8")
    template = template_environment(tmp_path).get_template("t.xml.j2")
    namespace = template.root_render_func.__globals__
    first = namespace["escape"]
    assert first.memoised is True
    memoise_escaping(template)
    memoise_escaping(template)
    assert namespace["escape"] is first
    assert template.render(a="&", b="<", c=1) == '<A V="&amp;"/><B V="&lt;"/>1\n'


def test_a_concatenation_escapes_as_jinja_s_does(tmp_path):
    """``~`` in an escaped template keeps a Markup operand and escapes the other; in a
    flat one it escapes nothing; in an ``{% autoescape %}`` block it is decided as the
    template renders: Jinja's own output (jinja2.Environment(autoescape=...))."""
    source = "{{ (x | safe) ~ y }}|{{ x ~ y }}"
    block = "{% autoescape esc %}" + source + "{% endautoescape %}"
    for name, text in (("t.xml.j2", source), ("t.txt.j2", source), ("b.txt.j2", block)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    env = template_environment(tmp_path)
    assert env.get_template("t.xml.j2").render(x="<b>", y="<") == "<b>&lt;|&lt;b&gt;&lt;"
    assert env.get_template("t.txt.j2").render(x="<b>", y="<") == "<b><|<b><"
    assert env.get_template("b.txt.j2").render(x="<b>", y="<", esc=False) == "<b><|<b><"
    assert env.get_template("b.txt.j2").render(x="<b>", y="<", esc=True) == \
        "&lt;b&gt;&lt;|&lt;b&gt;&lt;"
