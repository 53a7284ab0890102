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
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

# Pieces are ~2 KiB each. Writes are buffered by 64 KiB, and the pipe is enlarged
# (Linux) so that a write never waits for the validator unless it falls a megabyte
# behind: a write larger than the free pipe space would block until the validator
# has *processed* most of it, serialising the two processes.
_PIPE_BUFFER = 1 << 16
_PIPE_SIZE = 1 << 20


@dataclass(frozen=True)
class StreamReport:
    ok: bool
    pieces: int
    total: Decimal


class StreamValidator:
    """The parent side: feed bytes as they are rendered, then ``finish``."""

    def __init__(self, xsd: Path, name: str) -> None:
        self.broken = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pesgen.streamcheck", str(xsd), name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=_PIPE_BUFFER)
        self._stdin: IO[bytes] = self.proc.stdin  # type: ignore[assignment]
        _enlarge_pipe(self._stdin)

    def feed(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self._stdin.write(data)
        except (BrokenPipeError, OSError):
            # the child stopped reading (a schema error, or it died): the whole file
            # will be validated in-process instead
            self.broken = True

    def finish(self, timeout: float = 600) -> StreamReport | None:
        """None when the stream could not vouch for the body (then validate fully)."""
        try:
            # communicate() flushes and closes stdin itself (a broken pipe included)
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

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _enlarge_pipe(stream: IO[bytes]) -> None:
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    try:
        fcntl.fcntl(stream.fileno(), set_size, _PIPE_SIZE)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the default size only costs speed


def main(argv: list[str]) -> int:
    from .validate import load_xsd, stream_check

    xsd, name = Path(argv[0]), argv[1]
    result = stream_check(sys.stdin.buffer, load_xsd(xsd), name, check_totals=False)
    ok = not result.problems and not result.schema_error
    json.dump({"ok": ok, "pieces": result.pieces, "total": str(result.total)}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
