"""Whether the command holding a PayFiP link claim has ended (``claims.ended``): only
one that ran on this host, named as its holder says it, and whose pid is gone; and what
the refusal and the note say of such a claim (``lapses``, ``lapsed_note``). The gaps
hand mutation of the fifty-fourth session's claims showed (mut58): the kill -9 test
covers a claim of this host ended and alive, not the holders that only look alike."""

from __future__ import annotations

import os
import socket

from pesgen.payfip import claims

HOST = socket.gethostname()
AT = "2026-12-01T09:00:00Z"


def _claim(holder: str, ended: bool = False) -> claims.Claim:
    return claims.Claim("FA-2026-00102", f"of alice, {holder}", AT, 15, ended)


def _gone_pid() -> int:
    """A pid no process holds: the highest one tried down from the kernel's maximum."""
    for pid in range(4_194_303, 1_000, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError:
            continue
    raise AssertionError("no free pid found")


def test_a_gone_pid_on_this_host_has_ended_and_one_alive_has_not():
    gone = _gone_pid()
    assert claims.ended(_claim(f"pid {gone} on {HOST}"))
    assert not claims.ended(_claim(f"pid {os.getpid()} on {HOST}"))


def test_a_host_whose_name_only_begins_or_looks_like_this_one_s_is_another_host(
        monkeypatch):
    """The host is compared whole and as written: "HOSTx" is another host, and so is
    "mairieX01" for a host named "mairie.01" (a dot in a name is no wildcard)."""
    gone = _gone_pid()
    assert claims._here(f"of alice, pid {gone} on {HOST}x") is None
    assert not claims.ended(_claim(f"pid {gone} on {HOST}x"))
    monkeypatch.setattr(claims.socket, "gethostname", lambda: "mairie.01")
    assert claims._here(f"of alice, pid {gone} on mairieX01") is None
    assert not claims.ended(_claim(f"pid {gone} on mairieX01"))
    assert claims._here(f"of alice, pid {gone} on mairie.01") == (
        gone, f"pid {gone} on mairie.01")


def test_a_pid_no_process_can_have_is_not_taken_for_ended():
    """A pid too large for the system (os.kill: OverflowError) is no process of this
    host: not known to have ended, the claim lapses in time only."""
    assert not claims.ended(_claim(f"pid {10 ** 30} on {HOST}"))


def test_on_windows_no_claim_is_said_of_this_host(monkeypatch):
    """os.kill ends the process it is given on Windows: no pid is checked there."""
    gone = _gone_pid()
    monkeypatch.setattr(claims.os, "name", "nt")
    assert claims._here(f"of alice, pid {gone} on {HOST}") is None
    assert not claims.ended(_claim(f"pid {gone} on {HOST}"))


def test_the_refusal_says_a_claim_of_this_host_lapses_at_once_and_at_the_latest_when():
    here = _claim(f"pid {os.getpid()} on {HOST}")
    assert claims.lapses(here) == (
        "if that command was stopped (killed), its claim lapses at once (it runs on this "
        f"host), at the latest at {here.until}; give --again to make a link all the same")
    there = _claim("pid 4242 on mairie-01")
    assert claims.lapses(there) == (
        f"if that command was stopped (killed), its claim lapses at {there.until}; give "
        "--again to make a link all the same")


def test_a_claim_of_this_host_lapsed_in_time_is_said_lapsed_at_its_time():
    """A claim whose command runs on this host, still alive, passed because its time is
    past (not ended): the note says when it lapsed, not that its command has ended."""
    note = claims.lapsed_note(_claim(f"pid {os.getpid()} on {HOST}"))
    assert f"lapsed at {_claim('').until}: that command stopped before recording" in note
    assert "has ended" not in note
    gone = _gone_pid()
    note = claims.lapsed_note(_claim(f"pid {gone} on {HOST}", ended=True))
    assert f"lapsed: its command, pid {gone} on {HOST}, has ended without recording" in note
