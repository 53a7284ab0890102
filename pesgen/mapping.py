"""Load a mapping file: YAML with line numbers, checked against the versioned JSON
Schema, compiled into bindings, code tables and policies.

Every problem is reported as ``file:line: key.path: message``; all of them at once.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from . import __version__, _schema
from ._jinja import WrongShape, close_filter, expression_environment
from ._yaml import line_of, load_yaml_file, load_yaml_text
from .checks import CAT_NAT_GRID, is_mademoiselle, siret_key_fails
from .clock import DEFAULT_TIMEZONE, zone_problem
from .errors import MappingError, Problem
from .expr import compile_fast, expression_reads
from .model import Collectivity
from .sources import InputSpec
from .text import TextPolicy

MAPPING_SCHEMA = "mapping.schema.json"
# what ``pesgen new-mapping`` writes where the collectivity's own value goes: a mapping
# still holding it is refused, wherever it is loaded
TODO_MARKER = "TODO"
_INDEX = re.compile(r"^(.*)\[(\d+)\]$")
# the placeholder as a string literal inside an expression: invoice['TODO']
_TODO_LITERAL = re.compile(rf"""(['"]){TODO_MARKER}\1""")
# SequencePres of each SEPA sequence (DT, TSequencePres) when the mapping gives no
# codes.sepa_sequences (or an empty one): the exported values as the EPC names them
DEFAULT_SEPA_SEQUENCES = {"OOFF": "01", "FRST": "02", "RCUR": "03", "FNAL": "04"}


@dataclass(frozen=True)
class Binding:
    key: str  # canonical field, e.g. "payer.name"
    where: str  # "mappings/m.yaml:42: bindings.payer.name"
    kind: str  # path | const | expr
    text: str  # the binding as written, for explain/docs
    evaluate: Callable[[dict[str, Any], dict[str, Any]], Any]  # (record, scope) -> value
    columns: tuple[str, ...] = ()  # CSV columns it reads (a path, or an expression's)
    # a path of one to three keys, no default (None otherwise): its keys, the later ones
    # None when fewer, which build._evaluate reads itself from the stripped record (the
    # value is stripped already, and no frame is added); evaluate says what it finds
    # on the way that is not an object (WrongShape)
    keys: tuple[str, str | None, str | None] | None = None


@dataclass(frozen=True)
class Policies:
    negative_lines: str = "refuse"
    netted_label: str = "keep"
    zero_total: str = "refuse"
    already_exported: str = "refuse"
    transliterate: bool = False
    case: str = "keep"
    newlines: str = "refuse"
    street_overflow: str = "refuse"
    name_overflow: str = "refuse"
    text_overflow: str = "refuse"
    foreign_address: str = "refuse"
    missing_civility: str = "refuse"
    default_civility: str | None = None

    @property
    def text(self) -> TextPolicy:
        return TextPolicy(case=self.case, newlines=self.newlines, transliterate=self.transliterate)


@dataclass(frozen=True)
class PaymentReferenceSettings:
    period: str = "1"
    cle1: str = "none"
    nature_code: str = "00"
    cle1_zero_remainder: str = "0"


@dataclass(frozen=True)
class OutputSettings:
    format: str
    sigle: str = "PESGEN"
    adresse: str = f"pesgen {__version__}"
    bordereau_object: Binding | None = None
    asap_delay_days: int = 0
    max_pieces_per_bordereau: int = 99999
    tiers_on: str = "every_line"
    encoding: str | None = None
    payment_references: bool = True
    asap_edition: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Codes:
    activities: dict[str, dict[str, str]]
    payer_kinds: dict[str, dict[str, str]]
    civility: dict[str, str] | None = None
    countries: dict[str, str] = field(default_factory=dict)
    sepa_sequences: dict[str, str] = field(default_factory=dict)
    # payment method -> direct debit or not; None: payment.direct_debit reads yes/no
    payment_methods: dict[str, bool] | None = None


@dataclass(frozen=True)
class Mapping:
    path: Path
    text: str
    sha256: str
    data: dict[str, Any]  # as loaded: LineDicts, whose lines line_of reads
    collectivity: Collectivity
    output: OutputSettings
    input: InputSpec
    bindings: dict[str, dict[str, Binding]]
    lines: Binding
    codes: Codes
    policies: Policies
    payment_reference: PaymentReferenceSettings
    # a mapping a run recorded (``load_recorded_mapping``), loaded to rebuild that run;
    # what the checks of RENDERS_NOTHING find in it, let through
    recorded: bool = False
    waived: tuple[Problem, ...] = ()
    # collectivity.timezone: the IANA zone whose today is the run date when none is
    # given (--date); None when the mapping does not set it (clock.DEFAULT_TIMEZONE)
    timezone: str | None = None

    @property
    def zone(self) -> str:
        """The time zone a run without --date is dated in."""
        return self.timezone or DEFAULT_TIMEZONE

    def where(self, *keys: str | int) -> str:
        dotted = ".".join(str(k) for k in keys)
        return f"{self.path}:{line_of(self.data, list(keys))}: {dotted}"


# ----------------------------------------------------------------- bindings


def path_parts(path: str) -> list[str | int]:
    """A JSON path binding's keys and list indexes: 'lines[0].amount' -> ['lines', 0,
    'amount']."""
    parts: list[str | int] = []
    for piece in path.split("."):
        m = _INDEX.match(piece)
        if m:
            if m[1]:
                parts.append(m[1])
            parts.append(int(m[2]))
        else:
            parts.append(piece)
    return parts


def _json_getter(path: str, wrong_shapes: bool = True) -> Callable[[dict[str, Any],
                                                                    dict[str, Any]], Any]:
    """The path binding's reader: None where a key is missing or null; a WrongShape
    where it goes through a value of another kind (a key of a list or a text, an index
    of an object), unless ``wrong_shapes`` is false (a recorded run, read as it was then:
    None)."""
    parts = path_parts(path)

    if len(parts) == 1 and isinstance(parts[0], str):
        only = parts[0]

        def get1(record: dict[str, Any], scope: dict[str, Any]) -> Any:
            return record.get(only)

        return get1

    keys = [x for x in parts if isinstance(x, str)]  # its keys, without its indexes
    if len(parts) in (2, 3) and len(keys) == len(parts) and wrong_shapes:
        # the common shapes (payer.name, payer.address.city), unrolled
        first, second = keys[0], keys[1]
        third = keys[2] if len(keys) == 3 else None

        def get_keys(record: dict[str, Any], scope: dict[str, Any]) -> Any:
            node = record.get(first)
            if not isinstance(node, dict):
                if node is None:
                    return None
                raise WrongShape(node, "an object", second, (first,))
            node = node.get(second)
            if third is None or node is None:
                return node
            if isinstance(node, dict):
                return node.get(third)
            raise WrongShape(node, "an object", third, (first, second))

        return get_keys

    def get(record: dict[str, Any], scope: dict[str, Any]) -> Any:
        node: Any = record
        for depth, part in enumerate(parts):
            if isinstance(part, int):
                if isinstance(node, list):
                    node = node[part] if part < len(node) else None
                elif wrong_shapes:
                    raise WrongShape(node, "a list", part, tuple(parts[:depth]))
                else:
                    return None
            elif isinstance(node, dict):
                node = node.get(part)
            elif wrong_shapes:
                raise WrongShape(node, "an object", part, tuple(parts[:depth]))
            else:
                return None
            if node is None:
                return None
        return node

    return get


def _with_default(getter: Callable[..., Any], default: Any) -> Callable[..., Any]:
    def get(record: dict[str, Any], scope: dict[str, Any]) -> Any:
        value = getter(record, scope)
        return default if value is None or value == "" else value

    return get


def _compile_binding(spec: Any, key: str, where: str, input_format: str,
                     env: SandboxedEnvironment, problems: list[Problem]) -> Binding | None:
    if isinstance(spec, str):
        spec = {"path": spec}
    if "const" in spec:
        value = spec["const"]
        return Binding(key, where, "const", repr(value), lambda record, scope: value)
    if "expr" in spec:
        source = spec["expr"]
        try:
            compiled = env.compile_expression(source, undefined_to_none=True)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem("mapping.expr", f"expression syntax error: {exc.message}"
                                    f"{close_filter(str(exc.message), env)}", mapping=where))
            return None
        except (RecursionError, MemoryError):
            # Jinja's parser and Python's compiler recurse on each level of nesting
            problems.append(Problem("mapping.expr", "expression nested too deeply to be "
                                    "compiled (parentheses, brackets or calls within each "
                                    "other): write it flatter", mapping=where))
            return None

        read, private = expression_reads(env, source)
        if private:
            problems.append(Problem(
                "mapping.expr", f"expression reads {', '.join(map(repr, private))}: names "
                "starting with '_' are not readable in a mapping expression", mapping=where))
            return None
        columns = read if input_format == "csv" else ()
        template = compiled._template
        render = template.root_render_func
        env_globals = dict(env.globals)

        def run(record: dict[str, Any], scope: dict[str, Any]) -> Any:
            # What TemplateExpression.__call__ does, minus copying the globals into a
            # fresh context on every call (the hot path of mapping an invoice).
            context = template.new_context({**env_globals, **scope}, shared=True)
            for _ in render(context):
                pass
            value = context.vars["result"]
            return None if isinstance(value, jinja2.Undefined) else value

        fast = compile_fast(env, source)
        if fast is not None:
            undefined = jinja2.Undefined

            def run_fast(record: dict[str, Any], scope: dict[str, Any]) -> Any:
                value = fast(scope)
                return None if isinstance(value, undefined) else value

            return Binding(key, where, "expr", source, run_fast, columns)
        return Binding(key, where, "expr", source, run, columns)
    path = spec["path"]
    getter: Callable[[dict[str, Any], dict[str, Any]], Any]
    if input_format == "csv":
        column = path

        def get_column(record: dict[str, Any], scope: dict[str, Any]) -> Any:
            return record.get(column)

        getter = get_column
        columns = (column,)
        keys: tuple[str, str | None, str | None] | None = (column, None, None)
    else:
        wrong_shapes = getattr(env, "wrong_shapes", True)
        getter = _json_getter(path, wrong_shapes)
        columns = ()
        parts = path_parts(path)
        keys = None
        if all(isinstance(x, str) for x in parts) and (
                len(parts) == 1 or (len(parts) in (2, 3) and wrong_shapes)):
            named: list[str | None] = [str(x) for x in parts[1:]] + [None, None]
            keys = (str(parts[0]), named[0], named[1])
    if "default" in spec:
        getter = _with_default(getter, spec["default"])
        keys = None
    return Binding(key, where, "path", path, getter, columns, keys)


# Python's text codecs that are no file's encoding: idna and undefined refuse to replace
# what they cannot read (punycode too, before Python 3.13; since, it decodes any bytes,
# as nonsense: b"hello-world" is "h\u0e64\u0e66ello\u0e65")
_NOT_FILE_CODECS = frozenset({"idna", "punycode", "undefined"})


def _reads_files(codec: str) -> bool:
    """Whether the text codec ``codec`` decodes any bytes, those it cannot read replaced
    (as the readers tell where a file breaks): not idna, punycode or undefined."""
    if codec in _NOT_FILE_CODECS:
        return False
    try:
        bytes(range(256)).decode(codec, "replace")
    except UnicodeError:
        return False
    return True


def _close_encoding(name: str) -> str:
    """'; did you mean 'cp1252'?' for an encoding Python does not know as written
    ('windows1252', 'win-1252', 'cp-1252'): the known name it most likely means,
    compared without case, '-', '_' or spaces, else a Windows code page of its digits."""
    import codecs
    from encodings.aliases import aliases

    def key(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower())

    wanted = key(name)
    known = {key(alias): alias for alias in aliases} | {key(c): c for c in aliases.values()}
    guesses = [known[wanted]] if wanted in known else []
    digits = re.sub(r"[^0-9]", "", name)
    if digits:
        guesses.append(f"cp{digits}")
    for guess in guesses:
        try:
            return f"; did you mean '{codecs.lookup(guess).name}'?"
        except LookupError:
            continue
    return ""


# ----------------------------------------------------------------- loading

# The checks of a mapping (by rule) that decide nothing of what a run renders: the value
# they refuse is written as it is, or read the same with the check as without it. A
# mapping a run recorded is loaded despite them to rebuild that run (``pesgen
# regenerate``, whose check is the sha256 of the rebuilt files against the recorded
# ones), and what they find is said as a warning; an export is refused by them. Every
# other check still refuses a recorded mapping, for it decides what is rendered, or
# what pesgen can read: mapping.yaml and mapping.schema (the mapping's data itself;
# but the ICS's pattern, below), mapping.input (how the input is read), mapping.expr
# (a binding not compiled, so not evaluated as it was), mapping.policy (a civility
# missing), and those of the mapping against its format (build.format_fit). Two
# checks made later render nothing either, and are let through by the rebuild itself:
# a CSV binding of a column the file lacks (Builder.check_columns: it read nothing,
# as it does still) and output.encoding against a layout's (Exporter: it decides how
# the layout check, not run by a rebuild, reads the file): _docgen.WAIVED_ELSEWHERE.
# docs/state.md's table is generated from both.
RENDERS_NOTHING = {
    # rule: why the rendering is the same (docs/state.md's table, made by _docgen)
    "collectivity.siret": "the SIRET's checksum: IdColl is written as it is",
    "collectivity.sepa-creditor-id": "the ICS's check digits: the ICS is written as it is",
    "collectivity.timezone": "a zone the time zone database where the run is rebuilt does "
                             "not know: the zone dates a run given no `--date`; a rebuilt "
                             "run keeps the date it recorded",
    "mapping.todo": "a value still the scaffold's `TODO` is written, or read, as it is",
    "mapping.csv-lines": "`bindings.lines` other than `{const: rows}` with CSV input: it "
                         "was never read, each row is a line",
    "mapping.csv-records": "`input.records` with CSV input: it was never read, the rows "
                           "are the lines",
    "codes.country": "two `codes.countries` keys that are one country by case: the table "
                     "is read by the key written in upper case, as pesgen read it before "
                     "the check (the other was never read)",
    "pes.cat-tiers": "a CatTiers outside the DGFiP list: the payer kind's CatTiers is "
                     "written as it is",
    "pes.cat-nat-grid": "a CatTiers/NatJur pair outside the grid: the payer kind's "
                        "CatTiers and NatJur are written as they are",
    "pes.civility": "a Mademoiselle civility in the mapping is written as it is",
    "mapping.const-code": "a `{const}` binding whose value its code table lacks: an "
                          "invoice reading it was refused, so the run recorded none that "
                          "did (a SEPA sequence, read for direct debits only)",
}
# a mapping.schema problem that renders nothing either: the ICS's pattern (upper case,
# no spaces), the value being a string, written as it is
_ICS_KEY = "collectivity.sepa_creditor_id"
# and a codes.activities nature or operation, or a codes.countries code, of zeros only
# (refused since 2026-12-05: Base_Num12 and Base_Num3 > 0, Base_Alphanum10), a string
# written as it is where a bundle took it (e.magnus' Article, '[0-9]+'); one of other
# characters was refused before too
_ZEROS_KEYS = (("nature", re.compile(r"0{1,12}")), ("operation", re.compile(r"0{1,10}")))


def load_mapping(path: Path) -> Mapping:
    path = Path(path)
    data, problems, text = load_yaml_file(path)
    return _load(path, data, problems, text, recorded=False)


def load_recorded_mapping(text: str, shown: str, as_before: bool = False) -> Mapping:
    """The mapping a run recorded (its text), to rebuild that run: refused only by the
    checks that decide what is rendered; those of ``RENDERS_NOTHING`` it fails are in
    its ``waived``. ``shown``: the file its problems name (the path the run recorded;
    their lines are the recorded text's). ``as_before``: its expressions evaluated as
    pesgen did before 2026-12-01 (``expression_environment``), for a run recorded then."""
    data, problems = load_yaml_text(text, shown)
    return _load(Path(shown), data, problems, text, recorded=True, as_before=as_before)


def _renders_nothing(problem: Problem, data: Any) -> bool:
    if problem.rule in RENDERS_NOTHING:
        return True
    if problem.rule != "mapping.schema" or problem.mapping is None:
        return False
    c = data.get("collectivity")
    if problem.mapping.endswith(f": {_ICS_KEY}"):
        return isinstance(c, dict) and isinstance(c.get("sepa_creditor_id"), str)
    return _zeros_written(problem.mapping, data)


def _zeros_written(where: str, data: Any) -> bool:
    """Whether ``where`` (file:line: key) names a codes.activities nature or operation
    (``_ZEROS_KEYS``), or a codes.countries code, whose value is a string of zeros only."""
    codes = data.get("codes")
    if not isinstance(codes, dict):
        return False
    activities = codes.get("activities")
    key = where.rsplit(": ", 1)[-1]
    countries = codes.get("countries")
    if key.startswith("codes.countries.") and isinstance(countries, dict):
        return countries.get(key[len("codes.countries."):]) == "000"
    if not isinstance(activities, dict) or not key.startswith("codes.activities."):
        return False
    for name, zeros in _ZEROS_KEYS:
        if key.endswith(f".{name}"):
            entry = activities.get(key[len("codes.activities."):-len(name) - 1])
            value = entry.get(name) if isinstance(entry, dict) else None
            return isinstance(value, str) and zeros.fullmatch(value) is not None
    return False


def _refused(shown: str, problems: list[Problem], recorded: bool, data: Any,
             waived: list[Problem]) -> None:
    """Raise for ``problems``; for a recorded mapping, only for those that decide what
    is rendered, the others going to ``waived``."""
    if recorded:
        waived += [p for p in problems if _renders_nothing(p, data)]
        problems = [p for p in problems if not _renders_nothing(p, data)]
    if problems:
        raise MappingError(f"{shown}: invalid mapping", problems)


def _load(path: Path, data: Any, problems: list[Problem], text: str,
          recorded: bool, as_before: bool = False) -> Mapping:
    shown = str(path)
    if not isinstance(data, dict):
        raise MappingError(f"{shown}: a mapping file is a YAML mapping (key: value)")
    # what the YAML loader refused (a duplicate key): its section is not checked further
    failed: list[tuple[Any, ...]] = [_section_of(p) for p in problems]
    todo = todo_problems(data, shown, failed)
    # a placeholder left in place is said once, as such, not also as a bad SIRET; but a
    # recorded mapping's placeholder is let through, and what else is wrong there not
    placeholders = set() if recorded else {p.mapping for p in todo}
    problems += todo + [_placed(p) for p in _schema.check(data, MAPPING_SCHEMA, shown,
                                                          "mapping.schema", failed)
                        if p.mapping not in placeholders]
    refusing = [p for p in problems if not (recorded and _renders_nothing(p, data))]
    # refused: the parts that passed are checked too, so that one run lists the
    # semantic problems beside these (never a part that failed: it may not hold what
    # the checks read, and a second message about the same key would mislead)
    return _compile(path, data, text, recorded, [], as_before,
                    problems, failed if refusing else [])


def _section_of(problem: Problem) -> tuple[Any, ...]:
    """The top-level key a problem's ``file:line: key.path`` is in; () when it has none
    (then every part counts as failed)."""
    if problem.mapping is None or ": " not in problem.mapping:
        return ()
    dotted = problem.mapping.rsplit(": ", 1)[1]
    section = re.split(r"[.\[]", dotted, maxsplit=1)[0]
    return (section,) if section and section != "(top)" else ()


def _schema_keys() -> dict[str, list[str]]:
    """Each key the mapping schema knows -> the dotted paths it is allowed at."""
    schema = _schema.load_schema(MAPPING_SCHEMA)
    defs = schema.get("$defs") or {}
    found: dict[str, list[str]] = {}

    def walk(node: Any, path: list[str], depth: int) -> None:
        ref = node.get("$ref", "") if isinstance(node, dict) else ""
        if ref.startswith("#/$defs/"):
            node = defs.get(ref.rsplit("/", 1)[1], {})
        if not isinstance(node, dict) or depth > 4:
            return
        for name, sub in (node.get("properties") or {}).items():
            found.setdefault(name, []).append(".".join([*path, name]))
            walk(sub, [*path, name], depth + 1)

    walk(schema, [], 0)
    return found


def _placed(problem: Problem) -> Problem:
    """An unknown key the schema knows at another level (sepa_creditor_id at the top,
    line: outside bindings): the problem says where it belongs, rather than the keys
    allowed where it is (not one close to it, nor in a binding's alternatives)."""
    if not isinstance(problem, _schema.UnknownKey) or problem.hint or problem.within or \
            not problem.allowed or not isinstance(problem.key, str):
        return problem
    here = problem.dotted
    places = [p for p in _schema_keys().get(problem.key, []) if p != here]
    if not places or len(places) > 3:
        return problem
    said = " or ".join(places)
    return replace(problem, message=f"unknown key '{problem.key}' here: it belongs at "
                                    f"{said} (move it there)")


def todo_problems(data: Any, shown: str,
                  failed: list[tuple[Any, ...]] | None = None) -> list[Problem]:
    """Every value, and every key of a code table, still equal to ``TODO_MARKER``: the
    placeholders of ``pesgen new-mapping`` that were not filled. ``failed`` gets the
    path of each."""
    problems: list[Problem] = []
    paths: list[tuple[Any, ...]] = [] if failed is None else failed

    def walk(node: Any, keys: list[str | int]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = [*keys, key]
                if str(key).strip() == TODO_MARKER:
                    problems.append(Problem("mapping.todo", f"the key is still the scaffold's "
                                            f"placeholder {TODO_MARKER}: replace it with the "
                                            "school's own code", mapping=_where(here)))
                    paths.append(tuple(here))
                walk(value, here)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, [*keys, i])
        elif isinstance(node, str) and node.strip() == TODO_MARKER:
            problems.append(Problem("mapping.todo", f"still the scaffold's placeholder "
                                    f"{TODO_MARKER}: fill it in (the comment beside it says "
                                    "what; docs/mapping-reference.md)", mapping=_where(keys)))
            paths.append(tuple(keys))
        elif isinstance(node, str) and keys and keys[-1] == "expr" and \
                _TODO_LITERAL.search(node):
            # the scaffold's debt_number: {expr: "invoice['TODO'] | digits"}
            problems.append(Problem("mapping.todo", f"the expression still reads the scaffold's "
                                    f"placeholder '{TODO_MARKER}': put the column (CSV) or key "
                                    "(JSON) it reads in its place (in an expression, invoice is "
                                    "the input record: invoice['N° facture'])",
                                    mapping=_where(keys[:-1])))
            paths.append(tuple(keys[:-1]))

    def _where(keys: list[str | int]) -> str:
        return f"{shown}:{line_of(data, keys)}: {_schema._dotted(keys)}"

    walk(data, [])
    return problems


def _compile(path: Path, data: dict[str, Any], text: str, recorded: bool,
             waived: list[Problem], as_before: bool = False,
             before: list[Problem] | None = None,
             failed: list[tuple[Any, ...]] | None = None) -> Mapping:
    """The mapping's semantic checks, then the mapping. ``before``: the problems found
    so far (YAML, TODO, schema); ``failed``: the paths they found invalid, whose part
    (a section, a binding, a code table) is not checked: with a refusing problem in
    ``before``, the parts that passed are checked, and all is refused together."""
    shown = str(path)
    problems: list[Problem] = list(before or ())
    refused = list(failed or ())

    def where(*keys: str | int) -> str:
        return f"{shown}:{line_of(data, list(keys))}: {'.'.join(str(k) for k in keys)}"

    def ok(*keys: str) -> bool:
        """No part at, above or below ``keys`` failed: checking it is safe and says
        something new."""
        return not any(p[:len(keys)] == keys or keys[:len(p)] == p for p in refused)

    def holds(*keys: str) -> bool:
        """No part at or above ``keys`` failed: it is there, of its kind (what is below
        it is checked part by part)."""
        return not any(keys[:len(p)] == p for p in refused)

    collectivity = None
    timezone: str | None = None
    if ok("collectivity"):
        c = data["collectivity"]
        collectivity = Collectivity(
            name=c["name"], siret=c["siret"], id_post=c["id_post"], cod_col=c["cod_col"],
            cod_bud=c["cod_bud"], exercise=c["exercise"], budget_label=c.get("budget_label"),
            poste_label=c.get("poste_label"), sepa_creditor_id=c.get("sepa_creditor_id"),
            payfip_client=c.get("payfip_client"))
        timezone = c.get("timezone")
        from stdnum.eu import at_02 as _ics
        from stdnum.fr import siret as _siret

        if not _siret.is_valid(collectivity.siret):
            problems.append(Problem(
                "collectivity.siret", f"SIRET {collectivity.siret} is invalid: "
                f"{siret_key_fails(collectivity.siret)} Copy it from the collectivity's avis "
                "de situation SIRENE (INSEE), or from the IdColl of a PES file it sent",
                mapping=where("collectivity", "siret")))
        # the schema holds it to its format (upper case, no spaces: it is written as it is)
        ics = collectivity.sepa_creditor_id
        if ics is not None and not _ics.is_valid(ics):
            problems.append(Problem("collectivity.sepa-creditor-id", "SEPA creditor identifier "
                                    f"(ICS) {ics} has invalid check digits (ISO 7064 mod 97-10)",
                                    mapping=where("collectivity", "sepa_creditor_id")))
        # the run date without --date is today there: a name zoneinfo does not know is
        # refused now, not on the day an export is made without --date
        bad_zone = zone_problem(timezone) if timezone is not None else None
        if bad_zone:
            problems.append(Problem("collectivity.timezone", bad_zone,
                                    mapping=where("collectivity", "timezone")))

    input_spec = None
    if ok("input"):
        i = data["input"]
        input_spec = InputSpec(
            format=i["format"], records=i.get("records", "invoices"),
            encoding=i.get("encoding", "utf-8"), delimiter=i.get("delimiter", ","),
            quotechar=i.get("quotechar", '"'), group_by=i.get("group_by"),
            numbers=i.get("numbers", "auto"), dates=i.get("dates", "auto"),
            header_line=i.get("header_line", 1),
            where=tuple((k, where("input", k)) for k in ("format", "records", "encoding",
                                                          "delimiter", "quotechar", "group_by",
                                                          "header_line")))
        if input_spec.format == "csv" and not input_spec.group_by:
            problems.append(Problem("mapping.input", "CSV input needs group_by (the invoice "
                                    "number column)", mapping=where("input")))
        if input_spec.format == "csv" and "records" in i:
            # never read: records: factures looked like it chose the rows read
            problems.append(Problem(
                "mapping.csv-records", "with input.format: csv, input.records is not read: "
                "it applies to JSON input only (the dotted path of the invoice array); a "
                "CSV file's rows are the invoices' lines, grouped by input.group_by: "
                "remove it", mapping=where("input", "records")))
        if input_spec.format != "csv" and "header_line" in i:
            problems.append(Problem(
                "mapping.input", "input.header_line applies to CSV input only (the line of "
                "its header); a JSON export is read from input.records: remove it",
                mapping=where("input", "header_line")))
        try:
            import codecs

            codec = codecs.lookup(input_spec.encoding)
            if not getattr(codec, "_is_text_encoding", True):
                problems.append(Problem("mapping.input", f"'{input_spec.encoding}' is not a "
                                        "text encoding", mapping=where("input", "encoding")))
            elif not _reads_files(codec.name):
                problems.append(Problem(
                    "mapping.input", f"'{input_spec.encoding}' is not the encoding of a "
                    f"file: Python's {codec.name} codec reads no file's bytes as text (it "
                    "fails on the bytes it cannot decode, instead of naming them, or, "
                    "punycode since Python 3.13, reads any bytes as other text); a "
                    "file's encoding is utf-8, cp1252, iso-8859-15…",
                    mapping=where("input", "encoding")))
        except LookupError:
            problems.append(Problem("mapping.input", f"unknown encoding '{input_spec.encoding}'"
                                    f"{_close_encoding(input_spec.encoding)}",
                                    mapping=where("input", "encoding")))
        for name, value in (("delimiter", input_spec.delimiter),
                            ("quotechar", input_spec.quotechar)):
            allowed = len(value) == 1 or (name == "delimiter" and value == "auto")
            if name in i and not allowed:
                either = " or auto" if name == "delimiter" else ""
                problems.append(Problem(
                    "mapping.input", f"{name} must be one character{either}, not {value!r} "
                    "(a tab is written \"\\t\" in double quotes)", mapping=where("input", name)))
    # what the bindings are read from, when input.format passed (else their own checks
    # only: an expression's syntax, its filters, its names)
    input_format = data["input"]["format"] if ok("input", "format") else None

    env = expression_environment(as_before)
    # a recorded run is rebuilt as it was read: a key read of a list or a text was None
    # (pesgen's own attributes on the environment, read with getattr: not Jinja's)
    env.wrong_shapes = not recorded  # type: ignore[attr-defined]
    env.changes_allowed = recorded  # type: ignore[attr-defined]
    bindings: dict[str, dict[str, Binding]] = {}
    for group, fields in data["bindings"].items() if holds("bindings") else ():
        if group == "lines" or not holds("bindings", group):
            continue
        bindings[group] = {}
        for name, spec in fields.items():
            if not ok("bindings", group, name):
                continue
            b = _compile_binding(spec, f"{group}.{name}", where("bindings", group, name),
                                 input_format or "json", env, problems)
            if b:
                bindings[group][name] = b
    lines = None
    if ok("bindings", "lines"):
        lines = _compile_binding(data["bindings"]["lines"], "lines", where("bindings", "lines"),
                                 input_format or "json", env, problems)
        spec = data["bindings"]["lines"]
        if input_format == "json" and isinstance(spec, dict) and "const" in spec and \
                not isinstance(spec["const"], list):
            # every invoice would be refused, one by one, as having no lines
            problems.append(Problem(
                "mapping.input", f"{{const: {spec['const']}}} is for CSV input (each row of "
                "an invoice is one of its lines); with input.format: json, bindings.lines is "
                "the path of the invoice's line array (e.g. lines: lines)",
                mapping=where("bindings", "lines")))
        elif input_format == "csv" and not (isinstance(spec, dict) and
                                            spec.get("const") == "rows"):
            # never read: a column named here (lines: lignes_facture) looked read, and
            # exported as if it were {const: rows} whether the file had that column or not
            problems.append(Problem(
                "mapping.csv-lines", "with input.format: csv, bindings.lines is not read: "
                "each row of an invoice (input.group_by) is one of its lines; write "
                "bindings.lines as {const: rows}", mapping=where("bindings", "lines")))

    output = None
    if ok("output"):
        o = data["output"]
        emitter = o.get("emitter") or {}
        bordereau_object = None
        if "bordereau_object" in o:
            bordereau_object = _compile_binding(o["bordereau_object"], "bordereau.object",
                                                where("output", "bordereau_object"), "json",
                                                env, problems)
        output = OutputSettings(
            format=o["format"], sigle=emitter.get("sigle", "PESGEN"),
            adresse=emitter.get("adresse", f"pesgen {__version__}"),
            bordereau_object=bordereau_object, asap_delay_days=o.get("asap_delay_days", 0),
            max_pieces_per_bordereau=o.get("max_pieces_per_bordereau", 99999),
            tiers_on=o.get("tiers_on", "every_line"), encoding=o.get("encoding"),
            payment_references=o.get("payment_references", True),
            asap_edition=o.get("asap_edition"), options=dict(o.get("options") or {}))

    codes = None
    k = data["codes"] if ok("codes", "activities") and ok("codes", "payer_kinds") else None
    if k is not None:
        # a code table that failed the schema is left out of the checks (its part only)
        codes = Codes(activities=dict(k["activities"]), payer_kinds=dict(k["payer_kinds"]),
                      civility=dict(k["civility"]) if "civility" in k and
                      ok("codes", "civility") else None,
                      countries=dict(k.get("countries") or {}) if ok("codes", "countries")
                      else {},
                      sepa_sequences=dict(k.get("sepa_sequences") or DEFAULT_SEPA_SEQUENCES)
                      if ok("codes", "sepa_sequences") else DEFAULT_SEPA_SEQUENCES,
                      payment_methods=dict(k["payment_methods"]) if "payment_methods" in k
                      and ok("codes", "payment_methods") else None)
        _check_grid(codes, where, problems)
        _check_countries(codes, where, problems)
        _check_consts(data, codes, where, problems)

    policies = None
    if ok("policies"):
        p = data.get("policies") or {}
        policies = Policies(**{name: p[name] for name in p})
        if policies.missing_civility == "default" and not policies.default_civility:
            problems.append(Problem("mapping.policy", "missing_civility: default needs "
                                    "default_civility",
                                    mapping=where("policies", "missing_civility")))
        if policies.netted_label == "append" and policies.negative_lines != "net":
            problems.append(Problem("mapping.policy", "netted_label: append needs "
                                    "negative_lines: net (no line is netted otherwise)",
                                    mapping=where("policies", "netted_label")))
        if policies.default_civility and is_mademoiselle(policies.default_civility):
            problems.append(Problem("pes.civility", "'Mademoiselle' is rejected by Hélios",
                                    mapping=where("policies", "default_civility")))
    if codes is not None and codes.civility:
        for raw, sent in codes.civility.items():
            if is_mademoiselle(sent):
                problems.append(Problem("pes.civility", f"'{raw}' maps to '{sent}': Hélios "
                                        "rejects 'Mademoiselle' (map it to MME)",
                                        mapping=where("codes", "civility", raw)))

    payment_reference = None
    if ok("payment_reference"):
        r = data.get("payment_reference") or {}
        payment_reference = PaymentReferenceSettings(**{name: r[name] for name in r})

    _refused(shown, problems, recorded, data, waived)
    # past _refused, nothing failed (else it raised): every part was read
    assert not refused and collectivity is not None and input_spec is not None and \
        output is not None and codes is not None and policies is not None and \
        payment_reference is not None and lines is not None
    return Mapping(
        path=path, text=text, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        data=data, collectivity=collectivity, output=output, input=input_spec,
        bindings=bindings, lines=lines,
        codes=codes, policies=policies, payment_reference=payment_reference,
        recorded=recorded, waived=tuple(waived), timezone=timezone)


def _check_grid(codes: Codes, where: Callable[..., str], problems: list[Problem]) -> None:
    for kind, entry in codes.payer_kinds.items():
        cat, nat = entry["category"], entry["legal_nature"]
        if cat not in CAT_NAT_GRID:
            problems.append(Problem("pes.cat-tiers", f"CatTiers '{cat}' is not a DGFiP category",
                                    mapping=where("codes", "payer_kinds", kind, "category")))
        elif nat not in CAT_NAT_GRID[cat]:
            allowed = ", ".join(sorted(CAT_NAT_GRID[cat]))
            problems.append(Problem("pes.cat-nat-grid", f"CatTiers {cat} with NatJur {nat} is "
                                    f"outside the DGFiP grid (allowed NatJur: {allowed})",
                                    mapping=where("codes", "payer_kinds", kind, "legal_nature")))


# the bindings a code table translates, with the table and the rule an invoice's value
# outside it breaks (build): (group, field, table, rule), in the scaffold's order
_CODED = (("payer", "kind", "payer_kinds", "codes.payer-kind"),
          ("joint_payer", "kind", "payer_kinds", "codes.payer-kind"),
          ("payment", "direct_debit", "payment_methods", "codes.payment-method"),
          ("payment", "sequence", "sepa_sequences", "codes.sepa-sequence"),
          ("line", "activity", "activities", "codes.activity"))


def _check_consts(data: dict[str, Any], codes: Codes, where: Callable[..., str],
                  problems: list[Problem]) -> None:
    """A {const} binding a code table translates, whose value the table lacks: every
    invoice reading it would be refused, by invoice, at preview or export; said now,
    naming the binding (rule mapping.const-code)."""
    tables: dict[str, dict[str, Any] | None] = {
        "payer_kinds": codes.payer_kinds, "activities": codes.activities,
        "sepa_sequences": codes.sepa_sequences, "payment_methods": codes.payment_methods}
    bindings = data.get("bindings")
    for group, name, table_name, rule in _CODED:
        spec = bindings.get(group) if isinstance(bindings, dict) else None
        spec = spec.get(name) if isinstance(spec, dict) else None
        table = tables[table_name]
        if not isinstance(spec, dict) or "const" not in spec or table is None:
            continue
        value = spec["const"]
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # empty: the field is missing, said as such by invoice
        if isinstance(value, (dict, list)) or (isinstance(value, bool) and name != "direct_debit"):
            continue  # not a code: refused by invoice as what it is (build._scalar)
        # a payment method is compared as the text it is (a YAML true is none); the
        # other codes as text (build: str(code))
        code = value if name == "direct_debit" else str(value)
        if isinstance(code, str) and code in table:
            continue
        said = f"{{const: {str(value).lower() if isinstance(value, bool) else value}}}"
        lacks = (f"codes.{table_name} has no {code!r}" if isinstance(code, str)
                 else f"it is {'a yes/no value' if isinstance(code, bool) else 'a number'}, "
                 f"not a text of codes.{table_name}")
        if table_name == "sepa_sequences" and not data["codes"].get("sepa_sequences"):
            lacks += f" (no codes.sepa_sequences: pesgen knows {', '.join(table)})"
        close = [k for k in table if k.casefold() == str(code).casefold()] or \
            difflib.get_close_matches(str(code), list(table), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        if name == "direct_debit" and not close:
            # the constant advised for no direct debit is a method the table says false
            no = [k for k, debit in table.items() if debit is False]
            hint = (f"; with the table, a constant no direct debit is a method it says "
                    f"false: {{const: {no[0]}}}" if no else "")
        problems.append(Problem(
            "mapping.const-code", f"bindings.{group}.{name} is {said}, but {lacks}: every "
            f"invoice it is read for would be refused (rule {rule}){hint}",
            mapping=where("bindings", group, name)))


def _check_countries(codes: Codes, where: Callable[..., str], problems: list[Problem]) -> None:
    """codes.countries is read with the country upper-cased, as pesgen reads the
    address's country: two keys that are one country so must give one code."""
    first: dict[str, str] = {}
    for key, code in codes.countries.items():
        other = first.setdefault(str(key).strip().upper(), key)
        if other != key and codes.countries[other] != code:
            problems.append(Problem(
                "codes.country", f"'{key}' and '{other}' are one country to pesgen (countries "
                f"are compared in upper case), with two INSEE codes: {code} and "
                f"{codes.countries[other]}", mapping=where("codes", "countries", key)))
