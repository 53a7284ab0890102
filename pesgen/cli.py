"""pesgen's command line: parse options, call the library, print, map errors to exit codes."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from . import __version__
from ._display import (
    ACQUIT_FILE,
    db_option,
    escaped_lines,
    json_text,
    masked_argument,
    shown,
)
from ._echo import echo_err as _echo_err
from ._echo import say as _say
from ._entry import interrupted, terminate
from ._help import DB_HELP, HelpGroup
from .errors import (
    ExitCode,
    OutputInvalidError,
    PesgenError,
    Problem,
    StoreLocked,
    UsageError,
    says_listing_stopped,
)

if TYPE_CHECKING:  # imported where used: the CLI starts without them
    from .formats import Format

# pretty_exceptions_show_locals off whatever typer's default (True in typer 0.12.0, the
# oldest pyproject.toml allowed; False in recent ones): the traceback of an unexpected
# error would print every frame's local variables, billing records and the store's URL
# with its password among them
app = typer.Typer(add_completion=False, no_args_is_help=True, cls=HelpGroup,
                  pretty_exceptions_show_locals=False,
                  help="pesgen: school billing exports to PES V2 (DGFiP) and finance packages.")

MAX_LISTED = 200

MappingOpt = Annotated[Path, typer.Option("--mapping", "-m", help="Mapping file (YAML).")]
OfficialOpt = Annotated[Path | None, typer.Option(
    "--official-xsd", envvar="PESGEN_OFFICIAL_XSD",
    help="Also validate against the DGFiP PES V2 schema package in this folder.")]
FormatsOpt = Annotated[list[Path] | None, typer.Option(
    "--formats-dir", metavar="<dir>",
    help="Extra folder of format bundles, searched before the shipped ones; repeat the "
         "option for several folders (also PESGEN_FORMATS_PATH).")]
DbOpt = Annotated[str | None, typer.Option("--db", envvar="PESGEN_DB", metavar="<file|url>",
                                           help=DB_HELP)]


class Output(StrEnum):
    text = "text"
    json = "json"


OutputOpt = Annotated[Output, typer.Option(
    "--format", case_sensitive=False,
    help="text (the default), or json: one JSON document on standard output, each "
         "result with its problems and warnings (rule, file, line, key, message), for "
         "CI; the same exit codes.")]
# the runs commands' (runs list, show, find, cancel…), regenerate's and numbering's:
# a report of the store, not of checks
RunsOutputOpt = Annotated[Output, typer.Option(
    "--format", case_sensitive=False,
    help="text (the default), or json: one JSON document on standard output; the same "
         "exit codes.")]


def _store(db: str | None, quiet: bool = False, line_open: list[bool] | None = None,
           must_exist: bool = False, read_only: bool = False, create: bool | None = None):
    """The state store of --db (else PESGEN_DB, else the configuration file's ``db``);
    a wait for its lock is said once on standard error, unless ``quiet``. A true
    ``line_open[0]`` says a progress line is on the terminal: the note goes below it.
    ``must_exist``: a command that reads the store refuses one that is not there, naming
    it and how it was chosen, instead of creating it (and answering from it, empty).
    ``read_only``: a dry run's, which creates and changes nothing (Store). ``create``
    (an export's): whether a store that is not there may be created; None: only the
    default one (no --db, PESGEN_DB nor configured db), the first run on a machine. A
    store named on purpose is created only when asked (``--create-store``): a mistyped
    path, or another machine's, would otherwise start the numbering again at 1 and let
    every invoice out a second time."""
    from .store import Store

    db, chosen_by, named = _store_url(db)
    advice = None
    if create is False and named:  # a dry run says what the export would: refused too
        must_exist = True
        advice = ("a store named on purpose (--db, PESGEN_DB or db in the configuration "
                  "file) is created only with --create-store (a new collectivity's first "
                  "run): a mistyped path, or another machine's, would "
                  "start the numbering again at 1 and let every invoice out a second time. "
                  "Check the path, or add --create-store if this is a new store")

    def waiting(timeout: float, holder: str | None = None) -> None:
        # a command that seems to hang is waiting for another run to finish; on
        # PostgreSQL the store may tell which (Store._pg_holder)
        if line_open and line_open[0]:
            _echo_err("")
            line_open[0] = False
        _echo_err(f"waiting for the state store: {holder or 'another pesgen run holds its lock'} "
                  f"(up to {timeout:g} s, store_lock_timeout)…")

    return Store(db, on_wait=None if quiet else waiting, must_exist=must_exist,
                 chosen_by=chosen_by, read_only=read_only, missing_advice=advice)


def _store_url(db: str | None) -> tuple[str | None, str, bool]:
    """The URL of the state store of --db (else PESGEN_DB, else the configuration
    file's ``db``; None: the default store), how it was chosen, and whether it was named
    (not the default)."""
    from .config import config_path, setting

    _check_db(db)
    named = True
    if db:  # typer gives --db, else PESGEN_DB, in the same parameter
        chosen_by = "PESGEN_DB" if os.environ.get("PESGEN_DB") == db else "--db"
    elif db := setting("db"):
        chosen_by = f"db in {config_path()}"
    else:
        chosen_by = "default: no --db, PESGEN_DB nor db in the configuration file"
        named = False
    if db and "://" not in db:
        db = f"sqlite:///{Path(db).expanduser().resolve()}"
    return db, chosen_by, named


def _store_left(opened: list[Any], exc: BaseException) -> str | None:
    """What became of the store of an export refused or interrupted by ``exc``: the
    store it opened (``_new_store_left``), or the SQLite file its opening created and
    removed as ``exc`` stopped it (Store marks ``exc``)."""
    if opened:
        return _new_store_left(opened)
    url = getattr(exc, "pesgen_removed_store", None)
    if url is None:
        return None
    from .store import shown_store

    return (f"removed the state store {shown_store(url)} this export created: nothing was "
            "recorded in it")


def _new_store_left(opened: list[Any]) -> str | None:
    """What becomes of the store an export refused (or interrupted) before its run was
    recorded created (``opened``: the store it opened, if it did): a SQLite file that
    was not there before and in which nothing is recorded is removed (Store.
    discard_unused); a PostgreSQL database (or an empty SQLite file that was there)
    keeps the tables the export created in it.
    The line saying so; None when the export created no store, or one something is
    recorded in now (a run recorded whose files could not be put in place: its error
    says so)."""
    from .store import shown_store

    if not opened or opened[0].read_only:
        return None
    store = opened[0]
    made_file, created = store.made_file, store.created
    if not made_file and not created:
        return None
    name = shown_store(store.url)
    if made_file:
        outcome = store.discard_unused()
        if outcome == "removed":
            return (f"removed the state store {name} this export created: nothing was "
                    "recorded in it")
        if outcome == "kept":
            return (f"the state store {name} this export created stays: another pesgen run "
                    "holds it (or it could not be removed)")
        return None
    try:
        if store.holds_records():
            return None
    except Exception:  # the database does not answer: say nothing of what it holds
        return None
    # a PostgreSQL database, or a SQLite file that was there, empty: never removed
    return (f"the state store {name}: the tables this export created in the database, "
            "which was there before, stay, empty (pesgen removes no database it did not "
            "create; the next export uses them)")


def _check_db(db: str | None) -> None:
    if db is not None and not db.strip():
        # `--db "$STORE"` with STORE unset: not the default store, by accident
        raise UsageError("--db is empty: name the state store (a file or a URL), or leave "
                         "the option out for the default one")


def _warn(problem: Problem) -> None:
    _echo_err(f"warning: {problem}")


def _fail(exc: PesgenError, written: bool = True, then: str | None = None) -> None:
    """Print the error and its problems, exit with its code. ``written``: the command
    would have written files (it says nothing was); false for one that writes nothing (a
    check, a preview, a listing). ``then``: a line said last (what became of a store
    the command created)."""
    _echo_err(f"error: {exc}")
    for line in _problem_lines(exc.problems[:MAX_LISTED]):
        _echo_err(line)
    rest = exc.problems[MAX_LISTED:]
    if rest:
        # a problem saying a listing stopped (layout.too-many, pes.listing…) comes last:
        # shown past the cut too, or the count would pass for all the file holds
        stopped = [p for p in rest if says_listing_stopped(p)]
        _echo_err(f"  … and {len(rest) - len(stopped)} more problem(s)")
        for problem in stopped:
            _echo_err(f"  - {problem}")
    if exc.problems:
        _echo_err(exc.count_line(written))
    if then:
        _echo_err(then)
    raise typer.Exit(int(exc.exit_code))


# problems, or an export's policy notes, that say the same of more than ALIKE records or
# invoices are said once, not once each (200 invoices of an input exported already, 77
# direct debits without an account holder)
ALIKE = 5
# the invoices a note said once names (the count says how many more)
ALIKE_NAMED = 3


def _alike(problem: Problem) -> tuple[str, str, str | None, str | None] | None:
    """What ``problem`` says of its record, the same for every record it is alike with:
    its rule, message and mapping place; None for a problem of no record (said whole)."""
    if not problem.record and not problem.invoice:
        return None
    return problem.rule, problem.message, problem.mapping, problem.source


def _problem_lines(problems: list[Problem]) -> Iterator[str]:
    """The lines listing ``problems``, in their order: one each, but more than ALIKE
    problems alike (``_alike``) are said once, where the first of them is, then each of
    their records on a short line of its own: every record still named, the explanation
    not repeated."""
    alike: dict[Any, list[Problem]] = {}
    for problem in problems:
        if (key := _alike(problem)) is not None:
            alike.setdefault(key, []).append(problem)
    for problem in problems:
        key = _alike(problem)
        if key is None or len(group := alike[key]) <= ALIKE:
            yield f"  - {problem}"
        elif group[0] is problem:
            said = replace(problem, record=None, invoice=None)
            yield f"  - {len(group)} problems alike, their records below: {said}"
            yield from (f"      {p.where}" for p in group)


def _json_result(error: PesgenError | None, warnings: list[Problem],
                 **fields: Any) -> dict[str, Any]:
    """One result of a JSON report (a bundle, a mapping): ``fields``, then whether it
    passed, its exit code, the error's message and problems, and the warnings, each
    problem as ``errors.problem_json`` gives it."""
    from .errors import problem_json

    return {**fields, "ok": error is None,
            "exit_code": int(error.exit_code) if error is not None else 0,
            "error": str(error) if error is not None else None,
            "problems": [problem_json(p) for p in (error.problems if error else [])],
            "warnings": [problem_json(p) for p in warnings]}


def _json_report(command: str, key: str, results: list[dict[str, Any]],
                 error: PesgenError | None = None) -> None:
    """Print the JSON report of ``command`` (``--format json``) and exit with the code
    the text output would: ``error``'s, else the first failed result's, else 0."""
    code = int(error.exit_code) if error is not None else next(
        (r["exit_code"] for r in results if r["exit_code"]), 0)
    _json_exit(command, code, str(error) if error is not None else None, **{key: results})


def _json_exit(command: str, code: int = 0, error: str | None = None, **fields: Any) -> None:
    """Print a JSON report (``--format json``, ``--json``): the head every one has
    (``command``, ``ok``, ``exit_code``, ``error``), then ``fields``; then exit with
    ``code`` when it is not 0."""
    typer.echo(json_text({"command": command, "ok": code == 0, "exit_code": code,
                          "error": error, **fields}))
    if code:
        raise typer.Exit(code)


def _json_streamed(command: str, code: int, before: dict[str, Any], key: str,
                   items: Iterable[Any], after: dict[str, Any]) -> Iterator[str]:
    """What ``_json_exit`` prints of ``before``, ``key``: ``items`` and ``after`` (the
    same text, byte for byte), an item at a time, 500 items a write: neither the report
    nor its text is ever held whole."""
    head = json_text({"command": command, "ok": code == 0, "exit_code": code,
                      "error": None, **before, key: []})
    head = head.removesuffix("[]\n}")
    rest = json_text(after).removeprefix("{") if after else "}"
    batch: list[str] = [head]
    count = 0
    for item in items:
        batch.append(("," if count else "[") + "\n    "
                     + json_text(item).replace("\n", "\n    "))
        count += 1
        if count % 500 == 0:
            yield "".join(batch)
            batch.clear()
    batch.append("\n  ]" if count else "[]")
    yield "".join(batch) + ("," if after else "\n") + rest + "\n"


def _official(value: Path | None) -> Path | None:
    """--official-xsd, else PESGEN_OFFICIAL_XSD (typer), else the config file."""
    from .config import setting

    configured = setting("official_xsd")
    return value or (Path(configured).expanduser() if configured else None)


def _parse_date(value: str | None, option: str = "--date") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        # the right shape naming a day the calendar does not have (2027-02-29)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise UsageError(f"{option}: {value} is not a day of the calendar "
                             f"(YYYY-MM-DD)") from None
        raise UsageError(f"{option} must be YYYY-MM-DD, got '{shown(value)}'") from None


@app.command()
def export(
    mapping: MappingOpt,
    input: Annotated[Path, typer.Option("--input", "-i", help="The school's billing export.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Output folder; required unless --dry-run.")] = None,
    run_date: Annotated[str | None, typer.Option(
        "--date", help="Fix every generated date (YYYY-MM-DD): same input, same bytes.")] = None,
    official_xsd: OfficialOpt = None,
    formats_dir: FormatsOpt = None,
    db: DbOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    create_store: Annotated[bool, typer.Option(
        "--create-store", help="Create the state store named by --db, PESGEN_DB or the "
        "configuration if it is not there (a new collectivity's first run). Without it "
        "only the default store is created; a named one must exist.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check the whole run as the export would, the state store's "
        "checks included, and print its summary: nothing written, recorded or created, "
        "no number used. Exits as the export would.")] = False,
    output: Annotated[Output, typer.Option(
        "--format", case_sensitive=False,
        help="text (the default), or json: the summary, or the refusal with every "
        "problem (rule, input record, file, line, key, message), as one JSON document on "
        "standard output, for the school software or CI; the same exit codes.")
    ] = Output.text,
) -> None:
    """Export a billing run: allocate the rôle number, write the file(s), record the run
    and print a summary (with --dry-run: check it all, write nothing)."""
    as_json = output is Output.json
    interrupts = _Interrupts()
    left: str | None = None  # what became of a store the refused export created
    line_open = [False]  # a progress line printed, not ended yet
    try:
        try:
            # imported here, inside the handling: Ctrl-C while pesgen loads (a second or
            # so) is said as any other before the commit
            from .runs import export_recorded

            official_xsd = _official(official_xsd)
            fixed = _parse_date(run_date)
            progress = None
            if not quiet and not as_json and sys.stderr.isatty():
                def progress(n: int) -> None:
                    # pesgen's own text: its \r must reach the terminal as such
                    typer.echo(f"\r{n} invoice(s) read…", err=True, nl=False)
                    line_open[0] = True
            if out is None and not dry_run:
                raise UsageError("--out is required (only --dry-run goes without)")
            _check_db(db)  # an option's mistake, said first
            opened: list[Any] = []

            def open_store() -> Any:
                # called by an export once the mapping, format, output folder and input
                # are checked when it would create the store (creates_store): a store
                # --create-store makes is not left behind by their refusal; a refusal
                # after it is opened removes it (_new_store_left). By a dry run first:
                # read only, it creates nothing
                opened.append(_store(db, quiet, line_open, read_only=dry_run,
                                     create=create_store))
                return opened[0]

            def creates_store() -> bool:
                # a pesgen store there is opened early by a titres export (its titles
                # are then prepared once, with its next titre number)
                from .store import is_store

                return not is_store(_store_url(db)[0])

            try:
                result = export_recorded(open_store, mapping, input, out, fixed, official_xsd,
                                         formats_dir, progress, dry_run=dry_run,
                                         on_commit=interrupts.hold, creates_store=creates_store,
                                         interrupted=interrupts.heard)
            except BaseException as exc:
                left = _store_left(opened, exc)
                raise
            [store] = opened
            if line_open[0]:
                _echo_err("")
        except KeyboardInterrupt:
            # before the run was recorded (past it, export_recorded says so: StateError):
            # the temporary files are gone, the transaction rolled back
            if line_open[0]:
                _echo_err("")
            _say_interrupted("export")
            if left:
                _echo_err(left)
            raise typer.Exit(130) from None
        except StoreLocked as exc:
            from .store import store_locked

            locked = store_locked(exc.url, exc.seconds, "the export stopped waiting for it; "
                                  "nothing written, no number used")
            if as_json:
                _export_refused_json(locked, int(locked.exit_code), dry_run, left)
            _fail(locked, then=left)
            return
        except PesgenError as exc:
            if as_json:
                _export_refused_json(exc, int(exc.exit_code), dry_run, left)
            _fail(exc, then=left)
            return
        except Exception as exc:
            failure = _machine_failure(exc)
            if failure is None:
                raise
            if as_json:
                _export_refused_json(failure[0], int(failure[1]), dry_run, left)
            _echo_err(failure[0])
            if left:  # as a refusal's last line: what became of the store it created
                _echo_err(left)
            raise typer.Exit(int(failure[1])) from None
        if as_json:
            _export_json(result, store, mapping, out, official_xsd, dry_run)
            interrupts.say_held()
            return
        if quiet:
            interrupts.say_held()
            return
        from .store import shown_store

        if dry_run:
            _say(f"pesgen {__version__}: format {result.fmt.name}, mapping {mapping} "
                       "(dry run: nothing written, no number used)")
            _say(f"  store: {shown_store(store.url)} ({_DRY_STORE[store.found]}"
                       + (f"; read with the {store.pending_migrations} migration(s) the export "
                          "applies first, not kept" if store.pending_migrations
                          and store.found == "store" else "") + ")")
        else:
            _say(f"pesgen {__version__}: format {result.fmt.name}, mapping {mapping}, "
                       f"run {result.run_id}")
            # the store the run is recorded in: where `runs` and `regenerate` will find it
            _say(f"  store: {shown_store(store.url)}"
                       + (" (created by this run)" if store.created else ""))
        if official_xsd is not None and result.fmt.is_pes:
            # said as the finance package's "not applied" is: --official-xsd may come from
            # PESGEN_OFFICIAL_XSD or the configuration, which the command line does not show
            _say(f"  DGFiP XSD: applied ({official_xsd})")
        elif official_xsd is not None:
            _say(f"  DGFiP XSD: not applied ({result.fmt.name} is a finance package's "
                       "import, not a PES file)")
        wrote = "would write" if dry_run else "wrote"
        for f in result.files:
            _say(f"  {wrote} {f.path}  (IdBord {f.bordereau}, {f.titles} title(s), "
                       f"total {f.total:.2f}, sha256 {f.sha256[:16]}…)")
        for ref in result.references:
            _say(f"  {wrote} {ref}  (payment references)")
        for name in result.skipped:
            _say(f"  {'would not write' if dry_run else 'not written'}: {name} (empty; "
                       "the format says when_empty: skip)")
        _say(f"titles: {result.titles}, total {result.total:.2f}")
        if not dry_run:
            _say_left_by_others(out)
        if result.left_out:
            policies = Counter(lo.policy for lo in result.left_out)
            # by policy when there are two: the zero totals among hundreds billed already
            by = (" (" + ", ".join(f"{k} ×{v}" for k, v in sorted(policies.items())) + ")"
                  if len(policies) > 1 else "")
            _say(f"left out: {len(result.left_out)}{by}")
            for lo in result.left_out:
                _say(f"  - {lo.invoice} ({lo.origin}): {lo.reason} (policy {lo.policy})")
        if result.notes:
            counts = result.notes.counts()
            _say("policies applied: "
                       + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())))
            fields: Counter[str] = Counter()
            grouped = False
            for line, alike in _note_lines(result.notes, fields):
                grouped = grouped or alike
                _say(line)
            if fields:
                _say(f"  - *: transliterate: {sum(fields.values())} value(s) changed to "
                           "the output's characters: " + ", ".join(
                               f"{k} ×{v}" for k, v in sorted(fields.items())))
            if grouped:
                _say(f"  (a note alike for more than {ALIKE} invoices is said once, naming "
                     f"the first {ALIKE_NAMED}: " + (
                         "--format json lists each" if dry_run else
                         f"`pesgen runs extract {result.run_id}{db_option(db)} --out DIR` "
                         "gives the dry "
                         "run whose --format json lists each") + ")")
        interrupts.say_held()
    finally:
        interrupts.release()


def _shown_notes(notes: Any, transliterated: Counter[str]) -> Any:
    """The policy notes an export's summary lists one by one, as they are unpacked: not
    the civility table's (counted only), nor a transliteration of a value that
    identifies nothing outside pesgen, counted per field in ``transliterated`` instead
    (said once: `*: transliterate: N value(s)…`)."""
    from .build import noted_field

    for n in notes:
        if n.policy == "transliterate":
            field = noted_field(n)
            transliterated[field] += 1
            if field not in _IDENTIFIERS:
                continue
        elif n.policy == "civility":
            continue
        yield n


def _note_lines(notes: Any, transliterated: Counter[str]) -> Iterator[tuple[str, bool]]:
    """The lines of an export's summary listing the notes ``_shown_notes`` gives, in
    their order, ``- INVOICE: kind: what``: but a note alike (the same kind and words)
    for more than ALIKE invoices is said once, where its first is, with how many and the
    first ALIKE_NAMED of them (the line's second item true). The notes are unpacked
    twice: once to count them alike, once to say them (``transliterated`` counted the
    second time)."""
    alike: dict[tuple[str, str], list[str]] = {}  # each note's first invoices
    counts: Counter[tuple[str, str]] = Counter()
    for n in _shown_notes(notes, Counter()):
        if n.invoice != "*":  # a note of the whole run is one already
            key = (n.policy, n.detail)
            counts[key] += 1
            if len(named := alike.setdefault(key, [])) < ALIKE_NAMED:
                named.append(n.invoice)
    said: set[tuple[str, str]] = set()
    for n in _shown_notes(notes, transliterated):
        key = (n.policy, n.detail)
        if n.invoice == "*" or (count := counts[key]) <= ALIKE:
            yield f"  - {n.invoice}: {n.policy}: {n.detail}", False
        elif key not in said:
            said.add(key)
            more = f" and {count - ALIKE_NAMED} more" if count > ALIKE_NAMED else ""
            yield (f"  - {count} invoices ({', '.join(alike[key])}{more}): "
                   f"{n.policy}: {n.detail}"), True


def _export_json(result: Any, store: Any, mapping: Path, out: Path | None,
                 official_xsd: Path | None, dry_run: bool) -> None:
    """An export's summary as ``--format json`` gives it: what the text summary says,
    each item a field (amounts as text with two decimals, as in the files)."""
    from .atomic import left_by_others
    from .store import shown_store

    transliterated: Counter[str] = Counter()
    # field: the one the note is about (PolicyNote.field), null for a note on no one value
    notes = [{"invoice": n.invoice, "policy": n.policy, "origin": n.origin,
              "detail": n.detail, "field": n.field or None}
             for n in _shown_notes(result.notes, transliterated)]
    _json_exit(
        "export", dry_run=dry_run, run=None if dry_run else result.run_id,
        format=result.fmt.name, mapping=str(mapping), run_date=result.run_date.isoformat(),
        store={"url": shown_store(store.url),
               # a dry run: what it found there, and the migrations the export would
               # apply first to a store (None: no store yet, the export would make one)
               **({"found": store.found, "pending_migrations":
                   store.pending_migrations if store.found == "store" else None}
                  if dry_run else {"created": bool(store.created)})},
        official_xsd=None if official_xsd is None else {
            "folder": str(official_xsd), "applied": bool(result.fmt.is_pes)},
        files=[{"path": str(f.path), "id_bord": f.bordereau, "titles": f.titles,
                "total": f"{f.total:.2f}", "sha256": f.sha256} for f in result.files],
        references=[str(ref) for ref in result.references],
        skipped=list(result.skipped),
        titles=result.titles, total=f"{result.total:.2f}",
        # holder: the run holding an invoice left out as exported already
        left_out=[{"invoice": lo.invoice, "origin": lo.origin, "reason": lo.reason,
                   "policy": lo.policy, "holder": lo.holder} for lo in result.left_out],
        policies=dict(sorted(result.notes.counts().items())),
        notes=notes,
        transliterated=dict(sorted(transliterated.items())),
        left_by_others=[] if dry_run or out is None else [
            {"file": name, "about": about} for name, about in left_by_others(out)],
        problems=[])


def _export_refused_json(error: PesgenError | str, code: int, dry_run: bool,
                         left: str | None) -> None:
    """A refused export as ``--format json`` gives it, then its exit: the error, every
    problem (``errors.problem_json``), what the refusal leaves (``outcome``: the text's
    last line, "nothing was written." unless the run was recorded before it failed) and
    what became of a store it created (``store``)."""
    from .errors import problem_json

    if isinstance(error, PesgenError):
        message, problems = str(error), error.problems
        outcome = error.outcome if error.outcome is not None else "nothing was written."
    else:  # a failure of the machine or the store, said whole in its line
        message, problems, outcome = error.removeprefix("error: "), [], None
    _json_exit("export", code, message, dry_run=dry_run, outcome=outcome,
               problems=[problem_json(p) for p in problems], store=left)


def _say_left_by_others(folder: Path | None) -> None:
    """Name the temporary files another pesgen run left in the output folder (never
    removed: the folder may be shared, the run may be writing there now)."""
    from .atomic import left_by_others

    left = left_by_others(folder) if folder is not None else []
    if not left:
        return
    shown = [f"{name} ({about})" for name, about in left[:10]]
    if len(left) > 10:
        shown.append(f"… {len(left) - 10} more")
    _say(f"note: {folder} holds {len(left)} temporary file(s) of another pesgen run: "
               f"{', '.join(shown)}. Files of an export (or regenerate) stopped by a hard "
               "kill or a power cut before it put them in place under their names: never "
               "sent, and safe to delete once no pesgen run writes into this folder (one "
               "whose process is running may be writing them now)")


# the values a transliteration changes that identify something outside pesgen (the
# mandate the family signed, the debtor's reference in the school software): each
# change said by invoice, not only counted (the joint debtor's reference too)
_IDENTIFIERS = frozenset({"mandate.rum", "debtor.ref", "joint_payer.ref"})


class _Interrupts:
    """Ctrl-C and SIGTERM during one export (or regenerate) command: held from its run's
    commit on (``hold``; regenerate: from its files being put in place), said after its
    summary (``say_held``), the handlers put back as the command ends (``release``).
    Owned by the command's invocation: nothing of one export is left for the next.

    In pesgen's own process (``main``: ``process_ends``), the command's end is the
    process's, a few tenths of a second later (click's teardown, the interpreter's
    shutdown): an interrupt there would end it 130 (or kill it) though its run is
    committed, its files in place and its summary printed. Once held, Ctrl-C and
    SIGTERM are then ignored until the process exits, with the command's exit code."""

    process_ends = False  # set by ``main``: the command's end is the process's
    said = False  # the command said its interruption (exit 130): ``main`` need not

    def __init__(self, said: str = "interrupt received once the run was recorded: the run "
                 "stands, its files are in place (the summary above is whole)") -> None:
        self.received: list[int] = []  # the signals held
        self._replaced: dict[int, Any] = {}  # the handlers ``hold`` replaced
        self._said = said

    def hold(self) -> None:
        """Called right before the run is committed (the commit is the last step that
        can undo it): from then on the run stands, so Ctrl-C and SIGTERM no longer stop
        the command, not even between the commit and the files being put in place. The
        files are put in place and the summary printed whole, and the command ends 0, as
        the run did (an exit of 130, or a summary cut short, would say the export
        failed). Only in the main thread, where Python runs signal handlers (an export
        run from another thread has none to hold)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._replaced.setdefault(sig, signal.signal(sig, self._held))

    def _held(self, signum: int, _frame: object) -> None:
        self.received.append(signum)

    def heard(self) -> bool:
        """Whether a signal was held: asked while the commit waits for the store's reads
        under way, nothing committed yet, which it then gives up (the export ends 130,
        nothing recorded). Once committed, the run stands (``say_held``)."""
        return bool(self.received)

    def release(self) -> None:
        # ignored, not Python handlers: the interpreter puts the default back for those
        # as it shuts down, where SIGTERM would kill the process
        keep = self.process_ends and bool(self._replaced)
        while self._replaced:
            sig, handler = self._replaced.popitem()
            signal.signal(sig, signal.SIG_IGN if keep else handler)

    def say_held(self) -> None:
        if self.received:
            _echo_err(self._said)


# What a dry run's summary says of the store it read (Store.found)
_DRY_STORE = {
    "store": "read, not changed",
    "empty": "an empty database: read as an empty store; the export would make it one",
    "none": "no store there: read as an empty one, nothing created; the export would "
            "create it",
}


@app.command("check-mapping")
def check_mapping(
    mapping: Annotated[Path, typer.Argument(help="Mapping file to check.")],
    formats_dir: FormatsOpt = None,
    official_xsd: OfficialOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Check a mapping without any input: its schema, TODOs, code tables and templates.

    What it checks: the schema, TODOs left, code tables, fit with its
    format, and its format's templates rendered once on two sample titles, each file
    with a layout, or an XSD of its own, checked against it as an export checks its
    files (exit 6), a PES file against the DGFiP package too with --official-xsd; a
    bound field no template writes is a warning, a value a split policy fills that none
    writes refuses the mapping."""
    from .build import format_fit, format_warnings
    from .errors import MappingError
    from .formats import mapping_format
    from .mapping import load_mapping
    from .render import renderers
    from .sample import check_coverage, check_templates

    as_json = output is Output.json
    warnings: list[Problem] = []
    fmt = None

    def result(error: PesgenError | None) -> dict[str, Any]:
        return _json_result(error, warnings, mapping=str(mapping),
                            format=fmt.name if fmt is not None else None,
                            official_xsd=None if official_xsd is None else {
                                "folder": str(official_xsd),
                                "applied": fmt is not None and bool(fmt.is_pes)})

    try:
        # as export takes it: the option, PESGEN_OFFICIAL_XSD, the configuration file
        official_xsd = _official(official_xsd)
        m = load_mapping(mapping)
        fmt = mapping_format(m, formats_dir)
        if official_xsd is not None and fmt.is_pes:
            from .validate import official_xsd_path

            official_xsd_path(official_xsd)  # a folder without the package: refused now
        renderers(fmt)
        misfits = format_fit(m, fmt)
        if misfits:
            raise MappingError(f"{mapping}: the mapping does not fit format {fmt.name}",
                               misfits)
        warn = warnings.append if as_json else _warn
        for problem in format_warnings(m, fmt):
            warn(problem)
        if official_xsd is None:
            from dataclasses import replace

            from .formats import unvalidated

            # a PES file without an XSD of its own: without the package, nothing
            # validates its sample files here (an export refuses to run without it)
            for problem in unvalidated(fmt):
                warn(replace(problem, message=f"{problem.message}: check-mapping validated "
                             "none of the files it rendered on its sample titles, and an "
                             f"export of format {fmt.name} is refused without it (exit 2)"))
        from .payfip.settings import sample_problems

        # the payfip section's refdet and objet rules on a sample title: a misspelt field
        # gives an empty refdet, and every link would be refused
        for problem in sample_problems(m):
            warn(problem)
        sample, found = check_coverage(m, fmt, warn,
                                       f"{mapping}: a policy of the mapping fills a value "
                                       f"no template of format {fmt.name} writes",
                                       check_templates(m, fmt, laid_out=True,
                                                       validated=True,
                                                       official_xsd=official_xsd))
        broken, what = sample.broken()
        if broken:
            # the export's own checks of its files: the first export would fail so
            raise OutputInvalidError(
                f"{mapping}: the files of format {fmt.name}, rendered on the sample "
                f"titles, {what} ({len(broken)} problem(s)): an export writing them so "
                "is refused", broken)
        from .bundles import joined_widths, layout_widths

        # a limit of format.yaml wider than the layout's column: the policies never
        # apply to the values between, which the export refuses by invoice
        for problem in layout_widths(fmt, m) + joined_widths(fmt, m):
            warn(problem)
        from .sample import civility_unlisted

        # a civility sent as exported (no codes.civility) into a column listing values
        for problem in civility_unlisted(m, fmt):
            warn(problem)
    except PesgenError as exc:
        if as_json:
            _json_report("check-mapping", "mappings", [result(exc)])
        _fail(exc, written=False)
        return
    notice = _number_notice(m, fmt, sample.number_refused)
    if as_json:
        # bound, but declared not carried by the format (format.yaml not_carried); what
        # the format refuses of an invoice number pesgen takes (null: nothing)
        _json_report("check-mapping", "mappings",
                     [{**result(None), "not_carried": found.declared,
                       "not_bound": found.unbound, "invoice_number": notice}])
        return
    _say(f"{mapping}: OK (format {fmt.name}, {len(m.codes.activities)} activity code(s), "
               f"input {m.input.format}; {sample.files} template(s) rendered on sample titles)")
    if official_xsd is not None:  # said as export says it
        _say(f"  DGFiP XSD: applied ({official_xsd})" if fmt.is_pes else
             f"  DGFiP XSD: not applied ({fmt.name} is a finance package's import, not a "
             "PES file)")
    # what it cannot check without an export (a column or JSON path the file lacks, the
    # values): the two commands that do, neither needing nor touching a store's numbers
    import shlex

    args = (f"--mapping {shlex.quote(str(mapping))} --input EXPORT"
            f"{_formats_dir_args(formats_dir)}")
    _say("It read no input. Against an export of the school software:\n"
               f"  pesgen preview {args}\n"
               "    the first invoices beside their records, with their problems (a CSV "
               "column\n    the file lacks among them) and what no binding reads: no store, "
               "nothing\n    numbered\n"
               f"  pesgen export {args} --dry-run\n"
               "    the whole file and every check (a JSON path no invoice has among them), "
               "the\n    store's included (--create-store when there is none yet: read as "
               "empty):\n    nothing written, no number used")
    import textwrap

    if notice is not None:  # only the export's numbers can break it: no warning
        _say(textwrap.fill(notice, 80, subsequent_indent="  ", break_on_hyphens=False,
                           break_long_words=False))
    if found.declared:  # warned of by no one else: said, with where the reasons are
        _say(textwrap.fill(f"Bound, but not carried by format {fmt.name} (the "
                                 f"reasons: not_carried in its format.yaml): "
                                 f"{', '.join(found.declared)}", 80,
                                 subsequent_indent="  ", break_on_hyphens=False))
    if found.unbound:  # left out, as a format that writes them nowhere allows
        _say(textwrap.fill(f"Not bound, and written by no template of format {fmt.name}: "
                           f"{', '.join(found.unbound)} (its files do not carry them)", 80,
                           subsequent_indent="  ", break_on_hyphens=False))


def _number_notice(m: Any, fmt: Any, refused: tuple[str, str, str] | None) -> str | None:
    """check-mapping's notice of an invoice number pesgen takes that the format refuses
    (``SampleRendering.number_refused``), naming the binding; None when it takes one."""
    if refused is None:
        return None
    import re

    from .keys import INVOICE_NUMBER_MAX
    from .sample import LONG_INVOICE_NUMBER

    file_name, place, said = refused
    binding = m.bindings.get("invoice", {}).get("number")
    where = f" ({binding.where})" if binding is not None else ""
    head = f"Invoice numbers: format {fmt.name} writes the invoice number{where} into " \
        f"{file_name}, {place}, "
    tail = ": an invoice of the export whose number is longer is refused at the billing " \
        "run, by invoice, naming the binding; check how long the school's numbers get"
    # the limit, said once: the layout's words or the XSD's maxLength facet
    laid = re.fullmatch(r"is \d+ characters, the layout allows (\d+) \((\S+)\)", said)
    xsd = re.search(r"\((xsd\.[\w-]+): .*maximum length of '(\d+)'", said)
    most = rule = None
    if laid is not None:
        most, rule = laid[1], laid[2]
    elif xsd is not None:
        most, rule = xsd[2], xsd[1]
    if most is not None:
        return (f"{head}which takes at most {most} characters ({rule}), where pesgen takes "
                f"{INVOICE_NUMBER_MAX} (found on a number made up for a sample title, not "
                f"the school's){tail}")
    shown = said.replace(LONG_INVOICE_NUMBER, f"{LONG_INVOICE_NUMBER[:11]}…")
    return (f"{head}which refuses a number of {INVOICE_NUMBER_MAX} characters, as long as "
            f"pesgen takes ({LONG_INVOICE_NUMBER[:11]}…, made up for a sample title, not the "
            f"school's): it {shown}{tail}")


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(
        help="The XML file: a PES_Aller, or a finance package's XML import (give --format "
        "for one without TypFic, such as Corail's).")],
    official_xsd: OfficialOpt = None,
    format_name: Annotated[str | None, typer.Option(
        "--format", help="Format whose XSD to use (default: the one whose XSD allows the "
        "file's TypFic).")] = None,
    formats_dir: FormatsOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the verdict as one JSON document on standard output (the "
        "file, its format, the checks, every problem with its rule, line and XPath), for "
        "CI; the same exit codes.")] = False,
) -> None:
    """Validate an XML file against its format's XSD and, for PES, the bordereau rules.

    The XSD is pesgen's for PES, a bundle's own; the PES bordereau rules apply when the
    file has bordereaux and, with --official-xsd, the DGFiP package (a PES format's
    files only, as export: not a finance package's import)."""
    from .formats import find_format, list_formats
    from .validate import file_typfic, format_of_file, not_xml, validate_pes_file

    known: Format | None = None  # the format, once found (for the error's JSON)
    try:
        if not file.is_file():
            raise UsageError(f"{file}: no such file")
        if format_name is not None:
            fmt, chosen = find_format(format_name, formats_dir), format_name
            known = fmt
            if not any(f.xsd for f in fmt.files):
                layouts = [str(f.layout) for f in fmt.files if f.layout]
                raise UsageError(f"format {fmt.name} has no XSD" + (
                    f"; its files have layouts: pesgen check-layout {layouts[0]} FILE"
                    if layouts else ""))
        start = not_xml(file)
        if start is not None:
            # a CSV or fixed-width file (a layout format's): no XML parse error for it
            from .runs import REFERENCES_SUFFIX

            if format_name is not None:
                hint = f"format {fmt.name}'s files are XML"
            elif file.name.endswith(REFERENCES_SUFFIX):
                # pesgen's own side file, no format's: no layout checks it
                hint = ("this is the payment references file an export writes beside its "
                        "PES file (NumDette, Per, Cle1, Cle2 per title, for the school "
                        "software), checked by no layout: validate the PES file beside it")
            else:
                flat = [f.name for _, f in list_formats(formats_dir)
                        if not isinstance(f, Exception) and any(s.layout for s in f.files)]
                hint = ("a CSV or fixed-width file is checked against its format's layout: "
                        f"pesgen check-layout LAYOUT {file}" + (
                            f" (formats with layouts: {', '.join(flat)}; pesgen validate "
                            "--format NAME names its layout)" if flat else ""))
            raise UsageError(f"{file} is not XML (its first character is {start!r}, not '<'): "
                             "pesgen validate "
                             f"checks XML files; {hint}")
        if format_name is None:
            fmt, typfic = format_of_file(file, formats_dir)
            known = fmt
            chosen = f"{fmt.name} (TypFic {typfic})"
        xsd = next(f.xsd for f in fmt.files if f.xsd)
        official_xsd = _official(official_xsd)
        # as export: the DGFiP package validates PES files, which a finance package's
        # import (a PES-like JVS file, Corail's) is not; the output says it was not applied
        problems = validate_pes_file(file, xsd, official_xsd if fmt.is_pes else None)
        if problems:
            hint = ""
            # (a file declaring a DOCTYPE is not parsed for it: refused unread)
            if format_name is not None and problems[0].rule != "xml.doctype":
                try:
                    file_typ: str | None = file_typfic(file)
                except Exception:  # the problems listed say why
                    file_typ = None
                hint = f" (its TypFic is {file_typ}: without --format, pesgen picks the " \
                       "format from it)" if file_typ else ""
            # a file that is not well-formed stops every pass at its first fault: the
            # header does not name the checks as run (the DGFiP package's is not)
            checks = (_NOT_WELL_FORMED if any(p.rule.startswith("xml.") for p in problems)
                      else _xsd_checks(fmt, xsd, official_xsd))
            raise OutputInvalidError(f"{file} is invalid against format {fmt.name} "
                                     f"({checks}): {len(problems)} problem(s){hint}",
                                     problems)
    except PesgenError as exc:
        if as_json:
            result = _json_result(exc, [], file=str(file),
                                  format=None if known is None else known.name)
            result["problems"] = [_xml_place(p, file.name) for p in result["problems"]]
            _json_report("validate", "files", [result], exc)
        _fail(exc, written=False)
        return
    checks = _xsd_checks(fmt, xsd, official_xsd)
    if as_json:
        _json_report("validate", "files", [{**_json_result(
            None, [], file=str(file), format=fmt.name), "checks": checks}])
        return
    _say(f"{file}: valid as {chosen}: {checks}")


def _xml_place(problem: dict[str, Any], name: str) -> dict[str, Any]:
    """A problem of `validate --json` with where it is in the file taken apart from its
    record (``NAME:LINE XPATH``): ``xml_line`` and ``xpath`` (None where the record does
    not say them: a problem of the whole file)."""
    line = xpath = None
    record = problem["record"] or ""
    if record.startswith(f"{name}:"):
        head, _, rest = record[len(name) + 1:].partition(" ")
        if head.isascii() and head.isdigit():
            line, xpath = int(head), rest or None
    return {**problem, "xml_line": line, "xpath": xpath}


_NOT_WELL_FORMED = ("not well-formed XML: checked up to its first fault only, no XSD "
                    "went through it")


def _xsd_checks(fmt: Any, xsd: Path, official_xsd: Path | None) -> str:
    """What ``validate`` checked a file with: the XSD by its name in format.yaml (pesgen's
    own under schemas/, or the bundle's), whether the PES bordereau rules applied (an XSD
    with BlocBordereau), and the DGFiP package (``official_xsd``: given), applied to a
    PES format's files only: given for another, said not applied (as export says)."""
    from .export import checks_applied

    spec = next(f for f in fmt.files if f.xsd == xsd)
    applied = checks_applied(spec, fmt, official_xsd)
    of = "pesgen XSD" if applied["xsd_of"] == "pesgen" else "the format's own XSD"
    said = f"{of} {applied['xsd']}" + (" + bordereau rules" if applied["bordereau_rules"]
                                       else "")
    if official_xsd is not None and fmt.is_pes:
        said += f" + DGFiP XSD {official_xsd}"
    if not applied["bordereau_rules"]:
        said += "; no PES bordereau rules: its files have no BlocBordereau"
    if official_xsd is not None and not fmt.is_pes:
        said += (f"; DGFiP XSD: not applied ({fmt.name} is a finance package's import, not "
                 "a PES file)")
    return said


@app.command()
def acquit(
    file: Annotated[Path, typer.Argument(help="The PES_ACQUIT XML file the trésorerie's "
                                         "guichet XML returned.")],
    db: DbOpt = None,
    official_xsd: OfficialOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the report as JSON (for the school software).")] = False,
    record: Annotated[bool, typer.Option(
        "--record", help="Also record, per bordereau tied to a run, accepted or rejected, "
        "the acquit's date and errors, the file's name and sha256: `runs list` and `runs "
        "show` then show it. Each element of a file is recorded once (by its line): the "
        "same file again records only those not recorded from it before.")] = False,
    replace: Annotated[bool, typer.Option(
        "--replace", help="With --record: a bordereau already acknowledged otherwise takes "
        "this answer (the one recorded stays in its history); without it, the file is "
        "refused.")] = False,
    run: Annotated[str | None, typer.Option(
        "--run", metavar="<run>", help="With --record: tie the acquit's elements to this run "
        "only (its id, or a unique prefix), where pesgen will not guess: a bordereau whose "
        "DomaineAck is the other recette domain (6 for a rôle, 7 for titres), and a "
        "whole-file rejection (DomaineAck 0-2, no NumBord) of a run of one file. A NumBord "
        "the run does not hold, another exercise, a NomFic of another file type, a domain "
        "that is not a recette, one fitting another run holding that number are still not "
        "tied. A cancelled run, or another "
        "collectivity's, is refused (exit 7).")] = None,
    bordereau: Annotated[int | None, typer.Option(
        "--bordereau", metavar="<idbord>", help="With --run: only this bordereau of the run "
        "(for a whole-file rejection of a run of several files: the bordereau of the file "
        "the trésorerie rejected).")] = None,
) -> None:
    """Read the trésorerie's acknowledgement (PES_ACQUIT): what it accepted or rejected,
    and what to do.

    Each bordereau accepted or
    rejected, the run and file pesgen recorded it in, the errors and the invoices they
    name, and what to do next. Reads the store, records nothing, unless --record.
    With --run, support names the run the acquit answers (docs/state.md).
    Exits 0 when everything is accepted, 9 when something is rejected (recorded or not),
    10 when nothing is but not all is fine (the report's last lines and --json's to_check
    list it): an acceptance with errors, an acceptance pesgen cannot tie to one run (a
    DomaineAck or NomFic contradicting the run, two runs holding the number, another
    collectivity's or budget's acquit, an empty IdColl), an identifier the acquit leaves
    empty or out (a NumBord, ExerciceBord, NumPiece V=""), a NumLigne naming no line of
    its title (rule acquit.line), an acceptance of a bordereau
    cancelled in pesgen (not as annulled by the trésorerie), without --record an answer
    other than the bordereau's status recorded."""

    from .acquit import (
        acquit_arg,
        json_parts,
        named_run,
        payfip_open,
        read_acquit,
        recording_json,
        tie,
    )
    from .acquit import record as record_acquit

    def refused(exc: PesgenError, then: str | None = None) -> None:
        # --json: the refusal as one JSON document on standard output, as export's
        if as_json:
            _acquit_refused_json(file, record, exc, int(exc.exit_code), then)
        _fail(exc, written=False, then=then)

    if replace and not record:
        refused(UsageError("--replace goes with --record (it replaces a bordereau's recorded "
                           "acknowledgement): nothing recorded"))
    if run is not None and not record:
        refused(UsageError("--run goes with --record (it ties the acquit's elements to that "
                           "run and records them): nothing recorded; without --record, "
                           f"`pesgen acquit {acquit_arg(str(file))}"
                           f"{db_option(db)}` "
                           "reads the acquit as pesgen ties it"))
    if bordereau is not None and run is None:
        refused(UsageError("--bordereau goes with --run (it names one bordereau of that "
                           "run): nothing recorded"))
    done = None
    try:
        read = read_acquit(file, _official(official_xsd))
        store = _store(db, must_exist=True)
        with store.reads():  # --record writes below, under the write lock
            named = None if run is None else named_run(read, store, run, bordereau)
            report = tie(read, store, named)
        if record:
            try:
                done = record_acquit(report, store, replace)
            except StoreLocked as exc:
                from .store import stopped_waiting

                # another run's lock (SQLite), or on PostgreSQL the acknowledgements'
                # lock, held past store_lock_timeout: said as what it leaves
                raise stopped_waiting(exc, "acquit --record stopped waiting: nothing "
                                      "recorded") from None
    except PesgenError as exc:
        refused(exc)
        return
    except Exception as exc:
        # a failure of the machine or the store (main says it in text): in JSON too
        failure = _machine_failure(exc)
        if failure is None or not as_json:
            raise
        _acquit_refused_json(file, record, failure[0], int(failure[1]))
        return
    given = str(file)  # the acquit in the commands its next steps give
    to_check = report.to_check(db, reading=not record, file=given)
    if done is not None:
        try:
            # PayFiP links open on the titles of a rejection recorded: to check beside it
            to_check += payfip_open(report, store, db, given)
        except PesgenError as exc:
            refused(exc, then=None if done.recorded_at is None else
                    f"{read.name} was recorded all the same ({done.recorded} bordereau(x): "
                    "`pesgen runs show RUN`); its PayFiP links were not looked up")
            return
    code = int(ExitCode.REJECTED if report.rejected else
               ExitCode.TO_CHECK if to_check else ExitCode.OK)
    if as_json:
        # the head every JSON report has (a refusal's too): ok only when the exit is 0;
        # the elements written as they are made (50 000 held as one text: 542 MiB)
        head, elements, tail = json_parts(report, db, to_check, given)
        if done is not None:
            tail["recording"] = recording_json(done)
        for text in _json_streamed("acquit", code, head, "elements", elements, tail):
            typer.echo(text, nl=False)
        if code:
            raise typer.Exit(code)
        return
    _warn_acquit(read.warnings, f"{acquit_arg(given)}{db_option(db)}")
    # with --record, what became of each bordereau is said below instead
    _show_acquit(report, db, len(to_check), recorded=not record, file=given)
    if done is not None:
        _show_recording(read, done, store, named, report.unidentified)
    _show_to_check(report.rejected, to_check)
    if not record:
        _say_unrecorded_rejections(report, file, db)
    if code:
        raise typer.Exit(code)


def _say_unrecorded_rejections(report: Any, file: Path, db: str | None) -> None:
    """Read without --record: the rejections of active bordereaux the store has no
    answer for, with the command that records them. Support copying a rejection's
    `next:` (the cancellation) left it unrecorded: `runs list` then said "no
    acknowledgement recorded", the cancellation's note asked whether one came, and a
    reinstatement was not refused by it (docs/state.md, A rejected bordereau, step 1)."""
    from .acquit import acquit_arg

    numbers = [str(r.bordereau) for r in report.elements
               if r.run is not None and not r.element.accepted and r.bordereau is not None
               and r.recorded is None and r.run.cancelled_at is None]
    if not numbers:
        return
    _say(f"not recorded: the rejection of IdBord {', '.join(numbers)} is read, not "
         f"recorded; record it before cancelling: `pesgen acquit {acquit_arg(str(file))} "
         f"--record{db_option(db)}` (runs list and runs show then show it; runs reinstate "
         "refuses to reinstate a rejected bordereau, payfip link and datamatrix to serve "
         "its titles)")


def _acquit_refused_json(file: Path, record: bool, error: PesgenError | str, code: int,
                         then: str | None = None) -> None:
    """A refused ``pesgen acquit --json``, then its exit: the head every JSON report has
    (``command``, ``ok``, ``exit_code``, ``error``), the file given, every problem
    (``errors.problem_json``: the rule, and the acquit's line in ``record``), and
    whether something was recorded all the same (``recorded``; ``outcome``: the text's
    last line saying so): only a failure after ``--record`` recorded the file."""
    from .errors import problem_json

    if isinstance(error, PesgenError):
        message, problems = str(error), error.problems
    else:  # a failure of the machine or the store, said whole in its line
        message, problems = error.removeprefix("error: "), []
    _json_exit("acquit", code, message, file=str(file), record=record,
               problems=[problem_json(p) for p in problems],
               recorded=then is not None, outcome=then)


def _warn_acquit(warnings: tuple[Problem, ...], given: str, most: int = 10) -> None:
    """What the acquit's reading warns of (acquit.mojibake), on standard error: the
    first ``most``, then how many more (``--json`` gives them all, as ``warnings``;
    ``given``: the acquit's path, quoted, and the --db, as the command takes them)."""
    for w in warnings[:most]:
        _warn(w)
    if len(warnings) > most:
        _echo_err(f"warning: {len(warnings) - most} more value(s) read so (rule "
                  f"{warnings[0].rule}): `pesgen acquit {given} --json` lists them all")


def _show_to_check(rejected: int, to_check: list[Any]) -> None:
    """The report's last lines: what is not all fine, a rejection aside, each with what
    to do (``--json``: ``to_check``); nothing when all is fine."""
    if not to_check:
        return
    _say(f"not all fine: {len(to_check)} to check (exit 10):" if not rejected else
               f"and {len(to_check)} to check beside the {rejected} rejected (exit 9):")
    for x in to_check:
        _say(f"  - {x}")


def _show_recording(read: Any, done: Any, store: Any, named: Any = None,
                    unidentified: int = 0) -> None:
    from .store import shown_store

    file = f"{read.name} (sha256 {read.sha256[:16]}…)"
    as_named = ("" if done.already is None or done.already[0] == read.name
                else f" as {done.already[0]}")
    if done.already is not None and done.recorded_at is None:
        # each element of a file is recorded once: nothing tied now was not before
        _say(f"{file} was recorded already{as_named} on {done.already[1]}: nothing "
                   "recorded" + ("" if named is None else " (--run ties nothing more of a "
                                 "file recorded before)"))
        return
    if done.recorded_at is not None:
        _say(f"{file} recorded on {done.recorded_at} in {shown_store(store.url)}: "
                   f"{done.recorded} bordereau(x)" + (
                       "" if done.already is None else
                       f" (recorded in part before{as_named}, on {done.already[1]})"))
    elif any(x.outcome == "same" for x in done.elements):
        _say(f"{file}: nothing recorded: the store says the same of its bordereaux "
                   "already")
    elif read.unchecked:
        _say(f"{file}: nothing recorded: its IdColl is empty (line "
                   f"{read.id_coll_empty_at}): pesgen ties none of its bordereaux")
    elif named is not None:
        _say(f"{file}: nothing recorded: no element of it is tied to run "
                   f"{named.run_id} (--run)")
    elif unidentified:
        # the acquit does not say which bordereau: it may be one of this store's
        _say(f"{file}: nothing recorded: no bordereau of it is tied to a run of this "
                   f"store ({unidentified} not, for an identifier the acquit leaves empty or "
                   "out: see above)")
    else:
        _say(f"{file}: nothing recorded: no bordereau of it is one of this store's "
                   "runs")
    for x in done.elements:
        _say(f"  {x}")


def _show_acquit(report: Any, db: str | None, checks: int, recorded: bool = True,
                 file: str | None = None) -> None:
    """The report; ``checks``: how many things are to check (listed at its end, by
    ``_show_to_check``); ``recorded``: with what the store holds already of each
    bordereau's acknowledgement; ``file``: the acquit's path, in the commands given."""
    from .acquit import NO_SUCH_PIECE

    a = report.acquit
    _say(f"{shown(a.name)}: PES_ACQUIT of {a.id_coll_said} budget "
               f"{shown(a.cod_bud)}" + (f" (NomFic {shown(a.nom_fic)})" if a.nom_fic else "")
               + f": {len(report.elements)} element(s), "
               + (f"{report.rejected} rejected" if report.rejected else "all accepted")
               + (f", {report.unidentified} not tied for an identifier the acquit leaves "
                  "empty or out (below)" if report.unidentified else "")
               + (f", {checks} to check (listed at the end)" if checks else ""))
    if report.stranger is not None:
        _say(report.stranger)
    if report.named is not None:
        only = report.named.only
        _say(f"--run: tied to {report.named.said} only"
                   + ("" if only is None else f", IdBord {only} only (--bordereau)"))
    if (unchecked := report.lines_unchecked_said) is not None:
        _say(unchecked)  # once, not beside each line
    for r in report.elements:
        e = r.element
        if e.bordereau is not None:
            what = f"IdBord {e.bordereau}" + (f" exercise {e.exercise}"
                                              if e.exercise is not None else "")
        else:
            what = "file" if r.kind == "file" else "element"
        _say(f"{what} (DomaineAck {e.domain} {e.domain_label}, line {e.line}): "
                   f"{r.verdict}")
        for f in r.found:
            _say(f"  run {f.run_id} (TypBord {f.typ_bord})  file {f.file}  "
                       f"{f.titles} title(s)  total {f.total}")
        if r.run is not None and r.from_file is not None and (
                r.recorded is None or (r.recorded.sha256, r.recorded.line) != (
                    a.sha256, e.line)):
            # recorded from this element before otherwise than as tied now (--run)
            _say(f"  {r.from_file_said()}")
        if not r.found and r.from_file is None:
            # a run holding that number whose bordereau the element contradicts: shown,
            # never tied (the verdict says why)
            for x in r.set_aside:
                f = x.run
                _say(f"  possibly run {f.run_id} (TypBord {f.typ_bord})  file {f.file}  "
                           f"{f.titles} title(s)  total {f.total}: NOT tied, {x.short}")
        said = r.recorded_said(a.sha256) if recorded else None
        if said:
            _say(f"  {said}")
        for error in e.errors:
            _say(f"  error {error}")
        for p in r.pieces:
            # beside it, its record in the input the run read (runs from schema 19)
            invoice = f" invoice {invoice_at(p.invoice, p.record)}" if p.invoice else (
                ": the acquit does not say which piece, no invoice named (not guessed)"
                if p.piece.number is None and len(r.found) == 1 else
                f" ({NO_SUCH_PIECE})"
                if len(r.found) == 1
                else "")
            _say(f"  {p.piece.said}{invoice}" + (":" if p.piece.errors and (
                p.piece.number is not None or len(r.found) != 1) else ""))
            for error in p.piece.errors:
                _say(f"    error {error}")
            for line in p.piece.lines:
                # a NumLigne the title tied has no line of (rule acquit.line)
                beyond = p.no_such_line(line, short=True)
                _say(f"    {line.said}" + (f" ({beyond})" if beyond else "")
                     + (":" if line.errors else ""))
                for error in line.errors:
                    _say(f"      error {error}")
        step = r.next_step(db, file)
        if step:
            _say(f"  next: {step}")


@app.command()
def formats(formats_dir: FormatsOpt = None, output: OutputOpt = Output.text) -> None:
    """List the output formats (bundles) found, with their status."""
    from .bundles import unfinished
    from .errors import MappingError
    from .formats import list_formats

    try:
        found = list_formats(formats_dir)
    except PesgenError as exc:
        if output is Output.json:
            _json_report("formats", "bundles", [], exc)
        _fail(exc, written=False)
        return
    if output is Output.json:
        # a broken bundle's problems are its problems; a draft's TODOs left, a README
        # saying another status (check-format refuses them) its warnings
        results = [
            _json_result(fmt, [], name=folder.name, folder=str(folder), status=None,
                         kind=None, title=None)
            if isinstance(fmt, PesgenError) else
            _json_result(None, unfinished(fmt), name=fmt.name, folder=str(folder),
                         status=fmt.status, kind=fmt.kind, title=fmt.title)
            for folder, fmt in found]
        broken = [r["name"] for r in results if not r["ok"]]
        _json_report("formats", "bundles", results,
                     MappingError(_broken(broken)) if broken else None)
        return
    broken = []
    # the name column as wide as the longest name (16 at least, as the shipped ones
    # are listed): a bundle of a longer name pushed its row's columns out of line
    width = max([16] + [len(folder.name if isinstance(fmt, Exception) else fmt.name)
                        for folder, fmt in found])
    for folder, fmt in found:
        if isinstance(fmt, Exception):
            broken.append(folder.name)
            _say(f"{folder.name:<{width}} BROKEN   {fmt}")
            _bundle_problems(getattr(fmt, "problems", []), "    - ")
            continue
        note = ""
        if fmt.status == "reconstructed":
            note = "  [layout reconstructed from public integrations: confirm with the publisher]"
        _say(f"{fmt.name:<{width}} {fmt.status:<13} {fmt.kind:<5} {fmt.title}{note}")
        # a draft's TODOs left, a README saying another status: check-format refuses
        _bundle_problems(unfinished(fmt), "    - not finished: ")
    if broken:
        # a CI job listing the bundles fails on a broken one (exit 3, as check-format)
        _echo_err(f"error: {_broken(broken)}")
        raise typer.Exit(int(ExitCode.MAPPING))


def _broken(names: list[str]) -> str:
    return (f"{len(names)} format bundle(s) BROKEN: {', '.join(names)} (pesgen "
            "check-format NAME says what to fix, by file:line: key)")


_LISTED_PER_BUNDLE = 10


def _bundle_problems(problems: list[Any], prefix: str) -> None:
    """A bundle's first problems under its line in ``formats``, and how many more."""
    for problem in problems[:_LISTED_PER_BUNDLE]:
        _say(f"{prefix}{problem}")
    if len(problems) > _LISTED_PER_BUNDLE:
        _say(f"    … and {len(problems) - _LISTED_PER_BUNDLE} more (pesgen "
                   "check-format NAME lists them all)")


@app.command("check-format")
def check_format(
    name: Annotated[str, typer.Argument(help="Format bundle name.")],
    formats_dir: FormatsOpt = None,
    official_xsd: OfficialOpt = None,
    regen: Annotated[bool, typer.Option(
        "--regen", help="Rewrite the bundle's expected/ files from its fixture (review the "
        "diff before committing).")] = False,
    output: OutputOpt = Output.text,
) -> None:
    """Check a format bundle: its fixture rendered and compared with expected/.

    Render a bundle's fixture/ and compare it byte for byte with its expected/ files,
    after checking those against the bundle's XSD or layout; render its templates on
    check-mapping's two sample titles too (the branches the fixture does not take)."""
    import tempfile

    from .bundles import check_bundle
    from .formats import find_format

    as_json = output is Output.json
    warnings: list[Problem] = []
    removed: list[Path] = []
    diffs: list[str] = []
    fmt = None

    def warn(problem: Problem) -> None:
        if as_json:
            warnings.append(problem)
        else:
            _warn(problem)

    def on_removed(path: Path) -> None:  # a file --regen removes is never removed unsaid
        removed.append(path)
        if not as_json:
            _say(f"removed {path}: the fixture renders no such file")

    try:
        fmt = find_format(name, formats_dir)
        with tempfile.TemporaryDirectory(prefix="pesgen-check-") as tmp:
            problems, diffs = check_bundle(
                fmt, Path(tmp), official_xsd, regen,
                warn=warn, removed=on_removed)
        if problems:
            # the fixture rendered valid (else its export refused it): expected/ predates
            # a change of the layout, XSD or templates, whose diff says what changed
            if diffs and not as_json:
                for diff in diffs:
                    _say(diff)
            said = (f"; the fixture renders differently from them ({len(diffs)} file(s), "
                    "the diff above)" if diffs else "")
            raise OutputInvalidError(
                f"{fmt.name}: the expected files in {fmt.folder / 'expected'} break the "
                f"bundle's layout or XSD{said}" + ("" if regen else (
                    ": once a change of the layout, XSD or templates is intended, `pesgen "
                    f"check-format {name}{_formats_dir_args(formats_dir)} --regen` writes "
                    "them again from the fixture (review them)")), problems)
        if diffs:
            if not as_json:
                for diff in diffs:
                    _say(diff)
            raise OutputInvalidError(
                f"{fmt.name}: the fixture renders differently from expected/ "
                f"({len(diffs)} file(s)); --regen rewrites expected/ once the change is "
                "intended")
    except PesgenError as exc:
        if as_json:
            _json_report("check-format", "bundles", [_bundle_json(name, fmt, exc, warnings,
                                                                  diffs, removed)])
        _fail(exc, written=regen)
        return
    if as_json:
        _json_report("check-format", "bundles", [_bundle_json(name, fmt, None, warnings,
                                                              diffs, removed)])
        return
    _say(f"{fmt.name}: {'expected/ regenerated; ' if regen else ''}the fixture renders "
               f"expected/ byte for byte ({fmt.folder})")


def _bundle_json(name: str, fmt: Any, error: PesgenError | None, warnings: list[Problem],
                 diffs: list[str], removed: list[Path]) -> dict[str, Any]:
    """check-format's result for one bundle, as --format json gives it."""
    result = _json_result(error, warnings, name=name,
                          folder=str(fmt.folder) if fmt is not None else None,
                          status=fmt.status if fmt is not None else None)
    result.update(diffs=diffs, removed=[str(p) for p in removed])
    return result


@app.command("check-layout")
def check_layout(
    layout: Annotated[Path, typer.Argument(help="Layout file (YAML).")],
    files: Annotated[list[Path] | None, typer.Argument(
        help="Files to validate against it, e.g. a sample from the publisher.")] = None,
    encoding: Annotated[str | None, typer.Option(
        "--encoding", help="Encoding when the layout declares none (default UTF-8).")] = None,
) -> None:
    """Check a layout file, and validate flat files (CSV, fixed-width) against it.

    LAYOUT is a path, or a bundle's layout by FORMAT/FILE (a shipped bundle's, e.g.
    bl-emagnus/wtamc001.layout.yaml)."""
    from .formats import layout_bundle
    from .layout import charset_misfits, load_layout, validate_file

    try:
        path = _layout_path(layout)
        compiled = load_layout(path)
        # the characters pesgen writes in its text: the bundle's charset, not the layout's
        bundle = layout_bundle(path)
        if isinstance(bundle, PesgenError):
            # its OK below is the layout's alone: the bundle is BROKEN, its charset unsaid
            folder = path.parent
            _echo_err(f"warning: {folder / 'format.yaml'}, beside the layout, does not load: "
                      f"{bundle}; the layout is checked alone, without the bundle's "
                      f"charset; pesgen check-format {folder.name} --formats-dir "
                      f"{folder.parent} lists what to fix")
            bundle = None
        problems = []
        for file in files or []:
            if not file.is_file():
                raise UsageError(f"{file}: no such file")
            problems += validate_file(file, compiled, str(file), encoding)
            if bundle is not None:
                found, count = charset_misfits(file, compiled, bundle[0].charset, bundle[1],
                                               str(file), encoding)
                for problem in found:
                    _warn(problem)
                if count > len(found):
                    _echo_err(f"warning: {file}: {count - len(found)} more value(s) outside "
                              f"charset {bundle[0].charset} (rule layout.charset)")
        if problems:
            raise OutputInvalidError(f"{len(problems)} problem(s) against layout "
                                     f"{compiled.name}", problems)
    except PesgenError as exc:
        _fail(exc, written=False)
        return
    columns = sum(len(r.columns) for r in compiled.records)
    _say(f"{layout}: layout {compiled.name} OK ({compiled.kind}, "
               f"{len(compiled.records)} record type(s), {columns} column(s), encoding "
               f"{compiled.encoding or (encoding or 'UTF-8') + ' (--encoding)'})")
    if bundle is not None:
        _say(f"  its text is held to charset {bundle[0].charset}, format {bundle[0].name}'s "
             f"({bundle[1]}): pesgen writes no other character into it")
    for file in files or []:
        _say(f"{file}: valid against {compiled.name}")


def _layout_path(layout: Path) -> Path:
    """check-layout's LAYOUT: a file there, else a layout of a format bundle named
    FORMAT/FILE (a shipped one's, or one of PESGEN_FORMATS_PATH's: the folders pesgen
    finds formats in, in their order); else a usage error, as a file to validate that is
    missing is (a layout a bundle names that is missing is the bundle's error, exit 3)."""
    from .resources import format_dirs, inside

    if layout.exists():
        return layout
    if len(layout.parts) == 2 and not layout.is_absolute():
        for folder in format_dirs():
            candidate = folder / layout
            if inside(folder / layout.parts[0], candidate) and candidate.is_file():
                return candidate
    raise UsageError(f"{layout}: no such layout file, nor a format bundle's layout (give a "
                     "path, or FORMAT/FILE such as bl-emagnus/wtamc001.layout.yaml; `pesgen "
                     "formats` lists the bundles)")


@app.command("new-format")
def new_format(
    name: Annotated[str, typer.Argument(help="Bundle name, e.g. ciril-civil-finance.")],
    kind: Annotated[str, typer.Option("--kind", help="xml, csv or fixed.")],
    folder: Annotated[Path, typer.Option(
        "--dir", help="Folder of format bundles to create it in (default: here).")] = Path("."),
) -> None:
    """Scaffold a draft format bundle: format.yaml, a template with the three macros, a
    layout (csv, fixed) or an XSD (xml), fixture/ and expected/. Files only."""
    from .resources import data_dir, inside
    from .scaffold import new_format as scaffold
    from .scaffold import next_steps

    try:
        created = scaffold(name, kind, folder)
    except PesgenError as exc:
        _fail(exc)
        return
    for path in sorted(p for p in created.rglob("*") if p.is_file()):
        _say(f"  wrote {path}")
    _say(f"next: describe the file in {created}, then, from this folder (as its "
               "README.md says; docs/onboarding.md):")
    for command in next_steps(name, folder):
        _say(f"  {command}")
    if inside(data_dir("templates"), created):
        # the golden test renders every bundle of templates/ that has a fixture/
        _say(f"note: {created} is among the shipped bundles: tests/"
                   "test_golden_formats.py fails until its fixture/ holds an input and its "
                   "mapping and check-format --regen has written expected/")


def _formats_dir_args(formats_dir: list[Path] | None) -> str:
    """`` --formats-dir DIR`` for each folder a command was given, quoted for the shell:
    the next command it prints finds the same bundles."""
    import shlex

    return "".join(f" --formats-dir {shlex.quote(str(d))}" for d in formats_dir or [])


def _say_keys_left_out(shape: Any) -> None:
    """new-mapping's note of the keys of a JSON export its scaffold does not list (past
    peek.MAX_KEYS: keys that are values, invoice numbers or ids, most likely)."""
    from .peek import MAX_KEYS

    said = [f"{n} key(s) of {whose}" for n, whose in (
        (shape.keys_left_out, "its invoices"), (shape.line_keys_left_out, "their lines")) if n]
    if said:
        _echo_err(f"note: {shape.shown}: {' and '.join(said)} left out of the scaffold's "
                  f"listing, which keeps the {MAX_KEYS} the most invoices (lines) hold: "
                  "keys that are values (invoice numbers, ids) name no binding")


@app.command("new-mapping")
def new_mapping(
    collectivity: Annotated[str, typer.Argument(help="Collectivity name, e.g. 'Commune de X'.")],
    format_name: Annotated[str, typer.Option("--format", help="Output format bundle.")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Mapping file to write (default: print it).")] = None,
    input: Annotated[Path | None, typer.Option(
        "--input", "-i", help="The school's billing export (CSV or JSON): its encoding, "
        "delimiter, header's line (below a title) and column names (the keys of every "
        "invoice) fill the input section, and a binding whose column has a usual name "
        "(docs/onboarding.md) is prefilled, marked `check`. No value of the file is read "
        "into the mapping.")] = None,
    formats_dir: FormatsOpt = None,
) -> None:
    """Scaffold a commented mapping for a format, prefilled from --input's export.

    check-mapping, preview and export refuse it, naming each TODO left, until
    every one is filled. With --input, the input section says the export's
    encoding, delimiter and header's line below a title (or its invoices' JSON
    path) with the reason, and lists its columns (the keys of every
    invoice, a key not in every one marked so); a binding one column alone
    fits by the table of usual names is prefilled, with the comment
    `# from column "X": check`; anything else stays TODO. A file it cannot
    read, or a CSV file whose header it cannot find, is refused (exit 4),
    nothing written."""
    from .atomic import write_file
    from .formats import find_format
    from .scaffold import new_mapping as scaffold

    try:
        fmt = find_format(format_name, formats_dir)
        shape = None
        if input is not None:
            from .peek import peek

            shape = peek(input)
            _say_keys_left_out(shape)
        text = scaffold(collectivity, fmt, shape, _formats_dir_args(formats_dir))
        if out is not None:
            if out.exists():
                raise UsageError(f"{out} already exists; pesgen never overwrites a mapping")
            out.parent.mkdir(parents=True, exist_ok=True)
            write_file(out, text, new=True)
    except PesgenError as exc:
        _fail(exc)
        return
    if out is None:
        typer.echo(text, nl=False)
    else:
        import shlex

        # the command as it runs from here: the bundle may be in a --formats-dir only
        _say(f"wrote {out}: fill its TODO values, then pesgen check-mapping "
             f"{shlex.quote(str(out))}{_formats_dir_args(formats_dir)}")


@app.command()
def preview(
    mapping: MappingOpt,
    input: Annotated[Path, typer.Option("--input", "-i", help="The school's billing export.")],
    limit: Annotated[int, typer.Option("--limit", "-n", min=1,
                                       help="How many invoices to show.")] = 3,
    run_date: Annotated[str | None, typer.Option("--date", help="Run date (YYYY-MM-DD).")
                        ] = None,
    formats_dir: FormatsOpt = None,
) -> None:
    """Render the first invoices next to their source records, writing nothing.

    No state store, no number allocated (IdBord 0), nothing written. Exits 4 (input
    invalid) when a title shows a problem, or a JSON path binding none of them answers is refused
    (input.path), 6 when a record breaks its layout, as export would."""
    from .preview import PREVIEW_NUMBER
    from .preview import preview as do_preview

    try:
        shown = do_preview(mapping, input, limit, formats_dir, _parse_date(run_date))
    except PesgenError as exc:
        _fail(exc, written=False)
        return
    _say(f"pesgen preview: format {shown.fmt.name}, mapping {mapping} (IdBord "
               f"{PREVIEW_NUMBER}: nothing numbered, nothing written)")
    for name, head in shown.heads.items():
        if head.strip():
            _say(f"== {name}: head")
            _say(_indent(head))
    for item in shown.items:
        label = item.invoice or "(no invoice number)"
        _say(f"-- invoice {label}  from {item.origin}")
        for origin in item.line_origins:
            _say(f"   line from {origin}")
        if item.left_out:
            _say(f"   left out: {item.left_out.reason} (policy {item.left_out.policy})")
        for note in item.notes:
            _say(f"   policy {note.policy}: {note.detail}")
        for problem in item.problems:
            _say(f"   PROBLEM {problem}")
        for name, text in item.records.items():
            _say(f"== {name}")
            typer.echo(_indent(text))
    for name, tail in shown.tails.items():
        if tail.strip():
            _say(f"== {name}: tail")
            _say(_indent(tail))
    for problem in shown.layout_problems:
        _say(f"LAYOUT {problem}")
    for problem in shown.path_problems:
        _say(f"PROBLEM {problem}")
    for note in shown.notes:
        _say(f"policy {note.policy} (run): {note.detail}")
    if shown.unread:
        # informational: a column left unbound (Pays) is a common onboarding slip
        more = len(shown.unread) - _UNREAD_SHOWN
        _say("not read by the mapping: " + ", ".join(shown.unread[:_UNREAD_SHOWN])
                   + (f", … ({more} more)" if more > 0 else ""))
    bad = (sum(len(i.problems) for i in shown.items) + len(shown.layout_problems)
           + len(shown.path_problems))
    # a file only the DGFiP package validates: the export needs it (note no_xsd)
    dgfip = " --official-xsd DIR" if any(n.policy == "no_xsd" for n in shown.notes) else ""
    _say(f"{len(shown.items)} invoice(s) shown; {bad} problem(s)"
         + ("" if bad else f"; run pesgen export{dgfip} to validate and number the whole "
            "file"))
    if bad:
        # the code pesgen export would end with on these invoices (docs/onboarding.md)
        code = shown.exit_code
        _echo_err(f"error: {bad} problem(s) shown above: pesgen export would refuse these "
                  f"invoices ({'input' if code == ExitCode.INPUT else 'output'} invalid, "
                  f"exit {int(code)})")
        raise typer.Exit(int(code))


# how many input columns (or JSON paths) no binding reads preview names
_UNREAD_SHOWN = 12


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.rstrip("\n").split("\n"))


@app.command()
def version() -> None:
    """Print pesgen's version."""
    _say(__version__)


def _version_option(value: bool) -> None:
    """``pesgen --version``, what a newcomer types first: the version, as ``pesgen
    version`` prints it (click's 'No such option' before)."""
    if value:
        _say(__version__)
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version_option, is_eager=True,
        help="Print pesgen's version (as `pesgen version`) and exit.")] = False) -> None:
    """pesgen: school billing exports to PES V2 (DGFiP) and finance packages."""

runs_app = typer.Typer(no_args_is_help=True, cls=HelpGroup,
                       help="The run registry: what was exported, when, with what.")
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    mapping: Annotated[Path | None, typer.Option("--mapping", "-m",
                                                 help="Only runs of this mapping file.")] = None,
    run_date: Annotated[str | None, typer.Option(
        "--run-date", help="Only runs whose files bear this date (YYYY-MM-DD): `export "
        "--date`, the run date, which need not be the day it was recorded.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only runs recorded on or after this day (YYYY-MM-DD, UTC).")
    ] = None,
    until: Annotated[str | None, typer.Option(
        "--until", help="Only runs recorded on or before this day (YYYY-MM-DD, UTC).")
    ] = None,
    db: DbOpt = None,
    output: RunsOutputOpt = Output.text,
) -> None:
    """List recorded runs (--run-date D: the file of date D).

    Oldest first, each with when it was recorded and its run date
    (the date its files bear: `export --date`), status, IdBord, titles, total, mapping
    and, for a PES run, its bordereaux' Hélios status. `--run-date D`: the file of date
    D. `pesgen regenerate RUN --out NEW_DIR` rebuilds a run's files byte for byte."""
    from decimal import Decimal

    try:
        day = _parse_date(run_date, "--run-date")
        first, last = _parse_date(since, "--since"), _parse_date(until, "--until")
        if first and last and last < first:
            raise UsageError(f"--until {last} is before --since {first}: no day between them")
        store = _store(db, must_exist=True)
        with store.reads():  # not waiting for an export to finish (docs/state.md)
            records = store.list_runs(str(mapping) if mapping else None, day, first, last)
            # each bordereau's Hélios status, as `pesgen acquit --record` recorded it
            acks = store.acknowledgements({r.id for r in records if r.pes})
            # a --mapping matching no run: which mapping files the store's runs name
            others = store.mapping_paths() if (mapping or day or first or last) \
                and not records else (0, [])
            # a --run-date matching no run of a store that holds runs: the nearest ones
            near = store.run_dates_near(day) if day and others[0] else (None, None)
    except PesgenError as exc:
        if output is Output.json:
            _runs_json("runs list", exc=exc)
        _fail(exc, written=False)
        return
    dated = bool(day or first or last)
    if output is Output.json:
        _runs_json("runs list", runs=[_run_json(r, acks.get(r.id, {})) for r in records],
                   # a --mapping matching no run of a store that holds runs
                   other_mappings=None if not others[0] or not mapping or dated else {
                       "count": others[0], "paths": others[1]},
                   # a --run-date matching no run of a store that holds runs
                   nearest_run_dates=None if not day or not others[0] else {
                       "before": near[0], "after": near[1]})
        return
    if not records and others[0] and dated:
        # the file of date D asked for and none found: the filters said, and the run
        # dates nearest D, which the one looked for may bear (a term dated the 30th)
        asked = [f"of run date {day}"] if day else []
        asked += [f"recorded from {first}"] if first else []
        asked += [f"recorded up to {last}"] if last else []
        asked += [f"of mapping {Path(mapping).expanduser().resolve()}"] if mapping else []
        nearest = ", ".join(f"{side} {when}" for side, when in (
            ("before", near[0]), ("after", near[1])) if when)
        nearest = f"this store's nearest run dates: {nearest}" if nearest else ""
        _say(f"no run {', '.join(asked)} in this store"
             + (f": {nearest}" if nearest else "")
             + " (pesgen runs list lists them all)")
    elif not records and others[0]:
        # a path typed from another folder read as 'no run recorded', the store full
        count, paths = others
        more = ", …" if count > len(paths) else ""
        _say(f"no run of mapping {Path(mapping or '').expanduser().resolve()} in this store: "
             f"its runs are of {count} other mapping file(s): {', '.join(paths)}{more} "
             "(pesgen runs list lists them all)")
    elif not records:
        _say("no run recorded")
    for r in records:
        last = r.first_number + r.bordereaux - 1
        numbers = f"{r.first_number}" if last == r.first_number else f"{r.first_number}-{last}"
        if r.cancelled_bordereaux and r.status != "cancelled":
            numbers += f" ({', '.join(map(str, r.cancelled_bordereaux))} cancelled)"
        # the run's titles and total as recorded; with bordereaux cancelled on their own,
        # what stands of them and what was freed
        part = "" if r.cancelled_figures is None or r.status == "cancelled" else (
            f" (active {r.titles - r.cancelled_figures[0]} title(s), "
            f"{Decimal(r.total) - Decimal(r.cancelled_figures[1]):.2f}; cancelled "
            f"{r.cancelled_figures[0]} title(s), {r.cancelled_figures[1]})")
        # the SIRET: a store may hold several collectivities' runs; the run date (--date:
        # the files' dates, DteStr…) beside when it was recorded, which it need not be: the
        # October run recorded on 3 November is found by its date. On every line, so that
        # the columns stay aligned
        _say(f"{r.id}  {r.created_at}  run date {r.run_date}  {r.status:<9}  {r.format}  "
                   f"SIRET {r.id_coll} "
                   f"budget {r.cod_bud}  "
                   f"exer {r.exercise}  "
                   f"IdBord {numbers}  {r.titles} title(s)  {r.total}{part}  {r.mapping_path}")
        if r.pes and r.bordereaux:  # a finance package's run: the package sends its PES
            said = _helios(r.first_number, r.bordereaux, acks.get(r.id, {}), r.typ_bord)
            _say(f"  Hélios: {said}")


def _runs_json(command: str, exc: PesgenError | None = None, code: int = 0,
               **fields: Any) -> None:
    """A ``runs`` command's JSON report (``--format json``; regenerate's and numbering's
    too), then its exit: ``fields``, or ``exc``'s message and problems (with ``fields``:
    what a refusal says besides); ``code``: the exit of a result that is no error (`runs
    find`: 1 when no run exported the invoice)."""
    from .errors import problem_json

    if exc is not None:
        _json_exit(command, int(exc.exit_code), str(exc),
                   problems=[problem_json(p) for p in exc.problems], **fields)
    _json_exit(command, code, None, **fields)


def _run_json(r: Any, acks: dict[int, list[Any]]) -> dict[str, Any]:
    """One run of `runs list --format json`: what its text line says, each a field, and
    each bordereau's Hélios status as `pesgen acquit --record` recorded it (a finance
    package's run has none: the package sends its own PES)."""
    bordereaux = []
    for number in range(r.first_number, r.first_number + r.bordereaux):
        bordereaux.append({
            "id_bord": number, "cancelled": number in r.cancelled_bordereaux
            or r.status == "cancelled",
            "helios": None if not r.pes else _helios_json(acks.get(number))})
    cancelled = None if r.cancelled_figures is None or r.status == "cancelled" else {
        "titles": r.cancelled_figures[0], "total": r.cancelled_figures[1]}
    return {"run": r.id, "created_at": r.created_at, "status": r.status, "format": r.format,
            "id_coll": r.id_coll, "cod_bud": r.cod_bud, "exercise": r.exercise,
            "typ_bord": r.typ_bord, "titles": r.titles, "total": r.total,
            "cancelled_part": cancelled, "bordereaux": bordereaux,
            "mapping": r.mapping_path, "input": r.input_name, "run_date": r.run_date,
            "out_dir": r.out_dir, "cancel_reason": r.cancel_reason}


def _helios_json(found: list[Any] | None) -> dict[str, Any]:
    """A PES bordereau's Hélios status as `runs list` and `runs find --format json` give
    it (``found``: its acknowledgements, latest first; None: none recorded)."""
    if not found:
        return {"status": "not recorded"}
    return {"status": "accepted" if found[0].accepted else "rejected",
            "on": found[0].issued_on, "error_count": found[0].error_count,
            "file": found[0].file, "domain": found[0].domain}


def _helios(first: int, count: int, acks: dict[int, list[Any]], typ_bord: str) -> str:
    """A run's bordereaux by Hélios status, as `pesgen acquit --record` recorded it:
    ``IdBord 41-42 accepted on 2026-11-24; IdBord 43 rejected on 2026-11-24 with 3
    error(s)``, each said ``(whole file)`` or ``(tied by --run)`` when so recorded."""
    from .acquit import recorded_tie

    groups: dict[str, list[int]] = {}
    for number in range(first, first + count):
        found = acks.get(number)
        said = (found[0].outcome + recorded_tie(found[0].domain, typ_bord) if found
                else NO_ACK)
        groups.setdefault(said, []).append(number)
    return "; ".join(f"IdBord {_ranges(numbers)} {said}" for said, numbers in groups.items())


# a bordereau of which `pesgen acquit --record` recorded nothing (the trésorerie may have
# answered: the store does not know)
NO_ACK = "no acknowledgement recorded"


def _ranges(numbers: list[int]) -> str:
    """1, 2, 3, 5 -> ``1-3, 5``."""
    parts: list[list[int]] = []
    for n in numbers:
        if parts and parts[-1][1] == n - 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


@runs_app.command("show")
def runs_show(run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
              invoices: Annotated[bool, typer.Option(
                  "--invoices", help="Also list the run's invoices: IdBord, IdPce, NumDette, "
                  "amount, number of lines, active or cancelled.")] = False,
              db: DbOpt = None,
              output: RunsOutputOpt = Output.text) -> None:
    """Show one run: numbers, files and checksums, inputs, policies applied; with
    --invoices, its invoices."""
    import json

    from .store import pes_typ_bord, unpack_notes

    try:
        store = _store(db, must_exist=True)
        with store.reads():
            r = store.get_run(run)
            titles = list(store.run_titles(r["id"])) if invoices else []
            acks = store.acknowledgements([r["id"]], history=True).get(r["id"], {})
            # the invoice of each IdPce an error names, as `pesgen acquit` names it: support
            # reading the run tells the family's invoice without the acquit file; with its
            # lines, to check each IdLigne named as acquit does (rule acquit.line); the
            # bordereaux read at once (bordereaux_titles), not a query each
            named = [number for number, found in acks.items()
                     if any(x["piece"] not in (None, "") for x in found[0].errors)]
            pieces = store.bordereaux_titles(r["id"], named) if named else {}
    except PesgenError as exc:
        if output is Output.json:
            _runs_json("runs show", exc=exc)
        _fail(exc, written=False)
        return
    from .runs import bordereau_of, cancelled_bordereaux, files_not_in_place, not_in_place

    gone = cancelled_bordereaux(r)
    of = bordereau_of(r)
    missing = not_in_place(r)
    if output is Output.json:
        _runs_json("runs show", run=_shown_run_json(r, gone, of, missing, acks, pieces,
                                                     titles if invoices else None))
        return
    partly = "" if r["status"] == "cancelled" or not gone else \
        f"; IdBord {', '.join(map(str, sorted(gone)))} cancelled"
    _say(f"run {r['id']} ({r['status']}{partly})")
    _say(f"  created     {r['created_at']} by pesgen {r['pesgen_version']}")
    _say(f"  format      {r['format']}  (bundle sha256 {r['format_sha256'][:16]}…)")
    _say(f"  mapping     {r['mapping_path']}  (sha256 {r['mapping_sha256'][:16]}…)")
    pol = json.loads(r["policies"])
    _say(f"  input       {_recorded_input(r, pol)}")
    _say(f"              (`pesgen runs extract {r['id']}{db_option(db)} --out DIR` writes "
         "this mapping, input and format bundle as recorded)")
    _say(f"  collectivity {r['id_coll']} budget {r['cod_bud']} exercise {r['exercise']} "
               f"TypBord {r['typ_bord']}")
    _say(f"  run date    {r['run_date']}; {r['titles']} title(s), total {r['total']}, "
               f"{r['invoice_count']} invoice(s)")
    _say(f"  output dir  {r['out_dir']}")
    if missing:
        _say(f"  not there   {files_not_in_place(r['id'], r['out_dir'], missing)}")
    for f in r["files"]:
        state = "  cancelled" if of(f["name"]) in gone else \
            "  not in the output dir" if f["name"] in missing else ""
        if f["id_bord"] is None:  # the payment references of the run's bordereaux
            _say(f"  file        {f['name']}  payment references  sha256 {f['sha256']}"
                       f"{state}")
            continue
        _say(f"  file        {f['name']}  IdBord {f['id_bord']}  {f['titles']} title(s)  "
                   f"{f['total']}  sha256 {f['sha256']}{state}")
    _show_validation(r["validation"])
    for name in pol.get("skipped_files", []):
        _say(f"  not written {name}: empty (when_empty: skip)")
    for lo in pol.get("left_out", []):
        # the input record, as the export's summary and `runs find` give it
        _say(f"  left out    {invoice_at(lo['invoice'], lo.get('origin'))}: {lo['reason']} "
                   f"(policy {lo['policy']})")
    notes = unpack_notes(pol)
    if notes:
        from collections import Counter as _Counter

        counts = _Counter(n["policy"] for n in notes)
        _say("  policies    " + ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items())))
        for n in notes:
            if n["policy"] == "unwritten":  # data the mapping reads that no file holds
                _say(f"  unwritten   {n['detail']}")
            elif n["policy"] == "payfip":
                # money paid online through a cancelled title, which this run bills again:
                # for the trésorerie to settle, said whole after the run (an export run
                # with --quiet never printed it)
                _say(f"  payfip      {n['invoice']}: {n['detail']}")
    for id_bord, part in r["cancelled_bordereaux"].items():
        _say(f"  cancelled   IdBord {id_bord} {part['cancelled_at']}: {part['reason']}")
    if r["status"] == "cancelled":
        which = "" if not r["cancelled_bordereaux"] else "the others "
        _say(f"  cancelled   {which}{r['cancelled_at']}: {r['cancel_reason']}")
    for x in r["reinstatements"]:  # the cancellations undone (`runs reinstate`)
        _say(f"  reinstated  IdBord {x['id_bord']} {x['reinstated_at']}: {x['reason']} "
             f"(cancelled {x['cancelled_at']}: {x['cancel_reason']})")
    if pes_typ_bord(r["typ_bord"]):
        for number in range(r["first_number"], r["first_number"] + r["bordereaux"]):
            _show_helios(number, acks.get(number, []), r["typ_bord"], pieces.get(number, {}))
        if (unchecked := _lines_unchecked(r["id"], acks, pieces)) is not None:
            _say(f"  Hélios      {unchecked[1]}")  # once, not beside each line
    if invoices:
        _show_invoices(titles, pol.get("input_path"))


def _recorded_input(r: dict[str, Any], policies: dict[str, Any]) -> str:
    """The input of `runs show`'s text: its absolute path, or for a run recorded before
    pesgen kept it, its name, saying that its folder is not known and that its left-out
    records name it as the export did (relative to the folder the export ran in)."""
    digest = f"sha256 {r['input_sha256'][:16]}…"
    if policies.get("input_path"):
        return f"{policies['input_path']}  ({digest})"
    records = ("; its left-out records name it as the export did, from the folder it ran in"
               if policies.get("left_out") else "")
    return (f"{r['input_name']}  ({digest}; its folder was not recorded: a run recorded "
            f"before pesgen kept it{records})")


def _shown_run_json(r: dict[str, Any], gone: Any, of: Any, missing: Any,
                    acks: dict[int, list[Any]], pieces: dict[int, dict[int, _Title]],
                    titles: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One run as `runs show --format json` gives it: what its text says, each a field
    (``gone``: its cancelled bordereaux, ``of``: a file name's bordereau, ``missing``: the
    files not in its output folder, ``acks``: each bordereau's acknowledgements, latest
    first, ``pieces``: the title of each IdPce their errors name; ``titles``: with
    --invoices)."""
    import json

    from .store import pes_typ_bord, unpack_notes

    pol = json.loads(r["policies"])
    notes = unpack_notes(pol)
    checks = json.loads(r["validation"])
    path = pol.get("input_path")

    def ack(x: Any, number: int) -> dict[str, Any]:
        return {"status": "accepted" if x.accepted else "rejected", "on": x.issued_on,
                "domain": x.domain, "file": x.file, "line": x.line, "sha256": x.sha256,
                "recorded_at": x.recorded_at, "replaced_at": x.superseded_at,
                "errors": [{**e, "invoice": _title_of(e, pieces.get(number, {}))[0],
                            # why its IdLigne is no line of the title, as `pesgen acquit`
                            # says it (rule acquit.line); null: it is one, or not checked
                            "no_such_line": _no_such_line(e, pieces.get(number, {}))}
                           for e in x.errors]}

    unchecked = _lines_unchecked(r["id"], acks, pieces)
    helios = None if not pes_typ_bord(r["typ_bord"]) else [
        {"id_bord": number,
         "acknowledgements": [ack(x, number) for x in acks.get(number, [])]}
        for number in range(r["first_number"], r["first_number"] + r["bordereaux"])]
    return {
        "run": r["id"], "status": r["status"], "created_at": r["created_at"],
        "pesgen_version": r["pesgen_version"],
        "format": {"name": r["format"], "sha256": r["format_sha256"]},
        "mapping": {"path": r["mapping_path"], "sha256": r["mapping_sha256"]},
        "input": {"name": r["input_name"], "sha256": r["input_sha256"],
                  "path": pol.get("input_path")},
        "id_coll": r["id_coll"], "cod_bud": r["cod_bud"], "exercise": r["exercise"],
        "typ_bord": r["typ_bord"], "run_date": r["run_date"], "titles": r["titles"],
        "total": r["total"], "invoice_count": r["invoice_count"], "out_dir": r["out_dir"],
        "files": [{"name": f["name"], "id_bord": f["id_bord"], "titles": f["titles"],
                   "total": f["total"], "sha256": f["sha256"],
                   "cancelled": of(f["name"]) in gone,
                   "in_place": f["name"] not in missing} for f in r["files"]],
        "validation": checks, "skipped_files": pol.get("skipped_files", []),
        "left_out": pol.get("left_out", []),
        "policies": dict(sorted(Counter(n["policy"] for n in notes).items())),
        # the notes the text prints whole: data no file holds, PayFiP money to settle
        "notes": [{"policy": n["policy"], "invoice": n["invoice"], "detail": n["detail"]}
                  for n in notes if n["policy"] in ("unwritten", "payfip")],
        "cancelled_bordereaux": [{"id_bord": int(id_bord), "at": part["cancelled_at"],
                                  "reason": part["reason"]}
                                 for id_bord, part in r["cancelled_bordereaux"].items()],
        "cancelled": None if r["status"] != "cancelled" else {
            "at": r["cancelled_at"], "reason": r["cancel_reason"]},
        "reinstatements": [{"id_bord": x["id_bord"], "at": x["reinstated_at"],
                            "reason": x["reason"], "cancelled_at": x["cancelled_at"],
                            "cancel_reason": x["cancel_reason"]} for x in r["reinstatements"]],
        "helios": helios,
        # the IdLigne its errors name of titles recorded before the store kept their lines
        # (schema 21): not checked, as `pesgen acquit`'s lines_unchecked (null: none)
        "lines_unchecked": None if unchecked is None else {
            "lines": unchecked[0], "runs": [r["id"]], "said": unchecked[1]},
        "invoices": None if titles is None else [
            {"invoice": t["invoice"], "id_bord": t["id_bord"], "id_pce": t["id_pce"],
             "debt_number": t["debt_number"] or None, "amount": t["amount"],
             "active": bool(t["active"]),
             # its record in the run's input (null: recorded before schema 19)
             "record": f"{path}:{t['record']}" if t["record"] and path else None,
             # its lines, IdLigne 1 to this (null: recorded before schema 21)
             "line_count": t["line_count"]}
            for t in titles],
    }


# a title of a bordereau as `runs show` reads it (Store.bordereaux_titles): its invoice,
# its record in the run's input and its number of lines (None: not kept)
_Title = tuple[str, str | None, int | None]
_NO_TITLE: tuple[None, None, None] = (None, None, None)


def _title_of(error: dict[str, Any], titles: dict[int, _Title]
              ) -> _Title | tuple[None, None, None]:
    """The title of the IdPce an acknowledgement's error names (``titles``: IdPce ->
    title of its bordereau); Nones: none named, or none of the bordereau has it."""
    return titles.get(error["piece"], _NO_TITLE) if error["piece"] not in (None, "") \
        else _NO_TITLE


def _no_such_line(error: dict[str, Any], titles: dict[int, _Title],
                  short: bool = False) -> str | None:
    """Why the IdLigne an acknowledgement's error names is no line of its title, in
    `pesgen acquit`'s words (rule acquit.line; ``short``: beside the error); None: it is
    one, or pesgen cannot tell (no title, no IdLigne, the title's lines not kept)."""
    from .acquit import no_such_line

    invoice, record, lines = _title_of(error, titles)
    if invoice is None or error["line"] in (None, ""):
        return None
    return no_such_line(f"IdPce {error['piece']}", f"invoice {invoice_at(invoice, record)}",
                        error["line"], lines, short)


def _lines_unchecked(run_id: str, acks: dict[int, list[Any]],
                     pieces: dict[int, dict[int, _Title]]) -> tuple[int, str] | None:
    """How many IdLigne the errors of the run's latest acknowledgements name of titles
    whose lines the store does not keep (the run recorded before schema 21), each line
    once, and `pesgen acquit`'s sentence saying so; None: none."""
    from .acquit import lines_unchecked, unchecked_said

    count, runs = lines_unchecked(
        (run_id, number, x["piece"], x["line"]) for number, found in acks.items()
        for x in found[0].errors if x["line"] not in (None, "")
        and (t := _title_of(x, pieces.get(number, {})))[0] is not None and t[2] is None)
    said = unchecked_said(count, runs)
    return None if said is None else (count, said)


def _show_helios(number: int, acks: list[Any], typ_bord: str,
                 titles: dict[int, _Title]) -> None:
    """A bordereau's Hélios status (the acknowledgement `pesgen acquit --record`
    recorded), its errors, each piece's with its invoice (``titles``: IdPce -> title of
    the bordereau) and an IdLigne no line of that title has said as `pesgen acquit` says
    it (rule acquit.line), and the ones it replaced; ``(whole file)`` or ``(tied by
    --run)`` after one so recorded (its DomaineAck says it)."""
    from .acquit import AckError, recorded_tie

    if not acks:
        _say(f"  Hélios      IdBord {number} {NO_ACK}")
        return
    now, *before = acks
    _say(f"  Hélios      IdBord {number} {now.outcome}{recorded_tie(now.domain, typ_bord)}"
               f"  ({now.file} line {now.line}, sha256 {now.sha256[:16]}…, recorded "
               f"{now.recorded_at})")
    for x in now.errors:
        # "": the acquit left its number empty
        where = "".join(f"{label} {x[key] if x[key] != '' else '? (empty in the acquit)'} "
                        + (_piece_invoice(x[key], titles) if key == "piece" else
                           f"({beyond}) " if (beyond := _no_such_line(x, titles, True))
                           else "")
                        for key, label in (("piece", "IdPce"), ("line", "IdLigne"))
                        if x[key] is not None)
        _say(f"                {where}error {AckError(x['code'], x['label'])}")
    for old in before:
        _say(f"              before: {old.outcome}{recorded_tie(old.domain, typ_bord)}  "
                   f"({old.file} line {old.line}, "
                   f"sha256 {old.sha256[:16]}…, recorded {old.recorded_at}, replaced "
                   f"{old.superseded_at})")


# what `runs find` and `runs show --invoices` say of a title of a run recorded before the
# store kept each title's input record (schema 19): not kept, rather than nothing
RECORD_NOT_KEPT = "input record not kept: the run was recorded before the store kept it"


def invoice_at(invoice: str, record: str | None) -> str:
    """An invoice and, beside it, its record in the input its run read, as `pesgen
    acquit` names a rejected piece's invoice and `runs find` a title (``FA-2026-00103
    (/srv/exports/school-export.json:$.invoices[2])``), and `runs show` a left-out
    invoice; the invoice alone when ``record`` is None."""
    return f"{invoice} ({record})" if record else invoice


def _piece_invoice(piece: int | str, titles: dict[int, _Title]) -> str:
    """What follows ``IdPce N `` in an error `runs show` lists: the invoice of that title
    of the bordereau (``invoice FA-2026-00103 ``), as `pesgen acquit` names it, or that
    the bordereau has no such title in its words (rule acquit.piece); nothing for a piece
    the acquit left empty (not guessed)."""
    from .acquit import NO_SUCH_PIECE

    if piece == "":
        return ""
    if piece in titles:
        return f"invoice {titles[piece][0]} "
    return f"({NO_SUCH_PIECE}) "


def _show_invoices(titles: list[dict[str, Any]], input_path: str | None) -> None:
    """A run's titles, one a line, aligned: invoice, IdBord, IdPce, NumDette (formats
    that have one), amount, its number of lines (IdLigne 1 to it; runs from schema 21),
    active or cancelled (its run or bordereau), and its record in the run's input (its
    position; runs from schema 19 that kept the input's path, named on the line above
    the table)."""
    debts = any(t["debt_number"] for t in titles)
    records = bool(input_path) and any(t["record"] for t in titles)
    counted = any(t["line_count"] is not None for t in titles)
    rows = [[t["invoice"], str(t["id_bord"]), str(t["id_pce"]),
             *([t["debt_number"] or "-"] if debts else []), t["amount"],
             *([str(t["line_count"]) if t["line_count"] is not None else "-"]
               if counted else []),
             "active" if t["active"] else "cancelled",
             *([t["record"] or "-"] if records else [])] for t in titles]
    head = ["invoice", "IdBord", "IdPce", *(["NumDette"] if debts else []), "amount",
            *(["lines"] if counted else []), "status", *(["record"] if records else [])]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    left = {0, head.index("status"), len(head) - 1}  # texts left, numbers right
    _say(f"  invoices    {len(rows)}  (" + (f"records in {input_path})" if records else
                                              f"{RECORD_NOT_KEPT})"))
    for row in [head, *rows]:
        _say("    " + "  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                                      for i, (cell, w) in enumerate(zip(row, widths,
                                                                        strict=True))
                                      ).rstrip())


def _show_validation(recorded: str) -> None:
    """The checks a run's files passed, as the run recorded them."""
    import json

    checks = json.loads(recorded)
    if "files" not in checks:  # said the same of every file, whatever checked it
        _say(f"  validation  {recorded} (recorded by a pesgen that did not say which "
                   "file was checked by what: see the format bundle recorded with the run)")
        return
    _say(f"  validation  title rules {', '.join(checks['business_rules']) or 'none'} "
               "(every title)")
    for name, applied in checks["files"].items():
        done = []
        if applied["xsd"]:
            # xsd_of: recorded since pesgen says whose XSD it is (a bundle's own is no
            # pesgen XSD); before, every XSD was said to be pesgen's
            of = {"pesgen": "pesgen XSD", "bundle": "the format's own XSD"}.get(
                applied.get("xsd_of", ""), "XSD")
            done.append(f"{of} {applied['xsd']}"
                        + (" + bordereau rules" if applied["bordereau_rules"] else ""))
        if applied["layout"]:
            done.append(f"layout {applied['layout']}")
        if applied["official_xsd"]:
            done.append(f"DGFiP XSD {applied['official_xsd']}")
        elif checks.get("pes"):
            done.append("DGFiP XSD not applied")
        _say(f"              {name}: {'; '.join(done) or 'no check'}")


@runs_app.command("find")
def runs_find(invoice: Annotated[str, typer.Argument(
                  help="Invoice number (or NumDette, with --debt).")],
              debt: Annotated[bool, typer.Option(
                  "--debt", help="Find by NumDette, the debt number of a family's payment "
                  "reference (leading zeros do not count).")] = False,
              db: DbOpt = None,
              output: RunsOutputOpt = Output.text) -> None:
    """Which run(s) hold an invoice or a NumDette, its Hélios and PayFiP status.

    Runs active or cancelled, each with its
    bordereau's Hélios status (`pesgen acquit --record`) and the invoice's PayFiP status
    (as `payfip payments --invoice` reads it; none: no link made), and which left an
    invoice out (exit 1 when no run exported it)."""
    from .keys import invoice_key, named, shown, written_otherwise
    from .store import pes_typ_bord

    try:
        store = _store(db, must_exist=True)
        with store.reads():
            found = store.find_invoice(invoice, by_debt=debt)
            # an invoice a run left out (a zero total…) is in no run's files, but not
            # unknown
            left_out = [] if debt else store.find_left_out(invoice)
            # the number a family reads from its payment reference, given without --debt
            as_debt = [] if debt or found or left_out or not invoice.strip().isdigit() \
                else store.find_invoice(invoice, by_debt=True)
            # "was it sent?": each title's bordereau's Hélios status, as `pesgen acquit
            # --record` recorded it (a finance package's run has none: the package sends
            # its own PES)
            acks = store.acknowledgements(
                {f["run_id"] for f in found if pes_typ_bord(f["typ_bord"])}) if found else {}
            # "a family says it paid": the invoice's PayFiP rows as `payfip payments
            # --invoice` reads them (its store query), none when no link was made
            payfip = _payfip_rows(store, [f["invoice"] for f in found])
            # and its open anomalies: "they paid twice" is recorded once the second
            # payment's notification came, for the trésorerie to refund one
            anomalies = _open_anomalies(store, payfip)
            # in no run: the export that says why, with the latest run's mapping and input
            latest = (store.latest_run_paths() if output is not Output.json and not found
                      and not left_out and not as_debt and not debt else None)
    except PesgenError as exc:
        if output is Output.json:
            _runs_json("runs find", exc=exc)
        _fail(exc, written=False)
        return
    if output is Output.json:
        # like grep: 0 only when a run holds (exported) the invoice
        _runs_json("runs find", code=0 if found else 1, searched=invoice, by_debt=debt,
                   titles=[{
                       "invoice": f["invoice"], "run": f["run_id"],
                       "created_at": f["created_at"], "file": f["file"],
                       "id_coll": f["id_coll"], "cod_bud": f["cod_bud"],
                       "exercise": f["exercise"], "id_bord": f["id_bord"],
                       "id_pce": f["id_pce"], "debt_number": f["debt_number"] or None,
                       "amount": f["amount"], "active": bool(f["active"]),
                       "record": f["record"],
                       # the policy notes its run recorded about the invoice
                       "notes": [{"policy": n.get("policy"), "origin": n.get("origin"),
                                  "detail": n.get("detail"), "field": n.get("field") or None}
                                 for n in f["notes"]],
                       "run_status": f["status"],
                       "bordereau_cancelled_at": f["bordereau_cancelled_at"],
                       "helios": None if not pes_typ_bord(f["typ_bord"]) else _helios_json(
                           acks.get(f["run_id"], {}).get(f["id_bord"]))}
                       for f in found],
                   left_out=[{"invoice": lo["invoice"], "run": lo["run_id"],
                              "created_at": lo["created_at"], "run_status": lo["status"],
                              "origin": lo["origin"], "reason": lo["reason"],
                              "policy": lo["policy"], "holder": lo.get("holder")}
                             for lo in left_out],
                   # a NumDette given without --debt: the invoices holding it as theirs
                   numdette_of=list(dict.fromkeys(f["invoice"] for f in as_debt)),
                   # each title's invoice's PayFiP rows as `payfip payments --format json
                   # --invoice` gives them ([]: no PayFiP link made for it)
                   payfip=[row for rows in payfip.values() for row in rows],
                   # their open PayFiP anomalies (`pesgen payfip anomalies` says each)
                   payfip_anomalies=[{**a, "what_to_do": _anomaly_advice(a["kind"])}
                                     for rows in anomalies.values() for a in rows])
        return
    if not found and not left_out:
        _say(f"{'NumDette ' if debt else ''}{invoice}: in no run")
        if as_debt:
            held = ", ".join(dict.fromkeys(shown(f["invoice"]) for f in as_debt))
            _say(f"  {invoice.strip()} is the NumDette of {held}: pesgen runs find --debt "
                 f"{invoice.strip()}{db_option(db)}")
        elif not debt:
            # "in no run" alone read as "never sent, nothing refused it": a refused export
            # records nothing, so the school's file is where its reason is said again
            _say("  no run of this store exported it or left it out: an export refused, a "
                 f"dry run and a preview record nothing; {_dry_run_of(latest, db)} says "
                 "what refuses it")
        raise typer.Exit(1)
    last_of = {f["invoice"]: f for f in found}
    for f in found:
        if f["active"]:
            state = "active"
        elif f["bordereau_cancelled_at"] is not None:  # the run's other bordereaux stand
            state = f"freed (IdBord {f['id_bord']} cancelled)"
        else:
            state = f"freed ({f['status']})"
        debt_text = f" NumDette {f['debt_number']}" if f["debt_number"] else ""
        # a number written with look-alike characters (a soft hyphen shows as nothing)
        number = f["invoice"]
        odd = "" if number.isascii() or not written_otherwise(number, invoice_key(number)) \
            else f"  (written with other characters: {named(number)})"
        # its record in the input, as acquit names a rejected piece's
        where = invoice_at(shown(number), f["record"] or RECORD_NOT_KEPT)
        _say(f"{where}: run {f['run_id']}  {f['created_at']}  {f['file']}  "
                   f"SIRET {f['id_coll']} budget {f['cod_bud']} exer {f['exercise']}  "
                   f"IdBord {f['id_bord']} "
                   f"IdPce {f['id_pce']}{debt_text}  {f['amount']}  {state}{odd}")
        # what the run did to the invoice's values to fit the file (a discount netted, a
        # street split, a default civility), as its summary said: "the amount, the
        # address on the invoice is not what the file says" answered from the store
        # (one value changed alike in several lines, a label's dash, said once, counted)
        noted = Counter((n["policy"], n["detail"]) for n in f["notes"])
        for (policy, detail), times in noted.items():
            _say(f"  policy: {policy}: {detail}" + (f" (×{times})" if times > 1 else ""))
        if pes_typ_bord(f["typ_bord"]):
            said = _helios(f["id_bord"], 1, acks.get(f["run_id"], {}), f["typ_bord"])
            _say(f"  Hélios: {said}")
        if f is last_of[f["invoice"]]:  # once an invoice, under its last title
            open_ones = anomalies.get(f["invoice"], [])
            _say(f"  PayFiP: {_payfip_said(payfip[f['invoice']], open_ones)}")
            for a in open_ones:
                _say(f"  PayFiP anomaly #{a['id']} open: {a['kind']} (operation "
                     f"{a['id_op'] or 'none'}, {a['at']}): {_anomaly_advice(a['kind'])} "
                     f"(`pesgen payfip anomalies{db_option(db)}` says it in full; once "
                     f"decided, `pesgen payfip anomalies resolve {a['id']} --note TEXT"
                     f"{db_option(db)}` records the decision)")
    for lo in left_out:
        status = "" if lo["status"] == "committed" else f", {lo['status']}"
        # left out as billed by another run: not 'not exported', which that run did
        said = "" if lo["policy"] == "already_exported" else " not exported:"
        _say(f"{lo['invoice']}:{said} left out by run {lo['run_id']} "
             f"({lo['created_at']}{status}) from {lo['origin']}: {lo['reason']} "
             f"(policy {lo['policy']})")
    if not found:  # like grep: 0 only when a run holds (exported) the invoice
        raise typer.Exit(1)


def _dry_run_of(latest: dict[str, Any] | None, db: str | None) -> str:
    """`runs find`'s export for an invoice in no run, on the school's file holding it:
    with the mapping and input of the store's latest run (``latest``,
    Store.latest_run_paths), quoted for a shell, and saying so; a placeholder, and where
    it comes from, for what the store did not record (no run; an input recorded without
    its folder, before pesgen kept it)."""
    import shlex

    option = db_option(db)
    if latest is None:
        return (f"pesgen export --dry-run -m MAPPING -i FILE{option} (MAPPING: the school's "
                "mapping, FILE: its file holding the invoice; this store holds no run)")
    mapping = shlex.quote(latest["mapping_path"])
    run = f"the store's latest run, {latest['id']} of {latest['created_at']}"
    if not latest["input_path"]:
        return (f"pesgen export --dry-run -m {mapping} -i FILE{option} (the mapping of "
                f"{run}; FILE: the school's file holding the invoice, that run's "
                f"{shown(latest['input_name'])} or a later one: its folder was not recorded)")
    return (f"pesgen export --dry-run -m {mapping} -i {shlex.quote(latest['input_path'])}"
            f"{option} (the mapping and input of {run}: give the school's file holding the "
            "invoice if it is another)")


def _payfip_rows(store: Any, invoices: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each invoice's PayFiP rows as `payfip payments --invoice` reads them
    (``ledger.iter_payments``: its status, amounts, latest link…), by the invoice as
    given; an invoice with no link made has none."""
    from .keys import invoice_key
    from .payfip.ledger import iter_payments

    given = list(dict.fromkeys(invoices))
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in given}
    if not given:
        return out
    by_key = {invoice_key(i): i for i in given}
    for row in iter_payments(store, invoices=given):
        out[by_key.get(invoice_key(row["invoice"]), given[0])].append(row)
    return out


def _open_anomalies(store: Any, payfip: dict[str, list[dict[str, Any]]]
                    ) -> dict[str, list[dict[str, Any]]]:
    """The open PayFiP anomalies of each invoice of ``payfip`` (`_payfip_rows`), by the
    invoice as given; none read for an invoice with no link made."""
    from .payfip.ledger import open_anomalies_of

    named = {row["invoice"]: given for given, rows in payfip.items() for row in rows}
    out: dict[str, list[dict[str, Any]]] = {}
    for a in open_anomalies_of(store, named):
        out.setdefault(named[a["invoice"]], []).append(a)
    return out


def _anomaly_advice(kind: str) -> str:
    """What to do of an anomaly of ``kind``, as `payfip anomalies` says it."""
    from .payfip.ledger import ANOMALY_ADVICE

    return ANOMALY_ADVICE.get(kind, "see docs/payfip.md")


def _payfip_said(rows: list[dict[str, Any]],
                 open_ones: Sequence[dict[str, Any]] = ()) -> str:
    """An invoice's PayFiP status in `runs find`'s line: each row's status, amount and
    date, its latest link; ``none`` when no link was made. ``open_ones``: the invoice's
    open anomalies (a later link paid too is one: said so, not as a maybe)."""
    if not rows:
        return ("none (no PayFiP link made for it: pesgen knows of no online payment; one "
                "paid otherwise paid the trésorerie)")
    said = []
    for row in rows:
        if row["amount_paid"] is not None:
            text = ("paid" if row["status"] == "paid" else f"{row['status']}, paid") \
                + f" {row['amount_paid']}"
            if row["paid_at"]:
                text += f" on {row['paid_at']}"
        else:
            text = f"{row['status']}, due {row['amount_due']}, as of {row['updated_at']}"
        if row["payfip_status"] and row["payfip_status"] != row["status"]:
            text += f", PayFiP says {row['payfip_status']}"  # a cancelled title's link
        link = f"link {row['last_id_op']}, saisie {row['saisie']}" if row["last_id_op"] \
            else "no link made for this title"
        if row["amount_paid"] is not None and row["id_op"] and row["last_id_op"] \
                and row["id_op"] != row["last_id_op"]:
            # paid through an earlier link than the last one made: the last named alone
            # read as the one that paid, and a second payment through it as not possible
            # (saisie: the paying link's mode, as payfip payments reads it)
            paid_too = [a["id"] for a in open_ones if a["id_op"] == row["last_id_op"]
                        and a["kind"] == "double-payment"]
            link = (f"through link {row['id_op']}, saisie {row['saisie']}; later link "
                    f"{row['last_id_op']}: " + (
                        f"paid too, double-payment anomaly #{paid_too[0]} below"
                        if paid_too else
                        "if the family paid through it too, `pesgen payfip reconcile` "
                        "records it and `pesgen payfip anomalies` lists the double payment "
                        "(a test link's collects nothing)"))
        title = f"IdBord {row['id_bord']}, " if len(rows) > 1 and row["run"] else ""
        said.append(f"{text} ({title}{link})")
    return "; ".join(said)


@runs_app.command("extract")
def runs_extract(run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
                 out: Annotated[Path, typer.Option(
                     "--out", "-o", help="Folder to write into: a new or an empty one.")],
                 db: DbOpt = None,
                 output: RunsOutputOpt = Output.text) -> None:
    """Write what a run recorded (mapping, input, format) into a folder, to check it again.

    Into a new or empty folder:
    its mapping as its text was, its input (input/NAME) and its format bundle
    (formats/FORMAT/), each checked against the run's sha256; and print the dry run that
    checks the same input with them, writing nothing."""
    import json

    from .runs import extract_run, refusal_of_extracted

    try:
        store = _store(db, must_exist=True)
        with store.reads():  # it records nothing
            record = store.get_run(run)
        done = extract_run(record, out)
    except KeyboardInterrupt:
        # the folder's staging area, and the folder if the command made it, are gone
        _echo_err("interrupted: nothing written")
        _Interrupts.said = True
        raise typer.Exit(130) from None
    except PesgenError as exc:
        if output is Output.json:
            _runs_json("runs extract", exc=exc)
        _fail(exc)
        return
    r = done.run
    if output is Output.json:
        _extract_json(done)
        return
    _say(f"run {r['id']} ({r['status']}), made {r['created_at']} by pesgen "
         f"{r['pesgen_version']}, run date {r['run_date']}: extracted into {done.folder}")
    for f in done.files:
        if f.checked == "mapping":
            _say(f"  mapping  {f.path}  {f.size} bytes  sha256 {f.sha256} verified (the run "
                 f"read {r['mapping_path']})")
        elif f.checked == "input":
            read = _input_read(r)
            _say(f"  input    {f.path}  {f.size} bytes  sha256 {f.sha256} verified ("
                 + (f"the run read {read})" if read else f"the run read {r['input_name']}: "
                    "its folder was not recorded, a run recorded before pesgen kept it)"))
    bundle = [f for f in done.files if not f.checked]
    _say(f"  format   {done.formats / r['format']}  {len(bundle)} file(s)  sha256 "
         f"{done.bundle_sha256} verified (over its files)")
    for f in bundle:
        _say(f"           {f.path}  {f.size} bytes  sha256 {f.sha256}")
    _say_since(done)
    # the store keeps the input compressed in the database it protects; here it is a file
    _echo_err(f"note: {_extracted_private(done)}")
    refused = refusal_of_extracted(done)
    if refused is not None:
        _say(f"not given: the command that checks this input again (export --dry-run) is "
             f"refused by pesgen {__version__} before it reads the input:")
        _say(f"  {refused}")
        for problem in refused.problems[:MAX_LISTED]:
            _say(f"    - {problem}")
        _say(f"  (the run was made by pesgen {r['pesgen_version']}). `pesgen regenerate "
             f"{r['id']} --out NEW_DIR` rebuilds its files from these records all the same "
             "when such a check changes nothing of what is rendered (docs/state.md, A run "
             "recorded before a check)")
        return
    import shlex

    command = shlex.join(_extracted_dry_run(done))
    numbers = _ranges(list(range(r["first_number"], r["first_number"] + r["bordereaux"])))
    held = ", this run's among them" if r["status"] != "cancelled" else ""
    _say("to check the same input with the same mapping and format again, writing "
         "nothing (on an empty scratch store, which the dry run does not create: in this "
         f"store, the duplicate guard refuses the invoices an active run holds{held}):")
    _say(f"  {command}")
    pieces = f", titre numbers (IdPce) from {r['first_piece']}" \
        if r["first_piece"] not in (None, 1) else ""
    _say(f"  the empty store numbers it from 1; the run took IdBord {numbers}{pieces}: "
         "where those differ, so do the file names and sha256 the dry run shows. Its "
         f"titles and total are to compare with the run's: {r['titles']} title(s), total "
         f"{r['total']}. The run's own files, byte for byte: pesgen regenerate {r['id']} "
         "--out NEW_DIR")
    held_then = _held_then(r)
    if held_then:  # read from the run's store, which the scratch one is not
        _say(f"  the run left out {held_then} invoice(s) as exported already (policy "
             "already_exported: other runs of its store held them): the empty store holds "
             "none, so the dry run exports them too (`pesgen runs show` lists them)")
    official = json.loads(r["validation"]).get("official_xsd")
    if official:  # a folder of the machine that made the run: maybe not there on this one
        _say(f"  the run was also checked against the DGFiP XSD in {official}: add "
             "--official-xsd with that package's folder on this machine to check it so")
    if r["pesgen_version"] != __version__:
        _say(f"  the run was made by pesgen {r['pesgen_version']}, this is pesgen "
             f"{__version__}: a check added since may refuse what the run passed")


def _input_read(r: dict[str, Any]) -> str | None:
    """The input's absolute path as the run recorded it (its policies' JSON), None for a
    run recorded before pesgen kept it."""
    import json

    return json.loads(r["policies"]).get("input_path") or None


def _extracted_private(done: Any) -> str:
    return (f"{done.input} is the school's export, billing data (names, addresses, IBANs): "
            "keep the folder as private as the exports and the state store, and remove it "
            "once done")


def _extracted_dry_run(done: Any) -> list[str]:
    """The `export --dry-run` that checks the extracted input with the extracted mapping
    and format, on a scratch store in the folder."""
    return ["pesgen", "export", "--mapping", str(done.mapping), "--input", str(done.input),
            "--formats-dir", str(done.formats), "--date", done.run["run_date"], "--dry-run",
            "--db", str(done.folder / "scratch.sqlite3"), "--create-store"]


def _held_then(r: dict[str, Any]) -> int:
    """How many invoices the run left out as exported already (other runs of its store
    held them)."""
    import json

    return sum(lo.get("policy") == "already_exported"
               for lo in json.loads(r["policies"]).get("left_out", []))


def _extract_json(done: Any) -> None:
    """`runs extract --format json`'s report: what its text says, each a field: the files
    written with their size and sha256 (verified against the run's), the mapping and
    format as this machine holds them now, and the dry run to check the input again, or
    why this pesgen refuses it."""
    import json
    import shlex

    from .errors import problem_json
    from .runs import format_since, mapping_since, refusal_of_extracted

    r = done.run
    mapping = mapping_since(r)
    fmt = format_since(r)

    def file_json(f: Any) -> dict[str, Any]:
        return {"path": str(f.path), "size": f.size, "sha256": f.sha256}

    [mapping_file] = [f for f in done.files if f.checked == "mapping"]
    [input_file] = [f for f in done.files if f.checked == "input"]
    refused = refusal_of_extracted(done)
    official = json.loads(r["validation"]).get("official_xsd")
    _runs_json(
        "runs extract", run=r["id"], status=r["status"], created_at=r["created_at"],
        pesgen_version=r["pesgen_version"], run_date=r["run_date"], folder=str(done.folder),
        mapping={**file_json(mapping_file), "verified": True,
                 "recorded_path": r["mapping_path"]},
        input={**file_json(input_file), "verified": True,
               "recorded_path": _input_read(r)},
        format={"name": r["format"], "folder": str(done.formats / r["format"]),
                "formats_dir": str(done.formats), "sha256": done.bundle_sha256,
                "verified": True,
                "files": [file_json(f) for f in done.files if not f.checked]},
        since={"mapping": {"found": None if mapping.found is None else str(mapping.found),
                           "same": None if mapping.found is None else mapping.same,
                           "error": mapping.error},
               "format": {"found": None if fmt.found is None else str(fmt.found),
                          "same": None if fmt.found is None else fmt.same,
                          "changed": fmt.changed, "added": fmt.added,
                          "removed": fmt.removed, "error": fmt.error}},
        notes=[_extracted_private(done)],
        dry_run=None if refused is not None else {
            "command": shlex.join(_extracted_dry_run(done)),
            "argv": _extracted_dry_run(done),
            "scratch_store": str(done.folder / "scratch.sqlite3"),
            "id_bords": list(range(r["first_number"], r["first_number"] + r["bordereaux"])),
            "first_piece": r["first_piece"], "titles": r["titles"], "total": r["total"],
            "left_out_as_exported": _held_then(r), "official_xsd": official or None},
        dry_run_refused=None if refused is None else {
            "error": str(refused), "exit_code": int(refused.exit_code),
            "problems": [problem_json(p) for p in refused.problems]},
        pesgen_version_differs=r["pesgen_version"] != __version__)


def _say_since(done: Any) -> None:
    """What `runs extract` says of the run's mapping and format as this machine holds them
    now: unchanged, changed (with the diff to run), or not found."""
    import shlex

    from .runs import format_since, mapping_since

    r = done.run
    _say("since the run, on this machine:")
    mapping = mapping_since(r)
    if mapping.found is None:
        _say(f"  mapping  {r['mapping_path']}: {mapping.error}")
    elif mapping.same:
        _say(f"  mapping  {mapping.found}: unchanged (the same sha256)")
    else:
        _say(f"  mapping  {mapping.found}: changed (diff {shlex.quote(str(done.mapping))} "
             f"{shlex.quote(str(mapping.found))})")
    fmt = format_since(r)
    head = f"  format   {r['format']}, as found without --formats-dir"
    if fmt.found is None:
        _say(f"{head}: {fmt.error}")
    elif fmt.same:
        _say(f"{head} ({fmt.found}): unchanged (the same files)")
    else:
        parts = [f"{what} {', '.join(rels)}" for what, rels in (
            ("changed", fmt.changed), ("added", fmt.added), ("not there", fmt.removed)) if rels]
        _say(f"{head} ({fmt.found}): {'; '.join(parts)}")


@runs_app.command("cancel")
def runs_cancel(run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
                reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
                bordereau: Annotated[list[int] | None, typer.Option(
                    "--bordereau", metavar="<idbord>",
                    help="Cancel only this bordereau of the run (repeatable), e.g. the one "
                    "the trésorerie rejected: the others stay active.")] = None,
                whole: Annotated[bool, typer.Option(
                    "--all", help="Cancel every bordereau of a run that has several.")
                ] = False,
                despite_payments: Annotated[bool, typer.Option(
                    "--despite-payments", help="Cancel titles paid online through PayFiP, or "
                    "whose payment link is still open, knowing it: the payment stays "
                    "attached to the cancelled title; tell the trésorerie.")] = False,
                annulled_by_tresorerie: Annotated[bool, typer.Option(
                    "--annulled-by-tresorerie", help="Cancel a bordereau the trésorerie "
                    "accepted (`pesgen acquit --record`), confirming that it annulled its "
                    "titles on its side (a bordereau d'annulation/réduction in Hélios): "
                    "recorded with the reason.")] = False,
                db: DbOpt = None,
                output: RunsOutputOpt = Output.text) -> None:
    """Cancel a run, or some of its bordereaux, so its invoices may be exported again.

    Their invoices may
    be exported again, except those another active run holds too. A run of several
    bordereaux needs --bordereau or --all; titles with PayFiP payments, made or pending,
    need --despite-payments; a bordereau the trésorerie accepted needs
    --annulled-by-tresorerie. Numbers are not reused (Hélios may already know them)."""
    try:
        done = _store(db, must_exist=True).cancel(run, reason, bordereau, whole,
                                                  despite_payments, annulled_by_tresorerie)
    except PesgenError as exc:
        from .store import stopped_waiting

        exc = stopped_waiting(exc, "runs cancel stopped waiting: nothing cancelled")
        if output is Output.json:
            _runs_json("runs cancel", exc=exc)
        # a cancellation writes no file: what it leaves is the run as it was
        exc.outcome = exc.outcome or "nothing cancelled."
        _fail(exc)
        return
    if output is Output.json:
        _cancel_json(done, db)
        return
    numbers = ", ".join(map(str, done.bordereaux))
    if done.confirmed:
        _say(f"run {done.run.id}: IdBord {numbers} cancelled already: the "
                   "trésorerie's annulment of its titles recorded (nothing else changed)")
        _say(f"recorded reason: {done.reason}")
        return
    whole = len(done.bordereaux) == done.of  # the whole run, in one go
    if whole:
        head = f"run {done.run.id} cancelled" + (f" (IdBord {numbers})" if done.of > 1 else "")
    else:
        head = f"run {done.run.id}: IdBord {numbers} cancelled"
    its = "its" if whole or len(done.bordereaux) == 1 else "their"
    if done.held:
        # a store migration 5 found holding one invoice in two active runs (docs/state.md):
        # cancelling one leaves the invoice held by the other
        still = done.invoices - done.freed
        holders = ", ".join(f"{holder} ({', '.join(_listed(sorted(invs.values())))})"
                            for holder, invs in done.held.items())
        body = (f"{done.freed} of {its} {done.invoices} invoice(s) can be exported again; "
                f"{still} {'stays' if still == 1 else 'stay'} held by active "
                f"run{'s' if len(done.held) > 1 else ''} {holders}")
    else:
        body = f"{its} {done.invoices} invoice(s) can be exported again"
    if done.still_active:
        tail = (f"; IdBord {', '.join(map(str, done.still_active))} "
                f"{'stays' if len(done.still_active) == 1 else 'stay'} active")
    elif not whole:
        tail = "; no bordereau of the run is active now: the run is cancelled"
    else:
        tail = ""
    _say(f"{head}: {body}{tail}")
    step = _cancel_next(done, db)
    if step is not None:
        _say(f"next: {step}")
    if annulled_by_tresorerie:
        _say(f"recorded reason: {done.reason}")
    if done.run.pes:
        # no acknowledgement recorded: the trésorerie may have accepted it all the same
        unknown = [i for i in done.bordereaux if i not in done.acknowledgements]
        if unknown:
            them = "it" if len(unknown) == 1 else "them"
            said = ", ".join(map(str, unknown))
            # a number is never given again (Hélios may know it): one never sent is a gap
            # in the numbers the trésorerie receives (pes-v2-recette.md §15, §17)
            _echo_err(f"note: no acknowledgement recorded for IdBord {said}: check that "
                      f"none came from the trésorerie (`pesgen acquit FILE --record"
                      f"{db_option(db)}` records it; {ACQUIT_FILE}). If it accepted {them}, "
                      "the titles exist at the trésorerie: "
                      "exporting their invoices again bills the families twice. If "
                      f"{'its file was' if len(unknown) == 1 else 'their files were'} never "
                      f"sent, IdBord {said} is not given again all the same: the trésorerie "
                      "will receive the next number without it, and Hélios checks that "
                      "bordereau numbers follow each other (whether it accepts a gap is not "
                      f"confirmed): tell the trésorerie that IdBord {said} was cancelled "
                      "before sending (docs/state.md, Numbering)")
    _say_left_out_as_held(db, done.run.id, done.bordereaux)
    if done.payments:
        _echo_err(f"warning: cancelled despite {len(done.payments)} PayFiP payment(s), made "
                  "or pending: they stay attached to the cancelled titles; tell the "
                  "trésorerie")
        for problem in done.payments:
            _echo_err(f"  - invoice {problem.invoice}: {problem.message}")
    _say_cancelled_in_place(done.as_recorded, done.bordereaux)


def _cancel_next(done: Any, db: str | None) -> str | None:
    """`runs cancel`'s next step (its text's `next:` line, --format json's
    ``next_step``): with bordereaux of the run still active, exporting again only the
    invoices of those cancelled; with none, the export of the corrected file
    (``_export_again``). None: nothing to export again, or an annulment confirmed
    (``done.confirmed``: cancelled already, its next step said then)."""
    if done.confirmed:
        return None
    if done.still_active:
        # support's "how do we send them again without sending the others twice?"
        # (docs/state.md, A rejected bordereau): the run's other titles stand
        numbers = ", ".join(map(str, done.bordereaux))
        active = ", ".join(map(str, done.still_active))
        hold = "holds" if len(done.still_active) == 1 else "hold"
        return (f"export again only the invoices of IdBord {numbers} (`pesgen runs show "
                f"{done.run.id} --invoices{db_option(db)}` lists them); an export of the "
                f"school's whole file is refused for the invoices IdBord {active} still "
                f"{hold}, unless the mapping's policies.already_exported: leave_out leaves "
                "them out (docs/state.md, A rejected bordereau)")
    # the run's bordereaux cancelled before this call go out again in the same export
    earlier = _cancelled_before(db, done)
    if done.freed or any(x.left for x in earlier):
        return _export_again(done.as_recorded, done.bordereaux, db,
                             done.invoices - done.freed, earlier)
    return None


@dataclass(frozen=True)
class _Before:
    """A bordereau of the run cancelled before the `runs cancel` that leaves none active:
    when and why, how many of its titles (None: not recorded), and of its invoices how many
    active runs hold now (exported again since) and which ({run: IdBords}; empty: none, or
    not read, ``unread`` saying why)."""

    id_bord: int
    cancelled_at: str
    titles: int | None
    taken: int = 0
    holders: dict[str, set[int]] = field(default_factory=dict)
    unread: str | None = None

    @property
    def left(self) -> bool:
        """Whether some of its invoices are still to export again (none held since)."""
        return self.titles is None or self.taken < self.titles


def _cancelled_before(db: str | None, done: Any) -> list[_Before]:
    """The run's bordereaux cancelled before ``done`` (a Cancellation leaving none of the
    run active), with what holds their invoices now: the next export of the whole file
    takes those not exported again since. Read after the cancellation is recorded: a store
    that cannot be read then leaves them named, not checked (``_Before.unread``)."""
    parts = done.as_recorded.get("cancelled_bordereaux") or {}
    if not parts:
        return []
    numbers = sorted(int(n) for n in parts)
    try:
        store = _store(db, must_exist=True)
        titles = {b.id_bord: b.titles for b in store.run_bordereaux(done.run.id)}
        again = store.each_exported_again([(done.run.id, n) for n in numbers])
    except PesgenError as exc:
        return [_Before(n, parts[n]["cancelled_at"], None, unread=str(exc)) for n in numbers]
    return [_Before(n, parts[n]["cancelled_at"], titles.get(n), *again[(done.run.id, n)])
            for n in numbers]


def _export_again(run: dict[str, Any], cancelled: tuple[int, ...], db: str | None,
                  held: int = 0, before: list[_Before] | None = None) -> str:
    """`runs cancel`'s next step when no bordereau of the run stays active: the export
    to run again on the corrected (or the right) file, with the run's own mapping, input
    (its path as recorded; a run recorded before pesgen kept it, INPUT) and output folder,
    the store's --db, a dry run first; ``cancelled``: the bordereaux this call cancelled;
    ``held``: how many of its invoices other active runs still hold (a store migrated
    from before schema 5), which that export refuses; ``before``: the run's bordereaux
    cancelled by earlier calls, whose invoices the same export takes again, but those
    exported again since (which it refuses)."""
    import json
    import shlex

    before = before or []
    left = [b for b in before if b.left]
    numbers = ", ".join(map(str, sorted({*cancelled, *(b.id_bord for b in left)})))
    path = json.loads(run["policies"]).get("input_path")
    given = shlex.quote(path) if path else "INPUT"
    read = "" if path else (f" (INPUT: the run read {run['input_name']}; its folder was not "
                            "recorded)")
    args = (f"--mapping {shlex.quote(run['mapping_path'])} --input {given} --out "
            f"{shlex.quote(run['out_dir'])}{db_option(db)}")
    return (f"correct the input (or take the right file), then check it with `pesgen "
            f"export {args} --dry-run`{read}, and export it with the same command without "
            f"--dry-run: its invoices take the next IdBord, never IdBord {numbers} again "
            f"(the run's mapping, input and output folder; `pesgen runs extract {run['id']}"
            f"{db_option(db)} --out DIR` writes the input as the run read it; docs/state.md, "
            "A rejected bordereau)"
            + ("" if not left else
               f"; the invoices of IdBord {', '.join(_before_said(b) for b in left)}, "
               "cancelled before, go out in that export too")
            + "".join(f"; IdBord {b.id_bord}'s invoices were not checked for an export "
                      f"since ({b.unread})" for b in before if b.unread)
            + "".join(f"; {b.taken} invoice(s) of IdBord {b.id_bord}, cancelled before, "
                      "were exported again since, by "
                      + ", ".join(f"run {r} (IdBord {', '.join(map(str, sorted(ids)))})"
                                  for r, ids in b.holders.items())
                      + ": it refuses them" for b in before if b.taken)
            + ("" if not held else
               f"; it refuses the {held} invoice(s) other active runs still hold (named "
               "above)")
            + ("" if not held and not any(b.taken for b in before) else
               ", unless the mapping's policies.already_exported: leave_out leaves them "
               "out"))


def _before_said(b: _Before) -> str:
    """``2 (on 2026-11-24T…)``: an earlier cancelled bordereau, as the next step
    names it beside those just cancelled."""
    return f"{b.id_bord} (on {b.cancelled_at})"


def _cancel_json(done: Any, db: str | None) -> None:
    """`runs cancel --format json`'s report: what its text says on standard output and
    standard error, each a field (every invoice and file named, where the text names
    five); an annulment confirmed (``done.confirmed``) gets the same fields, read as for
    any cancellation, though its text says only the reason recorded."""
    unknown = [i for i in done.bordereaux if i not in done.acknowledgements]
    later, unread = _left_out_as_held(db, done.run.id, done.bordereaux)
    files, drawn = _cancelled_left(done.as_recorded, done.bordereaux)
    _runs_json(
        "runs cancel", run=done.run.id, status=done.run.status,
        bordereaux=list(done.bordereaux), run_cancelled=done.run.status == "cancelled",
        still_active=list(done.still_active), confirmed=done.confirmed, reason=done.reason,
        invoices=done.invoices, freed=done.freed,
        held=[{"run": holder, "invoices": [{"invoice": mine, "held_as": theirs}
                                           for mine, theirs in invs.items()]}
              for holder, invs in done.held.items()],
        no_acknowledgement=unknown if done.run.pes else None,
        left_out_as_held=None if later is None else [
            {"run": other, "invoices": invoices} for other, invoices in later.items()],
        left_out_as_held_error=unread,
        # the text's `next:` (null: it prints none)
        next_step=_cancel_next(done, db),
        payments=_problems_json(list(done.payments)),
        still_in_place={"folder": done.as_recorded.get("out_dir") if files or drawn
                        else None, "files": files, "datamatrix": drawn})


def _left_out_as_held(db: str | None, run_id: str, bordereaux: Any
                      ) -> tuple[dict[str, list[str]] | None, str | None]:
    """The later runs that left out invoices of these cancelled bordereaux as exported
    already, {run: invoices}, or None and why they could not be read."""
    try:
        return _store(db, must_exist=True).left_out_as_held(run_id, bordereaux), None
    except PesgenError as exc:  # the cancellation is recorded: not failed for a note
        return None, str(exc)


def _say_left_out_as_held(db: str | None, run_id: str, bordereaux: list[int]) -> None:
    """After a cancellation: the later runs that left out invoices of the cancelled
    bordereaux as exported already (policies.already_exported: leave_out), which no
    active run bills now."""
    later, unread = _left_out_as_held(db, run_id, bordereaux)
    if later is None:
        _echo_err(f"note: which later runs left out these invoices as exported already "
                  f"could not be read: {unread}")
        return
    for other, invoices in later.items():
        _echo_err(f"note: run {other} left out {len(invoices)} of these invoice(s) as "
                  f"exported already (policy already_exported): "
                  f"{', '.join(_listed(invoices))}. No active run bills them now: export them "
                  "again (the same input with that mapping exports them, and leaves out what "
                  "is still held)")


@runs_app.command("reinstate")
def runs_reinstate(run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
                   reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
                   bordereau: Annotated[list[int] | None, typer.Option(
                       "--bordereau", metavar="<idbord>",
                       help="Reinstate only this cancelled bordereau of the run "
                       "(repeatable): the others stay cancelled.")] = None,
                   whole: Annotated[bool, typer.Option(
                       "--all", help="Reinstate every cancelled bordereau of the run.")
                   ] = False,
                   by: Annotated[str | None, typer.Option(
                       "--by", help="Who reinstates: recorded on the anomalies of titles "
                       "paid online that it resolves (default: the login name).")] = None,
                   db: DbOpt = None,
                   output: RunsOutputOpt = Output.text) -> None:
    """Undo a cancellation (`runs cancel`): the run's invoices held again.

    For a cancellation made by mistake, or before the trésorerie's
    acquit came and it kept the titles: the invoices are held again, so an export of them
    is refused. Refused when one of them was exported again since, when the trésorerie
    rejected the bordereau, or annulled its titles (--annulled-by-tresorerie). The run's
    numbers do not change; the cancellation undone is recorded (`runs show`)."""
    import getpass

    from .payfip.ledger import resolver
    from .payfip.models import cents_text, method_said
    from .runs import files_not_in_place, not_in_place
    from .store import REINSTATED_BY

    try:
        # who resolves the paid-cancelled anomalies the reinstatement settles
        if by is None:
            try:
                by = getpass.getuser()
            except Exception:  # no login name (a container without one): the command's
                by = REINSTATED_BY
        else:
            resolver(by)  # (as `payfip anomalies resolve --by`)
        store = _store(db, must_exist=True)
        done = store.reinstate(run, reason, bordereau, whole, by=by)
    except PesgenError as exc:
        from .store import stopped_waiting

        exc = stopped_waiting(exc, "runs reinstate stopped waiting: nothing reinstated")
        if output is Output.json:
            _runs_json("runs reinstate", exc=exc)
        # a reinstatement writes no file: what it leaves is the run as it was
        exc.outcome = exc.outcome or "nothing reinstated."
        _fail(exc)
        return
    # its files and folder as read before (a reinstatement changes neither), committed now
    after = {**done.as_recorded, "status": done.run.status}
    missing = not_in_place(after, done.bordereaux)
    unknown = [i for i in done.bordereaux if i not in done.acknowledgements]
    if output is Output.json:
        _runs_json(
            "runs reinstate", run=done.run.id, status=done.run.status,
            bordereaux=list(done.bordereaux),
            run_reinstated=done.as_recorded["status"] == "cancelled"
            and not done.still_cancelled,
            still_cancelled=list(done.still_cancelled), invoices=done.invoices,
            no_acknowledgement=unknown if done.run.pes else None,
            not_in_place={"folder": after["out_dir"] if missing else None, "files": missing},
            settled=[{"anomaly": s["anomaly"], "kind": s["kind"], "invoice": s["invoice"],
                      "id_op": s["id_op"], "id_bord": s["id_bord"],
                      "amount_paid": cents_text(s["paid_cents"] or 0),
                      "method": s["method"], "paid_at": s["paid_at"]} for s in done.settled],
            left_open=[{"anomaly": o["anomaly"], "kind": o["kind"], "invoice": o["invoice"],
                        "id_op": o["id_op"], "id_bord": o["id_bord"], "why": o["why"]}
                       for o in done.left_open],
            due_again=[{"invoice": d["invoice"], "id_op": d["id_op"], "id_bord": d["id_bord"],
                        "amount_refunded": cents_text(d["paid_cents"] or 0),
                        "method": d["method"], "paid_at": d["paid_at"]}
                       for d in done.due_again])
        return
    numbers = ", ".join(map(str, done.bordereaux))
    if done.as_recorded["status"] == "cancelled" and not done.still_cancelled:
        many = len(done.bordereaux) > 1
        head = f"run {done.run.id} reinstated" + (f" (IdBord {numbers})" if many else "")
        its = "its"
    else:
        head = f"run {done.run.id}: IdBord {numbers} reinstated"
        its = "its" if len(done.bordereaux) == 1 else "their"
    tail = (f"; IdBord {', '.join(map(str, done.still_cancelled))} "
            f"{'stays' if len(done.still_cancelled) == 1 else 'stay'} cancelled"
            if done.still_cancelled else "")
    _say(f"{head}: {its} {done.invoices} invoice(s) are held again (an export of them is "
         f"refused), under the same numbers{tail}")
    if done.run.pes and unknown:
        _echo_err(f"note: no acknowledgement recorded for IdBord "
                  f"{', '.join(map(str, unknown))}: reinstate only what the trésorerie "
                  f"took (`pesgen acquit FILE --record{db_option(db)}` records its "
                  f"acknowledgement; {ACQUIT_FILE})")
    if missing:
        _echo_err(f"note: {files_not_in_place(done.run.id, after['out_dir'], missing)}")
    for s in done.settled:
        # paid, cancelled, reinstated (or paid through its link while cancelled): the
        # payment is the title's
        through = (" through its link while it was cancelled" if s["kind"] == "run-cancelled"
                   else "")
        _echo_err(f"note: invoice {s['invoice']}: paid online "
                  f"{cents_text(s['paid_cents'] or 0)}{method_said(s['method'])} on "
                  f"{s['paid_at']}{through} (PayFiP operation {s['id_op']}): its title is "
                  f"active again and the payment its own: anomaly #{s['anomaly']} "
                  f"({s['kind']}) resolved (reinstated); if the trésorerie was told of the "
                  "cancellation, tell it the title stands, paid; if it refunded the family "
                  "meanwhile, `pesgen payfip anomalies resolve "
                  f"{s['anomaly']} --correct --refunded --note TEXT`")
    for o in done.left_open:
        # paid through its link while cancelled, and not recordable as its payment
        _echo_err(f"warning: invoice {o['invoice']}: paid through its link while its title "
                  f"was cancelled (PayFiP operation {o['id_op']}): {o['why']}; the invoice "
                  "gets no new link until the anomaly is resolved (`pesgen payfip anomalies "
                  f"resolve {o['anomaly']} --note TEXT`, with --applied or --refunded as "
                  "the trésorerie answers)")
    for d in done.due_again:
        # paid, cancelled, refunded, reinstated: the family has its money back
        _echo_err(f"note: invoice {d['invoice']}: paid online "
                  f"{cents_text(d['paid_cents'] or 0)}{method_said(d['method'])} on "
                  f"{d['paid_at']} (PayFiP operation {d['id_op']}), refunded by the "
                  "trésorerie while its title was cancelled: the title is due again; send "
                  "the family a new link")


def _say_cancelled_in_place(r: dict[str, Any], bordereaux: tuple[int, ...]) -> None:
    """Name the cancelled bordereaux' files still in the run's output folder (``r``: the
    run as recorded): a new export into that folder writes its own beside them (another
    IdBord, another name), and nothing there says which not to send."""
    from .runs import REFERENCES_SUFFIX

    files, drawn = _cancelled_left(r, bordereaux)
    left = files + drawn
    if left:
        them = "it" if len(left) == 1 else "them"
        printed = (["the payment references of the CSV"]
                   if any(n.endswith(REFERENCES_SUFFIX) for n in left) else []) + (
                   ["the Datamatrix"] if drawn else [])
        refs = f" (nor print {', nor '.join(printed)})" if printed else ""
        _echo_err(f"note: cancelled, still in {r['out_dir']}: {', '.join(_listed(left))}: "
                  f"do not send or import {them}{refs}; move {them} aside")


def _cancelled_left(r: dict[str, Any], bordereaux: tuple[int, ...]
                    ) -> tuple[list[str], list[str]]:
    """The cancelled bordereaux' files still in the run's output folder, and the
    Datamatrix `payfip datamatrix` wrote beside them: a family paying one at the
    tobacconist's pays a cancelled title (a later `payfip datamatrix` skips it, but
    leaves what it wrote before)."""
    from .payfip.datamatrix import drawn_in_place
    from .runs import cancelled_in_place

    return cancelled_in_place(r, bordereaux), drawn_in_place(r, bordereaux)


def _listed(values: list[str], most: int = 5) -> list[str]:
    return values if len(values) <= most else [*values[:most], f"… {len(values) - most} more"]


def _say_waived(run: str, waived: list[Problem]) -> None:
    """The checks of this pesgen the mapping a run recorded fails that change nothing of
    what is rendered: the run is rebuilt all the same (its files are compared with the
    recorded ones), but support must know that an export with it is refused today."""
    if not waived:
        return
    n = len(waived)
    _echo_err(f"warning: the mapping run {run} recorded fails {n} check{'s' if n > 1 else ''} "
              f"of this pesgen; not refused: {'they change' if n > 1 else 'it changes'} "
              "nothing of what is rendered (the rebuilt files are compared with the recorded "
              "ones), but an export with this mapping is refused")
    for problem in waived:
        _echo_err(f"  - {problem}")


@app.command()
def regenerate(run: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
               out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
               db: DbOpt = None,
               cancelled: Annotated[bool, typer.Option(
                   "--cancelled", help="Also rebuild a cancelled run, or a run's cancelled "
                   "bordereaux (a rejected one), to look at them: their files are written "
                   "as CANCELLED-<name>, the bytes sent, and must not be sent again.")
               ] = False,
               output: RunsOutputOpt = Output.text) -> None:
    """Rebuild a run's files from what it recorded (mapping, templates, input, date,
    numbers) and check they are byte-identical to the originals."""
    interrupts = _Interrupts("interrupt received once the files were being put in place: "
                             "they are in place (the output above is whole)")
    try:
        _regenerate_command(run, out, db, cancelled, interrupts, output is Output.json)
    finally:
        interrupts.release()


def _regenerate_command(run: str, out: Path, db: str | None, cancelled: bool,
                        interrupts: _Interrupts, as_json: bool = False) -> None:
    waived: list[Problem] = []
    try:
        # imported here: Ctrl-C while pesgen loads is said as any other before the files
        # are put in place
        from .runs import CANCELLED_PREFIX, bordereau_of, cancelled_bordereaux
        from .runs import regenerate as do_regenerate

        store = _store(db, must_exist=True)
        with store.reads():  # it records nothing
            record = store.get_run(run)
            gone = cancelled_bordereaux(record)
            # of the cancelled bordereaux to write: which of their invoices an active run
            # holds now (what `runs reinstate` checks), said with the warning; read before
            # the files are put in place, so that nothing fails once they are
            again = store.exported_again(record["id"], sorted(gone)) if cancelled and gone \
                else None
            written = do_regenerate(store, run, out, cancelled=cancelled,
                                    warn=waived.extend, on_place=interrupts.hold)
    except KeyboardInterrupt:
        # before the files were put in place (from then on interrupts are held): the
        # rebuilt files and the output folder regenerate created are gone
        _say_interrupted("regenerate")
        raise typer.Exit(130) from None
    except PesgenError as exc:
        if as_json:
            _runs_json("regenerate", exc=exc, waived_checks=_problems_json(waived))
        _say_waived(run, waived)
        _fail(exc)
        return
    if as_json:
        _regenerate_json(record, out, written, cancelled, gone, again, waived)
        interrupts.say_held()
        return
    _say_waived(record["id"], waived)
    for path in written:
        _say(f"wrote {path}")
    if not cancelled:  # a run some of whose bordereaux are cancelled: the others' files
        of = bordereau_of(record)
        for f in record["files"]:
            if (id_bord := of(f["name"])) in gone:
                when, why = gone[id_bord]
                _say(f"not written: {f['name']} (IdBord {id_bord} cancelled {when}: "
                           f"{why}; --cancelled writes it as {CANCELLED_PREFIX}{f['name']}, "
                           "to look at it)")
    _say("identical to the recorded files (sha256)")
    _say_left_by_others(out)
    if record["status"] == "cancelled":
        _echo_err(f"warning: run {record['id']} is cancelled: its files are written as "
                  f"{CANCELLED_PREFIX}<name>, for reading only; do not send them to the "
                  f"trésorerie{_held_since(again, 'its')}")
    elif cancelled and gone:
        _echo_err(f"warning: IdBord {', '.join(map(str, sorted(gone)))} of run {record['id']} "
                  f"{'is' if len(gone) == 1 else 'are'} cancelled: "
                  f"{'its' if len(gone) == 1 else 'their'} files are written as "
                  f"{CANCELLED_PREFIX}<name>, for reading only; do not send them to the "
                  f"trésorerie{_held_since(again, 'its' if len(gone) == 1 else 'their')}")
    interrupts.say_held()


def _regenerate_json(record: dict[str, Any], out: Path, written: list[Path], cancelled: bool,
                     gone: dict[int, tuple[str, str]],
                     again: tuple[int, dict[str, set[int]]] | None,
                     waived: list[Problem]) -> None:
    """`regenerate --format json`'s report: what its text says, each a field: the files
    written (under the name written, with the recorded name, IdBord and sha256, which
    the rebuilt bytes matched), the cancelled bordereaux' files not written, when and why
    they were cancelled, with --cancelled how many of their invoices an active run holds
    now (``Store.exported_again``), the mapping's checks waived, and the temporary files
    another run left in the folder."""
    from .atomic import left_by_others
    from .runs import CANCELLED_PREFIX, bordereau_of

    of = bordereau_of(record)
    by_name = {f["name"]: f for f in record["files"]}

    def is_gone(name: str) -> bool:
        return record["status"] == "cancelled" or of(name) in gone

    files = []
    for path in written:
        # a cancelled bordereau's file is written as CANCELLED-<its name>
        name = path.name if path.name in by_name and not is_gone(path.name) \
            else path.name.removeprefix(CANCELLED_PREFIX)
        f = by_name[name]
        files.append({"path": str(path), "name": name, "id_bord": f["id_bord"],
                      "sha256": f["sha256"], "cancelled": is_gone(name)})
    count, holders = again if again is not None else (0, {})
    _json_exit(
        "regenerate", run=record["id"], status=record["status"], out_dir=str(out),
        identical=True, files=files,
        not_written=[] if cancelled else [
            {"name": f["name"], "id_bord": of(f["name"])} for f in record["files"]
            if of(f["name"]) in gone],
        cancelled_bordereaux=[{"id_bord": id_bord, "cancelled_at": when, "reason": why}
                              for id_bord, (when, why) in sorted(gone.items())],
        exported_again=None if again is None else {
            "count": count,
            "runs": [{"run": run, "id_bords": sorted(bords)} for run, bords in sorted(
                holders.items(), key=lambda held: (min(held[1]), held[0]))]},
        waived_checks=_problems_json(waived),
        left_by_others=[{"file": name, "about": about}
                        for name, about in left_by_others(out)])


def _problems_json(problems: list[Problem]) -> list[dict[str, Any]]:
    from .errors import problem_json

    return [problem_json(p) for p in problems]


def _held_since(again: tuple[int, dict[str, set[int]]] | None, its: str) -> str:
    """What ``regenerate --cancelled``'s warning adds of the cancelled bordereaux'
    invoices (``Store.exported_again``): how many an active run holds now (exported
    again since, the file written would bill them twice), and by which run and IdBord
    (in IdBord order); or that none is."""
    if again is None:
        return ""
    count, holders = again
    if not count:
        return f"; none of {its} invoices is in an active run now"
    return (f"; {count} of {its} invoices were exported again since, by "
            + ", ".join(f"run {run} (IdBord {', '.join(map(str, sorted(bords)))})"
                        for run, bords in sorted(holders.items(),
                                                 key=lambda held: (min(held[1]), held[0]))))


store_app = typer.Typer(no_args_is_help=True, cls=HelpGroup, help="The state database itself.")
app.add_typer(store_app, name="store")


@store_app.command("copy")
def store_copy(
    source: Annotated[str, typer.Option("--from", help="Source store: SQLite path or URL.")],
    target: Annotated[str, typer.Option("--to", help="Target store (empty), e.g. postgresql://…")],
) -> None:
    """Copy a whole store into a new, empty one (e.g. from SQLite to PostgreSQL)."""
    from .store import copy_store

    def url(value: str) -> str:
        return value if "://" in value else f"sqlite:///{Path(value).expanduser().resolve()}"

    try:
        counts = copy_store(url(source), url(target))
    except PesgenError as exc:
        _fail(exc)
        return
    for name, count in counts.items():
        _say(f"{name}: {count} row(s)")


numbering_app = typer.Typer(no_args_is_help=True, cls=HelpGroup, help="Bordereau (rôle) numbering.")
app.add_typer(numbering_app, name="numbering")


@numbering_app.command("set-start")
def numbering_set_start(
    mapping: MappingOpt,
    start: Annotated[int | None, typer.Option(
        "--start", help="The next IdBord to allocate.")] = None,
    start_titre: Annotated[int | None, typer.Option(
        "--start-titre", help="The next titre number (IdPce) to allocate, for a format "
        "numbering its titres over the exercise (pes-titres): the one after the last "
        "titre the collectivity issued this exercise.")] = None,
    exercise: Annotated[int | None, typer.Option(
        "--exercise", help="Exercise, 2000-2999 (default: the mapping's).")] = None,
    db: DbOpt = None,
    formats_dir: FormatsOpt = None,
    create_store: Annotated[bool, typer.Option(
        "--create-store", help="Create the state store named by --db, PESGEN_DB or the "
        "configuration if it is not there, as export does.")] = False,
    output: RunsOutputOpt = Output.text,
) -> None:
    """Onboarding: start a numbering sequence at N, once, before any export.

    When the
    collectivity already issued rôles this exercise; with --start-titre, the titre
    numbers too (once, before any export of theirs)."""
    from .store import Store, shown_store

    try:
        if start is None and start_titre is None:
            raise UsageError("give --start N (the next IdBord), --start-titre T (the next "
                             "titre number), or both")
        key, pieces = _sequence_keys(mapping, exercise, formats_dir, start_titre is not None,
                                     "to start; --start-titre is for a format numbering "
                                     "them over the exercise (pes-titres)")
        # before a store --create-store would make
        if start is not None:
            Store.check_start(start)
        if start_titre is not None:
            Store.check_start(start_titre, pieces=True)
        store = _store(db, create=create_store)
        store.set_start(key, start, None if start_titre is None or pieces is None
                        else (pieces, start_titre))
    except PesgenError as exc:
        if output is Output.json:
            _runs_json("numbering set-start", exc=exc)
        _fail(exc)
        return
    if output is Output.json:
        _runs_json("numbering set-start", store={"url": shown_store(store.url),
                                                 "created": bool(store.created)},
                   sequences=[{**_sequence_head(k), "start": n} for k, n in (
                       (key, start), (pieces, start_titre)) if n is not None])
        return
    created = f" (store {shown_store(store.url)}, created)" if store.created else ""
    if start is not None:
        _say(f"numbering of {key[0]} budget {key[1]} exercise {key[2]} TypBord "
                   f"{key[3]} starts at {start}{created}")
        created = ""
    if start_titre is not None:
        _say(f"titre numbers (IdPce) of {key[0]} budget {key[1]} exercise {key[2]} "
                   f"start at {start_titre}{created}")


ExerciseOpt = Annotated[int | None, typer.Option(
    "--exercise", help="Exercise, 2000-2999 (default: the mapping's).")]


def _sequence_keys(mapping: Path, exercise: int | None, formats_dir: list[Path] | None,
                   titres: bool, refused: str = "over the exercise; the titre options are "
                   "for a format numbering them so (pes-titres)") -> tuple[Any, Any]:
    """The mapping's numbering sequence and, for a format numbering its titres over the
    exercise, its titre numbers' (else None; ``titres``: asked for, refused then, the
    message ending with ``refused``)."""
    from .formats import mapping_format
    from .mapping import load_mapping
    from .runs import check_exercise, piece_key, sequence_key

    check_exercise(exercise)
    m = load_mapping(mapping)
    fmt = mapping_format(m, formats_dir)
    pieces = piece_key(m, fmt, exercise)
    if titres and pieces is None:
        raise UsageError(f"format {fmt.name} numbers its pieces within each bordereau "
                         f"(numbering.pieces: per-bordereau): it has no titre numbers "
                         f"{refused}")
    return sequence_key(m, fmt, exercise), pieces


@numbering_app.command("move")
def numbering_move(
    mapping: MappingOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    to: Annotated[int | None, typer.Option(
        "--to", help="The next IdBord to allocate: the one after the last rôle the "
        "collectivity issued this exercise.")] = None,
    to_titre: Annotated[int | None, typer.Option(
        "--to-titre", help="The next titre number (IdPce) to allocate, for a format "
        "numbering its titres over the exercise (pes-titres).")] = None,
    exercise: ExerciseOpt = None,
    db: DbOpt = None,
    formats_dir: FormatsOpt = None,
    output: RunsOutputOpt = Output.text,
) -> None:
    """Support: move a started numbering sequence to N (numbers issued outside pesgen).

    When the collectivity's numbering
    went on outside pesgen (rôles or titres its finance package issued this exercise,
    which pesgen would number again: Hélios rejects a number it knows). Never to a number
    a recorded run took, cancelled runs' included; recorded with its reason (numbering
    show). Before any export, use set-start."""
    from .store import Store

    try:
        if to is None and to_titre is None:
            raise UsageError("give --to N (the next IdBord), --to-titre T (the next titre "
                             "number), or both")
        key, pieces = _sequence_keys(mapping, exercise, formats_dir, to_titre is not None)
        if to is not None:
            Store.check_start(to, which="next")
        if to_titre is not None:
            Store.check_start(to_titre, pieces=True, which="next")
        wanted = ([] if to is None else [(key, to)]) + \
            ([] if to_titre is None else [(pieces, to_titre)])
        moved = _store(db, must_exist=True).move(wanted, reason)
    except PesgenError as exc:
        if output is Output.json:
            _runs_json("numbering move", exc=exc)
        exc.outcome = exc.outcome or "nothing moved."
        _fail(exc)
    if output is Output.json:
        # forward, the numbers between are skipped: left to those issued outside pesgen
        _runs_json("numbering move", moved=[
            {**_sequence_head(m.key), "from": m.from_number, "to": m.to_number,
             "moved_at": m.moved_at, "reason": m.reason,
             "skipped": {"from": m.from_number, "to": m.to_number - 1}
             if m.to_number > m.from_number else None} for m in moved])
        return
    for m in moved:
        what = "titre number (IdPce)" if m.key == pieces else "IdBord"
        _say(f"{Store.sequence_label(m.key)}: next {what} moved from {m.from_number} to "
             f"{m.to_number} (recorded {m.moved_at}: {m.reason})")
        if m.to_number > m.from_number:  # forward: the numbers between are skipped
            skipped = (f"{what} {m.from_number}: it is" if m.to_number == m.from_number + 1
                       else f"{what} {m.from_number} to {m.to_number - 1}: they are")
            _say(f"  pesgen will not give {skipped} left to the numbers issued outside "
                 "pesgen")


@numbering_app.command("show")
def numbering_show(mapping: Annotated[Path | None, typer.Option(
                       "--mapping", "-m", help="Mapping file (YAML): its sequences only.")
                   ] = None,
                   exercise: ExerciseOpt = None, db: DbOpt = None,
                   formats_dir: FormatsOpt = None,
                   output: RunsOutputOpt = Output.text) -> None:
    """Show the numbering sequences: next numbers, moves, IdBords cancelled unsent.

    The store's sequences (--mapping: the mapping's, and its titre
    numbers' for pes-titres): where each started, the next number, the largest one its
    runs took, its moves with their reasons, and its IdBords cancelled with no
    acknowledgement recorded (unsent, unless their file was: tell the trésorerie)."""
    from .runs import check_exercise
    from .store import PIECE_SEQUENCE, Store

    try:
        if mapping is None:
            check_exercise(exercise)
            store = _store(db, must_exist=True)
            states = [(s.key, s) for s in store.sequences()
                      if exercise is None or s.key[2] == exercise]
        else:
            key, pieces = _sequence_keys(mapping, exercise, formats_dir, False)
            store = _store(db, must_exist=True)
            states = [(k, store.sequence(k)) for k in (key, pieces) if k is not None]
    except PesgenError as exc:
        if output is Output.json:
            _runs_json("numbering show", exc=exc)
        _fail(exc, written=False)  # a listing: nothing to write
    if output is Output.json:
        _runs_json("numbering show", sequences=[_sequence_json(k, state)
                                                for k, state in states])
        return
    if mapping is None and not states:
        _say("no numbering sequence in this store" + (
            f" for exercise {exercise}" if exercise is not None else "") +
            " (no run, no set-start)")
    for k, state in states:
        what = "titre number (IdPce)" if k[3] == PIECE_SEQUENCE else "IdBord"
        if state is None:
            _say(f"{Store.sequence_label(k)}: not started in this store (no run, no "
                 f"set-start): its first export takes {what} 1, unless set-start sets it")
            continue
        took = (f"runs of this store took up to {state.given_up_to}" if state.given_up_to
                else "no run of this store took a number from it")
        _say(f"{Store.sequence_label(k)}: started at {state.start}, next {what} "
             f"{state.next_number}; {took}")
        for m in state.moves:
            _say(f"  moved {m.moved_at}: next {m.from_number} -> {m.to_number} ({m.reason})")
        if state.unsent:
            _say_unsent(state.unsent)


def _say_unsent(unsent: list[Any]) -> None:
    """`numbering show`'s lines of a sequence's IdBords cancelled with no acknowledgement
    recorded (``Store.unsent``): the trésorerie has not received them unless their file
    was sent, and the next file follows them (docs/state.md, Numbering)."""
    from .runs import unsent_groups

    followed = [u for u in unsent if u.moved_past is None]
    moved = [u for u in unsent if u.moved_past is not None]
    if followed:
        _say("  cancelled, no acknowledgement recorded (never received by the trésorerie "
             "if their file was not sent: tell it they were cancelled before sending):")
        for numbers, u in unsent_groups(followed):
            _say(f"    {numbers}  run {u.run_id}  cancelled {u.cancelled_at}"
                 f"{' (whole run)' if u.whole else ''}: {u.reason}")
    if moved:
        _say("  cancelled, no acknowledgement recorded, then moved past (pesgen numbering "
             "move): the trésorerie's sequence goes on after them with the numbers issued "
             "outside pesgen, not a file of pesgen's: no gap of pesgen's to tell it of:")
        for numbers, u in unsent_groups(moved):
            m = u.moved_past
            assert m is not None
            _say(f"    {numbers}  run {u.run_id}  cancelled {u.cancelled_at}"
                 f"{' (whole run)' if u.whole else ''}: {u.reason}; followed by IdBord "
                 f"{u.followed_by}, issued outside pesgen (moved {m.moved_at}: next "
                 f"{m.from_number} -> {m.to_number})")


def _sequence_head(k: tuple[str, str, int, str]) -> dict[str, Any]:
    """A sequence's key in the numbering commands' JSON reports, and which numbers it
    gives: IdBord, or the titre numbers (IdPce) of a format numbering them over the
    exercise."""
    from .store import PIECE_SEQUENCE

    return {"id_coll": k[0], "cod_bud": k[1], "exercise": k[2], "typ_bord": k[3],
            "numbers": "id_pce" if k[3] == PIECE_SEQUENCE else "id_bord"}


def _sequence_json(k: tuple[str, str, int, str], state: Any) -> dict[str, Any]:
    """One sequence of `numbering show --format json`: its key, which numbers it gives,
    where it started, its next number (1 for one not started: its first export's), the
    largest one its runs took (None: none), its moves, and its IdBords cancelled with no
    acknowledgement recorded (``unsent``: [] for the titre numbers and a finance
    package's, whose numbers Hélios does not receive from pesgen)."""
    return {**_sequence_head(k), "started": state is not None,
            "start": None if state is None else state.start,
            "next": 1 if state is None else state.next_number,
            "given_up_to": state.given_up_to or None if state is not None else None,
            "moves": [] if state is None else [
                {"moved_at": m.moved_at, "from": m.from_number, "to": m.to_number,
                 "reason": m.reason} for m in state.moves],
            "unsent": [] if state is None else [
                {"id_bord": u.id_bord, "run": u.run_id, "cancelled_at": u.cancelled_at,
                 "reason": u.reason, "whole_run": u.whole, "followed_by": u.followed_by,
                 "moved_past": None if u.moved_past is None else {
                     "moved_at": u.moved_past.moved_at, "from": u.moved_past.from_number,
                     "to": u.moved_past.to_number, "reason": u.moved_past.reason}}
                for u in state.unsent]}


def _payfip_app() -> typer.Typer:
    from .payfip.cli import payfip_app  # typer only: its commands import what they need

    return payfip_app


app.add_typer(_payfip_app(), name="payfip")


def _say_interrupted(command: str) -> None:
    """``command``'s line for an interrupt before its run was recorded (or its files put
    in place), said once: ``main`` does not say it again."""
    _echo_err(interrupted([command]))
    _Interrupts.said = True


class _ClosedPipeSafe(io.BufferedWriter):
    """Standard output or error that a reader may close early (`pesgen export … | head
    -1`, or `2>&1 | head -1`).

    The summary is printed after the run is committed: a reader that stops reading must
    not turn that into a failure (click would exit 1 on the broken pipe), and a refused
    run keeps its own exit code though its message could not be read. What is left to
    print goes to the null device, and the command's own exit code stands.

    The bytes go through Python's own buffer and file (C, as ``sys.stdout`` does): it
    counts what each write wrote before it runs a signal's handler. A write of ours in
    Python between them let Ctrl-C or SIGTERM (a KeyboardInterrupt) land once the bytes
    were written and before the buffer knew: it kept them and wrote them again with the
    next line (a line, a PayFiP link, said twice).

    A write longer than the buffer (8 KiB: a long refusal, a JSON report) the buffer
    writes past itself, and a signal cutting it partway lost what it had not written
    yet. Such a write is copied whole into a buffer of its size first (``_long``), then
    written from there as the buffer writes its own, its rest kept if a signal cuts
    it, written before anything else: each byte once, in order.

    A write of the buffer's size or more goes that way too, into a buffer one byte
    larger: on an empty buffer, Python 3.13's writes one of its size or more straight
    to the file (3.11 and 3.12 copy one of exactly its size), where a signal cutting it
    lost its rest as above."""

    _SIZE = io.DEFAULT_BUFFER_SIZE  # the buffer's
    raw: io.FileIO  # the one __init__ makes (typeshed's raw stream has no fileno)

    def __init__(self, fd: int) -> None:
        super().__init__(io.FileIO(fd, "w", closefd=False), self._SIZE)
        self.closed_by_reader = False
        self._long: io.BufferedWriter | None = None  # a long write, what is left of it

    def write(self, data: Any) -> int:
        try:
            return self._write(data)
        except BrokenPipeError:
            # not taken: the buffer keeps what it could not write (this write's bytes
            # included), written again to the null device (a long one's rest there too)
            self._to_null()
            return self._write(data)

    def _write(self, data: Any) -> int:
        self._flush_long()  # a long write's rest first; cut: this one is not taken
        size = memoryview(data).nbytes
        if size < self._SIZE:  # copied into the buffer, on every Python
            return super().write(data)
        super().flush()  # what the buffer holds goes before it
        # copied whole, nothing written yet (a signal before: not taken, nothing of it
        # written; after: taken, its rest written by the next write or flush)
        self._long = io.BufferedWriter(io.FileIO(self.raw.fileno(), "w", closefd=False),
                                       buffer_size=size + 1)
        self._long.write(data)
        self._flush_long()
        return size

    def _flush_long(self) -> None:
        if self._long is not None:
            self._long.flush()  # counts what each write wrote: cut, it keeps the rest
            self._long = None

    def flush(self) -> None:
        try:
            self._flush_long()
            super().flush()
        except BrokenPipeError:
            self._to_null()
            self._flush_long()
            super().flush()

    def _to_null(self) -> None:
        self.closed_by_reader = True
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, self.raw.fileno())  # later writes of anyone to this fd go nowhere
        os.close(null)


def _pipe_safe(name: str) -> None:
    """Replace ``sys.stdout`` or ``sys.stderr`` (``name``) by a pipe-safe stream."""
    out = getattr(sys, name)
    if out is None or out.isatty():
        return
    try:
        fd = out.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture)
        return
    out.flush()
    setattr(sys, name, _pipe_safe_text(fd, out.encoding, out.errors,
                                       stderr=name == "stderr"))


def _pipe_safe_text(fd: int, encoding: str, errors: str | None, *,
                    stderr: bool) -> io.TextIOWrapper:
    """The text stream ``_pipe_safe`` puts in place of standard output or error (``fd``)."""
    # standard error is written through at once, as Python's own is
    return io.TextIOWrapper(_ClosedPipeSafe(fd), encoding=encoding,
                            errors=errors, line_buffering=True, write_through=stderr)


def _showable(name: str) -> None:
    """A character the terminal's encoding lacks ('…' in Latin-1) is written as \\u2026,
    never an UnicodeEncodeError: a summary is printed once the run is committed."""
    out = getattr(sys, name)
    if isinstance(out, io.TextIOWrapper):
        out.reconfigure(errors="backslashreplace")


# the environment variables pesgen reads a path from, as it reads an argument
_PATH_VARIABLES = ("PESGEN_CONFIG", "PESGEN_DB", "PESGEN_FORMATS_PATH", "PESGEN_OFFICIAL_XSD")


def _undecodable(args: list[str], cwd: str) -> str | None:
    """The refusal of a command line word, the working directory or a variable naming a
    path holding bytes that are not text in the locale's encoding (a file named in
    Latin-1 under a UTF-8 locale; any accent when Python reads names as ASCII): pesgen
    records and prints names as text, and such a name cannot be (an export stopped on a
    traceback as it recorded the run). None when all are text. ``cwd`` and the variables
    count for a command only (not ``--help``): relative paths are read from it."""
    words = [(word, "the argument") for word in args]
    if args and not {"--help", "-h", "version"} & set(args):
        words.append((cwd, "the working directory"))
        words += [(os.environ[name], name) for name in _PATH_VARIABLES if name in os.environ]
    for word, what in words:
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            # a store's URL (--db, --from, --to, PESGEN_DB) keeps its password masked,
            # the bytes refused in it included
            masked = masked_argument(word)
            name = os.fsencode(masked).decode("utf-8", "backslashreplace")
            if masked.isprintable() and not any("\udc80" <= c <= "\udcff" for c in masked):
                name += " (in what is masked there)"
            encoding = sys.getfilesystemencoding()
            todo = ("rename it (it was named in another encoding: Latin-1, Windows')"
                    if encoding == "utf-8" else
                    "run pesgen in a UTF-8 locale (LANG=C.UTF-8, or PYTHONUTF8=1)")
            return (f"error: {what} '{escaped_lines(name)}' holds bytes that are not text in "
                    f"this locale's encoding ({encoding}), and pesgen records and prints "
                    f"names as text: {todo}; nothing was done")
    return None


def main() -> None:
    signal.signal(signal.SIGTERM, terminate)
    _Interrupts.process_ends = True
    _showable("stdout")
    _showable("stderr")
    _pipe_safe("stdout")
    _pipe_safe("stderr")
    try:
        cwd = os.getcwd()
    except OSError:  # removed under the shell: a relative path then says so
        cwd = "/"
    if refused := _undecodable(sys.argv[1:], cwd):
        _echo_err(refused)
        sys.exit(int(ExitCode.USAGE))
    try:
        app()  # Ctrl-C and SIGTERM end as typer's exit 130, after the clean-up
    except SystemExit as exc:
        if exc.code == 130 and not _Interrupts.said:
            # before the command's own handling (click parsing its options), or by a
            # command that says nothing of it: said all the same
            _echo_err(interrupted(sys.argv[1:]))
        raise
    except PesgenError as exc:  # pragma: no cover - commands catch their own
        _echo_err(f"error: {exc}")
        sys.exit(int(exc.exit_code))
    except Exception as exc:
        failure = _machine_failure(exc)
        if failure is None:
            raise
        _echo_err(failure[0])
        sys.exit(int(failure[1]))


def _machine_failure(exc: Exception) -> tuple[str, ExitCode] | None:
    """The error line and exit code of a failure of the machine (an OSError: folder not
    writable, disk full, not a folder…; no bug) or of the state store (a database error
    no command turned into a PesgenError); None for any other exception."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"error: {exc.strerror or exc}{where}; nothing was written", ExitCode.USAGE
    if not isinstance(exc, DBAPIError):
        return None
    return _store_failure(exc), ExitCode.STATE


def _store_failure(exc: Any) -> str:
    """The error line of a state-store failure (``exc``: a DBAPIError)."""
    from .store import db_said

    said = db_said(exc)
    if getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_READONLY_DBMOVED":
        # another pesgen made this store, its export was refused with nothing
        # recorded, and it removed the store while this command had it open
        return ("error: the state store's file was removed while this command used it "
                "(an export refused with nothing recorded removes the store it has "
                "just created: docs/state.md); nothing was recorded: run the command "
                "again (with --create-store to create the store)")
    if exc.connection_invalidated:
        # lost as the command committed, its change may be in the database (an
        # export reads it again itself: runs.py; any other command cannot tell)
        return (f"error: the connection to the state store was lost: {said}; a change "
                "this command was committing may be recorded: check (`pesgen runs "
                "list`, `pesgen runs show RUN`) before running it again")
    return f"error: the state store failed: {said}; nothing was recorded"
