"""A format bundle's self-test: render its fixture and compare with its expected output.

A bundle folder ``templates/<name>/`` may hold ``fixture/`` (one ``input.json`` or
``input.csv`` and a ``mapping.yaml`` naming the format) and ``expected/`` (the files
the fixture renders with run date 2026-11-23 and first IdBord 1). The expected files
are checked against the bundle's own XSD or layout first (a golden file that is
invalid would make the comparison moot), then the fresh rendering must match them
byte for byte; each mismatch comes as a unified diff.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._yaml import line_of, load_yaml_file
from .across import check_across
from .atomic import commit, discard, stage
from .errors import (
    MappingError,
    OutputInvalidError,
    PesgenError,
    Problem,
    TemplateError,
    TemplateStopped,
    UsageError,
)
from .export import ExportResult, check_output, open_exporter
from .formats import FileSpec, Format, typ_bord_problems
from .mapping import Mapping
from .resources import installed_data
from .text import charset_chars

if TYPE_CHECKING:
    from .layout import Column

FIXTURE_DATE = date(2026, 11, 23)
FIXTURE_FIRST_NUMBER = 1
# formats whose files go to Hélios as they are: their expected XML must also pass the
# DGFiP schema package when it is available
_DGFIP_RULES = ("pes-ormc", "pes-titres")


@dataclass
class Fixture:
    input: Path
    mapping: Path
    expected: Path


def fixture_of(fmt: Format) -> Fixture | None:
    """The bundle's fixture, or None when it has none; a half-made one is an error."""
    folder = fmt.folder / "fixture"
    if not folder.is_dir():
        return None
    inputs = sorted(p for p in folder.glob("input.*") if p.suffix in (".json", ".csv"))
    mapping = folder / "mapping.yaml"
    if len(inputs) != 1 or not mapping.is_file():
        # a bundle problem (exit 3), as a format.yaml's: the bundle is not finished
        found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise MappingError(f"{folder}: a fixture holds one input.json or input.csv and a "
                           f"mapping.yaml (found {found}): put an anonymised export and the "
                           "mapping that exports it with this format there "
                           "(docs/onboarding.md, step 6)")
    return Fixture(inputs[0], mapping, fmt.folder / "expected")


def _fixture_mapping(fixture: Fixture) -> Mapping | None:
    """The fixture's mapping, loaded for the warnings said with a refusal of its
    rendering (check-format); None when it does not load (its own problem is said)."""
    from .mapping import load_mapping

    try:
        return load_mapping(fixture.mapping)
    except PesgenError:
        return None


def render_fixture(fmt: Format, out_dir: Path, official_xsd: Path | None = None
                   ) -> tuple[ExportResult, dict[str, FileSpec]]:
    """Export the fixture into ``out_dir`` (no state store); returns the result and
    the file spec each written file name comes from."""
    fixture = fixture_of(fmt)
    if fixture is None:
        raise MappingError(f"format {fmt.name} has no fixture/ folder: its self-test renders "
                           f"one ({fmt.folder / 'fixture'}: docs/onboarding.md, step 6)")
    if not any(r in fmt.rules for r in _DGFIP_RULES):
        official_xsd = None  # e.g. a finance package's PES-like import: not for Hélios
    # before the mapping is opened with another bundle (which it may not fit, or which
    # may not exist): said of the fixture, not as that bundle's problems
    data, _, _ = load_yaml_file(fixture.mapping)
    output = data.get("output") if isinstance(data, dict) else None
    named = output.get("format") if isinstance(output, dict) else None
    if isinstance(named, str) and named != fmt.name:
        _other_format(fmt, fixture, named, line_of(data, ["output", "format"]))

    def same_bundle(found: Format) -> None:
        if found.folder.resolve() != fmt.folder.resolve():
            _other_format(fmt, fixture, found.name, line_of(data, ["output", "format"]))

    # the bundle under test comes first, whatever else has the same name
    exporter = open_exporter(fixture.mapping, out_dir, FIXTURE_DATE, official_xsd,
                             [fmt.folder.parent], None, on_format=same_bundle,
                             lost_policies=False)
    prepared = exporter.prepare(fixture.input)
    try:
        commit(exporter.finish(prepared, FIXTURE_FIRST_NUMBER))
    finally:
        prepared.close()
    specs: dict[str, FileSpec] = {}
    for offset in range(len(prepared.bordereaux)):
        doc = exporter.document(FIXTURE_FIRST_NUMBER + offset, 0, Decimal(0))
        for renderer in exporter.renderers:
            specs[renderer.file_name(doc)] = renderer.spec
    return prepared.result, specs


def _other_format(fmt: Format, fixture: Fixture, named: str, line: int) -> None:
    """Refuse a fixture whose mapping exports with another bundle than its own."""
    raise MappingError(
        f"{fixture.mapping}: output.format is '{named}', the fixture belongs to "
        f"'{fmt.name}'", [Problem(
            "format.fixture-mapping", f"output.format is '{named}', but this fixture is "
            f"bundle {fmt.name}'s self-test: its mapping exports with that bundle "
            f"(output.format: {fmt.name})",
            mapping=f"{fixture.mapping}:{line}: output.format", source="mapping")])


def validate_output(fmt: Format, path: Path, spec: FileSpec, official_xsd: Path | None = None,
                    encoding: str | None = None) -> list[Problem]:
    """Check one file against its spec's XSD (plus the DGFiP package for files that go
    to Hélios, when given) or layout."""
    official = official_xsd if any(r in fmt.rules for r in _DGFIP_RULES) else None
    return check_output(spec, path, path.name, encoding or fmt.encoding, official)


def compare(expected: Path, produced: Path, encoding: str) -> list[str]:
    """Unified diffs between two folders (file by file); [] when identical. The hidden
    files of ``expected`` (``.gitkeep``, ``.DS_Store``) are not compared (``hidden``)."""
    out = []
    want = {p.name: p for p in sorted(expected.iterdir()) if p.is_file() and not hidden(p)} \
        if expected.is_dir() else {}
    got = {p.name: p for p in sorted(produced.iterdir()) if p.is_file()}
    for name in sorted(set(want) | set(got)):
        if name not in got:
            out.append(f"{name}: expected but not produced")
        elif name not in want:
            out.append(f"{name}: produced but not expected")
        elif want[name].read_bytes() != got[name].read_bytes():
            a = want[name].read_bytes().decode(encoding, errors="replace")
            b = got[name].read_bytes().decode(encoding, errors="replace")
            diff = "".join(_shown(line) for line in difflib.unified_diff(
                a.splitlines(keepends=True), b.splitlines(keepends=True),
                f"expected/{name}", f"produced/{name}", n=2, lineterm="\n"))
            out.append(diff or f"{name}: differs (line endings or encoding)")
    return out


# what a diff line shows of an invisible character: \r, \t, \x00, \ufeff...
_ESCAPES = {"\r": "\\r", "\t": "\\t", "\\": "\\\\"}
NO_NEWLINE = "\\ No newline at end of file\n"


def _shown(line: str) -> str:
    """One line of a unified diff as it is printed: a removed or added line that ends in
    white space or holds a control or invisible character (a stray \\r, a trailing
    space, a tab, a byte order mark) shows them escaped and its end marked with ``$``,
    so two lines that differ only there do not look the same; a last line without a
    line break is followed by git's ``\\ No newline at end of file``, never glued to
    the next diff line."""
    ending = "\n" if line.endswith("\n") else ""
    body = line[:-1] if ending else line
    if line[:1] in "-+" and not line.startswith(("--- ", "+++ ")) and \
            (body[-1:].isspace() or any(_invisible(c) for c in body)):
        body = "".join(_ESCAPES.get(c) or (c.encode("unicode_escape").decode("ascii")
                                           if _invisible(c) else c) for c in body) + "$"
    return body + "\n" if ending else body + "\n" + NO_NEWLINE


def _invisible(char: str) -> bool:
    """A control or format character (\\r, \\x00, a byte order mark, a zero-width space):
    nothing on the terminal shows it."""
    return unicodedata.category(char)[0] == "C"


def hidden(path: Path) -> bool:
    """A file or folder of expected/ whose name starts with a dot (``.gitkeep``,
    ``.DS_Store``, ``.svn``): put there by a tool, never rendered; check-format neither
    compares nor removes it."""
    return path.name.startswith(".")


def _expected_files(expected: Path) -> list[Path]:
    """The files of an expected/ folder, its README and hidden files aside."""
    if not expected.is_dir():
        return []
    return [p for p in expected.iterdir()
            if p.is_file() and p.name != "README.md" and not hidden(p)]


def expected_folders(fmt: Format, expected: Path) -> list[Problem]:
    """A warning for each folder of expected/ (hidden ones aside): check-format renders
    files only, so it neither compares what a folder holds nor removes it, even with
    ``--regen``."""
    if not expected.is_dir():
        return []
    return [Problem("format.expected-folder", f"{path.name}/ is a folder: check-format "
                    "renders files only, so it compares nothing in it and --regen does not "
                    "remove it: delete it, or move it out of expected/, if it is stale",
                    mapping=f"{path}", source="bundle")
            for path in sorted(expected.iterdir())
            if path.is_dir() and not path.is_symlink() and not hidden(path)]


def regenerate_expected(produced: Path, expected: Path) -> list[Path]:
    """Make ``expected`` hold the files of ``produced`` and its README; return the files
    it removed (those the fixture no longer renders). Hidden files (``hidden``) and
    folders are left as they are. The new files are staged beside the old ones and
    renamed over them: an interrupted rewrite leaves each file whole, old or new."""
    expected.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in sorted(produced.iterdir()) if p.is_file()]
    temps: list[tuple[Path, Path]] = []
    try:
        for name in names:
            stage(temps, expected / name, [(produced / name).read_bytes()],
                  like=expected / name)
        if "README.md" not in names:
            names.append("README.md")
            stage(temps, expected / "README.md", [_EXPECTED_README.encode("utf-8")],
                  like=expected / "README.md")
    except BaseException:
        discard(temps)
        raise
    commit(temps, overwrite=True)
    removed = []
    for path in sorted(expected.iterdir()):
        if path.name in names or hidden(path) or (path.is_dir() and not path.is_symlink()):
            continue
        path.unlink()
        removed.append(path)
    return removed


_EXPECTED_README = """\
# Expected output of the fixture

What `fixture/` renders (run date 2026-11-23, first IdBord 1), byte for byte.
`pesgen check-format <name>` and `tests/test_golden_formats.py` compare a fresh
rendering with these files after validating them; `--regen` (or
`PESGEN_REGEN_GOLDEN=1`) rewrites them: review the diff before committing.
"""


# the scaffold README's first line: "**Status: draft.** TODO: ..."
_README_STATUS = re.compile(r"\*\*Status:?\s*([A-Za-z]+)")


def unfinished(fmt: Format) -> list[Problem]:
    """What keeps a bundle from passing its self-test whatever it renders: the
    scaffold's TODO placeholders left in format.yaml, and a README whose **Status:**
    says another status than format.yaml's (the status ``pesgen formats`` lists)."""
    problems = list(fmt.todos)
    readme = fmt.folder / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return problems  # a README is optional
    for number, line in enumerate(text.splitlines(), 1):
        found = _README_STATUS.search(line)
        if found is None:
            continue
        said = found.group(1).lower()
        if said != fmt.status:
            source = fmt.folder / "format.yaml"
            data, _, _ = load_yaml_file(source, "format")
            problems.append(Problem(
                "format.readme-status", f"README.md says **Status: {said}**, format.yaml "
                f"says status: {fmt.status} ({source}:{line_of(data, ['status'])}): make "
                "them agree (pesgen formats lists format.yaml's)",
                mapping=f"{readme}:{number}: Status"))
        break  # the first Status line is the bundle's
    return problems


def check_samples(fmt: Format, result: ExportResult, warn: Callable[[Problem], None],
                  official_xsd: Path | None = None) -> None:
    """Render the bundle's templates on check-mapping's two sample titles with the
    fixture's mapping (``sample.check_coverage``, as check-mapping does); a template
    error names the file and line (exit 5) and says it came from a sample title, not
    from the fixture. ``warn`` is given what the fixture's mapping binds that the
    templates do not write; a value one of its split policies fills that they do not
    write refuses the bundle (exit 3), as it refuses the mapping in check-mapping. Each
    file with an XSD of its own is validated against it, and each file with a layout
    checked against it, as check-mapping checks its sample files
    (``sample.schema_problems``, ``sample.layout_problems``: the sample's made-up values
    not held against the places bound values go; each refusal naming its template line),
    a file that goes to Hélios against the DGFiP package ``official_xsd`` too when given
    (as its expected files): one refused refuses the bundle (exit 6), the branches the
    fixture does not take included."""
    from .sample import check_coverage, check_templates

    try:
        sample, _ = check_coverage(
            result.mapping, fmt, warn, f"{fmt.name}: a policy of the fixture's mapping "
            "fills a value no template of the bundle writes",
            check_templates(result.mapping, fmt, laid_out=True, validated=True,
                            official_xsd=official_xsd
                            if any(r in fmt.rules for r in _DGFIP_RULES) else None))
    except TemplateError as exc:
        # a call stopped past its time limit stays TemplateStopped, as export.py keeps it:
        # what a caller tells from TemplateError, not to render the templates again
        error = TemplateStopped if isinstance(exc, TemplateStopped) else TemplateError
        raise error(f"{exc} [a sample title of check-mapping (every optional part, or "
                    "none), rendered with the fixture's mapping: a branch the fixture does "
                    "not take]", exc.problems) from None
    broken, what = sample.broken()
    if broken:
        raise OutputInvalidError(
            f"{fmt.name}: the bundle's files, rendered on check-mapping's sample titles "
            f"with the fixture's mapping, {what} ({len(broken)} problem(s)): an export "
            "writing them so is refused", broken)


def unexercised(fmt: Format, work: Path, specs: dict[str, FileSpec]) -> list[Problem]:
    """Each file of the bundle the fixture renders empty or not at all (a side file,
    e.g. joint debtors, when no fixture invoice fills it): its XSD or layout checked no
    record of it, so a broken branch of its template (a column too many, a value in a
    reserved column) passes the self-test. The sample titles render it, and their files
    are checked against the XSD or layout (``check_samples``), but not their values,
    which are made up."""
    source = fmt.folder / "format.yaml"
    problems = []
    produced = {name for name, spec in specs.items()
                if (work / name).is_file() and (work / name).stat().st_size}
    seen = [spec for name, spec in specs.items() if name in produced]
    data = None
    for i, spec in enumerate(fmt.files):
        if spec in seen:  # the fixture's export loaded the bundle again: equal specs
            continue
        if data is None:
            data, _, _ = load_yaml_file(source, "format")
        names = sorted(name for name, s in specs.items() if s == spec) or [spec.template]
        checker = "layout" if spec.layout is not None else "XSD"
        problems.append(Problem(
            "format.fixture-empty", f"{', '.join(names)}: the fixture gives it no record: "
            f"its {checker} checks none of the fixture's values in it (give the fixture an "
            "invoice that fills it, then check-format --regen)",
            mapping=f"{source}:{line_of(data, ['files', i, 'template'])}: files[{i}]"))
    return problems


# what a bundle's folder holds that is not a template, however it is named
_NOT_TEMPLATES = ("fixture", "expected")


def unused_parts(fmt: Format) -> list[Problem]:
    """Warnings of what the bundle declares or holds that no output reads, each naming
    format.yaml:line: a template file (``*.j2``) that no ``files[]`` entry names and no
    template reachable from them includes, imports or extends (rule
    ``format.dead-template``); an option of ``defaults.options`` that none of those
    templates, nor a file name, reads (``format.unread-option``).

    Jinja cannot say what a template will read without rendering it, so this reads the
    templates' syntax trees (``jinja2.meta``): an option counts as read when its name
    is there as an attribute (``doc.options.service``, ``o.service``) or a quoted string
    (``doc.options['service']``); a name built while rendering is not seen, so its
    option is warned of. A template included by a name built while rendering
    (``{% include kind ~ '.j2' %}``) makes every template possibly read: no template is
    then warned of, and the options are looked for in all of them."""
    import jinja2
    from jinja2 import meta, nodes

    from ._jinja import refusal, string_environment, template_environment

    source = fmt.folder / "format.yaml"
    env = template_environment(fmt.folder)
    trees: dict[str, jinja2.nodes.Template] = {}
    dynamic = False

    def parse(name: str) -> jinja2.nodes.Template | None:
        try:
            # a bundle's environment has its loader (_ConfinedLoader)
            text = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
            return env.parse(text, name)
        except (jinja2.TemplateError, OSError, RecursionError):
            return None  # a broken or missing template is reported when it renders

    todo = [spec.template for spec in fmt.files]
    while todo:
        name = todo.pop()
        if name in trees:
            continue
        tree = parse(name)
        if tree is None:
            continue
        trees[name] = tree
        for referenced in meta.find_referenced_templates(tree):
            if referenced is None:
                dynamic = True
            else:
                todo.append(referenced)
    on_disk = sorted(
        path.relative_to(fmt.folder).as_posix() for path in fmt.folder.rglob("*.j2")
        if path.is_file() and path.relative_to(fmt.folder).parts[0] not in _NOT_TEMPLATES
        and refusal(fmt.folder, path.relative_to(fmt.folder).as_posix()) is None)
    data, _, _ = load_yaml_file(source, "format")
    problems = []
    if dynamic:  # which templates are read is told only by rendering: every one may be
        for name in on_disk:
            tree = trees.get(name) or parse(name)
            if tree is not None:
                trees[name] = tree
    else:
        for name in on_disk:
            if name not in trees:
                problems.append(Problem(
                    "format.dead-template", f"{name}: no files[] entry names this template "
                    "and no template of the bundle includes, imports or extends it: it "
                    "renders nothing; delete it, or name it in files[]",
                    mapping=f"{source}:{line_of(data, ['files'])}: files"))
    options = (data.get("defaults") or {}).get("options") or {}
    if not options:
        return problems
    strings = string_environment()
    for spec in fmt.files:
        try:
            trees[f"files[].name {spec.name}"] = strings.parse(spec.name)
        except (jinja2.TemplateError, RecursionError):
            continue  # reported when the file is named
    read: set[str] = set()
    for tree in trees.values():
        read.update(node.attr for node in tree.find_all(nodes.Getattr))
        read.update(node.value for node in tree.find_all(nodes.Const)
                    if isinstance(node.value, str))
    for key in options:
        if str(key) not in read:
            problems.append(Problem(
                "format.unread-option", f"option {key} is read by no template of the "
                f"bundle nor by a file name (doc.options.{key}): a mapping setting "
                f"output.options.{key} changes nothing; read it in a template, or remove "
                "it", mapping=f"{source}:{line_of(data, ['defaults', 'options', key])}: "
                f"defaults.options.{key}"))
    return problems


# the model's text fields a template reaches by attributes, by the format.yaml field
# whose limit the build holds them to ("*": an item of t.lines, a loop's variable)
_LIMITED: dict[tuple[str, ...], str] = {
    **{("t", holder, key): f"debtor.{key}" for holder in ("debtor", "joint_debtor")
       for key in ("name", "first_name", "complement_name", "civility", "ref")},
    **{("t", holder, "address", key): f"address.{key}" for holder in ("debtor", "joint_debtor")
       for key in ("street", "complement", "locality", "city")},
    ("t", "object"): "title.object", ("t", "lines", "*", "label"): "line.label",
    ("t", "mandate", "rum"): "mandate.rum", ("t", "mandate", "label"): "mandate.label",
    ("t", "mandate", "account", "holder"): "account.holder",
    ("doc", "bordereau", "object"): "bordereau.object",
}


# Jinja's filters a value may go through before fixed(N) or zfill(N) and still be
# followed (``_width_filters``): each writes a text no longer than the one it is given,
# whatever it is (trim, striptags, string), or whatever the field's charset holds
# (the case filters: upper writes 'ß' as 'SS', lower 'İ' as two, so only in a charset
# without such a character: ``_lengthens``), or gives the value or its own constant
# text (default, d: when that text fits the width)
_SHORTENING = frozenset({"trim", "striptags", "string"})
_CASED = frozenset({"upper", "lower", "title", "capitalize"})
_DEFAULTS = frozenset({"default", "d"})
_KEPT = _SHORTENING | _CASED | _DEFAULTS


# what each case filter does to a character (Jinja's title upper-cases a word's first
# character and lower-cases the rest; capitalize, Python's, title-cases the first)
_CASE_OPS = {"upper": (str.upper,), "lower": (str.lower,),
             "title": (str.upper, str.lower), "capitalize": (str.title, str.lower)}


@cache
def _lengthens(name: str, charset: str) -> str | None:
    """The first character of ``charset`` the case filter ``name`` may write as more than
    one ('ß': 'SS' in upper, 'Ss' in capitalize), None when none: lower lengthens none
    of latin-1, upper none of ascii. utf-8 holds one for each ('İ' in lower, 'ß')."""
    if charset == "utf-8":
        return "\u0130" if name == "lower" else "\u00df"
    ops = _CASE_OPS[name]
    return next((c for c in charset_chars(charset) if any(len(op(c)) > 1 for op in ops)),
                None)


def _unfollowed(chain: tuple[Any, ...], charset: str, width: int) -> bool:
    """Whether a filter of ``chain`` (those a value goes through before fixed(``width``),
    in the order applied) may write a value of the field's ``charset`` longer than it is
    given: a case filter where the charset holds a character it lengthens, a default
    whose text is not a constant one of ``width`` characters or fewer."""
    from jinja2 import nodes

    for node in chain:
        if node.name in _CASED and _lengthens(node.name, charset) is not None:
            return True
        if node.name in _DEFAULTS:
            given = node.args[0] if node.args else next(
                (kw.value for kw in node.kwargs if kw.key == "default_value"), None)
            if given is not None and not (
                    isinstance(given, nodes.Const) and isinstance(given.value, str)
                    and len(given.value) <= width):
                return True
    return False


def _filter_text(node: Any) -> str:
    """A filter as a template writes it: 'upper', "default('', true)" (its constant
    arguments; '…' for another)."""
    from jinja2 import nodes

    def arg(value: Any) -> str:
        if not isinstance(value, nodes.Const):
            return "…"
        if isinstance(value.value, bool) or value.value is None:
            return str(value.value).lower()
        return repr(value.value)

    args = [arg(a) for a in node.args] + [f"{kw.key}={arg(kw.value)}" for kw in node.kwargs]
    return f"{node.name}({', '.join(args)})" if args else node.name


def _width_filters(tree: Any) -> list[tuple[Any, tuple[str, ...], str, tuple[Any, ...]]]:
    """(node, the attributes' path of the value it filters: ('t', 'debtor', 'name'),
    how it was followed, the filters of ``_KEPT`` the value went through first, in the
    order applied) of each fixed and zfill filter of a template's syntax ``tree`` whose
    value is reached by attributes from t, doc, a name set to such a value, a loop over
    t.lines ('*': its item), or a parameter of a macro of the template that the template
    calls with such a value (one each call's: ``{% macro f(v) %}{{ v | fixed(10) }}``
    called as ``f(t.debtor.name)``), said as " (macro f's parameter v, called at line
    12)"; through those filters on the way (``t.debtor.name | upper | fixed(10)``, ``{%
    set n = t.debtor.name | trim %}``, ``f(t.debtor.name | trim)``), which
    ``narrow_widths`` judges. A name set to two values is not followed, nor a macro
    another template defines (imported), nor one defined twice, nor another filter."""
    from jinja2 import nodes

    # a name set: (its path, the filters its value went through); None: two values
    aliases: dict[str, tuple[tuple[str, ...], tuple[Any, ...]] | None] = {}
    # the macros of the template, by name (None: defined twice), and what their
    # parameters are given: (macro, parameter) -> [(path, line of the call, filters)]
    macros: dict[str, Any] = {}
    given: dict[tuple[str, str], list[tuple[tuple[str, ...], int, tuple[Any, ...]]]] = {}
    filters: list[tuple[Any, Any]] = []  # (filter node, the macro holding it or None)
    calls: list[tuple[Any, Any]] = []  # (call node, the macro holding it or None)

    def walk(node: Any, macro: Any) -> None:
        for child in node.iter_child_nodes():
            inner = macro
            if isinstance(child, nodes.Macro):
                macros[child.name] = None if child.name in macros else child
                inner = child
            elif isinstance(child, nodes.Filter):
                filters.append((child, macro))
            elif isinstance(child, nodes.Call):
                calls.append((child, macro))
            walk(child, inner)

    walk(tree, None)

    def params(macro: Any) -> list[str]:
        return [arg.name for arg in macro.args] if macro is not None else []

    def paths_of(node: Any, macro: Any
                 ) -> list[tuple[tuple[str, ...], str, tuple[Any, ...]]]:
        outer: list[Any] = []  # the filters, the last applied first
        while isinstance(node, nodes.Filter) and node.name in _KEPT and node.node is not None:
            outer.append(node)
            node = node.node
        chain = tuple(reversed(outer))
        attrs: list[str] = []
        while isinstance(node, nodes.Getattr):
            attrs.append(node.attr)
            node = node.node
        if not isinstance(node, nodes.Name):
            return []
        # a parameter of the macro holding it, which the template calls: what each call
        # gives it (piece(t, doc), which the renderer calls, keeps t and doc the model's)
        key = (macro.name, node.name) if macro is not None else None
        if key in given and node.name in params(macro) and macros.get(key[0]) is macro:
            return [((*path, *reversed(attrs)),
                     f" (macro {key[0]}'s parameter {node.name}, called at line {line})",
                     (*before, *chain))
                    for path, line, before in given[key] if not (before and attrs)]
        base = aliases.get(node.name, ((node.name,), ()))
        if base is None or (base[1] and attrs):  # an attribute of a filtered value
            return []
        return [((*base[0], *reversed(attrs)), "", (*base[1], *chain))]

    def path_of(node: Any) -> tuple[tuple[str, ...], tuple[Any, ...]] | None:
        found = paths_of(node, None)
        return (found[0][0], found[0][2]) if found else None

    def alias(target: Any, path: tuple[tuple[str, ...], tuple[Any, ...]] | None) -> None:
        if isinstance(target, nodes.Name) and target.name not in ("t", "doc"):
            known = aliases.get(target.name, path)
            aliases[target.name] = path if known == path else None

    for assign in tree.find_all(nodes.Assign):
        alias(assign.target, path_of(assign.node))
    for loop in tree.find_all(nodes.For):
        alias(loop.target, (("t", "lines", "*"), ()) if path_of(loop.iter) ==
              (("t", "lines"), ()) else None)
    # each call of a macro of the template: (the call, the macro holding it, [(parameter,
    # the value given)]); a parameter a call gives is its calls' values alone (none that
    # can be followed: nothing said), from the first pass on
    bound: list[tuple[Any, Any, list[tuple[str, Any]]]] = []
    for call, holder in calls:
        callee = macros.get(call.node.name) if isinstance(call.node, nodes.Name) else None
        if callee is not None:
            names = params(callee)
            args = [*zip(names, call.args, strict=False),
                    *((kw.key, kw.value) for kw in call.kwargs if kw.key in names)]
            bound.append((call, holder, args))
            for name, _arg in args:
                given.setdefault((callee.name, name), [])
    for _ in range(len(macros) + 1):  # a macro calling another: followed to the end
        more = False
        for call, holder, args in bound:
            for name, arg in args:
                known = given[(call.node.name, name)]
                for path, _via, chain in paths_of(arg, holder):
                    if (path, call.lineno, chain) not in known:
                        known.append((path, call.lineno, chain))
                        more = True
        if not more:
            break
    found: list[tuple[Any, tuple[str, ...], str, tuple[Any, ...]]] = []
    for node, holder in filters:
        if node.name in ("fixed", "zfill") and node.args and node.node is not None:
            found.extend((node, path, via, chain)
                         for path, via, chain in paths_of(node.node, holder))
    return found


def narrow_widths(fmt: Format, mapping: Mapping | None = None) -> list[Problem]:
    """Warnings of a text field a template writes through ``fixed(N)`` or ``zfill(N)``
    (``t.debtor.complement_name | fixed(38)``) that format.yaml does not limit to N or
    fewer characters (rule ``format.field-width``): a longer value passes the build's
    length rule and its policies (name_overflow, text_overflow) and is refused by the
    template at export, by invoice, a template error. Read from the templates' syntax
    trees: the field written straight through the filter, by ``t.…``, ``doc.…``, a name
    set to one (``{% set d = t.debtor %}``), a loop over ``t.lines``, or a parameter of
    a macro the template calls with such a value (``_width_filters``), through filters
    that write no value of the field's charset longer before (``| trim | fixed(38)``;
    ``| lower`` but in utf-8; ``| upper``, ``| title``, ``| capitalize`` in an ascii or
    sepa field, not a latin-1 one, where 'ß' becomes 'SS'; ``| default('')``); a value
    filtered otherwise,
    built by an expression, or passed to a macro another template defines, is not
    followed. Of a file with a layout, the column the value is written in, as the layout
    declares it (``sample.width_columns``, on the sample title of ``mapping``, the
    fixture's), when one alone holds it."""
    import jinja2
    from jinja2 import nodes

    from ._jinja import template_environment

    env = template_environment(fmt.folder)
    source = fmt.folder / "format.yaml"
    data, _, _ = load_yaml_file(source, "format")
    narrow = []
    for name in dict.fromkeys(spec.template for spec in fmt.files):
        try:
            text = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
            tree = env.parse(text, name)
        except (jinja2.TemplateError, OSError, RecursionError):
            continue  # a broken or missing template is reported when it renders
        for node, path, via, chain in _width_filters(tree):
            width = node.args[0]
            field = _LIMITED.get(path)
            if (field is None or not isinstance(width, nodes.Const)
                    or type(width.value) is not int
                    or _unfollowed(chain, fmt.limit(field).charset, width.value)):
                continue
            limit = fmt.limit(field).max
            if limit is not None and limit <= width.value:
                continue
            narrow.append((name, node, path, via, chain, field, limit))
    columns: dict[tuple[str, tuple[str, ...], int], str] = {}
    if narrow and mapping is not None:
        from .sample import width_columns  # it renders through the export

        try:
            columns = width_columns(mapping, fmt, [(name, path, node.args[0].value)
                                                   for name, node, path, *_ in narrow])
        except PesgenError:  # said by the command's own checks: the columns are left out
            columns = {}
    problems = []
    for name, node, path, via, chain, field, limit in narrow:
        width = node.args[0]
        said = (f"limits to {limit} characters" if limit is not None
                else "does not limit")
        line = line_of(data, ["fields", field]) if limit is not None \
            else line_of(data, ["fields"])
        written = "".join(f" | {_filter_text(f)}" for f in chain)
        column = columns.get((name, path, width.value))
        into = f" into {column}" if column else ""
        problems.append(Problem(
            "format.field-width", f"{fmt.shown}/{name}:{node.lineno}: "
            f"{'.'.join(path)}{written} | {node.name}({width.value}){via} writes "
            f"{field}{into}, which format.yaml {said}: a value of more than {width.value} "
            "characters passes the length rule and the mapping's policies (name_overflow, "
            "text_overflow) and is refused by the template at export, by invoice; give it "
            f"{{max: {width.value}}} (or fewer) under fields", mapping=f"{source}:{line}: "
            + (f"fields.{field}" if limit is not None else "fields")))
    return problems


def _binding_of(path: tuple[str, ...]) -> str | None:
    """The binding that fills the model value a template reads at ``path`` (('t',
    'debtor', 'name'): payer.name), as ``coverage.CARRIED_BY`` says; None for none."""
    from .coverage import CARRIED_BY

    read = ".".join(path).replace(".*.", "[i].")
    return next((b for b, paths in CARRIED_BY.items() if read in paths and "." in b), None)


def _takes(col: Column) -> int | None:
    """How many characters a layout column takes: its length, else its width (fixed
    width); None for neither."""
    return col.length if col.length is not None else (col.width or None)


def _binding_where(mapping: Mapping, name: str | None) -> str:
    """`` (mapping file:line: bindings.payer.name)``, the binding of field ``name``
    (payer.name) in ``mapping``; "" for none (or no field)."""
    if name is None:
        return ""
    group, key = name.split(".", 1)
    binding = (mapping.bindings.get(group) or {}).get(key)
    return f" ({binding.where})" if binding is not None and hasattr(binding, "where") else ""


def layout_widths(fmt: Format, mapping: Mapping) -> list[Problem]:
    """Warnings of a text field format.yaml limits to more characters than the layout
    column a template writes it in takes (``fields: debtor.name: {max: 50}``, the
    layout's Nom at 38; rule ``format.field-width``, as ``narrow_widths``' fixed(N)): a
    value of 39 to 50 characters passes the build's length rule, so the mapping's
    policies (name_overflow: split, text_overflow) never apply, and the export refuses
    it at the layout (layout.length, exit 6), by invoice. Each names format.yaml's line,
    the column as the layout declares it, and the binding of ``mapping`` that fills the
    field. The column is the one holding the field's value on the sample title of
    ``mapping`` with every optional part (``sample.held_columns``); none said when no
    column alone holds it, or the sample title does not render."""
    from .build import _NEVER_TRUNCATED
    from .coverage import SPLITS
    from .layout import _where
    from .sample import column_where, held_columns  # it renders through the export

    splits = {field: policy for policy, field, _, _ in SPLITS}

    laid_out = [spec.template for spec in fmt.files if spec.layout is not None]
    limits = {path: (field, most) for path, field in _LIMITED.items()
              if (most := fmt.limit(field).max) is not None}
    if not laid_out or not limits:
        return []
    # a mark short enough for any column, to find where the value goes (the limit's own
    # length could be refused by a fixed(N) first)
    written = [(template, path, 7) for template in dict.fromkeys(laid_out)
               for path in limits]
    try:
        held = held_columns(mapping, fmt, written)
    except PesgenError:  # said by the command's own checks
        return []
    source = fmt.folder / "format.yaml"
    data, _, _ = load_yaml_file(source, "format")
    problems = []
    for (_template, path, _mark), (spec, rec, col) in held.items():
        field, most = limits[path]
        takes = _takes(col)
        if takes is None or takes >= most:
            continue
        by = _binding_where(mapping, _binding_of(path))
        # the split policies' fields, else text_overflow, which never cuts the
        # identifiers and the civility (the builder's _NEVER_TRUNCATED)
        policy = splits.get(field) or ("" if field in _NEVER_TRUNCATED else "text_overflow")
        passes = (f"passes the length rule, so the mapping's policies.{policy} never "
                  "applies to it," if policy else
                  f"passes the length rule (no policy cuts {field}: the rule refuses only "
                  f"a value over {most}, naming the binding)")
        problems.append(Problem(
            "format.field-width", f"{'.'.join(path).replace('.*.', '[i].')}{by} is written "
            f"into {_where(rec, col)} "
            f"({column_where(spec, rec, col)}), which takes at most {takes} characters "
            f"(layout.length), but format.yaml limits {field} to {most}: a value of "
            f"{takes + 1} to {most} characters {passes} and is refused by the layout at "
            "export, by invoice (exit 6); give it "
            f"{{max: {takes}}} (or fewer) under fields",
            mapping=f"{source}:{line_of(data, ['fields', field])}: fields.{field}"))
    return problems


def joined_widths(fmt: Format, mapping: Mapping) -> list[Problem]:
    """Warnings of a layout column a template fills with several fields of ``mapping``
    joined (e.magnus' Designation1: the name, a space, the name complement) that their
    format.yaml limits, with the template's own text between them, can overflow (rule
    ``format.field-width``, as ``layout_widths`` of a field alone): each value passes
    the length rule at its own limit, and no policy cuts the joined one (text_overflow
    and the split policies cut a field to its own limit), so the layout refuses it at
    export, by invoice (layout.length, exit 6). Found on the sample title with every
    optional part (``sample.joined_columns``): none said of a column joining a field
    format.yaml does not limit, or when the sample title does not render. Each names
    the bindings (mapping file:line), their format.yaml limits, the column as the layout
    declares it, its width and the length the joined value reaches. The same of an
    element or attribute of an XML file its bundle's own XSD checks (Corail's
    RaisonSociale: name, complement, first name; ``sample.joined_elements``), the XSD's
    maxLength its width, named by its place and where the XSD declares it."""
    from .build import _NEVER_TRUNCATED
    from .coverage import SPLITS
    from .layout import _where
    from .sample import _PLACED, column_where, joined_columns, joined_elements
    from .validate import xsd_label

    layouts = any(spec.layout is not None for spec in fmt.files)
    xsds = any(spec.xsd is not None and spec.layout is None and
               xsd_label(spec.xsd) == "bundle" for spec in fmt.files)
    if not (layouts or xsds):
        return []
    # {bound field: the format.yaml field whose limit holds it} ("lines": a line's, '*')
    fields = {name: _LIMITED[read] for name, path in _PLACED
              if (read := ("t", *path) if path[0] != "lines"
                  else ("t", "lines", "*", *path[1:])) in _LIMITED}
    limits = {name: most for name, field in fields.items()
              if (most := fmt.limit(field).max) is not None}
    try:
        joined = joined_columns(mapping, fmt, limits) if layouts else []
        elements = joined_elements(mapping, fmt, limits) if xsds else []
    except PesgenError:  # said by the command's own checks
        return []
    source = fmt.folder / "format.yaml"
    data, _, _ = load_yaml_file(source, "format")
    problems = []

    def joined_said(place: str, template: str, names: tuple[str, ...], own: int,
                    reach: int, most: int, measure: str, refused: str) -> Problem:
        """The warning of ``place`` (a column, an element), taking at most ``most``
        characters (``measure``: the layout's length, the XSD's maxLength), that
        ``template`` fills with the bound fields ``names`` joined, ``own`` characters of
        its own between them: ``reach`` characters at their limits, a value over
        ``most`` ``refused`` (by the layout, by the XSD)."""
        named = "; ".join(f"{name}{_binding_where(mapping, name)}, {fields[name]} "
                          f"{{max: {limits[name]}}}" for name in names)
        text = f" and {own} character(s) of the template's own" if own > 0 else ""
        first = fields[names[0]]
        return Problem(
            "format.field-width", f"{place} takes at most {most} characters ({measure}), and "
            f"{template} writes {len(names)} bound fields joined into it: {named}: at "
            f"their limits{text}, the value reaches {reach} characters. Each field passes "
            "the length rule at its own limit and no policy cuts the joined value "
            "(text_overflow and the split policies cut a field to its own limit), so a "
            f"value of {most + 1} to {reach} characters is refused by {refused}; lower "
            f"their limits under fields so that they fit {most} together, or bind fewer "
            "of them",
            mapping=f"{source}:{line_of(data, ['fields', first])}: fields.{first}")

    for element in elements:
        xsd = element.spec.xsd
        assert xsd is not None
        if len(element.fields) == 1:
            # one bound field alone (walk67: a line's label in an attribute of 30 under
            # a format.yaml limit of 60), said as layout_widths says a column
            name = element.fields[0]
            field, most = fields[name], element.most - element.own
            policy = next((policy for policy, split, _, _ in SPLITS if split == field),
                          "" if field in _NEVER_TRUNCATED else "text_overflow")
            passes = (f"passes the length rule, so the mapping's policies.{policy} never "
                      "applies to it," if policy else "passes the length rule")
            own = (f", {element.own} of them the template's own text" if element.own
                   else "")
            problems.append(Problem(
                "format.field-width", f"{name}{_binding_where(mapping, name)} is written "
                f"into {xsd.name}: {element.place} (declared at {element.declared}), which "
                f"takes at most {element.most} characters (its maxLength{own}), but "
                f"format.yaml limits {field} to {limits[name]}: a value of {most + 1} to "
                f"{limits[name]} characters {passes} and is refused by {xsd.name} at "
                f"export (xsd.bundle), by invoice (exit 6); give it {{max: {most}}} (or "
                "fewer) under fields",
                mapping=f"{source}:{line_of(data, ['fields', field])}: fields.{field}"))
            continue
        problems.append(joined_said(
            f"{xsd.name}: {element.place} (declared at {element.declared})",
            element.spec.template, element.fields, element.own, element.reach,
            element.most, "its maxLength", f"{xsd.name} at export (xsd.bundle)"))
    for found in joined:
        takes = _takes(found.col)
        if takes is None or found.reach <= takes:
            continue
        problems.append(joined_said(
            f"{_where(found.rec, found.col)} "
            f"({column_where(found.spec, found.rec, found.col)})", found.spec.template,
            found.fields, found.reach - sum(limits[name] for name in found.fields),
            found.reach, takes, "layout.length", "the layout at export, by invoice (exit 6)"))
    return problems


def unlisted_civilities(fmt: Format, mapping: Mapping) -> list[Problem]:
    """check-mapping's warnings of a civility the fixture's mapping binds without a
    codes.civility table into a layout's column taking a list of values (rule
    mapping.civility-values, ``sample.civility_unlisted``): the fixture's civilities
    may all be listed, an export's others are refused by the layout, by invoice. None
    when the sample title does not render (said by the bundle's own checks)."""
    from .sample import civility_unlisted  # it renders through the export

    try:
        return civility_unlisted(mapping, fmt)
    except PesgenError:
        return []


def check_bundle(fmt: Format, work: Path, official_xsd: Path | None = None,
                 regen: bool = False, warn: Callable[[Problem], None] | None = None,
                 removed: Callable[[Path], None] | None = None
                 ) -> tuple[list[Problem], list[str]]:
    """Render the fixture into ``work``, then the templates on check-mapping's sample
    titles with the fixture's mapping (``check_samples``); return (problems of the
    expected files, diffs). With ``regen`` the expected folder is rewritten then, and
    ``removed`` is given each file of it removed (``regenerate_expected``). A
    bundle with TODO placeholders left, or whose README's status is not format.yaml's,
    is refused first (``unfinished``). ``warn`` is given each field the fixture's
    mapping binds that no template writes (``coverage.check``), each file the fixture
    leaves empty (``unexercised``), each template and option no output reads
    (``unused_parts``), each text a template's fixed(N) writes wider than format.yaml
    limits it (``narrow_widths``), and each folder of expected/ (``expected_folders``)."""
    if regen and installed_data(fmt.folder):
        # site-packages/pesgen/_data/templates/…: what every run of this installation
        # renders, and what an upgrade replaces
        raise UsageError(
            f"{fmt.name}: {fmt.folder} is the bundle installed with pesgen: --regen does not "
            "rewrite (nor remove) files inside the installed package. Copy the bundle into "
            f"a folder of your own (cp -r {fmt.folder} FORMATS/) and run `pesgen "
            f"check-format {fmt.name} --formats-dir FORMATS --regen` there")
    problems = unfinished(fmt)
    if problems:
        raise MappingError(f"{fmt.name}: the bundle is not finished: "
                           f"{len(problems)} problem(s) to fix before its self-test counts",
                           problems)
    fixture = fixture_of(fmt)
    if fixture is None:
        raise MappingError(f"format {fmt.name} has no fixture/ folder: its self-test renders "
                           f"one ({fmt.folder / 'fixture'}: docs/onboarding.md, step 6)")
    result = None
    try:
        result, specs = render_fixture(fmt, work, official_xsd)
        wrong = typ_bord_problems(fmt, sorted(p for p in work.iterdir()
                                              if p.suffix == ".xml"))
        if wrong:
            raise MappingError(f"{fmt.name}: the files write another TypBord than the one "
                               "their IdBord sequence is keyed by", wrong)
        # the fixture takes some branches of the templates only: the sample titles of
        # check-mapping (every optional part, none) take the others, so a typo in a
        # branch the fixture skips (a joint debtor, a mandate, an address abroad) fails
        # here too, before any expected/ file is rewritten
        check_samples(fmt, result, warn or (lambda _problem: None), official_xsd)
    except PesgenError:
        # a width the templates' syntax tells is said with the refusal it may explain:
        # a fixed(30) under a limit of 40 is why a fixture's label of 31 is refused
        # (unused_parts is not: a template that does not parse reads as named by none);
        # so is a limit wider than a layout's column or an XSD's maxLength, why a
        # fixture's name of 38 is refused by a column of 32 (walk67)
        if warn is not None:
            mapping = result.mapping if result is not None else _fixture_mapping(fixture)
            for problem in narrow_widths(fmt, mapping) + (
                    [] if mapping is None
                    else layout_widths(fmt, mapping) + joined_widths(fmt, mapping)):
                warn(problem)
        raise
    if warn is not None:
        for problem in (unexercised(fmt, work, specs) + unused_parts(fmt)
                        + narrow_widths(fmt, result.mapping)
                        + layout_widths(fmt, result.mapping)
                        + joined_widths(fmt, result.mapping)
                        + unlisted_civilities(fmt, result.mapping)
                        + expected_folders(fmt, fixture.expected)):
            warn(problem)
    if regen:
        for path in regenerate_expected(work, fixture.expected):
            if removed is not None:
                removed(path)
    elif not _expected_files(fixture.expected):
        # a new bundle's first self-test: nothing to compare with, so it has not passed,
        # but nothing renders "differently" either
        produced = ", ".join(sorted(p.name for p in work.iterdir() if p.is_file()))
        raise OutputInvalidError(
            f"{fmt.name}: no expected files yet in {fixture.expected}: run check-format "
            f"again with --regen to write what the fixture renders ({produced}) there, "
            "review them; from then on check-format compares with them")
    encoding = result.mapping.output.encoding or fmt.encoding
    if fixture.expected.is_dir():
        # the bordereau each file the fixture wrote belongs to: a fixture of several
        # bordereaux writes a template's file once for each (their names differ, or the
        # export refuses them)
        bordereau = {f.path.name: f.bordereau for f in result.files}
        laid_out: dict[int, dict[str, tuple[Path, str, Path]]] = {}
        for path in sorted(fixture.expected.iterdir()):
            spec = None if hidden(path) else specs.get(path.name)
            if spec is not None:
                problems += validate_output(fmt, path, spec, official_xsd,
                                            result.mapping.output.encoding)
                if spec.layout is not None and path.name in bordereau:
                    # one not written by the fixture is the diff's (expected, not produced)
                    laid_out.setdefault(bordereau[path.name], {})[spec.template] = \
                        path, path.name, spec.layout
        if fmt.across and not problems:
            # between the expected files of each bordereau, as at export
            for number in sorted(laid_out):
                problems += check_across(fmt.across, laid_out[number], encoding)
    diffs = compare(fixture.expected, work, encoding)
    # the expected folder may document itself
    diffs = [d for d in diffs if not d.startswith("README.md: expected but not produced")]
    return problems, diffs
