"""`pesgen acquit` on an acquit of many bordereaux: what it asks the state store does not
grow with the elements (an acquit of 50 000 bordereaux took minutes when each element
read its run's bordereaux again: docs/performance.md, "Reading a large acquit"); no
timing, the statements counted. On SQLite and on a real PostgreSQL server
(PESGEN_TEST_PG_URL, see test_store)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pesgen.acquit import named_run, payfip_open, read_acquit, record, tie
from pesgen.payfip import ledger
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, state_database
from .mapping_support import mapping_copy
from .test_acquit_record import RUN, _ack

COLL = "21450999400015"


def _element(bordereau: int, piece: int | None) -> str:
    """An ElementACQUIT of IdBord ``bordereau`` of 2026: accepted when ``piece`` is None,
    else rejected, naming IdPce ``piece`` and its line 1."""
    if piece is None:
        return (f'    <ElementACQUIT>\n      <DomaineAck V="7"/>\n      <EtatAck V="1"/>\n'
                f'      <NumBord V="{bordereau}"/>\n      <ExerciceBord V="2026"/>\n'
                "    </ElementACQUIT>\n")
    return (f'    <ElementACQUIT>\n      <DomaineAck V="7"/>\n      <EtatAck V="0"/>\n'
            f'      <NumBord V="{bordereau}"/>\n      <ExerciceBord V="2026"/>\n'
            '      <DetailPiece>\n'
            f'        <NumPiece V="{piece}"/>\n'
            '        <Erreur>\n          <NumAnoAck V="ERREUR_CODIFICATION"/>\n'
            '          <LibelleAnoAck V="Civilité inconnue"/>\n        </Erreur>\n'
            '        <DetailLigne>\n          <NumLigne V="1"/>\n'
            '          <Erreur>\n            <NumAnoAck V="ERREUR_AUTRE"/>\n'
            '          </Erreur>\n        </DetailLigne>\n'
            "      </DetailPiece>\n    </ElementACQUIT>\n")


class _Counted:
    """The statements a store's engine sends while in the block (``count``)."""

    def __init__(self, store: Store) -> None:
        self.engine, self.count = store.engine, 0

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def __enter__(self) -> _Counted:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: Any) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def _split(tmp_path: Path, url: str) -> tuple[Store, Path, str]:
    """The example exported a title a bordereau (11 bordereaux) into the store ``url``:
    the store, the mapping that splits it and the run."""
    store = Store(url)
    mapping = mapping_copy(tmp_path, MAPPINGS / "villeneuve-sur-loing.yaml", (
        "  asap_delay_days: 0\n", "  asap_delay_days: 0\n  max_pieces_per_bordereau: 1\n"),
        name="split1.yaml")[0]
    return store, mapping, export_recorded(
        lambda: store, mapping, EXAMPLES / "school-export.json", tmp_path / "out", RUN).run_id


def _acquit_of(tmp_path: Path, url: str, bordereaux: int) -> dict[str, Any]:
    """The example exported a title a bordereau (11 bordereaux) into the store ``url``, a
    PayFiP link open on each title, and an acquit of its first ``bordereaux`` bordereaux,
    every even one rejected naming its title: the statements of reading it (``tie``),
    recording it (``record``) and looking up its rejections' open links
    (``payfip_open``), with --run too (on a copy of the store, before recording), and
    what each rejection names."""
    store, _, run = _split(tmp_path, url)
    pieces = {n: store.piece_invoices(run, n) for n in range(1, 12)}
    for n, titles in pieces.items():
        ((_piece, invoice),) = titles.items()
        ledger.record_operation(store, {
            "id_op": f"op-{n}", "id_coll": COLL, "invoice": invoice, "run_id": run,
            "numcli": "123456", "exer": "2026", "refdet": invoice.replace("-", ""),
            "amount_cents": 100 * n, "mel": "famille@example.org", "objet": "Cantine",
            "saisie": "W", "endpoint": "http://127.0.0.1:1/"})
    ack = _ack(tmp_path, "ack.xml", *(_element(n, None if n % 2 else next(iter(pieces[n])))
                                      for n in range(1, bordereaux + 1)))
    read = read_acquit(ack)
    with _Counted(store) as by_run:
        named = tie(read, store, named_run(read, store, run))
    with _Counted(store) as reading:
        report = tie(read, store)
    with _Counted(store) as recording:
        record(report, store)
    with _Counted(store) as links:
        to_check = payfip_open(report, store)
    return {"statements": (reading.count, recording.count, links.count, by_run.count),
            "said": [(r.bordereau, r.run is not None, [(p.piece.number, p.invoice)
                                                       for p in r.pieces])
                     for r in report.elements],
            "said_by_run": [(r.bordereau, r.run is not None,
                             [(p.piece.number, p.invoice) for p in r.pieces])
                            for r in named.elements],
            "links": [(x.bordereau, x.said) for x in to_check], "pieces": pieces}


def _of_2_and_11(build: Callable[[Path, str, int], dict[str, Any]], db_url: str,
                 tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``build`` of 2 bordereaux in the store ``db_url`` and of 11 in a second store of
    the same kind: the statements of the two are compared."""
    (tmp_path / "second").mkdir()
    with state_database("sqlite" if db_url.startswith("sqlite") else "postgresql",
                        tmp_path / "second") as other:
        return build(tmp_path / "small", db_url, 2), build(tmp_path / "large", other, 11)


def test_the_statements_of_an_acquit_do_not_grow_with_its_bordereaux(db_url, tmp_path):
    """An acquit of 2 bordereaux of a run and one of 11: as many statements to read it,
    with --run, to record it and to look up its rejections' PayFiP links. Each
    rejection names its own title's invoice and its own link, as it did one query each."""
    small, large = _of_2_and_11(_acquit_of, db_url, tmp_path)
    assert small["statements"] == large["statements"]
    for got in (large, small):
        pieces = got["pieces"]
        expected = [(n, True, [] if n % 2 else list(pieces[n].items()))
                    for n in range(1, len(got["said"]) + 1)]
        assert got["said"] == expected
        assert got["said_by_run"] == expected
        assert [b for b, _ in got["links"]] == list(range(2, len(got["said"]) + 1, 2))
        for n, said in got["links"]:
            ((_piece, invoice),) = pieces[n].items()
            assert f"still open: {invoice} (operation op-{n}, " in said
            assert said.count("(operation ") == 1


class _EveryEngine(_Counted):
    """The statements every engine sends while in the block: the CLI opens a store of
    its own."""

    def __init__(self) -> None:
        self.engine, self.count = sa.engine.Engine, 0


def _shown(tmp_path: Path, url: str, rejected: int) -> dict[str, Any]:
    """The example exported a title a bordereau (11 bordereaux) into the store ``url``
    and an acquit of them recorded, its first ``rejected`` bordereaux rejected naming
    their title, the others accepted: the statements of `pesgen runs show RUN`, as text
    and as JSON, what each says of the errors, and each bordereau's invoice."""
    from .conftest import run_cli

    store, _, run = _split(tmp_path, url)
    pieces = {n: store.piece_invoices(run, n) for n in range(1, 12)}
    ack = _ack(tmp_path, "ack.xml", *(_element(n, next(iter(pieces[n])) if n <= rejected
                                               else None) for n in range(1, 12)))
    record(tie(read_acquit(ack), store), store)
    store.engine.dispose()
    with _EveryEngine() as text:
        shown = run_cli("runs", "show", run, "--db", url)
    with _EveryEngine() as as_json:
        given = run_cli("runs", "show", run, "--db", url, "--format", "json")
    assert shown.exit_code == given.exit_code == 0, (shown.output, given.output)
    import json

    return {"statements": (text.count, as_json.count), "pieces": pieces,
            "said": [line.strip() for line in shown.stdout.splitlines()
                     if "error ERREUR_" in line],
            "given": [[(e["code"], e["piece"], e["invoice"]) for e in b[
                "acknowledgements"][0]["errors"]]
                for b in json.loads(given.stdout)["run"]["helios"]]}


def test_runs_show_sends_as_many_statements_for_11_rejected_bordereaux_as_for_2(
        db_url, tmp_path):
    """`pesgen runs show` of a run two of whose bordereaux the trésorerie rejected and of
    one with eleven: as many statements, as text and as JSON (a query a rejected
    bordereau read the invoices of its pieces before). Each error names its own title's
    invoice, in both."""
    small, large = _of_2_and_11(_shown, db_url, tmp_path)
    assert small["statements"] == large["statements"]
    for got, rejected in ((small, 2), (large, 11)):
        invoice = {n: next(iter(got["pieces"][n].values())) for n in range(1, 12)}
        piece = {n: next(iter(got["pieces"][n])) for n in range(1, 12)}
        assert got["said"] == [
            f"IdPce {piece[n]} invoice {invoice[n]} {where}error {code}"
            for n in range(1, rejected + 1)
            for where, code in (("", "ERREUR_CODIFICATION: Civilité inconnue"),
                                ("IdLigne 1 ", "ERREUR_AUTRE"))]
        assert got["given"] == [
            [("ERREUR_CODIFICATION", piece[n], invoice[n]),
             ("ERREUR_AUTRE", piece[n], invoice[n])] if n <= rejected else []
            for n in range(1, 12)]


def _cancelled_half(tmp_path: Path, url: str) -> tuple[Store, str]:
    """The example exported a title a bordereau (11 bordereaux) into the store ``url``,
    the run cancelled, half its invoices exported again (every other one, a run of its
    own): the store and the cancelled run."""
    import json

    store, mapping, run = _split(tmp_path, url)
    store.cancel(run, "rejected by the school", whole=True)
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"] = data["invoices"][::2]
    half = tmp_path / "half.json"
    half.write_text(json.dumps(data), encoding="utf-8")
    export_recorded(lambda: store, mapping, half, tmp_path / "again", RUN)
    return store, run


def _accepting_cancelled(tmp_path: Path, url: str, bordereaux: int) -> dict[str, Any]:
    """``_cancelled_half`` and an acquit accepting the cancelled run's first
    ``bordereaux`` bordereaux: the statements of reading it (``tie``), what each
    acceptance says was exported again, and what ``Store.exported_again`` says of its
    bordereau alone."""
    store, run = _cancelled_half(tmp_path, url)
    ack = _ack(tmp_path, "ack.xml", *(_element(n, None) for n in range(1, bordereaux + 1)))
    read = read_acquit(ack)
    with _Counted(store) as reading:
        report = tie(read, store)
    return {"statements": reading.count,
            "said": [(r.bordereau, r.cancelled_acceptance is not None, r.again, r.again_by)
                     for r in report.elements],
            "alone": [(n, True, *store.exported_again(run, [n]))
                      for n in range(1, bordereaux + 1)]}


def test_an_acquit_accepting_cancelled_bordereaux_reads_what_holds_them_at_once(
        db_url, tmp_path):
    """An acquit accepting 2 bordereaux pesgen holds as cancelled and one accepting 11:
    as many statements to read it (what holds each one's invoices now was read a
    bordereau at a time before: 9 statements each). Each acceptance says what
    ``exported_again`` says of its bordereau alone: the runs holding its invoices, or
    none (half of them were exported again)."""
    small, large = _of_2_and_11(_accepting_cancelled, db_url, tmp_path)
    assert small["statements"] == large["statements"]
    for got in (small, large):
        alone = [(n, cancelled, count, tuple((run, tuple(sorted(bords)))
                                             for run, bords in holders.items()))
                 for n, cancelled, count, holders in got["alone"]]
        assert got["said"] == alone
        assert [count for _n, _c, count, _h in alone] == [
            1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0][:len(alone)]


def test_cancelled_bordereaux_whose_numbers_share_a_key_are_each_looked_up(db_url, tmp_path):
    """A run recorded before the guard compared keys may hold two numbers of one key
    (FA-2026-00101 and fa-2026-00101, and no NumDette: migrations 3, 5 and 6 leave them):
    one look-up of both finds one of them, so ``each_exported_again`` looks each bordereau up alone
    then, and says what ``exported_again`` says of each."""
    from pesgen.keys import invoice_key
    from pesgen.store import run_invoices

    store, run = _cancelled_half(tmp_path, db_url)
    with store.engine.begin() as conn:
        conn.execute(run_invoices.update().where(
            run_invoices.c.run_id == run, run_invoices.c.id_bord == 2).values(
            invoice="fa-2026-00101", invoice_key=invoice_key("fa-2026-00101")))
        # without NumDette (recorded before migration 3), as such a run may be: the
        # number alone says it was exported again
        conn.execute(run_invoices.update().where(
            run_invoices.c.run_id == run, run_invoices.c.id_bord.in_([1, 2])).values(
            debt_number=None))
    wanted = [(run, n) for n in (1, 2, 3, 4)]
    alone = {(r, n): store.exported_again(r, [n]) for r, n in wanted}
    assert [count for count, _ in alone.values()] == [1, 1, 1, 0]
    assert store.each_exported_again(wanted) == alone


@pytest.mark.parametrize("count", [0, 1, 2, 499, 500, 501, 1001])
@pytest.mark.parametrize("after", [{"to_check": [{"said": "x"}], "recording": None}, {}])
def test_the_json_report_written_an_element_at_a_time_is_the_same_text(count, after):
    """`acquit --json` writes its elements as they are made, 500 a write
    (``cli._json_streamed``): held as one text, 50 000 elements took 542 MiB. The text is
    the one ``_json_exit`` prints of the whole report, byte for byte: indentation, an
    empty list, the fields after the list, a URL's password masked, a character a
    terminal acts on escaped."""
    from pesgen._display import json_text
    from pesgen.cli import _json_streamed

    before = {"file": "a.xml", "warnings": [], "run": None}
    items = [{"line": n, "errors": [{"label": "é\x1b[2J"}], "pieces": [],
              "next_step": "pesgen runs cancel R --db postgresql://u:secret@h/db"}
             for n in range(count)]
    whole = json_text({"command": "acquit", "ok": False, "exit_code": 9, "error": None,
                       **before, "elements": items, **after}) + "\n"
    streamed = list(_json_streamed("acquit", 9, before, "elements", iter(items), after))
    assert "".join(streamed) == whole
    assert "secret" not in whole and "\\u001b" in whole or not count
    assert len(streamed) == count // 500 + 1


def _ormc_and_titres(tmp_path: Path, url: str) -> tuple[Store, str, str]:
    """The example exported into the store ``url`` as an ORMC rôle of a title a
    bordereau (IdBord 1 to 11 of 2026, ``_split``), then two other invoices as a titres
    run (IdBord 1 too: the two number apart, its IdPce 1 and 2), recorded as the older of
    the two: the store, the rôle's run and the titres'."""
    import json

    store, _, role = _split(tmp_path, url)
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"] = data["invoices"][2:4]
    for k, invoice in enumerate(data["invoices"]):
        invoice["number"] = f"TI-2026-0020{k}"
    part = tmp_path / "titres.json"
    part.write_text(json.dumps(data), encoding="utf-8")
    titres = export_recorded(lambda: store, MAPPINGS / "villeneuve-sur-loing-titres.yaml",
                             part, tmp_path / "titres", RUN).run_id
    from pesgen.store import runs

    with store.engine.begin() as conn:  # the titres run the older: not the table's order
        created = conn.execute(sa.select(runs.c.created_at).where(
            runs.c.id == role)).scalar_one()
        conn.execute(runs.update().where(runs.c.id == titres).values(
            created_at=f"{int(created[:4]) - 1}{created[4:]}"))
    return store, role, titres


def test_the_bordereaux_looked_up_at_once_are_each_run_s_own(db_url, tmp_path):
    """What an acquit's numbers are looked up with, all at once (``pes_bordereaux``,
    ``bordereaux_invoices``), says of each number what a look-up of it alone said: the
    runs holding it, oldest first, of that exercise, collectivity and budget only, and
    the pieces of each run's own bordereau."""
    from pesgen.store import runs

    store, role, titres = _ormc_and_titres(tmp_path, db_url)
    held = store.pes_bordereaux(COLL, "00", [(2026, 1), (2026, 3), (2026, 12)])
    assert sorted(held) == [(2026, 1), (2026, 3)]
    assert [(run, typ, b.id_bord, b.titles) for run, typ, b in held[(2026, 1)]] == [
        (titres, "01", 1, 2), (role, "06", 1, 1)]
    assert [(run, b.id_bord) for run, _typ, b in held[(2026, 3)]] == [(role, 3)]
    assert store.pes_bordereau(COLL, "00", 2026, 1) == held[(2026, 1)]
    assert store.pes_bordereaux(COLL, "01", [(2026, 1)]) == {}
    assert store.pes_bordereaux("21450999400023", "00", [(2026, 1)]) == {}
    # a number no run holds: no run's bordereaux read, as for an exercise of no run
    with _Counted(store) as none_held:
        assert store.pes_bordereaux(COLL, "00", [(2026, 12)]) == {}
    with _Counted(store) as no_run:
        assert store.pes_bordereaux(COLL, "00", [(2027, 1)]) == {}
    assert none_held.count == no_run.count
    # the titres run of 2025: each exercise's runs are read
    with store.engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.id == titres).values(exercise=2025))
    held = store.pes_bordereaux(COLL, "00", [(2026, 1), (2025, 1), (2025, 2)])
    assert {k: [run for run, _t, _b in v] for k, v in held.items()} == {
        (2025, 1): [titres], (2026, 1): [role]}
    assert store.bordereaux_invoices(role, [3, 1, 12]) == {
        1: {1: "FA-2026-00101"}, 3: {1: "FA-2026-00103"}}
    assert store.bordereaux_invoices(titres, [1]) == {
        1: {1: "TI-2026-00200", 2: "TI-2026-00201"}}


def test_cancelled_bordereaux_whose_numbers_went_out_again_otherwise_are_found_by_numdette(
        db_url, tmp_path):
    """Half the cancelled run's invoices exported again under other numbers (FB-… for
    FA-…, the same digits: the same NumDette): ``each_exported_again`` finds each by its
    NumDette, as ``exported_again`` does, and names the new run's bordereau holding it."""
    import json

    store, mapping, run = _split(tmp_path, db_url)
    store.cancel(run, "rejected by the school", whole=True)
    data = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))
    data["invoices"] = data["invoices"][:4:2]  # FA-2026-00101 and FA-2026-00103
    for invoice in data["invoices"]:
        invoice["number"] = invoice["number"].replace("FA-", "FB-")
    half = tmp_path / "half.json"
    half.write_text(json.dumps(data), encoding="utf-8")
    again = export_recorded(lambda: store, mapping, half, tmp_path / "again", RUN).run_id
    held = {invoice: n for n in (12, 13)
            for invoice in store.piece_invoices(again, n).values()}
    assert sorted(held) == ["FB-2026-00101", "FB-2026-00103"]
    wanted = [(run, n) for n in (1, 2, 3, 4)]
    expected = {(run, 1): (1, {again: {held["FB-2026-00101"]}}), (run, 2): (0, {}),
                (run, 3): (1, {again: {held["FB-2026-00103"]}}), (run, 4): (0, {})}
    assert store.each_exported_again(wanted) == expected
    assert {(r, n): store.exported_again(r, [n]) for r, n in wanted} == expected


def test_cancelled_bordereaux_of_titles_without_numdette_are_found_by_their_numbers(
        db_url, tmp_path):
    """A run recorded before migration 3 holds no NumDette: its invoices exported again
    are found by their numbers alone, the first bordereau's as the others'."""
    from pesgen.store import run_invoices

    store, run = _cancelled_half(tmp_path, db_url)
    with store.engine.begin() as conn:
        conn.execute(run_invoices.update().where(run_invoices.c.run_id == run).values(
            debt_number=None))
    wanted = [(run, n) for n in (1, 2, 3, 4)]
    said = store.each_exported_again(wanted)
    assert [said[x][0] for x in wanted] == [1, 0, 1, 0]
    assert said == {(r, n): store.exported_again(r, [n]) for r, n in wanted}
