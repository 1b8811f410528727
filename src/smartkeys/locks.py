"""Per-nonce-lane locks: one holder at a time per (chain, sender, lane), across threads and processes.

A sender's nonce (an EOA's transaction nonce, or a user-op nonce lane ``key`` of an account) can be used by one
operation only. Two threads or two processes that read the same nonce and both send make one of them fail:
``nonce too low`` on the direct path, and on the self-bundled path a ``handleOps`` bundle that reverts on chain
and costs its sender gas. :func:`lane_lock` serialises read-nonce -> simulate -> sign -> send -> wait.

In-process: a ``threading.Lock`` per lane. Across processes on one machine: an advisory ``flock`` on a file in
``$TMPDIR/smartkeys-locks-<uid>/`` (POSIX; elsewhere only the in-process lock applies). Processes on other
machines are not covered: their conflicts surface as :class:`~smartkeys.errors.NonceConflictError`.

Waiting for the lock keeps to the current :func:`smartkeys.rpc.deadline` (and to ``timeout``): past it,
:class:`~smartkeys.errors.DeadlineExceededError` is raised and nothing was sent.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smartkeys.errors import DeadlineExceededError

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
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(directory / f"{kind}-{key[1]}-{key[2]}-{key[3]:x}.lock", os.O_RDWR | os.O_CREAT, 0o600)
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
