"""The mapping's optional ``payfip:`` section: client number, mode, endpoint, and the
rules that build refdet and objet from an exported invoice.

``exer`` is the exercise of the title paid (its run's), unless ``payfip.exer`` sets one.
Expressions see ``invoice`` (number, amount, exercise, id_bord, id_pce, run) and
``collectivity``, with pesgen's filters plus ``alnum`` (keep ``[A-Za-z0-9]``) and
``payfip_text`` (the safe objet subset). Errors name ``file:line: payfip.key``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from .. import _budget
from .._jinja import expression_environment
from ..errors import Problem
from ..mapping import Mapping
from .endpoint import DEFAULT_ENDPOINT, check_endpoint
from .errors import PayfipConfigError
from .models import SAISIE_WS, ascii_label, check_objet, check_refdet

DEFAULT_REFDET = "invoice.number | alnum"
DEFAULT_OBJET = "('FACTURE ' ~ invoice.number) | payfip_text"
DEFAULT_CODE_EMETTEUR = "940033"  # the only value seen in a public implementation: UNCONFIRMED


def alnum(value: Any) -> str:
    """Only the ASCII letters and digits: ``FA-2026-00102`` -> ``FA202600102``."""
    return re.sub(r"[^A-Za-z0-9]", "", "" if value is None else str(value))


@dataclass(frozen=True)
class Rule:
    source: str  # the expression as written
    where: str  # file:line: payfip.key
    compiled: Any

    def __call__(self, scope: dict[str, Any]) -> Any:
        """The rule's value on ``scope``; one running past the time limit (``_budget``)
        is stopped: MappingStopped naming the rule's line (rule mapping.time)."""
        return _budget.evaluated(self.where, lambda: self.compiled(**scope))


@dataclass(frozen=True)
class PayfipSettings:
    numcli: str | None
    mode: str
    endpoint: str
    refdet: Rule
    objet: Rule
    # payfip.exer when the mapping sets it (then sent for every title), else None: the
    # exer sent is the exercise of the title paid (docs/payfip.md, "exer")
    exer: str | None
    notify_url: str | None
    return_url: str | None
    code_etablissement: str | None
    code_emetteur: str


def _environment():
    env = expression_environment()
    env.filters["alnum"] = alnum
    env.filters["payfip_text"] = ascii_label
    return env


def load_settings(mapping: Mapping) -> PayfipSettings:
    """The payfip section (all optional), with defaults; environment overrides:
    ``PESGEN_PAYFIP_ENDPOINT``."""
    data = mapping.data.get("payfip") or {}
    env = _environment()
    problems: list[Problem] = []

    def rule(key: str, default: str) -> Rule:
        spec = data.get(key)
        where = (mapping.where("payfip", key) if spec is not None
                 else f"{mapping.path}: payfip.{key}")
        if isinstance(spec, dict) and "const" in spec:
            source = repr(str(spec["const"]))
        elif isinstance(spec, dict) and "expr" in spec:
            source = spec["expr"]
        else:
            source = default
        try:
            compiled = env.compile_expression(source, undefined_to_none=True)
        except Exception as exc:  # jinja2.TemplateSyntaxError
            problems.append(Problem("mapping.expr", f"expression syntax error: {exc}",
                                    mapping=where))
            compiled = None
        return Rule(source, where, compiled)

    refdet, objet = rule("refdet", DEFAULT_REFDET), rule("objet", DEFAULT_OBJET)
    numcli = data.get("numcli") or mapping.collectivity.payfip_client
    mode = data.get("mode", "T")
    if mode not in SAISIE_WS:  # the schema already says so; keep the library safe alone
        problems.append(Problem("payfip.saisie", f"mode '{mode}' must be T, X or W",
                                mapping=mapping.where("payfip", "mode")))
    endpoint = os.environ.get("PESGEN_PAYFIP_ENDPOINT") or data.get("endpoint") or \
        DEFAULT_ENDPOINT
    dm = data.get("datamatrix") or {}
    if problems:
        raise PayfipConfigError(f"{mapping.path}: invalid payfip section", problems)
    return PayfipSettings(
        numcli=numcli, mode=mode, endpoint=check_endpoint(endpoint), refdet=refdet,
        objet=objet, exer=str(data["exer"]) if data.get("exer") else None,
        notify_url=data.get("notify_url"), return_url=data.get("return_url"),
        code_etablissement=dm.get("code_etablissement"),
        code_emetteur=dm.get("code_emetteur", DEFAULT_CODE_EMETTEUR))


def collectivity_scope(c: Any) -> dict[str, Any]:
    """What the refdet and objet rules read of the mapping's collectivity
    (``collectivity.*``)."""
    return {"name": c.name, "siret": c.siret, "exercise": c.exercise, "cod_col": c.cod_col,
            "cod_bud": c.cod_bud, "id_post": c.id_post}


def rule_scope(collectivity: dict[str, Any], number: str, amount: str, exercise: int,
               id_bord: int, id_pce: int, run: str) -> dict[str, Any]:
    """What the refdet and objet rules are evaluated on: a title (``invoice.*``) and
    ``collectivity_scope``."""
    return {"invoice": {"number": number, "amount": amount, "exercise": exercise,
                        "id_bord": id_bord, "id_pce": id_pce, "run": run},
            "collectivity": collectivity}


# the title check-mapping evaluates the rules on (the sample titles' first number)
SAMPLE_INVOICE = "SAMPLE-1"


def sample_problems(mapping: Mapping) -> list[Problem]:
    """The payfip section's refdet and objet rules evaluated on a sample title, as `payfip
    link` evaluates them on each invoice, and checked as it checks them: a rule that
    fails, or that gives a value PayFiP's rules refuse whatever the invoice (a misspelt
    field gives nothing), is found by check-mapping before the first link is refused.
    Each problem names the rule's line. A mapping without a payfip section: none."""
    if not mapping.data.get("payfip"):
        return []
    try:
        settings = load_settings(mapping)
    except PayfipConfigError as exc:
        return exc.problems
    c = mapping.collectivity
    scope = rule_scope(collectivity_scope(c), SAMPLE_INVOICE, "187.50", c.exercise, 1, 1,
                       "00000000-0000-4000-8000-000000000000")
    problems: list[Problem] = []
    for name, rule, check in (("refdet", settings.refdet, check_refdet),
                              ("objet", settings.objet, check_objet)):
        try:
            value = rule(scope)
        except Exception as exc:  # a Jinja error inside the mapping's expression
            problems.append(Problem(f"payfip.{name}", f"{name}: the rule failed on a sample "
                                    f"title ({SAMPLE_INVOICE}): {exc}", mapping=rule.where))
            continue
        for p in check("" if value is None else str(value).strip(), None):
            problems.append(Problem(p.rule, f"on a sample title ({SAMPLE_INVOICE}): "
                                    f"{p.message}; `payfip link` would refuse such a value",
                                    mapping=rule.where))
    return problems
