"""The text a command prints (its summary, a listing, a note, an error) never shows the
password of a URL it quotes: a store URL, a PayFiP endpoint, a reason typed by a user or
a libellé received holding one is shown as its JSON report shows it, masked."""

from __future__ import annotations

import json
import logging
from datetime import date

from typer.testing import CliRunner

from pesgen._display import masked_text
from pesgen.cli import app
from pesgen.errors import ExitCode
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
SECRET = "SECRET"
URL = f"postgresql://u:{SECRET}@h/db"


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_masked_text_masks_what_masked_json_masks():
    said = f"see {URL}, or https://x.example/cb?token={SECRET}&n=1."
    assert masked_text(said) == "see postgresql://u:***@h/db, or https://x.example/cb?token=***&n=1."
    assert masked_text("FA-2026-00101: 12,50 €") == "FA-2026-00101: 12,50 €"


def test_a_reason_typed_with_a_password_is_masked_in_text_as_in_json(tmp_path):
    """`runs cancel --reason` records what the user typed (the store keeps it exact):
    `runs cancel` says it back and `runs show` lists it; both showed the password, while
    `runs show --format json` masked it."""
    db = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{db}")
    result = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                             tmp_path / "out", date(2026, 11, 23))
    run = result.run_id
    reason = f"rejected: the copy in {URL} is the right one"
    done = _cli("runs", "cancel", run, "--reason", reason, "--db", db)
    assert done.exit_code == 0, done.output
    assert SECRET not in done.output
    shown = _cli("runs", "show", run, "--db", db)
    assert shown.exit_code == 0, shown.output
    assert "u:***@h/db" in shown.stdout and SECRET not in shown.output
    listed = _cli("runs", "list", "--db", db)
    assert SECRET not in listed.output
    as_json = _cli("runs", "show", run, "--db", db, "--format", "json")
    if as_json.exit_code == 0:  # the text says what the JSON says
        assert SECRET not in as_json.stdout
        assert "u:***@h/db" in json.dumps(json.loads(as_json.stdout))
    # the store keeps what was typed
    assert store.get_run(run)["cancel_reason"] == reason


def test_payfip_log_lines_mask_the_urls_they_quote(capsys):
    from pesgen.payfip.cli import _log_outcomes

    logger = logging.getLogger("pesgen.payfip")
    before, level = list(logger.handlers), logger.level
    try:
        _log_outcomes()
        logging.getLogger("pesgen.payfip.client").warning("PayFiP at %s: no answer", URL)
    finally:  # as it was: other tests read what this logger lets through
        for handler in logger.handlers[len(before):]:
            logger.removeHandler(handler)
        logger.setLevel(level)
    err = capsys.readouterr().err
    assert "u:***@h/db" in err and SECRET not in err


def test_a_libelle_quoting_a_url_with_a_password_is_masked_in_text_as_in_json(tmp_path):
    """A trésorerie's libellé is data from outside: `acquit` (and `runs show` once it is
    recorded) printed it whole, password included, while `acquit --json` masked it."""
    from .test_acquit import _ack_with_label

    db = tmp_path / "store.sqlite3"
    store = Store(f"sqlite:///{db}")
    result = export_recorded(lambda: store, MAPPING, EXAMPLES / "school-export.json",
                             tmp_path / "out", date(2026, 11, 23))
    ack = _ack_with_label(tmp_path, f"Montant faux, voir {URL}")
    for args in (["acquit", ack], ["acquit", ack, "--json"], ["acquit", ack, "--record"],
                 ["runs", "show", result.run_id]):
        said = _cli(*args, "--db", db)
        assert said.exit_code in (0, ExitCode.REJECTED), (args, said.output)
        assert "u:***@h/db" in said.output and SECRET not in said.output, (args, said.output)


def test_the_db_option_a_report_prints_masks_the_password():
    """`` --db URL`` in the next steps a report prints (acquit, runs, the already-exported
    refusal): the store's password masked, the URL quoted for the shell (mut56: mutants
    printing it unmasked, or unquoted, survived: the tests' stores are SQLite files)."""
    from pesgen._display import db_option

    assert db_option("postgresql://pesgen:s3cret@db.example/pesgen") == \
        " --db 'postgresql://pesgen:***@db.example/pesgen'"
    assert db_option(None) == "" and db_option("sqlite:////srv/a b.sqlite3") == \
        " --db 'sqlite:////srv/a b.sqlite3'"
