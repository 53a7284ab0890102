"""Format bundles: a folder ``templates/<name>/`` with ``format.yaml``, its template(s)
and its XSD or layout. Adding a format is adding such a folder, never code.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _schema
from ._yaml import line_of, load_yaml_file
from .across import compile_across
from .errors import FormatNotFound, MappingError, PesgenError, Problem
from .layout import Layout, forbidden_characters, load_layout
from .resources import data_dir, format_dirs, format_sources, inside
from .text import charset_chars, code_error, outside_charset
from .validate import load_xsd

if TYPE_CHECKING:
    from .mapping import Mapping

# The text charset of an encoding, by the codec's own name (``codecs.lookup(x).name``:
# 'ISO8859-1', 'iso_8859_1', 'l1' and 'latin-1' are all 'iso8859-1'). Another encoding
# has no default: its format.yaml says which characters it writes (``charset:``). A
# cp1252 package gets ISO-8859-1 text unless its bundle says ``charset: cp1252``: what
# a finance package imports often goes on to Hélios, in ISO-8859-1.
_CHARSET_OF_CODEC = {"iso8859-1": "latin-1", "cp1252": "latin-1", "ascii": "ascii",
                     **dict.fromkeys(("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
                                      "utf-32", "utf-32-le", "utf-32-be"), "utf-8")}


@dataclass(frozen=True)
class FileSpec:
    template: str
    name: str
    xsd: Path | None = None
    layout: Path | None = None
    when_empty: str = "write"  # write | skip: a file that would hold no bytes
    # the layout as messages name it: in the bundle, by the bundle's folder as
    # ``Format.shown`` names it ('formats/acme/acme.layout.yaml'); '' for the path
    layout_shown: str = ""
    # the template as messages name it ('formats/acme/acme.txt.j2'); '' when not known
    template_shown: str = ""

    def load_layout(self) -> Layout:
        """The file's layout (there is one), its problems naming it by ``layout_shown``."""
        assert self.layout is not None
        return load_layout(self.layout, self.layout_shown or None)


@dataclass(frozen=True)
class FieldLimit:
    max: int | None
    charset: str
    # the values the target accepts, as written (format.yaml fields.<field>.values; None:
    # any), and where format.yaml lists them ('format.yaml:line: fields.<field>.values')
    values: tuple[str, ...] | None = None
    values_at: str = ""


@dataclass(frozen=True)
class Format:
    name: str
    folder: Path
    title: str
    kind: str
    status: str
    encoding: str
    newline: str
    charset: str
    rules: tuple[str, ...]
    files: tuple[FileSpec, ...]
    fields: dict[str, FieldLimit] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    # the scaffold's TODO placeholders left in format.yaml (a draft may have some:
    # ``todo_problems``); check-format refuses them, ``formats`` counts them
    todos: tuple[Problem, ...] = ()
    # the fields the format deliberately does not carry (format.yaml ``not_carried``),
    # {field: (the reason given, 'format.yaml:line: not_carried.<field>')}: a mapping
    # binding one is not warned of (``pesgen.coverage``)
    not_carried: dict[str, tuple[str, str]] = field(default_factory=dict)
    # the characters a layout of the format forbids in its values (forbidden_characters),
    # once: no text field, option or mapping text written into its files may hold one
    forbidden: str = ""
    # format.yaml numbering.pieces: per-bordereau (IdPce 1, 2, 3… in each bordereau, an
    # ORMC rôle's articles) or per-exercise (the titre number, continuing over the runs
    # of a SIRET, budget and exercise: pesgen.runs.piece_key)
    pieces: str = "per-bordereau"
    # format.yaml across_files: checks between the flat files of a bordereau
    across: tuple[Any, ...] = ()
    # a bundle as a run recorded it, loaded to rebuild that run (``load_format``)
    recorded: bool = False

    @property
    def pieces_per_exercise(self) -> bool:
        """The pieces carry the titre number, unique over the exercise (pes-titres)."""
        return self.pieces == "per-exercise"

    @property
    def is_pes(self) -> bool:
        """A PES V2 format (it numbers rôles per TypBord): the DGFiP's XSD applies."""
        return "typ_bord" in self.defaults

    @property
    def shown(self) -> str:
        """The bundle's folder as messages name it before one of its templates
        ('pes-ormc/pes-ormc.xml.j2:12'): a shipped bundle, or one as a run recorded it, by
        its name; another by its folder as it was found, the --formats-dir or
        PESGEN_FORMATS_PATH folder as given followed by the bundle's
        ('formats/acme-compta/acme-compta.csv.j2:11'), so that the technician opens the
        file from where the command was run (as format.yaml's places are named)."""
        return shown_folder(self.name, self.folder, self.recorded)

    @property
    def limits_owner(self) -> str:
        """Whose limits a refusal of a value over its field's length names
        (``limits_owner``)."""
        return limits_owner(self.name, self.defaults)

    def limit(self, key: str) -> FieldLimit:
        return self.fields.get(key) or self._unlimited

    @cached_property
    def _unlimited(self) -> FieldLimit:
        """A field the format does not list: no length limit, the format's charset."""
        return FieldLimit(None, self.charset)


def unvalidated_files(fmt: Format) -> list[tuple[int, FileSpec]]:
    """The files of ``fmt`` that no XSD of ours validates, nor a layout, with their index
    in format.yaml's files: format.yaml gives them no ``xsd`` (``load_format`` allows it
    for a PES format only), and only the DGFiP package validates them."""
    return [(i, spec) for i, spec in enumerate(fmt.files)
            if spec.xsd is None and spec.layout is None]


def unvalidated(fmt: Format) -> list[Problem]:
    """Each file of a PES format that has no XSD of its own (``unvalidated_files``),
    which only the DGFiP package validates: an export refuses to run without the package
    (``Exporter``), check-mapping, without it, validates none of its sample files, and
    preview says it validates none (rule format.no-xsd, naming format.yaml:line:
    files[i])."""
    specs = unvalidated_files(fmt)
    if not specs or fmt.recorded:
        return []
    source = fmt.folder / "format.yaml"
    try:
        data, _, _ = load_yaml_file(source, "format")
    except (PesgenError, OSError):
        data = None
    problems = []
    for i, spec in specs:
        line = line_of(data, ["files", i, "template"]) if data is not None else 0
        problems.append(Problem(
            "format.no-xsd", f"{spec.template} has no XSD of its own (format.yaml gives "
            "it no xsd): only the DGFiP package validates its files (--official-xsd DIR, "
            "PESGEN_OFFICIAL_XSD or official_xsd in the config file)",
            mapping=f"{source}:{line}: files[{i}]" if line else f"{source}: files[{i}]"))
    return problems


def shown_folder(name: str, folder: Path, recorded: bool) -> str:
    """``Format.shown`` of the bundle ``name`` in ``folder``."""
    if recorded or inside(data_dir("templates"), folder):
        return name
    return str(folder)


def _shown_file(name: str, folder: Path, recorded: bool, found: Path) -> str:
    """A file ``found`` in the bundle's folder as messages name it (``Format.shown``
    then its path in the folder); one found elsewhere (under the shipped schemas/) by its
    path."""
    try:
        within = found.relative_to(folder.resolve())
    except ValueError:
        return str(found)
    return f"{shown_folder(name, folder, recorded)}/{within.as_posix()}"


def encoding_clash(written: str, layout: str | None) -> str | None:
    """A file written in one encoding and checked against a layout declaring another
    would be misread by the check (every byte is valid ISO-8859-1): say so."""
    if layout is None:
        return None
    try:
        same = codecs.lookup(written).name == codecs.lookup(layout).name
    except LookupError:
        return None  # an unknown name is reported where it is declared
    if same:
        return None
    return (f"the file is written in {written} but its layout declares {layout}: "
            "make them the same")


def newline_clash(written: str, layout: str) -> str | None:
    """A file written with one line ending (format.yaml newline) and checked against a
    layout wanting the other would have every line refused at its first render (rule
    layout.line-ending, once a line): say it once, where the bundle loads."""
    if written == layout:
        return None
    said = {"\r\n": "CRLF", "\n": "LF"}
    return (f"the file is written with {said[written]} line endings (format.yaml "
            f"newline) but its layout wants {said[layout]} (its line_ending; LF when not "
            "set): make them the same, as the package's documentation says")


# How a bundle's charset followed its encoding before _charset checked it (a fixed table
# of spellings, else utf-8): what a run recorded then was rendered with
_CHARSET_BEFORE_CHECKS = {"iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1",
                          "utf-8": "utf-8", "ascii": "ascii", "us-ascii": "ascii",
                          "cp1252": "latin-1", "windows-1252": "latin-1"}


def _charset(data: Any, source: Path) -> str:
    """The charset of the format's text fields: format.yaml's ``charset``, else the one
    of its ``encoding``. An encoding pesgen does not know the characters of is the
    bundle's problem, never a quiet switch to another charset (which would turn the
    transliteration off), and so is a charset holding characters the encoding cannot
    write: text is checked and transliterated for its charset, so such a character
    would only fail when the file is written, blamed on the template."""
    encoding = data["encoding"]

    def at(*keys: str) -> str:
        return f"{source}:{line_of(data, list(keys))}: {'.'.join(keys)}"

    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise _invalid(source, [Problem("format.schema", f"unknown encoding '{encoding}'",
                                        mapping=at("encoding"))]) from None
    try:
        "".encode(encoding)
    except LookupError:  # base64, rot13: not from text to bytes
        raise _invalid(source, [Problem("format.schema", f"'{encoding}' is not a text "
                                        "encoding", mapping=at("encoding"))]) from None
    charset: str | None = data.get("charset") or _CHARSET_OF_CODEC.get(codec)
    if charset is None:
        choices = ", ".join(_schema.load_schema("format.schema.json")["properties"]
                            ["charset"]["enum"])
        raise _invalid(source, [Problem(
            "format.schema", f"pesgen does not know which characters encoding "
            f"'{encoding}' writes: set charset: ({choices}), the characters text fields "
            "are checked and transliterated to, to a set the encoding writes whole",
            mapping=at("encoding"))])
    declared: list[tuple[str, tuple[str, ...]]] = [
        (charset, ("charset",) if data.get("charset") else ("encoding",))]
    declared += [(v["charset"], ("fields", k, "charset"))
                 for k, v in (data.get("fields") or {}).items() if "charset" in v]
    problems = []
    for name, keys in declared:
        lacking = [c for c in charset_chars(name) if not _writes(encoding, c)]
        if lacking:
            shown = "".join(lacking[:8]) + ("…" if len(lacking) > 8 else "")
            problems.append(Problem(
                "format.schema", f"charset {name} holds characters encoding '{encoding}' "
                f"cannot write ({shown!r}): give a charset it writes whole",
                mapping=at(*keys)))
    if problems:
        raise _invalid(source, problems)
    return charset


def option_problems(defaults: Any, encoding: str, source: Path,
                    skip: frozenset[str] = frozenset(), charset: str | None = None,
                    forbidden: str = "") -> list[Problem]:
    """The format's option defaults (``defaults.options``, but those in ``skip``) that
    ``encoding`` cannot write, holding a character outside the format's ``charset``
    (the characters its text fields are held to) or one its layouts forbid
    (``forbidden``), each naming its format.yaml line: an option goes into the file as
    it is (no text policy transliterates it)."""
    options = defaults.get("options") or {}
    problems = []
    for key, value in options.items():
        if key in skip:
            continue
        said = text_misfit(str(value), encoding, charset, forbidden)
        if said is not None:
            problems.append(Problem(
                "format.schema", f"option {key}: {said} (an option is written as it is: "
                "no text policy transliterates it)",
                # the options' own lines: a loaded Format's defaults are a plain dict
                # (its ``options`` still the YAML's), which would name line 0
                mapping=f"{source}:{line_of(options, [key])}: "
                f"defaults.options.{key}"))
    return problems


def limits_owner(name: str, defaults: dict[str, Any]) -> str:
    """Whose limits a refusal of a value over its field's length names: Hélios for a PES
    format (``Format.is_pes``: its defaults give a TypBord), the format by its name for
    a finance package's ('format bl-emagnus allows 50')."""
    return "Hélios" if "typ_bord" in defaults else f"format {name}"


def values_problems(data: Any, source: Path, charset: str) -> list[Problem]:
    """The values format.yaml lists for a field (``fields.<field>.values``) that the
    field itself cannot hold as written (its charset and max, as a code of the mapping
    is held to them: ``code_error``), each naming its format.yaml line: a mapping could
    then give no value the format takes."""
    problems = []
    for key, spec in (data.get("fields") or {}).items():
        for i, value in enumerate(spec.get("values") or ()):
            error = code_error(value, spec.get("charset", charset), spec.get("max"),
                               limits_owner(data.get("name", ""), data.get("defaults") or {}))
            if error:
                problems.append(Problem(
                    "format.schema", f"the value {value!r} {error} (fields.{key}: max "
                    f"{spec.get('max', 'none')}, charset {spec.get('charset', charset)}): "
                    "a value the format takes must fit its field as written",
                    mapping=f"{source}:{line_of(data, ['fields', key, 'values', i])}: "
                    f"fields.{key}.values[{i}]"))
    return problems


def text_misfit(text: str, encoding: str, charset: str | None,
                forbidden: str = "") -> str | None:
    """What keeps ``text``, written as it is, out of a file in ``encoding`` whose format
    holds its text to ``charset`` (None: not checked) and whose layouts forbid the
    characters ``forbidden``: a character the encoding cannot write, else the
    characters outside the charset, else the forbidden ones; None when it fits."""
    char = unwritable(text, encoding)
    if char is not None:
        return f"{char!r} cannot be written in {encoding}"
    outside = outside_charset(text, charset) if charset is not None else ""
    if outside:
        return f"{outside!r} is outside the format's charset {charset}"
    held = forbidden_in(text, forbidden)
    if held:
        return f"holds {held!r}, which the format's layouts forbid (forbidden_characters)"
    return None


def forbidden_in(text: str, forbidden: str) -> str:
    """The characters of ``forbidden`` that ``text`` holds ('' when none)."""
    return "".join(c for c in forbidden if c in text) if forbidden else ""


def unwritable(text: str, encoding: str) -> str | None:
    """The first character of ``text`` that ``encoding`` cannot write, or None."""
    try:
        text.encode(encoding)
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


def _writes(encoding: str, char: str) -> bool:
    try:
        return bool(char.encode(encoding))
    except UnicodeError:
        return False


# the scaffold's placeholders: "TODO: <publisher> <product> <what> import"
_TODO = re.compile(r"\bTODO\b")
# statuses that claim a finished bundle: no placeholder may be left
FINISHED = ("stable", "reconstructed")


def todo_problems(data: Any, source: Path) -> list[Problem]:
    """Every value of format.yaml (and every key) still holding the scaffold's TODO
    placeholder (``pesgen new-format`` writes them in title, source...), by
    file:line: key. Comments are not values: a TODO there is the author's note."""
    problems: list[Problem] = []

    def walk(node: Any, keys: list[str | int]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if _TODO.search(str(key)):
                    problems.append(_todo(data, source, [*keys, key], "the key"))
                walk(value, [*keys, key])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, [*keys, i])
        elif isinstance(node, str) and _TODO.search(node):
            problems.append(_todo(data, source, keys, "the value"))

    walk(data, [])
    return problems


def _todo(data: Any, source: Path, keys: list[str | int], what: str) -> Problem:
    return Problem("format.todo", f"{what} still holds the scaffold's placeholder TODO: "
                   "fill it in (docs/onboarding.md, step 1)",
                   mapping=f"{source}:{line_of(data, keys)}: {_schema._dotted(keys)}")


def _invalid(source: Path, problems: list[Problem]) -> MappingError:
    return MappingError(f"{source}: invalid format bundle", problems)


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; a name the system refuses to look up (over 255 bytes:
    ENAMETOOLONG) is none, said as a file not found, not an OSError."""
    try:
        return path.is_file()
    except OSError:
        return False


def _resolve_data_file(folder: Path, rel: str) -> Path | None:
    """A file format.yaml names (an XSD, a layout): in the bundle, else under the
    shipped schemas/; None when in neither."""
    candidate = (folder / rel).resolve()
    if inside(folder, candidate) and _is_file(candidate):
        return candidate
    shipped = (data_dir("schemas") / rel).resolve()
    if inside(data_dir("schemas"), shipped) and _is_file(shipped):
        return shipped
    return None


def _outside(folder: Path, rel: str, shipped: bool) -> bool:
    """A path format.yaml names that is absolute or leads out of the bundle's folder
    (and, for an XSD or a layout, ``shipped``, out of the shipped schemas/ too)."""
    if Path(rel).is_absolute() or Path(rel).drive:
        return True
    if inside(folder, (folder / rel).resolve()):
        return False
    return not (shipped and inside(data_dir("schemas"), (data_dir("schemas") / rel).resolve()))


def _not_found(folder: Path, rel: str, what: str, suffixes: tuple[str, ...]) -> str:
    """What to say of a file format.yaml names that is not there, with the bundle's file
    of that kind whose name is closest."""
    have = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes))
    close = difflib.get_close_matches(rel, have, n=1, cutoff=0.6)
    said = f"{what} '{rel}' not found in the bundle's folder" + (
        "" if what == "template" else " nor in schemas/")
    if close:
        return said + f" (did you mean '{close[0]}'?)"
    return said + (f" (its {what} files: {', '.join(have)})" if have else "")


# the rule sets of files that go to Hélios as they are: their bordereaux are numbered
# per TypBord (defaults.typ_bord), never per format name
HELIOS_RULES = ("pes-ormc", "pes-titres")


def _sequence_problems(data: Any, source: Path) -> list[Problem]:
    """A format checked by a DGFiP rule set (its files go to Hélios) without
    ``defaults.typ_bord``: its IdBord sequence would be keyed by the format's name
    while its files say a TypBord, so a second bundle writing that TypBord would
    number the same rôles again."""
    helios = [r for r in data.get("rules") or () if r in HELIOS_RULES]
    if not helios or "typ_bord" in (data.get("defaults") or {}):
        return []
    return [Problem(
        "format.typ-bord", f"rules {', '.join(helios)} (files that go to Hélios) need "
        "defaults.typ_bord, the TypBord the files write: the IdBord sequence is keyed by "
        "it (without it, by the format's name, and another bundle writing the same "
        "TypBord would number the same rôles again)",
        mapping=f"{source}:{line_of(data, ['rules'])}: rules")]


def typ_bord_problems(fmt: Format, paths: list[Path]) -> list[Problem]:
    """The TypBord the XML ``paths`` write that is not the one the format's IdBord
    sequence is keyed by (``defaults.typ_bord``), for a format whose files go to Hélios:
    the file would say one rôle sequence and be numbered in another."""
    if not any(r in HELIOS_RULES for r in fmt.rules):
        return []
    from lxml import etree

    key = str(fmt.defaults.get("typ_bord") or fmt.name)
    source = fmt.folder / "format.yaml"
    data, _, _ = load_yaml_file(source, "format")
    problems = []
    for path in paths:
        try:
            written = etree.parse(str(path)).xpath("//*[local-name()='TypBord']/@V")
        except etree.XMLSyntaxError:
            continue  # reported by the file's XSD
        for value in sorted(set(map(str, written)) - {key}):
            problems.append(Problem(
                "format.typ-bord", f"{path.name} writes TypBord {value} but the IdBord "
                f"sequence is keyed by defaults.typ_bord {key!r}: make them the same (a "
                "rôle numbered in another TypBord's sequence is a duplicate at Hélios)",
                mapping=f"{source}:{line_of(data, ['defaults', 'typ_bord'])}: "
                "defaults.typ_bord"))
    return problems


def _at(source: Path, data: Any, i: int, key: str) -> str:
    """Where ``files[i].key`` is written in format.yaml: file:line: key."""
    return f"{source}:{line_of(data, ['files', i, key])}: files[{i}].{key}"


def _file_paths(folder: Path, spec: dict[str, Any], at: Callable[[str], str]
                ) -> tuple[list[Problem], dict[str, Path | None] | None]:
    """The files one entry of format.yaml's ``files`` names, looked for in the bundle:
    the problems (a path outside the bundle, a file not found, each at its line through
    ``at``) and the XSD and layout found (None: not given or not found); None for them
    when a path is outside the bundle (nothing else looked for)."""
    problems: list[Problem] = []
    found: dict[str, Path | None] = {"xsd": None, "layout": None}
    outside = [key for key in ("template", "xsd", "layout")
               if spec.get(key) and _outside(folder, spec[key], key != "template")]
    for key in outside:
        problems.append(Problem("format.file", f"{key} '{spec[key]}' is outside the "
                                "bundle: give a path in the bundle's folder"
                                + ("" if key == "template" else " (or under the shipped "
                                   "schemas/)"), mapping=at(key)))
    if outside:
        return problems, None
    if not _is_file(folder / spec["template"]):
        problems.append(Problem("format.file", _not_found(
            folder, spec["template"], "template", (".j2",)), mapping=at("template")))
    for key, suffixes in (("xsd", (".xsd",)), ("layout", (".yaml", ".yml"))):
        if spec.get(key):
            found[key] = _resolve_data_file(folder, spec[key])
            if found[key] is None:
                problems.append(Problem("format.file", _not_found(
                    folder, spec[key], key, suffixes), mapping=at(key)))
    return problems, found


def load_format(folder: Path, recorded: bool = False) -> Format:
    """The bundle in ``folder``. ``recorded``: a bundle as a run recorded it, loaded to
    rebuild that run's files, which are then compared byte for byte with the ones
    validated when the run was made (a bundle recorded before a check was added still
    loads)."""
    source = folder / "format.yaml"
    data, problems, _ = load_yaml_file(source, "format")
    if recorded and isinstance(data, dict) and isinstance(data.get("files"), list):
        # an xsd or a layout given empty, refused since 2026-12-02: none, as read then
        for spec in data["files"]:
            for key in ("xsd", "layout"):
                if isinstance(spec, dict) and spec.get(key) == "":
                    del spec[key]
    failed: list[tuple[Any, ...]] = []
    checked = _schema.check(data, "format.schema.json", str(source), "format.schema",
                            failed)
    if recorded:  # recorded before unknown keys under defaults were refused: not read
        checked = [p for p in checked if not (isinstance(p, _schema.UnknownKey)
                                              and tuple(p.path) == ("defaults",))]
    problems += checked
    if not problems and data["name"] != folder.name:
        problems.append(Problem("format.schema", f"name '{data['name']}' differs from the "
                                f"folder name '{folder.name}'", mapping=f"{source}:1: name"))
    if not problems and not recorded:
        problems += _sequence_problems(data, source)
    todos = todo_problems(data, source) if not (recorded or problems) else []
    if todos and data["status"] in FINISHED:
        # a bundle that says it is usable is finished: a draft may still have them
        # (preview and export work on it), check-format refuses them
        problems += [Problem(p.rule, f"{p.message}, or set status: draft (status: "
                             f"{data['status']} says the bundle is finished)", mapping=p.mapping)
                     for p in todos]
    if problems and checked and not recorded and not any(
            path[:1] in ((), ("files",)) for path in failed):
        # the files list is well formed: its files missing are said now too, not on the
        # run after the schema's problems are fixed
        for i, spec in enumerate(data["files"]):
            problems += _file_paths(folder, spec, partial(_at, source, data, i))[0]
    if problems:
        raise MappingError(f"{source}: invalid format bundle", problems)
    encoding = data["encoding"]
    try:
        charset = _charset(data, source)
    except MappingError:
        if not recorded:
            raise
        # a bundle a run recorded before these checks: rebuilt with the charset it was
        # rendered with then (the rebuilt files are compared with the recorded sha256)
        charset = data.get("charset") or _CHARSET_BEFORE_CHECKS.get(encoding.lower(), "utf-8")
    if not recorded:
        problems = option_problems(data.get("defaults") or {}, encoding, source,
                                   charset=charset)
        problems += values_problems(data, source, charset)
        if problems:
            raise _invalid(source, problems)
    files = []
    problems = []
    forbidden: dict[str, None] = {}
    layouts: dict[str, Any] = {}  # by template: across_files checks their columns

    def at(i: int, key: str) -> str:
        return _at(source, data, i, key)

    for i, spec in enumerate(data["files"]):
        # every file format.yaml names is looked for, each one missing named by its line
        wrong, paths = _file_paths(folder, spec, partial(at, i))
        problems += wrong
        if paths is None:
            continue
        found = paths
        files.append(FileSpec(
            template=spec["template"], name=spec["name"], xsd=found["xsd"],
            layout=found["layout"], when_empty=spec.get("when_empty", "write"),
            layout_shown="" if found["layout"] is None else _shown_file(
                data["name"], folder, recorded, found["layout"]),
            template_shown=f"{shown_folder(data['name'], folder, recorded)}/{spec['template']}",
        ))
        if spec.get("xsd") is None and spec.get("layout") is None and not recorded and \
                "typ_bord" not in (data.get("defaults") or {}):
            # pesgen writes no file it has not validated (a PES format without an XSD
            # of its own is validated by the DGFiP's: see Exporter)
            message = (f"file '{spec['template']}' has neither an xsd nor a layout: every "
                       "file pesgen writes is validated, give the XSD (XML) or the layout "
                       "(CSV, fixed width) that checks it")
            where = f"{source}:{line_of(data, ['files', i])}: files[{i}]"
            raise MappingError(f"{where}: {message}", [Problem(
                "format.schema", message, mapping=where)])
        if found["xsd"] is not None and not recorded:
            try:  # a broken XSD makes a broken bundle (exit 3), named where it is given
                load_xsd(found["xsd"])
            except PesgenError as exc:
                problems.append(Problem("format.file", str(exc), mapping=at(i, "xsd")))
        if found["layout"] is not None:
            layout = files[-1].load_layout()  # a broken layout makes a broken bundle
            layouts[spec["template"]] = layout
            forbidden.update(dict.fromkeys(forbidden_characters(layout)))
            # a recorded run's bundle loads as it rendered (a file its runs always
            # skipped empty was never checked against its layout)
            clash = encoding_clash(encoding, layout.encoding) or (None if recorded else (
                newline_clash("\r\n" if data.get("newline") == "CRLF" else "\n",
                              layout.newline)))
            if clash:
                raise MappingError(f"{at(i, 'layout')}: {clash}", [Problem(
                    "format.schema", clash, mapping=at(i, "layout"))])
    if forbidden and not recorded and not problems:
        problems = option_problems(data.get("defaults") or {}, encoding, source,
                                   forbidden="".join(forbidden))
    across, wrong = compile_across(
        data.get("across_files") or [], layouts,
        lambda i, key: f"{source}:{line_of(data, ['across_files', i, key])}: "
                       f"across_files[{i}].{key}")
    problems += wrong
    if problems:
        raise _invalid(source, problems)
    fields = {k: FieldLimit(v.get("max"), v.get("charset", charset)) if "values" not in v
              else FieldLimit(v.get("max"), v.get("charset", charset), tuple(v["values"]),
                              f"{source}:{line_of(data, ['fields', k, 'values'])}: "
                              f"fields.{k}.values")
              for k, v in (data.get("fields") or {}).items()}
    return Format(
        name=data["name"], folder=folder, title=data["title"], kind=data["kind"],
        status=data["status"], encoding=encoding,
        newline="\r\n" if data.get("newline") == "CRLF" else "\n", charset=charset,
        rules=tuple(data.get("rules") or ()), files=tuple(files), fields=fields,
        defaults=dict(data.get("defaults") or {}), source=data.get("source", ""),
        todos=tuple(todos),
        forbidden="".join(forbidden),
        pieces=(data.get("numbering") or {}).get("pieces", "per-bordereau"),
        across=across, recorded=recorded,
        not_carried={k: (str(v), f"{source}:{line_of(data, ['not_carried', k])}: "
                                 f"not_carried.{k}")
                     for k, v in (data.get("not_carried") or {}).items()},
    )


def list_formats(extra_dirs: list[Path] | None = None
                 ) -> list[tuple[Path, Format | MappingError]]:
    """Every bundle found, first one of each name wins; broken bundles are listed too."""
    seen: set[str] = set()
    out: list[tuple[Path, Format | MappingError]] = []
    for base in format_dirs(extra_dirs):
        for folder in sorted(p for p in base.iterdir() if (p / "format.yaml").is_file()):
            if folder.name in seen:
                continue
            seen.add(folder.name)
            try:
                out.append((folder, load_format(folder)))
            except MappingError as exc:
                out.append((folder, exc))
    return out


_FORMAT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,40}")  # as format.schema.json's name


def layout_bundle(layout: Path) -> tuple[Format, str] | PesgenError | None:
    """The format bundle whose format.yaml names ``layout`` as a file's layout (the
    bundle's folder holds it), and where its charset is said (format.yaml:line: charset,
    or its encoding when it gives none); None for a layout of no bundle; the error of a
    format.yaml beside it that does not load (check-layout warns of it: a layout whose
    encoding is not the bundle's breaks it so, and the layout alone is valid)."""
    folder = layout.parent  # as given: the messages name it so
    source = folder / "format.yaml"
    if not source.is_file():
        return None
    try:
        fmt = load_format(folder)
        data, _, _ = load_yaml_file(source, "format")
    except PesgenError as exc:
        return exc
    if not any(f.layout is not None and f.layout.resolve() == layout.resolve()
               for f in fmt.files):
        return None
    key = "charset" if isinstance(data, dict) and data.get("charset") else "encoding"
    return fmt, f"{source}:{line_of(data, [key])}: {key}"


def find_format(name: str, extra_dirs: list[Path] | None = None) -> Format:
    """The bundle named ``name`` (typed on a command line: ``FormatNotFound``, exit 2;
    a mapping's output.format: ``mapping_format``)."""
    if not _FORMAT_NAME.fullmatch(name):
        # a bundle is found by name in the format folders, never by a path
        raise FormatNotFound(f"'{name}' is not a format name (lower-case letters, digits "
                             "and '-'; a bundle elsewhere is given with --formats-dir)")
    for base in format_dirs(extra_dirs):
        folder = base / name
        if (folder / "format.yaml").is_file():
            return load_format(folder)
    known = [f.name for f, _ in list_formats(extra_dirs)]
    looked = ", ".join(f"{folder} ({source})" for folder, source in format_sources(extra_dirs))
    raise FormatNotFound(f"unknown output format '{name}'{_close_format(name, known)} "
                         f"(known: {', '.join(known) or 'none'}); "
                         f"looked in {looked}. A bundle in another folder: --formats-dir DIR "
                         "or PESGEN_FORMATS_PATH (folders separated by "
                         f"'{os.pathsep}')")


def _close_format(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f": did you mean '{close[0]}'?" if close else ""


def mapping_format(mapping: Mapping, extra_dirs: list[Path] | None = None) -> Format:
    """The bundle a mapping's output.format names: one not found is the mapping's error
    (exit 3, rule mapping.format, naming its file:line: key), with the closest known
    name, not a usage error (``find_format``: a --format typed on a command line)."""
    name = mapping.output.format
    try:
        return find_format(name, extra_dirs)
    except FormatNotFound as exc:
        raise MappingError(f"{mapping.path}: output.format '{name}' names no format bundle",
                           [Problem("mapping.format", str(exc),
                                    mapping=mapping.where("output", "format"))]) from None
