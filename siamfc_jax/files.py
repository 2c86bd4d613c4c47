"""Atomic file output: a reader never sees a half-written file, an interrupted write loses nothing.

Errors name the file the caller asked for, never the temporary beside it (:class:`OutputError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
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


LOCK_NAME = ".siamfc_jax.lock"


class LockHeld(OutputError):
    """A folder another run holds (:func:`hold_folder`); the message names the holder."""


def _holder(handle: int) -> str:
    """What the holder wrote into the lock file (``pid 12 on host a``), or a word saying it is unknown."""
    try:
        text = os.pread(handle, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder not known yet"


@contextlib.contextmanager
def hold_folder(directory: str | os.PathLike, what: str = "", flag: str = "") -> Iterator[Path]:
    """Make ``directory`` this process's alone while the block runs, or refuse at once.

    Creates and checks the folder (:func:`check_writable_dir`), then takes a non-blocking POSIX
    record lock (``fcntl.lockf``, as :func:`exclusive_lock`) on ``<directory>/.siamfc_jax.lock``
    and writes ``pid N on host H`` into it. A folder another process holds is refused, not waited
    for: two runs writing one folder would mix their results. The operating system drops the lock
    when its process ends however it ends, so a killed run never blocks the next one (its lock
    file stays behind, empty of meaning); a run that ends normally removes the file.

    Args:
      what: how the user named the folder, put before messages (``"argument --out: "``).
      flag: the option that names another folder (``--out``), suggested in the refusal.

    Raises:
      LockHeld: another process holds the folder (the message names its pid and host).
      OutputError: the folder cannot be created or written.
    """
    folder = check_writable_dir(directory, what)
    path = folder / LOCK_NAME
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(handle)
            os.close(handle)
            other = f", or choose another {flag}" if flag else ""
            raise LockHeld(
                f"{what}{folder} is in use by another run ({holder}); wait for it to end{other}"
            ) from None
        # The previous holder removes the file before letting go: a lock on a removed file holds
        # nothing, so take the one at the path again.
        try:
            same = os.fstat(handle).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(handle)
    try:
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        yield folder
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(handle)
