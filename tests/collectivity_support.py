"""One state store shared by two collectivities, or by two budgets of one: mappings made
from mappings/villeneuve-sur-loing.yaml for another collectivity (another SIRET, IdPost,
CodCol, LibelleColBud, PayFiP client) and for another budget (CodBud) of the same one,
and the example exported for both into one store (docs/state.md: numbering per SIRET,
budget, exercise and TypBord; the duplicate guard per collectivity, across its budgets
and exercises)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS
from .mapping_support import mapping_copy
from .test_audit_rules import _input

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
RUN = date(2026, 11, 23)
SIRET = "21450999400015"
# the other collectivity of docs/state.md's acquit example (COMMUNE DE SAINT-AILLEURS):
# a SIRET whose Luhn checksum holds (python-stdnum's stdnum.fr.siret.is_valid), as
# collectivity.siret requires
OTHER_SIRET = "21750001600019"
OTHER_NUMCLI = "054321"


def other_collectivity(folder: Path, source: Path = MAPPING) -> Path:
    """The example mapping (``source``: another of the example's, e.g. its titres one)
    for another collectivity: every identifier of it in the files (IdColl, IdPost,
    CodCol, LibelleColBud) and its PayFiP client are its own; its budget (00), exercise,
    format and bindings are the example's."""
    return mapping_copy(
        folder, source,
        ("name: Commune de Villeneuve-sur-Loing", "name: Commune de Saint-Ailleurs"),
        (f'siret: "{SIRET}"', f'siret: "{OTHER_SIRET}"'),
        ('id_post: "045012"', 'id_post: "075001"'),
        ('cod_col: "123"', 'cod_col: "456"'),
        ("budget_label: COMMUNE DE VILLENEUVE SUR LOING",
         "budget_label: COMMUNE DE SAINT-AILLEURS"),
        ('payfip_client: "012345"', f'payfip_client: "{OTHER_NUMCLI}"'),
        name="saint-ailleurs.yaml" if source == MAPPING else f"saint-ailleurs-{source.name}"
    )[0]


def other_budget(folder: Path, cod_bud: str = "01") -> Path:
    """The example mapping for another budget (CodBud) of the same collectivity (an
    annexe budget: a conservatoire), with its own régie (PayFiP client)."""
    return mapping_copy(folder, MAPPING, ('cod_bud: "00"', f'cod_bud: "{cod_bud}"'),
                        ('payfip_client: "012345"', f'payfip_client: "{OTHER_NUMCLI}"'),
                        name=f"villeneuve-b{cod_bud}.yaml")[0]


def renumbered(prefix: str, series: str = "50"):
    """An edit of the example's invoices (``test_audit_rules._input``): their numbers in
    another series (``FA-2026-00101`` -> ``CO-2026-50101``, ``series`` the two digits
    after the year: other digits too, the NumDette is made of them, and a NumDette is
    unique in the collectivity)."""
    def edit(invoices):
        for inv in invoices:
            inv["number"] = inv["number"].replace("FA-2026-00", f"{prefix}2026-{series}")
    return edit


def example_input(folder: Path, name: str, prefix: str | None = None, series: str = "50",
                  keep=lambda number: True) -> Path:
    """The example input written to ``folder/name``: with ``prefix``, its invoices
    renumbered (``renumbered``); ``keep``: only the invoices whose number (as the example
    writes it) it keeps."""
    def edit(invoices):
        invoices[:] = [inv for inv in invoices if keep(inv["number"])]
        if prefix is not None:
            renumbered(prefix, series)(invoices)

    folder.mkdir(parents=True, exist_ok=True)
    return _input(folder, edit, name)


def export(store: Store, mapping: Path, input_path: Path, out: Path) -> str:
    """``input_path`` exported with ``mapping`` into ``store``: the run's id."""
    return export_recorded(lambda: store, mapping, input_path, out, RUN).run_id


def two_collectivities(store: Store, folder: Path) -> tuple[str, str]:
    """The example exported, the same input, for the example's collectivity (A) and for
    another (B, ``other_collectivity``) into ``store``: their run ids (A's, B's). Both
    hold invoices FA-2026-00101… and their NumDettes, each in its IdBord 1."""
    return (export(store, MAPPING, INPUT, folder / "out-a"),
            export(store, other_collectivity(folder / "b"), INPUT, folder / "out-b"))


def two_budgets(store: Store, folder: Path) -> tuple[str, str]:
    """The example exported for the example's budget 00, and, renumbered (``CO-``:
    invoice numbers are unique in the collectivity across its budgets), for its budget
    01 (``other_budget``) into ``store``: their run ids (00's, 01's)."""
    return (export(store, MAPPING, INPUT, folder / "out-00"),
            export(store, other_budget(folder / "b01"),
                   example_input(folder, "b01.json", "CO-"), folder / "out-01"))
