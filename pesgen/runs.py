"""Recorded exports: allocate numbers, guard against duplicates, keep what each run
used, regenerate a run byte for byte, and write out what it used (``extract_run``).

``export_recorded`` wraps the export's second phase in one store transaction:
lock the sequence, check no active run holds the invoices, assemble and validate
with the allocated IdBord, record the run, commit; then rename the files into place.
A crash after the commit leaves a recorded run (its number used once) whose files
``regenerate`` writes again; never a file whose number the next run would reuse.

A dry run (``dry_run``) goes through the same stages and checks on the whole input,
the store's included, with the numbers the export would take next, read without
allocating them; its files are rendered and validated in a private temporary folder,
always removed, and nothing is written, recorded or created.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from . import __version__
from ._display import ACQUIT_FILE
from .atomic import (
    check_free,
    commit,
    discard,
    filled_folder,
    refuse_filled,
    removed_if_refused,
    write_file,
)
from .build import LeftOut, PolicyNote
from .errors import (
    InputDataError,
    MappingError,
    PesgenError,
    Problem,
    RecordConflict,
    StateError,
    StoreLocked,
    TemplateError,
    TemplateStopped,
    UsageError,
)
from .export import Exporter, ExportResult, Prepared, open_exporter
from .figures import RunInvoices, TitleFigures
from .formats import Format, load_format
from .keys import Held, debt_key, invoice_key, written_otherwise
from .mapping import Mapping, load_recorded_mapping
from .render import MAX_FILE_NAME
from .resources import inside
from .seen import SeenInvoices
from .sources import shown_input
from .store import (
    _FIRST_NUMBER,
    ID_BORD_MAX,
    ID_PCE_MAX,
    PIECE_SEQUENCE,
    Acknowledgement,
    Store,
    Unsent,
    db_said,
    fields_of,
    new_run_id,
    pack,
    pack_file,
    pack_json,
    pack_notes,
    unpack,
    unpacked,
    utc_now,
)

SequenceKey = tuple[str, str, int, str]


def sequence_key(mapping: Mapping, fmt: Format,
                 exercise: int | None = None) -> SequenceKey:
    """The numbering sequence a run of this mapping and format draws from: per SIRET,
    budget, exercise and TypBord (the format's ``defaults.typ_bord``, else its name)."""
    c = mapping.collectivity
    typ = fmt.defaults.get("typ_bord") or fmt.name
    return (c.siret, c.cod_bud, c.exercise if exercise is None else exercise, str(typ))


def check_exercise(exercise: int | None) -> None:
    """Refuse an exercise (``numbering set-start --exercise``) the mapping schema
    refuses as collectivity.exercise: a typo (202, -5, 0) would set another exercise's
    sequence and leave the real one unset, to start at 1. None: the mapping's."""
    if exercise is None:
        return
    from ._schema import load_schema

    bounds = load_schema("mapping.schema.json")["properties"]["collectivity"][
        "properties"]["exercise"]
    low, high = bounds["minimum"], bounds["maximum"]
    if not low <= exercise <= high:
        raise UsageError(f"--exercise {exercise}: an exercise is a year from {low} to {high} "
                         "(as the mapping's collectivity.exercise); nothing set")


def piece_key(mapping: Mapping, fmt: Format, exercise: int | None = None) -> SequenceKey | None:
    """The sequence of the titre numbers (IdPce) a run of a format numbering its pieces
    over the exercise draws from (format.yaml ``numbering.pieces: per-exercise``): one
    per SIRET, budget and exercise, whatever the TypBord, the safe reading of the DGFiP's
    (docs/state.md, Numbering); None for a format numbering them in each bordereau."""
    if not fmt.pieces_per_exercise:
        return None
    c = mapping.collectivity
    return (c.siret, c.cod_bud, c.exercise if exercise is None else exercise, PIECE_SEQUENCE)


def _next_piece(store: Store, key: SequenceKey) -> int:
    """The next titre number of a sequence, read without locking nor creating it."""
    with store.reading() as conn:
        return store.next_number(conn, key)


def _refuse_past_bordereaux(key: SequenceKey, first: int, bordereaux: int) -> None:
    """Refuse a run whose bordereaux would take IdBord (the rôle number) past Base_Num7
    (nothing written, no number used), rather than leave the file name's template or
    the XSD to refuse the number, blaming the format."""
    _refuse_past(key, first, bordereaux, "bordereau(x)", ID_BORD_MAX, "IdBord, Base_Num7",
                 "run.bordereau-numbers")


def _refuse_past_pieces(key: SequenceKey, first: int, titles: int) -> None:
    """Refuse a run whose titre numbers would pass Base_Num8 (nothing written, no
    number used)."""
    _refuse_past(key, first, titles, "title(s)", ID_PCE_MAX, "IdPce, Base_Num8",
                 "run.piece-numbers")


def _refuse_past(key: SequenceKey, first: int, count: int, counted: str, limit: int,
                 field: str, rule: str) -> None:
    """Refuse a run whose ``count`` numbers from ``first`` in ``key``'s sequence would
    pass ``limit``, the largest its field takes: StateError naming the sequence."""
    last = first + count - 1
    if last > limit:
        message = (f"{Store.sequence_label(key)} would reach {last} with this run's "
                   f"{count} {counted} from {first}, over {limit} ({field})")
        raise StateError(f"{message}; nothing written, no number used",
                         [Problem(rule, message)])


# A recorded bundle file: its text (UTF-8 files, as read with universal newlines), or
# {"base64": ...} for any other file (an image, a PDF of the vendor's specification).
BundleFile = str | dict[str, str]


def _bundle_file(path: Path) -> BundleFile:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(path.read_bytes()).decode("ascii")}


def _bundle_bytes(entry: BundleFile) -> bytes:
    return entry.encode("utf-8") if isinstance(entry, str) else base64.b64decode(entry["base64"])


def bundle_snapshot(fmt: Format) -> dict[str, BundleFile]:
    """Every file of a format bundle, plus the XSD/layout files it uses. Not recorded:
    the bundle's self-test (fixture/, expected/), hidden files and folders (.git,
    .DS_Store, an editor's .swp) and backups ending in ~, which no template may read
    (a bundle's templates are found by name, and these are not part of what renders)."""
    files: dict[str, BundleFile] = {}
    for path in sorted(fmt.folder.rglob("*")):
        parts = path.relative_to(fmt.folder).parts
        if parts[0] in ("fixture", "expected") or "__pycache__" in parts or \
                any(p.startswith(".") for p in parts) or path.name.endswith("~"):
            continue
        if path.is_file():
            if not inside(fmt.folder, path):
                raise MappingError(f"{path}: a link to a file outside the format bundle's "
                                   "folder; pesgen records and renders only the bundle's files")
            files[path.relative_to(fmt.folder).as_posix()] = _bundle_file(path)
    import yaml

    declared = yaml.safe_load(_bundle_bytes(files["format.yaml"]))
    for spec, resolved in zip(declared["files"], fmt.files, strict=True):
        for key in ("xsd", "layout"):
            rel, path = spec.get(key), getattr(resolved, key)
            if rel and path is not None and rel not in files:
                files[rel] = _bundle_file(path)
    return files


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _digest(files: dict[str, BundleFile]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + _bundle_bytes(files[name]) + b"\0")
    return h.hexdigest()


def export_recorded(open_store: Callable[[], Store], mapping_path: Path, input_path: Path,
                    out_dir: Path | None, run_date: date | None = None,
                    official_xsd: Path | None = None,
                    formats_dirs: list[Path] | None = None,
                    progress: Callable[[int], None] | None = None,
                    before_commit: Callable[[], None] | None = None,
                    before_publish: Callable[[], None] | None = None,
                    dry_run: bool = False,
                    on_commit: Callable[[], None] | None = None,
                    creates_store: Callable[[], bool] | None = None,
                    interrupted: Callable[[], bool] | None = None) -> ExportResult:
    """Export and record a run (see the module's docstring). A refused export leaves
    no file, and no output folder it created. ``dry_run``: check everything and write
    nothing (``out_dir`` is then optional; the result's files are where they would go,
    with the numbers they would take, and it has no ``run_id``). ``on_commit`` is called
    right before the run is committed (the CLI holds interrupts from there on: the
    run then stands, whatever signal comes after). ``interrupted`` tells whether one
    came since: asked while the commit waits for the store's reads under way (SQLite),
    it gives the commit up, nothing recorded, as an interrupt (KeyboardInterrupt).

    ``open_store`` opens the state store (``lambda: store`` for one open already); a
    dry run calls it first, and it must open the store read only. ``creates_store``
    tells, once the mapping and its format are read, whether ``open_store`` would create
    the store (a new file, or pesgen's tables in an empty database; None: it opens one
    that is there). Such a store is opened once the mapping, its format, the output
    folder and the input are read and checked, so that it is not left behind, empty, by
    an export refused for one of them. A store that is there is opened before the input
    is read by a format numbering its titres over the exercise, whose titles are then
    prepared once, with the next titre number it holds (read, not taken: the numbers are
    taken at the commit, and the titles prepared again then if another run took some
    meanwhile); any other format's export opens it after the input too."""
    if dry_run:
        return _dry_run(open_store(), mapping_path, input_path, out_dir, run_date,
                        official_xsd, formats_dirs, progress)
    if out_dir is None:
        raise UsageError("an export needs an output folder (--out); only a dry run goes "
                         "without")
    with removed_if_refused(out_dir):
        return _export_recorded(open_store, mapping_path, input_path, out_dir, run_date,
                                official_xsd, formats_dirs, progress, before_commit,
                                before_publish, on_commit, creates_store, interrupted)


def _prepared(open_store: Callable[[], Store], mapping_path: Path, input_path: Path,
              out_dir: Path | None, run_date: date | None, official_xsd: Path | None,
              formats_dirs: list[Path] | None, progress: Callable[[int], None] | None,
              work_dir: Path | None = None, store_first: bool = False,
              creates_store: Callable[[], bool] | None = None
              ) -> tuple[Any, dict[str, BundleFile], tuple[str, str, int, str], str | None,
                         Any, _Taken]:
    """What an export and its dry run do first: the exporter, the bundle as it is before
    its templates are read (the run records it, and it must not change until the files
    are rendered and validated, else it is not what ran), the numbering sequence, the
    input's digest as read, every title prepared, and the guard on what active runs hold
    (on the store ``open_store`` opens then; ``store_first``: before the titles are
    prepared, a dry run's store being open already; so is an export's numbering its
    titres over the exercise, unless ``creates_store`` says opening it creates it: see
    export_recorded)."""
    snapshots: list[dict[str, BundleFile]] = []
    exporter = open_exporter(mapping_path, out_dir, run_date, official_xsd, formats_dirs,
                             progress, on_format=lambda fmt: snapshots.append(
                                 bundle_snapshot(fmt)), work_dir=work_dir)
    key = sequence_key(exporter.mapping, exporter.fmt)
    pieces = piece_key(exporter.mapping, exporter.fmt)
    # (a missing input is reported by prepare, with its own message)
    read_digest = _file_digest(Path(input_path)) if Path(input_path).is_file() else None
    # policies.already_exported: leave_out: what active runs of the scope hold is read
    # before the input (none in a store the export creates)
    leave = exporter.mapping.policies.already_exported == "leave_out"
    if store_first or ((pieces is not None or leave)
                       and not (creates_store and creates_store())):
        # a dry run's store, open already, or a store there: the next titre number is
        # read first, and the titles (whose pieces are rendered with it) prepared once
        store = open_store()
        if leave:
            exporter.exported = store.held_in_scope(None, key[0], key[1], key[2],
                                                    exporter.fmt.name)
        prepared = exporter.prepare(Path(input_path),
                                    _next_piece(store, pieces) if pieces else 1)
    else:
        # a store opening creates (its next titre number is 1) or a format numbering its
        # pieces in each bordereau: titre numbers over the exercise are rendered in the
        # pieces from 1, then again from the next one the store holds once it is open,
        # if that is another (one another run made a store of meanwhile)
        prepared = exporter.prepare(Path(input_path), 1)
        try:
            store = open_store()  # opened (created) only now: see export_recorded
            if pieces and (first_piece := _next_piece(store, pieces)) != prepared.first_piece:
                prepared = exporter.renumbered(prepared, Path(input_path), first_piece)
        except BaseException:
            prepared.close()
            raise
    binding = exporter.mapping.bindings.get("invoice", {}).get("debt_number")
    taken = _Taken(store, key, _RunTitles(prepared), binding.where if binding else None,
                   read_digest, exporter.fmt.name,
                   None if leave else exporter.mapping.where("policies"))
    return exporter, snapshots[0], key, read_digest, prepared, taken


def _refuse_freed(store: Store, conn: Any, id_coll: str, prepared: Prepared) -> None:
    """Refuse the run if an invoice it left out as exported already (policies.
    already_exported: leave_out) is no longer held by an active run: that run, or its
    bordereau, cancelled since it was read, the invoice would be billed nowhere."""
    left = {lo.invoice: lo for lo in prepared.result.left_out
            if lo.policy == "already_exported"}
    if not left:
        return
    held = store.holders(conn, id_coll, left)
    freed = [lo for inv, lo in left.items() if inv not in held]
    if freed:
        raise StateError(
            f"{len(freed)} invoice(s) left out as exported already (policies.already_exported: "
            "leave_out) are no longer held by an active run: cancelled while this export "
            "ran; nothing written, no number used. Export again: they are exported this time",
            [Problem("run.left-out-freed", f"left out as {lo.reason}, but no active run "
                     "holds it now", record=lo.origin, invoice=lo.invoice)
             for lo in freed])


def _unchecked_note(input_path: Path, older: int) -> PolicyNote:
    return PolicyNote("store", "*", str(input_path), f"{older} active invoice(s) were "
                      "recorded before this store kept NumDettes: a NumDette of theirs is not "
                      "checked against this run's (see docs/state.md)")


def _note_new_sequence(prepared: Prepared, mapping_path: Path, key: tuple[str, str, int, str],
                       opened: bool, first: int, dry_run: bool,
                       pieces: tuple[SequenceKey, bool, int] | None = None,
                       helios: bool = True, written: bool = True, db: str = "",
                       run_id: str | None = None) -> None:
    """The note of a run that opens a numbering sequence nobody set (``opened``: the
    sequence had its row; ``first``: the IdBord the run takes): its first IdBord is the
    store's default, whatever rôles the collectivity issued before pesgen. ``pieces``:
    (key, opened, first IdPce) of the sequence of its titre numbers, said likewise.
    ``helios``: the files go to Hélios (a PES format); else to a finance package, whose
    own numbering is what Hélios sees. ``written``: the format writes the number (a file
    name, a value); a finance package's format that does not gets no note (there is
    nothing to continue, the number only counts pesgen's runs of the format). Its
    commands run as printed: ``db`` is the store's ``Store.db_option``, ``run_id`` the
    run (None: a dry run, which records none)."""
    new_pieces = pieces is not None and not pieces[1] and pieces[2] == _FIRST_NUMBER
    if new_pieces:
        assert pieces is not None
        _note_new_pieces(prepared, mapping_path, key, pieces[0], not opened and
                         first == _FIRST_NUMBER, dry_run, db, run_id)
        return
    if opened or first != _FIRST_NUMBER or (not helios and not written):
        return
    took = "would take" if dry_run else "took"
    if not helios:
        # a finance package's import: the package numbers the bordereaux and titres it
        # sends to Hélios; pesgen's number names the run's files (or is written in them)
        said = (f"this run opens pesgen's numbering of format {key[3]} for {key[0]} budget "
                f"{key[1]} exercise {key[2]}: it {took} number {first}, what the format's "
                "templates write of doc.bordereau.number (a file name, an element the "
                "package reads). It is no rôle number in Hélios: the finance package "
                "numbers the bordereaux and titres it sends. If earlier imports of this "
                f"format used such numbers, `pesgen numbering set-start --mapping "
                f"{mapping_path} --start N{db}` before the first export continues "
                "them")
    else:
        meaning = "N: the number after the last rôle issued"
        command = (f"`pesgen numbering set-start --mapping {mapping_path} --start N{db}` "
                   f"({meaning})")
        said = (f"this run opens the numbering of {key[0]} budget {key[1]} exercise {key[2]} "
                f"TypBord {key[3]}, never set before (no `pesgen numbering set-start`, no "
                f"earlier run in this store): it {took} IdBord {first}, the rôle number in "
                "Hélios, which rejects a bordereau whose number it already knows (doublon). "
                "If the collectivity issued rôles this exercise already, "
                f"{_set_start_advice(command, run_id, mapping_path, '--to N', meaning, db)}")
    prepared.result.notes.append(PolicyNote("numbering", "*", str(mapping_path),
                                            f"{said} (see docs/state.md, Numbering)"))


def unsent_groups(unsent: list[Unsent]) -> list[tuple[str, Unsent]]:
    """``Store.unsent``'s bordereaux, one after another of one cancellation (run, date
    and reason) said once: (``IdBord 2-3`` or ``IdBord 2``, the first of them)."""
    groups: list[tuple[int, int, Unsent]] = []
    for u in unsent:
        if groups and (last := groups[-1])[1] + 1 == u.id_bord and (
                last[2].run_id, last[2].cancelled_at, last[2].reason) == (
                u.run_id, u.cancelled_at, u.reason):
            groups[-1] = (last[0], u.id_bord, last[2])
        else:
            groups.append((u.id_bord, u.id_bord, u))
    return [(f"IdBord {a}" if a == b else f"IdBord {a}-{b}", u) for a, b, u in groups]


def numbers_said(unsent: list[Unsent]) -> str:
    """``IdBord 2-3, 5`` of these bordereaux (by IdBord), runs of numbers said as one."""
    spans: list[list[int]] = []
    for u in unsent:
        if spans and spans[-1][1] + 1 == u.id_bord:
            spans[-1][1] = u.id_bord
        else:
            spans.append([u.id_bord, u.id_bord])
    return "IdBord " + ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _note_gap(prepared: Prepared, mapping_path: Path, key: SequenceKey, first: int,
              gap: list[Unsent], dry_run: bool, db: str) -> None:
    """The note of a run whose files follow numbers cancelled before their file was
    sent (``Store.numbering_gap``): the trésorerie receives IdBord ``first`` without
    them, and Hélios checks that bordereau numbers follow each other (whether it accepts
    a gap is not confirmed: notes pes-v2-recette.md), so it is told. Its commands run
    as printed (``db``: the store's ``Store.db_option``): `numbering show` of the
    sequence's exercise (a mapping would need its path from where the export ran, and
    its --formats-dir)."""
    if not gap:
        return
    numbers = numbers_said(gap)
    runs_ = ", ".join(dict.fromkeys(u.run_id for u in gap))
    takes = "would take" if dry_run else "takes"
    one = len(gap) == 1
    its, it, was = ("its file", "it", "was") if one else ("their files", "them", "were")
    prepared.result.notes.append(PolicyNote(
        "numbering_gap", "*", str(mapping_path),
        f"this run {takes} IdBord {first}, after {numbers} of {key[0]} budget {key[1]} "
        f"exercise {key[2]} TypBord {key[3]}, cancelled (run {runs_}) with no "
        f"acknowledgement of the trésorerie recorded: if {its} {was} not sent, the "
        f"trésorerie will not have received {numbers} and receives IdBord {first} without "
        f"{it}. Hélios checks that bordereau numbers follow each other (whether it accepts "
        f"a gap is not confirmed): tell the trésorerie that {numbers} {was} cancelled "
        f"before sending (`pesgen numbering show --exercise {key[2]}{db}` lists {it}; if "
        f"{its} {was} sent after all, record the acknowledgement: `pesgen acquit FILE "
        f"--record{db}`; {ACQUIT_FILE}) "
        "(see "
        "docs/state.md, Numbering)"))


def _set_start_advice(command: str, run_id: str | None, mapping_path: Path, to: str,
                      meaning: str, db: str) -> str:
    """What a numbering note tells to do with ``command`` (a set-start): run it first
    (a dry run: ``run_id`` None), or, the sequence started by run ``run_id``, not to
    send its files but to cancel the run and move the sequence (``to``: the move's
    options, ``meaning`` what their numbers are; ``db``: the store's ``--db``, as
    ``Store.db_option`` gives it)."""
    if run_id is None:
        return f"run {command} before exporting"
    return ("do not send these files: the sequence has started with this run, so cancel "
            f"it (`pesgen runs cancel {run_id} --reason ...{db}`), "
            f"move the sequence (`pesgen numbering move --mapping {mapping_path} {to} "
            f"--reason ...{db}` ({meaning})) and export again")


def _note_new_pieces(prepared: Prepared, mapping_path: Path, key: SequenceKey,
                     pieces: SequenceKey, new_bordereaux: bool, dry_run: bool, db: str,
                     run_id: str | None) -> None:
    """``_note_new_sequence``'s note for a run opening the sequence of its titre numbers
    (and ``new_bordereaux``: its bordereaux' too); ``db`` and ``run_id`` (None: a dry
    run) as there."""
    took = "would take" if dry_run else "took"
    options = "--start N --start-titre T" if new_bordereaux else "--start-titre T"
    meaning = ("N: the number after the last bordereau issued, T: after the last titre "
               "issued" if new_bordereaux else "T: the number after the last titre issued")
    command = (f"`pesgen numbering set-start --mapping {mapping_path} {options}{db}` "
               f"({meaning} this exercise)")
    then = _set_start_advice(command, run_id, mapping_path,
                             "--to N --to-titre T" if new_bordereaux else "--to-titre T",
                             meaning, db)
    opens = (f"the numbering of {key[0]} budget {key[1]} exercise {key[2]} TypBord {key[3]} "
             "and its titre numbers" if new_bordereaux else
             f"the titre numbers of {pieces[0]} budget {pieces[1]} exercise {pieces[2]}")
    numbers = (f"IdBord {_FIRST_NUMBER} and IdPce {_FIRST_NUMBER}" if new_bordereaux else
               f"IdPce {_FIRST_NUMBER}")
    prepared.result.notes.append(PolicyNote(
        "numbering", "*", str(mapping_path),
        f"this run opens {opens}, never set before (no `pesgen numbering set-start`, no "
        f"earlier run in this store): it {took} {numbers}. A titre's number (IdPce, "
        "« Numéro du titre de recette ») is unique over the exercise and budget, and Hélios "
        "rejects a bordereau or a titre whose number it already knows (doublon). If the "
        "collectivity issued titres this exercise already (its finance package: the "
        f"comptable knows the next number), {then} (see docs/state.md, Numbering)"))


def _export_recorded(open_store: Callable[[], Store], mapping_path: Path,
                     input_path: Path, out_dir: Path,
                     run_date: date | None, official_xsd: Path | None,
                     formats_dirs: list[Path] | None,
                     progress: Callable[[int], None] | None,
                     before_commit: Callable[[], None] | None,
                     before_publish: Callable[[], None] | None,
                     on_commit: Callable[[], None] | None = None,
                     creates_store: Callable[[], bool] | None = None,
                     interrupted: Callable[[], bool] | None = None) -> ExportResult:
    exporter, bundle, key, read_digest, prepared, taken = _prepared(
        open_store, mapping_path, input_path, out_dir, run_date, official_xsd, formats_dirs,
        progress, creates_store=creates_store)
    store = taken.store
    pkey = piece_key(exporter.mapping, exporter.fmt)
    try:
        taken.refuse(None)  # early, before taking the lock
        if taken.titles.has_debts() and (older := store.unchecked_debts(key[0])):
            prepared.result.notes.append(_unchecked_note(input_path, older))
        prepared.result.notes.extend(paid_online(store, key[0], prepared))
        input_blob, input_sha256 = pack_file(Path(input_path))
        if input_sha256 != read_digest:
            raise _input_changed(input_path)
        absolute_input = str(Path(input_path).resolve())
        run_id = new_run_id()
        committed = False  # the run is recorded: what fails after must name it
        committing = False  # the commit was asked: from then on, recorded or not is read
        try:
            with store.transaction() as conn:
                store.name_export(conn, run_id)  # what an export waiting for it says
                opened = store.recorded_next(conn, key) is not None
                first = store.peek_next(conn, key)  # locks the sequence until commit
                _refuse_past_bordereaux(key, first, len(prepared.bordereaux))
                pieces = None
                if pkey is not None:  # locked after IdBord's: one order, no deadlock
                    pieces = (pkey, store.recorded_next(conn, pkey) is not None,
                              store.peek_next(conn, pkey))
                    if pieces[2] != prepared.first_piece:
                        # another run took titre numbers since they were rendered
                        prepared = exporter.renumbered(prepared, Path(input_path), pieces[2])
                        taken.titles = _RunTitles(prepared)  # the titles read again
                        if _file_digest(Path(input_path)) != input_sha256:
                            raise _input_changed(input_path)
                    _refuse_past_pieces(pkey, pieces[2], prepared.titles)
                _note_new_sequence(prepared, mapping_path, key, opened, first, dry_run=False,
                                   pieces=pieces, helios=exporter.fmt.is_pes,
                                   written=exporter.writes_number(), db=store.db_option,
                                   run_id=run_id)
                if exporter.fmt.is_pes:
                    _note_gap(prepared, mapping_path, key, first,
                              store.numbering_gap(conn, key, first), dry_run=False,
                              db=store.db_option)
                taken.refuse(conn)
                _refuse_freed(store, conn, key[0], prepared)
                temps = exporter.finish(prepared, first)
                try:
                    if bundle_snapshot(exporter.fmt) != bundle:
                        raise _format_changed(exporter.fmt)
                    result = prepared.result
                    values = {
                        "id": run_id, "created_at": utc_now(), "pesgen_version": __version__,
                        "status": "committed", "id_coll": key[0], "cod_bud": key[1],
                        "exercise": key[2], "typ_bord": key[3], "format": exporter.fmt.name,
                        "run_date": exporter.run_date.isoformat(), "first_number": first,
                        "bordereaux": len(prepared.bordereaux), "titles": result.titles,
                        "total": f"{result.total:.2f}",
                        # absolute: `runs list --mapping` finds it whatever the folder
                        "mapping_path": str(Path(mapping_path).resolve()),
                        "mapping_sha256": exporter.mapping.sha256,
                        "mapping_text": exporter.mapping.text,
                        "format_sha256": _digest(bundle),
                        "format_bundle": pack(json.dumps(bundle).encode("utf-8")),
                        "input_name": Path(input_path).name,
                        "input_sha256": input_sha256,
                        "input_blob": input_blob,
                        # what was applied: the format's title rules to every title,
                        # and per file its XSD or its layout (and the DGFiP package)
                        "validation": pack_json({
                            "business_rules": list(exporter.fmt.rules),
                            "official_xsd": (str(exporter.official_xsd) if exporter.official_xsd
                                             else None),
                            "pes": exporter.fmt.is_pes, "files": result.checks}),
                        "policies": pack_json({
                            # the input's absolute path (runs show), and its records
                            # named by it: the path as the export named it (relative to
                            # its folder) means nothing to support later
                            "input_path": absolute_input,
                            "left_out": [_left_out_record(lo, input_path, absolute_input)
                                         for lo in result.left_out],
                            "notes_z": pack_notes(result.notes),
                            "skipped_files": list(result.skipped)}),
                        "out_dir": str(Path(out_dir).resolve()),
                    }
                    files = [{"name": f.path.name, "sha256": f.sha256, "id_bord": f.bordereau,
                              "titles": f.titles, "total": f"{f.total:.2f}"} for f in result.files]
                    # the payment references the school prints: recorded, not a bordereau's
                    files += [{"name": name, "sha256": digest, "id_bord": None, "titles": None,
                               "total": None} for name, digest in result.reference_digests.items()]
                    rows = _InvoiceRows(result.invoices, prepared.origins, input_path)
                    try:
                        store.record_run(conn, values, files, rows, key, len(prepared.bordereaux),
                                         None if pkey is None else (pkey, result.titles))
                    except RecordConflict:
                        # exports of other sequences (budget, exercise, TypBord) do not wait
                        # for this one: one may have recorded these invoices or NumDettes
                        # since the check. Say which, as the check does.
                        taken.refuse(None)
                        raise
                    if before_commit is not None:
                        before_commit()  # test hook: a crash between render and commit
                    check_free(temps)
                    if on_commit is not None:
                        on_commit()
                    committing = True
                    store.commit(conn, interrupted)
                    committed = True
                except BaseException:
                    discard(temps, Path(out_dir))
                    raise
            # Recorded first, then put in place: a crash in between leaves a recorded run
            # whose files `regenerate` rebuilds byte for byte, never an unrecorded file
            # whose IdBord the next run would take again.
            result.run_id = run_id
            if before_publish is not None:
                before_publish()  # tests: a crash here
            commit(temps)
        except (Exception, KeyboardInterrupt) as exc:
            why = _why(exc)
            # StoreLocked: the commit gave up waiting for the reads under way, SQLite
            # having refused it busy each turn: nothing committed, said as a wait's end
            if not committed and committing and not isinstance(exc, StoreLocked):
                # the commit call failed (the connection lost as the database committed,
                # its answer never received) or was interrupted: the database's commit
                # done or not. Asked again, on a new connection
                discard(temps, Path(out_dir))
                recorded = _recorded(store, run_id)
                if recorded is None:
                    raise StateError(
                        f"the state store failed as run {run_id} was committed: {why}. "
                        "Whether the run is recorded is not known (the store could not be "
                        f"read again); its files were not put in {out_dir}. It may be "
                        f"recorded: check `pesgen runs show {run_id}{store.db_option}`; if it "
                        f"is shown, `pesgen regenerate {run_id}{store.db_option} --out DIR` "
                        "writes its files, byte for byte (do not export the input again: it "
                        "would be refused), else "
                        "nothing was recorded and the export can be run again",
                        [Problem("run.commit-unknown", why, record=str(out_dir))],
                        outcome="the run may be recorded (not known); no file was put in "
                                "place.") from None
                if not recorded and not isinstance(exc, KeyboardInterrupt):
                    # read again: the database did not commit it
                    raise StateError(
                        f"{why} as run {run_id} was committed; read again on a new "
                        "connection, the run is not recorded: nothing was recorded, no "
                        "number used, no file written; the export can be run again",
                        [Problem("run.commit-failed", why, record=str(out_dir))],
                        outcome="nothing was recorded.") from None
                committed = recorded
            if not committed:
                raise
            # a file system error, a commit whose answer was lost, or Ctrl-C / SIGTERM
            # past the commit: the run stands
            discard(temps, Path(out_dir))
            raise StateError(
                f"run {run_id} is recorded (IdBord {first}), but its files could not be put "
                f"in {out_dir}: {why}. `pesgen regenerate {run_id}{store.db_option} --out "
                "DIR` writes them again, byte for byte",
                [Problem("run.publish", why, record=str(out_dir))],
                outcome=f"run {run_id} is recorded; its files were not put in place."
            ) from None
        return result
    finally:
        prepared.close()


def _dry_run(store: Store, mapping_path: Path, input_path: Path, out_dir: Path | None,
             run_date: date | None, official_xsd: Path | None,
             formats_dirs: list[Path] | None,
             progress: Callable[[int], None] | None) -> ExportResult:
    """``_export_recorded``'s stages and refusals, in its order, writing nothing: the
    store is read in one short transaction, rolled back (``Store.reading``), and the
    files go to a private temporary folder removed on the way out, whatever happens."""
    if not store.read_only:
        raise UsageError("a dry run reads the store without changing it: open it read "
                         "only (Store(read_only=True))")
    with tempfile.TemporaryDirectory(prefix="pesgen-dry-run-") as work:
        exporter, bundle, key, read_digest, prepared, taken = _prepared(
            lambda: store, mapping_path, input_path, out_dir, run_date, official_xsd,
            formats_dirs, progress, Path(work), store_first=True)
        try:
            with store.reading() as conn:
                recorded = store.recorded_next(conn, key)
                opened, first = recorded is not None, recorded or _FIRST_NUMBER
                pieces = None
                if (pkey := piece_key(exporter.mapping, exporter.fmt)) is not None:
                    held = store.recorded_next(conn, pkey)
                    pieces = (pkey, held is not None,
                              store.next_number(conn, pkey) if held is None else held)
                taken.refuse(conn)
                gap = store.numbering_gap(conn, key, first) if exporter.fmt.is_pes else []
                older = store.unchecked_debts(key[0], conn) if taken.titles.has_debts() else 0
                paid = paid_online(store, key[0], prepared, conn)
            if older:
                prepared.result.notes.append(_unchecked_note(input_path, older))
            prepared.result.notes.extend(paid)
            if pieces is not None:
                if pieces[2] != prepared.first_piece:  # a run recorded since it was read
                    prepared = exporter.renumbered(prepared, Path(input_path), pieces[2])
                    taken.titles = _RunTitles(prepared)  # the titles read again
                _refuse_past_pieces(pieces[0], pieces[2], prepared.titles)
            _refuse_past_bordereaux(key, first, len(prepared.bordereaux))
            _note_new_sequence(prepared, mapping_path, key, opened, first, dry_run=True,
                               pieces=pieces, helios=exporter.fmt.is_pes,
                               written=exporter.writes_number(), db=store.db_option)
            _note_gap(prepared, mapping_path, key, first, gap, dry_run=True,
                      db=store.db_option)
            if _file_digest(Path(input_path)) != read_digest:
                raise _input_changed(input_path)
            exporter.finish(prepared, first)  # into the temporary folder, never in place
            if bundle_snapshot(exporter.fmt) != bundle:
                raise _format_changed(exporter.fmt)
        finally:
            prepared.close()
    return prepared.result


def _left_out_record(lo: LeftOut, input_path: Path, absolute: str) -> dict[str, Any]:
    """A left-out invoice as its run records it: its input record named by the input's
    absolute path (``/srv/exports/school-export.json:$.invoices[5]``), not as the export
    named it (``school-export.json:$.invoices[5]``, relative to the folder it ran in)."""
    record = fields_of(lo)
    shown = shown_input(Path(input_path))
    if lo.origin.startswith(f"{shown}:"):
        record["origin"] = absolute + lo.origin[len(shown):]
    return record


def _input_changed(input_path: Path) -> StateError:
    # the run records the input it exported, for regenerate: it must be that one
    return StateError(f"{input_path} changed while it was being exported; nothing written, "
                      "no number used: export it again once it is complete",
                      [Problem("run.input-changed", "the input file changed during the "
                               "export", record=str(input_path))])


def _format_changed(fmt: Format) -> StateError:
    return StateError(
        f"the format bundle {fmt.folder} changed while the run was being exported; nothing "
        "written, no number used: export it again once the bundle is complete", [Problem(
            "run.format-changed", "a file of the format bundle changed during the export",
            record=str(fmt.folder))])


def paid_online(store: Store, id_coll: str, prepared: Any,
                conn: Any = None) -> list[PolicyNote]:
    """A note per invoice of the run that PayFiP shows paid through a title since
    cancelled: the new title bills the family again, which the trésorerie must settle
    (the export goes on: the title is the one due; pesgen cannot tell what was agreed).
    And one per invoice paid through the link of its cancelled title after the
    cancellation (a `run-cancelled` anomaly not resolved yet: ``payfip.service``
    refuses its new title a link until it is), in the words `payfip link` refuses it."""
    from .payfip.ledger import unsettled_payments, unsettled_words
    from .payfip.models import cents_text

    titles = _RunTitles(prepared)
    found = store.paid_online(id_coll, titles.invoices(), conn)
    unsettled = unsettled_payments(store, id_coll, conn)  # open anomalies: few
    owed = {inv: unsettled[key] for inv in titles.invoices()
            if inv not in found and (key := invoice_key(inv)) in unsettled} if unsettled else {}
    amounts = titles.found({*found, *owed}, ()).amounts if found or owed else {}
    notes = []
    for inv, paid in found.items():
        notes.append(PolicyNote(
            "payfip", inv, prepared.origins.get(inv, ""),
            f"already paid online {cents_text(paid['paid_cents'] or 0)} on {paid['paid_at']} "
            f"(PayFiP operation {paid['id_op']}) through its cancelled title (run "
            f"{paid['run_id']}, IdBord {paid['id_bord']}); this title bills "
            f"{amounts[inv]:.2f} again: tell the trésorerie, which settles the payment; "
            "send the family no new payment for it (`payfip link` refuses it: it would pay "
            "twice)"))
    for inv, each in owed.items():
        happened, advice = unsettled_words(each)
        notes.append(PolicyNote("payfip", inv, prepared.origins.get(inv, ""),
                                f"{happened}; this title bills {amounts[inv]:.2f} again: "
                                f"{advice}"))
    return notes


def _recorded(store: Store, run_id: str) -> bool | None:
    """Whether run ``run_id`` is recorded, read on a new connection; None: the store
    cannot say (it cannot be reached)."""
    try:
        store.get_run(run_id)
    except StateError:  # no such run
        return False
    except Exception:  # the store cannot say
        return None
    return True


def _why(exc: BaseException) -> str:
    """What failed, in words: an interrupt, a database error (the driver's message, not
    SQLAlchemy's wrapping with its statement), a file system error naming its file."""
    import sqlalchemy.exc as sa_exc

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, sa_exc.DBAPIError):
        return "the state store failed: " + db_said(exc).rstrip(".")
    return str(exc)


class _InvoiceRows:
    """A run's ``run_invoices`` rows as ``Store.record_run`` inserts them, made a slice
    at a time (``len`` and ``[start:stop]``): a dict per title of the run held at once
    was ~40 MB at 100 000 titles."""

    def __init__(self, invoices: RunInvoices, origins: SeenInvoices | dict[str, str],
                 input_path: Path) -> None:
        self.invoices, self.origins = invoices, origins
        # a record is kept by its position (``$.invoices[7]``, ``12``): the run's
        # policies name the input's absolute path, the export named it as shown here
        self.shown = f"{shown_input(Path(input_path))}:"

    def __len__(self) -> int:
        return len(self.invoices)

    def _record(self, invoice: str) -> str | None:
        origin = self.origins.get(invoice)
        if origin is None or not origin.startswith(self.shown):
            return None  # not a record of the input file: none said rather than a guess
        return origin[len(self.shown):]

    def __getitem__(self, index: slice) -> list[dict[str, Any]]:
        # each title's lines as rendered (run_invoices.line_count: `pesgen acquit` checks
        # a NumLigne against it)
        return [{"invoice": inv, "id_bord": b, "id_pce": p, "debt_number": debt,
                 "amount": f"{amt:.2f}", "record": self._record(inv), "line_count": lines}
                for (inv, b, p, debt, amt), lines in zip(
                    self.invoices[index], self.invoices.line_counts(index), strict=True)]


class _Found(NamedTuple):
    """Of some of a run's invoices and NumDettes (``_RunTitles.found``): where each
    invoice stands in the run, the invoice of each NumDette, each invoice's amount."""
    order: dict[str, int]
    invoices: dict[str, str]
    amounts: dict[str, Decimal]


class _RunTitles:
    """A prepared run's titles as the guards on the store read them: from its
    bordereaux' figures (``figures.TitleFigures``), in the run's order, each time they
    ask. Nothing is kept per title: a list of the run's invoice numbers and a dict of its
    NumDettes, made for the whole export, and a dict of its amounts and one of its
    invoice keys, made for each look-up, put the CLI's export's peak at 161 MiB for
    100 000 titles, 145 without (docs/performance.md, "The duplicate guard on the
    store")."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared

    def _figures(self) -> list[TitleFigures]:
        return [b.titles for b in self.prepared.bordereaux]

    def __len__(self) -> int:
        return sum(len(titles) for titles in self._figures())

    def invoices(self) -> Iterator[str]:
        """Each title's invoice number."""
        for titles in self._figures():
            yield from titles.invoices

    def debts(self) -> Iterator[str]:
        """The NumDette of each title that has one, as keys.debt_key gives it."""
        for titles in self._figures():
            for k in range(len(titles)):
                if (debt := titles.debt(k)) is not None:
                    yield debt_key(debt)

    def has_debts(self) -> bool:
        return any(titles.has_debts() for titles in self._figures())

    def found(self, invoices: Collection[str], debts: Collection[str]) -> _Found:
        """What the run says of these invoices (its numbers as written) and NumDettes (as
        keys.debt_key gives them), read in one pass over its titles."""
        out = _Found({}, {}, {})
        at = 0
        for titles in self._figures():
            for k, inv in enumerate(titles.invoices):
                if inv in invoices:
                    out.order[inv] = at
                    out.amounts[inv] = titles.amount(k)
                if debts and (debt := titles.debt(k)) is not None \
                        and (key := debt_key(debt)) in debts:
                    out.order[inv] = at
                    out.invoices[key] = inv
                at += 1
        return out


class _Taken:
    """The guard on what active runs of the collectivity already hold: this run's
    invoices, and its NumDettes (with IdPost and Cle2, the payment reference a family
    pays with: two active titles sharing one would mix their payments up). The run's
    numbers are looked up as its titles give them (``_RunTitles``), 500 a query; only
    those held are kept."""

    def __init__(self, store: Store, key: tuple[str, str, int, str], titles: _RunTitles,
                 debt_where: str | None, input_sha256: str | None = None,
                 fmt: str | None = None, refusing: str | None = None) -> None:
        self.store, self.id_coll, self.scope = store, key[0], (key[1], key[2])
        # where the mapping's policies are, when already_exported is refuse: the refusal
        # of an input holding some invoices exported already names the policy that leaves
        # them out
        self.refusing = refusing
        self.input_sha256 = input_sha256  # the input's, as read: a run that recorded it
        self.fmt = fmt  # this export's format: a run of another is perhaps a trial's
        self.titles, self.debt_where = titles, debt_where

    def refuse(self, conn: Any) -> None:
        """Raise, with one problem per invoice and per NumDette already held, naming the
        run, its file and IdBord; nothing when none is."""
        # read at one moment, whatever several reads it takes: a run committed by an
        # export of another sequence between two of them would make "only some of the
        # input's invoices are held" of an input it holds whole
        with self.store.snapshot(conn) as c:
            held = self.store.holders(c, self.id_coll, self.titles.invoices())
            debts = self.store.debt_holders(c, self.id_coll, self.titles.debts())
            if not held and not debts:
                return
            # where the run has them (its problems are listed in its order), the invoice
            # of each NumDette, the amounts: read again from its titles, now they are few
            found = self.titles.found(held, debts)
            # a NumDette held by the same invoice is that invoice's duplicate, said once
            debts = {debt: h for debt, h in debts.items()
                     if invoice_key(h[0]) != invoice_key(found.invoices[debt])}
            if not held and not debts:
                return
            # how many active titles each bordereau of the runs holding them has; the
            # bordereaux of each run that still hold some, in run and IdBord order
            counts = self.store.active_counts(
                c, {h[1] for h in held.values()} | {h[1] for h in debts.values()})
            several: dict[str, list[int]] = {}
            for run, id_bord in counts:
                several.setdefault(run, []).append(id_bord)
            placed = self.store.recorded_files(c, list(several)[:_MOST_RUNS_LOOKED_AT])
            scopes = self.store.run_scopes(c, several)
            # the trésorerie's answers recorded (pesgen acquit --record): a bordereau it
            # accepted is not cancelled to export its invoices again (run.cancel-accepted)
            answered = {(run, id_bord): acks[0] for run, by_bord in
                        self.store.acknowledgements(several, conn=c).items()
                        for id_bord, acks in by_bord.items()}
            inputs = self.store.run_inputs(c, several) if self.input_sha256 else {}
            formats = self.store.run_formats(c, several) if self.fmt else {}
            pes = self.store.pes_runs(c, several)
            recorded = self.store.active_amounts(c, {h[1] for h in held.values()},
                                                 {h[0] for h in held.values()})
        accepted = {held: ack for held, ack in answered.items() if ack.accepted}
        # the runs that recorded this very input: exported twice by accident, unless the
        # trésorerie rejected what they hold (then cancelling it is what comes next)
        same = {run: at for run, (sha256, at) in inputs.items() if sha256 == self.input_sha256}
        # Some of the input's invoices are held, not all: the input adds new invoices to
        # ones already sent. Cancelling the run holding them would throw away a rôle the
        # trésorerie took to add a few invoices; they leave the input instead.
        titles = len(self.titles)
        partial = 0 < len(held) < titles

        # a run of another budget or exercise is not this input's to cancel: the same
        # number there is this invoice billed already, or the school's numbering
        # starting again (each year, each budget)
        elsewhere = {run: scope for run, scope in scopes.items() if scope != self.scope}
        db = self.store.db_option  # the commands said name the store as it was given

        def cancel_first(run: str, id_bord: int) -> str:
            if len(several.get(run, [])) > 1:  # the run's other bordereaux stand
                return (f"cancel that bordereau first (pesgen runs cancel {run} --bordereau "
                        f"{id_bord}{db})")
            return "cancel that run first"

        def advice(run: str, id_bord: int) -> str:
            if partial:
                return "remove it from this input"
            if run in elsewhere:
                return _other_scope(elsewhere[run], self.scope)
            if (run, id_bord) in accepted:
                return _billed_already(accepted[run, id_bord])
            if run in same and (run, id_bord) not in answered:
                return ("exported from this same input already: nothing to export again "
                        "(cancel that run only if its files are rejected: by the trésorerie, "
                        "or the finance package they went to)")
            # cancelled, the invoices go out again: only when what the run sent did not
            # stand, which an acknowledgement recorded tells
            if (run, id_bord) in answered:  # rejected (an acceptance is answered above)
                return (f"{cancel_first(run, id_bord)} to export it again (IdBord {id_bord} "
                        f"was {answered[run, id_bord].outcome} by the trésorerie)")
            if run in pes:
                return (f"{cancel_first(run, id_bord)} to export it again, if the trésorerie "
                        f"rejected it or it was never sent (no acknowledgement of IdBord "
                        f"{id_bord} is recorded: pesgen acquit FILE --record{db}; "
                        f"{ACQUIT_FILE})")
            return (f"{cancel_first(run, id_bord)} to export it again, if its files were "
                    "rejected or never imported")

        # numbers are compared by their keys: say how the holder wrote it, and which
        # characters differ when more than case and spaces do
        amounts, origins = found.amounts, self.titles.prepared.origins

        def other_amount(inv: str, other: str, run: str) -> str:
            # another amount: a corrected invoice, or a number the school software gave
            # another family's invoice, which removed from the input is billed nowhere
            was, now = recorded.get((run, other)), amounts.get(inv)
            if was is None or now is None or Decimal(was) == now:
                return ""
            return (f". Its title there is of {was}, this one of {now:.2f}: if this is another "
                    "invoice (a number the school software gave again), removed from this "
                    "input it is billed nowhere: give it a number of its own there")

        problems = [Problem("run.duplicate", _already(inv, other, run, name, id_bord,
                                                      advice(run, id_bord),
                                                      elsewhere.get(run))
                            + other_amount(inv, other, run),
                            record=origins.get(inv), invoice=inv)
                    for inv, (other, run, id_bord, name) in sorted(
                        held.items(), key=lambda h: found.order[h[0]])]
        for debt, (other, run, id_bord, name) in sorted(
                debts.items(), key=lambda d: found.order[found.invoices[d[0]]]):
            inv = found.invoices[debt]
            if run in elsewhere:
                budget, exercise = elsewhere[run]
                where, todo = (f", budget {budget}, exercise {exercise}",
                               "give this invoice another NumDette")
            elif (run, id_bord) in accepted:
                where, todo = "", (f"IdBord {id_bord} was {accepted[run, id_bord].outcome} "
                                   "by the trésorerie: give this invoice another NumDette")
            else:
                where, todo = "", (f"{cancel_first(run, id_bord)}, or give this invoice "
                                   "another NumDette")
            problems.append(Problem(
                "run.num-dette-taken", f"NumDette {debt} is already the debt number of "
                f"invoice {other}, exported by run {run} in {name} (IdBord {id_bord}{where}): "
                f"two active titles would share one payment reference; {todo}",
                record=origins.get(inv), mapping=self.debt_where, invoice=inv))
        runs_ = ", ".join(sorted({h[1] for h in held.values()} | {h[1] for h in debts.values()}))
        if not debts:
            message = f"{len(held)} invoice(s) already exported by run(s) {runs_}"
        elif not held:
            message = f"{len(debts)} NumDette(s) already used by run(s) {runs_}"
        else:
            message = (f"{len(held)} invoice(s) already exported and {len(debts)} NumDette(s) "
                       f"already used by run(s) {runs_}")
        message += "; nothing written"
        holders = {h[1] for h in held.values()}
        if (held and not partial and len(holders) == 1 and holders <= set(same) - set(elsewhere)
                and not any(run in holders and not ack.accepted
                            for (run, _), ack in answered.items())):
            [run] = holders
            message += (f". This input is the file run {run} exported on {same[run]} (the "
                        f"same sha256, {(self.input_sha256 or '')[:16]}…): it is exported "
                        f"already, nothing to export again (pesgen runs show {run}{db})")
        elif partial:
            listed = sorted(held, key=found.order.__getitem__)
            shown = listed if len(listed) <= 10 else [*listed[:10], f"… {len(listed) - 10} more"]
            message += (f". Only some of this input's invoices are ({len(held)} of "
                        f"{titles}): remove those from the input ({', '.join(shown)}) "
                        "to export the others")
            # each held by a run of this budget, exercise and format, at the same amount:
            # what the policy leaves out
            if self.refusing and self.fmt and not debts and all(
                    run not in elsewhere and formats.get(run) == self.fmt
                    and (was := recorded.get((run, other))) is not None
                    and Decimal(was) == amounts.get(inv)
                    for inv, (other, run, _b, _n) in held.items()):
                message += (", or have them left out and reported: policies.already_exported: "
                            f"leave_out in the mapping ({self.refusing})")
            message += (f"; cancel a run (pesgen runs cancel{db}) only if the trésorerie "
                        "rejected it and this input replaces it whole")
        elif any(len(several.get(run, [])) > 1 for run in {h[1] for h in held.values()}
                 if run not in elsewhere):
            message += (". A run of several bordereaux: cancel only those the trésorerie "
                        f"rejected (pesgen runs cancel RUN --bordereau IDBORD{db}), or the whole "
                        "run with --all if this input replaces it")
        if not partial:
            message += _freed_beyond(held, several, counts, skip=lambda run, id_bord: (
                run in elsewhere or (run, id_bord) in accepted
                or (run in same and (run, id_bord) not in answered)))
        # every run holding them of another format: a technician trying a finance
        # package's import (or another format) on the invoices the collectivity exported
        # already, whom the advice above does not answer
        others = {formats.get(run) for run in holders}
        named = sorted(f for f in others if f is not None)
        if held and self.fmt and None not in others and self.fmt not in others:
            message += (f". {'That run is' if len(holders) == 1 else 'Those runs are'} of "
                        f"format {', '.join(named)}, this export of {self.fmt}: to "
                        "try another format on the same invoices (files for a package's test "
                        "environment), export into a throw-away store, --db "
                        "/tmp/trial.sqlite3 --create-store (docs/onboarding.md, step 7)")
        if not partial or debts:  # the advice is to cancel: not a run never sent
            for run in sorted(set(placed) - set(elsewhere)):
                missing = not_in_place({**placed[run], "status": "committed"},
                                       several.get(run, []))
                if missing:
                    message += f". {files_not_in_place(run, placed[run]['out_dir'], missing)}"
        raise StateError(message, problems)


def _freed_beyond(held: dict[str, tuple[str, str, int, str]], several: dict[str, list[int]],
                  counts: dict[tuple[str, int], int],
                  skip: Callable[[str, int], bool]) -> str:
    """What the cancellation the run.duplicate refusal advises frees beyond this input:
    a run (or, of a run of several bordereaux, a bordereau) holding more invoices than
    those of the input it holds. Cancelled to export the input again, the others would be
    billed nowhere (a school correcting one invoice's address, exporting that invoice
    alone). ``skip``: the holders the refusal does not advise to cancel."""
    mine: dict[tuple[str, int | None], int] = {}
    for _other, run, id_bord, _name in held.values():
        if not skip(run, id_bord):
            key = (run, id_bord if len(several.get(run, [])) > 1 else None)
            mine[key] = mine.get(key, 0) + 1
    said = ""
    for (run, bordereau), count in sorted(mine.items(),
                                          key=lambda m: (m[0][0], m[0][1] or 0)):
        total = counts.get((run, bordereau), 0) if bordereau is not None else sum(
            n for (r, _b), n in counts.items() if r == run)
        if total <= count:
            continue
        what = f"IdBord {bordereau} of run {run}" if bordereau is not None else f"run {run}"
        said += (f". Cancelling {what} frees {total - count} more invoice(s) than this input "
                 f"holds ({total} in all): they would be billed nowhere until exported again, "
                 "so export them with these, the school's whole corrected file (pesgen runs "
                 f"show {run} --invoices lists them), not only the invoices corrected")
    return said


def _billed_already(ack: Acknowledgement) -> str:
    """What to do about an invoice held by a bordereau the trésorerie accepted (``ack``):
    its title exists there, so cancelling that run to export the invoice again is refused
    (run.cancel-accepted), and would bill the family twice."""
    return (f"IdBord {ack.id_bord} was {ack.outcome} by the trésorerie ({ack.file}): its "
            "title exists there, the invoice is billed already; remove it from this input (to "
            "correct that title, the trésorerie annuls or reduces it first: docs/state.md, "
            "Cancelling a bordereau the trésorerie accepted)")


def _other_scope(held: tuple[str, int], scope: tuple[str, int]) -> str:
    """What to do about an invoice number held by a run of another budget or exercise
    (``held``) than this export's (``scope``): never cancel that run for it."""
    other = "exercise" if held[1] != scope[1] else "budget"
    return (f"that run is of another {other}: remove it from this input if it is the same invoice "
            f"(billed already) or, if the school numbers each {other}'s invoices anew, "
            "give this mapping's invoice numbers their own prefix (bindings.invoice.number); "
            "not a reason to cancel that run")


# the runs a duplicate refusal looks for their files at most (each a few file checks)
_MOST_RUNS_LOOKED_AT = 20


def not_in_place(run: dict[str, Any], active: Collection[int] | None = None) -> list[str]:
    """The files a committed run recorded (of its active bordereaux: ``active``, else
    those not cancelled) that are not in its output folder, as this machine sees it."""
    if run["status"] != "committed" or not run.get("out_dir"):
        return []
    if active is None:
        gone = cancelled_bordereaux(run)
        active = [b for b in {f["id_bord"] for f in run["files"]} if b not in gone]
    return _in_folder(run, active, there=False)


def cancelled_in_place(run: dict[str, Any], bordereaux: Collection[int]) -> list[str]:
    """The files of these cancelled bordereaux of a run (their references CSV too) still
    in its output folder, as this machine sees it: files not to send, which a new export
    into that folder would put beside its own."""
    if not run.get("out_dir"):
        return []
    return _in_folder(run, bordereaux, there=True)


def _in_folder(run: dict[str, Any], bordereaux: Collection[int], there: bool) -> list[str]:
    """The run's files of these bordereaux (each bordereau's file and its references
    CSV) that are in its output folder (``there``), or that are not."""
    of = bordereau_of(run)
    folder = Path(run["out_dir"])
    return [f["name"] for f in run["files"] if of(f["name"]) in bordereaux
            and os.path.lexists(folder / f["name"]) == there]


def files_not_in_place(run_id: str, out_dir: str, missing: list[str]) -> str:
    """What to say of a committed run whose recorded files are not in its folder: sent
    and moved away (normal), or never put in place (an export stopped between recording
    the run and renaming its files), which only the user can tell."""
    shown = missing if len(missing) <= 3 else [*missing[:3], f"… {len(missing) - 3} more"]
    return (f"Run {run_id}'s recorded file(s) {', '.join(shown)} are not in {out_dir} (as "
            "this machine sees it): moved away after sending, which is normal, or never put "
            "in place (an export stopped right after recording the run); if they were never "
            f"sent, `pesgen regenerate {run_id} --out DIR` rebuilds them, the same bytes; do "
            "not cancel a run whose bordereau number was not sent")


# What the files of a cancelled run are called when ``regenerate --cancelled`` writes
# them: never the names of files to send
CANCELLED_PREFIX = "CANCELLED-"


def _already(invoice: str, other: str, run: str, name: str, id_bord: int,
             advice: str, scope: tuple[str, int] | None = None) -> str:
    """The run.duplicate message: the run holding ``invoice`` as ``other`` (of budget
    and exercise ``scope`` when not this export's), and what to do (``advice``)."""
    where = f"by run {run} in {name} (IdBord {id_bord}" + (
        f", budget {scope[0]}, exercise {scope[1]})" if scope else ")")
    lookalike = written_otherwise(invoice, other)
    if lookalike:
        where = f"{where}: invoice number {lookalike}"
    elif other != invoice:
        where = f"(as {other}) {where}"
    return f"already exported {where}; {advice}"


def regenerate(store: Store, run_id: str, out_dir: Path, cancelled: bool = False,
               warn: Callable[[list[Problem]], None] | None = None,
               on_place: Callable[[], None] | None = None) -> list[Path]:
    """Rebuild a run's files from what the run recorded, and check they are
    byte-identical to the originals (sha256). Numbers are not allocated again. A
    cancelled run's files, or a cancelled bordereau's, are written only when asked
    (``cancelled``): its invoices may have been exported again since, and sending both
    would bill them twice; they are then named ``CANCELLED-<name>`` (their bytes
    unchanged), so that they never look like files to send. Every file of the run is
    still rebuilt and compared.

    The recorded mapping is refused only by the checks of this pesgen that decide what
    is rendered (the run cannot be rebuilt: MappingError saying so); the ones it fails
    that change nothing of it (``mapping.RENDERS_NOTHING``, added since the run maybe)
    are given to ``warn``, once, even when the rebuild fails after. ``on_place`` is
    called right before the files, rebuilt and checked, are put in place (the CLI holds
    interrupts from there on: the files then stand, whatever signal comes after)."""
    run = store.get_run(run_id)
    if run["status"] == "cancelled" and not cancelled:
        reason = f" ({run['cancel_reason']})" if run.get("cancel_reason") else ""
        raise StateError(
            f"run {run['id']} was cancelled on {run['cancelled_at']}{reason}: its invoices may "
            "be in another run since, and its files must not be sent again. To look at them, "
            f"regenerate it with --cancelled (written as {CANCELLED_PREFIX}<name>)", [Problem(
                "run.cancelled", "a cancelled run is not regenerated unless asked",
                record=run["id"])])

    # a run some of whose bordereaux were cancelled (the others active): the active
    # ones' files, and the cancelled ones' only when asked, under their CANCELLED- names
    cancelled_ones = cancelled_bordereaux(run)
    of = bordereau_of(run)

    def target(name: str) -> str | None:
        if run["status"] != "cancelled" and of(name) not in cancelled_ones:
            return name
        return CANCELLED_PREFIX + name if cancelled else None

    out_dir = Path(out_dir)
    targets = [t for f in run["files"] if (t := target(f["name"]))]
    for name in targets:  # the prefix can make a name longer than file systems take
        size = len(os.fsencode(name))
        if size > MAX_FILE_NAME:
            raise UsageError(
                f"run {run['id']}: {CANCELLED_PREFIX}, put before the name of its file "
                f"{name[len(CANCELLED_PREFIX):][:40]}…, makes a name of {size} bytes, "
                f"and file systems take at most {MAX_FILE_NAME}: its files cannot be "
                "written as a cancelled run's; nothing was written")
    in_the_way(run, out_dir, targets)
    with removed_if_refused(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        return _regenerate(run, out_dir, target, warn, on_place)


REFERENCES_SUFFIX = ".references.csv"


def bordereau_of(run: dict[str, Any]) -> Callable[[str], int | None]:
    """The IdBord a file of the run belongs to, by its name: a bordereau's file as
    recorded, or its payment references CSV (recorded without IdBord, named after the
    bordereau's first file); None for another name."""
    by_name: dict[str, int] = {}
    by_stem: dict[str, int] = {}
    for f in run["files"]:
        if f["id_bord"] is not None:
            by_name[f["name"]] = f["id_bord"]
            by_stem.setdefault(Path(f["name"]).stem, f["id_bord"])

    def of(name: str) -> int | None:
        if name in by_name:
            return by_name[name]
        if name.endswith(REFERENCES_SUFFIX):
            return by_stem.get(name[:-len(REFERENCES_SUFFIX)])
        return None
    return of


def cancelled_bordereaux(run: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """IdBord -> (when, why) of a run's cancelled bordereaux, as ``Store.get_run`` gives
    the run: those cancelled on their own, and every one of a cancelled run."""
    out = {i: (c["cancelled_at"], c["reason"])
           for i, c in run.get("cancelled_bordereaux", {}).items()}
    if run["status"] == "cancelled":
        for f in run["files"]:
            if f["id_bord"] is not None:
                out.setdefault(f["id_bord"], (run["cancelled_at"], run["cancel_reason"]))
    return out


def in_the_way(run: dict[str, Any], out_dir: Path, names: list[str]) -> None:
    """Refuse, naming them all, the files of ``names`` already in ``out_dir``: pesgen
    never overwrites one, and a folder that still holds part of a run (its references
    CSV, the XML lost) is better left as it is than completed."""
    taken = [name for name in names if (out_dir / name).exists()]
    if not taken:
        return
    shown = ", ".join(taken if len(taken) <= 10 else [*taken[:10], f"… {len(taken) - 10} more"])
    raise UsageError(
        f"{out_dir} already holds {len(taken)} of the {len(names)} file(s) run {run['id']} "
        f"would write: {shown}; pesgen never overwrites a file. Regenerate into a new, "
        "empty folder (--out NEW_DIR), or move those files away; nothing written")


def _not_rebuilt(run: dict[str, Any], exc: MappingError) -> MappingError:
    """A check of this pesgen that decides what is rendered refuses the recorded mapping:
    the files rebuilt without it would not be the run's."""
    detail = "" if exc.problems else f": {exc}"  # else the problems say it all
    return MappingError(
        f"run {run['id']} cannot be rebuilt: the mapping it recorded fails a check of this "
        "pesgen that decides what is rendered, so its files cannot be made again as they "
        f"were (the run was made by pesgen {run['pesgen_version']}; the lines are those of "
        f"the text it recorded of {run['mapping_path']}){detail}", exc.problems)


def _regenerate(run: dict[str, Any], out_dir: Path, target: Callable[[str], str | None],
                warn: Callable[[list[Problem]], None] | None,
                on_place: Callable[[], None] | None = None) -> list[Path]:
    """Rebuild every file of the run, compare them all with what it recorded, and put
    in ``out_dir`` those ``target`` names (a file's name as recorded -> the name it is
    written under, or None: not written)."""
    waived: list[Problem] = []
    try:
        return _rebuilt(run, out_dir, target, waived, on_place)
    finally:
        if waived and warn is not None:
            warn(waived)


class _Differ(StateError):
    """The rebuilt files are not the recorded ones."""


def _rebuild_files(run: dict[str, Any], mapping: Any, fmt: Any, staging: Path,
                   input_path: Path, recorded_refs: bool, waived: list[Problem],
                   legacy: bool, street_before: bool = False) -> list[tuple[Path, Path]]:
    """Render, number and assemble the run's files into ``staging``, and compare them
    with the recorded sha256: the staged (temporary, final) pairs, or _Differ (nothing
    left staged)."""
    try:
        exporter = Exporter(mapping, fmt, staging, date.fromisoformat(run["run_date"]),
                            vouched=True, references=recorded_refs, legacy=legacy,
                            street_before=street_before)
    except MappingError as exc:  # the mapping against its format
        raise _not_rebuilt(run, exc) from None
    waived += [p for p in exporter.waived if p not in waived]
    try:
        # a format numbering its titres over the exercise: from the number the run took
        # (a run recorded before the format said so numbered them per bordereau, as the
        # format.yaml it recorded says)
        # the invoices the run left out as exported already, left out again
        left = [lo["invoice"] for lo in json.loads(run["policies"]).get("left_out", [])
                if lo.get("policy") == "already_exported"]
        if left:
            exporter.exported = {inv: Held(inv, "", 0, "", None) for inv in left}
        prepared = exporter.prepare(input_path, run["first_piece"] or 1)
    finally:
        waived += [p for p in exporter.builder.waived if p not in waived]
    try:
        temps = exporter.finish(prepared, run["first_number"])
    finally:
        prepared.close()
    expected = {f["name"]: f["sha256"] for f in run["files"]}
    got = {f.path.name: f.sha256 for f in prepared.result.files}
    # payment references: compared when the run recorded them; a run recorded before
    # pesgen kept them gets them written again, unchecked (docs/state.md)
    got.update({name: digest for name, digest
                in prepared.result.reference_digests.items() if name in expected})
    if got != expected:
        discard(temps)
        diff = [n for n in sorted(set(expected) | set(got)) if expected.get(n) != got.get(n)]
        raise _Differ(f"run {run['id']}: regenerated files differ from the recorded ones "
                      f"({', '.join(diff)}); pesgen {__version__}, run made with "
                      f"{run['pesgen_version']}")
    return temps


class _AsRecorded:
    """A rebuild reads the input and the format bundle a run recorded from copies in a
    temporary folder, which is gone when the command ends and means nothing to the
    user: its errors and warnings name them as the run recorded them instead, the input
    by its recorded name (``school-export.json:$.invoices[3]``), a bundle's file by the
    format's name (``pes-ormc/format.yaml:4``, as a template's error names its template),
    and an error's message says which run they are the records of. Done once, on what
    leaves the rebuild, so that no reader, loader or check needs to know of it."""

    def __init__(self, run: dict[str, Any], base: Path) -> None:
        self.heading = (f"run {run['id']}, rebuilt from what it recorded (input "
                        f"{run['input_name']}, format {run['format']})")
        self.run_id = run["id"]
        names: dict[str, str] = {}
        for temp, shown in ((base / "input" / run["input_name"], run["input_name"]),
                            (base / "formats" / run["format"], run["format"])):
            names.update((spelt, shown) for spelt in _spellings(temp))
        # the longest first: a path relative to the working folder ends another one
        self.names = sorted(names.items(), key=lambda item: -len(item[0]))

    def text(self, text: str) -> str:
        for temp, shown in self.names:
            text = text.replace(temp, shown)
        return text

    def problem(self, p: Problem) -> Problem:
        return replace(p, message=self.text(p.message),
                       record=p.record and self.text(p.record),
                       mapping=p.mapping and self.text(p.mapping))

    def error(self, exc: PesgenError) -> None:
        """``exc`` naming what it read as the run recorded it (changed in place, to be
        raised again as it is: its class, its exit code)."""
        message = self.text(str(exc))
        if not message.startswith(f"run {self.run_id}"):
            message = f"{self.heading}: {message}"
        exc.args = (message, *exc.args[1:])
        exc.problems = [self.problem(p) for p in exc.problems]


def _spellings(path: Path) -> set[str]:
    """The ways a message may write ``path``: as it was made, with links resolved, and
    relative to the working folder (as the input readers show a path under it)."""
    resolved = path.resolve()
    spelt = {str(path), str(resolved)}
    try:
        spelt.add(str(resolved.relative_to(Path.cwd())))
    except (ValueError, OSError):  # not under it, or no working folder left
        pass
    return spelt


def _rebuilt(run: dict[str, Any], out_dir: Path, target: Callable[[str], str | None],
             waived: list[Problem], on_place: Callable[[], None] | None = None) -> list[Path]:
    with tempfile.TemporaryDirectory(prefix="pesgen-regen-") as tmp:
        recorded = _AsRecorded(run, Path(tmp))
        try:
            return _rebuilt_from(run, Path(tmp), out_dir, target, waived, on_place)
        except PesgenError as exc:
            recorded.error(exc)
            raise
        finally:
            waived[:] = [recorded.problem(p) for p in waived]


def _rebuilt_from(run: dict[str, Any], base: Path, out_dir: Path,
                  target: Callable[[str], str | None], waived: list[Problem],
                  on_place: Callable[[], None] | None = None) -> list[Path]:
    """The run's files rebuilt from its records, written to ``base`` (a temporary
    folder), and put in ``out_dir``."""
    # the folders the records are written into are named by the run's records too: each
    # must stay one name (a store edited by hand: '../..', an absolute path)
    for field, what in (("format", "format"), ("input_name", "input name")):
        if not _plain_name(run[field]):
            raise StateError(f"run {run['id']}: bad {what} in the record: {run[field]!r}")
    bundle = json.loads(unpack(run["format_bundle"]))
    folder = base / "formats" / run["format"]
    for rel, entry in bundle.items():
        target_path = (folder / rel).resolve()
        if not inside(folder, target_path):
            raise StateError(f"run {run['id']}: bad path in the recorded bundle: {rel}")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target_path.write_bytes(_bundle_bytes(entry))
    input_path = base / "input" / run["input_name"]
    input_path.parent.mkdir()
    with input_path.open("wb") as scratch:
        for chunk in unpacked(run["input_blob"]):
            scratch.write(chunk)
    # named by the path the run recorded (the lines are those of its recorded text);
    # refused only by a check that decides what is rendered
    try:
        mapping = load_recorded_mapping(run["mapping_text"], run["mapping_path"])
    except MappingError as exc:
        raise _not_rebuilt(run, exc) from None
    waived += mapping.waived
    # what the run wrote was validated then; here the rebuilt bytes are compared
    # with its recorded sha256, so no check added since (nor the DGFiP package a
    # PES bundle without its own XSD used) can refuse them
    fmt = load_format(folder, recorded=True)
    # a run that recorded a references CSV gets it again, even for titles without
    # NumDette (pesgen wrote one for every format before)
    recorded_refs = any(f["id_bord"] is None for f in run["files"])
    # rendered under the run's own names in a folder of their own inside out_dir
    # (one file system: each is then renamed into place whole), so that a file of
    # the run left in out_dir under its name does not stop one written under another
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".pesgen-regen-"))
    try:
        # as this pesgen renders; else as it rendered before 2026-12-01 (the word None
        # written, and zero-filled by zfill as '0None', by a template or an expression;
        # code-table civilities through the text policies), which a run recorded then
        # needs: the recorded sha256 decides, not a version number. An expression's
        # zfill of None is refused as the input's problem (mapping.expr), a template's
        # as the template's, output.bordereau_object's (no record read) as the
        # mapping's: a refusal the rebuild as before makes too is the first one
        try:
            temps = _rebuild_files(run, mapping, fmt, staging, input_path,
                                   recorded_refs, waived, legacy=False)
        except TemplateStopped:  # past its time limit: rebuilt as before, as long again
            raise
        except (_Differ, TemplateError, InputDataError, MappingError) as exc:
            before = load_recorded_mapping(run["mapping_text"], run["mapping_path"],
                                           as_before=True)
            try:
                temps = _rebuild_files(run, before, fmt, staging, input_path,
                                       recorded_refs, waived, legacy=True)
            except (_Differ, TemplateError, InputDataError, MappingError):
                # recorded between 2026-12-01 and 2026-12-06: as today, but a street cut
                # at a word boundary split as then (Builder.street_before)
                try:
                    temps = _rebuild_files(run, mapping, fmt, staging, input_path,
                                           recorded_refs, waived, legacy=False,
                                           street_before=True)
                except (_Differ, TemplateError, InputDataError, MappingError):
                    raise exc from None
        placed = []
        for temp, final in temps:
            name = target(final.name)
            if name is None:
                temp.unlink()
            else:
                placed.append((temp, out_dir / name))
        if on_place is not None:
            on_place()
        return commit(placed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def copy_input(store: Store, run_id: str, target: Path) -> Path:
    run = store.get_run(run_id)
    return write_file(Path(target), unpack(run["input_blob"]))


# --------------------------------------------------------------- extract

class ExtractedFile(NamedTuple):
    """A file ``runs extract`` wrote: where, its size and sha256, and what it is
    (``checked``: "mapping" or "input", its sha256 checked against the one the run
    recorded of it; "" for a file of the bundle, checked with the others by the
    bundle's)."""

    path: Path
    size: int
    sha256: str
    checked: str


class Extracted(NamedTuple):
    """What ``extract_run`` wrote of a run: its mapping, its input, the folder of format
    bundles holding its format's (``formats``, for ``--formats-dir``), each file, and the
    bundle's sha256 over its files, checked against the recorded one."""

    run: dict[str, Any]
    folder: Path
    mapping: Path
    input: Path
    formats: Path
    files: list[ExtractedFile]
    bundle_sha256: str


# names a run records for a file it wrote or read must stay such a name, one file of the
# folder they are written into: a record saying "../x" (a store written to by hand) is
# refused, never followed
def _plain_name(name: Any) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and "\0" not in name
            and not any(sep in name for sep in ("/", os.sep, os.altsep or "/")))


def _bundle_path(rel: Any) -> bool:
    """A recorded bundle file's path (format.yaml, pes-ormc/pes-ormc.xsd) that stays in
    the bundle's folder: relative (no drive either, as format.yaml's paths), without '..'.
    (What this system reads otherwise, a Windows '\\', is refused as it is written.)"""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        return False
    return not (Path(rel).is_absolute() or Path(rel).drive or rel.startswith("/")) and \
        all(part not in ("", ".", "..") for part in rel.split("/"))


def recorded_mapping_name(mapping_path: str) -> str:
    """The file name of the mapping a run recorded, from the path it recorded (absolute,
    on the machine that made the run: a Windows one's too)."""
    windows = re.match(r"[A-Za-z]:\\|\\\\", mapping_path) is not None or \
        ("\\" in mapping_path and "/" not in mapping_path)
    name = (mapping_path.replace("\\", "/") if windows else mapping_path).rsplit("/", 1)[-1]
    # a name the other entries of the folder take, or no name: the mapping's role
    return name if _plain_name(name) and name not in ("input", "formats") else "mapping.yaml"


def _damaged(run: dict[str, Any], what: str, detail: str) -> StateError:
    return StateError(f"run {run['id']}: {what} {detail}: the store's record of the run is "
                      "damaged (restore the store from a backup); nothing written")


def extract_run(run: dict[str, Any], out_dir: Path) -> Extracted:
    """Write what ``run`` (as ``Store.get_run`` gives it) recorded into ``out_dir``, a
    new or an empty folder (else refused, UsageError): its mapping's text under the
    mapping's file name, its input under ``input/<name>``, its format bundle under
    ``formats/<format>/``, whole or not at all (``atomic.filled_folder``). Each is checked
    against what the run recorded: the mapping's and the input's sha256, the bundle's
    over its files; a name or a bundle path leading out of its folder, or a record that
    does not match its sha256, is the store's error (StateError), nothing written."""
    out_dir = Path(out_dir)
    refuse_filled(out_dir)
    mapping_bytes = run["mapping_text"].encode("utf-8")
    if hashlib.sha256(mapping_bytes).hexdigest() != run["mapping_sha256"]:
        raise _damaged(run, f"the recorded mapping ({run['mapping_path']})",
                       f"does not match its recorded sha256 {run['mapping_sha256']}")
    if not _plain_name(run["input_name"]):
        raise _damaged(run, "the recorded input's name", f"{run['input_name']!r} is not the "
                       "name of a file")
    if not _plain_name(run["format"]):
        raise _damaged(run, "the recorded format's name", f"{run['format']!r} is not the "
                       "name of a folder")
    try:
        bundle = json.loads(unpack(run["format_bundle"]))
        files = {rel: _bundle_bytes(entry) for rel, entry in bundle.items()}
    except (zlib.error, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _damaged(run, f"the recorded bundle of format {run['format']}",
                       f"cannot be read ({exc})") from None
    escaping = sorted(rel for rel in files if not _bundle_path(rel))
    if escaping:
        raise _damaged(run, f"the recorded bundle of format {run['format']}",
                       f"names a path out of its folder: {', '.join(map(repr, escaping))}")
    bundle_sha256 = _digest(bundle)
    if bundle_sha256 != run["format_sha256"]:
        raise _damaged(run, f"the recorded bundle of format {run['format']}",
                       f"does not match its recorded sha256 {run['format_sha256']}")
    mapping_name = recorded_mapping_name(run["mapping_path"])
    written: list[ExtractedFile] = []
    with filled_folder(out_dir) as staging:
        write_file(staging / mapping_name, mapping_bytes)
        written.append(ExtractedFile(out_dir / mapping_name, len(mapping_bytes),
                                     run["mapping_sha256"], "mapping"))
        (staging / "input").mkdir()
        digest, size = hashlib.sha256(), [0]

        def chunks() -> Iterator[bytes]:
            try:
                for chunk in unpacked(run["input_blob"]):
                    digest.update(chunk)
                    size[0] += len(chunk)
                    yield chunk
            except zlib.error as exc:
                raise _damaged(run, f"the recorded input ({run['input_name']})",
                               f"cannot be read ({exc})") from None

        write_file(staging / "input" / run["input_name"], chunks())
        if digest.hexdigest() != run["input_sha256"]:
            raise _damaged(run, f"the recorded input ({run['input_name']})",
                           f"does not match its recorded sha256 {run['input_sha256']} "
                           f"(its bytes give {digest.hexdigest()})")
        written.append(ExtractedFile(out_dir / "input" / run["input_name"], size[0],
                                     run["input_sha256"], "input"))
        folder = staging / "formats" / run["format"]
        for rel in sorted(files):
            target = folder / rel
            # a name this system reads otherwise ('a\\..\\..' on Windows), a link met
            if not inside(folder, target):
                raise _damaged(run, f"the recorded bundle of format {run['format']}",
                               f"names a path out of its folder: {rel!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_file(target, files[rel])
            written.append(ExtractedFile(out_dir / "formats" / run["format"] / rel,
                                         len(files[rel]),
                                         hashlib.sha256(files[rel]).hexdigest(), ""))
    return Extracted(run, out_dir, out_dir / mapping_name,
                     out_dir / "input" / run["input_name"], out_dir / "formats", written,
                     bundle_sha256)


def refusal_of_extracted(extracted: Extracted) -> PesgenError | None:
    """What an export (its dry run) of this pesgen would refuse in the mapping and the
    bundle ``extract_run`` wrote, before it reads any input: the mapping's checks (one
    added since the run, which ``regenerate`` lets through when it renders nothing), its
    format found in the extracted folder of bundles and its fit with it. None: taken."""
    run = extracted.run
    try:
        # a dry run's work folder: nothing is rendered in it here
        with tempfile.TemporaryDirectory(prefix="pesgen-dry-run-") as work:
            exporter = open_exporter(extracted.mapping, None,
                                     date.fromisoformat(run["run_date"]), None,
                                     [extracted.formats], None, work_dir=Path(work))
    except PesgenError as exc:
        return exc
    if not inside(extracted.formats, exporter.fmt.folder / "format.yaml"):
        return MappingError(f"{extracted.mapping}: its output.format, "
                            f"{exporter.fmt.name}, is not the run's format ({run['format']}), "
                            "whose bundle is extracted")
    return None


class Since(NamedTuple):
    """What became since the run of a file or bundle it read, as found on this machine
    now: ``found`` (the mapping's file at the path the run recorded, or the bundle's
    folder as pesgen finds it by name without --formats-dir; None: not found, ``error``
    says why), and the files that differ from the run's (``changed``, ``added``,
    ``removed``: a mapping's own name when its bytes changed)."""

    found: Path | None
    changed: list[str]
    added: list[str]
    removed: list[str]
    error: str | None = None

    @property
    def same(self) -> bool:
        return self.found is not None and not (self.changed or self.added or self.removed)


def mapping_since(run: dict[str, Any]) -> Since:
    """The mapping file at the path the run recorded, compared with the recorded text."""
    path = Path(run["mapping_path"])
    try:
        if not path.is_file():
            return Since(None, [], [], [], "not there on this machine")
        same = _file_digest(path) == run["mapping_sha256"]
    except OSError as exc:
        return Since(None, [], [], [], exc.strerror or str(exc))
    return Since(path, [] if same else [path.name], [], [])


def format_since(run: dict[str, Any]) -> Since:
    """The run's format as pesgen finds it now by its name (PESGEN_FORMATS_PATH, the
    shipped bundles; a --formats-dir the run was given is not recorded), its files
    compared with those the run recorded."""
    from .formats import find_format

    try:
        fmt = find_format(run["format"])
        now = bundle_snapshot(fmt)
    except PesgenError as exc:
        return Since(None, [], [], [], str(exc))
    recorded = json.loads(unpack(run["format_bundle"]))
    changed = [rel for rel in sorted(set(now) & set(recorded))
               if _bundle_bytes(now[rel]) != _bundle_bytes(recorded[rel])]
    return Since(fmt.folder, changed, sorted(set(now) - set(recorded)),
                 sorted(set(recorded) - set(now)))
