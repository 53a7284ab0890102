"""A time limit on each call into a bundle's template: its top-level code, run as it is
loaded (not its compiling, which takes time in its text's size), one macro rendering
a file's head, one title's piece, or its tail; and on building each invoice's title
(``build.Builder.build``: its bindings' expressions), stopped as ``MappingStopped``
naming the binding whose expression ran (rule mapping.time).

The sandbox bounds what one operation may make (``_jinja``), not how long a template
runs: two nested ``range(100000)`` loops, or a macro's loop over every line of a large
run for each title, would hold an export, or a bundle's check in CI, for hours. A call
that runs longer than ``LIMIT`` seconds is stopped with ``RenderTimeout``, which the
renderer reports as a template error naming the template's line (exit 5, nothing
written): ``TemplateStopped``, which no caller renders again in the same command (an
export's invoices after check-mapping's sample titles, regenerate's rebuild as before),
so a looping template holds a command for the limit once, not once per rendering.

How: the call notes when it started (one clock read, no system call); a watchdog thread
looks once a second and, past the limit, sends SIGALRM to the main thread, whose
handler raises ``RenderTimeout`` there, in the template's code. Only where that can
work: the main thread of a POSIX process whose SIGALRM nobody else handles; elsewhere
(another thread, Windows, an application's own SIGALRM handler) calls run unwatched.
Python runs the handler between two of its bytecodes: a call spending its time inside
one C function (``==`` or ``sort`` of two lists built to hold themselves many times over)
is stopped only once that function returns.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import MappingStopped, Problem

T = TypeVar("T")

# seconds one call into a template may take: a title's piece takes well under a
# millisecond, a file's head or tail over the lines of 100 000 titles a few seconds
LIMIT = 60.0


class RenderTimeout(Exception):
    """A call into a template ran past ``LIMIT``."""


_started = [0.0]  # when the watched call running began (time.monotonic()); 0.0: none
_state = {"ready": False, "usable": True}
_main = [threading.main_thread().ident]
_now, _thread = time.monotonic, threading.get_ident


def start() -> bool:
    """Watch the call about to be made; False where it cannot be (see the module), and
    then ``stop`` need not be called."""
    if _thread() != _main[0]:
        return False
    if not _state["ready"] and (not _state["usable"] or not _setup()):
        return False
    _started[0] = _now()
    return True


def stop() -> None:
    _started[0] = 0.0


def watched(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, watched (``start``/``stop``). A RenderTimeout raised in it, or
    as it ends, reaches the caller, which reports it."""
    watching = start()
    try:
        return call(*args)
    finally:
        if watching:
            stop()


def _setup() -> bool:
    """Install the SIGALRM handler and start the watchdog, once, from the main thread."""
    if not hasattr(signal, "SIGALRM") or not hasattr(signal, "pthread_kill") or \
            signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        _state["usable"] = False
        return False
    signal.signal(signal.SIGALRM, _on_alarm)
    threading.Thread(target=_watch, name="pesgen-render-limit", daemon=True).start()
    _state["ready"] = True
    return True


def _over() -> bool:
    began = _started[0]
    return began != 0.0 and time.monotonic() - began > LIMIT


def _on_alarm(_signum: int, _frame: object) -> None:
    if _over():  # the call may have ended since the watchdog looked
        _started[0] = 0.0  # raised once: the error's own handling runs unwatched
        raise RenderTimeout(f"rendering ran for more than {LIMIT:g} seconds and was "
                            "stopped: a loop that does not end, or one over far more "
                            "than this call needs?")


def _watch() -> None:
    main = _main[0]
    assert main is not None
    while True:
        time.sleep(min(1.0, LIMIT / 4))
        if _over():
            signal.pthread_kill(main, signal.SIGALRM)


def evaluated(where: str, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, a mapping expression evaluated on its own (not in an invoice's
    building, which says its record: ``build``), watched: one running past ``LIMIT`` is
    stopped, MappingStopped naming its mapping line and key ``where`` (rule
    mapping.time)."""
    try:
        return watched(call, *args)
    except RenderTimeout:
        message = (f"the expression ran for more than {LIMIT:g} seconds and was stopped: "
                   "a filter over far more items than it needs?")
        raise MappingStopped(f"{where}: {message}", [Problem("mapping.time", message,
                                                             mapping=where)]) from None
