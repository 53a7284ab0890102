"""Files the user keeps are complete or absent, never half-written.

Every such file is written to a temporary file in its own folder (``.pesgen-*.part``),
flushed to disk, then renamed to its name: a rename within one folder is atomic (a
name that must be new is taken with a hard link instead, which fails where a rename
would replace a file that appeared since the check). A
failure, a full disk, Ctrl-C or SIGTERM (the CLI turns it into ``KeyboardInterrupt``)
leaves the previous file or none, and removes the temporary file. Only a hard kill or
a power cut can leave a ``.pesgen-*.part`` file, and never under the final name.

``write_file`` writes one file. A writer of several files stages them with ``stage``
and puts them in place together with ``commit`` (or throws them away with
``discard``); ``write_folder`` creates a new folder whole; ``filled_folder`` fills a
new or empty one whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import UsageError

TEMP_PREFIX = ".pesgen-"
TEMP_SUFFIX = ".part"

# (temporary file, final name) pairs, staged and not yet in place
Staged = list[tuple[Path, Path]]


def write_temp(folder: Path, chunks: Iterable[bytes], like: Path | None = None
               ) -> tuple[Path, str]:
    """Write ``chunks`` to a new temporary file in ``folder``, synced to disk; return it
    and the sha256 of its content. Its mode is the one of ``like`` when that file exists
    (the file it will replace), else what ``open`` gives a new file (0666 less the
    umask)."""
    mode = 0o666 & ~_umask()
    if like is not None:
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(like.stat().st_mode)
    fd, name = tempfile.mkstemp(dir=folder, prefix=_own_prefix(), suffix=TEMP_SUFFIX)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(name, mode)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), digest.hexdigest()


@contextlib.contextmanager
def naming(name: str | Path) -> Iterator[None]:
    """An OSError the block raises that names no file (a write, a flush or a close
    refused: ``File too large``, ``No space left on device``) names ``name``."""
    try:
        yield
    except OSError as exc:
        name_error(exc, name)
        raise


def name_error(exc: BaseException | None, name: str | Path) -> None:
    """Give ``exc``, an OSError naming no file, the name ``name``."""
    if isinstance(exc, OSError) and exc.filename is None:
        exc.filename = str(name)


def stage(temps: Staged, final: Path, chunks: Iterable[bytes], like: Path | None = None,
          folder: Path | None = None) -> tuple[Path, str]:
    """Write ``chunks`` to a temporary file beside ``final`` (``write_temp``), or in
    ``folder`` (a dry run's, whose files are never put in place), and add the pair to
    ``temps``, for ``commit`` or ``discard``; return what ``write_temp`` returns. An
    error of the system writing it names ``final``."""
    with naming(final):
        tmp, digest = write_temp(folder or final.parent, chunks, like)
    temps.append((tmp, final))
    return tmp, digest


def write_file(path: Path, data: str | bytes | Iterable[bytes], encoding: str = "utf-8",
               new: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (``data`` may come in pieces: bytes as they
    are made, the file put in place once whole). A file already there is replaced whole
    and its permissions are kept (a payments file the user made private stays so); with
    ``new``, a file already there (even one that appears meanwhile) is refused. A device
    or a pipe (``-o /dev/null``, ``/dev/stdout``, a FIFO) is written to as it is: a rename
    onto it would replace the device itself with a file (run as root: /dev/null gone
    for every program of the machine)."""
    path = Path(path)
    chunks = ([data.encode(encoding)] if isinstance(data, str) else
              [data] if isinstance(data, bytes) else data)
    if not new and _special(path):
        with naming(path), open(path, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        return path
    with naming(path):
        tmp, _ = write_temp(path.parent, chunks, like=path)
    try:
        if new:
            _place_new(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _special(path: Path) -> bool:
    """Whether ``path`` is there and neither a file nor a folder: a device, a pipe, a
    socket (followed through a symbolic link: ``/dev/stdout``)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_free(temps: Staged) -> None:
    """Refuse (removing the temporary files) when a final name is taken."""
    for _tmp, final in temps:
        if final.exists():
            discard(temps)
            raise UsageError(f"{final} appeared during the export; nothing written")


def commit(temps: Staged, overwrite: bool = False) -> list[Path]:
    """Rename staged files into place. Without ``overwrite``: all or nothing as far as
    the file system allows (a name taken meanwhile aborts before any rename; a rename
    that fails takes back the ones done). With ``overwrite``, a failing rename leaves
    the files already renamed (each complete: what they replaced is gone) and the
    others as they were."""
    if not overwrite:
        check_free(temps)
    done: list[Path] = []
    try:
        for tmp, final in temps:
            if overwrite:
                os.replace(tmp, final)
            else:
                _place_new(tmp, final)
            done.append(final)
    except BaseException:
        if not overwrite:
            for path in done:
                path.unlink(missing_ok=True)
        discard(temps)
        raise
    return done


def _place_new(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` only if no file has it: a hard link fails on a
    taken name, where a rename would replace a file that appeared since the check. A
    file system without hard links falls back to check-then-rename."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise UsageError(f"{final} appeared meanwhile; pesgen never overwrites it, nothing "
                         "written") from None
    except OSError:  # no hard links here (some network or FAT file systems)
        if final.exists():
            raise UsageError(f"{final} appeared meanwhile; pesgen never overwrites it, "
                             "nothing written") from None
        os.replace(tmp, final)
        return
    tmp.unlink()


def discard(temps: Staged, folder: Path | None = None) -> None:
    """Remove staged files; with ``folder``, also every temporary file this process
    left there: a signal can land after ``mkstemp`` and before the caller knows the
    file's name (between two bytecodes), which no list of staged files can hold."""
    for tmp, _ in temps:
        tmp.unlink(missing_ok=True)
    if folder is not None:
        for leftover in Path(folder).glob(f"{_own_prefix()}*{TEMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def removed_if_refused(folder: Path) -> Iterator[None]:
    """Run a block that may create ``folder`` (and its missing parents) to write into:
    if it fails, remove those of them that did not exist before it and are still empty,
    deepest first. A folder that was there is never removed, nor one that holds a file
    (another run's, or a run recorded whose files could not be renamed in)."""
    path = Path(folder).absolute()
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for made in missing:
            try:
                made.rmdir()
            except OSError:  # not empty, or gone: the ones above it stay too
                break
        raise


_LEFT = re.compile(r"\.pesgen-(?:(\d+)-[0-9a-f]+-.*\.part|regen-.*|.*\.part)")


def left_by_others(folder: Path) -> list[tuple[str, str]]:
    """The temporary files and folders of pesgen (``.pesgen-*.part``, regenerate's
    ``.pesgen-regen-*``) in ``folder`` that are not this process's: (name, what is known
    of the process that made them). Left by a run stopped by a hard kill or a power cut
    (SIGTERM and Ctrl-C remove them), or a run writing there now: only the process id in
    the name tells, and only on the machine that ran it (a shared folder's may be
    another's), so nothing is removed, only named."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out = []
    for name in names:
        match = _LEFT.fullmatch(name)
        if match is None or name.startswith(_own_prefix()):
            continue
        pid = match.group(1)
        out.append((name, f"process {pid}, {_running(int(pid))} on this machine" if pid
                    else "process unknown"))
    return out


def _running(pid: int) -> str:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "not running"
    except (PermissionError, OverflowError, ValueError):
        return "running" if pid > 0 else "not running"
    return "running"


def _own_prefix() -> str:
    # the process id and a random token tell this process's temporary files from a
    # concurrent export's (processes of two containers sharing a volume may have the
    # same id; a forked child has its own id)
    return f"{TEMP_PREFIX}{os.getpid()}-{_TOKEN}-"


_TOKEN = secrets.token_hex(4)


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    """Create ``folder`` with ``files`` ({relative path: text}), whole or not at all:
    the files are written in a temporary folder beside it, renamed into place at the
    end. Refuses an existing ``folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, text)
        os.chmod(staging, 0o777 & ~_umask())
        if folder.exists():  # rename would replace an empty folder silently
            raise UsageError(f"{folder} appeared meanwhile; nothing written")
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def refuse_filled(folder: Path, then: str = "nothing written") -> None:
    """Refuse a ``folder`` that is not a folder, or that holds anything (a hidden file
    too), naming it and what it holds: a command that fills a folder whole
    (``filled_folder``) takes a new or an empty one."""
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder: give a new or an empty folder; {then}")
    held = sorted(os.listdir(folder))
    if held:
        shown = ", ".join(held if len(held) <= 5 else [*held[:5], f"… {len(held) - 5} more"])
        raise UsageError(f"{folder} is not empty (it holds {shown}): give a new or an empty "
                         f"folder; {then}")


@contextlib.contextmanager
def filled_folder(folder: Path) -> Iterator[Path]:
    """Fill ``folder``, new or empty, whole or not at all. The block writes into the
    staging folder it is given (``.pesgen-*.part``, inside ``folder``: one file system
    with it, even where ``folder`` is a mount point, and ``folder`` itself is never
    replaced, be it the working folder), whose entries are then renamed into ``folder``,
    none replacing one that appeared meanwhile. A failure or an interrupt removes the
    staging folder, the entries renamed already, and ``folder`` with the parents the
    call created (``removed_if_refused``). A ``folder`` that is not a folder, or holds
    anything, is refused first, nothing written (``refuse_filled``)."""
    folder = Path(folder)
    refuse_filled(folder)
    with removed_if_refused(folder):
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=_own_prefix(), suffix=TEMP_SUFFIX))
        done: list[Path] = []
        try:
            yield staging
            for entry in sorted(staging.iterdir()):
                final = folder / entry.name
                if not entry.is_dir() or entry.is_symlink():
                    _place_new(entry, final)
                elif final.exists() or final.is_symlink():  # a folder: no hard link
                    raise UsageError(f"{final} appeared meanwhile; pesgen never overwrites "
                                     "it, nothing written")
                else:
                    os.rename(entry, final)
                done.append(final)
        except BaseException:
            for path in reversed(done):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
