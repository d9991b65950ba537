"""Output files that are either complete or not there: written to a temporary file in the same folder, flushed
to disk, then renamed over the target. A full disk, a crash or a kill -9 mid-write leave the old file (or no
file) in place, never a cut one; the temporary file is removed on any error."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class OutputError(OSError):
    """An output file that cannot be written; the message names it and says nothing was replaced."""


def is_special(path: Path) -> bool:
    """A character device, FIFO or socket (/dev/stdout, /dev/null, a named pipe): written in place, since
    renaming a file over it would replace the device itself."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path next to ``path`` for the caller to write; renamed over ``path`` when the block ends
    without an error. The temporary name keeps the suffix, so writers that infer a format from it agree.

    An OSError while writing (ENOSPC, EFBIG, EACCES) becomes an :class:`OutputError` naming ``path``. A
    special file (see :func:`is_special`) is handed back as it is and written directly.
    """
    target = Path(path)
    if is_special(target):
        try:
            yield target
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"{target}: cannot write ({exc.strerror or exc})") from None
        return
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            return  # the writer wrote nothing (it raised, or chose not to): nothing to replace
        _fsync(tmp)
        if target.is_file():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))  # a replaced file keeps its permissions
        os.replace(tmp, target)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc.strerror or exc}); nothing was written"
                          + (" and the old file is kept" if target.exists() else "")) from None
    finally:
        tmp.unlink(missing_ok=True)
    try:
        # The rename itself reaches the disk with the folder's entry.
        _fsync(target.parent)
    except OSError:
        pass
