"""Paiement de proximité: the Datamatrix of each ORMC title, as text and as an image.

UNCONFIRMED LAYOUT. The DGFiP specification of this Datamatrix was not found; layout
1 below is the only public one (a family-billing software that says the DGFiP
validated it), as summarised in pesgen's research notes (pes-v2-recette.md §13).
It is kept behind ``payload(title, version=…)`` so a confirmed layout can be added
as version 2 without touching callers, and every file written names its version.

Layout 1, 130 characters (positions 1-based):

====== =====================================================================
1-64   spaces (40 "données métiers" + 24)
65-67  code établissement: 3 digits, or 2 letters as (L1-A)*26 + (L2-A) + 1
68     Per of the title
69-71  first 2 characters of CodProdLoc, converted like 65-67
72-73  ``00``
74-75  last 2 digits of Exer
76     key: last digit of 11 - (int(65-75) mod 11)
77-82  code émetteur (``940033`` in the public implementation)
83-86  ``0001``
87-88  key: sum of rank x digit over 77-86 read from the right, mod 100
89     space
90-91  key: the same over 92-116
92-115 Cle2 as 2 digits (A=01 … Y=23) + NumDette on 15 digits + IdPost on 6 + ``4``
116    ``9``
117-118 key: (119-121 weighted 11, 10, 9) + (123-130 weighted 8 … 1; spaces 0), mod 100
119    ``8``
120-121 ``06``
122    space
123-130 amount in cents, right-aligned on 8 characters
====== =====================================================================
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from lxml import etree

from .._csv import text_cell
from ..atomic import commit, discard, stage
from ..errors import OutputInvalidError, Problem, StateError, UsageError
from ..keys import invoice_key
from ..store import Store, chunks, run_invoices
from .ledger import Unsettled, paid_by_key, rejected_bordereaux, unsettled_payments
from .models import to_cents

LATEST = 1
# what `payfip datamatrix` writes per bordereau file <stem>: the CSV, the images' folder
CSV_SUFFIX = ".datamatrix.csv"
IMAGES_SUFFIX = ".datamatrix"
_CLE2_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXY"


@dataclass(frozen=True)
class DatamatrixTitle:
    """What a title's Datamatrix is made of, as the ORMC file and the run hold it."""

    invoice: str
    exercise: int
    id_bord: int
    id_pce: int
    per: str
    num_dette: str
    cle2: str
    product: str  # CodProdLoc of the title's first line
    id_post: str
    amount_cents: int


_CHUNK = 500  # values a query (invoice keys, operations)


def letter_pair(code: str, what: str) -> str:
    """3 digits: a numeric code as is, 2 letters AA=001 … ZZ=676."""
    code = code.strip().upper()
    if code.isdigit() and len(code) <= 3:
        return code.zfill(3)
    if len(code) == 2 and re.match(r"^[A-Z]{2}$", code):
        return f"{(ord(code[0]) - 65) * 26 + (ord(code[1]) - 65) + 1:03d}"
    raise ValueError(f"{what} '{code}' is neither up to 3 digits nor 2 letters")


def _ranked(text: str, first: int = 1) -> int:
    """Sum of rank x digit read from the right, ranks from ``first``; spaces count 0."""
    return sum((first + i) * (0 if ch == " " else int(ch))
               for i, ch in enumerate(reversed(text)))


def payload_v1(t: DatamatrixTitle, code_etablissement: str,
               code_emetteur: str = "940033") -> str:
    """Layout 1 (UNCONFIRMED, see the module docstring). Raises ValueError when a value
    cannot be laid out."""
    if not re.match(r"^[0-9]{6}$", code_emetteur):
        raise ValueError(f"code émetteur '{code_emetteur}' must be 6 digits")
    if not re.match(r"^[0-9]{6}$", t.id_post):
        raise ValueError(f"IdPost '{t.id_post}' must be 6 digits for this layout")
    if not re.match(r"^[0-9]$", t.per):
        raise ValueError(f"Per '{t.per}' must be one digit")
    if not t.num_dette.isdigit() or len(t.num_dette) > 15:
        raise ValueError(f"NumDette '{t.num_dette}' must be up to 15 digits")
    if t.cle2 not in _CLE2_LETTERS or len(t.cle2) != 1:
        raise ValueError(f"Cle2 '{t.cle2}' is not a key letter")
    if not 0 < t.amount_cents <= 99_999_999:
        raise ValueError(f"amount {t.amount_cents} cents does not fit 8 characters")
    head = (letter_pair(code_etablissement, "code établissement") + t.per
            + letter_pair(t.product[:2], "CodProdLoc") + "00" + f"{t.exercise % 100:02d}")
    key76 = str(11 - int(head) % 11)[-1]
    emitter = code_emetteur + "0001"
    key87 = f"{_ranked(emitter) % 100:02d}"
    reference = (f"{_CLE2_LETTERS.index(t.cle2) + 1:02d}{int(t.num_dette):015d}"
                 f"{t.id_post}4")
    key90 = f"{_ranked(reference + '9') % 100:02d}"
    amount = f"{t.amount_cents:>8d}"
    key117 = f"{(_ranked('806', 9) + _ranked(amount)) % 100:02d}"
    text = (" " * 64 + head + key76 + emitter + key87 + " " + key90 + reference + "9"
            + key117 + "806" + " " + amount)
    assert len(text) == 130, len(text)
    return text


PAYLOADS: dict[int, Callable[..., str]] = {1: payload_v1}


def payload(t: DatamatrixTitle, code_etablissement: str, code_emetteur: str = "940033",
            version: int = LATEST) -> str:
    """The Datamatrix text of one title in a given layout version."""
    try:
        fn = PAYLOADS[version]
    except KeyError:
        raise ValueError(f"unknown Datamatrix layout version {version} "
                         f"(known: {', '.join(map(str, PAYLOADS))})") from None
    return fn(t, code_etablissement, code_emetteur)


def svg(text: str, cell: int = 3) -> str:
    from pystrich.datamatrix import DataMatrixData, DataMatrixEncoder

    return DataMatrixEncoder(DataMatrixData(text, encoding="ascii")).get_svg(cellsize=cell)


def png(text: str, cell: int = 4) -> bytes:
    from pystrich.datamatrix import DataMatrixData, DataMatrixEncoder

    return DataMatrixEncoder(DataMatrixData(text, encoding="ascii")).get_imagedata(
        cellsize=cell)


# ---------------------------------------------------------------------- from a run


def titles_of_file(path: Path, invoices: dict[tuple[int, int], tuple[str, str]]
                   ) -> Iterator[DatamatrixTitle]:
    """The titles of one PES ORMC file, joined to the run's invoices by (IdBord, IdPce)."""
    id_post, exercise, id_bord = "", 0, 0
    parser = etree.iterparse(str(path), events=("end",), tag=("IdPost", "Exer", "IdBord",
                                                              "Piece"),
                             resolve_entities=False, no_network=True, load_dtd=False)
    for _event, el in parser:
        if el.tag == "IdPost" and not id_post:
            id_post = el.get("V", "")
        elif el.tag == "Exer" and not exercise:
            exercise = int(el.get("V", "0"))
        elif el.tag == "IdBord" and not id_bord:
            id_bord = int(el.get("V", "0"))
        elif el.tag == "Piece":
            def v(xpath: str, piece: etree._Element = el) -> str:
                found = piece.find(xpath)
                return found.get("V", "") if found is not None else ""
            id_pce = int(v("BlocPiece/IdPce") or 0)
            invoice, amount = invoices.get((id_bord, id_pce), ("", "0"))
            yield DatamatrixTitle(
                invoice=invoice, exercise=exercise, id_bord=id_bord, id_pce=id_pce,
                per=v("BlocPiece/Per"), num_dette=v("BlocPiece/NumDette"),
                cle2=v("BlocPiece/Cle2"),
                product=v("LigneDePiece/BlocLignePiece/InfoLignePiece/CodProdLoc"),
                id_post=id_post, amount_cents=to_cents(amount, invoice))
            el.clear()


@dataclass(frozen=True)
class Written:
    csv: Path
    images: list[Path]
    invoices: tuple[str, ...] = ()  # the titles drawn, in the CSV's order


@dataclass(frozen=True)
class Skipped:
    """A cancelled bordereau of the run, or one the trésorerie rejected (``rejected``:
    its recorded acknowledgement, `pesgen acquit --record`): no Datamatrix for its
    titles (the trésorerie does not hold them, so a family must not pay them).
    ``cover`` says which cancellation or rejection covers them; ``earlier``: a
    Datamatrix CSV written for it before, still there (left as it is)."""

    id_bord: int
    invoices: tuple[str, ...]
    cover: str
    earlier: Path | None = None
    rejected: bool = False
    # the name of the acquit the rejection was recorded from (the store keeps no folder)
    acquit: str | None = None


def _cover(run: dict[str, Any], id_bord: int) -> str:
    """The cancellation that covers a bordereau of the run: its own (`runs cancel
    --bordereau`), else the run's."""
    own = run.get("cancelled_bordereaux", {}).get(id_bord)
    if own is not None:
        return f"cancelled on {own['cancelled_at']} ({own['reason']})"
    return f"cancelled with the run on {run['cancelled_at']} ({run['cancel_reason']})"


def _paid_online(store: Store, run: dict[str, Any], invoices: list[str]
                 ) -> dict[str, dict[str, Any]]:
    """The titles of the run (``invoices``, as it wrote them) whose invoice PayFiP shows
    paid: invoice -> the payment (amount, when, operation, and ``through``: the run of
    the title it paid, when not this one: a cancelled title's, the invoice exported
    again since). A payment through a cancelled title is the family's money all the
    same: a Datamatrix of the title exported in its place would let it pay again. The
    payments are those ``payfip link`` reads (``ledger.paid_by_key``: looked up by
    their invoice's key in an index, the earliest paid of a key), then the run of each
    one's operation, ``_CHUNK`` operations a query. Before, every paid payment of the
    collectivity was read for each run's Datamatrix, and of two paid rows of one key
    (an invoice written otherwise) whichever the database gave last was said."""
    from .tables import operations

    found = paid_by_key(store, run["id_coll"], invoices, chunk=_CHUNK)
    ids = sorted({p["id_op"] for p in found.values() if p["id_op"] is not None})
    query = sa.select(operations.c.id_op, operations.c.run_id).where(
        operations.c.id_op.in_(sa.bindparam("ids", expanding=True)))
    run_of: dict[str, str] = {}
    with store.engine.connect() as conn:
        for part in chunks(ids, _CHUNK):
            run_of.update(conn.execute(query, {"ids": part}).all())
    out: dict[str, dict[str, Any]] = {}
    for written in invoices:
        p = found.get(invoice_key(written))
        if p is None:
            continue
        # the title the money paid: the one the trésorerie applied it to, else the
        # operation's (``tables.paid_title_run``, here in Python)
        paid_run = p["applied_run"] if p["applied_run"] is not None else run_of.get(
            p["id_op"])
        out[written] = {"invoice": written, "paid_cents": p["paid_cents"],
                        "paid_at": p["paid_at"], "id_op": p["id_op"],
                        "through": None if paid_run == run["id"] else paid_run}
    return out


def image_name(invoice: str | None, id_pce: int, used: set[str]) -> str:
    """The file name (without extension) of a title's Datamatrix image: the invoice
    number with what a file name cannot hold replaced by '_'. Two invoices that give the
    same name (``FA/1`` and ``FA_1``, or ``fa_1`` on a file system blind to case) never
    share one: the second takes its IdPce too. ``used`` collects the names given."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", invoice or f"piece-{id_pce}")
    while name.lower() in used:
        name = f"{name}-{id_pce}"
    used.add(name.lower())
    return name


def write_for_run(store: Store, run_id: str, out_dir: Path | None, code_etablissement: str,
                  code_emetteur: str = "940033", version: int = LATEST,
                  image: str = "svg",
                  on_skipped: Callable[[Skipped], None] | None = None,
                  on_paid: Callable[[list[dict[str, Any]]], None] | None = None,
                  on_unsettled: Callable[[str, list[Unsettled]], None] | None = None
                  ) -> list[Written]:
    """Per file of the run: ``<stem>.datamatrix.csv`` (invoice, layout, payload) and one
    image per title in ``<stem>.datamatrix/``, beside the payment references by
    default. Every title is checked first; on any problem nothing is written.

    A cancelled title (its bordereau or its run cancelled: ``runs cancel``) gets no
    Datamatrix, nor does a title of a bordereau the trésorerie rejected (its recorded
    acknowledgement): the files of its bordereau are skipped, each told to
    ``on_skipped`` (before anything is written); a run with no title left is refused
    (StateError).
    Nor does a title paid online through PayFiP (the family would pay it again at the
    tobacconist's): left out of its file's CSV, the payments told to ``on_paid``; nor
    one whose invoice was paid through its cancelled title's link after the cancellation,
    the trésorerie's answer not recorded yet (a `run-cancelled` anomaly not resolved:
    ``ledger.unsettled_payments``, as `payfip link` refuses it), left out likewise, each
    told to ``on_unsettled`` (invoice, payments)."""
    run = store.get_run(run_id)
    if run["typ_bord"] != "06":
        # the payment reference (NumDette, Per, Cle2) is a rôle's: only an ORMC carries it
        raise UsageError(f"run {run['id']} is a {run['format']} export: the Datamatrix is "
                         "printed for the titles of a PES ORMC (rôle, TypBord 06) run")
    source = Path(run["out_dir"])
    target = Path(out_dir) if out_dir else source
    with store.engine.connect() as conn:
        rows_ = conn.execute(sa.select(run_invoices).where(
            run_invoices.c.run_id == run["id"]).order_by(run_invoices.c.id_bord,
                                                         run_invoices.c.id_pce)).all()
    # a title is cancelled when its row is no longer active (its bordereau or its run
    # cancelled): the trésorerie will never see it, so no payment reference is printed
    invoices = {(r.id_bord, r.id_pce): (r.invoice, r.amount) for r in rows_ if r.active}
    dead = {(r.id_bord, r.id_pce) for r in rows_ if not r.active}
    live = {r.id_bord for r in rows_ if r.active}
    cancelled: dict[int, list[str]] = {}
    for r in rows_:
        if not r.active:
            cancelled.setdefault(r.id_bord, []).append(r.invoice)
    skipped = [Skipped(b, tuple(invs), _cover(run, b)) for b, invs in sorted(cancelled.items())]
    if cancelled and not live:
        raise StateError(
            f"run {run['id']}: every title is cancelled; no Datamatrix written (a family must "
            f"not pay a cancelled title): `pesgen runs show {run['id']}` says what was "
            "cancelled", [Problem("payfip.cancelled", f"IdBord {s.id_bord} {s.cover}: "
                                  f"{len(s.invoices)} title(s)") for s in skipped])
    # a bordereau still active the trésorerie rejected (its Hélios status, `pesgen acquit
    # --record`): its titles are not in Hélios, a Datamatrix would pay nothing it holds
    rejected = rejected_bordereaux(store, run["id"], live)
    for b, ack in sorted(rejected.items()):
        skipped.append(Skipped(b, tuple(r.invoice for r in rows_ if r.active and r.id_bord == b),
                               f"rejected by the trésorerie: {ack.outcome} ({ack.file}), "
                               "not cancelled yet", rejected=True, acquit=ack.file))
    skipped.sort(key=lambda s: s.id_bord)
    if rejected and not live - set(rejected):
        raise StateError(
            f"run {run['id']}: no title the trésorerie holds: every one is cancelled or in a "
            "bordereau it rejected; no Datamatrix written (a family must not pay a title "
            f"the trésorerie does not hold): `pesgen runs show {run['id']}` says which",
            [Problem("payfip.rejected" if s.rejected else "payfip.cancelled",
                     f"IdBord {s.id_bord} {s.cover}: {len(s.invoices)} title(s)")
             for s in skipped])
    paid = _paid_online(store, run, [r.invoice for r in rows_ if r.active])
    # paid through the link of its cancelled title after the cancellation, not settled
    unsettled = unsettled_payments(store, run["id_coll"])  # open anomalies: few
    owed = {r.invoice: unsettled[key] for r in rows_ if r.active and r.invoice not in paid
            and (key := invoice_key(r.invoice)) in unsettled} if unsettled else {}
    problems: list[Problem] = []
    plans: list[tuple[str, list[tuple[DatamatrixTitle, str]]]] = []
    for f in run["files"]:
        if f["id_bord"] is None:  # the payment references CSV, not a bordereau
            continue
        if f["id_bord"] in cancelled and f["id_bord"] not in live:
            continue  # a cancelled bordereau: said through on_skipped
        if f["id_bord"] in rejected:
            continue  # a bordereau the trésorerie rejected: said through on_skipped
        path = source / f["name"]
        if not path.is_file():
            problems.append(Problem("payfip.datamatrix", f"{path}: file of run {run['id']} not "
                                    "found (rebuild it with `pesgen regenerate`)"))
            continue
        rows = []
        for t in titles_of_file(path, invoices):
            if (t.id_bord, t.id_pce) in dead:
                continue  # a cancelled title (its row is not active)
            if t.invoice in paid:
                continue  # paid online: told through on_paid
            if t.invoice in owed:
                continue  # paid through its cancelled title: told through on_unsettled
            try:
                rows.append((t, payload(t, code_etablissement, code_emetteur, version)))
            except ValueError as exc:
                problems.append(Problem("payfip.datamatrix", f"title {t.id_pce} of "
                                        f"{f['name']}: {exc}", invoice=t.invoice or None))
        plans.append((Path(f["name"]).stem, rows))
    if problems:
        raise OutputInvalidError(f"run {run['id']}: Datamatrix not written", problems)
    if on_skipped is not None:
        stems = {f["id_bord"]: Path(f["name"]).stem for f in run["files"]
                 if f["id_bord"] is not None}
        for s in skipped:
            earlier = target / f"{stems.get(s.id_bord, '?')}{CSV_SUFFIX}"
            on_skipped(Skipped(s.id_bord, s.invoices, s.cover,
                               earlier if s.id_bord in stems and earlier.is_file() else None,
                               s.rejected, s.acquit))
    if on_paid is not None and paid:
        on_paid([paid[k] for k in sorted(paid)])
    if on_unsettled is not None:
        for invoice in sorted(owed):
            on_unsettled(invoice, owed[invoice])
    # every file staged first, then all renamed into place: a failure leaves the files
    # of an earlier call as they were (or none) and no temporary file
    created = [d for d in (target, *(target / f"{stem}{IMAGES_SUFFIX}" for stem, _ in plans))
               if not d.exists()]
    temps: list[tuple[Path, Path]] = []
    written = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for stem, rows in plans:
            folder = target / f"{stem}{IMAGES_SUFFIX}"
            folder.mkdir(exist_ok=True)
            buffer = io.StringIO()
            out = csv.writer(buffer, delimiter=";", lineterminator="\n")
            out.writerow(["invoice", "id_bord", "id_pce", "layout", "payload", "image"])
            images = []
            used: set[str] = set()
            for t, text in rows:
                name = image_name(t.invoice, t.id_pce, used)
                if image in ("svg", "both"):
                    images.append(folder / f"{name}.svg")
                    stage(temps, images[-1], [svg(text).encode("utf-8")], like=images[-1])
                if image in ("png", "both"):
                    images.append(folder / f"{name}.png")
                    stage(temps, images[-1], [png(text)], like=images[-1])
                # the invoice number and the image's name from it: text of the input
                out.writerow([text_cell(t.invoice), t.id_bord, t.id_pce,
                              f"{version} (UNCONFIRMED)", text, text_cell(
                                  f"{folder.name}/{name}.{'png' if image == 'png' else 'svg'}")])
            path = target / f"{stem}{CSV_SUFFIX}"
            stage(temps, path, [buffer.getvalue().encode("utf-8")], like=path)
            written.append(Written(path, images, tuple(t.invoice for t, _ in rows)))
        commit(temps, overwrite=True)
    except BaseException:
        discard(temps)
        for folder in reversed(created):
            with contextlib.suppress(OSError):  # only if still empty
                folder.rmdir()
        raise
    return written


def drawn_in_place(run: dict[str, Any], bordereaux: Collection[int]) -> list[str]:
    """The Datamatrix CSV and image folders of these bordereaux of a run still in its
    output folder (where `payfip datamatrix` writes them unless ``-o``), as this machine
    sees it: printed, they let a family pay a title that is cancelled. Folders end with
    ``/``."""
    if not run.get("out_dir"):
        return []
    folder = Path(run["out_dir"])
    found = []
    for f in run["files"]:
        if f["id_bord"] is None or f["id_bord"] not in bordereaux:
            continue
        stem = Path(f["name"]).stem
        for name, there in ((f"{stem}{CSV_SUFFIX}", Path.is_file),
                            (f"{stem}{IMAGES_SUFFIX}", Path.is_dir)):
            try:
                if there(folder / name):
                    found.append(name + ("/" if there is Path.is_dir else ""))
            except OSError:  # a name the suffix makes too long (255 bytes): never written
                continue
    return found
