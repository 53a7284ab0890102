# ruff: noqa: F811 - the world fixture imported from test_payfip_cli is injected by name
"""``--format json`` of the PayFiP commands (support's, the school software's scripts',
CI's): one JSON document on standard output, the head every report has (command, ok,
exit_code, error), then the command's fields; a refusal gives its problems
(``errors.problem_json``) and the text output's exit code."""

from __future__ import annotations

import json

from pesgen.errors import ExitCode, Problem, StateError
from pesgen.store import Store

from .test_payfip_cli import _run, world  # noqa: F401 - the fixture


def _report(args: tuple[str, ...]) -> tuple[int, dict, str]:
    code, out, err = _run(*args)
    return code, json.loads(out), err


def _refusing(monkeypatch, module, name: str) -> None:
    """``module.name`` refuses with a problem naming a mapping's line and key, as a
    store or a mapping refusal would."""
    def refuse(*args, **kwargs):
        raise StateError("the store refused", [Problem(
            "payfip.mode", "mode: 'P' is not T, X nor W", mapping="m.yaml:12: payfip.mode",
            invoice="FA-2026-00102")])

    monkeypatch.setattr(module, name, refuse)


def _the_problem(report: dict) -> None:
    [problem] = report["problems"]
    assert (problem["rule"], problem["file"], problem["line"], problem["key"],
            problem["invoice"], problem["message"]) == (
        "payfip.mode", "m.yaml", 12, "payfip.mode", "FA-2026-00102",
        "mode: 'P' is not T, X nor W")


def test_anomalies_and_reconcile_refused_give_their_problems(world, monkeypatch,
                                                             tmp_path):
    """A refusal of `payfip anomalies` or `payfip reconcile` in JSON gave its error and
    no problems: each one is given as the other reports give them, with the exit code
    of the text output."""
    from pesgen.payfip import ledger, service

    _refusing(monkeypatch, ledger, "list_anomalies")
    code, report, err = _report(("payfip", "anomalies", "--format", "json"))
    assert (code, report["command"], report["ok"], report["exit_code"], report["error"]) == (
        ExitCode.STATE, "payfip anomalies", False, ExitCode.STATE, "the store refused"), err
    _the_problem(report)
    _refusing(monkeypatch, service, "reconcile_each")
    code, report, err = _report(("payfip", "reconcile", "--format", "json"))
    assert (code, report["command"], report["ok"], report["error"], report["counts"],
            report["operations"]) == (ExitCode.STATE, "payfip reconcile", False,
                                      "the store refused", {}, [])
    _the_problem(report)
    # a store that is not there: its refusal, no problem
    missing = str(tmp_path / "nowhere.sqlite3")
    for command in ("anomalies", "reconcile"):
        code, report, err = _report(("payfip", command, "--format", "json", "--db", missing))
        assert (code, report["problems"]) == (ExitCode.STATE, []), report
        assert report["error"].startswith(f"no pesgen store at {missing}"), report
    assert Store().list_runs()  # the example's store is untouched
