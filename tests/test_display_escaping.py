"""Text from outside shown on a terminal: escaped (a C1 CSI, ``\\x9b``, is what a
terminal takes for an escape sequence's start; a right-to-left override reverses the
text around it) and cut, while what is stored stays exact. Each test fails if its
escaping or its cut is removed:

* PayFiP's display text (a fault's libellé, client-info's libellés): ``_display.shown``
  in ``payfip reconcile``, ``payfip anomalies``, ``payfip client-info``;
* libxml2's messages, cut at ``validate.MESSAGE_LIMIT`` (4 000) characters;
* stderr alone (``_echo.echo_err``): an error quoting an input file's value as it is,
  in ``pesgen …`` and in ``pesgen payfip …`` (its notes and its log lines).
"""

from __future__ import annotations

import copy
import json
import logging
import re

import httpx
from lxml import etree
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.formats import find_format
from pesgen.payfip import ledger
from pesgen.payfip.fake import FakePayfip
from pesgen.payfip.server import ServerThread
from pesgen.store import Store
from pesgen.validate import MESSAGE_LIMIT, validate_pes_file

from .conftest import EXAMPLES, MAPPINGS

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
TIMEOUT = 5.0
# a terminal's "clear the screen", "red", then a right-to-left override
UNSAFE = "\x9b2J\x9b31mIdOp\u202eexpire "
SHOWN = "\\x9b2J\\x9b31mIdOp\\u202eexpire "


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _export(tmp_path, source=INPUT) -> tuple[int, str, str]:
    return _run("export", "-m", str(MAPPING), "-i", str(source), "-o", str(tmp_path / "out"),
                "--date", "2026-11-23", "-q")


def _clean(text: str) -> bool:
    return "\x9b" not in text and "\u202e" not in text


def test_a_payfip_fault_s_libelle_is_shown_escaped_and_cut_and_stored_exact(tmp_path):
    code, _, err = _export(tmp_path)
    assert code == 0, err
    libelle = UNSAFE + "A" * 500
    with ServerThread(FakePayfip().app) as fake:
        endpoint = f"{fake.url}/tpa"
        code, out, err = _run("payfip", "link", "-m", str(MAPPING), "-n", "FA-2026-00102",
                              "--endpoint", endpoint, "--notify-url",
                              "http://127.0.0.1:9/payfip/notification", "--timeout", "5")
        assert code == 0, err
        id_op = out.strip().splitlines()[1].rsplit("=", 1)[1]
        answer = httpx.post(f"{fake.url}/_fake/fault", timeout=TIMEOUT, json={
            "operation": "recupererDetailPaiementSecurise", "kind": "FonctionnelleErreur",
            "code": "P4", "libelle": libelle})
        assert answer.status_code == 200
        code, out, err = _run("payfip", "reconcile", "--endpoint", endpoint, "--timeout", "5")
    assert code == 0, err
    # shown: escaped, cut at 200 characters, its length said
    assert _clean(out)
    [line] = [ln for ln in out.splitlines() if ln.startswith(id_op)]
    assert line.startswith(f"{id_op}  FA-2026-00102  anomaly (P4 {SHOWN}AAA")
    assert line.endswith(f"A… ({len(libelle) + 3} characters))")
    # stored: exact
    [anomaly] = ledger.list_anomalies(Store())
    assert anomaly["got"] == f"P4 {libelle}"

    # the invoice's history as JSON: the same values, each character a terminal acts on
    # written as its \\u escape
    code, out, err = _run("payfip", "payments", "--format", "json", "--history")
    assert code == 0, err
    assert _clean(out) and "\\u009b2J\\u009b31mIdOp\\u202eexpire" in out
    [row] = json.loads(out)
    assert row["history"][-1]["detail"] == {"reason": f"P4 {libelle}"}


def test_client_info_shows_payfip_s_libelles_escaped_and_cut(tmp_path):
    labels = (UNSAFE + "B" * 300, "REGIE\x9b0m", "\u202eFIP")
    with ServerThread(FakePayfip(clients={"012345": labels}).app) as fake:
        code, out, err = _run("payfip", "client-info", "--numcli", "012345", "--endpoint",
                              f"{fake.url}/tpa", "--timeout", "5")
    assert code == 0, err
    assert _clean(out)
    assert out.startswith(f"numcli 012345: {SHOWN}BBB")
    assert out.rstrip("\n").endswith(f"B… ({len(labels[0])} characters) / REGIE\\x9b0m / "
                                     "\\u202eFIP")


def _example_xml(tmp_path) -> bytes:
    code, _, err = _export(tmp_path)
    assert code == 0, err
    [xml] = (tmp_path / "out").glob("*.xml")
    return xml.read_bytes()


def test_a_libxml2_message_echoing_a_long_value_is_cut_at_4000_characters(tmp_path):
    data = _example_xml(tmp_path)
    long = UNSAFE + "X" * 10_000  # libxml2 echoes the value whole in its message
    tree = etree.fromstring(data)
    [el] = tree.xpath("//*[local-name()='NomFic']")
    el.set("V", long)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(etree.tostring(tree, xml_declaration=True, encoding="ISO-8859-1"))

    xsd = find_format("pes-ormc").files[0].xsd
    problems = [p for p in validate_pes_file(bad, xsd) if p.rule.startswith("xsd.")]
    assert problems, "the long NomFic breaks the schema"
    [problem] = [p for p in problems if "XXXX" in p.message]
    message = problem.message
    assert _clean(message) and "\\x9b2J" in message
    assert len(message) <= MESSAGE_LIMIT + 60  # the escapes and the "… (N characters)"
    assert re.search(r"… \(\d{5} characters\)$", message), message[-80:]
    assert problem.record.startswith("bad.xml:")


def test_stderr_escapes_an_input_file_s_value_quoted_as_it_is(tmp_path):
    """codes.civility quotes the input's civility as written: only stderr's own escaping
    (``cli._echo_err``) keeps its escape sequence from the terminal."""
    data = json.loads(INPUT.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data["invoices"][0]["payer"]["title"] = "M\x9b2J\u202e"
    source = tmp_path / "school-export.json"
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    code, out, err = _export(tmp_path, source)
    assert code != 0
    assert _clean(err) and _clean(out)
    assert "civility 'M\\x9b2J\\u202e' is not in codes.civility" in err


def test_payfip_s_stderr_lines_are_escaped_as_the_main_command_s(tmp_path):
    """`payfip payments -o FILE` says on stderr what it wrote: a name holding an escape
    sequence (ESC's and C1's CSI) reached the terminal as such (payfip printed its stderr
    lines masked only); now as ``pesgen``'s own errors, escaped."""
    code, _, err = _export(tmp_path)
    assert code == 0, err
    output = tmp_path / f"payments\x1b[2J\x1b]0;{UNSAFE}.csv"
    code, out, err = _run("payfip", "payments", "-o", str(output))
    assert code == 0, err
    assert output.is_file() and out == ""
    assert "\x1b" not in err and _clean(err)
    assert err == (f"wrote {tmp_path}/payments\\x1b[2J\\x1b]0;{SHOWN}.csv: "
                   "0 invoice(s) in 0 row(s)\n")


def test_payfip_s_log_lines_are_escaped(capsys):
    """`payfip serve` logs what a notification gave (an idOp): on stderr, escaped."""
    from pesgen.payfip.cli import _log_outcomes

    logger = logging.getLogger("pesgen.payfip")
    before, level = list(logger.handlers), logger.level
    try:
        _log_outcomes()
        logging.getLogger("pesgen.payfip.receiver").info("payfip notification: %s -> %s",
                                                         f"\x1b[2J{UNSAFE}", "unknown")
    finally:  # as it was: other tests read what this logger lets through
        for handler in logger.handlers[len(before):]:
            logger.removeHandler(handler)
        logger.setLevel(level)
    err = capsys.readouterr().err
    assert "\x1b" not in err and _clean(err)
    assert f"payfip notification: \\x1b[2J{SHOWN} -> unknown" in err
