"""When the disk fills, or the output folder stops being writable, in the middle of a command: the
command's unfinished runs go, the runs it finished stay (a sweep resumes from them), and the user reads
one line naming --out instead of a traceback."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
from pathlib import Path
from typing import Iterator

from dlcli.errors import UserError
from dlcli.layout import finished_summary, read_summary

WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def is_write_failure(error: BaseException) -> bool:
    """A failure of the output (space, permission), not of the run: it ends the command, whose
    `removed_if_unwritable` says so in one line, where a run's own failure is recorded and the sweep
    goes on."""
    return isinstance(error, OSError) and error.errno in WRITE_FAILURES


@contextlib.contextmanager
def removed_if_unwritable(out: Path, name: str) -> Iterator[None]:
    """Around a command that writes OUT/<name>/: when a write fails for want of space or permission,
    remove the unfinished runs this command started there, and the folders it created if nothing is
    left in them (runs finished before the failure, and earlier runs, stay), and raise a one-line
    `UserError` naming --out."""
    folder = Path(out) / name
    created = [path for path in (folder, *folder.parents) if not path.exists()]  # innermost first
    before = set(folder.iterdir()) if folder.is_dir() else set()
    try:
        yield
    except OSError as error:
        if not is_write_failure(error):
            raise
        made = set(folder.iterdir()) - before if folder.is_dir() else set()
        _remove_unfinished(made)
        for path in created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty
        where = f" ({error.filename})" if error.filename else ""
        raise UserError(f"--out {out}: cannot write there: {error.strerror or error}{where}; the unfinished runs "
                        "were removed (free some space, or choose a writable --out)") from None


def _remove_unfinished(made: set[Path]) -> None:
    """What a command made in OUT/<name>/, but the runs it finished (and, beside them, a sweep's own
    files), and a run folder that another process is writing (its summary names that process)."""
    finished = {path for path in made if finished_summary(path) is not None}
    for path in made - finished:
        if path.is_file() and not finished:
            path.unlink(missing_ok=True)
        elif path.is_dir() and _written_here(path):
            shutil.rmtree(path, ignore_errors=True)


def _written_here(run_dir: Path) -> bool:
    """Whether this process writes the run: its summary names it (or there is none: it never started)."""
    try:
        summary = read_summary(run_dir)
    except (OSError, ValueError):
        return True
    return summary.get("pid", os.getpid()) == os.getpid() and summary.get("host") in (None, socket.gethostname())
