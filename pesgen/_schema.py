"""JSON Schema checks of YAML configuration, reported as ``file:line: key.path: message``.

All violations are reported, not the first; an unknown key gets its own line and a
"did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from ._display import LIMIT, shown, shown_repr
from ._yaml import line_of
from .errors import Problem
from .resources import schema_path


@cache
def load_schema(name: str) -> dict[str, Any]:
    with schema_path(name).open(encoding="utf-8") as handle:
        return json.load(handle)


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _dotted(path: list[Any]) -> str:
    out = ""
    for part in path:
        part = part if isinstance(part, int) else shown(part)
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top)"


def _leaf_errors(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    return [error]


# the $defs whose alternatives (oneOf) a message names: what one is, and its shapes
_ALTERNATIVES = {
    "binding": ("a binding", "a binding is a path string, {path: …} (with an optional "
                "default: …), {expr: …} or {const: …}"),
    "payfip_rule": ("a rule", "a rule is {expr: …} or {const: …}"),
}


def _def_name(schema_name: str, node: Any) -> str | None:
    """The name of the schema's $defs entry ``node`` is, if any."""
    for name, definition in (load_schema(schema_name).get("$defs") or {}).items():
        if definition == node:
            return name
    return None


@dataclass(frozen=True, slots=True)
class UnknownKey(Problem):
    """A key the schema does not know: the problem, with the facts its message says, for
    a caller to read rather than the message's words."""

    key: Any = None  # the key, as written
    path: tuple[Any, ...] = ()  # the keys leading to the map that holds it
    allowed: tuple[str, ...] = ()  # the keys allowed there
    hint: str | None = None  # the closest of them, said as "did you mean"
    within: str = ""  # what holds it when it is one of alternatives (" in a binding")

    @property
    def dotted(self) -> str:
        """Its own dotted path (``bindings.line``)."""
        return _dotted([*self.path, self.key])


def _unknown_key(data: Any, path: list[Any], key: Any, known: list[str], source: str,
                 rule: str, within: str = "", tail: str | None = None) -> UnknownKey:
    """A key the schema does not know at ``path``, with the closest known one; then
    ``tail``, or by default the keys allowed there when none is close."""
    hint = difflib.get_close_matches(str(key), known, n=1)
    message = f"unknown key '{shown(key)}'{within}"
    if hint:
        message += f" (did you mean '{hint[0]}'?)"
    if tail is not None:
        message += tail
    elif not hint and known:
        message += f" (allowed: {', '.join(known)})"
    where = f"{source}:{line_of(data, [*path, key])}: {_dotted([*path, key])}"
    return UnknownKey(rule, message, mapping=where, key=key, path=tuple(path),
                      allowed=tuple(known), hint=hint[0] if hint else None, within=within)


def check(data: Any, schema_name: str, source: str, rule: str,
          failed: list[tuple[Any, ...]] | None = None) -> list[Problem]:
    """Every schema problem of ``data``, each at its key's line. ``failed`` gets the
    path of each value found invalid: an unknown key's own, a missing key's
    (``('collectivity', 'siret')``), else the invalid value's."""
    validator = _validator(schema_name)
    problems: list[Problem] = []
    paths: list[tuple[Any, ...]] = []
    # in the file's order: columns[6] before columns[11] (as texts, '11' came first)
    for error in sorted(validator.iter_errors(data), key=lambda e: [
            (0, k, "") if isinstance(k, int) else (1, 0, str(k)) for k in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    problems.append(_unknown_key(data, path, key, allowed, source, rule))
                    paths.append((*path, key))
            continue
        if "propertyNames" in error.schema_path and isinstance(error.instance, str):
            # a key the map does not take (format.yaml fields: address.cty): named at its
            # own line, with the closest key it takes
            known = [str(k) for k in error.schema.get("enum", ())]
            problems.append(_unknown_key(data, path, error.instance, known, source, rule))
            paths.append((*path, error.instance))
            continue
        paths.append(tuple(path))
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in error.validator_value if k not in error.instance]
            if len(missing) == 1 or (missing and f"{missing[0]!r}" in error.message):
                paths[-1] = (*path, missing[0])
        alternatives = _ALTERNATIVES.get(_def_name(schema_name, error.schema) or "") \
            if error.validator == "oneOf" else None
        if error.validator == "oneOf" and isinstance(error.instance, dict):
            # a key none of the alternatives knows (a typo in {exp: …}): name it, with
            # a suggestion, rather than "is not valid under any of the given schemas"
            what, shapes = alternatives or ("this value", "")
            known = [k for alt in error.schema.get("oneOf", ())
                     for k in (alt.get("properties") or {})]
            known = list(dict.fromkeys(known))
            unknown = [k for k in error.instance if k not in known]
            tail = f"; {shapes}" if shapes else f" (allowed: {', '.join(known)})"
            for key in unknown:
                problems.append(_unknown_key(data, path, key, known, source, rule,
                                             f" in {what}", tail))
            if unknown:
                continue
        if alternatives:
            shapes = alternatives[1]
            message = shapes[0].upper() + shapes[1:]
            if isinstance(error.instance, dict):
                keys = shown(", ".join(map(str, error.instance))) or "no key"
                message += f" (this one has {keys})"
        elif error.validator == "required":
            message = error.message.replace("is a required property", "is required")
        elif error.validator == "pattern":
            message = f"{shown_repr(error.instance)} does not match {error.schema['pattern']}"
            desc = error.schema.get("description")
            if desc:
                message += f" ({desc})"
        elif error.validator == "type" and isinstance(error.instance, (int, bool)) and \
                error.schema.get("type") == "string":
            message = (f"{shown_repr(error.instance)} must be a string: quote it in YAML "
                       f"(codes keep their leading zeros only as strings)")
        elif error.validator == "type" and error.schema.get("type") == "integer" and \
                isinstance(error.instance, str) and re.fullmatch(r"[0-9]{1,18}", error.instance) \
                and path and isinstance(path[-1], str):
            # the reverse slip: a number quoted as the codes around it are (exercise: "2026")
            message = (f"{_message(error)}: write the number without quotes in YAML "
                       f"({path[-1]}: {error.instance})")
        else:
            message = _message(error)
            if error.validator == "enum" and isinstance(error.instance, str) and (
                    hint := difflib.get_close_matches(
                        error.instance, [str(v) for v in error.validator_value], n=1)):
                # a typo of a word the key takes (a layout column's type: 'txt')
                message += f" (did you mean '{hint[0]}'?)"
        where = f"{source}:{line_of(data, path)}: {_dotted(path)}"
        problems.append(Problem(rule, shown(message, _MESSAGE_LIMIT), mapping=where))
    if failed is not None:
        failed.extend(paths)
    return problems


# a message's length at most (a safety net: the values it echoes are cut to LIMIT
# characters each, and the longest list of choices it names is about 1000)
_MESSAGE_LIMIT = 10 * LIMIT


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, the value it echoes whole (``'AAA…' is not of type
    'object'``) cut as ``shown_repr`` cuts it."""
    message = error.message
    if len(message) > LIMIT:
        whole = repr(error.instance)
        if whole in message:
            message = message.replace(whole, shown_repr(error.instance))
    return message
