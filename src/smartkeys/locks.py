"""Per-nonce-lane locks: one holder at a time per (chain, sender, lane), across threads and processes.

A sender's nonce (an EOA's transaction nonce, or a user-op nonce lane ``key`` of an account) can be used by one
operation only. Two threads or two processes that read the same nonce and both send make one of them fail:
``nonce too low`` on the direct path, and on the self-bundled path a ``handleOps`` bundle that reverts on chain
and costs its sender gas. :func:`lane_lock` serialises read-nonce -> simulate -> sign -> send -> wait.

In-process: a ``threading.Lock`` per lane. Across processes on one machine: an advisory ``flock`` on a file in
``$TMPDIR/smartkeys-locks-<uid>/`` (``SMARTKEYS_LOCK_DIR`` overrides; POSIX; elsewhere only the in-process lock
applies). Processes on other machines are not covered: their conflicts surface as
:class:`~smartkeys.errors.NonceConflictError`.

The directory must be private: it is created 0700, and one that exists already must be a directory (not a
symlink) owned by this user and writable by no one else, else :class:`~smartkeys.safe_files.FileInputError`
(reason ``not_private``) names it and the fix. A lock file must be a regular file owned by this user (opened
with ``O_NOFOLLOW``, never blocking): a directory, a symlink or a special file there is refused the same way.
Why the predictable per-user name and not ``$XDG_RUNTIME_DIR`` or ``SMARTKEYS_HOME``: every process of the user
that sends with one key must find the same lock, and ``XDG_RUNTIME_DIR`` is unset under cron, sudo and many
containers, while two agents may keep different homes. Another local user who creates the name first gets
a refusal that says so (a denial of service, never a silently shared or broken lock).

Waiting for the lock keeps to the current :func:`smartkeys.rpc.deadline` (and to ``timeout``): past it,
:class:`~smartkeys.errors.DeadlineExceededError` is raised and nothing was sent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smartkeys.errors import DeadlineExceededError
from smartkeys.safe_files import FileInputError

try:
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]

__all__ = ["lane_lock", "lock_dir", "shared_chain"]


def shared_chain(w3: Any) -> bool:
    """Whether other processes can reach ``w3``'s chain (an HTTP, WebSocket or IPC node), so that the
    lock must be taken across processes; an in-process chain (eth-tester) needs the thread lock only."""
    provider = getattr(w3, "provider", None)
    return any(getattr(provider, attr, None) for attr in ("endpoint_uri", "ipc_path"))

_THREAD_LOCKS: dict[tuple[Any, ...], threading.Lock] = {}
_GUARD = threading.Lock()


def lock_dir() -> Path:
    """Where the lock files live (``SMARTKEYS_LOCK_DIR`` overrides)."""
    explicit = os.environ.get("SMARTKEYS_LOCK_DIR")
    if explicit:
        return Path(explicit)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"smartkeys-locks-{uid}"


_DIR_FIX = ("remove it (only smartkeys writes there; it is recreated private), or set SMARTKEYS_LOCK_DIR to a "
            "directory of your own (mode 0700), the same for every process that sends with this key")


def _private_dir(directory: Path, *, explicit: bool) -> None:
    """Create ``directory`` (0700) or check the one that is there: a directory owned by this user that no one
    else can write (a symlink is refused unless the user named it in ``SMARTKEYS_LOCK_DIR``)."""
    kind = "lock directory"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(directory) if explicit else os.lstat(directory)
    except OSError as exc:
        raise FileInputError(directory, kind, "unwritable", f"it cannot be created ({exc.strerror or type(exc).__name__})",
                             _DIR_FIX) from None
    if not stat.S_ISDIR(info.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a directory"
        raise FileInputError(directory, kind, "not_private", f"it is {what}", _DIR_FIX)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise FileInputError(directory, kind, "not_private",
                             f"it belongs to user id {info.st_uid}, not to this user ({os.getuid()})", _DIR_FIX)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise FileInputError(directory, kind, "not_private",
                             f"others can write it (mode {stat.S_IMODE(info.st_mode):o})",
                             f"chmod 700 {directory}, or " + _DIR_FIX)


def _open_lock_file(path: Path) -> int:
    """The lock file opened read-write (created 0600), never following a symlink nor blocking; a regular file
    owned by this user, else :class:`~smartkeys.safe_files.FileInputError` naming it."""
    flags = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    fix = f"remove it (rm -r {path}): lock files are recreated by smartkeys"
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        problem = ("it is a symbolic link (or a symlink loop)" if exc.errno == errno.ELOOP
                   else f"it cannot be opened ({exc.strerror or type(exc).__name__})")
        raise FileInputError(path, "lock file", "unreadable", problem, fix) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        os.close(fd)
        problem = ("it is not a regular file" if not stat.S_ISREG(info.st_mode)
                   else f"it belongs to user id {info.st_uid}, not to this user")
        raise FileInputError(path, "lock file", "not_private", problem, fix)
    return fd


def _thread_lock(key: tuple[Any, ...]) -> threading.Lock:
    with _GUARD:
        lock = _THREAD_LOCKS.get(key)
        if lock is None:
            lock = _THREAD_LOCKS[key] = threading.Lock()
        return lock


@contextlib.contextmanager
def lane_lock(chain_id: int, sender: str, lane: int = 0, *, kind: str = "op", timeout: float = 300.0,
              cross_process: bool = True) -> Iterator[None]:
    """Hold the lock of ``sender``'s nonce lane ``lane`` on ``chain_id`` (threads and processes).

    ``kind`` is ``"op"`` (an account's user-op nonce lane ``lane``) or ``"tx"`` (an EOA's transaction nonce).
    ``cross_process`` False takes the in-process lock only (a chain that lives inside this process).
    Raises :class:`~smartkeys.errors.DeadlineExceededError` past the deadline, and
    :class:`~smartkeys.safe_files.FileInputError` for a lock directory or lock file that is not private
    (see the module docstring); nothing was sent in either case.
    """
    from smartkeys.rpc import remaining

    left = remaining()
    budget = timeout if left is None else max(0.0, min(timeout, left))
    end = time.monotonic() + budget
    key = (kind, int(chain_id), sender.lower(), int(lane))
    tlock = _thread_lock(key)
    if not tlock.acquire(timeout=budget):
        raise DeadlineExceededError(f"waited {budget:.1f} s for another thread using nonce lane {lane} of {sender}",
                                    hint="another thread holds this key's nonce lane: raise --timeout, or wait")
    fd = None
    try:
        if _fcntl is not None and cross_process:
            directory = lock_dir()
            _private_dir(directory, explicit=bool(os.environ.get("SMARTKEYS_LOCK_DIR")))
            fd = _open_lock_file(directory / f"{kind}-{key[1]}-{key[2]}-{key[3]:x}.lock")
            while True:
                try:
                    _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= end:
                        raise DeadlineExceededError(
                            f"waited {budget:.1f} s for another process using nonce lane {lane} of {sender}",
                            hint="another process sends with this key: wait for it, or give each process its own key",
                        ) from None
                    time.sleep(0.01)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the flock
        tlock.release()
