"""The sandbox of templates and mapping expressions against what a security review
found: an old Jinja with known escapes, results growing tenfold per chained call, a
recursion crashing pesgen, a refused attribute read as an empty field."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import tracemalloc
from datetime import date
from pathlib import Path

import jinja2
import pytest
from jinja2.sandbox import SecurityError
from typer.testing import CliRunner

from pesgen._jinja import (
    MAX_OPERAND_SIZE,
    MAX_RESULT_SIZE,
    expression_environment,
    string_environment,
    template_environment,
)
from pesgen.cli import app
from pesgen.errors import ExitCode, TemplateError, UsageError
from pesgen.expr import compile_fast
from pesgen.model import Options

from .conftest import EXAMPLES, MAPPINGS, ROOT, RUN_DATE
from .mapping_support import mapping_copy

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
OBJECT = """object: {expr: "'CONSERVATOIRE FACTURE ' ~ invoice.number"}"""


def _cli(*args: object) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert isinstance(result.exception, SystemExit), (result.exception, result.output)
    return result


def _check_mapping(mapping: Path, fmts: Path | None = None):
    return _cli("check-mapping", mapping, *(["--formats-dir", fmts] if fmts else []))


def _export(tmp_path: Path, mapping: Path, fmts: Path | None = None):
    return _cli("export", "-m", mapping, "-i", EXAMPLES / "school-export.json",
                "-o", tmp_path / "out", "--date", RUN_DATE,
                "--db", f"sqlite:///{tmp_path / 'state.sqlite3'}", "--create-store",
                *(["--formats-dir", fmts] if fmts else []))


def _command(command: str, tmp_path: Path, mapping: Path, fmts: Path | None = None):
    """check-mapping, or an export of the example, with ``mapping`` (and ``fmts``)."""
    return _check_mapping(mapping, fmts) if command == "check-mapping" else \
        _export(tmp_path, mapping, fmts)


def _nothing_written(tmp_path: Path) -> bool:
    out = tmp_path / "out"
    return not out.exists() or not list(out.iterdir())


# ------------------------------------------------------------------ 1. Jinja's version

def test_the_jinja_floor_excludes_the_versions_with_sandbox_escapes():
    """jinja2 3.1.5 fixed CVE-2024-56326 and 3.1.6 CVE-2025-27516 (str.format through
    |attr, which wrote an environment variable into a PES file)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    jinja = [d for d in project["project"]["dependencies"] if d.lower().startswith("jinja2")]
    assert [re.sub(r"\s", "", d) for d in jinja] == ["jinja2>=3.1.6"]


@pytest.mark.parametrize("version", ["3.1.5", "3.1.4", "3.0.3", "2.11.3", "3.1"])
def test_an_older_jinja_is_refused_naming_its_version(monkeypatch, version):
    monkeypatch.setattr(jinja2, "__version__", version)
    for make in (expression_environment, string_environment,
                 lambda: template_environment(ROOT / "templates" / "pes-ormc")):
        with pytest.raises(UsageError, match=rf"jinja2 {re.escape(version)} is installed: "
                                             r"pesgen's sandbox needs jinja2 >= 3\.1\.6"):
            make()


@pytest.mark.parametrize("version", ["3.1.6", "3.1.7", "3.2.0", "3.2.0.dev1", "4.0.0rc1"])
def test_a_recent_jinja_is_accepted(monkeypatch, version):
    monkeypatch.setattr(jinja2, "__version__", version)
    expression_environment()


def test_the_cli_refuses_an_older_jinja_with_its_error(monkeypatch):
    monkeypatch.setattr(jinja2, "__version__", "3.1.4")
    r = _check_mapping(MAPPING)
    assert r.exit_code == ExitCode.USAGE, r.output
    assert "jinja2 3.1.4 is installed" in r.stderr and "CVE-2025-27516" in r.stderr


def test_the_cli_never_shows_local_variables_in_a_traceback():
    """typer 0.12.0, which pyproject.toml allows, printed every frame's locals (billing
    rows, the store's URL) by default in the traceback of an unexpected error: pesgen's
    app turns it off whatever typer's default (here: a typer whose default is True)."""
    code = (
        "import typer\n"
        "class Old(typer.Typer):\n"
        "    def __init__(self, *a, pretty_exceptions_show_locals=True, **k):\n"
        "        super().__init__(*a, pretty_exceptions_show_locals="
        "pretty_exceptions_show_locals, **k)\n"
        "typer.Typer = Old\n"
        "import pesgen.cli\n"
        "print(pesgen.cli.app.pretty_exceptions_show_locals)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False", out


# ------------------------------------------------------------------ 2. absolute bound

CHAINED = "'x'.center(100000).center(1100000).center(11100000).center(111100000)|length"


@pytest.mark.parametrize("make", [expression_environment, string_environment])
@pytest.mark.parametrize("source, what", [
    (CHAINED, "str.center"),
    ("('x' | center(100000) | center(1100000) | center(11100000)) | length", "filter center"),
    ("('x' * 100000).replace('x', 'x' * 11).replace('x', 'x' * 11) | length", "str.replace"),
    ("(('x\\n' * 50000) | indent(19) | indent(100)) | length", "filter indent"),
    ("'x'.rjust(100000).ljust(1100000).rjust(5000000) | length", "str.rjust"),
    ("(['x'.center(100000).center(1000000)] * 5) | join | length", "filter join"),
])
def test_a_chain_of_calls_cannot_grow_past_the_absolute_bound(make, source, what):
    """Each call may make ten times what it is made from, but never more than
    MAX_RESULT_SIZE: the chain stops at the first call over it."""
    with pytest.raises(SecurityError, match=rf"^{re.escape(what)}: a result of about \d+ "
                                            rf"\w+ refused \(at most {MAX_RESULT_SIZE}\)$"):
        make().compile_expression(source)()


def test_a_template_stops_the_chain_too(tmp_path):
    (tmp_path / "t.csv.j2").write_text("{{ " + CHAINED + " }}", encoding="utf-8")
    with pytest.raises(SecurityError, match=f"at most {MAX_RESULT_SIZE}"):
        template_environment(tmp_path).get_template("t.csv.j2").render()


def test_a_result_under_the_absolute_bound_is_made():
    env = expression_environment()
    assert env.compile_expression("'x'.center(100000).center(1100000) | length")() == 1100000


@pytest.mark.parametrize("source", ["invoice.a ~ invoice.a",  # the closures' '~'
                                    "invoice.a ~ '-' ~ invoice.a",
                                    "invoice.a ~ '-' ~ invoice.a ~ '-' ~ invoice.a",
                                    "invoice.a ~ 1 ~ 2 ~ 3 ~ invoice.a ~ 4",
                                    "invoice.a.strip() ~ invoice.a"])  # Jinja's
def test_concatenation_in_an_expression_is_held_to_the_absolute_bound(source):
    env = expression_environment()
    big = {"invoice": {"a": "x" * (MAX_RESULT_SIZE // 2 + 1)}}
    small = {"invoice": {"a": "x" * 10}}
    fast = compile_fast(env, source)
    runs = [env.compile_expression(source)]
    if fast is not None:
        runs.append(lambda **scope: fast(scope))
    for run in runs:
        assert len(run(**small)) < 100
        with pytest.raises(SecurityError, match=f"'~': a result of \\d+ characters refused "
                                                f"\\(at most {MAX_RESULT_SIZE}\\)"):
            run(**big)


def test_the_export_refuses_a_chained_binding_naming_the_mapping_key(tmp_path):
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, (OBJECT, f'object: {{expr: "{CHAINED}"}}'))
    r = _export(tmp_path, mapping)
    # found evaluating the records, as any failure of an expression (exit 4)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert f"[mapping {mapping}:{line}: bindings.invoice.object] (rule mapping.expr)" in \
        r.stderr
    assert f"str.center: a result of about 11100000 characters refused (at most " \
           f"{MAX_RESULT_SIZE})" in r.stderr
    assert _nothing_written(tmp_path)


# ------------------------------------------------------------------ 3. recursion

DEEP = "(" * 100 + "invoice.number" + ")" * 100


@pytest.mark.parametrize("command", ["check-mapping", "export"])
def test_an_expression_nested_too_deeply_is_a_mapping_problem(tmp_path, command):
    """Jinja's parser recursed past Python's limit: a RecursionError traceback, exit 1."""
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, (OBJECT, f'object: {{expr: "{DEEP}"}}'))
    r = _command(command, tmp_path, mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert f"expression nested too deeply to be compiled (parentheses, brackets or calls " \
           f"within each other): write it flatter [mapping {mapping}:{line}: " \
           f"bindings.invoice.object] (rule mapping.expr)" in r.stderr
    assert "Traceback" not in r.output
    assert _nothing_written(tmp_path)


def test_an_expression_nested_a_little_still_compiles():
    env = expression_environment()
    nested = "(" * 20 + "invoice.number" + ")" * 20
    assert env.compile_expression(nested)(invoice={"number": "FA-1"}) == "FA-1"


def _bundle(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """A copy of pes-ormc (same name: --formats-dir comes first), ``old`` made ``new``
    in its template; the line of ``new``."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "pes-ormc", fmts / "pes-ormc")
    template = fmts / "pes-ormc" / "pes-aller.xml.j2"
    text = template.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    template.write_text(text, encoding="utf-8")
    return fmts, text[:text.index(new)].count("\n") + 1


def _format_yaml(tmp_path: Path) -> tuple[Path, Path, str]:
    """A copy of pes-ormc (same name): the formats folder, its format.yaml, its text."""
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / "pes-ormc", fmts / "pes-ormc")
    spec = fmts / "pes-ormc" / "format.yaml"
    return fmts, spec, spec.read_text(encoding="utf-8")


RECURSIVE = "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}"
NOM = '<Nom V="{{ d.name }}"/>'


@pytest.mark.parametrize("where", ["piece", "module"])
@pytest.mark.parametrize("command", ["check-mapping", "export"])
def test_a_template_recursing_without_end_is_a_template_error(tmp_path, command, where):
    """A macro calling itself, in a piece or in the template's own code (run when it is
    loaded): a template error naming the file and line, exit 5, not a traceback."""
    if where == "piece":
        fmts, line = _bundle(tmp_path, NOM, RECURSIVE + "{{ r(0) }}" + NOM)
    else:
        fmts, line = _bundle(tmp_path, "{% macro head(doc) -%}",
                             RECURSIVE + "{% set x = r(0) %}\n{% macro head(doc) -%}")
    r = _command(command, tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert r.stderr.startswith(f"error: template {fmts}/pes-ormc/pes-aller.xml.j2:{line}: "
                               "maximum recursion depth exceeded"), r.stderr
    assert "RecursionError: maximum recursion depth exceeded" in r.stderr
    assert f"[template {fmts}/pes-ormc/pes-aller.xml.j2:{line}] (rule template)" in r.stderr
    assert _nothing_written(tmp_path)


LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.mark.parametrize("where", ["piece", "module"])
@pytest.mark.parametrize("command", ["check-mapping", "export"])
def test_a_template_running_past_its_time_limit_is_a_template_error(
        tmp_path, monkeypatch, command, where):
    """Two nested loops of 100 000 (each within the sandbox's range bound) in a piece,
    or in the template's own code run as it is loaded: each call into the template is
    stopped past its limit (pesgen._budget.LIMIT, 60 s; 0.5 s here), a template error
    naming the file and line, exit 5, nothing written. It ran for hours."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    if where == "piece":
        fmts, line = _bundle(tmp_path, NOM, LOOPS + NOM)
    else:
        fmts, line = _bundle(tmp_path, "{% macro head(doc) -%}",
                             LOOPS + "\n{% macro head(doc) -%}")
    r = _command(command, tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert r.stderr.startswith(f"error: template {fmts}/pes-ormc/pes-aller.xml.j2:{line}: "
                               "rendering ran for more than 0.5 seconds and was stopped: a "
                               "loop that does not end"), r.stderr
    assert f"[template {fmts}/pes-ormc/pes-aller.xml.j2:{line}] (rule template)" in r.stderr
    assert _nothing_written(tmp_path)
    assert _budget._started == [0.0]  # nothing watched once the call ended


def test_a_file_name_template_running_past_its_time_limit_is_a_template_error(
        tmp_path, monkeypatch):
    """format.yaml's files[].name is a template too: the same loops there are stopped
    as in a piece (they were not watched: an export ran on)."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    fmts, spec, text = _format_yaml(tmp_path)
    name = re.search(r"^    name: (.+)$", text, re.M)
    assert name is not None
    spec.write_text(text.replace(name[0], f"    name: '{LOOPS}x.xml'"), encoding="utf-8")
    r = _export(tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert "file name template failed: rendering ran for more than 0.5 seconds and was " \
           "stopped" in r.stderr, r.stderr
    assert _nothing_written(tmp_path)
    assert _budget._started == [0.0]


def _stopped_calls(monkeypatch) -> list[BaseException]:
    """Each call into a template the time limit stops from now on (``_budget.watched``
    is how render.py calls a template)."""
    from pesgen import _budget

    stopped: list[BaseException] = []
    watched = _budget.watched

    def counted(call, *args):
        try:
            return watched(call, *args)
        except _budget.RenderTimeout as exc:
            stopped.append(exc)
            raise

    monkeypatch.setattr(_budget, "watched", counted)
    return stopped


@pytest.mark.parametrize("command", ["export", "dry-run", "preview"])
def test_a_template_past_its_time_limit_holds_a_command_once(tmp_path, monkeypatch, command):
    """export (its dry run) and preview render the templates on check-mapping's sample
    titles before the invoices: a call stopped there refuses the command, naming the
    template's line, and the invoices are not rendered. They were, each call with a
    limit of its own: a looping piece held an export twice the limit (2 min)."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    fmts, line = _bundle(tmp_path, NOM, LOOPS + NOM)
    stopped = _stopped_calls(monkeypatch)
    if command == "preview":
        r = _cli("preview", "-m", MAPPING, "-i", EXAMPLES / "school-export.json",
                 "--date", RUN_DATE, "--formats-dir", fmts)
    else:
        r = _cli("export", "-m", MAPPING, "-i", EXAMPLES / "school-export.json",
                 "-o", tmp_path / "out", "--date", RUN_DATE,
                 "--db", f"sqlite:///{tmp_path / 'state.sqlite3'}", "--create-store",
                 "--formats-dir", fmts, *(["--dry-run"] if command == "dry-run" else []))
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert len(stopped) == 1, stopped
    assert r.stderr.startswith(f"error: template {fmts}/pes-ormc/pes-aller.xml.j2:{line}: "
                               "rendering ran for more than 0.5 seconds and was "
                               "stopped"), r.stderr
    assert "[on check-mapping's sample titles, rendered before the invoices: the invoices " \
           "were not rendered, which would wait as long again]" in r.stderr
    assert f"[template {fmts}/pes-ormc/pes-aller.xml.j2:{line}] (rule template)" in r.stderr
    assert _nothing_written(tmp_path)


def test_check_format_stopped_on_a_sample_title_is_a_template_error_once(tmp_path,
                                                                       monkeypatch):
    """A loop only a sample title of check-mapping takes (the fixture's invoices do not):
    check-format stops it once, exit 5 naming the template's line and the sample title,
    no traceback; the library's check_bundle raises it as TemplateStopped, as an
    export does (it was made a plain TemplateError there, unlike everywhere else)."""
    from pesgen import _budget
    from pesgen.bundles import check_bundle
    from pesgen.errors import TemplateStopped
    from pesgen.formats import find_format

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    fmts, line = _bundle(tmp_path, NOM, "{% if t.invoice_number == 'SAMPLE-1' %}" + LOOPS
                         + "{% endif %}" + NOM)
    stopped = _stopped_calls(monkeypatch)
    r = _cli("check-format", "pes-ormc", "--formats-dir", fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert r.stderr.startswith(f"error: template {fmts}/pes-ormc/pes-aller.xml.j2:{line}: "
                               "rendering ran for more than 0.5 seconds and was "
                               "stopped"), r.stderr
    assert "(piece of invoice SAMPLE-1) [a sample title of check-mapping" in r.stderr
    assert "Traceback" not in r.output
    assert len(stopped) == 1, stopped
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(TemplateStopped) as info:
        check_bundle(find_format("pes-ormc", [fmts]), work)
    assert [(p.rule, p.invoice) for p in info.value.problems] == [("template", "SAMPLE-1")]
    assert len(stopped) == 2, stopped


def test_regenerate_past_the_time_limit_does_not_rebuild_the_run_again(tmp_path, monkeypatch):
    """A rebuild that fails is tried again as pesgen rendered before 2026-12-01 (the
    recorded sha256 decide): not one stopped past its time limit, which the same
    templates would hold as long again (a named filter stuck here: the recorded run's
    bundle is rendered, not a folder a test can change)."""
    import time

    from pesgen import _budget
    from pesgen.filters import FILTERS
    from pesgen.runs import export_recorded, regenerate
    from pesgen.store import Store

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    run = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                          tmp_path / "out", date.fromisoformat(RUN_DATE))
    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    monkeypatch.setitem(FILTERS, "amount", lambda *_args, **_kw: time.sleep(30))
    stopped = _stopped_calls(monkeypatch)
    with pytest.raises(TemplateError) as info:
        regenerate(store, run.run_id, tmp_path / "again")
    assert "pes-ormc/pes-aller.xml.j2:" in str(info.value)
    assert "rendering ran for more than 0.5 seconds and was stopped" in str(info.value)
    assert len(stopped) == 1, stopped
    assert not (tmp_path / "again").exists() or not list((tmp_path / "again").iterdir())


def test_a_call_within_its_time_limit_is_not_stopped(monkeypatch):
    """The watchdog stops a call only while it runs past the limit: calls that end in
    time, one after the other, are never interrupted (the handler looks again)."""
    import time

    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.3)
    for _ in range(8):
        assert _budget.start()
        time.sleep(0.1)
        _budget.stop()
    time.sleep(0.4)  # a SIGALRM sent now would find no call running: nothing raised
    assert _budget._started == [0.0]


# ten thousand million filter calls, each list within the sandbox's bounds (100 000
# items): hours of Python, in a few kilobytes
SLOW = ("(([[1] * 100000] * 100000) | map('map', 'string') | map('join') | map('length') "
        "| sum)")


def _run_on_example(command: str, tmp_path: Path, mapping: Path):
    if command == "preview":
        return _cli("preview", "-m", mapping, "-i", EXAMPLES / "school-export.json",
                    "--date", RUN_DATE)
    return _cli("export", "-m", mapping, "-i", EXAMPLES / "school-export.json",
                "-o", tmp_path / "out", "--date", RUN_DATE,
                "--db", f"sqlite:///{tmp_path / 'state.sqlite3'}", "--create-store",
                *(["--dry-run"] if command == "dry-run" else []))


@pytest.mark.parametrize("command", ["export", "dry-run", "preview"])
def test_a_mapping_expression_past_the_time_limit_stops_the_command(tmp_path, monkeypatch,
                                                                    command):
    """A binding's expression running past the limit (pesgen._budget.LIMIT, 60 s; 0.5 s
    here) on an invoice is stopped there: a mapping error (exit 3) naming the mapping's
    line and key, the record and rule mapping.time, nothing written, and the expression
    is evaluated on no other invoice. It ran for hours on each invoice: only the
    templates were watched."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, (
        OBJECT, f'''object: {{expr: "'CONSERVATOIRE FACTURE ' ~ {SLOW}"}}'''))
    r = _run_on_example(command, tmp_path, mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    record = r"\S*examples/school-export\.json:\$\.invoices\[0\]"
    assert re.match(rf"error: {re.escape(str(mapping))}:{line}: invoice\.object: the "
                    rf"expression ran for more than 0\.5 seconds on {record} and was stopped\n",
                    r.stderr), r.stderr
    assert re.search(rf"\n  - {record} invoice FA-2026-00101: invoice\.object: the expression "
                     r"ran for more than 0\.5 seconds on this invoice and was stopped: a "
                     r"filter over far more items than an invoice holds", r.stderr), r.stderr
    assert f"[mapping {mapping}:{line}: bindings.invoice.object] (rule mapping.time)" in \
        r.stderr
    assert r.stderr.count("(rule mapping.time)") == 1, r.stderr
    assert _nothing_written(tmp_path)
    assert _budget._started == [0.0]


def test_the_problems_before_a_stopped_expression_are_listed_too(tmp_path, monkeypatch):
    """The export stopped on the third invoice lists what it found on the first ones
    (a division by zero there, rule mapping.expr), not only the expression stopped."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    expr = (f"'F ' ~ ({SLOW} if invoice.number == 'FA-2026-00103' else "
            "(1 / 0 if invoice.number == 'FA-2026-00101' else ''))")
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, (OBJECT, f'''object: {{expr: "{expr}"}}'''))
    r = _run_on_example("export", tmp_path, mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    listed = [x for x in r.stderr.splitlines() if x.startswith("  - ")]
    assert re.match(r"  - \S*school-export\.json:\$\.invoices\[0\] invoice FA-2026-00101: "
                    r"invoice\.object: expression failed: division by zero", listed[0]), listed
    assert listed[0].endswith("(rule mapping.expr)"), listed
    assert re.match(r"  - \S*school-export\.json:\$\.invoices\[2\] invoice FA-2026-00103: "
                    r"invoice\.object: the expression ran for more than 0\.5 seconds",
                    listed[1]), listed
    assert listed[1].endswith(f"[mapping {mapping}:{line}: bindings.invoice.object] "
                              "(rule mapping.time)"), listed
    assert len(listed) == 2 and "2 problem(s); nothing was written." in r.stderr, r.stderr
    assert _nothing_written(tmp_path)


def test_the_bordereau_object_past_the_time_limit_stops_the_export(tmp_path, monkeypatch):
    """output.bordereau_object, evaluated once a run, is watched too: exit 3 naming its
    line, rule mapping.time, nothing written."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.5)
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, (
        'bordereau_object: {const: "CONSERVATOIRE - TRIMESTRE 1 2026-2027"}',
        f'''bordereau_object: {{expr: "'CONSERVATOIRE ' ~ {SLOW}"}}'''))
    r = _run_on_example("export", tmp_path, mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert r.stderr.startswith(f"error: {mapping}:{line}: output.bordereau_object: the "
                               "expression ran for more than 0.5 seconds and was stopped"), \
        r.stderr
    assert f"[mapping {mapping}:{line}: output.bordereau_object] (rule mapping.time)" in \
        r.stderr, r.stderr
    assert _nothing_written(tmp_path)
    assert _budget._started == [0.0]


def test_a_lines_expression_past_the_time_limit_is_stopped_at_its_line(tmp_path, monkeypatch):
    """bindings.lines as an expression is evaluated a first time to see which line
    bindings' JSON paths the invoice answers (pesgen/paths.py), then for the lines: the
    first evaluation past the limit stops the export at the lines' mapping line (exit 3,
    rule mapping.time, nothing written). That first evaluation took any error for "no
    lines", the time limit's too: the limit, raised once, was spent, and the second
    evaluation ran unwatched to its end (hours, for an expression like SLOW), the export
    going on."""
    from pesgen import _budget

    monkeypatch.setattr(_budget, "LIMIT", 0.3)
    # a couple of seconds of filter calls, on the first invoice only: past the limit,
    # and short enough that the code before this test's fix finished (exit 0)
    busy = "(([[1] * 1000] * 600) | map('map', 'string') | map('join') | map('length') | sum)"
    expr = f"invoice.lines if invoice.number != 'FA-2026-00101' or {busy} > 0 else []"
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, ("  lines: lines",
                                                        f'  lines: {{expr: "{expr}"}}'))
    r = _run_on_example("export", tmp_path, mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    # before its invoice number is read: named by its record
    assert re.match(rf"error: {re.escape(str(mapping))}:{line}: lines: the expression ran "
                    r"for more than 0\.3 seconds on \S*school-export\.json:\$\.invoices\[0\] "
                    r"and was stopped\n", r.stderr), r.stderr
    assert re.search(r"\n  - \S*school-export\.json:\$\.invoices\[0\]: "
                     r"lines: the expression ran for more than 0\.3 seconds on this invoice "
                     r"and was stopped", r.stderr), r.stderr
    assert f"[mapping {mapping}:{line}: bindings.lines] (rule mapping.time)" in r.stderr, \
        r.stderr
    assert r.stderr.count("(rule mapping.time)") == 1, r.stderr
    assert _nothing_written(tmp_path)
    assert _budget._started == [0.0]


def test_an_invoice_built_past_the_time_limit_outside_an_expression_is_stopped(monkeypatch):
    """The limit watches the whole of an invoice's building: stopped between two
    expressions (here: a busy loop before the lines are built), the error names the invoice, no
    binding, rule mapping.time."""
    import time

    from pesgen import _budget, build
    from pesgen.errors import MappingStopped
    from pesgen.formats import mapping_format
    from pesgen.mapping import load_mapping
    from pesgen.sources import read_invoices

    monkeypatch.setattr(_budget, "LIMIT", 0.3)
    mapping = load_mapping(MAPPING)
    builder = build.Builder(mapping, mapping_format(mapping), issue_date=date(2026, 11, 23))
    src = next(iter(read_invoices(EXAMPLES / "school-export.json", mapping.input)))
    real = builder._lines

    def slow_lines(*args):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pass
        return real(*args)

    monkeypatch.setattr(builder, "_lines", slow_lines)
    with pytest.raises(MappingStopped) as info:
        builder.build(src)
    (problem,) = info.value.problems
    assert problem.rule == "mapping.time" and problem.mapping is None
    assert problem.record.endswith("school-export.json:$.invoices[0]"), problem.record
    assert problem.message.startswith("building the title ran for more than 0.3 seconds on "
                                      "this invoice and was stopped"), problem.message
    assert _budget._started == [0.0]


def test_an_invoice_built_in_time_leaves_nothing_watched(monkeypatch):
    """Building a title is watched while it runs only: what the command does after it
    (validating, writing the files: unwatched) is never stopped by the limit, however
    long it takes."""
    import time

    from pesgen import _budget, build
    from pesgen.formats import mapping_format
    from pesgen.mapping import load_mapping
    from pesgen.sources import read_invoices

    monkeypatch.setattr(_budget, "LIMIT", 0.3)
    mapping = load_mapping(MAPPING)
    builder = build.Builder(mapping, mapping_format(mapping), issue_date=date(2026, 11, 23))
    src = next(iter(read_invoices(EXAMPLES / "school-export.json", mapping.input)))
    assert builder.build(src).title is not None
    time.sleep(1.5)  # past the limit, and the watchdog's look once a second
    assert _budget._started == [0.0]


def test_a_template_overflowing_a_float_is_a_template_error(tmp_path):
    fmts, line = _bundle(tmp_path, NOM, "{{ 10.0 ** 400 }}" + NOM)
    r = _export(tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert "OverflowError: " in r.stderr
    assert f"[template {fmts}/pes-ormc/pes-aller.xml.j2:{line}] (rule template)" in r.stderr


def test_a_file_name_template_nested_too_deeply_is_a_template_error(tmp_path):
    fmts, spec, text = _format_yaml(tmp_path)
    name = re.search(r"^    name: (.+)$", text, re.M)
    assert name is not None
    deep = "{{ " + "(" * 300 + "doc" + ")" * 300 + " }}"
    spec.write_text(text.replace(name[0], f"    name: '{deep}'"), encoding="utf-8")
    r = _export(tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert "file name template: maximum recursion depth exceeded" in r.stderr


# ------------------------------------------------------------------ 4. refused, not empty

@pytest.mark.parametrize("source", [
    "invoice.number | attr('__class__')",
    "invoice['__cl' ~ 'ass__']",
    "('{0.' ~ '__class__}').format(invoice.number)",
    "(('{0.' ~ '__class__}') | attr('format'))(invoice.number)",
    "(('{0.' ~ '__globals__}') | attr('format'))(lipsum)",
])
def test_an_attribute_the_sandbox_refuses_is_an_error_not_an_empty_value(source):
    """Jinja's sandbox gives an undefined value for it, which a mapping expression's
    undefined (chainable, writing nothing) made an empty field."""
    env = expression_environment()
    scope = {"invoice": {"number": "FA-1"}}
    runs = [lambda: env.compile_expression(source)(**scope)]
    fast = compile_fast(env, source)
    if fast is not None:
        runs.append(lambda: fast(scope))
    for run in runs:
        with pytest.raises(SecurityError, match="access to attribute '__(class|globals)__' "
                                                "of '(str|dict|function)' object is unsafe"):
            run()


@pytest.mark.parametrize("source, refusal", [
    ("invoice.number | attr('__class__')", "'__class__' of 'str'"),
    ("('{0.' ~ '__class__}').format(invoice.number)", "'__class__' of 'str'"),
    # a binding changing the record it reads (the bindings after it read the change)
    ("invoice.payer.update({'last_name': 'X'}) or 'CONSERVATOIRE'", "'update' of 'dict'"),
])
def test_the_export_refuses_the_binding_naming_the_mapping_key(tmp_path, source, refusal):
    """The reviewer's case: ObjPce missing from the file, exit 0, nothing said. Found
    evaluating the records, as any failure of an expression (exit 4)."""
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, (OBJECT, f'object: {{expr: "{source}"}}'))
    r = _export(tmp_path, mapping)
    assert r.exit_code == ExitCode.INPUT, r.output
    assert f"access to attribute {refusal} object is unsafe" in r.stderr
    assert f"[mapping {mapping}:{line}: bindings.invoice.object] (rule mapping.expr)" in \
        r.stderr
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("source, name", [
    ("'{0.__class__}'.format(invoice.number)", "__class__"),
    ("('{0.__class__}' | attr('format'))(invoice.number)", "__class__"),
    ("('{0.__globals__[os].environ[PESGEN_DB]}' | attr('format'))(lipsum)", "__globals__"),
    ("'{0:{1._x}}'.format(invoice.number, 1)", "_x"),
])
def test_a_format_string_reading_a_private_name_is_refused_when_loaded(tmp_path, source, name):
    mapping, (line,) = mapping_copy(tmp_path, MAPPING, (OBJECT, f'object: {{expr: "{source}"}}'))
    r = _check_mapping(mapping)
    assert r.exit_code == ExitCode.MAPPING, r.output
    assert f"expression reads '{name}': names starting with '_' are not readable in a " \
           f"mapping expression [mapping {mapping}:{line}: bindings.invoice.object] " \
           "(rule mapping.expr)" in r.stderr


@pytest.mark.parametrize("source, method, kind", [
    ("invoice.payer.update({'name': 'X'}) or 'A'", "update", "dict"),
    ("invoice.lines.append(1) or 'A'", "append", "list"),
    ("invoice.pop('number')", "pop", "dict"),
    ("invoice.setdefault('number', 'X')", "setdefault", "dict"),
    ("invoice.lines.clear() or 'A'", "clear", "list"),
])
def test_an_expression_changing_the_record_it_reads_is_refused(source, method, kind):
    """Data flows one way: an expression that changed its record (the payer's name
    changed for the bindings read after it) was evaluated as any other (exit 0). It is
    refused as ImmutableSandboxedEnvironment refuses it, on both routes (the fast
    path, ``pesgen.expr``, and Jinja's), and the record is left as it was."""
    env = expression_environment()
    record = {"number": "FA-1", "payer": {"name": "A"}, "lines": [{"amount": "1"}]}
    runs = [lambda: env.compile_expression(source)(invoice=record)]
    fast = compile_fast(env, source)
    if fast is not None:
        runs.append(lambda: fast({"invoice": record}))
    for run in runs:
        with pytest.raises(SecurityError, match=f"access to attribute '{method}' of "
                                                f"'{kind}' object is unsafe"):
            run()
    assert record == {"number": "FA-1", "payer": {"name": "A"}, "lines": [{"amount": "1"}]}


def test_an_expression_reading_a_record_s_methods_still_works():
    env = expression_environment()
    record = {"number": "FA-1", "payer": {"name": "A", "kind": None}}
    for source, expected in [("invoice.get('number')", "FA-1"),
                             ("invoice.payer.items() | list | length", 2),
                             ("invoice.payer.keys() | sort | join(',')", "kind,name"),
                             ("{'a': 'b'}.get(invoice.number, 'c')", "c")]:
        assert env.compile_expression(source)(invoice=record) == expected, source


@pytest.mark.parametrize("command", ["check-mapping", "export"])
def test_a_template_changing_what_it_renders_is_a_template_error(tmp_path, command):
    """doc.options changed by one piece was what the next piece rendered."""
    fmts, line = _bundle(tmp_path, NOM, "{{ doc.options.update({'x': 1}) }}" + NOM)
    r = _command(command, tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert "access to attribute 'update' of " in r.stderr, r.stderr
    assert f"[template {fmts}/pes-ormc/pes-aller.xml.j2:{line}] (rule template)" in r.stderr
    assert _nothing_written(tmp_path)


def test_a_template_reading_a_refused_attribute_fails_where_it_reads_it(tmp_path):
    """A template's undefined is strict, so it failed when used; `is defined` said
    false. Now the read itself is refused."""
    (tmp_path / "t.csv.j2").write_text("{{ (x | attr('__class__')) is defined }}",
                                       encoding="utf-8")
    with pytest.raises(SecurityError, match="access to attribute '__class__'"):
        template_environment(tmp_path).get_template("t.csv.j2").render(x="a")



# ------------------------------------------------------------------ 5. output file names
EMAGNUS = MAPPINGS / "villeneuve-sur-loing-emagnus.yaml"


@pytest.mark.parametrize("bundle, mapping, old, new", [
    # a NUL: the run was recorded (IdBord 1 taken), then its files could not be put in
    # place ('embedded null byte', exit 7), nor regenerated
    ("bl-emagnus", EMAGNUS, '"WTAMC001.txt"', '"WTAMC\\0001.txt"'),
    # a line break: a file named 'a<LF>b.xml' was written
    ("pes-ormc", MAPPING, None, '"PESORMC\\n.xml"'),
    ("pes-ormc", MAPPING, None, '"PESORMC\\e[2J.xml"'),  # a terminal's escape
])
def test_a_file_name_with_a_control_character_is_refused_before_the_run_is_recorded(
        tmp_path, bundle, mapping, old, new):
    fmts = tmp_path / "fmts"
    shutil.copytree(ROOT / "templates" / bundle, fmts / bundle)
    spec = fmts / bundle / "format.yaml"
    text = spec.read_text(encoding="utf-8")
    if old is None:
        found = re.search(r"^    name: (.+)$", text, re.M)
        assert found is not None
        old = found[1]
    assert old in text
    spec.write_text(text.replace(old, new, 1), encoding="utf-8")
    r = _export(tmp_path, mapping, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert "is not a plain file name: it holds the control character U+00" in r.stderr, \
        r.stderr
    assert f"[format {spec}:" in r.stderr and ": files[0].name] (rule format.file-name)" \
        in r.stderr
    assert _nothing_written(tmp_path)
    assert not (tmp_path / "state.sqlite3").exists()  # created by this export: removed


def test_a_file_named_as_the_payment_references_csv_is_refused_before_the_run_is_recorded(
        tmp_path):
    """A second file named as the first one's payment references CSV: the run was
    recorded (IdBord 1 taken), then its files not put in place ('appeared meanwhile',
    exit 7), nor could regenerate write them."""
    fmts, spec, text = _format_yaml(tmp_path)
    entry = re.search(r"^    name: (.+)\n    xsd: (.+)\n", text, re.M)
    assert entry is not None
    second = ('  - template: pes-aller.xml.j2\n'
              '    name: "A{{ doc.bordereau.number }}.references.csv"\n'
              f'    xsd: {entry[2]}\n')
    spec.write_text(text.replace(entry[0], '    name: "A{{ doc.bordereau.number }}.xml"\n'
                                 f'    xsd: {entry[2]}\n' + second), encoding="utf-8")
    r = _export(tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert "pes-ormc: file A1.references.csv would take the name of the payment references " \
           "CSV of A1.xml" in r.stderr, r.stderr
    assert f"[format {spec}:" in r.stderr and ": files[1].name] (rule format.file-name)" \
        in r.stderr
    assert _nothing_written(tmp_path)
    assert not (tmp_path / "state.sqlite3").exists()


def test_a_template_s_concatenation_may_make_exactly_its_bound(tmp_path):
    """'~' in a template: a result of MAX_OPERAND_SIZE characters is written, one more
    is refused, naming its size and the bound."""
    (tmp_path / "t.csv.j2").write_text("{{ a ~ b }}", encoding="utf-8")
    template = template_environment(tmp_path).get_template("t.csv.j2")
    half = MAX_OPERAND_SIZE // 2
    assert len(template.render(a="x" * half, b="y" * (MAX_OPERAND_SIZE - half))) == \
        MAX_OPERAND_SIZE
    with pytest.raises(SecurityError, match=f"'~': a result of {MAX_OPERAND_SIZE + 1} "
                       f"characters refused \\(at most {MAX_OPERAND_SIZE}\\)"):
        template.render(a="x" * half, b="y" * (MAX_OPERAND_SIZE - half + 1))


def test_an_option_read_by_its_key_gives_its_value_or_names_those_there_are(tmp_path):
    """``doc.options['x']``: the option's value when the format has it (a false one
    too), else the StrictUndefined refusal naming the options there are."""
    (tmp_path / "t.csv.j2").write_text("{{ o['journal'] }}|{{ o['zero'] }}\n",
                                       encoding="utf-8")
    (tmp_path / "u.csv.j2").write_text("{{ o['journl'] }}\n", encoding="utf-8")
    env = template_environment(tmp_path)
    options = Options(journal="VT", zero=0)
    assert env.get_template("t.csv.j2").render(o=options) == "VT|0\n"
    with pytest.raises(jinja2.UndefinedError, match=re.escape(
            "doc.options has no 'journl': did you mean 'journal'? (options: journal, zero)")):
        env.get_template("u.csv.j2").render(o=options)


# ------------------------------------------------ str.format, '~' and '**' at their bounds

def _peak_memory(run) -> int:
    """The most memory Python allocated while ``run()`` ran, in bytes."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("source, size", [
    ("'{:>50000000}'.format(n)", 50000000),
    # the spec resolved, then counted: the width's own field wrote 8 characters
    ("'{:>{w}}'.format(n, w=50000000)", 50000008),
    ("'{:.50000000f}'.format(1.5)", 50000000),
    ("'{a:^30000000.20000000}'.format_map({'a': n})", 50000000),
])
def test_a_format_width_is_refused_before_its_field_is_made(source, size):
    """str.format counts a field's width and precision before Python pads the field:
    50 million characters are refused without being made (not made, then refused)."""
    env = expression_environment()

    def run() -> None:
        with pytest.raises(SecurityError, match=f"^str.format: a result of about {size} "
                                                "characters refused"):
            env.compile_expression(source)(n="FA-1")

    assert _peak_memory(run) < 5 * 1024 * 1024


@pytest.mark.parametrize("width, counted", [
    ("999999999", 999999999),  # nine digits: the width itself
    ("1000000000", 10**9),  # ten and more: counted as 10**9, refused all the same
    ("9999999999", 10**9),
    ("9" * 5000, 10**9),  # longer than Python reads as a number (4300 digits)
])
def test_a_huge_format_width_is_refused_with_its_size(width, counted):
    env = expression_environment()
    source = "'{:>" + width + "}'.format(n)"
    with pytest.raises(SecurityError, match=f"^str.format: a result of about {counted} "
                                            "characters refused"):
        env.compile_expression(source)(n="FA-1")


def test_the_text_of_a_format_s_last_field_is_bounded_too():
    """A field's text is counted once made: a list written by '{}' whose text is past
    the bound is refused, though no width was asked and it is the format's only field."""
    env = expression_environment()
    items = "['x' * 100] * 1000"  # written as 1000 quoted texts: 104000 characters
    assert len(env.compile_expression(f"'{{}}'.format(({items})[:900])")()) == 93600
    with pytest.raises(SecurityError, match=r"^str.format: a result of about 104000 "
                                            r"characters refused \(at most 100020\)$"):
        env.compile_expression(f"'{{}}'.format({items})")()


def test_a_format_method_called_again_counts_each_call_on_its_own(tmp_path):
    """``{% set f = '...'.format %}``: each call of ``f`` is bounded by itself, not by
    what the calls before it made."""
    (tmp_path / "t.csv.j2").write_text(
        "{% set f = '{:>40000}'.format %}"
        "{{ f(1) | length }} {{ f(2) | length }} {{ f(3) | length }}", encoding="utf-8")
    assert template_environment(tmp_path).get_template("t.csv.j2").render() == \
        "40000 40000 40000"


def test_format_map_takes_one_mapping_and_no_keywords():
    env = expression_environment()
    assert env.compile_expression("'{a}'.format_map({'a': 1})")() == "1"
    with pytest.raises(TypeError, match=r"^format_map\(\) takes no keyword arguments$"):
        env.compile_expression("'{a}'.format_map({'a': 1}, a=2)")()
    with pytest.raises(TypeError, match=r"^format_map\(\) takes exactly one argument "
                                        r"\(2 given\)$"):
        env.compile_expression("'{a}'.format_map({'a': 1}, {'a': 2})")()


@pytest.mark.parametrize("source", ["invoice.a ~ invoice.b", "invoice.a ~ '' ~ invoice.b"])
def test_an_expression_s_concatenation_may_make_exactly_its_bound(source):
    """'~' in a mapping expression: MAX_RESULT_SIZE characters are made, one more is
    refused, naming its size and the bound (through Jinja and the fast path alike)."""
    env = expression_environment()
    half = MAX_RESULT_SIZE // 2
    fast = compile_fast(env, source)
    runs = [env.compile_expression(source), lambda **scope: fast(scope)]
    for run in runs:
        at = {"invoice": {"a": "x" * half, "b": "y" * (MAX_RESULT_SIZE - half)}}
        assert len(run(**at)) == MAX_RESULT_SIZE
        past = {"invoice": {"a": "x" * half, "b": "y" * (MAX_RESULT_SIZE - half + 1)}}
        with pytest.raises(SecurityError, match=f"^'~': a result of {MAX_RESULT_SIZE + 1} "
                           f"characters refused \\(at most {MAX_RESULT_SIZE}\\)$"):
            run(**past)


@pytest.mark.parametrize("make", [expression_environment, string_environment])
def test_a_power_may_reach_its_bound_and_not_pass_it(make):
    """``a ** b`` is estimated at ``b`` times ``a``'s bits before it is computed: 2 has
    two bits, so ``2 ** 50000`` is at the bound (MAX_OPERAND_SIZE bits) and made, and
    ``2 ** 50001`` is refused; ``9 ** (9 ** 9)`` is refused at once. Jinja's ``**``
    groups from the left, as Python's does not: ``9 ** 9 ** 9`` is ``(9 ** 9) ** 9``."""
    env = make()
    assert env.compile_expression("(2 ** 50000) % 1000")() == 376
    with pytest.raises(SecurityError, match=f"^a power of about 100002 bits refused "
                                            f"\\(at most {MAX_OPERAND_SIZE}\\)$"):
        env.compile_expression("2 ** 50001")()
    with pytest.raises(SecurityError, match=r"^a power of about 1549681956 bits refused"):
        env.compile_expression("9 ** (9 ** 9)")()
    assert env.compile_expression("9 ** 9 ** 9")() == (9 ** 9) ** 9


# ------------------------------------------------------- numbers and bytes: held too

@pytest.mark.parametrize("make", [expression_environment, string_environment])
@pytest.mark.parametrize("source, says", [
    # squaring doubles a number's bits: ten squarings of 2 ** 50000 are 6 GB
    ("(2 ** 50000) * (2 ** 50000)", "a product of about 100002 bits refused"),
    ("(2 ** 40000) * (2 ** 40000) * (2 ** 40000)", "a product of about 120002 bits refused"),
    ("(2 ** 49999) * (2 ** 50000)", "a product of about 100001 bits refused"),
    # bytes, from a text's encode(): as a text's repetition, '%' and methods
    ("('x' * 100000).encode() * 100000", "repetition to 10000000000 items refused"),
    ("'%999999999d'.encode() % 1", "'%' formatting: a result of about 1000000010 "),
    ("('%s' * 1000).encode() % ((('x' * 100000).encode(),) * 1000)",
     "'%' formatting: a result of about 100002000 "),
    ("'x'.encode().ljust(10**9)", "bytes.ljust: a result of about 1000000000 "),
    ("'x'.encode().zfill(10**9)", "bytes.zfill: a result of about 1000000000 "),
    ("('\t' * 100000).encode().expandtabs(100000)", "bytes.expandtabs: a result of about "),
    ("('x' * 100000).encode().replace('x'.encode(), ('y' * 100000).encode())",
     "bytes.replace: a result of about 10000000000 "),
    ("('x' * 100000).encode().join(['a'.encode()] * 100000)", "bytes.join: a result of "),
    ("(1).to_bytes(10**9, 'big')", "int.to_bytes: a result of about 1000000000 bytes "),
    ("(1).to_bytes(length=10**9, byteorder='big')", "int.to_bytes: a result of about "),
])
def test_a_huge_number_or_bytes_is_refused_before_it_is_made(make, source, says):
    """The operators and methods that make a number or bytes are bounded as those
    making a text are: refused at once, without making the value."""
    env = make()

    def run() -> None:
        with pytest.raises(SecurityError, match="^" + re.escape(says)):
            env.compile_expression(source)()

    assert _peak_memory(run) < 5 * 1024 * 1024


@pytest.mark.parametrize("source, expected", [
    # factors of 49999 and 50001 bits: 100000, the bound, made; one more bit refused
    ("((2 ** 49998) * (2 ** 50000)) % 1000", 2 ** 99998 % 1000),
    ("12 * 3", 36),
    ("((2 ** 30) * (2 ** 30)) % 1000", (2 ** 60) % 1000),
    ("'ab'.encode() * 3", b"ababab"),
    ("'%05d'.encode() % 42", b"00042"),
    ("'x'.encode().rjust(4, '.'.encode())", b"...x"),
    ("'a\tb'.encode().expandtabs(4)", b"a   b"),
    ("'aXa'.encode().replace('a'.encode(), 'bb'.encode())", b"bbXbb"),
    ("', '.encode().join(['a'.encode(), 'b'.encode()])", b"a, b"),
    ("(258).to_bytes(2, 'big')", b"\x01\x02"),
    ("(1).to_bytes(100000, 'big') | length", 100000),
])
def test_small_numbers_and_bytes_are_made_as_before(source, expected):
    assert expression_environment().compile_expression(source)() == expected


def test_a_template_doubling_a_list_with_plus_is_stopped(tmp_path):
    """'+' of two texts, bytes, lists or tuples is bounded as '~' is, counted before it
    is made: a loop doubling a list (ten doublings of 100 000 items are 100 million) is
    stopped at the first result over MAX_OPERAND_SIZE; numbers add as before."""
    (tmp_path / "t.csv.j2").write_text(
        "{% set ns = namespace(s=['x'] * 1000) %}{% for i in range(30) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}", encoding="utf-8")
    with pytest.raises(SecurityError, match=f"^'\\+': a result of 128000 items refused "
                                            f"\\(at most {MAX_OPERAND_SIZE}\\)$"):
        template_environment(tmp_path).get_template("t.csv.j2").render()
    (tmp_path / "n.csv.j2").write_text("{{ 1 + 2 }}|{{ 1.5 + x }}|{{ 'a' + 'b' }}|{{ [1] + [2] }}",
                                       encoding="utf-8")
    assert template_environment(tmp_path).get_template("n.csv.j2").render(x=2) == \
        "3|3.5|ab|[1, 2]"


@pytest.mark.parametrize("make, bound", [
    (lambda: template_environment(Path(__file__).parent), MAX_OPERAND_SIZE),
    (string_environment, MAX_OPERAND_SIZE),
    (expression_environment, MAX_RESULT_SIZE),
], ids=["template", "file-name", "expression"])
@pytest.mark.parametrize("kind", ["text", "list", "bytes"])
def test_a_sum_may_make_exactly_its_bound(make, bound, kind):
    """As '~': MAX_OPERAND_SIZE in a template, MAX_RESULT_SIZE in a mapping expression;
    exactly the bound is made, one more refused."""
    env = make()
    half = bound // 2
    make_value = {"text": lambda n: "x" * n, "list": lambda n: ["x"] * n,
                  "bytes": lambda n: b"x" * n}[kind]
    run = env.compile_expression("a + b")
    assert len(run(a=make_value(half), b=make_value(bound - half))) == bound
    with pytest.raises(SecurityError, match=f"^'\\+': a result of {bound + 1} items "
                                            f"refused \\(at most {bound}\\)$"):
        run(a=make_value(half), b=make_value(bound - half + 1))


def test_a_run_recorded_before_the_bound_of_plus_is_rebuilt_as_it_rendered(tmp_path):
    """``writes_none`` (a run recorded before 2026-12-01, rebuilt): '+' unbounded, as
    '~' is there, as pesgen rendered then."""
    (tmp_path / "t.csv.j2").write_text("{{ (a + a) | length }}", encoding="utf-8")
    env = template_environment(tmp_path, writes_none=True)
    assert env.get_template("t.csv.j2").render(a="x" * MAX_OPERAND_SIZE) == \
        str(2 * MAX_OPERAND_SIZE)


# ------------------------------------------- containers whose text doubles at each level

# A list holding one list twice, doubled in a loop: a few dozen objects, but its text
# doubles at each level (N = 22: 42 million characters in one str(); N = 30 ran out of
# memory, which no time limit stops)
DOUBLING = ("{% set ns = namespace(x=['ab']) %}{% for i in range(30) %}"
            "{% set ns.x = [ns.x, ns.x] %}{% endfor %}")
# the same in a mapping expression, each level ten times the one below: seven levels
# made 62 million characters before '~' refused them, nine ran out of memory
NESTED = "[" * 9 + "'ab'" + "] * 10" * 9


def _doubled(levels: int) -> list:
    nested: list = ["ab"]
    for _ in range(levels):
        nested = [nested, nested]
    return nested


@pytest.mark.parametrize("name", ["t.csv.j2", "t.xml.j2"])
@pytest.mark.parametrize("write, what", [("{{ ns.x }}", "output"),
                                         ("{{ ns.x ~ '' }}", "'~'"),
                                         ("{{ ns.x | string }}", "filter string"),
                                         ("{{ '%s' % (ns.x,) }}", "'%' formatting"),
                                         ("{{ [ns.x] | join }}", "filter join")])
def test_a_template_writing_a_list_whose_text_doubles_is_refused_before_it_is_made(
        tmp_path, name, write, what):
    """Refused at once, naming what would write it and the bound, in a flat template
    (``_Sandbox.written``) and an XML one (its memoised escape), without making the
    text: the list is sized walking each of its sub-lists once."""
    (tmp_path / name).write_text(DOUBLING + write, encoding="utf-8")
    template = template_environment(tmp_path).get_template(name)

    def run() -> None:
        with pytest.raises(SecurityError, match=f"^{re.escape(what)}: .*refused"):
            template.render()

    assert _peak_memory(run) < 5 * 1024 * 1024


@pytest.mark.parametrize("command", ["check-mapping", "export"])
def test_a_list_whose_text_doubles_is_a_template_error_naming_its_line(tmp_path, command):
    fmts, line = _bundle(tmp_path, NOM, DOUBLING + "{{ ns.x }}" + NOM)
    r = _command(command, tmp_path, MAPPING, fmts)
    assert r.exit_code == ExitCode.TEMPLATE, r.output
    assert r.stderr.startswith(f"error: template {fmts}/pes-ormc/pes-aller.xml.j2:{line}: "
                               "output: "
                               "the text of a list of about "), r.stderr
    assert f"characters or more refused (at most {MAX_OPERAND_SIZE})" in r.stderr
    assert _nothing_written(tmp_path)


@pytest.mark.parametrize("make", [expression_environment, string_environment],
                         ids=["expression", "file-name"])
@pytest.mark.parametrize("source, what", [
    ("'' ~ " + NESTED, "'~'"),
    ("'' ~ big", "'~'"),
    ("'x' ~ big ~ 'y'", "'~'"),
    ("(big,) ~ ''", "'~'"),
    ("{'k': big} ~ ''", "'~'"),
    ("namespace(x=big) ~ ''", "'~'"),
    ("'%s' % (big,)", "'%' formatting"),
    ("'%s' % big", "'%' formatting"),
    ("'{}'.format(big)", "str.format"),
    ("'{0!r}'.format(big)", "str.format"),
    ("'{k}'.format_map({'k': big})", "str.format"),
    ("[big] | join", "filter join"),
    ("'-'.join([big])", "str.join"),
    ("big | string", "filter string"),
    ("big | tojson", "filter tojson"),
    ("big | pprint", "filter pprint"),
    ("big | upper", "filter upper"),
    ("big | e", "filter e"),
    ("big | center(10)", "filter center"),
    ("'%s' | format(big)", "filter format"),
    ("'x' | replace('x', big)", "filter replace"),
    ("'x' | replace(big, 'y')", "filter replace"),  # the text it looks for, made too
    ("{'k': big} | xmlattr", "filter xmlattr"),
    ("{'k': big}.items() | string", "filter string"),
])
def test_an_expression_making_text_of_a_list_whose_text_doubles_is_refused(
        make, source, what):
    """Every route that makes text of a value (``~``, ``%``, ``str.format``, ``join``,
    the filters that make text) sizes a container first, refusing it at once over the
    bound of ``~``, its memory bounded (``big``: 30 doublings, 10 GB of text)."""
    env = make()
    run_it = env.compile_expression(source)

    def run() -> None:
        with pytest.raises(SecurityError, match=f"^{re.escape(what)}: .*refused \\(at "
                                                f"most \\d+\\)$"):
            run_it(big=_doubled(30))

    assert _peak_memory(run) < 5 * 1024 * 1024


@pytest.mark.parametrize("source", ["'' ~ invoice.a", "invoice.b ~ ' ' ~ invoice.a",
                                    "invoice.b ~ invoice.a ~ invoice.b ~ '-' ~ invoice.b",
                                    "invoice.b ~ invoice.a ~ invoice.b ~ '-'"])
def test_a_mapping_binding_joining_a_list_whose_text_doubles_is_refused(source):
    """The compiled closures of '~' (``pesgen.expr``) as Jinja's: sized first."""
    env = expression_environment()
    fast = compile_fast(env, source)
    assert fast is not None
    record = {"invoice": {"a": _doubled(30), "b": "x"}}
    slow = env.compile_expression(source)
    for run_it in (lambda: slow(**record), lambda: fast(record)):
        assert _peak_memory(lambda run_it=run_it: _refused_as_doubled(run_it)) < \
            5 * 1024 * 1024


def _refused_as_doubled(run_it) -> None:
    with pytest.raises(SecurityError, match="^'~': the text of a list of about \\d+ "
                                            "characters or more refused \\(at most "
                                            f"{MAX_RESULT_SIZE}\\)$"):
        run_it()


@pytest.mark.parametrize("make, bound", [
    (lambda: template_environment(Path(__file__).parent), MAX_OPERAND_SIZE),
    (string_environment, MAX_OPERAND_SIZE),
    (expression_environment, MAX_RESULT_SIZE),
], ids=["template", "file-name", "expression"])
def test_a_list_s_text_may_be_exactly_its_bound(make, bound):
    """As '~' (whose bound it is): MAX_OPERAND_SIZE characters in a template,
    MAX_RESULT_SIZE in a mapping expression; one more refused, its size said exactly."""
    run = make().compile_expression("'' ~ a")
    assert len(run(a=["x" * (bound - 4)])) == bound  # "['x…x']"
    with pytest.raises(SecurityError, match=f"^'~': the text of a list of about {bound + 1} "
                                            f"characters or more refused \\(at most {bound}\\)$"):
        run(a=["x" * (bound - 3)])


def _shapes() -> dict[str, object]:
    itself: list = [1]
    itself.append(itself)  # written '[1, [...]]'
    shared = ["ab", (1,)]
    pairs = {"k": (1,), 2: [None, 1.5]}
    return {"namespace": jinja2.utils.Namespace(a=1, b=["x"]), "empty set": set(),
            "empty frozenset": frozenset(), "set": {7}, "frozenset": frozenset({"a"}),
            "one-item tuple": ("x",), "empty tuple": (), "empty list": [],
            "empty dict": {}, "dict": pairs, "holding itself": itself,
            "one list twice": [shared, shared], "items": pairs.items(),
            "keys": pairs.keys(), "values": pairs.values(), "bytes": [b"\x00b"]}


@pytest.mark.parametrize("shape", sorted(_shapes()))
def test_a_container_s_text_may_be_exactly_its_bound_whatever_it_holds(shape):
    """The text of any container (a namespace, a set, a tuple of one, a dict view, a list
    holding itself...) is sized as Python writes it: a list of a text and that value
    whose text is exactly MAX_OPERAND_SIZE characters is written, one more refused."""
    value = _shapes()[shape]
    run = string_environment().compile_expression("'' ~ a")
    fill = MAX_OPERAND_SIZE - len(str(["", value]))
    assert run(a=["x" * fill, value]) == str(["x" * fill, value])
    with pytest.raises(SecurityError, match="^'~': the text of a list of about \\d+ "
                                            "characters or more refused"):
        run(a=["x" * (fill + 1), value])


@pytest.mark.parametrize("value", [
    ["x" * (MAX_OPERAND_SIZE - 6), "y"],
    {"a": "x" * (MAX_OPERAND_SIZE - 11), "b": "y"},
    {"a": "x" * (MAX_OPERAND_SIZE - 25), "b": "y"}.items(),
], ids=["list", "dict", "items"])
def test_a_container_filling_its_bound_before_its_last_item_is_refused(value):
    """Its first item (or pair) and the brackets and separators fill the bound exactly:
    the item after it is still counted, a text a few characters over the bound refused."""
    assert len(str(value)) > MAX_OPERAND_SIZE
    with pytest.raises(SecurityError, match="^'~': the text of a .* refused "
                                            f"\\(at most {MAX_OPERAND_SIZE}\\)$"):
        string_environment().compile_expression("'' ~ a")(a=value)


@pytest.mark.parametrize("name, expected", [
    ("t.csv.j2", "[['ab', 1], ('c',), {'k': {2}}]|[['ab', 1], ('c',), {'k': {2}}]x|"
                 "[[\"ab\", 1], [\"c\"], {\"k\": [2]}]"),
    ("t.xml.j2", "[[&#39;ab&#39;, 1], (&#39;c&#39;,), {&#39;k&#39;: {2}}]|"
                 "[[&#39;ab&#39;, 1], (&#39;c&#39;,), {&#39;k&#39;: {2}}]x|"
                 "[[\"ab\", 1], [\"c\"], {\"k\": [2]}]"),
])
def test_a_small_list_is_written_as_before(tmp_path, name, expected):
    (tmp_path / name).write_text("{{ a }}|{{ a ~ 'x' }}|{{ b | tojson }}", encoding="utf-8")
    a = [["ab", 1], ("c",), {"k": {2}}]
    assert template_environment(tmp_path).get_template(name).render(
        a=a, b=[["ab", 1], ["c"], {"k": [2]}]) == expected
    assert expression_environment().compile_expression("'%s|' % (a,) ~ a")(a=a) == \
        f"{a}|{a}"


def _nested(items: int, depth: int) -> list:
    value: list = [1] * items
    for _ in range(depth):
        value = [value]
    return value


def test_pprint_s_indentation_is_bounded_in_a_template(tmp_path):
    """A list of 10 000 items nested 30 deep: its text, 30 060 characters, is within the
    template's bound, but pprint writes each item on a line of its own indented 30 deep
    (340 029 characters): refused as it is written, not made whole first."""
    import pprint

    value = _nested(10_000, 30)
    assert len(str(value)) < MAX_OPERAND_SIZE < len(pprint.pformat(value))
    (tmp_path / "t.csv.j2").write_text("{{ a | pprint }}", encoding="utf-8")
    template = template_environment(tmp_path).get_template("t.csv.j2")
    with pytest.raises(SecurityError, match=f"^filter pprint: a result of more than "
                                            f"{MAX_OPERAND_SIZE} characters refused"):
        template.render(a=value)


def test_pprint_s_indentation_is_bounded_in_a_mapping_expression():
    """A dict's value is indented by its key's width: a key of 50 000 characters before
    a list of 100 items is 5 million characters of pprint (its text: 50 304), over the
    expression's bound; the peak memory stays near the bound, not the whole result."""
    import pprint

    value = {"k" * 50_000: list(range(100))}
    assert len(str(value)) < MAX_RESULT_SIZE < len(pprint.pformat(value))
    run = expression_environment().compile_expression("a | pprint")
    with pytest.raises(SecurityError, match=f"^filter pprint: a result of more than "
                                            f"{MAX_RESULT_SIZE} characters refused"):
        run(a=value)


def test_a_run_recorded_before_the_bounds_is_rebuilt_with_pprint_unbounded(tmp_path):
    """``writes_none`` (a run recorded before 2026-12-01, rebuilt as it rendered)."""
    import pprint

    value = _nested(10_000, 30)
    (tmp_path / "t.csv.j2").write_text("{{ a | pprint }}", encoding="utf-8")
    assert template_environment(tmp_path, writes_none=True).get_template("t.csv.j2").render(
        a=value) == pprint.pformat(value)


@pytest.mark.parametrize("make, bound", [
    (lambda: template_environment(Path(__file__).parent), MAX_OPERAND_SIZE),
    (expression_environment, MAX_RESULT_SIZE),
], ids=["template", "expression"])
def test_pprint_writes_what_pformat_writes_up_to_its_bound(make, bound):
    import pprint

    run = make().compile_expression("a | pprint")
    for value in ({"b": [1, 2, {"z": (3, "é")}], "a": None}, list(range(40)),
                  _nested(30, 4), "x" * (bound - 2)):
        assert run(a=value) == pprint.pformat(value)
    with pytest.raises(SecurityError, match="^filter pprint: a result of more than"):
        run(a="x" * (bound - 1))


def test_a_run_recorded_before_the_bound_of_a_list_s_text_is_rebuilt_as_it_rendered(
        tmp_path):
    """``writes_none`` (a run recorded before 2026-12-01, rebuilt): a list's text is
    not bounded in its output, '~' and filters, as '~' and '+' are not there."""
    (tmp_path / "t.csv.j2").write_text("{{ a }}|{{ a ~ '' }}|{{ a | string }}",
                                       encoding="utf-8")
    a = ["x" * MAX_OPERAND_SIZE]
    assert template_environment(tmp_path, writes_none=True).get_template("t.csv.j2").render(
        a=a) == "|".join([str(a)] * 3)
    with pytest.raises(SecurityError, match="^output: the text of a list of about"):
        template_environment(tmp_path).get_template("t.csv.j2").render(a=a)


def test_a_join_of_bytes_is_counted_by_its_bytes():
    """The size guard of ``sep.join`` counts a bytes item by its length, not its repr's
    (``b'ab'``: 5): a join of bytes just under the limit is not refused early."""
    from pesgen._jinja import _joined_size

    assert _joined_size([b"ab", b"cd"], b"-", 0) == 5
    assert _joined_size(["ab", "cd"], "-", 0) == 5
    assert _joined_size([12, "cd"], "-", 0) == 5
