"""Safe YAML loading that keeps line numbers and refuses YAML's silent typing traps.

* Only PyYAML's SafeLoader machinery is used (no Python object tags).
* Duplicate keys are collected as problems, not silently overwritten.
* Scalars stay strings unless they are plainly ``true``/``false``, ``null``/``~``/empty
  or a decimal integer without leading zero: ``01234``, ``NO``, ``2026-01-31`` and
  ``1.5`` are strings, so codes keep their zeros and dates their text.
* Every mapping remembers the line of each key, so errors can say ``file:line: key``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ._display import escaped, shown
from ._wide import wide
from .errors import MappingError, Problem

_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_YAML_TAG = "tag:yaml.org,2002:"
# Tags a plain document resolves to by itself; any other tag was written explicitly
# (!!python/object…, !include…): refused, never constructed.
_CORE_TAGS = frozenset(_YAML_TAG + t for t in ("str", "int", "bool", "null", "float",
                                               "timestamp", "value", "seq", "map"))


class LineDict(dict):
    """A dict that knows the 1-based line of each of its keys (and its own line)."""

    __slots__ = ("key_lines", "line")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[str, int] = {}
        self.line: int = 0


class LineList(list):
    __slots__ = ("item_lines", "line")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []
        self.line: int = 0


def _scalar(node: ScalarNode) -> Any:
    value = node.value
    if node.style is not None and node.style != "":  # quoted or block scalar: a string
        return value
    if node.tag == "tag:yaml.org,2002:str":  # plain text, or an explicit !!str 123
        return value
    if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
                        "tag:yaml.org,2002:null", "tag:yaml.org,2002:float",
                        "tag:yaml.org,2002:timestamp"):
        return value
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    if _INT.match(value):
        try:
            return int(value)
        except ValueError:  # over Python's 4300 digits: text, which the schema refuses
            return value
    return value


_TAB = re.compile(r"\btab\b|'\\t'")
# the line ends an editor shows, which PyYAML counts too
_LINE_END = re.compile(r"\r\n|\r|\n")
# what YAML 1.1 (PyYAML) also reads as a line end, and an editor does not: every line
# after one would be miscounted, and a comment's end read as a key
_YAML11_BREAKS = re.compile("[\x85\u2028\u2029]")
_BREAK_NAMES = {"\x85": "U+0085 (next line)", "\u2028": "U+2028 (line separator)",
                "\u2029": "U+2029 (paragraph separator)"}


def _line_and_column(text: str, at: int) -> tuple[int, int]:
    """The 1-based line and column of ``text[at]``, lines ending at CR LF, CR or LF."""
    ends = list(_LINE_END.finditer(text, 0, at))
    start = ends[-1].end() if ends else 0
    return len(ends) + 1, at - start + 1


def _yaml11_breaks(text: str, source: str) -> None:
    """Refuse the characters PyYAML reads as line ends where an editor sees none, each
    at its line (the lines an editor shows)."""
    problems = []
    for found in _YAML11_BREAKS.finditer(text):
        line, column = _line_and_column(text, found.start())
        problems.append(Problem(
            "mapping.yaml", f"column {column}: character {_BREAK_NAMES[found.group()]} is "
            "read as a line break by YAML 1.1, not by an editor: remove it (in a value, write "
            f"it as \\u{ord(found.group()):04X} inside double quotes)",
            mapping=f"{source}:{line}"))
    if problems:
        raise MappingError(f"{problems[0].mapping}: {problems[0].message}", problems)
_INDENT_PROBLEMS = ("mapping values are not allowed here", "did not find expected key",
                    "could not find expected ':'", "expected <block end>")


def _syntax_hint(problem: str, text: str, mark: Any) -> str | None:
    """Plain words for PyYAML's usual complaints: a tab, a key indented otherwise than
    its neighbours."""
    if mark is None:
        return None
    lines = _LINE_END.split(text)  # (not str.splitlines: it breaks at \f, \x1c... too)
    line = lines[mark.line] if mark.line < len(lines) else ""
    column = f"column {mark.column + 1}: "
    if _TAB.search(problem) or "\t" in line[:len(line) - len(line.lstrip())]:
        return (f"{column}a tab character: YAML indents with spaces only, replace the "
                "tabs by spaces")
    if problem.startswith(_INDENT_PROBLEMS):
        return (f"{column}check the indentation of this line and of the line above (a key "
                "lined up with the keys beside it, spaces only), and that a value holding "
                "': ' is quoted")
    return None


# the rule of a key written twice, by the kind of file (load_yaml_text's ``kind``): a
# format.yaml's is the bundle's problem; a layout's or the configuration's are listed
# with the mapping's rule, labelled with their kind
_DUPLICATE_RULE = {"format": "format.duplicate-key"}


def _build(node: yaml.Node, path: str, problems: list[Problem], source: str,
           kind: str = "mapping") -> Any:
    if node.tag not in _CORE_TAGS:
        tag = shown(node.tag.replace(_YAML_TAG, "!!", 1))
        at = f"{source}:{node.start_mark.line + 1}: {shown(path or '(top)')}"
        problems.append(Problem("mapping.yaml", f"YAML tag '{tag}' is not supported (pesgen "
                                "reads plain YAML, without tags)",
                                mapping=at))
    if isinstance(node, ScalarNode):
        return _scalar(node)
    if isinstance(node, SequenceNode):
        out = LineList()
        out.line = node.start_mark.line + 1
        for i, child in enumerate(node.value):
            out.append(_build(child, f"{path}[{i}]", problems, source, kind))
            out.item_lines.append(child.start_mark.line + 1)
        return out
    if isinstance(node, MappingNode):
        result = LineDict()
        result.line = node.start_mark.line + 1
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                at = f"{source}:{key_node.start_mark.line + 1}: {shown(path)}"
                problems.append(Problem("mapping.yaml", "mapping keys must be plain scalars",
                                        mapping=at))
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            dotted = f"{path}.{key}" if path else key
            if key == "<<":
                problems.append(Problem("mapping.yaml", "YAML merge keys (<<) are not supported",
                                        mapping=f"{source}:{line}: {shown(dotted)}"))
                continue
            if key in result:
                problems.append(Problem(
                    _DUPLICATE_RULE.get(kind, "mapping.duplicate-key"),
                    f"duplicate key '{shown(key)}' (first at line {result.key_lines[key]})",
                    mapping=f"{source}:{line}: {shown(dotted)}"))
                continue
            result[key] = _build(value_node, dotted, problems, source, kind)
            result.key_lines[key] = line
        return result
    raise MappingError(f"{source}: unsupported YAML node")  # pragma: no cover


def load_yaml_text(text: str, source: str, kind: str = "mapping"
                   ) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return (data, problems). Syntax errors raise MappingError.
    ``kind`` names the file in problem listings: mapping, layout, format, configuration;
    a format.yaml's key written twice is ``format.duplicate-key`` (``_DUPLICATE_RULE``)."""
    try:
        data, problems = _load_yaml_text(text, source, kind)
    except MappingError as exc:
        exc.problems = _labelled(exc.problems, kind)
        raise
    return data, _labelled(problems, kind)


def _labelled(problems: list[Problem], kind: str) -> list[Problem]:
    if kind == "mapping":
        return problems
    return [replace(p, source=kind) for p in problems]


class _Bounded(yaml.SafeLoader):
    """SafeLoader's composer, stopped once the file holds more nodes than a file of
    MAX_NODES values can (a key and a value each): a big file is refused while it is
    read, not once composed whole (minutes and gigabytes for 50 MB)."""

    nodes = 0
    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes += 1
        if self.nodes > 2 * MAX_NODES + 1:
            raise _TooManyNodes
        if self.depth >= MAX_DEPTH:  # before Python's own recursion limit, at a line
            raise _TooDeep(self.peek_event().start_mark.line + 1)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooManyNodes(Exception):
    pass


class _TooDeep(Exception):
    """A node nested MAX_DEPTH levels deep; ``args[0]``: its line."""


def _load_yaml_text(text: str, source: str, kind: str) -> tuple[Any, list[Problem]]:
    if len(text) > MAX_CHARS:
        raise MappingError(f"{source}: the file holds {len(text)} characters: pesgen reads "
                           f"YAML files of up to {MAX_CHARS} (a mapping, a layout, a "
                           "format.yaml holds a few thousand)")
    _yaml11_breaks(text, source)
    try:
        node = yaml.compose(text, Loader=_Bounded)
    except _TooManyNodes:
        raise MappingError(_too_many(source)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        # PyYAML's str(exc) spans lines and names "<unicode string>": keep it to one line
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split("\n"))
        detail = problem
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            detail += f" ({context} at line {context_mark.line + 1})"
        hint = _syntax_hint(problem, text, mark)
        if hint:
            problem, detail = f"{problem}; {hint}", f"{detail}; {hint}"
        raise MappingError(f"{where}: YAML syntax error: {escaped(problem)}",
                           [Problem("mapping.yaml", f"YAML syntax error: {escaped(detail)}",
                                    mapping=where)]) from None
    except _TooDeep as exc:
        raise _too_deep(source, exc.args[0]) from None
    except RecursionError:  # not reached below MAX_DEPTH: kept, never a traceback
        raise MappingError(f"{source}: YAML nested too deeply") from None
    if node is None:  # an empty document: problems about it point at line 1
        empty = LineDict()
        empty.line = 1
        return empty, []
    problems: list[Problem] = []
    try:
        reused: set[int] = set()
        nodes, chars = _expanded_size(node, {}, set(), reused)
        if nodes > MAX_NODES:
            if not reused:
                raise MappingError(_too_many(source))
            raise MappingError(f"{source}: YAML aliases expand to more than {MAX_NODES} "
                               "values (an alias bomb?)")
        if chars > MAX_CHARS:
            raise MappingError(f"{source}: YAML aliases expand to more than {MAX_CHARS} "
                               "characters of values (an alias bomb?)")
        return _build(node, "", problems, source, kind), problems
    except _TooDeep as exc:  # through aliases
        raise _too_deep(source, exc.args[0]) from None
    except _RecursiveAlias as exc:
        raise _refused_at(source, exc.args[0], "YAML alias used inside its own anchor: it "
                          "would hold itself without end") from None
    except RecursionError:  # nesting past MAX_DEPTH is refused while composing
        raise MappingError(f"{source}: YAML nested too deeply") from None


def _too_deep(source: str, line: int) -> MappingError:
    return _refused_at(source, line, f"YAML nested more than {MAX_DEPTH} levels deep (a "
                       "mapping, a layout, a format.yaml needs fewer than ten)")


def _refused_at(source: str, line: int, message: str) -> MappingError:
    """The file refused for what stands at ``line`` (rule mapping.yaml)."""
    where = f"{source}:{line}"
    return MappingError(f"{where}: {message}", [Problem("mapping.yaml", message,
                                                        mapping=where)])


class _RecursiveAlias(Exception):
    """An alias inside the node its anchor names; ``args[0]``: the anchor's line."""


MAX_NODES = 100_000
# levels of nesting: the shipped files need fewer than ten; PyYAML's composer would
# reach Python's recursion limit past about 300, with no line to name
MAX_DEPTH = 100
# what every use of every value adds up to, in characters: a mapping, a layout, a
# format.yaml is a few thousand; one big scalar behind many aliases is a bomb all the same
MAX_CHARS = 10_000_000


def _too_many(source: str) -> str:
    return (f"{source}: the file holds more than {MAX_NODES} values: a mapping, a layout, a "
            "format.yaml holds a few hundred")


def _expanded_size(node: yaml.Node, sizes: dict[int, tuple[int, int, int]],
                   active: set[int], reused: set[int], depth: int = 1) -> tuple[int, int]:
    """How many values ``node`` gives once aliases are expanded, and how many characters
    its scalars (keys too) weigh (shared nodes counted once per use, computed once each;
    ``reused`` gets those used more than once: an alias). ``depth``: the node's level
    where it is used; a value nested more than MAX_DEPTH levels once aliases are
    expanded (the composer bounds it without them) is refused at its line."""
    if depth > MAX_DEPTH:
        raise _TooDeep(node.start_mark.line + 1)
    key = id(node)
    if key in sizes:
        reused.add(key)
        nodes, chars, height = sizes[key]
        if depth + height - 1 > MAX_DEPTH:  # an alias used deeper than where it was made
            raise _TooDeep(node.start_mark.line + 1)
        return nodes, chars
    if key in active:
        raise _RecursiveAlias(node.start_mark.line + 1)
    active.add(key)
    nodes, chars, height = 1, 0, 1
    children: list[yaml.Node] = []
    if isinstance(node, ScalarNode):
        chars = len(node.value)
    elif isinstance(node, SequenceNode):
        children = node.value
    elif isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
        nodes -= len(node.value)  # a key is not a value of its own
    for child in children:
        n, c = _expanded_size(child, sizes, active, reused, depth + 1)
        nodes, chars = nodes + n, chars + c
        height = max(height, 1 + sizes[id(child)][2])
    active.discard(key)
    sizes[key] = (min(nodes, MAX_NODES + 1), min(chars, MAX_CHARS + 1), height)
    return sizes[key][:2]


def load_yaml_file(path: Path, kind: str = "mapping", shown: str | None = None
                   ) -> tuple[Any, list[Problem], str]:
    """Read a YAML file as UTF-8; return (data, problems, text). ``kind``: as
    ``load_yaml_text``; ``shown``: how messages name the file (default: ``path``)."""
    named = shown or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MappingError(f"{named}: file not found") from None
    found = wide(data[:4096])
    if found:  # (UTF-8 reads one without a byte order mark, as NULs between letters)
        raise MappingError(f"{named}:1:1: not UTF-8: the file is {found[0]}: save it as "
                           "UTF-8 (in Notepad: Save as, Encoding UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MappingError(_not_utf8(named, data, exc)) from None
    data, problems = load_yaml_text(text, named, kind)
    return data, problems, text


def byte_position(data: bytes, at: int) -> tuple[int, int]:
    """The 1-based line and column (in characters, the bytes before it read as UTF-8) of
    ``data[at]``, lines ending at CR LF, CR or LF, as an editor shows them."""
    ends = list(re.finditer(rb"\r\n|\r|\n", data[:at]))
    start = ends[-1].end() if ends else 0
    return len(ends) + 1, len(data[start:at].decode("utf-8", "replace")) + 1


def _not_utf8(path: Path | str, data: bytes, exc: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8, as ``file:line:column``, and what to do: a file
    saved in Windows' own encoding (cp1252, Notepad's "ANSI") is the usual case (one in
    UTF-16, Notepad's "Unicode", is refused before: ``load_yaml_file``)."""
    line, column = byte_position(data, exc.start)
    return (f"{path}:{line}:{column}: not UTF-8: byte 0x{data[exc.start]:02X} at line {line}, "
            f"column {column} ({exc.reason}); the file was likely saved in another encoding "
            "(Windows' ANSI, cp1252): save it as UTF-8 (in Notepad: Save as, Encoding UTF-8)")


def line_of(data: Any, key_path: list[str | int]) -> int:
    """Best-known line for a key path inside loaded YAML (the deepest key found)."""
    line = getattr(data, "line", 0)
    node = data
    for key in key_path:
        if isinstance(node, LineDict) and key in node:
            line = node.key_lines.get(str(key), line)
            node = node[key]
        elif isinstance(node, LineList) and isinstance(key, int) and key < len(node):
            line = node.item_lines[key]
            node = node[key]
        else:
            break
    return line
