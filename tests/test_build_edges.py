"""Building titles at the edges the other tests leave: each test pins a behaviour of
``pesgen.build`` where a small change to its code (a condition dropped or negated, a
constant off by one, a call left out) went unnoticed by the rest of the suite. Found by
mutation testing of ``pesgen/build.py``; each test says what it pins."""

from __future__ import annotations

import json
from datetime import date

from pesgen.export import export

from .conftest import EXAMPLES, RUN_DATE
from .test_cli import _without_civility_table

EXAMPLE = json.loads((EXAMPLES / "school-export.json").read_text(encoding="utf-8"))


def test_the_civility_note_names_five_values_then_says_there_are_more(tmp_path):
    """run_notes: without codes.civility, the run's one note counts every civility sent
    as written and names the first five seen, in input order, then '…'."""
    mapping, source = _without_civility_table(tmp_path)
    data = json.loads(source.read_text(encoding="utf-8"))
    titles = iter(["Mme", "M.", "M", "Dr", "Pr", "Me", "Mgr"])
    for inv in data["invoices"]:
        if inv["payer"]["kind"] == "person" and inv["payer"].get("title"):
            inv["payer"]["title"] = next(titles, "Mme")
    source.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = export(mapping, source, tmp_path / "out", date.fromisoformat(RUN_DATE))
    assert [n.detail for n in result.notes if n.policy == "civility_table"] == [
        "no codes.civility table: 7 civility value(s) sent as written: Mme, M., M, Dr, Pr, …"]
