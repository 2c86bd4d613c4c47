"""Atomic file output: a reader never sees a half-written file, an interrupted write loses nothing.

Errors name the file the caller asked for, never the temporary beside it (:class:`OutputError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


class OutputError(OSError):
    """An output that cannot be written; the message names it (the real path, not a temporary)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_writable_dir(directory: str | os.PathLike, what: str = "") -> Path:
    """Create ``directory`` if needed and check that files can be created in it, before long work.

    Args:
      directory: the output folder.
      what: how the user named it (``"argument --out: "``), put before the message.

    Raises:
      OutputError: it is not a folder, cannot be created, or a file cannot be created in it.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what}{path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.{os.getpid()}-{secrets.token_hex(4)}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputError(f"{what}{path}: cannot write into this folder ({reason})") from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The temporary file lives in the destination directory so the final ``os.replace`` is atomic;
    on error it is removed and ``path`` is left as it was. Parent directories are created. The
    temporary name keeps the suffix (``.png``, ``.mp4`` …) because writers such as OpenCV choose
    the format from it; the file is not created here, so it gets the usual permissions.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OutputError:
        raise
    except OSError as error:
        # The temporary's name means nothing to the user: name the output it stands for.
        reason = error.strerror or str(error)
        raise OutputError(f"{path}: cannot write ({reason})") from None
    finally:
        # Where the folder could not be made there is nothing to remove, and the error to report
        # is the one above, which names the output.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) while the block runs.

    A POSIX record lock (``fcntl.lockf``): other processes taking the same lock wait here until it
    is released, processes of other hosts too where the shared filesystem supports POSIX locks (NFS
    does through its lock manager). The operating system releases it when the process ends, so a
    killed holder never leaves a stale lock. Parent directories are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN)
