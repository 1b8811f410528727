"""The refusal journal: an append-only JSON-lines file of the session uses the SDK refused.

A refused use leaves nothing on chain (the preflight refuses before signing, and a reverted estimate is
never sent), so the owner's audit (:mod:`smartkeys.audit`) would not see it. A :class:`SessionAgent`
given a :class:`RefusalJournal` records every refusal here before raising it.

One line per refusal (a UTF-8 JSON object)::

    {"account": "0x…", "block_number": 41, "block_time": 1700000123, "calls": [{"selector": "0xa9059cbb",
     "target": "0x…", "value": "0"}], "chain_id": 31337, "error": "TokenSpendCapExceeded",
     "fields": {"cap": "50000000", "requested": "10000000", "spent": "45000000", "token": "0x…"},
     "key": "0x…", "message": "reverted with TokenSpendCapExceeded(…)", "path": "direct",
     "raised": "TokenSpendCapExceeded", "session_id": "0x…", "time": 1700000122.5, "v": 1}

- ``time`` is the wall clock (unix seconds, float); ``block_number`` / ``block_time`` are the latest block
  the SDK saw and the block time it checked against (latest + 1), or null if the RPC could not be read.
- ``calls`` keep only target, selector (``"0x"`` for empty calldata) and native value: never calldata.
- ``error`` is the innermost decoded error's name (the contract error inside a user-operation failure),
  ``fields`` its values (integers as decimal strings, bytes as 0x-hex), ``raised`` the class raised.
- Nothing secret is written: no key material, no signatures, no calldata arguments.

The file is created with mode 0600 in a 0700 directory. Appends are serialised by a process-wide lock
and an advisory ``flock``, and each line is written with one ``write`` on an ``O_APPEND`` descriptor, so
threads and processes may share one journal. A line that does not parse is skipped with a warning.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time as _time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from smartkeys.safe_files import FileInputError

__all__ = [
    "JOURNAL_MAX_BYTES",
    "JOURNAL_MAX_LINE_BYTES",
    "JOURNAL_VERSION",
    "JournalFileError",
    "JournalWarning",
    "Refusal",
    "RefusalJournal",
    "RefusedCall",
    "default_journal_path",
    "error_details",
]

JOURNAL_VERSION = 1

try:  # POSIX advisory locks; elsewhere the in-process lock alone serialises writers
    import fcntl as _fcntl
except ImportError:  # pragma: no cover - Windows
    _fcntl = None  # type: ignore[assignment]


#: Largest journal read (about 20,000 refusals, a few seconds to read); rotate it (move it away) past this.
JOURNAL_MAX_BYTES = 16 * 1024 * 1024
#: Longest journal line parsed (a refusal is well under 2 KiB).
JOURNAL_MAX_LINE_BYTES = 64 * 1024
_MIN_LINE_BYTES = 100  # a refusal names an account, a key and a session id: over 150 bytes
_MAX_LINE_WARNINGS = 10  # one warning per malformed line up to this many, then one summary


class JournalFileError(FileInputError, OSError):
    """The journal path cannot be appended to safely (not a regular file, or cannot be opened)."""


class JournalWarning(UserWarning):
    """A journal line could not be read (it is skipped), or a refusal could not be recorded."""


def default_journal_path() -> Path:
    """``$SMARTKEYS_HOME/refusals.jsonl``; ``SMARTKEYS_HOME`` defaults to ``~/.smartkeys``."""
    home = os.environ.get("SMARTKEYS_HOME") or os.path.join(os.path.expanduser("~"), ".smartkeys")
    return Path(home) / "refusals.jsonl"


@dataclass(frozen=True)
class RefusedCall:
    """One call of a refused use: ``selector`` is 4 bytes, or empty for empty calldata (a plain transfer)."""

    target: str
    selector: bytes
    value: int = 0

    @classmethod
    def from_call(cls, call: Any) -> RefusedCall:
        """From a :class:`~smartkeys.account.Call`, or a ``(target, value, data)`` tuple."""
        if isinstance(call, (tuple, list)):
            target, value, data = call
        else:
            target, value, data = call.target, call.value, call.data
        if isinstance(data, str):
            data = bytes.fromhex(data.removeprefix("0x"))
        data = bytes(data)
        return cls(to_checksum_address(target), data[:4] if len(data) >= 4 else b"", int(value))

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "selector": "0x" + self.selector.hex(), "value": str(self.value)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RefusedCall:
        return cls(to_checksum_address(data["target"]), bytes.fromhex(str(data["selector"]).removeprefix("0x")),
                   int(data["value"]))


@dataclass(frozen=True)
class Refusal:
    """One refused session use (see the module docstring for the stored form)."""

    time: float
    chain_id: int
    account: str
    session_id: bytes
    key: str
    calls: tuple[RefusedCall, ...]
    error: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    path: str = "direct"
    message: str = ""
    raised: str = ""
    block_number: int | None = None
    block_time: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to the journal (one line)."""
        return {
            "v": JOURNAL_VERSION,
            "time": self.time,
            "chain_id": self.chain_id,
            "account": self.account,
            "session_id": "0x" + self.session_id.hex(),
            "key": self.key,
            "calls": [c.to_json() for c in self.calls],
            "error": self.error,
            "fields": {k: _jsonable(v) for k, v in self.fields.items()},
            "path": self.path,
            "message": self.message,
            "raised": self.raised or self.error,
            "block_number": self.block_number,
            "block_time": self.block_time,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Refusal:
        """Parse one journal object; raises ``KeyError``/``ValueError``/``TypeError`` if it is malformed."""
        return cls(
            time=float(data["time"]),
            chain_id=int(data["chain_id"]),
            account=to_checksum_address(data["account"]),
            session_id=bytes.fromhex(str(data["session_id"]).removeprefix("0x")),
            key=to_checksum_address(data["key"]),
            calls=tuple(RefusedCall.from_json(c) for c in data["calls"]),
            error=str(data["error"]),
            fields=dict(data.get("fields") or {}),
            path=str(data.get("path", "direct")),
            message=str(data.get("message", "")),
            raised=str(data.get("raised", data["error"])),
            block_number=None if data.get("block_number") is None else int(data["block_number"]),
            block_time=None if data.get("block_time") is None else int(data["block_time"]),
        )


def _jsonable(value: Any) -> Any:
    """Error field values for JSON: ints as decimal strings (wei amounts exceed 2**53), bytes as 0x-hex."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def error_details(exc: BaseException) -> tuple[str, dict[str, Any]]:
    """``(name, fields)`` of the innermost decoded error of ``exc``.

    Unwraps :class:`~smartkeys.errors.TransactionFailedError` (``.revert``) and
    :class:`~smartkeys.errors.UserOperationError` (``.inner``); a contract error gives its ABI fields, a
    user-operation error without a decoded inner error gives ``code`` and ``reason``.
    """
    from smartkeys.errors import ContractRevertError, TransactionFailedError, UserOperationError

    seen = 0
    while seen < 8:
        seen += 1
        if isinstance(exc, TransactionFailedError) and exc.revert is not None:
            exc = exc.revert
        elif isinstance(exc, UserOperationError) and isinstance(exc.inner, BaseException):
            exc = exc.inner
        else:
            break
    if isinstance(exc, ContractRevertError) and not isinstance(exc, UserOperationError):
        return exc.name, dict(exc.args)
    fields: dict[str, Any] = {}
    for attr in ("valid_after", "valid_until", "timestamp", "code", "reason"):
        value = getattr(exc, attr, None)
        if value is not None:
            fields[attr] = value
    return type(exc).__name__, fields


_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    try:
        key = str(path.resolve())
    except (OSError, RuntimeError):  # a symlink loop: the open that follows refuses it with a typed error
        key = str(path.absolute())
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


class RefusalJournal:
    """An append-only JSONL journal of refusals at ``path`` (default :func:`default_journal_path`)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_journal_path()

    def __repr__(self) -> str:
        return f"RefusalJournal({str(self.path)!r})"

    # -- writing --------------------------------------------------------------------------

    def _open_for_append(self) -> int:
        """The journal opened for appending, never blocking: a FIFO (which would wait for a reader), a
        directory, a device or a symlink loop raises :class:`JournalFileError`."""
        flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                 | getattr(os, "O_CLOEXEC", 0))
        fix = "move it away: the journal must be a regular file (it is created if missing)"
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:  # EISDIR, ELOOP, ENXIO (a FIFO without reader, a socket), EACCES
            raise JournalFileError(self.path, "refusal journal", "unreadable",
                                   f"cannot open it for appending ({exc.strerror or type(exc).__name__})", fix) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # e.g. a FIFO that has a reader, or a character device
            os.close(fd)
            raise JournalFileError(self.path, "refusal journal", "not_regular", "it is not a regular file", fix)
        return fd

    def append(self, refusal: Refusal) -> Refusal:
        """Append one refusal as one line (atomic with respect to other writers of this journal).

        Raises :class:`JournalFileError` (an ``OSError``: :class:`~smartkeys.account.SessionAgent` warns and
        keeps the refusal itself) if the journal is not a regular file."""
        line = (json.dumps(refusal.to_json(), separators=(",", ":")) + "\n").encode()
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _process_lock(self.path):
            fd = self._open_for_append()
            try:
                if _fcntl is not None:
                    _fcntl.flock(fd, _fcntl.LOCK_EX)
                try:
                    os.write(fd, line)
                finally:
                    if _fcntl is not None:
                        _fcntl.flock(fd, _fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return refusal

    def record(
        self,
        *,
        chain_id: int,
        account: str,
        session_id: bytes,
        key: str,
        calls: Iterable[Any],
        error: BaseException,
        path: str,
        block_number: int | None = None,
        block_time: int | None = None,
        time: float | None = None,
    ) -> Refusal:
        """Record that the session use ``calls`` (``Call`` objects or tuples) was refused with ``error``.

        ``path`` is ``"direct"`` or ``"user_op"``. Returns the :class:`Refusal` written.
        """
        if path not in ("direct", "user_op"):
            raise ValueError(f"path must be 'direct' or 'user_op', not {path!r}")
        name, fields = error_details(error)
        refusal = Refusal(
            time=_time.time() if time is None else float(time),
            chain_id=int(chain_id),
            account=to_checksum_address(account),
            session_id=bytes(session_id),
            key=to_checksum_address(key),
            calls=tuple(RefusedCall.from_call(c) for c in calls),
            error=name,
            fields={k: _jsonable(v) for k, v in fields.items()},
            path=path,
            message=str(error)[:500],
            raised=type(error).__name__,
            block_number=block_number,
            block_time=block_time,
        )
        return self.append(refusal)

    # -- reading --------------------------------------------------------------------------

    def read(self, account: str | None = None, chain_id: int | None = None) -> list[Refusal]:
        """Every refusal recorded, oldest first, optionally only those of ``account`` and/or ``chain_id``.

        A missing file is an empty journal. A line that is not a valid refusal (including one longer than
        :data:`JOURNAL_MAX_LINE_BYTES` or nested deeper than 8 levels) is skipped with a :class:`JournalWarning`
        naming its line number (the first ten; then one warning counts the rest). A journal that is not a regular file, or is larger than
        :data:`JOURNAL_MAX_BYTES`, raises :class:`~smartkeys.safe_files.FileInputError` naming it and the fix.
        """
        from smartkeys.safe_files import FileInputError, FileMissingError, parse_json, read_bytes

        want = to_checksum_address(account) if account is not None else None
        try:
            raw = read_bytes(self.path, kind="refusal journal", max_bytes=JOURNAL_MAX_BYTES)
        except FileMissingError:
            return []
        out: list[Refusal] = []
        skipped = 0
        for number, line in enumerate(raw.split(b"\n"), 1):
            line = line.strip()
            if not line:
                continue
            reason = None
            if not (line.startswith(b'{"') and line.endswith(b"}")) or len(line) < _MIN_LINE_BYTES:
                reason = "not a refusal object"  # cheap: garbage lines must not cost a parse each
            elif len(line) > JOURNAL_MAX_LINE_BYTES:
                reason = f"{len(line)} bytes, more than {JOURNAL_MAX_LINE_BYTES}"
            else:
                try:
                    data = parse_json(line.decode("utf-8"), path=f"{self.path}:{number}", kind="journal line",
                                      max_depth=8, max_values=2_000, own_format=True)
                    if not isinstance(data, Mapping):
                        raise TypeError(f"a JSON {type(data).__name__}, not an object")
                    refusal = Refusal.from_json(data)
                except (FileInputError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
                    reason = exc.problem if isinstance(exc, FileInputError) else f"{type(exc).__name__}: {exc}"
            if reason is not None:
                skipped += 1
                if skipped <= _MAX_LINE_WARNINGS:
                    warnings.warn(f"{self.path}:{number}: skipping a malformed journal line ({reason[:200]})",
                                  JournalWarning, stacklevel=2)
                continue
            if want is not None and refusal.account != want:
                continue
            if chain_id is not None and refusal.chain_id != chain_id:
                continue
            out.append(refusal)
        if skipped > _MAX_LINE_WARNINGS:
            warnings.warn(f"{self.path}: skipped {skipped - _MAX_LINE_WARNINGS} more malformed journal lines",
                          JournalWarning, stacklevel=2)
        return out

    def __len__(self) -> int:
        return len(self.read())

