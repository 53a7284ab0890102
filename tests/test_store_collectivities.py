# ruff: noqa: F811 - fixtures imported from payfip_support are injected by name
"""One state store shared by two collectivities (another SIRET), or by two budgets of one
(another CodBud): each keeps its own numbers; the duplicate guard is the collectivity's
(docs/state.md, "Nothing twice": an active run of the same SIRET, across its budgets and
exercises), so another collectivity's same invoice numbers and NumDettes are not
duplicates; cancelling or reinstating one's run frees or holds only its own invoices;
`runs list --mapping` lists one's runs; an acquit ties to its own collectivity's
bordereau only; PayFiP's payments, left-out invoices and reconcile keep each
collectivity's apart. On SQLite and on a real PostgreSQL server (PESGEN_TEST_PG_URL)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from pesgen.errors import ExitCode, StateError
from pesgen.payfip import ledger
from pesgen.payfip.service import Link, create_link, default_factory, reconcile
from pesgen.payfip.tables import events
from pesgen.runs import export_recorded
from pesgen.store import Store

from .collectivity_support import (
    INPUT,
    MAPPING,
    OTHER_NUMCLI,
    OTHER_SIRET,
    RUN,
    SIRET,
    example_input,
    export,
    other_budget,
    other_collectivity,
    two_budgets,
    two_collectivities,
)
from .conftest import ROOT, run_cli
from .payfip_support import TIMEOUT, fake, receiver, store  # noqa: F401 - fixtures
from .test_cancel import BORDEREAUX

ACCEPTED = ROOT / "tests" / "acquit" / "accepted.xml"  # IdColl A's IdBord 1 of 2026, accepted
EVERY = sorted(inv for invoices in BORDEREAUX.values() for inv in invoices)


def _held(store: Store, invoice: str) -> list[tuple[str, str, bool]]:
    """The titles of an invoice, every collectivity's: (IdColl, run, active)."""
    return sorted((t["id_coll"], t["run_id"], t["active"]) for t in store.find_invoice(invoice))


def _next(store: Store) -> dict[tuple[str, str], int]:
    """The next IdBord of each sequence of the store, by (SIRET, CodBud)."""
    return {(s.key[0], s.key[1]): s.next_number for s in store.sequences()}


def _refused(store: Store, mapping, input_path, out) -> StateError:
    with pytest.raises(StateError) as info:
        export(store, mapping, input_path, out)
    return info.value


# ------------------------------------------------------------------ numbering


def test_each_collectivity_and_budget_numbers_its_own_bordereaux(db_url, tmp_path):
    """IdBord is per (SIRET, CodBud, exercise, TypBord): another collectivity's first
    rôle, and another budget's, is IdBord 1 too, and each one's next run goes on from
    its own sequence, not from the other's."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    b01 = export(store, other_budget(tmp_path / "b01"),
                 example_input(tmp_path, "b01.json", "CO-"), tmp_path / "out-01")
    assert {run: store.get_run(run)["first_number"] for run in (a, b, b01)} == {
        a: 1, b: 1, b01: 1}
    assert _next(store) == {(SIRET, "00"): 2, (OTHER_SIRET, "00"): 2, (SIRET, "01"): 2}
    # B's second run (new invoices) takes B's IdBord 2; A's and budget 01's stay at 2
    again = export(store, other_collectivity(tmp_path / "b"),
                   example_input(tmp_path, "b2.json", "NB-"), tmp_path / "out-b2")
    assert store.get_run(again)["first_number"] == 2
    assert _next(store) == {(SIRET, "00"): 2, (OTHER_SIRET, "00"): 3, (SIRET, "01"): 2}
    # and A's next run IdBord 2, whatever B took
    more = export(store, MAPPING, example_input(tmp_path, "a2.json", "NA-", "60"), tmp_path / "a2")
    assert store.get_run(more)["first_number"] == 2


def test_set_start_and_move_of_one_collectivity_s_sequence_ignore_the_other_s(
        db_url, tmp_path):
    """`numbering set-start` and `numbering move` read the runs of their own sequence
    only: B's first IdBord can be set though A's runs used A's, and B's sequence moves
    past B's numbers whatever A's runs took."""
    store = Store(db_url)
    key_a, key_b = (SIRET, "00", 2026, "06"), (OTHER_SIRET, "00", 2026, "06")
    store.set_start(key_a, 10)
    a = export(store, MAPPING, INPUT, tmp_path / "out-a")
    store.set_start(key_b, 3)
    b = export(store, other_collectivity(tmp_path / "b"), INPUT, tmp_path / "out-b")
    assert (store.get_run(a)["first_number"], store.get_run(b)["first_number"]) == (10, 3)
    [moved] = store.move([(key_b, 5)], "IdBord 4 issued by the finance package")
    assert (moved.from_number, moved.to_number) == (4, 5)
    assert _next(store) == {(SIRET, "00"): 11, (OTHER_SIRET, "00"): 5}
    assert {s.key[0]: s.given_up_to for s in store.sequences()} == {SIRET: 10,
                                                                     OTHER_SIRET: 3}


# ------------------------------------------------------------------ the duplicate guard


def test_another_collectivity_s_same_invoices_and_numdettes_are_no_duplicates(
        db_url, tmp_path):
    """The guard is the collectivity's (an active run of the same SIRET): B exports
    FA-2026-00101… with their NumDettes though A's run holds them, and both stay
    active; B's input again is refused, naming B's run, never A's."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    for invoice in EVERY:
        assert _held(store, invoice) == sorted([(SIRET, a, True), (OTHER_SIRET, b, True)])
    refused = _refused(store, other_collectivity(tmp_path / "b"), INPUT, tmp_path / "again")
    assert sorted(p.invoice for p in refused.problems) == EVERY
    assert b in str(refused) and a not in str(refused)
    assert all(b in p.message and a not in p.message for p in refused.problems)


def test_another_budget_s_same_invoice_is_refused_naming_its_own_collectivity_s_run(
        db_url, tmp_path):
    """Across a collectivity's budgets the guard holds (docs/state.md: invoice numbers and
    NumDettes are the collectivity's, whatever the budget): budget 01 exporting
    FA-2026-00101… is refused by budget 00's run of the same SIRET, never by the other
    collectivity's run holding the same numbers."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    refused = _refused(store, other_budget(tmp_path / "b01"), INPUT, tmp_path / "out-01")
    assert sorted(p.invoice for p in refused.problems
                  if p.rule == "run.duplicate") == EVERY
    assert all("budget 00, exercise 2026" in p.message and a in p.message
               and b not in p.message for p in refused.problems)
    # another series of numbers whose digits are A's NumDettes: refused by A's only
    same_debts = example_input(tmp_path, "co.json", "CO-", "00")
    refused = _refused(store, other_budget(tmp_path / "b01"), same_debts, tmp_path / "o1")
    assert {p.rule for p in refused.problems} == {"run.num-dette-taken"}
    assert len(refused.problems) == len(EVERY)
    assert all(a in p.message and b not in p.message for p in refused.problems)
    # another budget's run: said of that budget, never to be cancelled for it
    assert all(p.message.endswith(
        "(IdBord 1, budget 00, exercise 2026): two active titles would share one payment "
        "reference; give this invoice another NumDette") for p in refused.problems), \
        refused.problems[0].message
    # the renumbered series, other digits: budget 01 exports, IdBord 1 of its own
    b01 = export(store, other_budget(tmp_path / "b01"),
                 example_input(tmp_path, "b01.json", "CO-"), tmp_path / "out-01")
    assert store.get_run(b01)["first_number"] == 1


# ------------------------------------------------------------------ cancel and reinstate


def test_cancelling_one_collectivity_s_run_frees_its_invoices_only(db_url, tmp_path):
    """A's run cancelled: A's invoices are free (A exports them again), B's stay held (B's
    input again is still refused); the cancellation says every invoice of A's run is
    free, none held by B's run, which is another collectivity's."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    done = run_cli("runs", "cancel", a, "--reason", "wrong file", "--db", db_url)
    assert done.exit_code == 0, done.output
    assert f"run {a} cancelled: its 11 invoice(s) can be exported again" in done.stdout
    assert b not in done.output
    for invoice in EVERY:
        assert _held(store, invoice) == sorted([(SIRET, a, False), (OTHER_SIRET, b, True)])
    a2 = export(store, MAPPING, INPUT, tmp_path / "out-a2")
    assert store.get_run(a2)["first_number"] == 2
    refused = _refused(store, other_collectivity(tmp_path / "b"), INPUT, tmp_path / "again")
    assert sorted(p.invoice for p in refused.problems) == EVERY
    assert all(b in p.message and a2 not in p.message for p in refused.problems)


def test_reinstating_one_collectivity_s_run_is_not_refused_by_the_other_s(db_url, tmp_path):
    """A's run cancelled, then reinstated: B's run holding the same numbers (another
    collectivity's) does not refuse it, and A's invoices are held again; once A exported
    them again meanwhile, the reinstatement is refused naming A's new run only."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    store.cancel(a, "wrong file")
    done = store.reinstate(a, "the right file after all")
    assert (done.invoices, done.run.status) == (len(EVERY), "committed")
    for invoice in EVERY:
        assert _held(store, invoice) == sorted([(SIRET, a, True), (OTHER_SIRET, b, True)])
    # cancelled again, exported again by A: A's new run refuses it, B's is not named
    store.cancel(a, "wrong file again")
    a2 = export(store, MAPPING, INPUT, tmp_path / "out-a2")
    assert store.exported_again(a, [1]) == (len(EVERY), {a2: {2}})
    with pytest.raises(StateError) as info:
        store.reinstate(a, "no")
    assert {p.rule for p in info.value.problems} == {"run.reinstate-taken"}
    assert len(info.value.problems) == len(EVERY)
    assert all(a2 in p.message and b not in p.message for p in info.value.problems)
    assert b not in str(info.value)


def test_cancelling_and_reinstating_another_collectivity_s_run_leaves_a_s_alone(
        db_url, tmp_path):
    """B's run cancelled then reinstated: A's titles stay active throughout, and B's
    reinstatement is refused only by B's own export again, not by A's run."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    store.cancel(b, "wrong file")
    assert store.exported_again(b, [1]) == (0, {})
    for invoice in EVERY:
        assert _held(store, invoice) == sorted([(SIRET, a, True), (OTHER_SIRET, b, False)])
    store.reinstate(b, "the right file after all")
    for invoice in EVERY:
        assert _held(store, invoice) == sorted([(SIRET, a, True), (OTHER_SIRET, b, True)])


# ------------------------------------------------------------------ runs list


def test_runs_list_of_a_mapping_lists_its_collectivity_s_runs_only(db_url, tmp_path):
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    every = run_cli("runs", "list", "--db", db_url)
    assert every.exit_code == 0, every.output
    assert [line.split()[0] for line in every.stdout.splitlines()
            if not line.startswith(" ")] == [a, b]
    for mapping, run, other in ((MAPPING, a, b),
                                (tmp_path / "b" / "saint-ailleurs.yaml", b, a)):
        listed = run_cli("runs", "list", "--mapping", mapping, "--db", db_url)
        assert listed.exit_code == 0, listed.output
        assert [line.split()[0] for line in listed.stdout.splitlines()
                if not line.startswith(" ")] == [run]
        assert other not in listed.stdout


def test_runs_list_and_find_name_each_run_s_collectivity(db_url, tmp_path):
    """In a store of two collectivities, the same invoice number held by each, and
    their runs listed together, are told apart by their SIRET (not only by a path or a
    file name, which a finance package's format need not make of it)."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    every = run_cli("runs", "list", "--db", db_url)
    assert every.exit_code == 0, every.output
    runs_ = {line.split()[0]: line for line in every.stdout.splitlines()
             if not line.startswith(" ")}
    assert f"  SIRET {SIRET} budget 00  exer 2026  IdBord 1  " in runs_[a]
    assert f"  SIRET {OTHER_SIRET} budget 00  exer 2026  IdBord 1  " in runs_[b]
    found = run_cli("runs", "find", "FA-2026-00101", "--db", db_url)
    assert found.exit_code == 0, found.output
    held = {line.split(": run ", 1)[1].split()[0]: line for line in found.stdout.splitlines()
            if ": run " in line}
    assert f"  SIRET {SIRET} budget 00 exer 2026  IdBord 1 " in held[a]
    assert f"  SIRET {OTHER_SIRET} budget 00 exer 2026  IdBord 1 " in held[b]


# ------------------------------------------------------------------ acquit


def _acquit(folder, name: str, accepted: bool, *edits: tuple[str, str]):
    """tests/acquit/accepted.xml (A's IdBord 1 of 2026, budget 00), accepted or rejected,
    with ``edits`` made: another collectivity's or budget's header and file name."""
    text = ACCEPTED.read_text(encoding="iso-8859-1")
    for old, new in (*edits, *(() if accepted else (('<EtatAck V="1"/>',
                                                      '<EtatAck V="0"/>'),))):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / name
    path.write_text(text, encoding="iso-8859-1")
    return path


B_HEAD = ((f'<IdColl V="{SIRET}"/>', f'<IdColl V="{OTHER_SIRET}"/>'),
          ('<IdPost V="045012"/>', '<IdPost V="075001"/>'),
          ('<CodCol V="123"/>', '<CodCol V="456"/>'),
          ("COMMUNE DE VILLENEUVE SUR LOING", "COMMUNE DE SAINT-AILLEURS"),
          (f"PESORMC_{SIRET}_2026", f"PESORMC_{OTHER_SIRET}_2026"))


def _status(store: Store) -> dict[str, dict[int, bool]]:
    """Each run's recorded Hélios status: {run: {IdBord: accepted}}."""
    return {run: {i: acks[0].accepted for i, acks in by_bord.items()}
            for run, by_bord in store.acknowledgements().items()}


def test_an_acquit_ties_to_its_own_collectivity_s_bordereau_only(db_url, tmp_path):
    """A and B both hold IdBord 1 of 2026, budget 00: A's acquit (IdColl A) is recorded
    on A's run only, B's (IdColl B, rejecting it) on B's only; neither is a
    contradiction of the other (another bordereau), and each report names its own run."""
    store = Store(db_url)
    a, b = two_collectivities(store, tmp_path)
    r = run_cli("acquit", ACCEPTED, "--db", db_url, "--record")
    assert r.exit_code == 0, r.output
    assert f"recorded: IdBord 1 exercise 2026 (line 31) of run {a}" in r.stdout
    assert b not in r.output
    assert _status(store) == {a: {1: True}}
    rejected = _acquit(tmp_path, "b.xml", False, *B_HEAD)
    r = run_cli("acquit", rejected, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert f"recorded: IdBord 1 exercise 2026 (line 31) of run {b}" in r.stdout
    assert f"pesgen runs cancel {b} " in r.stdout
    assert a not in r.output
    assert _status(store) == {a: {1: True}, b: {1: False}}
    # B's rejected bordereau cancels; A's accepted one is still refused
    assert store.cancel(b, "rejected").run.status == "cancelled"
    refused = run_cli("runs", "cancel", a, "--reason", "no", "--db", db_url)
    assert refused.exit_code == ExitCode.STATE, refused.output
    assert "the trésorerie accepted IdBord 1; nothing cancelled" in refused.stderr


def test_an_acquit_of_the_other_budget_ties_to_that_budget_s_run_only(db_url, tmp_path):
    store = Store(db_url)
    b00, b01 = two_budgets(store, tmp_path)
    ack = _acquit(tmp_path, "b01.xml", False, ('<CodBud V="00"/>', '<CodBud V="01"/>'),
                  (f"PESORMC_{SIRET}_2026", f"PESORMC_{SIRET}_B01_2026"))
    r = run_cli("acquit", ack, "--db", db_url, "--record")
    assert r.exit_code == ExitCode.REJECTED, r.output
    assert f"of run {b01}" in r.stdout and b00 not in r.output
    assert _status(store) == {b01: {1: False}}
    # --run of the other budget's run: refused, nothing recorded, though the acquit's
    # NomFic is that run's file (budget 00 in its header)
    other = _acquit(tmp_path, "b00.xml", True,
                    (f"PESORMC_{SIRET}_2026", f"PESORMC_{SIRET}_B01_2026"))
    r = run_cli("acquit", other, "--db", db_url, "--record", "--replace", "--run", b01)
    assert r.exit_code == ExitCode.STATE, r.output
    assert (f"error: b00.xml is of IdColl {SIRET} budget 00, run {b01} of IdColl {SIRET} "
            "budget 01: --run ties no acknowledgement to another collectivity's or "
            "budget's run; nothing recorded") in r.stderr
    assert _status(store) == {b01: {1: False}}


# ------------------------------------------------------------------ PayFiP


@dataclass
class Shared:
    """A store holding A's and B's runs of the example, the fake PayFiP and the receiver."""

    store: Store
    fake: object
    receiver: object
    folder: Path
    a: str
    b: str

    @property
    def endpoint(self) -> str:
        return f"{self.fake.url}/tpa"

    def mapping(self, whose: str) -> Path:
        return MAPPING if whose == "A" else self.folder / "b" / "saint-ailleurs.yaml"

    def link(self, whose: str, invoice: str = "FA-2026-00102", **kw) -> Link:
        """A link for the invoice of A's or B's title, in production (saisie W: a payment
        through it pays the invoice)."""
        kw.setdefault("mode", "W")
        return create_link(self.store, self.mapping(whose), invoice, endpoint=self.endpoint,
                           notify_url=f"{self.receiver.url}/payfip/notification",
                           timeout=TIMEOUT, **kw)

    def pay(self, link: Link, action: str = "card") -> None:
        """The family on the payment page (the fake notifies the receiver)."""
        answer = httpx.post(f"{self.endpoint}/paiementws.web",
                            data={"idop": link.id_op, "action": action}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text

    def tamper(self, link: Link, **fields: str) -> None:
        answer = httpx.post(f"{self.fake.url}/_fake/tamper",
                            json={"idop": link.id_op, "fields": fields}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text


@pytest.fixture
def shared(store, fake, receiver, tmp_path):
    return Shared(store, fake, receiver, tmp_path, *two_collectivities(store, tmp_path))


def _payments(store: Store, invoice: str = "FA-2026-00102") -> dict[str, tuple]:
    """`payfip payments`' rows of an invoice, by collectivity: (status, run, id_op)."""
    rows = [r for r in ledger.list_payments(store) if r["invoice"] == invoice]
    out = {r["collectivity"]: (r["status"], r["run"], r["id_op"]) for r in rows}
    assert len(out) == len(rows), rows
    return out


def _events(store: Store, id_coll: str) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(events.c.event).where(
            events.c.id_coll == id_coll).order_by(events.c.id)).scalars())


def test_each_collectivity_s_link_and_payment_is_its_own(shared):
    """FA-2026-00102 is A's and B's: each gets a link of its own PayFiP client (numcli),
    paying A's title leaves B's due (B still gets a link, and pays it: no
    double-payment), and `payfip payments` lists one row each, of its own run."""
    store, a, b = shared.store, shared.a, shared.b
    link_a = shared.link("A")
    shared.pay(link_a)
    assert _payments(store) == {SIRET: ("paid", a, link_a.id_op)}
    # B's title is not paid: a link is made for it, with B's numcli and B's run
    link_b = shared.link("B")
    op_b = ledger.get_operation(store, link_b.id_op)
    assert (op_b["id_coll"], op_b["numcli"], op_b["run_id"]) == (OTHER_SIRET, OTHER_NUMCLI, b)
    assert _payments(store) == {SIRET: ("paid", a, link_a.id_op),
                                OTHER_SIRET: ("pending", b, None)}
    # reconcile asks B's open operation only (A's is resolved), and leaves it pending
    assert [(o.id_op, o.action) for o in reconcile(store, default_factory(timeout=TIMEOUT))
            ] == [(link_b.id_op, "pending")]
    shared.pay(link_b)
    assert _payments(store) == {SIRET: ("paid", a, link_a.id_op),
                                OTHER_SIRET: ("paid", b, link_b.id_op)}
    assert ledger.list_anomalies(store) == []
    # A's invoice paid: A's second link is refused, said paid by A's operation
    with pytest.raises(StateError, match=link_a.id_op):
        shared.link("A")


def test_an_anomaly_shows_its_own_collectivity_s_invoice_status(shared):
    """A's FA-2026-00102 paid, B's link answered another amount: one anomaly, shown with
    B's invoice status (pending), not A's (paid)."""
    store = shared.store
    shared.pay(shared.link("A"))
    link_b = shared.link("B")
    shared.tamper(link_b, montant="100")
    shared.pay(link_b)
    [anomaly] = ledger.list_anomalies(store)
    assert (anomaly["kind"], anomaly["id_op"], anomaly["invoice_status"],
            anomaly["title_run"]) == ("amount-mismatch", link_b.id_op, "pending", shared.b)
    assert _payments(store)[OTHER_SIRET][0] == "pending"


def test_cancelling_and_reinstating_b_leaves_a_s_payfip_history_alone(shared):
    """A's FA-2026-00102 has a link open: B's run is cancelled without --despite-payments
    (the link is A's title's), and neither B's cancellation nor its reinstatement writes
    an event in A's PayFiP history."""
    store = shared.store
    shared.link("A")
    before = _events(store, SIRET)
    assert store.cancel(shared.b, "wrong file").run.status == "cancelled"
    store.reinstate(shared.b, "the right file after all")
    assert _events(store, SIRET) == before == ["created"]
    assert _events(store, OTHER_SIRET) == []


def test_a_payment_of_a_s_cancelled_title_is_not_noted_in_b_s_export(shared):
    """A's FA-2026-00102 paid online, then A's run cancelled (--despite-payments): A's
    export again notes the payment; B's export of its own FA-2026-00102 (its run
    cancelled, exported again) does not: the payment is A's."""
    store = shared.store
    shared.pay(shared.link("A"))
    store.cancel(shared.a, "wrong amounts", despite_payments=True)
    store.cancel(shared.b, "wrong amounts")
    again_b = export_recorded(lambda: store, shared.mapping("B"), INPUT,
                              shared.folder / "b2", RUN)
    assert [n for n in again_b.notes if n.policy == "payfip"] == []
    again_a = export_recorded(lambda: store, MAPPING, INPUT, shared.folder / "a2", RUN)
    assert [n.invoice for n in again_a.notes if n.policy == "payfip"] == ["FA-2026-00102"]


def test_a_left_out_invoice_is_said_of_its_own_collectivity_s_run(db_url, tmp_path):
    """FA-2026-00106 (a zero total) is left out by B's run, then by A's: asked a payment,
    each collectivity is told of its own run leaving it out, not of the latest of the
    store; a collectivity whose runs never saw it is told it is in none of its runs."""
    store = Store(db_url)
    b = export(store, other_collectivity(tmp_path / "b"), INPUT, tmp_path / "out-b")
    a = export(store, MAPPING, INPUT, tmp_path / "out-a")
    for id_coll, run, other in ((OTHER_SIRET, b, a), (SIRET, a, b)):
        with pytest.raises(StateError) as info:
            ledger.invoice_due(store, id_coll, "FA-2026-00106")
        assert f"not exported: left out by run {run} " in str(info.value)
        assert other not in str(info.value)
    third = "21450999400023"  # a third IdColl, of no run
    with pytest.raises(StateError) as info:
        ledger.invoice_due(store, third, "FA-2026-00106")
    assert str(info.value).startswith(
        f"invoice FA-2026-00106: in no active run of collectivity {third};")


def test_a_refdet_of_another_collectivity_s_invoice_is_no_clash(shared, tmp_path):
    """The refdet must name one invoice of the collectivity, or of its PayFiP client
    (docs/payfip.md): A's FA-2026-00103 (refdet FA202600103, a link made) does not
    refuse B's FA-202600103, another collectivity's of another numcli."""
    store = shared.store
    shared.link("A", "FA-2026-00103")
    store.cancel(shared.b, "renumbered")
    data = example_input(tmp_path, "b-renumbered.json")
    data.write_text(data.read_text(encoding="utf-8").replace(
        '"FA-2026-00103"', '"FA-202600103"'), encoding="utf-8")
    export(store, shared.mapping("B"), data, tmp_path / "out-b2")
    link = shared.link("B", "FA-202600103")
    assert ledger.get_operation(store, link.id_op)["refdet"] == "FA202600103"


def test_a_s_online_payment_leaves_b_s_title_in_b_s_datamatrix(shared, tmp_path):
    """A's FA-2026-00102 paid online: A's Datamatrix leaves it out (the family would pay
    it again at the tobacconist's), B's prints it: B's title is not paid."""
    from pesgen.payfip.datamatrix import write_for_run

    shared.pay(shared.link("A"))
    told: dict[str, list[str]] = {}
    for whose, run in (("A", shared.a), ("B", shared.b)):
        [written] = write_for_run(shared.store, run, tmp_path / whose, "001", image="svg",
                                  on_paid=lambda paid, w=whose: told.setdefault(
                                      w, [p["invoice"] for p in paid]))
        told.setdefault(whose, [])
        printed = written.csv.read_text(encoding="utf-8")
        assert ("FA-2026-00102" in printed) == (whose == "B"), whose
    assert told == {"A": ["FA-2026-00102"], "B": []}


def test_payments_since_a_day_list_a_cancelled_title_exported_again_by_its_own_collectivity(
        shared):
    """`payfip payments --since DAY` lists a cancelled title's payment when its invoice
    was exported again since DAY by a run of its collectivity; another collectivity's
    run holding the same number since then is not its export again."""
    from datetime import date

    from pesgen.payfip.tables import payments
    from pesgen.store import runs

    store = shared.store
    shared.link("B")
    store.cancel(shared.b, "wrong file", despite_payments=True)
    with store.engine.begin() as conn:  # changed and cancelled long before DAY
        conn.execute(payments.update().values(updated_at="2000-01-01T00:00:00Z"))
        conn.execute(runs.update().where(runs.c.id == shared.b).values(
            cancelled_at="2000-01-01T00:00:00Z"))
    day = date.fromisoformat(store.get_run(shared.a)["created_at"][:10])
    assert [r["collectivity"] for r in ledger.list_payments(store)] == [OTHER_SIRET]
    assert ledger.list_payments(store, since=day) == []
    # B exports it again: B's cancelled title's payment is listed, then B's new title
    again = export(store, shared.mapping("B"), INPUT, shared.folder / "b2")
    assert [(r["collectivity"], r["status"], r["run"])
            for r in ledger.list_payments(store, since=day)] == [
        (OTHER_SIRET, "cancelled", shared.b), (OTHER_SIRET, "pending", again)]


def test_an_abandoned_link_of_another_collectivity_is_not_noted(shared):
    """A's link of FA-2026-00102 abandoned a moment ago stays payable: A's next link says
    so, B's link of its own FA-2026-00102 does not (A's operation pays A's title)."""
    abandoned = shared.link("A")
    shared.pay(abandoned, "abandon")
    assert ledger.get_operation(shared.store, abandoned.id_op)["result_code"] == "A"
    assert shared.link("B").notes == ()
    assert [n for n in shared.link("A").notes if abandoned.id_op in n]


def test_titre_numbers_of_runs_before_the_sequence_are_each_collectivity_s(db_url, tmp_path):
    """A store whose titres runs were recorded before pesgen numbered titres over the
    exercise (no titre sequence row) starts each collectivity's titre numbers after its
    own runs' largest IdPce, not after the other's."""
    from pesgen.store import PIECE_SEQUENCE, sequences

    store = Store(db_url)
    titres = MAPPING.with_name("villeneuve-sur-loing-titres.yaml")
    other = other_collectivity(tmp_path / "b", titres)
    export(store, titres, INPUT, tmp_path / "a1")
    export(store, titres, example_input(tmp_path, "a2.json", "NA-"), tmp_path / "a2")
    export(store, other, INPUT, tmp_path / "b1")
    with store.engine.begin() as conn:  # as a pesgen before the titre sequence left it
        conn.execute(sequences.delete().where(sequences.c.typ_bord == PIECE_SEQUENCE))
    b2 = export(store, other, example_input(tmp_path, "b2.json", "NB-"), tmp_path / "b2")
    a3 = export(store, titres, example_input(tmp_path, "a3.json", "NC-", "60"),
                tmp_path / "a3")
    assert store.get_run(b2)["first_piece"] == 12  # after B's 1-11, not A's 12-22
    assert store.get_run(a3)["first_piece"] == 23


def test_numdettes_recorded_before_schema_3_are_noted_to_their_own_collectivity(
        db_url, tmp_path):
    """Active ORMC titles recorded before the store kept NumDettes are noted to an export
    of their collectivity (their NumDettes are not checked), not to another's."""
    from pesgen.store import run_invoices, schema_table

    store = Store(db_url)
    export(store, MAPPING, INPUT, tmp_path / "a1")
    with store.engine.begin() as conn:  # as recorded by a pesgen before migration 3
        conn.execute(run_invoices.update().values(debt_number=None))
        conn.execute(schema_table.update().where(schema_table.c.version == 3).values(
            applied_at="2999-01-01T00:00:00Z"))
    b = export_recorded(lambda: store, other_collectivity(tmp_path / "b"), INPUT,
                        tmp_path / "b1", RUN)
    assert [n for n in b.notes if n.policy == "store"] == []
    a = export_recorded(lambda: store, MAPPING, example_input(tmp_path, "a2.json", "NA-"),
                        tmp_path / "a2", RUN)
    [note] = [n for n in a.notes if n.policy == "store"]
    assert note.detail.startswith("11 active invoice(s) were recorded before this store")
