"""The outbox: every signed intent recorded durably *before* it is sent, so that an unknown outcome can be
settled and a retry never pays twice.

An *intent* is one session use (or owner operation) the SDK signed. Its hash is known before anything leaves
the process: the ERC-4337 ``userOpHash`` (EntryPoint v0.8, computed locally) or the hash of the signed
transaction. The outbox holds it with its nonce lane and the signed payload; :func:`lookup` tells from the
chain (and the bundler) whether it landed, and :func:`settle` re-sends the *same* signed payload when its
nonce is still free. Re-sending the same signed operation is always safe: its nonce lets it be included once.

Identity: ``intent_id`` is the caller's name for the intent (``intent="invoice-42"``), or, unnamed, a hash of
what it does (chain, account, signer, calls). An entry is *acknowledged* once its outcome was reported to the
caller (a receipt returned, a refusal raised). Before sending, the SDK looks for an unacknowledged entry with
the same id: one that landed (reported failed, or never reported because the process died) refuses the retry
with :class:`~smartkeys.errors.DuplicateIntentError`; one that may still land is settled first. A named
intent is exactly-once for good: its name cannot be sent again once it landed. An unnamed intent whose
outcome was unknown to the caller and that :func:`settle` (``acknowledge=True``: ``agent.settle()``,
``smartkeys pending --settle``) then found landed is *held*: a retry of the same calls by the same signer is
refused with :class:`~smartkeys.errors.DuplicateIntentError` for ``Outbox.hold_settled_for`` seconds
(default 24 h; compaction keeps the hold), unless asked for by name (``intent="..."``) or with ``repeat=True``.

Status of an entry: ``pending`` (sent or about to be; may land), ``landed`` (on chain; its calls ran),
``reverted`` (on chain; its calls reverted: it paid gas), ``dropped`` (it can never land: its nonce was used by
something else, or the node refused it before it spread).

File: ``<SMARTKEYS_HOME>/outbox.jsonl`` by default, next to the refusal journal, mode 0600, one JSON object a
line, appended (``event`` = ``intent`` | ``settled`` | ``ack``) under a process lock and ``flock``, and
``fsync``-ed before the SDK sends anything. It holds the signed operation or transaction (calldata and
signature, never a key): what is needed to look it up and to re-send it unchanged.

Compaction (:meth:`Outbox.compact`, also run automatically once the file passes ``auto_compact_bytes``):
the file is rewritten with what the rules above still need -- every entry not settled or not acknowledged,
whole (payload included); every settled *named* intent that landed or reverted, without its payload (its id,
hash and outcome keep refusing a retry of that name; ``keep_named_for`` seconds bounds how long, default
forever) -- and nothing else (settled and acknowledged unnamed entries, dropped ones). It is atomic: the new
content is written to ``outbox.jsonl.compact.tmp``, ``fsync``-ed and renamed over the file while the file's
``flock`` is held, so a writer waiting for the lock reopens the new file (it checks the inode) and a crash
at any point leaves either the old file or the new one, both whole (a stale temporary file is overwritten by
the next compaction).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from eth_typing import ChecksumAddress, HexStr
from eth_utils import keccak, to_checksum_address

from smartkeys.journal import _fcntl, _process_lock
from smartkeys.safe_files import FileInputError, FileMissingError, parse_json, read_bytes

if TYPE_CHECKING:
    from web3 import Web3

    from smartkeys.bundler import BundlerClient

__all__ = [
    "CompactionReport",
    "Intent",
    "Outbox",
    "PENDING",
    "LANDED",
    "REVERTED",
    "DROPPED",
    "auto_intent_id",
    "default_outbox_path",
    "lookup",
    "settle",
]

PENDING, LANDED, REVERTED, DROPPED = "pending", "landed", "reverted", "dropped"
OUTBOX_VERSION = 1
_USER_OP_EVENT = "0x" + keccak(
    text="UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)").hex()


def default_outbox_path() -> Path:
    """``$SMARTKEYS_HOME/outbox.jsonl``; ``SMARTKEYS_HOME`` defaults to ``~/.smartkeys``."""
    home = os.environ.get("SMARTKEYS_HOME") or os.path.join(os.path.expanduser("~"), ".smartkeys")
    return Path(home) / "outbox.jsonl"


def auto_intent_id(chain_id: int, account: str, signer: str, calls: Sequence[Any]) -> str:
    """The id of an unnamed intent: ``"auto:" + keccak(chain, account, signer, each call's target, value, data)``."""
    h = keccak(b"smartkeys.intent.v1" + int(chain_id).to_bytes(32, "big") + bytes.fromhex(account[2:])
               + bytes.fromhex(signer[2:]) + b"".join(
                   bytes.fromhex(c.target[2:]) + int(c.value).to_bytes(32, "big") + keccak(bytes(c.data))
                   for c in calls))
    return "auto:" + h.hex()[:32]


def _hx(b: bytes | None) -> str | None:
    return None if b is None else "0x" + bytes(b).hex()


def _bx(s: Any) -> bytes | None:
    return None if s in (None, "") else bytes.fromhex(str(s).removeprefix("0x"))


@dataclass(frozen=True)
class Intent:
    """One signed intent. ``kind`` is ``"user_op"`` (``hash`` = userOpHash; ``sender`` the account;
    ``nonce`` = ``key << 64 | sequence``) or ``"transaction"`` (``hash`` = tx hash; ``sender`` the signing
    EOA). ``via`` is ``"bundler"``, ``"self_bundled"`` or ``"direct"``. ``payload`` holds the signed op
    (``op``: its ``to_rpc()`` form) and/or the signed raw transaction (``raw``). ``from_block`` bounds log
    searches. ``transaction_hash`` / ``block_number`` / ``success`` are set once it landed."""

    intent_id: str
    kind: str
    hash: bytes
    chain_id: int
    sender: str
    nonce: int
    signer: str
    account: str
    via: str
    from_block: int
    created: float
    calls: tuple[dict[str, Any], ...] = ()
    session_id: bytes | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    status: str = PENDING
    transaction_hash: bytes | None = None
    block_number: int | None = None
    gas_used: int | None = None
    settled: float | None = None
    acknowledged: bool = False
    note: str = ""
    hold_until: float | None = None

    @property
    def named(self) -> bool:
        return not self.intent_id.startswith("auto:")

    @property
    def lane(self) -> int:
        """The nonce lane: a user op's nonce key (``nonce >> 64``), 0 for a transaction."""
        return self.nonce >> 64 if self.kind == "user_op" else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "v": OUTBOX_VERSION, "event": "intent", "intent_id": self.intent_id, "kind": self.kind,
            "hash": _hx(self.hash), "chain_id": self.chain_id, "sender": self.sender, "nonce": str(self.nonce),
            "signer": self.signer, "account": self.account, "via": self.via, "from_block": self.from_block,
            "created": self.created, "calls": list(self.calls), "session_id": _hx(self.session_id),
            "payload": dict(self.payload),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Intent:
        return cls(
            intent_id=str(d["intent_id"]), kind=str(d["kind"]), hash=_bx(d["hash"]) or b"", chain_id=int(d["chain_id"]),
            sender=to_checksum_address(d["sender"]), nonce=int(d["nonce"]), signer=to_checksum_address(d["signer"]),
            account=to_checksum_address(d["account"]), via=str(d["via"]), from_block=int(d["from_block"]),
            created=float(d["created"]), calls=tuple(d.get("calls") or ()), session_id=_bx(d.get("session_id")),
            payload=dict(d.get("payload") or {}),
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready view without the payload (for listings)."""
        return {
            "intent_id": self.intent_id, "status": self.status, "kind": self.kind, "hash": _hx(self.hash),
            "via": self.via, "sender": self.sender, "nonce": str(self.nonce), "lane": str(self.lane),
            "signer": self.signer, "account": self.account, "chain_id": self.chain_id,
            "session_id": _hx(self.session_id), "calls": list(self.calls), "created": self.created,
            "transaction_hash": _hx(self.transaction_hash), "block_number": self.block_number,
            "acknowledged": self.acknowledged, "note": self.note,
        }


def call_summary(calls: Iterable[Any]) -> tuple[dict[str, Any], ...]:
    """``{"target", "value", "selector"}`` of each call (the listing shows these; the payload has the rest)."""
    return tuple({"target": c.target, "value": str(c.value), "selector": "0x" + bytes(c.data[:4]).hex()}
                 for c in calls)


@dataclass(frozen=True)
class CompactionReport:
    """What :meth:`Outbox.compact` did: file sizes (bytes) and entries kept / dropped."""

    bytes_before: int
    bytes_after: int
    kept: int
    dropped: int


#: Default size (bytes) past which an :class:`Outbox` compacts itself after recording an outcome.
AUTO_COMPACT_BYTES = 4 * 1024 * 1024
#: Default seconds an unnamed intent settled as landed after an unknown outcome refuses a retry (24 h).
HOLD_SETTLED_FOR = 24 * 3600.0


class Outbox:
    """The append-only outbox at ``path`` (default :func:`default_outbox_path`); see the module docstring.

    ``auto_compact_bytes``: once the file is larger than this (and than twice its size after the last
    compaction by this object), :meth:`compact` runs after an outcome is recorded; ``None`` never.
    ``keep_named_for``: seconds a settled named intent is kept by compaction (``None``: for good).
    ``hold_settled_for``: seconds an unnamed intent that :func:`settle` found landed after an unknown outcome
    refuses a retry of the same calls (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 auto_compact_bytes: int | None = AUTO_COMPACT_BYTES, keep_named_for: float | None = None,
                 hold_settled_for: float = HOLD_SETTLED_FOR) -> None:
        self.path = Path(path) if path is not None else default_outbox_path()
        self.auto_compact_bytes = auto_compact_bytes
        self.keep_named_for = keep_named_for
        self.hold_settled_for = float(hold_settled_for)
        self._compacted_size = 0

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r})"

    @property
    def _temp_path(self) -> Path:
        return self.path.with_name(self.path.name + ".compact.tmp")

    def _open_locked(self) -> int:
        """Open the file for appending with its ``flock`` held. A compaction may have renamed a new file over
        the path while this waited for the lock: then the descriptor is of the old file, so reopen.
        Never blocks on a FIFO or device: anything but a regular file raises :class:`FileInputError`."""
        while True:
            fd = _open_regular(self.path)
            if _fcntl is None:
                return fd
            _fcntl.flock(fd, _fcntl.LOCK_EX)
            try:
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                return fd
            os.close(fd)  # closing releases the flock of the replaced file

    def _append(self, record: Mapping[str, Any], *, sync: bool) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        _make_dir(self.path)
        with _process_lock(self.path):
            fd = self._open_locked()
            try:
                size = os.fstat(fd).st_size
                if size and hasattr(os, "pread") and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a writer died mid-line: keep its torn line apart from this one
                os.write(fd, line)
                if sync:
                    os.fsync(fd)  # durable before the intent leaves the process
            finally:
                os.close(fd)  # releases the flock

    def _maybe_compact(self) -> None:
        limit = self.auto_compact_bytes
        if limit is None:
            return
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size > limit and size > 2 * self._compacted_size:
            self.compact()

    def compact(self, *, keep_named_for: float | None = None, now: float | None = None) -> CompactionReport:
        """Rewrite the file with only what the exactly-once rules still need (see the module docstring),
        atomically (temporary file, ``fsync``, rename, directory ``fsync``) under the process lock and the
        file's ``flock``. ``keep_named_for`` (seconds, default this outbox's): settled named intents settled
        longer ago are dropped too -- a retry of such a name is then sent again. Returns a
        :class:`CompactionReport`. Raises :class:`~smartkeys.safe_files.FileInputError` if the outbox is not a
        regular file or its directory cannot be created, ``OSError`` if it cannot be written (nothing lost)."""
        keep_for = self.keep_named_for if keep_named_for is None else keep_named_for
        now = _time.time() if now is None else now
        _make_dir(self.path)
        with _process_lock(self.path):
            fd = self._open_locked()
            try:
                raw = _read(self.path)  # the lock holder's file: no writer can append meanwhile
                kept: list[bytes] = []
                intents = self._fold(raw, self.path)
                for it in intents:
                    if it.status == PENDING or not it.acknowledged:
                        kept.append(self._folded_lines(it, payload=True))
                    elif it.named and it.status in (LANDED, REVERTED) and (
                            keep_for is None or (it.settled or it.created) + keep_for > now):
                        kept.append(self._folded_lines(it, payload=False))
                    elif (it.hold_until or 0) > now:  # a held unnamed intent keeps refusing a retry
                        kept.append(self._folded_lines(it, payload=False))
                data = b"".join(kept)
                tmp = self._temp_path
                tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(tfd, data)
                    os.fsync(tfd)
                finally:
                    os.close(tfd)
                os.replace(tmp, self.path)  # atomic: readers see the old file or the new one, whole
                _fsync_dir(self.path.parent)
                self._compacted_size = len(data)
                return CompactionReport(len(raw), len(data), len(kept), len(intents) - len(kept))
            finally:
                os.close(fd)

    @staticmethod
    def _folded_lines(it: Intent, *, payload: bool) -> bytes:
        """An entry as one ``intent`` line and (if anything happened to it) one ``settled`` line."""
        head = it.to_json()
        if not payload:
            head["payload"] = {}
        lines = [head]
        if it.status != PENDING or it.acknowledged or it.note:
            lines.append({"v": OUTBOX_VERSION, "event": "settled", "intent_id": it.intent_id, "hash": _hx(it.hash),
                          "status": it.status, "transaction_hash": _hx(it.transaction_hash),
                          "block_number": it.block_number, "gas_used": it.gas_used, "acknowledged": it.acknowledged,
                          "note": it.note, "time": it.settled if it.settled is not None else it.created,
                          **({"hold_until": it.hold_until} if it.hold_until else {})})
        return b"".join((json.dumps(d, separators=(",", ":")) + "\n").encode() for d in lines)

    def record(self, intent: Intent) -> Intent:
        """Write ``intent`` (status pending) and ``fsync`` it. Call before sending."""
        self._append(intent.to_json(), sync=True)
        return intent

    def mark(self, intent: Intent, status: str, *, transaction_hash: bytes | None = None,
             block_number: int | None = None, gas_used: int | None = None, acknowledged: bool = False,
             note: str = "", hold: bool = False) -> Intent:
        """Record what became of ``intent`` (``acknowledged``: the outcome was reported to the caller;
        ``hold``: a retry of its calls is refused for :attr:`hold_settled_for` seconds, see the module docstring)."""
        now = _time.time()
        hold_until = now + self.hold_settled_for if hold else None
        self._append({"v": OUTBOX_VERSION, "event": "settled", "intent_id": intent.intent_id, "hash": _hx(intent.hash),
                      "status": status, "transaction_hash": _hx(transaction_hash), "block_number": block_number,
                      "gas_used": gas_used, "acknowledged": acknowledged, "note": note[:300], "time": now,
                      **({"hold_until": hold_until} if hold_until else {})},
                     sync=False)
        if acknowledged:
            self._maybe_compact()
        return replace(intent, status=status, transaction_hash=transaction_hash or intent.transaction_hash,
                       block_number=block_number if block_number is not None else intent.block_number,
                       gas_used=gas_used if gas_used is not None else intent.gas_used,
                       settled=now if status != PENDING else intent.settled,
                       acknowledged=acknowledged or intent.acknowledged, note=note or intent.note,
                       hold_until=hold_until or intent.hold_until)

    def acknowledge(self, intent: Intent) -> Intent:
        """Mark ``intent``'s outcome as known to the caller: an unnamed retry of the same calls goes through."""
        self._append({"v": OUTBOX_VERSION, "event": "ack", "intent_id": intent.intent_id, "hash": _hx(intent.hash),
                      "time": _time.time()}, sync=False)
        self._maybe_compact()
        return replace(intent, acknowledged=True)

    def read(self) -> list[Intent]:
        """Every intent, oldest first, with its latest status folded in. A broken line (a crash mid-write) is skipped.

        Raises :class:`~smartkeys.safe_files.FileInputError` (naming the file and the fix) if the outbox is not
        a regular file (a FIFO or device is refused without blocking; a symlink loop), is larger than
        :data:`OUTBOX_MAX_BYTES`, or holds a line nested deeper than :data:`OUTBOX_MAX_DEPTH` (no crash mid-write
        writes that: the file was written by something else)."""
        try:
            raw = _read(self.path)
        except FileMissingError:
            return []
        return self._fold(raw, self.path)

    @staticmethod
    def _fold(raw: bytes, path: Path | str = "outbox") -> list[Intent]:
        intents: dict[str, Intent] = {}
        for number, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                d = _parse_line(line, path, number)
                key = str(d["hash"])
                if d["event"] == "intent":
                    intents[key] = Intent.from_json(d)
                elif key in intents and d["event"] == "settled":
                    it = intents[key]
                    intents[key] = replace(
                        it, status=str(d["status"]), transaction_hash=_bx(d.get("transaction_hash")) or it.transaction_hash,
                        block_number=d.get("block_number") if d.get("block_number") is not None else it.block_number,
                        gas_used=d.get("gas_used") if d.get("gas_used") is not None else it.gas_used,
                        settled=float(d.get("time") or 0) if d["status"] != PENDING else it.settled,
                        acknowledged=bool(d.get("acknowledged")) or it.acknowledged, note=d.get("note") or it.note,
                        hold_until=float(d["hold_until"]) if d.get("hold_until") else it.hold_until)
                elif key in intents and d["event"] == "ack":
                    intents[key] = replace(intents[key], acknowledged=True)
            except FileInputError:
                raise  # a hostile line (too deep, too many values), not a torn one
            except (ValueError, KeyError, TypeError):
                continue
        return list(intents.values())

    def unsettled(self, *, chain_id: int | None = None) -> list[Intent]:
        """Intents still ``pending``, or settled without their outcome reported to the caller."""
        return [i for i in self.read() if (i.status == PENDING or not i.acknowledged)
                and (chain_id is None or i.chain_id == chain_id)]

    def find(self, intent_id: str, *, chain_id: int, signer: str) -> list[Intent]:
        """Entries with this id for this chain and signer, oldest first."""
        return [i for i in self.read() if i.intent_id == intent_id and i.chain_id == chain_id and i.signer == signer]


#: Largest outbox read (bytes). It compacts itself past 4 MiB by default; a file this large was not written so.
OUTBOX_MAX_BYTES = 256 * 1024 * 1024
#: Deepest nesting of one outbox line (an intent with its signed op nests 4 levels).
OUTBOX_MAX_DEPTH = 16
_OUTBOX_KIND = "outbox"
_OUTBOX_FIX = "move it away (the outbox must be a regular file; it is created if missing), or set SMARTKEYS_HOME"


def _read(path: Path) -> bytes:
    """The outbox's bytes through ``safe_files.read_bytes``: bounded, never blocking, typed errors."""
    return read_bytes(path, kind=_OUTBOX_KIND, max_bytes=OUTBOX_MAX_BYTES)


def _parse_line(line: bytes, path: Path | str, number: int) -> Any:
    """One line through the bounded JSON parser (depth checked before parsing: ``json`` recurses in C).
    A line that is not JSON (a torn write) raises ``ValueError`` (the reader skips it); one nested too
    deep or holding too many values raises :class:`~smartkeys.safe_files.FileInputError`."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8") from exc
    try:
        return parse_json(text, path=f"{path}:{number}", kind="outbox line", max_depth=OUTBOX_MAX_DEPTH,
                          max_values=10_000, own_format=True)
    except FileInputError as exc:
        if exc.reason in ("too_deep", "too_many_values"):
            raise FileInputError(exc.path, exc.kind, exc.reason, exc.problem,
                                 f"this line was not written by smartkeys: move the outbox away ({path}) and "
                                 "check what wrote it") from None
        raise ValueError(exc.problem) from None  # a torn line: skipped


def _make_dir(path: Path) -> None:
    """Create the outbox's directory (0700), or raise :class:`~smartkeys.safe_files.FileInputError` naming it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise FileInputError(path.parent, "outbox directory", "unwritable",
                             f"it cannot be created ({exc.strerror or type(exc).__name__})",
                             "set SMARTKEYS_HOME (or pass outbox=) to a directory this user can write") from None


def _open_regular(path: Path) -> int:
    """``path`` opened for appending (created 0600 if missing) without ever blocking, checked to be a regular
    file; :class:`~smartkeys.safe_files.FileInputError` otherwise (a directory, FIFO, device, symlink loop,
    no permission)."""
    flags = (os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            problem = "the path is a symbolic link loop"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            problem, fix = f"it cannot be written ({exc.strerror})", "make it writable by this user, or set SMARTKEYS_HOME"
            raise FileInputError(path, _OUTBOX_KIND, "unwritable", problem, fix) from None
        else:  # EISDIR, ENXIO (a socket), ENOENT (the directory went away)
            problem = f"it cannot be opened for appending ({exc.strerror or type(exc).__name__})"
        raise FileInputError(path, _OUTBOX_KIND, "unreadable", problem, _OUTBOX_FIX) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # a FIFO (O_RDWR opens it without blocking) or a character device
        os.close(fd)
        raise FileInputError(path, _OUTBOX_KIND, "not_regular", "it is not a regular file", _OUTBOX_FIX)
    return fd


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(dfd)


# --------------------------------------------------------------------------------------------
# looking an intent up, and settling it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """What the chain says about an intent: ``status`` and, once on chain, where and with what gas."""

    status: str
    transaction_hash: bytes | None = None
    block_number: int | None = None
    gas_used: int | None = None
    note: str = ""


def lookup(w3: Web3, intent: Intent, *, rechecks: int = 3, recheck_wait: float = 0.5) -> Lookup:
    """Whether ``intent`` landed, read from chain only (safe to repeat; no bundler needed).

    A user op: its ``UserOperationEvent`` (indexed by userOpHash) since ``from_block``; none, and the account's
    nonce lane already past the op's nonce (read *before* the logs) -> ``dropped``. A transaction: its receipt;
    none, and the sender's mined nonce past it -> ``dropped``. Otherwise ``pending``.
    ``dropped`` is never decided from one negative read: behind a load-balanced provider a receipt or a log
    can lag the nonce count, so the hash is read again ``rechecks`` times, ``recheck_wait`` seconds apart
    (bounded by the current :func:`smartkeys.rpc.deadline`), and only if none of them finds it is it dropped.
    """
    for attempt in range(rechecks + 1):
        found = _lookup_once(w3, intent)
        if found.status != DROPPED or attempt == rechecks:
            return found
        from smartkeys.rpc import remaining

        left = remaining()
        if left is not None and left < recheck_wait + 0.5:
            # no time to be sure: not "dropped" (a retry would be invited), but still unknown
            return Lookup(PENDING, note="the nonce was used, but the hash was not found yet: re-check later")
        _time.sleep(recheck_wait)
    return found  # pragma: no cover - the loop returns


def _lookup_once(w3: Web3, intent: Intent) -> Lookup:
    """One read of :func:`lookup` (may say ``dropped`` on a lagging read: :func:`lookup` re-checks)."""
    from smartkeys.deployments import ENTRY_POINT_V08

    if intent.kind == "user_op":
        from smartkeys.entrypoint import EntryPoint

        lane_nonce = EntryPoint(w3).get_nonce(intent.sender, intent.lane)
        logs = w3.eth.get_logs({"address": ENTRY_POINT_V08, "fromBlock": max(0, intent.from_block - 1),
                                "toBlock": "latest", "topics": [_USER_OP_EVENT, _hx(intent.hash)]})
        if logs:
            log = logs[0]
            data = bytes(log["data"])
            success = int.from_bytes(data[32:64], "big") == 1
            gas_used = int.from_bytes(data[96:128], "big")
            return Lookup(LANDED if success else REVERTED, bytes(log["transactionHash"]), int(log["blockNumber"]), gas_used)
        if lane_nonce > intent.nonce:
            return Lookup(DROPPED, note=f"nonce {intent.nonce} of lane {intent.lane} was used by another operation")
        return Lookup(PENDING)
    from web3.exceptions import TransactionNotFound

    mined = w3.eth.get_transaction_count(cast(ChecksumAddress, intent.sender), "latest")
    try:
        receipt = w3.eth.get_transaction_receipt(cast(HexStr, _hx(intent.hash)))  # an intent always has a hash
    except TransactionNotFound:
        receipt = None
    if receipt is not None:
        ok = int(receipt["status"]) == 1
        return Lookup(LANDED if ok else REVERTED, bytes(receipt["transactionHash"]), int(receipt["blockNumber"]),
                      int(receipt["gasUsed"]))
    if mined > intent.nonce:
        return Lookup(DROPPED, note=f"nonce {intent.nonce} of {intent.sender} was used by another transaction")
    return Lookup(PENDING)


def resend(w3: Web3, intent: Intent, *, bundler: BundlerClient | None = None) -> str:
    """Send ``intent``'s own signed payload again (same hash; at most one inclusion). Returns what happened:
    ``"sent"``, ``"known"`` (already in a pool), ``"refused: ..."`` or ``"unreachable: ..."``."""
    import requests

    from smartkeys.errors import NetworkError

    try:
        if intent.via == "bundler":
            if bundler is None:
                return "unreachable: no bundler to re-send to"
            from smartkeys.userop import PackedUserOperation

            bundler.send_user_operation(PackedUserOperation.from_rpc(dict(intent.payload["op"])))
            return "sent"
        raw = intent.payload.get("raw")
        if not raw:
            return "refused: no signed transaction recorded"
        w3.eth.send_raw_transaction(raw)
        return "sent"
    except (NetworkError, requests.RequestException, ConnectionError, TimeoutError) as exc:
        return f"unreachable: {type(exc).__name__}: {str(exc)[:200]}"
    except Exception as exc:  # noqa: BLE001 - an answer: a JSON-RPC error (web3 7's Web3RPCError is not a
        # ValueError), a SmartKeysError, a test chain's own ValidationError; either way it stays pending
        text = str(getattr(exc, "message", None) or exc)
        if "already known" in text.lower() or "already in" in text.lower() or "already imported" in text.lower():
            return "known"
        return f"refused: {text[:200]}"


def _typed_lookup(w3: Web3, intent: Intent) -> Lookup:
    """:func:`lookup`, with a node's JSON-RPC error answer (web3's untyped ``Web3RPCError``) raised as a
    :class:`~smartkeys.errors.NetworkError` that says what to do (the outcome is still unknown)."""
    try:
        return lookup(w3, intent)
    except _rpc_errors() as exc:
        from smartkeys.errors import NetworkError

        message = getattr(exc, "message", None) or str(exc)
        raise NetworkError(
            f"the node answered an error while looking up {_hx(intent.hash)} ({str(message)[:150]})",
            hint="its outcome is still unknown: do not send it again; settle it later (`smartkeys pending "
                 "--settle`, agent.settle()) or against another node (--rpc-url)") from exc


def _rpc_errors() -> tuple[type[BaseException], ...]:
    """web3's JSON-RPC error answer types (``Web3RPCError`` in web3 7; none before)."""
    from web3 import exceptions as w3e

    return tuple(getattr(w3e, n) for n in ("Web3RPCError",) if hasattr(w3e, n))


def settle(w3: Web3, outbox: Outbox | None, intent: Intent, *, bundler: BundlerClient | None = None,
           resend_if_free: bool = True, wait: float = 0.0, poll: float = 0.2, acknowledge: bool = False) -> Intent:
    """Find out what became of ``intent`` and record it in ``outbox``; returns the updated intent.

    1. :func:`lookup` on chain. Landed, reverted or dropped: recorded, done.
    2. Still pending and ``resend_if_free``: its own signed payload is sent again (:func:`resend`) -- the same
       hash, so it can land at most once -- then looked up again for up to ``wait`` seconds.
    A refusal of the re-send while the nonce is still free (the node or bundler no longer takes it, e.g. its
    validity window passed) leaves it ``pending``: nothing can land it but that same payload.
    ``acknowledge``: the caller is told the result now. An unnamed intent found landed is then *held*: a
    retry of the same calls is refused for ``outbox.hold_settled_for`` seconds (module docstring); one that
    reverted or was dropped moved nothing, and a retry is a new attempt.
    """
    from smartkeys.rpc import remaining

    found = _typed_lookup(w3, intent)
    if found.status == PENDING and resend_if_free:
        outcome = resend(w3, intent, bundler=bundler)
        end = _time.monotonic() + wait
        left = remaining()
        if left is not None:
            end = min(end, _time.monotonic() + max(0.0, left - 0.5))
        while True:
            found = _typed_lookup(w3, intent)
            if found.status != PENDING or _time.monotonic() >= end:
                break
            _time.sleep(poll)
        if found.status == PENDING:
            found = replace(found, note=f"re-sent the same signed payload: {outcome}")
    if outbox is None:
        return replace(intent, status=found.status, transaction_hash=found.transaction_hash,
                       block_number=found.block_number, gas_used=found.gas_used, note=found.note)
    if found.status == PENDING and not found.note:
        return intent
    done = acknowledge and found.status != PENDING
    return outbox.mark(intent, found.status, transaction_hash=found.transaction_hash, block_number=found.block_number,
                       gas_used=found.gas_used, acknowledged=done, note=found.note,
                       hold=done and found.status == LANDED and not intent.named)
