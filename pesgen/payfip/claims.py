"""Claims on invoices whose `payfip link` is being made (docs/payfip.md, two links at once).

A link is made in two steps: PayFiP is asked for an operation (up to the client's
timeout), then the operation is recorded. No lock is held between them (on SQLite it
would be the store's write lock). A claim is what another `payfip link` of the invoice
sees meanwhile: a row taken, in one short write transaction, where the invoice is also
found to have no link open, and removed in the transaction that records the operation,
or by the command that took it when it makes no link (``release``). A claim held longer
than it was taken for (``Claim.until``: its seconds and ``MARGIN``) has lapsed: its
command was stopped without releasing it (killed), or still waits for the store; so has
one whose command ran on this host and has ended (``ended``: its pid is gone). A lapsed
claim no longer holds the invoice back, and the command that passes it says so.
"""

from __future__ import annotations

import getpass
import math
import os
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import Problem, StateError
from ..keys import invoice_key
from ..store import Store, runs, utc_now
from .tables import claims

# how long past its seconds a claim still holds its invoice: the recording's wait for
# the store (an export holding SQLite's lock some seconds) and clocks a little apart
MARGIN = 60
CLAIM_DOC = "docs/payfip.md, two links at once"

_Open = TypeVar("_Open")


@dataclass(frozen=True)
class Claim:
    """Another command's claim on an invoice: who (``holder``), since when, for how long
    at most (``seconds``, its PayFiP timeout for each link it makes before this one)."""

    invoice: str
    holder: str
    claimed_at: str
    seconds: int
    # its command found ended (``ended``) by the command that passed the claim
    ended: bool = False

    @property
    def until(self) -> str:
        """When the claim lapses (``MARGIN`` past its seconds), as the store's UTC text."""
        since = datetime.strptime(self.claimed_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return (since + timedelta(seconds=self.seconds + MARGIN)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")

    def said(self) -> str:
        return (f"`payfip link` {self.holder}, since {self.claimed_at}, for up to "
                f"{self.seconds} s")


@dataclass
class Taken:
    """What ``take`` found for each invoice: claimed (its key in ``claimed``), found a
    link open (``opened``: the caller's, ``open_in``'s answer), or claimed by another
    command (``held``); and the lapsed claims it passed (``lapsed``), by invoice."""

    token: str
    claimed: set[str]
    opened: dict[str, Any]
    held: dict[str, Claim]
    lapsed: dict[str, Claim]


def holder() -> str:
    """Who takes a claim, in words: the user, the process and the host."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name known (a container without passwd entry)
        user = f"uid {os.getuid()}"
    return f"of {user}, pid {os.getpid()} on {socket.gethostname()}"


def _here(holder: str) -> tuple[int, str] | None:
    """The command holding a claim when it ran on this host: its pid, and "pid N on
    HOST" as its holder says it; None for another host's. The host is the one its
    holder names (``socket.gethostname()`` when it claimed), compared as written with
    this command's: another name is another host. None on Windows too, where
    ``os.kill`` ends the process it is given."""
    if os.name != "posix":
        return None
    found = re.search(rf", (pid ([0-9]+) on {re.escape(socket.gethostname())})\Z", holder)
    return (int(found.group(2)), found.group(1)) if found else None


def ended(claim: Claim) -> bool:
    """Whether the command holding ``claim`` has ended: it ran on this host and its pid
    is alive no more (its claim then lapses at once). A pid alive (maybe another process
    that took it since: ``os.kill`` cannot tell; a command killed that its parent has
    not reaped yet, too) or another host's: not known, the claim lapses in time only. A
    host of the same name with processes of its own (another machine, a container given
    the host's name, ``--network host``) may take a command alive for ended: two
    operations are then asked, and the recording's check (rule payfip.open-link) records
    one, as for a command alive past its claim's time."""
    here = _here(claim.holder)
    if here is None or here[0] <= 0:
        return False
    try:
        os.kill(here[0], 0)  # signal 0: nothing sent, the pid checked
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: alive, another user's
        return False
    return False


def take(store: Store, id_coll: str, invoices: Sequence[tuple[str, str, float]],
         open_in: Callable[[Connection, str], _Open | None]) -> Taken:
    """Claim each invoice (``invoices``: as its run recorded it, its run, and for how
    many seconds: a batch's n-th link is made after the ones before it), in one write
    transaction, unless it has a link open (``open_in``: read in that transaction;
    non-empty: not claimed) or a claim of another command that has not lapsed (in time,
    or its command ended: ``ended``). A lapsed claim is replaced, and said
    (``Taken.lapsed``). On PostgreSQL the invoices' runs' rows are locked first,
    as the recording of an operation locks its run's (``ledger.record_operation``):
    claims and recordings of a title go in turn, each seeing the one before; SQLite's
    write transactions are in turn."""
    taken = Taken(uuid.uuid4().hex, set(), {}, {}, {})
    now = utc_now()
    who = holder()
    with store.transaction() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(runs.c.id).where(runs.c.id.in_(
                sorted({run for _, run, _ in invoices}))).order_by(runs.c.id)
                .with_for_update())
        found = _claims_of(conn, id_coll, [invoice for invoice, _, _ in invoices])
        for invoice, _, seconds in invoices:
            key = invoice_key(invoice)
            opened = open_in(conn, invoice)
            if opened:
                taken.opened[invoice] = opened
                continue
            other = found.get(key)
            if other is not None and ended(other):
                other = replace(other, ended=True)
            if other is not None and other.until > now and not other.ended:
                taken.held[invoice] = other
                continue
            if other is not None:
                taken.lapsed[invoice] = other
                conn.execute(claims.delete().where(claims.c.id_coll == id_coll,
                                                   claims.c.invoice_key == key))
            conn.execute(claims.insert().values(
                id_coll=id_coll, invoice_key=key, invoice=invoice, token=taken.token,
                holder=who, claimed_at=now, seconds=math.ceil(seconds)))
            taken.claimed.add(key)
    return taken


def _claims_of(conn: Connection, id_coll: str, invoices: Sequence[str],
               chunk: int = 500) -> dict[str, Claim]:
    """The claims held on these invoices, by invoice key, ``chunk`` keys a query."""
    keys = sorted({invoice_key(i) for i in invoices})
    out: dict[str, Claim] = {}
    for start in range(0, len(keys), chunk):
        for r in conn.execute(sa.select(claims).where(
                claims.c.id_coll == id_coll,
                claims.c.invoice_key.in_(keys[start:start + chunk]))):
            out[r.invoice_key] = Claim(r.invoice, r.holder, r.claimed_at, r.seconds)
    return out


def drop(conn: Connection, id_coll: str, invoice: str, token: str) -> None:
    """Remove the command's claim on the invoice, in the transaction that records its
    operation (none there: it lapsed and another command took it, or none was taken)."""
    conn.execute(claims.delete().where(claims.c.id_coll == id_coll,
                                       claims.c.invoice_key == invoice_key(invoice),
                                       claims.c.token == token))


def release(store: Store, token: str) -> None:
    """Remove the command's claims still held: the invoices it did not link (stopped,
    refused, or skipped as it recorded them)."""
    with store.transaction() as conn:
        conn.execute(claims.delete().where(claims.c.token == token))


class LinkClaimed(StateError):
    """A link of an invoice another `payfip link` is making (``Claim``), refused: rule
    payfip.claimed, exit 7, as a link still open (``service.OpenLinkRefused``)."""

    def __init__(self, claim: Claim, no_second: str) -> None:
        self.claim = claim
        super().__init__(
            f"invoice {claim.invoice}: {being_made(claim)}; {no_second}. Let it end: it "
            f"prints its link, which this command run again names as a link still open; "
            f"{lapses(claim)} ({CLAIM_DOC})",
            [Problem("payfip.claimed", f"{claim.said()}: no second link while one is being "
                     "made, without --again", invoice=claim.invoice)])


def being_made(claim: Claim) -> str:
    """The claim in words, as the refusal and a batch's note say it."""
    return f"its PayFiP link is being made by {claim.said()}"


def lapses(claim: Claim) -> str:
    """What to do when the command holding the claim is gone."""
    at_once = "at once (it runs on this host), at the latest " if _here(claim.holder) else ""
    return (f"if that command was stopped (killed), its claim lapses {at_once}at "
            f"{claim.until}; give --again to make a link all the same")


def skipped_note(claim: Claim) -> str:
    """What a batch says of an invoice it skipped for another command's claim."""
    return (f"invoice {claim.invoice}: skipped, no second link: {being_made(claim)}; run "
            f"it again once that command has ended; {lapses(claim)} (rule payfip.claimed; "
            f"{CLAIM_DOC})")


def lapsed_note(claim: Claim) -> str:
    """What a command says of a lapsed claim it passed (``Taken.lapsed``): its command
    ended (``Claim.ended``), or the claim's time past."""
    here = _here(claim.holder) if claim.ended else None
    if here is not None:
        why = f"lapsed: its command, {here[1]}, has ended without recording a link (killed)"
    else:
        why = (f"lapsed at {claim.until}: that command stopped before recording a link "
               "(killed, or still waiting for the store)")
    return (f"invoice {claim.invoice}: the claim of {claim.said()}, {why}; if it had "
            "PayFiP make an operation, the "
            "operation is not recorded and its link was never printed: nobody can pay "
            f"through it ({CLAIM_DOC})")
