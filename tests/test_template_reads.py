"""Templates read the canonical model's fields in their own generated code
(``_jinja._InlineReads``), with the test the sandbox's ``getattr`` makes first. Whatever
the template, it renders exactly what Jinja's own code generator renders with the same
sandbox, or fails the same way; what the sandbox refuses stays refused."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from pesgen import _jinja
from pesgen._jinja import template_environment
from pesgen.formats import find_format
from pesgen.mapping import load_mapping
from pesgen.sample import sample_titles

from .conftest import MAPPINGS

TITLES = sample_titles(load_mapping(MAPPINGS / "villeneuve-sur-loing.yaml"),
                       find_format("pes-ormc"))


class _Plain(_jinja._Sandbox):
    code_generator_class = CodeGenerator


def _env(cls: type, folder: Path) -> jinja2.Environment:
    env = _jinja.template_environment(folder)
    env.__class__ = cls
    env.bytecode_cache = None  # each compiles with its own code generator
    return env


def _render(cls: type, folder: Path, source: str, **values: Any) -> tuple[str, str]:
    (folder / "t.xml.j2").write_text(source, encoding="utf-8")
    try:
        return "ok", _env(cls, folder).get_template("t.xml.j2").render(**values)
    except Exception as exc:  # noqa: BLE001 - the same failure is the point
        return type(exc).__name__, str(exc)


SOURCES = [
    '<Nom V="{{ t.debtor.name }}"/><CP V="{{ t.debtor.address.postal_code }}"/>',
    "{% for ln in t.lines if ln.amount %}{{ ln.number }}:{{ ln.amount | amount }}{% endfor %}",
    "{% for ln in t.lines | selectattr('label') %}{{ loop.index }}{{ ln.label }}"
    "{% else %}none{% endfor %}",
    "{{ t.lines | map(attribute='amount') | sum }}",
    "{% set x = t.debtor.name %}{{ x }}{% with y = t.debtor.address %}{{ y.city }}{% endwith %}",
    "{% macro m(a) %}{{ a.city }}{{ caller() }}{% endmacro %}"
    "{% call m(t.debtor.address) %}{{ t.number }}{% endcall %}",
    "{% macro m(a) %}{{ caller(a) }}{% endmacro %}{% call(x) m(t.debtor) %}{{ x.name }}"
    "{% endcall %}",
    "{{ [t.number, t.debtor.name][1] }}{{ {'a': t.invoice_number}['a'] }}"
    "{{ t.number if t.debtor.first_name else 0 }}",
    "{% for ln in t.lines %}{% for l2 in t.lines if l2.number > ln.number %}{{ l2.number }}"
    "{% endfor %}{% endfor %}",
    "{% filter upper %}{{ t.debtor.address.city }}{% endfilter %}"
    "{% set ns = namespace(v=0) %}{% set ns.v = t.number %}{{ ns.v }}",
    "{{ t.lines[0].amount }}{{ (t.lines | first).label }}{{ t.debtor['name'] }}",
    "{{ t.number.real }}{{ t.debtor.name.lower() }}{{ '{}-{}'.format(t.number, t.debtor.name) }}",
    "{{ d.name }}{{ d.missing }}",  # a dict: key, then a missing one (strict undefined)
    "{{ t.missing }}",
    "{{ t.if }}",  # a Python keyword: never inlined
    "{{ t.__class__ }}",
    "{{ t.debtor.name.__class__.__mro__ }}",
    "{{ t.debtor.__dataclass_fields__ }}",
    "{{ t.lines.append }}",
    "{% for ln in t.lines recursive %}{{ ln.number }}{% endfor %}",
]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("title", range(len(TITLES)))
def test_inline_reads_render_what_jinja_renders(tmp_path, source, title):
    values = {"t": TITLES[title], "d": {"name": "Verreries & Cristalleries"}}
    got = _render(_jinja._Sandbox, tmp_path, source, **values)
    want = _render(_Plain, tmp_path, source, **values)
    assert got == want


@pytest.mark.parametrize("source, says", [
    ("{{ t.__class__ }}", "access to attribute '__class__' of 'Title' object is unsafe"),
    ("{{ t.debtor.name.__class__.__mro__ }}", "access to attribute '__class__'"),
])
def test_what_the_sandbox_refuses_stays_refused(tmp_path, source, says):
    kind, message = _render(_jinja._Sandbox, tmp_path, source, t=TITLES[0])
    assert kind == "SecurityError" and says in message


def test_the_shipped_template_reads_fields_inline():
    fmt = find_format("pes-ormc")
    env = _jinja.template_environment(fmt.folder)
    source = env.loader.get_source(env, fmt.files[0].template)[0]
    code = env.compile(source, fmt.files[0].template, raw=True)  # named: escaped
    assert "_pesgen_obj.name if type(_pesgen_obj := " in code
    assert ") in _pesgen_in_name else environment.getattr(_pesgen_obj, 'name')" in code
    # a value written: an exact str looked up in the escaping memo by the code itself
    assert "(_pesgen_escaped := _pesgen_memo(_pesgen_value)) is not None else " \
        "escape(_pesgen_value)" in code


class _Str(str):
    pass


# values of types the escaping memo holds (str, int) and of those it does not, equal to
# them (True == 1, Decimal('2.0') == 2), and a str subclass (Markup, one of its own)
VALUES = [("a<b&'\"", 1), (1, True), (2, Decimal("2.0")), ("<b>", Markup("<b>")),
          ("x", _Str("x")), ("é", "é"), (0, False)]


@pytest.mark.parametrize("first, second", VALUES)
def test_values_written_are_what_jinja_writes(tmp_path, first, second):
    source = "{{ a }}|{{ b }}|{{ a }}|{{ b }}"
    for _ in range(2):  # the second time, from the memo
        got = _render(_jinja._Sandbox, tmp_path, source, a=first, b=second)
        want = _render(_Plain, tmp_path, source, a=first, b=second)
        assert got == want and got[0] == "ok"


def test_a_str_the_memo_holds_is_written_without_calling_escape(tmp_path):
    (tmp_path / "t.xml.j2").write_text("{{ s }}{{ n }}{{ m }}", encoding="utf-8")
    template = _env(_jinja._Sandbox, tmp_path).get_template("t.xml.j2")
    values = {"s": "a&b", "n": 7, "m": Markup("<i>")}
    assert template.render(**values) == "a&amp;b7<i>"
    namespace = template.root_render_func.__globals__
    escape, called = namespace["escape"], []
    namespace["escape"] = lambda value: called.append(value) or escape(value)
    try:
        assert template.render(**values) == "a&amp;b7<i>"
    finally:
        namespace["escape"] = escape
    assert called == [7, Markup("<i>")]  # the str found in the memo by the code
    with pytest.raises(jinja2.TemplateRuntimeError, match="writes None"):
        template.render(s=None, n=1, m="")


# loop counters and a plain dict's keys: read as Jinja's SandboxedEnvironment.getattr reads
SOURCE = ("{% for x in xs %}[{{ loop.first }}{{ loop.last }}{{ loop.index }}{{ loop.index0 }}"
          "{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}{{ loop.depth }}"
          "{{ loop.depth0 }}{{ x }}]{% if loop.first %}F{% endif %}{% endfor %}"
          "{{ d.tiers_on }}|{{ d.items is defined }}|{{ d.keys is defined }}|{{ d['a<b'] }}")


def test_template_reads_are_the_sandbox_reads():
    fast = template_environment(Path("."))
    plain = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=fast.autoescape)
    for data in ({"xs": [1, 2, 3], "d": {"tiers_on": "every_line", "a<b": "<&>"}},
                 {"xs": ["<x>"], "d": {"tiers_on": "first", "items": "I", "a<b": 1}},
                 {"xs": [], "d": {"tiers_on": "", "a<b": ""}}):
        assert fast.from_string(SOURCE).render(**data) == \
            plain.from_string(SOURCE).render(**data)
    # None is where they part: Jinja writes the word, a bundle's template refuses it
    data = {"xs": [], "d": {"tiers_on": None, "a<b": ""}}
    assert "None|" in plain.from_string(SOURCE).render(**data)
    with pytest.raises(jinja2.TemplateRuntimeError, match="writes None"):
        fast.from_string(SOURCE).render(**data)
    # a missing key is undefined (strict: an error when output) on both paths
    for env in (fast, plain):
        with pytest.raises(jinja2.UndefinedError):
            env.from_string("{{ d.missing }}").render(d={})
    # getattr itself, on dicts and on a loop, as Jinja's sandbox reads
    d = {"tiers_on": 1, "get": 2, "__class__": 3}
    for name in ("tiers_on", "get", "keys", "missing", "format"):
        got = fast.getattr(d, name)
        want = SandboxedEnvironment.getattr(fast, d, name)
        assert type(got) is type(want)
        if not isinstance(want, jinja2.Undefined):
            assert got == want
    # an unsafe attribute: refused where it is read, on both paths (_Bounded.unsafe_undefined)
    for read in (fast.getattr, lambda obj, name: SandboxedEnvironment.getattr(fast, obj, name)):
        with pytest.raises(jinja2.sandbox.SecurityError, match="'__class__' of 'dict'"):
            read(d, "__class__")
    loop = jinja2.runtime.LoopContext(iter("abc"), fast.undefined)
    next(iter(loop))
    for name in ("first", "last", "index", "index0", "revindex", "revindex0", "length",
                 "depth", "depth0", "cycle", "previtem"):
        got = fast.getattr(loop, name)
        want = SandboxedEnvironment.getattr(fast, loop, name)
        assert type(got) is type(want)
        if isinstance(want, (bool, int)):
            assert got == want


# ------------------------------------------------ check-mapping's traced rendering

# what pesgen's filters and Jinja's read of the model objects given to them
FILTER_SOURCES = [
    "{% for imp in t.lines | by_imputation %}{{ imp.nature }}:{{ imp.amount | amount }}"
    "{% for ln in imp.lines %}[{{ ln.label or '-' }}{{ (ln | pricing).quantity | number }}]"
    "{% endfor %}{% endfor %}",
    "{{ t.lines | map(attribute='amount') | sum }}{{ t.lines | selectattr('label') | list"
    " | length }}",
    "{% set p = t.lines[0] | pricing %}{{ p.unit_price | amount }}{{ p.quantity }}",
    "{{ t.lines | sort(attribute='amount') | map(attribute='number') | join(',') }}",
]


@pytest.mark.parametrize("source", SOURCES + FILTER_SOURCES)
@pytest.mark.parametrize("title", range(len(TITLES)))
def test_traced_templates_render_what_the_export_renders(tmp_path, source, title):
    """check-mapping's sample titles are rendered with the tracing sandbox (every field
    read goes through getattr, a filter sees the model through a recorder): the same
    output as the export's sandbox, or the same failure."""
    values = {"t": TITLES[title], "d": {"name": "Verreries & Cristalleries"}}
    (tmp_path / "t.xml.j2").write_text(source, encoding="utf-8")
    traced = template_environment(tmp_path, traced=True)
    try:
        got = "ok", traced.get_template("t.xml.j2").render(**values)
    except Exception as exc:  # noqa: BLE001 - the same failure is the point
        got = type(exc).__name__, str(exc)
    assert got == _render(_jinja._Sandbox, tmp_path, source, **values)


def test_traced_reads_name_the_fields_filters_read_too(tmp_path):
    env = template_environment(tmp_path, traced=True)
    env.from_string(FILTER_SOURCES[0] + FILTER_SOURCES[1] + "{{ t.debtor['name'] }}").render(
        t=TITLES[0])
    reads = {(type(obj).__name__, name) for (_, name), obj in env.reads.items()}
    assert {("Title", "lines"), ("Title", "debtor"), ("Debtor", "name"),
            # by_imputation, pricing: Python code reading the recorder
            ("Line", "product_code"), ("Line", "nature"), ("Line", "fonction"),
            ("Line", "operation"), ("Line", "quantity"), ("Line", "unit_price"),
            # the template on the recorded lines; map, selectattr: Jinja's getitem
            ("Line", "label"), ("Line", "amount")} <= reads
    assert ("Line", "student") not in reads and ("Debtor", "email") not in reads
    # the export's environment records nothing, and reads fields inline
    plain = template_environment(tmp_path)
    assert type(plain) is _jinja._Sandbox and not hasattr(plain, "reads")
    assert plain.public_fields is _jinja._TEMPLATE_READS and env.public_fields == {}
