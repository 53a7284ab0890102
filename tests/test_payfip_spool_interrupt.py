"""Ctrl-C or SIGTERM while `payfip anomalies` copies its listing, read whole and held in
a temporary file, to standard output (``payfip.cli._print_spooled``): what the reader got
is a beginning of the listing, and standard error says so, exit 130. The signal is sent
to a real ``pesgen`` process whose standard output is a pipe the test stops reading: the
process is then blocked writing the listing, as under a slow reader."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pesgen.cli import app
from pesgen.payfip.tables import anomalies
from pesgen.store import Store

from .conftest import state_database

CUT = ("interrupted while the listing was printed: what standard output holds may be cut "
       "short (its end, the last line or the JSON document's closing, missing); not the "
       "whole listing: run the command again\n")


@pytest.fixture(scope="module")
def flood(tmp_path_factory):
    """A SQLite store of 5 000 unknown-idop anomalies: a listing of more than a megabyte
    (the copy's step) in text, several in JSON, either far more than a pipe holds."""
    with state_database("sqlite", tmp_path_factory.mktemp("flood")) as url:
        store = Store(url)
        with store.engine.begin() as conn:
            conn.execute(anomalies.insert(), [
                {"at": "2026-11-24T10:00:00Z", "kind": "unknown-idop", "id_op": f"op-{n}",
                 "invoice": None, "source": "notification", "expected": None, "got": None,
                 "detail": "no such operation"} for n in range(5000)])
        store.engine.dispose()
        yield url


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_interrupt_while_the_listing_is_printed_says_it_is_cut(flood, fmt, sig):
    """Before, the listing's beginning was on standard output and standard error said
    only `interrupted` (cli.main's word for a command that said nothing), which read as
    nothing printed, or as the listing whole. Now the line says the listing may be cut
    short and is not the whole one; exit 130, no traceback; what was printed is the
    listing's beginning, each byte once."""
    args = ["payfip", "anomalies", "--format", fmt, "--db", flood]
    whole = CliRunner().invoke(app, args)
    assert whole.exit_code == 0, whole.output
    expected = whole.stdout.encode("utf-8")
    assert len(expected) > 1 << 20
    proc = subprocess.Popen([sys.executable, "-m", "pesgen", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the first bytes: the listing is read whole and being copied; the pipe full,
        # the copy waits for this reader
        first = proc.stdout.read(4096)
        assert len(first) == 4096, (first, proc.stderr.read())
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    out, err_text = first + rest, err.decode("utf-8")
    assert proc.returncode == 130, (proc.returncode, err_text)
    assert err_text == CUT, err_text
    assert len(out) < len(expected) and expected.startswith(out), (len(out), len(expected))
