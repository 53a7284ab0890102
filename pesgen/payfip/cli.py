"""``pesgen payfip …``: PayFiP links, the notification receiver, the fake, reconciliation,
payment exports, TIPI links and Datamatrix. Parse options, call the library, print.

Only typer is imported here; each command imports what it needs, so ``pesgen`` starts
as fast as before and works without the optional PayFiP dependencies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Protocol

import typer

from .._display import db_option, escaped, json_text, masked_text, shown
from .._echo import echo_err as _echo_err
from .._echo import err_text
from .._echo import say as _say
from .._help import DB_HELP, HelpGroup
from ..errors import ExitCode, PesgenError, UsageError

payfip_app = typer.Typer(no_args_is_help=True, cls=HelpGroup,
                         help="PayFiP / TIPI régie: online payment of invoices, "
                         "notifications, reconciliation, Datamatrix.")

DbOpt = Annotated[str | None, typer.Option("--db", envvar="PESGEN_DB", metavar="<file|url>",
                                           help=DB_HELP)]
EndpointOpt = Annotated[str | None, typer.Option(
    "--endpoint", envvar="PESGEN_PAYFIP_ENDPOINT",
    help="PayFiP base URL (…/tpa); default: the mapping's payfip.endpoint, else "
         "https://www.payfip.gouv.fr/tpa.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per PayFiP call.")]
MappingOpt = Annotated[Path, typer.Option("--mapping", "-m", help="Mapping file (YAML).")]


def _fail(exc: PesgenError) -> None:
    from ..cli import _fail as fail
    from .errors import LinksRefused

    if isinstance(exc, LinksRefused):
        # a batch's refusal: each invoice's problems under it, not all after them
        _echo_err(f"error: {exc.report()}")
        raise typer.Exit(int(exc.exit_code))
    fail(exc)


def _check_format(fmt: str) -> None:
    """Refuse a ``--format`` other than text or json (the PayFiP commands' reports)."""
    if fmt not in ("text", "json"):
        raise UsageError(f"--format must be text or json, got '{shown(fmt)}'")


def _problems_json(exc: PesgenError) -> list[dict[str, Any]]:
    """A refusal's problems as the JSON reports give them (``errors.problem_json``: the
    rule, the file, line and key, the input record and invoice, the message)."""
    from ..errors import problem_json

    return [problem_json(p) for p in exc.problems]


# what a listing for standard output holds in memory before going on to a temporary file
_SPOOL_MEMORY = 8 << 20


def _spooled(pieces: Iterator[str]) -> IO[str]:
    """``pieces``, a listing for standard output read from the store a chunk at a time,
    written to a temporary file (in memory up to 8 MiB, on disk beyond): it is printed
    once whole (``_print_spooled``), so that a store failing after the first rows leaves
    nothing printed, as a file written with -o is whole or absent, and no truncated
    document. The failure goes through."""
    import tempfile

    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY, mode="w+",
                                          encoding="utf-8", newline="")
    try:
        for piece in pieces:
            spool.write(piece)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _print_spooled(spool: IO[str]) -> None:
    """Print a listing ``_spooled`` holds, a megabyte at a time, and drop it.

    Ctrl-C or SIGTERM while it is copied (a reader slow to take it, a pager's Ctrl-C)
    leaves standard output with as much as was written: said as such on standard error
    (not a bare "interrupted", which read as nothing printed), exit 130. Holding the
    signals for the copy instead would let a reader that never reads (a pipe stuck)
    keep the process unkillable but for SIGKILL."""
    done = False
    with spool:
        try:
            while chunk := spool.read(1 << 20):
                typer.echo(chunk, nl=False)
            done = True
        except KeyboardInterrupt:
            if done:  # printed whole: an interrupt as any other after the work
                raise
            from ..cli import _Interrupts

            _echo_err("interrupted while the listing was printed: what standard output "
                      "holds may be cut short (its end, the last line or the JSON "
                      "document's closing, missing); not the whole listing: run the "
                      "command again")
            _Interrupts.said = True
            raise typer.Exit(130) from None


def _store(db: str | None, must_exist: bool = True, create: bool | None = None) -> Any:
    """The state store. It must exist for the commands that work on exported runs or on
    recorded payments (a mistyped --db must not answer "nothing" from a new, empty
    store); ``serve`` may start before the first export (docs/payfip.md), and then
    creates a store as export does (``create``: the default one, or with --create-store)."""
    from ..cli import _store as store

    return store(db, must_exist=must_exist, create=create)


def _log_outcomes() -> None:
    """Show pesgen.payfip's log lines (idOps and outcomes; never amounts or addresses)."""
    import logging

    # on standard error as echo_err's lines: a URL quoted (an endpoint), its secrets
    # masked; a value received (an idOp a notification gave), its control characters
    # escaped
    class Masked(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return err_text(super().format(record))

    handler = logging.StreamHandler()
    handler.setFormatter(Masked("%(levelname)s:     %(name)s: %(message)s"))
    logger = logging.getLogger("pesgen.payfip")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _need_extras(*names: str) -> None:
    """The optional ``[payfip]`` packages a command needs (default: the web service's:
    httpx, starlette, uvicorn), or a clean refusal (exit 2) naming the one missing.
    ``tipi-url`` needs none (it only builds a URL), ``datamatrix`` only pystrich."""
    import importlib

    for name in names or ("httpx", "starlette", "uvicorn"):
        try:
            importlib.import_module(name)
        except ImportError:
            raise UsageError(f"PayFiP needs optional packages ({name} is missing): "
                             "pip install 'pesgen[payfip]'") from None


@payfip_app.command()
def link(
    mapping: MappingOpt,
    invoice: Annotated[list[str], typer.Option(
        "--invoice", "-n", help="Invoice number (repeatable: one link each, all checked "
        "before any is sent).")],
    mel: Annotated[str | None, typer.Option(
        "--mel", help="Payer e-mail (default: payer.email of the run's recorded input); "
        "with one --invoice only.")] = None,
    notify_url: Annotated[str | None, typer.Option(
        "--notify-url", help="urlnotif: where `pesgen payfip serve` listens "
        "(…/payfip/notification); default: the mapping's payfip.notify_url.")] = None,
    return_url: Annotated[str | None, typer.Option(
        "--return-url", help="urlredirect (default: …/payfip/retour beside --notify-url).")
    ] = None,
    mode: Annotated[str | None, typer.Option(
        "--mode", help="saisie: T test, X activation, W production (default: the mapping's).")
    ] = None,
    again: Annotated[bool, typer.Option(
        "--again", help="Make a link even for an invoice whose earlier link (saisie W or "
        "X) is still open, or being made by another `payfip link`: a second one, the first "
        "staying payable (a note says so). Without it such an invoice is refused, or "
        "skipped in a batch, naming that link or command.")
    ] = False,
    endpoint: EndpointOpt = None,
    timeout: TimeoutOpt = 15.0,
    fmt: Annotated[str, typer.Option(
        "--format", help="text, or json: one report once the batch is over (command, ok, "
        "exit_code, error, then the links made, made, skipped, not_sent, stopped_at, "
        "mode_note; a refusal's problems); the same exit codes.")] = "text",
    db: DbOpt = None,
) -> None:
    """Create a PayFiP payment for each invoice given and print its payment page's URL.

    The amount is its active run's; the URL is to send to the family. Every invoice is
    checked before anything is sent: one refused, none is sent. An invoice whose link
    is still open gets no second one without --again: refused, or skipped in a batch
    (its link said on stderr), so that a batch run again makes only the links it had
    not made. Stopped midway (an error, Ctrl-C, its output closed by its reader), it
    says which invoices got a link and which were not sent."""
    from .service import Batch

    batch = Batch()
    links = None
    printing = None  # the link being printed: its lines may not have reached the reader
    tests: set[str] = set()  # the test or activation modes of the links made
    made: list[Any] = []  # --format json: the links made, said once the batch is over
    skips_said = claims_said = 0

    def say_skipped() -> None:
        # the invoices skipped for their link still open (known once every invoice is
        # checked, none refused; then one as its link is recorded, another link of it
        # recorded meanwhile), or being made by another command (once every one is
        # claimed), each once: before the next link printed, or what stopped the batch,
        # or its last line
        nonlocal skips_said, claims_said
        if fmt == "text" and len(batch.skipped) > skips_said:
            from .service import skipped_note

            for found in batch.skipped[skips_said:]:
                _echo_err(f"note: {skipped_note(found, batch.issued.get(found[-1].invoice))}")
            skips_said = len(batch.skipped)
        if fmt == "text" and len(batch.claimed) > claims_said:
            from . import claims

            for claim in batch.claimed[claims_said:]:
                _echo_err(f"note: {claims.skipped_note(claim)}")
            claims_said = len(batch.claimed)

    try:
        _check_format(fmt)
        _need_extras()
        from .service import create_links

        links = create_links(_store(db), mapping, invoice, mel=mel, notify_url=notify_url,
                             return_url=return_url, endpoint=endpoint, mode=mode,
                             timeout=timeout, batch=batch, again=again)
        for result in links:
            if fmt == "json":
                # nothing printed until the batch is over: each link kept for the report
                made.append(result)
                if result.saisie in ("T", "X"):
                    tests.add(result.saisie)
                continue
            say_skipped()
            # each link as soon as it is recorded: a batch stopped midway has printed
            # every link it made
            printing = result
            amount = f"{result.amount_cents // 100},{result.amount_cents % 100:02d} EUR"
            _say(f"invoice {result.invoice}: PayFiP operation {result.id_op} (refdet "
                       f"{result.refdet}, {amount}, saisie {result.saisie})")
            typer.echo(result.url)
            for note in result.notes:
                _echo_err(f"note: {note}")
            if result.saisie in ("T", "X"):
                tests.add(result.saisie)
            if _stdout_closed():
                # `| head -2`: the links after it would go nowhere; not made
                raise BrokenPipeError(32, "standard output closed by its reader")
            printing = None
    except PesgenError as exc:
        if fmt == "json":
            _link_json(batch, invoice, made, tests, exc)
        say_skipped()
        if exc.outcome is None:
            # what the refusal leaves, after the count of problems: a link writes no file
            # ("nothing was written." read as if something else had been done); refused
            # while sending, its message says what was made and recorded already
            exc.outcome = "nothing was sent." if batch.sending is None else ""
        _fail(exc)
        return
    except (KeyboardInterrupt, BrokenPipeError) as exc:
        if links is not None:
            links.close()  # no link after it; the client closed
        if fmt == "json" and isinstance(exc, KeyboardInterrupt):
            _link_json(batch, invoice, made, tests, exc)
        say_skipped()
        _batch_stopped(batch, invoice, printing, exc)
    if fmt == "json":
        _link_json(batch, invoice, made, tests)
        return
    say_skipped()
    if tests:
        _echo_err(f"note: {_mode_note(tests)}")
    if len(invoice) > 1:
        from .service import listed

        skipped = [found[-1].invoice for found in batch.skipped]
        claimed = [claim.invoice for claim in batch.claimed]
        _echo_err(f"{batch.made} link(s) made" + (
            f", {len(skipped)} invoice(s) skipped for a link still open (no second link "
            f"without --again): {listed(skipped)}" if skipped else "") + (
            f", {len(claimed)} invoice(s) skipped for a link another `payfip link` is "
            f"making (rule payfip.claimed): {listed(claimed)}" if claimed else ""))


def _mode_note(tests: set[str]) -> str:
    """What the test or activation mode (``tests``: T, X) of links made means."""
    # "saisie T" alone says nothing to a régisseur: the example mapping's mode is T, and
    # its links sent to families collect nothing
    return (f"saisie {'/'.join(sorted(tests))}: "
            f"{ {'T': 'test', 'X': 'activation'}.get(''.join(tests), 'test or activation')} "
            "link(s): a payment through them is recorded as a test (test-paid), never as a "
            "payment of the invoice; links for families to pay are production ones, saisie W "
            "(payfip.mode: W in the mapping, or --mode W) (docs/payfip.md, Test and "
            "activation mode)")


def _link_json(batch: Any, given: list[str], made: list[Any], tests: set[str],
               stopped: BaseException | None = None) -> None:
    """`payfip link --format json`'s report, then its exit (the text's code): every link
    made and recorded, also when the batch stopped after some (a family may get them);
    the invoices nothing was sent for; the one whose link was being made when it stopped
    (``stopped``: a refusal or PayFiP's error, Ctrl-C or SIGTERM); a refusal's problems."""
    from ..cli import _Interrupts, _json_exit
    from . import claims
    from .models import cents_text
    from .service import skipped_note

    if batch.sending is None:  # refused or stopped while checking them: nothing sent
        not_sent, stopped_at = (list(given) if stopped is not None else []), None
    else:
        not_sent, stopped_at = batch.not_sent(), batch.stopping()
    fields: dict[str, Any] = {
        "links": [{"invoice": m.invoice, "id_op": m.id_op, "refdet": m.refdet,
                   "amount": cents_text(m.amount_cents), "amount_cents": m.amount_cents,
                   "saisie": m.saisie, "exer": m.exer or None, "url": m.url,
                   "notes": list(m.notes)} for m in made],
        "made": len(made),
        # the invoices skipped for their links still open, each with them (the latest
        # last: the one to send again) and what the text says of it
        "skipped": [{"invoice": found[-1].invoice, "open_links": [
            {"id_op": f.id_op, "created_at": f.created_at, "saisie": f.saisie,
             "status": f.status, "url": f.url} for f in found],
            "note": skipped_note(found, batch.issued.get(found[-1].invoice))}
            for found in batch.skipped] + [
            # those another `payfip link` is making: who, since when, until when
            {"invoice": c.invoice, "open_links": [], "claimed_by": {
                "holder": c.holder, "since": c.claimed_at, "seconds": c.seconds,
                "lapses_at": c.until}, "note": claims.skipped_note(c)}
            for c in batch.claimed],
        "not_sent": not_sent, "stopped_at": stopped_at,
        "mode_note": _mode_note(tests) if tests else None}
    if isinstance(stopped, PesgenError):
        _json_exit("payfip link", int(stopped.exit_code), str(stopped),
                   problems=_problems_json(stopped), **fields)
    if stopped is not None:  # Ctrl-C or SIGTERM: said here, not again by ``main``
        _Interrupts.said = True
        _json_exit("payfip link", 130, "interrupted", problems=[], **fields)
    _json_exit("payfip link", 0, None, **fields)


def _stdout_closed() -> bool:
    """Whether standard output's reader closed it (`pesgen payfip link … | head -2`):
    what pesgen prints to it since goes nowhere (``cli._ClosedPipeSafe``)."""
    import sys

    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    return bool(getattr(getattr(sys.stdout, "buffer", None), "closed_by_reader", False))


def _batch_stopped(batch: Any, given: list[str], printing: Any, exc: BaseException) -> None:
    """Say what `payfip link` stopped by Ctrl-C or SIGTERM (exit 130) or by its output
    closed (exit 2, as an OSError) leaves: the invoices that got a link (made and
    recorded; the URL of the one being printed, on standard error), the one whose link
    was being made (PayFiP may have made an operation for it), those not sent."""
    from ..cli import _Interrupts
    from .service import listed

    interrupted = isinstance(exc, KeyboardInterrupt)
    head = "interrupted" if interrupted else "error: standard output closed by its reader"
    if batch.sending is None:  # still checking them
        said = f"{head}: nothing sent ({len(given)} invoice(s) were being checked)"
    else:
        made, stopping, rest = batch.made_links(), batch.stopping(), batch.not_sent()
        said = f"{head}: {len(made)} link(s) made and recorded" + (
            f" ({listed(made)})" if made else "")
        if stopping is not None:
            said += (f"; invoice {stopping}: stopped while its link was being made, no "
                     "link printed (an operation PayFiP may have made for it: recorded, "
                     "`pesgen payfip payments` lists it and the same command run again "
                     "gives its link, no second one; not recorded, nobody can pay it)")
        if rest:
            said += f"; {len(rest)} invoice(s) not sent: {listed(rest)}"
    _echo_err(said)
    if printing is not None:  # recorded; its lines cut short, or not read
        _echo_err(f"  the link of invoice {printing.invoice} (operation {printing.id_op}), "
                  f"its printing cut short: {printing.url}")
    if interrupted:
        _Interrupts.said = True
        raise typer.Exit(130) from None
    raise typer.Exit(int(ExitCode.USAGE)) from None


@payfip_app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    endpoint: Annotated[str | None, typer.Option(
        "--endpoint", help="Pull results from this PayFiP base URL instead of the one each "
        "operation was created on.")] = None,
    timeout: TimeoutOpt = 15.0,
    db: DbOpt = None,
    create_store: Annotated[bool, typer.Option(
        "--create-store", help="Create the state store named by --db, PESGEN_DB or the "
        "configuration if it is not there, as export does.")] = False,
    # default: receiver.STORE_WAIT (not imported here: starlette is optional)
    store_wait: Annotated[float, typer.Option(
        "--store-wait", envvar="PESGEN_PAYFIP_STORE_WAIT", min=0,
        help="Seconds a notification waits for the state store's lock another pesgen run "
        "holds (an export recording its run; on PostgreSQL, its operation's rows another "
        "transaction holds), in each transaction; past them it is answered 503 and left "
        "pending for `pesgen payfip reconcile`.")] = 5.0,
) -> None:
    """Receive PayFiP notifications (POST /payfip/notification) and family returns
    (/payfip/retour); pull each result over SOAP and record it once."""
    try:
        _need_extras()
        from .receiver import create_app
        from .server import run
        from .service import KeptClients, default_factory

        store = _store(db, must_exist=False, create=create_store)
    except PesgenError as exc:
        _fail(exc)
        return
    _say(f"pesgen payfip serve: notifications at http://{host}:{port}/payfip/notification")
    _log_outcomes()
    # one client per endpoint for the receiver's life, not one per notification
    with KeptClients(default_factory(endpoint, timeout)) as clients:
        run(create_app(store, clients, store_wait=store_wait), host, port)


@payfip_app.command()
def fake(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8700,
    no_notify: Annotated[bool, typer.Option(
        "--no-notify", help="Never send notifications (as when they get lost).")] = False,
    client: Annotated[list[str] | None, typer.Option(
        "--client", help="Known client number (repeatable); default: any 6 digits.")] = None,
) -> None:
    """Run a local fake PayFiP (same SOAP contract, a payment page that can pay by card or
    direct debit, refuse or abandon) for tests and demos. Never expose it."""
    try:
        _need_extras()
        from .fake import FakePayfip
        from .server import run
    except PesgenError as exc:
        _fail(exc)
        return
    clients = {c: ("COLLECTIVITE DE TEST", "REGIE DE TEST", "PAYFIP FAKE")
               for c in client} if client else None
    _say(f"fake PayFiP: endpoint http://{host}:{port}/tpa (SOAP at /tpa/services/securite)")
    _log_outcomes()
    run(FakePayfip(clients=clients, notify=not no_notify).app, host, port)


@payfip_app.command()
def reconcile(
    since: Annotated[str | None, typer.Option(
        "--since", help="Only operations created on or after this date (YYYY-MM-DD).")] = None,
    endpoint: Annotated[str | None, typer.Option(
        "--endpoint", help="Ask this PayFiP base URL instead of each operation's own.")
    ] = None,
    timeout: TimeoutOpt = 15.0,
    fmt: Annotated[str, typer.Option(
        "--format", help="text, or json: a report (command, ok, exit_code, error, then "
        "counts, the anomalies recorded by kind, and each operation asked), printed once "
        "the sweep is over.")] = "text",
    db: DbOpt = None,
) -> None:
    """Ask PayFiP about every pending or unknown operation and record its result.

    It records results whose
    notification never arrived; P1 (purged) operations expire. The anomalies recorded (a
    double payment…) are counted by kind in the summary: `pesgen payfip anomalies`. A
    store another session holds is waited for at most store_lock_timeout (then exit 7,
    nothing changed for the operation under way)."""
    from collections import Counter

    from ..cli import _json_exit

    # a test payment (saisie T or X) pays nothing: counted apart from the results recorded
    counts: Counter[str] = Counter()
    # the anomalies recorded, by kind: a double payment's is recorded beside a payment
    # (its line says `recorded, now paid`), and each is for a person
    kinds: Counter[str] = Counter()
    asked: list[dict[str, Any]] = []
    try:
        _check_format(fmt)
        _need_extras()
        from ..cli import _parse_date
        from .service import default_factory, reconcile_each

        day = _parse_date(since, "--since")
        # each line as its operation is recorded: a long sweep shows its progress, and
        # one interrupted has said what it recorded
        for o in reconcile_each(_store(db), default_factory(endpoint, timeout),
                                day.isoformat() if day else None):
            if fmt == "json":
                asked.append({"id_op": o.id_op, "invoice": o.invoice, "action": o.action,
                              "status": o.status, "message": o.message or None,
                              "anomalies": list(o.anomalies)})
            else:
                extra = f" ({shown(o.message)})" if o.message else ""
                # what was done, then the operation's status when it says more:
                # `recorded, now paid`, `error, now unknown`; `pending`, `expired` alone
                now = "" if o.status in (None, o.action) else f", now {o.status}"
                # an anomaly beside a result recorded (a double payment): said on its line,
                # where an `anomaly` line's message names its kinds already
                also = (f", anomaly {', '.join(o.anomalies)}"
                        if o.anomalies and o.action == "recorded" else "")
                _say(f"{o.id_op}  {o.invoice or '-'}  {o.action}{now}{also}{extra}")
            counts["test-paid" if (o.action, o.status) == ("recorded", "test-paid")
                   else o.action] += 1
            kinds.update(o.anomalies)
    except PesgenError as exc:
        exc = _reconcile_locked(exc, counts.total())
        if fmt == "json":
            _json_exit("payfip reconcile", int(exc.exit_code), str(exc),
                       problems=_problems_json(exc), counts=dict(sorted(counts.items())),
                       anomalies=dict(sorted(kinds.items())), operations=asked)
        _fail(exc)
        return
    # some results could not be asked: alert (exit 8)
    code = int(ExitCode.REMOTE) if counts.get("error") else 0
    if fmt == "json":
        _json_exit("payfip reconcile", code, None if not code else
                   f"{counts['error']} operation(s) could not be asked their result",
                   counts=dict(sorted(counts.items())), anomalies=dict(sorted(kinds.items())),
                   operations=asked)
        return
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing open"
    if kinds:
        summary += (f"; {kinds.total()} anomaly(ies) recorded ("
                    + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                    + "): `pesgen payfip anomalies` says what to do")
    _say(f"reconciled {counts.total()} operation(s): {summary}")
    if code:
        raise typer.Exit(code)


def _reconcile_locked(exc: PesgenError, done: int) -> PesgenError:
    """A sweep that gave up waiting for the store (StoreLocked: another run's lock on
    SQLite, another transaction's rows on PostgreSQL) says what it left unchanged: the
    operation it was recording (rolled back) and those after it; ``done`` before it
    stand. Any other error as it is."""
    from ..store import stopped_waiting

    before = f"; the {done} operation(s) before it are done, as listed" if done else ""
    return stopped_waiting(exc, "payfip reconcile stopped waiting: nothing changed for the "
                           f"operation it was recording nor for those after it{before}")


@payfip_app.command()
def payments(
    since: Annotated[str | None, typer.Option(
        "--since", help="Only payments changed on or after this date (YYYY-MM-DD, UTC).")
    ] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="csv (the default: the school software's file, ';'-separated), "
        "json, or text: a line an invoice's row for a person to read (status, amounts, "
        "when paid, its link, its title).")] = "csv",
    history: Annotated[bool, typer.Option(
        "--history", help="JSON: include each invoice's history.")] = False,
    invoices: Annotated[list[str] | None, typer.Option(
        "--invoice", "-n", help="Only this invoice's rows (repeatable), its number compared "
        "as `runs find` compares it (case, surrounding spaces and look-alike characters "
        "aside); one with no row, or pending with no result recorded (reconcile asks "
        "PayFiP), is said on standard error.")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of standard output.")] = None,
    db: DbOpt = None,
) -> None:
    """Export PayFiP payments per invoice for the school software (CSV, JSON or text).

    Each with its status, amounts, method, date and saisie. Status test-paid: paid in
    test or activation mode (saisie T or X), not a payment of the invoice. Status
    cancelled: the title was cancelled (runs cancel), nothing is due on it; a payment it
    received stays shown (amount_paid…) and payfip_status keeps what PayFiP says. Status
    held-back: a title due whose family paid through its cancelled title, the
    trésorerie's answer awaited: no link, and the family is not to be asked for it."""
    try:
        from ..cli import _parse_date
        from .ledger import iter_payments

        if fmt not in ("csv", "json", "text"):
            raise UsageError(f"--format must be csv, json or text, got '{shown(fmt)}'")
        day = _parse_date(since, "--since")
        store = _store(db)
    except PesgenError as exc:
        _fail(exc)
        return
    seen = _Seen(keyed=bool(invoices))
    # the rows as they are read, 500 invoices at a time (ledger.iter_payments), written as
    # they come: memory does not grow with the ledger
    rows = iter_payments(store, day, history and fmt == "json",
                         invoices=invoices or None)
    pieces = _payment_pieces(seen.counted(rows), fmt)
    spool: IO[str] | None = None
    try:
        # read-only: not waiting for an export to finish, nor holding one up (docs/state.md)
        with store.reads():
            if output:
                from ..atomic import write_file

                # complete or absent: written beside it, put in place once whole
                write_file(output, (piece.encode("utf-8") for piece in pieces))
            else:  # printed once whole: a store failing midway prints no row
                spool = _spooled(pieces)
    except PesgenError as exc:
        _fail(exc)
        return
    if spool is not None:
        _print_spooled(spool)
    summary = f"{seen.invoices} invoice(s) in {seen.rows} row(s)"
    _echo_err(f"wrote {output}: {summary}" if output else summary)
    if invoices:
        _no_row_notes(store, invoices, seen.keys, day)
        _pending_notes(seen.pending)
    if seen.expired:
        # P1: PayFiP purged the operation, maybe after a payment whose notification was
        # lost; only the trésorerie knows (the list itself is for the school software)
        _echo_err(f"note: {seen.expired} invoice(s) expired: PayFiP no longer knows their "
                   "operation, so whether the family paid before it expired is not known; "
                   "check with the trésorerie before sending a new link (docs/payfip.md)")
    if seen.undated:
        # PayFiP's answer said paid but gave no dattrans/heurtrans: the payment is sure,
        # its time is not
        _echo_err(f"note: {seen.undated.count} payment(s) came without PayFiP's transaction "
                   f"date and time (dattrans/heurtrans) ({seen.undated}): their paid_at is "
                   "when pesgen recorded the result, not when the family paid (paid_at_source "
                   "recorded in --format json; docs/payfip.md)")
    # a cancelled title is not due: money it received, or a link still open on it, is
    # for support and the trésorerie (the school software sees status cancelled)
    if seen.paid_cancelled:
        from .ledger import open_anomaly_ops
        from .tables import PAID_CANCELLED

        # its paid-cancelled anomaly (the paying operation's) open: the answer is still to
        # record; resolved (with --note alone: --refunded makes the payment refunded, and
        # --applied moves it to the new title), the decision is recorded already, and the
        # answer may still come (an outcome on a resolution with a note alone)
        unanswered = open_anomaly_ops(store, {op for _, op in seen.paid_cancelled},
                                      kind=PAID_CANCELLED)
        paid_open, paid_resolved = _Some(), _Some()
        for invoice, op in seen.paid_cancelled:
            (paid_open if op in unanswered else paid_resolved).add(invoice)
        if paid_open:
            _echo_err(f"note: {paid_open.count} cancelled title(s) were paid online "
                       f"({paid_open}): the money stays with the cancelled title; the "
                       "trésorerie refunds it or applies it to the title exported in its "
                       "place; record its answer on the title's paid-cancelled anomaly "
                       "(`pesgen payfip anomalies`)")
        if paid_resolved:
            _echo_err(f"note: {paid_resolved.count} cancelled title(s) were paid online, "
                       f"their paid-cancelled anomaly resolved since ({paid_resolved}): the "
                       "money stays with the cancelled title, and the invoice paid for "
                       "pesgen (no link for the title exported in its place); the decision "
                       "is recorded (`pesgen payfip anomalies --all`), and the trésorerie's "
                       "answer can still be (`pesgen payfip anomalies resolve ID --refunded` "
                       "or `--applied`, with `--note TEXT`)")
    if seen.cancelled_titles:
        # the row's payfip_status (pending) is the invoice's, which an anomaly does not
        # change: whether the link is still open is its operation's status; and an
        # earlier link of the title may be open still whatever its last one says (answered,
        # refused): any of them is payable
        from .ledger import OPEN, open_anomaly_ops, operation_statuses, titles_with_open_links

        ops = {x[1] for x in seen.pending_cancelled}
        now = operation_statuses(store, ops)
        unresolved = open_anomaly_ops(store, {op for op in ops if now.get(op) == "anomaly"})
        last_open: set[str] = set()  # its last link open (one recorded without its run too)
        answered, resolved = _Some(), _Some()
        for invoice, op, saisie in seen.pending_cancelled:
            if now.get(op) in OPEN:
                last_open.add(invoice)
            elif now.get(op) == "anomaly" and saisie != "T":  # a test collects nothing
                # a person decided already (resolved): said apart, not as work to do
                (answered if op in unresolved else resolved).add(invoice)
        linked = titles_with_open_links(store, seen.cancelled_titles)
        still_open = _Some()
        for title in seen.cancelled_titles:
            if title[1] in last_open or title in linked:
                still_open.add(title[1])
        if still_open:
            _echo_err(f"note: {still_open.count} cancelled title(s) still have a PayFiP "
                       f"link open ({still_open}): a payment through it would be an anomaly "
                       "(run-cancelled), not a payment")
        if answered:
            _echo_err(f"note: {answered.count} cancelled title(s) were answered through "
                       f"their PayFiP link after the cancellation ({answered}): an anomaly, "
                       "not a payment (money may have been collected for a cancelled title); "
                       "`pesgen payfip anomalies` says what to do")
        if resolved:
            _echo_err(f"note: {resolved.count} cancelled title(s) were answered through "
                       f"their PayFiP link after the cancellation, their anomaly resolved "
                       f"since ({resolved}): the money stays with the cancelled title; the "
                       "decision is recorded (`pesgen payfip anomalies --all`)")


PAYMENT_COLUMNS = ["invoice", "collectivity", "status", "amount_due", "amount_paid", "method",
                   "paid_at", "id_op", "last_id_op", "numauto", "refdet", "updated_at",
                   "saisie", "payfip_status", "run", "id_bord", "cancelled_at"]


def _payment_pieces(rows: Iterator[dict[str, Any]], fmt: str) -> Iterator[str]:
    """The payments file's text, a few hundred rows at a time: the same text as the
    whole list made at once (``json_text`` of the list; the CSV's header and rows; the
    text's lines, ``_payment_text``)."""
    import csv
    import io

    from .._csv import text_cell

    if fmt == "text":  # a line a row, for a person (no header: each line says its words)
        lines: list[str] = []
        for row in rows:
            lines.append(_payment_text(row) + "\n")
            if len(lines) == 500:
                yield "".join(lines)
                lines.clear()
        yield "".join(lines)
        return
    if fmt == "json":
        # the same values; a character a terminal acts on (a C1 control, a bidi mark:
        # PayFiP's libellés in --history) as its \uXXXX escape. json_text of the list,
        # an item at a time: each item's lines indented by two spaces
        first = True
        for row in rows:
            yield ("[\n" if first else ",\n") + "  " + json_text(row).replace("\n", "\n  ")
            first = False
        yield "[]\n" if first else "\n]\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, PAYMENT_COLUMNS, delimiter=";", lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for n, row in enumerate(rows, 1):
        # text from the input (invoice) and from PayFiP's answers (numauto, id_op…) never
        # starts a cell a spreadsheet would run as a formula; the amounts, dates and
        # statuses are pesgen's own
        writer.writerow({k: text_cell(v) if k in CSV_TEXT_COLUMNS else v
                         for k, v in row.items()})
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _payment_text(row: dict[str, Any]) -> str:
    """A payments row as `payfip payments --format text` prints it, for a person: the
    CSV's columns said in words, those empty left out; each text a file or PayFiP gave
    (the invoice, numauto, id_op…) with its control characters escaped."""
    def said(value: Any) -> str:
        return escaped(str(value))

    parts = [f"{said(row['invoice'])}: {row['status']}", f"due {row['amount_due']}"]
    if row.get("amount_paid") is not None:
        paid = f"paid {row['amount_paid']}"
        if row.get("method"):
            paid += f" by {said(row['method'])}"
        if row.get("paid_at"):
            paid += f" on {row['paid_at']}"
        parts.append(paid)
    if row.get("cancelled_at"):
        parts.append(f"title cancelled {row['cancelled_at']}")
    if row.get("payfip_status") and row["payfip_status"] != row["status"]:
        parts.append(f"PayFiP says {row['payfip_status']}")
    # saisie is the mode of the operation the status comes from: the paying one once
    # paid (iter_payments), said beside it when a later link was made
    through = bool(row.get("id_op")) and row["id_op"] != row.get("last_id_op")
    paid_mode = through and row.get("amount_paid") is not None
    saisie = f" (saisie {said(row['saisie'])})" if row.get("saisie") else ""
    if row.get("last_id_op"):
        parts.append(f"last link {said(row['last_id_op'])}" + ("" if paid_mode else saisie))
    if through:
        parts.append(f"paid through {said(row['id_op'])}" + (saisie if paid_mode else ""))
    if row.get("numauto"):
        parts.append(f"numauto {said(row['numauto'])}")
    if row.get("refdet"):
        parts.append(f"refdet {said(row['refdet'])}")
    if row.get("run"):
        parts.append(f"run {said(row['run'])} IdBord {row['id_bord']}")
    parts.append(f"SIRET {said(row['collectivity'])}")
    parts.append(f"updated {row['updated_at']}")
    return "; ".join(parts)


class _Some:
    """A count of invoices and the first ten of them, for a note."""

    def __init__(self, limit: int = 10) -> None:
        self.count, self.limit = 0, limit
        self.first: list[str] = []

    def add(self, invoice: str) -> None:
        self.count += 1
        if len(self.first) < self.limit:
            self.first.append(invoice)

    def __bool__(self) -> bool:
        return self.count > 0

    def __str__(self) -> str:
        more = self.count - len(self.first)
        return ", ".join(self.first) + (f", … {more} more" if more else "")


def _no_row_notes(store: Any, given: list[str], seen: set[str], day: Any) -> None:
    """`payfip payments --invoice`: a note on standard error for each invoice given that
    no row listed (``seen``: the keys of those listed), the exit staying 0: the listing
    was made whole, as the school software reads it, and with --since an invoice whose row
    did not change is no error. With --since, one whose row did not change since is told
    apart from one with no row at all (no link ever made for it)."""
    from ..keys import invoice_key, shown
    from .ledger import iter_payments

    missing: dict[str, str] = {}
    for number in given:
        if invoice_key(number) not in seen:
            missing.setdefault(invoice_key(number), number)
    if not missing:
        return
    # its row listed without --since: the invoice has one, unchanged since the date
    unchanged = set()
    if day is not None:
        with store.reads():
            unchanged = {invoice_key(r["invoice"])
                         for r in iter_payments(store, None, invoices=list(missing.values()))}
    for key, number in missing.items():
        if key in unchanged:
            _echo_err(f"note: invoice {shown(number)}: its row did not change since {day} "
                      "(without --since: its row as it stands)")
        else:
            _echo_err(f"note: invoice {shown(number)}: no payment row: no PayFiP link was "
                      "made for it, so pesgen knows of no online payment of it; a family "
                      "that paid otherwise (Datamatrix, cheque, at the trésorerie) paid the "
                      "trésorerie: ask it (docs/payfip.md, A family says it paid)")


def _pending_notes(pending: list[tuple[str, str]]) -> None:
    """`payfip payments --invoice`: a note on standard error for each invoice listed whose
    title is due and whose last link has no result recorded (``pending``: invoice, idOp),
    support's "the family paid, we still say unpaid": the notification is only a hint,
    and may never come (docs/payfip.md, A family says it paid)."""
    from ..keys import shown

    for invoice, id_op in pending:
        _echo_err(f"note: invoice {shown(invoice)}: pending: its PayFiP link (operation "
                  f"{id_op}) has no result recorded: the family may have paid and the "
                  "notification been lost; `pesgen payfip reconcile` asks PayFiP and records "
                  "its answer (docs/payfip.md, A family says it paid)")


class _Seen:
    """What the notes and the summary of `payfip payments` say, counted as the rows go
    by (the rows themselves are not kept). ``keyed``: keep the invoice keys of the rows
    (``keys``; --invoice says those given that no row has)."""

    def __init__(self, keyed: bool = False) -> None:
        self.keyed = keyed
        self.keys: set[str] = set()
        self.rows = self.invoices = self.expired = 0
        self.undated = _Some()
        # (invoice, its paying operation) of each cancelled title PayFiP shows paid
        self.paid_cancelled: list[tuple[str, str]] = []
        # (invoice, its last link's idOp and saisie) of each cancelled title PayFiP shows
        # pending:
        # its link open, or answered since as an anomaly (the status stays pending)
        self.pending_cancelled: list[tuple[str, str, str | None]] = []
        # (collectivity, invoice, run) of each cancelled title PayFiP has a record of:
        # any of its links may be open still
        self.cancelled_titles: list[tuple[str, str, str]] = []
        # (invoice, its last link's idOp) of each title due whose link has no result
        # recorded, kept for --invoice (support's "they paid, we still say unpaid")
        self.pending: list[tuple[str, str]] = []

    def counted(self, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        from ..keys import invoice_key

        for r in rows:
            self.rows += 1
            if self.keyed:
                self.keys.add(invoice_key(r["invoice"]))
            # an invoice exported again since its title was cancelled has a second row,
            # its new title's, with no PayFiP status
            if r["payfip_status"] is not None:
                self.invoices += 1
            self.expired += r["payfip_status"] == "expired"
            if r["paid_at_source"] == "recorded":
                self.undated.add(r["invoice"])
            # (a payment the trésorerie refunded, recorded so, needs nobody)
            if r["status"] == "cancelled" and r["payfip_status"] == "paid":
                self.paid_cancelled.append((r["invoice"], r["id_op"]))
            if r["status"] == "cancelled" and r["payfip_status"] is not None:
                self.cancelled_titles.append((r["collectivity"], r["invoice"], r["run"]))
            if r["status"] == "cancelled" and r["payfip_status"] == "pending" \
                    and r["last_id_op"]:
                self.pending_cancelled.append((r["invoice"], r["last_id_op"], r["saisie"]))
            if self.keyed and r["status"] == "pending" and r["payfip_status"] == "pending" \
                    and r["last_id_op"]:
                self.pending.append((r["invoice"], r["last_id_op"]))
            yield r


# the payments CSV's columns holding text from outside pesgen
CSV_TEXT_COLUMNS = ("invoice", "collectivity", "id_op", "last_id_op", "numauto", "refdet",
                    "run")


anomalies_app = typer.Typer(cls=HelpGroup, invoke_without_command=True,
                            help="What needs a person: mismatches, unknown idOps, double "
                            "payments… (`resolve ID --note TEXT` closes one).\n\n"
                            "Amount or reference mismatches, unknown idOps notified, double "
                            "payments… (open ones; --all: the resolved ones too). "
                            "`resolve ID --note TEXT` records a decision.")
payfip_app.add_typer(anomalies_app, name="anomalies")


@anomalies_app.callback()
def anomalies(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Also the resolved anomalies.")] = False,
    summary: Annotated[bool, typer.Option(
        "--summary", help="Only how many anomalies of each kind are open and resolved, "
        "a line a kind (a flood of one kind in one line), not each anomaly; JSON: "
        "`kinds`, each kind's open and resolved.")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, metavar="N", help="Only the first N anomalies (by number, oldest "
        "first), then how many more are not listed (JSON: limit, more).")] = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="text, or json: a report (command, ok, exit_code, error, then "
        "open, resolved and the anomalies listed, each a field a value), for monitoring; "
        "given before `resolve`, its report.")] = "text",
    db: DbOpt = None,
) -> None:
    """List the open anomalies, with the state of each one's invoice and what to do
    (docs/payfip.md, "Anomalies: what support does"). An anomaly never pays an invoice."""
    if ctx.invoked_subcommand is not None:
        return
    from ..cli import _json_exit

    try:
        from .ledger import anomaly_counts, anomaly_kinds, iter_anomalies

        _check_format(fmt)
        if summary and every:
            raise UsageError("--summary counts the open and the resolved anomalies of each "
                             "kind, --all lists each one, the resolved ones too: give one "
                             "of them")
        if summary and limit is not None:
            raise UsageError("--summary counts the anomalies of each kind, --limit lists "
                             "the first N of them: give one of them")
        store = _store(db)
        with store.reads():
            if summary:
                kinds = anomaly_kinds(store)
            else:
                open_count, resolved, last = anomaly_counts(store)
                # those shown (--limit: the first N), read 500 at a time
                # (ledger.iter_anomalies) and spooled as they come: memory does not grow
                # with the anomalies (a flood of unknown idOps). The first chunk read
                # here: a refusal reading it is the report's
                rows = iter_anomalies(store, open_only=not every, upto=last, limit=limit)
                first = next(rows, None)
    except PesgenError as exc:
        if fmt == "json":
            _json_exit("payfip anomalies", int(exc.exit_code), str(exc),
                       problems=_problems_json(exc))
        _fail(exc)
        return
    if summary:
        _anomaly_summary(kinds, fmt)
        return
    if fmt == "text" and not open_count + resolved:
        _say("no anomaly")
        return
    if fmt == "text" and not open_count and not every:
        _say(f"no open anomaly ({resolved} resolved: --all lists them)")
        return
    listed = _Listed(itertools.chain((first,), rows) if first is not None else rows)

    def more() -> int:
        """How many more anomalies the listing cut by --limit leaves, counted once it is
        read (none read past the limit): those after the last listed, up to the last
        counted, open ones (--all: resolved ones too)."""
        if limit is None or listed.count < limit:
            return 0
        n_open, n_resolved, _ = anomaly_counts(store, after=listed.last, upto=last)
        return n_open + (n_resolved if every else 0)

    # printed once whole, text or JSON: a store failing midway gives its refusal alone,
    # no anomaly listed, as a refusal before the listing
    pieces = (_anomalies_json(listed, open_count, resolved, limit, more) if fmt == "json"
              # each line as _say prints it: a URL's password masked, as json_text masks
              # it in the report
              else (masked_text(line) + "\n" for line in _anomalies_text(
                  listed, open_count, resolved, every, limit, more)))
    try:
        # read-only: not waiting for an export to finish, nor holding one up
        with store.reads():
            spool = _spooled(pieces)
    except PesgenError as exc:
        if fmt == "json":  # the refusal's report, as one before the listing
            _json_exit("payfip anomalies", int(exc.exit_code), str(exc),
                       problems=_problems_json(exc))
        _fail(exc)
        return
    _print_spooled(spool)


def _anomaly_summary(kinds: dict[str, tuple[int, int]], fmt: str) -> None:
    """`payfip anomalies --summary`: each kind's open and resolved anomalies (``kinds``:
    ``ledger.anomaly_kinds``'), in columns, then the totals and the listing that says
    what to do; JSON: the report with ``open``, ``resolved`` and ``kinds``."""
    from ..cli import _json_exit

    open_count = sum(n for n, _ in kinds.values())
    resolved = sum(n for _, n in kinds.values())
    if fmt == "json":
        _json_exit("payfip anomalies", 0, None, open=open_count, resolved=resolved,
                   kinds={kind: {"open": n_open, "resolved": n_resolved}
                          for kind, (n_open, n_resolved) in kinds.items()})
        return
    if not kinds:
        _say("no anomaly")
        return
    width = max(len("kind"), *(len(kind) for kind in kinds))
    numbers = max(len("resolved"), *(len(str(n)) for pair in kinds.values() for n in pair))
    _say(f"{'kind':<{width}}  {'open':>{numbers}}  {'resolved':>{numbers}}")
    for kind, (n_open, n_resolved) in kinds.items():
        _say(f"{kind:<{width}}  {n_open:>{numbers}}  {n_resolved:>{numbers}}")
    _say(f"{open_count} open, {resolved} resolved, {len(kinds)} kind(s): `pesgen payfip "
         "anomalies` lists the open ones, each with what to do (--all: the resolved ones "
         "too)")


class _Listed:
    """The anomalies of a listing as they go by: how many (``count``), and the last one's
    number (``last``), where a listing cut by --limit stopped."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self.rows, self.count, self.last = rows, 0, 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for r in self.rows:
            self.count, self.last = self.count + 1, r["id"]
            yield r


def _no_more() -> int:
    return 0


def _anomalies_json(rows: Iterable[dict[str, Any]], open_count: int, resolved: int,
                    limit: int | None = None, more: Callable[[], int] = _no_more
                    ) -> Iterator[str]:
    """The report of `payfip anomalies --format json`, an anomaly at a time: the same text
    as ``json_text`` of the whole report (each item's lines indented by four spaces):
    ``limit`` (--limit, else null) before the list, ``more`` after it (how many more
    the limit left, ``more()`` once the list is read; 0: the listing is whole)."""
    from .ledger import ANOMALY_ADVICE

    head = json_text({"command": "payfip anomalies", "ok": True, "exit_code": 0,
                      "error": None, "open": open_count, "resolved": resolved,
                      "limit": limit, "anomalies": []})
    head = head.removesuffix("[]\n}")
    first = True
    batch: list[str] = []  # written 500 at a time: a write each costs CPU at a million
    for r in rows:
        item = json_text(_anomaly_json(r, ANOMALY_ADVICE)).replace("\n", "\n    ")
        batch.append((head + "[" if first else ",") + "\n    " + item)
        first = False
        if len(batch) == 500:
            yield "".join(batch)
            batch.clear()
    tail = json_text({"more": more()}).removeprefix("{")
    yield "".join(batch) + (head + "[]" if first else "\n  ]") + "," + tail + "\n"


def _anomalies_text(rows: Iterable[dict[str, Any]], open_count: int, resolved: int,
                    every: bool, limit: int | None = None,
                    more: Callable[[], int] = _no_more) -> Iterator[str]:
    """The lines of `payfip anomalies`: each anomaly listed, how many more --limit
    (``limit``) left (``more()``, once they are read), then how many are open."""
    from .ledger import ANOMALY_ADVICE

    for r in rows:
        yield (f"#{r['id']}  {r['at']}  {r['kind']}  op {r['id_op'] or '-'}  invoice "
               f"{r['invoice'] or '-'}  ({r['source']}): {shown(r['detail'])}"
               + (f" [expected {shown(r['expected'])}, got {shown(r['got'])}]"
                  if r['expected'] is not None else ""))
        if r["op_result"] in ("P", "V"):
            yield f"    {_collected(r)}"
        if r["invoice"]:
            state = r["invoice_status"] or "no payment recorded"
            if r["invoice_status"] == "cancelled":
                state = (f"cancelled (its title, {_title(r)}, cancelled on "
                         f"{r['cancelled_at']}; PayFiP status {r['payfip_status']}): "
                         "nothing is due on it")
                if r["again_run"]:
                    # what PayFiP recorded stays with the cancelled title: none of it pays
                    # the title exported in its place
                    state += (f"; exported again since as {_title(r, 'again')}, on which "
                              "nothing is paid")
            if r["outcome"] == "applied" and r["invoice_status"] == "cancelled":
                # the title it was applied to, cancelled since: the state names it
                yield (f"    invoice {r['invoice']}: {state}; the trésorerie had applied "
                       "this money to that cancelled title")
            elif r["outcome"] == "applied":
                # its resolution recorded the payment of the title it was applied to
                yield (f"    invoice {r['invoice']}: {state} ({_title(r)}): the trésorerie "
                       "applied this money to it")
            else:
                # the title as the trésorerie knows it, to ask it about the money: a
                # double payment to refund, an amount to settle
                title = (f" (its title: {_title(r)})" if r["title_run"] is not None
                         and r["invoice_status"] != "cancelled" else "")
                yield (f"    invoice {r['invoice']}: {state}{title}; the anomaly recorded no "
                       "payment and changed no status")
        for fixed in r["corrections"]:
            before = fixed["before"]
            yield (f"    corrected {fixed['at']} by {fixed['by']}: {fixed['from']} (resolved "
                   f"{before['resolved_at']} by {before['resolved_by']}: {before['note']}) "
                   f"-> {fixed['to'] or ('reopened' if fixed['reopened'] else 'note alone')}: "
                   f"{fixed['note']}")
        if r["resolved_at"] is not None:
            outcome = f" ({r['outcome']})" if r["outcome"] else ""
            yield (f"    resolved {r['resolved_at']} by {r['resolved_by']}{outcome}: "
                   f"{r['note']}")
        else:
            yield f"    what to do: {ANOMALY_ADVICE.get(r['kind'], 'see docs/payfip.md')}"
    if left := more():
        which = "anomaly(ies), open or resolved," if every else "open anomaly(ies)"
        yield (f"… {left} more {which} not listed (--limit {limit}: the first {limit} by "
               "number; --summary counts them by kind)")
    if open_count:
        yield (f"{open_count} open: once decided, `pesgen payfip anomalies resolve ID "
               "--note TEXT` (it records the decision; it records a payment only with "
               "--applied, and a refund only with --refunded)"
               + (f"; {resolved} resolved" + ("" if every else " (--all lists them)")
                  if resolved else ""))


def _title(r: dict[str, Any], which: str = "title") -> str:
    """The title an anomaly's invoice payment follows (``which``: ``again``, the one
    exported in its place), as `runs find` names it: IdBord and IdPce (the titre's
    number), and its run."""
    return (f"IdBord {r[f'{which}_id_bord']} IdPce {r[f'{which}_id_pce']} of run "
            f"{r[f'{which}_run']}")


def _anomaly_json(r: dict[str, Any], advice: dict[str, str]) -> dict[str, Any]:
    """One anomaly of `payfip anomalies --format json`: what its text lines say, each a
    field (amounts as decimal text, as `payfip payments` writes them)."""
    from .models import RESULTS, cents_text
    from .tables import reported_cents

    answer = None
    if r["op_amount_cents"] is not None:  # an operation pesgen issued
        asked = r["op_amount_cents"]
        collected = r["op_result"] in ("P", "V")
        answer = {"result": r["op_result"], "saisie": r["op_saisie"],
                  "amount_asked": cents_text(asked),
                  "amount_paid": cents_text(reported_cents(r["op_reported"], asked))
                  if collected else None,
                  "method": RESULTS[r["op_result"]][1] if collected else None,
                  "paid_at": r["op_paid_at"] if collected else None}
    is_open = r["resolved_at"] is None
    return {"id": r["id"], "at": r["at"], "kind": r["kind"], "source": r["source"],
            "id_op": r["id_op"], "invoice": r["invoice"], "detail": r["detail"],
            "expected": r["expected"], "got": r["got"], "payfip_answer": answer,
            "invoice_status": r["invoice_status"], "payfip_status": r["payfip_status"],
            "title_run": r["title_run"], "title_id_bord": r["title_id_bord"],
            "title_id_pce": r["title_id_pce"], "cancelled_at": r["cancelled_at"],
            "again_run": r["again_run"], "again_id_bord": r["again_id_bord"],
            "again_id_pce": r["again_id_pce"], "open": is_open,
            "what_to_do": advice.get(r["kind"], "see docs/payfip.md") if is_open else None,
            "resolved_at": r["resolved_at"], "resolved_by": r["resolved_by"],
            "note": r["note"], "outcome": r["outcome"],
            "corrections": [{"at": c["at"], "by": c["by"], "note": c["note"],
                             "from": c["from"], "to": c["to"], "reopened": c["reopened"],
                             "before": c["before"],
                             "withdrawn": c["withdrawn"]} for c in r["corrections"]]}


def _collected(r: dict[str, Any]) -> str:
    """What PayFiP answered paid for an anomaly's operation: the amount it reported (and
    the one asked, when another), how, when and in which mode, for support to tell the
    trésorerie what to refund or apply."""
    from .models import cents_text, paid_by
    from .tables import reported_cents

    asked = r["op_amount_cents"]
    cents = reported_cents(r["op_reported"], asked)
    how = paid_by(r["op_result"])  # P or V: a method
    other = f", {cents_text(asked)} asked" if cents != asked else ""
    mode = {"T": "saisie T: a test, nothing collected",
            "X": "saisie X: whether it debits the family is not confirmed"}.get(
                r["op_saisie"], f"saisie {r['op_saisie']}")
    return (f"PayFiP answered {r['op_result']}: {cents_text(cents)} paid {how} on "
            f"{r['op_paid_at']} ({mode}{other})")


def _group_option(ctx: typer.Context, name: str, value: Any) -> Any:
    """An option of the ``anomalies`` group given before the subcommand (``anomalies --db
    X resolve …``, ``anomalies --format json resolve …``) counts, unless the
    subcommand's own was given on the command line too."""
    parent = ctx.parent
    if (not _on_command_line(ctx, name) and parent is not None
            and _on_command_line(parent, name)):
        return parent.params.get(name)
    return value


class _Sourced(Protocol):
    """A click context of typer's own click (``typer.Context`` and its parent, of the
    class it derives from, which typer names nowhere public)."""

    def get_parameter_source(self, name: str) -> object: ...


def _on_command_line(ctx: _Sourced, name: str) -> bool:
    """Whether ``ctx``'s option ``name`` (its parameter's name: ``db``, ``fmt``) was given
    on the command line (not PESGEN_DB, nor left out). By the source's name: typer parses
    with a click of its own, whose ParameterSource is not click's (compared with click's,
    it was never COMMANDLINE, and the group's --db was ignored)."""
    return getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"


@anomalies_app.command("resolve")
def anomalies_resolve(
    ctx: typer.Context,
    anomaly_id: Annotated[str, typer.Argument(
        metavar="ID", help="The anomaly's number, as the list gives it: 3 or '#3'.")],
    note: Annotated[str, typer.Option("--note", help="What was decided, and with whom "
                                      "(recorded).")],
    by: Annotated[str | None, typer.Option(
        "--by", help="Who decided (default: the login name).")] = None,
    applied: Annotated[bool, typer.Option(
        "--applied", help="A run-cancelled or paid-cancelled anomaly: the trésorerie applied "
        "the money paid for the cancelled title to the title exported in its place, which "
        "is then recorded paid (no link, TIPI link nor Datamatrix for it).")] = False,
    refunded: Annotated[bool, typer.Option(
        "--refunded", help="A run-cancelled or paid-cancelled anomaly: the trésorerie "
        "refunded the family (recorded; the title due gets its payment links again).")
    ] = False,
    correct: Annotated[bool, typer.Option(
        "--correct", help="A run-cancelled or paid-cancelled anomaly resolved --applied or "
        "--refunded with the wrong answer: what that answer recorded is taken back (kept "
        "in the invoice's history), then --applied or --refunded records the right one; "
        "with --note-only, none (resolved with the note alone); without any, the anomaly "
        "is open again. A resolution `runs reinstate` recorded is corrected with --refunded "
        "only.")] = False,
    note_only: Annotated[bool, typer.Option(
        "--note-only", help="With --correct: the answer recorded is taken back and the "
        "anomaly stays resolved with the note alone (the trésorerie's answer not known "
        "yet: recorded later with --applied or --refunded, without --correct).")] = False,
    fmt: Annotated[str, typer.Option(
        "--format", help="text, or json: a report (command, ok, exit_code, error, then the "
        "anomaly, its resolution, the payment recorded and what its invoice gets now, as the "
        "text says them; a refusal's problems); the same exit codes.")] = "text",
    db: DbOpt = None,
) -> None:
    """Record a person's decision on an anomaly and close it.

    Who, when, the note. It
    records no payment and changes no invoice's status, but with --applied: then the
    title the trésorerie applied the money to is recorded paid."""
    import getpass

    from ..cli import _json_exit

    fmt = _group_option(ctx, "fmt", fmt)
    anomaly: int | None = None
    try:
        from .ledger import resolve_anomaly

        # the list writes #3: taken as written (quoted: the shell reads # as a comment);
        # read first, for a refusal's report to name it
        digits = anomaly_id.strip().removeprefix("#")
        if digits.isascii() and digits.isdigit():
            anomaly = int(digits)
        _check_format(fmt)
        if applied and refunded:
            raise UsageError("--applied or --refunded: the trésorerie did one or the other")
        outcome = "applied" if applied else "refunded" if refunded else None
        if anomaly is None:
            raise UsageError(f"anomaly '{shown(anomaly_id)}': not an anomaly's number (3, or "
                             "'#3' as `pesgen payfip anomalies` lists it)")
        if by is None:
            try:
                by = getpass.getuser()
            except Exception:  # no login name (a container without one): say who with --by
                raise UsageError("who resolves it? give --by NAME") from None
        store = _store(_group_option(ctx, "db", db))
        row = resolve_anomaly(store, anomaly, by, note, outcome, correct, note_only)
    except PesgenError as exc:
        exc = _resolve_locked(exc, anomaly, correct)
        if fmt == "json":
            _json_exit("payfip anomalies resolve", int(exc.exit_code), str(exc),
                       problems=_problems_json(exc), id=anomaly)
        _fail(exc)
        return
    facts = _resolution(store, row)
    if fmt == "json":
        _json_exit("payfip anomalies resolve", 0, None, **facts)
        return
    _say(_resolved_line(facts))
    for said in facts["notes"]:
        _echo_err(f"note: {said}")


def _resolve_locked(exc: PesgenError, anomaly: int | None, correct: bool) -> PesgenError:
    """A resolution that gave up waiting for the store (StoreLocked: another run's lock
    on SQLite, another transaction's rows on PostgreSQL) says what it left: nothing
    recorded, the anomaly as it was. Any other error as it is."""
    from ..store import stopped_waiting

    left = "its answer not corrected" if correct else "not resolved"
    return stopped_waiting(exc, "payfip anomalies resolve stopped waiting: nothing "
                           f"recorded, anomaly #{anomaly} as it was ({left})")


def _resolution(store: Any, row: dict[str, Any]) -> dict[str, Any]:
    """What `payfip anomalies resolve` says of an anomaly it resolved (``row``:
    ``ledger.resolve_anomaly``'s), each a field of its JSON report, which its text reads
    too (``_resolved_line``; ``notes``: its lines on standard error, as the text says
    them): the anomaly, its resolution, the payment recorded (``recorded``: paid with
    --applied, ``applied`` then that payment and the title it pays, ``still_open`` the
    invoice's links a payment through which would pay it twice; refunded: a paid title's
    payment, paid-cancelled --refunded) and, of a run-cancelled or paid-cancelled
    anomaly of money collected, what its invoice gets now (``invoice_state``,
    ``held_back_by``, ``paid``, ``advice``)."""
    from .tables import SETTLED

    outcome, invoice, done = row["outcome"], row["invoice"], row["applied"]
    facts: dict[str, Any] = {
        "id": row["id"], "kind": row["kind"], "invoice": invoice, "id_op": row["id_op"],
        "resolved_at": row["resolved_at"], "resolved_by": row["resolved_by"],
        "outcome": outcome, "note": row["note"],
        # resolved before with a note alone: that resolution (resolved_at, resolved_by,
        # note), which this one's outcome completes
        "earlier": row.get("earlier"),
        # --correct: the resolution before (its outcome) and what was taken back
        "corrected": row.get("corrected"),
        # a paid title's payment refunded is no longer its payment
        "recorded": "paid" if done is not None else "refunded"
        if (row["kind"], outcome) == ("paid-cancelled", "refunded") else None,
        "applied": None, "still_open": [], "invoice_state": None, "held_back_by": [],
        "paid": None, "advice": None, "notes": []}
    if done is not None:
        payment = _payment_json(done["cents"], done["method"], done["paid_at"], done["id_op"])
        facts.update(
            applied={**payment, "run": done["run_id"], "id_bord": done["id_bord"]},
            still_open=[{"id_op": link["id_op"], "created_at": link["created_at"],
                         "status": link["status"], "run": link["run_id"],
                         "id_bord": link["id_bord"],
                         "title": "due" if link["run_id"] == done["run_id"]
                         else "cancelled"} for link in done["still_open"]],
            invoice_state="paid", paid=payment,
            advice="`payfip link`, `tipi-url` and `payfip datamatrix` refuse it as any paid "
                   "title, and `payfip payments` lists it paid on that title, for the school "
                   "software")
    elif row["kind"] in SETTLED and invoice and row["saisie"] not in (None, "T"):
        from sqlalchemy.exc import DBAPIError

        try:
            facts.update(_released(store, row))
        except DBAPIError as exc:
            # the resolution is recorded (its transaction committed): the store failing
            # now must not read as a refusal, which a person or a tool would try again
            # (`resolved already`); what the invoice gets is read again later
            from ..store import db_said

            said = db_said(exc)
            facts.update(invoice_state="unread", advice=(
                "the resolution is recorded, but what its invoice gets now could not be "
                f"read (the state store failed: {said}); `pesgen payfip anomalies --all` "
                "and `pesgen payfip payments` say it once the store answers"))
    if row.get("links_open"):
        # a run-cancelled anomaly reopened: the links given before are not held back
        facts["still_open"] = [{"id_op": link["id_op"], "created_at": link["created_at"],
                                "status": link["status"], "run": link["run_id"],
                                "id_bord": link["id_bord"],
                                "title": "cancelled" if link["run_id"] == row["op_run"]
                                else "due"} for link in row["links_open"]]
    facts["notes"] = _resolved_notes(facts)
    return facts


def _payment_json(cents: int, method: str | None, paid_at: str | None,
                  id_op: str | None) -> dict[str, Any]:
    """A payment as `anomalies resolve --format json` gives it (``applied``, ``paid``):
    the amount as decimal text and in cents, the method, when, the operation."""
    from .models import cents_text

    return {"amount": cents_text(cents), "amount_cents": cents, "method": method,
            "paid_at": paid_at, "id_op": id_op}


def _released(store: Any, row: dict[str, Any]) -> dict[str, Any]:
    """After a run-cancelled or paid-cancelled anomaly is resolved without --applied:
    whether its invoice gets a payment again (no other such anomaly of it open, and not
    paid: another payment through the cancelled title applied to the title due, or its
    own link's, is refused a link as any), and, resolved with the note alone, what to do
    when the trésorerie applied the money to the title due (the answer was not recorded:
    pesgen would make a link and a Datamatrix for a title paid that way)."""
    from ..keys import invoice_key
    from .ledger import paid_by_key, unsettled_payments

    key = invoice_key(row["invoice"])
    still = unsettled_payments(store, row["id_coll"]).get(key, [])
    if still:
        return {"invoice_state": "held_back", "held_back_by": [u.anomaly for u in still],
                "advice": "no new link, TIPI link nor Datamatrix until it is resolved"}
    # paid as `payfip link` reads it (rule payfip.paid): however a title wrote the number
    paid = paid_by_key(store, row["id_coll"], [row["invoice"]]).get(key)
    if paid is not None:
        return {"invoice_state": "paid",
                "paid": _payment_json(paid["paid_cents"] or 0, paid["method"],
                                      paid["paid_at"], paid["id_op"]),
                "advice": "`payfip link`, `tipi-url` and `payfip datamatrix` refuse it as any "
                          "paid title; send the family no link for it"}
    again = "`payfip link`, `tipi-url` and `payfip datamatrix` give it a payment again"
    if row["outcome"] == "refunded":
        return {"invoice_state": "released", "advice": f"{again}; send the family the new link"}
    return {"invoice_state": "released_unrecorded",
            "advice": f"{again}. The trésorerie's answer was not recorded (--applied or "
                      "--refunded): if it applied the money to the title due, that title is "
                      "paid: send the family no link nor Datamatrix for it, and record that "
                      f"answer (`pesgen payfip anomalies resolve {row['id']} --applied --note "
                      "TEXT`: the title is then recorded paid); if it refunded the family, "
                      "send the new link (and record it with --refunded) (docs/payfip.md)"}


def _resolved_line(facts: dict[str, Any]) -> str:
    """`payfip anomalies resolve`'s line on standard output, from its facts."""
    invoice = f" (invoice {facts['invoice']})" if facts["invoice"] else ""
    fixed = facts["corrected"]
    if fixed is not None and fixed["reopened"]:
        return (f"anomaly #{facts['id']} {facts['kind']}{invoice}: reopened {fixed['at']} by "
                f"{fixed['by']} (its answer {fixed['from']} taken back)"
                + _withdrawn_said(fixed["withdrawn"]))
    head = (f"anomaly #{facts['id']} {facts['kind']}{invoice}: resolved "
            f"{facts['resolved_at']} by {facts['resolved_by']}")
    done = facts["applied"]
    if done is not None:
        from .models import method_said

        return (f"{head} (applied); invoice {facts['invoice']} recorded paid: "
                f"{done['amount']}{method_said(done['method'])} on {done['paid_at']} (PayFiP "
                f"operation {done['id_op']}), applied to its title IdBord {done['id_bord']} "
                f"of run {done['run']}")
    outcome = f" ({facts['outcome']})" if facts["outcome"] else ""
    if facts["recorded"] == "refunded":
        return (f"{head}{outcome}; its payment is recorded refunded (no longer a payment of "
                "the invoice)")
    return f"{head}{outcome}; no payment was recorded"


def _withdrawn_said(withdrawn: dict[str, Any] | None) -> str:
    """What a correction took back (``correct_anomaly``'s ``withdrawn``), in words."""
    from .models import cents_text

    if withdrawn is None:
        return "; that answer had recorded no payment"
    amount = cents_text(withdrawn["paid_cents"] or 0)
    if withdrawn["payment"] == "paid":
        # (applied to no other title: the payment `runs reinstate` recorded on its own)
        title = (f"applied to the title of run {withdrawn['applied_to_run']}"
                 if withdrawn["applied_to_run"] else "on its title reinstated")
        return (f"; the payment it recorded ({amount}, {title}) is taken back (the "
                f"invoice's payment row: {withdrawn['status']})")
    return f"; its payment recorded refunded ({amount}) is a payment again (paid)"


def _resolved_notes(facts: dict[str, Any]) -> list[str]:
    """What `payfip anomalies resolve` says on standard error (each line without its
    ``note: ``), from its facts: what its invoice gets now, then each link still open."""
    from .models import method_said
    from .tables import PAID_CANCELLED

    state, invoice = facts["invoice_state"], facts["invoice"]
    first = facts.get("earlier")
    amended = ([f"anomaly #{facts['id']} was resolved on {first['resolved_at']} by "
                f"{first['resolved_by']} with a note alone ({first['note']}): the "
                f"trésorerie's answer ({facts['outcome']}) is recorded now, that resolution "
                "kept in the invoice's history"] if first else [])
    fixed = facts.get("corrected")
    if fixed is not None:
        now = (f"the trésorerie's answer is {facts['outcome']} now" if facts["outcome"]
               else "the anomaly is open again, as before anyone resolved it"
               if fixed["reopened"] else "it is resolved with the note alone now, the "
               "trésorerie's answer not recorded")
        before = fixed["before"]
        amended.append(
            f"anomaly #{facts['id']} was resolved on {before['resolved_at']} by "
            f"{before['resolved_by']} ({fixed['from']}: {before['note']}): corrected, "
            f"{now}{_withdrawn_said(fixed['withdrawn'])}; that resolution is kept in the "
            "invoice's history (`pesgen payfip payments --history`)")
    if state is None:
        return amended
    if facts["applied"] is not None:
        said = [f"invoice {invoice}: paid: {facts['advice']}"]
    elif state == "unread":
        said = [f"invoice {invoice}: {facts['advice']}"]
    elif state == "held_back":
        again = "held back again" if fixed is not None and fixed["reopened"] else (
            "still held back")
        said = [f"invoice {invoice}: {again} by "
                + ", ".join(f"anomaly #{number}" for number in facts["held_back_by"])
                + f" (run-cancelled, not resolved): {facts['advice']}"]
    elif state == "paid":
        paid = facts["paid"]
        how = (f"{paid['amount']}{method_said(paid['method'])} on {paid['paid_at']} (PayFiP "
               f"operation {paid['id_op']})")
        if facts["kind"] != PAID_CANCELLED:
            said = [f"invoice {invoice}: no longer held back, but paid: {how}: "
                    f"{facts['advice']}"]
        elif paid["id_op"] == facts["id_op"] and facts["outcome"] is None:
            # a paid-cancelled anomaly never held the invoice back: its payment made it
            # paid, and resolved with the note alone, it still is
            said = [f"invoice {invoice}: still paid for pesgen, by its cancelled title's "
                    f"payment: {how}; the trésorerie's answer was not recorded (--applied "
                    f"or --refunded): {facts['advice']}; once it answers, record it: "
                    f"`pesgen payfip anomalies resolve {facts['id']} --applied --note TEXT` "
                    "or `--refunded`"]
        else:  # its payment refunded, another one pays the invoice
            said = [f"invoice {invoice}: paid by another payment: {how}: {facts['advice']}"]
    elif facts["kind"] == PAID_CANCELLED and facts["outcome"] == "refunded":
        # its payment recorded refunded: the invoice it made paid is due again
        said = [f"invoice {invoice}: no longer paid, its payment refunded: "
                f"{facts['advice']}"]
    else:
        said = [f"invoice {invoice}: no longer held back: {facts['advice']}"]
    reopened = fixed is not None and fixed["reopened"]
    for link in facts["still_open"]:
        if reopened:
            title = ("its title's link" if link["title"] == "due" else "the link of its "
                     f"cancelled title (IdBord {link['id_bord']} of run {link['run']})")
            said.append(f"invoice {invoice}: {title} made on {link['created_at']} "
                        f"(operation {link['id_op']}) is still open ({link['status']}): the "
                        "anomaly reopened holds back the links to come, not this one: tell "
                        "the family not to use it until the trésorerie answers (if it "
                        "applied the money, a payment through it would pay twice)")
        elif link["title"] == "due":
            said.append(f"invoice {invoice}: its title's link made on {link['created_at']} "
                        f"(operation {link['id_op']}) is still open ({link['status']}): a "
                        "payment through it would pay the title twice (a double-payment "
                        "anomaly, for the trésorerie to refund); tell the family not to use it")
        else:
            said.append(f"invoice {invoice}: the link of its cancelled title (IdBord "
                        f"{link['id_bord']} of run {link['run']}) made on "
                        f"{link['created_at']} (operation {link['id_op']}) is still open "
                        f"({link['status']}): a payment through it would pay the invoice "
                        "twice (an anomaly, for the trésorerie to refund); tell the family "
                        "not to use it")
    return amended + said


@payfip_app.command("client-info")
def client_info(
    mapping: Annotated[Path | None, typer.Option("--mapping", "-m", help="Mapping file.")
                       ] = None,
    numcli: Annotated[str | None, typer.Option("--numcli", help="Client number.")] = None,
    endpoint: EndpointOpt = None,
    timeout: TimeoutOpt = 15.0,
    fmt: Annotated[str, typer.Option(
        "--format", help="text, or json: a report (command, ok, exit_code, error, then "
        "numcli, its libellés and the endpoint asked); the same exit codes.")] = "text",
) -> None:
    """Ask PayFiP what it knows of a client number (recupererDetailClient)."""
    from ..cli import _json_exit

    base: str | None = None
    try:
        _check_format(fmt)
        _need_extras()
        from .client import DEFAULT_ENDPOINT, PayfipClient

        base = endpoint or DEFAULT_ENDPOINT
        if mapping:
            from ..mapping import load_mapping
            from .settings import load_settings

            settings = load_settings(load_mapping(mapping))
            numcli = numcli or settings.numcli
            base = endpoint or settings.endpoint
        if not numcli:
            raise UsageError("give --numcli or a --mapping with a PayFiP client number")
        with PayfipClient(base, timeout=timeout) as client:
            detail = client.recuperer_detail_client(numcli)
    except PesgenError as exc:
        if fmt == "json":
            _json_exit("payfip client-info", int(exc.exit_code), str(exc),
                       problems=_problems_json(exc), numcli=numcli, endpoint=base)
        _fail(exc)
        return
    if fmt == "json":
        # PayFiP's words as it sent them (json_text escapes what a terminal acts on)
        _json_exit("payfip client-info", 0, None, numcli=detail.numcli,
                   libelle_n1=detail.libelleN1, libelle_n2=detail.libelleN2,
                   libelle_n3=detail.libelleN3, endpoint=base)
        return
    # PayFiP's words: escaped and cut for the terminal
    _say(f"numcli {shown(detail.numcli)}: {shown(detail.libelleN1)} / "
               f"{shown(detail.libelleN2)} / {shown(detail.libelleN3)}")


@payfip_app.command("tipi-url")
def tipi_url(
    mapping: MappingOpt,
    invoice: Annotated[str, typer.Option("--invoice", "-n", help="Invoice number.")],
    urlcl: Annotated[str, typer.Option("--urlcl", help="Return URL of the legacy protocol.")],
    mel: Annotated[str | None, typer.Option("--mel", help="Payer e-mail.")] = None,
    saisie: Annotated[str | None, typer.Option(
        "--saisie", help="T test, X activation, A production (default: from the mapping's "
        "mode, W -> A).")] = None,
    endpoint: EndpointOpt = None,
    fmt: Annotated[str, typer.Option(
        "--format", help="text, or json: a report (command, ok, exit_code, error, then "
        "the invoice, the url and what it asks, its notes; a refusal's problems); the same "
        "exit codes.")] = "text",
    db: DbOpt = None,
) -> None:
    """Build a legacy TIPI ``paiement.web`` link (its return is unsigned: pesgen records
    nothing from it)."""
    from ..cli import _json_exit

    try:
        _check_format(fmt)
        from ..mapping import load_mapping
        from .service import build_request
        from .settings import load_settings
        from .tipi import TipiRequest
        from .tipi import tipi_url as build

        m = load_mapping(mapping)
        settings = load_settings(m)
        # an invoice already paid gets no TIPI link either: the family would pay twice,
        # and pesgen records nothing from a TIPI return to notice it
        store = _store(db)
        with store.reads():  # it records nothing (docs/state.md, Waiting for the store)
            req, _, notes = build_request(m, settings, store, invoice, mel, None, None,
                                          what="TIPI link", urlcl=urlcl)
        letter = saisie or {"W": "A"}.get(settings.mode, settings.mode)
        url = build(TipiRequest(req.invoice, req.numcli, req.exer, req.refdet, req.montant,
                                req.mel, req.objet, letter, urlcl),
                    endpoint or settings.endpoint)
    except PesgenError as exc:
        if fmt == "json":
            _json_exit("payfip tipi-url", int(exc.exit_code), str(exc),
                       problems=_problems_json(exc), invoice=invoice)
        _fail(exc)
        return
    if fmt == "json":
        from .models import cents_text

        _json_exit("payfip tipi-url", 0, None, invoice=req.invoice, url=url,
                   refdet=req.refdet, amount=cents_text(req.montant),
                   amount_cents=req.montant, exer=req.exer, saisie=letter,
                   notes=list(notes))
        return
    typer.echo(url)
    for note in notes:
        _echo_err(f"note: {note}")


@payfip_app.command()
def datamatrix(
    run: Annotated[str, typer.Option("--run", help="Run id (or a unique prefix).")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder (default: the run's output folder, beside the payment "
        "references).")] = None,
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", "-m", help="Mapping with payfip.datamatrix settings.")] = None,
    code_etablissement: Annotated[str | None, typer.Option(
        "--code-etablissement", help="Code établissement (3 digits or 2 letters).")] = None,
    code_emetteur: Annotated[str | None, typer.Option(
        "--code-emetteur", help="Code émetteur, 6 digits (UNCONFIRMED default 940033).")
    ] = None,
    layout: Annotated[int, typer.Option("--layout", help="Payload layout version.")] = 1,
    image: Annotated[str, typer.Option("--image", help="svg, png or both.")] = "svg",
    fmt: Annotated[str, typer.Option(
        "--format", help="text, or json: a report (command, ok, exit_code, error, then the "
        "files written, each with its images and titles drawn, and the titles left out and "
        "why; a refusal's problems); the same exit codes.")] = "text",
    db: DbOpt = None,
) -> None:
    """Write the paiement-de-proximité Datamatrix of every title of a run (payload CSV
    and images). The layout is UNCONFIRMED by the DGFiP: see docs/payfip.md."""
    from ..cli import _json_exit

    full = None
    # --format json: what stderr says of the titles left out, each a field
    left_out: dict[str, list[dict[str, Any]]] = {"skipped_bordereaux": [], "paid_online": [],
                                                 "unsettled": []}
    try:
        _check_format(fmt)
        _need_extras("pystrich")  # draws the images
        from .datamatrix import Skipped, write_for_run
        from .ledger import Unsettled, unsettled_words
        from .models import cents_text
        from .settings import DEFAULT_CODE_EMETTEUR

        if image not in ("svg", "png", "both"):
            raise UsageError(f"--image must be svg, png or both, got '{image}'")
        code_e, code_m = code_etablissement, code_emetteur
        if mapping:
            from ..mapping import load_mapping
            from .settings import load_settings

            settings = load_settings(load_mapping(mapping))
            code_e = code_e or settings.code_etablissement
            code_m = code_m or settings.code_emetteur
        if not code_e:
            raise UsageError("the code établissement is needed: --code-etablissement, or "
                             "payfip.datamatrix.code_etablissement in the --mapping")
        store = _store(db)
        with store.reads():  # it records nothing in the store (docs/state.md)
            full = store.get_run(run)["id"]

        def skipped(s: Skipped) -> None:
            # the titles of a cancelled bordereau, or of one the trésorerie rejected: it
            # does not hold them
            from ..acquit import acquit_arg

            # the acquit by the name it was recorded with (the folder it was read in)
            given = acquit_arg(s.acquit)
            why = ("a family must not pay a title the trésorerie does not hold; `pesgen "
                   f"acquit {given}{db_option(db)}` gives the command that cancels the "
                   "bordereau, then export its invoices again" if s.rejected else
                   "a family must not pay a cancelled title")
            if fmt == "json":
                left_out["skipped_bordereaux"].append({
                    "id_bord": s.id_bord, "cover": s.cover, "rejected": s.rejected,
                    "invoices": list(s.invoices), "why": why,
                    "earlier": str(s.earlier) if s.earlier is not None else None})
                return
            _echo_err(f"skipped IdBord {s.id_bord} of run {full}, {s.cover}: no Datamatrix "
                       f"for its {len(s.invoices)} title(s): {', '.join(s.invoices)} ({why})")
            if s.earlier is not None:
                when = (f"the trésorerie rejected IdBord {s.id_bord}" if s.rejected
                        else f"IdBord {s.id_bord} was cancelled")
                _echo_err(f"warning: {s.earlier} (and its images in "
                           f"{s.earlier.name.removesuffix('.csv')}/) was written before {when}: "
                           "do not print its Datamatrix")

        def paid(rows: list[dict[str, Any]]) -> None:
            # paid online already: a Datamatrix would let the family pay it again
            if fmt == "json":
                left_out["paid_online"] += [
                    {"invoice": r["invoice"], "amount": cents_text(r["paid_cents"]),
                     "paid_at": r["paid_at"], "id_op": r["id_op"], "through": r["through"]}
                    for r in rows]
                return
            _echo_err(f"skipped {len(rows)} title(s) of run {full} paid online through "
                       "PayFiP: no Datamatrix (the family would pay again): " + ", ".join(
                           f"{r['invoice']} ({cents_text(r['paid_cents'])} on {r['paid_at']}, "
                           f"operation {r['id_op']}"
                           + (f", through its cancelled title of run {r['through']}"
                              if r["through"] else "") + ")" for r in rows))

        def unsettled(invoice: str, found: list[Unsettled]) -> None:
            # paid through its cancelled title's link after the cancellation: the
            # trésorerie may apply that money to this title (as `payfip link` refuses it)
            happened, advice = unsettled_words(found)
            if fmt == "json":
                left_out["unsettled"].append({
                    "invoice": invoice, "anomalies": [u.anomaly for u in found],
                    "happened": happened, "what_to_do": advice})
                return
            _echo_err(f"skipped {invoice} of run {full}: {happened}; no Datamatrix: {advice}")

        with store.reads():
            written = write_for_run(store, full, out, code_e,
                                    code_m or DEFAULT_CODE_EMETTEUR, layout, image,
                                    on_skipped=skipped, on_paid=paid,
                                    on_unsettled=unsettled)
    except PesgenError as exc:
        if fmt == "json":
            _json_exit("payfip datamatrix", int(exc.exit_code), str(exc),
                       problems=_problems_json(exc), run=full or run, files=[])
        _fail(exc)
        return
    if fmt == "json":
        _json_exit("payfip datamatrix", 0, None, run=full, layout=layout,
                   unconfirmed=True, image=image, files=[
                       {"csv": str(w.csv), "images_folder":
                        str(w.csv.with_name(w.csv.name.removesuffix(".csv"))),
                        "images": [str(i) for i in w.images], "titles": list(w.invoices)}
                       for w in written], **left_out)
        return
    for w in written:
        _say(f"wrote {w.csv}  ({len(w.images)} image(s) in "
                   f"{w.csv.name.removesuffix('.csv')}/, layout {layout}, UNCONFIRMED)")
