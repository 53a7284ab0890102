"""A template never writes a missing value as text, whatever the route: not only
``{{ value }}``, but Jinja's filters that make text of it (``upper`` writes 'NONE'),
``~``, ``%``, ``str.format`` and the ``format`` filter. Each is refused as a bare
``{{ value }}`` of None is; the guards still work; ``writes_none`` (rebuilding a run
recorded before 2026-12-01) writes what Jinja wrote. Mapping expressions refuse the
same routes (a None there is no record's missing key, which is undefined)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from pesgen._jinja import MAX_OPERAND_SIZE, expression_environment, template_environment
from pesgen.expr import compile_fast
from pesgen.render import template_error

# Each route, with ``v`` the value a template may find unset: (source, what the
# refusal names, what it writes when v is 'ab')
ROUTES = [
    ("{{ v | upper }}", "filter upper", "AB"),
    ("{{ v | lower }}", "filter lower", "ab"),
    ("{{ v | title }}", "filter title", "Ab"),
    ("{{ v | capitalize }}", "filter capitalize", "Ab"),
    ("{{ v | trim }}", "filter trim", "ab"),
    ("{{ v | string }}", "filter string", "ab"),
    ("{{ v | e }}", "filter e", "ab"),
    ("{{ v | escape }}", "filter escape", "ab"),
    ("{{ v | forceescape }}", "filter forceescape", "ab"),
    ("{{ v | safe }}", "filter safe", "ab"),
    ("{{ v | striptags }}", "filter striptags", "ab"),
    ("{{ v | pprint | safe }}", "filter pprint", "'ab'"),
    ("{{ v | center(4) }}", "filter center", " ab "),
    ("{{ v | truncate(5) }}", "filter truncate", "ab"),
    ("{{ v | wordwrap(5) }}", "filter wordwrap", "ab"),
    ("{{ v | indent(2) }}", "filter indent", "ab"),
    ("{{ v | urlencode }}", "filter urlencode", "ab"),
    ("{{ v | urlize }}", "filter urlize", "ab"),
    ("{{ v | wordcount }}", "filter wordcount", "1"),
    ("{{ v | replace('a', 'b') }}", "filter replace", "bb"),
    ("{{ 'xa' | replace('a', v) }}", "filter replace", "xab"),
    ("{{ v | format }}", "filter format", "ab"),
    ("{{ '[%s]' | format(v) }}", "filter format", "[ab]"),
    ("{{ ['x', v] | join('-') }}", "filter join", "x-ab"),
    ("{{ ['x', 'y'] | join(v) }}", "filter join", "xaby"),
    ("{{ [{'a': v}] | join(attribute='a') }}", "filter join", "ab"),
    ("{{ [v] | map('upper') | join }}", "filter upper", "AB"),
    ("{{ 'X' ~ v }}", "'~'", "Xab"),
    ("{{ v ~ 'X' ~ 1 }}", "'~'", "abX1"),
    ("{{ '[%s]' % v }}", "'%' formatting", "[ab]"),
    ("{{ '%s-%s' % ('x', v) }}", "'%' formatting", "x-ab"),
    ("{{ '%(a)s' % {'a': v} }}", "'%' formatting", "ab"),
    ("{{ '[{}]'.format(v) }}", "str.format", "[ab]"),
    ("{{ '{!s}'.format(v) }}", "str.format", "ab"),
    ("{{ '{a}'.format_map({'a': v}) }}", "str.format", "ab"),
]
# A template guarding an optional value: (source, what it writes when v is None)
GUARDS = [
    ("{{ v | default('', true) | upper }}", ""),
    ("{{ v | d('-', true) }}", "-"),
    ("{{ (v or '') | upper }}", ""),
    ("{{ 'y' if v is none else 'n' }}", "y"),
    ("{% if v %}{{ 'X' ~ v }}{% endif %}", ""),
    ("{{ ('X' ~ v) if v else 'Z' }}", "Z"),
    ("{{ 'X' ~ (v | default('', true)) }}", "X"),
    ("{{ [v, 'a', none] | select | join(',') }}", "a"),
    ("{{ '%s' % (v or '') }}", ""),
]


def _bundle(tmp_path: Path, sources: list[str], suffix: str) -> list[str]:
    names = []
    for i, source in enumerate(sources):
        names.append(f"t{i}.{suffix}")
        (tmp_path / names[-1]).write_text(source, encoding="utf-8")
    return names


@pytest.mark.parametrize("suffix", ["csv.j2", "xml.j2"])
def test_every_route_making_text_of_none_is_refused(tmp_path, suffix):
    """Each route: refused with a bare {{ value }}'s exception and message (the route
    named first), in a flat file and in an escaped one; a set value written as before."""
    names = _bundle(tmp_path, [source for source, _, _ in ROUTES], suffix)
    env = template_environment(tmp_path)
    for name, (source, route, written) in zip(names, ROUTES, strict=True):
        template = env.get_template(name)
        assert template.render(v="ab") == written, source
        with pytest.raises(jinja2.TemplateRuntimeError) as info:
            template.render(v=None)
        assert str(info.value).startswith(f"{route} writes None: a value left unset"), source
        assert "default('', true)" in str(info.value)


@pytest.mark.parametrize("suffix", ["csv.j2", "xml.j2"])
def test_a_guarded_optional_value_still_renders(tmp_path, suffix):
    names = _bundle(tmp_path, [source for source, _ in GUARDS], suffix)
    env = template_environment(tmp_path)
    for name, (source, written) in zip(names, GUARDS, strict=True):
        assert env.get_template(name).render(v=None) == written, source


@pytest.mark.parametrize("suffix", ["csv.j2", "xml.j2"])
def test_writes_none_writes_what_jinja_wrote_on_every_route(tmp_path, suffix):
    """The legacy mode (regenerate's rebuild of a run recorded before 2026-12-01):
    'None', 'NONE', 'XNone'... as Jinja's own sandbox writes them."""
    names = _bundle(tmp_path, [source for source, _, _ in ROUTES], suffix)
    legacy = template_environment(tmp_path, writes_none=True)
    jinja = SandboxedEnvironment(loader=jinja2.FileSystemLoader(str(tmp_path)),
                                 undefined=jinja2.StrictUndefined,
                                 autoescape=legacy.autoescape, keep_trailing_newline=True)
    for name, (source, _, _) in zip(names, ROUTES, strict=True):
        try:
            expected = jinja.get_template(name).render(v=None)
        except (TypeError, AttributeError):  # truncate, wordwrap, indent: Jinja fails
            with pytest.raises((TypeError, AttributeError)):
                legacy.get_template(name).render(v=None)
            continue
        assert legacy.get_template(name).render(v=None) == expected, source
        assert "none" in expected.lower() or source == "{{ v | wordcount }}", source


# Arguments for the filters that need some, to call each with a None value
_ARGS = {"attr": "('x')", "batch": "(2)", "center": "(6)", "fixed": "(6)", "groupby": "('x')",
         "indent": "(2)", "replace": "('a', 'b')", "slice": "(2)", "truncate": "(5)",
         "wordwrap": "(5)", "zfill": "(5)"}
# What a filter may make of None that is not the word: Jinja's int and float give their
# default, tojson JSON's null; pesgen's yesno says no
_NOT_TEXT = {"int": "0", "float": "0.0", "tojson": "null", "yesno": "0"}


def test_no_filter_writes_none_as_text(tmp_path):
    """Every filter a bundle's template may use, called on None: refused, failing on it
    (it takes no None), or writing no 'None' (a guard, an empty value)."""
    env = template_environment(tmp_path)
    for name in sorted(env.filters):
        try:
            written = env.from_string(f"{{{{ v | {name}{_ARGS.get(name, '')} }}}}").render(v=None)
        except (TypeError, AttributeError, ValueError, ArithmeticError,
                jinja2.UndefinedError, jinja2.exceptions.FilterArgumentError):
            continue  # the filter takes no None
        except jinja2.TemplateRuntimeError as exc:
            assert "writes None" in str(exc), name  # refused (by the output: d, default)
            continue
        if name in _NOT_TEXT:
            assert written == _NOT_TEXT[name], name
        else:
            assert "none" not in written.lower(), (name, written)


@pytest.mark.parametrize("source, line", [
    ("{{ x | lower\n  ~ (v | upper)\n  ~ (x | title) }}", 2),  # filters made by one factory
    ("{{ x | upper\n  ~ v }}", 2),  # '~'
    ("{{ x | upper\n  ~ v\n  ~ x }}", 1),  # two '~' on two lines: the tag's start
    ("{{ x | upper\n  ~ ('%s' % v) }}", 2),
    ("{{ x\n  ~ '{}'.format(v) }}", 2),
    ("{{ [x] | join\n  ~ [v] | join(',') }}", 1),  # two joins on two lines: the tag's start
])
def test_a_refusal_names_the_line_of_the_route(tmp_path, source, line):
    """As pesgen calls a template: its macro (render() would rewrite the traceback)."""
    (tmp_path / "f.csv.j2").write_text(f"{{% macro piece(v, x) %}}{source}{{% endmacro %}}",
                                       encoding="utf-8")
    env = template_environment(tmp_path)
    with pytest.raises(jinja2.TemplateRuntimeError) as info:
        env.get_template("f.csv.j2").make_module().piece(None, "x")
    error = template_error(info.value, "b", "f.csv.j2", "piece", env)
    assert error.problems[0].mapping == f"b/f.csv.j2:{line}"
    assert "writes None" in error.problems[0].message


def test_concatenation_is_bounded_in_a_template(tmp_path):
    """A loop doubling a string with '~' is stopped at the first result over
    MAX_OPERAND_SIZE characters, naming the line; a smaller one is made."""
    (tmp_path / "f.csv.j2").write_text(
        "{% macro piece(n) %}{% set ns = namespace(s='x' * 1000) %}{% for i in range(n) %}\n"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}{% endmacro %}",
        encoding="utf-8")
    env = template_environment(tmp_path)
    assert str(env.get_template("f.csv.j2").make_module().piece(6)) == str(64_000)
    with pytest.raises(SecurityError, match=f"'~': a result of 128000 characters "
                                            f"refused \\(at most {MAX_OPERAND_SIZE}\\)") \
            as info:
        env.get_template("f.csv.j2").make_module().piece(7)
    error = template_error(info.value, "b", "f.csv.j2", "piece", env)
    assert error.problems[0].mapping == "b/f.csv.j2:2"
    # rebuilding a run recorded before the bound (regenerate's legacy mode): '~' made
    # what pesgen made then, unbounded
    legacy = template_environment(tmp_path, writes_none=True)
    assert str(legacy.get_template("f.csv.j2").make_module().piece(7)) == str(128_000)


ENV = expression_environment()
# A None that is no record's missing key (those read as undefined): a code table's get
# of a key it lacks, a dict's get, a JSON null read from a list
EXPRESSIONS = [
    ("'MODE ' ~ {'cb': 'CARTE'}.get(invoice.m)", "'~'"),
    ("'X ' ~ invoice.get('number')", "'~'"),
    ("'X ' ~ invoice.tags[0] ~ ' Y'", "'~'"),
    ("invoice.a ~ invoice.tags[0] ~ invoice.a ~ ' ' ~ invoice.a", "'~'"),
    ("invoice.a ~ invoice.a ~ invoice.a ~ invoice.a ~ invoice.tags[0] ~ invoice.a", "'~'"),
    ("{'cb': 'carte'}.get(invoice.m) | upper", "filter upper"),
    ("invoice.tags | join(',')", "filter join"),
    ("'%s' % invoice.get('number')", "'%' formatting"),
    ("'%ls' % invoice.get('number')", "'%' formatting"),  # 'l' is ignored: '%s'
    ("'%(k)5s' % {'k': invoice.get('number')}", "'%' formatting"),
    ("'{}'.format(invoice.tags[0])", "str.format"),
]


@pytest.mark.parametrize("source, route", EXPRESSIONS)
def test_a_mapping_expression_refuses_none_as_text(source, route):
    """On both paths (the closures of pesgen.expr when the expression is in their
    subset, Jinja's otherwise); a set value, or a JSON null read as a key, as before."""
    paths = [lambda scope: ENV.compile_expression(source, undefined_to_none=True)(**scope)]
    fast = compile_fast(ENV, source)
    if fast is not None:
        paths.append(fast)
    for run in paths:
        with pytest.raises(jinja2.TemplateRuntimeError) as info:
            run({"invoice": {"m": "zz", "tags": [None]}})
        assert str(info.value).startswith(f"{route} writes None: a value that is not set")
        value = run({"invoice": {"m": "cb", "tags": ["t"], "number": "N", "a": "a"}})
        assert "None" not in str(value) and "NONE" not in str(value)
    # a JSON null read by its key is undefined: it adds nothing, as before
    assert compile_fast(ENV, "'X ' ~ invoice.number")({"invoice": {"number": None}}) == "X "


@pytest.mark.parametrize("suffix", ["csv.j2", "xml.j2"])
def test_a_bare_value_of_none_is_refused_and_written_only_as_before(tmp_path, suffix):
    """``{{ v }}`` of None: refused in a flat file (``_Sandbox.written``) and in an
    escaped one (its memoised escape), the message saying how to guard it; the legacy
    mode (``writes_none``) writes 'None' in both, as Jinja did. A set value and a
    Markup are written as before."""
    (tmp_path / f"t.{suffix}").write_text("<{{ v }}>\n", encoding="utf-8")
    template = template_environment(tmp_path).get_template(f"t.{suffix}")
    with pytest.raises(jinja2.TemplateRuntimeError) as info:
        template.render(v=None)
    assert str(info.value).startswith("writes None: a value left unset")
    assert "default('', true)" in str(info.value)
    escaped = suffix == "xml.j2"
    assert template.render(v="a&b") == ("<a&amp;b>\n" if escaped else "<a&b>\n")
    legacy = template_environment(tmp_path, writes_none=True).get_template(f"t.{suffix}")
    assert legacy.render(v=None) == "<None>\n"
    assert legacy.render(v="a&b") == template.render(v="a&b")


def test_tojson_writes_none_as_json_s_null(tmp_path):
    """``tojson`` makes JSON of a value, None included (``null``), as Jinja's does: not
    refused as text, in a template and in a mapping expression."""
    source = "v | tojson ~ '|' ~ ({'a': v} | tojson)"
    assert template_environment(tmp_path).from_string("{{ " + source + " }}").render(
        v=None) == 'null|{"a": null}'
    assert expression_environment().compile_expression(source)(v=None) == 'null|{"a": null}'
