"""Validate a large PES file in a second process while pesgen is still rendering it.

Rendering is Python-bound and XSD validation is libxml2-bound: on two cores they can
overlap. A bordereau's header (NbrPce, MtBordHt, IdBord) is only known once its last
title is rendered, so the second process validates the *body* behind a provisional
header (same structure, placeholder figures) and reports the number of pieces and the
sum of MtHT it saw. When the real header is ready, pesgen validates it with the first
piece (a small document) and compares its NbrPce and MtBordHt with the reported
figures.

Why this proves the assembled file valid: the PES XSDs have no identity constraints
(``xs:key``/``xs:unique``) and the header's content model does not depend on the
pieces, so a document is valid exactly when its header block and each of its pieces
are valid in place; the bordereau rules that span both (counts, sums) are compared
explicitly. If the stream reports anything, or the process fails, pesgen validates the
assembled file as a whole instead, so the error list is the same in every case.

Run as ``python -m pesgen.streamcheck XSD NAME``: reads the document on stdin, writes
one JSON object on stdout.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

# Pieces are ~2 KiB each. The pipe to the validator is enlarged (Linux) and written in
# chunks of a sixteenth of its size, so that a write never waits for the validator
# unless it falls far behind: a write larger than the free pipe space blocks until the
# validator has *processed* most of it, which would serialise the two processes.
_PIPE_SIZE = 1 << 20
# How long the export waits for a validation, in seconds: for its report (``finish``)
# and for it to read what a write gives it (its pipe full). A validation slower than
# rendering holds the export there (at a later bordereau's stream, which waits for the
# oldest to keep STREAMS_ALIVE, in ``finish``, or as it writes); past this wait the
# process is killed and its report is None: the file is validated whole instead, the
# same problems found. A bordereau of 99 999 titles is validated in about 12 s
# (docs/performance.md). A write had no bound: a validator alive that read no more
# held the export for good.
VALIDATOR_WAIT = 600.0


@dataclass(frozen=True)
class StreamReport:
    ok: bool
    pieces: int
    total: Decimal


class StreamValidator:
    """The parent side: feed bytes as they are rendered, ``end`` the document, then
    ``finish`` (which ends it too if need be) reads the report."""

    def __init__(self, xsd: Path, name: str) -> None:
        self.broken = False
        # the document's end was fed and the input closed: the process finishes its pass
        # and exits on its own (``end``); its report, once read (``finish``)
        self.ended = False
        self._collected = False
        self._report: StreamReport | None = None
        read_end, write_end = os.pipe()
        size = _enlarge_pipe(write_end)
        try:
            self.proc = subprocess.Popen(
                self._command(xsd, name),
                stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        # what is fed is written a chunk at a time, without blocking where the system
        # allows it (POSIX), so that a validator not reading is waited for
        # VALIDATOR_WAIT at most (``_write``)
        self._fd = write_end
        self._pending = bytearray()
        self._chunk = max(size // 16, 4096)
        if os.name == "posix":
            os.set_blocking(write_end, False)

    def _command(self, xsd: Path, name: str) -> list[str]:
        # -P: the current folder is not put on the child's import path
        return [sys.executable, "-P", "-m", "pesgen.streamcheck", str(xsd), name]

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        pending = self._pending
        pending += data
        if len(pending) >= self._chunk:
            self._write()

    def _write(self) -> None:
        """Write what is pending, waiting ``VALIDATOR_WAIT`` at most for the validator
        to make room: past it, it is killed. A write that fails (the child is gone: it
        reads to the end even past a schema error) or a validator killed leaves the
        stream broken: the whole file will be validated in-process instead."""
        view = memoryview(self._pending)
        done = 0
        deadline = None
        writable = None
        try:
            while done < len(view):
                try:
                    done += os.write(self._fd, view[done:])
                except BlockingIOError:  # the pipe is full (only when not blocking)
                    now = time.monotonic()
                    if writable is None or deadline is None:
                        deadline = now + VALIDATOR_WAIT
                        writable = select.poll()  # poll: any fd number, not select's < 1024
                        writable.register(self._fd, select.POLLOUT)
                    if now >= deadline or not writable.poll((deadline - now) * 1000):
                        self._kill()
                        return
        except OSError:  # BrokenPipeError among them
            self.broken = True
        finally:
            view.release()
            self._pending.clear()

    def end(self, data: bytes) -> None:
        """Feed the document's last bytes and close the input: the process validates
        what is left in the pipe and exits, keeping no memory while pesgen renders on;
        its report waits in its output pipe for ``finish``. Once only."""
        if self.ended:
            return
        self.feed(data)
        self.ended = True
        self._close_stdin()

    def finish(self, timeout: float | None = None) -> StreamReport | None:
        """None when the stream could not vouch for the body (then validate fully).
        Waits for the process (``VALIDATOR_WAIT`` seconds at most: then it is killed, and
        the report is None) and reads its report the first time; the same after."""
        if not self._collected:
            self._report = self._collect(VALIDATOR_WAIT if timeout is None else timeout)
            self._collected = True
        return self._report

    def _collect(self, timeout: float) -> StreamReport | None:
        self.ended = True
        self._close_stdin()
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except (OSError, subprocess.SubprocessError, ValueError):
            self.abort()
            return None
        if self.proc.returncode != 0:
            return None
        try:
            data = json.loads(out)
            return StreamReport(bool(data["ok"]), int(data["pieces"]), Decimal(data["total"]))
        except (ValueError, KeyError, TypeError):
            return None

    def _close_stdin(self) -> None:
        """Write what is pending (the end of the document), then close the input."""
        if self._fd < 0:
            return
        if self._pending and not self.broken:
            self._write()
        self._pending.clear()
        fd, self._fd = self._fd, -1
        try:
            os.close(fd)
        except OSError:
            self.broken = True

    def _kill(self) -> None:
        self.broken = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def abort(self) -> None:
        self._kill()
        self._close_stdin()


def _enlarge_pipe(fd: int) -> int:
    """Enlarge the pipe where the system allows it; return its size in bytes."""
    default = 1 << 16
    if fcntl is None or not hasattr(fcntl, "F_SETPIPE_SZ"):
        return default
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the size it has
    try:
        return int(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ))
    except OSError:
        return default


def main(argv: list[str]) -> int:
    from .validate import load_xsd, piece_lines, stream_check

    xsd, name = Path(argv[0]), argv[1]
    result = stream_check(sys.stdin.buffer, load_xsd(xsd), name, check_totals=False,
                          lines=piece_lines(xsd))
    ok = not result.problems and not result.schema_error
    json.dump({"ok": ok, "pieces": result.pieces, "total": str(result.total)}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
