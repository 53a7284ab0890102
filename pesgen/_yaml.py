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
        return int(value)
    return value


def _build(node: yaml.Node, path: str, problems: list[Problem], source: str) -> Any:
    if node.tag not in _CORE_TAGS:
        tag = node.tag.replace(_YAML_TAG, "!!", 1)
        problems.append(Problem("mapping.yaml", f"YAML tag '{tag}' is not supported (pesgen "
                                "reads plain YAML, without tags)",
                                mapping=f"{source}:{node.start_mark.line + 1}: {path or '(top)'}"))
    if isinstance(node, ScalarNode):
        return _scalar(node)
    if isinstance(node, SequenceNode):
        out = LineList()
        out.line = node.start_mark.line + 1
        for i, child in enumerate(node.value):
            out.append(_build(child, f"{path}[{i}]", problems, source))
            out.item_lines.append(child.start_mark.line + 1)
        return out
    if isinstance(node, MappingNode):
        result = LineDict()
        result.line = node.start_mark.line + 1
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                problems.append(Problem("mapping.yaml", "mapping keys must be plain scalars",
                                        mapping=f"{source}:{key_node.start_mark.line + 1}: {path}"))
                continue
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            dotted = f"{path}.{key}" if path else key
            if key == "<<":
                problems.append(Problem("mapping.yaml", "YAML merge keys (<<) are not supported",
                                        mapping=f"{source}:{line}: {dotted}"))
                continue
            if key in result:
                problems.append(Problem(
                    "mapping.duplicate-key",
                    f"duplicate key '{key}' (first at line {result.key_lines[key]})",
                    mapping=f"{source}:{line}: {dotted}"))
                continue
            result[key] = _build(value_node, dotted, problems, source)
            result.key_lines[key] = line
        return result
    raise MappingError(f"{source}: unsupported YAML node")  # pragma: no cover


def load_yaml_text(text: str, source: str, kind: str = "mapping"
                   ) -> tuple[Any, list[Problem]]:
    """Parse YAML text; return (data, problems). Syntax errors raise MappingError.
    ``kind`` names the file in problem listings: mapping, layout, format, configuration."""
    try:
        data, problems = _load_yaml_text(text, source)
    except MappingError as exc:
        exc.problems = _labelled(exc.problems, kind)
        raise
    return data, _labelled(problems, kind)


def _labelled(problems: list[Problem], kind: str) -> list[Problem]:
    if kind == "mapping":
        return problems
    return [replace(p, source=kind) for p in problems]


def _load_yaml_text(text: str, source: str) -> tuple[Any, list[Problem]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        # PyYAML's str(exc) spans lines and names "<unicode string>": keep it to one line
        detail = str(getattr(exc, "problem", None) or exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None:
            detail += f" ({context} at line {context_mark.line + 1})"
        raise MappingError(f"{where}: YAML syntax error: {getattr(exc, 'problem', exc)}",
                           [Problem("mapping.yaml", f"YAML syntax error: {detail}", mapping=where)]
                           ) from None
    except RecursionError:
        raise MappingError(f"{source}: YAML nested too deeply") from None
    if node is None:  # an empty document: problems about it point at line 1
        empty = LineDict()
        empty.line = 1
        return empty, []
    problems: list[Problem] = []
    try:
        size = _expanded_size(node, {}, set())
        if size > MAX_NODES:
            raise MappingError(f"{source}: YAML aliases expand to more than {MAX_NODES} "
                               "values (an alias bomb?)")
        return _build(node, "", problems, source), problems
    except RecursionError:  # a recursive alias (&a [*a]) or absurd nesting
        raise MappingError(f"{source}: YAML nested too deeply, or an alias used inside "
                           "its own anchor") from None


MAX_NODES = 100_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """How many values ``node`` gives once aliases are expanded (shared nodes counted
    once per use, computed once each)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:
        raise RecursionError("recursive alias")
    active.add(key)
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(child, sizes, active) for child in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(v, sizes, active) for _, v in node.value)
    active.discard(key)
    sizes[key] = min(size, MAX_NODES + 1)
    return sizes[key]


def load_yaml_file(path: Path, kind: str = "mapping") -> tuple[Any, list[Problem], str]:
    """Read a YAML file as UTF-8; return (data, problems, text). ``kind``: as
    ``load_yaml_text``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise MappingError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    data, problems = load_yaml_text(text, str(path), kind)
    return data, problems, text


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
