# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""A PayFiP request takes the budget and the exercise of the title it pays (a reviewer's
store with two budgets and the exercises 2026 and 2027): a title of another budget than
the mapping's gets no link (its régie has its own numcli), exer is the title's exercise
and a note says so when the mapping's differs. And, on the request and result sides: an
e-mail address holding a control or format character is never sent; a payment PayFiP
answered without dattrans/heurtrans is recorded, and `payfip payments` says its paid_at
is the time pesgen recorded it."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from pesgen.errors import ExitCode
from pesgen.payfip import ledger
from pesgen.payfip.fake import FakePayfip
from pesgen.payfip.models import check_mel
from pesgen.payfip.server import ServerThread
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, run_cli
from .mapping_support import mapping_copy
from .payfip_support import (  # noqa: F401 - fixtures
    TIMEOUT,
    exported,
    fake,
    flow,
    receiver,
    store,
)

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
URLCL = "https://e.example.org/r"


def _mapping(tmp_path: Path, cod_bud: str = "00", exercise: int = 2026,
             exer: str | None = None) -> Path:
    edits = [('cod_bud: "00"', f'cod_bud: "{cod_bud}"'),
             ("  exercise: 2026\n", f"  exercise: {exercise}\n")]
    if exer is not None:
        edits.append(("\npayfip:\n", f'\npayfip:\n  exer: "{exer}"\n'))
    return mapping_copy(tmp_path, MAPPING, *edits, name=f"m-{cod_bud}-{exercise}-{exer}.yaml")[0]


def _input(tmp_path: Path, prefix: str, name: str, january: bool = False) -> Path:
    """The example's invoices renumbered FA-2026-00… -> prefix… (other digits: the
    NumDette is made of them, unique for the collectivity)."""
    data = json.loads(INPUT.read_text(encoding="utf-8"))
    for inv in data["invoices"]:
        inv["number"] = inv["number"].replace("FA-2026-00", prefix)
        if january and inv.get("payment", {}).get("method") == "direct_debit":
            inv["payment"]["debit_date"] = "2027-01-15"
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _export(mapping: Path, input_path: Path, out: Path, date_: str = "2026-11-23") -> str:
    """Export into the test's default store; the run's id."""
    before = {r.id for r in Store().list_runs()}
    r = run_cli("export", "-m", mapping, "-i", input_path, "-o", out, "--date", date_, "-q")
    assert r.exit_code == 0, r.output
    [run_id] = {r.id for r in Store().list_runs()} - before
    return run_id


def _tipi(mapping: Path, invoice: str, *extra: str):
    return run_cli("payfip", "tipi-url", "-m", mapping, "-n", invoice, "--urlcl", URLCL,
                   *extra)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url.strip()).query).items()}


@pytest.fixture
def payfip():
    fake = FakePayfip()
    with ServerThread(fake.app) as server:
        yield fake, f"{server.url}/tpa"


def _link(mapping: Path, invoice: str, endpoint: str, *extra: str):
    return run_cli("payfip", "link", "-m", mapping, "-n", invoice, "--endpoint", endpoint,
                   "--notify-url", "https://e.example.org/payfip/notification",
                   "--timeout", str(TIMEOUT), *extra)


# ------------------------------------------------------------------ budget


def test_a_title_of_another_budget_gets_no_link(tmp_path, payfip):
    """Budget 00's mapping gave budget 01's title a link with budget 00's numcli (the
    title was looked up by SIRET only): refused, exit 7, naming the title's run, its
    budget and the mapping's, and nothing is sent to PayFiP."""
    fake, endpoint = payfip
    m00, m01 = _mapping(tmp_path), _mapping(tmp_path, cod_bud="01")
    _export(m00, INPUT, tmp_path / "a")
    run01 = _export(m01, _input(tmp_path, "CO-2026-50", "b01.json"), tmp_path / "b")

    r = _tipi(m00, "CO-2026-50102")
    assert r.exit_code == ExitCode.STATE, r.output
    assert r.stdout == ""  # no URL
    assert (f"error: invoice CO-2026-50102: its title is in run {run01} of budget 01 "
            f"(exercise 2026), and the mapping {m00} is budget 00's: no TIPI link") in r.stderr
    assert "give budget 01's mapping" in r.stderr
    assert f"[mapping {m00}:10: collectivity.cod_bud] (rule payfip.budget)" in r.stderr

    r = _link(m00, "co-2026-50102", endpoint, "--mode", "W")
    assert r.exit_code == ExitCode.STATE, r.output
    assert f"its title is in run {run01} of budget 01" in r.stderr and "no new link" in r.stderr
    assert fake.operations == {}  # nothing sent

    # each budget's mapping pays its own titles
    assert _tipi(m01, "CO-2026-50102").exit_code == 0
    assert _tipi(m00, "FA-2026-00102").exit_code == 0
    r = _link(m01, "CO-2026-50102", endpoint)
    assert r.exit_code == 0, r.output
    assert len(fake.operations) == 1


# ------------------------------------------------------------------ exercise


@pytest.fixture
def two_exercises(tmp_path):
    m26, m27 = _mapping(tmp_path), _mapping(tmp_path, exercise=2027)
    run26 = _export(m26, INPUT, tmp_path / "a")
    run27 = _export(m27, _input(tmp_path, "FA-2027-60", "y27.json", january=True),
                    tmp_path / "b", date_="2027-01-04")
    return m26, m27, run26, run27


def test_exer_is_the_title_exercise_and_a_note_says_when_the_mapping_differs(
        two_exercises):
    """The 2027 mapping sent exer=2027 for a title of the 2026 rôle, the 2026 mapping
    exer=2026 for a 2027 title, and nothing said so."""
    m26, m27, run26, run27 = two_exercises
    r = _tipi(m27, "FA-2026-00102")
    assert r.exit_code == 0, r.output
    assert _query(r.stdout)["exer"] == "2026"
    assert r.stderr == (f"note: invoice FA-2026-00102: its title (run {run26}) is of exercise "
                        f"2026, the mapping's ({m27}) is of 2027: exer 2026 sent, the title's "
                        "(docs/payfip.md, exer)\n")
    r = _tipi(m26, "FA-2027-60102")
    assert r.exit_code == 0, r.output
    assert _query(r.stdout)["exer"] == "2027"
    assert f"its title (run {run27}) is of exercise 2027, the mapping's" in r.stderr
    # the same exercise: nothing to say
    for mapping, invoice, exer in ((m26, "FA-2026-00102", "2026"),
                                   (m27, "FA-2027-60102", "2027")):
        r = _tipi(mapping, invoice)
        assert r.exit_code == 0 and r.stderr == "", r.output
        assert _query(r.stdout)["exer"] == exer


def test_link_sends_and_records_the_title_exercise(two_exercises, payfip):
    fake, endpoint = payfip
    m26, m27, run26, _run27 = two_exercises
    r = _link(m27, "FA-2026-00102", endpoint)
    assert r.exit_code == 0, r.output
    assert f"note: invoice FA-2026-00102: its title (run {run26}) is of exercise 2026" \
        in r.stderr
    [op] = fake.operations.values()
    assert op.request["exer"] == "2026"
    assert ledger.get_operation(Store(), op.id_op)["exer"] == "2026"


def test_payfip_exer_set_by_the_mapping_is_sent_and_noted_when_not_the_title_s(
        tmp_path, two_exercises):
    _m26, _m27, run26, _run27 = two_exercises
    fixed = _mapping(tmp_path, exercise=2027, exer="2027")
    r = _tipi(fixed, "FA-2026-00102")
    assert r.exit_code == 0, r.output
    assert _query(r.stdout)["exer"] == "2027"
    line = next(i for i, t in enumerate(fixed.read_text().splitlines(), 1) if "exer:" in t)
    assert r.stderr == (f"note: invoice FA-2026-00102: its title (run {run26}) is of exercise "
                        f"2026; exer 2027 sent, as payfip.exer sets it ({fixed}:{line}: "
                        "payfip.exer) (docs/payfip.md, exer)\n")
    r = _tipi(fixed, "FA-2027-60102")
    assert r.exit_code == 0 and r.stderr == "", r.output


def test_an_exer_that_is_no_4_digit_year_is_never_sent(tmp_path):
    """payfip.exer: a request's exer is a 4-digit year (a title's exercise always is).
    The mapping's payfip.exer is the one a user can get wrong: its schema refuses it when
    the mapping loads (exit 3, naming its line), before the request's own check; that
    check (the library's, tipi_url and the web service's request) refuses it too,
    naming the invoice, and nothing is made."""
    from dataclasses import replace

    from pesgen.payfip.errors import PayfipRequestInvalid
    from pesgen.payfip.tipi import TipiRequest, tipi_url

    bad = _mapping(tmp_path, exer="26")
    r = _tipi(bad, "FA-2026-00102")
    assert r.exit_code == ExitCode.MAPPING and r.stdout == "", r.output
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "exer:" in t)
    assert f"[mapping {bad}:{line}: payfip.exer] (rule mapping.schema)" in r.stderr

    good = TipiRequest("FA-2026-00102", "012345", "2026", "FA202600102", 18750,
                       "f@example.org", "FACTURE", "A", URLCL)
    assert tipi_url(good).startswith("https://")
    with pytest.raises(PayfipRequestInvalid) as info:
        tipi_url(replace(good, exer="26"))
    [p] = info.value.problems
    assert (p.rule, p.invoice, p.message) == ("payfip.exer", "FA-2026-00102",
                                              "exer: '26' must be a 4-digit year")


# ------------------------------------------------------------------ mel


@pytest.mark.parametrize("mel, code", [
    ("fam\x9b2J@ex.org", "U+009B"),  # C1 CSI: a terminal's escape sequence
    ("fam\x1b[2J@ex.org", "U+001B"),
    ("fam\u202eille@ex.org", "U+202E"),  # right-to-left override
    ("fam\u200bille@ex.org", "U+200B"),  # zero-width space
    ("famille@ex.org\n", "U+000A"),
    # a surrogate, a private-use, an unassigned character, a line or paragraph separator
    ("fam\ud800ille@ex.org", "U+D800"), ("fam\ue000ille@ex.org", "U+E000"),
    ("fam\u0378ille@ex.org", "U+0378"), ("fam\u2028ille@ex.org", "U+2028"),
    ("fam\u2029ille@ex.org", "U+2029"),
])
def test_an_email_holding_a_control_or_format_character_is_refused(mel, code):
    [problem] = check_mel(mel, "FA-2026-00102")
    assert problem.rule == "payfip.mel"
    assert f"holds control or format character(s) {code}" in problem.message
    assert mel not in problem.message  # shown escaped
    assert check_mel("jf.ndiaye@example.org", "FA-2026-00102") == []
    assert check_mel("hélène.durand@exemple.fr", "FA-2026-00102") == []


def test_tipi_url_refuses_an_email_with_a_control_character(tmp_path):
    _export(MAPPING, INPUT, tmp_path / "a")
    r = _tipi(MAPPING, "FA-2026-00102", "--mel", "fam\x9b2J@ex.org")
    assert r.exit_code == ExitCode.INPUT, r.output
    assert r.stdout == ""
    assert "mel: 'fam\\x9b2J@ex.org' holds control or format character(s) U+009B" in r.stderr
    assert "\x9b" not in r.stderr


# ------------------------------------------------------------------ paid_at


def test_a_payment_without_dattrans_says_its_paid_at_is_the_recording_time(flow, store):
    """PayFiP answered P without dattrans/heurtrans: paid_at quietly became 'now'. The
    payment is recorded (its result, amount, refdet and numcli are checked: refusing it
    would let a new link make the family pay twice), and it is said: the outcome, the
    history, paid_at_source 'recorded' and a note of `payfip payments`."""
    link = flow.link(mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"dattrans": "", "heurtrans": ""}})
    flow.pay(link, "card")
    pay = ledger.payment_of(store, "21450999400015", link.invoice)
    assert pay["status"] == "paid" and pay["paid_at"]
    op = ledger.get_operation(store, link.id_op)
    assert op["transaction_at"] is None
    [row] = ledger.list_payments(store, history=True)
    assert row["paid_at_source"] == "recorded"
    paid = [e for e in row["history"] if e["event"] == "paid"]
    assert paid and paid[-1]["detail"]["paid_at_source"] == "recorded"
    r = run_cli("payfip", "payments", "--db", store.url)
    assert r.exit_code == 0, r.output
    assert ("note: 1 payment(s) came without PayFiP's transaction date and time "
            "(dattrans/heurtrans) (FA-2026-00102): their paid_at is when pesgen recorded "
            "the result, not when the family paid") in r.stderr


def test_a_payment_with_dattrans_is_dated_by_payfip_and_says_nothing(flow, store):
    link = flow.link(mode="W")
    flow.pay(link, "card")
    [row] = ledger.list_payments(store)
    assert row["status"] == "paid" and row["paid_at_source"] == "payfip"
    r = run_cli("payfip", "payments", "--db", store.url)
    assert r.exit_code == 0 and "dattrans" not in r.stderr, r.output


def test_the_sweep_says_a_payment_came_without_its_time(flow, store):
    flow.control("notifications", {"enabled": False})
    link = flow.link(mode="W")
    flow.control("tamper", {"idop": link.id_op, "fields": {"dattrans": ""}})
    flow.pay(link, "card")
    [outcome] = flow.reconcile()
    assert (outcome.action, outcome.status) == ("recorded", "paid")
    assert outcome.message == ledger.NO_TRANSACTION_TIME
