"""The state store's guard against billing twice, under any sequence of exports,
cancellations, reinstatements and the trésorerie's acknowledgements (Hypothesis,
stateful): checked against a model of which run and bordereau holds each invoice, and
of what Hélios answered for each bordereau.

What must hold after every step:
* an export is refused exactly when one of its invoices is held by an active title,
  and then changes nothing;
* a cancellation frees exactly its bordereaux' invoices, and is refused exactly when the
  trésorerie accepted one of them and did not annul it (`--annulled-by-tresorerie`); a
  reinstatement holds them again, and is refused exactly when one of them is held
  elsewhere now, or the trésorerie rejected the bordereau or annulled its titles;
* each bordereau's Hélios status is the last acknowledgement recorded for it;
* each invoice is held by at most one active title, as the model says; a run is
  cancelled exactly when all its bordereaux are;
* bordereau numbers are given once, in order: a refused export, a cancellation or a
  reinstatement takes or gives back none.

On SQLite, and on PostgreSQL when PESGEN_TEST_PG_URL is set (always under CI, where a
missing server fails: conftest.state_database): each example on a new database, dropped
after it. The PostgreSQL machine runs fewer examples (PG_SETTINGS): its steps are slower
(25 examples took 48 s where SQLite's took 25 s), and what it adds is the dialect's own
statements (row locks, the numbering's ON CONFLICT), not other sequences; locks under
contention are test_reinstate's and test_cancel's."""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import ExitStack
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pesgen.errors import StateError
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, require_postgresql, run_cli, state_database
from .mapping_support import mapping_copy
from .test_acquit_record import _ack, _element

RUN = date(2026, 11, 23)
EXAMPLE = EXAMPLES / "school-export.json"
# six of the example's invoices (none left out), in the input's order
POOL = ["FA-2026-00101", "FA-2026-00102", "FA-2026-00103", "FA-2026-00104",
        "FA-2026-00105", "FA-2026-00107"]
PER_BORDEREAU = 2


class StoreStates(RuleBasedStateMachine):
    KIND = "sqlite"  # the store each example starts empty (conftest.state_database)

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="pesgen-states-"))
        self.database = ExitStack()
        self.store = Store(self.database.enter_context(state_database(self.KIND, self.folder)))
        self.mapping = mapping_copy(self.folder, MAPPINGS / "villeneuve-sur-loing.yaml", (
            "  asap_delay_days: 0\n",
            f"  asap_delay_days: 0\n  max_pieces_per_bordereau: {PER_BORDEREAU}\n"),
            name="split.yaml")[0]
        self.data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
        # the model: each run's bordereaux -> their invoices, the cancelled bordereaux,
        # and which (run, IdBord) holds each invoice
        self.runs: dict[str, dict[int, list[str]]] = {}
        self.cancelled: set[tuple[str, int]] = set()
        self.holder: dict[str, tuple[str, int]] = {}
        self.next_bord = 1
        self.exports = 0
        # the Hélios status last recorded for a bordereau (True: accepted), and the
        # bordereaux cancelled confirming the trésorerie's annulment of their titles
        self.ack: dict[tuple[str, int], bool] = {}
        self.annulled: set[tuple[str, int]] = set()
        self.acquits = 0

    def teardown(self) -> None:
        self.store.engine.dispose()
        self.database.close()  # a PostgreSQL database is dropped
        shutil.rmtree(self.folder, ignore_errors=True)

    def _input(self, invoices: list[str]) -> Path:
        path = self.folder / f"in-{self.exports}.json"
        path.write_text(json.dumps(dict(self.data, invoices=[
            inv for inv in self.data["invoices"] if inv["number"] in invoices]),
            ensure_ascii=False), encoding="utf-8")
        return path

    @rule(chosen=st.sets(st.sampled_from(POOL), min_size=1))
    def export(self, chosen: set[str]) -> None:
        self._export([inv for inv in POOL if inv in chosen])

    @precondition(lambda self: self.cancelled)
    @rule(data=st.data())
    def export_again(self, data: st.DataObject) -> None:
        """Some invoices of a cancelled bordereau exported again (what the cancellation
        was for), with others perhaps: what a reinstatement must then refuse."""
        run, id_bord = data.draw(st.sampled_from(self._in_order(self.cancelled)))
        some = data.draw(st.sets(st.sampled_from(self.runs[run][id_bord]), min_size=1))
        more = data.draw(st.sets(st.sampled_from(POOL)))
        self._export([inv for inv in POOL if inv in some | more])

    def _export(self, invoices: list[str]) -> None:
        held = [inv for inv in invoices if inv in self.holder]
        self.exports += 1
        try:
            result = export_recorded(lambda: self.store, self.mapping, self._input(invoices),
                                     self.folder / f"out-{self.exports}", RUN)
        except StateError as exc:
            assert held, exc
            assert sorted(p.invoice for p in exc.problems) == sorted(held)
            event("export refused")
            return
        assert not held
        event("export")
        count = -(-len(invoices) // PER_BORDEREAU)
        assert [f.bordereau for f in result.files] == list(
            range(self.next_bord, self.next_bord + count))
        self.next_bord += count
        bordereaux: dict[int, list[str]] = {}
        for t in self.store.run_titles(result.run_id):
            bordereaux.setdefault(t["id_bord"], []).append(t["invoice"])
        assert sorted(inv for invs in bordereaux.values() for inv in invs) == invoices
        self.runs[result.run_id] = bordereaux
        for id_bord, invs in bordereaux.items():
            for inv in invs:
                self.holder[inv] = (result.run_id, id_bord)

    def _in_order(self, bordereaux: set[tuple[str, int]]) -> list[tuple[str, int]]:
        """Bordereaux in the order their runs were made (their ids are random: sorted by
        them, a replayed example would draw other ones)."""
        order = {run: k for k, run in enumerate(self.runs)}
        return sorted(bordereaux, key=lambda b: (order[b[0]], b[1]))

    def _pick(self, data: st.DataObject) -> tuple[str, list[int] | None]:
        """A run of the model, and one of its bordereaux or None (all of them)."""
        run = data.draw(st.sampled_from(list(self.runs)))  # as made: ids are random
        which = data.draw(st.none() | st.sampled_from(sorted(self.runs[run])))
        return run, None if which is None else [which]

    @precondition(lambda self: self.runs)
    @rule(data=st.data(), annulled=st.booleans())
    def cancel(self, data: st.DataObject, annulled: bool) -> None:
        run, which = self._pick(data)
        every = sorted(self.runs[run])
        chosen = which or every
        if annulled and all((run, b) in self.cancelled and (run, b) not in self.annulled
                            for b in chosen):
            # cancelled already: only the trésorerie's annulment is recorded
            done = self.store.cancel(run, "model", which, whole=which is None,
                                     annulled_by_tresorerie=True)
            assert done.confirmed and list(done.bordereaux) == chosen
            self.annulled.update((run, b) for b in chosen)
            event("annulment confirmed")
            return
        live = [b for b in every if (run, b) not in self.cancelled]
        targets = live if which is None else which
        accepted = [b for b in targets if self.ack.get((run, b))]
        try:
            done = self.store.cancel(run, "model", which, whole=which is None,
                                     annulled_by_tresorerie=annulled)
        except StateError as exc:
            if not live or (which is not None and (run, which[0]) in self.cancelled):
                event("cancel refused: cancelled already")
            else:
                assert accepted and not annulled, exc
                assert [p.rule for p in exc.problems] == ["run.cancel-accepted"] * len(accepted)
                event("cancel refused: accepted")
            return
        assert live and all((run, b) not in self.cancelled for b in targets)
        assert not accepted or annulled
        assert list(done.bordereaux) == targets
        event("cancel")
        for b in targets:
            self.cancelled.add((run, b))
            if annulled:
                self.annulled.add((run, b))
            for inv in self.runs[run][b]:
                assert self.holder.pop(inv) == (run, b)

    @precondition(lambda self: self.runs)
    @rule(data=st.data(), accepted=st.booleans())
    def acknowledge(self, data: st.DataObject, accepted: bool) -> None:
        """The trésorerie's acquit of one bordereau, recorded (replacing what was)."""
        run = data.draw(st.sampled_from(list(self.runs)))
        id_bord = data.draw(st.sampled_from(sorted(self.runs[run])))
        [name] = [f["name"] for f in self.store.get_run(run)["files"]
                  if f["id_bord"] == id_bord]
        self.acquits += 1
        path = _ack(self.folder, f"ack-{self.acquits}.xml",
                    _element(id_bord, accepted, None if accepted else "ERREUR_AUTRE"),
                    nom_fic=name)
        # each file its own (a file recorded once is known by its sha256)
        path.write_text(path.read_text(encoding="utf-8") + f"<!-- {self.acquits} -->\n",
                        encoding="utf-8")
        r = run_cli("acquit", path, "--record", "--replace", "--db", self.store.url)
        cancelled = (run, id_bord) in self.cancelled
        assert r.exit_code == (9 if not accepted else
                               10 if cancelled and (run, id_bord) not in self.annulled
                               else 0), r.output
        self.ack[run, id_bord] = accepted
        event("acquit accepted" if accepted else "acquit rejected")

    @precondition(lambda self: self.runs)
    @rule(data=st.data())
    def reinstate(self, data: st.DataObject) -> None:
        run, which = self._pick(data)
        self._reinstate(run, which)

    @precondition(lambda self: self.cancelled)
    @rule(data=st.data())
    def reinstate_a_cancelled_one(self, data: st.DataObject) -> None:
        """One cancelled bordereau reinstated, its invoices perhaps exported again."""
        run, id_bord = data.draw(st.sampled_from(self._in_order(self.cancelled)))
        self._reinstate(run, [id_bord])

    def _reinstate(self, run: str, which: list[int] | None) -> None:
        gone = [b for b in sorted(self.runs[run]) if (run, b) in self.cancelled]
        targets = gone if which is None else which
        taken = [inv for b in targets for inv in self.runs[run][b] if inv in self.holder]
        annulled = [b for b in targets if (run, b) in self.annulled]
        rejected = [b for b in targets if self.ack.get((run, b)) is False]
        try:
            done = self.store.reinstate(run, "model", which, whole=which is None)
        except StateError as exc:
            if not gone or any((run, b) not in self.cancelled for b in targets):
                event("reinstate refused: nothing to reinstate")
                return
            assert taken or annulled or rejected, exc
            rules = [p.rule for p in exc.problems]
            assert rules == (["run.reinstate-annulled"] * len(annulled)
                             + ["run.reinstate-rejected"] * len(rejected)
                             + ["run.reinstate-taken"] * len(taken)), rules
            assert sorted(p.invoice for p in exc.problems if p.invoice) == sorted(taken)
            event("reinstate refused: " + ", ".join(
                why for why, some in [("taken", taken), ("annulled", annulled),
                                      ("rejected", rejected)] if some))
            return
        event("reinstate")
        assert gone and all((run, b) in self.cancelled for b in targets)
        assert not taken and not annulled and not rejected
        assert list(done.bordereaux) == targets
        for b in targets:
            self.cancelled.discard((run, b))
            for inv in self.runs[run][b]:
                self.holder[inv] = (run, b)

    @invariant()
    def the_store_holds_what_the_model_does(self) -> None:
        for run, bordereaux in self.runs.items():
            for t in self.store.run_titles(run):
                assert t["active"] == (self.holder.get(t["invoice"]) == (run, t["id_bord"]))
            record = self.store.get_run(run)
            all_cancelled = all((run, b) in self.cancelled for b in bordereaux)
            assert record["status"] == ("cancelled" if all_cancelled else "committed")
            if not all_cancelled:
                assert sorted(record["cancelled_bordereaux"]) == sorted(
                    b for b in bordereaux if (run, b) in self.cancelled)
        for inv in POOL:
            found = [f for f in self.store.find_invoice(inv) if f["active"]]
            assert [(f["run_id"], f["id_bord"]) for f in found] == (
                [self.holder[inv]] if inv in self.holder else [])

    @invariant()
    def each_bordereau_s_helios_status_is_the_last_recorded(self) -> None:
        status = self.store.acknowledgements(list(self.runs))
        assert {(run, b): acks[0].accepted for run, by_bord in status.items()
                for b, acks in by_bord.items()} == self.ack

    @invariant()
    def numbers_are_given_once_in_order(self) -> None:
        states = self.store.sequences()
        if self.next_bord == 1:
            assert states == []
        else:
            [state] = states
            assert (state.next_number, state.given_up_to) == (self.next_bord,
                                                               self.next_bord - 1)


SETTINGS = settings(max_examples=25, stateful_step_count=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
StoreStates.TestCase.settings = SETTINGS
TestStoreStates = StoreStates.TestCase


class StoreStatesOnPostgreSQL(StoreStates):
    KIND = "postgresql"  # a new database each example, dropped after it


# 15 examples of 12 steps: about 30 s on two cores (a database created and dropped each)
PG_SETTINGS = settings(SETTINGS, max_examples=15)


def test_store_states_on_postgresql() -> None:
    require_postgresql()
    run_state_machine_as_test(StoreStatesOnPostgreSQL, settings=PG_SETTINGS)
