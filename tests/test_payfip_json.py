# ruff: noqa: F811 - the world fixture imported from test_payfip_cli is injected by name
"""``--format json`` of the PayFiP commands (support's, the school software's scripts',
CI's): one JSON document on standard output, the head every report has (command, ok,
exit_code, error), then the command's fields; a refusal gives its problems
(``errors.problem_json``) and the text output's exit code."""

from __future__ import annotations

import json
from pathlib import Path

from pesgen.errors import ExitCode, Problem, StateError
from pesgen.store import Store

from .payfip_support import MAPPING, RUN_DATE
from .test_payfip_cli import (  # noqa: F401 - the fixture
    BATCH,
    _linked,
    _links,
    _nothing_sent,
    _run,
    world,
)


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

    for step in ("anomaly_counts", "iter_anomalies"):  # counting them, listing them
        with monkeypatch.context() as patched:
            _refusing(patched, ledger, step)
            code, report, err = _report(("payfip", "anomalies", "--format", "json"))
        assert (code, report["command"], report["ok"], report["exit_code"],
                report["error"]) == (ExitCode.STATE, "payfip anomalies", False,
                                     ExitCode.STATE, "the store refused"), (step, err)
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


def _links_json(world, *invoices: str, extra: tuple[str, ...] = ("--mode", "W")):
    code, out, err = _links(world, *invoices, extra=(*extra, "--format", "json"))
    return code, json.loads(out), err


def test_link_as_json_gives_each_link_made_once_the_batch_is_over(world):
    """`payfip link --format json`: one document, each link with its invoice, operation,
    refdet, amount (decimal text and cents), saisie, URL and notes, the count; a test
    link's note as a field; standard error says nothing."""
    code, report, err = _links_json(world, *BATCH[:2])
    assert (code, err) == (0, "")
    assert (report["command"], report["ok"], report["exit_code"], report["error"],
            report["made"], report["not_sent"], report["stopped_at"],
            report["mode_note"]) == ("payfip link", True, 0, None, 2, [], None, None)
    sent = {op.request["refdet"]: op for op in world["payfip"].operations.values()}
    first, second = report["links"]
    op = sent["FA202600102"]
    assert first == {"invoice": "FA-2026-00102", "id_op": op.id_op, "refdet": "FA202600102",
                     "amount": "187.50", "amount_cents": 18750, "saisie": "W",
                     "exer": "2026", "url": first["url"], "notes": []}
    assert first["url"].endswith(f"idop={op.id_op}")
    assert (second["invoice"], second["id_op"]) == ("FA-2026-00103",
                                                    sent["FA202600103"].id_op)
    assert _linked(world) == ["FA-2026-00102", "FA-2026-00103"]
    # the example mapping's mode, T: the note the text says on stderr, as a field
    code, report, err = _links_json(world, "FA-2026-00105", extra=())
    assert (code, err, report["links"][0]["saisie"]) == (0, "", "T")
    assert report["mode_note"].startswith("saisie T: test link(s): a payment through them "
                                          "is recorded as a test (test-paid)")
    # an activation link (saisie X): its note too
    code, report, err = _links_json(world, "FA-2026-00107", extra=("--mode", "X"))
    assert (code, err, [m["saisie"] for m in report["links"]]) == (0, "", ["X"]), report
    assert report["mode_note"].startswith("saisie X: activation link(s): "), report


def test_link_as_json_refused_gives_its_problems_and_sends_nothing(world):
    """One invoice of the batch refused: nothing sent, the report says so (no link, every
    invoice not sent) with each problem and the text's exit code."""
    code, report, err = _links_json(world, "FA-2026-00102", "FA-2026-00104")
    assert code == ExitCode.INPUT, report
    assert (report["command"], report["ok"], report["exit_code"], report["links"],
            report["made"], report["not_sent"], report["stopped_at"]) == (
        "payfip link", False, ExitCode.INPUT, [], 0, ["FA-2026-00102", "FA-2026-00104"],
        None)
    assert report["error"].startswith("1 of 2 invoice(s) refused: FA-2026-00104; nothing was "
                                      "sent")
    assert [p["rule"] for p in report["problems"]] == ["payfip.mel"]
    assert report["problems"][0]["key"] is not None  # the mapping's binding named
    _nothing_sent(world)
    code, out, err = _links(world, "FA-2026-00102", extra=("--format", "xml"))
    assert (code, out) == (ExitCode.USAGE, "")
    assert "--format must be text or json, got 'xml'" in err
    _nothing_sent(world)


def test_link_as_json_stopped_by_payfip_after_one_link_gives_it(world, monkeypatch):
    """PayFiP fails on the second link of three: the report, ok false with PayFiP's error
    (exit 8, as the text), still gives the link made and recorded (a family may get it),
    the invoice whose link failed and the one not sent."""
    from pesgen.payfip.client import PayfipClient
    from pesgen.payfip.errors import PayfipFault

    calls: list[int] = []
    real = PayfipClient.creer_paiement_securise

    def failing(self, request):
        calls.append(1)
        if len(calls) == 2:
            raise PayfipFault("PayFiP creerPaiementSecurise: TechDysfonctionnementErreur "
                              "999: Erreur technique", kind="TechDysfonctionnementErreur",
                              code="999")
        return real(self, request)

    monkeypatch.setattr(PayfipClient, "creer_paiement_securise", failing)
    code, report, err = _links_json(world, *BATCH)
    assert (code, err) == (ExitCode.REMOTE, ""), err
    assert (report["ok"], report["exit_code"], report["made"], report["stopped_at"],
            report["not_sent"]) == (False, ExitCode.REMOTE, 1, "FA-2026-00103",
                                    ["FA-2026-00105"])
    [made] = report["links"]
    [op] = world["payfip"].operations.values()
    assert (made["invoice"], made["id_op"]) == ("FA-2026-00102", op.id_op)
    assert report["error"].startswith("invoice FA-2026-00103: PayFiP creerPaiementSecurise")
    assert "the batch stopped there: 1 link(s) made before it (FA-2026-00102)" in report[
        "error"]
    assert report["problems"] == []
    assert _linked(world) == ["FA-2026-00102"]


def test_link_as_json_stopped_by_ctrl_c_gives_the_links_made(world, monkeypatch):
    """Ctrl-C while the second link is being made: exit 130 and one document, the link
    made, the invoice stopped at, the one not sent; stopped while checking, none sent.
    The report says the interruption: ``main`` is told not to say it again on stderr."""
    from pesgen.cli import _Interrupts
    from pesgen.payfip import service

    from .test_payfip_cli import _interrupted_on_call

    _interrupted_on_call(monkeypatch, 2)
    monkeypatch.setattr(_Interrupts, "said", False)
    code, report, err = _links_json(world, *BATCH)
    assert code == 130 and _Interrupts.said, err
    assert (report["command"], report["ok"], report["exit_code"], report["error"],
            report["made"], report["stopped_at"], report["not_sent"], report["problems"]) == (
        "payfip link", False, 130, "interrupted", 1, "FA-2026-00103", ["FA-2026-00105"], [])
    assert [m["invoice"] for m in report["links"]] == ["FA-2026-00102"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(service, "build_request", interrupted)
    code, report, err = _links_json(world, "FA-2026-00107", "FA-2026-00108")
    assert (code, report["links"], report["stopped_at"], report["not_sent"]) == (
        130, [], None, ["FA-2026-00107", "FA-2026-00108"])


def test_client_info_as_json(world):
    """`payfip client-info --format json`: PayFiP's libellés as fields; a client number
    PayFiP would refuse: its problem, exit 4, nothing asked."""
    code, report, err = _report(("payfip", "client-info", "-m", str(MAPPING), "--endpoint",
                                 world["endpoint"], "--format", "json"))
    assert (code, err) == (0, "")
    assert {k: report[k] for k in ("command", "ok", "exit_code", "error", "numcli",
                                   "libelle_n1", "libelle_n2", "libelle_n3",
                                   "endpoint")} == {
        "command": "payfip client-info", "ok": True, "exit_code": 0, "error": None,
        "numcli": "012345", "libelle_n1": "COLLECTIVITE DE TEST",
        "libelle_n2": "REGIE DE TEST", "libelle_n3": "PAYFIP FAKE",
        "endpoint": world["endpoint"]}
    code, report, err = _report(("payfip", "client-info", "--numcli", "12345", "--endpoint",
                                 world["endpoint"], "--format", "json"))
    assert (code, report["ok"], report["exit_code"], report["numcli"], report["endpoint"]) == (
        ExitCode.INPUT, False, ExitCode.INPUT, "12345", world["endpoint"]), report
    assert [p["rule"] for p in report["problems"]] == ["payfip.numcli"]


def _tipi(world, invoice: str, *extra: str):
    return _report(("payfip", "tipi-url", "-m", str(MAPPING), "-n", invoice, "--urlcl",
                    "https://ecole.example.org/tipi/retour", "--endpoint", world["endpoint"],
                    "--format", "json", *extra))


def test_tipi_url_as_json(world):
    """`payfip tipi-url --format json`: the URL and what it asks; refused (a bad urlcl,
    an invoice paid already): the problems and the text's exit code, no URL."""
    code, report, err = _tipi(world, "FA-2026-00102")
    assert (code, err) == (0, "")
    assert {k: report[k] for k in ("command", "ok", "invoice", "refdet", "amount",
                                   "amount_cents", "exer", "saisie", "notes")} == {
        "command": "payfip tipi-url", "ok": True, "invoice": "FA-2026-00102",
        "refdet": "FA202600102", "amount": "187.50", "amount_cents": 18750, "exer": "2026",
        "saisie": "T", "notes": []}
    assert report["url"].startswith(f"{world['endpoint']}/paiement.web?numcli=012345&")
    assert "refdet=FA202600102" in report["url"] and report["url"].endswith("&saisie=T")
    code, report, err = _tipi(world, "FA-2026-00103", "--saisie", "X")
    assert (code, report["saisie"], report["refdet"]) == (0, "X", "FA202600103")
    assert report["url"].endswith("&saisie=X")
    code, report, err = _report(("payfip", "tipi-url", "-m", str(MAPPING), "-n",
                                 "FA-2026-00102", "--urlcl", "ftp://x/y", "--format", "json"))
    assert (code, report["ok"], report["error"], report["invoice"]) == (
        ExitCode.INPUT, False, "invoice FA-2026-00102: the PayFiP request is invalid; "
        "nothing was sent", "FA-2026-00102"), report
    [problem] = report["problems"]
    assert (problem["rule"], problem["message"]) == (
        "payfip.urlcl", "urlcl: 'ftp://x/y' must be an absolute http(s) URL")
    assert "url" not in report
    code, report, err = _tipi(world, "FA-2099-99999")
    assert (code, report["ok"]) == (ExitCode.STATE, False)
    assert report["error"].startswith("invoice FA-2099-99999: in no active run")


def test_datamatrix_as_json_says_what_it_wrote_and_left_out(world, tmp_path):
    """`payfip datamatrix --format json`: each file written with its images and the
    titles drawn; a title paid online left out, with its payment; refused: every problem,
    exit 6, nothing written."""
    import httpx

    from .payfip_support import TIMEOUT

    code, out, err = _links(world, "FA-2026-00102")
    id_op = out.strip().splitlines()[1].rsplit("=", 1)[1]
    httpx.post(f"{world['endpoint']}/paiementws.web", data={"idop": id_op, "action": "card"},
               timeout=TIMEOUT)
    run_id = Store().list_runs()[0].id
    target = tmp_path / "dm"
    code, report, err = _report(("payfip", "datamatrix", "--run", run_id[:8], "-m",
                                 str(MAPPING), "--out", str(target), "--image", "both",
                                 "--format", "json"))
    assert (code, err) == (0, ""), err
    stem = "PESORMC_21450999400015_2026_0000001"
    assert (report["command"], report["ok"], report["run"], report["layout"],
            report["unconfirmed"], report["image"]) == (
        "payfip datamatrix", True, run_id, 1, True, "both")
    [written] = report["files"]
    assert written["csv"] == str(target / f"{stem}.datamatrix.csv")
    assert written["images_folder"] == str(target / f"{stem}.datamatrix")
    assert len(written["titles"]) == 10 and "FA-2026-00102" not in written["titles"]
    assert written["titles"][0] == "FA-2026-00101"
    assert written["images"][:2] == [str(target / f"{stem}.datamatrix" / f"FA-2026-00101.{x}")
                                      for x in ("svg", "png")]
    assert len(written["images"]) == 20 and all(Path(p).is_file() for p in written["images"])
    [paid] = report["paid_online"]
    from pesgen.payfip import ledger

    paid_at = ledger.payment_of(Store(), "21450999400015", "FA-2026-00102")["paid_at"]
    assert (paid["invoice"], paid["amount"], paid["paid_at"], paid["id_op"],
            paid["through"]) == ("FA-2026-00102", "187.50", paid_at, id_op, None)
    assert (report["skipped_bordereaux"], report["unsettled"]) == ([], [])
    code, report, err = _report(("payfip", "datamatrix", "--run", run_id[:8],
                                 "--code-etablissement", "0001", "--out",
                                 str(tmp_path / "none"), "--format", "json"))
    assert (code, report["ok"], report["error"], report["files"]) == (
        ExitCode.OUTPUT, False, f"run {run_id}: Datamatrix not written", [])
    assert len(report["problems"]) == 10 and {p["rule"] for p in report["problems"]} == {
        "payfip.datamatrix"}
    assert not (tmp_path / "none").exists()


def test_datamatrix_as_json_names_the_bordereaux_it_skipped(db_url, tmp_path):
    """The example in bordereaux of 4: IdBord 2 rejected by the trésorerie after its
    Datamatrix was written, IdBord 3 cancelled: the report gives each one skipped, in
    order, with what covers it, its titles and the CSV written before (not to print); the
    files written are IdBord 1's alone. IdBord 1 cancelled too: refused, exit 7, each
    bordereau a problem by its own rule."""
    from pesgen.runs import export_recorded

    from .test_acquit_record import _ack, _element
    from .test_cancel import BORDEREAUX, EXAMPLE, split_mapping

    store = Store(db_url)
    run = export_recorded(lambda: store, split_mapping(tmp_path), EXAMPLE, tmp_path / "o",
                          RUN_DATE).run_id
    args = ("payfip", "datamatrix", "--run", run[:8], "--code-etablissement", "001", "--db",
            db_url, "--format", "json")
    code, report, err = _report(args)
    assert code == 0 and len(report["files"]) == 3, err
    ack = _ack(tmp_path, "ack.xml", _element(2, False, "ERREUR_AUTRE"))
    assert _run("acquit", str(ack), "--db", db_url, "--record")[0] == 9
    store.cancel(run, "wrong amounts", [3])
    code, report, err = _report(args)
    assert (code, err) == (0, ""), err
    stems = [f"PESORMC_21450999400015_2026_000000{i}" for i in (1, 2, 3)]
    [written] = report["files"]
    assert (written["csv"], written["titles"]) == (
        str(tmp_path / "o" / f"{stems[0]}.datamatrix.csv"), BORDEREAUX[1])
    rejected, cancelled = report["skipped_bordereaux"]
    assert (rejected["id_bord"], rejected["rejected"], rejected["invoices"],
            rejected["earlier"]) == (2, True, BORDEREAUX[2],
                                     str(tmp_path / "o" / f"{stems[1]}.datamatrix.csv"))
    assert rejected["cover"] == ("rejected by the trésorerie: rejected on 2026-11-24 with 1 "
                                 "error(s) (ack.xml), not cancelled yet")
    assert rejected["why"].startswith("a family must not pay a title the trésorerie does "
                                      "not hold")
    assert (cancelled["id_bord"], cancelled["rejected"], cancelled["invoices"],
            cancelled["why"]) == (3, False, BORDEREAUX[3],
                                  "a family must not pay a cancelled title")
    assert cancelled["cover"].startswith("cancelled on ")
    store.cancel(run, "wrong amounts", [1])
    code, report, err = _report(args)
    assert (code, report["ok"], report["run"], report["files"]) == (
        ExitCode.STATE, False, run, []), err
    assert [(p["rule"], p["message"].split()[1]) for p in report["problems"]] == [
        ("payfip.cancelled", "1"), ("payfip.rejected", "2"), ("payfip.cancelled", "3")]
